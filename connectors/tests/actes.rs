//! @ctes: archives built here validate against `actesv1_1.xsd` and pass the oracle, the real
//! sample archive reads back, bad input is refused with every problem and writes nothing, and
//! the prefecture's real returns parse.

mod common;

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use seing_connectors::Error;
use seing_connectors::actes::{
    ActeDocument, ActesMetadata, ActesReturn, NatureActe, SizeLimits, TenantClassification,
    parse_return, read_archive, validate, write_package,
};
use time::macros::date;

/// The start of a DER CMS ContentInfo of type signed-data.
const CMS_HEADER: &[u8] = &[
    0x30, 0x82, 0x01, 0x00, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02, 0xA0,
];

fn meta() -> ActesMetadata {
    serde_json::from_value(serde_json::json!({
        "siren": "210600730",
        "departement": "06",
        "arrondissement": 2,
        "trigramme": "SIC",
        "nature": "DE",
        "classification": "7.1",
        "numero_interne": "DEL_2026_042",
        "date_decision": "2026-11-20",
        "objet": "Budget supplémentaire <2026> & \"tarifs\" de l'eau",
        "type_pj": {"budget.xml": "99_BU"},
        "nature_collectivite": "02",
        "email_retour": "actes@mairie-exemple.fr",
        "referent": {"nom": "Service des assemblées", "telephone": "0493000000"}
    }))
    .unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn doc(path: PathBuf) -> ActeDocument {
    ActeDocument {
        path,
        signature: None,
    }
}

fn members(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

#[test]
fn built_archive_validates_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let act = write(dir.path(), "deliberation.pdf", common::PDF);
    // The packer checks only that a .p7s is a CMS SignedData (its header); the real signature
    // round trip is tested through the binary with openssl (api/tests/connectors_cli.rs).
    let sig = write(dir.path(), "deliberation.pdf.p7s", CMS_HEADER);
    let budget = write(dir.path(), "budget.xml", b"<budget/>");
    let plan = write(dir.path(), "plan.PNG", b"\x89PNG fake");
    let valid = validate(
        &meta(),
        &ActeDocument {
            path: act.clone(),
            signature: Some(sig.clone()),
        },
        &[doc(budget), doc(plan)],
        None,
        &SizeLimits::default(),
        date!(2026 - 11 - 29),
    )
    .unwrap();
    let package = write_package(&valid, &out, None).unwrap();
    // Readable by whatever transmits it, as any file written there.
    common::assert_ordinary_mode(&package.path);

    let stem = "006-210600730-20261129-DEL_2026_042-DE-1-1";
    assert_eq!(
        package.path,
        out.join("SIC-EACT--210600730--20261129-1.tar.gz")
    );
    let expected = vec![
        "EACT--210600730--20261129-1.xml".to_owned(),
        format!("{stem}_0.xml"),
        format!("99_DE-{stem}_1.pdf"),
        format!("99_SE-{stem}_2.p7s"),
        format!("99_BU-{stem}_3.xml"),
        format!("99_DE-{stem}_4.png"),
    ];
    assert_eq!(package.members, expected);
    let content = members(&package.path);
    assert_eq!(
        content.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(content[2].1, common::PDF);
    assert_eq!(content[3].1, std::fs::read(&sig).unwrap());

    // A second package the same day takes the next number; nothing else is left in the folder.
    let second = write_package(&valid, &out, None).unwrap();
    assert!(
        second
            .path
            .ends_with("SIC-EACT--210600730--20261129-2.tar.gz")
    );
    assert!(matches!(
        write_package(&valid, &out, Some(1)),
        Err(Error::Exists(_))
    ));
    assert_eq!(common::list(&out).len(), 2);

    let read = read_archive(&package.path).unwrap();
    assert_eq!(read.envelope.siren, "210600730");
    assert_eq!(read.envelope.departement, "006");
    assert_eq!(read.envelope.arrondissement, "2");
    assert_eq!(read.envelope.emails, ["actes@mairie-exemple.fr"]);
    assert_eq!(read.message_name, format!("{stem}_0.xml"));
    assert_eq!(read.acte.nature, NatureActe::Deliberation);
    assert_eq!(read.acte.numero_interne, "DEL_2026_042");
    assert_eq!(read.acte.classification, [7, 1]);
    assert_eq!(
        read.acte.objet,
        "Budget supplémentaire <2026> & \"tarifs\" de l'eau"
    );
    assert_eq!(read.acte.date_decision, date!(2026 - 11 - 20));
    assert_eq!(read.acte.classification_date, date!(2026 - 11 - 20));
    assert_eq!(read.acte.document, expected[2]);
    assert_eq!(read.acte.annexes, expected[3..]);
    assert_eq!(read.name.unwrap().sequence, 1);

    let Some(specs) = common::specs() else { return };
    if common::has_xmllint() {
        let xsd = specs.join("actes/from_SICTIAM_stela/actesv1_1.xsd");
        for (name, bytes) in &content[..2] {
            let path = write(dir.path(), name, bytes);
            let (ok, output) = common::xmllint(&xsd, &path, None);
            assert!(ok, "{name} does not validate: {output}");
        }
    }
    if let Some(oracle) = common::oracle() {
        let (code, output) =
            common::run_oracle(&oracle, &[OsStr::new("actes"), package.path.as_os_str()]);
        assert_eq!(code, 0, "oracle refused the archive:\n{output}");
        assert!(output.contains("PASS actes-xsd"), "{output}");
    }
}

#[test]
fn real_sample_archive_reads_back() {
    let Some(specs) = common::specs() else { return };
    let path = specs.join("actes/examples/SIC-EACT--210600730--20180115-1.tar.gz");
    let archive = read_archive(&path).unwrap();
    let names: Vec<&str> = archive.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "EACT--210600730--20180115-1.xml",
            "006-210600730-20180115-007-AR-1-1_0.xml",
            "CO_DE-006-210600730-20180115-007-AR-1-1_1.jpg"
        ]
    );
    assert_eq!(archive.members[2].size, 37602);
    let name = archive.name.unwrap();
    assert_eq!((name.trigramme.as_str(), name.sequence), ("SIC", 1));
    assert_eq!(archive.envelope.siren, "210600730");
    assert_eq!(archive.envelope.nature_collectivite, "02");
    assert_eq!(archive.envelope.emails, ["dev@sictiam.fr"]);
    assert_eq!(
        archive.message_name,
        "006-210600730-20180115-007-AR-1-1_0.xml"
    );
    assert_eq!(archive.acte.nature, NatureActe::ActeReglementaire);
    assert_eq!(archive.acte.numero_interne, "007");
    assert_eq!(archive.acte.objet, "wolo");
    assert_eq!(archive.acte.classification, [1, 1]);
    assert_eq!(
        archive.acte.document,
        "CO_DE-006-210600730-20180115-007-AR-1-1_1.jpg"
    );
    assert!(archive.acte.annexes.is_empty());
}

#[test]
fn bad_metadata_lists_every_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let act = write(dir.path(), "acte.pdf", common::PDF);
    let mut bad = meta();
    bad.siren = "210600731".into();
    bad.departement = "6".into();
    bad.arrondissement = "12".into();
    bad.trigramme = "S-C".into();
    bad.nature = "9".into();
    bad.classification = "7".into();
    bad.numero_interne = "2026/042".into();
    bad.date_decision = "2026-11-31".into();
    bad.objet = "x".repeat(501);
    bad.email_retour = vec!["pas une adresse".into()];
    bad.type_pj.insert("absent.pdf".into(), "99_DE".into());
    let error = validate(
        &bad,
        &doc(act),
        &[doc(dir.path().join("manquant.pdf"))],
        None,
        &SizeLimits::default(),
        date!(2026 - 11 - 29),
    )
    .unwrap_err();
    let Error::Invalid(problems) = error else {
        panic!("expected Invalid, got {error:?}")
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    for field in [
        "siren",
        "departement",
        "arrondissement",
        "trigramme",
        "nature",
        "classification",
        "numero_interne",
        "date_decision",
        "objet",
        "email_retour",
        "type_pj[absent.pdf]",
        "type_pj[budget.xml]",
        "manquant.pdf",
    ] {
        assert!(
            fields.contains(&field),
            "{field} not reported in {problems:?}"
        );
    }
    assert_eq!(common::list(dir.path()), ["acte.pdf"]);
}

#[test]
fn oversized_document_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let act = write(dir.path(), "acte.pdf", common::PDF);
    let big = write(dir.path(), "annexe.pdf", &vec![b'x'; 4096]);
    let mut m = meta();
    m.type_pj.clear();
    let limits = SizeLimits {
        max_file: 1024,
        max_total: 2048,
    };
    let Err(Error::Invalid(problems)) = validate(
        &m,
        &doc(act),
        &[doc(big)],
        None,
        &limits,
        date!(2026 - 11 - 29),
    ) else {
        panic!("an oversized annex must be refused")
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "annexe.pdf");
    assert!(problems[0].message.contains("4096 octets"), "{problems:?}");
}

#[test]
fn decision_after_transmission_and_wrong_extension_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let act = write(dir.path(), "acte.docx", b"PK");
    let mut m = meta();
    m.type_pj.clear();
    m.date_decision = "2026-12-01".into();
    let Err(Error::Invalid(problems)) = validate(
        &m,
        &doc(act),
        &[],
        None,
        &SizeLimits::default(),
        date!(2026 - 11 - 29),
    ) else {
        panic!("must be refused")
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["date_decision", "acte.docx"], "{problems:?}");
}

#[test]
fn tenant_classification_checks_subjects_and_types() {
    let Some(specs) = common::specs() else { return };
    let bytes = std::fs::read(specs.join("actes/examples/exemple_codes_matieres.xml")).unwrap();
    let classification = TenantClassification::parse(&bytes).unwrap();
    assert_eq!(classification.date, date!(2017 - 12 - 08));
    assert!(classification.knows_subject(&[7, 1, 2]));
    assert!(!classification.knows_subject(&[7, 99]));
    assert_eq!(
        classification.accepts_type_pj(NatureActe::Deliberation, "99_DE"),
        Some(true)
    );

    let dir = tempfile::tempdir().unwrap();
    let act = write(dir.path(), "acte.pdf", common::PDF);
    let budget = write(dir.path(), "budget.xml", b"<budget/>");
    let valid = validate(
        &meta(),
        &doc(act.clone()),
        &[doc(budget.clone())],
        Some(&classification),
        &SizeLimits::default(),
        date!(2026 - 11 - 29),
    );
    // 99_BU is a budget document type, not one of a délibération.
    let Err(Error::Invalid(problems)) = valid else {
        panic!("99_BU must be refused for a délibération")
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "type_pj[budget.xml]");

    let mut m = meta();
    m.type_pj.clear();
    m.classification = "7.99".into();
    let Err(Error::Invalid(problems)) = validate(
        &m,
        &doc(act.clone()),
        &[],
        Some(&classification),
        &SizeLimits::default(),
        date!(2026 - 11 - 29),
    ) else {
        panic!("unknown subject must be refused")
    };
    assert_eq!(problems[0].field, "classification");

    m.classification = "7.1.2".into();
    let valid = validate(
        &m,
        &doc(act),
        &[],
        Some(&classification),
        &SizeLimits::default(),
        date!(2026 - 11 - 29),
    )
    .unwrap();
    assert_eq!(valid.classification_date, date!(2017 - 12 - 08));
}

fn sample(specs: &Path, name: &str) -> ActesReturn {
    parse_return(&std::fs::read(specs.join("actes/examples").join(name)).unwrap()).unwrap()
}

#[test]
fn real_returns_parse() {
    let Some(specs) = common::specs() else { return };
    let ActesReturn::Acknowledged(ar) =
        sample(&specs, "006-210600235-20180522-684-AI-1-2_5279.xml")
    else {
        panic!("ARActe expected")
    };
    assert_eq!(ar.id_acte, "006-210600235-20180522-684-AI");
    assert_eq!(ar.date_reception, date!(2018 - 05 - 28));
    assert_eq!(ar.acte.nature, NatureActe::ActeIndividuel);
    assert_eq!(ar.acte.numero_interne, "684");
    assert_eq!(ar.acte.objet, "Contrat à durée déterminée - Jean Dupont");
    assert_eq!(ar.acte.classification, [4, 2]);
    assert_eq!(ar.classification_date_en_cours, date!(2017 - 04 - 19));

    let ActesReturn::Anomaly(ano) = sample(&specs, "044-214400152----1-3_1.xml") else {
        panic!("AnomalieActe expected")
    };
    assert_eq!(ano.nature, "002");
    assert_eq!(ano.date, date!(2018 - 10 - 12));
    assert!(
        ano.detail
            .as_deref()
            .unwrap()
            .starts_with("ODT-VERIF-01 : Votre acte a été transmis")
    );
    assert_eq!(ano.acte.classification, [1, 1, 1, 1]);
    assert_eq!(ano.acte.annexes.len(), 1);
    assert_eq!(ano.classification_date_en_cours, date!(2018 - 10 - 10));

    let ActesReturn::CancellationAcknowledged(cancel) =
        sample(&specs, "044-214400152-20181106-TEST_DGCL_4-DE-6-2_10.xml")
    else {
        panic!("ARAnnulation expected")
    };
    assert_eq!(cancel.id_acte, "044-214400152-20181106-TEST_DGCL_4-DE");
    assert_eq!(cancel.date_reception, date!(2018 - 11 - 28));

    let ActesReturn::EnvelopeAnomaly(env) = sample(&specs, "ANO_EACT--214400152--20180925-1.xml")
    else {
        panic!("AnomalieEnveloppe expected")
    };
    assert_eq!(env.nature, "999");
    assert_eq!(env.siren.as_deref(), Some("214400152"));
    assert_eq!(env.forms, ["044-214400152-20180905-4365-DE-4365-DE_0.xml"]);

    // The prefecture's envelope is not a return about an act: named, not ignored.
    let other = parse_return(
        &std::fs::read(specs.join("actes/examples/EACT--SPREF0441-214400152-20181012-9.xml"))
            .unwrap(),
    );
    assert!(matches!(other, Err(Error::Format(m)) if m.contains("EnveloppeMISILLCL")));
}

#[test]
fn returns_with_entities_are_refused() {
    let hostile = br#"<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<actes:ARAnnulation xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216"
  actes:IDActe="&x;" actes:DateReception="2018-11-28"/>"#;
    assert!(matches!(parse_return(hostile), Err(Error::Xml(_))));
}

#[test]
fn archives_with_folders_or_missing_documents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, members: &[(&str, &[u8])]| {
        let path = dir.path().join(name);
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        for (member, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, member, *bytes).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    };
    let nested = build(
        "SIC-EACT--210600730--20180115-1.tar.gz",
        &[("sub/x.xml", b"<a/>")],
    );
    assert!(matches!(read_archive(&nested), Err(Error::Format(m)) if m.contains("sub/x.xml")));

    let envelope = br#"<actes:EnveloppeCLMISILL xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216" xmlns:insee="http://xml.insee.fr/schema"><actes:Emetteur><actes:IDCL insee:SIREN="210600730" actes:Departement="006" actes:Arrondissement="2" actes:Nature="02"/></actes:Emetteur><actes:AdressesRetour><actes:Email>a@b.fr</actes:Email></actes:AdressesRetour><actes:FormulairesEnvoyes><actes:Formulaire><actes:NomFichier>m.xml</actes:NomFichier></actes:Formulaire></actes:FormulairesEnvoyes></actes:EnveloppeCLMISILL>"#;
    let message = br#"<actes:Acte xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216" actes:Date="2018-01-15" actes:NumeroInterne="007" actes:CodeNatureActe="2"><actes:CodeMatiere1 actes:CodeMatiere="1"/><actes:CodeMatiere2 actes:CodeMatiere="1"/><actes:Objet>o</actes:Objet><actes:ClassificationDateVersion>2017-04-19</actes:ClassificationDateVersion><actes:Document><actes:NomFichier>absent.pdf</actes:NomFichier></actes:Document><actes:Annexes actes:Nombre="0"/><actes:DocumentPapier/></actes:Acte>"#;
    let incomplete = build(
        "SIC-EACT--210600730--20180115-2.tar.gz",
        &[
            ("EACT--210600730--20180115-2.xml", envelope),
            ("m.xml", message),
        ],
    );
    assert!(matches!(read_archive(&incomplete), Err(Error::Format(m)) if m.contains("absent.pdf")));

    let not_gzip = write(
        dir.path(),
        "SIC-EACT--210600730--20180115-3.tar.gz",
        b"plain text",
    );
    assert!(matches!(read_archive(&not_gzip), Err(Error::Io { .. })));
}

#[test]
fn a_p7s_that_is_not_cms_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let act = write(dir.path(), "acte.pdf", common::PDF);
    let pem = write(dir.path(), "acte.pdf.p7s", b"-----BEGIN PKCS7-----\nMIIB\n");
    let mut m = meta();
    m.type_pj.clear();
    let Err(Error::Invalid(problems)) = validate(
        &m,
        &ActeDocument {
            path: act,
            signature: Some(pem),
        },
        &[],
        None,
        &SizeLimits::default(),
        date!(2026 - 11 - 29),
    ) else {
        panic!("a PEM file is not a DER CMS signature")
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "acte.pdf.p7s");
}
