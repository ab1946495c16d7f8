//! The HTTP side: configuration, TLS client certificate, login, and how answers become errors.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::multipart::Form;
use crate::{Error, Result};

/// Largest answer read (an acquit or a status with its `ARActe`).
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// The client certificate and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientIdentity {
    /// PEM file with the certificate, then its chain.
    pub certificate: PathBuf,
    /// PEM file with the unencrypted private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A login and password for S²LOW accounts that require one on top of the certificate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Login.
    pub login: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// How to reach one authority's S²LOW account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S2lowConfig {
    /// Base URL, e.g. `https://s2low.example.org` (no trailing path).
    pub url: String,
    /// TLS client certificate.
    #[serde(default)]
    pub identity: Option<ClientIdentity>,
    /// PEM file of the CA certificates that sign the server's certificate; the public web
    /// roots when absent.
    #[serde(default)]
    pub server_ca: Option<PathBuf>,
    /// Optional login and password.
    #[serde(default)]
    pub credentials: Option<Credentials>,
    /// Longest time for one call, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    60
}

/// A client of one S²LOW account.
#[derive(Debug, Clone)]
pub struct S2low {
    agent: ureq::Agent,
    url: String,
    authorization: Option<String>,
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn certificates(path: &std::path::Path) -> Result<Vec<Certificate<'static>>> {
    let pem = read_pem(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Format(format!(
                    "{} : PEM illisible ({e})",
                    path.display()
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::Format(format!(
            "{} : aucun certificat",
            path.display()
        )));
    }
    Ok(certs)
}

impl S2low {
    /// A client for `config`; reads the certificate files now, so a bad file is reported here.
    pub fn new(config: &S2lowConfig) -> Result<Self> {
        let url = config.url.trim_end_matches('/').to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Error::Format(format!(
                "adresse S²LOW « {url} » : https:// attendu"
            )));
        }
        let mut tls = TlsConfig::builder();
        if let Some(identity) = &config.identity {
            let chain = certificates(&identity.certificate)?;
            let key_pem = read_pem(&identity.key)?;
            let key = PrivateKey::from_pem(&key_pem).map_err(|e| {
                Error::Format(format!(
                    "{} : clé privée illisible ({e})",
                    identity.key.display()
                ))
            })?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        if let Some(ca) = &config.server_ca {
            tls = tls.root_certs(RootCerts::new_with_certs(&certificates(ca)?));
        }
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .tls_config(tls.build())
                .timeout_global(Some(Duration::from_secs(config.timeout_seconds.max(1))))
                .http_status_as_error(false)
                .build(),
        );
        let authorization = config.credentials.as_ref().map(|c| {
            let pair = format!("{}:{}", c.login, c.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Ok(Self {
            agent,
            url,
            authorization,
        })
    }

    /// `GET path` (with its query); the body of a 2xx answer.
    pub(crate) fn get(&self, path_and_query: &str) -> Result<Vec<u8>> {
        let mut request = self.agent.get(format!("{}{path_and_query}", self.url));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        answer(path_and_query, request.call())
    }

    /// `POST path` with a multipart form; the body of a 2xx answer.
    pub(crate) fn post(&self, path: &str, form: Form) -> Result<Vec<u8>> {
        let (content_type, body) = form.finish();
        let mut request = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Content-Type", &content_type);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        answer(path, request.send(&body[..]))
    }
}

fn answer(
    path: &str,
    result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Vec<u8>> {
    let mut response = result.map_err(|e| Error::Transport(format!("S²LOW {path} : {e}")))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| Error::Transport(format!("S²LOW {path} : réponse illisible ({e})")))?;
    match status {
        200..=299 => Ok(body),
        401 | 403 => Err(Error::Refused(format!(
            "S²LOW {path} : accès refusé (HTTP {status}), certificat ou identifiants"
        ))),
        400..=499 => Err(Error::Refused(format!("S²LOW {path} : HTTP {status}"))),
        _ => Err(Error::Transport(format!("S²LOW {path} : HTTP {status}"))),
    }
}

/// Splits a plain-text answer `OK\n<rest>` / `KO\n<message>`; `KO` becomes [`Error::Refused`]
/// (or [`Error::Duplicate`] when `duplicate` recognizes the message).
pub(crate) fn ok_lines<'a>(
    path: &str,
    body: &'a [u8],
    duplicate: fn(&str) -> bool,
) -> Result<&'a [u8]> {
    let (head, rest) = first_line(body);
    match head.trim_ascii() {
        b"OK" => Ok(rest),
        b"KO" => {
            let message = latin1_or_utf8(rest).trim().to_owned();
            if duplicate(&message) {
                Err(Error::Duplicate(message))
            } else {
                Err(Error::Refused(format!("S²LOW {path} : {message}")))
            }
        }
        _ => Err(Error::Transport(format!(
            "S²LOW {path} : réponse inattendue « {} »",
            latin1_or_utf8(&body[..body.len().min(200)]).trim()
        ))),
    }
}

/// S²LOW's PHP pages answer in UTF-8 or ISO-8859-1 depending on the page.
pub(crate) fn latin1_or_utf8(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The first line of `bytes` and what follows it.
pub(crate) fn first_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &bytes[bytes.len()..]),
    }
}
