//! An archive system for tests (never in the product), speaking the `archive.http` protocol of
//! docs/connectors.md: it takes SEDA packages posted as gzip-compressed tars with a bearer
//! token, unpacks each into its folder, keeps one per `MessageIdentifier` (`409` for a repeat),
//! and serves the `ArchiveTransferReply` once the test gives it. The answer to the next
//! package can be lost or held, the package being kept either way (a crash window for the
//! sender). It runs on the test's tokio runtime.

#![allow(dead_code)] // each test file uses part of it

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as AxumPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use seing_connectors::seda::MESSAGE_ID_HEADER;
use serde_json::json;
use tokio::sync::Notify;

/// The token the archive system expects.
pub const SAE_TOKEN: &str = "jeton-du-service-d-archives";

/// What happens to the answer to the next package taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Taken, but the answer never makes it back (`502`): the sender must try again.
    LoseAnswer,
    /// Taken, then the answer waits for [`ArchiveSystem::release`]: the sender never learns
    /// the outcome if it dies meanwhile.
    HoldAnswer,
}

#[derive(Default)]
struct Shared {
    posts: Vec<String>,
    replies: BTreeMap<String, String>,
    fault: Option<Fault>,
    held: usize,
}

/// A running archive system.
#[derive(Clone)]
pub struct ArchiveSystem {
    /// Where packages are posted (`.../versements`).
    pub url: String,
    received: PathBuf,
    shared: Arc<Mutex<Shared>>,
    release: Arc<Notify>,
}

async fn post_package(
    State(sae): State<ArchiveSystem>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("authorization") != Some(&format!("Bearer {SAE_TOKEN}")) {
        return StatusCode::UNAUTHORIZED;
    }
    let (Some("application/gzip"), Some(id)) = (header("content-type"), header(MESSAGE_ID_HEADER))
    else {
        return StatusCode::BAD_REQUEST;
    };
    sae.shared.lock().unwrap().posts.push(id.to_owned());
    let folder = sae.received.join(id);
    if folder.exists() {
        return StatusCode::CONFLICT;
    }
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&body[..]));
    if tar.unpack(&folder).is_err() {
        return StatusCode::BAD_REQUEST;
    }
    let manifest = std::fs::read_to_string(folder.join("manifest.xml")).unwrap_or_default();
    if !manifest.contains(&format!("<MessageIdentifier>{id}</MessageIdentifier>")) {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    let fault = sae.shared.lock().unwrap().fault.take();
    match fault {
        Some(Fault::LoseAnswer) => StatusCode::BAD_GATEWAY,
        Some(Fault::HoldAnswer) => {
            let released = sae.release.notified();
            sae.shared.lock().unwrap().held += 1;
            released.await;
            sae.shared.lock().unwrap().held -= 1;
            StatusCode::ACCEPTED
        }
        None => StatusCode::ACCEPTED,
    }
}

async fn get_reply(
    State(sae): State<ArchiveSystem>,
    AxumPath(id): AxumPath<String>,
) -> (StatusCode, String) {
    match sae.shared.lock().unwrap().replies.get(&id) {
        Some(reply) => (StatusCode::OK, reply.clone()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}

impl ArchiveSystem {
    /// Starts it on a free port of 127.0.0.1; packages are unpacked under `received`.
    pub async fn start(received: PathBuf) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sae = Self {
            url: format!("http://{}/versements", listener.local_addr().unwrap()),
            received,
            shared: Arc::default(),
            release: Arc::default(),
        };
        let app = Router::new()
            .route("/versements", post(post_package))
            .route("/versements/{id}/reply", get(get_reply))
            .with_state(sae.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        sae
    }

    /// The tenant's `archive` settings for this system, sending `token`.
    pub fn settings(&self, token: &str) -> serde_json::Value {
        json!({
            "http": {"url": self.url, "bearer_token": token, "timeout_seconds": 5},
            "archival_agency": "AD35",
            "transferring_agency": "MAIRIE-213500002",
            "appraisal_rule": {"rule": "APP-DELIB", "final_action": "Keep"},
        })
    }

    /// Sets what happens to the answer to the next package taken.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().unwrap().fault = Some(fault);
    }

    /// How many answers are being held now.
    pub fn held(&self) -> usize {
        self.shared.lock().unwrap().held
    }

    /// Lets held answers go.
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    /// The `MessageIdentifier` of every post, repeats included, in order.
    pub fn posts(&self) -> Vec<String> {
        self.shared.lock().unwrap().posts.clone()
    }

    /// Serves `reply` as the reply to the transfer `message_id` from now on.
    pub fn reply(&self, message_id: &str, reply: String) {
        self.shared
            .lock()
            .unwrap()
            .replies
            .insert(message_id.to_owned(), reply);
    }
}

/// An `ArchiveTransferReply` to the transfer `message_id` with `code` (`OK` accepts).
pub fn transfer_reply(message_id: &str, code: &str) -> String {
    format!(
        r#"<ArchiveTransferReply xmlns="fr:gouv:culture:archivesdefrance:seda:v2.1">
  <Date>2026-11-30T09:00:00Z</Date><MessageIdentifier>ATR-{message_id}</MessageIdentifier><CodeListVersions/>
  <ReplyCode>{code}</ReplyCode><MessageRequestIdentifier>{message_id}</MessageRequestIdentifier>
  <ArchivalAgency><Identifier>AD35</Identifier></ArchivalAgency>
  <TransferringAgency><Identifier>MAIRIE-213500002</Identifier></TransferringAgency>
</ArchiveTransferReply>"#
    )
}
