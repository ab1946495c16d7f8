//! SoftHSM2 test tokens checked with pkcs11-tool and openssl.

use std::path::Path;
use std::process::Command;

use seing_certs_test::token::{self, MODULE_PATH, OBJECT_LABELS};
use seing_certs_test::{TestPki, TestToken};

/// Runs a tool with the token's configuration in its environment; returns stdout, panics with
/// stderr on failure.
fn tool(token: &TestToken, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("SOFTHSM2_CONF", &token.conf)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn p11(token: &TestToken, args: &[&str]) -> String {
    let mut all = vec!["--module", MODULE_PATH, "--token-label", &token.label];
    all.extend_from_slice(args);
    tool(token, "pkcs11-tool", &all)
}

/// The `pkcs11-tool --list-objects` blocks, each as (kind line, label, ID, access line).
fn objects(listing: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String, String, String)> = None;
    for line in listing.lines() {
        if !line.starts_with(' ') {
            if let Some(c) = current.take() {
                out.push(c);
            }
            current = Some((
                line.trim().to_owned(),
                String::new(),
                String::new(),
                String::new(),
            ));
        } else if let Some(c) = current.as_mut() {
            let l = line.trim();
            if let Some(v) = l.strip_prefix("label:") {
                c.1 = v.trim().to_owned();
            } else if let Some(v) = l.strip_prefix("ID:") {
                c.2 = v.trim().to_owned();
            } else if let Some(v) = l.strip_prefix("Access:") {
                c.3 = v.trim().to_owned();
            }
        }
    }
    out.extend(current);
    out
}

fn new_token(dir: &Path, label: &str) -> TestToken {
    token::create(dir, label, "1234", TestPki::shared()).expect("token creation")
}

#[test]
fn token_holds_generated_keys_and_their_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let token = new_token(dir.path(), "Mairie de Démo");
    let listing = p11(&token, &["--list-objects", "--login", "--pin", "1234"]);
    let objs = objects(&listing);
    for (label, id) in [("elu-rsa2048", "01"), ("elu-p256", "02"), ("cachet", "03")] {
        let kinds: Vec<_> = objs.iter().filter(|o| o.1 == label).collect();
        for o in &kinds {
            assert_eq!(o.2, id, "{label}: same CKA_ID on every object\n{listing}");
        }
        let private = kinds
            .iter()
            .find(|o| o.0.starts_with("Private Key Object"))
            .unwrap_or_else(|| panic!("{label}: no private key\n{listing}"));
        assert!(private.3.contains("never extractable"), "{listing}");
        assert!(private.3.contains("always sensitive"), "{listing}");
        assert!(
            private.3.contains("local"),
            "generated on the token: {listing}"
        );
        assert!(
            kinds.iter().any(|o| o.0.starts_with("Public Key Object")),
            "{listing}"
        );
        assert!(
            kinds.iter().any(|o| o.0.starts_with("Certificate Object")),
            "{listing}"
        );
        assert_eq!(kinds.len(), 3, "{label}\n{listing}");
    }
    assert_eq!(objs.len(), 9, "{listing}");
    assert_eq!(OBJECT_LABELS.len(), 3);

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(token.json_path()).unwrap()).unwrap();
    assert_eq!(json["label"], "Mairie de Démo");
    assert_eq!(json["objects"][1]["id"], "02");
    assert_eq!(json["objects"][1]["uri"], token.uri("elu-p256"));
    assert_eq!(
        token.uri("elu-p256"),
        "pkcs11:token=Mairie%20de%20D%C3%A9mo;object=elu-p256?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"
    );
}

#[test]
fn certificates_on_the_token_chain_to_the_pki_and_match_signatures() {
    let pki = TestPki::shared();
    let dir = tempfile::tempdir().unwrap();
    let token = new_token(dir.path(), "Signature");
    let data = dir.path().join("data.txt");
    std::fs::write(&data, "Délibération n° 2026-042\n").unwrap();
    let data_s = data.to_string_lossy().into_owned();
    for (label, id, chain) in [
        ("elu-rsa2048", "01", &pki.chain_personnes),
        ("elu-p256", "02", &pki.chain_personnes),
        ("cachet", "03", &pki.chain_cachets),
    ] {
        let cert = token.cert(label);
        let cert_s = cert.to_string_lossy().into_owned();
        let verify = tool(
            &token,
            "openssl",
            &[
                "verify",
                "-CAfile",
                &pki.root_ca.to_string_lossy(),
                "-untrusted",
                &chain.to_string_lossy(),
                &cert_s,
            ],
        );
        assert!(verify.contains(": OK"), "{verify}");

        // The certificate object on the token is the one written next to it.
        let on_token = dir.path().join(format!("{label}.from-token.der"));
        p11(
            &token,
            &[
                "--read-object",
                "--type",
                "cert",
                "--id",
                id,
                "--output-file",
                &on_token.to_string_lossy(),
            ],
        );
        let pem = tool(
            &token,
            "openssl",
            &["x509", "-inform", "DER", "-in", &on_token.to_string_lossy()],
        );
        assert_eq!(pem, std::fs::read_to_string(&cert).unwrap(), "{label}");

        let pubkey = dir.path().join(format!("{label}.pub.pem"));
        std::fs::write(
            &pubkey,
            tool(
                &token,
                "openssl",
                &["x509", "-in", &cert_s, "-noout", "-pubkey"],
            ),
        )
        .unwrap();
        let sig = dir.path().join(format!("{label}.sig"));
        let sig_s = sig.to_string_lossy().into_owned();
        if label == "elu-p256" {
            // SoftHSM2 has no CKM_ECDSA_SHA256: hash here, sign the digest with CKM_ECDSA.
            let digest = dir.path().join("data.sha256");
            tool(
                &token,
                "openssl",
                &[
                    "dgst",
                    "-sha256",
                    "-binary",
                    "-out",
                    &digest.to_string_lossy(),
                    &data_s,
                ],
            );
            p11(
                &token,
                &[
                    "--login",
                    "--pin",
                    "1234",
                    "--sign",
                    "--mechanism",
                    "ECDSA",
                    "--id",
                    id,
                    "--signature-format",
                    "openssl",
                    "--input-file",
                    &digest.to_string_lossy(),
                    "--output-file",
                    &sig_s,
                ],
            );
        } else {
            p11(
                &token,
                &[
                    "--login",
                    "--pin",
                    "1234",
                    "--sign",
                    "--mechanism",
                    "SHA256-RSA-PKCS",
                    "--id",
                    id,
                    "--input-file",
                    &data_s,
                    "--output-file",
                    &sig_s,
                ],
            );
        }
        let ok = tool(
            &token,
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-verify",
                &pubkey.to_string_lossy(),
                "-signature",
                &sig_s,
                &data_s,
            ],
        );
        assert!(ok.contains("Verified OK"), "{label}: {ok}");
        std::fs::write(&data, "altéré").unwrap();
        let tampered = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                &pubkey.to_string_lossy(),
                "-signature",
                &sig_s,
                &data_s,
            ])
            .output()
            .unwrap();
        assert!(
            !tampered.status.success(),
            "{label}: a tampered file must not verify"
        );
        std::fs::write(&data, "Délibération n° 2026-042\n").unwrap();
    }
}

#[test]
fn tokens_are_created_in_parallel_in_their_own_folders() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let tokens: Vec<TestToken> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| s.spawn(move || new_token(d.path(), &format!("Parallele {i}"))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for t in &tokens {
        let slots = tool(
            t,
            "pkcs11-tool",
            &["--module", MODULE_PATH, "--list-token-slots"],
        );
        assert_eq!(
            slots.matches("token label").count(),
            1,
            "one token per folder: {slots}"
        );
        assert!(slots.contains(&t.label), "{slots}");
    }
}

#[test]
fn bad_arguments_are_refused_without_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::shared();
    let err = token::create(dir.path(), "L", "12", pki).unwrap_err();
    assert!(err.to_string().contains("PIN"), "{err}");
    let err = token::create(dir.path(), &"x".repeat(33), "1234", pki).unwrap_err();
    assert!(err.to_string().contains("label"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A failure after the token store was started (no CA files here) leaves nothing behind.
    let empty = tempfile::tempdir().unwrap();
    let broken = TestPki::at(empty.path());
    let err = token::create(dir.path(), "Broken", "1234", &broken).unwrap_err();
    assert!(err.to_string().contains("reading"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let fresh = dir.path().join("new");
    assert!(token::create(&fresh, "Broken", "1234", &broken).is_err());
    assert!(!fresh.exists(), "a folder it created is removed again");
    new_token(dir.path(), "Once");
    let err = token::create(dir.path(), "Twice", "1234", pki).unwrap_err();
    assert!(err.to_string().contains("already"), "{err}");
}

#[test]
fn cli_creates_a_token_and_prints_its_description() {
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("jeton");
    let out = Command::new(env!("CARGO_BIN_EXE_seing-certs-test"))
        .args(["token", "--label", "CLI", "--pin", "0000", "--dir"])
        .arg(&tdir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["objects"].as_array().unwrap().len(), 3);
    assert!(
        tdir.join("pki/root-ca.pem").is_file(),
        "a PKI is generated when --pki is absent"
    );
    let conf = json["conf"].as_str().unwrap();
    let listing = Command::new("pkcs11-tool")
        .args([
            "--module",
            MODULE_PATH,
            "--token-label",
            "CLI",
            "--list-objects",
            "--type",
            "cert",
        ])
        .env("SOFTHSM2_CONF", conf)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert_eq!(
        listing.matches("Certificate Object").count(),
        3,
        "{listing}"
    );
}
