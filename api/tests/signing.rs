//! Signing through the API, on SQLite and PostgreSQL: software creates 15 PES dossiers, the
//! finance desk visas them, the maire's `seing client batch-sign` (the real binary, a SoftHSM2
//! token, one C_Login counted by pkcs11-spy) signs them all; every signed PES passes the PES XSD
//! (xmllint), xmlsec1 and the oracle. The refusals: a value that does not match the
//! certificate, expired / revoked / non-signing certificates, another tenant's dossier, the
//! wrong desk, an expired or reused batch. The service's outbox worker delivers the webhooks
//! of the 15 dossiers to a local receiver that checks their HMAC signatures. Server-held keys with the real `seing serve`: a wrong
//! PIN changes nothing, the right one signs, and neither reaches the logs.

#[allow(dead_code)]
#[path = "common/database.rs"]
mod database;
#[path = "common/multipart.rs"]
mod multipart;
#[path = "common/resources.rs"]
mod resources;
#[path = "common/signing_keys.rs"]
mod signing_keys;
#[path = "common/tenant.rs"]
mod tenant;
#[path = "common/webhook_receiver.rs"]
mod webhook_receiver;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use database::{Kind, TestDatabase};
use multipart::{content_type, multipart};
use resources::{on_ci, pes, resource, specs};
use seing_api::http::{ApiSettings, ApiState, auth};
use seing_api::server::{AppState, router};
use seing_certs_test::pki::TestPki;
use seing_engine::Engine;
use seing_engine::access::Role;
use seing_engine::circuit::Template;
use seing_engine::clock::ManualClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::model::Actor;
use serde_json::{Value, json};
use signing_keys::{chain_of, der_b64, sign_items, software_key};
use tenant::TestTenant;
use webhook_receiver::{Receiver, Worker};

const SIREN_A: &str = "217500008";
const SIREN_B: &str = "217500016";
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

fn softhsm_present() -> bool {
    if Path::new(SOFTHSM).exists() {
        return true;
    }
    assert!(!on_ci(), "SoftHSM2 is required when CI=true");
    eprintln!("skipped: SoftHSM2 not installed");
    false
}

/// A JSON client of the API over real HTTP.
struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    fn new(base: &str) -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            base: base.to_owned(),
        }
    }

    fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Vec<u8>) {
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(100 * 1024 * 1024)
            .read_to_vec()
            .unwrap();
        (status, body)
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, Vec<u8>) {
        let url = format!("{}/api/v1{path}", self.base);
        let auth = format!("Bearer {token}");
        Self::read(match (method, body) {
            ("GET", _) => self.agent.get(url).header("Authorization", auth).call(),
            (_, Some((media, bytes))) => self
                .agent
                .post(url)
                .header("Authorization", auth)
                .header("Content-Type", media)
                .send(bytes),
            (_, None) => self
                .agent
                .post(url)
                .header("Authorization", auth)
                .send_empty(),
        })
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let (status, bytes) = self.raw(
            method,
            path,
            token,
            body.map(|b| ("application/json", b.to_string().into_bytes())),
        );
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    #[track_caller]
    fn expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let (got, value) = self.call(method, path, token, body);
        assert_eq!(got, status, "{method} {path}: {value}");
        value
    }
}

/// One in-process service listening on a TCP port, on a fresh database.
struct Service {
    rt: tokio::runtime::Runtime,
    engine: Engine,
    clock: Arc<ManualClock>,
    http: Http,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start(kind: Kind) -> Option<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let database = rt.block_on(TestDatabase::open(kind, dir.path()))?;
        let db = database.database.clone();
        let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
        let engine = Engine::new(
            db.clone(),
            DocumentStore::new(dir.path().join("documents")),
            clock.clone(),
            Template::load_dir(&workflows).unwrap(),
        );
        let app = router(
            Arc::new(AppState { database: db }),
            Arc::new(ApiState {
                engine: engine.clone(),
                settings: ApiSettings::default(),
            }),
        );
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        rt.spawn(async move { axum::serve(listener, app).await });
        Some(Self {
            rt,
            engine,
            clock,
            http: Http::new(&base),
            database,
            _dir: dir,
        })
    }

    fn close(self) {
        self.rt.block_on(self.database.close());
    }
}

/// A tenant with desks Logiciel, Finances and Maire, the PES circuit, and one token per user.
struct World {
    users: BTreeMap<&'static str, Actor>,
    tokens: BTreeMap<&'static str, String>,
    desks: BTreeMap<&'static str, String>,
    circuit: String,
}

async fn world(engine: &Engine, siren: &str) -> World {
    // (desk, login)
    let people = [
        ("Logiciel", "logiciel"),
        ("Finances", "finances"),
        ("Maire", "maire"),
    ];
    let tenant = TestTenant::create(engine, &format!("Commune {siren}"), siren, &people).await;
    let admin = tenant.admin;
    let mut users = BTreeMap::from([("admin", admin)]);
    let mut desks = BTreeMap::new();
    for (desk, login) in people {
        users.insert(login, tenant.actors[login]);
        desks.insert(login, tenant.desks[desk].to_string());
    }
    let roles = BTreeMap::from([
        ("finances".to_owned(), tenant.desks["Finances"]),
        ("maire".to_owned(), tenant.desks["Maire"]),
    ]);
    let circuit = engine
        .create_circuit(admin, "Bordereaux PES", "pes-bordereaux", &roles)
        .await
        .unwrap()
        .id
        .to_string();
    let mut tokens = BTreeMap::new();
    for (name, actor) in &users {
        let role = if *name == "admin" {
            Role::TenantAdmin
        } else {
            Role::User
        };
        let secret = auth::new_token_secret().unwrap();
        engine
            .create_api_token(Some(*actor), role, "test", &auth::secret_hash(&secret))
            .await
            .unwrap();
        tokens.insert(*name, secret);
    }
    World {
        users,
        tokens,
        desks,
        circuit,
    }
}

/// Trusts the test root and the personnes CRL, through the API as the tenant's administrator.
fn trust(http: &Http, w: &World, pki: &TestPki) {
    let pem = std::fs::read_to_string(&pki.root_ca).unwrap()
        + &std::fs::read_to_string(&pki.personnes_crl_pem).unwrap();
    let added = http.expect(
        201,
        "POST",
        "/trust-anchors",
        &w.tokens["admin"],
        Some(json!({"pem": pem})),
    );
    assert_eq!(added.as_array().unwrap().len(), 2, "{added}");
    let listed = http.expect(200, "GET", "/trust-anchors", &w.tokens["maire"], None);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let (status, _) = http.call(
        "POST",
        "/trust-anchors",
        &w.tokens["maire"],
        Some(json!({"pem": "x"})),
    );
    assert_eq!(status, 403, "only administrators change the trust store");
}

/// Software creates a PES dossier on the PES circuit; the finance desk visas it.
fn pes_dossier(http: &Http, w: &World, title: &str, bytes: &[u8]) -> String {
    let file = format!("{title}.xml");
    dossier(http, w, &w.circuit, (&file, "text/xml", bytes))
}

/// Software creates a dossier on `circuit` with this main document; the finance desk visas it.
fn dossier(http: &Http, w: &World, circuit: &str, main: (&str, &str, &[u8])) -> String {
    let (file, media_type, bytes) = main;
    let meta = json!({
        "title": file,
        "circuit": circuit,
        "emitter_desk": w.desks["logiciel"],
    })
    .to_string();
    let form = multipart(&[
        ("metadata", None, "application/json", meta.as_bytes()),
        ("main", Some(file), media_type, bytes),
    ]);
    let (status, body) = http.raw(
        "POST",
        "/dossiers",
        &w.tokens["logiciel"],
        Some((&content_type(), form)),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let visa = http.expect(
        200,
        "POST",
        &format!("/dossiers/{id}/visa"),
        &w.tokens["finances"],
        Some(json!({})),
    );
    assert_eq!(visa["current_step"], 1);
    id
}

fn documents(http: &Http, token: &str, id: &str) -> Vec<Value> {
    http.expect(
        200,
        "GET",
        &format!("/dossiers/{id}/documents"),
        token,
        None,
    )
    .as_array()
    .unwrap()
    .clone()
}

fn signed_count(http: &Http, token: &str, id: &str) -> usize {
    documents(http, token, id)
        .iter()
        .filter(|d| d["role"] == "signed" || d["role"] == "signature")
        .count()
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The PES XSD (xmllint), xmlsec1 on every signature, then the oracle's PES profile checks.
fn validate_pes(file: &Path, specs: &Path, pki: &TestPki, bordereaux: usize) {
    let schemas = specs.join("pesv2/schemas_pes.v5.12");
    let (ok, out) = run(Command::new("xmllint")
        .args(["--nonet", "--noout", "--schema"])
        .arg(schemas.join("PES_V2/Rev0/PES_Aller.xsd"))
        .arg(file));
    assert!(ok, "xmllint {}: {out}", file.display());
    for k in 1..=bordereaux {
        let (ok, out) = run(Command::new("xmlsec1")
            .args(["--verify", "--enabled-key-data", "x509"])
            .args(["--enabled-reference-uris", "empty,same-doc"])
            .arg("--trusted-pem")
            .arg(&pki.root_ca)
            .arg("--untrusted-pem")
            .arg(&pki.personnes_ca)
            .args(["--id-attr:Id", "Bordereau", "--id-attr:Id", "PES_Aller"])
            .args(["--id-attr:Id", "http://uri.etsi.org/01903/v1.1.1#:SignedProperties"])
            .arg("--node-xpath")
            .arg(format!(
                "(//*[local-name()='Signature' and namespace-uri()='http://www.w3.org/2000/09/xmldsig#'])[{k}]"
            ))
            .arg(file));
        assert!(
            ok && out.contains("OK"),
            "xmlsec1 signature {k} of {}: {out}",
            file.display()
        );
    }
    if let Some(oracle) = resource("SEING_ORACLE", "../../shared/oracle/verify") {
        let (ok, out) = run(Command::new(oracle)
            .arg("pes")
            .arg(file)
            .arg("--trust")
            .arg(&pki.root_ca)
            .arg("--certs")
            .arg(&pki.personnes_ca)
            .args(["--expect-bordereaux", &bordereaux.to_string()])
            .arg("--schemas")
            .arg(&schemas));
        assert!(ok, "oracle pes {}: {out}", file.display());
    }
}

/// Software creates 15 PES dossiers (one of 15 bordereaux), the finance desk visas them, and
/// the maire's `seing client batch-sign` signs them all with one login.
fn fifteen_pes_signed_by_the_client(kind: Kind) {
    let Some(specs) = specs() else { return };
    if !softhsm_present() {
        return;
    }
    let Some(svc) = Service::start(kind) else {
        return;
    };
    let pki = TestPki::shared();
    let a = svc.rt.block_on(world(&svc.engine, SIREN_A));
    trust(&svc.http, &a, pki);
    // The business software subscribes to every event; the worker delivers them.
    let (receiver, hooks) = svc.rt.block_on(Receiver::start());
    let subscription = svc.http.expect(
        201,
        "POST",
        "/webhooks",
        &a.tokens["admin"],
        Some(json!({"url": format!("{hooks}/erp")})),
    );
    let secret = subscription["secret"].as_str().unwrap().to_owned();
    let worker = svc.rt.block_on(async { Worker::start(&svc.engine) });
    let mut ids = Vec::new();
    for i in 0..15 {
        let count = if i == 0 { 15 } else { 1 };
        let first = if i == 0 { 100 } else { i };
        ids.push(pes_dossier(
            &svc.http,
            &a,
            &format!("pes-{i:02}"),
            &pes(&specs, count, first),
        ));
    }
    // The finance desk has nothing to sign: the client says so and signs nothing.
    let dir = tempfile::tempdir().unwrap();
    let token = seing_certs_test::token::create(&dir.path().join("token"), "Mairie", "4321", pki)
        .expect("SoftHSM2 token");
    let spy_log = dir.path().join("pkcs11-spy.log");
    let spy = Path::new(SPY).exists();
    let module = if spy { SPY } else { SOFTHSM };
    let uri = format!("pkcs11:token=Mairie;object=elu-rsa2048?module-path={module}");
    let client = |who: &str, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_seing"));
        cmd.args([
            "client",
            "batch-sign",
            "--server",
            &svc.http.base,
            "--token",
            &a.tokens[who],
        ])
        .args(["--key", &uri, "--chain"])
        .arg(&pki.personnes_ca)
        .args(extra)
        .env("SOFTHSM2_CONF", &token.conf)
        .env("SEING_PIN", &token.pin)
        .env("PKCS11SPY", SOFTHSM)
        .env("PKCS11SPY_OUTPUT", &spy_log)
        .stdin(Stdio::null());
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = client("finances", &["--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Aucun dossier"), "{out}");
    let _ = std::fs::remove_file(&spy_log);

    let started = Instant::now();
    let (code, out, err) = client("maire", &["--desk", "Maire", "--all"]);
    eprintln!(
        "batch-sign of 15 PES dossiers ({kind:?}): {:?}",
        started.elapsed()
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("signé")).count(),
        15,
        "{out}"
    );
    if spy {
        let log = std::fs::read_to_string(&spy_log).expect("pkcs11-spy log");
        assert_eq!(log.matches("C_Login").count(), 1, "one login for the batch");
    }
    // Signed dossiers wait for nobody: asking for one again fails clearly (exit 1).
    let (code, out, err) = client("maire", &["--dossier", &ids[1]]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("409") && err.contains("aucun dossier signé"),
        "{err}"
    );
    let files = dir.path().join("signed");
    std::fs::create_dir(&files).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let dossier = svc.http.expect(
            200,
            "GET",
            &format!("/dossiers/{id}"),
            &a.tokens["maire"],
            None,
        );
        assert_eq!(dossier["current_step"], 2, "{dossier}");
        let signed: Vec<Value> = documents(&svc.http, &a.tokens["maire"], id)
            .into_iter()
            .filter(|d| d["role"] == "signed")
            .collect();
        assert_eq!(signed.len(), 1);
        let (status, bytes) = svc.http.raw(
            "GET",
            &format!(
                "/dossiers/{id}/documents/{}",
                signed[0]["id"].as_str().unwrap()
            ),
            &a.tokens["maire"],
            None,
        );
        assert_eq!(status, 200);
        let file = files.join(format!("pes-{i:02}.xml"));
        std::fs::write(&file, &bytes).unwrap();
        validate_pes(&file, &specs, pki, if i == 0 { 15 } else { 1 });
        if i == 0 {
            // The uploaded-file verification answers the signer's report, trusted by the tenant.
            let form = multipart(&[("file", Some("pes.xml"), "text/xml", &bytes)]);
            let (status, body) = svc.http.raw(
                "POST",
                "/verifications",
                &a.tokens["logiciel"],
                Some((&content_type(), form)),
            );
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let report: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(report["indication"], "TOTAL_PASSED", "{report}");
            assert_eq!(report["signatures"].as_array().unwrap().len(), 15);
        }
    }
    // The journal records who signed.
    let journal = svc.http.expect(
        200,
        "GET",
        &format!("/dossiers/{}/journal", ids[1]),
        &a.tokens["maire"],
        None,
    );
    assert!(journal.to_string().contains("\"sign\""), "{journal}");
    // One dossier.signed per dossier reached the receiver, each signed with the subscription's
    // secret, naming the signed PES.
    let signed = svc
        .rt
        .block_on(receiver.wait_for("/erp", "dossier.signed", ids.len()));
    let mut signed_ids: Vec<String> = signed
        .iter()
        .map(|delivery| {
            delivery.verify(&secret).unwrap();
            let body = delivery.json();
            assert_eq!(body["step"]["action"], "signature", "{body}");
            assert!(body["documents"][0]["name"].as_str().is_some(), "{body}");
            body["dossier"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    signed_ids.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(signed_ids, expected, "one dossier.signed per dossier");
    svc.rt
        .block_on(receiver.wait_for("/erp", "dossier.created", ids.len()));
    // Each delivery carries its own id (in the body and the Seing-Delivery header), so the
    // receiver can refuse a replay.
    let mut deliveries = std::collections::BTreeSet::new();
    for delivery in receiver.at("/erp") {
        delivery.verify(&secret).unwrap();
        assert!(delivery.verify("un autre secret").is_err());
        assert_eq!(delivery.json()["id"], delivery.delivery);
        assert!(
            deliveries.insert(delivery.delivery.clone()),
            "delivered twice"
        );
    }
    svc.rt.block_on(worker.stop());
    svc.close();
}

#[test]
fn fifteen_pes_signed_by_the_client_on_sqlite() {
    fifteen_pes_signed_by_the_client(Kind::Sqlite);
}

#[test]
fn fifteen_pes_signed_by_the_client_on_postgres() {
    fifteen_pes_signed_by_the_client(Kind::Postgres);
}

/// Every refusal leaves the dossiers as they were.
fn refusals(kind: Kind) {
    let Some(specs) = specs() else { return };
    let Some(svc) = Service::start(kind) else {
        return;
    };
    let pki = TestPki::shared();
    let http = &svc.http;
    let a = svc.rt.block_on(world(&svc.engine, SIREN_A));
    let b = svc.rt.block_on(world(&svc.engine, SIREN_B));
    trust(http, &a, pki);
    let d: Vec<String> = (0..4)
        .map(|i| pes_dossier(http, &a, &format!("a-{i}"), &pes(&specs, 1, i)))
        .collect();
    let foreign = pes_dossier(http, &b, "b-0", &pes(&specs, 1, 0));
    let maire = &a.tokens["maire"];
    let batch = |token: &str, ids: &[&str], chain: Value| {
        http.call(
            "POST",
            "/signature-batches",
            token,
            Some(json!({"dossier_ids": ids, "certificate_chain": chain})),
        )
    };
    let count_batches = || {
        svc.rt.block_on(async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM signature_batches")
                .fetch_one(svc.engine.database().pool())
                .await
                .unwrap()
        })
    };

    // Wrong desk: the finance desk cannot sign at the maire's step.
    let (status, body) = batch(
        &a.tokens["finances"],
        &[&d[0]],
        chain_of(pki, "elu-rsa2048"),
    );
    assert_eq!(status, 403, "{body}");
    // Certificates: expired, revoked (CRL in the trust store), no signing key usage, untrusted.
    for (name, words) in [
        ("expired", "pas valide à cette date"),
        ("revoked", "révoqué"),
        ("no-signing", "ne permet pas de signer"),
    ] {
        let (status, body) = batch(maire, &[&d[0]], chain_of(pki, name));
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["field"], "certificate_chain");
        assert!(
            body["detail"].as_str().unwrap().contains(words),
            "{name}: {body}"
        );
    }
    let (status, body) = batch(maire, &[&d[0]], json!([der_b64(&pki.cert("cachet"))]));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("autorité de confiance"),
        "{body}"
    );
    assert_eq!(count_batches(), 0, "a refused certificate stores nothing");

    // Another tenant's dossier is as unknown as a nonexistent one.
    let unknown = uuid::Uuid::now_v7().to_string();
    let (s1, b1) = batch(maire, &[&foreign], chain_of(pki, "elu-rsa2048"));
    let (s2, b2) = batch(maire, &[&unknown], chain_of(pki, "elu-rsa2048"));
    assert_eq!((s1, s2), (404, 404), "{b1} {b2}");
    assert_eq!(b1, b2);
    let (status, mixed) = batch(
        maire,
        &[&d[0], &foreign, &unknown],
        chain_of(pki, "elu-rsa2048"),
    );
    assert_eq!(status, 201, "{mixed}");
    let refused = mixed["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|r| r["status"] == 404));
    assert_eq!(refused[0]["reason"], refused[1]["reason"]);
    assert_eq!(mixed["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        mixed["items"][0]["signature_algorithm"],
        "rsa-pkcs1v15-sha256"
    );
    assert_eq!(mixed["items"][0]["format"], "pes");

    // A value that does not match the certificate: refused, nothing changed.
    let batch_id = mixed["batch_id"].as_str().unwrap();
    let before = http.expect(200, "GET", &format!("/dossiers/{}", d[0]), maire, None);
    let (status, body) = http.call(
        "POST",
        &format!("/signature-batches/{batch_id}/signatures"),
        maire,
        Some(json!({"items": [{"item_id": "9-9", "signature_value": "AAAA"}]})),
    );
    assert_eq!(
        status, 422,
        "an unknown item does not consume the batch: {body}"
    );
    let wrong = sign_items(&mixed, &software_key(pki, "elu-rsa3072"));
    let results = http.expect(
        200,
        "POST",
        &format!("/signature-batches/{batch_id}/signatures"),
        maire,
        Some(json!({"items": wrong})),
    );
    assert_eq!(results["results"][0]["status"], "failed", "{results}");
    assert!(
        results["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("ne correspond pas")
    );
    let after = http.expect(200, "GET", &format!("/dossiers/{}", d[0]), maire, None);
    assert_eq!(before, after);
    assert_eq!(signed_count(http, maire, &d[0]), 0);
    // A batch is used once.
    let good = sign_items(&mixed, &software_key(pki, "elu-rsa2048"));
    let (status, body) = http.call(
        "POST",
        &format!("/signature-batches/{batch_id}/signatures"),
        maire,
        Some(json!({"items": good})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("déjà été utilisé"),
        "{body}"
    );

    // An expired batch.
    let (status, late) = batch(maire, &[&d[1]], chain_of(pki, "elu-rsa2048"));
    assert_eq!(status, 201, "{late}");
    svc.clock.advance(time::Duration::minutes(16));
    let (status, body) = http.call(
        "POST",
        &format!(
            "/signature-batches/{}/signatures",
            late["batch_id"].as_str().unwrap()
        ),
        maire,
        Some(json!({"items": sign_items(&late, &software_key(pki, "elu-rsa2048"))})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("expiré"),
        "{body}"
    );
    assert_eq!(signed_count(http, maire, &d[1]), 0);

    // One bad dossier does not sink the others; another user cannot submit the batch.
    let (status, two) = batch(maire, &[&d[2], &d[3]], chain_of(pki, "elu-rsa2048"));
    assert_eq!(status, 201, "{two}");
    let two_id = two["batch_id"].as_str().unwrap();
    let (status, _) = http.call(
        "POST",
        &format!("/signature-batches/{two_id}/signatures"),
        &a.tokens["finances"],
        Some(json!({"items": []})),
    );
    assert_eq!(status, 404);
    let mut values = sign_items(&two, &software_key(pki, "elu-rsa2048"));
    values[1]["signature_value"] = values[0]["signature_value"].clone();
    let results = http.expect(
        200,
        "POST",
        &format!("/signature-batches/{two_id}/signatures"),
        maire,
        Some(json!({"items": values})),
    );
    let by_id: BTreeMap<String, Value> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["dossier_id"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    assert_eq!(by_id[&d[2]]["status"], "signed", "{results}");
    assert_eq!(by_id[&d[3]]["status"], "failed", "{results}");
    assert_eq!(signed_count(http, maire, &d[2]), 1);
    assert_eq!(signed_count(http, maire, &d[3]), 0);
    // ECDSA P-256: values as raw r‖s or DER are both accepted.
    let (status, ec) = batch(maire, &[&d[0], &d[1]], chain_of(pki, "elu-p256"));
    assert_eq!(status, 201, "{ec}");
    assert_eq!(ec["items"][0]["signature_algorithm"], "ecdsa-sha256");
    let ec_key = software_key(pki, "elu-p256");
    let mut values = sign_items(&ec, &ec_key);
    let raw = STANDARD
        .decode(values[1]["signature_value"].as_str().unwrap())
        .unwrap();
    let der = seing_signer::key::SignatureValue(raw)
        .to_der_encoding(seing_signer::key::KeyAlgorithm::EcdsaP256)
        .unwrap();
    values[1]["signature_value"] = json!(STANDARD.encode(der));
    let results = http.expect(
        200,
        "POST",
        &format!(
            "/signature-batches/{}/signatures",
            ec["batch_id"].as_str().unwrap()
        ),
        maire,
        Some(json!({"items": values})),
    );
    assert!(
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "signed"),
        "{results}"
    );
    // The finance desk signs for the maire's desk while a delegation is active.
    let now = time::OffsetDateTime::now_utc();
    let desk = |name: &str| a.desks[name].parse().unwrap();
    svc.rt
        .block_on(svc.engine.create_delegation(
            a.users["admin"],
            desk("maire"),
            desk("finances"),
            now - time::Duration::hours(1),
            now + time::Duration::days(1),
            Vec::new(),
        ))
        .unwrap();
    let (status, delegated) = batch(
        &a.tokens["finances"],
        &[&d[3]],
        chain_of(pki, "elu-rsa2048"),
    );
    assert_eq!(status, 201, "{delegated}");
    let results = http.expect(
        200,
        "POST",
        &format!(
            "/signature-batches/{}/signatures",
            delegated["batch_id"].as_str().unwrap()
        ),
        &a.tokens["finances"],
        Some(json!({"items": sign_items(&delegated, &software_key(pki, "elu-rsa2048"))})),
    );
    assert_eq!(results["results"][0]["status"], "signed", "{results}");
    let journal = http.expect(
        200,
        "GET",
        &format!("/dossiers/{}/journal", d[3]),
        maire,
        None,
    );
    let entries = journal.as_array().or(journal["items"].as_array()).unwrap();
    let signed = entries.iter().find(|e| e["action"] == "sign").unwrap();
    assert_eq!(
        signed["on_behalf_of"],
        a.desks["maire"].as_str(),
        "{signed}"
    );
    assert_eq!(signed["desk"], a.desks["finances"].as_str(), "{signed}");
    // A signed dossier is no longer waiting for a signature.
    let (status, _) = batch(maire, &[&d[2]], chain_of(pki, "elu-rsa2048"));
    assert_eq!(status, 409);
    svc.close();
}

#[test]
fn refusals_change_nothing_on_sqlite() {
    refusals(Kind::Sqlite);
}

#[test]
fn refusals_change_nothing_on_postgres() {
    refusals(Kind::Postgres);
}

/// A `seing serve` child process, stopped even when the test fails.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A key held by the server's module: the real `seing serve` with its own SoftHSM2 token; a
/// wrong PIN is a clear 422 and changes nothing; the PIN never reaches the logs.
#[test]
fn server_key_signs_with_a_pin_used_once_and_never_logged() {
    let Some(specs) = specs() else { return };
    if !softhsm_present() {
        return;
    }
    const PIN: &str = "735194";
    const WRONG_PIN: &str = "846205";
    let pki = TestPki::shared();
    let dir = tempfile::tempdir().unwrap();
    let token = seing_certs_test::token::create(&dir.path().join("token"), "Serveur", PIN, pki)
        .expect("SoftHSM2 token");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("documents")).unwrap();
    let url = format!("sqlite:{}?mode=rwc", data.join("seing.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The templates plus a circuit whose last step is the authority's server seal.
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows")).unwrap()
    {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), workflows.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        workflows.join("cachet.toml"),
        "title = \"Visa puis cachet\"\n[[steps]]\naction = \"visa\"\ndesk = \"finances\"\n\
         [[steps]]\naction = \"seal\"\ndesk = \"maire\"\n",
    )
    .unwrap();
    let (a, key_id, seal_id, seal_circuit) = rt.block_on(async {
        let engine = Engine::open(&url, &data.join("documents"), Some(&workflows))
            .await
            .unwrap();
        let a = world(&engine, SIREN_A).await;
        let pem = std::fs::read_to_string(&pki.root_ca).unwrap();
        engine
            .add_trust_entries(a.users["admin"], &pem)
            .await
            .unwrap();
        let desks = engine.desks(a.users["admin"]).await.unwrap();
        let desk = |name: &str| desks.iter().find(|d| d.name == name).unwrap().id;
        let roles = BTreeMap::from([
            ("finances".to_owned(), desk("Finances")),
            ("maire".to_owned(), desk("Maire")),
        ]);
        let seal_circuit = engine
            .create_circuit(a.users["admin"], "Cachet", "cachet", &roles)
            .await
            .unwrap()
            .id
            .to_string();
        let seal = engine
            .add_server_key(
                a.users["admin"],
                seing_engine::signing::NewServerKey {
                    label: "Cachet de la commune".into(),
                    uri: format!("pkcs11:token=Serveur;object=cachet?module-path={SOFTHSM}"),
                    usage: seing_engine::signing::KeyUsage::Seal,
                    owner: None,
                    chain_pem: Some(std::fs::read_to_string(&pki.cachets_ca).unwrap()),
                },
            )
            .await
            .unwrap();
        let key = engine
            .add_server_key(
                a.users["admin"],
                seing_engine::signing::NewServerKey {
                    label: "Clé du maire".into(),
                    uri: format!("pkcs11:token=Serveur;object=elu-rsa2048?module-path={SOFTHSM}"),
                    usage: seing_engine::signing::KeyUsage::User,
                    owner: Some(a.users["maire"].user),
                    chain_pem: Some(std::fs::read_to_string(&pki.personnes_ca).unwrap()),
                },
            )
            .await
            .unwrap();
        engine.database().close().await;
        (a, key.id.to_string(), seal.id.to_string(), seal_circuit)
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("serve.log");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_seing"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .args(["--database-url", &url])
            .arg("--workflows-dir")
            .arg(&workflows)
            .env("SOFTHSM2_CONF", &token.conf)
            .env("SEING_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = Http::new(&base);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "seing serve did not start");
        assert!(server.0.try_wait().unwrap().is_none(), "seing serve exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ids: Vec<String> = (0..2)
        .map(|i| pes_dossier(&http, &a, &format!("s-{i}"), &pes(&specs, 2, 10 * i)))
        .collect();
    let maire = &a.tokens["maire"];
    let keys = http.expect(200, "GET", "/server-keys", maire, None);
    assert_eq!(
        keys.as_array().unwrap().len(),
        2,
        "the maire's key and the seal: {keys}"
    );
    let (status, keys) = http.call("GET", "/server-keys", &a.tokens["finances"], None);
    assert_eq!(
        (status, keys.as_array().map(Vec::len)),
        (200, Some(1)),
        "the seal only"
    );
    let sign = |token: &str, pin: &str| {
        http.call(
            "POST",
            "/server-signatures",
            token,
            Some(json!({"dossier_ids": ids, "key_id": key_id, "pin": pin})),
        )
    };
    let (status, body) = sign(&a.tokens["finances"], PIN);
    assert_eq!(status, 403, "another user's key: {body}");
    let before = http.expect(200, "GET", &format!("/dossiers/{}", ids[0]), maire, None);
    let (status, body) = sign(maire, WRONG_PIN);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "pin");
    assert!(
        body["detail"].as_str().unwrap().contains("PIN incorrect"),
        "{body}"
    );
    assert_eq!(
        before,
        http.expect(200, "GET", &format!("/dossiers/{}", ids[0]), maire, None)
    );
    let (status, body) = sign(maire, PIN);
    assert_eq!(status, 200, "{body}");
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "signed"),
        "{body}"
    );
    for (i, id) in ids.iter().enumerate() {
        let signed = documents(&http, maire, id)
            .into_iter()
            .find(|d| d["role"] == "signed")
            .unwrap();
        let (_, bytes) = http.raw(
            "GET",
            &format!(
                "/dossiers/{id}/documents/{}",
                signed["id"].as_str().unwrap()
            ),
            maire,
            None,
        );
        let file = dir.path().join(format!("server-{i}.xml"));
        std::fs::write(&file, bytes).unwrap();
        validate_pes(&file, &specs, pki, 2);
    }
    // The seal: a PDF on the seal circuit is sealed (PAdES) by the seal key, not by a user key.
    let pdf = seing_api::demo::demo_pdf("Arrêté à sceller");
    let sealed = dossier(
        &http,
        &a,
        &seal_circuit,
        ("arrete.pdf", "application/pdf", &pdf),
    );
    let request = |key: &str| json!({"dossier_ids": [sealed], "key_id": key, "pin": PIN});
    let body = http.expect(
        200,
        "POST",
        "/server-signatures",
        maire,
        Some(request(&key_id)),
    );
    assert_eq!(body["results"][0]["status"], "failed", "{body}");
    assert!(
        body["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("cachet"),
        "{body}"
    );
    let body = http.expect(
        200,
        "POST",
        "/server-signatures",
        maire,
        Some(request(&seal_id)),
    );
    assert_eq!(body["results"][0]["status"], "signed", "{body}");
    let signed = documents(&http, maire, &sealed)
        .into_iter()
        .find(|d| d["role"] == "signed")
        .unwrap();
    let (_, bytes) = http.raw(
        "GET",
        &format!(
            "/dossiers/{sealed}/documents/{}",
            signed["id"].as_str().unwrap()
        ),
        maire,
        None,
    );
    assert!(
        bytes.starts_with(&pdf),
        "an incremental update keeps the original bytes"
    );
    let file = dir.path().join("sealed.pdf");
    std::fs::write(&file, &bytes).unwrap();
    if let Some(oracle) = resource("SEING_ORACLE", "../../shared/oracle/verify") {
        let (ok, out) = run(Command::new(oracle)
            .arg("pades")
            .arg(&file)
            .arg("--trust")
            .arg(&pki.root_ca)
            .arg("--certs")
            .arg(&pki.cachets_ca));
        assert!(ok, "oracle pades: {out}");
    }
    drop(server);
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("/server-signatures"),
        "the trace log shows the requests"
    );
    assert!(
        !text.contains(PIN) && !text.contains(WRONG_PIN),
        "a PIN reached the log"
    );
}
