//! The engine's ports, implemented: [`Connectors`] transmits acts and PES files (S²LOW or a
//! drop folder) and deposits SEDA archive packages (drop folder, or HTTP to the archive
//! system), as the tenant's settings say;
//! [`Connectors::poll`] reads what came back and moves the dossiers on.
//!
//! A job may be delivered again after a crash. Each send is recorded in
//! `connector_transmissions` right after it succeeds, and a recorded step is never sent again;
//! in the window between the send and the record, the far side recognizes the repeat: S²LOW
//! refuses an act whose numéro interne it has (the first transaction is then looked up by that
//! number; a number held by a transaction in error, refused or cancelled sends the dossier back
//! to its emitter, who must give the act a new number) and a PES whose SHA-1 it has; a
//! drop-folder outbox already holds the same PES file, an archive of the same act, or the same
//! SEDA package; an archive system reached by HTTP answers `409` to a `MessageIdentifier` it
//! has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use seing_engine::Engine;
use seing_engine::circuit::Channel;
use seing_engine::error::EngineError;
use seing_engine::ids::{DossierId, TenantId};
use seing_engine::model::DocumentRole;
use seing_engine::outbox::{DeliveryError, Job};
use seing_engine::ports::{Archiver, Notifier, Receipt, Transmitter};
use seing_engine::workflow::{ConnectorEvent, Refuser};
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use sqlx::Row;
use time::OffsetDateTime;

use crate::actes::{
    ActeDocument, ActesMetadata, ActesReturn, ArAnnulation, SizeLimits, read_archive, validate,
    write_package,
};
use crate::dropfolder::{DropFolder, InboxFile, Return};
use crate::s2low::{ActesTransaction, HeliosTransaction, S2low, TransmissionState};
use crate::seda::{
    ArchiveClient, ArchiveHttp, ObjectRole, ReplyOutcome, SedaFile, SedaMetadata, TransferReply,
    parse_reply,
};
use crate::settings::{
    ActesSettings, ArchiveSettings, ConnectorSettings, HeliosSettings, Transport, settings,
};
use crate::{Error, Result};

/// The connectors of a running service.
#[derive(Debug, Clone)]
pub struct Connectors {
    engine: Engine,
}

/// One document of a job's payload.
#[derive(Debug, Clone, Deserialize)]
struct JobDocument {
    role: DocumentRole,
    name: String,
    sha256: String,
    #[serde(default)]
    step: Option<usize>,
}

/// What a connector job carries (see the engine's `connector_job`).
#[derive(Debug, Clone, Deserialize)]
struct Payload {
    dossier: DossierId,
    step: usize,
    title: String,
    #[serde(default)]
    metadata: BTreeMap<String, Value>,
    #[serde(default)]
    documents: Vec<JobDocument>,
}

impl Payload {
    /// Reads the payload of a connector job (an unreadable one will never become readable).
    fn of(job: &Job) -> std::result::Result<Self, DeliveryError> {
        serde_json::from_value(job.payload.clone())
            .map_err(|e| DeliveryError::permanent(format!("tâche illisible : {e}")))
    }
}

/// What one send left behind.
struct Sent {
    kind: &'static str,
    transport: &'static str,
    reference: String,
    match_key: String,
    detail: Value,
}

/// A recorded send still waiting for its return.
#[derive(Debug, Clone)]
struct Pending {
    dossier: DossierId,
    step: i64,
    tenant: TenantId,
    kind: String,
    transport: String,
    reference: String,
    match_key: String,
}

/// What was sent already for a connector step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Recorded {
    /// Nothing.
    Nothing,
    /// This job sent it (it is delivered again): its receipt.
    ThisJob(String),
    /// The job of an earlier round (before the dossier was rejected and resubmitted).
    EarlierRound,
}

impl Recorded {
    /// The suffix that tells a later round's deposits from the earlier ones: the dossier's
    /// version, the last part of the job's key.
    fn round(&self, job: &Job) -> Option<String> {
        (*self == Self::EarlierRound)
            .then(|| format!("v{}", job.idempotency_key.rsplit(':').next().unwrap_or("")))
    }
}

/// What one polling pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollRun {
    /// Transmissions acknowledged (dossiers moved on).
    pub acknowledged: usize,
    /// Transmissions or archives refused (recorded with the reasons).
    pub refused: usize,
    /// Archive transfers accepted.
    pub accepted: usize,
    /// Still waiting.
    pub waiting: usize,
    /// Notification links that expired unopened.
    pub expired: usize,
    /// Acknowledged acts whose cancellation the prefecture acknowledged (`ARAnnulation`).
    pub cancelled: usize,
}

fn delivery(error: Error) -> DeliveryError {
    match error {
        // The act cannot go under that number: back to the emitter, who gives it a new one.
        Error::NumberTaken { transaction, .. } => DeliveryError::refused(
            Refuser::Prefecture,
            format!("s2low:{transaction}"),
            error.to_string(),
        ),
        Error::RecipientRefused { ref recipient, .. } => DeliveryError::refused(
            Refuser::Recipient,
            format!("mail:{recipient}"),
            error.to_string(),
        ),
        Error::NumberUsed { ref number, .. } => DeliveryError::refused(
            Refuser::Prefecture,
            format!("numero_interne:{number}"),
            error.to_string(),
        ),
        Error::Transport(_) | Error::Storage(_) | Error::Io { .. } => {
            DeliveryError::transient(error.to_string())
        }
        _ => DeliveryError::permanent(error.to_string()),
    }
}

fn storage(error: impl std::fmt::Display) -> Error {
    Error::Storage(error.to_string())
}

fn engine_error(error: EngineError) -> Error {
    Error::Storage(error.to_string())
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A metadata value as text (numbers and booleans as written in JSON).
fn text(metadata: &BTreeMap<String, Value>, key: &str) -> Option<String> {
    match metadata.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Runs blocking transport code (file I/O, `ureq`) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Transport(format!("tâche interrompue : {e}")))?
}

/// The latest signed version of the documents, else the main document.
fn signed_or_main(documents: &[JobDocument]) -> Option<&JobDocument> {
    documents
        .iter()
        .filter(|d| d.role == DocumentRole::Signed)
        .max_by_key(|d| d.step)
        .or_else(|| documents.iter().find(|d| d.role == DocumentRole::Main))
}

impl Connectors {
    /// Connectors reading their settings and documents through `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    async fn settings(&self, tenant: TenantId) -> Result<ConnectorSettings> {
        settings(&self.engine, tenant).await?.ok_or_else(|| {
            Error::Refused("aucun connecteur n'est configuré pour cette collectivité".into())
        })
    }

    async fn bytes(&self, document: &JobDocument) -> Result<Vec<u8>> {
        self.engine
            .documents_store()
            .get(&document.sha256)
            .await
            .map_err(|e| Error::io(&document.name, e))
    }

    /// Writes the documents into `dir` under distinct names; returns their paths, in order.
    async fn materialize(&self, documents: &[&JobDocument], dir: &Path) -> Result<Vec<PathBuf>> {
        let mut paths: Vec<PathBuf> = Vec::new();
        for document in documents {
            let base = crate::paths::file_name(Path::new(&document.name));
            let mut path = dir.join(&base);
            let mut n = 1;
            while paths.contains(&path) {
                n += 1;
                path = dir.join(format!("{n}-{base}"));
            }
            let bytes = self.bytes(document).await?;
            std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// What was sent already for the step of `job`.
    async fn recorded(&self, job: &Job, payload: &Payload) -> Result<Recorded> {
        let row = sqlx::query(
            "SELECT transport, reference, job_key FROM connector_transmissions WHERE dossier_id = $1 AND step = $2",
        )
        .bind(payload.dossier.to_string())
        .bind(i64::try_from(payload.step).unwrap_or(i64::MAX))
        .fetch_optional(self.engine.database().pool())
        .await
        .map_err(storage)?;
        let Some(row) = row else {
            return Ok(Recorded::Nothing);
        };
        let get = |i: usize| row.try_get::<Option<String>, _>(i).map_err(storage);
        let key = get(2)?;
        // Rows written before job keys were kept belong to the job that finds them.
        if key.is_some_and(|k| k != job.idempotency_key) {
            return Ok(Recorded::EarlierRound);
        }
        Ok(Recorded::ThisJob(format!(
            "{}:{}",
            get(0)?.unwrap_or_default(),
            get(1)?.unwrap_or_default()
        )))
    }

    /// Records a send (over an earlier round's row, if any).
    async fn record(&self, job: &Job, payload: &Payload, sent: Sent) -> Result<Receipt> {
        let now = now_text();
        sqlx::query(
            "INSERT INTO connector_transmissions (dossier_id, step, tenant_id, kind, transport, reference, match_key, state, detail, created_at, updated_at, job_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'sent', $8, $9, $9, $10) \
             ON CONFLICT (dossier_id, step) DO UPDATE SET transport = excluded.transport, reference = excluded.reference, \
                match_key = excluded.match_key, state = 'sent', detail = excluded.detail, created_at = excluded.created_at, \
                updated_at = excluded.updated_at, job_key = excluded.job_key",
        )
        .bind(payload.dossier.to_string())
        .bind(i64::try_from(payload.step).unwrap_or(i64::MAX))
        .bind(job.tenant.to_string())
        .bind(sent.kind)
        .bind(sent.transport)
        .bind(sent.reference.clone())
        .bind(sent.match_key)
        .bind(sent.detail.to_string())
        .bind(now)
        .bind(job.idempotency_key.clone())
        .execute(self.engine.database().pool())
        .await
        .map_err(storage)?;
        Ok(Receipt {
            reference: format!("{}:{}", sent.transport, sent.reference),
        })
    }

    async fn send_helios(
        &self,
        settings: &HeliosSettings,
        payload: &Payload,
        round: Option<String>,
    ) -> Result<Sent> {
        let document = signed_or_main(&payload.documents)
            .ok_or_else(|| Error::Format("le dossier n'a pas de fichier PES".into()))?;
        let bytes = self.bytes(document).await?;
        let name = crate::paths::file_name(Path::new(&document.name));
        match &settings.transport {
            Transport::S2low(config) => {
                let config = config.clone();
                let sha1 = hex::encode(Sha1::digest(&bytes));
                let file = name.clone();
                let outcome =
                    blocking(move || S2low::new(&config)?.import_pes(&file, &bytes)).await;
                let (reference, detail) = match outcome {
                    Ok(id) => (id.to_string(), json!({"file": name, "sha1": sha1})),
                    // Sent before a crash: S²LOW has it, and gives no number for a hash.
                    Err(Error::Duplicate(message)) => (
                        format!("sha1:{sha1}"),
                        json!({"file": name, "sha1": sha1, "duplicate": message}),
                    ),
                    Err(e) => return Err(e),
                };
                Ok(Sent {
                    kind: "helios",
                    transport: "s2low",
                    reference,
                    match_key: name,
                    detail,
                })
            }
            Transport::DropFolder(folder) => {
                let folder = folder.clone();
                let deposited = match round {
                    Some(round) => format!("{}-{round}-{name}", payload.dossier),
                    None => format!("{}-{name}", payload.dossier),
                };
                let file = deposited.clone();
                blocking(move || folder.deposit(&file, &bytes)).await?;
                Ok(Sent {
                    kind: "helios",
                    transport: "drop_folder",
                    reference: deposited.clone(),
                    match_key: deposited,
                    detail: json!({"file": name}),
                })
            }
        }
    }

    async fn send_actes(
        &self,
        tenant: TenantId,
        settings: &ActesSettings,
        payload: &Payload,
    ) -> Result<Sent> {
        let authority = self.engine.tenant(tenant).await.map_err(engine_error)?;
        let md = &payload.metadata;
        let numero = text(md, "numero_interne").or_else(|| text(md, "numero_acte"));
        let meta = ActesMetadata {
            siren: authority.siren,
            departement: authority.departement,
            arrondissement: settings.arrondissement.clone(),
            trigramme: settings.trigramme.clone(),
            nature: text(md, "nature").unwrap_or_default(),
            classification: text(md, "classification").unwrap_or_default(),
            numero_interne: numero.unwrap_or_default(),
            date_decision: text(md, "date_decision").unwrap_or_default(),
            objet: text(md, "objet").unwrap_or_else(|| payload.title.clone()),
            type_pj: BTreeMap::new(),
            classification_date: text(md, "classification_date"),
            nature_collectivite: Some(settings.nature_collectivite.clone()),
            email_retour: settings.email_retour.clone(),
            referent: None,
        };
        let act = signed_or_main(&payload.documents)
            .ok_or_else(|| Error::Format("le dossier n'a pas d'acte".into()))?;
        let annexes: Vec<&JobDocument> = payload
            .documents
            .iter()
            .filter(|d| d.role == DocumentRole::Annex)
            .collect();
        let signature = payload
            .documents
            .iter()
            .filter(|d| d.role == DocumentRole::Signature)
            .max_by_key(|d| d.step);
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let mut all = vec![act];
        all.extend(signature);
        let act_paths = self.materialize(&all, dir.path()).await?;
        let annex_dir = dir.path().join("annexes");
        std::fs::create_dir(&annex_dir).map_err(|e| Error::io(&annex_dir, e))?;
        let annex_paths = self.materialize(&annexes, &annex_dir).await?;
        let act_document = ActeDocument {
            path: act_paths[0].clone(),
            signature: act_paths.get(1).cloned(),
        };
        let annex_documents: Vec<ActeDocument> = annex_paths
            .into_iter()
            .map(|path| ActeDocument {
                path,
                signature: None,
            })
            .collect();
        let valid = validate(
            &meta,
            &act_document,
            &annex_documents,
            None,
            &SizeLimits::default(),
            OffsetDateTime::now_utc().date(),
        )?;
        let number = valid.numero_interne.as_str().to_owned();
        self.number_unused(tenant, payload.dossier, &number).await?;
        match &settings.transport {
            Transport::S2low(config) => {
                let config = config.clone();
                let key = number.clone();
                let id = blocking(move || {
                    let client = S2low::new(&config)?;
                    match client.create_actes(&valid) {
                        Err(Error::Duplicate(_)) => client.existing_actes(&key),
                        other => other,
                    }
                })
                .await?;
                drop(dir);
                Ok(Sent {
                    kind: "actes",
                    transport: "s2low",
                    reference: id.to_string(),
                    match_key: number.clone(),
                    detail: json!({"numero_interne": number}),
                })
            }
            Transport::DropFolder(folder) => {
                let folder = folder.clone();
                let key = number.clone();
                let file = blocking(move || {
                    std::fs::create_dir_all(&folder.outbox)
                        .map_err(|e| Error::io(&folder.outbox, e))?;
                    if let Some(existing) = archive_of(&folder.outbox, &key)? {
                        return Ok(existing);
                    }
                    let package = write_package(&valid, &folder.outbox, None)?;
                    Ok(crate::paths::file_name(&package.path))
                })
                .await?;
                drop(dir);
                Ok(Sent {
                    kind: "actes",
                    transport: "drop_folder",
                    reference: file,
                    match_key: number.clone(),
                    detail: json!({"numero_interne": number}),
                })
            }
        }
    }

    /// Refuses a numéro interne that another dossier of `tenant` already sent an act under:
    /// S²LOW would refuse it (or, on a lost answer, seing would take the other act's
    /// transaction for this one), and a prefecture reached another way takes each number once.
    async fn number_unused(
        &self,
        tenant: TenantId,
        dossier: DossierId,
        number: &str,
    ) -> Result<()> {
        let row = sqlx::query(
            "SELECT t.dossier_id, d.title FROM connector_transmissions t JOIN dossiers d ON d.id = t.dossier_id \
             WHERE t.tenant_id = $1 AND t.kind = 'actes' AND t.match_key = $2 AND t.dossier_id <> $3",
        )
        .bind(tenant.to_string())
        .bind(number.to_owned())
        .bind(dossier.to_string())
        .fetch_optional(self.engine.database().pool())
        .await
        .map_err(storage)?;
        match row {
            None => Ok(()),
            Some(row) => Err(Error::NumberUsed {
                number: number.to_owned(),
                dossier: row.try_get(0).map_err(storage)?,
                title: row.try_get(1).map_err(storage)?,
            }),
        }
    }

    async fn deposit_archive(
        &self,
        job: &Job,
        payload: &Payload,
        round: Option<String>,
    ) -> Result<Sent> {
        let settings = self.settings(job.tenant).await?;
        let archive = settings
            .archive
            .ok_or_else(|| Error::Refused("aucun service d'archives n'est configuré".into()))?;
        let mut message_id = format!("seing-{}-{}", payload.dossier, payload.step);
        if let Some(round) = round {
            message_id = format!("{message_id}-{round}");
        }
        let sent = |transport: &'static str, detail: Value| Sent {
            kind: "archive",
            transport,
            reference: message_id.clone(),
            match_key: message_id.clone(),
            detail,
        };
        if let Some(http) = &archive.http {
            // Built afresh for each attempt; the archive system recognizes a repeat by its
            // MessageIdentifier.
            let staging = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            let target = staging.path().join(&message_id);
            self.write_archive(job, payload, &archive, &message_id, target.clone())
                .await?;
            let (http, id) = (http.clone(), message_id.clone());
            blocking(move || {
                let sent = ArchiveClient::new(&http)?.transfer(&target, &id);
                drop(staging);
                sent
            })
            .await?;
            return Ok(sent("http", json!({})));
        }
        let folder = archive
            .drop_folder
            .as_ref()
            .ok_or_else(|| Error::Refused("aucun transport d'archives n'est configuré".into()))?;
        let target = folder.outbox.join(&message_id);
        if target.join("manifest.xml").is_file() {
            return Ok(sent("drop_folder", json!({"repeat": true})));
        }
        self.write_archive(job, payload, &archive, &message_id, target)
            .await?;
        Ok(sent("drop_folder", json!({})))
    }

    /// Writes the dossier's SEDA package into `target` (absent or empty), whole or not at all.
    async fn write_archive(
        &self,
        job: &Job,
        payload: &Payload,
        archive: &ArchiveSettings,
        message_id: &str,
        target: PathBuf,
    ) -> Result<()> {
        let journal = self
            .engine
            .connector_journal(job.tenant, payload.dossier)
            .await
            .map_err(engine_error)?;
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let documents: Vec<&JobDocument> = payload.documents.iter().collect();
        let paths = self.materialize(&documents, dir.path()).await?;
        let mut files: Vec<SedaFile> = documents
            .iter()
            .zip(paths)
            .map(|(d, path)| SedaFile {
                path,
                role: match d.role {
                    DocumentRole::Main | DocumentRole::Annex => ObjectRole::Document,
                    DocumentRole::Signed => ObjectRole::Signed,
                    DocumentRole::Signature => ObjectRole::Signature,
                },
            })
            .collect();
        let journal_path = dir.path().join("journal-du-dossier.json");
        let journal_json = serde_json::to_vec_pretty(&journal).map_err(storage)?;
        std::fs::write(&journal_path, journal_json).map_err(|e| Error::io(&journal_path, e))?;
        files.push(SedaFile {
            path: journal_path,
            role: ObjectRole::Journal,
        });
        let dates: Vec<&str> = journal
            .iter()
            .map(|e| e.at.get(..10).unwrap_or(""))
            .collect();
        let keywords = payload
            .metadata
            .keys()
            .filter_map(|k| text(&payload.metadata, k).map(|v| format!("{k} : {v}")))
            .collect();
        let meta = SedaMetadata {
            archival_agency: archive.archival_agency.clone(),
            transferring_agency: archive.transferring_agency.clone(),
            originating_agency: archive
                .originating_agency
                .clone()
                .unwrap_or_else(|| archive.transferring_agency.clone()),
            title: payload.title.clone(),
            archival_agreement: archive.archival_agreement.clone(),
            description: None,
            start_date: dates.first().map(|d| (*d).to_owned()),
            end_date: dates.last().map(|d| (*d).to_owned()),
            keywords,
            message_identifier: Some(message_id.to_owned()),
            appraisal_rule: archive.appraisal_rule.clone(),
            access_rule: archive.access_rule.clone(),
        };
        blocking(move || {
            crate::seda::write_package(&meta, &files, &target, OffsetDateTime::now_utc())?;
            drop(dir);
            Ok(())
        })
        .await
    }

    async fn pending(&self) -> Result<Vec<Pending>> {
        let rows = sqlx::query(
            "SELECT dossier_id, step, tenant_id, kind, transport, reference, match_key FROM connector_transmissions \
             WHERE state = 'sent' AND kind <> 'notification' ORDER BY created_at",
        )
        .fetch_all(self.engine.database().pool())
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|r| {
                let get = |i: usize| r.try_get::<String, _>(i).map_err(storage);
                Ok(Pending {
                    dossier: get(0)?.parse().map_err(|_| storage("dossier_id"))?,
                    step: r.try_get(1).map_err(storage)?,
                    tenant: get(2)?.parse().map_err(|_| storage("tenant_id"))?,
                    kind: get(3)?,
                    transport: get(4)?,
                    reference: get(5)?,
                    match_key: get(6)?,
                })
            })
            .collect()
    }

    async fn close(&self, pending: &Pending, state: &str, detail: Value) -> Result<()> {
        sqlx::query(
            "UPDATE connector_transmissions SET state = $1, detail = $2, updated_at = $3 WHERE dossier_id = $4 AND step = $5",
        )
        .bind(state.to_owned())
        .bind(detail.to_string())
        .bind(now_text())
        .bind(pending.dossier.to_string())
        .bind(pending.step)
        .execute(self.engine.database().pool())
        .await
        .map_err(storage)?;
        Ok(())
    }

    /// Stores a received return in the document store (proof of what came back); its SHA-256.
    async fn keep_proof(&self, bytes: &[u8]) -> Result<String> {
        self.engine
            .documents_store()
            .put(bytes.to_vec())
            .await
            .map_err(|e| Error::io("retour", e))
    }

    /// Keeps a received return as proof (in the document store), reports `outcome` to the
    /// engine and closes the send as `state`. A transmission's report comes first in case the
    /// worker has not made it yet (either report made twice is refused by the engine as a
    /// conflict, and ignored); the send is closed last, so that a crash in between reads the
    /// return again at the next pass.
    async fn conclude(
        &self,
        pending: &Pending,
        proof: &[u8],
        reference: &str,
        outcome: ConnectorEvent,
        state: &str,
        mut detail: Value,
    ) -> Result<()> {
        let proof = self.keep_proof(proof).await?;
        let mut events = Vec::new();
        if pending.kind != "archive" {
            events.push(ConnectorEvent::Transmitted);
        }
        events.push(outcome);
        for event in events {
            match self
                .engine
                .connector_report(pending.tenant, pending.dossier, event, reference)
                .await
            {
                Ok(_) | Err(EngineError::Conflict { .. }) => {}
                Err(e) => return Err(engine_error(e)),
            }
        }
        detail["reference"] = json!(reference);
        detail["proof_sha256"] = json!(proof);
        self.close(pending, state, detail).await
    }

    /// An acknowledgement: the dossier moves on.
    async fn acknowledge(&self, pending: &Pending, proof: &[u8], reference: &str) -> Result<()> {
        let ack = ConnectorEvent::Acknowledged;
        self.conclude(pending, proof, reference, ack, "acknowledged", json!({}))
            .await
    }

    /// A refusal: the dossier goes back to its emitter with `reason`.
    async fn refuse(
        &self,
        pending: &Pending,
        proof: &[u8],
        by: Refuser,
        reason: String,
        detail: Value,
    ) -> Result<()> {
        let state = if by == Refuser::Archive {
            "rejected"
        } else {
            "refused"
        };
        let reference = pending.reference.clone();
        let event = ConnectorEvent::Refused { by, reason };
        self.conclude(pending, proof, &reference, event, state, detail)
            .await
    }

    async fn poll_s2low(
        &self,
        pending: &Pending,
        config: &crate::s2low::S2lowConfig,
    ) -> Result<Option<bool>> {
        let config = config.clone();
        let reference = pending.reference.clone();
        if pending.kind == "actes" {
            let id = ActesTransaction(reference.parse().map_err(|_| storage("référence"))?);
            let report = blocking(move || S2low::new(&config)?.actes_status(id)).await?;
            return match report.status.state() {
                TransmissionState::Acknowledged => {
                    let id_acte = match &report.r#return {
                        Some(ActesReturn::Acknowledged(ar)) => ar.id_acte.clone(),
                        _ => format!("s2low:{}", pending.reference),
                    };
                    let proof = report.return_bytes.unwrap_or_default();
                    self.acknowledge(pending, &proof, &id_acte).await?;
                    Ok(Some(true))
                }
                TransmissionState::Refused | TransmissionState::Cancelled => {
                    let reason = actes_refusal(&report);
                    let detail =
                        json!({"status": report.status.to_string(), "message": report.message});
                    let proof = report.return_bytes.unwrap_or_default();
                    self.refuse(pending, &proof, Refuser::Prefecture, reason, detail)
                        .await?;
                    Ok(Some(false))
                }
                _ => Ok(None),
            };
        }
        // A PES known only by its hash (its sending answer was lost) cannot be followed.
        let Ok(number) = reference.parse() else {
            return Ok(None);
        };
        let id = HeliosTransaction(number);
        let status = blocking({
            let config = config.clone();
            move || S2low::new(&config)?.helios_status(id)
        })
        .await?;
        match status.status.state() {
            TransmissionState::Acknowledged | TransmissionState::Refused => {
                let (bytes, acquit) =
                    blocking(move || S2low::new(&config)?.download_acquit(id)).await?;
                if acquit.is_accepted() {
                    self.acknowledge(pending, &bytes, &format!("acquit:{}", pending.reference))
                        .await?;
                    Ok(Some(true))
                } else {
                    let (reason, detail) = acquit_refusal(&acquit);
                    self.refuse(pending, &bytes, Refuser::Dgfip, reason, detail)
                        .await?;
                    Ok(Some(false))
                }
            }
            _ => Ok(None),
        }
    }

    /// Records the archive system's reply on its transfer (a rejection sends the dossier back
    /// to its emitter); true when it accepts the transfer.
    async fn record_reply(
        &self,
        pending: &Pending,
        reply: &TransferReply,
        proof: &[u8],
    ) -> Result<bool> {
        let detail = json!({"reply": reply.message_identifier, "code": reply.reply_code, "comments": reply.comments});
        if reply.outcome != ReplyOutcome::Rejected {
            self.close(pending, "accepted", detail).await?;
            return Ok(true);
        }
        let mut reason = format!("transfert rejeté (code {})", reply.reply_code);
        if !reply.comments.is_empty() {
            reason = format!("{reason} : {}", reply.comments.join(" ; "));
        }
        self.refuse(pending, proof, Refuser::Archive, reason, detail)
            .await?;
        Ok(false)
    }

    /// Asks the archive system for the reply to a transfer sent by HTTP; whether it accepts
    /// the transfer once it has replied.
    async fn poll_archive_http(
        &self,
        pending: &Pending,
        http: &ArchiveHttp,
    ) -> Result<Option<bool>> {
        let (http, id) = (http.clone(), pending.match_key.clone());
        let Some(bytes) = blocking(move || ArchiveClient::new(&http)?.reply(&id)).await? else {
            return Ok(None);
        };
        let reply = parse_reply(&bytes)?;
        if reply.message_request_identifier != pending.match_key {
            return Err(Error::Format(format!(
                "le service d'archives répond à « {} » pour le transfert {}",
                reply.message_request_identifier, pending.match_key
            )));
        }
        self.record_reply(pending, &reply, &bytes).await.map(Some)
    }

    /// Records the prefecture's acknowledgement (`ARAnnulation`) that an act it had
    /// acknowledged was cancelled, a cancellation made outside seing: the send is marked
    /// `cancelled`, the return kept as proof and the dossier's journal says so; the dossier
    /// keeps its state. False when no act acknowledged through a drop folder has this `IDActe`.
    async fn record_cancellation(&self, cancel: &ArAnnulation, proof: &[u8]) -> Result<bool> {
        let Some(number) = numero_in(&cancel.id_acte) else {
            return Ok(false);
        };
        let rows = sqlx::query(
            "SELECT dossier_id, step, tenant_id, detail FROM connector_transmissions \
             WHERE kind = 'actes' AND transport = 'drop_folder' AND state = 'acknowledged' AND match_key = $1",
        )
        .bind(number.to_owned())
        .fetch_all(self.engine.database().pool())
        .await
        .map_err(storage)?;
        let detail_of = |row: &sqlx::any::AnyRow| {
            row.try_get::<String, _>(3)
                .ok()
                .and_then(|d| serde_json::from_str::<Value>(&d).ok())
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}))
        };
        let Some(row) = rows
            .iter()
            .find(|row| detail_of(row)["reference"] == cancel.id_acte.as_str())
        else {
            return Ok(false);
        };
        let text = |i: usize| row.try_get::<String, _>(i).map_err(storage);
        let dossier: DossierId = text(0)?.parse().map_err(|_| storage("dossier_id"))?;
        let tenant: TenantId = text(2)?.parse().map_err(|_| storage("tenant_id"))?;
        let step: i64 = row.try_get(1).map_err(storage)?;
        let proof = self.keep_proof(proof).await?;
        let received = cancel.date_reception.to_string();
        let mut detail = detail_of(row);
        detail["cancellation"] = json!({"date_reception": received, "proof_sha256": proof});
        let mut tx = self
            .engine
            .database()
            .begin_write()
            .await
            .map_err(storage)?;
        sqlx::query(
            "UPDATE connector_transmissions SET state = 'cancelled', detail = $1, updated_at = $2 \
             WHERE dossier_id = $3 AND step = $4 AND state = 'acknowledged'",
        )
        .bind(detail.to_string())
        .bind(now_text())
        .bind(dossier.to_string())
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        let note = json!({"step": step, "reference": cancel.id_acte, "date_reception": received});
        self.engine
            .connector_note(
                &mut tx,
                tenant,
                dossier,
                None,
                "transmission.cancelled",
                note,
            )
            .await
            .map_err(engine_error)?;
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    /// Handles one inbox file against the waiting sends; true when it matched one.
    async fn take_return(
        &self,
        file: &InboxFile,
        pending: &[Pending],
        run: &mut PollRun,
    ) -> Result<bool> {
        let Ok(parsed) = &file.parsed else {
            return Ok(false);
        };
        let matching = |kind: &str, key: &str| {
            pending
                .iter()
                .find(|p| p.transport == "drop_folder" && p.kind == kind && p.match_key == key)
        };
        match parsed {
            Return::Actes(ActesReturn::Acknowledged(ar)) => {
                let Some(p) = matching("actes", &ar.acte.numero_interne) else {
                    return Ok(false);
                };
                self.acknowledge(p, &file.bytes, &ar.id_acte).await?;
                run.acknowledged += 1;
            }
            Return::Actes(ActesReturn::Anomaly(anomaly)) => {
                let Some(p) = matching("actes", &anomaly.acte.numero_interne) else {
                    return Ok(false);
                };
                let detail = json!({"nature": anomaly.nature, "detail": anomaly.detail});
                let reason = anomaly_reason(anomaly);
                self.refuse(p, &file.bytes, Refuser::Prefecture, reason, detail)
                    .await?;
                run.refused += 1;
            }
            Return::Actes(ActesReturn::EnvelopeAnomaly(anomaly)) => {
                // The refused envelope lists the act's message, named after its numéro interne.
                let Some(p) = anomaly
                    .forms
                    .iter()
                    .filter_map(|form| numero_in(form))
                    .find_map(|number| matching("actes", number))
                else {
                    return Ok(false);
                };
                let detail = json!({"nature": anomaly.nature, "detail": anomaly.detail, "forms": anomaly.forms});
                let reason = match &anomaly.detail {
                    Some(text) => format!("anomalie d'enveloppe {} : {text}", anomaly.nature),
                    None => format!("anomalie d'enveloppe {}", anomaly.nature),
                };
                self.refuse(p, &file.bytes, Refuser::Prefecture, reason, detail)
                    .await?;
                run.refused += 1;
            }
            Return::Actes(ActesReturn::CancellationAcknowledged(cancel)) => {
                if !self.record_cancellation(cancel, &file.bytes).await? {
                    return Ok(false);
                }
                run.cancelled += 1;
            }
            Return::Helios(acquit) => {
                let Some(p) = acquit
                    .file_name
                    .as_deref()
                    .and_then(|name| matching("helios", name))
                else {
                    return Ok(false);
                };
                if acquit.is_accepted() {
                    self.acknowledge(p, &file.bytes, &format!("acquit:{}", p.reference))
                        .await?;
                    run.acknowledged += 1;
                } else {
                    let (reason, detail) = acquit_refusal(acquit);
                    self.refuse(p, &file.bytes, Refuser::Dgfip, reason, detail)
                        .await?;
                    run.refused += 1;
                }
            }
            Return::Seda(reply) => {
                let Some(p) = matching("archive", &reply.message_request_identifier) else {
                    return Ok(false);
                };
                if self.record_reply(p, reply, &file.bytes).await? {
                    run.accepted += 1;
                } else {
                    run.refused += 1;
                }
            }
        }
        Ok(true)
    }

    /// One pass over every send still waiting: asks S²LOW, reads the drop folders' inboxes,
    /// reports acknowledgements to the engine and records refusals with their reasons.
    pub async fn poll(&self) -> Result<PollRun> {
        let mut run = PollRun {
            expired: crate::notification::expire(&self.engine).await?,
            ..PollRun::default()
        };
        let pending = self.pending().await?;
        let mut inboxes: Vec<DropFolder> = Vec::new();
        for p in &pending {
            let Some(settings) = settings(&self.engine, p.tenant).await? else {
                continue;
            };
            if p.kind == "archive" && p.transport == "http" {
                let Some(http) = settings.archive.and_then(|a| a.http) else {
                    run.waiting += 1;
                    continue;
                };
                match self.poll_archive_http(p, &http).await {
                    Ok(Some(true)) => run.accepted += 1,
                    Ok(Some(false)) => run.refused += 1,
                    Ok(None) | Err(Error::Transport(_)) => run.waiting += 1,
                    Err(e) => return Err(e),
                }
                continue;
            }
            let transport = match p.kind.as_str() {
                "actes" => settings.actes.map(|a| a.transport),
                "helios" => settings.helios.map(|h| h.transport),
                _ => settings
                    .archive
                    .and_then(|a| a.drop_folder)
                    .map(Transport::DropFolder),
            };
            match (p.transport.as_str(), transport) {
                ("s2low", Some(Transport::S2low(config))) => {
                    match self.poll_s2low(p, &config).await {
                        Ok(Some(true)) => run.acknowledged += 1,
                        Ok(Some(false)) => run.refused += 1,
                        Ok(None) | Err(Error::Transport(_)) => run.waiting += 1,
                        Err(e) => return Err(e),
                    }
                }
                (_, Some(Transport::DropFolder(folder))) => {
                    if !inboxes.contains(&folder) {
                        inboxes.push(folder);
                    }
                }
                _ => run.waiting += 1,
            }
        }
        // The prefecture may acknowledge an act's cancellation long after the act itself,
        // with nothing else waiting: every @ctes inbox is read.
        let tenants = sqlx::query("SELECT tenant_id FROM connector_settings")
            .fetch_all(self.engine.database().pool())
            .await
            .map_err(storage)?;
        for row in &tenants {
            let tenant: TenantId = row
                .try_get::<String, _>(0)
                .map_err(storage)?
                .parse()
                .map_err(|_| storage("tenant_id"))?;
            let actes = settings(&self.engine, tenant).await?.and_then(|s| s.actes);
            if let Some(Transport::DropFolder(folder)) = actes.map(|a| a.transport)
                && !inboxes.contains(&folder)
            {
                inboxes.push(folder);
            }
        }
        for folder in inboxes {
            let files = blocking({
                let folder = folder.clone();
                move || folder.returns()
            })
            .await?;
            for file in files {
                if self.take_return(&file, &pending, &mut run).await? {
                    folder.done(&file)?;
                }
            }
        }
        Ok(run)
    }
}

/// The numéro interne in an @ctes name built as `<dept>-<SIREN>-<date>-<numéro>-<nature>…`
/// (the messages an envelope lists, an act's `IDActe`); a numéro has no hyphen.
fn numero_in(name: &str) -> Option<&str> {
    name.split('-').nth(3).filter(|n| !n.is_empty())
}

/// The prefecture's reason in an `AnomalieActe`: its nature code and its detail.
fn anomaly_reason(anomaly: &crate::actes::AnomalieActe) -> String {
    match &anomaly.detail {
        Some(detail) => format!("anomalie {} : {detail}", anomaly.nature),
        None => format!("anomalie {}", anomaly.nature),
    }
}

/// The reason of a refused or cancelled Actes transaction, as S²LOW gives it.
fn actes_refusal(report: &crate::s2low::ActesStatusReport) -> String {
    match (&report.r#return, &report.message) {
        (Some(ActesReturn::Anomaly(anomaly)), _) => anomaly_reason(anomaly),
        (_, Some(message)) if !message.is_empty() => message.clone(),
        _ if report.status.state() == TransmissionState::Cancelled => {
            "transmission annulée sur S²LOW".to_owned()
        }
        _ => format!("transmission refusée par S²LOW (statut {})", report.status),
    }
}

/// The DGFiP's reasons for refusing a PES (each error's label, else its code), and the detail
/// kept with the send.
fn acquit_refusal(acquit: &crate::helios::Acquit) -> (String, Value) {
    let reasons: Vec<String> = acquit
        .refused()
        .flat_map(|e| {
            e.errors
                .iter()
                .filter_map(|r| r.label.clone().or_else(|| r.code.clone()))
        })
        .collect();
    let reason = if reasons.is_empty() {
        "PES refusé par la DGFiP (acquit sans motif)".to_owned()
    } else {
        reasons.join(" ; ")
    };
    (reason, json!({"reasons": reasons}))
}

/// The archive already in `outbox` for the act numbered `number`, if any.
fn archive_of(outbox: &Path, number: &str) -> Result<Option<String>> {
    let entries = std::fs::read_dir(outbox).map_err(|e| Error::io(outbox, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(outbox, e))?.path();
        let name = crate::paths::file_name(&path);
        if name.ends_with(".tar.gz")
            && !name.starts_with('.')
            && read_archive(&path).is_ok_and(|a| a.acte.numero_interne == number)
        {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

impl Transmitter for Connectors {
    async fn transmit(
        &self,
        job: &Job,
        channel: Channel,
    ) -> std::result::Result<Receipt, DeliveryError> {
        let payload = Payload::of(job)?;
        let recorded = self.recorded(job, &payload).await.map_err(delivery)?;
        if let Recorded::ThisJob(reference) = recorded {
            return Ok(Receipt { reference });
        }
        let settings = self.settings(job.tenant).await.map_err(delivery)?;
        let sent = match channel {
            Channel::Helios => {
                let helios = settings.helios.ok_or_else(|| {
                    DeliveryError::permanent("aucun connecteur Hélios n'est configuré")
                })?;
                self.send_helios(&helios, &payload, recorded.round(job))
                    .await
            }
            Channel::Actes => {
                let actes = settings.actes.ok_or_else(|| {
                    DeliveryError::permanent("aucun connecteur @ctes n'est configuré")
                })?;
                self.send_actes(job.tenant, &actes, &payload).await
            }
        }
        .map_err(delivery)?;
        self.record(job, &payload, sent).await.map_err(delivery)
    }
}

impl Archiver for Connectors {
    async fn archive(&self, job: &Job) -> std::result::Result<Receipt, DeliveryError> {
        let payload = Payload::of(job)?;
        let recorded = self.recorded(job, &payload).await.map_err(delivery)?;
        if let Recorded::ThisJob(reference) = recorded {
            return Ok(Receipt { reference });
        }
        let sent = self
            .deposit_archive(job, &payload, recorded.round(job))
            .await
            .map_err(delivery)?;
        self.record(job, &payload, sent).await.map_err(delivery)
    }
}

impl Notifier for Connectors {
    async fn notify(&self, job: &Job) -> std::result::Result<Receipt, DeliveryError> {
        let payload = Payload::of(job)?;
        let settings = self
            .settings(job.tenant)
            .await
            .map_err(delivery)?
            .notification
            .ok_or_else(|| {
                DeliveryError::permanent("aucun envoi de notification n'est configuré")
            })?;
        let recipient = text(&payload.metadata, "destinataire_email")
            .or_else(|| text(&payload.metadata, "destinataire"))
            .ok_or_else(|| {
                DeliveryError::permanent("métadonnée « destinataire_email » absente du dossier")
            })?;
        let document = signed_or_main(&payload.documents)
            .ok_or_else(|| DeliveryError::permanent("le dossier n'a pas de document"))?;
        let outgoing = crate::notification::Outgoing {
            tenant: job.tenant,
            dossier: payload.dossier,
            step: payload.step,
            title: &payload.title,
            recipient: &recipient,
            document: (&document.name, &document.sha256),
            job_key: &job.idempotency_key,
        };
        let recipient = crate::notification::send(&self.engine, &settings, &outgoing)
            .await
            .map_err(delivery)?;
        Ok(Receipt {
            reference: format!("mail:{recipient}"),
        })
    }
}
