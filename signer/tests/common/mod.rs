//! Helpers shared by the signer's integration tests: the test PKI, the oracle, openssl.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

use seing_certs_test::TestPki;
use seing_signer::key::{KeySource, Secret, software::SoftwareKey};
use seing_signer::verify::VerifyOptions;

/// The shared test PKI.
pub fn pki() -> &'static TestPki {
    TestPki::shared()
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The oracle, or `None` (with a message) when it is missing outside CI.
pub fn oracle() -> Option<PathBuf> {
    let path = std::env::var_os("SEING_ORACLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/oracle/verify"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "oracle {} missing (required when CI=true)",
        path.display()
    );
    eprintln!("SKIP oracle checks: {} not found", path.display());
    None
}

/// Runs the oracle with `args`; panics with its output unless it passes.
pub fn oracle_passes(args: &[&str]) {
    let Some(oracle) = oracle() else { return };
    let out = Command::new(&oracle).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "oracle {args:?} failed:\n{text}");
}

/// A software key from `E.p12`.
pub fn p12_key(entity: &str) -> SoftwareKey {
    SoftwareKey::from_pkcs12_file(
        &pki().p12(entity),
        &Secret::new(TestPki::P12_PASSWORD),
        vec![],
    )
    .unwrap_or_else(|e| panic!("{entity}.p12: {e}"))
}

/// A software key from `E.key.pem` + `E.cert.pem`, with the personnes chain.
pub fn pem_key(entity: &str) -> SoftwareKey {
    let chain = seing_signer::x509::read_certificates(&pki().chain_personnes).unwrap();
    SoftwareKey::from_pem_files(&pki().key(entity), &pki().cert(entity), chain)
        .unwrap_or_else(|e| panic!("{entity} PEM: {e}"))
}

/// Verification options trusting the test root with the intermediates given.
pub fn trust_root() -> VerifyOptions {
    let mut certificates = seing_signer::x509::read_certificates(&pki().chain_personnes).unwrap();
    certificates.extend(seing_signer::x509::read_certificates(&pki().chain_cachets).unwrap());
    VerifyOptions {
        trust_anchors: vec![seing_signer::x509::read_certificate(&pki().root_ca).unwrap()],
        certificates,
        ..Default::default()
    }
}

/// `openssl cms -verify` of a DER signature; true when it verifies.
pub fn openssl_cms_verify(sig: &Path, data: Option<&Path>) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(sig)
        .args(["-CAfile"])
        .arg(&pki().root_ca)
        .args(["-certfile"])
        .arg(&pki().chain_personnes)
        .args(["-purpose", "any", "-out", "/dev/null"]);
    if let Some(d) = data {
        cmd.arg("-content").arg(d);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        eprintln!("openssl: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// Signs one digest with `key` (used to check key sources).
pub fn key_works(key: &dyn KeySource) -> bool {
    let d = seing_signer::digest::DigestAlgorithm::Sha256.digest(b"x");
    let v = key
        .sign_digest(seing_signer::digest::DigestAlgorithm::Sha256, &d)
        .unwrap();
    seing_signer::key::verify_digest_signature(
        key.certificate(),
        seing_signer::digest::DigestAlgorithm::Sha256,
        &d,
        &v,
    )
    .unwrap()
}
