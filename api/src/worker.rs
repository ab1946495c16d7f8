//! The outbox worker: delivers the jobs that state changes wrote (webhooks, transmissions,
//! notifications, archives) through the ports of `seing-connectors`, with retries and backoff.
//! `seing serve` runs it next to the HTTP service unless `--no-worker`; `seing worker` runs it
//! alone (several of them may share one PostgreSQL database: `SKIP LOCKED` splits the jobs).

use std::future::Future;
use std::time::Duration;

use seing_connectors::ports::{Connectors, PollRun};
use seing_connectors::webhooks::HttpWebhookSender;
use seing_engine::Engine;
use seing_engine::outbox::RetryPolicy;
use seing_engine::ports::Dispatcher;
use tokio::sync::watch;

/// Jobs taken per pass.
const BATCH: u32 = 20;
/// Returns (S²LOW statuses, drop-folder inboxes, expired notification links) are read every
/// this many polls: outside platforms are asked far less often than the outbox.
const RETURNS_EVERY: u32 = 30;

/// How the worker polls, retries and delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Pause when no job is due.
    pub poll: Duration,
    /// Delay before the first retry (doubled at each attempt, capped by the engine's policy).
    pub retry_base: Duration,
    /// How long a taken job stays reserved; a dead worker's jobs are taken again after it.
    pub lease: Duration,
    /// Time limit of one webhook delivery.
    pub webhook_timeout: Duration,
}

impl WorkerSettings {
    /// The engine's retry policy with this first delay and lease.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: time::Duration::try_from(self.retry_base).unwrap_or(time::Duration::MAX),
            lease: time::Duration::try_from(self.lease).unwrap_or(time::Duration::MAX),
            ..RetryPolicy::default()
        }
    }
}

/// The dispatcher of the service: one port per job kind.
pub type ServiceDispatcher = Dispatcher<Connectors, Connectors, Connectors, HttpWebhookSender>;

/// Builds the dispatcher that routes the jobs of `engine` to their ports.
pub fn dispatcher(engine: &Engine, settings: &WorkerSettings) -> ServiceDispatcher {
    let connectors = Connectors::new(engine.clone());
    Dispatcher {
        engine: engine.clone(),
        transmitter: connectors.clone(),
        notifier: connectors.clone(),
        archiver: connectors,
        webhooks: HttpWebhookSender::new(engine.clone(), settings.webhook_timeout),
    }
}

/// Runs the worker until `shutdown` completes: the outbox, and the reading of returns that
/// moves transmitted dossiers on. A job interrupted by the shutdown is taken again once its
/// lease expires.
pub async fn run(engine: Engine, settings: WorkerSettings, shutdown: impl Future<Output = ()>) {
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let stopping = async {
        shutdown.await;
        let _ = stop.send(true);
    };
    tokio::join!(
        stopping,
        outbox(&engine, &settings, until_stopped(stopped.clone())),
        returns(&engine, &settings, until_stopped(stopped)),
    );
}

async fn outbox(engine: &Engine, settings: &WorkerSettings, shutdown: impl Future<Output = ()>) {
    let dispatcher = dispatcher(engine, settings);
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

async fn returns(engine: &Engine, settings: &WorkerSettings, shutdown: impl Future<Output = ()>) {
    let connectors = Connectors::new(engine.clone());
    let pause = settings.poll.saturating_mul(RETURNS_EVERY);
    tokio::pin!(shutdown);
    loop {
        match connectors.poll().await {
            Ok(run) if run != PollRun::default() => tracing::info!(?run, "returns read"),
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "reading returns failed; trying again"),
        }
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
