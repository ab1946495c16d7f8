//! PES V2 signing end to end: 15 bordereaux from the real sample, ISO-8859-1, already-signed
//! bordereaux, checked by xmllint (XSD) and the oracle (xmlsec1 per signature, profile rules).

mod xml_support;

use std::path::Path;

use seing_signer::model::BatchStatus;
use seing_signer::pes::{self, PesRequest};
use seing_signer::xades::ProductionPlace;
use xml_support::*;

fn request() -> PesRequest {
    PesRequest {
        role: Some("Ordonnateur".into()),
        place: Some(ProductionPlace {
            city: Some("Orléans".into()),
            postal_code: Some("45000".into()),
            country: Some("France".into()),
        }),
        ..PesRequest::default()
    }
}

/// Runs the oracle's PES checks; `expect` signed bordereaux (0 for a whole-file signature).
fn oracle_pes(file: &Path, expect: usize) {
    let pki = pki();
    let Some(schemas) = pes_schemas() else { return };
    let expect = expect.to_string();
    let Some((ok, out)) = run_oracle(&[
        "pes",
        file.to_str().unwrap(),
        "--trust",
        pki.root_ca.to_str().unwrap(),
        "--certs",
        pki.personnes_ca.to_str().unwrap(),
        "--expect-bordereaux",
        &expect,
        "--schemas",
        schemas.to_str().unwrap(),
    ]) else {
        return;
    };
    assert!(ok, "oracle pes failed:\n{out}");
}

#[test]
fn fifteen_bordereaux_latin1_are_signed_independently_and_validate() {
    let Some(original) = generated_pes(15, true, true) else {
        return;
    };
    let key = software_key("elu-rsa2048");
    let signed = pes::sign_pes(original.clone(), &request(), key.as_ref()).unwrap();
    assert_eq!(signed.items.len(), 15);
    assert!(signed.items.iter().all(|i| i.status == BatchStatus::Signed));
    // Every byte outside the signatures is the original's, encoding declaration included.
    assert_eq!(strip_signatures(&signed.output), original);
    assert!(
        signed
            .output
            .starts_with(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.xml");
    std::fs::write(&path, &signed.output).unwrap();
    oracle_pes(&path, 15);
}

#[test]
fn the_summary_lists_the_bordereaux() {
    let Some(original) = generated_pes(15, true, true) else {
        return;
    };
    let summary = pes::summarize(&original).unwrap();
    assert_eq!(summary.encoding, "ISO-8859-1");
    assert_eq!(summary.bordereaux.len(), 15);
    let b = &summary.bordereaux[3];
    assert_eq!(b.id.as_deref(), Some("BORD003"));
    assert_eq!(b.exercice.as_deref(), Some("2020"));
    assert_eq!(b.number.as_deref(), Some("3539"));
    assert_eq!(b.kind.as_deref(), Some("01"));
    assert_eq!(b.amount.as_deref(), Some("1003.50"));
    assert_eq!((b.declared_pieces, b.pieces), (Some(1), 1));
    assert_eq!(
        summary.budget.as_deref(),
        Some("BUDGET DÉPARTEMENTAL de l'Hérault")
    );
    assert_eq!(summary.pj_count, 1);
}

#[test]
fn ecdsa_keys_sign_with_ecdsa_sha256() {
    let Some(original) = generated_pes(2, false, true) else {
        return;
    };
    let key = software_key("elu-p256");
    let signed = pes::sign_pes(original, &request(), key.as_ref()).unwrap();
    let text = String::from_utf8(signed.output.clone()).unwrap();
    assert!(text.contains("xmldsig-more#ecdsa-sha256"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.xml");
    std::fs::write(&path, &signed.output).unwrap();
    oracle_pes(&path, 2);
}

#[test]
fn already_signed_bordereaux_are_kept_byte_for_byte() {
    let Some(original) = generated_pes(3, false, true) else {
        return;
    };
    let key = software_key("elu-rsa2048");
    let first = pes::sign_pes(original, &request(), key.as_ref())
        .unwrap()
        .output;
    // Drop the signature of the last two bordereaux: bordereau 0 stays signed.
    let text = String::from_utf8(first).unwrap();
    let sig1 = text.find("<ds:Signature ").unwrap();
    let sig2 = sig1 + 1 + text[sig1 + 1..].find("<ds:Signature ").unwrap();
    let kept_signature = text[sig1..text.find("</ds:Signature>").unwrap()].to_string();
    let partially = format!(
        "{}{}",
        &text[..sig2],
        String::from_utf8(strip_signatures(&text.as_bytes()[sig2..])).unwrap()
    );
    let again = pes::sign_pes(partially.clone().into_bytes(), &request(), key.as_ref()).unwrap();
    assert_eq!(again.already_signed, vec!["BORD000".to_string()]);
    assert_eq!(again.items.len(), 2);
    let out = String::from_utf8(again.output.clone()).unwrap();
    assert!(out.contains(&kept_signature));
    assert_eq!(
        strip_signatures(&again.output),
        strip_signatures(partially.as_bytes())
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.xml");
    std::fs::write(&path, &again.output).unwrap();
    oracle_pes(&path, 3);
}

#[test]
fn without_bordereau_ids_the_whole_pes_aller_is_signed() {
    let Some(original) = generated_pes(2, false, false) else {
        return;
    };
    let key = software_key("elu-rsa2048");
    let signed = pes::sign_pes(original, &request(), key.as_ref()).unwrap();
    assert_eq!(signed.items.len(), 1);
    assert_eq!(
        signed.items[0].input,
        "PESALR1_22610001400134_ID2020020200727D013536"
    );
    let text = String::from_utf8(signed.output.clone()).unwrap();
    assert!(text.trim_end().ends_with("</ds:Signature></n:PES_Aller>"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.xml");
    std::fs::write(&path, &signed.output).unwrap();
    oracle_pes(&path, 0);
}

#[test]
fn preflight_accepts_the_generated_file_and_reports_problems() {
    let Some(schemas) = pes_schemas() else { return };
    if !tool("xmllint") {
        return;
    }
    let Some(original) = generated_pes(15, true, true) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.xml");
    std::fs::write(&good, &original).unwrap();
    let report = pes::preflight(&good, &schemas).unwrap();
    assert!(report.signable(), "{:?}", report.problems);
    assert_eq!(report.summary.unwrap().bordereaux.len(), 15);

    let text: String = original.iter().map(|&b| char::from(b)).collect();
    let bad = dir.path().join("bad.xml");
    let invalid = text
        .replace("<TypBord V=\"01\"/>", "<TypBord V=\"01\"/><Intrus/>")
        .replace(
            "<InfoDematerialisee V=\"1\"/>",
            "<InfoDematerialisee V=\"0\"/>",
        );
    std::fs::write(&bad, invalid.chars().map(|c| c as u8).collect::<Vec<u8>>()).unwrap();
    let report = pes::preflight(&bad, &schemas).unwrap();
    assert!(!report.signable());
    assert!(
        report.problems.iter().any(|p| p.starts_with("XSD")),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("InfoDematerialisee")),
        "{:?}",
        report.problems
    );
}

#[test]
fn hostile_or_unknown_inputs_are_refused() {
    let key = software_key("elu-rsa2048");
    let xxe = b"<?xml version=\"1.0\"?><!DOCTYPE n:PES_Aller [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><n:PES_Aller xmlns:n=\"urn:n\" Id=\"P\"><Bordereau Id=\"B\">&x;</Bordereau></n:PES_Aller>";
    let err = pes::sign_pes(xxe.to_vec(), &request(), key.as_ref()).unwrap_err();
    assert!(err.to_string().contains("entit"), "{err}");
    let unknown = b"<?xml version=\"1.0\" encoding=\"KOI8-R\"?><PES_Aller/>";
    let err = pes::sign_pes(unknown.to_vec(), &request(), key.as_ref()).unwrap_err();
    assert!(err.to_string().contains("KOI8-R"), "{err}");
}

fn trust() -> seing_signer::verify::VerifyOptions {
    let pki = pki();
    seing_signer::verify::VerifyOptions {
        trust_anchors: seing_signer::x509::read_certificates(&pki.root_ca).unwrap(),
        certificates: seing_signer::x509::read_certificates(&pki.personnes_ca).unwrap(),
        ..Default::default()
    }
}

#[test]
fn seing_verifies_its_signatures_and_detects_tampering() {
    use seing_signer::verify::{Indication, SubIndication};
    let Some(original) = generated_pes(3, true, true) else {
        return;
    };
    let key = software_key("elu-rsa2048");
    let signed = pes::sign_pes(original, &request(), key.as_ref())
        .unwrap()
        .output;
    let report = pes::verify::verify(&signed, &trust()).unwrap();
    assert_eq!(report.signatures.len(), 3);
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    assert_eq!(report.signatures[1].id, "Bordereau BORD001");
    assert!(report.signatures[0].claimed_signing_time.is_some());

    // An amount changed after signing: that bordereau's digest fails, the others pass.
    let text: String = signed.iter().map(|&b| char::from(b)).collect();
    let tampered = text.replacen("<MtBordHT V=\"1001.50\"/>", "<MtBordHT V=\"9001.50\"/>", 1);
    let tampered: Vec<u8> = tampered.chars().map(|c| c as u8).collect();
    let report = pes::verify::verify(&tampered, &trust()).unwrap();
    assert_eq!(report.indication, Indication::TotalFailed);
    assert_eq!(
        report.signatures[1].sub_indication,
        Some(SubIndication::HashFailure)
    );
    assert_eq!(report.signatures[0].indication, Indication::TotalPassed);

    // A signature moved to another bordereau still verifies cryptographically: the placement
    // rule catches it.
    let first = text.find("<ds:Signature ").unwrap();
    let first_end = text.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let sig = &text[first..first_end];
    let without = format!("{}{}", &text[..first], &text[first_end..]);
    let second_end = without.match_indices("</Bordereau>").nth(1).unwrap().0;
    let second_sig = without[..second_end].rfind("<ds:Signature ").unwrap();
    let moved = format!(
        "{}{}{}",
        &without[..second_sig],
        sig,
        &without[second_sig..]
    );
    let moved: Vec<u8> = moved.chars().map(|c| c as u8).collect();
    let report = pes::verify::verify(&moved, &trust()).unwrap();
    assert_eq!(report.indication, Indication::TotalFailed);
    assert!(
        report
            .signatures
            .iter()
            .any(|s| s.sub_indication == Some(SubIndication::FormatFailure)),
        "{report:#?}"
    );
}

#[test]
fn a_signature_by_another_product_is_read() {
    use seing_signer::verify::SubIndication;
    let Some(specs) = specs_dir() else { return };
    let sample =
        std::fs::read(specs.join("xades/examples/iparapheur_signature_xades_detached.xml"))
            .unwrap();
    let report = seing_signer::xades::verify::verify(&sample, &Default::default()).unwrap();
    assert_eq!(report.signatures.len(), 1);
    let s = &report.signatures[0];
    // The detached data is not in the specs: the value itself must verify, the data is missing.
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::SignedDataNotFound),
        "{s:#?}"
    );
    assert!(
        !s.messages.iter().any(|m| m.contains("valeur de signature")),
        "{s:#?}"
    );
    assert!(s.claimed_signing_time.is_some());
    assert!(s.signer.is_some());
}
