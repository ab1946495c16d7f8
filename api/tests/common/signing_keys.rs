//! The élu's test key for the API tests: certificate chains as the API takes them, and signing
//! the items of a two-phase signature batch with a key of the test PKI.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::Encode as _;
use seing_certs_test::pki::TestPki;
use seing_signer::digest::DigestAlgorithm;
use seing_signer::key::software::SoftwareKey;
use seing_signer::key::{KeySource, Secret};
use serde_json::{Value, json};

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
