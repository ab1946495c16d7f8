//! Webhook delivery: the engine's [`WebhookSender`] port over HTTP, and the signature that lets a
//! receiver check that a delivery comes from seing, unchanged and recent.
//!
//! Each delivery is a `POST` of a JSON body with the headers
//! `Seing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! `Seing-Event: <event>` and `Seing-Delivery: <delivery id>` (the same id on every attempt, for
//! the receiver's dedupe). A 2xx answer delivers it; 408, 429, 5xx, timeouts and network errors
//! are retried by the outbox with backoff; any other answer is permanent.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use seing_engine::Engine;
use seing_engine::ids::WebhookId;
use seing_engine::outbox::{DeliveryError, Job};
use seing_engine::ports::WebhookSender;
use sha2::Sha256;

use crate::error::{Error, Result};

/// Header carrying the timestamp and the HMAC.
pub const SIGNATURE_HEADER: &str = "Seing-Signature";
/// Header carrying the event name.
pub const EVENT_HEADER: &str = "Seing-Event";
/// Header carrying the delivery id (stable across retries).
pub const DELIVERY_HEADER: &str = "Seing-Delivery";

/// Largest response body read from a receiver (its content is only quoted in errors).
const MAX_RESPONSE: u64 = 4096;

/// The `Seing-Signature` value of `body` sent at `timestamp` (Unix seconds).
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks a `Seing-Signature` header as a receiver does: a `v1` HMAC of `"<t>.<body>"` under
/// `secret` (compared in constant time) and a timestamp within `tolerance` seconds of `now`
/// (replays of an old delivery are refused; the `Seing-Delivery` id catches the recent ones).
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<()> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Error::WebhookSignature("horodatage absent ou illisible"))?;
    if (now - timestamp).abs() > tolerance {
        return Err(Error::WebhookSignature(
            "horodatage hors de la fenêtre de tolérance",
        ));
    }
    let valid = signatures.iter().any(|hex_value| {
        hex::decode(hex_value)
            .is_ok_and(|bytes| mac(secret, timestamp, body).verify_slice(&bytes).is_ok())
    });
    if valid {
        Ok(())
    } else {
        Err(Error::WebhookSignature("signature HMAC invalide"))
    }
}

/// Whether an HTTP answer delivered the event, may be retried, or never will be.
fn outcome(status: u16, excerpt: &str) -> std::result::Result<(), DeliveryError> {
    let message = || {
        if excerpt.is_empty() {
            format!("le destinataire a répondu {status}")
        } else {
            format!("le destinataire a répondu {status} : {excerpt}")
        }
    };
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(DeliveryError::transient(message())),
        _ => Err(DeliveryError::permanent(message())),
    }
}

/// Delivers webhook jobs over HTTP to the subscriptions the engine stores.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    engine: Engine,
    agent: ureq::Agent,
}

impl HttpWebhookSender {
    /// A sender reading subscriptions from `engine`, giving up on one attempt after `timeout`.
    pub fn new(engine: Engine, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // A redirect would resend the body elsewhere: the receiver must give its final URL.
            .max_redirects(0)
            .user_agent(concat!("seing/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self { engine, agent }
    }
}

/// One HTTP attempt, on a blocking thread.
fn post(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> std::result::Result<(), DeliveryError> {
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut response = request.send(&body[..]).map_err(|e| match e {
        ureq::Error::BadUri(_) => {
            DeliveryError::permanent(format!("adresse du destinataire invalide : {e}"))
        }
        _ => DeliveryError::transient(format!("échec de l'envoi : {e}")),
    })?;
    let excerpt = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_string()
        .unwrap_or_default();
    let excerpt: String = excerpt.chars().take(200).collect();
    outcome(response.status().as_u16(), excerpt.trim())
}

impl WebhookSender for HttpWebhookSender {
    async fn deliver(&self, job: &Job) -> std::result::Result<(), DeliveryError> {
        let subscription: WebhookId = job.payload["subscription"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DeliveryError::permanent("tâche webhook sans abonnement"))?;
        let target = self
            .engine
            .webhook_target(job.tenant, subscription)
            .await
            .map_err(|e| DeliveryError::transient(e.to_string()))?
            .ok_or_else(|| {
                DeliveryError::permanent("abonnement supprimé ou désactivé : événement non envoyé")
            })?;
        let mut body = job.payload["body"].clone();
        let event = body["event"].as_str().unwrap_or_default().to_owned();
        if !body.is_object() || event.is_empty() {
            return Err(DeliveryError::permanent("tâche webhook sans événement"));
        }
        body["id"] = serde_json::json!(job.id);
        body["webhook"] = serde_json::json!(target.id);
        let body = serde_json::to_vec(&body)
            .map_err(|e| DeliveryError::permanent(format!("corps illisible : {e}")))?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = [
            (
                SIGNATURE_HEADER,
                signature_header(&target.secret, timestamp, &body),
            ),
            (EVENT_HEADER, event),
            (DELIVERY_HEADER, job.id.to_string()),
        ];
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || post(&agent, &target.url, &headers, body))
            .await
            .map_err(|e| DeliveryError::transient(format!("envoi interrompu : {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_time() {
        let body = br#"{"event":"dossier.created"}"#;
        let header = signature_header("s3cr3t-s3cr3t-s3cr3t", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        verify_signature("s3cr3t-s3cr3t-s3cr3t", &header, body, 1_700_000_100, 300).unwrap();
        for (secret, body, now) in [
            ("autre-secret-autre", &body[..], 1_700_000_000),
            (
                "s3cr3t-s3cr3t-s3cr3t",
                br#"{"event":"dossier.rejected"}"#,
                1_700_000_000,
            ),
            ("s3cr3t-s3cr3t-s3cr3t", &body[..], 1_700_000_301),
        ] {
            assert!(
                matches!(
                    verify_signature(secret, &header, body, now, 300),
                    Err(Error::WebhookSignature(_))
                ),
                "{secret} {now}"
            );
        }
        assert!(verify_signature("s", "v1=00", body, 0, 300).is_err());
    }

    #[test]
    fn statuses_sort_into_done_retry_and_give_up() {
        assert!(outcome(204, "").is_ok());
        for retried in [408, 429, 500, 503] {
            assert!(!outcome(retried, "").unwrap_err().permanent, "{retried}");
        }
        for given_up in [301, 400, 401, 404, 410, 422] {
            assert!(outcome(given_up, "").unwrap_err().permanent, "{given_up}");
        }
        assert_eq!(
            outcome(400, "mauvais format").unwrap_err().message,
            "le destinataire a répondu 400 : mauvais format"
        );
    }
}
