//! Hélios `PES_ACQUIT`: the real refusals parse into typed results with the DGFiP's reasons;
//! the samples validate against `PES_V2_Acquit_Autonome_V2.xsd` once their anonymised `CodCol`
//! is given a value the schema admits.

mod common;

use std::path::{Path, PathBuf};

use seing_connectors::Error;
use seing_connectors::helios::{AckDomain, AckSubject, Acquit, parse_acquit};
use time::macros::date;

fn samples(specs: &Path) -> PathBuf {
    specs.join("pesv2/examples/pes_acquit_ko")
}

fn parse(specs: &Path, kind: &str) -> Acquit {
    let name = format!("006111_190130123456-ACK-A3020100_A0000{kind}_KO.xml");
    parse_acquit(&std::fs::read(samples(specs).join(name)).unwrap()).unwrap()
}

#[test]
fn refused_lines_carry_every_reason() {
    let Some(specs) = common::specs() else { return };
    let acquit = parse(&specs, "IDL");
    assert!(!acquit.is_accepted());
    assert_eq!(
        acquit.file_name.as_deref(),
        Some("PesDepense-02-2019-5-11112222333344445")
    );
    assert_eq!(acquit.date, Some(date!(2019 - 01 - 23)));
    assert_eq!(acquit.id_coll.as_deref(), Some("01234567890001"));
    assert_eq!(acquit.elements.len(), 2);
    let pj = &acquit.elements[0];
    assert_eq!(pj.domain, AckDomain::PieceJustificative);
    assert!(pj.accepted);
    assert_eq!(
        pj.subject,
        AckSubject::PieceJustificative("2019EC00087654".into())
    );
    let refused: Vec<_> = acquit.refused().collect();
    assert_eq!(refused.len(), 1);
    let bordereau = refused[0];
    assert_eq!(bordereau.domain, AckDomain::Depense);
    assert_eq!(
        bordereau.subject,
        AckSubject::Bordereau {
            number: Some(5),
            year: Some(2019)
        }
    );
    // Piece 20: lines 1–3; piece 21: lines 1–2; piece 22: line 1.
    let places: Vec<(&str, &str)> = bordereau
        .errors
        .iter()
        .map(|e| (e.piece.as_deref().unwrap(), e.line.as_deref().unwrap()))
        .collect();
    assert_eq!(
        places,
        [
            ("20", "1"),
            ("20", "2"),
            ("20", "3"),
            ("21", "1"),
            ("21", "2"),
            ("22", "1")
        ]
    );
    assert_eq!(bordereau.errors[0].code.as_deref(), Some("ERREUR_AUTRE"));
    assert_eq!(
        bordereau.errors[0].label.as_deref(),
        Some("1971 - Compte fonction présent à tort")
    );
    assert!(
        bordereau.errors[4]
            .label
            .as_deref()
            .unwrap()
            .starts_with("2559 - Le code service")
    );
}

#[test]
fn mixed_acquit_separates_accepted_and_refused_items() {
    let Some(specs) = common::specs() else { return };
    let acquit = parse(&specs, "MIX");
    let states: Vec<(AckDomain, bool)> = acquit
        .elements
        .iter()
        .map(|e| (e.domain, e.accepted))
        .collect();
    assert_eq!(
        states,
        [
            (AckDomain::PieceJustificative, true),
            (AckDomain::Depense, false),
            (AckDomain::Recette, false),
            (AckDomain::PieceJustificative, false)
        ]
    );
    let recette = &acquit.elements[2];
    assert_eq!(recette.errors.len(), 1);
    assert_eq!(recette.errors[0].piece.as_deref(), Some("5432"));
    assert_eq!(recette.errors[0].line, None);
    let duplicate = &acquit.elements[3];
    assert_eq!(
        duplicate.subject,
        AckSubject::PieceJustificative("TI00064567".into())
    );
    assert_eq!(
        duplicate.errors[0].code.as_deref(),
        Some("ERREUR_DOUBLON_PJ")
    );
    assert_eq!(
        duplicate.errors[0].label.as_deref(),
        Some("1984 - L'identifiant unique de la PJ a déjà été intégré dans HELIOS")
    );
    assert_eq!(duplicate.errors[0].piece, None);

    let sen = parse(&specs, "SEN");
    assert_eq!(sen.refused().count(), 1);
    let sdp = parse(&specs, "SDP");
    assert_eq!(sdp.refused().count(), 2);
}

#[test]
fn accepted_acquit_is_accepted() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<n:PES_ACQUIT xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2">
  <Enveloppe><Parametres><Version V="2"/><TypFic V="PESALR1"/><NomFic V="PES-OK"/></Parametres>
    <Emetteur><Sigle V="HELIOS"/></Emetteur><Recepteur><Sigle V="APPLI"/></Recepteur></Enveloppe>
  <EnTetePES><DteStr V="2026-11-29"/><IdPost V="006111"/><IdColl V="21060073000018"/>
    <CodCol V="001"/><CodBud V="01"/></EnTetePES>
  <ACQUIT><EnTeteAcquit><IdVer V="2"/></EnTeteAcquit>
    <ElementACQUIT><DomaineAck V="5"/><EtatAck V="1"/><NumBord V="12"/><ExerciceBord V="2026"/></ElementACQUIT>
  </ACQUIT>
</n:PES_ACQUIT>"#;
    let acquit = parse_acquit(xml.as_bytes()).unwrap();
    assert!(acquit.is_accepted());
    assert_eq!(acquit.refused().count(), 0);
}

#[test]
fn other_documents_are_not_acquits() {
    let wrong_ns = br#"<PES_ACQUIT xmlns="urn:other"><ACQUIT/></PES_ACQUIT>"#;
    assert!(matches!(parse_acquit(wrong_ns), Err(Error::Format(_))));
    let no_state = br#"<n:PES_ACQUIT xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"><ACQUIT><ElementACQUIT><DomaineAck V="5"/></ElementACQUIT></ACQUIT></n:PES_ACQUIT>"#;
    assert!(matches!(parse_acquit(no_state), Err(Error::Format(_))));
}

#[test]
fn samples_validate_against_the_acquit_schema() {
    let Some(specs) = common::specs() else { return };
    if !common::has_xmllint() {
        return;
    }
    let xsd = specs.join("pesv2/schemas_pes.v5.12/PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(samples(&specs)).unwrap() {
        let path = entry.unwrap().path();
        // As published, the samples fail on one thing only: CodCol "000" (anonymised), which
        // the schema's pattern excludes.
        let (ok, output) = common::xmllint(&xsd, &path, None);
        assert!(!ok);
        let errors: Vec<&str> = output.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{output}");
        assert!(errors[0].contains("CodCol"), "{output}");

        let bytes = std::fs::read(&path).unwrap();
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        let fixed = text.replace(r#"<CodCol V="000"/>"#, r#"<CodCol V="001"/>"#);
        let copy = dir.path().join(path.file_name().unwrap());
        std::fs::write(&copy, fixed.chars().map(|c| c as u8).collect::<Vec<u8>>()).unwrap();
        let (ok, output) = common::xmllint(&xsd, &copy, None);
        assert!(ok, "{output}");
        parse_acquit(&std::fs::read(&copy).unwrap()).unwrap();
    }
}
