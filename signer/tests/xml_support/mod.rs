//! Helpers shared by the XAdES and PES integration tests: specs, oracle, test keys, fixtures.

#![allow(dead_code)] // each test binary uses its own subset of these helpers

use std::path::{Path, PathBuf};
use std::process::Command;

use seing_certs_test::pki::TestPki;
use seing_signer::key::{self, KeySource, KeySpec};

/// Whether the tests run on CI, where missing tools or specs are failures.
pub fn on_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A resource (specs folder, oracle) that may be missing: skip with a message, fail on CI.
fn require(what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        !on_ci(),
        "{what} not found at {} (required when CI=true)",
        path.display()
    );
    eprintln!("skipped: {what} not found at {}", path.display());
    None
}

/// `$SEING_SPECS_DIR` (default `<workspace>/../shared/specs`).
pub fn specs_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SEING_SPECS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/specs"));
    require("SEING_SPECS_DIR", dir)
}

/// `$SEING_ORACLE` (default `<workspace>/../shared/oracle/verify`).
pub fn oracle() -> Option<PathBuf> {
    let path = std::env::var_os("SEING_ORACLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/oracle/verify"));
    require("SEING_ORACLE", path)
}

/// The PES V2 schemas bundle.
pub fn pes_schemas() -> Option<PathBuf> {
    specs_dir().map(|s| s.join("pesv2/schemas_pes.v5.12"))
}

/// Whether a program runs (`--version`); absent programs skip, except on CI.
pub fn tool(program: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(!on_ci(), "{program} is required when CI=true");
        eprintln!("skipped: {program} is not installed");
    }
    ok
}

/// The shared test PKI.
pub fn pki() -> &'static TestPki {
    TestPki::shared()
}

/// The intermediate CA file of a test PKI entity.
pub fn ca_of(entity: &str) -> PathBuf {
    let pki = pki();
    if matches!(entity, "cachet" | "tsa") {
        pki.cachets_ca.clone()
    } else {
        pki.personnes_ca.clone()
    }
}

/// A software key of the test PKI (`elu-rsa2048`, `elu-p256`, `cachet`, …) with its CA chain.
pub fn software_key(entity: &str) -> Box<dyn KeySource> {
    let pki = pki();
    let chain = seing_signer::x509::read_certificates(&ca_of(entity)).expect("CA");
    key::open(
        &KeySpec::Pem {
            key: pki.key(entity),
            certificate: pki.cert(entity),
        },
        chain,
    )
    .expect("test key opens")
}

/// Runs the oracle; returns (success, output).
pub fn run_oracle(args: &[&str]) -> Option<(bool, String)> {
    let oracle = oracle()?;
    let out = Command::new(oracle)
        .args(args)
        .output()
        .expect("oracle runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

/// A PES_Aller with `count` bordereaux, generated from the real sample by duplicating its
/// Bordereau with new Ids and numbers; `latin1` re-encodes it in ISO-8859-1 with an accented
/// budget label, and `with_ids` false drops the bordereaux' Ids.
pub fn generated_pes(count: usize, latin1: bool, with_ids: bool) -> Option<Vec<u8>> {
    let sample = specs_dir()?.join("pesv2/examples/PESALR1_unsigned.xml");
    let text = std::fs::read_to_string(&sample).expect("sample PES");
    let start = text.find("<Bordereau ").expect("a Bordereau");
    let end = text.find("</Bordereau>").expect("its end") + "</Bordereau>".len();
    let bordereau = &text[start..end];
    let mut all = String::new();
    for i in 0..count {
        let b = bordereau
            .replace(
                "Id=\"ID2020020200727D013536\"",
                &if with_ids {
                    format!("Id=\"BORD{i:03}\"")
                } else {
                    String::new()
                },
            )
            .replace(
                "<IdBord V=\"3536\"/>",
                &format!("<IdBord V=\"{}\"/>", 3536 + i),
            )
            .replace(
                "<MtBordHT V=\"3032\"/>",
                &format!("<MtBordHT V=\"{}.50\"/>", 1000 + i),
            );
        if i > 0 {
            all.push_str("\n    ");
        }
        all.push_str(&b);
    }
    let mut out = format!("{}{}{}", &text[..start], all, &text[end..]);
    if latin1 {
        out = out
            .replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1)
            .replace("BUDGET DEPARTEMENTAL", "BUDGET DÉPARTEMENTAL de l'Hérault");
        return Some(
            out.chars()
                .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
                .collect(),
        );
    }
    Some(out.into_bytes())
}

/// Removes every `<ds:Signature …>…</ds:Signature>` from `signed` (ASCII-compatible encodings).
pub fn strip_signatures(signed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = signed;
    let open = b"<ds:Signature ";
    let close = b"</ds:Signature>";
    while let Some(s) = find(rest, open) {
        out.extend_from_slice(&rest[..s]);
        let e = find(&rest[s..], close).expect("closed signature") + s + close.len();
        rest = &rest[e..];
    }
    out.extend_from_slice(rest);
    out
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
