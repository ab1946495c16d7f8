//! A business application's webhook endpoint for the tests, and the service's outbox worker
//! running beside it: the receiver records every delivery (path, `Seing-*` headers, body) and
//! answers 204, except `/flaky`, which answers 500 to its first request. [`eventually`] waits
//! for what the worker does.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use seing_api::worker::{self, WorkerSettings};
use seing_connectors::webhooks::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, verify_signature,
};
use seing_engine::Engine;
use serde_json::Value;

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub event: String,
    pub delivery: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Checks the `Seing-Signature` header as a receiver following `docs/webhooks.md` does: a
    /// valid HMAC of the body under `secret`, timestamped within 5 minutes of now.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        verify_signature(secret, &self.signature, &self.body, now, 300)
            .map_err(|e| format!("{e}: {self:?}"))
    }
}

/// The receiver: every request it got, in order.
#[derive(Debug, Clone, Default)]
pub struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    flaky_calls: Arc<AtomicU32>,
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(text("content-type"), "application/json");
    receiver.got.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        event: text(EVENT_HEADER),
        delivery: text(DELIVERY_HEADER),
        signature: text(SIGNATURE_HEADER),
        body: body.to_vec(),
    });
    if uri.path() == "/flaky" && receiver.flaky_calls.fetch_add(1, Ordering::SeqCst) == 0 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

impl Receiver {
    /// Listens on a free loopback port of the current runtime; returns the receiver and its base URL.
    pub async fn start() -> (Self, String) {
        let receiver = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(receive).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, base)
    }

    /// The deliveries received at `path`, in order.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits (30 s at most) until `path` has received `count` deliveries of `event`.
    pub async fn wait_for(&self, path: &str, event: &str, count: usize) -> Vec<Received> {
        eventually(async || {
            let got: Vec<Received> = self
                .at(path)
                .into_iter()
                .filter(|r| r.event == event)
                .collect();
            if got.len() >= count {
                Ok(got)
            } else {
                Err(format!(
                    "{path} got {} {event} deliveries of {count}",
                    got.len()
                ))
            }
        })
        .await
    }
}

/// Polls `probe` every 50 ms until it answers `Ok`, 30 s at most; then fails with its last
/// `Err`, which says what was awaited and what was seen.
pub async fn eventually<T>(mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(Instant::now() < deadline, "after 30 s: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The service's outbox worker, polling every 20 ms, stopped by [`Worker::stop`].
pub struct Worker {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Starts the worker of `engine` on the current runtime (first retry after 300 ms).
    pub fn start(engine: &Engine) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(worker::run(
            engine.clone(),
            WorkerSettings {
                poll: Duration::from_millis(20),
                retry_base: Duration::from_millis(300),
                lease: Duration::from_secs(300),
                webhook_timeout: Duration::from_secs(5),
            },
            async {
                let _ = stopped.await;
            },
        ));
        Self { stop, task }
    }

    /// Stops the worker and waits for it to finish its pass.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap();
    }
}
