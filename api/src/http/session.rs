//! People's sessions: login with a password (rate-limited), the current caller, logout.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seing_engine::access::Role;
use seing_engine::model::Actor;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{self, Caller, SESSION_COOKIE, Via};
use super::problem::{ApiError, ApiResult, Problem};
use super::{ApiJson, ApiState};

/// A login form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// SIREN of the user's authority.
    pub tenant: String,
    /// Login.
    pub login: String,
    /// Password.
    pub password: String,
}

/// Who is calling.
#[derive(Debug, Serialize, ToSchema)]
pub struct Whoami {
    /// Role: `user`, `tenant_admin` or `operator`.
    pub role: String,
    /// The tenant (none for the operator).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub tenant: Option<String>,
    /// The user (none for the operator).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user: Option<String>,
    /// `token` or `session`.
    pub via: &'static str,
    /// For sessions: the value to send in `X-CSRF-Token` with every state-changing request.
    pub csrf_token: Option<String>,
}

fn whoami(role: Role, actor: Option<Actor>, via: Via, csrf_token: Option<String>) -> Whoami {
    Whoami {
        role: role.as_str().to_owned(),
        tenant: actor.map(|a| a.tenant.to_string()),
        user: actor.map(|a| a.user.to_string()),
        via: match via {
            Via::Token => "token",
            Via::Session => "session",
        },
        csrf_token,
    }
}

/// Opens a session.
#[utoipa::path(post, path = "/session", tag = "session", security(()),
    request_body = Login,
    responses(
        (status = 200, description = "Session ouverte ; cookie `seing_session` posé", body = Whoami),
        (status = 401, description = "Identifiants invalides", body = Problem),
        (status = 429, description = "Trop de tentatives", body = Problem),
    ))]
pub async fn login(
    State(state): State<Arc<ApiState>>,
    ApiJson(form): ApiJson<Login>,
) -> ApiResult<Response> {
    let opened = open_session(&state, &form).await?;
    let mut response = Json(whoami(
        opened.role,
        Some(opened.actor),
        Via::Session,
        Some(opened.csrf_token),
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, opened.cookie);
    Ok(response)
}

/// A session just opened: who, its CSRF token and the `Set-Cookie` value that carries its id.
#[derive(Debug)]
pub struct OpenedSession {
    /// The user.
    pub actor: Actor,
    /// User or tenant administrator.
    pub role: Role,
    /// The token state-changing requests must echo.
    pub csrf_token: String,
    /// The `Set-Cookie` header value (a fresh random id: a session id is never chosen by the client).
    pub cookie: HeaderValue,
}

/// Checks a password login (rate-limited per login) and opens a new session; the JSON API and
/// the web UI's login form both go through here.
pub async fn open_session(state: &ApiState, form: &Login) -> ApiResult<OpenedSession> {
    let engine = &state.engine;
    let settings = &state.settings;
    let key = auth::attempt_key(&form.tenant, &form.login);
    let since = time::OffsetDateTime::now_utc() - settings.login_window;
    if engine.login_failures(&key, since).await? >= settings.login_max_failures {
        return Err(ApiError::TooManyAttempts {
            retry_after: settings.login_window.whole_seconds().unsigned_abs(),
        });
    }
    let record = engine.login_record(&form.tenant, &form.login).await?;
    let stored = record.as_ref().and_then(|r| r.password_hash.clone());
    let password = form.password.clone();
    let valid =
        tokio::task::spawn_blocking(move || auth::verify_password(&password, stored.as_deref()))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(record) = record.filter(|_| valid) else {
        engine.record_login_failure(&key, since).await?;
        return Err(ApiError::Unauthenticated);
    };
    engine.clear_login_failures(&key).await?;
    let session_id = auth::random_secret()?;
    let csrf = auth::random_secret()?;
    let actor = Actor {
        tenant: record.tenant,
        user: record.user,
    };
    let expires = time::OffsetDateTime::now_utc() + settings.session_ttl;
    engine
        .create_session(&auth::secret_hash(&session_id), actor, &csrf, expires)
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        settings.session_ttl.whole_seconds(),
        if settings.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    Ok(OpenedSession {
        actor,
        role: if record.admin {
            Role::TenantAdmin
        } else {
            Role::User
        },
        csrf_token: csrf,
        cookie: HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    })
}

/// The `Set-Cookie` value that removes the session cookie.
pub const CLEAR_COOKIE: &str = "seing_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";

/// The current caller (and, for a session, its CSRF token).
#[utoipa::path(get, path = "/session", tag = "session", operation_id = "current_session",
    responses((status = 200, body = Whoami), (status = 401, body = Problem)))]
pub async fn current(caller: Caller) -> Json<Whoami> {
    Json(whoami(
        caller.role,
        caller.actor,
        caller.via,
        caller.csrf_token,
    ))
}

/// Closes the session (requires the CSRF token).
#[utoipa::path(delete, path = "/session", tag = "session",
    responses((status = 204, description = "Session fermée"), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn logout(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if caller.via == Via::Session
        && let Some(id) = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| *k == SESSION_COOKIE)
            .map(|(_, v)| v)
    {
        state.engine.delete_session(&auth::secret_hash(id)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_COOKIE));
    Ok(response)
}
