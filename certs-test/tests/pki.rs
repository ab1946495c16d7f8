//! The test PKI checked by `openssl` (verify, x509, crl, pkcs12), not by our own code.

use std::path::Path;
use std::process::Command;

use seing_certs_test::TestPki;
use seing_certs_test::pki::{END_ENTITIES, P12_PASSWORD};

/// Runs openssl; returns (success, stdout + stderr).
fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn verify(pki: &TestPki, name: &str, chain: &str, extra: &[&str]) -> (bool, String) {
    let cert = format!("{name}.cert.pem");
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    args.extend(["-CAfile", "root-ca.pem", "-untrusted", chain, &cert]);
    openssl(&args, &pki.dir)
}

#[test]
fn every_valid_chain_verifies() {
    let pki = TestPki::shared();
    for (name, chain) in [
        ("elu-rsa2048", "chain-personnes.pem"),
        ("elu-rsa3072", "chain-personnes.pem"),
        ("elu-p256", "chain-personnes.pem"),
        ("cachet", "chain-cachets.pem"),
        ("tsa", "chain-cachets.pem"),
    ] {
        let (ok, text) = verify(
            pki,
            name,
            chain,
            &[
                "-crl_check",
                "-CRLfile",
                "personnes.crl.pem",
                "-CRLfile",
                "cachets.crl.pem",
            ],
        );
        assert!(ok, "{name}: {text}");
        assert!(text.contains(": OK"), "{name}: {text}");
    }
    let (ok, text) = verify(
        pki,
        "elu-rsa2048",
        "chain-personnes.pem",
        &["-purpose", "smimesign"],
    );
    assert!(ok, "an élu certificate is fit for signing: {text}");
}

#[test]
fn an_intermediate_alone_is_not_a_trust_anchor() {
    let pki = TestPki::shared();
    let (ok, text) = openssl(
        &[
            "verify",
            "-CAfile",
            "personnes-ca.pem",
            "elu-rsa2048.cert.pem",
        ],
        &pki.dir,
    );
    assert!(!ok, "{text}");
}

#[test]
fn expired_signer_is_refused_as_expired() {
    let pki = TestPki::shared();
    let (ok, text) = verify(pki, "expired", "chain-personnes.pem", &[]);
    assert!(!ok);
    assert!(text.contains("certificate has expired"), "{text}");
}

#[test]
fn revoked_signer_is_refused_with_the_crl_only() {
    let pki = TestPki::shared();
    let (ok, text) = verify(pki, "revoked", "chain-personnes.pem", &[]);
    assert!(
        ok,
        "without revocation checking the chain itself is sound: {text}"
    );
    for crl in ["personnes.crl.pem", "personnes.crl.der"] {
        let form = if crl.ends_with(".der") { "DER" } else { "PEM" };
        let (ok, text) = openssl(
            &["crl", "-inform", form, "-in", crl, "-noout", "-text"],
            &pki.dir,
        );
        assert!(ok, "{text}");
        assert!(text.contains("Revoked Certificates:"), "{text}");
    }
    let (ok, text) = verify(
        pki,
        "revoked",
        "chain-personnes.pem",
        &["-crl_check", "-CRLfile", "personnes.crl.pem"],
    );
    assert!(!ok);
    assert!(text.contains("certificate revoked"), "{text}");
}

#[test]
fn no_signing_certificate_is_unfit_for_signatures() {
    let pki = TestPki::shared();
    let (ok, text) = verify(pki, "no-signing", "chain-personnes.pem", &[]);
    assert!(ok, "its chain is valid: {text}");
    let (ok, text) = verify(
        pki,
        "no-signing",
        "chain-personnes.pem",
        &["-purpose", "smimesign"],
    );
    assert!(!ok);
    assert!(text.contains("unsuitable certificate purpose"), "{text}");
}

#[test]
fn certificates_carry_the_rgs_shaped_fields() {
    let pki = TestPki::shared();
    let (ok, text) = openssl(
        &[
            "x509",
            "-in",
            "elu-rsa2048.cert.pem",
            "-noout",
            "-text",
            "-nameopt",
            "utf8,sep_comma_plus",
        ],
        &pki.dir,
    );
    assert!(ok, "{text}");
    for needle in [
        "CN=Jeanne Martin",
        "O=Commune de Démo",
        "serialNumber=ELU-0001",
        "C=FR",
        "X509v3 Key Usage: critical\n                Non Repudiation\n",
        "Policy: 1.2.250.1.999.1.2.3",
        "CA:FALSE",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "Public-Key: (2048 bit)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let (_, text) = openssl(
        &["x509", "-in", "elu-rsa3072.cert.pem", "-noout", "-text"],
        &pki.dir,
    );
    assert!(text.contains("Public-Key: (3072 bit)"), "{text}");
    let (_, text) = openssl(
        &["x509", "-in", "elu-p256.cert.pem", "-noout", "-text"],
        &pki.dir,
    );
    assert!(text.contains("NIST CURVE: P-256"), "{text}");
    let (_, text) = openssl(
        &["x509", "-in", "tsa.cert.pem", "-noout", "-text"],
        &pki.dir,
    );
    assert!(
        text.contains("X509v3 Extended Key Usage: critical\n                Time Stamping"),
        "{text}"
    );
    let (_, text) = openssl(
        &["x509", "-in", "cachet.cert.pem", "-noout", "-text"],
        &pki.dir,
    );
    assert!(
        text.contains("Digital Signature, Non Repudiation"),
        "{text}"
    );
    let (_, text) = openssl(
        &["x509", "-in", "root-ca.pem", "-noout", "-text", "-serial"],
        &pki.dir,
    );
    assert!(text.contains("CA:TRUE"), "{text}");
    let serial = text
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .expect("serial line");
    assert_eq!(serial.len(), 32, "a 16-byte serial: {serial}");
}

#[test]
fn every_p12_opens_with_the_password_and_modern_algorithms() {
    let pki = TestPki::shared();
    let pass = format!("pass:{P12_PASSWORD}");
    for name in END_ENTITIES {
        let p12 = format!("{name}.p12");
        let (ok, text) = openssl(
            &["pkcs12", "-info", "-noout", "-in", &p12, "-passin", &pass],
            &pki.dir,
        );
        assert!(ok, "{name}: {text}");
        assert!(text.contains("MAC: sha256"), "{name}: {text}");
        assert!(
            text.contains("PBES2, PBKDF2, AES-256-CBC"),
            "{name}: {text}"
        );
        assert!(text.contains("PRF hmacWithSHA256"), "{name}: {text}");
        let (ok, text) = openssl(
            &[
                "pkcs12", "-in", &p12, "-passin", &pass, "-nokeys", "-cacerts",
            ],
            &pki.dir,
        );
        assert!(ok, "{name}: {text}");
        assert_eq!(
            text.matches("BEGIN CERTIFICATE").count(),
            2,
            "{name}: CA chain in the p12"
        );
        let (ok, _) = openssl(
            &[
                "pkcs12",
                "-info",
                "-noout",
                "-in",
                &p12,
                "-passin",
                "pass:wrong",
            ],
            &pki.dir,
        );
        assert!(!ok, "{name}: a wrong password must fail");
    }
}

#[test]
fn keys_match_their_certificates() {
    let pki = TestPki::shared();
    for name in END_ENTITIES {
        let (ok, from_key) = openssl(
            &["pkey", "-in", &format!("{name}.key.pem"), "-pubout"],
            &pki.dir,
        );
        assert!(ok, "{from_key}");
        let (ok, from_cert) = openssl(
            &[
                "x509",
                "-in",
                &format!("{name}.cert.pem"),
                "-noout",
                "-pubkey",
            ],
            &pki.dir,
        );
        assert!(ok, "{from_cert}");
        assert_eq!(from_key, from_cert, "{name}");
    }
}

#[test]
fn cli_writes_a_pki_and_reports_bad_output_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let status = Command::new(env!("CARGO_BIN_EXE_seing-certs-test"))
        .args(["pki", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let pki = TestPki::open(&out).unwrap();
    let (ok, text) = verify(&pki, "elu-p256", "chain-personnes.pem", &[]);
    assert!(ok, "{text}");

    let hidden: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "the staging folder is gone");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_seing-certs-test"))
        .args(["pki", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!status.status.success());
    let err = String::from_utf8_lossy(&status.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one readable line: {err}");
    assert!(err.contains("a-file"), "{err}");
}

#[test]
fn the_tls_pair_verifies_for_its_purpose_and_the_server_names_the_loopback() {
    let pki = TestPki::shared();
    for (name, purpose) in [("tls-server", "sslserver"), ("tls-client", "sslclient")] {
        let (ok, text) = verify(pki, name, "chain-cachets.pem", &["-purpose", purpose]);
        assert!(ok && text.contains(": OK"), "{name}: {text}");
    }
    let (ok, text) = verify(
        pki,
        "tls-client",
        "chain-cachets.pem",
        &["-purpose", "sslserver"],
    );
    assert!(!ok, "a client certificate must not serve: {text}");
    let (ok, text) = openssl(
        &[
            "x509",
            "-in",
            "tls-server.cert.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
        &pki.dir,
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    let fullchain = std::fs::read_to_string(pki.fullchain("tls-client")).unwrap();
    let cert = std::fs::read_to_string(pki.cert("tls-client")).unwrap();
    let ca = std::fs::read_to_string(&pki.cachets_ca).unwrap();
    assert_eq!(fullchain, format!("{cert}{ca}"));
}
