//! `seing agent`: the élu's local signing agent. It listens on 127.0.0.1 only, answers only the
//! configured seing origin (checked on every request, CORS for that origin alone, Host checked
//! against DNS rebinding), lists the certificates on the workstation's PKCS#11 tokens and signs
//! the data-to-sign of the two-phase API with one PIN entry (one login) per batch.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::Encode as _;
use seing_signer::digest::DigestAlgorithm;
use seing_signer::key::pkcs11::{self, PinSource, TokenCertificate};
use seing_signer::key::{self, KeySpec, Secret};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

/// Default port of the agent, and where the web UI looks for it unless `seing serve
/// --agent-port` says otherwise.
pub const DEFAULT_PORT: u16 = 7431;

/// Default address of the agent.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7431";

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Loopback address and port.
    pub listen: SocketAddr,
    /// The only web origin served (`https://parapheur.example.fr`).
    pub origin: String,
    /// The PKCS#11 module of the workstation's token.
    pub module: PathBuf,
    /// Intermediate CA certificates sent after the signer's certificate.
    pub chain: Vec<Certificate>,
}

/// Refusals of the agent, answered as `{"detail": …}` in French.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The request came from another origin (or none).
    #[error("origine refusée : cet agent ne répond qu'à {0}")]
    Origin(String),
    /// The Host header is not the loopback address (DNS rebinding).
    #[error("hôte refusé")]
    Host,
    /// The certificate named is not on the token.
    #[error("certificat inconnu sur le support")]
    UnknownCertificate,
    /// A request field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The PIN was refused.
    #[error("code PIN incorrect")]
    WrongPin,
    /// The PIN is locked after too many wrong entries.
    #[error("code PIN bloqué : faites-le débloquer")]
    PinLocked,
    /// The token failed.
    #[error("{0}")]
    Token(seing_signer::error::Error),
}

impl IntoResponse for AgentError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Origin(_) | Self::Host => StatusCode::FORBIDDEN,
            Self::UnknownCertificate => StatusCode::NOT_FOUND,
            Self::Invalid(_) | Self::WrongPin | Self::PinLocked => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Token(_) => StatusCode::BAD_GATEWAY,
        };
        (
            status,
            Json(serde_json::json!({ "detail": self.to_string() })),
        )
            .into_response()
    }
}

impl From<seing_signer::error::Error> for AgentError {
    fn from(error: seing_signer::error::Error) -> Self {
        match error {
            seing_signer::error::Error::WrongPin(_) => Self::WrongPin,
            seing_signer::error::Error::PinLocked(_) => Self::PinLocked,
            other => Self::Token(other),
        }
    }
}

/// A certificate the page may choose.
#[derive(Debug, Serialize)]
pub struct CertificateView {
    /// Opaque identifier to send back to `/sign`.
    pub id: String,
    /// Who it names, and on which token.
    pub label: String,
    /// The chain to send to the two-phase API: base64 DER, signer first.
    pub certificate_chain: Vec<String>,
}

/// `GET /certificates`.
#[derive(Debug, Serialize)]
pub struct CertificateList {
    /// Certificates on the tokens.
    pub certificates: Vec<CertificateView>,
}

/// One data-to-sign of a two-phase batch.
#[derive(Debug, Deserialize)]
pub struct SignItem {
    /// The batch item.
    pub item_id: String,
    /// Base64 digest.
    pub data_to_sign: String,
    /// `sha256`, `sha384` or `sha512`.
    pub digest_algorithm: String,
}

/// `POST /sign`.
#[derive(Deserialize)]
pub struct SignRequest {
    /// A certificate id from `/certificates`.
    pub certificate: String,
    /// The token's PIN, used for this batch only (never stored or logged).
    pub pin: String,
    /// The digests.
    pub items: Vec<SignItem>,
}

/// One signature value.
#[derive(Debug, Serialize)]
pub struct SignedItem {
    /// The batch item.
    pub item_id: String,
    /// Base64 signature value.
    pub signature_value: String,
}

/// The answer of `POST /sign`.
#[derive(Debug, Serialize)]
pub struct SignResponse {
    /// One value per item, in order.
    pub signatures: Vec<SignedItem>,
}

fn certificate_id(c: &TokenCertificate) -> String {
    format!("{}/{}", c.token, hex::encode(&c.id))
}

fn list(config: &AgentConfig) -> Result<Vec<TokenCertificate>, AgentError> {
    Ok(pkcs11::list_certificates(&config.module)?)
}

async fn certificates(
    State(config): State<Arc<AgentConfig>>,
) -> Result<Json<CertificateList>, AgentError> {
    let config2 = config.clone();
    let found = tokio::task::spawn_blocking(move || list(&config2))
        .await
        .map_err(|e| AgentError::Invalid(e.to_string()))??;
    let mut certificates = Vec::new();
    for c in &found {
        let mut chain = vec![
            STANDARD.encode(
                c.certificate
                    .to_der()
                    .map_err(|e| AgentError::Invalid(e.to_string()))?,
            ),
        ];
        for extra in &config.chain {
            chain.push(
                STANDARD.encode(
                    extra
                        .to_der()
                        .map_err(|e| AgentError::Invalid(e.to_string()))?,
                ),
            );
        }
        certificates.push(CertificateView {
            id: certificate_id(c),
            label: format!(
                "{} ({})",
                seing_signer::x509::common_name(&c.certificate).unwrap_or_else(|| c.label.clone()),
                c.token
            ),
            certificate_chain: chain,
        });
    }
    Ok(Json(CertificateList { certificates }))
}

fn digest_algorithm(name: &str) -> Result<DigestAlgorithm, AgentError> {
    Ok(match name {
        "sha256" => DigestAlgorithm::Sha256,
        "sha384" => DigestAlgorithm::Sha384,
        "sha512" => DigestAlgorithm::Sha512,
        other => {
            return Err(AgentError::Invalid(format!(
                "algorithme d'empreinte « {other} » non pris en charge"
            )));
        }
    })
}

/// Opens the key once (one login) and signs every digest of the batch.
fn sign_batch(config: &AgentConfig, request: SignRequest) -> Result<SignResponse, AgentError> {
    let items = request
        .items
        .iter()
        .map(|i| {
            let digest = STANDARD
                .decode(i.data_to_sign.trim())
                .map_err(|_| AgentError::Invalid(format!("{} : base64 invalide", i.item_id)))?;
            Ok((
                i.item_id.clone(),
                digest_algorithm(&i.digest_algorithm)?,
                digest,
            ))
        })
        .collect::<Result<Vec<_>, AgentError>>()?;
    let found = list(config)?
        .into_iter()
        .find(|c| certificate_id(c) == request.certificate)
        .ok_or(AgentError::UnknownCertificate)?;
    let mut uri = found.key_uri(&config.module);
    uri.pin = Some(PinSource::Value(Secret::new(request.pin)));
    let key = key::open(
        &KeySpec::Pkcs11 {
            uri,
            certificate: None,
        },
        config.chain.clone(),
    )?;
    let signatures = items
        .into_iter()
        .map(|(item_id, algorithm, digest)| {
            let value = key.sign_digest(algorithm, &digest)?;
            Ok(SignedItem {
                item_id,
                signature_value: STANDARD.encode(value.as_bytes()),
            })
        })
        .collect::<Result<Vec<_>, AgentError>>()?;
    Ok(SignResponse { signatures })
}

async fn sign(
    State(config): State<Arc<AgentConfig>>,
    Json(request): Json<SignRequest>,
) -> Result<Json<SignResponse>, AgentError> {
    tokio::task::spawn_blocking(move || sign_batch(&config, request))
        .await
        .map_err(|e| AgentError::Invalid(e.to_string()))?
        .map(Json)
}

/// Refuses any other origin and any Host but the loopback one; answers CORS preflights for the
/// configured origin (with Private Network Access, for a public seing calling 127.0.0.1).
async fn guard(State(config): State<Arc<AgentConfig>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| {
            h == config.listen.to_string() || h == format!("localhost:{}", config.listen.port())
        });
    if !host_ok {
        return AgentError::Host.into_response();
    }
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| o == config.origin);
    if !origin_ok {
        return AgentError::Origin(config.origin.clone()).into_response();
    }
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let out = response.headers_mut();
    if let Ok(origin) = HeaderValue::from_str(&config.origin) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    out.insert(
        "access-control-allow-private-network",
        HeaderValue::from_static("true"),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The agent's routes.
pub fn router(config: Arc<AgentConfig>) -> Router {
    Router::new()
        .route("/certificates", get(certificates))
        .route("/sign", axum::routing::post(sign))
        .layer(axum::middleware::from_fn_with_state(config.clone(), guard))
        .with_state(config)
}

/// Serves until Ctrl-C; refuses a non-loopback address.
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.listen.ip().is_loopback(),
        "the agent listens on the loopback address only (127.0.0.1), not {}",
        config.listen
    );
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    eprintln!(
        "seing agent : en écoute sur http://{} pour {}",
        listener.local_addr()?,
        config.origin
    );
    axum::serve(listener, router(Arc::new(config)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
