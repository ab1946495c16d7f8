//! The HTTP side: configuration, TLS client certificate, login, and how answers become errors.

use std::path::PathBuf;
use std::time::Duration;

use super::multipart::Form;
pub use crate::tls::ClientIdentity;
use crate::{Error, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Largest answer read (an acquit or a status with its `ARActe`).
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

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
    /// Whether a client certificate is configured (to explain a refused handshake).
    has_identity: bool,
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
        let agent = crate::tls::agent(
            config.identity.as_ref(),
            config.server_ca.as_deref(),
            Duration::from_secs(config.timeout_seconds),
        )?;
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
            has_identity: config.identity.is_some(),
        })
    }

    /// `GET path` (with its query); the body of a 2xx answer.
    pub(crate) fn get(&self, path_and_query: &str) -> Result<Vec<u8>> {
        let mut request = self.agent.get(format!("{}{path_and_query}", self.url));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        self.answer(path_and_query, request.call())
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
        self.answer(path, request.send(&body[..]))
    }

    fn answer(
        &self,
        path: &str,
        result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>> {
        let mut response = result.map_err(|e| {
            let https = self.url.starts_with("https://");
            let text = crate::tls::problem(&e, "S²LOW", self.has_identity, https)
                .unwrap_or_else(|| e.to_string());
            Error::Transport(format!("S²LOW {path} : {text}"))
        })?;
        read_answer(path, &mut response)
    }
}

fn read_answer(path: &str, response: &mut ureq::http::Response<ureq::Body>) -> Result<Vec<u8>> {
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
