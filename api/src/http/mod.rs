//! The REST API under `/api/v1`: authentication, tenants, directory, circuits, dossiers and
//! documents, with its OpenAPI document generated from the handlers.

pub mod auth;
pub mod connectors;
pub mod directory;
pub mod docs;
pub mod dossiers;
pub mod problem;
pub mod session;
pub mod signing;
pub mod tenants;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use seing_engine::Engine;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use problem::{ApiError, Problem};

/// Settings of the API that come from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// Largest request body accepted (uploads included), in bytes.
    pub max_upload_bytes: usize,
    /// Failed logins allowed per login within `login_window`.
    pub login_max_failures: i64,
    /// The window of the failed-login counter.
    pub login_window: time::Duration,
    /// Lifetime of a session.
    pub session_ttl: time::Duration,
    /// Mark the session cookie `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// The port on 127.0.0.1 where the web UI looks for `seing agent` on the workstation.
    pub agent_port: u16,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_upload_bytes: 50 * 1024 * 1024,
            login_max_failures: 5,
            login_window: time::Duration::minutes(15),
            session_ttl: time::Duration::hours(8),
            secure_cookies: false,
            agent_port: crate::agent::DEFAULT_PORT,
        }
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The workflow engine.
    pub engine: Engine,
    /// Settings.
    pub settings: ApiSettings,
}

/// A JSON body whose rejections are problem documents.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Path parameters whose rejections are problem documents (a malformed id is not found).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters whose rejections are problem documents.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The OpenAPI document's fixed parts; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "seing",
        description = "Parapheur et signature électronique pour les collectivités : API REST. \
            Authentification par jeton d'API (`Authorization: Bearer …`) pour les logiciels, \
            ou par session (cookie `seing_session` + en-tête `X-CSRF-Token` sur toute requête \
            qui modifie) pour les personnes. Erreurs en `application/problem+json` (RFC 9457)."
    ),
    components(schemas(Problem)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "session", description = "Connexion des personnes"),
        (name = "tenants", description = "Collectivités (opérateur)"),
        (name = "directory", description = "Utilisateurs, bureaux, délégations, jetons"),
        (name = "circuits", description = "Modèles et circuits"),
        (name = "dossiers", description = "Dossiers, actions, documents, journal"),
        (name = "connectors", description = "Connecteurs : @ctes, Hélios, archivage"),
        (name = "signing", description = "Signature en deux temps, clés du serveur, confiance, vérification"),
        (name = "webhooks", description = "Abonnements aux événements des dossiers"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::SESSION_COOKIE))),
        );
    }
}

/// The API routes and their OpenAPI document (paths relative to `/api/v1`).
fn api_routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::login, session::current, session::logout))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::current))
        .routes(routes!(directory::users, directory::create_user))
        .routes(routes!(directory::set_password))
        .routes(routes!(directory::desks, directory::create_desk))
        .routes(routes!(
            directory::delegations,
            directory::create_delegation
        ))
        .routes(routes!(directory::tokens, directory::create_token))
        .routes(routes!(directory::revoke_token))
        .routes(routes!(directory::templates))
        .routes(routes!(directory::circuits, directory::create_circuit))
        .routes(routes!(directory::circuit, directory::update_circuit))
        .routes(routes!(directory::journal_verify))
        .routes(routes!(directory::tenant_journal))
        .routes(routes!(dossiers::list, dossiers::create))
        .routes(routes!(dossiers::get, dossiers::update, dossiers::delete))
        .routes(routes!(dossiers::submit))
        .routes(routes!(dossiers::recycle))
        .routes(routes!(dossiers::visa))
        .routes(routes!(dossiers::reject))
        .routes(routes!(dossiers::undo))
        .routes(routes!(dossiers::transfer))
        .routes(routes!(dossiers::bypass))
        .routes(routes!(dossiers::ask_opinion))
        .routes(routes!(dossiers::answer_opinion))
        .routes(routes!(dossiers::annotations, dossiers::annotate))
        .routes(routes!(dossiers::documents))
        .routes(routes!(dossiers::document))
        .routes(routes!(dossiers::journal))
        .routes(routes!(signing::create_batch))
        .routes(routes!(signing::submit_batch))
        .routes(routes!(signing::server_sign))
        .routes(routes!(signing::server_keys, signing::add_server_key))
        .routes(routes!(signing::remove_server_key))
        .routes(routes!(signing::trust_anchors, signing::add_trust_anchors))
        .routes(routes!(signing::remove_trust_anchor))
        .routes(routes!(signing::verify))
        .routes(routes!(connectors::settings, connectors::set_settings))
        .routes(routes!(connectors::unnumbered))
        .routes(routes!(connectors::number))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::delete))
        .routes(routes!(connectors::open_notification))
}

/// The OpenAPI document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_routes().split_for_parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    // OpenAPI requires a description on every response; the handlers only give the telling ones.
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for (code, response) in operation.responses.responses.iter_mut() {
                if let utoipa::openapi::RefOr::T(response) = response {
                    if response.description.is_empty() {
                        response.description = status_description(code).to_owned();
                    }
                    problem_media_type(response);
                }
            }
        }
    }
    doc
}

/// Documents a `Problem` body under the media type it is served with,
/// `application/problem+json` (utoipa names every body `application/json`).
fn problem_media_type(response: &mut utoipa::openapi::Response) {
    use utoipa::openapi::RefOr;
    let is_problem = matches!(
        response.content.get("application/json"),
        Some(RefOr::T(content))
            if matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location == "#/components/schemas/Problem")
    );
    if is_problem && let Some(content) = response.content.shift_remove("application/json") {
        response
            .content
            .insert(problem::PROBLEM_JSON.to_owned(), content);
    }
}

/// The usual meaning of a status in this API, for responses documented without one.
fn status_description(code: &str) -> &'static str {
    match code {
        "200" => "Succès",
        "201" => "Créé",
        "204" => "Fait, sans contenu",
        "400" => "Requête mal formée (problem+json)",
        "401" => "Authentification requise (problem+json)",
        "403" => "Action refusée : rôle, bureau ou jeton CSRF (problem+json)",
        "404" => "Introuvable dans votre collectivité (problem+json)",
        "409" => "Conflit avec l'état courant (problem+json)",
        "413" => "Requête trop volumineuse (problem+json)",
        "422" => "Donnée invalide (problem+json)",
        "429" => "Trop de tentatives (problem+json)",
        "502" => "Plateforme extérieure injoignable ou en échec (problem+json)",
        _ => "Réponse",
    }
}

/// The router of `/api/v1` (to nest), with its OpenAPI document and docs page.
pub fn router(state: Arc<ApiState>) -> Router {
    let limit = state.settings.max_upload_bytes;
    let (routes, _) = api_routes().split_for_parts();
    let json = Arc::new(openapi().to_pretty_json().unwrap_or_default());
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || docs::openapi_json(json.clone())),
        )
        .route("/docs", axum::routing::get(docs::page))
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
