//! Connector settings of the caller's tenant (tenant administrators): how its acts, PES files
//! and archives travel, checked by `seing-connectors` before they are stored; and the
//! notification links that outside recipients open.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::{ApiError, ApiResult, Problem};
use super::{ApiJson, ApiPath, ApiState};

/// A tenant's connector settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorSettingsView {
    /// The settings as stored (`actes`, `helios`, `archive`), or null when none are set.
    #[schema(value_type = Object)]
    pub settings: Option<serde_json::Value>,
}

/// The connector settings of the caller's tenant (tenant administrators).
#[utoipa::path(get, path = "/connectors", tag = "connectors", operation_id = "connector_settings",
    responses((status = 200, body = ConnectorSettingsView), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn settings(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<ConnectorSettingsView>> {
    let actor = caller.tenant_admin()?;
    let stored = seing_connectors::settings::stored_settings(&state.engine, actor.tenant).await?;
    let settings = stored
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|e| ApiError::Internal(format!("connector settings: {e}")))?;
    Ok(Json(ConnectorSettingsView { settings }))
}

/// Replaces the connector settings of the caller's tenant (tenant administrators); every
/// problem is listed and nothing is changed when one is found.
#[utoipa::path(put, path = "/connectors", tag = "connectors", operation_id = "set_connector_settings",
    request_body(content = Object, description = "`actes`, `helios`, `archive` (see docs/connectors.md)"),
    responses((status = 200, body = ConnectorSettingsView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_settings(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<ConnectorSettingsView>> {
    let actor = caller.tenant_admin()?;
    // Serde would read an array as the settings' fields in order: only an object is settings.
    if !body.is_object() {
        return Err(ApiError::invalid("settings", "un objet JSON est attendu"));
    }
    seing_connectors::settings::store_settings(
        &state.engine,
        actor.tenant,
        &body.to_string(),
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(Json(ConnectorSettingsView {
        settings: Some(body),
    }))
}

/// Opens a notification link (the outside recipient, no login): the first opening records the
/// timestamped proof of receipt in the dossier's journal; the signed document is returned.
#[utoipa::path(get, path = "/notifications/{token}", tag = "connectors", operation_id = "open_notification",
    security(()),
    params(("token" = String, Path, description = "Le secret du lien reçu par courriel")),
    responses((status = 200, description = "Le document notifié", content_type = "application/octet-stream"),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn open_notification(
    State(state): State<Arc<ApiState>>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    use seing_connectors::Error;
    let delivered = match seing_connectors::notification::open(&state.engine, &token).await {
        Ok(delivered) => delivered,
        Err(Error::Refused(reason)) if reason.contains("expiré") => {
            return Err(ApiError::Forbidden("ce lien a expiré"));
        }
        Err(Error::Refused(_)) => return Err(ApiError::NotFound),
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    };
    let disposition = format!(
        "attachment; filename=\"{}\"",
        delivered.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        delivered.bytes,
    )
        .into_response())
}
