//! `seing sign --profile pes|xades`, `seing sign-batch --profile pes` (SoftHSM2, one login) and
//! `seing verify` on their outputs, checked by the oracle; bad inputs write nothing.

#[path = "common/resources.rs"]
mod resources;

use std::path::Path;
use std::process::Command;

use resources::{on_ci, pes, resource, specs};
use seing_certs_test::pki::TestPki;

fn oracle(args: &[&str]) {
    let Some(oracle) = resource("SEING_ORACLE", "../../shared/oracle/verify") else {
        return;
    };
    let out = Command::new(oracle).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "oracle {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real sample with its bordereau duplicated `count` times under new Ids, in ISO-8859-1.
fn generated(specs: &Path, count: usize, first: usize) -> Vec<u8> {
    String::from_utf8(pes(specs, count, first))
        .unwrap()
        .replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1)
        .replace("BUDGET DEPARTEMENTAL", "BUDGET DÉPARTEMENTAL")
        .chars()
        .map(|c| c as u8)
        .collect()
}

fn seing(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seing"));
    cmd.args(args).env_remove("SEING_PES_SCHEMAS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn pem_key<'a>(pki: &'a TestPki, who: &str, ca: &'a Path) -> Vec<String> {
    vec![
        "--key-pem".into(),
        pki.key(who).display().to_string(),
        "--cert-pem".into(),
        pki.cert(who).display().to_string(),
        "--chain".into(),
        ca.display().to_string(),
    ]
}

#[test]
fn pes_is_signed_verified_and_bad_inputs_write_nothing() {
    let Some(specs) = specs() else { return };
    let schemas = specs.join("pesv2/schemas_pes.v5.12");
    let pki = TestPki::shared();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pes15.xml");
    std::fs::write(&input, generated(&specs, 15, 0)).unwrap();
    let out = dir.path().join("pes15-signed.xml");
    let mut args: Vec<String> = [
        "sign",
        "--profile",
        "pes",
        "--role",
        "Ordonnateur",
        "--city",
        "Orléans",
        "--postal-code",
        "45000",
        "--country",
        "France",
        "--schemas",
        s(&schemas),
        "--out",
        s(&out),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(pem_key(pki, "elu-rsa2048", &pki.personnes_ca));
    args.push(s(&input).into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, o, e) = seing(&argv, &[]);
    assert_eq!(code, 0, "{o}{e}");
    oracle(&[
        "pes",
        s(&out),
        "--trust",
        s(&pki.root_ca),
        "--certs",
        s(&pki.personnes_ca),
        "--expect-bordereaux",
        "15",
        "--schemas",
        s(&schemas),
    ]);

    let (code, o, e) = seing(
        &[
            "verify",
            "--json",
            "--trust",
            s(&pki.root_ca),
            "--certs",
            s(&pki.personnes_ca),
            s(&out),
        ],
        &[],
    );
    assert_eq!(code, 0, "{o}{e}");
    let report: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(report["indication"], "TOTAL_PASSED");
    assert_eq!(report["signatures"].as_array().unwrap().len(), 15);

    // An amount changed after signing: TOTAL_FAILED / HASH_FAILURE, exit 1.
    let tampered = dir.path().join("tampered.xml");
    let bytes = std::fs::read(&out).unwrap();
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let text = text.replacen("<MtBordHT V=\"3032\"/>", "<MtBordHT V=\"3033\"/>", 1);
    std::fs::write(
        &tampered,
        text.chars().map(|c| c as u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    let (code, o, _) = seing(
        &[
            "verify",
            "--json",
            "--trust",
            s(&pki.root_ca),
            "--certs",
            s(&pki.personnes_ca),
            s(&tampered),
        ],
        &[],
    );
    assert_eq!(code, 1, "{o}");
    assert!(o.contains("HASH_FAILURE"), "{o}");

    // Inputs that must be refused: nothing is written.
    let bad_xsd: Vec<u8> = generated(&specs, 1, 0)
        .iter()
        .map(|&b| char::from(b))
        .collect::<String>()
        .replace("<NbrPce V=\"1\"/>", "<NbrPce V=\"un\"/>")
        .chars()
        .map(|c| c as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("xsd", bad_xsd, "XSD"),
        ("encoding", b"<?xml version=\"1.0\" encoding=\"EBCDIC-CP-FR\"?><PES_Aller/>".to_vec(), "EBCDIC-CP-FR"),
        ("xxe", b"<?xml version=\"1.0\"?><!DOCTYPE PES_Aller [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><PES_Aller>&x;</PES_Aller>".to_vec(), "entit"),
        ("laughs", format!("<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">{}]><l>&a9;</l>", (1..10).map(|i| format!("<!ENTITY a{i} \"{}\">", format!("&a{};", if i == 1 { String::new() } else { (i - 1).to_string() }).repeat(10))).collect::<String>()).into_bytes(), "entit"),
    ];
    for (name, content, expected) in cases {
        let bad = dir.path().join(format!("{name}.xml"));
        std::fs::write(&bad, content).unwrap();
        let target = dir.path().join(format!("{name}-signed.xml"));
        let mut args: Vec<String> = [
            "sign",
            "--profile",
            "pes",
            "--schemas",
            s(&schemas),
            "--out",
            s(&target),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(pem_key(pki, "elu-rsa2048", &pki.personnes_ca));
        args.push(s(&bad).into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, o, e) = seing(&argv, &[]);
        assert_ne!(code, 0, "{name}: {o}{e}");
        assert!(e.contains(expected), "{name}: {e}");
        assert_eq!(
            e.trim().lines().count(),
            1,
            "{name}: one line on stderr: {e}"
        );
        assert!(!target.exists(), "{name}: nothing written");
    }
}

#[test]
fn a_batch_of_fifteen_pes_signs_with_one_softhsm_login() {
    let Some(specs) = specs() else { return };
    if !Path::new("/usr/lib/softhsm/libsofthsm2.so").exists() {
        assert!(!on_ci(), "SoftHSM2 is required when CI=true");
        eprintln!("skipped: SoftHSM2 not installed");
        return;
    }
    let pki = TestPki::shared();
    let dir = tempfile::tempdir().unwrap();
    let token = seing_certs_test::token::create(&dir.path().join("token"), "Mairie", "1234", pki)
        .expect("SoftHSM2 token");
    let mut inputs = Vec::new();
    for i in 0..15 {
        let p = dir.path().join(format!("pes-{i:02}.xml"));
        std::fs::write(&p, generated(&specs, 1, i)).unwrap();
        inputs.push(p.display().to_string());
    }
    let out_dir = dir.path().join("signed");
    let spy_log = dir.path().join("pkcs11-spy.log");
    let spy = Path::new("/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so");
    let (uri, env): (String, Vec<(&str, &Path)>) = if spy.exists() {
        // pkcs11-spy logs every PKCS#11 call of the real module: it lets the test count logins.
        (
            format!(
                "pkcs11:token={};object=elu-rsa2048?module-path={}&pin-value={}",
                token.label,
                spy.display(),
                token.pin
            ),
            vec![
                ("SOFTHSM2_CONF", &token.conf),
                ("PKCS11SPY", &token.module),
                ("PKCS11SPY_OUTPUT", &spy_log),
            ],
        )
    } else {
        (
            token.uri("elu-rsa2048"),
            vec![("SOFTHSM2_CONF", &token.conf)],
        )
    };
    let mut args: Vec<String> = vec![
        "sign-batch".into(),
        "--profile".into(),
        "pes".into(),
        "--key".into(),
        uri,
        "--chain".into(),
        pki.personnes_ca.display().to_string(),
        "--out-dir".into(),
        out_dir.display().to_string(),
    ];
    args.extend(inputs);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, o, e) = seing(&argv, &env);
    assert_eq!(code, 0, "{o}{e}");
    assert_eq!(
        o.lines().filter(|l| l.contains("\"signed\"")).count(),
        15,
        "{o}"
    );
    if spy.exists() {
        let log = std::fs::read_to_string(&spy_log).expect("pkcs11-spy log");
        assert_eq!(log.matches("C_Login").count(), 1, "one login for the batch");
    }
    let first = out_dir.join("pes-00.xml");
    oracle(&[
        "pes",
        s(&first),
        "--trust",
        s(&pki.root_ca),
        "--certs",
        s(&pki.personnes_ca),
        "--expect-bordereaux",
        "1",
    ]);
}

#[test]
fn xades_enveloped_and_detached_from_the_cli_validate() {
    let pki = TestPki::shared();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("acte.xml");
    std::fs::write(&xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<acte xmlns=\"urn:acte\"><objet>Délibération n° 12</objet></acte>\n").unwrap();
    let out = dir.path().join("acte-signed.xml");
    let mut args: Vec<String> = [
        "sign",
        "--profile",
        "xades",
        "--role",
        "Maire",
        "--out",
        s(&out),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(pem_key(pki, "cachet", &pki.cachets_ca));
    args.push(s(&xml).into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, o, e) = seing(&argv, &[]);
    assert_eq!(code, 0, "{o}{e}");
    oracle(&[
        "xades",
        s(&out),
        "--trust",
        s(&pki.root_ca),
        "--certs",
        s(&pki.cachets_ca),
    ]);
    let (code, o, e) = seing(
        &[
            "verify",
            "--trust",
            s(&pki.root_ca),
            "--certs",
            s(&pki.cachets_ca),
            s(&out),
        ],
        &[],
    );
    assert_eq!(code, 0, "{o}{e}");

    let data = dir.path().join("annexe.pdf");
    std::fs::write(&data, b"%PDF-1.4\n").unwrap();
    let sig = dir.path().join("annexe.xades.xml");
    let mut args: Vec<String> = ["sign", "--profile", "xades", "--detached", "--out", s(&sig)]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(pem_key(pki, "cachet", &pki.cachets_ca));
    args.push(s(&data).into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, o, e) = seing(&argv, &[]);
    assert_eq!(code, 0, "{o}{e}");
    oracle(&[
        "xades",
        s(&sig),
        "--data",
        s(&data),
        "--trust",
        s(&pki.root_ca),
        "--certs",
        s(&pki.cachets_ca),
    ]);
    let (code, o, e) = seing(
        &[
            "verify",
            "--data",
            s(&data),
            "--trust",
            s(&pki.root_ca),
            "--certs",
            s(&pki.cachets_ca),
            s(&sig),
        ],
        &[],
    );
    assert_eq!(code, 0, "{o}{e}");
}
