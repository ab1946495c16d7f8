//! PAdES B-B with software keys on PDFs of every structure: our verifier, pdfsig and pyHanko
//! (through the oracle) agree; encrypted, damaged and no-change-certified PDFs are refused.

mod common;

use std::process::Command;

use common::*;
use lopdf::{Document as Pdf, Object, Stream, dictionary};
use seing_signer::error::Error;
use seing_signer::key::KeySource;
use seing_signer::model::{Document, sign_local};
use seing_signer::pades::{self, Pades, PadesRequest, Stamp};
use seing_signer::verify::{Indication, SubIndication, VerificationReport};

/// A small PDF of `pages` pages written by lopdf, with a classic xref table or xref/object
/// streams.
fn make_pdf(pages: usize, object_streams: bool) -> Vec<u8> {
    let mut doc = Pdf::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let mut kids = Vec::new();
    for i in 0..pages {
        let content = format!(
            "BT /F1 24 Tf 72 720 Td (Arrete municipal page {}) Tj ET",
            i + 1
        );
        let c = doc.add_object(Stream::new(dictionary! {}, content.into_bytes()));
        let page = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            "Contents" => c,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
        });
        kids.push(Object::from(page));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Count" => pages as i64, "Kids" => kids,
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    if object_streams {
        let options = lopdf::SaveOptions::builder()
            .use_object_streams(true)
            .use_xref_streams(true)
            .build();
        doc.save_with_options(&mut out, options).unwrap();
    } else {
        doc.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
        doc.save_to(&mut out).unwrap();
    }
    out
}

fn qpdf(args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    if Command::new("qpdf").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "qpdf missing (required when CI=true)"
        );
        eprintln!("SKIP: qpdf not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (i, o) = (dir.path().join("in.pdf"), dir.path().join("out.pdf"));
    std::fs::write(&i, input).unwrap();
    let status = Command::new("qpdf")
        .args(args)
        .arg(&i)
        .arg(&o)
        .status()
        .unwrap();
    assert!(
        status.success() || status.code() == Some(3),
        "qpdf {args:?}"
    );
    Some(std::fs::read(o).unwrap())
}

fn sign(pdf: &[u8], key: &dyn KeySource, stamp: Option<Stamp>) -> Vec<u8> {
    let request = PadesRequest {
        stamp,
        ..Default::default()
    };
    sign_local(&Pades, &Document::Bytes(pdf.to_vec()), &request, key).unwrap()
}

fn verify(pdf: &[u8]) -> VerificationReport {
    pades::verify(pdf, &trust_root()).unwrap()
}

fn check_everywhere(signed: &[u8], original: &[u8], expected_signatures: usize) {
    assert!(
        signed.starts_with(original),
        "the original bytes must stay in place"
    );
    let report = verify(signed);
    assert_eq!(report.signatures.len(), expected_signatures);
    assert_eq!(
        report.indication,
        Indication::TotalPassed,
        "{:#?}",
        report.signatures
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.pdf");
    std::fs::write(&path, signed).unwrap();
    let n = expected_signatures.to_string();
    oracle_passes(&[
        "pades",
        path.to_str().unwrap(),
        "--trust",
        pki().root_ca.to_str().unwrap(),
        "--certs",
        pki().chain_personnes.to_str().unwrap(),
        "--expect-signatures",
        &n,
    ]);
}

#[test]
fn classic_xref_rsa_invisible_and_ecdsa_visible() {
    let original = make_pdf(2, false);
    let signed = sign(&original, &p12_key("elu-rsa2048"), None);
    check_everywhere(&signed, &original, 1);
    let report = verify(&signed);
    assert_eq!(report.signatures[0].format, "PAdES");
    assert!(report.signatures[0].claimed_signing_time.is_some());

    let stamp = Stamp {
        page: 2,
        x: 50.0,
        y: 50.0,
    };
    let signed = sign(&original, &pem_key("elu-p256"), Some(stamp));
    check_everywhere(&signed, &original, 1);
    // The stamp's text is in the appearance stream ("Sign\351 par" in WinAnsi).
    assert!(
        signed.windows(12).any(|w| w == b"Sign\\351 par"),
        "visible text missing"
    );
}

#[test]
fn xref_streams_object_streams_and_a_second_signature() {
    let original = make_pdf(1, true);
    assert!(
        !original.windows(5).any(|w| w == b"\nxref") && original.windows(5).any(|w| w == b"/XRef"),
        "the test PDF must use xref streams"
    );
    let once = sign(&original, &p12_key("elu-rsa3072"), None);
    check_everywhere(&once, &original, 1);
    let twice = sign(&once, &p12_key("elu-p256"), None);
    check_everywhere(&twice, &once, 2);
}

#[test]
fn linearized_and_previously_updated_files() {
    let original = make_pdf(3, false);
    let Some(linearized) = qpdf(&["--linearize"], &original) else {
        return;
    };
    let signed = sign(&linearized, &p12_key("elu-rsa2048"), None);
    check_everywhere(&signed, &linearized, 1);
    let Some(generated) = qpdf(&["--object-streams=generate"], &original) else {
        return;
    };
    let signed = sign(&generated, &p12_key("elu-rsa2048"), None);
    check_everywhere(&signed, &generated, 1);
}

#[test]
fn encrypted_and_damaged_pdfs_are_refused() {
    let original = make_pdf(1, false);
    let key = p12_key("elu-rsa2048");
    let request = PadesRequest::default();
    let damaged = &original[..original.len() / 2];
    let err = sign_local(&Pades, &Document::Bytes(damaged.to_vec()), &request, &key).unwrap_err();
    assert!(matches!(err, Error::Document(_)), "{err}");
    let err = sign_local(
        &Pades,
        &Document::Bytes(b"not a pdf".to_vec()),
        &request,
        &key,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Document(_)), "{err}");
    let Some(encrypted) = qpdf(&["--encrypt", "user", "owner", "256", "--"], &original) else {
        return;
    };
    let err = sign_local(&Pades, &Document::Bytes(encrypted), &request, &key).unwrap_err();
    assert!(err.to_string().contains("chiffré"), "{err}");
}

/// `pdf` certified by pyHanko (élu RSA key) with DocMDP permission `p` (1: no change allowed,
/// 2: form filling and signatures), or `None` when pyHanko is missing outside CI.
fn certified_by_pyhanko(pdf: &[u8], p: u8) -> Option<Vec<u8>> {
    let probe = Command::new("python3")
        .args(["-c", "import pyhanko.sign"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pyHanko missing (required when CI=true)"
        );
        eprintln!("SKIP: pyHanko not installed");
        return None;
    }
    let script = r#"
import sys
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
key, cert, chain, p, src, dst = sys.argv[1:]
signer = signers.SimpleSigner.load(key, cert, ca_chain_files=(chain,))
meta = signers.PdfSignatureMetadata(
    field_name="Certification",
    certify=True,
    docmdp_permissions=MDPPerm(int(p)),
    subfilter=SigSeedSubFilter.PADES,
)
with open(src, "rb") as f, open(dst, "wb") as out:
    signers.sign_pdf(IncrementalPdfFileWriter(f), meta, signer=signer, output=out)
"#;
    let dir = tempfile::tempdir().unwrap();
    let (i, o) = (dir.path().join("in.pdf"), dir.path().join("out.pdf"));
    std::fs::write(&i, pdf).unwrap();
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(pki().key("elu-rsa2048"))
        .arg(pki().cert("elu-rsa2048"))
        .arg(&pki().chain_personnes)
        .arg(p.to_string())
        .arg(&i)
        .arg(&o)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyHanko certification failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(std::fs::read(o).unwrap())
}

#[test]
fn a_pdf_certified_without_changes_is_refused_one_open_to_signatures_is_signed() {
    let original = make_pdf(1, false);
    let key = p12_key("elu-rsa2048");
    let Some(locked) = certified_by_pyhanko(&original, 1) else {
        return;
    };
    let err = sign_local(
        &Pades,
        &Document::Bytes(locked),
        &PadesRequest::default(),
        &key,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Document(_)), "{err}");
    assert!(err.to_string().contains("DocMDP P=1"), "{err}");
    let open = certified_by_pyhanko(&original, 2).unwrap();
    let signed = sign(&open, &key, None);
    check_everywhere(&signed, &open, 2);
}

#[test]
fn tampering_after_signing_is_detected() {
    let original = make_pdf(1, false);
    let mut signed = sign(&original, &p12_key("elu-rsa2048"), None);
    // Change one byte of the page content (inside the signed range).
    let at = signed.windows(7).position(|w| w == b"Arrete ").unwrap();
    signed[at] = b'B';
    let report = verify(&signed);
    assert_eq!(report.indication, Indication::TotalFailed);
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::HashFailure)
    );
}

#[test]
fn b_t_timestamps_the_signature() {
    let tsa = seing_certs_test::TestTsa::start(pki()).unwrap();
    let original = make_pdf(1, false);
    let request = PadesRequest {
        level: seing_signer::model::Level::BT,
        tsa_url: Some(tsa.url()),
        ..Default::default()
    };
    let signed = sign_local(
        &Pades,
        &Document::Bytes(original.clone()),
        &request,
        &pem_key("elu-p256"),
    )
    .unwrap();
    let report = verify(&signed);
    assert_eq!(report.indication, Indication::TotalPassed, "{report:#?}");
    assert!(report.signatures[0].timestamp_time.is_some());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bt.pdf");
    std::fs::write(&path, &signed).unwrap();
    oracle_passes(&[
        "pades",
        path.to_str().unwrap(),
        "--trust",
        pki().root_ca.to_str().unwrap(),
        "--certs",
        pki().chain_personnes.to_str().unwrap(),
        "--level",
        "B-T",
        // The test TSA's token holds its own certificate only: give its CA with the root.
        "--tsa-trust",
        pki().chain_cachets.to_str().unwrap(),
    ]);
}
