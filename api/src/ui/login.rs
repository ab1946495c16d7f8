//! The login page, login and logout. A login always opens a new session with a fresh id (an id
//! planted before login is dropped: no session fixation); the login form itself carries a token
//! bound to a cookie (no login CSRF).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Posted, UiResult, render, see_other};
use crate::http::ApiState;
use crate::http::auth;
use crate::http::problem::ApiError;
use crate::http::session::{self, CLEAR_COOKIE, Login};

/// Cookie holding the login form's token.
const LOGIN_COOKIE: &str = "seing_login";

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    token: String,
    tenant: String,
    login: String,
    error: Option<String>,
}

/// The posted login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    tenant: String,
    login: String,
    password: String,
}

/// Renders the login form with a fresh form token (also set as a cookie).
fn login_page(tenant: String, login: String, error: Option<String>) -> UiResult<Response> {
    let token = auth::random_secret()?;
    let mut response = render(&LoginPage {
        token: token.clone(),
        tenant,
        login,
        error,
    })?;
    let cookie = format!("{LOGIN_COOKIE}={token}; Path=/connexion; HttpOnly; SameSite=Strict");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

/// `GET /connexion`.
pub async fn form() -> UiResult<Response> {
    login_page(String::new(), String::new(), None)
}

/// `POST /connexion`: checks the password, drops any session the browser came with, opens a
/// new one and goes to the bureau.
pub async fn submit(
    State(state): State<Arc<ApiState>>,
    parts: Parts,
    Form(form): Form<LoginForm>,
) -> UiResult<Response> {
    let planted = auth::cookie(&parts, LOGIN_COOKIE).unwrap_or_default();
    if planted.is_empty() || !auth::same_secret(planted, &form.token) {
        return login_page(
            form.tenant,
            form.login,
            Some("Le formulaire a expiré : veuillez vous reconnecter.".to_owned()),
        );
    }
    let login = Login {
        tenant: form.tenant.trim().to_owned(),
        login: form.login.trim().to_owned(),
        password: form.password,
    };
    match session::open_session(&state, &login).await {
        Ok(opened) => {
            if let Some(old) = auth::session_id(&parts) {
                state.engine.delete_session(&auth::secret_hash(old)).await?;
            }
            let mut response = see_other("/bureau");
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, opened.cookie);
            headers.append(
                header::SET_COOKIE,
                HeaderValue::from_static("seing_login=; Path=/connexion; Max-Age=0"),
            );
            Ok(response)
        }
        Err(ApiError::Unauthenticated) => login_page(
            login.tenant,
            login.login,
            Some("Identifiant, collectivité ou mot de passe incorrect.".to_owned()),
        ),
        Err(error @ ApiError::TooManyAttempts { .. }) => {
            login_page(login.tenant, login.login, Some(error.to_string()))
        }
        Err(other) => Err(other.into()),
    }
}

/// The logout form (only its CSRF token).
#[derive(Debug, Deserialize)]
pub struct LogoutForm {}

/// `POST /deconnexion`: deletes the session and its cookie.
pub async fn logout(
    State(state): State<Arc<ApiState>>,
    parts: Parts,
    _posted: Posted<LogoutForm>,
) -> UiResult<Response> {
    if let Some(id) = auth::session_id(&parts) {
        state.engine.delete_session(&auth::secret_hash(id)).await?;
    }
    let mut response = see_other("/connexion");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_COOKIE));
    Ok(response.into_response())
}
