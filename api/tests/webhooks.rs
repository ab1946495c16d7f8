//! Webhooks end to end, on SQLite and on PostgreSQL: subscriptions made through the API, a
//! dossier driven through the API, the service's outbox worker delivering to a local HTTP
//! receiver that checks each HMAC signature and timestamp; a receiver answering 500 gets the
//! event again and then never more; a deleted subscription gets nothing.

#[path = "common/database.rs"]
mod database;
#[path = "common/tenant.rs"]
mod tenant;
#[path = "common/webhook_receiver.rs"]
mod webhook_receiver;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use database::{Kind, TestDatabase};
use seing_api::http::{ApiSettings, ApiState, auth};
use seing_api::server::{AppState, router};
use seing_engine::Engine;
use seing_engine::access::Role;
use seing_engine::clock::SystemClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::ids::{DeskId, DossierId};
use seing_engine::model::{ActionInput, Actor, NewDocument, SignedOutput};
use seing_engine::outbox::JobStatus;
use serde_json::{Value, json};
use tenant::TestTenant;
use tower::ServiceExt;
use webhook_receiver::{Receiver, Worker};

const SIREN: &str = "217500008";
const SECRET: &str = "secret-du-recepteur-erp";

/// The service on a fresh database, with a tenant (Finances → visa, Maire → signature).
struct Service {
    app: Router,
    engine: Engine,
    database: TestDatabase,
    admin: Actor,
    fin: Actor,
    maire: Actor,
    finances: DeskId,
    circuit: String,
    _dir: tempfile::TempDir,
}

impl Service {
    async fn new(postgres: bool) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let kind = if postgres {
            Kind::Postgres
        } else {
            Kind::Sqlite
        };
        let database = TestDatabase::open(kind, dir.path()).await?;
        let db = database.database.clone();
        let engine = Engine::new(
            db.clone(),
            DocumentStore::new(dir.path().join("documents")),
            Arc::new(SystemClock),
            seing_engine::engine::shipped_templates().unwrap(),
        );
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
            "Commune de Test",
            SIREN,
            &[("Finances", "fin"), ("Maire", "maire")],
        )
        .await;
        let roles = BTreeMap::from([
            ("viseur".to_owned(), desks["Finances"]),
            ("signataire".to_owned(), desks["Maire"]),
        ]);
        let circuit = engine
            .create_circuit(admin, "Visa puis signature", "visa-signature", &roles)
            .await
            .unwrap()
            .id
            .to_string();
        Some(Self {
            app,
            engine,
            database,
            admin,
            fin: actors["fin"],
            maire: actors["maire"],
            finances: desks["Finances"],
            circuit,
            _dir: dir,
        })
    }

    async fn close(self) {
        self.database.close().await;
    }

    async fn token(&self, actor: Actor, role: Role) -> String {
        let secret = auth::new_token_secret().unwrap();
        self.engine
            .create_api_token(Some(actor), role, "test", &auth::secret_hash(&secret))
            .await
            .unwrap();
        secret
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    async fn json(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(
            method,
            uri,
            token,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Creates a dossier through the API, as the finance desk's software (sent into its circuit
    /// at once).
    async fn submitted(&self, token: &str, title: &str) -> DossierId {
        const BOUNDARY: &str = "hooks-boundary";
        let meta = json!({"title": title, "circuit": self.circuit, "emitter_desk": self.finances, "metadata": {}})
            .to_string();
        let pdf = seing_api::demo::demo_pdf(title);
        let mut body = Vec::new();
        for (disposition, media_type, bytes) in [
            ("name=\"metadata\"", "application/json", meta.as_bytes()),
            (
                "name=\"main\"; filename=\"d.pdf\"",
                "application/pdf",
                &pdf[..],
            ),
        ] {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\nContent-Type: {media_type}\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let (status, created) = self
            .call(
                Method::POST,
                "/api/v1/dossiers",
                token,
                &format!("multipart/form-data; boundary={BOUNDARY}"),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["state"], "pending", "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        id.parse().unwrap()
    }

    /// Waits until no webhook job of `dossiers` is left to deliver.
    async fn settled(&self, dossiers: &[DossierId]) {
        for _ in 0..600 {
            let mut busy = false;
            for id in dossiers {
                let jobs = self
                    .engine
                    .dossier_jobs(self.admin.tenant, *id)
                    .await
                    .unwrap();
                busy |= jobs
                    .iter()
                    .any(|j| matches!(j.status, JobStatus::Pending | JobStatus::Running));
            }
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("webhook jobs still pending after 30 s");
    }
}

async fn webhooks_are_signed_retried_and_dropped_when_deleted(postgres: bool) {
    let Some(service) = Service::new(postgres).await else {
        return;
    };
    let (receiver, base) = Receiver::start().await;
    let admin = service.token(service.admin, Role::TenantAdmin).await;
    let software = service.token(service.fin, Role::User).await;
    // Subscriptions through the API: tenant administrators only, unknown events refused.
    let (status, _) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            &software,
            json!({"url": format!("{base}/x")}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            &admin,
            json!({"url": format!("{base}/x"), "events": ["dossier.eaten"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("dossier.eaten")
    );
    let (status, every) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            &admin,
            json!({"url": format!("{base}/every"), "secret": SECRET}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{every}");
    assert_eq!(every["secret"], SECRET);
    let (status, flaky) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            &admin,
            json!({"url": format!("{base}/flaky"), "events": ["dossier.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{flaky}");
    let flaky_secret = flaky["secret"].as_str().unwrap().to_owned();
    assert!(flaky_secret.len() >= 40, "{flaky_secret}");
    assert_eq!(flaky["events"], json!(["dossier.created"]));
    let (_, deleted) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            &admin,
            json!({"url": format!("{base}/deleted")}),
        )
        .await;
    let (status, listed) = service
        .call(
            Method::GET,
            "/api/v1/webhooks",
            &admin,
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(listed.to_string().contains("/flaky"));
    assert!(
        !listed.to_string().contains(SECRET),
        "secrets are never listed"
    );

    // A dossier signed, one rejected; their events are written with each change.
    let signed = service.submitted(&software, "Budget primitif").await;
    let (status, body) = service
        .json(
            Method::POST,
            &format!("/api/v1/dossiers/{signed}/visa"),
            &software,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    service
        .engine
        .sign(
            service.maire,
            signed,
            ActionInput::default(),
            SignedOutput {
                documents: vec![NewDocument {
                    name: "budget-signe.pdf".into(),
                    media_type: "application/pdf".into(),
                    bytes: seing_api::demo::demo_pdf("signé"),
                }],
                signatures: Vec::new(),
            },
        )
        .await
        .unwrap();
    let rejected = service.submitted(&software, "Subvention").await;
    let (status, body) = service
        .json(
            Method::POST,
            &format!("/api/v1/dossiers/{rejected}/reject"),
            &software,
            json!({"reason": "montant à revoir"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Deleted before the worker runs: its queued deliveries are dropped.
    let deleted_id = deleted["id"].as_str().unwrap();
    let (status, _) = service
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{deleted_id}"),
            &admin,
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let worker = Worker::start(&service.engine);
    service.settled(&[signed, rejected]).await;

    let every = receiver.at("/every");
    for delivery in &every {
        delivery.verify(SECRET).unwrap();
        let body = delivery.json();
        assert_eq!(body["event"], delivery.event);
        assert_eq!(body["id"], delivery.delivery);
        assert_eq!(body["tenant"], service.admin.tenant.to_string());
    }
    let events_of = |id: DossierId| -> Vec<String> {
        every
            .iter()
            .filter(|d| d.json()["dossier"]["id"] == id.to_string())
            .map(|d| d.event.clone())
            .collect()
    };
    assert_eq!(
        events_of(signed),
        [
            "dossier.created",
            "dossier.submitted",
            "step.completed",
            "step.completed",
            "dossier.signed",
            "dossier.finished"
        ]
    );
    assert_eq!(
        events_of(rejected),
        ["dossier.created", "dossier.submitted", "dossier.rejected"]
    );
    let rejection = every
        .iter()
        .find(|d| d.event == "dossier.rejected")
        .unwrap()
        .json();
    assert_eq!(rejection["reason"], "montant à revoir");
    assert_eq!(rejection["dossier"]["state"], "rejected");
    let signature = every
        .iter()
        .find(|d| d.event == "dossier.signed")
        .unwrap()
        .json();
    assert_eq!(signature["step"]["action"], "signature");
    assert_eq!(signature["documents"][0]["name"], "budget-signe.pdf");
    // Every delivery id is unique: nothing was delivered twice to the healthy receiver.
    let mut ids: Vec<&str> = every.iter().map(|d| d.delivery.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), every.len());

    // The flaky receiver got each dossier.created twice (500, then 204), same delivery id,
    // signed with its own secret; then nothing more.
    receiver.wait_for("/flaky", "dossier.created", 3).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let flaky = receiver.at("/flaky");
    assert_eq!(flaky.len(), 3, "{flaky:?}");
    let first = &flaky[0];
    assert!(flaky.iter().all(|d| d.event == "dossier.created"));
    assert_eq!(
        flaky
            .iter()
            .filter(|d| d.delivery == first.delivery)
            .count(),
        2,
        "the failed delivery came again with the same id"
    );
    for delivery in &flaky {
        delivery.verify(&flaky_secret).unwrap();
        assert!(delivery.verify(SECRET).is_err());
    }
    assert!(receiver.at("/deleted").is_empty());
    let mut jobs = Vec::new();
    for id in [signed, rejected] {
        jobs.extend(
            service
                .engine
                .dossier_jobs(service.admin.tenant, id)
                .await
                .unwrap(),
        );
    }
    let dropped: Vec<_> = jobs
        .iter()
        .filter(|j| j.payload["subscription"] == deleted["id"])
        .collect();
    assert!(!dropped.is_empty());
    for job in dropped {
        assert_eq!(job.status, JobStatus::Failed);
        assert!(
            job.last_error.as_deref().unwrap().contains("supprimé"),
            "{job:?}"
        );
    }
    let retried = jobs
        .iter()
        .find(|j| j.id.to_string() == first.delivery)
        .unwrap();
    assert_eq!((retried.status, retried.attempts), (JobStatus::Done, 2));

    worker.stop().await;
    service.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_webhooks_are_signed_retried_and_dropped_when_deleted() {
    webhooks_are_signed_retried_and_dropped_when_deleted(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_webhooks_are_signed_retried_and_dropped_when_deleted() {
    webhooks_are_signed_retried_and_dropped_when_deleted(true).await;
}
