//! The outbox's crash guarantee with real processes, on SQLite and on PostgreSQL: a `seing worker`
//! is killed (SIGKILL) while the S²LOW double, which has already stored the act or the PES,
//! holds its answer; a second `seing worker` takes the job again once the lease has run out.
//! The double ends with exactly one transaction (the act by its numéro interne, the PES by its
//! SHA-1), the transmission job is done, and the dossier moves on as if nothing had happened;
//! the PES, whose transaction number S²LOW cannot give for a hash, once an administrator has
//! given it.

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Harness, World, doc, meta, world};
use seing_connectors::recovery;
use seing_connectors::settings::store_settings;
use seing_engine::ids::DossierId;
use seing_engine::metadata::MetaValue;
use seing_engine::model::{ActionInput, SignedOutput};
use seing_engine::outbox::{Job, JobKind, JobStatus};
use seing_engine::workflow::DossierState;
use seing_s2low_double::{Fault, Options, S2lowDouble};
use serde_json::json;
use sha1::{Digest, Sha1};

const SIREN: &str = "213500002";
const SIGNED_ACT: &[u8] = b"%PDF-1.7 deliberation signee\n%%EOF\n";
const SIGNED_PES: &[u8] = b"<PES_Aller><!-- signe --></PES_Aller>";

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
    h.engine.dossier(w.users["maire"], id).await.unwrap().state
}

async fn transmission_job(h: &Harness, w: &World, id: DossierId) -> Job {
    h.engine
        .dossier_jobs(w.admin.tenant, id)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.kind == JobKind::Transmission)
        .expect("the transmission job is queued")
}

/// Stores connector settings: both channels through the double, archives to a drop folder.
async fn settings(h: &Harness, w: &World, double: &S2lowDouble, root: &Path) {
    let s2low = double.transport();
    let settings = json!({
        "actes": {"transport": s2low, "arrondissement": "1",
                  "nature_collectivite": "32", "email_retour": ["actes@mairie-demo.fr"]},
        "helios": {"transport": s2low},
        "archive": {
            "drop_folder": {"outbox": root.join("sae/sortie"), "inbox": root.join("sae/entree")},
            "archival_agency": "AD35", "transferring_agency": "MAIRIE-213500002"
        }
    });
    store_settings(
        &h.engine,
        w.admin.tenant,
        &settings.to_string(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
}

/// A dossier of `circuit` visaed and signed (`signed` recorded as the signed version): its
/// transmission job is queued.
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
    let d = h.engine.create_dossier(w.users[login], new).await.unwrap();
    h.engine.submit(w.users[login], d.id, None).await.unwrap();
    let viseur = if circuit == "pes-bordereaux" {
        "fin"
    } else {
        "dgs"
    };
    h.engine
        .visa(w.users[viseur], d.id, ActionInput::default())
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

/// Runs the first worker into the held send, kills it, and checks that nothing was recorded.
async fn kill_mid_send(h: &Harness, w: &World, double: &S2lowDouble, id: DossierId, logs: &Path) {
    let first = Worker::start(h, logs.join("worker-1.log"));
    until("the double holding the answer", &first, || async move {
        double.held() == 1
    })
    .await;
    first.kill();
    double.release();
    assert_eq!(state(h, w, id).await, DossierState::Finished);
    let job = transmission_job(h, w, id).await;
    assert_eq!((job.status, job.attempts), (JobStatus::Running, 1));
}

/// What the second worker must leave: the job done at its second attempt, one `transmitted`
/// entry in the journal naming `reference`.
async fn delivered_once(h: &Harness, w: &World, id: DossierId, reference: &str) {
    let job = transmission_job(h, w, id).await;
    assert_eq!((job.status, job.attempts), (JobStatus::Done, 2), "{job:?}");
    let journal = h
        .engine
        .connector_journal(w.admin.tenant, id)
        .await
        .unwrap();
    let transmitted: Vec<_> = journal
        .iter()
        .filter(|e| e.action == "transmitted")
        .collect();
    assert_eq!(transmitted.len(), 1, "{journal:?}");
    assert!(
        transmitted[0].detail.contains(reference),
        "{}",
        transmitted[0].detail
    );
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
    kill_mid_send(h, w, &double, id, logs.path()).await;
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
    delivered_once(h, w, id, &format!("s2low:{}", acts[0].id)).await;
    let journal = h
        .engine
        .connector_journal(w.admin.tenant, id)
        .await
        .unwrap();
    let acknowledged: Vec<_> = journal
        .iter()
        .filter(|e| e.action == "acknowledged")
        .collect();
    assert_eq!(acknowledged.len(), 1, "{journal:?}");
    assert!(
        acknowledged[0]
            .detail
            .contains("035-213500002-20261120-DEL_2026_042-DE"),
        "{}",
        acknowledged[0].detail
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
    kill_mid_send(h, w, &double, id, logs.path()).await;
    assert_eq!(double.helios().len(), 1);

    // The second worker: S²LOW refuses the same file (« doublon »), recognized by its hash.
    let second = Worker::start(h, logs.path().join("worker-2.log"));
    until("the transmission job being done", &second, || async move {
        transmission_job(h, w, id).await.status == JobStatus::Done
    })
    .await;
    let sha1 = hex::encode(Sha1::digest(SIGNED_PES));
    let pes = double.helios();
    assert_eq!(pes.len(), 1, "one PES at S²LOW");
    assert_eq!(pes[0].sha1, sha1);
    assert_eq!(pes[0].bytes, SIGNED_PES);
    assert_ne!(state(h, w, id).await, DossierState::Finished);
    delivered_once(h, w, id, &sha1).await;

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

both_backends! {
    actes_killed_mid_send_is_sent_once => super::actes_killed_mid_send;
    helios_killed_mid_send_is_sent_once => super::helios_killed_mid_send;
}
