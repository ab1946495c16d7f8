//! XAdES 1.3.2 end to end: enveloped and detached, B-B and B-T, checked by the oracle (xmlsec1,
//! signxml's XAdESVerifier, openssl ts -verify for the timestamp).

mod xml_support;

use std::path::Path;

use seing_certs_test::TestTsa;
use seing_signer::model::{Document, Level, sign_local};
use seing_signer::verify::{Indication, SubIndication, VerifyOptions};
use seing_signer::xades::format::{Packaging, Xades, XadesRequest};
use seing_signer::xades::verify;
use seing_signer::xades::{ProductionPlace, SignaturePolicy};
use xml_support::*;

const DOC: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- délibération -->\n<deliberation xmlns=\"urn:seing:test\" xmlns:x=\"urn:x\">\n  <titre xml:space=\"preserve\">Budget  primitif &amp; annexes</titre>\n  <x:montant devise=\"EUR\">1500.00</x:montant>\n  <![CDATA[ <brut> ]]>\n</deliberation>\n";

fn request(packaging: Packaging, level: Level, tsa_url: Option<String>) -> XadesRequest {
    XadesRequest {
        packaging,
        level,
        tsa_url,
        role: Some("Maire".into()),
        place: Some(ProductionPlace {
            city: Some("Saint-Étienne".into()),
            postal_code: Some("42000".into()),
            country: Some("France".into()),
        }),
        policy: Some(SignaturePolicy::helios()),
    }
}

/// Runs the oracle's XAdES checks. signxml requires the digitalSignature key usage, which the
/// test PKI gives the seal (`cachet`) and not the élus (nonRepudiation only, as RGS** personal
/// certificates): the oracle-checked signatures use the seal.
fn oracle_xades(file: &Path, data: Option<&Path>, level: Level) {
    let pki = pki();
    let mut args = vec![
        "xades".to_string(),
        file.display().to_string(),
        "--trust".into(),
        pki.root_ca.display().to_string(),
        "--certs".into(),
        pki.cachets_ca.display().to_string(),
    ];
    if let Some(d) = data {
        args.extend(["--data".into(), d.display().to_string()]);
    }
    if level == Level::BT {
        args.extend([
            "--level".into(),
            "B-T".into(),
            "--tsa-trust".into(),
            pki.chain_cachets.display().to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some((ok, out)) = run_oracle(&args) else {
        return;
    };
    assert!(ok, "oracle xades failed:\n{out}");
}

#[test]
fn enveloped_b_b_keeps_the_document_and_validates() {
    let key = software_key("cachet");
    let dir = tempfile::tempdir().unwrap();
    let out = sign_local(
        &Xades,
        &Document::Bytes(DOC.as_bytes().to_vec()),
        &request(Packaging::Enveloped, Level::BB, None),
        key.as_ref(),
    )
    .unwrap();
    assert_eq!(strip_signatures(&out), DOC.as_bytes());
    let path = dir.path().join("enveloped.xml");
    std::fs::write(&path, &out).unwrap();
    oracle_xades(&path, None, Level::BB);

    let report = verify::verify(&out, &trust()).unwrap();
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    assert_eq!(report.signatures[0].level.as_deref(), Some("B-B"));
    let tampered = String::from_utf8(out)
        .unwrap()
        .replace("1500.00", "15000.00");
    let report = verify::verify(tampered.as_bytes(), &trust()).unwrap();
    assert_eq!(report.indication, Indication::TotalFailed);
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::HashFailure)
    );
}

fn trust() -> VerifyOptions {
    let pki = pki();
    VerifyOptions {
        trust_anchors: seing_signer::x509::read_certificates(&pki.root_ca).unwrap(),
        certificates: seing_signer::x509::read_certificates(&pki.cachets_ca).unwrap(),
        ..Default::default()
    }
}

#[test]
fn detached_b_b_over_a_file_validates() {
    let key = software_key("cachet");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("arrete-2026.pdf");
    std::fs::write(&data, b"%PDF-1.4\n% not really a PDF, bytes are bytes\n").unwrap();
    let out = sign_local(
        &Xades,
        &Document::File(data.clone()),
        &request(Packaging::Detached { more: Vec::new() }, Level::BB, None),
        key.as_ref(),
    )
    .unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.contains("URI=\"arrete-2026.pdf\""), "{text}");
    let path = dir.path().join("detached.xml");
    std::fs::write(&path, &out).unwrap();
    oracle_xades(&path, Some(&data), Level::BB);
    let mut options = trust();
    options.detached_data = Some(data.clone());
    let report = verify::verify(&out, &options).unwrap();
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    std::fs::write(&data, b"%PDF-1.4\n% altered\n").unwrap();
    let report = verify::verify(&out, &options).unwrap();
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::HashFailure)
    );
}

#[test]
fn enveloped_b_t_carries_a_signature_timestamp() {
    let pki = pki();
    let tsa = TestTsa::start(pki).expect("test TSA");
    let key = software_key("cachet");
    let dir = tempfile::tempdir().unwrap();
    let out = sign_local(
        &Xades,
        &Document::Bytes(DOC.as_bytes().to_vec()),
        &request(Packaging::Enveloped, Level::BT, Some(tsa.url())),
        key.as_ref(),
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&out).contains("EncapsulatedTimeStamp"));
    let path = dir.path().join("bt.xml");
    std::fs::write(&path, &out).unwrap();
    oracle_xades(&path, None, Level::BT);
    let report = verify::verify(&out, &trust()).unwrap();
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    assert_eq!(report.signatures[0].level.as_deref(), Some("B-T"));
    assert!(report.signatures[0].timestamp_time.is_some());
}

#[test]
fn detached_over_several_files_percent_encodes_names() {
    let key = software_key("elu-p256");
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("arrêté 2026.pdf");
    let annex = dir.path().join("annexe.txt");
    std::fs::write(&main, b"%PDF-1.4\n").unwrap();
    std::fs::write(&annex, b"annexe").unwrap();
    let out = sign_local(
        &Xades,
        &Document::File(main),
        &request(Packaging::Detached { more: vec![annex] }, Level::BB, None),
        key.as_ref(),
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("URI=\"arr%C3%AAt%C3%A9%202026.pdf\""),
        "{text}"
    );
    assert!(text.contains("URI=\"annexe.txt\""), "{text}");
    assert!(text.contains("<xades:MimeType>text/plain</xades:MimeType>"));
    assert!(text.contains("xmldsig-more#ecdsa-sha256"));
}
