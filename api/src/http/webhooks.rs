//! Webhook subscriptions of the tenant (tenant administrators): create, list, delete. Events
//! and the signature of deliveries are described in `docs/webhooks.md`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use seing_engine::ids::WebhookId;
use seing_engine::webhooks::{NewWebhook, Webhook, WebhookEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{self, Caller};
use super::problem::{ApiError, ApiResult, Problem};
use super::{ApiJson, ApiPath, ApiState};

/// A subscription to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed (`https://…`; `http://` for a local receiver).
    pub url: String,
    /// Event names to receive (`dossier.created`, `step.completed`, `dossier.signed`,
    /// `dossier.rejected`, `dossier.finished`, …); empty or absent: every event.
    #[serde(default)]
    pub events: Vec<String>,
    /// The HMAC-SHA256 secret (at least 16 characters); absent: one is generated and returned
    /// once.
    pub secret: Option<String>,
    /// Receives events (default: true).
    #[serde(default = "active_default")]
    pub active: bool,
}

fn active_default() -> bool {
    true
}

/// A subscription as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Identifier.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event names received; empty: every event.
    pub events: Vec<String>,
    /// Receives events.
    pub active: bool,
    /// Creation time (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl WebhookView {
    fn of(webhook: Webhook) -> ApiResult<Self> {
        Ok(Self {
            id: webhook.id.to_string(),
            url: webhook.url,
            events: webhook
                .events
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            active: webhook.active,
            created_at: webhook
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        })
    }
}

/// A created subscription, with its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The subscription.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The HMAC-SHA256 secret that signs the deliveries.
    pub secret: String,
}

/// Lists the tenant's webhook subscriptions (tenant administrators; secrets are never shown).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = Problem),
        (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<WebhookView>>> {
    let actor = caller.tenant_admin()?;
    let webhooks = state.engine.webhooks(actor).await?;
    Ok(Json(
        webhooks
            .into_iter()
            .map(WebhookView::of)
            .collect::<ApiResult<_>>()?,
    ))
}

/// Subscribes a URL to events of the tenant's dossiers (tenant administrators). Each delivery
/// is signed: `Seing-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let actor = caller.tenant_admin()?;
    let events = parse_events(&body.events)?;
    let secret = match body.secret {
        Some(secret) => secret,
        None => new_webhook_secret()?,
    };
    let webhook = state
        .engine
        .create_webhook(
            actor,
            NewWebhook {
                url: body.url,
                events,
                secret: secret.clone(),
                active: body.active,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: WebhookView::of(webhook)?,
            secret,
        }),
    ))
}

/// Deletes a subscription (tenant administrators); deliveries not yet made are dropped.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Abonnement")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn delete(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<StatusCode> {
    let actor = caller.tenant_admin()?;
    state.engine.delete_webhook(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses event names; an unknown one is refused with the list of known ones.
pub fn parse_events(names: &[String]) -> ApiResult<Vec<WebhookEvent>> {
    names
        .iter()
        .map(|name| {
            WebhookEvent::parse(name).ok_or_else(|| {
                let known: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
                ApiError::invalid(
                    "events",
                    format!(
                        "événement inconnu « {name} » (connus : {})",
                        known.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// A new webhook secret (256 random bits).
pub fn new_webhook_secret() -> ApiResult<String> {
    Ok(format!("whsec_{}", auth::random_secret()?))
}
