//! The service in process, on an engine of the test's own: its router, and plain requests.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use seing_api::http::{ApiSettings, ApiState};
use seing_api::server::{AppState, router};
use seing_engine::Engine;
use tower::ServiceExt;

/// The service's router on `engine`, with the default API settings.
pub fn app(engine: &Engine) -> Router {
    router(
        Arc::new(AppState {
            database: engine.database().clone(),
        }),
        Arc::new(ApiState {
            engine: engine.clone(),
            settings: ApiSettings::default(),
        }),
    )
}

/// `GET uri` without credentials: the status and the body.
pub async fn get(app: &Router, uri: &str) -> (StatusCode, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body.to_vec())
}
