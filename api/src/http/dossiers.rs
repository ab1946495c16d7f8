//! Dossiers: multipart creation (idempotent), listing by desk with filters and a cursor,
//! reading, every workflow action, annotations, documents and the dossier's journal.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seing_engine::access::IdempotencyRecord;
use seing_engine::ids::{CircuitId, DeskId, DossierId, OpinionId};
use seing_engine::metadata::Metadata;
use seing_engine::model::{
    ActionInput, Annotation, Document, DocumentRole, Dossier, DossierSummary, NewDocument,
    NewDossier, Opinion, Rejection, Visibility,
};
use seing_engine::workflow::{DossierState, StepInstance};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::problem::{ApiError, ApiResult, Problem};
use super::{ApiJson, ApiPath, ApiQuery, ApiState};

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// A dossier as the API shows it (times in RFC 3339).
#[derive(Debug, Serialize, ToSchema)]
pub struct DossierView {
    /// Identifier.
    #[schema(value_type = String, format = Uuid)]
    pub id: DossierId,
    /// Circuit.
    #[schema(value_type = String, format = Uuid)]
    pub circuit: CircuitId,
    /// Title.
    pub title: String,
    /// Emitting desk.
    #[schema(value_type = String, format = Uuid)]
    pub emitter_desk: DeskId,
    /// Emitting user.
    #[schema(value_type = String, format = Uuid)]
    pub emitter_user: String,
    /// State: draft, pending, rejected, finished, transmitted, acknowledged, archived.
    #[schema(value_type = String)]
    pub state: DossierState,
    /// Current step index.
    pub current_step: usize,
    /// The resolved steps.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<StepInstance>,
    /// Metadata.
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// Desks chosen at creation.
    #[schema(value_type = Object)]
    pub chosen_desks: BTreeMap<String, DeskId>,
    /// Deadline.
    pub deadline: Option<String>,
    /// Past its deadline while still waiting.
    pub late: bool,
    /// Why it went back to its emitter, while it is rejected: `origin` (desk, prefecture,
    /// dgfip, archive, recipient), `reason`, `step`, `at`.
    #[schema(value_type = Option<Object>)]
    pub rejection: Option<Rejection>,
    /// Version, for optimistic concurrency.
    pub version: i64,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl From<Dossier> for DossierView {
    fn from(d: Dossier) -> Self {
        Self {
            id: d.id,
            circuit: d.circuit,
            title: d.title,
            emitter_desk: d.emitter_desk,
            emitter_user: d.emitter_user.to_string(),
            state: d.state,
            current_step: d.current_step,
            steps: d.steps,
            metadata: d.metadata,
            chosen_desks: d.chosen_desks,
            deadline: d.deadline.map(rfc3339),
            late: d.late,
            rejection: d.rejection,
            version: d.version,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// One line of a list of dossiers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryView {
    /// Identifier.
    #[schema(value_type = String, format = Uuid)]
    pub id: DossierId,
    /// Title.
    pub title: String,
    /// State.
    #[schema(value_type = String)]
    pub state: DossierState,
    /// Current step.
    pub current_step: usize,
    /// Why it is in the desk's list: act, draft, rejected, opinion.
    #[schema(value_type = String)]
    pub reason: seing_engine::model::InboxReason,
    /// Deadline.
    pub deadline: Option<String>,
    /// Past its deadline.
    pub late: bool,
}

impl From<DossierSummary> for SummaryView {
    fn from(s: DossierSummary) -> Self {
        Self {
            id: s.id,
            title: s.title,
            state: s.state,
            current_step: s.current_step,
            reason: s.reason,
            deadline: s.deadline.map(rfc3339),
            late: s.late,
        }
    }
}

/// A page of dossiers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryPage {
    /// The dossiers.
    pub items: Vec<SummaryView>,
    /// Pass it as `cursor` for the next page; absent at the end.
    pub next_cursor: Option<String>,
}

/// The `metadata` part of a dossier creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDossier {
    /// Title.
    pub title: String,
    /// Circuit.
    #[schema(value_type = String, format = Uuid)]
    pub circuit: CircuitId,
    /// Emitting desk (the caller must hold it).
    #[schema(value_type = String, format = Uuid)]
    pub emitter_desk: DeskId,
    /// Metadata (numbers, texts, booleans).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// Desks chosen at creation, by the circuit's keys.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub chosen_desks: BTreeMap<String, DeskId>,
    /// Deadline (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<OffsetDateTime>,
    /// Send it into its circuit at once (default) or keep it as a draft.
    #[serde(default = "yes")]
    pub submit: bool,
}

fn yes() -> bool {
    true
}

/// The multipart form of a dossier creation (for the OpenAPI document).
#[derive(Debug, ToSchema)]
pub struct CreateDossierForm {
    /// JSON: see `CreateDossier`.
    pub metadata: String,
    /// The main document.
    #[schema(value_type = String, format = Binary)]
    pub main: Vec<u8>,
    /// Annexes (repeat the part).
    #[schema(value_type = Vec<String>, format = Binary)]
    pub annexes: Vec<Vec<u8>>,
}

/// Filters of the dossier list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The desk whose list is read (required).
    #[param(value_type = String, format = Uuid)]
    pub desk: DeskId,
    /// Only this state.
    #[param(value_type = Option<String>)]
    pub state: Option<DossierState>,
    /// Only this circuit.
    #[param(value_type = Option<String>, format = Uuid)]
    pub circuit: Option<CircuitId>,
    /// Only late (true) or not late (false) dossiers.
    pub late: Option<bool>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1–500, default 50).
    pub limit: Option<u32>,
}

/// Inputs of visa.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// The version the caller saw (a newer one is a conflict).
    pub version: Option<i64>,
    /// Metadata to set first.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// A public annotation recorded with the action.
    pub annotation: Option<String>,
}

/// Inputs of reject.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (required).
    pub reason: String,
    /// The version the caller saw.
    pub version: Option<i64>,
    /// Metadata to set first.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
}

/// Inputs of submit.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionBody {
    /// The version the caller saw.
    pub version: Option<i64>,
}

/// Inputs of a draft's update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDraftBody {
    /// Metadata to set: each key given replaces the draft's value (e.g. a new `numero_acte`
    /// after the prefecture refused the first one).
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// The version the caller saw.
    pub version: Option<i64>,
}

/// Inputs of transfer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The desk that takes over the current step.
    #[schema(value_type = String, format = Uuid)]
    pub to: DeskId,
    /// The version the caller saw.
    pub version: Option<i64>,
}

/// Inputs of bypass.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BypassBody {
    /// Why (required).
    pub reason: String,
}

/// A second opinion to ask.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskOpinion {
    /// The desk asked.
    #[schema(value_type = String, format = Uuid)]
    pub desk: DeskId,
    /// The question.
    pub question: String,
}

/// The answer to a second opinion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerOpinion {
    /// The answer.
    pub answer: String,
}

/// An annotation to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Annotate {
    /// Text.
    pub body: String,
    /// `public` (default) or `private` (the author's desk only).
    #[serde(default = "public")]
    #[schema(value_type = String)]
    pub visibility: Visibility,
}

fn public() -> Visibility {
    Visibility::Public
}

/// Reads the parts of a creation form and hashes them for the idempotency check.
async fn read_form(
    mut form: Multipart,
) -> ApiResult<(CreateDossier, NewDocument, Vec<NewDocument>, String)> {
    let mut meta = None;
    let mut main = None;
    let mut annexes = Vec::new();
    let mut hasher = Sha256::new();
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let media_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = field.bytes().await?;
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(file_name.as_deref().unwrap_or_default().as_bytes());
        hasher.update([0]);
        hasher.update(media_type.as_bytes());
        hasher.update([0]);
        hasher.update(Sha256::digest(&bytes));
        match name.as_str() {
            "metadata" => {
                let parsed: CreateDossier = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::invalid("metadata", e.to_string()))?;
                meta = Some(parsed);
            }
            "main" | "annexes" | "annex" => {
                let document = NewDocument {
                    name: file_name.unwrap_or_else(|| name.clone()),
                    media_type,
                    bytes: bytes.to_vec(),
                };
                if name == "main" {
                    if main.replace(document).is_some() {
                        return Err(ApiError::invalid("main", "un seul document principal"));
                    }
                } else {
                    annexes.push(document);
                }
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "partie inconnue (attendu : metadata, main, annexes)",
                ));
            }
        }
    }
    let meta = meta.ok_or_else(|| ApiError::invalid("metadata", "partie JSON requise"))?;
    let main = main.ok_or_else(|| ApiError::invalid("main", "document principal requis"))?;
    Ok((meta, main, annexes, hex::encode(hasher.finalize())))
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::invalid("Idempotency-Key", "1 à 255 caractères ASCII visibles"))?;
    Ok(Some(key.to_owned()))
}

fn created(dossier: Dossier, status: StatusCode) -> Response {
    let location = format!("/api/v1/dossiers/{}", dossier.id);
    let mut response = (status, Json(DossierView::from(dossier))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Creates a dossier from a multipart form (parts `metadata` JSON, `main` file, `annexes`
/// files) and, unless `submit` is false, sends it into its circuit. With an `Idempotency-Key`,
/// the same key and the same form return the same dossier; another form answers 409.
#[utoipa::path(post, path = "/dossiers", tag = "dossiers", operation_id = "create_dossier",
    request_body(content = CreateDossierForm, content_type = "multipart/form-data",
        description = "Partie `metadata` : JSON `CreateDossier`"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Clé d'idempotence")),
    responses(
        (status = 201, body = DossierView, description = "Créé"),
        (status = 200, body = DossierView, description = "Déjà créé avec cette clé"),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Response> {
    let actor = caller.actor()?;
    let key = idempotency_key(&headers)?;
    let (meta, main, annexes, request_hash) = read_form(form?).await?;
    let engine = &state.engine;
    if let Some(key) = &key
        && let Some(record) = engine.idempotency_record(actor.tenant, key).await?
    {
        if record.request_hash != request_hash {
            return Err(ApiError::IdempotencyConflict);
        }
        return Ok(created(
            engine.dossier(actor, record.dossier).await?,
            StatusCode::OK,
        ));
    }
    let submit = meta.submit;
    let mut dossier = engine
        .create_dossier(
            actor,
            NewDossier {
                circuit: meta.circuit,
                emitter_desk: meta.emitter_desk,
                title: meta.title,
                main,
                annexes,
                metadata: meta.metadata,
                chosen_desks: meta.chosen_desks,
                deadline: meta.deadline,
            },
        )
        .await?;
    if let Some(key) = &key {
        let winner = engine
            .remember_idempotency(
                actor.tenant,
                key,
                IdempotencyRecord {
                    request_hash: request_hash.clone(),
                    dossier: dossier.id,
                },
            )
            .await?;
        if winner.dossier != dossier.id {
            // A concurrent request with the same key won: drop our draft, answer like a replay.
            engine.delete_draft(actor, dossier.id).await?;
            if winner.request_hash != request_hash {
                return Err(ApiError::IdempotencyConflict);
            }
            return Ok(created(
                engine.dossier(actor, winner.dossier).await?,
                StatusCode::OK,
            ));
        }
    }
    if submit {
        dossier = engine
            .submit(actor, dossier.id, Some(dossier.version))
            .await?;
    }
    Ok(created(dossier, StatusCode::CREATED))
}

/// Lists a desk's dossiers (to act on, drafts, rejected, opinions), oldest first, by pages.
/// Filters apply within each page, so a page may hold fewer items than `limit`.
#[utoipa::path(get, path = "/dossiers", tag = "dossiers", operation_id = "list_dossiers", params(ListQuery),
    responses((status = 200, body = SummaryPage), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<SummaryPage>> {
    let actor = caller.actor()?;
    let page = state
        .engine
        .desk_dossiers(
            actor,
            query.desk,
            query.cursor.as_deref(),
            query.limit.unwrap_or(50),
        )
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for summary in page.items {
        if query.state.is_some_and(|s| s != summary.state)
            || query.late.is_some_and(|l| l != summary.late)
        {
            continue;
        }
        if let Some(circuit) = query.circuit
            && state.engine.dossier(actor, summary.id).await?.circuit != circuit
        {
            continue;
        }
        items.push(summary.into());
    }
    Ok(Json(SummaryPage {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// Reads a dossier.
#[utoipa::path(get, path = "/dossiers/{id}", tag = "dossiers", operation_id = "get_dossier",
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
) -> ApiResult<Json<DossierView>> {
    Ok(Json(
        state.engine.dossier(caller.actor()?, id).await?.into(),
    ))
}

/// Sets metadata of a draft (its emitter), e.g. a corrected dossier before it is submitted
/// again.
#[utoipa::path(patch, path = "/dossiers/{id}", tag = "dossiers", operation_id = "update_draft",
    request_body = UpdateDraftBody,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<UpdateDraftBody>,
) -> ApiResult<Json<DossierView>> {
    let dossier = state
        .engine
        .update_draft(caller.actor()?, id, body.metadata, body.version)
        .await?;
    Ok(Json(dossier.into()))
}

/// Deletes a draft (its emitter); its journal entries stay.
#[utoipa::path(delete, path = "/dossiers/{id}", tag = "dossiers", operation_id = "delete_draft",
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn delete(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
) -> ApiResult<StatusCode> {
    state.engine.delete_draft(caller.actor()?, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a rejected dossier back to draft (its emitter), to correct it and submit it again;
/// the whole circuit then runs again.
#[utoipa::path(post, path = "/dossiers/{id}/recycle", tag = "dossiers", request_body = VersionBody,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn recycle(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<VersionBody>,
) -> ApiResult<Json<DossierView>> {
    let dossier = state
        .engine
        .recycle(caller.actor()?, id, body.version)
        .await?;
    Ok(Json(dossier.into()))
}

/// Sends a draft into its circuit.
#[utoipa::path(post, path = "/dossiers/{id}/submit", tag = "dossiers", request_body = VersionBody,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn submit(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<VersionBody>,
) -> ApiResult<Json<DossierView>> {
    let dossier = state
        .engine
        .submit(caller.actor()?, id, body.version)
        .await?;
    Ok(Json(dossier.into()))
}

/// Visa of the current step.
#[utoipa::path(post, path = "/dossiers/{id}/visa", tag = "dossiers", request_body = ActionBody,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn visa(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<ActionBody>,
) -> ApiResult<Json<DossierView>> {
    let input = ActionInput {
        version: body.version,
        metadata: body.metadata,
        annotation: body.annotation,
    };
    Ok(Json(
        state.engine.visa(caller.actor()?, id, input).await?.into(),
    ))
}

/// Rejects the dossier back to its emitter, with a reason.
#[utoipa::path(post, path = "/dossiers/{id}/reject", tag = "dossiers", request_body = RejectBody,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn reject(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<RejectBody>,
) -> ApiResult<Json<DossierView>> {
    let input = ActionInput {
        version: body.version,
        metadata: body.metadata,
        annotation: None,
    };
    let dossier = state
        .engine
        .reject(caller.actor()?, id, &body.reason, input)
        .await?;
    Ok(Json(dossier.into()))
}

/// Takes back the caller's last action while the next desk has not acted (*droit de remords*).
#[utoipa::path(post, path = "/dossiers/{id}/undo", tag = "dossiers",
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn undo(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
) -> ApiResult<Json<DossierView>> {
    Ok(Json(state.engine.undo(caller.actor()?, id).await?.into()))
}

/// Hands the current step over to another desk.
#[utoipa::path(post, path = "/dossiers/{id}/transfer", tag = "dossiers", request_body = TransferBody,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn transfer(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<TransferBody>,
) -> ApiResult<Json<DossierView>> {
    let dossier = state
        .engine
        .transfer(caller.actor()?, id, body.to, body.version)
        .await?;
    Ok(Json(dossier.into()))
}

/// Skips the current step (tenant administrators), with a reason.
#[utoipa::path(post, path = "/dossiers/{id}/bypass", tag = "dossiers", request_body = BypassBody,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = DossierView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn bypass(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<BypassBody>,
) -> ApiResult<Json<DossierView>> {
    let actor = caller.tenant_admin()?;
    Ok(Json(
        state.engine.bypass(actor, id, &body.reason).await?.into(),
    ))
}

/// Asks a desk for a second opinion on the current step.
#[utoipa::path(post, path = "/dossiers/{id}/opinions", tag = "dossiers", request_body = AskOpinion,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 201, body = serde_json::Value), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn ask_opinion(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<AskOpinion>,
) -> ApiResult<(StatusCode, Json<Opinion>)> {
    let opinion = state
        .engine
        .ask_opinion(caller.actor()?, id, body.desk, &body.question)
        .await?;
    Ok((StatusCode::CREATED, Json(opinion)))
}

/// Answers a second opinion asked of the caller's desk.
#[utoipa::path(post, path = "/dossiers/{id}/opinions/{opinion}/answer", tag = "dossiers",
    request_body = AnswerOpinion,
    params(("id" = String, Path, description = "Dossier"), ("opinion" = String, Path, description = "Avis")),
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn answer_opinion(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath((id, opinion)): ApiPath<(DossierId, OpinionId)>,
    ApiJson(body): ApiJson<AnswerOpinion>,
) -> ApiResult<Json<Opinion>> {
    let opinion = state
        .engine
        .answer_opinion(caller.actor()?, id, opinion, &body.answer)
        .await?;
    Ok(Json(opinion))
}

/// The annotations the caller may read.
#[utoipa::path(get, path = "/dossiers/{id}/annotations", tag = "dossiers",
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn annotations(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
) -> ApiResult<Json<Vec<Annotation>>> {
    Ok(Json(state.engine.annotations(caller.actor()?, id).await?))
}

/// Annotates a dossier (public, or private to the author's desk).
#[utoipa::path(post, path = "/dossiers/{id}/annotations", tag = "dossiers", request_body = Annotate,
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 201, body = serde_json::Value), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn annotate(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
    ApiJson(body): ApiJson<Annotate>,
) -> ApiResult<(StatusCode, Json<Annotation>)> {
    let annotation = state
        .engine
        .annotate(caller.actor()?, id, &body.body, body.visibility)
        .await?;
    Ok((StatusCode::CREATED, Json(annotation)))
}

/// The documents of a dossier: main, annexes, signed versions and detached signatures.
#[utoipa::path(get, path = "/dossiers/{id}/documents", tag = "dossiers",
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn documents(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
) -> ApiResult<Json<Vec<Document>>> {
    Ok(Json(state.engine.documents(caller.actor()?, id).await?))
}

/// Downloads one document (original, signed version or detached signature file).
#[utoipa::path(get, path = "/dossiers/{id}/documents/{document}", tag = "dossiers",
    params(("id" = String, Path, description = "Dossier"), ("document" = String, Path, description = "Document")),
    responses((status = 200, description = "Le contenu du document", body = String, content_type = "application/octet-stream"),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn document(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath((id, document)): ApiPath<(DossierId, String)>,
) -> ApiResult<Response> {
    let actor = caller.actor()?;
    let meta = state
        .engine
        .documents(actor, id)
        .await?
        .into_iter()
        .find(|d| d.id == document)
        .ok_or(seing_engine::EngineError::NotFound { entity: "document" })?;
    let bytes = state.engine.document_bytes(actor, id, &document).await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        meta.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&meta.media_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        "x-document-role",
        HeaderValue::from_static(match meta.role {
            DocumentRole::Main => "main",
            DocumentRole::Annex => "annex",
            DocumentRole::Signed => "signed",
            DocumentRole::Signature => "signature",
        }),
    );
    Ok(response)
}

/// The journal of a dossier, oldest first (hash-chained entries).
#[utoipa::path(get, path = "/dossiers/{id}/journal", tag = "dossiers",
    params(("id" = String, Path, description = "Dossier")),
    responses((status = 200, body = serde_json::Value), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn journal(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<DossierId>,
) -> ApiResult<Json<Vec<seing_engine::journal::JournalEntry>>> {
    Ok(Json(
        state.engine.dossier_journal(caller.actor()?, id).await?,
    ))
}
