//! `seing pes check` on PES files generated from the real sample: exit 0 and the bordereaux
//! summary when signable, 1 with the reasons otherwise, a clear refusal for hostile XML.

use std::path::PathBuf;
use std::process::Command;

fn specs() -> Option<PathBuf> {
    let dir = std::env::var_os("SEING_SPECS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs"));
    if dir.exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "SEING_SPECS_DIR not found at {} (required when CI=true)",
        dir.display()
    );
    eprintln!("skipped: SEING_SPECS_DIR not found at {}", dir.display());
    None
}

/// The real sample with its bordereau duplicated `count` times under new Ids.
fn generated(specs: &std::path::Path, count: usize) -> String {
    let text = std::fs::read_to_string(specs.join("pesv2/examples/PESALR1_unsigned.xml")).unwrap();
    let start = text.find("<Bordereau ").unwrap();
    let end = text.find("</Bordereau>").unwrap() + "</Bordereau>".len();
    let copies: String = (0..count)
        .map(|i| {
            text[start..end]
                .replace("ID2020020200727D013536\"", &format!("B{i}\""))
                .replace(
                    "<IdBord V=\"3536\"/>",
                    &format!("<IdBord V=\"{}\"/>", 100 + i),
                )
        })
        .collect();
    format!("{}{}{}", &text[..start], copies, &text[end..])
}

fn seing(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(args)
        .env_remove("SEING_PES_SCHEMAS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pes_check_reports_signable_files_and_refuses_bad_ones() {
    let Some(specs) = specs() else { return };
    let schemas = specs.join("pesv2/schemas_pes.v5.12");
    let schemas = schemas.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let good = dir.path().join("good.xml");
    std::fs::write(&good, generated(&specs, 15)).unwrap();
    let (code, out, err) = seing(&["pes", "check", "--schemas", schemas, good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("15 bordereau(x)"), "{out}");
    assert!(out.contains("B14"), "{out}");
    assert!(out.contains("Résultat : signable"), "{out}");

    let (code, out, _) = seing(&[
        "pes",
        "check",
        "--json",
        "--schemas",
        schemas,
        good.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["summary"]["bordereaux"].as_array().unwrap().len(), 15);

    let bad = dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        generated(&specs, 2).replace("<NbrPce V=\"1\"/>", "<NbrPce V=\"x\"/>"),
    )
    .unwrap();
    let (code, out, _) = seing(&["pes", "check", "--schemas", schemas, bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Problème : XSD"), "{out}");

    let xxe = dir.path().join("xxe.xml");
    std::fs::write(
        &xxe,
        "<?xml version=\"1.0\"?><!DOCTYPE PES_Aller [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><PES_Aller>&x;</PES_Aller>",
    )
    .unwrap();
    let (code, out, _) = seing(&["pes", "check", "--schemas", schemas, xxe.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entités"), "{out}");

    let (code, _, err) = seing(&["pes", "check", good.to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(err.contains("SEING_PES_SCHEMAS"), "{err}");
}
