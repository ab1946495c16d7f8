//! Administration of the tenant (tenant administrators): users, desks and their hierarchy,
//! circuits, API tokens, webhooks (the secret shown once), trust anchors (PEM certificates and
//! CRLs), the keys of the server's PKCS#11 module, and the PES that S²LOW took without seing
//! learning their transaction number (to be numbered). Each form calls the function the REST
//! API and `seing admin` call; a refused entry is answered in its form, nothing stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use seing_connectors::recovery;
use seing_engine::access::Role;
use seing_engine::circuit::CircuitSpec;
use seing_engine::ids::{
    CircuitId, DeskId, DossierId, ServerKeyId, TrustAnchorId, UserId, WebhookId,
};
use seing_engine::model::Actor;
use seing_engine::signing::{KeyUsage, NewServerKey, TrustKind};
use seing_engine::webhooks::{NewWebhook, WebhookEvent};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::dossier::{DeskOption, EmptyForm};
use super::{Chrome, Person, Posted, UiError, UiResult, format, render, see_other};
use crate::http::ApiState;
use crate::http::auth;
use crate::http::problem::ApiError;
use crate::http::webhooks::{new_webhook_secret, parse_events};

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

/// A circuit as listed, with what its edit form needs.
#[derive(Debug, Clone)]
pub struct CircuitRow {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// Template.
    pub template: String,
    /// Steps, in order.
    pub steps: String,
    /// Each role of its template and the id of the desk that plays it.
    pub roles: Vec<(String, String)>,
}

/// A circuit template offered to the administrator, with the roles to give a desk.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    /// Short name (the template's key).
    pub name: String,
    /// French title.
    pub title: String,
    /// Steps, in order.
    pub steps: String,
    /// The template's role keys, each to be given a desk.
    pub roles: Vec<String>,
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
    /// Identifier.
    pub id: String,
    /// Where events go.
    pub url: String,
    /// Events received.
    pub events: String,
    /// Active.
    pub active: bool,
}

/// An entry of the trust store as listed.
#[derive(Debug, Clone)]
pub struct AnchorRow {
    /// Identifier.
    pub id: String,
    /// Certificate or CRL, in French.
    pub kind: &'static str,
    /// Subject, or the CRL's issuer.
    pub subject: String,
}

/// A server key as listed.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Identifier.
    pub id: String,
    /// Label.
    pub label: String,
    /// Seal or the named user's key.
    pub usage: String,
}

/// A PES sent to S²LOW whose transaction number was lost, as listed.
#[derive(Debug, Clone)]
pub struct UnnumberedRow {
    /// Dossier id.
    pub dossier: String,
    /// Dossier title.
    pub title: String,
    /// File name sent.
    pub file: String,
    /// SHA-1 of the file sent (hex).
    pub sha1: String,
    /// When it was sent, in French.
    pub sent: String,
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
    templates: Vec<TemplateRow>,
    tokens: Vec<TokenRow>,
    webhooks: Vec<WebhookRow>,
    anchors: Vec<AnchorRow>,
    keys: Vec<KeyRow>,
    unnumbered: Vec<UnnumberedRow>,
    events: Vec<&'static str>,
    secret: Option<Secret>,
    notice: Option<String>,
    refused: Option<Refusal>,
}

/// A secret shown once: what it is, and its value.
#[derive(Debug, Clone)]
pub struct Secret {
    /// What was created, in French (« Jeton créé. »).
    pub what: &'static str,
    /// The value to copy.
    pub value: String,
}

/// A section of the page holding a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Circuits.
    Circuits,
    /// Webhooks.
    Webhooks,
    /// Trust anchors.
    Trust,
    /// Server keys.
    Keys,
    /// PES waiting for their S²LOW transaction number.
    Helios,
}

/// An entry refused by the engine, answered in its form with what was typed.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The form's section.
    pub section: Section,
    /// Why, in French.
    pub message: String,
    /// The text fields as typed (name, value), to fill the form again.
    pub typed: Vec<(&'static str, String)>,
}

impl Refusal {
    /// Whether the refusal belongs to `section` (for the template).
    pub fn is(&self, section: Section) -> bool {
        self.section == section
    }

    /// What was typed in field `name`.
    pub fn typed(&self, name: &str) -> &str {
        self.typed
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What the page shows besides the lists: a secret to copy once, a notice, or a refusal.
#[derive(Debug, Default)]
struct Outcome {
    secret: Option<Secret>,
    notice: Option<String>,
    refused: Option<Refusal>,
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::TenantAdmin => "administrateur",
        Role::Operator => "opérateur",
        Role::User => "utilisateur",
    }
}

/// The steps of a circuit or template, in French, in order.
fn step_names<D>(spec: &CircuitSpec<D>) -> String {
    spec.steps
        .iter()
        .map(|s| format::step(s.action))
        .collect::<Vec<_>>()
        .join(" → ")
}

async fn admin_page(state: &ApiState, person: &Person, outcome: Outcome) -> UiResult<Response> {
    person.require_admin()?;
    let directory = person.directory(state).await?;
    let chrome = person.chrome(state, &directory, "administration").await?;
    let users = state.engine.tenant_users(person.actor.tenant).await?;
    let circuits = state.engine.circuits(person.actor).await?;
    let tokens = state.engine.api_tokens(Some(person.actor.tenant)).await?;
    let webhooks = state.engine.webhooks(person.actor).await?;
    let anchors = state.engine.trust_entries(person.actor).await?;
    let keys = state.engine.server_keys(person.actor).await?;
    let unnumbered = recovery::unnumbered_pes(&state.engine, person.actor.tenant)
        .await
        .map_err(ApiError::from)?;
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
                id: c.id.to_string(),
                name: c.name.clone(),
                template: c.template.clone(),
                steps: step_names(&c.spec),
                roles: state
                    .engine
                    .templates()
                    .get(&c.template)
                    .map(|t| t.role_desks(&c.spec))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(role, desk)| (role, desk.to_string()))
                    .collect(),
            })
            .collect(),
        templates: state
            .engine
            .templates()
            .iter()
            .map(|(name, t)| TemplateRow {
                name: name.clone(),
                title: t.title.clone(),
                steps: step_names(t),
                roles: t.roles().into_iter().map(str::to_owned).collect(),
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
                id: w.id.to_string(),
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
            .map(|a| AnchorRow {
                id: a.id.to_string(),
                kind: match a.kind {
                    TrustKind::Certificate => "Autorité de certification",
                    TrustKind::Crl => "Liste de révocation",
                },
                subject: a.subject.clone(),
            })
            .collect(),
        keys: keys
            .iter()
            .map(|k| KeyRow {
                id: k.id.to_string(),
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
        unnumbered: unnumbered
            .into_iter()
            .map(|p| UnnumberedRow {
                dossier: p.dossier.to_string(),
                title: p.title,
                file: p.file,
                sha1: p.sha1,
                sent: OffsetDateTime::parse(&p.sent_at, &Rfc3339)
                    .map(format::date_time)
                    .unwrap_or(p.sent_at),
            })
            .collect(),
        events: WebhookEvent::ALL.iter().map(|e| e.as_str()).collect(),
        secret: outcome.secret,
        notice: outcome.notice,
        refused: outcome.refused,
    };
    render(&page)
}

/// The page after a form: a refusal by the engine (4xx) is shown in the form's section with
/// a 422 status; a server failure stays an error page.
async fn answer(
    state: &ApiState,
    person: &Person,
    section: Section,
    typed: Vec<(&'static str, String)>,
    result: Result<Outcome, ApiError>,
) -> UiResult<Response> {
    match result {
        Ok(outcome) => admin_page(state, person, outcome).await,
        Err(error) => {
            let (status, message, _) = error.status_and_detail();
            if status.is_server_error() {
                return Err(UiError::Api(error));
            }
            let refused = Refusal {
                section,
                message,
                typed,
            };
            let page = admin_page(
                state,
                person,
                Outcome {
                    refused: Some(refused),
                    ..Outcome::default()
                },
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// `GET /administration`.
pub async fn page(State(state): State<Arc<ApiState>>, person: Person) -> UiResult<Response> {
    admin_page(&state, &person, Outcome::default()).await
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

/// `POST /administration/circuits`: a circuit made from a template, each of the template's roles
/// given a desk (fields `template`, `name` and one `role.<key>` per role).
pub async fn create_circuit(
    State(state): State<Arc<ApiState>>,
    posted: Posted<Vec<(String, String)>>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let field = |name: &str| {
        posted
            .form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_default()
    };
    let (template, name) = (field("template"), field("name"));
    let typed = vec![("template", template.clone()), ("name", name.clone())];
    let result = async {
        let roles = role_desks(&posted.form)?;
        state
            .engine
            .create_circuit(person.actor, &name, &template, &roles)
            .await?;
        Ok(notice(&format!("Circuit « {name} » créé.")))
    }
    .await;
    answer(&state, &person, Section::Circuits, typed, result).await
}

/// The desks given to a template's roles by a circuit form (one `role.<key>` field per role).
fn role_desks(form: &[(String, String)]) -> Result<BTreeMap<String, DeskId>, ApiError> {
    let mut roles = BTreeMap::new();
    for (key, value) in form {
        if let Some(role) = key.strip_prefix("role.") {
            let desk: DeskId = value.trim().parse().map_err(|_| {
                ApiError::invalid(key.as_str(), format!("choisissez le bureau « {role} »"))
            })?;
            roles.insert(role.to_owned(), desk);
        }
    }
    Ok(roles)
}

/// `POST /administration/circuits/{id}`: a circuit renamed, or its roles given other desks;
/// dossiers already submitted keep their steps.
pub async fn update_circuit(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<Vec<(String, String)>>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let id: CircuitId = id.parse().map_err(|_| super::not_found())?;
    let name = posted
        .form
        .iter()
        .find(|(key, _)| key == "name")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    let typed = vec![("circuit", id.to_string()), ("name", name.clone())];
    let result = async {
        let roles = role_desks(&posted.form)?;
        state
            .engine
            .update_circuit(person.actor, id, &name, &roles)
            .await?;
        Ok(notice(&format!("Circuit « {name} » modifié.")))
    }
    .await;
    answer(&state, &person, Section::Circuits, typed, result).await
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
    admin_page(
        &state,
        &person,
        Outcome {
            secret: Some(Secret {
                what: "Jeton créé.",
                value: secret,
            }),
            ..Outcome::default()
        },
    )
    .await
}

/// `POST /administration/jetons/{id}/revoquer`.
pub async fn revoke_token(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<EmptyForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    state
        .engine
        .revoke_api_token(Some(person.actor.tenant), &id)
        .await?;
    admin_page(&state, &person, notice("Jeton révoqué.")).await
}

fn notice(text: &str) -> Outcome {
    Outcome {
        notice: Some(text.to_owned()),
        ..Outcome::default()
    }
}

/// `POST /administration/webhooks`: the URL and the events ticked (none: every event); the
/// signing secret is shown once, on the page it answers.
pub async fn create_webhook(
    State(state): State<Arc<ApiState>>,
    posted: Posted<Vec<(String, String)>>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let field = |name: &str| -> Vec<String> {
        posted
            .form
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    };
    let url = field("url").into_iter().next().unwrap_or_default();
    let events = field("events");
    let typed = vec![("url", url.clone())];
    let result = async {
        let events = parse_events(&events)?;
        let secret = new_webhook_secret()?;
        state
            .engine
            .create_webhook(
                person.actor,
                NewWebhook {
                    url,
                    events,
                    secret: secret.clone(),
                    active: true,
                },
            )
            .await?;
        Ok(Outcome {
            secret: Some(Secret {
                what: "Webhook créé. Son secret signe chaque envoi (HMAC-SHA256) :",
                value: secret,
            }),
            ..Outcome::default()
        })
    }
    .await;
    answer(&state, &person, Section::Webhooks, typed, result).await
}

/// `POST /administration/webhooks/{id}/supprimer`.
pub async fn delete_webhook(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<EmptyForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let id: WebhookId = id.parse().map_err(|_| super::not_found())?;
    let result = async {
        state.engine.delete_webhook(person.actor, id).await?;
        Ok(notice("Webhook supprimé."))
    }
    .await;
    answer(&state, &person, Section::Webhooks, Vec::new(), result).await
}

/// `POST /administration/confiance` (multipart: `csrf`, a PEM `file` and/or pasted `pem`
/// text): certificates and CRLs to trust; nothing is added when one block is unreadable.
pub async fn add_trust(
    State(state): State<Arc<ApiState>>,
    person: Person,
    form: Result<Multipart, MultipartRejection>,
) -> UiResult<Response> {
    let bad = |e: String| ApiError::BadRequest(format!("formulaire invalide : {e}"));
    let mut form = form.map_err(|e| bad(e.to_string()))?;
    let mut csrf = None;
    let mut sent = Vec::new();
    while let Some(part) = form.next_field().await.map_err(|e| bad(e.to_string()))? {
        let name = part.name().unwrap_or_default().to_owned();
        let bytes = part.bytes().await.map_err(|e| bad(e.to_string()))?;
        match name.as_str() {
            "csrf" => csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "file" | "pem" => sent.push(bytes),
            _ => {}
        }
    }
    if !csrf.is_some_and(|c| auth::same_secret(&c, &person.csrf)) {
        return Err(ApiError::Csrf.into());
    }
    person.require_admin()?;
    let result = async {
        let mut pem = String::new();
        for bytes in &sent {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                ApiError::invalid("pem", "le fichier doit être un texte PEM (pas du DER)")
            })?;
            pem.push_str(text);
            pem.push('\n');
        }
        let added = state.engine.add_trust_entries(person.actor, &pem).await?;
        Ok(notice(&format!(
            "{} entrée(s) ajoutée(s) au magasin de confiance.",
            added.len()
        )))
    }
    .await;
    answer(&state, &person, Section::Trust, Vec::new(), result).await
}

/// `POST /administration/confiance/{id}/retirer`.
pub async fn remove_trust(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<EmptyForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let id: TrustAnchorId = id.parse().map_err(|_| super::not_found())?;
    let result = async {
        state.engine.remove_trust_entry(person.actor, id).await?;
        Ok(notice("Entrée retirée du magasin de confiance."))
    }
    .await;
    answer(&state, &person, Section::Trust, Vec::new(), result).await
}

/// The new-server-key form.
#[derive(Debug, Deserialize)]
pub struct KeyForm {
    label: String,
    uri: String,
    usage: String,
    owner: Option<String>,
    chain: Option<String>,
}

/// `POST /administration/cles`: a key of the server's module (URI without PIN), a seal or a
/// user's key.
pub async fn add_key(
    State(state): State<Arc<ApiState>>,
    posted: Posted<KeyForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let form = posted.form;
    // A URI refused for carrying a PIN is not written back into the page.
    let shown_uri = if form.uri.contains("pin-") {
        String::new()
    } else {
        form.uri.trim().to_owned()
    };
    let typed = vec![
        ("label", form.label.trim().to_owned()),
        ("uri", shown_uri),
        ("chain", form.chain.clone().unwrap_or_default()),
    ];
    let result = async {
        let usage = KeyUsage::parse(&form.usage)
            .ok_or_else(|| ApiError::invalid("usage", "choisissez cachet ou clé d'un élu"))?;
        let owner: Option<UserId> = optional("owner", form.owner.as_deref())?;
        let chain_pem = form.chain.filter(|c| !c.trim().is_empty());
        state
            .engine
            .add_server_key(
                person.actor,
                NewServerKey {
                    label: form.label.trim().to_owned(),
                    uri: form.uri.trim().to_owned(),
                    usage,
                    owner,
                    chain_pem,
                },
            )
            .await?;
        Ok(notice("Clé du serveur ajoutée."))
    }
    .await;
    answer(&state, &person, Section::Keys, typed, result).await
}

/// `POST /administration/cles/{id}/retirer`.
pub async fn remove_key(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<EmptyForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let id: ServerKeyId = id.parse().map_err(|_| super::not_found())?;
    let result = async {
        state.engine.remove_server_key(person.actor, id).await?;
        Ok(notice("Clé du serveur retirée."))
    }
    .await;
    answer(&state, &person, Section::Keys, Vec::new(), result).await
}

/// The transaction-number form of an unnumbered PES.
#[derive(Debug, Deserialize)]
pub struct NumberForm {
    transaction: String,
}

/// `POST /administration/helios/{dossier}/numero`: the S²LOW transaction number of a PES whose
/// answer was lost, taken once S²LOW shows the same file under it.
pub async fn number_pes(
    State(state): State<Arc<ApiState>>,
    Path(dossier): Path<String>,
    posted: Posted<NumberForm>,
) -> UiResult<Response> {
    let person = posted.person;
    person.require_admin()?;
    let dossier: DossierId = dossier.parse().map_err(|_| super::not_found())?;
    let typed = posted.form.transaction.trim().to_owned();
    let result = async {
        let transaction = typed
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    "transaction",
                    "un numéro de transaction S²LOW est un nombre",
                )
            })?;
        crate::http::connectors::number_pes(&state.engine, person.actor, dossier, transaction)
            .await?;
        Ok(notice(&format!(
            "PES rapproché de la transaction S²LOW {transaction} : son acquittement sera suivi."
        )))
    }
    .await;
    let typed = vec![("dossier", dossier.to_string()), ("transaction", typed)];
    answer(&state, &person, Section::Helios, typed, result).await
}
