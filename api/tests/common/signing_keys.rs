//! Test resources and the élu's test key for the API tests: where the specs are, PES files
//! made from the real unsigned sample, and signing the items of a two-phase signature batch
//! with a key of the test PKI.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::Encode as _;
use seing_certs_test::pki::TestPki;
use seing_signer::digest::DigestAlgorithm;
use seing_signer::key::software::SoftwareKey;
use seing_signer::key::{KeySource, Secret};
use serde_json::{Value, json};

/// True when the tests run with `CI=true` (a missing prerequisite then fails).
pub fn on_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The path in `var`, else `default` under the crate; `None` (skipped, or a failure on CI) when
/// absent.
pub fn resource(var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default));
    if path.exists() {
        return Some(path);
    }
    assert!(
        !on_ci(),
        "{var} not found at {} (required when CI=true)",
        path.display()
    );
    eprintln!("skipped: {var} not found at {}", path.display());
    None
}

/// The specs folder (`SEING_SPECS_DIR`).
pub fn specs() -> Option<PathBuf> {
    resource("SEING_SPECS_DIR", "../../shared/specs")
}

/// A PES of `count` bordereaux (numbered from `first`) made from the real unsigned sample.
pub fn pes(specs: &Path, count: usize, first: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(specs.join("pesv2/examples/PESALR1_unsigned.xml")).unwrap();
    let start = text.find("<Bordereau ").unwrap();
    let end = text.find("</Bordereau>").unwrap() + "</Bordereau>".len();
    let copies: String = (first..first + count)
        .map(|i| {
            text[start..end]
                .replace("ID2020020200727D013536\"", &format!("B{i}\""))
                .replace(
                    "<IdBord V=\"3536\"/>",
                    &format!("<IdBord V=\"{}\"/>", 100 + i),
                )
        })
        .collect();
    format!("{}{}{}", &text[..start], copies, &text[end..]).into_bytes()
}

/// A certificate file as base64 DER.
pub fn der_b64(path: &Path) -> String {
    let cert = seing_signer::x509::read_certificate(path).unwrap();
    STANDARD.encode(cert.to_der().unwrap())
}

/// The chain of the test PKI's end entity `name`: its certificate, then its CA.
pub fn chain_of(pki: &TestPki, name: &str) -> Value {
    json!([der_b64(&pki.cert(name)), der_b64(&pki.personnes_ca)])
}

/// The PKCS#12 key of the test PKI's end entity `name`.
pub fn software_key(pki: &TestPki, name: &str) -> SoftwareKey {
    SoftwareKey::from_pkcs12_file(
        &pki.p12(name),
        &Secret::new(TestPki::P12_PASSWORD),
        Vec::new(),
    )
    .unwrap()
}

/// Signs every item of a batch with `key`.
pub fn sign_items(batch: &Value, key: &dyn KeySource) -> Vec<Value> {
    batch["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            assert_eq!(item["digest_algorithm"], "sha256");
            let digest = STANDARD.decode(item["data_to_sign"].as_str().unwrap()).unwrap();
            let value = key.sign_digest(DigestAlgorithm::Sha256, &digest).unwrap();
            json!({"item_id": item["item_id"], "signature_value": STANDARD.encode(value.as_bytes())})
        })
        .collect()
}
