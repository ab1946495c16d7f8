//! Connector settings of the caller's tenant (tenant administrators): how its acts, PES files
//! and archives travel. Checked by `seing-connectors` before they are stored.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::{ApiError, ApiResult, Problem};
use super::{ApiJson, ApiState};

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
