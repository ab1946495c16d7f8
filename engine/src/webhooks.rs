//! Webhook subscriptions of a tenant: which URL receives which events, signed with which
//! secret. An event of a dossier becomes one outbox job per matching active subscription, in
//! the transaction of the state change, so that each receiver is retried on its own.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::engine::{Engine, db_time, json_col, parse_col, time_col, to_json};
use crate::error::{EngineError, EngineResult};
use crate::ids::{DossierId, TenantId, WebhookId};
use crate::model::Actor;
use crate::outbox::{self, JobKind};

/// The events a subscription can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// A dossier was created (as a draft).
    #[serde(rename = "dossier.created")]
    DossierCreated,
    /// A draft was sent into its circuit.
    #[serde(rename = "dossier.submitted")]
    DossierSubmitted,
    /// A visa, signature or seal step was completed (every desk of an `all` step acted).
    #[serde(rename = "step.completed")]
    StepCompleted,
    /// A signature or seal step was completed: signed documents are available.
    #[serde(rename = "dossier.signed")]
    DossierSigned,
    /// The dossier was rejected (back to its emitter).
    #[serde(rename = "dossier.rejected")]
    DossierRejected,
    /// The last step acted by a desk was completed (connector steps may follow).
    #[serde(rename = "dossier.finished")]
    DossierFinished,
    /// The last action was taken back (*droit de remords*).
    #[serde(rename = "dossier.undone")]
    DossierUndone,
    /// The dossier was sent to the prefecture, the accountant or the recipient.
    #[serde(rename = "dossier.transmitted")]
    DossierTransmitted,
    /// The outside system acknowledged the transmission.
    #[serde(rename = "dossier.acknowledged")]
    DossierAcknowledged,
    /// The dossier was archived.
    #[serde(rename = "dossier.archived")]
    DossierArchived,
    /// The prefecture, the DGFiP or the archive service refused the dossier (it is rejected).
    #[serde(rename = "dossier.refused")]
    DossierRefused,
    /// The notification link expired unopened (the dossier is rejected).
    #[serde(rename = "dossier.expired")]
    DossierExpired,
}

impl WebhookEvent {
    /// Every event, in the order of a dossier's life.
    pub const ALL: [Self; 12] = [
        Self::DossierCreated,
        Self::DossierSubmitted,
        Self::StepCompleted,
        Self::DossierSigned,
        Self::DossierRejected,
        Self::DossierFinished,
        Self::DossierUndone,
        Self::DossierTransmitted,
        Self::DossierAcknowledged,
        Self::DossierArchived,
        Self::DossierRefused,
        Self::DossierExpired,
    ];

    /// The event's name on the wire (`dossier.created`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DossierCreated => "dossier.created",
            Self::DossierSubmitted => "dossier.submitted",
            Self::StepCompleted => "step.completed",
            Self::DossierSigned => "dossier.signed",
            Self::DossierRejected => "dossier.rejected",
            Self::DossierFinished => "dossier.finished",
            Self::DossierUndone => "dossier.undone",
            Self::DossierTransmitted => "dossier.transmitted",
            Self::DossierAcknowledged => "dossier.acknowledged",
            Self::DossierArchived => "dossier.archived",
            Self::DossierRefused => "dossier.refused",
            Self::DossierExpired => "dossier.expired",
        }
    }

    /// Parses an event name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// A subscription as listed (its secret is shown only when created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    /// Identifier (also in every delivery's body).
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// The events received; empty: every event.
    pub events: Vec<WebhookEvent>,
    /// Inactive subscriptions receive nothing.
    pub active: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A subscription to create.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// The events to receive; empty: every event.
    pub events: Vec<WebhookEvent>,
    /// The HMAC secret (the caller generates one when the user gives none).
    pub secret: String,
    /// Receives events from now on.
    pub active: bool,
}

/// Where and how to deliver to one subscription (for the webhook sender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The subscription.
    pub id: WebhookId,
    /// Where to POST.
    pub url: String,
    /// The HMAC-SHA256 key.
    pub secret: String,
}

/// Shortest secret accepted: HMAC keys must not be guessable.
const MIN_SECRET: usize = 16;

fn check_url(url: &str) -> EngineResult<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| EngineError::invalid("url", "l'adresse doit commencer par http(s)://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EngineError::invalid("url", "adresse invalide"));
    }
    Ok(())
}

fn webhook_from_row(row: &sqlx::any::AnyRow) -> EngineResult<Webhook> {
    let active: i64 = row.try_get(3)?;
    Ok(Webhook {
        id: parse_col(row, 0)?,
        url: row.try_get(1)?,
        events: json_col(row, 2)?,
        active: active != 0,
        created_at: time_col(row, 4)?,
    })
}

/// Writes, in the caller's transaction, one job per active subscription of `tenant` that takes
/// the event of `payload` (`{"event": …, …}`): the job carries the subscription and the body to
/// POST, completed with the tenant and the time. `key` identifies the event; each job's key adds
/// the subscription.
pub(crate) async fn enqueue_event(
    conn: &mut AnyConnection,
    tenant: TenantId,
    dossier: Option<DossierId>,
    payload: &serde_json::Value,
    key: &str,
    now: OffsetDateTime,
) -> EngineResult<()> {
    let event = payload["event"]
        .as_str()
        .and_then(WebhookEvent::parse)
        .ok_or_else(|| EngineError::Corrupted(format!("webhook event in {payload}")))?;
    let rows = sqlx::query(
        "SELECT id, url, events, active, created_at FROM webhooks WHERE tenant_id = $1 AND active = 1 ORDER BY id",
    )
    .bind(tenant.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut body = payload.clone();
    body["tenant"] = json!(tenant);
    body["occurred_at"] = json!(db_time(now));
    for row in &rows {
        let webhook = webhook_from_row(row)?;
        if !webhook.events.is_empty() && !webhook.events.contains(&event) {
            continue;
        }
        let job = json!({"subscription": webhook.id, "body": body});
        let job_key = format!("{key}:{}", webhook.id);
        outbox::enqueue(conn, tenant, dossier, JobKind::Webhook, &job, &job_key, now).await?;
    }
    Ok(())
}

impl Engine {
    /// Creates a subscription (tenant administrators).
    pub async fn create_webhook(&self, actor: Actor, new: NewWebhook) -> EngineResult<Webhook> {
        check_url(&new.url)?;
        if new.secret.chars().count() < MIN_SECRET {
            return Err(EngineError::invalid(
                "secret",
                format!("au moins {MIN_SECRET} caractères"),
            ));
        }
        let mut events = new.events;
        events.sort_unstable();
        events.dedup();
        let webhook = Webhook {
            id: WebhookId::new(),
            url: new.url,
            events,
            active: new.active,
            created_at: self.now(),
        };
        let mut tx = self.db.begin_write().await?;
        self.require_admin(&mut tx, actor).await?;
        sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, url, events, secret, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(webhook.id.to_string())
        .bind(actor.tenant.to_string())
        .bind(webhook.url.clone())
        .bind(to_json(&webhook.events)?)
        .bind(new.secret)
        .bind(i64::from(webhook.active))
        .bind(db_time(webhook.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(webhook)
    }

    /// The tenant's subscriptions, oldest first (tenant administrators).
    pub async fn webhooks(&self, actor: Actor) -> EngineResult<Vec<Webhook>> {
        let mut conn = self.db.pool().acquire().await?;
        self.require_admin(&mut conn, actor).await?;
        let rows = sqlx::query(
            "SELECT id, url, events, active, created_at FROM webhooks WHERE tenant_id = $1 ORDER BY id",
        )
        .bind(actor.tenant.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    /// Deletes a subscription (tenant administrators); its deliveries not yet made are dropped
    /// by the sender.
    pub async fn delete_webhook(&self, actor: Actor, id: WebhookId) -> EngineResult<()> {
        let mut tx = self.db.begin_write().await?;
        self.require_admin(&mut tx, actor).await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(actor.tenant.to_string())
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() != 1 {
            return Err(EngineError::NotFound { entity: "webhook" });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Where to deliver for subscription `id` of `tenant`; none when it was deleted or
    /// deactivated since the event.
    pub async fn webhook_target(
        &self,
        tenant: TenantId,
        id: WebhookId,
    ) -> EngineResult<Option<WebhookTarget>> {
        let row = sqlx::query(
            "SELECT url, secret FROM webhooks WHERE id = $1 AND tenant_id = $2 AND active = 1",
        )
        .bind(id.to_string())
        .bind(tenant.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(WebhookTarget {
                id,
                url: row.try_get(0)?,
                secret: row.try_get(1)?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip_and_match_serde() {
        for event in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(event.as_str()), Some(event));
            assert_eq!(serde_json::to_value(event).unwrap(), json!(event.as_str()));
        }
        assert_eq!(WebhookEvent::parse("dossier.eaten"), None);
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(check_url("https://erp.example/hooks?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8000").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "http://a b",
            "erp.example",
        ] {
            assert!(
                matches!(check_url(bad), Err(EngineError::Invalid { .. })),
                "{bad}"
            );
        }
    }
}
