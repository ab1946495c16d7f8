//! Drop folders: deposits appear whole and are idempotent, the three kinds of returns (the
//! prefecture's real ARActe, the DGFiP's real refusing PES_Acquit, an ArchiveTransferReply) are
//! recognized in the inbox, unreadable files are reported, and handled returns are moved away.

mod common;

use seing_connectors::Error;
use seing_connectors::dropfolder::{DropFolder, Return};
use seing_connectors::seda::ReplyOutcome;

fn folder(dir: &std::path::Path) -> DropFolder {
    DropFolder {
        outbox: dir.join("sortie"),
        inbox: dir.join("entree"),
    }
}

#[test]
fn deposits_are_whole_idempotent_and_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let drop = folder(dir.path());
    let path = drop.deposit("PES-2026-01.xml", b"<PES_Aller/>").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"<PES_Aller/>");
    // Readable by the program that takes it away, as any file written there.
    common::assert_ordinary_mode(&path);
    // A retried delivery of the same bytes is a no-op.
    assert_eq!(
        drop.deposit("PES-2026-01.xml", b"<PES_Aller/>").unwrap(),
        path
    );
    assert!(matches!(
        drop.deposit("PES-2026-01.xml", b"<other/>"),
        Err(Error::Exists(_))
    ));
    for bad in ["", ".hidden", "../escape.xml", "a/b.xml"] {
        assert!(
            matches!(drop.deposit(bad, b"x"), Err(Error::Format(_))),
            "{bad}"
        );
    }
    // No temporary file is left behind.
    assert_eq!(common::list(&drop.outbox), ["PES-2026-01.xml"]);

    let source = dir.path().join("acte.tar.gz");
    std::fs::write(&source, b"archive").unwrap();
    drop.deposit_file(&source).unwrap();
    assert_eq!(
        common::list(&drop.outbox),
        ["PES-2026-01.xml", "acte.tar.gz"]
    );
}

#[test]
fn returns_of_every_kind_are_recognized_then_moved_away() {
    let Some(specs) = common::specs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let drop = folder(dir.path());
    assert!(drop.returns().unwrap().is_empty(), "no inbox yet: nothing");
    std::fs::create_dir_all(&drop.inbox).unwrap();
    std::fs::copy(
        specs.join("actes/examples/006-210600235-20180522-684-AI-1-2_5279.xml"),
        drop.inbox.join("1-ar.xml"),
    )
    .unwrap();
    std::fs::copy(
        specs.join("pesv2/examples/pes_acquit_ko/006111_190130123456-ACK-A3020100_A0000SEN_KO.xml"),
        drop.inbox.join("2-acquit.xml"),
    )
    .unwrap();
    std::fs::write(
        drop.inbox.join("3-reply.xml"),
        r#"<ArchiveTransferReply xmlns="fr:gouv:culture:archivesdefrance:seda:v2.1">
  <Date>2026-11-30T09:00:00Z</Date><MessageIdentifier>ATR-1</MessageIdentifier><CodeListVersions/>
  <ReplyCode>OK</ReplyCode><MessageRequestIdentifier>seing-42</MessageRequestIdentifier>
  <ArchivalAgency><Identifier>AD35</Identifier></ArchivalAgency>
  <TransferringAgency><Identifier>MAIRIE</Identifier></TransferringAgency>
</ArchiveTransferReply>"#,
    )
    .unwrap();
    std::fs::write(drop.inbox.join("4-garbage.xml"), b"not xml").unwrap();
    std::fs::write(drop.inbox.join(".partial"), b"being written").unwrap();

    let returns = drop.returns().unwrap();
    assert_eq!(returns.len(), 4);
    match &returns[0].parsed {
        Ok(Return::Actes(seing_connectors::actes::ActesReturn::Acknowledged(ar))) => {
            assert_eq!(ar.id_acte, "006-210600235-20180522-684-AI");
        }
        other => panic!("ARActe expected: {other:?}"),
    }
    match &returns[1].parsed {
        Ok(Return::Helios(acquit)) => assert!(!acquit.is_accepted()),
        other => panic!("PES_Acquit expected: {other:?}"),
    }
    match &returns[2].parsed {
        Ok(Return::Seda(reply)) => {
            assert_eq!(reply.outcome, ReplyOutcome::Accepted);
            assert_eq!(reply.message_request_identifier, "seing-42");
        }
        other => panic!("ArchiveTransferReply expected: {other:?}"),
    }
    assert!(returns[3].parsed.is_err());

    for file in &returns {
        drop.done(file).unwrap();
    }
    assert!(drop.returns().unwrap().is_empty());
    assert_eq!(common::list(&drop.inbox.join("traites")).len(), 4);
}
