//! The web UI for élus and agents: server-rendered pages (askama templates in `api/templates/`),
//! one module per page, on the REST API's sessions and CSRF tokens. Every asset is embedded in
//! the binary: the UI works without any outside server.

pub mod absences;
pub mod admin;
pub mod assets;
pub mod bureau;
pub mod dossier;
pub mod format;
pub mod login;
pub mod signing;

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use seing_engine::ids::{DeskId, UserId};
use seing_engine::model::{Actor, Desk};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::http::ApiState;
use crate::http::auth;
use crate::http::problem::ApiError;

/// The routes of the UI (mounted at `/`).
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/bureau") }))
        .route("/connexion", get(login::form).post(login::submit))
        .route("/deconnexion", post(login::logout))
        .route("/bureau", get(bureau::page))
        .route("/dossiers/{id}", get(dossier::page))
        .route(
            "/dossiers/{id}/voir/{document}",
            get(dossier::view_document),
        )
        .route("/dossiers/{id}/viser", post(dossier::visa))
        .route("/dossiers/{id}/rejeter", post(dossier::reject))
        .route("/dossiers/{id}/recycler", post(dossier::recycle))
        .route("/dossiers/{id}/brouillon", post(dossier::update_draft))
        .route("/dossiers/{id}/supprimer", post(dossier::delete_draft))
        .route("/dossiers/{id}/remords", post(dossier::undo))
        .route("/dossiers/{id}/transferer", post(dossier::transfer))
        .route("/dossiers/{id}/avis", post(dossier::ask_opinion))
        .route(
            "/dossiers/{id}/avis/{opinion}",
            post(dossier::answer_opinion),
        )
        .route("/dossiers/{id}/annoter", post(dossier::annotate))
        .route("/signature-serveur", post(signing::stream))
        .route("/absences", get(absences::page).post(absences::create))
        .route("/administration", get(admin::page))
        .route("/administration/utilisateurs", post(admin::create_user))
        .route("/administration/bureaux", post(admin::create_desk))
        .route("/administration/circuits", post(admin::create_circuit))
        .route("/administration/circuits/{id}", post(admin::update_circuit))
        .route("/administration/jetons", post(admin::create_token))
        .route(
            "/administration/jetons/{id}/revoquer",
            post(admin::revoke_token),
        )
        .route("/administration/webhooks", post(admin::create_webhook))
        .route(
            "/administration/webhooks/{id}/supprimer",
            post(admin::delete_webhook),
        )
        .route("/administration/confiance", post(admin::add_trust))
        .route(
            "/administration/confiance/{id}/retirer",
            post(admin::remove_trust),
        )
        .route("/administration/cles", post(admin::add_key))
        .route("/administration/cles/{id}/retirer", post(admin::remove_key))
        .route(
            "/administration/helios/{dossier}/numero",
            post(admin::number_pes),
        )
        .route("/static/{file}", get(assets::serve))
        .fallback(|| async { not_found() })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers of every UI response: no outside origin may load anything (the local signing agent
/// on 127.0.0.1 excepted), no framing by other sites, no MIME sniffing, no caching of pages.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self' http://127.0.0.1:*; img-src 'self' data:; \
             frame-ancestors 'self'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Why a UI request failed: not logged in (back to the login page), or a refusal shown as a page.
#[derive(Debug)]
pub enum UiError {
    /// No valid session: redirect to the login page.
    Login,
    /// Refused or failed: an error page with the API's status and French message.
    Api(ApiError),
}

impl<E: Into<ApiError>> From<E> for UiError {
    fn from(error: E) -> Self {
        Self::Api(error.into())
    }
}

/// The result type of UI handlers.
pub type UiResult<T> = Result<T, UiError>;

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    detail: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::Login => Redirect::to("/connexion").into_response(),
            Self::Api(error) => {
                let (status, detail, _) = error.status_and_detail();
                let title = match status.as_u16() {
                    401 => "Connexion requise",
                    403 => "Action refusée",
                    404 => "Introuvable",
                    409 => "Action impossible dans l'état actuel du dossier",
                    413 => "Envoi trop volumineux",
                    422 => "Donnée invalide",
                    429 => "Trop de tentatives",
                    s if s >= 500 => "Erreur interne",
                    _ => "Requête refusée",
                };
                let body = ErrorPage { title, detail }
                    .render()
                    .unwrap_or_else(|_| title.to_owned());
                (status, Html(body)).into_response()
            }
        }
    }
}

/// Renders a page.
pub fn render<T: Template>(page: &T) -> UiResult<Response> {
    let html = page
        .render()
        .map_err(|e| ApiError::Internal(format!("template: {e}")))?;
    Ok(Html(html).into_response())
}

/// Redirects after a form (303: the browser follows with a GET).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The logged-in person of a UI request.
#[derive(Debug, Clone)]
pub struct Person {
    /// Tenant and user.
    pub actor: Actor,
    /// Tenant administrator.
    pub admin: bool,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
}

impl FromRequestParts<Arc<ApiState>> for Person {
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let session = auth::cookie_session(state, parts)
            .await?
            .ok_or(UiError::Login)?;
        Ok(Self {
            actor: Actor {
                tenant: session.tenant,
                user: session.user,
            },
            admin: session.admin,
            csrf: session.csrf_token,
        })
    }
}

/// The parts of every page around its content: who is logged in, where, the CSRF token.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The user's display name.
    pub user: String,
    /// The tenant's name.
    pub tenant: String,
    /// The CSRF token for forms and scripts.
    pub csrf: String,
    /// Tenant administrator (shows the administration link).
    pub admin: bool,
    /// The current section: `bureau`, `absences` or `administration`.
    pub section: &'static str,
    /// Where the pages look for `seing agent` (`http://127.0.0.1:<agent port>`).
    pub agent: String,
}

/// What most pages need about the tenant: its desks and the names of its users.
#[derive(Debug, Clone)]
pub struct Directory {
    /// Every desk of the tenant.
    pub desks: Vec<Desk>,
    /// Display names of the users.
    pub users: BTreeMap<UserId, String>,
}

impl Directory {
    /// The name of a desk.
    pub fn desk_name(&self, id: DeskId) -> String {
        self.desks
            .iter()
            .find(|d| d.id == id)
            .map_or_else(|| "bureau inconnu".to_owned(), |d| d.name.clone())
    }

    /// The display name of a user.
    pub fn user_name(&self, id: UserId) -> String {
        self.users
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "utilisateur inconnu".to_owned())
    }
}

impl Person {
    /// The page chrome for `section`.
    pub async fn chrome(
        &self,
        state: &ApiState,
        directory: &Directory,
        section: &'static str,
    ) -> UiResult<Chrome> {
        let tenant = state.engine.tenant(self.actor.tenant).await?;
        Ok(Chrome {
            user: directory.user_name(self.actor.user),
            tenant: tenant.name,
            csrf: self.csrf.clone(),
            admin: self.admin,
            section,
            agent: format!("http://127.0.0.1:{}", state.settings.agent_port),
        })
    }

    /// The tenant's desks and users.
    pub async fn directory(&self, state: &ApiState) -> UiResult<Directory> {
        let desks = state.engine.desks(self.actor).await?;
        let users = state
            .engine
            .tenant_users(self.actor.tenant)
            .await?
            .into_iter()
            .map(|u| (u.id, u.display_name))
            .collect();
        Ok(Directory { desks, users })
    }

    /// Checks that the person administers the tenant.
    pub fn require_admin(&self) -> UiResult<()> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("réservé aux administrateurs de la collectivité").into())
        }
    }
}

/// The hidden field every form carries.
#[derive(Debug, Deserialize)]
struct CsrfField {
    csrf: String,
}

/// A posted form of a logged-in person, accepted only with the session's CSRF token.
#[derive(Debug)]
pub struct Posted<T> {
    /// Who posted.
    pub person: Person,
    /// The form's fields.
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<Arc<ApiState>> for Posted<T> {
    type Rejection = UiError;

    async fn from_request(request: Request<Body>, state: &Arc<ApiState>) -> UiResult<Self> {
        let (mut parts, body) = request.into_parts();
        let person = Person::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, state.settings.max_upload_bytes)
            .await
            .map_err(|_| ApiError::TooLarge)?;
        let sent: CsrfField = serde_urlencoded::from_bytes(&bytes).map_err(|_| ApiError::Csrf)?;
        if !auth::same_secret(&sent.csrf, &person.csrf) {
            return Err(ApiError::Csrf.into());
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("formulaire invalide : {e}")))?;
        Ok(Self { person, form })
    }
}

/// A 404 for ids that do not parse (as unknown as well-formed ones).
pub fn not_found() -> UiError {
    ApiError::NotFound.into()
}
