//! Authentication and roles: argon2id passwords, bearer API tokens and session cookies with a
//! CSRF token, and the [`Caller`] extractor every protected handler takes.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use seing_engine::access::{Role, Session};
use seing_engine::model::Actor;
use sha2::{Digest, Sha256};

use super::ApiState;
use super::problem::{ApiError, ApiResult};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "seing_session";
/// Header carrying the CSRF token of a session.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A bearer API token.
    Token,
    /// A session cookie.
    Session,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Role.
    pub role: Role,
    /// The tenant user acted as (none for the operator).
    pub actor: Option<Actor>,
    /// Credential kind.
    pub via: Via,
    /// The session's CSRF token (sessions only).
    pub csrf_token: Option<String>,
}

impl Caller {
    /// The tenant user; the operator manages tenants and sees none of their dossiers.
    pub fn actor(&self) -> Result<Actor, ApiError> {
        self.actor.ok_or(ApiError::Forbidden(
            "l'opérateur n'agit pas dans une collectivité",
        ))
    }

    /// The tenant user, who must be a tenant administrator.
    pub fn tenant_admin(&self) -> Result<Actor, ApiError> {
        let actor = self.actor()?;
        if self.role == Role::TenantAdmin {
            Ok(actor)
        } else {
            Err(ApiError::Forbidden(
                "réservé aux administrateurs de la collectivité",
            ))
        }
    }

    /// Checks that the caller is the operator.
    pub fn operator(&self) -> Result<(), ApiError> {
        if self.role == Role::Operator {
            Ok(())
        } else {
            Err(ApiError::Forbidden("réservé à l'opérateur du service"))
        }
    }
}

/// Shortest password accepted.
const MIN_PASSWORD: usize = 10;

/// Refuses passwords too short to resist guessing.
pub fn check_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::invalid(
            "password",
            format!("au moins {MIN_PASSWORD} caractères"),
        ));
    }
    Ok(())
}

/// Hashes a password off the async threads (argon2id is deliberately slow).
pub async fn hash_blocking(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// A fresh random secret (256 bits, URL-safe base64).
pub fn random_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("random: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A new API token secret; only its hash is stored.
pub fn new_token_secret() -> Result<String, ApiError> {
    Ok(format!("seing_{}", random_secret()?))
}

/// SHA-256 (hex) of a random secret: tokens and session ids are looked up by it.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::Internal(format!("random: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
}

/// Checks a password against a PHC string; with no stored hash, a dummy one is checked anyway
/// so that unknown logins take as long as wrong passwords.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("seing-dummy").unwrap_or_default());
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && real
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// True for methods that change nothing (no CSRF token needed).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let secret = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or(ApiError::Unauthenticated)?;
            let token = state
                .engine
                .api_token_by_hash(&secret_hash(secret.trim()))
                .await?
                .filter(|t| !t.revoked)
                .ok_or(ApiError::Unauthenticated)?;
            let actor = match (token.tenant, token.user) {
                (Some(tenant), Some(user)) => Some(Actor { tenant, user }),
                _ => None,
            };
            return Ok(Self {
                role: token.role,
                actor,
                via: Via::Token,
                csrf_token: None,
            });
        }
        let session = cookie_session(state, parts)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if !is_safe(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !same_secret(sent, &session.csrf_token) {
                return Err(ApiError::Csrf);
            }
        }
        Ok(Self::of_session(session))
    }
}

impl Caller {
    /// The caller a valid session stands for.
    pub fn of_session(session: Session) -> Self {
        Self {
            role: if session.admin {
                Role::TenantAdmin
            } else {
                Role::User
            },
            actor: Some(Actor {
                tenant: session.tenant,
                user: session.user,
            }),
            via: Via::Session,
            csrf_token: Some(session.csrf_token),
        }
    }
}

/// The session id carried by the request's cookie, if any.
pub fn session_id(parts: &Parts) -> Option<&str> {
    cookie(parts, SESSION_COOKIE)
}

/// The valid session named by the request's cookie, if any.
pub async fn cookie_session(state: &ApiState, parts: &Parts) -> ApiResult<Option<Session>> {
    match session_id(parts) {
        Some(id) => Ok(state.engine.session(&secret_hash(id)).await?),
        None => Ok(None),
    }
}

/// Identifies a login for rate limiting: the tenant's SIREN and the login.
pub fn attempt_key(siren: &str, login: &str) -> String {
    format!("{siren}/{login}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_is_argon2id_and_verifies_only_the_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a phc string")));
    }

    #[test]
    fn secrets_are_random_and_compared_whole() {
        let a = new_token_secret().unwrap();
        let b = new_token_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("seing_") && a.len() > 40);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..a.len() - 1]));
    }
}
