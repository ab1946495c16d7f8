//! The service in process for the tests that drive dossiers through the REST API (`circuits`,
//! `notification`, `webhooks`): a fresh database (SQLite or PostgreSQL), the HTTP router, the
//! test TSA, a tenant with one user per desk, a business application's webhook receiver (which
//! [`Service::subscribe`] subscribes to every event), and the calls that software and people
//! make through the REST API: creating a dossier (multipart), a visa, a signature through the
//! two-phase API (`POST /signature-batches`, the digests signed with the élu's test key,
//! `POST /signature-batches/{id}/signatures`).
//!
//! A test binary using it also declares the `database`, `multipart`, `signing_keys`, `tenant`
//! and `webhook_receiver` modules of `common/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use seing_api::http::{ApiSettings, ApiState, auth};
use seing_api::server::{AppState, router};
use seing_certs_test::pki::TestPki;
use seing_certs_test::tsa::TestTsa;
use seing_engine::Engine;
use seing_engine::access::Role;
use seing_engine::clock::SystemClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::ids::{CircuitId, DeskId};
use seing_engine::model::Actor;
use seing_engine::signing::SigningSettings;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::database::{Kind, TestDatabase};
use crate::multipart::{content_type, multipart};
use crate::signing_keys::{chain_of, sign_items, software_key};
use crate::tenant::TestTenant;
use crate::webhook_receiver::{Receiver, eventually};

/// The tenant's SIREN.
pub const SIREN: &str = "213500002";
/// The secret of the business application's webhook subscription.
pub const SECRET: &str = "secret-du-logiciel-metier";

/// The webhooks of a dossier created by software, visaed, signed, transmitted (or notified),
/// acknowledged and archived, in the order of its life.
pub const EVERY_TRANSITION: [&str; 9] = [
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

/// The service, its tenant and the tokens of its callers.
pub struct Service {
    /// The REST API.
    pub app: Router,
    /// The engine behind it.
    pub engine: Engine,
    /// The database (closed by [`Service::close`]).
    pub database: TestDatabase,
    /// The business application's webhook endpoint.
    pub receiver: Receiver,
    /// Its base URL.
    pub receiver_url: String,
    /// The test PKI (the élu's certificate and key).
    pub pki: &'static TestPki,
    /// The timestamping authority of signatures and receipts.
    pub tsa: TestTsa,
    /// The tenant's administrator.
    pub admin: Actor,
    /// Users by login.
    pub actors: BTreeMap<String, Actor>,
    /// Desks by name.
    pub desks: BTreeMap<String, DeskId>,
    /// The tenant administrator's API token.
    pub admin_token: String,
    /// The business software's API token.
    pub software: String,
    /// A folder for the test's drop folders and mail.
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// The service on a fresh `kind` database, with the tenant « Commune de Démo » whose users
    /// hold the desks `people` (`(desk, login)`), the business software being user `software`,
    /// trusting the test root for signers; `None` when PostgreSQL is out of reach outside CI.
    pub async fn start(kind: Kind, people: &[(&str, &str)], software: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let database = TestDatabase::open(kind, dir.path()).await?;
        let db = database.database.clone();
        let pki = TestPki::shared();
        let tsa = TestTsa::start(pki).unwrap();
        let engine = Engine::new(
            db.clone(),
            DocumentStore::new(dir.path().join("documents")),
            Arc::new(SystemClock),
            seing_engine::engine::shipped_templates().unwrap(),
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
        } = TestTenant::create(&engine, "Commune de Démo", SIREN, people).await;
        let (receiver, receiver_url) = Receiver::start().await;
        let admin_token = token(&engine, admin, Role::TenantAdmin).await;
        let software = token(&engine, actors[software], Role::User).await;
        let service = Self {
            app,
            engine,
            database,
            receiver,
            receiver_url,
            pki,
            tsa,
            admin,
            actors,
            desks,
            admin_token,
            software,
            root: dir.path().to_path_buf(),
            _dir: dir,
        };
        // Signers' certificates chain to the test root; its CRL comes with it.
        let pem = std::fs::read_to_string(&pki.root_ca).unwrap()
            + &std::fs::read_to_string(&pki.personnes_crl_pem).unwrap();
        let (status, body) = service
            .json(
                Method::POST,
                "/api/v1/trust-anchors",
                &service.admin_token,
                json!({"pem": pem}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Some(service)
    }

    /// Subscribes the receiver's `/seing` to every event, with [`SECRET`].
    pub async fn subscribe(&self) {
        self.engine
            .create_webhook(
                self.admin,
                seing_engine::webhooks::NewWebhook {
                    url: format!("{}/seing", self.receiver_url),
                    events: Vec::new(),
                    secret: SECRET.into(),
                    active: true,
                },
            )
            .await
            .unwrap();
    }

    /// Closes the database.
    pub async fn close(self) {
        self.database.close().await;
    }

    /// A new API token of `login`.
    pub async fn token_of(&self, login: &str) -> String {
        token(&self.engine, self.actors[login], Role::User).await
    }

    /// A request without a body.
    pub async fn empty(&self, method: Method, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(method, uri, token, Request::new(Body::empty()))
            .await
    }

    /// A circuit from `template`, each role given the desk named beside it.
    pub async fn circuit(&self, template: &str, roles: &[(&str, &str)]) -> CircuitId {
        let roles = roles
            .iter()
            .map(|(role, desk)| (role.to_string(), self.desks[*desk]))
            .collect();
        self.engine
            .create_circuit(self.admin, template, template, &roles)
            .await
            .unwrap()
            .id
    }

    /// Stores the connector settings through the API, as the tenant administrator.
    pub async fn connectors(&self, settings: Value) {
        let (status, body) = self
            .json(
                Method::PUT,
                "/api/v1/connectors",
                &self.admin_token,
                settings,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Sends `request` as `method uri` with `token`; the status and the JSON answer (`null`
    /// when it is not JSON).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        request: Request<Body>,
    ) -> (StatusCode, Value) {
        let (mut parts, body) = request.into_parts();
        parts.method = method;
        parts.uri = uri.parse().unwrap();
        parts.headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let (status, bytes) = self.send(Request::from_parts(parts, body)).await;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// Sends `request` to the API as it is: the status and the bytes.
    async fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    /// A JSON request.
    pub async fn json(
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

    /// `GET uri` as the business software; the answer must be `200`.
    pub async fn get(&self, uri: &str) -> Value {
        let (status, body) = self.empty(Method::GET, uri, &self.software).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
    }

    /// `GET uri` without credentials, as a person outside the authority opening a link: the
    /// status and the bytes.
    pub async fn open(&self, uri: &str) -> (StatusCode, Vec<u8>) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// The dossier as the API shows it to the business software.
    pub async fn dossier(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/dossiers/{id}")).await
    }

    /// The dossier's state.
    pub async fn state(&self, id: &str) -> String {
        self.dossier(id).await["state"].as_str().unwrap().to_owned()
    }

    /// Waits (30 s at most) until the dossier is at `state`.
    pub async fn wait_state(&self, id: &str, state: &str) {
        eventually(async || {
            let now = self.state(id).await;
            if now == state {
                Ok(())
            } else {
                Err(format!("dossier {id} {now}, not {state}"))
            }
        })
        .await
    }

    /// The dossier's journal as the API shows it.
    pub async fn journal(&self, id: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/dossiers/{id}/journal"))
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// Creates a dossier as the business software (sent into its circuit at once): `fields`
    /// is the `metadata` part (title, circuit, emitter desk, metadata…), `main` the main
    /// document (name, bytes). Its id.
    pub async fn create(&self, fields: Value, main: (&str, &[u8])) -> String {
        let fields = fields.to_string();
        let body = multipart(&[
            ("metadata", None, "application/json", fields.as_bytes()),
            ("main", Some(main.0), "application/octet-stream", main.1),
        ]);
        let request = Request::builder()
            .header(header::CONTENT_TYPE, content_type())
            .body(Body::from(body))
            .unwrap();
        let (status, created) = self
            .call(Method::POST, "/api/v1/dossiers", &self.software, request)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["state"], "pending", "{created}");
        created["id"].as_str().unwrap().to_owned()
    }

    /// Sends a draft into its circuit again, as the business software.
    pub async fn submit(&self, id: &str) {
        let (status, body) = self
            .json(
                Method::POST,
                &format!("/api/v1/dossiers/{id}/submit"),
                &self.software,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// The visa of `login` on the current step, setting `metadata` (a JSON object).
    pub async fn visa(&self, id: &str, login: &str, metadata: Value) {
        let token = self.token_of(login).await;
        let (status, body) = self
            .json(
                Method::POST,
                &format!("/api/v1/dossiers/{id}/visa"),
                &token,
                json!({"metadata": metadata}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// `login` signs through the two-phase API with the élu's test certificate: the batch
    /// gives the digests, the test key signs them, the values are posted back.
    pub async fn sign(&self, id: &str, login: &str) {
        let token = self.token_of(login).await;
        let (status, batch) = self
            .json(
                Method::POST,
                "/api/v1/signature-batches",
                &token,
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
                &token,
                json!({"items": items}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{results}");
        assert_eq!(results["results"][0]["status"], "signed", "{results}");
    }

    /// The events the receiver got at `/seing` about dossier `id`, in order, each signature
    /// checked.
    pub fn webhook_events(&self, id: &str) -> Vec<String> {
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

    /// Waits (30 s at most) until the receiver got `count` events about dossier `id`; them.
    pub async fn wait_webhooks(&self, id: &str, count: usize) -> Vec<String> {
        eventually(async || {
            let events = self.webhook_events(id);
            if events.len() >= count {
                Ok(events)
            } else {
                Err(format!(
                    "{} webhooks of {count} for {id}: {events:?}",
                    events.len()
                ))
            }
        })
        .await
    }
}

async fn token(engine: &Engine, actor: Actor, role: Role) -> String {
    let secret = auth::new_token_secret().unwrap();
    engine
        .create_api_token(Some(actor), role, "test", &auth::secret_hash(&secret))
        .await
        .unwrap();
    secret
}
