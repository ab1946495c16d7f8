//! Notification of signed documents to an outside recipient (procurement awards): a mail with a
//! unique, expiring, unguessable link served by seing; opening the link is the proof of
//! receipt, timestamped by an RFC 3161 TSA and reported to the engine (journal entry
//! `acknowledged` naming the recipient, the time and the token's digest).
//!
//! The link carries 256 random bits; only their SHA-256 is stored (`connector_transmissions`,
//! kind `notification`). A mail is recorded as being sent before it goes out and as sent after:
//! a job delivered again after a crash in between sends it again with a new link and the same
//! `Message-ID`, so the recipient's mail system can tell the repeat. The link works from the
//! start: opened before the send is recorded (the recipient may be quicker than the worker, or
//! the worker died), the opening is the receipt all the same, and nothing is sent again.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use seing_engine::error::EngineError;
use seing_engine::ids::{DossierId, TenantId};
use seing_engine::workflow::ConnectorEvent;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Error, Result};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// No TLS (a local relay that handles TLS onwards).
    #[default]
    Plain,
    /// STARTTLS required: a server that does not offer it gets nothing, not even in clear.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// How a tenant's notifications are mailed and proven.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// SMTP server (or local relay) host; also the name its TLS certificate must carry.
    pub smtp_host: String,
    /// SMTP port.
    #[serde(default = "default_port")]
    pub smtp_port: u16,
    /// Connection security [default: plain].
    #[serde(default)]
    pub smtp_security: SmtpSecurity,
    /// PEM file of the CA certificates trusted for the SMTP server's certificate; the public
    /// web roots when absent.
    #[serde(default)]
    pub smtp_ca: Option<PathBuf>,
    /// Sender address.
    pub from: String,
    /// Public base URL of seing, e.g. `https://parapheur.example.fr` (links point there).
    pub public_url: String,
    /// Days a link stays valid; past them the step is reported as expired.
    #[serde(default = "default_days")]
    pub link_days: i64,
    /// RFC 3161 TSA timestamping the receipts.
    pub tsa_url: String,
}

fn default_port() -> u16 {
    25
}

fn default_days() -> i64 {
    30
}

/// What the link gives the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// File name.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// True when this opening was the first (the receipt was recorded now).
    pub first_opening: bool,
}

fn storage(error: impl std::fmt::Display) -> Error {
    Error::Storage(error.to_string())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh link secret: 256 random bits, URL-safe.
fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Transport(format!("aléa indisponible : {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// One notification to send.
pub(crate) struct Outgoing<'a> {
    pub tenant: TenantId,
    pub dossier: DossierId,
    pub step: usize,
    pub title: &'a str,
    pub recipient: &'a str,
    /// The document the link serves: (name, SHA-256 address in the document store).
    pub document: (&'a str, &'a str),
    /// The outbox job's key: a mail recorded under another key belongs to an earlier round.
    pub job_key: &'a str,
}

/// Sends the mail of `outgoing` (see the module doc for the records around it); returns the
/// recipient.
pub(crate) async fn send(
    engine: &seing_engine::Engine,
    settings: &NotificationSettings,
    outgoing: &Outgoing<'_>,
) -> Result<String> {
    let pool = engine.database().pool();
    let step = i64::try_from(outgoing.step).unwrap_or(i64::MAX);
    let row = sqlx::query(
        "SELECT state, job_key FROM connector_transmissions WHERE dossier_id = $1 AND step = $2",
    )
    .bind(outgoing.dossier.to_string())
    .bind(step)
    .fetch_optional(pool)
    .await
    .map_err(storage)?;
    let earlier: Option<(String, Option<String>)> = row
        .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
        .transpose()
        .map_err(storage)?;
    // Sent already by this job (delivered again), unless it stopped while mailing; a mail of
    // an earlier round (before the dossier was resubmitted) is sent again with a new link.
    if earlier
        .is_some_and(|(state, key)| state != "mailing" && key.is_none_or(|k| k == outgoing.job_key))
    {
        return Ok(outgoing.recipient.to_owned());
    }
    let recipient: lettre::message::Mailbox =
        outgoing
            .recipient
            .parse()
            .map_err(|e| Error::RecipientRefused {
                recipient: outgoing.recipient.to_owned(),
                reason: format!("adresse invalide : {e}"),
            })?;
    let from: lettre::message::Mailbox = settings
        .from
        .parse()
        .map_err(|e| Error::Refused(format!("expéditeur « {} » : {e}", settings.from)))?;
    let token = new_token()?;
    let now = OffsetDateTime::now_utc();
    let expires = now + time::Duration::days(settings.link_days.max(1));
    let detail = json!({
        "recipient": outgoing.recipient,
        "expires_at": expires.format(&Rfc3339).unwrap_or_default(),
        "document": outgoing.document.0,
        "document_sha256": outgoing.document.1,
    });
    let at = now.format(&Rfc3339).unwrap_or_default();
    sqlx::query(
        "INSERT INTO connector_transmissions (dossier_id, step, tenant_id, kind, transport, reference, match_key, state, detail, created_at, updated_at, job_key) \
         VALUES ($1, $2, $3, 'notification', 'mail', $4, $5, 'mailing', $6, $7, $7, $8) \
         ON CONFLICT (dossier_id, step) DO UPDATE SET reference = $4, match_key = $5, detail = $6, state = 'mailing', updated_at = $7, job_key = $8",
    )
    .bind(outgoing.dossier.to_string())
    .bind(step)
    .bind(outgoing.tenant.to_string())
    .bind(token_hash(&token))
    .bind(outgoing.recipient.to_owned())
    .bind(detail.to_string())
    .bind(at.clone())
    .bind(outgoing.job_key.to_owned())
    .execute(pool)
    .await
    .map_err(storage)?;

    let link = format!(
        "{}/api/v1/notifications/{token}",
        settings.public_url.trim_end_matches('/')
    );
    let body = format!(
        "Bonjour,\n\nVous êtes destinataire de la notification suivante : {}.\n\n\
         Le document signé est disponible à l'adresse ci-dessous jusqu'au {} (UTC). \
         Son ouverture vaut accusé de réception ; elle est horodatée.\n\n{link}\n\n\
         Ce lien vous est personnel : ne le transmettez pas.\n",
        outgoing.title,
        expires
            .format(time::macros::format_description!(
                "[day]/[month]/[year] [hour]:[minute]"
            ))
            .unwrap_or_default()
    );
    let message = Message::builder()
        .from(from)
        .to(recipient)
        .subject(format!("Notification : {}", outgoing.title))
        .message_id(Some(format!(
            "<seing-{}-{}@seing.invalid>",
            outgoing.dossier, outgoing.step
        )))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| Error::Refused(format!("message : {e}")))?;
    // The mail's state once the server answered, unless the link was opened meanwhile (the
    // receipt stays); a refused address's link was never delivered: it is dead.
    let outcome = mail(settings, message).await;
    let state = match &outcome {
        Ok(()) => Some("sent"),
        Err(Error::RecipientRefused { .. }) => Some("refused"),
        Err(_) => None,
    };
    if let Some(state) = state {
        sqlx::query(
            "UPDATE connector_transmissions SET state = $1, updated_at = $2 WHERE dossier_id = $3 AND step = $4 AND state = 'mailing'",
        )
        .bind(state)
        .bind(OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default())
        .bind(outgoing.dossier.to_string())
        .bind(step)
        .execute(pool)
        .await
        .map_err(storage)?;
    }
    outcome?;
    Ok(outgoing.recipient.to_owned())
}

/// Sends `message` through the SMTP server of `settings`, over TLS when they say so; with
/// STARTTLS required, a server that does not offer it gets nothing.
pub async fn mail(settings: &NotificationSettings, message: Message) -> Result<()> {
    let host = &settings.smtp_host;
    let recipients: Vec<String> = message
        .envelope()
        .to()
        .iter()
        .map(ToString::to_string)
        .collect();
    mailer(settings)?.send(message).await.map_err(|e| {
        // lettre says this in English; the operator reads the job's error in French.
        if settings.smtp_security == SmtpSecurity::Starttls && e.to_string().contains("STARTTLS") {
            Error::Transport(format!(
                "SMTP {host} : le serveur ne propose pas STARTTLS alors que TLS est exigé (« smtp_security ») ; rien n'a été envoyé"
            ))
        } else if e.is_tls() || crate::tls::rustls_error(&e).is_some() {
            Error::Transport(format!(
                "SMTP {host} : échec TLS ({e}) : vérifier « smtp_ca » et que le certificat du serveur porte le nom {host}"
            ))
        } else if refuses_recipient(&e) {
            // The server will not take this address, whenever the mail is sent again.
            Error::RecipientRefused {
                recipient: recipients.join(", "),
                reason: format!("SMTP {host} : {e}"),
            }
        } else {
            Error::Transport(format!("SMTP {host} : {e}"))
        }
    })?;
    Ok(())
}

/// Whether an SMTP error is the server refusing the recipient's address for good (550, 551,
/// 553, unless its enhanced code says security or policy, 5.7.x: a relay refused is the
/// server's configuration, not the address).
fn refuses_recipient(error: &lettre::transport::smtp::Error) -> bool {
    let code = error.status().map(|c| c.to_string());
    matches!(code.as_deref(), Some("550" | "551" | "553")) && !error.to_string().contains(" 5.7.")
}

/// The SMTP transport of `settings`, TLS as they say; reads the CA file now, so a bad file is
/// reported here (also when the settings are stored).
pub(crate) fn mailer(
    settings: &NotificationSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.smtp_host)
        .port(settings.smtp_port)
        .timeout(Some(std::time::Duration::from_secs(30)));
    if settings.smtp_security == SmtpSecurity::Plain {
        return Ok(builder.build());
    }
    let mut parameters = TlsParameters::builder(settings.smtp_host.clone());
    if let Some(ca) = &settings.smtp_ca {
        let pem = std::fs::read(ca).map_err(|e| Error::io(ca, e))?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| Error::Format(format!("{} : certificat illisible ({e})", ca.display())))?;
        parameters = parameters
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certificate);
    }
    let parameters = parameters
        .build_rustls()
        .map_err(|e| Error::Format(format!("paramètres TLS SMTP : {e}")))?;
    let tls = match settings.smtp_security {
        SmtpSecurity::Tls => Tls::Wrapper(parameters),
        SmtpSecurity::Starttls | SmtpSecurity::Plain => Tls::Required(parameters),
    };
    Ok(builder.tls(tls).build())
}

/// Opens a notification link: checks it, records the timestamped receipt at the first
/// opening, and returns the document. Unknown links are [`Error::Refused`] as not found;
/// expired ones too, saying so.
pub async fn open(engine: &seing_engine::Engine, token: &str) -> Result<Delivered> {
    let pool = engine.database().pool();
    let hash = token_hash(token);
    let row = sqlx::query(
        "SELECT dossier_id, step, tenant_id, state, detail FROM connector_transmissions \
         WHERE kind = 'notification' AND reference = $1",
    )
    .bind(hash.clone())
    .fetch_optional(pool)
    .await
    .map_err(storage)?
    .ok_or_else(|| Error::Refused("lien inconnu".into()))?;
    let get = |i: usize| row.try_get::<String, _>(i).map_err(storage);
    let dossier: DossierId = get(0)?.parse().map_err(|_| storage("dossier_id"))?;
    let step: i64 = row.try_get(1).map_err(storage)?;
    let tenant: TenantId = get(2)?.parse().map_err(|_| storage("tenant_id"))?;
    let state = get(3)?;
    let detail: Value = serde_json::from_str(&get(4)?).map_err(storage)?;
    let text = |key: &str| detail[key].as_str().unwrap_or("").to_owned();
    let expires = OffsetDateTime::parse(&text("expires_at"), &Rfc3339).map_err(storage)?;
    let now = OffsetDateTime::now_utc();
    // Mailed and not opened yet, whether the send is recorded already or not.
    let first_opening = state == "sent" || state == "mailing";
    if state == "expired" || (first_opening && now > expires) {
        return Err(Error::Refused("ce lien a expiré".into()));
    }
    let bytes = engine
        .documents_store()
        .get(&text("document_sha256"))
        .await
        .map_err(|e| Error::io(Path::new(&text("document")), e))?;
    if first_opening {
        let settings = crate::settings::settings(engine, tenant)
            .await?
            .and_then(|s| s.notification)
            .ok_or_else(|| Error::Refused("notification non configurée".into()))?;
        let recipient = text("recipient");
        let opened_at = now.format(&Rfc3339).unwrap_or_default();
        // What is timestamped: who received which document of which dossier, and when.
        let statement = format!(
            "seing accusé de réception\ndossier {dossier}\nétape {step}\ndestinataire {recipient}\ndocument {} sha256 {}\nouvert le {opened_at}\nlien {hash}\n",
            text("document"),
            text("document_sha256")
        );
        let digest = Sha256::digest(statement.as_bytes()).to_vec();
        let tsa = settings.tsa_url.clone();
        let tst = tokio::task::spawn_blocking(move || {
            seing_signer::tsp::request_timestamp(
                &tsa,
                seing_signer::digest::DigestAlgorithm::Sha256,
                &digest,
                &seing_signer::tsp::TspOptions::default(),
            )
        })
        .await
        .map_err(|e| Error::Transport(format!("horodatage interrompu : {e}")))?
        .map_err(|e| Error::Transport(format!("horodatage : {e}")))?;
        let store = engine.documents_store();
        let statement_sha = store
            .put(statement.into_bytes())
            .await
            .map_err(|e| Error::io("accusé", e))?;
        let tst_sha = store
            .put(tst.der.clone())
            .await
            .map_err(|e| Error::io("jeton", e))?;
        let gen_time = tst.gen_time.format(&Rfc3339).unwrap_or_default();
        let reference = format!(
            "accusé de réception de {recipient}, horodaté {gen_time} (jeton {tst_sha}, déclaration {statement_sha})"
        );
        for event in [ConnectorEvent::Transmitted, ConnectorEvent::Acknowledged] {
            match engine
                .connector_report(tenant, dossier, event, &reference)
                .await
            {
                Ok(_) | Err(EngineError::Conflict { .. }) => {}
                Err(e) => return Err(storage(e)),
            }
        }
        let mut closed = detail.clone();
        closed["opened_at"] = json!(opened_at);
        closed["timestamp"] = json!(gen_time);
        closed["timestamp_token_sha256"] = json!(tst_sha);
        closed["statement_sha256"] = json!(statement_sha);
        sqlx::query(
            "UPDATE connector_transmissions SET state = 'acknowledged', detail = $1, updated_at = $2 \
             WHERE dossier_id = $3 AND step = $4 AND reference = $5 AND state IN ('sent', 'mailing')",
        )
        .bind(closed.to_string())
        .bind(opened_at)
        .bind(dossier.to_string())
        .bind(step)
        .bind(hash)
        .execute(pool)
        .await
        .map_err(storage)?;
    }
    Ok(Delivered {
        name: text("document"),
        bytes,
        first_opening,
    })
}

/// Closes the notifications whose link expired unopened and reports each to the engine: the
/// dossier goes back to its emitter (« lien expiré sans ouverture »). The report comes first,
/// so that a crash in between reports again at the next pass (a repeat is a conflict, ignored).
pub(crate) async fn expire(engine: &seing_engine::Engine) -> Result<usize> {
    let pool = engine.database().pool();
    let rows = sqlx::query(
        "SELECT dossier_id, step, detail, tenant_id FROM connector_transmissions WHERE kind = 'notification' AND state = 'sent'",
    )
    .fetch_all(pool)
    .await
    .map_err(storage)?;
    let now = OffsetDateTime::now_utc();
    let mut expired = 0;
    for row in &rows {
        let detail: String = row.try_get(2).map_err(storage)?;
        let detail: Value = serde_json::from_str(&detail).map_err(storage)?;
        let expires = OffsetDateTime::parse(detail["expires_at"].as_str().unwrap_or(""), &Rfc3339)
            .map_err(storage)?;
        if now <= expires {
            continue;
        }
        let dossier: String = row.try_get(0).map_err(storage)?;
        let tenant: String = row.try_get(3).map_err(storage)?;
        let reference = format!(
            "mail:{}, lien valable jusqu'au {}",
            detail["recipient"].as_str().unwrap_or(""),
            detail["expires_at"].as_str().unwrap_or("")
        );
        match engine
            .connector_report(
                tenant.parse().map_err(|_| storage("tenant_id"))?,
                dossier.parse().map_err(|_| storage("dossier_id"))?,
                ConnectorEvent::Expired,
                &reference,
            )
            .await
        {
            Ok(_) | Err(EngineError::Conflict { .. }) => {}
            Err(e) => return Err(storage(e)),
        }
        sqlx::query(
            "UPDATE connector_transmissions SET state = 'expired', updated_at = $1 WHERE dossier_id = $2 AND step = $3 AND state = 'sent'",
        )
        .bind(now.format(&Rfc3339).unwrap_or_default())
        .bind(dossier)
        .bind(row.try_get::<i64, _>(1).map_err(storage)?)
        .execute(pool)
        .await
        .map_err(storage)?;
        expired += 1;
    }
    Ok(expired)
}
