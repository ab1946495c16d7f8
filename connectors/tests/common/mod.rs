//! What the integration tests share: where the specs and the oracle are, and xmllint.
//!
//! A test whose specs, oracle or xmllint are missing prints why and skips, unless `CI=true`,
//! where it fails.

#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

fn missing(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is missing and CI=true: failing instead of skipping"
    );
    eprintln!("SKIP: {what} is missing");
}

/// Checks that `path` has the permissions of an ordinary file written in its folder (mode 0666
/// less the umask), as the programs that read deposits need, not a temporary file's 0600.
#[cfg(unix)]
pub fn assert_ordinary_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let reference = path.with_file_name(".mode-reference");
    std::fs::write(&reference, b"").unwrap();
    let expected = mode(&reference);
    std::fs::remove_file(&reference).unwrap();
    assert_eq!(mode(path), expected, "{}", path.display());
}

/// `$SEING_SPECS_DIR` or `<workspace>/../shared/specs`, if present.
pub fn specs() -> Option<PathBuf> {
    let dir = std::env::var_os("SEING_SPECS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/specs"));
    if dir.is_dir() {
        Some(dir)
    } else {
        missing(&format!("the specs folder {}", dir.display()));
        None
    }
}

/// `$SEING_ORACLE` or `<workspace>/../shared/oracle/verify`, if present.
pub fn oracle() -> Option<PathBuf> {
    let path = std::env::var_os("SEING_ORACLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/oracle/verify"));
    if path.is_file() {
        Some(path)
    } else {
        missing(&format!("the oracle {}", path.display()));
        None
    }
}

/// Whether xmllint can be run.
pub fn has_xmllint() -> bool {
    let ok = Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing("xmllint");
    }
    ok
}

/// Runs `xmllint --nonet --noout --schema XSD FILE` (with a catalog if given) and returns
/// (success, output).
pub fn xmllint(xsd: &Path, file: &Path, catalog: Option<&Path>) -> (bool, String) {
    let mut command = Command::new("xmllint");
    command
        .args(["--nonet", "--noout", "--schema"])
        .arg(xsd)
        .arg(file);
    if let Some(c) = catalog {
        command.env("XML_CATALOG_FILES", c);
    }
    let out = command.output().expect("xmllint runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs the oracle with arguments and returns (exit code, output).
pub fn run_oracle(oracle: &Path, args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = Command::new(oracle)
        .args(args)
        .output()
        .expect("oracle runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Checks a SEDA package (`manifest.xml` and its files under `dir`) with xmllint against the
/// SEDA 2.1 schema and with the oracle, each when present.
pub fn assert_valid_seda_package(dir: &Path) {
    let manifest = dir.join("manifest.xml");
    if let (Some(specs), true) = (specs(), has_xmllint()) {
        let seda = specs.join("seda21");
        let (ok, out) = xmllint(
            &seda.join("seda-2.1-main.xsd"),
            &manifest,
            Some(&seda.join("catalog.xml")),
        );
        assert!(ok, "{out}");
    }
    if let Some(oracle) = oracle() {
        let (code, out) = run_oracle(
            &oracle,
            &[
                "seda".as_ref(),
                manifest.as_os_str(),
                "--dir".as_ref(),
                dir.as_os_str(),
            ],
        );
        assert_eq!(code, 0, "{out}");
    }
}

/// Files in a folder (names), sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A small PDF-looking file (the formats only look at its header and bytes).
pub const PDF: &[u8] = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

pub mod archive_system;
pub mod smtp;
