//! Transfer of SEDA packages to the archive system by HTTP, for archive systems that take
//! transfers over the network rather than from a shared folder.
//!
//! The exchange (also in `docs/connectors.md`):
//!
//! - `POST <url>` with the package as one gzip-compressed tar (`manifest.xml` at the root, the
//!   files under `content/`, the layout of a drop-folder package), `Content-Type:
//!   application/gzip`, and the manifest's `MessageIdentifier` in `Seing-Message-Identifier`.
//!   A tar keeps the package's tree and streams in one body, and archive systems' ingest
//!   endpoints take tar archives (a multipart form would make the receiver rebuild the tree).
//!   `2xx` means taken; `409 Conflict` means the archive system has this `MessageIdentifier`
//!   already (a repeat after a crash), which counts as taken too.
//! - `GET <url>/<MessageIdentifier>/reply` answers the `ArchiveTransferReply` once the
//!   archive system has decided (`200`), `404` or `202` until then.
//! - `401`/`403` and other `4xx` are refusals; `5xx`, timeouts and connection errors are retried.
//!
//! Authentication: an optional bearer token and an optional TLS client certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::tls::ClientIdentity;
use crate::{Error, Result};

/// Header carrying the `MessageIdentifier` of a posted package.
pub const MESSAGE_ID_HEADER: &str = "Seing-Message-Identifier";

/// Largest reply read.
const MAX_REPLY: u64 = 16 * 1024 * 1024;

/// How to reach the archive system's transfer endpoint.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveHttp {
    /// Where packages are posted, e.g. `https://sae.example.fr/api/transfers`.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` when given.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// TLS client certificate.
    #[serde(default)]
    pub identity: Option<ClientIdentity>,
    /// PEM file of the CA certificates that sign the server's certificate; the public web
    /// roots when absent.
    #[serde(default)]
    pub server_ca: Option<PathBuf>,
    /// Longest time for one call, in seconds (a package may be large).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    300
}

impl std::fmt::Debug for ArchiveHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveHttp")
            .field("url", &self.url)
            .field("identity", &self.identity)
            .field("server_ca", &self.server_ca)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish_non_exhaustive()
    }
}

/// A client of one archive system's transfer endpoint.
#[derive(Debug, Clone)]
pub struct ArchiveClient {
    agent: ureq::Agent,
    url: String,
    authorization: Option<String>,
    has_identity: bool,
}

/// The package in `dir` (`manifest.xml` and `content/`) as a gzip-compressed tar.
pub fn pack(dir: &Path) -> Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(encoder);
    tar.mode(tar::HeaderMode::Deterministic);
    let manifest = dir.join("manifest.xml");
    tar.append_path_with_name(&manifest, "manifest.xml")
        .map_err(|e| Error::io(&manifest, e))?;
    let content = dir.join("content");
    let mut names: Vec<_> = std::fs::read_dir(&content)
        .map_err(|e| Error::io(&content, e))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(&content, e))?;
    names.sort();
    for name in names {
        let path = content.join(&name);
        tar.append_path_with_name(&path, Path::new("content").join(&name))
            .map_err(|e| Error::io(&path, e))?;
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .map_err(|e| Error::io(dir, e))
}

impl ArchiveClient {
    /// A client for `config`; reads the certificate files now, so a bad file is reported here.
    pub fn new(config: &ArchiveHttp) -> Result<Self> {
        let url = config.url.trim_end_matches('/').to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Error::Format(format!(
                "adresse du service d'archives « {url} » : https:// attendu"
            )));
        }
        Ok(Self {
            agent: crate::tls::agent(
                config.identity.as_ref(),
                config.server_ca.as_deref(),
                Duration::from_secs(config.timeout_seconds),
            )?,
            url,
            authorization: config.bearer_token.as_ref().map(|t| format!("Bearer {t}")),
            has_identity: config.identity.is_some(),
        })
    }

    fn failed(&self, what: &str, error: &ureq::Error) -> Error {
        let https = self.url.starts_with("https://");
        let text = crate::tls::problem(error, "le service d'archives", self.has_identity, https)
            .unwrap_or_else(|| error.to_string());
        Error::Transport(format!("service d'archives, {what} : {text}"))
    }

    /// Posts the package in `dir` under `message_identifier` (see the module doc); a repeat
    /// that the archive system recognizes is a success.
    pub fn transfer(&self, dir: &Path, message_identifier: &str) -> Result<()> {
        let body = pack(dir)?;
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/gzip")
            .header(MESSAGE_ID_HEADER, message_identifier);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let what = format!("envoi de {message_identifier}");
        let response = request
            .send(&body[..])
            .map_err(|e| self.failed(&what, &e))?;
        match response.status().as_u16() {
            200..=299 | 409 => Ok(()),
            status => Err(refusal(&what, status)),
        }
    }

    /// The `ArchiveTransferReply` to `message_identifier`, once the archive system has one.
    pub fn reply(&self, message_identifier: &str) -> Result<Option<Vec<u8>>> {
        let mut request = self
            .agent
            .get(format!("{}/{message_identifier}/reply", self.url));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let what = format!("réponse à {message_identifier}");
        let mut response = request.call().map_err(|e| self.failed(&what, &e))?;
        match response.status().as_u16() {
            200 => response
                .body_mut()
                .with_config()
                .limit(MAX_REPLY)
                .read_to_vec()
                .map(Some)
                .map_err(|e| Error::Transport(format!("service d'archives, {what} : {e}"))),
            202 | 404 => Ok(None),
            status => Err(refusal(&what, status)),
        }
    }
}

/// What an HTTP status other than the expected ones means.
fn refusal(what: &str, status: u16) -> Error {
    match status {
        401 | 403 => Error::Refused(format!(
            "service d'archives, {what} : accès refusé (HTTP {status}), jeton ou certificat"
        )),
        400..=499 => Error::Refused(format!("service d'archives, {what} : HTTP {status}")),
        _ => Error::Transport(format!("service d'archives, {what} : HTTP {status}")),
    }
}
