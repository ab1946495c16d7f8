//! The REST API end to end, in process (`tower::ServiceExt::oneshot` on the real router), on
//! SQLite and on PostgreSQL (a fresh schema per test): a dossier created by software with an
//! API token goes through its circuit by people with sessions; and the security rules.

#[allow(dead_code)]
#[path = "common/database.rs"]
mod database;
#[allow(dead_code)]
#[path = "common/tenant.rs"]
mod tenant;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use database::{Kind, TestDatabase};
use seing_api::http::{ApiSettings, ApiState, auth};
use seing_api::server::{AppState, router};
use seing_engine::Engine;
use seing_engine::access::Role;
use seing_engine::circuit::Template;
use seing_engine::clock::SystemClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::ids::{CircuitId, DeskId};
use seing_engine::model::Actor;
use serde_json::{Value, json};
use tenant::TestTenant;
use tower::ServiceExt;

const SIREN_A: &str = "217500008";
const SIREN_B: &str = "217500016";
const PASSWORD: &str = "mot-de-passe-solide";

/// One service on a fresh database.
struct TestApi {
    app: Router,
    engine: Engine,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl TestApi {
    async fn new(kind: Kind, settings: ApiSettings) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let database = TestDatabase::open(kind, dir.path()).await?;
        let db = database.database.clone();
        let workflows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
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
                settings,
            }),
        );
        Some(Self {
            app,
            engine,
            database,
            _dir: dir,
        })
    }

    async fn close(self) {
        self.database.close().await;
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: Method, uri: &str, who: &Who, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        request = who.apply(request, true);
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    #[track_caller]
    fn expect(&self, status: StatusCode) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts a problem document with this status and returns its body.
    #[track_caller]
    fn problem(&self, status: StatusCode) -> Value {
        let body = self.expect(status);
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body["status"], status.as_u16());
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:seing:problem:")
        );
        body
    }
}

/// How a request authenticates.
enum Who {
    Nobody,
    Token(String),
    Session { cookie: String, csrf: String },
}

impl Who {
    fn apply(
        &self,
        request: axum::http::request::Builder,
        csrf: bool,
    ) -> axum::http::request::Builder {
        match self {
            Who::Nobody => request,
            Who::Token(t) => request.header(header::AUTHORIZATION, format!("Bearer {t}")),
            Who::Session {
                cookie,
                csrf: token,
            } => {
                let request = request.header(header::COOKIE, cookie);
                if csrf {
                    request.header("x-csrf-token", token)
                } else {
                    request
                }
            }
        }
    }
}

/// A tenant with desks Finances ← Agents (parent), DRH, and a "congés" circuit.
struct World {
    admin: Actor,
    users: BTreeMap<&'static str, Actor>,
    desks: BTreeMap<&'static str, DeskId>,
    conges: CircuitId,
}

async fn world(api: &TestApi, siren: &str) -> World {
    let engine = &api.engine;
    // (desk, login, parent desk)
    let people = [
        ("Finances", "fin", None),
        ("DRH", "drh", None),
        ("Agents", "logiciel", Some("Finances")),
    ];
    let tenant =
        TestTenant::with_parents(engine, &format!("Commune {siren}"), siren, &people).await;
    let admin = tenant.admin;
    let hash = auth::hash_password(PASSWORD).unwrap();
    engine
        .set_password_hash(admin.tenant, admin.user, &hash)
        .await
        .unwrap();
    let mut users = BTreeMap::new();
    let mut desks = BTreeMap::new();
    for (desk, login, _) in people {
        let user = tenant.actors[login];
        engine
            .set_password_hash(user.tenant, user.user, &hash)
            .await
            .unwrap();
        users.insert(login, user);
        desks.insert(desk, tenant.desks[desk]);
    }
    let roles = BTreeMap::from([("drh".to_owned(), desks["DRH"])]);
    let conges = engine
        .create_circuit(admin, "Congés", "conges", &roles)
        .await
        .unwrap()
        .id;
    World {
        admin,
        users,
        desks,
        conges,
    }
}

async fn token(api: &TestApi, actor: Actor, role: Role) -> String {
    let secret = auth::new_token_secret().unwrap();
    api.engine
        .create_api_token(Some(actor), role, "test", &auth::secret_hash(&secret))
        .await
        .unwrap();
    secret
}

async fn login(api: &TestApi, siren: &str, user: &str) -> Who {
    let reply = api
        .call(
            Method::POST,
            "/api/v1/session",
            &Who::Nobody,
            Some(json!({"tenant": siren, "login": user, "password": PASSWORD})),
        )
        .await;
    let body = reply.expect(StatusCode::OK);
    let set_cookie = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    Who::Session {
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    }
}

const BOUNDARY: &str = "seing-test-boundary";

fn multipart(parts: &[(&str, Option<&str>, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, media_type, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(format!("Content-Type: {media_type}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_dossier(api: &TestApi, who: &Who, key: Option<&str>, body: Vec<u8>) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/dossiers")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
    request = who.apply(request, true);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    api.send(request.body(Body::from(body)).unwrap()).await
}

fn conges_form(world: &World, title: &str) -> Vec<u8> {
    let meta = json!({
        "title": title,
        "circuit": world.conges,
        "emitter_desk": world.desks["Agents"],
        "metadata": {"jours": 3},
    })
    .to_string();
    let pdf = seing_api::demo::demo_pdf(title);
    multipart(&[
        ("metadata", None, "application/json", meta.as_bytes()),
        ("main", Some("demande.pdf"), "application/pdf", &pdf),
        (
            "annexes",
            Some("planning.txt"),
            "text/plain",
            b"lundi au mercredi",
        ),
    ])
}

/// Software creates a dossier with its token; the finance desk's user visas it with a session
/// (CSRF token), the DRH visas it; the dossier finishes and its journal tells the story.
async fn software_creates_people_visa(api: &TestApi) {
    let w = world(api, SIREN_A).await;
    let software = Who::Token(token(api, w.users["logiciel"], Role::User).await);
    let created = post_dossier(
        api,
        &software,
        Some("demande-1"),
        conges_form(&w, "Congés de Julie"),
    )
    .await;
    let dossier = created.expect(StatusCode::CREATED);
    let id = dossier["id"].as_str().unwrap().to_owned();
    assert_eq!(dossier["state"], "pending");
    assert_eq!(dossier["current_step"], 0);
    assert_eq!(
        created.headers[header::LOCATION],
        format!("/api/v1/dossiers/{id}")
    );

    let documents = api
        .call(
            Method::GET,
            &format!("/api/v1/dossiers/{id}/documents"),
            &software,
            None,
        )
        .await
        .expect(StatusCode::OK);
    let documents = documents.as_array().unwrap();
    assert_eq!(documents.len(), 2);
    let main = documents.iter().find(|d| d["role"] == "main").unwrap();
    let download = api
        .call(
            Method::GET,
            &format!(
                "/api/v1/dossiers/{id}/documents/{}",
                main["id"].as_str().unwrap()
            ),
            &software,
            None,
        )
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body, seing_api::demo::demo_pdf("Congés de Julie"));
    assert_eq!(download.headers[header::CONTENT_TYPE], "application/pdf");

    let fin = login(api, SIREN_A, "fin").await;
    let list = api
        .call(
            Method::GET,
            &format!(
                "/api/v1/dossiers?desk={}&state=pending",
                w.desks["Finances"]
            ),
            &fin,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["reason"], "act");

    let after_visa = api
        .call(
            Method::POST,
            &format!("/api/v1/dossiers/{id}/visa"),
            &fin,
            Some(json!({"version": dossier["version"], "annotation": "Vu, solde suffisant"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(after_visa["state"], "pending");
    assert_eq!(after_visa["current_step"], 1);

    let drh = login(api, SIREN_A, "drh").await;
    let done = api
        .call(
            Method::POST,
            &format!("/api/v1/dossiers/{id}/visa"),
            &drh,
            Some(json!({})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(done["state"], "finished");

    let journal = api
        .call(
            Method::GET,
            &format!("/api/v1/dossiers/{id}/journal"),
            &software,
            None,
        )
        .await
        .expect(StatusCode::OK);
    let actions: Vec<&str> = journal
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"create"), "{actions:?}");
    assert!(actions.contains(&"submit"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "visa").count(),
        2,
        "{actions:?}"
    );
    let fin_user = w.users["fin"].user.to_string();
    assert!(
        journal
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "visa" && e["user"] == fin_user.as_str())
    );

    let admin = Who::Token(token(api, w.admin, Role::TenantAdmin).await);
    let chain = api
        .call(Method::GET, "/api/v1/journal/verify", &admin, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(chain[0]["broken"], Value::Null, "{chain}");
    assert!(chain[0]["entries"].as_i64().unwrap() >= 4);
    // The tenant's journal, two entries per page, walked with the cursor to its end.
    let mut cursor = String::new();
    let mut seqs = Vec::new();
    loop {
        let page = api
            .call(
                Method::GET,
                &format!("/api/v1/journal?limit=2{cursor}"),
                &admin,
                None,
            )
            .await
            .expect(StatusCode::OK);
        seqs.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(seqs.len() as i64, chain[0]["entries"].as_i64().unwrap());
    api.call(Method::GET, "/api/v1/journal", &software, None)
        .await
        .problem(StatusCode::FORBIDDEN);
    api.call(Method::GET, "/api/v1/journal?cursor=-3", &admin, None)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
}

/// The same `Idempotency-Key` with the same form returns the same dossier; with another form, 409.
async fn idempotent_creation(api: &TestApi) {
    let w = world(api, SIREN_A).await;
    let software = Who::Token(token(api, w.users["logiciel"], Role::User).await);
    let first = post_dossier(api, &software, Some("k-1"), conges_form(&w, "A")).await;
    let first = first.expect(StatusCode::CREATED);
    let again = post_dossier(api, &software, Some("k-1"), conges_form(&w, "A")).await;
    let again = again.expect(StatusCode::OK);
    assert_eq!(first["id"], again["id"]);
    let other = post_dossier(api, &software, Some("k-1"), conges_form(&w, "B")).await;
    other.problem(StatusCode::CONFLICT);
    let list = api
        .call(
            Method::GET,
            &format!("/api/v1/dossiers?desk={}", w.desks["Agents"]),
            &Who::Token(token(api, w.users["logiciel"], Role::User).await),
            None,
        )
        .await;
    list.expect(StatusCode::OK);
    let fin = Who::Token(token(api, w.users["fin"], Role::User).await);
    let pending = api
        .call(
            Method::GET,
            &format!("/api/v1/dossiers?desk={}", w.desks["Finances"]),
            &fin,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        pending["items"].as_array().unwrap().len(),
        1,
        "one dossier only: {pending}"
    );
}

/// 401, 403 (role, desk, CSRF), 404 across tenants with the body of an unknown id.
async fn authentication_and_isolation(api: &TestApi) {
    let a = world(api, SIREN_A).await;
    let b = world(api, SIREN_B).await;
    let software = Who::Token(token(api, a.users["logiciel"], Role::User).await);
    let dossier = post_dossier(api, &software, None, conges_form(&a, "Isolé")).await;
    let id = dossier.expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 401: no credential, a wrong token, a revoked token, a made-up session.
    api.call(
        Method::GET,
        &format!("/api/v1/dossiers/{id}"),
        &Who::Nobody,
        None,
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    api.call(
        Method::GET,
        "/api/v1/desks",
        &Who::Token("seing_nope".into()),
        None,
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    api.call(
        Method::GET,
        "/api/v1/desks",
        &Who::Session {
            cookie: "seing_session=forged".into(),
            csrf: "x".into(),
        },
        None,
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    let admin_a = Who::Token(token(api, a.admin, Role::TenantAdmin).await);
    let tokens = api
        .call(Method::GET, "/api/v1/tokens", &admin_a, None)
        .await
        .expect(StatusCode::OK);
    let software_token_id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == a.users["logiciel"].user.to_string().as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        Method::DELETE,
        &format!("/api/v1/tokens/{software_token_id}"),
        &admin_a,
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    api.call(Method::GET, "/api/v1/desks", &software, None)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // 403: a user token on an administrator's resource, a desk the user does not hold.
    let fin_a = Who::Token(token(api, a.users["fin"], Role::User).await);
    api.call(Method::GET, "/api/v1/users", &fin_a, None)
        .await
        .problem(StatusCode::FORBIDDEN);
    api.call(Method::GET, "/api/v1/tenants", &admin_a, None)
        .await
        .problem(StatusCode::FORBIDDEN);
    let drh_a = Who::Token(token(api, a.users["drh"], Role::User).await);
    api.call(
        Method::POST,
        &format!("/api/v1/dossiers/{id}/visa"),
        &drh_a,
        Some(json!({})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);

    // CSRF: a session's state-changing request without (or with a wrong) X-CSRF-Token.
    let fin_session = login(api, SIREN_A, "fin").await;
    let Who::Session { cookie, csrf } = &fin_session else {
        unreachable!()
    };
    let no_csrf = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/dossiers/{id}/visa"))
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let refused = api.send(no_csrf).await.problem(StatusCode::FORBIDDEN);
    assert_eq!(refused["type"], "urn:seing:problem:csrf");
    let wrong_csrf = Who::Session {
        cookie: cookie.clone(),
        csrf: format!("{csrf}x"),
    };
    api.call(
        Method::POST,
        &format!("/api/v1/dossiers/{id}/visa"),
        &wrong_csrf,
        Some(json!({})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    // Reading needs no CSRF token, and the refused visas changed nothing.
    let unchanged = api
        .call(
            Method::GET,
            &format!("/api/v1/dossiers/{id}"),
            &fin_session,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(unchanged["current_step"], 0);

    // 404 across tenants, byte for byte like an unknown id.
    let fin_b = Who::Token(token(api, b.users["fin"], Role::User).await);
    let foreign = api
        .call(Method::GET, &format!("/api/v1/dossiers/{id}"), &fin_b, None)
        .await;
    let unknown = api
        .call(
            Method::GET,
            &format!("/api/v1/dossiers/{}", uuid::Uuid::now_v7()),
            &fin_b,
            None,
        )
        .await;
    foreign.problem(StatusCode::NOT_FOUND);
    assert_eq!(foreign.body, unknown.body);
    for path in ["documents", "journal", "annotations"] {
        api.call(
            Method::GET,
            &format!("/api/v1/dossiers/{id}/{path}"),
            &fin_b,
            None,
        )
        .await
        .problem(StatusCode::NOT_FOUND);
    }
    api.call(
        Method::POST,
        &format!("/api/v1/dossiers/{id}/visa"),
        &fin_b,
        Some(json!({})),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    api.call(
        Method::GET,
        &format!("/api/v1/dossiers?desk={}", a.desks["Finances"]),
        &fin_b,
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    api.call(
        Method::GET,
        &format!("/api/v1/circuits/{}", a.conges),
        &fin_b,
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    // A tenant B administrator cannot hand out a token for a tenant A user.
    let admin_b = Who::Token(token(api, b.admin, Role::TenantAdmin).await);
    api.call(
        Method::POST,
        "/api/v1/tokens",
        &admin_b,
        Some(json!({"user": a.users["fin"].user, "role": "user", "label": "x"})),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
}

/// Annotate, undo, transfer, second opinion, reject and bypass through the API.
async fn every_action(api: &TestApi) {
    let w = world(api, SIREN_A).await;
    let software = Who::Token(token(api, w.users["logiciel"], Role::User).await);
    let fin = Who::Token(token(api, w.users["fin"], Role::User).await);
    let drh = Who::Token(token(api, w.users["drh"], Role::User).await);
    let admin = Who::Token(token(api, w.admin, Role::TenantAdmin).await);
    let created = post_dossier(api, &software, None, conges_form(&w, "Actions")).await;
    let id = created.expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = |action: &str| format!("/api/v1/dossiers/{id}/{action}");

    api.call(
        Method::POST,
        &url("annotations"),
        &fin,
        Some(json!({"body": "note privée", "visibility": "private"})),
    )
    .await
    .expect(StatusCode::CREATED);
    api.call(
        Method::POST,
        &url("annotations"),
        &fin,
        Some(json!({"body": "note publique"})),
    )
    .await
    .expect(StatusCode::CREATED);
    let seen_by_software = api
        .call(Method::GET, &url("annotations"), &software, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        seen_by_software.as_array().unwrap().len(),
        1,
        "{seen_by_software}"
    );
    assert_eq!(seen_by_software[0]["body"], "note publique");

    let after = api
        .call(Method::POST, &url("visa"), &fin, Some(json!({})))
        .await
        .expect(StatusCode::OK);
    assert_eq!(after["current_step"], 1);
    let back = api
        .call(Method::POST, &url("undo"), &fin, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(back["current_step"], 0);
    api.call(Method::POST, &url("undo"), &fin, None)
        .await
        .problem(StatusCode::CONFLICT);

    let opinion = api
        .call(
            Method::POST,
            &url("opinions"),
            &fin,
            Some(json!({"desk": w.desks["DRH"], "question": "Solde ?"})),
        )
        .await
        .expect(StatusCode::CREATED);
    let answered = api
        .call(
            Method::POST,
            &format!(
                "/api/v1/dossiers/{id}/opinions/{}/answer",
                opinion["id"].as_str().unwrap()
            ),
            &drh,
            Some(json!({"answer": "Solde suffisant"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(answered["answer"], "Solde suffisant");

    let moved = api
        .call(
            Method::POST,
            &url("transfer"),
            &fin,
            Some(json!({"to": w.desks["DRH"]})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        moved["steps"][0]["desks"][0],
        w.desks["DRH"].to_string().as_str()
    );
    api.call(
        Method::POST,
        &url("reject"),
        &drh,
        Some(json!({"reason": ""})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let rejected = api
        .call(
            Method::POST,
            &url("reject"),
            &drh,
            Some(json!({"reason": "Dates incompatibles"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(rejected["state"], "rejected");
    let stale = api
        .call(Method::POST, &url("visa"), &drh, Some(json!({})))
        .await;
    assert!(
        stale.status == StatusCode::CONFLICT || stale.status == StatusCode::FORBIDDEN,
        "{}",
        stale.status
    );

    let other = post_dossier(api, &software, None, conges_form(&w, "Contourné")).await;
    let other = other.expect(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bypass = format!("/api/v1/dossiers/{other}/bypass");
    api.call(
        Method::POST,
        &bypass,
        &fin,
        Some(json!({"reason": "urgence"})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    let skipped = api
        .call(
            Method::POST,
            &bypass,
            &admin,
            Some(json!({"reason": "urgence"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(skipped["current_step"], 1);
    assert_eq!(skipped["steps"][0]["bypassed"], true);

    // The operator creates a tenant and its administrator, who can then log in.
    let secret = auth::new_token_secret().unwrap();
    api.engine
        .create_api_token(None, Role::Operator, "ops", &auth::secret_hash(&secret))
        .await
        .unwrap();
    let operator = Who::Token(secret);
    let body = json!({"name": "Commune C", "siren": "217500024", "departement": "2A",
        "admin_login": "chef", "admin_name": "Chef", "admin_password": PASSWORD});
    api.call(
        Method::POST,
        "/api/v1/tenants",
        &operator,
        Some(body.clone()),
    )
    .await
    .expect(StatusCode::CREATED);
    api.call(Method::POST, "/api/v1/tenants", &operator, Some(body))
        .await
        .problem(StatusCode::CONFLICT);
    api.call(
        Method::GET,
        &format!("/api/v1/dossiers/{id}"),
        &operator,
        None,
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    login(api, "217500024", "chef").await;
}

/// A tenant administrator edits a circuit; new dossiers follow it, other tenants cannot see it.
async fn circuit_editing(api: &TestApi) {
    let w = world(api, SIREN_A).await;
    let b = world(api, SIREN_B).await;
    let admin = Who::Token(token(api, w.admin, Role::TenantAdmin).await);
    let url = format!("/api/v1/circuits/{}", w.conges);
    let edit = json!({"name": "Congés (finances)", "roles": {"drh": w.desks["Finances"]}});
    let fin = Who::Token(token(api, w.users["fin"], Role::User).await);
    api.call(Method::PUT, &url, &fin, Some(edit.clone()))
        .await
        .problem(StatusCode::FORBIDDEN);
    let admin_b = Who::Token(token(api, b.admin, Role::TenantAdmin).await);
    api.call(Method::PUT, &url, &admin_b, Some(edit.clone()))
        .await
        .problem(StatusCode::NOT_FOUND);
    api.call(
        Method::PUT,
        &url,
        &admin,
        Some(json!({"name": "x", "roles": {}})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let edited = api
        .call(Method::PUT, &url, &admin, Some(edit))
        .await
        .expect(StatusCode::OK);
    assert_eq!(edited["name"], "Congés (finances)");
    let listed = api
        .call(Method::GET, "/api/v1/circuits", &fin, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed[0]["name"], "Congés (finances)");
    let software = Who::Token(token(api, w.users["logiciel"], Role::User).await);
    let created = post_dossier(api, &software, None, conges_form(&w, "Après édition")).await;
    let dossier = created.expect(StatusCode::CREATED);
    assert_eq!(
        dossier["steps"][1]["desks"][0],
        w.desks["Finances"].to_string().as_str()
    );
}

/// Malformed bodies are 400/413/415/422 problems, never 500; failed logins are rate limited.
async fn bad_input(api: &TestApi) {
    let w = world(api, SIREN_A).await;
    let software = Who::Token(token(api, w.users["logiciel"], Role::User).await);
    let admin = Who::Token(token(api, w.admin, Role::TenantAdmin).await);

    // Malformed JSON: 400; well-formed with wrong types or unknown fields: 422.
    let broken = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/desks")
        .header(
            header::AUTHORIZATION,
            match &admin {
                Who::Token(t) => format!("Bearer {t}"),
                _ => unreachable!(),
            },
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    api.send(broken).await.problem(StatusCode::BAD_REQUEST);
    api.call(
        Method::POST,
        "/api/v1/desks",
        &admin,
        Some(json!({"name": 3})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    api.call(
        Method::POST,
        "/api/v1/desks",
        &admin,
        Some(json!({"name": "X", "colour": "red"})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    api.call(
        Method::POST,
        "/api/v1/users",
        &admin,
        Some(json!({"login": "x", "display_name": "x", "password": "court"})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);

    // Multipart: not multipart, metadata not JSON, main missing, unknown part, garbage.
    let not_multipart = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/dossiers")
        .header(
            header::AUTHORIZATION,
            match &software {
                Who::Token(t) => format!("Bearer {t}"),
                _ => unreachable!(),
            },
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let reply = api.send(not_multipart).await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    reply.problem(reply.status);
    let cases: Vec<Vec<u8>> = vec![
        multipart(&[
            ("metadata", None, "application/json", b"{not json"),
            ("main", Some("a.pdf"), "application/pdf", b"%PDF"),
        ]),
        multipart(&[(
            "metadata",
            None,
            "application/json",
            json!({"title": "t", "circuit": w.conges, "emitter_desk": w.desks["Agents"]})
                .to_string()
                .as_bytes(),
        )]),
        multipart(&[
            ("metadata", None, "application/json", b"{}"),
            ("main", Some("a.pdf"), "application/pdf", b"%PDF"),
        ]),
        multipart(&[("virus", Some("x.exe"), "application/octet-stream", b"MZ")]),
        b"--seing-test-boundary\r\nnonsense".to_vec(),
        Vec::new(),
    ];
    for body in cases {
        let reply = post_dossier(api, &software, None, body).await;
        assert!(
            reply.status == StatusCode::BAD_REQUEST
                || reply.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        reply.problem(reply.status);
    }
    // An unknown circuit and a foreign-looking desk are 404, an empty main document 422.
    let meta =
        json!({"title": "t", "circuit": uuid::Uuid::now_v7(), "emitter_desk": w.desks["Agents"]})
            .to_string();
    post_dossier(
        api,
        &software,
        None,
        multipart(&[
            ("metadata", None, "application/json", meta.as_bytes()),
            ("main", Some("a.pdf"), "application/pdf", b"%PDF-1.4"),
        ]),
    )
    .await
    .problem(StatusCode::NOT_FOUND);

    // Oversized upload: 413 (the test service accepts 64 KiB).
    let big = vec![b'A'; 200 * 1024];
    let meta = json!({"title": "gros", "circuit": w.conges, "emitter_desk": w.desks["Agents"]})
        .to_string();
    post_dossier(
        api,
        &software,
        None,
        multipart(&[
            ("metadata", None, "application/json", meta.as_bytes()),
            ("main", Some("gros.pdf"), "application/pdf", &big),
        ]),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);

    // Bad ids and queries.
    api.call(Method::GET, "/api/v1/dossiers/not-a-uuid", &software, None)
        .await
        .problem(StatusCode::NOT_FOUND);
    api.call(Method::GET, "/api/v1/dossiers?desk=zzz", &software, None)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    api.call(
        Method::GET,
        &format!("/api/v1/dossiers?desk={}&cursor=bad", w.desks["Agents"]),
        &software,
        None,
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    api.call(Method::GET, "/api/v1/nothing-here", &software, None)
        .await
        .problem(StatusCode::NOT_FOUND);

    // Login: wrong passwords are 401 until the limit, then 429 even with the right password.
    for _ in 0..3 {
        api.call(
            Method::POST,
            "/api/v1/session",
            &Who::Nobody,
            Some(json!({"tenant": SIREN_A, "login": "fin", "password": "wrong-password"})),
        )
        .await
        .problem(StatusCode::UNAUTHORIZED);
    }
    let limited = api
        .call(
            Method::POST,
            "/api/v1/session",
            &Who::Nobody,
            Some(json!({"tenant": SIREN_A, "login": "fin", "password": PASSWORD})),
        )
        .await;
    limited.problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    // Another login is not affected.
    login(api, SIREN_A, "drh").await;
}

/// The OpenAPI document lists the operations; the docs page is served without any CDN.
async fn openapi_and_docs(api: &TestApi) {
    let doc = api
        .call(Method::GET, "/api/v1/openapi.json", &Who::Nobody, None)
        .await
        .expect(StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/dossiers",
        "/dossiers/{id}/visa",
        "/session",
        "/tokens",
        "/circuits",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(doc["components"]["schemas"].get("Problem").is_some());
    assert!(doc["components"]["securitySchemes"].get("bearer").is_some());
    let page = api
        .call(Method::GET, "/api/v1/docs", &Who::Nobody, None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("openapi.json"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external asset"
    );
}

fn test_settings() -> ApiSettings {
    ApiSettings {
        max_upload_bytes: 64 * 1024,
        login_max_failures: 3,
        ..ApiSettings::default()
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let api = super::TestApi::new(super::Kind::Sqlite, super::test_settings()).await.unwrap();
                    super::$name(&api).await;
                    api.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(api) = super::TestApi::new(super::Kind::Postgres, super::test_settings()).await else { return };
                    super::$name(&api).await;
                    api.close().await;
                }
            )*
        }
    };
}

both_backends!(
    software_creates_people_visa,
    idempotent_creation,
    every_action,
    circuit_editing,
    authentication_and_isolation,
    bad_input,
    openapi_and_docs,
);
