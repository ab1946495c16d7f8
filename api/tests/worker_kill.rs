//! The outbox's crash guarantee with real processes, on SQLite and on PostgreSQL: a `seing worker`
//! is killed (SIGKILL) while the outside system, which has already taken what was sent, holds
//! its answer; a second `seing worker` takes the job again once the lease has run out.
//! - Actes and Hélios: the S²LOW double ends with exactly one transaction (the act by its
//!   numéro interne, the PES by its SHA-1); the PES, whose transaction number S²LOW cannot
//!   give for a hash, is followed to its acquit once an administrator has given it.
//! - Archives by HTTP: the archive system answers the repeated post `409` and keeps one
//!   package, valid SEDA 2.1; its accepting reply is then read back.
//! - Mail: the recipient gets the mail twice with the same `Message-ID`; only the newest link
//!   works (its opening is the timestamped receipt), the older one is unknown.
//!
//! Each time the job is done at its second attempt with one journal entry, and the dossier moves
//! on as if nothing had happened.

#[path = "common/app.rs"]
mod app;
#[path = "../../engine/tests/common/mod.rs"]
mod common;
#[path = "../../connectors/tests/common/mod.rs"]
mod connectors_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Harness, World, doc, meta, signed, world};
use connectors_common::archive_system::{self, ArchiveSystem, SAE_TOKEN, transfer_reply};
use connectors_common::smtp::{self, Smtp, notification_link};
use seing_certs_test::pki::TestPki;
use seing_certs_test::tsa::TestTsa;
use seing_connectors::recovery;
use seing_connectors::settings::store_settings;
use seing_engine::ids::DossierId;
use seing_engine::journal::JournalEntry;
use seing_engine::metadata::{MetaValue, Metadata};
use seing_engine::model::{ActionInput, SignedOutput};
use seing_engine::outbox::{Job, JobKind, JobStatus};
use seing_engine::workflow::DossierState;
use seing_s2low_double::{Fault, Options, S2lowDouble};
use serde_json::json;
use sha1::{Digest, Sha1};

const SIREN: &str = "213500002";
const SIGNED_ACT: &[u8] = b"%PDF-1.7 deliberation signee\n%%EOF\n";
const SIGNED_PES: &[u8] = b"<PES_Aller><!-- signe --></PES_Aller>";
const RECIPIENT: &str = "offres@entreprise-dupont.fr";

/// A `seing worker` process, killed when dropped; its log goes to a file (a pipe nobody reads
/// could fill up and block it).
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(h: &Harness, log: PathBuf) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_seing"))
            .arg("worker")
            .arg("--data-dir")
            .arg(h.data_dir())
            .args(["--database-url", &h.database_url()])
            .args(["--worker-poll-ms", "50", "--worker-lease-ms", "1500"])
            .args(["--worker-retry-base-ms", "200"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no handler runs, nothing is recorded after the send.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to 60 s for `done`, failing with the worker's log.
async fn until<F: Future<Output = bool>>(what: &str, worker: &Worker, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 60 s; worker log:\n{}",
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn state(h: &Harness, w: &World, id: DossierId) -> DossierState {
    h.engine.dossier(w.admin, id).await.unwrap().state
}

/// The dossier's job of `kind`.
async fn job(h: &Harness, w: &World, id: DossierId, kind: JobKind) -> Job {
    h.engine
        .dossier_jobs(w.admin.tenant, id)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.kind == kind)
        .unwrap_or_else(|| panic!("the {kind:?} job is queued"))
}

/// Archive settings for a drop folder under `root`.
fn drop_folder_archive(root: &Path) -> serde_json::Value {
    json!({
        "drop_folder": {"outbox": root.join("sae/sortie"), "inbox": root.join("sae/entree")},
        "archival_agency": "AD35", "transferring_agency": "MAIRIE-213500002"
    })
}

/// Stores connector settings: both channels through the double, archives to a drop folder.
async fn settings(h: &Harness, w: &World, double: &S2lowDouble, root: &Path) {
    let s2low = double.transport();
    store(
        h,
        w,
        json!({
            "actes": {"transport": s2low, "arrondissement": "1",
                      "nature_collectivite": "32", "email_retour": ["actes@mairie-demo.fr"]},
            "helios": {"transport": s2low},
            "archive": drop_folder_archive(root)
        }),
    )
    .await;
}

/// Stores the tenant's connector settings.
async fn store(h: &Harness, w: &World, settings: serde_json::Value) {
    store_settings(
        &h.engine,
        w.admin.tenant,
        &settings.to_string(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
}

/// A dossier of `circuit` visaed by its emitter and signed by the mayor (`signed` recorded as
/// the signed version): its first connector job is queued.
async fn signed_dossier(
    h: &Harness,
    w: &World,
    circuit: &str,
    (emitter, login): (&str, &str),
    main: (&str, &[u8]),
    metadata: &[(&str, &str)],
    sign_metadata: &[(&str, &str)],
) -> DossierId {
    let text = |pairs: &[(&str, &str)]| {
        meta(
            &pairs
                .iter()
                .map(|(k, v)| (*k, MetaValue::Text((*v).to_owned())))
                .collect::<Vec<_>>(),
        )
    };
    let mut new = w.new_dossier(circuit, emitter);
    new.main = doc(main.0, main.1);
    new.annexes = vec![doc("annexe.pdf", b"%PDF-1.7 annexe\n%%EOF\n")];
    new.metadata = text(metadata);
    // The signer that `marches-notification` has chosen at creation; other circuits name theirs.
    new.chosen_desks = [("signataire".to_owned(), w.desks["maire"])].into();
    let d = h.engine.create_dossier(w.users[login], new).await.unwrap();
    h.engine.submit(w.users[login], d.id, None).await.unwrap();
    h.engine
        .visa(w.users[login], d.id, ActionInput::default())
        .await
        .unwrap();
    let signed = match circuit {
        "pes-bordereaux" => SIGNED_PES,
        _ => SIGNED_ACT,
    };
    let input = ActionInput {
        metadata: text(sign_metadata),
        ..ActionInput::default()
    };
    h.engine
        .sign(
            w.users["maire"],
            d.id,
            input,
            SignedOutput {
                documents: vec![doc(main.0, signed)],
                signatures: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(state(h, w, d.id).await, DossierState::Finished);
    d.id
}

/// Runs the first worker into the send of the dossier's `kind` job, until the outside system,
/// which took it, holds its answer (`held`); kills the worker, lets the answer go (`release`)
/// and checks that nothing was recorded: the dossier has not moved, the job is still reserved
/// by the dead worker.
async fn kill_mid_send(
    (h, w, logs): (&Harness, &World, &Path),
    id: DossierId,
    kind: JobKind,
    held: impl Fn() -> bool,
    release: impl FnOnce(),
) {
    let before = state(h, w, id).await;
    let first = Worker::start(h, logs.join("worker-1.log"));
    let held = &held;
    until(
        "the outside system holding its answer",
        &first,
        || async move { held() },
    )
    .await;
    first.kill();
    release();
    assert_eq!(state(h, w, id).await, before);
    let job = job(h, w, id, kind).await;
    assert_eq!((job.status, job.attempts), (JobStatus::Running, 1));
}

/// What the second worker must leave: the dossier's `kind` job done at its second attempt, one
/// `action` entry in the journal naming `reference`.
async fn delivered_once(
    h: &Harness,
    w: &World,
    id: DossierId,
    (kind, action): (JobKind, &str),
    reference: &str,
) {
    let job = job(h, w, id, kind).await;
    assert_eq!((job.status, job.attempts), (JobStatus::Done, 2), "{job:?}");
    let entry = only_entry(h, w, id, action).await;
    assert!(entry.detail.contains(reference), "{}", entry.detail);
}

/// The dossier's one journal entry of `action` (there must be exactly one).
async fn only_entry(h: &Harness, w: &World, id: DossierId, action: &str) -> JournalEntry {
    let journal = h
        .engine
        .connector_journal(w.admin.tenant, id)
        .await
        .unwrap();
    let mut entries: Vec<_> = journal.iter().filter(|e| e.action == action).collect();
    assert_eq!(entries.len(), 1, "{journal:?}");
    entries.remove(0).clone()
}

async fn actes_killed_mid_send(h: &Harness) {
    let w = &world(&h.engine, SIREN).await;
    let logs = tempfile::tempdir().unwrap();
    let double = S2lowDouble::start(Options::default());
    settings(h, w, &double, logs.path()).await;
    let id = signed_dossier(
        h,
        w,
        "actes-deliberation",
        ("dgs", "dgs"),
        ("deliberation.pdf", b"%PDF-1.7 deliberation\n%%EOF\n"),
        &[
            ("nature", "DE"),
            ("classification", "7.1"),
            ("date_decision", "2026-11-20"),
            ("objet", "Tarifs de l'eau"),
        ],
        &[("numero_acte", "DEL_2026_042")],
    )
    .await;
    double.inject("actes_transac_create", Fault::HoldAfterProcessing);
    let held = || double.held() == 1;
    kill_mid_send((h, w, logs.path()), id, JobKind::Transmission, held, || {
        double.release()
    })
    .await;
    assert_eq!(double.actes().len(), 1);

    // The second worker: S²LOW refuses the repeated numéro interne, the first transaction is
    // found again by it and followed to its ARActe; then the archive step deposits the package.
    let second = Worker::start(h, logs.path().join("worker-2.log"));
    until("the dossier being archived", &second, || async move {
        state(h, w, id).await == DossierState::Archived
    })
    .await;
    let acts = double.actes();
    assert_eq!(acts.len(), 1, "one transaction at S²LOW");
    assert_eq!(acts[0].field("number"), Some("DEL_2026_042"));
    assert_eq!(acts[0].status, 4, "acknowledged at S²LOW");
    assert_eq!(acts[0].files[0].2, SIGNED_ACT);
    let transmitted = (JobKind::Transmission, "transmitted");
    delivered_once(h, w, id, transmitted, &format!("s2low:{}", acts[0].id)).await;
    let acknowledged = only_entry(h, w, id, "acknowledged").await;
    assert!(
        acknowledged
            .detail
            .contains("035-213500002-20261120-DEL_2026_042-DE"),
        "{}",
        acknowledged.detail
    );
    let package = logs
        .path()
        .join("sae/sortie")
        .join(format!("seing-{id}-3/manifest.xml"));
    assert!(package.is_file(), "{}", package.display());
    drop(second);
}

async fn helios_killed_mid_send(h: &Harness) {
    let w = &world(&h.engine, SIREN).await;
    let logs = tempfile::tempdir().unwrap();
    let double = S2lowDouble::start(Options::default());
    settings(h, w, &double, logs.path()).await;
    let id = signed_dossier(
        h,
        w,
        "pes-bordereaux",
        ("finances", "fin"),
        ("PES_2026_07.xml", b"<PES_Aller/>"),
        &[],
        &[],
    )
    .await;
    double.inject("helios_importer_fichier", Fault::HoldAfterProcessing);
    let held = || double.held() == 1;
    kill_mid_send((h, w, logs.path()), id, JobKind::Transmission, held, || {
        double.release()
    })
    .await;
    assert_eq!(double.helios().len(), 1);

    // The second worker: S²LOW refuses the same file (« doublon »), recognized by its hash.
    let second = Worker::start(h, logs.path().join("worker-2.log"));
    until("the transmission job being done", &second, || async move {
        job(h, w, id, JobKind::Transmission).await.status == JobStatus::Done
    })
    .await;
    let sha1 = hex::encode(Sha1::digest(SIGNED_PES));
    let pes = double.helios();
    assert_eq!(pes.len(), 1, "one PES at S²LOW");
    assert_eq!(pes[0].sha1, sha1);
    assert_eq!(pes[0].bytes, SIGNED_PES);
    assert_ne!(state(h, w, id).await, DossierState::Finished);
    delivered_once(h, w, id, (JobKind::Transmission, "transmitted"), &sha1).await;

    // S²LOW gave no transaction number for the hash: the PES waits for an administrator, who
    // finds the transaction in the S²LOW console; then it is followed to its acquit and archived.
    let unnumbered = recovery::unnumbered_pes(&h.engine, w.admin.tenant)
        .await
        .unwrap();
    assert_eq!(unnumbered.len(), 1, "{unnumbered:?}");
    assert_eq!((unnumbered[0].dossier, &unnumbered[0].sha1), (id, &sha1));
    recovery::number_pes(&h.engine, w.admin.tenant, w.admin.user, id, pes[0].id)
        .await
        .unwrap();
    until("the numbered PES being archived", &second, || async move {
        state(h, w, id).await == DossierState::Archived
    })
    .await;
    assert_eq!(double.helios()[0].status, 4, "acquitted at S²LOW");
    let journal = h
        .engine
        .connector_journal(w.admin.tenant, id)
        .await
        .unwrap();
    let actions: Vec<&str> = journal
        .iter()
        .map(|e| e.action.as_str())
        .skip_while(|a| *a != "transmitted")
        .collect();
    assert_eq!(
        actions,
        [
            "transmitted",
            "transmission.numbered",
            "acknowledged",
            "archived"
        ]
    );
    drop(second);
}

/// The state of the dossier's connector send (`connector_transmissions`), if any.
async fn send_state(h: &Harness, id: DossierId) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM connector_transmissions WHERE dossier_id = $1")
        .bind(id.to_string())
        .fetch_optional(h.engine.database().pool())
        .await
        .unwrap()
}

async fn archive_killed_mid_post(h: &Harness) {
    let w = &world(&h.engine, SIREN).await;
    let logs = tempfile::tempdir().unwrap();
    let received = logs.path().join("sae");
    let sae = ArchiveSystem::start(received.clone()).await;
    store(h, w, json!({"archive": sae.settings(SAE_TOKEN)})).await;
    let id = w
        .submitted(&h.engine, "seal", "finances", "fin", Metadata::new())
        .await;
    h.engine
        .seal(
            w.users["uc"],
            id,
            ActionInput::default(),
            signed(SIGNED_ACT),
        )
        .await
        .unwrap();
    let message_id = format!("seing-{id}-1");
    sae.inject(archive_system::Fault::HoldAnswer);
    let held = || sae.held() == 1;
    kill_mid_send((h, w, logs.path()), id, JobKind::Archive, held, || {
        sae.release()
    })
    .await;
    assert_eq!(sae.posts(), [message_id.as_str()]);

    // The second worker posts the package again: the archive system knows its identifier
    // (409), which counts as taken.
    let second = Worker::start(h, logs.path().join("worker-2.log"));
    until("the archive job being done", &second, || async move {
        job(h, w, id, JobKind::Archive).await.status == JobStatus::Done
    })
    .await;
    assert_eq!(sae.posts(), [message_id.as_str(), message_id.as_str()]);
    assert_eq!(
        connectors_common::list(&received),
        std::slice::from_ref(&message_id),
        "one package at the archive system"
    );
    let package = received.join(&message_id);
    assert_eq!(
        connectors_common::list(&package.join("content")).len(),
        4,
        "main, signed version, annex, journal"
    );
    connectors_common::assert_valid_seda_package(&package);
    let archived = (JobKind::Archive, "archived");
    delivered_once(h, w, id, archived, &format!("http:{message_id}")).await;
    assert_eq!(state(h, w, id).await, DossierState::Archived);

    // The archive system accepts the transfer: the worker reads its reply back.
    assert_eq!(send_state(h, id).await.as_deref(), Some("sent"));
    sae.reply(&message_id, transfer_reply(&message_id, "OK"));
    until("the transfer being accepted", &second, || async move {
        send_state(h, id).await.as_deref() == Some("accepted")
    })
    .await;
    assert_eq!(state(h, w, id).await, DossierState::Archived);
    drop(second);
}

/// A mail killed mid-send: the SMTP server, which stores the message first, holds its answer
/// while the first worker is killed. Returns the server, the TSA, the dossier and the message
/// stored, or `None` when aiosmtpd is missing outside CI.
async fn mail_held_then_killed(
    h: &Harness,
    w: &World,
    logs: &Path,
) -> Option<(Smtp, TestTsa, DossierId, String)> {
    let smtp = Smtp::start_holding_first(logs)?;
    let tsa = TestTsa::start(TestPki::shared()).unwrap();
    let notification = json!({
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
        "from": "Commune de Test <marches@mairie-test.fr>",
        "public_url": "https://parapheur.mairie-test.fr", "link_days": 15,
        "tsa_url": tsa.url()
    });
    let archive = drop_folder_archive(logs);
    store(
        h,
        w,
        json!({"notification": notification, "archive": archive}),
    )
    .await;
    let id = signed_dossier(
        h,
        w,
        "marches-notification",
        ("marches", "marches"),
        ("attribution.pdf", b"%PDF-1.7 attribution\n%%EOF\n"),
        &[("destinataire_email", RECIPIENT)],
        &[],
    )
    .await;
    let held = || smtp.held();
    kill_mid_send((h, w, logs), id, JobKind::Notification, held, || {
        smtp.release()
    })
    .await;
    let mut messages = smtp.messages();
    assert_eq!(messages.len(), 1, "the server took the mail before holding");
    Some((smtp, tsa, id, messages.remove(0)))
}

/// Checks the receipt of the notification of `id`: one `acknowledged` entry naming the
/// recipient, timestamped; the dossier has moved on.
async fn receipt_recorded(h: &Harness, w: &World, id: DossierId) {
    assert_eq!(state(h, w, id).await, DossierState::Acknowledged);
    let receipt = only_entry(h, w, id, "acknowledged").await;
    assert!(receipt.detail.contains(RECIPIENT), "{}", receipt.detail);
    assert!(receipt.detail.contains("horodaté"), "{}", receipt.detail);
}

async fn mail_killed_mid_send(h: &Harness) {
    let w = &world(&h.engine, SIREN).await;
    let logs = tempfile::tempdir().unwrap();
    let Some((smtp, _tsa, id, first)) = mail_held_then_killed(h, w, logs.path()).await else {
        return;
    };
    let first = &first;

    // The second worker sends the mail again, with a new link and the same Message-ID.
    let second = Worker::start(h, logs.path().join("worker-2.log"));
    until("the notification job being done", &second, || async move {
        job(h, w, id, JobKind::Notification).await.status == JobStatus::Done
    })
    .await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "the mail at most twice");
    let newest = messages.iter().find(|m| *m != first).unwrap();
    for message in &messages {
        assert_eq!(smtp::header(message, "To"), Some(RECIPIENT), "{message}");
    }
    let message_id = smtp::header(first, "Message-ID");
    assert_eq!(
        message_id,
        Some(format!("<seing-{id}-2@seing.invalid>").as_str())
    );
    assert_eq!(smtp::header(newest, "Message-ID"), message_id);
    let (older, newer) = (notification_link(first), notification_link(newest));
    assert_ne!(older, newer);
    let notified = (JobKind::Notification, "transmitted");
    delivered_once(h, w, id, notified, &format!("mail:{RECIPIENT}")).await;
    assert_eq!(state(h, w, id).await, DossierState::Transmitted);

    // Only the newest link works; opening it is the receipt, and the dossier moves on.
    let api = app::app(&h.engine);
    assert_eq!(app::get(&api, &older).await.0, StatusCode::NOT_FOUND);
    assert_eq!(state(h, w, id).await, DossierState::Transmitted);
    assert_eq!(
        app::get(&api, &newer).await,
        (StatusCode::OK, SIGNED_ACT.to_vec())
    );
    assert_eq!(state(h, w, id).await, DossierState::Acknowledged);
    let receipt = only_entry(h, w, id, "acknowledged").await;
    assert!(receipt.detail.contains(RECIPIENT), "{}", receipt.detail);
    assert!(receipt.detail.contains("horodaté"), "{}", receipt.detail);
    assert_eq!(app::get(&api, &older).await.0, StatusCode::NOT_FOUND);

    // Nothing is lost downstream: the archive step runs.
    until("the dossier being archived", &second, || async move {
        state(h, w, id).await == DossierState::Archived
    })
    .await;
    drop(second);
}

async fn mail_opened_before_the_retry(h: &Harness) {
    let w = &world(&h.engine, SIREN).await;
    let logs = tempfile::tempdir().unwrap();
    let Some((smtp, _tsa, id, first)) = mail_held_then_killed(h, w, logs.path()).await else {
        return;
    };

    // The recipient opens the link before any worker takes the job again: that opening is
    // the receipt, although the sending was never recorded.
    let api = app::app(&h.engine);
    let link = notification_link(&first);
    assert_eq!(
        app::get(&api, &link).await,
        (StatusCode::OK, SIGNED_ACT.to_vec())
    );
    receipt_recorded(h, w, id).await;

    // The second worker finds the mail received and sends nothing more; the archive step,
    // queued by the receipt, runs meanwhile.
    let second = Worker::start(h, logs.path().join("worker-2.log"));
    until("the notification job being done", &second, || async move {
        job(h, w, id, JobKind::Notification).await.status == JobStatus::Done
    })
    .await;
    until("the dossier being archived", &second, || async move {
        state(h, w, id).await == DossierState::Archived
    })
    .await;
    let notified = (JobKind::Notification, "transmitted");
    delivered_once(h, w, id, notified, RECIPIENT).await;
    assert_eq!(smtp.messages().len(), 1, "the mail once");
    assert_eq!(app::get(&api, &link).await.0, StatusCode::OK);
    only_entry(h, w, id, "acknowledged").await;
    drop(second);
}

both_backends! {
    actes_killed_mid_send_is_sent_once => super::actes_killed_mid_send;
    helios_killed_mid_send_is_sent_once => super::helios_killed_mid_send;
    archive_killed_mid_post_is_kept_once => super::archive_killed_mid_post;
    mail_killed_mid_send_is_sent_again_with_the_same_message_id => super::mail_killed_mid_send;
    mail_opened_before_the_retry_is_the_receipt_and_not_sent_again => super::mail_opened_before_the_retry;
}
