//! `seing pes check` on PES files generated from the real sample: exit 0 and the bordereaux
//! summary when signable, 1 with the reasons otherwise, a clear refusal for hostile XML.

#[path = "common/resources.rs"]
mod resources;

use std::path::Path;
use std::process::Command;

use resources::{pes, specs};

/// The real sample with its bordereau duplicated `count` times under new Ids.
fn generated(specs: &Path, count: usize) -> String {
    String::from_utf8(pes(specs, count, 0)).unwrap()
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
