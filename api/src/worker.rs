//! The outbox worker: delivers the jobs that state changes wrote (webhooks, transmissions,
//! notifications, archives) through the ports of `seing-connectors`, with retries and backoff.
//! `seing serve` runs it next to the HTTP service unless `--no-worker`; `seing worker` runs it
//! alone (several of them may share one PostgreSQL database: `SKIP LOCKED` splits the jobs).

use std::future::Future;
use std::time::Duration;

use seing_connectors::webhooks::HttpWebhookSender;
use seing_engine::Engine;
use seing_engine::circuit::Channel;
use seing_engine::outbox::{DeliveryError, Job, RetryPolicy};
use seing_engine::ports::{Archiver, Dispatcher, Notifier, Receipt, Transmitter};

/// Jobs taken per pass.
const BATCH: u32 = 20;

/// How the worker polls, retries and delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Pause when no job is due.
    pub poll: Duration,
    /// Delay before the first retry (doubled at each attempt, capped by the engine's policy).
    pub retry_base: Duration,
    /// Time limit of one webhook delivery.
    pub webhook_timeout: Duration,
}

impl WorkerSettings {
    /// The engine's retry policy with this first delay.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: time::Duration::try_from(self.retry_base).unwrap_or(time::Duration::MAX),
            ..RetryPolicy::default()
        }
    }
}

/// The port of a connector kind that no connector serves yet: every job of that kind fails for
/// good with a message saying so (the connectors replace it with the real port).
#[derive(Debug, Clone, Copy)]
pub struct Unconfigured;

impl Transmitter for Unconfigured {
    async fn transmit(&self, _job: &Job, _channel: Channel) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::permanent(
            "aucun connecteur de transmission n'est configuré",
        ))
    }
}

impl Notifier for Unconfigured {
    async fn notify(&self, _job: &Job) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::permanent(
            "aucun connecteur de notification n'est configuré",
        ))
    }
}

impl Archiver for Unconfigured {
    async fn archive(&self, _job: &Job) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::permanent(
            "aucun connecteur d'archivage n'est configuré",
        ))
    }
}

/// The dispatcher of the service: one port per job kind.
pub type ServiceDispatcher =
    Dispatcher<Unconfigured, Unconfigured, Unconfigured, HttpWebhookSender>;

/// Builds the dispatcher that routes the jobs of `engine` to their ports.
pub fn dispatcher(engine: &Engine, settings: &WorkerSettings) -> ServiceDispatcher {
    Dispatcher {
        engine: engine.clone(),
        transmitter: Unconfigured,
        notifier: Unconfigured,
        archiver: Unconfigured,
        webhooks: HttpWebhookSender::new(engine.clone(), settings.webhook_timeout),
    }
}

/// Runs the worker until `shutdown` completes; a job interrupted by the shutdown is taken
/// again once its lease expires.
pub async fn run(engine: Engine, settings: WorkerSettings, shutdown: impl Future<Output = ()>) {
    let dispatcher = dispatcher(&engine, &settings);
    let policy = settings.retry_policy();
    tracing::info!(poll = ?settings.poll, "outbox worker started");
    tokio::pin!(shutdown);
    // A database error ends one run of the loop, not the worker: it starts again after a pause.
    while let Err(error) = engine
        .run_outbox_worker(
            &dispatcher,
            &policy,
            BATCH,
            settings.poll,
            shutdown.as_mut(),
        )
        .await
    {
        tracing::error!(%error, "outbox worker error; trying again");
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
    tracing::info!("outbox worker stopped");
}
