//! Dossiers: creation, submission and every action on them (visa, sign, seal, reject, undo,
//! transfer, second opinion, annotate, bypass, delete, recycle), each in one transaction with
//! its journal entry and outbox jobs, plus reading and listing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::circuit::StepAction;
use crate::clock::parse_time;
use crate::engine::{ActingAs, Engine, UserCtx, db_time, json_col, parse_col, time_col, to_json};
use crate::error::{EngineError, EngineResult};
use crate::ids::{AnnotationId, CircuitId, DeskId, DossierId, OpinionId, TenantId, UserId};
use crate::journal::{self, JournalEntry, NewEntry};
use crate::metadata::Metadata;
use crate::model::{
    ActionInput, Actor, Annotation, Document, DocumentRole, Dossier, DossierSummary, InboxReason,
    NewDocument, NewDossier, Opinion, Page, Rejection, SignedOutput, Visibility,
};
use crate::outbox::{self, JobKind};
use crate::webhooks::{self, WebhookEvent};
use crate::workflow::{
    Advance, ConnectorEvent, DossierState, Progress, RejectionOrigin, resolve_steps,
};

/// A dossier at a signature or seal step, as a signature batch sees it.
#[derive(Debug, Clone)]
pub(crate) struct SigningTarget {
    /// The version the signature is prepared for: a change in between refuses the signature.
    pub version: i64,
    pub step: usize,
    pub action: StepAction,
    pub profile: Option<crate::circuit::SignatureProfile>,
    pub level: Option<crate::circuit::SignatureLevel>,
    pub main: Document,
}

/// What the last step action changed, so that its author can take it back (*droit de remords*).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UndoPoint {
    user: UserId,
    desk: DeskId,
    previous: Progress,
    metadata: Metadata,
    documents: Vec<String>,
}

/// A dossier as stored, with its workflow position.
#[derive(Debug, Clone)]
struct Stored {
    id: DossierId,
    tenant: TenantId,
    circuit: CircuitId,
    title: String,
    emitter_desk: DeskId,
    emitter_user: UserId,
    progress: Progress,
    metadata: Metadata,
    chosen: BTreeMap<String, DeskId>,
    undo: Option<UndoPoint>,
    rejection: Option<Rejection>,
    deadline: Option<OffsetDateTime>,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

pub(crate) fn is_late(
    state: DossierState,
    deadline: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    matches!(state, DossierState::Draft | DossierState::Pending)
        && deadline.is_some_and(|d| d < now)
}

impl Stored {
    fn view(&self, now: OffsetDateTime) -> Dossier {
        Dossier {
            id: self.id,
            circuit: self.circuit,
            title: self.title.clone(),
            emitter_desk: self.emitter_desk,
            emitter_user: self.emitter_user,
            state: self.progress.state,
            current_step: self.progress.current_step,
            steps: self.progress.steps.clone(),
            metadata: self.metadata.clone(),
            chosen_desks: self.chosen.clone(),
            deadline: self.deadline,
            late: is_late(self.progress.state, self.deadline, now),
            rejection: self.rejection.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Every desk involved: the emitter and the desks of every step.
    fn involved_desks(&self) -> Vec<DeskId> {
        let mut desks = vec![self.emitter_desk];
        desks.extend(
            self.progress
                .steps
                .iter()
                .flat_map(|s| s.desks.iter().copied()),
        );
        desks
    }

    /// Desks whose list shows the dossier now, and why.
    fn inbox(&self) -> Vec<(DeskId, InboxReason)> {
        match self.progress.state {
            DossierState::Draft => vec![(self.emitter_desk, InboxReason::Draft)],
            DossierState::Rejected => vec![(self.emitter_desk, InboxReason::Rejected)],
            DossierState::Pending => self
                .progress
                .waiting_desks()
                .into_iter()
                .map(|d| (d, InboxReason::Act))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One change to write with a dossier: the journal entry and the jobs.
struct Change {
    action: &'static str,
    acting: Option<ActingAs>,
    user: Option<UserId>,
    detail: serde_json::Value,
    jobs: Vec<(JobKind, serde_json::Value, String)>,
}

fn state_conflict(state: DossierState, wanted: &str) -> EngineError {
    EngineError::conflict(format!(
        "le dossier est à l'état « {} » : {wanted}",
        state.as_str()
    ))
}

fn check_version(stored: &Stored, expected: Option<i64>) -> EngineResult<()> {
    match expected {
        Some(v) if v != stored.version => Err(EngineError::conflict(format!(
            "le dossier a changé entre-temps (version {} attendue, {} actuelle)",
            v, stored.version
        ))),
        _ => Ok(()),
    }
}

fn check_required(metadata: &Metadata, required: &[String], purpose: &str) -> EngineResult<()> {
    match required.iter().find(|k| !metadata.contains_key(*k)) {
        Some(missing) => Err(EngineError::invalid(
            format!("metadata.{missing}"),
            format!("métadonnée requise pour {purpose}"),
        )),
        None => Ok(()),
    }
}

fn check_document(field: &str, doc: &NewDocument) -> EngineResult<()> {
    if doc.name.trim().is_empty() {
        return Err(EngineError::invalid(
            format!("{field}.name"),
            "nom de fichier vide",
        ));
    }
    if doc.bytes.is_empty() {
        return Err(EngineError::invalid(
            format!("{field}.bytes"),
            "document vide",
        ));
    }
    Ok(())
}

/// The step actions performed by a desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepVerb {
    Visa,
    Sign,
    Seal,
}

impl StepVerb {
    fn action(self) -> StepAction {
        match self {
            Self::Visa => StepAction::Visa,
            Self::Sign => StepAction::Signature,
            Self::Seal => StepAction::Seal,
        }
    }

    fn journal(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Sign => "sign",
            Self::Seal => "seal",
        }
    }
}

/// A connector job for step `step` of `stored`, with the documents to send.
fn connector_job(
    stored: &Stored,
    step: usize,
    documents: &[Document],
) -> Option<(JobKind, serde_json::Value, String)> {
    let instance = stored.progress.steps.get(step)?;
    let kind = match instance.action {
        StepAction::Transmission => JobKind::Transmission,
        StepAction::Notification => JobKind::Notification,
        StepAction::Archive => JobKind::Archive,
        _ => return None,
    };
    let payload = json!({
        "dossier": stored.id,
        "step": step,
        "channel": instance.channel,
        "title": stored.title,
        "metadata": stored.metadata,
        "documents": documents,
    });
    Some((
        kind,
        payload,
        // The version makes the key unique per change; a re-delivery of the same row keeps it.
        format!(
            "{}:{}:{step}:{}",
            stored.id,
            kind.as_str(),
            stored.version + 1
        ),
    ))
}

/// A webhook event of `stored` after the change being saved; `extra` (an object) adds the
/// event's own fields. `save` turns it into one job per subscription that takes it.
fn webhook(
    stored: &Stored,
    event: WebhookEvent,
    extra: serde_json::Value,
) -> (JobKind, serde_json::Value, String) {
    let mut payload = json!({
        "event": event.as_str(),
        "dossier": {
            "id": stored.id,
            "title": stored.title,
            "circuit": stored.circuit,
            "state": stored.progress.state,
            "current_step": stored.progress.current_step,
            "version": stored.version + 1,
        },
    });
    if let (Some(body), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra) {
        body.extend(extra);
    }
    (
        JobKind::Webhook,
        payload,
        format!("{}:{}:{}", stored.id, event.as_str(), stored.version + 1),
    )
}

impl Engine {
    async fn load_dossier(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        id: DossierId,
        lock: bool,
    ) -> EngineResult<Stored> {
        let sql = format!(
            "SELECT id, circuit_id, title, emitter_desk, emitter_user, state, current_step, steps, metadata, chosen, undo, deadline, version, created_at, updated_at, rejection \
             FROM dossiers WHERE id = $1 AND tenant_id = $2{}",
            if lock { self.db.for_update() } else { "" }
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(EngineError::NotFound { entity: "dossier" })?;
        let state: String = row.try_get(5)?;
        let current_step: i64 = row.try_get(6)?;
        let undo: Option<String> = row.try_get(10)?;
        let deadline: Option<String> = row.try_get(11)?;
        let rejection: Option<String> = row.try_get(15)?;
        Ok(Stored {
            id: parse_col(&row, 0)?,
            tenant,
            circuit: parse_col(&row, 1)?,
            title: row.try_get(2)?,
            emitter_desk: parse_col(&row, 3)?,
            emitter_user: parse_col(&row, 4)?,
            progress: Progress {
                state: DossierState::parse(&state)
                    .ok_or_else(|| EngineError::Corrupted(format!("state `{state}`")))?,
                current_step: usize::try_from(current_step)
                    .map_err(|_| EngineError::Corrupted("negative step".into()))?,
                steps: json_col(&row, 7)?,
            },
            metadata: json_col(&row, 8)?,
            chosen: json_col(&row, 9)?,
            undo: undo
                .map(|u| serde_json::from_str(&u))
                .transpose()
                .map_err(|e| EngineError::Corrupted(e.to_string()))?,
            rejection: rejection
                .map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(|e| EngineError::Corrupted(e.to_string()))?,
            deadline: deadline
                .map(|d| {
                    parse_time(&d).ok_or_else(|| EngineError::Corrupted(format!("deadline `{d}`")))
                })
                .transpose()?,
            version: row.try_get(12)?,
            created_at: time_col(&row, 13)?,
            updated_at: time_col(&row, 14)?,
        })
    }

    /// Writes the dossier if nobody changed it since it was read (version check), refreshes
    /// the desks' lists, appends the journal entry and enqueues the jobs.
    async fn save(
        &self,
        conn: &mut AnyConnection,
        stored: &mut Stored,
        change: Change,
        now: OffsetDateTime,
    ) -> EngineResult<JournalEntry> {
        let at = db_time(now);
        let updated = sqlx::query(
            "UPDATE dossiers SET title = $1, state = $2, current_step = $3, steps = $4, metadata = $5, undo = $6, version = version + 1, updated_at = $7, rejection = $11 \
             WHERE id = $8 AND tenant_id = $9 AND version = $10",
        )
        .bind(stored.title.clone())
        .bind(stored.progress.state.as_str())
        .bind(stored.progress.current_step as i64)
        .bind(to_json(&stored.progress.steps)?)
        .bind(to_json(&stored.metadata)?)
        .bind(stored.undo.as_ref().map(to_json).transpose()?)
        .bind(at.clone())
        .bind(stored.id.to_string())
        .bind(stored.tenant.to_string())
        .bind(stored.version)
        .bind(stored.rejection.as_ref().map(to_json).transpose()?)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(EngineError::conflict(
                "le dossier a été modifié par une autre action",
            ));
        }
        for (kind, payload, key) in &change.jobs {
            match kind {
                JobKind::Webhook => {
                    webhooks::enqueue_event(
                        conn,
                        stored.tenant,
                        Some(stored.id),
                        payload,
                        key,
                        now,
                    )
                    .await?;
                }
                _ => {
                    outbox::enqueue(
                        conn,
                        stored.tenant,
                        Some(stored.id),
                        *kind,
                        payload,
                        key,
                        now,
                    )
                    .await?;
                }
            }
        }
        stored.version += 1;
        stored.updated_at = now;
        self.refresh_inbox(conn, stored).await?;
        let entry = journal::append(
            conn,
            NewEntry {
                tenant: stored.tenant,
                at,
                user: change.user,
                desk: change.acting.map(|a| a.from),
                on_behalf_of: change.acting.and_then(|a| a.on_behalf_of),
                dossier: Some(stored.id),
                action: change.action,
                detail: change.detail,
            },
        )
        .await?;
        Ok(entry)
    }

    async fn refresh_inbox(&self, conn: &mut AnyConnection, stored: &Stored) -> EngineResult<()> {
        sqlx::query("DELETE FROM inbox WHERE dossier_id = $1 AND reason <> 'opinion'")
            .bind(stored.id.to_string())
            .execute(&mut *conn)
            .await?;
        for (desk, reason) in stored.inbox() {
            sqlx::query(
                "INSERT INTO inbox (tenant_id, desk_id, dossier_id, reason) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, desk_id, dossier_id) DO UPDATE SET reason = excluded.reason",
            )
            .bind(stored.tenant.to_string())
            .bind(desk.to_string())
            .bind(stored.id.to_string())
            .bind(reason.as_str())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn insert_document(
        conn: &mut AnyConnection,
        stored: &Stored,
        role: DocumentRole,
        doc: &NewDocument,
        sha256: &str,
        step: Option<usize>,
        now: OffsetDateTime,
    ) -> EngineResult<Document> {
        let document = Document {
            id: uuid::Uuid::now_v7().to_string(),
            role,
            name: doc.name.clone(),
            media_type: doc.media_type.clone(),
            sha256: sha256.to_owned(),
            size: doc.bytes.len() as i64,
            step,
        };
        sqlx::query(
            "INSERT INTO documents (id, tenant_id, dossier_id, role, name, media_type, sha256, size, step, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(document.id.clone())
        .bind(stored.tenant.to_string())
        .bind(stored.id.to_string())
        .bind(role.as_str())
        .bind(document.name.clone())
        .bind(document.media_type.clone())
        .bind(document.sha256.clone())
        .bind(document.size)
        .bind(step.map(|s| s as i64))
        .bind(db_time(now))
        .execute(&mut *conn)
        .await?;
        Ok(document)
    }

    async fn load_documents(
        conn: &mut AnyConnection,
        dossier: DossierId,
    ) -> EngineResult<Vec<Document>> {
        let rows = sqlx::query(
            "SELECT id, role, name, media_type, sha256, size, step FROM documents WHERE dossier_id = $1 ORDER BY id",
        )
        .bind(dossier.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get(1)?;
                let step: Option<i64> = row.try_get(6)?;
                Ok(Document {
                    id: row.try_get(0)?,
                    role: DocumentRole::parse(&role)
                        .ok_or_else(|| EngineError::Corrupted(format!("document role `{role}`")))?,
                    name: row.try_get(2)?,
                    media_type: row.try_get(3)?,
                    sha256: row.try_get(4)?,
                    size: row.try_get(5)?,
                    step: step.and_then(|s| usize::try_from(s).ok()),
                })
            })
            .collect()
    }

    /// Creates a draft dossier. The documents are stored before the transaction commits.
    pub async fn create_dossier(&self, actor: Actor, new: NewDossier) -> EngineResult<Dossier> {
        if new.title.trim().is_empty() {
            return Err(EngineError::invalid("title", "titre vide"));
        }
        check_document("main", &new.main)?;
        for (i, annex) in new.annexes.iter().enumerate() {
            check_document(&format!("annexes[{i}]"), annex)?;
        }
        let main_hash = self.docs.put(new.main.bytes.clone()).await?;
        let mut annex_hashes = Vec::with_capacity(new.annexes.len());
        for annex in &new.annexes {
            annex_hashes.push(self.docs.put(annex.bytes.clone()).await?);
        }
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let user = Self::load_user(&mut tx, actor).await?;
        let circuit = Self::load_circuit(&mut tx, actor.tenant, new.circuit).await?;
        Self::desk_exists(&mut tx, actor.tenant, new.emitter_desk).await?;
        for desk in new.chosen_desks.values() {
            Self::desk_exists(&mut tx, actor.tenant, *desk).await?;
        }
        let acting = self
            .acting_as(
                &mut tx,
                actor.tenant,
                &user,
                &[new.emitter_desk],
                Some(circuit.id),
                now,
            )
            .await?;
        let mut stored = Stored {
            id: DossierId::new(),
            tenant: actor.tenant,
            circuit: circuit.id,
            title: new.title,
            emitter_desk: new.emitter_desk,
            emitter_user: actor.user,
            progress: Progress::draft(),
            metadata: new.metadata,
            chosen: new.chosen_desks,
            undo: None,
            rejection: None,
            deadline: new.deadline,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO dossiers (id, tenant_id, circuit_id, title, emitter_desk, emitter_user, state, current_step, steps, metadata, chosen, undo, deadline, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, '[]', $8, $9, NULL, $10, 0, $11, $11)",
        )
        .bind(stored.id.to_string())
        .bind(actor.tenant.to_string())
        .bind(circuit.id.to_string())
        .bind(stored.title.clone())
        .bind(stored.emitter_desk.to_string())
        .bind(actor.user.to_string())
        .bind(DossierState::Draft.as_str())
        .bind(to_json(&stored.metadata)?)
        .bind(to_json(&stored.chosen)?)
        .bind(stored.deadline.map(db_time))
        .bind(db_time(now))
        .execute(&mut *tx)
        .await?;
        let mut hashes = vec![
            Self::insert_document(
                &mut tx,
                &stored,
                DocumentRole::Main,
                &new.main,
                &main_hash,
                None,
                now,
            )
            .await?
            .sha256,
        ];
        for (annex, hash) in new.annexes.iter().zip(&annex_hashes) {
            Self::insert_document(
                &mut tx,
                &stored,
                DocumentRole::Annex,
                annex,
                hash,
                None,
                now,
            )
            .await?;
            hashes.push(hash.clone());
        }
        let change = Change {
            action: "create",
            acting: Some(acting),
            user: Some(user.id),
            detail: json!({"title": stored.title, "circuit": circuit.name, "documents": hashes}),
            jobs: vec![webhook(&stored, WebhookEvent::DossierCreated, json!({}))],
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// Locks a dossier and the user for an action.
    async fn begin_action(
        &self,
        actor: Actor,
        id: DossierId,
    ) -> EngineResult<(sqlx::Transaction<'static, sqlx::Any>, UserCtx, Stored)> {
        let mut tx = self.db.begin_write().await?;
        let user = Self::load_user(&mut tx, actor).await?;
        let stored = self.load_dossier(&mut tx, actor.tenant, id, true).await?;
        Ok((tx, user, stored))
    }

    /// The emitter desk (or an administrator) manages drafts and rejected dossiers.
    /// Checks that the actor may look at `desk`: it exists in the tenant, and the actor holds it,
    /// acts for it through an active delegation, or administers the tenant.
    pub(crate) async fn check_desk_view(
        &self,
        conn: &mut AnyConnection,
        actor: Actor,
        desk: DeskId,
        now: OffsetDateTime,
    ) -> EngineResult<()> {
        let user = Self::load_user(conn, actor).await?;
        Self::desk_exists(conn, actor.tenant, desk).await?;
        if !user.admin {
            self.acting_as(conn, actor.tenant, &user, &[desk], None, now)
                .await
                .map_err(|_| EngineError::forbidden("vous ne détenez pas ce bureau"))?;
        }
        Ok(())
    }

    async fn acting_as_emitter(
        &self,
        conn: &mut AnyConnection,
        user: &UserCtx,
        stored: &Stored,
        now: OffsetDateTime,
    ) -> EngineResult<ActingAs> {
        self.acting_as(
            conn,
            stored.tenant,
            user,
            &[stored.emitter_desk],
            Some(stored.circuit),
            now,
        )
        .await
        .map_err(|_| EngineError::forbidden("seul le bureau émetteur gère ce dossier"))
    }

    /// Sends a draft into its circuit: conditions are evaluated and desks resolved now.
    pub async fn submit(
        &self,
        actor: Actor,
        id: DossierId,
        version: Option<i64>,
    ) -> EngineResult<Dossier> {
        let now = self.now();
        let (mut tx, user, mut stored) = self.begin_action(actor, id).await?;
        check_version(&stored, version)?;
        if stored.progress.state != DossierState::Draft {
            return Err(state_conflict(
                stored.progress.state,
                "seul un brouillon peut être envoyé",
            ));
        }
        let acting = self.acting_as_emitter(&mut tx, &user, &stored, now).await?;
        let circuit = Self::load_circuit(&mut tx, actor.tenant, stored.circuit).await?;
        let parent: Option<DeskId> = sqlx::query("SELECT parent_id FROM desks WHERE id = $1")
            .bind(stored.emitter_desk.to_string())
            .fetch_one(&mut *tx)
            .await
            .map(|row| crate::engine::parse_opt_col(&row, 0))??;
        let steps = resolve_steps(
            &circuit.spec,
            stored.emitter_desk,
            parent,
            &stored.chosen,
            &stored.metadata,
        )?;
        let advance = stored.progress.submit(steps);
        let docs = Self::load_documents(&mut tx, stored.id).await?;
        let mut jobs = vec![webhook(&stored, WebhookEvent::DossierSubmitted, json!({}))];
        if let Advance::Done(Some(step)) = advance {
            jobs.extend(connector_job(&stored, step, &docs));
        }
        let change = Change {
            action: "submit",
            acting: Some(acting),
            user: Some(user.id),
            detail: json!({"steps": stored.progress.steps.len()}),
            jobs,
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// Visa of the current step.
    pub async fn visa(
        &self,
        actor: Actor,
        id: DossierId,
        input: ActionInput,
    ) -> EngineResult<Dossier> {
        self.step_action(actor, id, StepVerb::Visa, input, SignedOutput::default())
            .await
    }

    /// Signature of the current step: records the signed documents and signature files made
    /// by the caller (the engine does not sign).
    pub async fn sign(
        &self,
        actor: Actor,
        id: DossierId,
        input: ActionInput,
        output: SignedOutput,
    ) -> EngineResult<Dossier> {
        self.step_action(actor, id, StepVerb::Sign, input, output)
            .await
    }

    /// Server seal of the current step, triggered by a desk; records the sealed documents.
    pub async fn seal(
        &self,
        actor: Actor,
        id: DossierId,
        input: ActionInput,
        output: SignedOutput,
    ) -> EngineResult<Dossier> {
        self.step_action(actor, id, StepVerb::Seal, input, output)
            .await
    }

    async fn step_action(
        &self,
        actor: Actor,
        id: DossierId,
        verb: StepVerb,
        input: ActionInput,
        output: SignedOutput,
    ) -> EngineResult<Dossier> {
        let produced: Vec<(DocumentRole, &NewDocument)> = output
            .documents
            .iter()
            .map(|d| (DocumentRole::Signed, d))
            .chain(
                output
                    .signatures
                    .iter()
                    .map(|d| (DocumentRole::Signature, d)),
            )
            .collect();
        match verb {
            StepVerb::Visa if !produced.is_empty() => {
                return Err(EngineError::invalid(
                    "documents",
                    "un visa ne produit pas de document",
                ));
            }
            StepVerb::Sign | StepVerb::Seal if produced.is_empty() => {
                return Err(EngineError::invalid(
                    "documents",
                    "fournir le document signé ou le fichier de signature",
                ));
            }
            _ => {}
        }
        for (i, (_, doc)) in produced.iter().enumerate() {
            check_document(&format!("documents[{i}]"), doc)?;
        }
        // Written before the transaction: a committed row never points at a missing file.
        let mut hashes = Vec::with_capacity(produced.len());
        for (_, doc) in &produced {
            hashes.push(self.docs.put(doc.bytes.clone()).await?);
        }
        let now = self.now();
        let (mut tx, user, mut stored) = self.begin_action(actor, id).await?;
        check_version(&stored, input.version)?;
        if stored.progress.state != DossierState::Pending {
            return Err(state_conflict(
                stored.progress.state,
                "aucune étape n'attend d'action",
            ));
        }
        let step_index = stored.progress.current_step;
        let step = stored
            .progress
            .current()
            .cloned()
            .ok_or_else(|| EngineError::Corrupted("pending past the last step".into()))?;
        if step.action != verb.action() {
            return Err(EngineError::conflict(format!(
                "l'étape courante attend « {} », pas « {} »",
                step.action.as_str(),
                verb.action().as_str()
            )));
        }
        let waiting = step.waiting_desks();
        let acting = self
            .acting_as(
                &mut tx,
                actor.tenant,
                &user,
                &waiting,
                Some(stored.circuit),
                now,
            )
            .await
            .map_err(|e| match e {
                EngineError::Forbidden { reason }
                    if step.desks.iter().any(|d| user.desks.contains(d)) =>
                {
                    EngineError::conflict(format!(
                        "votre bureau a déjà agi sur cette étape ({reason})"
                    ))
                }
                other => other,
            })?;
        let previous = stored.progress.clone();
        let previous_metadata = stored.metadata.clone();
        stored.metadata.extend(input.metadata);
        check_required(
            &stored.metadata,
            &step.required_to_validate,
            "valider cette étape",
        )?;
        let advance = stored.progress.approve(acting.desk)?;
        let mut documents = Vec::new();
        for ((role, doc), hash) in produced.iter().zip(&hashes) {
            documents.push(
                Self::insert_document(&mut tx, &stored, *role, doc, hash, Some(step_index), now)
                    .await?,
            );
        }
        if let Some(text) = &input.annotation {
            self.insert_annotation(
                &mut tx,
                &stored,
                &user,
                acting.from,
                Visibility::Public,
                text,
                now,
            )
            .await?;
        }
        let mut jobs = Vec::new();
        if !matches!(advance, Advance::Waiting) {
            let completed = json!({
                "step": {"index": step_index, "action": step.action, "desk": acting.desk},
                "documents": documents,
            });
            jobs.push(webhook(
                &stored,
                WebhookEvent::StepCompleted,
                completed.clone(),
            ));
            if verb != StepVerb::Visa {
                jobs.push(webhook(&stored, WebhookEvent::DossierSigned, completed));
            }
        }
        stored.undo = Some(UndoPoint {
            user: user.id,
            desk: acting.desk,
            previous,
            metadata: previous_metadata,
            documents: documents.iter().map(|d| d.id.clone()).collect(),
        });
        if let Advance::Done(next) = advance {
            jobs.push(webhook(&stored, WebhookEvent::DossierFinished, json!({})));
            if let Some(k) = next {
                // A connector takes over: the action can no longer be taken back.
                stored.undo = None;
                let docs = Self::load_documents(&mut tx, stored.id).await?;
                jobs.extend(connector_job(&stored, k, &docs));
            }
        }
        let change = Change {
            action: verb.journal(),
            acting: Some(acting),
            user: Some(user.id),
            detail: json!({
                "step": step_index,
                "documents": documents.iter().map(|d| json!({"role": d.role, "name": d.name, "sha256": d.sha256})).collect::<Vec<_>>(),
                "annotation": input.annotation,
            }),
            jobs,
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// Rejects the dossier at the current step (a reason is required); it goes back to the emitter.
    pub async fn reject(
        &self,
        actor: Actor,
        id: DossierId,
        reason: &str,
        input: ActionInput,
    ) -> EngineResult<Dossier> {
        if reason.trim().is_empty() {
            return Err(EngineError::invalid("reason", "un rejet doit être motivé"));
        }
        let now = self.now();
        let (mut tx, user, mut stored) = self.begin_action(actor, id).await?;
        check_version(&stored, input.version)?;
        if stored.progress.state != DossierState::Pending {
            return Err(state_conflict(
                stored.progress.state,
                "seul un dossier en cours peut être rejeté",
            ));
        }
        let step_index = stored.progress.current_step;
        let step = stored
            .progress
            .current()
            .cloned()
            .ok_or_else(|| EngineError::Corrupted("pending past the last step".into()))?;
        let acting = self
            .acting_as(
                &mut tx,
                actor.tenant,
                &user,
                &step.waiting_desks(),
                Some(stored.circuit),
                now,
            )
            .await?;
        stored.metadata.extend(input.metadata);
        check_required(
            &stored.metadata,
            &step.required_to_reject,
            "rejeter à cette étape",
        )?;
        stored.progress.reject()?;
        stored.undo = None;
        stored.rejection = Some(Rejection {
            origin: RejectionOrigin::Desk,
            reason: reason.to_owned(),
            step: step_index,
            at: now,
        });
        self.insert_annotation(
            &mut tx,
            &stored,
            &user,
            acting.from,
            Visibility::Public,
            reason,
            now,
        )
        .await?;
        let change = Change {
            action: "reject",
            acting: Some(acting),
            user: Some(user.id),
            detail: json!({"step": stored.progress.current_step, "reason": reason}),
            jobs: vec![webhook(
                &stored,
                WebhookEvent::DossierRejected,
                json!({"origin": RejectionOrigin::Desk, "step": {"index": step_index, "action": step.action, "desk": acting.desk}, "reason": reason}),
            )],
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// *Droit de remords*: the author of the last visa, signature or seal takes it back, as long
    /// as nobody has acted since.
    pub async fn undo(&self, actor: Actor, id: DossierId) -> EngineResult<Dossier> {
        let now = self.now();
        let (mut tx, user, mut stored) = self.begin_action(actor, id).await?;
        let point = stored.undo.take().ok_or_else(|| {
            EngineError::conflict(
                "rien à reprendre : quelqu'un a agi depuis, ou le dossier a été transmis",
            )
        })?;
        if point.user != user.id {
            return Err(EngineError::forbidden(
                "seul l'auteur de la dernière action peut la reprendre",
            ));
        }
        for doc in &point.documents {
            sqlx::query("DELETE FROM documents WHERE id = $1 AND dossier_id = $2")
                .bind(doc.clone())
                .bind(stored.id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let step = point.previous.current_step;
        stored.progress = point.previous;
        stored.metadata = point.metadata;
        let change = Change {
            action: "undo",
            acting: Some(ActingAs {
                desk: point.desk,
                from: point.desk,
                on_behalf_of: None,
            }),
            user: Some(user.id),
            detail: json!({"step": step, "removed_documents": point.documents}),
            jobs: vec![webhook(
                &stored,
                WebhookEvent::DossierUndone,
                json!({"step": {"index": step}}),
            )],
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// Hands the current step over from the actor's desk to another desk.
    pub async fn transfer(
        &self,
        actor: Actor,
        id: DossierId,
        to: DeskId,
        version: Option<i64>,
    ) -> EngineResult<Dossier> {
        let now = self.now();
        let (mut tx, user, mut stored) = self.begin_action(actor, id).await?;
        check_version(&stored, version)?;
        Self::desk_exists(&mut tx, actor.tenant, to).await?;
        if stored.progress.state != DossierState::Pending {
            return Err(state_conflict(
                stored.progress.state,
                "seul un dossier en cours se transfère",
            ));
        }
        let waiting = stored.progress.waiting_desks();
        let acting = self
            .acting_as(
                &mut tx,
                actor.tenant,
                &user,
                &waiting,
                Some(stored.circuit),
                now,
            )
            .await?;
        stored.progress.transfer(acting.desk, to)?;
        stored.undo = None;
        let change = Change {
            action: "transfer",
            acting: Some(acting),
            user: Some(user.id),
            detail: json!({"step": stored.progress.current_step, "from": acting.desk, "to": to}),
            jobs: Vec::new(),
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// An administrator forces the current step through (recorded with the reason).
    pub async fn bypass(&self, actor: Actor, id: DossierId, reason: &str) -> EngineResult<Dossier> {
        if reason.trim().is_empty() {
            return Err(EngineError::invalid("reason", "motif requis"));
        }
        let now = self.now();
        let (mut tx, user, mut stored) = self.begin_action(actor, id).await?;
        if !user.admin {
            return Err(EngineError::forbidden(
                "réservé aux administrateurs de la collectivité",
            ));
        }
        let step = stored.progress.current_step;
        let advance = stored.progress.bypass()?;
        stored.undo = None;
        let mut jobs = Vec::new();
        if let Advance::Done(next) = advance {
            jobs.push(webhook(&stored, WebhookEvent::DossierFinished, json!({})));
            if let Some(k) = next {
                let docs = Self::load_documents(&mut tx, stored.id).await?;
                jobs.extend(connector_job(&stored, k, &docs));
            }
        }
        let change = Change {
            action: "bypass",
            acting: None,
            user: Some(user.id),
            detail: json!({"step": step, "reason": reason}),
            jobs,
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// Sends a rejected dossier back to draft, so that its emitter can correct and resubmit it.
    pub async fn recycle(
        &self,
        actor: Actor,
        id: DossierId,
        version: Option<i64>,
    ) -> EngineResult<Dossier> {
        let now = self.now();
        let (mut tx, user, mut stored) = self.begin_action(actor, id).await?;
        check_version(&stored, version)?;
        if stored.progress.state != DossierState::Rejected {
            return Err(state_conflict(
                stored.progress.state,
                "seul un dossier rejeté se recycle",
            ));
        }
        let acting = self.acting_as_emitter(&mut tx, &user, &stored, now).await?;
        stored.progress = Progress::draft();
        stored.undo = None;
        stored.rejection = None;
        let change = Change {
            action: "recycle",
            acting: Some(acting),
            user: Some(user.id),
            detail: json!({}),
            jobs: Vec::new(),
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// Changes the metadata of a draft.
    pub async fn update_draft(
        &self,
        actor: Actor,
        id: DossierId,
        metadata: Metadata,
        version: Option<i64>,
    ) -> EngineResult<Dossier> {
        let now = self.now();
        let (mut tx, user, mut stored) = self.begin_action(actor, id).await?;
        check_version(&stored, version)?;
        if stored.progress.state != DossierState::Draft {
            return Err(state_conflict(
                stored.progress.state,
                "seul un brouillon se modifie",
            ));
        }
        let acting = self.acting_as_emitter(&mut tx, &user, &stored, now).await?;
        stored.metadata.extend(metadata);
        let change = Change {
            action: "update",
            acting: Some(acting),
            user: Some(user.id),
            detail: json!({"metadata": stored.metadata}),
            jobs: Vec::new(),
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    /// Deletes a draft (its journal entries stay).
    pub async fn delete_draft(&self, actor: Actor, id: DossierId) -> EngineResult<()> {
        let now = self.now();
        let (mut tx, user, stored) = self.begin_action(actor, id).await?;
        if stored.progress.state != DossierState::Draft {
            return Err(state_conflict(
                stored.progress.state,
                "seul un brouillon se supprime",
            ));
        }
        let acting = self.acting_as_emitter(&mut tx, &user, &stored, now).await?;
        for table in ["inbox", "documents", "annotations", "opinions"] {
            let sql = format!("DELETE FROM {table} WHERE dossier_id = $1");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(stored.id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM dossiers WHERE id = $1 AND version = $2")
            .bind(stored.id.to_string())
            .bind(stored.version)
            .execute(&mut *tx)
            .await?;
        journal::append(
            &mut tx,
            NewEntry {
                tenant: stored.tenant,
                at: db_time(now),
                user: Some(user.id),
                desk: Some(acting.from),
                on_behalf_of: acting.on_behalf_of,
                dossier: Some(stored.id),
                action: "delete",
                detail: json!({"title": stored.title}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A connector reports on the current connector step: `transmitted`, `acknowledged` and
    /// `archived` move the dossier on (the next connector job, if any, is enqueued); a refusal
    /// or an expired notification sends it back to its emitter as rejected, with the reason.
    pub async fn connector_report(
        &self,
        tenant: TenantId,
        id: DossierId,
        event: ConnectorEvent,
        reference: &str,
    ) -> EngineResult<Dossier> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let mut stored = self.load_dossier(&mut tx, tenant, id, true).await?;
        let step = stored.progress.current_step;
        let next = stored.progress.connector_event(event.clone())?;
        let (event_name, webhook_event) = match &event {
            ConnectorEvent::Transmitted => ("transmitted", WebhookEvent::DossierTransmitted),
            ConnectorEvent::Acknowledged => ("acknowledged", WebhookEvent::DossierAcknowledged),
            ConnectorEvent::Archived => ("archived", WebhookEvent::DossierArchived),
            ConnectorEvent::Refused { .. } => ("refused", WebhookEvent::DossierRefused),
            ConnectorEvent::Expired => ("expired", WebhookEvent::DossierExpired),
        };
        let (detail, mut jobs) = match event.rejection() {
            None => (
                json!({"step": step, "reference": reference}),
                vec![webhook(
                    &stored,
                    webhook_event,
                    json!({"step": {"index": step}, "reference": reference}),
                )],
            ),
            Some((origin, reason)) => {
                // An archive's rejection takes the dossier back to the archive step.
                let step = stored.progress.current_step;
                let action = stored.progress.current().map(|s| s.action);
                stored.undo = None;
                stored.rejection = Some(Rejection {
                    origin,
                    reason: reason.to_owned(),
                    step,
                    at: now,
                });
                let extra = json!({
                    "step": {"index": step, "action": action},
                    "reference": reference,
                    "origin": origin,
                    "reason": reason,
                });
                (
                    json!({"step": step, "reference": reference, "origin": origin, "reason": reason}),
                    // What happened outside, then what it did to the dossier.
                    vec![
                        webhook(&stored, webhook_event, extra.clone()),
                        webhook(&stored, WebhookEvent::DossierRejected, extra),
                    ],
                )
            }
        };
        if let Some(k) = next {
            let docs = Self::load_documents(&mut tx, stored.id).await?;
            jobs.extend(connector_job(&stored, k, &docs));
        }
        let change = Change {
            action: event_name,
            acting: None,
            user: None,
            detail,
            jobs,
        };
        self.save(&mut tx, &mut stored, change, now).await?;
        tx.commit().await?;
        Ok(stored.view(now))
    }

    async fn can_see(
        &self,
        conn: &mut AnyConnection,
        user: &UserCtx,
        stored: &Stored,
        now: OffsetDateTime,
    ) -> EngineResult<()> {
        if user.admin {
            return Ok(());
        }
        let mut desks = stored.involved_desks();
        let asked = sqlx::query("SELECT desk_id FROM opinions WHERE dossier_id = $1")
            .bind(stored.id.to_string())
            .fetch_all(&mut *conn)
            .await?;
        for row in &asked {
            desks.push(parse_col(row, 0)?);
        }
        self.acting_as(conn, stored.tenant, user, &desks, Some(stored.circuit), now)
            .await
            .map(|_| ())
            .map_err(|_| EngineError::forbidden("vous n'intervenez pas sur ce dossier"))
    }

    /// Reads a dossier the actor is involved in.
    pub async fn dossier(&self, actor: Actor, id: DossierId) -> EngineResult<Dossier> {
        let now = self.now();
        let mut conn = self.db.pool().acquire().await?;
        let user = Self::load_user(&mut conn, actor).await?;
        let stored = self
            .load_dossier(&mut conn, actor.tenant, id, false)
            .await?;
        self.can_see(&mut conn, &user, &stored, now).await?;
        Ok(stored.view(now))
    }

    /// Lists the documents of a dossier.
    pub async fn documents(&self, actor: Actor, id: DossierId) -> EngineResult<Vec<Document>> {
        let now = self.now();
        let mut conn = self.db.pool().acquire().await?;
        let user = Self::load_user(&mut conn, actor).await?;
        let stored = self
            .load_dossier(&mut conn, actor.tenant, id, false)
            .await?;
        self.can_see(&mut conn, &user, &stored, now).await?;
        Self::load_documents(&mut conn, id).await
    }

    /// Reads the bytes of a document of a dossier.
    pub async fn document_bytes(
        &self,
        actor: Actor,
        id: DossierId,
        document: &str,
    ) -> EngineResult<Vec<u8>> {
        let doc = self
            .documents(actor, id)
            .await?
            .into_iter()
            .find(|d| d.id == document)
            .ok_or(EngineError::NotFound { entity: "document" })?;
        Ok(self.docs.get(&doc.sha256).await?)
    }

    /// The journal entries of a dossier, oldest first.
    pub async fn dossier_journal(
        &self,
        actor: Actor,
        id: DossierId,
    ) -> EngineResult<Vec<JournalEntry>> {
        let now = self.now();
        let mut conn = self.db.pool().acquire().await?;
        let user = Self::load_user(&mut conn, actor).await?;
        let stored = self
            .load_dossier(&mut conn, actor.tenant, id, false)
            .await?;
        self.can_see(&mut conn, &user, &stored, now).await?;
        let rows = sqlx::query(
            "SELECT * FROM journal WHERE tenant_id = $1 AND dossier_id = $2 ORDER BY seq",
        )
        .bind(actor.tenant.to_string())
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(journal::entry_from_row).collect()
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_annotation(
        &self,
        conn: &mut AnyConnection,
        stored: &Stored,
        user: &UserCtx,
        desk: DeskId,
        visibility: Visibility,
        body: &str,
        now: OffsetDateTime,
    ) -> EngineResult<Annotation> {
        let annotation = Annotation {
            id: AnnotationId::new(),
            user: user.id,
            desk,
            visibility,
            body: body.to_owned(),
        };
        sqlx::query(
            "INSERT INTO annotations (id, tenant_id, dossier_id, user_id, desk_id, visibility, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(annotation.id.to_string())
        .bind(stored.tenant.to_string())
        .bind(stored.id.to_string())
        .bind(user.id.to_string())
        .bind(desk.to_string())
        .bind(match visibility {
            Visibility::Public => "public",
            Visibility::Private => "private",
        })
        .bind(body.to_owned())
        .bind(db_time(now))
        .execute(&mut *conn)
        .await?;
        Ok(annotation)
    }

    /// Annotates a dossier (public, or private to the author's desk).
    pub async fn annotate(
        &self,
        actor: Actor,
        id: DossierId,
        body: &str,
        visibility: Visibility,
    ) -> EngineResult<Annotation> {
        if body.trim().is_empty() {
            return Err(EngineError::invalid("body", "annotation vide"));
        }
        let now = self.now();
        let (mut tx, user, stored) = self.begin_action(actor, id).await?;
        self.can_see(&mut tx, &user, &stored, now).await?;
        let desk = user
            .desks
            .first()
            .copied()
            .ok_or_else(|| EngineError::forbidden("vous ne détenez aucun bureau"))?;
        let annotation = self
            .insert_annotation(&mut tx, &stored, &user, desk, visibility, body, now)
            .await?;
        journal::append(
            &mut tx,
            NewEntry {
                tenant: stored.tenant,
                at: db_time(now),
                user: Some(user.id),
                desk: Some(desk),
                on_behalf_of: None,
                dossier: Some(stored.id),
                action: "annotate",
                detail: json!({"annotation": annotation.id, "visibility": visibility, "body": body}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(annotation)
    }

    /// The annotations the actor may read: public ones and the private ones of the actor's desks.
    pub async fn annotations(&self, actor: Actor, id: DossierId) -> EngineResult<Vec<Annotation>> {
        let now = self.now();
        let mut conn = self.db.pool().acquire().await?;
        let user = Self::load_user(&mut conn, actor).await?;
        let stored = self
            .load_dossier(&mut conn, actor.tenant, id, false)
            .await?;
        self.can_see(&mut conn, &user, &stored, now).await?;
        let rows = sqlx::query(
            "SELECT id, user_id, desk_id, visibility, body FROM annotations WHERE dossier_id = $1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let visibility: String = row.try_get(3)?;
            let desk: DeskId = parse_col(row, 2)?;
            let visibility = if visibility == "private" {
                if !user.desks.contains(&desk) {
                    continue;
                }
                Visibility::Private
            } else {
                Visibility::Public
            };
            out.push(Annotation {
                id: parse_col(row, 0)?,
                user: parse_col(row, 1)?,
                desk,
                visibility,
                body: row.try_get(4)?,
            });
        }
        Ok(out)
    }

    /// Asks another desk for a second opinion on the current step; the dossier stays where it is
    /// and shows in that desk's list until it answers.
    pub async fn ask_opinion(
        &self,
        actor: Actor,
        id: DossierId,
        desk: DeskId,
        question: &str,
    ) -> EngineResult<Opinion> {
        if question.trim().is_empty() {
            return Err(EngineError::invalid("question", "question vide"));
        }
        let now = self.now();
        let (mut tx, user, stored) = self.begin_action(actor, id).await?;
        Self::desk_exists(&mut tx, actor.tenant, desk).await?;
        if stored.progress.state != DossierState::Pending {
            return Err(state_conflict(
                stored.progress.state,
                "un avis se demande sur un dossier en cours",
            ));
        }
        let acting = self
            .acting_as(
                &mut tx,
                actor.tenant,
                &user,
                &stored.progress.waiting_desks(),
                Some(stored.circuit),
                now,
            )
            .await?;
        let opinion = Opinion {
            id: OpinionId::new(),
            desk,
            question: question.to_owned(),
            answer: None,
        };
        sqlx::query(
            "INSERT INTO opinions (id, tenant_id, dossier_id, asked_by, desk_id, question, answer, created_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
        )
        .bind(opinion.id.to_string())
        .bind(actor.tenant.to_string())
        .bind(stored.id.to_string())
        .bind(acting.from.to_string())
        .bind(desk.to_string())
        .bind(question.to_owned())
        .bind(db_time(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO inbox (tenant_id, desk_id, dossier_id, reason) VALUES ($1, $2, $3, 'opinion') ON CONFLICT (tenant_id, desk_id, dossier_id) DO NOTHING",
        )
        .bind(actor.tenant.to_string())
        .bind(desk.to_string())
        .bind(stored.id.to_string())
        .execute(&mut *tx)
        .await?;
        journal::append(
            &mut tx,
            NewEntry {
                tenant: stored.tenant,
                at: db_time(now),
                user: Some(user.id),
                desk: Some(acting.from),
                on_behalf_of: acting.on_behalf_of,
                dossier: Some(stored.id),
                action: "opinion.ask",
                detail: json!({"opinion": opinion.id, "desk": desk, "question": question}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(opinion)
    }

    /// The asked desk answers a second opinion.
    pub async fn answer_opinion(
        &self,
        actor: Actor,
        id: DossierId,
        opinion: OpinionId,
        answer: &str,
    ) -> EngineResult<Opinion> {
        if answer.trim().is_empty() {
            return Err(EngineError::invalid("answer", "réponse vide"));
        }
        let now = self.now();
        let (mut tx, user, stored) = self.begin_action(actor, id).await?;
        let row = sqlx::query(
            "SELECT desk_id, question, answer FROM opinions WHERE id = $1 AND dossier_id = $2",
        )
        .bind(opinion.to_string())
        .bind(stored.id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(EngineError::NotFound { entity: "opinion" })?;
        let desk: DeskId = parse_col(&row, 0)?;
        let previous: Option<String> = row.try_get(2)?;
        if previous.is_some() {
            return Err(EngineError::conflict("cet avis a déjà été donné"));
        }
        let acting = self
            .acting_as(
                &mut tx,
                actor.tenant,
                &user,
                &[desk],
                Some(stored.circuit),
                now,
            )
            .await?;
        sqlx::query("UPDATE opinions SET answer = $1 WHERE id = $2")
            .bind(answer.to_owned())
            .bind(opinion.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM inbox WHERE dossier_id = $1 AND desk_id = $2 AND reason = 'opinion'",
        )
        .bind(stored.id.to_string())
        .bind(desk.to_string())
        .execute(&mut *tx)
        .await?;
        self.insert_annotation(
            &mut tx,
            &stored,
            &user,
            acting.from,
            Visibility::Public,
            answer,
            now,
        )
        .await?;
        journal::append(
            &mut tx,
            NewEntry {
                tenant: stored.tenant,
                at: db_time(now),
                user: Some(user.id),
                desk: Some(acting.from),
                on_behalf_of: acting.on_behalf_of,
                dossier: Some(stored.id),
                action: "opinion.answer",
                detail: json!({"opinion": opinion, "answer": answer}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Opinion {
            id: opinion,
            desk,
            question: row.try_get(1)?,
            answer: Some(answer.to_owned()),
        })
    }

    /// What a signature batch needs of a dossier waiting for the actor's signature or seal:
    /// refuses (403) a dossier whose current step the actor cannot act on, or that does not
    /// wait at `desk` when one is given, and (409) one not at a signature or seal step.
    pub(crate) async fn signing_target(
        &self,
        actor: Actor,
        id: DossierId,
        desk: Option<DeskId>,
    ) -> EngineResult<SigningTarget> {
        let now = self.now();
        let mut conn = self.db.pool().acquire().await?;
        let user = Self::load_user(&mut conn, actor).await?;
        let stored = self
            .load_dossier(&mut conn, actor.tenant, id, false)
            .await?;
        if stored.progress.state != DossierState::Pending {
            return Err(state_conflict(
                stored.progress.state,
                "aucune signature n'est attendue",
            ));
        }
        let step = stored
            .progress
            .current()
            .cloned()
            .ok_or_else(|| EngineError::Corrupted("pending past the last step".into()))?;
        if !matches!(step.action, StepAction::Signature | StepAction::Seal) {
            return Err(EngineError::conflict(format!(
                "l'étape courante attend « {} », pas une signature",
                step.action.as_str()
            )));
        }
        let mut waiting = step.waiting_desks();
        if let Some(d) = desk {
            waiting.retain(|w| *w == d);
        }
        self.acting_as(
            &mut conn,
            actor.tenant,
            &user,
            &waiting,
            Some(stored.circuit),
            now,
        )
        .await
        .map_err(|_| {
            EngineError::forbidden(
                "ce dossier n'attend pas la signature d'un bureau que vous tenez",
            )
        })?;
        let main = Self::load_documents(&mut conn, id)
            .await?
            .into_iter()
            .find(|d| d.role == DocumentRole::Main)
            .ok_or_else(|| EngineError::Corrupted("dossier without a main document".into()))?;
        Ok(SigningTarget {
            version: stored.version,
            step: stored.progress.current_step,
            action: step.action,
            profile: step.profile,
            level: step.level,
            main,
        })
    }

    /// Lists a desk's dossiers (to act on, drafts, rejected, opinions asked), oldest first, by
    /// pages of at most `limit` with a cursor; the actor must hold the desk or act for it through
    /// an active delegation.
    pub async fn desk_dossiers(
        &self,
        actor: Actor,
        desk: DeskId,
        cursor: Option<&str>,
        limit: u32,
    ) -> EngineResult<Page<DossierSummary>> {
        let now = self.now();
        let limit = limit.clamp(1, 500);
        let after = match cursor {
            Some(c) => c
                .parse::<DossierId>()
                .map_err(|_| EngineError::invalid("cursor", "curseur invalide"))?
                .to_string(),
            None => String::new(),
        };
        let mut conn = self.db.pool().acquire().await?;
        self.check_desk_view(&mut conn, actor, desk, now).await?;
        let rows = sqlx::query(
            // The page is cut from the inbox index first, then joined: the planner never
            // joins the whole desk when only a page is wanted.
            "SELECT d.id, d.title, d.state, d.current_step, d.deadline, p.reason \
             FROM (SELECT dossier_id, reason FROM inbox \
                   WHERE tenant_id = $1 AND desk_id = $2 AND dossier_id > $3 \
                   ORDER BY dossier_id LIMIT $4) p \
             JOIN dossiers d ON d.id = p.dossier_id \
             ORDER BY p.dossier_id",
        )
        .bind(actor.tenant.to_string())
        .bind(desk.to_string())
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *conn)
        .await?;
        let more = rows.len() > limit as usize;
        let mut items = Vec::with_capacity(rows.len().min(limit as usize));
        for row in rows.iter().take(limit as usize) {
            let state: String = row.try_get(2)?;
            let state =
                DossierState::parse(&state).ok_or_else(|| EngineError::Corrupted(state.clone()))?;
            let deadline: Option<String> = row.try_get(4)?;
            let deadline = deadline.and_then(|d| parse_time(&d));
            let reason: String = row.try_get(5)?;
            let step: i64 = row.try_get(3)?;
            items.push(DossierSummary {
                id: parse_col(row, 0)?,
                title: row.try_get(1)?,
                state,
                current_step: usize::try_from(step).unwrap_or_default(),
                reason: InboxReason::parse(&reason)
                    .ok_or_else(|| EngineError::Corrupted(reason.clone()))?,
                deadline,
                late: is_late(state, deadline, now),
            });
        }
        let next_cursor = if more {
            items.last().map(|s| s.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}
