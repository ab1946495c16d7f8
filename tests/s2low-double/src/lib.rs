//! A test double of the S²LOW platform's HTTP API, for seing's tests only.
//!
//! It follows the protocol S²LOW publishes (see `seing_connectors::s2low` for the pages and
//! answers): Actes transaction creation, status, cancellation and listing; Hélios import,
//! status, `PES_Acquit` download and the download of the PES file of a transaction (a
//! transaction it will not show redirects to the Hélios home page). It behaves like the platform where a client can tell:
//!
//! - statuses progress one step per status query (posted → waiting → transmitted →
//!   acknowledged), ending in an `ARActe` or an accepted `PES_Acquit`, or in a refusal when the
//!   test asked for one;
//! - a second act with the same numéro interne, or a PES with the same SHA-1, is refused as
//!   S²LOW refuses it;
//! - faults can be injected on the next request to a page: an HTTP status (5xx), a delay (for
//!   client timeouts), a malformed answer, or holding the answer after the request was
//!   processed (a crash window for the client);
//! - optional HTTP Basic login/password;
//! - optional HTTPS ([`Tls`]) that requires a client certificate chained to a given CA, as the
//!   platform does: a client without one, or with one of another CA, gets no answer (its TLS
//!   handshake fails and is counted in [`S2lowDouble::tls_refusals`]).
//!
//! It runs on its own thread and runtime, so blocking and async tests can both use it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Multipart, Query, Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use sha1::{Digest, Sha1};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

pub use seing_certs_test::pki::TestPki;

/// A fault for the next request to a page.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this HTTP status and no processing.
    Status(u16),
    /// Process the request, then wait this long before answering (a slow platform: the
    /// client times out although the platform took the request).
    Delay(Duration),
    /// Answer `200` with a body no client can read.
    Malformed,
    /// Process the request (the transaction exists from then on), then hold the answer until
    /// [`S2lowDouble::release`]: the client never learns the outcome if it dies meanwhile.
    HoldAfterProcessing,
}

/// How a transaction ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged (`ARActe`) or accepted (`PES_Acquit` with `EtatAck` 1).
    Accepted,
    /// Refused with this reason (Actes: status -1 with the message; Hélios: status 6 and a
    /// refusing `PES_Acquit`).
    Refused(String),
}

/// HTTPS for the double (PEM files).
#[derive(Debug, Clone)]
pub struct Tls {
    /// The server's certificate, then its chain (for `127.0.0.1`).
    pub certificate: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// The CA certificates that client certificates must chain to; a client without a
    /// certificate is refused.
    pub client_ca: PathBuf,
}

impl Tls {
    /// The double's side of the shared test PKI: certificate `tls-server` (with its CA) and
    /// client certificates required from the « cachets » CA, which issues `tls-client`.
    pub fn test_pki() -> Self {
        let pki = TestPki::shared();
        Self {
            certificate: pki.fullchain("tls-server"),
            key: pki.key("tls-server"),
            client_ca: pki.cachets_ca.clone(),
        }
    }
}

/// Who the double is for.
#[derive(Debug, Clone)]
pub struct Options {
    /// HTTP Basic login and password required on every request, if any.
    pub credentials: Option<(String, String)>,
    /// Serve HTTPS with client certificates instead of plain HTTP.
    pub tls: Option<Tls>,
    /// SIREN of the authority (in `ARActe` identifiers).
    pub siren: String,
    /// Département (three digits).
    pub departement: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            credentials: None,
            tls: None,
            siren: "213500002".into(),
            departement: "035".into(),
        }
    }
}

/// An act posted to the double.
#[derive(Debug, Clone)]
pub struct ActesRecord {
    /// Transaction number.
    pub id: u64,
    /// Text fields as posted (`type_pj[]` repeated).
    pub fields: Vec<(String, String)>,
    /// Files as posted: (field, file name, bytes).
    pub files: Vec<(String, String, Vec<u8>)>,
    /// Current status code.
    pub status: i32,
    /// How it will end.
    pub outcome: Outcome,
}

impl ActesRecord {
    /// The first value of a text field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A PES posted to the double.
#[derive(Debug, Clone)]
pub struct HeliosRecord {
    /// Transaction number.
    pub id: u64,
    /// File name as posted.
    pub file_name: String,
    /// SHA-1 of the file (hex).
    pub sha1: String,
    /// The file.
    pub bytes: Vec<u8>,
    /// Current status code.
    pub status: i32,
    /// How it will end.
    pub outcome: Outcome,
}

#[derive(Default)]
struct State {
    next_id: u64,
    actes: BTreeMap<u64, ActesRecord>,
    helios: BTreeMap<u64, HeliosRecord>,
    faults: Vec<(String, Fault)>,
    next_outcome: Option<Outcome>,
    requests: Vec<String>,
    held: usize,
    tls_refusals: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    release: Notify,
    options: Options,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running double; stops when dropped.
pub struct S2lowDouble {
    url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S2lowDouble {
    /// Starts a double on `127.0.0.1` with a free port (HTTPS when `options.tls` says so).
    ///
    /// Panics when the TLS files cannot be read: no test can run without them.
    pub fn start(options: Options) -> Self {
        let acceptor = options.tls.as_ref().map(acceptor);
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            release: Notify::new(),
            options,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let (bound, address) = std::sync::mpsc::channel::<SocketAddr>();
        let app = router(shared.clone());
        let tls_shared = shared.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the double's runtime starts");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("the double binds a port");
                bound
                    .send(listener.local_addr().expect("bound address"))
                    .expect("the starter waits");
                let stopped = async {
                    let _ = stopped.await;
                };
                match acceptor {
                    None => axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await
                        .expect("the double serves"),
                    Some(acceptor) => {
                        let listener = TlsListener {
                            tcp: listener,
                            acceptor,
                            shared: tls_shared,
                        };
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stopped)
                            .await
                            .expect("the double serves");
                    }
                }
            });
        });
        let address = address.recv().expect("the double started");
        Self {
            url: format!("{scheme}://{address}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Base URL (`http://127.0.0.1:PORT`, or `https://` with TLS).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `s2low` transport setting of seing (JSON) for this double; over HTTPS, with the
    /// client side of the shared test PKI: certificate `tls-client` (with its CA) and the root
    /// CA trusted for the server.
    pub fn transport(&self) -> serde_json::Value {
        let mut transport =
            serde_json::json!({"kind": "s2low", "url": self.url, "timeout_seconds": 30});
        if self.shared.options.tls.is_some() {
            let pki = TestPki::shared();
            transport["identity"] = serde_json::json!({
                "certificate": pki.fullchain("tls-client"),
                "key": pki.key("tls-client"),
            });
            transport["server_ca"] = serde_json::json!(pki.root_ca);
        }
        transport
    }

    /// Why each refused TLS handshake failed (client without a certificate, untrusted
    /// certificate, client that does not trust the double…), in order.
    pub fn tls_refusals(&self) -> Vec<String> {
        self.shared.lock().tls_refusals.clone()
    }

    /// The next request whose path contains `page` gets `fault`.
    pub fn inject(&self, page: &str, fault: Fault) {
        self.shared.lock().faults.push((page.to_owned(), fault));
    }

    /// The next transaction created will end this way (default: accepted).
    pub fn next_outcome(&self, outcome: Outcome) {
        self.shared.lock().next_outcome = Some(outcome);
    }

    /// Lets held answers go.
    pub fn release(&self) {
        self.shared.release.notify_waiters();
    }

    /// How many answers are being held now.
    pub fn held(&self) -> usize {
        self.shared.lock().held
    }

    /// The acts posted so far.
    pub fn actes(&self) -> Vec<ActesRecord> {
        self.shared.lock().actes.values().cloned().collect()
    }

    /// The PES posted so far.
    pub fn helios(&self) -> Vec<HeliosRecord> {
        self.shared.lock().helios.values().cloned().collect()
    }

    /// Every request received: `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }
}

impl Drop for S2lowDouble {
    fn drop(&mut self) {
        self.release();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The TLS acceptor of `tls`: its certificate, and client certificates required, verified
/// against `tls.client_ca` (ring, the provider `ureq` uses too).
fn acceptor(tls: &Tls) -> TlsAcceptor {
    let pem = |path: &PathBuf| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .unwrap_or_else(|e| panic!("{}: {e}", tls.key.display()));
    let mut roots = RootCertStore::empty();
    for ca in pem(&tls.client_ca) {
        roots.add(ca).expect("a usable client CA");
    }
    let provider = Arc::new(crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("a client certificate verifier");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(pem(&tls.certificate), key)
        .expect("the server certificate and its key");
    TlsAcceptor::from(Arc::new(config))
}

/// Accepts TCP connections and completes their TLS handshake; a failed handshake is recorded
/// and the connection dropped, as a TLS front end does.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, address) = axum::serve::Listener::accept(&mut self.tcp).await;
            // Handshakes run one at a time (enough for tests); the time limit keeps a silent
            // client from stalling the others.
            let handshake = self.acceptor.accept(tcp).into_fallible();
            match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                Ok(Ok(stream)) => return (stream, address),
                Ok(Err((e, tcp))) => {
                    self.shared.lock().tls_refusals.push(e.to_string());
                    tokio::spawn(linger(tcp));
                }
                Err(_) => self
                    .shared
                    .lock()
                    .tls_refusals
                    .push("handshake not finished in 10 s".into()),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Reads and drops what a refused client still sends (its request, sent once its side of the
/// handshake was over) until it hangs up: closing at once would reset the connection, and the
/// client would never read the TLS alert that says why (web servers' lingering close).
async fn linger(mut tcp: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    let drain = async { while matches!(tcp.read(&mut buffer).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/modules/actes/actes_transac_create.php",
            post(actes_create),
        )
        .route(
            "/modules/actes/actes_transac_get_status.php",
            get(actes_status),
        )
        .route(
            "/modules/actes/actes_transac_cancel.php",
            post(actes_cancel),
        )
        .route("/modules/actes/api/list_actes.php", get(actes_list))
        .route(
            "/modules/helios/api/helios_importer_fichier.php",
            post(helios_import),
        )
        .route(
            "/modules/helios/api/helios_transac_get_status.php",
            get(helios_status),
        )
        .route(
            "/modules/helios/helios_download_acquit.php",
            get(helios_acquit),
        )
        .route("/modules/helios/helios_download_file.php", get(helios_file))
        .route("/modules/helios/index.php", get(helios_home))
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

/// Logs, checks the login, applies faults.
async fn guard(
    AxumState(shared): AxumState<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let line = format!(
        "{} {}",
        request.method(),
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("")
    );
    let fault = {
        let mut state = shared.lock();
        state.requests.push(line);
        state
            .faults
            .iter()
            .position(|(page, _)| path.contains(page.as_str()))
            .map(|i| state.faults.remove(i).1)
    };
    if let Some((login, password)) = &shared.options.credentials {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
        );
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return (StatusCode::UNAUTHORIZED, "KO\nÉchec de l'authentification").into_response();
        }
    }
    match fault {
        Some(Fault::Status(code)) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(Fault::Malformed) => {
            (StatusCode::OK, "<html><body>Maintenance</body>").into_response()
        }
        Some(Fault::Delay(delay)) => {
            let response = next.run(request).await;
            tokio::time::sleep(delay).await;
            response
        }
        Some(Fault::HoldAfterProcessing) => {
            let response = next.run(request).await;
            let released = shared.release.notified();
            shared.lock().held += 1;
            released.await;
            shared.lock().held -= 1;
            response
        }
        None => next.run(request).await,
    }
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

type Form = (Vec<(String, String)>, Vec<(String, String, Vec<u8>)>);

async fn read_form(mut multipart: Multipart) -> Result<Form, String> {
    let mut fields = Vec::new();
    let mut files = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or("").to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                files.push((name, file_name, bytes.to_vec()));
            }
            None => fields.push((name, field.text().await.map_err(|e| e.to_string())?)),
        }
    }
    Ok((fields, files))
}

async fn actes_create(AxumState(shared): AxumState<Arc<Shared>>, multipart: Multipart) -> Response {
    let (fields, files) = match read_form(multipart).await {
        Ok(form) => form,
        Err(e) => return text(format!("KO\nFormulaire illisible : {e}")),
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let number = get("number");
    let number_ok = !number.is_empty()
        && number.len() <= 15
        && number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !number_ok {
        return text("KO\nLe numéro n'est pas correct".into());
    }
    if get("api") != "1" || get("nature_code").is_empty() || get("classif1").is_empty() {
        return text("KO\nParamètres incomplets".into());
    }
    if !files.iter().any(|(f, _, _)| f == "acte_pdf_file") {
        return text("KO\nAucun fichier acte n'a été posté ".into());
    }
    if get("type_acte").is_empty() {
        return text("KO\nErreur lors de la réception du fichier : typologie absente".into());
    }
    let mut state = shared.lock();
    if state
        .actes
        .values()
        .any(|a| a.field("number") == Some(&number))
    {
        return text("KO\nUn acte portant le même numéro interne existe déjà dans la base de données.\nIl faut peut-être ajouter un suffixe au numéro.".into());
    }
    let id = state.next_id;
    state.next_id += 1;
    let outcome = state.next_outcome.take().unwrap_or(Outcome::Accepted);
    state.actes.insert(
        id,
        ActesRecord {
            id,
            fields,
            files,
            status: 1,
            outcome,
        },
    );
    text(format!("OK\n{id}\n"))
}

fn query_id(query: &HashMap<String, String>, name: &str) -> Option<u64> {
    query.get(name).and_then(|v| v.parse().ok())
}

fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    civil_date(i64::try_from(days).unwrap_or(0))
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (H. Hinnant's civil-from-days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

const NATURES: [&str; 6] = ["DE", "AR", "AI", "CC", "BF", "AU"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ar_acte(options: &Options, record: &ActesRecord) -> String {
    let nature_code: usize = record
        .field("nature_code")
        .and_then(|n| n.parse().ok())
        .unwrap_or(6);
    let nature = NATURES
        .get(nature_code.saturating_sub(1))
        .copied()
        .unwrap_or("AU");
    let decision = record.field("decision_date").unwrap_or("");
    let number = record.field("number").unwrap_or("");
    let today = today();
    let id_acte = format!(
        "{}-{}-{}-{number}-{nature}",
        options.departement,
        options.siren,
        decision.replace('-', "")
    );
    let mut matieres = String::new();
    for level in 1..=5 {
        if let Some(code) = record
            .field(&format!("classif{level}"))
            .filter(|c| !c.is_empty())
        {
            matieres.push_str(&format!(
                "<actes:CodeMatiere{level} actes:CodeMatiere=\"{}\"/>",
                escape(code)
            ));
        }
    }
    let type_acte = record.field("type_acte").unwrap_or("99_AU");
    let annexes: Vec<String> = record
        .files
        .iter()
        .filter(|(f, _, _)| f == "acte_attachments[]")
        .enumerate()
        .map(|(i, (_, name, _))| {
            let ext = name.rsplit('.').next().unwrap_or("pdf");
            format!(
                "<actes:Annexe><actes:NomFichier>99_AU-{id_acte}-1-{}_{}.{ext}</actes:NomFichier></actes:Annexe>",
                i + 2,
                i + 2
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<actes:ARActe xmlns:actes=\"http://www.interieur.gouv.fr/ACTES#v1.1-20040216\" xmlns:insee=\"http://xml.insee.fr/schema\" actes:DateReception=\"{today}\" actes:IDActe=\"{id_acte}\">\
<actes:ActeRecu actes:CodeNatureActe=\"{nature_code}\" actes:Date=\"{decision}\" actes:NumeroInterne=\"{number}\">{matieres}\
<actes:Objet>{}</actes:Objet><actes:ClassificationDateVersion>{decision}</actes:ClassificationDateVersion>\
<actes:Document><actes:NomFichier>{type_acte}-{id_acte}-1-1_1.pdf</actes:NomFichier></actes:Document>\
<actes:Annexes actes:Nombre=\"{}\">{}</actes:Annexes><actes:DocumentPapier>0</actes:DocumentPapier></actes:ActeRecu>\
<actes:ClassificationDateVersionEnCours>{decision}</actes:ClassificationDateVersionEnCours></actes:ARActe>\n",
        escape(record.field("subject").unwrap_or("")),
        annexes.len(),
        annexes.concat()
    )
}

async fn actes_status(
    AxumState(shared): AxumState<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = query_id(&query, "transaction") else {
        return text("KO\nNuméro de transaction invalide.".into());
    };
    let mut state = shared.lock();
    let Some(record) = state.actes.get_mut(&id) else {
        return text("KO\nNuméro de transaction invalide.".into());
    };
    // One step per query: posted → waiting → transmitted → acknowledged or error.
    record.status = match (record.status, &record.outcome) {
        (1, _) => 2,
        (2, _) => 3,
        (3, Outcome::Accepted) => 4,
        (3, Outcome::Refused(_)) => -1,
        (status, _) => status,
    };
    match (record.status, &record.outcome) {
        (4, _) => text(format!("OK\n4\n{}", ar_acte(&shared.options, record))),
        (-1, Outcome::Refused(reason)) => text(format!("OK\n-1\n{reason}")),
        (status, _) => text(format!("OK\n{status}\n")),
    }
}

async fn actes_cancel(AxumState(shared): AxumState<Arc<Shared>>, multipart: Multipart) -> Response {
    let (fields, _) = match read_form(multipart).await {
        Ok(form) => form,
        Err(e) => return text(format!("KO\nFormulaire illisible : {e}")),
    };
    let id = fields
        .iter()
        .find(|(n, _)| n == "id")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let mut state = shared.lock();
    let Some(record) = id.and_then(|id| state.actes.get_mut(&id)) else {
        return text("KO\nTransaction inconnue".into());
    };
    if record.status != 4 {
        return text("KO\nSeul un acte acquitté peut être annulé".into());
    }
    record.status = 0;
    let cancel = state.next_id;
    state.next_id += 1;
    text(format!("OK\n{cancel}\n"))
}

async fn actes_list(
    AxumState(shared): AxumState<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let status: i32 = query
        .get("status_id")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let state = shared.lock();
    let transactions: Vec<serde_json::Value> = state
        .actes
        .values()
        .filter(|a| a.status == status)
        .map(|a| {
            serde_json::json!({
                "id": a.id.to_string(),
                "subject": a.field("subject"),
                "number": a.field("number"),
                "date": a.field("decision_date"),
                "nature_descr": a.field("nature_code"),
                "classification": a.field("classif1"),
                "type": "1",
            })
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"status_id": status, "authority_id": 1, "offset": 0, "limit": 100, "transactions": transactions}).to_string(),
    )
        .into_response()
}

fn import_answer(id: Option<u64>, result: &str, message: &str) -> Response {
    xml(format!(
        "<?xml version=\"1.0\"?>\n<import>\n  <id>{}</id>\n  <resultat>{result}</resultat>\n  <message>{}</message>\n</import>\n",
        id.map(|i| i.to_string()).unwrap_or_default(),
        escape(message)
    ))
}

async fn helios_import(
    AxumState(shared): AxumState<Arc<Shared>>,
    multipart: Multipart,
) -> Response {
    let (_, files) = match read_form(multipart).await {
        Ok(form) => form,
        Err(e) => return import_answer(None, "KO", &format!("Formulaire illisible : {e}")),
    };
    let Some((_, file_name, bytes)) = files.into_iter().find(|(f, _, _)| f == "enveloppe") else {
        return import_answer(None, "KO", "Echec lors du téléchargement du fichier");
    };
    let sha1 = hex::encode(Sha1::digest(&bytes));
    let mut state = shared.lock();
    if state.helios.values().any(|h| h.sha1 == sha1) {
        return import_answer(None, "KO", "doublon détecté. Ce fichier a déjà été posté");
    }
    let id = state.next_id;
    state.next_id += 1;
    let outcome = state.next_outcome.take().unwrap_or(Outcome::Accepted);
    state.helios.insert(
        id,
        HeliosRecord {
            id,
            file_name,
            sha1,
            bytes,
            status: 1,
            outcome,
        },
    );
    import_answer(Some(id), "OK", "Téléchargement du fichier réussi.")
}

fn transaction_answer(id: u64, result: &str, status: &str, message: &str) -> Response {
    xml(format!(
        "<?xml version=\"1.0\"?>\n<transaction>\n  <id>{id}</id>\n  <resultat>{result}</resultat>\n  <message>{}</message>\n  <status>{status}</status>\n</transaction>\n",
        escape(message)
    ))
}

async fn helios_status(
    AxumState(shared): AxumState<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = query_id(&query, "transaction") else {
        return transaction_answer(0, "KO", "", "Pas de numéro de transaction.");
    };
    let mut state = shared.lock();
    let Some(record) = state.helios.get_mut(&id) else {
        return transaction_answer(id, "KO", "", "Numéro de transaction invalide");
    };
    // posted → waiting → transmitted → acquitted (4) or refused (6).
    record.status = match (record.status, &record.outcome) {
        (1, _) => 2,
        (2, _) => 3,
        (3, Outcome::Accepted) => 4,
        (3, Outcome::Refused(_)) => 6,
        (status, _) => status,
    };
    let message = match record.status {
        1 => "Posté",
        2 => "En attente de transmission",
        3 => "Transmis",
        4 => "Acquittement reçu",
        _ => "Refusé",
    };
    transaction_answer(id, "OK", &record.status.to_string(), message)
}

fn pes_acquit(record: &HeliosRecord) -> String {
    let (state, error) = match &record.outcome {
        Outcome::Accepted => ("1", String::new()),
        Outcome::Refused(reason) => (
            "0",
            format!(
                "<Erreur><NumAnoAck V=\"1\"/><LibelleAnoAck V=\"{}\"/></Erreur>",
                escape(reason)
            ),
        ),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<n:PES_ACQUIT xmlns:n=\"http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2\">\
<Enveloppe><Parametres><Version V=\"2\"/><TypFic V=\"PESALR1\"/><NomFic V=\"{}\"/></Parametres>\
<Emetteur><Sigle V=\"HELIOS\"/></Emetteur><Recepteur><Sigle V=\"S2LOW\"/></Recepteur></Enveloppe>\
<EnTetePES><DteStr V=\"{}\"/><IdPost V=\"035000\"/><IdColl V=\"21350000200017\"/><CodCol V=\"001\"/><CodBud V=\"01\"/></EnTetePES>\
<ACQUIT><EnTeteAcquit><IdVer V=\"2\"/></EnTeteAcquit><ElementACQUIT><DomaineAck V=\"0\"/><EtatAck V=\"{state}\"/>{error}</ElementACQUIT></ACQUIT>\
</n:PES_ACQUIT>\n",
        escape(&record.file_name),
        today()
    )
}

async fn helios_acquit(
    AxumState(shared): AxumState<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = shared.lock();
    match query_id(&query, "id").and_then(|id| state.helios.get(&id)) {
        Some(record) if matches!(record.status, 4 | 6) => xml(pes_acquit(record)),
        Some(_) => (StatusCode::NOT_FOUND, "Acquittement non disponible").into_response(),
        None => (StatusCode::NOT_FOUND, "Transaction inconnue").into_response(),
    }
}

/// The PES of a transaction, as a browser downloads it; S²LOW sends any other request back to
/// its Hélios home page (with the error in the session, not in the answer).
async fn helios_file(
    AxumState(shared): AxumState<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = shared.lock();
    match query_id(&query, "id").and_then(|id| state.helios.get(&id)) {
        Some(record) => (
            [
                (header::CONTENT_TYPE, "text/xml".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", record.file_name),
                ),
            ],
            record.bytes.clone(),
        )
            .into_response(),
        None => (
            StatusCode::FOUND,
            [(header::LOCATION, "/modules/helios/index.php")],
        )
            .into_response(),
    }
}

async fn helios_home() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><html><head><title>S2LOW - Helios</title></head><body><h1>Helios</h1></body></html>",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::civil_date;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_786), "2026-11-29");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
