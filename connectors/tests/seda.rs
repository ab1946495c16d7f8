//! SEDA 2.1: a dossier's package validates against the official XSD and passes the oracle
//! (digests and sizes of every object), bad input writes nothing, and replies parse.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use seing_connectors::Error;
use seing_connectors::seda::{
    ObjectRole, ReplyOutcome, SedaFile, SedaMetadata, parse_reply, write_package,
};
use sha2::{Digest, Sha512};
use time::macros::datetime;

fn meta() -> SedaMetadata {
    serde_json::from_value(serde_json::json!({
        "archival_agency": "AD06",
        "transferring_agency": "MAIRIE-210600730",
        "originating_agency": "MAIRIE-210600730-DGS",
        "title": "Délibération n° 42 : tarifs <eau> & assainissement",
        "archival_agreement": "CONV-2026-01",
        "description": "Dossier signé et transmis au contrôle de légalité",
        "start_date": "2026-11-02",
        "end_date": "2026-11-29",
        "keywords": ["eau", "tarifs"],
        "appraisal_rule": {"rule": "APP-00010", "final_action": "Keep"},
        "access_rule": {"rule": "ACC-00001", "start_date": "2026-11-29"}
    }))
    .unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn files(dir: &Path) -> Vec<SedaFile> {
    let file = |name: &str, bytes: &[u8], role| SedaFile {
        path: write(dir, name, bytes),
        role,
    };
    vec![
        file("deliberation.pdf", common::PDF, ObjectRole::Document),
        file(
            "deliberation signée.pdf",
            b"%PDF-1.4\nsigned",
            ObjectRole::Signed,
        ),
        file(
            "deliberation.pdf.p7s",
            b"0\x82\x01\x00cms",
            ObjectRole::Signature,
        ),
        file(
            "journal.json",
            br#"[{"action":"sign"}]"#,
            ObjectRole::Journal,
        ),
    ]
}

#[test]
fn package_validates_and_every_digest_matches() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let out = dir.path().join("sip");
    let files = files(&inputs);
    let package = write_package(&meta(), &files, &out, datetime!(2026-11-29 18:00:00 UTC)).unwrap();
    assert_eq!(package.manifest, out.join("manifest.xml"));
    assert_eq!(common::list(&out), ["content", "manifest.xml"]);
    assert_eq!(package.objects.len(), 4);
    for (object, file) in package.objects.iter().zip(&files) {
        let bytes = std::fs::read(&file.path).unwrap();
        assert_eq!(object.sha512, hex::encode(Sha512::digest(&bytes)));
        assert_eq!(object.size, bytes.len() as u64);
    }
    assert_eq!(
        package.objects[1].uri,
        "content/deliberation%20sign%C3%A9e.pdf"
    );
    let formats: Vec<Option<&str>> = package.objects.iter().map(|o| o.format.pronom).collect();
    assert_eq!(
        formats,
        [Some("fmt/276"), Some("fmt/18"), None, Some("fmt/817")]
    );

    let manifest = std::fs::read_to_string(&package.manifest).unwrap();
    assert!(
        manifest.contains(
            "<Title>Délibération n° 42 : tarifs &lt;eau&gt; &amp; assainissement</Title>"
        )
    );
    assert!(manifest.contains("<FinalAction>Keep</FinalAction>"));
    assert!(manifest.contains("<KeywordContent>tarifs</KeywordContent>"));
    assert!(manifest.contains("<Date>2026-11-29T18:00:00Z</Date>"));

    let Some(specs) = common::specs() else { return };
    let seda = specs.join("seda21");
    if common::has_xmllint() {
        let (ok, output) = common::xmllint(
            &seda.join("seda-2.1-main.xsd"),
            &package.manifest,
            Some(&seda.join("catalog.xml")),
        );
        assert!(ok, "manifest does not validate: {output}");
    }
    if let Some(oracle) = common::oracle() {
        let (code, output) = common::run_oracle(
            &oracle,
            &[
                OsStr::new("seda"),
                package.manifest.as_os_str(),
                OsStr::new("--dir"),
                out.as_os_str(),
            ],
        );
        assert_eq!(code, 0, "oracle refused the package:\n{output}");
        assert!(
            output.contains("4 BinaryDataObject(s): 4 digest(s) and 4 size(s)"),
            "{output}"
        );
    }
}

#[test]
fn bad_input_lists_every_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = meta();
    bad.title = "  ".into();
    bad.archival_agency = String::new();
    bad.start_date = Some("2026-12-01".into());
    bad.end_date = Some("29/11/2026".into());
    bad.keywords.push("bip\u{7}".into());
    let mut inputs = files(dir.path());
    inputs.push(SedaFile {
        path: dir.path().join("absent.pdf"),
        role: ObjectRole::Document,
    });
    let out = dir.path().join("sip");
    let Err(Error::Invalid(problems)) =
        write_package(&bad, &inputs, &out, datetime!(2026-11-29 18:00:00 UTC))
    else {
        panic!("must be refused")
    };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "archival_agency",
            "title",
            "keywords[2]",
            "end_date",
            "absent.pdf"
        ],
        "{problems:?}"
    );
    assert!(!out.exists());
    assert!(
        !common::list(dir.path())
            .iter()
            .any(|n| n.starts_with(".seing")),
        "no staging folder left"
    );
}

#[test]
fn non_empty_output_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sip");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("other.txt"), "keep me").unwrap();
    let inputs = files(dir.path());
    let result = write_package(&meta(), &inputs, &out, datetime!(2026-11-29 18:00:00 UTC));
    assert!(matches!(result, Err(Error::Invalid(p)) if p[0].field == "out"));
    assert_eq!(common::list(&out), ["other.txt"]);
}

const REPLY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ArchiveTransferReply xmlns="fr:gouv:culture:archivesdefrance:seda:v2.1">
  <Comment>Transfert refusé</Comment>
  <Date>2026-11-30T09:00:00Z</Date>
  <MessageIdentifier>ATR-0001</MessageIdentifier>
  <CodeListVersions/>
  <ReplyCode>KO</ReplyCode>
  <Operation>
    <Event>
      <EventTypeCode>CHECK_DIGEST</EventTypeCode>
      <EventType>Vérification des empreintes</EventType>
      <EventDateTime>2026-11-30T08:59:00Z</EventDateTime>
      <Outcome>KO</Outcome>
      <OutcomeDetail>CHECK_DIGEST.KO</OutcomeDetail>
      <OutcomeDetailMessage>Empreinte de BDO2 différente</OutcomeDetailMessage>
    </Event>
  </Operation>
  <MessageRequestIdentifier>seing-42</MessageRequestIdentifier>
  <ArchivalAgency><Identifier>AD06</Identifier></ArchivalAgency>
  <TransferringAgency><Identifier>MAIRIE-210600730</Identifier></TransferringAgency>
</ArchiveTransferReply>
"#;

#[test]
fn replies_parse_into_outcomes() {
    let reply = parse_reply(REPLY.as_bytes()).unwrap();
    assert_eq!(reply.outcome, ReplyOutcome::Rejected);
    assert_eq!(reply.message_request_identifier, "seing-42");
    assert_eq!(reply.comments, ["Transfert refusé"]);
    assert_eq!(reply.events.len(), 1);
    assert_eq!(
        reply.events[0].message.as_deref(),
        Some("Empreinte de BDO2 différente")
    );
    assert_eq!(reply.events[0].outcome.as_deref(), Some("KO"));

    let accepted = REPLY.replace("<ReplyCode>KO</ReplyCode>", "<ReplyCode>OK</ReplyCode>");
    assert_eq!(
        parse_reply(accepted.as_bytes()).unwrap().outcome,
        ReplyOutcome::Accepted
    );
    let transfer = REPLY.replace("ArchiveTransferReply", "ArchiveTransfer");
    assert!(matches!(
        parse_reply(transfer.as_bytes()),
        Err(Error::Format(_))
    ));

    // The sample reply itself is a valid SEDA 2.1 message.
    let Some(specs) = common::specs() else { return };
    if common::has_xmllint() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "reply.xml", REPLY.as_bytes());
        let seda = specs.join("seda21");
        let (ok, output) = common::xmllint(
            &seda.join("seda-2.1-main.xsd"),
            &path,
            Some(&seda.join("catalog.xml")),
        );
        assert!(ok, "{output}");
    }
}
