//! The test TSA checked with `openssl ts`, the oracle, and seing's own RFC 3161 client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use seing_certs_test::{TestPki, TestTsa};
use seing_signer::digest::DigestAlgorithm;
use seing_signer::tsp::{self, TspError, TspOptions};

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// POSTs `body` to `url` with `content_type`; returns the HTTP status and body.
fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut resp = agent
        .post(url)
        .header("Content-Type", content_type)
        .send(body)
        .expect("the TSA answers");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_vec().unwrap())
}

/// Makes an `openssl ts -query` for `data` with `hash`, posts it, writes the reply; returns the
/// query and reply paths.
fn query_and_reply(
    tsa: &TestTsa,
    dir: &Path,
    data: &Path,
    hash: &str,
    cert: bool,
) -> (PathBuf, PathBuf) {
    let query = dir.join(format!("q-{hash}-{cert}.tsq"));
    let reply = dir.join(format!("r-{hash}-{cert}.tsr"));
    let (d, q) = (s(data), s(&query));
    let mut args = vec!["ts", "-query", "-data", &d, hash, "-out", &q];
    if cert {
        args.push("-cert");
    }
    let (ok, text) = openssl(&args);
    assert!(ok, "{text}");
    let (status, body) = post(
        &tsa.url(),
        "application/timestamp-query",
        &std::fs::read(&query).unwrap(),
    );
    assert_eq!(status, 200);
    std::fs::write(&reply, body).unwrap();
    (query, reply)
}

fn reply_text(reply: &Path) -> String {
    let (ok, text) = openssl(&["ts", "-reply", "-in", &s(reply), "-text"]);
    assert!(ok, "{text}");
    text
}

fn data_file(dir: &Path) -> PathBuf {
    let data = dir.join("acte.txt");
    std::fs::write(&data, "Arrêté municipal n° 2026-17\n").unwrap();
    data
}

fn ts_verify(pki: &TestPki, reply: &Path, by: &[&str]) -> (bool, String) {
    let mut args = vec!["ts", "-verify", "-in"];
    let r = s(reply);
    args.push(&r);
    args.extend_from_slice(by);
    let (root, chain) = (s(&pki.root_ca), s(&pki.chain_cachets));
    args.extend(["-CAfile", &root, "-untrusted", &chain]);
    openssl(&args)
}

#[test]
fn openssl_verifies_tokens_for_each_sha2_size_and_the_nonce_is_echoed() {
    let pki = TestPki::shared();
    let tsa = TestTsa::start(pki).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    for (hash, name) in [
        ("-sha256", "sha256"),
        ("-sha384", "sha384"),
        ("-sha512", "sha512"),
    ] {
        let (query, reply) = query_and_reply(&tsa, dir.path(), &data, hash, true);
        let text = reply_text(&reply);
        assert!(text.contains("Status: Granted."), "{text}");
        assert!(text.contains(&format!("Hash Algorithm: {name}")), "{text}");
        let (ok, out) = ts_verify(pki, &reply, &["-data", &s(&data)]);
        assert!(ok && out.contains("Verification: OK"), "{name}: {out}");
        // -queryfile makes openssl compare imprint, policy and nonce with the request.
        let (ok, out) = ts_verify(pki, &reply, &["-queryfile", &s(&query)]);
        assert!(ok && out.contains("Verification: OK"), "{name}: {out}");
        let (_, qtext) = openssl(&["ts", "-query", "-in", &s(&query), "-text"]);
        let nonce = qtext
            .lines()
            .find(|l| l.starts_with("Nonce:"))
            .expect("query nonce");
        assert!(text.contains(nonce), "{nonce} echoed in\n{text}");
    }
    // Another file does not match the token.
    let (_, reply) = query_and_reply(&tsa, dir.path(), &data, "-sha256", true);
    std::fs::write(&data, "autre contenu").unwrap();
    let (ok, out) = ts_verify(pki, &reply, &["-data", &s(&data)]);
    assert!(!ok, "{out}");
}

#[test]
fn certificate_is_included_only_when_requested() {
    let pki = TestPki::shared();
    let tsa = TestTsa::start(pki).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    for cert in [true, false] {
        let (_, reply) = query_and_reply(&tsa, dir.path(), &data, "-sha256", cert);
        let token = tsp::parse_response(&std::fs::read(&reply).unwrap()).unwrap();
        assert_eq!(token.tsa_certificate.is_some(), cert);
    }
    let (_, reply) = query_and_reply(&tsa, dir.path(), &data, "-sha256", false);
    let (ok, out) = ts_verify(pki, &reply, &["-data", &s(&data)]);
    assert!(!ok, "no certificate, no -untrusted TSA cert: {out}");
    // Given the TSA certificate out of band, the same token verifies.
    let untrusted = dir.path().join("tsa-and-chain.pem");
    let mut pem = std::fs::read(pki.cert("tsa")).unwrap();
    pem.extend(std::fs::read(&pki.chain_cachets).unwrap());
    std::fs::write(&untrusted, pem).unwrap();
    let (ok, out) = openssl(&[
        "ts",
        "-verify",
        "-in",
        &s(&reply),
        "-data",
        &s(&data),
        "-CAfile",
        &s(&pki.root_ca),
        "-untrusted",
        &s(&untrusted),
    ]);
    assert!(ok && out.contains("Verification: OK"), "{out}");
}

#[test]
fn bad_requests_get_a_rejection_and_the_server_keeps_serving() {
    let pki = TestPki::shared();
    let tsa = TestTsa::start(pki).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());

    let (status, body) = post(
        &tsa.url(),
        "application/timestamp-query",
        b"\x30\x82garbage",
    );
    assert_eq!(status, 200);
    let err = tsp::parse_response(&body).unwrap_err();
    assert!(
        matches!(&err, TspError::Rejected { status: 2, failures, .. } if failures == &["badDataFormat"]),
        "{err}"
    );

    let (_, reply) = query_and_reply(&tsa, dir.path(), &data, "-sha1", true);
    let text = reply_text(&reply);
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(
        text.contains("unrecognized or unsupported algorithm identifier"),
        "{text}"
    );

    let (status, _) = post(&tsa.url(), "text/plain", b"hello");
    assert_eq!(status, 400);

    let (_, reply) = query_and_reply(&tsa, dir.path(), &data, "-sha256", true);
    let (ok, out) = ts_verify(pki, &reply, &["-data", &s(&data)]);
    assert!(ok, "still serving after bad requests: {out}");
}

/// The oracle script: `SEING_ORACLE` (relative paths from the workspace root) or
/// `<workspace>/../shared/oracle/verify`.
fn oracle() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = std::env::var_os("SEING_ORACLE")
        .map(|p| root.join(p))
        .unwrap_or_else(|| root.join("../shared/oracle/verify"));
    if path.is_file() {
        Some(path)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("oracle not found at {} (CI=true)", path.display());
    } else {
        eprintln!(
            "oracle not found at {}: oracle check skipped",
            path.display()
        );
        None
    }
}

#[test]
fn seing_client_gets_checked_tokens_that_the_oracle_accepts() {
    let pki = TestPki::shared();
    let tsa = TestTsa::start(pki).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    let bytes = std::fs::read(&data).unwrap();
    for alg in [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ] {
        let digest = alg.digest(&bytes);
        let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(2);
        let token =
            tsp::request_timestamp(&tsa.url(), alg, &digest, &TspOptions::default()).unwrap();
        assert_eq!(token.digest_algorithm, alg);
        assert_eq!(token.digest, digest);
        assert!(token.gen_time >= before && token.gen_time <= time::OffsetDateTime::now_utc());
        assert!(token.tsa_certificate.is_some());
        assert!(token.info.nonce.is_some());
        let again = tsp::parse_token(&token.der).unwrap();
        assert_eq!(again.serial, token.serial);

        let path = dir.path().join(format!("{alg:?}.tst"));
        std::fs::write(&path, &token.der).unwrap();
        if let Some(oracle) = oracle() {
            let out = Command::new(oracle)
                .args([
                    "tst",
                    &s(&path),
                    "--data",
                    &s(&data),
                    "--tsa-trust",
                    &s(&pki.root_ca),
                ])
                .args(["--certs", &s(&pki.cachets_ca)])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{alg:?}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("PASS tst-openssl"), "{text}");
        }
        // The token is bound to its digest and nonce.
        let other = alg.digest(b"autre");
        assert!(matches!(
            tsp::check_token(&token, alg, &other, None, true),
            Err(TspError::ImprintMismatch)
        ));
        let nonce = der::asn1::Uint::new(&[1, 2, 3]).unwrap();
        assert!(matches!(
            tsp::check_token(&token, alg, &digest, Some(&nonce), true),
            Err(TspError::NonceMismatch)
        ));
    }

    let options = TspOptions {
        policy: Some(const_oid::ObjectIdentifier::new_unwrap("1.2.3.4")),
        ..TspOptions::default()
    };
    let digest = DigestAlgorithm::Sha256.digest(&bytes);
    let err =
        tsp::request_timestamp(&tsa.url(), DigestAlgorithm::Sha256, &digest, &options).unwrap_err();
    assert!(
        matches!(&err, TspError::Rejected { failures, .. } if failures == &["unacceptedPolicy"]),
        "{err}"
    );
    let url = tsa.url();
    drop(tsa);
    let err = tsp::request_timestamp(
        &url,
        DigestAlgorithm::Sha256,
        &digest,
        &TspOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, TspError::Unreachable { .. }),
        "a stopped TSA: {err}"
    );
}

#[test]
fn cli_serves_and_prints_its_address_first() {
    let pki = TestPki::shared();
    let mut child = Command::new(env!("CARGO_BIN_EXE_seing-certs-test"))
        .args(["tsa", "--listen", "127.0.0.1:0", "--pki"])
        .arg(&pki.dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("listening on ").map(str::to_owned);
    let result = url.as_ref().map(|u| {
        let digest = DigestAlgorithm::Sha256.digest(b"x");
        tsp::request_timestamp(u, DigestAlgorithm::Sha256, &digest, &TspOptions::default())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let url = url.unwrap_or_else(|| panic!("first line: {line:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    result.unwrap().unwrap();
}

#[test]
fn every_token_is_strict_der_whatever_its_random_serial() {
    // Random serials with a zero leading byte once produced non-canonical INTEGERs; a few hundred
    // tokens would hit that case with high probability.
    let tsa = TestTsa::start(TestPki::shared()).unwrap();
    let digest = DigestAlgorithm::Sha256.digest(b"serie");
    let mut serials = std::collections::HashSet::new();
    for _ in 0..300 {
        let token = tsp::request_timestamp(
            &tsa.url(),
            DigestAlgorithm::Sha256,
            &digest,
            &TspOptions::default(),
        )
        .unwrap();
        assert_eq!(token.serial.len(), 16);
        serials.insert(token.serial);
    }
    assert_eq!(serials.len(), 300, "serial numbers are unique");
}
