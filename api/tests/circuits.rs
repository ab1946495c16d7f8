//! Full circuits through the REST API, in process: a tenant administrator sets the connector
//! settings (`PUT /api/v1/connectors`), software creates `actes-deliberation` and
//! `pes-bordereaux` dossiers, desks visa and sign them, and the outbox delivers them through
//! the connectors to the S²LOW double (over HTTPS with a client certificate) and to drop folders; polling the returns brings them to
//! `acknowledged`, the archive step to `archived`, with a webhook job for each transition.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use seing_api::http::{ApiSettings, ApiState, auth};
use seing_api::server::{AppState, router};
use seing_connectors::ports::Connectors;
use seing_engine::Engine;
use seing_engine::access::Role;
use seing_engine::circuit::Template;
use seing_engine::clock::SystemClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::ids::{CircuitId, DeskId};
use seing_engine::model::{ActionInput, Actor, NewDocument, NewTenant, SignedOutput};
use seing_engine::outbox::{DeliveryError, Job, JobKind, RetryPolicy};
use seing_engine::ports::{Dispatcher, Notifier, Receipt, WebhookSender};
use seing_engine::storage::Database;
use seing_s2low_double::{Options, S2lowDouble, Tls};
use serde_json::{Value, json};
use tower::ServiceExt;

const SIREN: &str = "213500002";
const BOUNDARY: &str = "seing-circuits-boundary";

/// Webhooks are counted from the outbox rows (their delivery is the webhooks' own test).
struct Recorded;

impl WebhookSender for Recorded {
    async fn deliver(&self, _job: &Job) -> Result<(), DeliveryError> {
        Ok(())
    }
}

impl Notifier for Recorded {
    async fn notify(&self, _job: &Job) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::permanent("hors du test"))
    }
}

struct World {
    app: Router,
    engine: Engine,
    dispatcher: Dispatcher<Connectors, Recorded, Connectors, Recorded>,
    connectors: Connectors,
    admin: String,
    software: String,
    actors: BTreeMap<&'static str, Actor>,
    desks: BTreeMap<&'static str, DeskId>,
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
    let engine = Engine::new(
        db.clone(),
        DocumentStore::new(dir.path().join("documents")),
        Arc::new(SystemClock),
        Template::load_dir(&workflows).unwrap(),
    );
    let app = router(
        Arc::new(AppState { database: db }),
        Arc::new(ApiState {
            engine: engine.clone(),
            settings: ApiSettings::default(),
        }),
    );
    let (tenant, admin) = engine
        .create_tenant(NewTenant {
            name: "Commune de Démo".into(),
            siren: SIREN.into(),
            departement: "35".into(),
            admin_login: "admin".into(),
            admin_name: "Admin".into(),
        })
        .await
        .unwrap();
    let admin = Actor {
        tenant: tenant.id,
        user: admin.id,
    };
    let mut actors = BTreeMap::new();
    let mut desks = BTreeMap::new();
    for (desk, login) in [
        ("dgs", "dgs"),
        ("maire", "maire"),
        ("finances", "fin"),
        ("secretariat", "logiciel"),
    ] {
        let user = engine
            .create_user(admin, login, login, false)
            .await
            .unwrap();
        let d = engine
            .create_desk(admin, desk, None, &[user.id])
            .await
            .unwrap();
        desks.insert(desk, d.id);
        actors.insert(
            login,
            Actor {
                tenant: tenant.id,
                user: user.id,
            },
        );
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
    // Events become outbox rows only for a subscription that takes them.
    engine
        .create_webhook(
            admin,
            seing_engine::webhooks::NewWebhook {
                url: "https://erp.example/seing".into(),
                events: Vec::new(),
                secret: "secret-du-logiciel-metier".into(),
                active: true,
            },
        )
        .await
        .unwrap();
    let connectors = Connectors::new(engine.clone());
    World {
        app,
        dispatcher: Dispatcher {
            engine: engine.clone(),
            transmitter: connectors.clone(),
            notifier: Recorded,
            archiver: connectors.clone(),
            webhooks: Recorded,
        },
        connectors,
        admin: token(&engine, admin, Role::TenantAdmin).await,
        software: token(&engine, actors["logiciel"], Role::User).await,
        root: dir.path().to_path_buf(),
        engine,
        actors,
        desks,
        circuits,
        _dir: dir,
    }
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

    /// The mayor's signature, recorded as the sign action records it (the signed file).
    async fn sign(&self, id: &str, name: &str, signed: &[u8], metadata: &[(&str, &str)]) {
        let input = ActionInput {
            metadata: metadata
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        seing_engine::metadata::MetaValue::Text((*v).to_owned()),
                    )
                })
                .collect(),
            ..ActionInput::default()
        };
        self.engine
            .sign(
                self.actors["maire"],
                id.parse().unwrap(),
                input,
                SignedOutput {
                    documents: vec![NewDocument {
                        name: name.into(),
                        media_type: "application/octet-stream".into(),
                        bytes: signed.to_vec(),
                    }],
                    signatures: vec![],
                },
            )
            .await
            .unwrap();
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

    async fn webhook_events(&self, id: &str) -> Vec<String> {
        self.engine
            .dossier_jobs(self.actors["logiciel"].tenant, id.parse().unwrap())
            .await
            .unwrap()
            .iter()
            .filter(|j| j.kind == JobKind::Webhook)
            .filter_map(|j| j.payload["body"]["event"].as_str().map(str::to_owned))
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

    let id = w
        .create(
            "actes-deliberation",
            "Délibération tarifs de l'eau",
            json!({"nature": "DE", "classification": "8.8", "date_decision": "2026-11-20",
                   "objet": "Tarifs de l'eau 2027"}),
            ("deliberation.pdf", b"%PDF-1.7 deliberation\n%%EOF\n"),
        )
        .await;
    w.visa(&id, "dgs").await;
    w.sign(
        &id,
        "deliberation.pdf",
        b"%PDF-1.7 deliberation signee\n%%EOF\n",
        &[("numero_acte", "DEL_2026_042")],
    )
    .await;
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
    let events = w.webhook_events(&id).await;
    for event in [
        "dossier.transmitted",
        "dossier.acknowledged",
        "dossier.archived",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pes_bordereaux_reaches_acknowledged_then_archived_through_a_drop_folder() {
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
    let pes = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><PES_Aller/>";
    let id = w
        .create(
            "pes-bordereaux",
            "Mandats novembre",
            json!({}),
            ("PES_2026_11.xml", pes),
        )
        .await;
    w.visa(&id, "fin").await;
    w.sign(
        &id,
        "PES_2026_11.xml",
        b"<PES_Aller><!-- signe --></PES_Aller>",
        &[],
    )
    .await;
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
    let events = w.webhook_events(&id).await;
    for event in [
        "dossier.transmitted",
        "dossier.acknowledged",
        "dossier.archived",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
    }
    let manifest = w
        .root
        .join("sae/sortie")
        .join(format!("seing-{id}-3"))
        .join("manifest.xml");
    assert!(manifest.is_file());
}
