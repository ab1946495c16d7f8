//! Connector settings of the caller's tenant (tenant administrators): how its acts, PES files
//! and archives travel, checked by `seing-connectors` before they are stored; the PES files
//! S²LOW took without seing learning their transaction number, which an administrator numbers;
//! and the notification links that outside recipients open.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use seing_connectors::recovery::{self, UnnumberedPes};
use seing_engine::ids::DossierId;
use serde::{Deserialize, Serialize};
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

/// A PES that S²LOW holds under a transaction number seing does not know.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnnumberedPesView {
    /// The dossier.
    #[schema(value_type = String, format = Uuid)]
    pub dossier: String,
    /// Its title.
    pub title: String,
    /// The transmission step (index in the circuit).
    pub step: i64,
    /// The PES file name sent.
    pub file: String,
    /// The SHA-1 of the file sent (hex), as the S²LOW console shows it.
    pub sha1: String,
    /// When it was sent (RFC 3339).
    pub sent_at: String,
}

impl From<UnnumberedPes> for UnnumberedPesView {
    fn from(p: UnnumberedPes) -> Self {
        Self {
            dossier: p.dossier.to_string(),
            title: p.title,
            step: p.step,
            file: p.file,
            sha1: p.sha1,
            sent_at: p.sent_at,
        }
    }
}

/// The PES of the caller's tenant that S²LOW took but whose transaction number was lost
/// (tenant administrators): they wait for an administrator to give the number.
#[utoipa::path(get, path = "/connectors/helios/unnumbered", tag = "connectors", operation_id = "unnumbered_pes",
    responses((status = 200, body = [UnnumberedPesView]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn unnumbered(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<UnnumberedPesView>>> {
    let actor = caller.tenant_admin()?;
    let list = recovery::unnumbered_pes(&state.engine, actor.tenant).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// The S²LOW transaction number of a PES, as found in the S²LOW console.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionNumber {
    /// The transaction number.
    #[schema(minimum = 1)]
    pub transaction: u64,
}

/// The transaction a PES now has.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberedPes {
    /// The dossier.
    #[schema(value_type = String, format = Uuid)]
    pub dossier: String,
    /// Its S²LOW transaction number.
    pub transaction: u64,
}

/// Gives a PES whose S²LOW answer was lost its transaction number (tenant administrators).
/// seing downloads the file S²LOW holds for that transaction and takes the number only if it
/// is the file sent (same SHA-1); the send is then followed up to its `PES_Acquit`.
#[utoipa::path(post, path = "/connectors/helios/unnumbered/{dossier}", tag = "connectors", operation_id = "number_pes",
    request_body = TransactionNumber,
    params(("dossier" = String, Path, description = "Dossier")),
    responses((status = 200, body = NumberedPes), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 502, body = Problem)))]
pub async fn number(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(dossier): ApiPath<DossierId>,
    ApiJson(body): ApiJson<TransactionNumber>,
) -> ApiResult<Json<NumberedPes>> {
    let actor = caller.tenant_admin()?;
    if body.transaction == 0 {
        return Err(ApiError::invalid(
            "transaction",
            "numéro de transaction attendu (≥ 1)",
        ));
    }
    let id = number_pes(&state.engine, actor, dossier, body.transaction).await?;
    Ok(Json(NumberedPes {
        dossier: dossier.to_string(),
        transaction: id.0,
    }))
}

/// Gives the PES of `dossier` its S²LOW transaction number in the name of `actor` (the REST
/// route and the administration page); S²LOW holding another file, or none, under that number
/// is a refusal of the field `transaction`.
pub(crate) async fn number_pes(
    engine: &seing_engine::Engine,
    actor: seing_engine::model::Actor,
    dossier: DossierId,
    transaction: u64,
) -> ApiResult<seing_connectors::s2low::HeliosTransaction> {
    recovery::number_pes(engine, actor.tenant, actor.user, dossier, transaction)
        .await
        .map_err(|e| match e {
            seing_connectors::Error::Refused(reason) => ApiError::invalid("transaction", reason),
            other => other.into(),
        })
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
