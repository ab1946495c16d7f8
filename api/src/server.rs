//! The HTTP service: router, shared state and start-up.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use seing_engine::Engine;
use seing_engine::storage::Database;
use serde::Serialize;

use crate::config::ServeConfig;
use crate::http::ApiState;

/// State shared by every request handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database pool.
    pub database: Database,
}

/// Builds the router of the service: `/healthz`, the REST API under `/api/v1` and the web UI.
pub fn router(state: Arc<AppState>, api: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
        .nest("/api/v1", crate::http::router(api.clone()))
        .merge(crate::ui::router(api))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Opens the engine of a configuration: data folder, database (migrated), templates.
pub async fn open_engine(config: &ServeConfig) -> anyhow::Result<Engine> {
    let documents = config.data_dir.join("documents");
    std::fs::create_dir_all(&documents)
        .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
    Ok(Engine::open(
        &config.database_url,
        &documents,
        config.workflows_dir.as_deref(),
    )
    .await
    .with_context(|| format!("cannot open database {}", config.database_url))?
    .with_signing_settings(config.signing.clone()))
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what service managers send to stop a process).
/// The SIGTERM handler is installed at once (inside the runtime), not when first polled, so that
/// a signal sent right after start-up stops the process cleanly.
pub fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut terminate) = terminate {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Creates the data folder, opens the database, seeds the demo if asked, starts the outbox
/// worker (unless disabled) and serves until Ctrl-C or SIGTERM; then the server finishes its
/// requests and the worker its current pass.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let engine = open_engine(&config).await?;
    if config.demo {
        crate::demo::seed(&engine, config.listen).await?;
    }
    let database = engine.database().clone();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let signal = stop_signal();
    tracing::info!(
        address = %listener.local_addr()?,
        data_dir = %config.data_dir.display(),
        backend = database.backend(),
        worker = config.worker,
        "seing is serving"
    );
    // The worker stops once the server has finished its requests.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = config.worker.then(|| {
        let mut stopped = stopped;
        tokio::spawn(crate::worker::run(
            engine.clone(),
            config.worker_settings,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ))
    });
    let api = Arc::new(ApiState {
        engine,
        settings: config.api.clone(),
    });
    let app = router(Arc::new(AppState { database }), api);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await;
    let _ = stop.send(true);
    if let Some(worker) = worker {
        worker.await.context("outbox worker")?;
    }
    served?;
    Ok(())
}

/// Runs the outbox worker alone (`seing worker`) until Ctrl-C or SIGTERM.
pub async fn work(config: ServeConfig) -> anyhow::Result<()> {
    let engine = open_engine(&config).await?;
    tracing::info!(
        backend = engine.database().backend(),
        "seing worker is running"
    );
    crate::worker::run(engine, config.worker_settings, stop_signal()).await;
    Ok(())
}

/// Body of `GET /healthz`.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    database: DatabaseHealth,
}

#[derive(Debug, Serialize)]
struct DatabaseHealth {
    backend: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn healthz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Health>) {
    let ping = state.database.ping().await;
    let healthy = ping.is_ok();
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: DatabaseHealth {
            backend: state.database.backend(),
            status: if healthy { "up" } else { "down" },
            error: ping.err().map(|e| e.to_string()),
        },
    };
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
