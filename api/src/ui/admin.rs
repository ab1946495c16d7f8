//! Administration of the tenant (tenant administrators): users, desks and their hierarchy,
//! circuits, API tokens; webhooks, trust anchors and server keys as registered through the API
//! or `seing admin`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use seing_engine::access::Role;
use seing_engine::ids::{DeskId, UserId};
use seing_engine::model::Actor;
use seing_engine::signing::{KeyUsage, TrustKind};
use serde::Deserialize;

use super::dossier::DeskOption;
use super::{Chrome, Person, Posted, UiResult, format, render, see_other};
use crate::http::ApiState;
use crate::http::auth;
use crate::http::problem::ApiError;

/// A user as listed.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Login.
    pub login: String,
    /// Name.
    pub name: String,
    /// Tenant administrator.
    pub admin: bool,
}

/// A desk as listed.
#[derive(Debug, Clone)]
pub struct DeskRow {
    /// Name.
    pub name: String,
    /// Parent desk.
    pub parent: String,
    /// Holders.
    pub holders: String,
}

/// A circuit as listed.
#[derive(Debug, Clone)]
pub struct CircuitRow {
    /// Name.
    pub name: String,
    /// Template.
    pub template: String,
    /// Steps, in order.
    pub steps: String,
}

/// A token as listed.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Identifier.
    pub id: String,
    /// Label.
    pub label: String,
    /// User it acts as.
    pub user: String,
    /// Role.
    pub role: &'static str,
    /// Revoked.
    pub revoked: bool,
}

/// A webhook subscription as listed.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    /// Where events go.
    pub url: String,
    /// Events received.
    pub events: String,
    /// Active.
    pub active: bool,
}

/// A server key as listed.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Label.
    pub label: String,
    /// Seal or the named user's key.
    pub usage: String,
}

/// The administration page.
#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    user_options: Vec<DeskOption>,
    desks: Vec<DeskRow>,
    desk_options: Vec<DeskOption>,
    circuits: Vec<CircuitRow>,
    tokens: Vec<TokenRow>,
    webhooks: Vec<WebhookRow>,
    anchors: Vec<(&'static str, String)>,
    keys: Vec<KeyRow>,
    secret: Option<String>,
    notice: Option<String>,
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::TenantAdmin => "administrateur",
        Role::Operator => "opérateur",
        Role::User => "utilisateur",
    }
}

async fn admin_page(
    state: &ApiState,
    person: &Person,
    secret: Option<String>,
    notice: Option<String>,
) -> UiResult<Response> {
    person.require_admin()?;
    let directory = person.directory(state).await?;
    let chrome = person.chrome(state, &directory, "administration").await?;
    let users = state.engine.tenant_users(person.actor.tenant).await?;
    let circuits = state.engine.circuits(person.actor).await?;
    let tokens = state.engine.api_tokens(Some(person.actor.tenant)).await?;
    let webhooks = state.engine.webhooks(person.actor).await?;
    let anchors = state.engine.trust_entries(person.actor).await?;
    let keys = state.engine.server_keys(person.actor).await?;
    let page = AdminPage {
        chrome,
        users: users
            .iter()
            .map(|u| UserRow {
                login: u.login.clone(),
                name: u.display_name.clone(),
                admin: u.admin,
            })
            .collect(),
        user_options: users
            .iter()
            .map(|u| DeskOption {
                id: u.id.to_string(),
                name: format!("{} ({})", u.display_name, u.login),
            })
            .collect(),
        desks: directory
            .desks
            .iter()
            .map(|d| DeskRow {
                name: d.name.clone(),
                parent: d.parent.map(|p| directory.desk_name(p)).unwrap_or_default(),
                holders: d
                    .holders
                    .iter()
                    .map(|u| directory.user_name(*u))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        desk_options: directory
            .desks
            .iter()
            .map(|d| DeskOption {
                id: d.id.to_string(),
                name: d.name.clone(),
            })
            .collect(),
        circuits: circuits
            .iter()
            .map(|c| CircuitRow {
                name: c.name.clone(),
                template: c.template.clone(),
                steps: c
                    .spec
                    .steps
                    .iter()
                    .map(|s| format::step(s.action))
                    .collect::<Vec<_>>()
                    .join(" → "),
            })
            .collect(),
        tokens: tokens
            .iter()
            .map(|t| TokenRow {
                id: t.id.clone(),
                label: t.label.clone(),
                user: t.user.map(|u| directory.user_name(u)).unwrap_or_default(),
                role: role_label(t.role),
                revoked: t.revoked,
            })
            .collect(),
        webhooks: webhooks
            .iter()
            .map(|w| WebhookRow {
                url: w.url.clone(),
                events: if w.events.is_empty() {
                    "tous".to_owned()
                } else {
                    w.events
                        .iter()
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                active: w.active,
            })
            .collect(),
        anchors: anchors
            .iter()
            .map(|a| {
                let kind = match a.kind {
                    TrustKind::Certificate => "Autorité de certification",
                    TrustKind::Crl => "Liste de révocation",
                };
                (kind, a.subject.clone())
            })
            .collect(),
        keys: keys
            .iter()
            .map(|k| KeyRow {
                label: k.label.clone(),
                usage: match (k.usage, k.owner) {
                    (KeyUsage::Seal, _) => "cachet de la collectivité".to_owned(),
                    (KeyUsage::User, Some(owner)) => {
                        format!("clé de {}", directory.user_name(owner))
                    }
                    (KeyUsage::User, None) => "clé personnelle".to_owned(),
                },
            })
            .collect(),
        secret,
        notice,
    };
    render(&page)
}

/// `GET /administration`.
pub async fn page(State(state): State<Arc<ApiState>>, person: Person) -> UiResult<Response> {
    admin_page(&state, &person, None, None).await
}

/// The new-user form.
#[derive(Debug, Deserialize)]
pub struct UserForm {
    login: String,
    name: String,
    password: String,
    admin: Option<String>,
}

/// `POST /administration/utilisateurs`.
pub async fn create_user(
    State(state): State<Arc<ApiState>>,
    posted: Posted<UserForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let form = posted.form;
    auth::check_password(&form.password)?;
    let user = state
        .engine
        .create_user(
            person.actor,
            form.login.trim(),
            form.name.trim(),
            form.admin.is_some(),
        )
        .await?;
    let hash = auth::hash_blocking(form.password).await?;
    state
        .engine
        .set_password_hash(person.actor.tenant, user.id, &hash)
        .await?;
    Ok(see_other("/administration"))
}

/// The new-desk form.
#[derive(Debug, Deserialize)]
pub struct DeskForm {
    name: String,
    parent: Option<String>,
    holder: Option<String>,
}

fn optional<T: std::str::FromStr>(field: &str, value: Option<&str>) -> Result<Option<T>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(field, "valeur inconnue")),
    }
}

/// `POST /administration/bureaux`.
pub async fn create_desk(
    State(state): State<Arc<ApiState>>,
    posted: Posted<DeskForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let parent: Option<DeskId> = optional("parent", posted.form.parent.as_deref())?;
    let holder: Option<UserId> = optional("holder", posted.form.holder.as_deref())?;
    let holders: Vec<UserId> = holder.into_iter().collect();
    state
        .engine
        .create_desk(person.actor, posted.form.name.trim(), parent, &holders)
        .await?;
    Ok(see_other("/administration"))
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    label: String,
    user: String,
}

/// `POST /administration/jetons`: shows the secret once, on the page it answers.
pub async fn create_token(
    State(state): State<Arc<ApiState>>,
    posted: Posted<TokenForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let user: UserId = posted
        .form
        .user
        .parse()
        .map_err(|_| ApiError::invalid("user", "choisissez un utilisateur"))?;
    let secret = auth::new_token_secret()?;
    state
        .engine
        .create_api_token(
            Some(Actor {
                tenant: person.actor.tenant,
                user,
            }),
            Role::User,
            posted.form.label.trim(),
            &auth::secret_hash(&secret),
        )
        .await?;
    admin_page(&state, &person, Some(secret), None).await
}

/// `POST /administration/jetons/{id}/revoquer`.
pub async fn revoke_token(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<super::dossier::EmptyForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    state
        .engine
        .revoke_api_token(Some(person.actor.tenant), &id)
        .await?;
    admin_page(&state, &person, None, Some("Jeton révoqué.".to_owned())).await
}
