//! Full circuits through the REST API, in process: a tenant administrator sets the connector
//! settings (`PUT /api/v1/connectors`) and the trust anchors, software creates
//! `actes-deliberation` (a real PDF) and `pes-bordereaux` (a real PES) dossiers, desks visa them
//! and the mayor signs them through the two-phase API (`POST /signature-batches`, the digests
//! signed with the test key, `POST /signature-batches/{id}/signatures`); the outbox delivers
//! them through the connectors to the S²LOW double (over HTTPS with a client certificate)
//! and to drop folders; polling the returns
//! brings them to `acknowledged`, the archive step to `archived`. A local receiver gets a
//! webhook for each transition, in order, each HMAC checked with `verify_signature`. An act the
//! prefecture refuses comes back to its emitter's list of rejected dossiers, with the reason and
//! a `dossier.rejected` webhook; sent again under the same numéro interne, it comes back at once
//! saying that the number must change (SQLite and PostgreSQL). The service and the API calls
//! are `common/service.rs`.

// Each test binary uses a part of the shared helpers.
#[allow(dead_code)]
#[path = "common/database.rs"]
mod database;
#[allow(dead_code)]
#[path = "common/multipart.rs"]
mod multipart;
#[allow(dead_code)]
#[path = "common/resources.rs"]
mod resources;
#[allow(dead_code)]
#[path = "common/service.rs"]
mod service;
#[path = "common/signing_keys.rs"]
mod signing_keys;
#[path = "common/tenant.rs"]
mod tenant;
#[allow(dead_code)]
#[path = "common/webhook_receiver.rs"]
mod webhook_receiver;

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::Path;

use axum::http::{Method, StatusCode};
use database::Kind;
use seing_connectors::ports::Connectors;
use seing_connectors::webhooks::HttpWebhookSender;
use seing_engine::ids::{CircuitId, DossierId};
use seing_engine::outbox::{DeliveryError, Job, JobKind, JobStatus, OutboxRun, RetryPolicy};
use seing_engine::ports::{Dispatcher, Notifier, Receipt};
use seing_s2low_double::{Options, Outcome, S2lowDouble, Tls};
use serde_json::{Value, json};

use resources::{pes, specs};
use service::{EVERY_TRANSITION, Service};

/// Notifications are the notification test's subject: none here.
struct NoMail;

impl Notifier for NoMail {
    async fn notify(&self, _job: &Job) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::permanent("hors du test"))
    }
}

/// The service, with the `actes-deliberation` and `pes-bordereaux` circuits, and an outbox
/// run pass by pass by the test.
struct World {
    service: Service,
    dispatcher: Dispatcher<Connectors, NoMail, Connectors, HttpWebhookSender>,
    connectors: Connectors,
    circuits: BTreeMap<&'static str, CircuitId>,
}

impl Deref for World {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

async fn world(kind: Kind) -> Option<World> {
    let service = Service::start(
        kind,
        &[
            ("dgs", "dgs"),
            ("maire", "maire"),
            ("finances", "fin"),
            ("secretariat", "logiciel"),
        ],
        "logiciel",
    )
    .await?;
    service.subscribe().await;
    let mut circuits = BTreeMap::new();
    circuits.insert(
        "actes-deliberation",
        service
            .circuit("actes-deliberation", &[("dgs", "dgs"), ("maire", "maire")])
            .await,
    );
    circuits.insert(
        "pes-bordereaux",
        service
            .circuit(
                "pes-bordereaux",
                &[("finances", "finances"), ("maire", "maire")],
            )
            .await,
    );
    let engine = service.engine.clone();
    let connectors = Connectors::new(engine.clone());
    Some(World {
        dispatcher: Dispatcher {
            engine: engine.clone(),
            transmitter: connectors.clone(),
            notifier: NoMail,
            archiver: connectors.clone(),
            webhooks: HttpWebhookSender::new(engine, std::time::Duration::from_secs(10)),
        },
        connectors,
        circuits,
        service,
    })
}

impl World {
    /// Creates a dossier on `circuit` from the secretariat, as the business software.
    async fn create(
        &self,
        circuit: &str,
        title: &str,
        metadata: Value,
        main: (&str, &[u8]),
    ) -> String {
        let fields = json!({
            "title": title,
            "circuit": self.circuits[circuit],
            "emitter_desk": self.desks["secretariat"],
            "metadata": metadata,
        });
        self.service.create(fields, main).await
    }

    /// Runs the outbox until no job is due; what it did in all.
    async fn deliver(&self) -> OutboxRun {
        let policy = RetryPolicy {
            base: time::Duration::milliseconds(1),
            ..RetryPolicy::default()
        };
        let mut total = OutboxRun::default();
        loop {
            let run = self
                .engine
                .run_outbox_once(&self.dispatcher, &policy, 20)
                .await
                .unwrap();
            total.done += run.done;
            total.retried += run.retried;
            total.failed += run.failed;
            if run.done + run.retried == 0 {
                return total;
            }
        }
    }

    /// Runs the outbox until no job is due; none may fail.
    async fn deliver_all(&self) {
        assert_eq!(self.deliver().await.failed, 0);
    }
}

fn archive_settings(root: &Path) -> Value {
    json!({
        "drop_folder": {"outbox": root.join("sae/sortie"), "inbox": root.join("sae/entree")},
        "archival_agency": "AD35",
        "transferring_agency": "MAIRIE-213500002",
        "access_rule": {"rule": "AR038"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_settings_are_checked_and_kept_per_tenant() {
    let w = world(Kind::Sqlite).await.unwrap();
    let (status, body) = w
        .empty(Method::GET, "/api/v1/connectors", &w.admin_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["settings"], Value::Null);
    let (status, _) = w
        .json(Method::PUT, "/api/v1/connectors", &w.software, json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = w
        .json(
            Method::PUT,
            "/api/v1/connectors",
            &w.admin_token,
            json!({"helios": {"transport": {"kind": "drop_folder", "outbox": "sortie", "inbox": "/x"}},
                   "archive": {"drop_folder": {"outbox": "/a", "inbox": "/b"}, "archival_agency": "",
                               "transferring_agency": "T"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("helios.transport.outbox"), "{detail}");
    assert!(detail.contains("archive.archival_agency"), "{detail}");
    let (status, body) = w
        .empty(Method::GET, "/api/v1/connectors", &w.admin_token)
        .await;
    assert_eq!((status, &body["settings"]), (StatusCode::OK, &Value::Null));

    let good = json!({"archive": archive_settings(&w.root)});
    let (status, body) = w
        .json(
            Method::PUT,
            "/api/v1/connectors",
            &w.admin_token,
            good.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = w
        .empty(Method::GET, "/api/v1/connectors", &w.admin_token)
        .await;
    assert_eq!(body["settings"], good);
    w.service.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actes_deliberation_reaches_acknowledged_then_archived_through_s2low() {
    let Some(specs) = specs() else { return };
    let w = world(Kind::Sqlite).await.unwrap();
    // Over HTTPS with the authority's client certificate, as the platform requires.
    let double = S2lowDouble::start(Options {
        tls: Some(Tls::test_pki()),
        ..Options::default()
    });
    let settings = json!({
        "actes": {"transport": double.transport(), "arrondissement": "1",
                  "nature_collectivite": "32", "email_retour": ["actes@mairie-demo.fr"]},
        "archive": archive_settings(&w.root),
    });
    w.connectors(settings).await;

    let pdf = std::fs::read(specs.join("actes/examples/Delib.pdf")).unwrap();
    let id = w
        .create(
            "actes-deliberation",
            "Délibération tarifs de l'eau",
            json!({"nature": "DE", "classification": "8.8", "date_decision": "2026-11-20",
                   "objet": "Tarifs de l'eau 2027", "numero_acte": "DEL_2026_042"}),
            ("deliberation.pdf", &pdf),
        )
        .await;
    w.visa(&id, "dgs", json!({})).await;
    w.sign(&id, "maire").await;
    assert_eq!(w.state(&id).await, "finished");
    w.deliver_all().await;
    assert_eq!(w.state(&id).await, "transmitted");
    assert_eq!(
        double.actes()[0].field("subject"),
        Some("Tarifs de l'eau 2027")
    );
    assert_eq!(double.actes()[0].field("classif1"), Some("8"));
    // The double moves one status per query: waiting, transmitted, acknowledged.
    let mut polls = 1;
    while w.connectors.poll().await.unwrap().acknowledged == 0 {
        polls += 1;
        assert!(polls <= 3, "still not acknowledged");
    }
    assert_eq!(w.state(&id).await, "acknowledged");
    w.deliver_all().await;
    assert_eq!(w.state(&id).await, "archived");
    // The act sent is the PAdES-signed PDF.
    let sent = &double.actes()[0].files[0].2;
    assert!(sent.starts_with(&pdf) && sent.len() > pdf.len());
    assert_eq!(w.webhook_events(&id), EVERY_TRANSITION);
    w.service.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pes_bordereaux_reaches_acknowledged_then_archived_through_a_drop_folder() {
    let Some(specs) = specs() else { return };
    let w = world(Kind::Sqlite).await.unwrap();
    let helios = w.root.join("helios");
    let settings = json!({
        "helios": {"transport": {"kind": "drop_folder", "outbox": helios.join("sortie"),
                                 "inbox": helios.join("entree")}},
        "archive": archive_settings(&w.root),
    });
    w.connectors(settings).await;
    let id = w
        .create(
            "pes-bordereaux",
            "Mandats novembre",
            json!({}),
            ("PES_2026_11.xml", &pes(&specs, 2, 1)),
        )
        .await;
    w.visa(&id, "fin", json!({})).await;
    w.sign(&id, "maire").await;
    w.deliver_all().await;
    assert_eq!(w.state(&id).await, "transmitted");
    let deposited = format!("{id}-PES_2026_11.xml");
    assert!(helios.join("sortie").join(&deposited).is_file());

    std::fs::create_dir_all(helios.join("entree")).unwrap();
    std::fs::write(
        helios.join("entree/ACK.xml"),
        format!(
            r#"<n:PES_ACQUIT xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2">
  <Enveloppe><Parametres><Version V="2"/><TypFic V="PESALR1"/><NomFic V="{deposited}"/></Parametres></Enveloppe>
  <ACQUIT><ElementACQUIT><DomaineAck V="5"/><EtatAck V="1"/><NumBord V="12"/><ExerciceBord V="2026"/></ElementACQUIT></ACQUIT>
</n:PES_ACQUIT>"#
        ),
    )
    .unwrap();
    assert_eq!(w.connectors.poll().await.unwrap().acknowledged, 1);
    assert_eq!(w.state(&id).await, "acknowledged");
    w.deliver_all().await;
    assert_eq!(w.state(&id).await, "archived");
    assert_eq!(w.webhook_events(&id), EVERY_TRANSITION);
    let manifest = w
        .root
        .join("sae/sortie")
        .join(format!("seing-{id}-3"))
        .join("manifest.xml");
    assert!(manifest.is_file());
    w.service.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_act_comes_back_and_needs_a_new_number_on_sqlite() {
    refused_act(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_act_comes_back_and_needs_a_new_number_on_postgres() {
    refused_act(Kind::Postgres).await;
}

/// The rejection the business software sees through the API and its webhooks: the dossier
/// `rejected` from the prefecture for `reason`, the journal's last entry `refused` naming it,
/// and the last three webhooks `before`, `dossier.refused` and `dossier.rejected` saying it.
async fn assert_sent_back(w: &World, id: &str, reason: &str, before: &str) {
    let dossier = w.dossier(id).await;
    assert_eq!(dossier["state"], "rejected", "{dossier}");
    assert_eq!(dossier["rejection"]["origin"], "prefecture", "{dossier}");
    assert_eq!(dossier["rejection"]["reason"], reason, "{dossier}");
    let list = w
        .get(&format!("/api/v1/dossiers?desk={}", w.desks["secretariat"]))
        .await;
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {list}"));
    assert_eq!(
        (&item["state"], &item["reason"]),
        (&json!("rejected"), &json!("rejected"))
    );
    let journal = w.journal(id).await;
    let last = journal.last().unwrap();
    assert_eq!(last["action"], "refused", "{last}");
    assert!(last["detail"].as_str().unwrap().contains(reason), "{last}");
    let events = w.webhook_events(id);
    assert_eq!(
        events[events.len() - 3..],
        [before, "dossier.refused", "dossier.rejected"],
        "{events:?}"
    );
    let rejected = w.receiver.at("/seing").last().unwrap().json();
    assert_eq!(rejected["event"], "dossier.rejected");
    assert_eq!(
        (&rejected["origin"], &rejected["reason"]),
        (&json!("prefecture"), &json!(reason))
    );
}

/// An act the prefecture refuses comes back to its emitter's list of rejected dossiers, with
/// the reason and a `dossier.rejected` webhook. Recycled and sent again under the same numéro
/// interne, S²LOW refuses it: the dossier comes back at once saying that the number must
/// change, and the transmission is not retried; given a new number, it goes through.
async fn refused_act(kind: Kind) {
    let Some(specs) = specs() else { return };
    let Some(w) = world(kind).await else { return };
    let double = S2lowDouble::start(Options::default());
    w.connectors(json!({
        "actes": {"transport": {"kind": "s2low", "url": double.url()}, "arrondissement": "1",
                  "nature_collectivite": "32", "email_retour": ["actes@mairie-demo.fr"]},
    }))
    .await;
    let reason = "Acte irrecevable : la délibération n'est pas signée par l'ordonnateur";
    double.next_outcome(Outcome::Refused(reason.into()));
    let pdf = std::fs::read(specs.join("actes/examples/Delib.pdf")).unwrap();
    let id = w
        .create(
            "actes-deliberation",
            "Délibération subventions",
            json!({"nature": "DE", "classification": "7.5", "date_decision": "2026-11-20",
                   "objet": "Subventions aux associations", "numero_acte": "DEL_2026_050"}),
            ("deliberation.pdf", &pdf),
        )
        .await;
    w.visa(&id, "dgs", json!({})).await;
    w.sign(&id, "maire").await;
    w.deliver_all().await;
    let mut polls = 1;
    while w.connectors.poll().await.unwrap().refused == 0 {
        polls += 1;
        assert!(polls <= 3, "still not refused");
    }
    w.deliver_all().await;
    assert_sent_back(&w, &id, reason, "dossier.transmitted").await;

    // The emitter sends it again as it was: S²LOW has the number, in a transaction in error.
    let dossier: DossierId = id.parse().unwrap();
    let emitter = w.actors["logiciel"];
    w.engine.recycle(emitter, dossier, None).await.unwrap();
    w.submit(&id).await;
    w.visa(&id, "dgs", json!({})).await;
    w.sign(&id, "maire").await;
    let run = w.deliver().await;
    assert_eq!((run.failed, run.retried), (1, 0), "{run:?}");
    let posted = double.actes();
    assert_eq!(posted.len(), 1);
    let taken = format!(
        "S²LOW a déjà le numéro interne DEL_2026_050 (transaction {}, en erreur : « {reason} ») : \
         donnez un nouveau numéro interne à l'acte puis renvoyez-le",
        posted[0].id
    );
    assert_sent_back(&w, &id, &taken, "dossier.finished").await;
    let jobs = w
        .engine
        .dossier_jobs(w.admin.tenant, dossier)
        .await
        .unwrap();
    let failed = jobs
        .iter()
        .rfind(|j| j.kind == JobKind::Transmission)
        .unwrap();
    assert_eq!(
        (failed.status, failed.attempts, failed.last_error.as_deref()),
        (JobStatus::Failed, 1, Some(taken.as_str()))
    );
    assert_eq!(w.deliver().await, OutboxRun::default());

    // Given a new number at the visa, it goes through.
    w.engine.recycle(emitter, dossier, None).await.unwrap();
    w.submit(&id).await;
    w.visa(&id, "dgs", json!({"numero_acte": "DEL_2026_050B"}))
        .await;
    w.sign(&id, "maire").await;
    w.deliver_all().await;
    assert_eq!(w.state(&id).await, "transmitted");
    let posted = double.actes();
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[1].field("number"), Some("DEL_2026_050B"));
    let mut polls = 1;
    while w.connectors.poll().await.unwrap().acknowledged == 0 {
        polls += 1;
        assert!(polls <= 3, "still not acknowledged");
    }
    let dossier = w.dossier(&id).await;
    assert_eq!(dossier["state"], "acknowledged", "{dossier}");
    assert_eq!(dossier["rejection"], Value::Null, "{dossier}");
    w.service.close().await;
}
