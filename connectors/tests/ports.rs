//! The engine's ports over real transports: an engine on SQLite runs `actes-deliberation` and
//! `pes-bordereaux` dossiers through its outbox to the S²LOW double (HTTPS, client certificate)
//! and to drop folders, polls the returns to `acknowledged`, deposits SEDA packages (validated
//! against the SEDA 2.1 XSD) or posts them to an archive system by HTTP, and reads their
//! replies; a send cut off after S²LOW or the archive system took it is retried without a
//! duplicate.
//! Refusals (S²LOW error or cancellation, `AnomalieActe`, a refusing `PES_Acquit`, a rejecting
//! `ArchiveTransferReply`) send the dossier back to its emitter with the reasons, and a
//! resubmitted dossier is sent again.

mod common;
#[allow(dead_code)]
#[path = "../../api/tests/common/database.rs"]
mod database;
#[path = "../../api/tests/common/tenant.rs"]
mod tenant;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::archive_system::{self, ArchiveSystem, SAE_TOKEN, transfer_reply};
use database::{Kind, TestDatabase};
use seing_connectors::Error;
use seing_connectors::ports::Connectors;
use seing_connectors::recovery;
use seing_connectors::seda::ArchiveClient;
use seing_connectors::settings::store_settings;
use seing_engine::Engine;
use seing_engine::circuit::Channel;
use seing_engine::clock::SystemClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::ids::{DeskId, DossierId};
use seing_engine::metadata::{MetaValue, Metadata};
use seing_engine::model::{ActionInput, Actor, NewDocument, NewDossier, SignedOutput};
use seing_engine::outbox::{DeliveryError, Job, RetryPolicy};
use seing_engine::ports::{Dispatcher, Notifier, Receipt, Transmitter, WebhookSender};
use seing_engine::workflow::{DossierState, RejectionOrigin};
use seing_s2low_double::{Fault, Options, Outcome, S2lowDouble, Tls};
use serde_json::json;
use tenant::TestTenant;

/// The outbox's other ports, out of this test's scope: webhooks are dropped, notifications fail.
struct Elsewhere;

impl WebhookSender for Elsewhere {
    async fn deliver(&self, _job: &Job) -> Result<(), DeliveryError> {
        Ok(())
    }
}

impl Notifier for Elsewhere {
    async fn notify(&self, _job: &Job) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::permanent("hors du test"))
    }
}

struct World {
    engine: Engine,
    dispatcher: Dispatcher<Connectors, Elsewhere, Connectors, Elsewhere>,
    connectors: Connectors,
    emitter: Actor,
    dgs: Actor,
    maire: Actor,
    fin: Actor,
    desks: BTreeMap<&'static str, DeskId>,
    circuits: BTreeMap<&'static str, seing_engine::ids::CircuitId>,
    _dir: tempfile::TempDir,
}

async fn world(dir: tempfile::TempDir) -> World {
    let db = TestDatabase::open(Kind::Sqlite, dir.path())
        .await
        .unwrap()
        .database
        .clone();
    let templates = seing_engine::circuit::Template::load_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows"),
    )
    .unwrap();
    let engine = Engine::new(
        db,
        DocumentStore::new(dir.path().join("documents")),
        Arc::new(SystemClock),
        templates,
    );
    // (desk, login)
    let people = [
        ("dgs", "dgs"),
        ("maire", "maire"),
        ("finances", "fin"),
        ("secretariat", "secr"),
    ];
    let tenant = TestTenant::create(&engine, "Commune de Démo", "213500002", &people).await;
    let admin = tenant.admin;
    let actors = &tenant.actors;
    let mut desks = BTreeMap::new();
    for (desk, _) in people {
        desks.insert(desk, tenant.desks[desk]);
    }
    let mut circuits = BTreeMap::new();
    for (template, roles) in [
        ("actes-deliberation", [("dgs", "dgs"), ("maire", "maire")]),
        (
            "pes-bordereaux",
            [("finances", "finances"), ("maire", "maire")],
        ),
    ] {
        let roles = roles
            .iter()
            .map(|(k, d)| (k.to_string(), desks[d]))
            .collect();
        let c = engine
            .create_circuit(admin, template, template, &roles)
            .await
            .unwrap();
        circuits.insert(template, c.id);
    }
    let connectors = Connectors::new(engine.clone());
    World {
        dispatcher: Dispatcher {
            engine: engine.clone(),
            transmitter: connectors.clone(),
            notifier: Elsewhere,
            archiver: connectors.clone(),
            webhooks: Elsewhere,
        },
        connectors,
        emitter: actors["secr"],
        dgs: actors["dgs"],
        maire: actors["maire"],
        fin: actors["fin"],
        engine,
        desks,
        circuits,
        _dir: dir,
    }
}

fn doc(name: &str, bytes: &[u8]) -> NewDocument {
    NewDocument {
        name: name.into(),
        media_type: "application/octet-stream".into(),
        bytes: bytes.to_vec(),
    }
}

fn text(value: &str) -> MetaValue {
    MetaValue::Text(value.into())
}

impl World {
    async fn settings(&self, settings: serde_json::Value) {
        store_settings(
            &self.engine,
            self.emitter.tenant,
            &settings.to_string(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    }

    /// Runs the outbox until no job is due.
    async fn deliver(&self) {
        let policy = RetryPolicy {
            base: time::Duration::milliseconds(1),
            lease: time::Duration::milliseconds(200),
            ..RetryPolicy::default()
        };
        for _ in 0..10 {
            let run = self
                .engine
                .run_outbox_once(&self.dispatcher, &policy, 20)
                .await
                .unwrap();
            if run.done + run.retried + run.failed == 0 {
                return;
            }
        }
    }

    async fn state(&self, id: DossierId) -> DossierState {
        self.engine.dossier(self.maire, id).await.unwrap().state
    }

    /// A délibération visaed by the DGS and signed by the mayor (signed PDF recorded).
    async fn deliberation(&self, number: &str) -> DossierId {
        let metadata: Metadata = [
            ("nature", text("DE")),
            ("classification", text("7.1")),
            ("date_decision", text("2026-11-20")),
            ("objet", text("Tarifs de l'eau")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let new = NewDossier {
            circuit: self.circuits["actes-deliberation"],
            emitter_desk: self.desks["secretariat"],
            title: format!("Délibération {number}"),
            main: doc("deliberation.pdf", b"%PDF-1.7 deliberation\n%%EOF\n"),
            annexes: vec![doc("annexe.pdf", b"%PDF-1.7 annexe\n%%EOF\n")],
            metadata,
            chosen_desks: BTreeMap::new(),
            deadline: None,
        };
        let d = self.engine.create_dossier(self.emitter, new).await.unwrap();
        self.engine.submit(self.emitter, d.id, None).await.unwrap();
        self.engine
            .visa(self.dgs, d.id, ActionInput::default())
            .await
            .unwrap();
        let input = ActionInput {
            metadata: [("numero_acte".to_owned(), text(number))]
                .into_iter()
                .collect(),
            ..ActionInput::default()
        };
        self.engine
            .sign(
                self.maire,
                d.id,
                input,
                SignedOutput {
                    documents: vec![doc(
                        "deliberation.pdf",
                        b"%PDF-1.7 deliberation signed\n%%EOF\n",
                    )],
                    signatures: vec![],
                },
            )
            .await
            .unwrap();
        d.id
    }

    /// A PES visaed by finance and signed by the mayor.
    async fn pes(&self, name: &str, bytes: &[u8]) -> DossierId {
        let new = NewDossier {
            circuit: self.circuits["pes-bordereaux"],
            emitter_desk: self.desks["finances"],
            title: "Bordereaux de mandats".into(),
            main: doc(name, bytes),
            annexes: vec![],
            metadata: Metadata::new(),
            chosen_desks: BTreeMap::new(),
            deadline: None,
        };
        let d = self.engine.create_dossier(self.fin, new).await.unwrap();
        self.engine.submit(self.fin, d.id, None).await.unwrap();
        self.engine
            .visa(self.fin, d.id, ActionInput::default())
            .await
            .unwrap();
        let mut signed = bytes.to_vec();
        signed.extend_from_slice(b"<!-- signed -->");
        self.engine
            .sign(
                self.maire,
                d.id,
                ActionInput::default(),
                SignedOutput {
                    documents: vec![doc(name, &signed)],
                    signatures: vec![],
                },
            )
            .await
            .unwrap();
        d.id
    }

    /// Checks that `id` is back at its emitter, refused by `origin` for `reason`, with the
    /// journal entry `refused` naming the reason.
    async fn assert_refused(&self, id: DossierId, origin: RejectionOrigin, reason: &str) {
        let d = self.engine.dossier(self.maire, id).await.unwrap();
        assert_eq!(d.state, DossierState::Rejected);
        let rejection = d.rejection.unwrap();
        assert_eq!(
            (rejection.origin, rejection.reason.as_str()),
            (origin, reason)
        );
        let journal = self
            .engine
            .connector_journal(self.emitter.tenant, id)
            .await
            .unwrap();
        let last = journal.last().unwrap();
        assert_eq!(last.action, "refused");
        let detail: serde_json::Value = serde_json::from_str(&last.detail).unwrap();
        assert_eq!(detail["reason"], reason);
    }
}

/// The double over HTTPS, requiring the authority's client certificate.
fn tls_double() -> S2lowDouble {
    S2lowDouble::start(Options {
        tls: Some(Tls::test_pki()),
        ..Options::default()
    })
}

fn s2low(double: &S2lowDouble) -> serde_json::Value {
    let mut transport = double.transport();
    transport["timeout_seconds"] = 2.into();
    transport
}

/// The @ctes settings of the test authority over `transport`.
fn actes(transport: serde_json::Value) -> serde_json::Value {
    json!({"transport": transport, "arrondissement": "1", "nature_collectivite": "32",
           "email_retour": ["actes@mairie-demo.fr"]})
}

fn archive(dir: &Path) -> serde_json::Value {
    json!({
        "drop_folder": {"outbox": dir.join("sae/sortie"), "inbox": dir.join("sae/entree")},
        "archival_agency": "AD35",
        "transferring_agency": "MAIRIE-213500002",
        "appraisal_rule": {"rule": "APP-DELIB", "final_action": "Keep"},
        "access_rule": {"rule": "AR038"}
    })
}

async fn transmissions(engine: &Engine) -> Vec<(String, String, String)> {
    use sqlx::Row;
    sqlx::query(
        "SELECT kind, transport, state FROM connector_transmissions ORDER BY created_at, kind",
    )
    .fetch_all(engine.database().pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliberation_goes_through_s2low_to_acknowledged_then_archived() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let w = world(dir).await;
    let double = tls_double();
    w.settings(json!({
        "actes": actes(s2low(&double)),
        "archive": archive(&root),
    }))
    .await;

    let id = w.deliberation("DEL_2026_007").await;
    assert_eq!(w.state(id).await, DossierState::Finished);
    w.deliver().await;
    assert_eq!(w.state(id).await, DossierState::Transmitted);
    let posted = double.actes();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].field("number"), Some("DEL_2026_007"));
    assert_eq!(
        posted[0].files[0].2,
        b"%PDF-1.7 deliberation signed\n%%EOF\n"
    );

    // S²LOW moves one status per query: waiting, transmitted, acknowledged.
    for _ in 0..2 {
        let run = w.connectors.poll().await.unwrap();
        assert_eq!(run.waiting, 1);
    }
    assert_eq!(w.connectors.poll().await.unwrap().acknowledged, 1);
    // The archive step started: its job is in the outbox.
    w.deliver().await;
    assert_eq!(w.state(id).await, DossierState::Archived);

    let message_id = format!("seing-{id}-3");
    let manifest = root
        .join("sae/sortie")
        .join(&message_id)
        .join("manifest.xml");
    assert!(manifest.is_file());
    if let (Some(specs), true) = (common::specs(), common::has_xmllint()) {
        let seda = specs.join("seda21");
        let (ok, out) = common::xmllint(
            &seda.join("seda-2.1-main.xsd"),
            &manifest,
            Some(&seda.join("catalog.xml")),
        );
        assert!(ok, "{out}");
    }
    let content: Vec<String> = common::list(&manifest.parent().unwrap().join("content"));
    assert_eq!(content.len(), 4, "{content:?}");
    assert!(content.contains(&"journal-du-dossier.json".to_owned()));

    std::fs::create_dir_all(root.join("sae/entree")).unwrap();
    std::fs::write(
        root.join("sae/entree/reply.xml"),
        transfer_reply(&message_id, "OK"),
    )
    .unwrap();
    assert_eq!(w.connectors.poll().await.unwrap().accepted, 1);
    assert_eq!(
        transmissions(&w.engine).await,
        [
            ("actes".into(), "s2low".into(), "acknowledged".into()),
            ("archive".into(), "drop_folder".into(), "accepted".into())
        ]
    );
    let journal = w
        .engine
        .connector_journal(w.emitter.tenant, id)
        .await
        .unwrap();
    let acknowledged = journal.iter().find(|e| e.action == "acknowledged").unwrap();
    assert!(
        acknowledged
            .detail
            .contains("035-213500002-20261120-DEL_2026_007-DE"),
        "{}",
        acknowledged.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pes_goes_through_a_drop_folder_to_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let w = world(dir).await;
    w.settings(json!({
        "helios": {"transport": {"kind": "drop_folder",
            "outbox": root.join("helios/sortie"), "inbox": root.join("helios/entree")}},
        "archive": archive(&root),
    }))
    .await;
    let id = w.pes("PES_2026_01.xml", b"<PES_Aller/>").await;
    w.deliver().await;
    assert_eq!(w.state(id).await, DossierState::Transmitted);
    let deposited = format!("{id}-PES_2026_01.xml");
    assert_eq!(
        std::fs::read(root.join("helios/sortie").join(&deposited)).unwrap(),
        b"<PES_Aller/><!-- signed -->"
    );
    // Delivering the job again (as after a crash) neither deposits again nor fails.
    let jobs = w.engine.dossier_jobs(w.emitter.tenant, id).await.unwrap();
    let job = jobs
        .iter()
        .find(|j| j.kind == seing_engine::outbox::JobKind::Transmission)
        .unwrap();
    let again = w.connectors.transmit(job, Channel::Helios).await.unwrap();
    assert_eq!(again.reference, format!("drop_folder:{deposited}"));
    assert_eq!(
        common::list(&root.join("helios/sortie")),
        std::slice::from_ref(&deposited)
    );

    assert_eq!(w.connectors.poll().await.unwrap(), Default::default());
    std::fs::create_dir_all(root.join("helios/entree")).unwrap();
    let acquit = format!(
        r#"<n:PES_ACQUIT xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2">
  <Enveloppe><Parametres><Version V="2"/><TypFic V="PESALR1"/><NomFic V="{deposited}"/></Parametres></Enveloppe>
  <ACQUIT><ElementACQUIT><DomaineAck V="0"/><EtatAck V="1"/></ElementACQUIT></ACQUIT>
</n:PES_ACQUIT>"#
    );
    std::fs::write(root.join("helios/entree/acquit.xml"), acquit).unwrap();
    assert_eq!(w.connectors.poll().await.unwrap().acknowledged, 1);
    assert_eq!(
        common::list(&root.join("helios/entree/traites")),
        ["acquit.xml"]
    );
    w.deliver().await;
    assert_eq!(w.state(id).await, DossierState::Archived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_cut_off_after_s2low_took_it_is_retried_without_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir).await;
    let double = tls_double();
    w.settings(json!({
        "actes": actes(s2low(&double)),
        "helios": {"transport": s2low(&double)},
    }))
    .await;
    let id = w.deliberation("DEL_2026_008").await;

    // The worker dies while S²LOW holds the answer: the act exists there, nothing is recorded.
    double.inject("actes_transac_create", Fault::HoldAfterProcessing);
    let policy = RetryPolicy {
        lease: time::Duration::milliseconds(300),
        ..RetryPolicy::default()
    };
    let worker = {
        let engine = w.engine.clone();
        let dispatcher = Dispatcher {
            engine: w.engine.clone(),
            transmitter: w.connectors.clone(),
            notifier: Elsewhere,
            archiver: w.connectors.clone(),
            webhooks: Elsewhere,
        };
        tokio::spawn(async move { engine.run_outbox_once(&dispatcher, &policy, 20).await })
    };
    while double.held() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.abort();
    assert!(worker.await.is_err());
    double.release();
    assert_eq!(double.actes().len(), 1);
    assert_eq!(w.state(id).await, DossierState::Finished);

    // Once the lease runs out, the job is taken again: S²LOW refuses the repeated number and
    // the first transaction is found again by it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.deliver().await;
    assert_eq!(w.state(id).await, DossierState::Transmitted);
    assert_eq!(double.actes().len(), 1);
    let jobs = w.engine.dossier_jobs(w.emitter.tenant, id).await.unwrap();
    let transmission = jobs
        .iter()
        .find(|j| j.kind == seing_engine::outbox::JobKind::Transmission)
        .unwrap();
    assert_eq!(transmission.attempts, 2);
    let journal = w
        .engine
        .connector_journal(w.emitter.tenant, id)
        .await
        .unwrap();
    let transmitted = journal.iter().find(|e| e.action == "transmitted").unwrap();
    assert!(
        transmitted.detail.contains("s2low:1"),
        "{}",
        transmitted.detail
    );

    // A PES whose answer was lost: the repeat is recognized by its hash.
    let pes = w.pes("PES_2026_02.xml", b"<PES_Aller/>").await;
    double.inject(
        "helios_importer_fichier",
        Fault::Delay(Duration::from_secs(4)),
    );
    w.deliver().await;
    assert_eq!(double.helios().len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.deliver().await;
    assert_eq!(w.state(pes).await, DossierState::Transmitted);
    assert_eq!(double.helios().len(), 1);
}

/// Two dossiers under one numéro interne: the second is refused before anything is sent (S²LOW
/// would refuse it, and after a lost answer its live transaction would be taken for the second
/// act) and goes back to its emitter; S²LOW holds one act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numero_interne_another_dossier_used_is_refused_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir).await;
    let double = S2lowDouble::start(Options::default());
    w.settings(json!({
        "actes": actes(s2low(&double)),
    }))
    .await;
    let first = w.deliberation("DEL_2026_077").await;
    w.deliver().await;
    assert_eq!(w.state(first).await, DossierState::Transmitted);
    let second = w.deliberation("DEL_2026_077").await;
    w.deliver().await;
    let reason = format!(
        "le numéro interne DEL_2026_077 a déjà servi à l'acte « Délibération DEL_2026_077 » \
         (dossier {first}) : donnez un nouveau numéro interne à l'acte puis renvoyez-le"
    );
    w.assert_refused(second, RejectionOrigin::Prefecture, &reason)
        .await;
    assert_eq!(double.actes().len(), 1);
    assert_eq!(w.state(first).await, DossierState::Transmitted);
    let jobs = w
        .engine
        .dossier_jobs(w.emitter.tenant, second)
        .await
        .unwrap();
    let job = jobs
        .iter()
        .find(|j| j.kind == seing_engine::outbox::JobKind::Transmission)
        .unwrap();
    assert_eq!(
        (job.status, job.attempts),
        (seing_engine::outbox::JobStatus::Failed, 1)
    );
}

/// A PES whose S²LOW answer was lost: it waits for an administrator to give its transaction
/// number, which is taken only when S²LOW holds the same file under it; then it is followed to
/// its `PES_Acquit` like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pes_whose_answer_was_lost_is_numbered_by_hand_then_followed() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir).await;
    let double = tls_double();
    w.settings(json!({"helios": {"transport": s2low(&double)}}))
        .await;
    // Another PES, sent normally: transaction 1.
    let other = w
        .pes("PES_2026_05.xml", b"<PES_Aller><!-- 5 --></PES_Aller>")
        .await;
    w.deliver().await;
    assert_eq!(w.state(other).await, DossierState::Transmitted);

    // S²LOW takes the file but its answer comes too late: the retry is a duplicate.
    let lost = w
        .pes("PES_2026_06.xml", b"<PES_Aller><!-- 6 --></PES_Aller>")
        .await;
    double.inject(
        "helios_importer_fichier",
        Fault::Delay(Duration::from_secs(4)),
    );
    w.deliver().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.deliver().await;
    assert_eq!(w.state(lost).await, DossierState::Transmitted);
    let held = double.helios();
    assert_eq!(held.len(), 2);
    let transaction = held[1].id;
    let tenant = w.emitter.tenant;
    let unnumbered = recovery::unnumbered_pes(&w.engine, tenant).await.unwrap();
    assert_eq!(unnumbered.len(), 1, "{unnumbered:?}");
    assert_eq!(unnumbered[0].dossier, lost);
    assert_eq!(unnumbered[0].file, "PES_2026_06.xml");
    assert_eq!(unnumbered[0].sha1, held[1].sha1);
    // Polling cannot follow it.
    assert_eq!(w.connectors.poll().await.unwrap().waiting, 2);

    // Wrong numbers are refused and change nothing: one S²LOW does not show, one holding
    // another PES, one that is not a number of this dossier's send.
    let number = |dossier, n| recovery::number_pes(&w.engine, tenant, w.fin.user, dossier, n);
    let refused = number(lost, 99).await.unwrap_err().to_string();
    assert!(
        refused.contains("S²LOW ne donne pas de PES pour la transaction 99"),
        "{refused}"
    );
    let refused = number(lost, held[0].id).await.unwrap_err().to_string();
    assert!(
        refused.contains(&format!(
            "la transaction S²LOW {} porte un autre PES",
            held[0].id
        )) && refused.contains(&held[1].sha1),
        "{refused}"
    );
    let refused = number(other, transaction).await.unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)), "{refused}");
    assert!(
        refused.to_string().contains("a déjà son numéro"),
        "{refused}"
    );
    let unknown: DossierId = "00000000-0000-4000-8000-000000000000".parse().unwrap();
    assert!(matches!(
        number(unknown, transaction).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        recovery::unnumbered_pes(&w.engine, tenant).await.unwrap(),
        unnumbered
    );

    // The same PES put in a second dossier is a duplicate too; the number cannot serve twice.
    let again = w
        .pes("PES_2026_06.xml", b"<PES_Aller><!-- 6 --></PES_Aller>")
        .await;
    w.deliver().await;
    assert_eq!(
        recovery::unnumbered_pes(&w.engine, tenant)
            .await
            .unwrap()
            .len(),
        2
    );

    // The right number: taken, journaled with who gave it, then followed to the acquit.
    let taken = number(lost, transaction).await.unwrap();
    assert_eq!(taken.0, transaction);
    let left = recovery::unnumbered_pes(&w.engine, tenant).await.unwrap();
    assert_eq!(left.iter().map(|p| p.dossier).collect::<Vec<_>>(), [again]);
    let refused = number(again, transaction).await.unwrap_err().to_string();
    assert!(
        refused.contains(&format!(
            "la transaction S²LOW {transaction} est déjà celle du dossier {lost}"
        )),
        "{refused}"
    );
    let journal = w.engine.connector_journal(tenant, lost).await.unwrap();
    let numbered: Vec<_> = journal
        .iter()
        .filter(|e| e.action == "transmission.numbered")
        .collect();
    assert_eq!(numbered.len(), 1, "{journal:?}");
    assert_eq!(numbered[0].user, Some(w.fin.user));
    assert!(
        numbered[0].detail.contains(&format!("s2low:{transaction}")),
        "{}",
        numbered[0].detail
    );
    for _ in 0..4 {
        w.connectors.poll().await.unwrap();
    }
    assert_eq!(w.state(lost).await, DossierState::Acknowledged);
    assert_eq!(w.state(other).await, DossierState::Acknowledged);
    assert_eq!(w.state(again).await, DossierState::Transmitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2low_refusals_send_the_dossier_back_and_a_corrected_act_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir).await;
    let double = S2lowDouble::start(Options::default());
    w.settings(json!({
        "actes": actes(s2low(&double)),
        "helios": {"transport": s2low(&double)},
    }))
    .await;

    // The act ends in error (status -1) with the prefecture's message.
    let reason = "Acte refusé : classification 7.1 inconnue à la date de la décision";
    double.next_outcome(Outcome::Refused(reason.into()));
    let id = w.deliberation("DEL_2026_020").await;
    w.deliver().await;
    assert_eq!(w.state(id).await, DossierState::Transmitted);
    for _ in 0..2 {
        assert_eq!(w.connectors.poll().await.unwrap().waiting, 1);
    }
    assert_eq!(w.connectors.poll().await.unwrap().refused, 1);
    w.assert_refused(id, RejectionOrigin::Prefecture, reason)
        .await;
    // Read once: the next pass finds nothing left to follow.
    assert_eq!(w.connectors.poll().await.unwrap(), Default::default());

    // The emitter recycles, the act is corrected (a new numéro interne, as S²LOW requires)
    // and signed again: it is sent again and acknowledged.
    w.engine.recycle(w.emitter, id, None).await.unwrap();
    w.engine.submit(w.emitter, id, None).await.unwrap();
    w.engine
        .visa(w.dgs, id, ActionInput::default())
        .await
        .unwrap();
    let input = ActionInput {
        metadata: [("numero_acte".to_owned(), text("DEL_2026_020B"))]
            .into_iter()
            .collect(),
        ..ActionInput::default()
    };
    let signed = SignedOutput {
        documents: vec![doc("deliberation.pdf", b"%PDF-1.7 corrected\n%%EOF\n")],
        signatures: vec![],
    };
    w.engine.sign(w.maire, id, input, signed).await.unwrap();
    w.deliver().await;
    assert_eq!(w.state(id).await, DossierState::Transmitted);
    let posted = double.actes();
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[1].field("number"), Some("DEL_2026_020B"));
    for _ in 0..2 {
        w.connectors.poll().await.unwrap();
    }
    assert_eq!(w.connectors.poll().await.unwrap().acknowledged, 1);
    assert_eq!(w.state(id).await, DossierState::Acknowledged);
    assert_eq!(w.engine.dossier(w.maire, id).await.unwrap().rejection, None);

    // The DGFiP refuses a PES: its PES_Acquit's reasons come back with the dossier.
    let reason = "Montant du bordereau 12 différent de la somme des pièces";
    double.next_outcome(Outcome::Refused(reason.into()));
    let pes = w.pes("PES_2026_20.xml", b"<PES_Aller/>").await;
    w.deliver().await;
    for _ in 0..2 {
        assert_eq!(w.connectors.poll().await.unwrap().waiting, 1);
    }
    assert_eq!(w.connectors.poll().await.unwrap().refused, 1);
    w.assert_refused(pes, RejectionOrigin::Dgfip, reason).await;
    assert_eq!(
        transmissions(&w.engine).await,
        [
            ("actes".into(), "s2low".into(), "acknowledged".into()),
            ("helios".into(), "s2low".into(), "refused".into()),
        ]
    );
}

/// What else a prefecture sends back through a drop folder: the real `AnomalieEnveloppe`
/// sample, which lists the message of act 4365, refuses that act; the real `ARActe` of act 684
/// acknowledges it, and an `ARAnnulation` of it is journaled; a return that names no act of
/// seing's (the real `ARAnnulation` sample) stays in the inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_folder_envelope_anomalies_and_cancellations_are_read() {
    let Some(specs) = common::specs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let w = world(dir).await;
    w.settings(json!({
        "actes": actes(json!({"kind": "drop_folder",
            "outbox": root.join("actes/sortie"), "inbox": root.join("actes/entree")})),
    }))
    .await;
    let refused = w.deliberation("4365").await;
    let cancelled = w.deliberation("684").await;
    w.deliver().await;
    assert_eq!(w.state(refused).await, DossierState::Transmitted);
    assert_eq!(w.state(cancelled).await, DossierState::Transmitted);
    let inbox = root.join("actes/entree");
    std::fs::create_dir_all(&inbox).unwrap();
    let sample = |name: &str, to: &str| {
        std::fs::copy(specs.join("actes/examples").join(name), inbox.join(to)).unwrap();
    };
    sample(
        "ANO_EACT--214400152--20180925-1.xml",
        "anomalie-enveloppe.xml",
    );
    sample("006-210600235-20180522-684-AI-1-2_5279.xml", "ar-684.xml");
    sample(
        "044-214400152-20181106-TEST_DGCL_4-DE-6-2_10.xml",
        "annulation-autre.xml",
    );
    let run = w.connectors.poll().await.unwrap();
    assert_eq!(
        (run.refused, run.acknowledged, run.cancelled),
        (1, 1, 0),
        "{run:?}"
    );
    w.assert_refused(
        refused,
        RejectionOrigin::Prefecture,
        "anomalie d'enveloppe 999 : ODT-VERIF-17 : La transaction que vous avez envoyé n'est pas reconnu dans l'application ACTES.",
    )
    .await;
    assert_eq!(w.state(cancelled).await, DossierState::Acknowledged);

    std::fs::write(
        inbox.join("annulation-684.xml"),
        r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<actes:ARAnnulation xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216"
  actes:DateReception="2018-06-04" actes:IDActe="006-210600235-20180522-684-AI"/>"#,
    )
    .unwrap();
    let run = w.connectors.poll().await.unwrap();
    assert_eq!(
        (run.refused, run.acknowledged, run.cancelled),
        (0, 0, 1),
        "{run:?}"
    );
    // The dossier keeps its state; its journal says the act was cancelled, and when.
    assert_eq!(w.state(cancelled).await, DossierState::Acknowledged);
    let journal = w
        .engine
        .connector_journal(w.emitter.tenant, cancelled)
        .await
        .unwrap();
    let last = journal.last().unwrap();
    assert_eq!(last.action, "transmission.cancelled");
    assert_eq!(last.user, None);
    let detail: serde_json::Value = serde_json::from_str(&last.detail).unwrap();
    assert_eq!(detail["reference"], "006-210600235-20180522-684-AI");
    assert_eq!(detail["date_reception"], "2018-06-04");
    assert_eq!(
        common::list(&inbox.join("traites")),
        ["annulation-684.xml", "anomalie-enveloppe.xml", "ar-684.xml"]
    );
    assert!(inbox.join("annulation-autre.xml").is_file());
    // Read once: nothing left to match.
    let run = w.connectors.poll().await.unwrap();
    assert_eq!(
        (run.refused, run.acknowledged, run.cancelled),
        (0, 0, 0),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_folder_refusals_send_the_dossier_back() {
    let Some(specs) = common::specs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let w = world(dir).await;
    w.settings(json!({
        "actes": actes(json!({"kind": "drop_folder",
            "outbox": root.join("actes/sortie"), "inbox": root.join("actes/entree")})),
        "helios": {"transport": {"kind": "drop_folder",
            "outbox": root.join("helios/sortie"), "inbox": root.join("helios/entree")}},
        "archive": archive(&root),
    }))
    .await;

    // A real AnomalieActe (numéro interne 123456) for the act sent with that number.
    let acte = w.deliberation("123456").await;
    w.deliver().await;
    assert_eq!(w.state(acte).await, DossierState::Transmitted);
    std::fs::create_dir_all(root.join("actes/entree")).unwrap();
    std::fs::copy(
        specs.join("actes/examples/044-214400152----1-3_1.xml"),
        root.join("actes/entree/anomalie.xml"),
    )
    .unwrap();

    // A PES_Acquit refusing the PES, with two errors.
    let pes = w.pes("PES_2026_21.xml", b"<PES_Aller/>").await;
    w.deliver().await;
    let deposited = format!("{pes}-PES_2026_21.xml");
    std::fs::create_dir_all(root.join("helios/entree")).unwrap();
    let acquit = format!(
        r#"<n:PES_ACQUIT xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2">
  <Enveloppe><Parametres><Version V="2"/><TypFic V="PESALR1"/><NomFic V="{deposited}"/></Parametres></Enveloppe>
  <ACQUIT><ElementACQUIT><DomaineAck V="2"/><EtatAck V="0"/>
    <Erreur><NumAnoAck V="12"/><LibelleAnoAck V="Imputation budgétaire inconnue"/></Erreur>
    <Erreur><NumAnoAck V="31"/><LibelleAnoAck V="Tiers sans adresse"/></Erreur>
  </ElementACQUIT></ACQUIT>
</n:PES_ACQUIT>"#
    );
    std::fs::write(root.join("helios/entree/acquit.xml"), acquit).unwrap();

    let run = w.connectors.poll().await.unwrap();
    assert_eq!((run.refused, run.acknowledged), (2, 0), "{run:?}");
    w.assert_refused(
        acte,
        RejectionOrigin::Prefecture,
        "anomalie 002 : ODT-VERIF-01 : Votre acte a été transmis avec une date de classification qui n'est pas à jour",
    )
    .await;
    w.assert_refused(
        pes,
        RejectionOrigin::Dgfip,
        "Imputation budgétaire inconnue ; Tiers sans adresse",
    )
    .await;
    assert_eq!(
        common::list(&root.join("actes/entree/traites")),
        ["anomalie.xml"]
    );
    assert_eq!(
        common::list(&root.join("helios/entree/traites")),
        ["acquit.xml"]
    );

    // The archive service rejects a transfer after the deposit reported the dossier archived.
    let archived = w.pes("PES_2026_22.xml", b"<PES_Aller n=\"22\"/>").await;
    w.deliver().await;
    let deposited = format!("{archived}-PES_2026_22.xml");
    let acquit = format!(
        r#"<n:PES_ACQUIT xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2">
  <Enveloppe><Parametres><Version V="2"/><TypFic V="PESALR1"/><NomFic V="{deposited}"/></Parametres></Enveloppe>
  <ACQUIT><ElementACQUIT><DomaineAck V="0"/><EtatAck V="1"/></ElementACQUIT></ACQUIT>
</n:PES_ACQUIT>"#
    );
    std::fs::write(root.join("helios/entree/acquit-22.xml"), acquit).unwrap();
    assert_eq!(w.connectors.poll().await.unwrap().acknowledged, 1);
    w.deliver().await;
    assert_eq!(w.state(archived).await, DossierState::Archived);
    let message_id = format!("seing-{archived}-3");
    std::fs::create_dir_all(root.join("sae/entree")).unwrap();
    std::fs::write(
        root.join("sae/entree/reply.xml"),
        transfer_reply(&message_id, "KO"),
    )
    .unwrap();
    assert_eq!(w.connectors.poll().await.unwrap().refused, 1);
    let d = w.engine.dossier(w.maire, archived).await.unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Rejected, 3));
    let rejection = d.rejection.unwrap();
    assert_eq!(rejection.origin, RejectionOrigin::Archive);
    assert_eq!(rejection.reason, "transfert rejeté (code KO)");
    // Recycled and resubmitted, it is archived again under a new message identifier.
    w.engine.recycle(w.fin, archived, None).await.unwrap();
    w.engine.submit(w.fin, archived, None).await.unwrap();
    w.engine
        .visa(w.fin, archived, ActionInput::default())
        .await
        .unwrap();
    let signed = SignedOutput {
        documents: vec![doc(
            "PES_2026_22.xml",
            b"<PES_Aller n=\"22\" corrige=\"1\"/>",
        )],
        signatures: vec![],
    };
    w.engine
        .sign(w.maire, archived, ActionInput::default(), signed)
        .await
        .unwrap();
    w.deliver().await;
    assert_eq!(w.state(archived).await, DossierState::Transmitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_and_unconfigured_jobs_fail_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir).await;
    let bad = json!({
        "actes": {"transport": {"kind": "drop_folder", "outbox": "relative", "inbox": "/tmp/x"},
                  "arrondissement": "1", "nature_collectivite": "32", "email_retour": []},
        "unknown": 1
    });
    let error = store_settings(
        &w.engine,
        w.emitter.tenant,
        &bad.to_string(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, seing_connectors::Error::Invalid(_)),
        "{error}"
    );
    let id = w.deliberation("DEL_2026_009").await;
    w.deliver().await;
    let jobs = w.engine.dossier_jobs(w.emitter.tenant, id).await.unwrap();
    let job = jobs
        .iter()
        .find(|j| j.kind == seing_engine::outbox::JobKind::Transmission)
        .unwrap();
    assert_eq!(job.status, seing_engine::outbox::JobStatus::Failed);
    assert!(
        job.last_error
            .as_deref()
            .unwrap()
            .contains("aucun connecteur"),
        "{:?}",
        job.last_error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_are_posted_once_by_http_and_their_reply_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let w = world(dir).await;
    let double = tls_double();
    let sae = ArchiveSystem::start(root.join("sae")).await;
    w.settings(json!({"actes": actes(s2low(&double)), "archive": sae.settings(SAE_TOKEN)}))
        .await;
    let id = w.deliberation("DEL_2026_010").await;
    w.deliver().await;
    for _ in 0..3 {
        w.connectors.poll().await.unwrap();
    }

    // The archive system takes the package but its answer is lost: the retry carries the same
    // MessageIdentifier, which the archive system recognizes (409), and counts as sent.
    sae.inject(archive_system::Fault::LoseAnswer);
    w.deliver().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    w.deliver().await;
    assert_eq!(w.state(id).await, DossierState::Archived);
    let message_id = format!("seing-{id}-3");
    assert_eq!(sae.posts(), [message_id.as_str(), message_id.as_str()]);
    assert_eq!(
        common::list(&root.join("sae")),
        std::slice::from_ref(&message_id)
    );
    let received = root.join("sae").join(&message_id);
    assert_eq!(common::list(&received.join("content")).len(), 4);
    common::assert_valid_seda_package(&received);

    // No reply yet: the transfer waits; then the reply is read back and recorded.
    assert_eq!(w.connectors.poll().await.unwrap().waiting, 1);
    sae.reply(&message_id, transfer_reply(&message_id, "OK"));
    assert_eq!(w.connectors.poll().await.unwrap().accepted, 1);
    assert_eq!(
        transmissions(&w.engine).await,
        [
            ("actes".into(), "s2low".into(), "acknowledged".into()),
            ("archive".into(), "http".into(), "accepted".into())
        ]
    );

    // A wrong token is a refusal, said as such; an archive with two transports or none is
    // refused when the settings are stored.
    let wrong =
        ArchiveClient::new(&serde_json::from_value(sae.settings("faux")["http"].clone()).unwrap())
            .unwrap()
            .transfer(&received, "seing-autre");
    assert!(
        matches!(&wrong, Err(seing_connectors::Error::Refused(m)) if m.contains("accès refusé")),
        "{wrong:?}"
    );
    for archive in [
        json!({"archival_agency": "AD35", "transferring_agency": "M"}),
        json!({"http": {"url": "ftp://sae"}, "archival_agency": "AD35", "transferring_agency": "M"}),
    ] {
        let error = store_settings(
            &w.engine,
            w.emitter.tenant,
            &json!({ "archive": archive }).to_string(),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, seing_connectors::Error::Invalid(_)),
            "{error}"
        );
    }
}
