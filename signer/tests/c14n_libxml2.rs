//! Canonicalization cross-checked against libxml2 (`xmllint --c14n`, `--c14n11`, `--exc-c14n`,
//! which keep comments) and lxml (without comments) on tricky documents in several encodings.

use std::path::Path;
use std::process::Command;

use seing_signer::xml::c14n::{self, Subtree};
use seing_signer::xml::{C14nMode, encoding, parse};

/// Whether an external tool is present; absent tools skip, except on CI where they must exist.
fn tool_available(program: &str, probe: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is required when CI=true"
        );
        eprintln!("skipped: {program} is not installed");
    }
    ok
}

fn ours(bytes: &[u8], mode: C14nMode) -> Vec<u8> {
    let decoded = encoding::decode(bytes).expect("decode");
    let doc = parse::parse(&decoded.text).expect("parse");
    let subtree = Subtree {
        apex: doc.root(),
        excluded: &[],
        with_comments: mode.with_comments(),
    };
    c14n::canonicalize(&doc, subtree, mode, &[]).expect("c14n")
}

fn xmllint(path: &Path, flag: &str) -> Vec<u8> {
    let out = Command::new("xmllint")
        .args(["--nonet", flag])
        .arg(path)
        .output()
        .expect("xmllint runs");
    assert!(
        out.status.success(),
        "xmllint {flag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn lxml(path: &Path, exclusive: bool) -> Vec<u8> {
    let script = format!(
        "import sys\nfrom lxml import etree\np=etree.XMLParser(resolve_entities=False,no_network=True)\n\
         t=etree.parse(sys.argv[1],p)\nsys.stdout.buffer.write(etree.tostring(t,method='c14n',exclusive={},with_comments=False))",
        if exclusive { "True" } else { "False" }
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "lxml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const TRICKY: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n",
    "<?pi-before data  ?>\n<!-- comment before -->\n",
    "<doc xmlns=\"urn:default\" xmlns:a=\"urn:a\" xmlns:unused=\"urn:unused\" z=\"last\" a:attr=\"1\" b=\"x&#9;y&#10;z\">\r\n",
    "  <a:e1 xmlns:a=\"urn:a\" xml:space=\"preserve\">  text &amp; &lt;tag&gt; &#233;t&#xE9; \"quoted\" </a:e1>\n",
    "  <e2 xmlns=\"\"><inner a:x='&quot;q&quot;' xmlns:a=\"urn:a2\"/></e2>\n",
    "  <![CDATA[ <not-markup> & ]]>\n",
    "  <!-- inner comment -->\n",
    "  <?inner-pi x?>\n",
    "  <e3 xml:lang=\"fr\">Orléans — Île-de-France \u{1F600}</e3>\n",
    "  <e4   c=\"3\"  a=\"1\"\n     b=\"2\"   ></e4>\r\n",
    "</doc>\n<!-- after -->\n"
);

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let latin1_text = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<Ville xmlns:n=\"urn:n\" n:Nom=\"Saint-Étienne\">Orléans, côté est</Ville>\n";
    let latin1: Vec<u8> = latin1_text.chars().map(|c| c as u8).collect();
    let utf16_text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<r xmlns=\"urn:r\"><!-- c --><s a=\"é\">Ünïcödé</s></r>\n";
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(utf16_text.encode_utf16().flat_map(u16::to_le_bytes));
    vec![
        ("tricky-utf8", TRICKY.as_bytes().to_vec()),
        ("latin1", latin1),
        ("utf16le", utf16),
    ]
}

#[test]
fn with_comments_matches_xmllint() {
    if !tool_available("xmllint", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in cases() {
        let path = dir.path().join(format!("{name}.xml"));
        std::fs::write(&path, &bytes).unwrap();
        for (flag, mode) in [
            ("--c14n", C14nMode::InclusiveWithComments),
            ("--c14n11", C14nMode::Inclusive11WithComments),
            ("--exc-c14n", C14nMode::ExclusiveWithComments),
        ] {
            let expected = xmllint(&path, flag);
            let got = ours(&bytes, mode);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "{name} {flag}"
            );
        }
    }
}

#[test]
fn without_comments_matches_lxml() {
    if !tool_available("python3", &["-c", "import lxml"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in cases() {
        let path = dir.path().join(format!("{name}.xml"));
        std::fs::write(&path, &bytes).unwrap();
        for (exclusive, mode) in [(false, C14nMode::Inclusive), (true, C14nMode::Exclusive)] {
            let expected = lxml(&path, exclusive);
            let got = ours(&bytes, mode);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "{name} exclusive={exclusive}"
            );
        }
    }
}
