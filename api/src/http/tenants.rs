//! Tenants: the operator lists and creates them (with their first administrator).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use seing_engine::model::NewTenant;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{self, Caller};
use super::problem::{ApiResult, Problem};
use super::{ApiJson, ApiState};

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    /// Identifier.
    #[schema(format = Uuid)]
    pub id: String,
    /// Name.
    pub name: String,
    /// SIREN.
    pub siren: String,
    /// Département.
    pub departement: String,
}

impl From<seing_engine::model::Tenant> for TenantView {
    fn from(t: seing_engine::model::Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            siren: t.siren,
            departement: t.departement,
        }
    }
}

/// A tenant to create, with its first administrator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Name ("Commune de Saint-Martin").
    pub name: String,
    /// SIREN (9 digits, Luhn-valid).
    pub siren: String,
    /// Département code.
    pub departement: String,
    /// Login of the first administrator.
    pub admin_login: String,
    /// Display name of the first administrator.
    pub admin_name: String,
    /// Password of the first administrator.
    pub admin_password: String,
}

/// A created tenant and its administrator.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: TenantView,
    /// The administrator's user id.
    #[schema(format = Uuid)]
    pub admin_user: String,
}

/// Lists every tenant (operator).
#[utoipa::path(get, path = "/tenants", tag = "tenants", operation_id = "list_tenants",
    responses((status = 200, body = Vec<TenantView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<TenantView>>> {
    caller.operator()?;
    let tenants = state.engine.tenants().await?;
    Ok(Json(tenants.into_iter().map(Into::into).collect()))
}

/// Creates a tenant and its first administrator (operator).
#[utoipa::path(post, path = "/tenants", tag = "tenants", operation_id = "create_tenant", request_body = CreateTenant,
    responses((status = 201, body = CreatedTenant), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<CreatedTenant>)> {
    caller.operator()?;
    auth::check_password(&body.admin_password)?;
    let (tenant, admin) = state
        .engine
        .create_tenant(NewTenant {
            name: body.name,
            siren: body.siren,
            departement: body.departement,
            admin_login: body.admin_login,
            admin_name: body.admin_name,
        })
        .await?;
    let hash = auth::hash_blocking(body.admin_password).await?;
    state
        .engine
        .set_password_hash(tenant.id, admin.id, &hash)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            admin_user: admin.id.to_string(),
            tenant: tenant.into(),
        }),
    ))
}

/// The caller's tenant.
#[utoipa::path(get, path = "/tenant", tag = "tenants", operation_id = "current_tenant",
    responses((status = 200, body = TenantView), (status = 401, body = Problem)))]
pub async fn current(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<TenantView>> {
    let actor = caller.actor()?;
    Ok(Json(state.engine.tenant(actor.tenant).await?.into()))
}
