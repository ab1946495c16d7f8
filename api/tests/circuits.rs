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
//! a `dossier.rejected` webhook.

// Each test binary uses a part of the shared helpers.
#[allow(dead_code)]
#[path = "common/resources.rs"]
mod resources;
#[path = "common/signing_keys.rs"]
mod signing_keys;
#[path = "common/tenant.rs"]
mod tenant;
#[allow(dead_code)]
#[path = "common/webhook_receiver.rs"]
mod webhook_receiver;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use seing_api::http::{ApiSettings, ApiState, auth};
use seing_api::server::{AppState, router};
use seing_certs_test::pki::TestPki;
use seing_certs_test::tsa::TestTsa;
use seing_connectors::ports::Connectors;
use seing_connectors::webhooks::HttpWebhookSender;
use seing_engine::Engine;
use seing_engine::access::Role;
use seing_engine::circuit::Template;
use seing_engine::clock::SystemClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::ids::{CircuitId, DeskId};
use seing_engine::model::Actor;
use seing_engine::outbox::{DeliveryError, Job, RetryPolicy};
use seing_engine::ports::{Dispatcher, Notifier, Receipt};
use seing_engine::signing::SigningSettings;
use seing_engine::storage::Database;
use seing_s2low_double::{Options, Outcome, S2lowDouble, Tls};
use serde_json::{Value, json};
use tower::ServiceExt;

use resources::{pes, specs};
use signing_keys::{chain_of, sign_items, software_key};
use tenant::TestTenant;
use webhook_receiver::Receiver;

const SIREN: &str = "213500002";
const BOUNDARY: &str = "seing-circuits-boundary";
const SECRET: &str = "secret-du-logiciel-metier";

/// Notifications are the notification test's subject: none here.
struct NoMail;

impl Notifier for NoMail {
    async fn notify(&self, _job: &Job) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::permanent("hors du test"))
    }
}

struct World {
    app: Router,
    engine: Engine,
    dispatcher: Dispatcher<Connectors, NoMail, Connectors, HttpWebhookSender>,
    connectors: Connectors,
    receiver: Receiver,
    pki: &'static TestPki,
    _tsa: TestTsa,
    admin: String,
    software: String,
    maire: String,
    actors: BTreeMap<String, Actor>,
    desks: BTreeMap<String, DeskId>,
    circuits: BTreeMap<&'static str, CircuitId>,
    root: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn token(engine: &Engine, actor: Actor, role: Role) -> String {
    let secret = auth::new_token_secret().unwrap();
    engine
        .create_api_token(Some(actor), role, "test", &auth::secret_hash(&secret))
        .await
        .unwrap();
    secret
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&format!("sqlite:{}", dir.path().join("seing.db").display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let pki = TestPki::shared();
    let tsa = TestTsa::start(pki).unwrap();
    let engine = Engine::new(
        db.clone(),
        DocumentStore::new(dir.path().join("documents")),
        Arc::new(SystemClock),
        Template::load_dir(&workflows).unwrap(),
    )
    .with_signing_settings(SigningSettings {
        tsa_url: Some(tsa.url()),
        ..SigningSettings::default()
    });
    let app = router(
        Arc::new(AppState { database: db }),
        Arc::new(ApiState {
            engine: engine.clone(),
            settings: ApiSettings::default(),
        }),
    );
    let TestTenant {
        admin,
        actors,
        desks,
    } = TestTenant::create(
        &engine,
        "Commune de Démo",
        SIREN,
        &[
            ("dgs", "dgs"),
            ("maire", "maire"),
            ("finances", "fin"),
            ("secretariat", "logiciel"),
        ],
    )
    .await;
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
            .map(|(k, d)| (k.to_string(), desks[*d]))
            .collect();
        let c = engine
            .create_circuit(admin, template, template, &roles)
            .await
            .unwrap();
        circuits.insert(template, c.id);
    }
    // The business software's receiver takes every event.
    let (receiver, base) = Receiver::start().await;
    engine
        .create_webhook(
            admin,
            seing_engine::webhooks::NewWebhook {
                url: format!("{base}/seing"),
                events: Vec::new(),
                secret: SECRET.into(),
                active: true,
            },
        )
        .await
        .unwrap();
    let connectors = Connectors::new(engine.clone());
    let admin_token = token(&engine, admin, Role::TenantAdmin).await;
    let w = World {
        app,
        dispatcher: Dispatcher {
            engine: engine.clone(),
            transmitter: connectors.clone(),
            notifier: NoMail,
            archiver: connectors.clone(),
            webhooks: HttpWebhookSender::new(engine.clone(), std::time::Duration::from_secs(10)),
        },
        connectors,
        receiver,
        pki,
        _tsa: tsa,
        admin: admin_token,
        software: token(&engine, actors["logiciel"], Role::User).await,
        maire: token(&engine, actors["maire"], Role::User).await,
        root: dir.path().to_path_buf(),
        engine,
        actors,
        desks,
        circuits,
        _dir: dir,
    };
    // The mayor's certificates chain to the test root; its CRL comes with it.
    let pem = std::fs::read_to_string(&pki.root_ca).unwrap()
        + &std::fs::read_to_string(&pki.personnes_crl_pem).unwrap();
    let (status, body) = w
        .json(
            Method::POST,
            "/api/v1/trust-anchors",
            &w.admin,
            json!({"pem": pem}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    w
}

impl World {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Request<Body>,
    ) -> (StatusCode, Value) {
        let (mut parts, body) = body.into_parts();
        parts.method = method;
        parts.uri = uri.parse().unwrap();
        parts.headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let response = self
            .app
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn json(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.call(method, uri, token, request).await
    }

    async fn state(&self, id: &str) -> String {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/api/v1/dossiers/{id}"),
                &self.software,
                Request::new(Body::empty()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["state"].as_str().unwrap().to_owned()
    }

    async fn create(
        &self,
        circuit: &str,
        title: &str,
        metadata: Value,
        main: (&str, &[u8]),
    ) -> String {
        let meta = json!({
            "title": title,
            "circuit": self.circuits[circuit],
            "emitter_desk": self.desks["secretariat"],
            "metadata": metadata,
        })
        .to_string();
        let mut body = Vec::new();
        for (name, file, bytes) in [
            ("metadata", None, meta.as_bytes()),
            ("main", Some(main.0), main.1),
        ] {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let disposition = match file {
                Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
                None => format!("form-data; name=\"{name}\""),
            };
            body.extend_from_slice(
                format!("Content-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let request = Request::builder()
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(body))
            .unwrap();
        let (status, created) = self
            .call(Method::POST, "/api/v1/dossiers", &self.software, request)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["state"], "pending", "{created}");
        created["id"].as_str().unwrap().to_owned()
    }

    async fn visa(&self, id: &str, login: &'static str) {
        let token = token(&self.engine, self.actors[login], Role::User).await;
        let (status, body) = self
            .json(
                Method::POST,
                &format!("/api/v1/dossiers/{id}/visa"),
                &token,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// The mayor signs through the two-phase API: the batch gives the digests, the test key
    /// signs them, the values are posted back.
    async fn sign(&self, id: &str) {
        let (status, batch) = self
            .json(
                Method::POST,
                "/api/v1/signature-batches",
                &self.maire,
                json!({"dossier_ids": [id], "certificate_chain": chain_of(self.pki, "elu-rsa2048")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{batch}");
        assert_eq!(batch["refused"], json!([]), "{batch}");
        let items = sign_items(&batch, &software_key(self.pki, "elu-rsa2048"));
        let (status, results) = self
            .json(
                Method::POST,
                &format!(
                    "/api/v1/signature-batches/{}/signatures",
                    batch["batch_id"].as_str().unwrap()
                ),
                &self.maire,
                json!({"items": items}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{results}");
        assert_eq!(results["results"][0]["status"], "signed", "{results}");
    }

    /// Runs the outbox until no job is due.
    async fn deliver(&self) {
        let policy = RetryPolicy {
            base: time::Duration::milliseconds(1),
            ..RetryPolicy::default()
        };
        loop {
            let run = self
                .engine
                .run_outbox_once(&self.dispatcher, &policy, 20)
                .await
                .unwrap();
            assert_eq!(run.failed, 0);
            if run.done + run.retried == 0 {
                return;
            }
        }
    }

    /// The events the receiver got about dossier `id`, in order, each signature checked.
    fn webhook_events(&self, id: &str) -> Vec<String> {
        self.receiver
            .at("/seing")
            .iter()
            .filter(|r| r.json()["dossier"]["id"] == id)
            .map(|r| {
                r.verify(SECRET).unwrap();
                assert_eq!(r.json()["event"], r.event.as_str());
                r.event.clone()
            })
            .collect()
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
    let w = world().await;
    let (status, body) = w
        .call(
            Method::GET,
            "/api/v1/connectors",
            &w.admin,
            Request::new(Body::empty()),
        )
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
            &w.admin,
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
        .call(
            Method::GET,
            "/api/v1/connectors",
            &w.admin,
            Request::new(Body::empty()),
        )
        .await;
    assert_eq!((status, &body["settings"]), (StatusCode::OK, &Value::Null));

    let good = json!({"archive": archive_settings(&w.root)});
    let (status, body) = w
        .json(Method::PUT, "/api/v1/connectors", &w.admin, good.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = w
        .call(
            Method::GET,
            "/api/v1/connectors",
            &w.admin,
            Request::new(Body::empty()),
        )
        .await;
    assert_eq!(body["settings"], good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actes_deliberation_reaches_acknowledged_then_archived_through_s2low() {
    let Some(specs) = specs() else { return };
    let w = world().await;
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
    let (status, body) = w
        .json(Method::PUT, "/api/v1/connectors", &w.admin, settings)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

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
    w.visa(&id, "dgs").await;
    w.sign(&id).await;
    assert_eq!(w.state(&id).await, "finished");
    w.deliver().await;
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
    w.deliver().await;
    assert_eq!(w.state(&id).await, "archived");
    // The act sent is the PAdES-signed PDF.
    let sent = &double.actes()[0].files[0].2;
    assert!(sent.starts_with(&pdf) && sent.len() > pdf.len());
    assert_eq!(w.webhook_events(&id), EVERY_TRANSITION);
}

/// The webhooks of a dossier created by software, visaed, signed, transmitted, acknowledged and
/// archived, in the order of its life.
const EVERY_TRANSITION: [&str; 9] = [
    "dossier.created",
    "dossier.submitted",
    "step.completed",
    "step.completed",
    "dossier.signed",
    "dossier.finished",
    "dossier.transmitted",
    "dossier.acknowledged",
    "dossier.archived",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pes_bordereaux_reaches_acknowledged_then_archived_through_a_drop_folder() {
    let Some(specs) = specs() else { return };
    let w = world().await;
    let helios = w.root.join("helios");
    let settings = json!({
        "helios": {"transport": {"kind": "drop_folder", "outbox": helios.join("sortie"),
                                 "inbox": helios.join("entree")}},
        "archive": archive_settings(&w.root),
    });
    let (status, body) = w
        .json(Method::PUT, "/api/v1/connectors", &w.admin, settings)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = w
        .create(
            "pes-bordereaux",
            "Mandats novembre",
            json!({}),
            ("PES_2026_11.xml", &pes(&specs, 2, 1)),
        )
        .await;
    w.visa(&id, "fin").await;
    w.sign(&id).await;
    w.deliver().await;
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
    w.deliver().await;
    assert_eq!(w.state(&id).await, "archived");
    assert_eq!(w.webhook_events(&id), EVERY_TRANSITION);
    let manifest = w
        .root
        .join("sae/sortie")
        .join(format!("seing-{id}-3"))
        .join("manifest.xml");
    assert!(manifest.is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_act_refused_by_the_prefecture_comes_back_to_its_emitter() {
    let Some(specs) = specs() else { return };
    let w = world().await;
    let double = S2lowDouble::start(Options::default());
    let settings = json!({
        "actes": {"transport": {"kind": "s2low", "url": double.url()}, "arrondissement": "1",
                  "nature_collectivite": "32", "email_retour": ["actes@mairie-demo.fr"]},
    });
    let (status, body) = w
        .json(Method::PUT, "/api/v1/connectors", &w.admin, settings)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
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
    w.visa(&id, "dgs").await;
    w.sign(&id).await;
    w.deliver().await;
    let mut polls = 1;
    while w.connectors.poll().await.unwrap().refused == 0 {
        polls += 1;
        assert!(polls <= 3, "still not refused");
    }
    let (status, dossier) = w
        .call(
            Method::GET,
            &format!("/api/v1/dossiers/{id}"),
            &w.software,
            Request::new(Body::empty()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dossier["state"], "rejected");
    assert_eq!(dossier["rejection"]["origin"], "prefecture");
    assert_eq!(dossier["rejection"]["reason"], reason);
    let (status, list) = w
        .call(
            Method::GET,
            &format!("/api/v1/dossiers?desk={}", w.desks["secretariat"]),
            &w.software,
            Request::new(Body::empty()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} in {list}"));
    assert_eq!(
        (&item["state"], &item["reason"]),
        (&json!("rejected"), &json!("rejected"))
    );
    let (status, journal) = w
        .call(
            Method::GET,
            &format!("/api/v1/dossiers/{id}/journal"),
            &w.software,
            Request::new(Body::empty()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let last = journal.as_array().and_then(|j| j.last()).unwrap();
    assert_eq!(last["action"], "refused", "{journal}");
    assert!(last["detail"].as_str().unwrap().contains(reason), "{last}");
    w.deliver().await;
    let events = w.webhook_events(&id);
    assert_eq!(
        events[events.len() - 3..],
        ["dossier.transmitted", "dossier.refused", "dossier.rejected"],
        "{events:?}"
    );
    let rejected = w.receiver.at("/seing").last().unwrap().json();
    assert_eq!(rejected["event"], "dossier.rejected");
    assert_eq!(
        (&rejected["origin"], &rejected["reason"]),
        (&json!("prefecture"), &json!(reason))
    );
}
