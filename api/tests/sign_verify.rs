//! `seing sign`, `seing sign-batch` and `seing verify` as a user runs them: SoftHSM2 tokens
//! (RSA and ECDSA) and software keys, CAdES and PAdES, B-B and B-T. Every output written by the
//! binary goes through the oracle (openssl cms/ts, pdfsig, pyHanko) and back through
//! `seing verify`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use seing_certs_test::{TestPki, TestToken, TestTsa};

const PIN: &str = "4321";

fn pki() -> &'static TestPki {
    TestPki::shared()
}

/// One SoftHSM2 token for this test binary; `seing` gets its SOFTHSM2_CONF in its own env.
fn token() -> &'static TestToken {
    static TOKEN: OnceLock<TestToken> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("seing-cli-token-")
            .tempdir()
            .unwrap()
            .keep();
        seing_certs_test::token::create(&dir.join("token"), "Mairie", PIN, pki())
            .unwrap_or_else(|e| panic!("SoftHSM2 token: {e}"))
    })
}

fn seing(args: &[&str]) -> Output {
    // SoftHSM2 keeps the token in files that concurrent processes may catch half-written
    // (CKR_GENERAL_ERROR): the tests of this binary run `seing` one at a time.
    static TOKEN_USE: Mutex<()> = Mutex::new(());
    let _guard = TOKEN_USE.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(args)
        .env("SOFTHSM2_CONF", &token().conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "seing panicked: {stderr}");
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn oracle(args: &[&str]) {
    let path = std::env::var_os("SEING_ORACLE")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/verify")
        });
    if !path.is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "oracle {} missing (required when CI=true)",
            path.display()
        );
        eprintln!("SKIP oracle: {} not found", path.display());
        return;
    }
    let out = Command::new(&path).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "oracle {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn trust_args() -> Vec<String> {
    vec![
        "--trust".into(),
        s(&pki().root_ca).into(),
        "--certs".into(),
        s(&pki().chain_personnes).into(),
        "--certs".into(),
        s(&pki().chain_cachets).into(),
    ]
}

fn verify_code(file: &Path, extra: &[&str]) -> i32 {
    let mut args: Vec<String> = vec!["verify".into()];
    args.extend(trust_args());
    args.extend(extra.iter().map(|x| x.to_string()));
    args.push(s(file).into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = seing(&args);
    out.status.code().unwrap()
}

fn minimal_pdf() -> Vec<u8> {
    // A one-page PDF with a classic xref table, offsets computed here.
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ];
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).into_bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).into_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").into_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .into_bytes(),
    );
    out
}

#[test]
fn cades_with_token_rsa_and_ecdsa_passes_the_oracle_and_seing_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("deliberation.txt");
    std::fs::write(&data, "Délibération 2026-17").unwrap();
    for object in ["elu-rsa2048", "elu-p256"] {
        let out_path = dir.path().join(format!("{object}.p7s"));
        let out = seing(&[
            "sign",
            "--profile",
            "cades",
            "--detached",
            "--key",
            &token().uri(object),
            "--chain",
            s(&pki().chain_personnes),
            "--out",
            s(&out_path),
            s(&data),
        ]);
        assert!(out.status.success(), "{out:?}");
        oracle(&[
            "cades",
            s(&out_path),
            "--data",
            s(&data),
            "--trust",
            s(&pki().root_ca),
            "--certs",
            s(&pki().chain_personnes),
        ]);
        assert_eq!(verify_code(&out_path, &["--data", s(&data)]), 0);
        // Tampered data: TOTAL_FAILED.
        let other = dir.path().join("other.txt");
        std::fs::write(&other, "Délibération 2026-18").unwrap();
        assert_eq!(verify_code(&out_path, &["--data", s(&other)]), 1);
    }
}

#[test]
fn pades_b_t_with_token_and_visible_stamp_passes_pdfsig_and_pyhanko() {
    let tsa = TestTsa::start(pki()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("arrete.pdf");
    std::fs::write(&input, minimal_pdf()).unwrap();
    for (object, visible) in [("elu-rsa2048", None), ("elu-p256", Some("1,40,700"))] {
        let out_path = dir.path().join(format!("{object}.pdf"));
        let mut args = vec!["sign", "--profile", "pades", "--level", "B-T"];
        let url = tsa.url();
        let uri = token().uri(object);
        args.extend([
            "--tsa",
            &url,
            "--key",
            &uri,
            "--chain",
            s(&pki().chain_personnes),
        ]);
        if let Some(v) = visible {
            args.extend(["--visible", v]);
        }
        args.extend(["--out", s(&out_path), s(&input)]);
        let out = seing(&args);
        assert!(out.status.success(), "{out:?}");
        oracle(&[
            "pades",
            s(&out_path),
            "--trust",
            s(&pki().root_ca),
            "--certs",
            s(&pki().chain_personnes),
            "--level",
            "B-T",
            "--tsa-trust",
            s(&pki().chain_cachets),
        ]);
        assert_eq!(verify_code(&out_path, &[]), 0);
        let json = seing(&[
            "verify",
            "--json",
            "--trust",
            s(&pki().root_ca),
            "--certs",
            s(&pki().chain_personnes),
            "--certs",
            s(&pki().chain_cachets),
            s(&out_path),
        ]);
        let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(report["indication"], "TOTAL_PASSED");
        assert_eq!(report["signatures"][0]["level"], "B-T");
        assert!(report["signatures"][0]["timestamp_time"].is_string());
    }
}

#[test]
fn software_keys_and_a_batch_with_one_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for i in 0..3 {
        let p = dir.path().join(format!("acte{i}.pdf"));
        std::fs::write(&p, minimal_pdf()).unwrap();
        inputs.push(p);
    }
    let broken = dir.path().join("broken.pdf");
    std::fs::write(&broken, b"%PDF-1.7\nthis is not a pdf\n").unwrap();
    inputs.insert(1, broken.clone());
    let out_dir = dir.path().join("signed");
    let p12 = pki().p12("elu-rsa2048");
    let mut args = vec![
        "sign-batch",
        "--profile",
        "pades",
        "--p12",
        s(&p12),
        "--password",
        TestPki::P12_PASSWORD,
        "--out-dir",
        s(&out_dir),
    ];
    args.extend(inputs.iter().map(|p| s(p)));
    let out = seing(&args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["signed", "failed", "signed", "signed"]);
    assert!(lines[1]["error"].as_str().unwrap().contains("PDF"));
    assert!(
        !out_dir.join("broken.pdf").exists(),
        "no output for a failed input"
    );
    for l in [&lines[0], &lines[2], &lines[3]] {
        let signed = PathBuf::from(l["output"].as_str().unwrap());
        oracle(&[
            "pades",
            s(&signed),
            "--trust",
            s(&pki().root_ca),
            "--certs",
            s(&pki().chain_personnes),
        ]);
    }

    // PEM key, enveloping CAdES.
    let env = dir.path().join("acte.p7m");
    let out = seing(&[
        "sign",
        "--profile",
        "cades",
        "--key-pem",
        s(&pki().key("elu-p256")),
        "--cert-pem",
        s(&pki().cert("elu-p256")),
        "--chain",
        s(&pki().chain_personnes),
        "--out",
        s(&env),
        s(&inputs[0]),
    ]);
    assert!(out.status.success(), "{out:?}");
    oracle(&[
        "cades",
        s(&env),
        "--trust",
        s(&pki().root_ca),
        "--certs",
        s(&pki().chain_personnes),
    ]);
    assert_eq!(verify_code(&env, &[]), 0);
    // A wrong trust anchor: INDETERMINATE (exit 2).
    let out = seing(&["verify", "--trust", s(&pki().cachets_ca), s(&env)]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn errors_are_one_line_without_secrets_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.pdf");
    std::fs::write(&input, minimal_pdf()).unwrap();
    let out_path = dir.path().join("out.pdf");

    // Wrong PIN.
    let uri = token().uri("elu-rsa2048").replace(PIN, "0000");
    let out = seing(&[
        "sign",
        "--profile",
        "pades",
        "--key",
        &uri,
        "--out",
        s(&out_path),
        s(&input),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PIN"), "{err}");
    assert!(!err.contains("0000"), "the PIN leaked: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out_path.exists());

    // Missing object, module that does not load.
    let uri = token()
        .uri("elu-rsa2048")
        .replace("object=elu-rsa2048", "object=absent");
    let out = seing(&[
        "sign",
        "--profile",
        "pades",
        "--key",
        &uri,
        "--out",
        s(&out_path),
        s(&input),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent"));
    let uri = format!(
        "pkcs11:object=x?module-path={}&pin-value=1",
        s(&dir.path().join("nope.so"))
    );
    let out = seing(&[
        "sign",
        "--profile",
        "pades",
        "--key",
        &uri,
        "--out",
        s(&out_path),
        s(&input),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.so"));

    // Encrypted PDF (qpdf), damaged PDF.
    let damaged = dir.path().join("damaged.pdf");
    std::fs::write(&damaged, &minimal_pdf()[..60]).unwrap();
    let mut bad = vec![damaged];
    let encrypted = dir.path().join("encrypted.pdf");
    if Command::new("qpdf")
        .args(["--encrypt", "u", "o", "256", "--"])
        .arg(&input)
        .arg(&encrypted)
        .status()
        .is_ok_and(|s| s.success())
    {
        bad.push(encrypted);
    } else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "qpdf missing");
    }
    for file in bad {
        let out = seing(&[
            "sign",
            "--profile",
            "pades",
            "--p12",
            s(&pki().p12("elu-rsa2048")),
            "--password",
            TestPki::P12_PASSWORD,
            "--out",
            s(&out_path),
            s(&file),
        ]);
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim().lines().count(),
            1
        );
        assert!(!out_path.exists(), "no output for {}", file.display());
    }

    // Verify: a missing file is an input error (3), and so is a usage error.
    assert_eq!(verify_code(&input.with_extension("missing"), &[]), 3);
    assert_eq!(
        seing(&["verify", "--no-such-option"]).status.code(),
        Some(3)
    );
}
