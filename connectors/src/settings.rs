//! Each tenant's connector settings: how its acts, PES files and archives travel, and what the
//! formats need that the dossier does not say (the authority's codes, the archive services).
//!
//! Stored as JSON in `connector_settings`; [`ConnectorSettings::parse`] is the one check, used
//! both when an administrator sets them and when a job reads them.

use std::path::PathBuf;

use serde::Deserialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::dropfolder::DropFolder;
use crate::notification::NotificationSettings;
use crate::s2low::S2lowConfig;
use crate::seda::{AccessRule, AppraisalRule, ArchiveClient, ArchiveHttp};
use crate::{Error, Problem, Result};

/// How documents of one kind travel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transport {
    /// Through the authority's S²LOW account.
    S2low(S2lowConfig),
    /// Into an outbox folder; returns are read from an inbox folder.
    DropFolder(DropFolder),
}

/// Actes (@ctes) settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActesSettings {
    /// The transport.
    pub transport: Transport,
    /// Arrondissement of the authority (one digit).
    pub arrondissement: String,
    /// The platform's three-character code (drop-folder archive names).
    #[serde(default = "default_trigramme")]
    pub trigramme: String,
    /// Two-digit nature code of the authority.
    pub nature_collectivite: String,
    /// Where the prefecture sends its returns.
    pub email_retour: Vec<String>,
}

fn default_trigramme() -> String {
    "SLO".into()
}

/// Hélios settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeliosSettings {
    /// The transport.
    pub transport: Transport,
}

/// SEDA archive settings (descriptive and management metadata the dossier does not carry).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    /// Where packages are deposited and replies read (this or `http`).
    #[serde(default)]
    pub drop_folder: Option<DropFolder>,
    /// The archive system's transfer endpoint (this or `drop_folder`).
    #[serde(default)]
    pub http: Option<ArchiveHttp>,
    /// Identifier of the archive service.
    pub archival_agency: String,
    /// Identifier of the transferring service.
    pub transferring_agency: String,
    /// Identifier of the producing service (default: the transferring one).
    #[serde(default)]
    pub originating_agency: Option<String>,
    /// Transfer agreement.
    #[serde(default)]
    pub archival_agreement: Option<String>,
    /// Appraisal rule.
    #[serde(default)]
    pub appraisal_rule: Option<AppraisalRule>,
    /// Access rule.
    #[serde(default)]
    pub access_rule: Option<AccessRule>,
}

/// Everything a tenant configured; absent parts mean "not configured" (jobs fail, saying so).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// @ctes.
    #[serde(default)]
    pub actes: Option<ActesSettings>,
    /// Hélios.
    #[serde(default)]
    pub helios: Option<HeliosSettings>,
    /// SEDA archives.
    #[serde(default)]
    pub archive: Option<ArchiveSettings>,
    /// Notification mails.
    #[serde(default)]
    pub notification: Option<NotificationSettings>,
}

fn check_folder(problems: &mut Vec<Problem>, field: &str, folder: &DropFolder) {
    for (name, path) in [("outbox", &folder.outbox), ("inbox", &folder.inbox)] {
        if !path.is_absolute() {
            problems.push(Problem::new(
                format!("{field}.{name}"),
                "chemin absolu attendu",
            ));
        }
    }
}

fn check_transport(problems: &mut Vec<Problem>, field: &str, transport: &Transport) {
    match transport {
        Transport::DropFolder(folder) => check_folder(problems, field, folder),
        Transport::S2low(config) => {
            if let Err(e) = crate::s2low::S2low::new(config) {
                problems.push(Problem::new(field, e.to_string()));
            }
        }
    }
}

impl ConnectorSettings {
    /// Reads and checks settings (JSON): unknown fields, relative folders, unreadable
    /// certificates and missing codes are all listed in [`Error::Invalid`].
    pub fn parse(json: &str) -> Result<Self> {
        let settings: Self = serde_json::from_str(json)
            .map_err(|e| Error::Invalid(vec![Problem::new("settings", e.to_string())]))?;
        let mut problems = Vec::new();
        if let Some(actes) = &settings.actes {
            check_transport(&mut problems, "actes.transport", &actes.transport);
            if actes.email_retour.is_empty() {
                problems.push(Problem::new("actes.email_retour", "au moins une adresse"));
            }
        }
        if let Some(helios) = &settings.helios {
            check_transport(&mut problems, "helios.transport", &helios.transport);
        }
        if let Some(archive) = &settings.archive {
            match (&archive.drop_folder, &archive.http) {
                (Some(folder), None) => check_folder(&mut problems, "archive.drop_folder", folder),
                (None, Some(http)) => {
                    if let Err(e) = ArchiveClient::new(http) {
                        problems.push(Problem::new("archive.http", e.to_string()));
                    }
                }
                _ => problems.push(Problem::new(
                    "archive",
                    "un transport, et un seul : « drop_folder » ou « http »",
                )),
            }
            for (field, value) in [
                ("archive.archival_agency", &archive.archival_agency),
                ("archive.transferring_agency", &archive.transferring_agency),
            ] {
                if value.trim().is_empty() {
                    problems.push(Problem::new(field, "vide"));
                }
            }
        }
        if let Some(n) = &settings.notification {
            for (field, value) in [
                ("notification.smtp_host", &n.smtp_host),
                ("notification.from", &n.from),
                ("notification.public_url", &n.public_url),
                ("notification.tsa_url", &n.tsa_url),
            ] {
                if value.trim().is_empty() {
                    problems.push(Problem::new(field, "vide"));
                }
            }
            if n.from.parse::<lettre::message::Mailbox>().is_err() {
                problems.push(Problem::new("notification.from", "adresse invalide"));
            }
            if let Err(e) = crate::notification::mailer(n) {
                problems.push(Problem::new("notification.smtp_ca", e.to_string()));
            }
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(Error::Invalid(problems))
        }
    }

    /// The folders the settings name (for operators checking permissions).
    pub fn folders(&self) -> Vec<PathBuf> {
        let mut folders = Vec::new();
        let mut add = |f: &DropFolder| {
            folders.push(f.outbox.clone());
            folders.push(f.inbox.clone());
        };
        for transport in [
            self.actes.as_ref().map(|a| &a.transport),
            self.helios.as_ref().map(|h| &h.transport),
        ]
        .into_iter()
        .flatten()
        {
            if let Transport::DropFolder(f) = transport {
                add(f);
            }
        }
        if let Some(folder) = self.archive.as_ref().and_then(|a| a.drop_folder.as_ref()) {
            add(folder);
        }
        folders
    }
}

/// Stores a tenant's settings after checking them; replaces earlier ones.
pub async fn store_settings(
    engine: &seing_engine::Engine,
    tenant: seing_engine::ids::TenantId,
    json: &str,
    now: OffsetDateTime,
) -> Result<ConnectorSettings> {
    let settings = ConnectorSettings::parse(json)?;
    let at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO connector_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET settings = $2, updated_at = $3",
    )
    .bind(tenant.to_string())
    .bind(json.to_owned())
    .bind(at)
    .execute(engine.database().pool())
    .await
    .map_err(|e| Error::Storage(e.to_string()))?;
    Ok(settings)
}

/// A tenant's settings as stored (JSON text), if any.
pub async fn stored_settings(
    engine: &seing_engine::Engine,
    tenant: seing_engine::ids::TenantId,
) -> Result<Option<String>> {
    let row = sqlx::query("SELECT settings FROM connector_settings WHERE tenant_id = $1")
        .bind(tenant.to_string())
        .fetch_optional(engine.database().pool())
        .await
        .map_err(|e| Error::Storage(e.to_string()))?;
    row.map(|r| r.try_get::<String, _>(0))
        .transpose()
        .map_err(|e| Error::Storage(e.to_string()))
}

/// A tenant's settings, checked; `None` when it has none.
pub async fn settings(
    engine: &seing_engine::Engine,
    tenant: seing_engine::ids::TenantId,
) -> Result<Option<ConnectorSettings>> {
    stored_settings(engine, tenant)
        .await?
        .map(|json| ConnectorSettings::parse(&json))
        .transpose()
}
