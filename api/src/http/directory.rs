//! The tenant's directory: users (and their passwords), desks, delegations, API tokens,
//! circuit templates and circuits, and the journal check.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use seing_engine::access::Role;
use seing_engine::ids::{CircuitId, DeskId, UserId};
use seing_engine::model::Actor;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::auth::{self, Caller};
use super::problem::{ApiError, ApiResult, Problem};
use super::{ApiJson, ApiPath, ApiQuery, ApiState};

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login, unique in the tenant.
    pub login: String,
    /// Display name.
    pub display_name: String,
    /// Tenant administrator.
    #[serde(default)]
    pub admin: bool,
    /// Initial password (none: the user cannot log in, e.g. a software account).
    pub password: Option<String>,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The password.
    pub password: String,
}

/// A desk to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDesk {
    /// Name ("Finances").
    pub name: String,
    /// Parent desk.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub parent: Option<DeskId>,
    /// Holders.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub holders: Vec<UserId>,
}

/// A delegation to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDelegation {
    /// The absent desk.
    #[schema(value_type = String, format = Uuid)]
    pub from: DeskId,
    /// The replacing desk.
    #[schema(value_type = String, format = Uuid)]
    pub to: DeskId,
    /// Start (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: OffsetDateTime,
    /// End, exclusive (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: OffsetDateTime,
    /// Only for these circuits (empty: all).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub circuits: Vec<CircuitId>,
}

/// An API token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// The user the software acts as.
    #[schema(value_type = String, format = Uuid)]
    pub user: UserId,
    /// `user` or `tenant_admin`.
    pub role: String,
    /// Which software uses it.
    pub label: String,
}

/// A created token: the secret is shown once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Token id (to revoke it).
    pub id: String,
    /// The secret, for `Authorization: Bearer …`.
    pub token: String,
}

/// A circuit to create from a template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCircuit {
    /// Name, unique in the tenant.
    pub name: String,
    /// Template name (see `/circuit-templates`).
    pub template: String,
    /// The desk of each role key of the template.
    #[schema(value_type = BTreeMap<String, String>)]
    pub roles: BTreeMap<String, DeskId>,
}

/// A circuit's new name and role mapping.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCircuit {
    /// Name, unique in the tenant.
    pub name: String,
    /// The desk of each role key of the circuit's template.
    #[schema(value_type = BTreeMap<String, String>)]
    pub roles: BTreeMap<String, DeskId>,
}

/// A circuit template.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Role keys to map to desks.
    pub roles: Vec<String>,
}

/// Lists the tenant's users (tenant administrators).
#[utoipa::path(get, path = "/users", tag = "directory",
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem)))]
pub async fn users(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<seing_engine::model::User>>> {
    let actor = caller.tenant_admin()?;
    Ok(Json(state.engine.tenant_users(actor.tenant).await?))
}

/// Creates a user (tenant administrators).
#[utoipa::path(post, path = "/users", tag = "directory", request_body = CreateUser,
    responses((status = 201, body = serde_json::Value), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<seing_engine::model::User>)> {
    let actor = caller.tenant_admin()?;
    if let Some(p) = &body.password {
        auth::check_password(p)?;
    }
    let user = state
        .engine
        .create_user(actor, &body.login, &body.display_name, body.admin)
        .await?;
    if let Some(password) = body.password {
        let hash = auth::hash_blocking(password).await?;
        state
            .engine
            .set_password_hash(actor.tenant, user.id, &hash)
            .await?;
    }
    Ok((StatusCode::CREATED, Json(user)))
}

/// Sets a user's password (tenant administrators, or the user).
#[utoipa::path(put, path = "/users/{id}/password", tag = "directory", request_body = SetPassword,
    params(("id" = String, Path, description = "Utilisateur")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_password(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<SetPassword>,
) -> ApiResult<StatusCode> {
    let actor = caller.actor()?;
    if actor.user != id && caller.role != Role::TenantAdmin {
        return Err(ApiError::Forbidden(
            "seul l'utilisateur ou un administrateur change ce mot de passe",
        ));
    }
    auth::check_password(&body.password)?;
    let hash = auth::hash_blocking(body.password).await?;
    state
        .engine
        .set_password_hash(actor.tenant, id, &hash)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the tenant's desks.
#[utoipa::path(get, path = "/desks", tag = "directory",
    responses((status = 200, body = serde_json::Value), (status = 401, body = Problem)))]
pub async fn desks(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<seing_engine::model::Desk>>> {
    Ok(Json(state.engine.desks(caller.actor()?).await?))
}

/// Creates a desk (tenant administrators).
#[utoipa::path(post, path = "/desks", tag = "directory", request_body = CreateDesk,
    responses((status = 201, body = serde_json::Value), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create_desk(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateDesk>,
) -> ApiResult<(StatusCode, Json<seing_engine::model::Desk>)> {
    let actor = caller.tenant_admin()?;
    let desk = state
        .engine
        .create_desk(actor, &body.name, body.parent, &body.holders)
        .await?;
    Ok((StatusCode::CREATED, Json(desk)))
}

/// Lists the tenant's delegations.
#[utoipa::path(get, path = "/delegations", tag = "directory",
    responses((status = 200, body = serde_json::Value), (status = 401, body = Problem)))]
pub async fn delegations(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<seing_engine::model::Delegation>>> {
    Ok(Json(state.engine.delegations(caller.actor()?).await?))
}

/// Creates a delegation (administrators and holders of the absent desk).
#[utoipa::path(post, path = "/delegations", tag = "directory", request_body = CreateDelegation,
    responses((status = 201, body = serde_json::Value), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_delegation(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateDelegation>,
) -> ApiResult<(StatusCode, Json<seing_engine::model::Delegation>)> {
    let delegation = state
        .engine
        .create_delegation(
            caller.actor()?,
            body.from,
            body.to,
            body.starts_at,
            body.ends_at,
            body.circuits,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(delegation)))
}

/// Lists the tenant's API tokens (tenant administrators; secrets are never shown).
#[utoipa::path(get, path = "/tokens", tag = "directory",
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem)))]
pub async fn tokens(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<seing_engine::access::ApiToken>>> {
    let actor = caller.tenant_admin()?;
    Ok(Json(state.engine.api_tokens(Some(actor.tenant)).await?))
}

/// Creates an API token for a user of the tenant (tenant administrators).
#[utoipa::path(post, path = "/tokens", tag = "directory", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_token(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let actor = caller.tenant_admin()?;
    let role = match Role::parse(&body.role) {
        Some(r @ (Role::User | Role::TenantAdmin)) => r,
        _ => return Err(ApiError::invalid("role", "user ou tenant_admin")),
    };
    let secret = auth::new_token_secret()?;
    let token = state
        .engine
        .create_api_token(
            Some(Actor {
                tenant: actor.tenant,
                user: body.user,
            }),
            role,
            &body.label,
            &auth::secret_hash(&secret),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: token.id,
            token: secret,
        }),
    ))
}

/// Revokes an API token of the tenant (tenant administrators).
#[utoipa::path(delete, path = "/tokens/{id}", tag = "directory",
    params(("id" = String, Path, description = "Jeton")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let actor = caller.tenant_admin()?;
    state
        .engine
        .revoke_api_token(Some(actor.tenant), &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the circuit templates and their role keys.
#[utoipa::path(get, path = "/circuit-templates", tag = "circuits",
    responses((status = 200, body = Vec<TemplateView>), (status = 401, body = Problem)))]
pub async fn templates(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<TemplateView>>> {
    caller.actor()?;
    Ok(Json(
        state
            .engine
            .templates()
            .iter()
            .map(|(name, t)| TemplateView {
                name: name.clone(),
                title: t.title.clone(),
                roles: t.roles().into_iter().map(str::to_owned).collect(),
            })
            .collect(),
    ))
}

/// Lists the tenant's circuits.
#[utoipa::path(get, path = "/circuits", tag = "circuits",
    responses((status = 200, body = serde_json::Value), (status = 401, body = Problem)))]
pub async fn circuits(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<seing_engine::model::CircuitInfo>>> {
    Ok(Json(state.engine.circuits(caller.actor()?).await?))
}

/// Creates a circuit from a template (tenant administrators).
#[utoipa::path(post, path = "/circuits", tag = "circuits", request_body = CreateCircuit,
    responses((status = 201, body = serde_json::Value), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_circuit(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateCircuit>,
) -> ApiResult<(StatusCode, Json<seing_engine::model::CircuitInfo>)> {
    let actor = caller.tenant_admin()?;
    let circuit = state
        .engine
        .create_circuit(actor, &body.name, &body.template, &body.roles)
        .await?;
    Ok((StatusCode::CREATED, Json(circuit)))
}

/// Edits a circuit: its name and the desks of its template's roles (tenant administrators).
/// Dossiers already submitted keep their steps.
#[utoipa::path(put, path = "/circuits/{id}", tag = "circuits", request_body = UpdateCircuit,
    params(("id" = String, Path, description = "Circuit")),
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_circuit(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<CircuitId>,
    ApiJson(body): ApiJson<UpdateCircuit>,
) -> ApiResult<Json<seing_engine::model::CircuitInfo>> {
    let actor = caller.tenant_admin()?;
    let circuit = state
        .engine
        .update_circuit(actor, id, &body.name, &body.roles)
        .await?;
    Ok(Json(circuit))
}

/// Reads a circuit.
#[utoipa::path(get, path = "/circuits/{id}", tag = "circuits",
    params(("id" = String, Path, description = "Circuit")),
    responses((status = 200, body = serde_json::Value), (status = 404, body = Problem)))]
pub async fn circuit(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<CircuitId>,
) -> ApiResult<Json<seing_engine::model::CircuitInfo>> {
    Ok(Json(state.engine.circuit(caller.actor()?, id).await?))
}

/// Paging through the tenant's journal.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JournalQuery {
    /// Cursor from the previous page (a chain position).
    pub cursor: Option<String>,
    /// Page size (1–500, default 100).
    pub limit: Option<u32>,
}

/// The tenant's journal in chain order, by pages (tenant administrators).
#[utoipa::path(get, path = "/journal", tag = "dossiers", params(JournalQuery),
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn tenant_journal(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<JournalQuery>,
) -> ApiResult<Json<seing_engine::model::Page<seing_engine::journal::JournalEntry>>> {
    let actor = caller.tenant_admin()?;
    let after = match query.cursor.as_deref() {
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::invalid("cursor", "curseur invalide"))?,
        None => 0,
    };
    let page = state
        .engine
        .tenant_journal(actor, after, query.limit.unwrap_or(100))
        .await?;
    Ok(Json(page))
}

/// Verifies the hash chain of the tenant's journal (tenant administrators).
#[utoipa::path(get, path = "/journal/verify", tag = "dossiers",
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem)))]
pub async fn journal_verify(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<seing_engine::journal::ChainReport>>> {
    let actor = caller.tenant_admin()?;
    Ok(Json(
        seing_engine::journal::verify(state.engine.database(), Some(actor.tenant)).await?,
    ))
}
