//! Batch signing with a key of the server's module, followed live: the key is opened once with
//! the PIN typed in the page (used for this batch only, never stored or logged), then the
//! dossiers are signed one at a time and the answer streams one JSON line per dossier
//! (`application/x-ndjson`, the REST API's result objects) as soon as it is signed or refused.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use seing_engine::signing::server_batch;
use seing_signer::key::Secret;
use tokio::sync::mpsc;

use crate::http::auth::Caller;
use crate::http::problem::ApiResult;
use crate::http::signing::{OutcomeView, ServerSign};
use crate::http::{ApiJson, ApiState};

/// `POST /signature-serveur` (JSON body of `POST /api/v1/server-signatures`, with the session's
/// `X-CSRF-Token`). A refusal before any signature (wrong PIN, key of someone else, untrusted
/// certificate, empty selection) is a problem document with its status, and nothing is signed.
pub async fn stream(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<ServerSign>,
) -> ApiResult<Response> {
    let actor = caller.actor()?;
    let dossiers = server_batch(body.dossier_ids)?;
    let key = state
        .engine
        .open_server_key(actor, body.key_id, Secret::new(body.pin))
        .await?;
    let desk = body.desk_id;
    let (lines, mut received) = mpsc::channel::<Bytes>(dossiers.len());
    // The batch runs to its end even if the page goes away: each dossier is signed or left
    // unchanged as a whole, and the bureau shows the outcome after a reload.
    tokio::spawn(async move {
        for dossier in dossiers {
            let outcome = OutcomeView::from(
                state
                    .engine
                    .server_sign_dossier(actor, &key, dossier, desk)
                    .await,
            );
            let mut line = serde_json::to_vec(&outcome).unwrap_or_default();
            line.push(b'\n');
            let _ = lines.send(Bytes::from(line)).await;
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        received
            .poll_recv(cx)
            .map(|line| line.map(Ok::<_, Infallible>))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    // Reverse proxies must pass each line on at once instead of buffering the answer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
