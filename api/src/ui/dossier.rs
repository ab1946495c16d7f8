//! The dossier page: the main document inline (a PDF in the browser's viewer, a PES as the
//! table of its bordereaux), annexes, metadata, annotations, journal, the circuit with its
//! current step, and the actions the person may take here.

use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use seing_connectors::recovery;
use seing_engine::circuit::StepAction;
use seing_engine::ids::{DeskId, DossierId};
use seing_engine::metadata::{MetaValue, Metadata};
use seing_engine::model::{ActionInput, DocumentRole, Visibility};
use seing_engine::workflow::DossierState;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Chrome, Person, Posted, UiResult, format, not_found, render, see_other};
use crate::http::ApiState;
use crate::http::problem::ApiError;

/// A document link.
#[derive(Debug, Clone)]
pub struct DocLink {
    /// Name.
    pub name: String,
    /// Download URL (the API's).
    pub href: String,
    /// Inline view URL.
    pub view: String,
    /// Size, for people.
    pub size: String,
    /// What it is: document principal, annexe, signé, signature.
    pub role: &'static str,
}

/// One bordereau of a PES.
#[derive(Debug, Clone)]
pub struct BordereauRow {
    /// Exercice.
    pub exercice: String,
    /// Number.
    pub number: String,
    /// Type.
    pub kind: String,
    /// Domain (dépense, recette).
    pub domain: &'static str,
    /// Pièces present, with the declared count when it differs.
    pub pieces: String,
    /// Amount.
    pub amount: String,
    /// Already signed.
    pub signed: bool,
}

/// The PES summary shown instead of a viewer.
#[derive(Debug, Clone)]
pub struct PesView {
    /// The budget's label.
    pub budget: String,
    /// The bordereaux.
    pub rows: Vec<BordereauRow>,
    /// Total of the amounts.
    pub total: String,
    /// Total of the pièces.
    pub pieces: usize,
}

/// A step of the circuit.
#[derive(Debug, Clone)]
pub struct StepRow {
    /// Number, from 1.
    pub number: usize,
    /// Action.
    pub action: &'static str,
    /// Desks.
    pub desks: String,
    /// `done`, `current` or `todo`.
    pub status: &'static str,
}

/// A line of the journal.
#[derive(Debug, Clone)]
pub struct JournalRow {
    /// When.
    pub at: String,
    /// What.
    pub action: String,
    /// Who, from which desk, for whom.
    pub who: String,
    /// Reason or note.
    pub note: String,
}

/// An annotation.
#[derive(Debug, Clone)]
pub struct NoteRow {
    /// Author.
    pub author: String,
    /// Private to the author's desk.
    pub private: bool,
    /// Text.
    pub body: String,
}

/// A second opinion asked of one of the person's desks, not answered yet.
#[derive(Debug, Clone)]
pub struct OpenOpinion {
    /// Identifier.
    pub id: String,
    /// Who asked.
    pub asked_by: String,
    /// The question.
    pub question: String,
}

/// A desk in a choice list.
#[derive(Debug, Clone)]
pub struct DeskOption {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
}

/// Why a dossier came back to its emitter.
#[derive(Debug, Clone)]
pub struct RejectionView {
    /// Who, in French (« la préfecture »).
    pub by: &'static str,
    /// The step, numbered from 1, and its action in French.
    pub step: String,
    /// When (UTC).
    pub at: String,
    /// The reason.
    pub reason: String,
}

/// The dossier page.
#[derive(Template)]
#[template(path = "dossier.html")]
struct DossierPage {
    chrome: Chrome,
    id: String,
    title: String,
    state: &'static str,
    circuit: String,
    emitter: String,
    created: String,
    deadline: String,
    late: bool,
    version: i64,
    metadata: Vec<(String, String)>,
    main: Option<DocLink>,
    pdf: bool,
    pes: Option<PesView>,
    pes_error: Option<String>,
    annexes: Vec<DocLink>,
    produced: Vec<DocLink>,
    steps: Vec<StepRow>,
    notes: Vec<NoteRow>,
    journal: Vec<JournalRow>,
    can_visa: bool,
    can_sign: bool,
    can_act: bool,
    can_undo: bool,
    rejection: Option<RejectionView>,
    /// S²LOW took this PES but its transaction number was lost: an administrator must give it.
    unnumbered: bool,
    /// The person administers the tenant (links to the administration page).
    admin: bool,
    /// The person acts for the emitter of this rejected dossier: it may recycle it.
    can_recycle: bool,
    /// The person acts for the emitter of this draft: it may correct, submit or delete it.
    can_edit_draft: bool,
    opinions: Vec<OpenOpinion>,
    desks: Vec<DeskOption>,
    notice: Option<&'static str>,
}

/// The query of the dossier page: which action just succeeded.
#[derive(Debug, Default, Deserialize)]
pub struct DossierQuery {
    fait: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "visa" => "Visa enregistré.",
        "rejet" => "Dossier rejeté : il retourne à son émetteur.",
        "remords" => "Votre dernière action est annulée.",
        "transfert" => "Étape transférée.",
        "avis" => "Demande d'avis envoyée.",
        "avis-donne" => "Avis donné.",
        "annotation" => "Annotation ajoutée.",
        "brouillon" => "Dossier remis en brouillon : corrigez-le, puis envoyez-le dans le circuit.",
        "enregistre" => "Brouillon enregistré.",
        "envoye" => "Dossier envoyé dans le circuit.",
        _ => return None,
    })
}

fn human_size(bytes: i64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} Mo", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{} ko", b / 1024),
        b => format!("{b} o"),
    }
}

fn parse_id(id: &str) -> UiResult<DossierId> {
    id.parse().map_err(|_| not_found())
}

/// Whether a document is a PES V2 file (XML named or typed as such).
fn is_xml(media_type: &str, name: &str) -> bool {
    media_type.contains("xml") || name.to_ascii_lowercase().ends_with(".xml")
}

fn pes_view(bytes: &[u8]) -> Result<PesView, String> {
    let summary = seing_signer::pes::summary::summarize(bytes).map_err(|e| e.to_string())?;
    let mut total = 0i64;
    let mut pieces = 0;
    let rows = summary
        .bordereaux
        .iter()
        .map(|b| {
            let cents = b.amount.as_deref().and_then(format::cents);
            total += cents.unwrap_or_default();
            pieces += b.pieces;
            BordereauRow {
                exercice: b.exercice.clone().unwrap_or_default(),
                number: b.number.clone().unwrap_or_default(),
                kind: b.kind.clone().unwrap_or_default(),
                domain: b.domain.label(),
                pieces: match b.declared_pieces {
                    Some(declared) if declared as usize != b.pieces => {
                        format!("{} ({declared} déclarées)", b.pieces)
                    }
                    _ => b.pieces.to_string(),
                },
                amount: match (cents, &b.amount) {
                    (Some(c), _) => format::euros(c),
                    (None, Some(raw)) => raw.clone(),
                    (None, None) => String::new(),
                },
                signed: b.signed,
            }
        })
        .collect();
    Ok(PesView {
        budget: summary.budget.unwrap_or_default(),
        rows,
        total: format::euros(total),
        pieces,
    })
}

/// The desks the person acts from or for in this circuit now (held, or through a delegation).
async fn acting_desks(
    state: &ApiState,
    person: &Person,
    held: &[DeskId],
    circuit: seing_engine::ids::CircuitId,
) -> UiResult<Vec<DeskId>> {
    let now = OffsetDateTime::now_utc();
    let mut desks = held.to_vec();
    for d in state.engine.delegations(person.actor).await? {
        if held.contains(&d.to)
            && d.starts_at <= now
            && now < d.ends_at
            && (d.circuits.is_empty() || d.circuits.contains(&circuit))
        {
            desks.push(d.from);
        }
    }
    Ok(desks)
}

/// `GET /dossiers/{id}`.
pub async fn page(
    State(state): State<Arc<ApiState>>,
    person: Person,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<DossierQuery>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let engine = &state.engine;
    let actor = person.actor;
    let dossier = engine.dossier(actor, id).await?;
    let directory = person.directory(&state).await?;
    let chrome = person.chrome(&state, &directory, "bureau").await?;
    let documents = engine.documents(actor, id).await?;
    let link = |d: &seing_engine::model::Document| DocLink {
        name: d.name.clone(),
        href: format!("/api/v1/dossiers/{id}/documents/{}", d.id),
        view: format!("/dossiers/{id}/voir/{}", d.id),
        size: human_size(d.size),
        role: match d.role {
            DocumentRole::Main => "Document principal",
            DocumentRole::Annex => "Annexe",
            DocumentRole::Signed => "Document signé",
            DocumentRole::Signature => "Fichier de signature",
        },
    };
    let main_doc = documents.iter().find(|d| d.role == DocumentRole::Main);
    let (mut pdf, mut pes, mut pes_error) = (false, None, None);
    if let Some(main) = main_doc {
        if main.media_type == "application/pdf" {
            pdf = true;
        } else if is_xml(&main.media_type, &main.name) {
            let bytes = engine.document_bytes(actor, id, &main.id).await?;
            match tokio::task::spawn_blocking(move || pes_view(&bytes)).await {
                Ok(Ok(view)) => pes = Some(view),
                Ok(Err(reason)) => pes_error = Some(reason),
                Err(e) => return Err(ApiError::Internal(e.to_string()).into()),
            }
        }
    }
    let circuit = engine.circuit(actor, dossier.circuit).await?;
    let held: Vec<DeskId> = directory
        .desks
        .iter()
        .filter(|d| d.holders.contains(&actor.user))
        .map(|d| d.id)
        .collect();
    let acting = acting_desks(&state, &person, &held, dossier.circuit).await?;
    let current = (dossier.state == DossierState::Pending)
        .then(|| dossier.steps.get(dossier.current_step))
        .flatten();
    let my_turn = current.is_some_and(|s| s.waiting_desks().iter().any(|d| acting.contains(d)));
    let emitter = acting.contains(&dossier.emitter_desk);
    let unnumbered = dossier.state == DossierState::Transmitted
        && recovery::unnumbered_pes(engine, actor.tenant)
            .await
            .map_err(ApiError::from)?
            .iter()
            .any(|p| p.dossier == id);
    let journal = engine.dossier_journal(actor, id).await?;
    let last_step_action = journal
        .iter()
        .rev()
        .find(|e| matches!(e.action.as_str(), "visa" | "sign" | "seal" | "undo"));
    let can_undo = !my_turn
        && matches!(
            dossier.state,
            DossierState::Pending | DossierState::Finished
        )
        && last_step_action.is_some_and(|e| e.action != "undo" && e.user == Some(actor.user));
    // Opinions asked of the person's desks and not answered yet, read from the journal.
    let detail = |e: &seing_engine::journal::JournalEntry| -> serde_json::Value {
        serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null)
    };
    let answered: Vec<String> = journal
        .iter()
        .filter(|e| e.action == "opinion.answer")
        .filter_map(|e| detail(e)["opinion"].as_str().map(str::to_owned))
        .collect();
    let opinions = journal
        .iter()
        .filter(|e| e.action == "opinion.ask")
        .filter_map(|e| {
            let d = detail(e);
            let id = d["opinion"].as_str()?.to_owned();
            let desk: DeskId = d["desk"].as_str()?.parse().ok()?;
            (acting.contains(&desk) && !answered.contains(&id)).then(|| OpenOpinion {
                id,
                asked_by: e.desk.map(|d| directory.desk_name(d)).unwrap_or_default(),
                question: d["question"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    let steps = dossier
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepRow {
            number: i + 1,
            action: format::step(s.action),
            desks: s
                .desks
                .iter()
                .map(|d| directory.desk_name(*d))
                .collect::<Vec<_>>()
                .join(", "),
            status: if dossier.state == DossierState::Pending && i == dossier.current_step {
                "current"
            } else if i < dossier.current_step
                || !matches!(dossier.state, DossierState::Pending | DossierState::Draft)
                    && (s.is_complete() || s.action.is_connector())
                    && dossier.state != DossierState::Rejected
            {
                "done"
            } else {
                "todo"
            },
        })
        .collect();
    let notes = engine
        .annotations(actor, id)
        .await?
        .into_iter()
        .map(|a| NoteRow {
            author: format!(
                "{} ({})",
                directory.user_name(a.user),
                directory.desk_name(a.desk)
            ),
            private: a.visibility == Visibility::Private,
            body: a.body,
        })
        .collect();
    let journal = journal
        .iter()
        .map(|e| {
            let detail: serde_json::Value =
                serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null);
            let note = ["reason", "annotation", "question", "answer", "body"]
                .iter()
                .find_map(|k| detail.get(*k).and_then(|v| v.as_str()))
                .unwrap_or_default()
                .to_owned();
            let mut who = e
                .user
                .map(|u| directory.user_name(u))
                .unwrap_or_else(|| "seing".to_owned());
            if let Some(desk) = e.desk {
                who.push_str(&format!(" — {}", directory.desk_name(desk)));
            }
            if let Some(absent) = e.on_behalf_of {
                who.push_str(&format!(
                    ", pour le compte de {}",
                    directory.desk_name(absent)
                ));
            }
            JournalRow {
                at: seing_engine::clock::parse_time(&e.at)
                    .map(format::date_time)
                    .unwrap_or_else(|| e.at.clone()),
                action: format::journal_action(&e.action),
                who,
                note,
            }
        })
        .collect();
    let page = DossierPage {
        chrome,
        id: id.to_string(),
        title: dossier.title.clone(),
        state: format::state(dossier.state),
        circuit: circuit.name,
        emitter: directory.desk_name(dossier.emitter_desk),
        created: format::date_time(dossier.created_at),
        deadline: dossier.deadline.map(format::date).unwrap_or_default(),
        late: dossier.late,
        version: dossier.version,
        metadata: dossier
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), format::meta_value(v)))
            .collect(),
        main: main_doc.map(link),
        pdf,
        pes,
        pes_error,
        annexes: documents
            .iter()
            .filter(|d| d.role == DocumentRole::Annex)
            .map(link)
            .collect(),
        produced: documents
            .iter()
            .filter(|d| matches!(d.role, DocumentRole::Signed | DocumentRole::Signature))
            .map(link)
            .collect(),
        steps,
        notes,
        journal,
        can_visa: my_turn && current.is_some_and(|s| s.action == StepAction::Visa),
        can_sign: my_turn && current.is_some_and(|s| s.action == StepAction::Signature),
        can_act: my_turn,
        can_undo,
        rejection: dossier.rejection.as_ref().map(|r| RejectionView {
            by: format::rejection_origin(r.origin),
            step: match dossier.steps.get(r.step) {
                Some(step) => format!("{} ({})", r.step + 1, format::step(step.action)),
                None => (r.step + 1).to_string(),
            },
            at: format::date_time(r.at),
            reason: r.reason.clone(),
        }),
        unnumbered,
        admin: person.admin,
        can_recycle: emitter && dossier.state == DossierState::Rejected,
        can_edit_draft: emitter && dossier.state == DossierState::Draft,
        opinions,
        desks: directory
            .desks
            .iter()
            .map(|d| DeskOption {
                id: d.id.to_string(),
                name: d.name.clone(),
            })
            .collect(),
        notice: notice(query.fait.as_deref()),
    };
    render(&page)
}

/// `GET /dossiers/{id}/voir/{document}`: a document shown in the page (PDF inline, anything
/// else as a download), same access rules as the API's download.
pub async fn view_document(
    State(state): State<Arc<ApiState>>,
    person: Person,
    Path((id, document)): Path<(String, String)>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let meta = state
        .engine
        .documents(person.actor, id)
        .await?
        .into_iter()
        .find(|d| d.id == document)
        .ok_or_else(not_found)?;
    let bytes = state
        .engine
        .document_bytes(person.actor, id, &document)
        .await?;
    let pdf = meta.media_type == "application/pdf";
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if pdf {
            "application/pdf"
        } else {
            "application/octet-stream"
        }),
    );
    let name = meta.name.replace(
        |c: char| !c.is_ascii_graphic() || c == '"' || c == '\\',
        "_",
    );
    let disposition = format!(
        "{}; filename=\"{name}\"",
        if pdf { "inline" } else { "attachment" }
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A form with only the version the page showed.
#[derive(Debug, Deserialize)]
pub struct VersionForm {
    version: Option<i64>,
    annotation: Option<String>,
}

fn back(id: DossierId, done: &str) -> Response {
    see_other(&format!("/dossiers/{id}?fait={done}"))
}

fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `POST /dossiers/{id}/viser`.
pub async fn visa(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<VersionForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let input = ActionInput {
        version: posted.form.version,
        metadata: Default::default(),
        annotation: text(posted.form.annotation),
    };
    state.engine.visa(posted.person.actor, id, input).await?;
    Ok(back(id, "visa"))
}

/// `POST /dossiers/{id}/recycler`: a rejected dossier back to draft, for its emitter to correct.
pub async fn recycle(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<VersionForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    state
        .engine
        .recycle(posted.person.actor, id, posted.form.version)
        .await?;
    Ok(back(id, "brouillon"))
}

/// A draft's metadata as typed in its form (`meta.<key>` fields, `new_key`/`new_value`), with
/// each existing value read back in its own type.
fn draft_metadata(current: &Metadata, form: &[(String, String)]) -> Result<Metadata, ApiError> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mut metadata = Metadata::new();
    for (key, value) in form {
        let Some(name) = key.strip_prefix("meta.") else {
            continue;
        };
        let value = value.trim();
        let invalid = |what: &str| ApiError::invalid(key.as_str(), format!("« {name} » : {what}"));
        let typed = match current.get(name) {
            Some(MetaValue::Integer(_)) => MetaValue::Integer(
                value
                    .parse()
                    .map_err(|_| invalid("nombre entier attendu"))?,
            ),
            Some(MetaValue::Number(_)) => MetaValue::Number(
                value
                    .replace(',', ".")
                    .parse()
                    .map_err(|_| invalid("nombre attendu"))?,
            ),
            Some(MetaValue::Bool(_)) => MetaValue::Bool(match value {
                "oui" | "true" => true,
                "non" | "false" => false,
                _ => return Err(invalid("« oui » ou « non » attendu")),
            }),
            Some(MetaValue::Text(_)) if !value.is_empty() => MetaValue::Text(value.to_owned()),
            Some(MetaValue::Text(_)) => return Err(invalid("valeur vide")),
            None => return Err(invalid("information inconnue de ce dossier")),
        };
        metadata.insert(name.to_owned(), typed);
    }
    let (key, value) = (field("new_key"), field("new_value"));
    match (key.is_empty(), value.is_empty()) {
        (true, true) => {}
        (false, false) => {
            metadata.insert(key, MetaValue::Text(value));
        }
        _ => {
            return Err(ApiError::invalid(
                "new_key",
                "une information ajoutée a un nom et une valeur",
            ));
        }
    }
    Ok(metadata)
}

/// `POST /dossiers/{id}/brouillon`: a draft corrected (its metadata), then with
/// `action=envoyer` sent into its circuit.
pub async fn update_draft(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<Vec<(String, String)>>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let actor = posted.person.actor;
    let form = &posted.form;
    let version = form
        .iter()
        .find(|(k, _)| k == "version")
        .and_then(|(_, v)| v.parse().ok());
    let current = state.engine.dossier(actor, id).await?;
    let metadata = draft_metadata(&current.metadata, form)?;
    state
        .engine
        .update_draft(actor, id, metadata, version)
        .await?;
    if form.iter().any(|(k, v)| k == "action" && v == "envoyer") {
        state.engine.submit(actor, id, None).await?;
        return Ok(back(id, "envoye"));
    }
    Ok(back(id, "enregistre"))
}

/// `POST /dossiers/{id}/supprimer`: a draft deleted (its journal entries stay).
pub async fn delete_draft(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<EmptyForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    state.engine.delete_draft(posted.person.actor, id).await?;
    Ok(see_other("/bureau"))
}

/// The reject form.
#[derive(Debug, Deserialize)]
pub struct RejectForm {
    version: Option<i64>,
    reason: String,
}

/// `POST /dossiers/{id}/rejeter` (the reason is required).
pub async fn reject(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<RejectForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let input = ActionInput {
        version: posted.form.version,
        ..Default::default()
    };
    state
        .engine
        .reject(posted.person.actor, id, posted.form.reason.trim(), input)
        .await?;
    Ok(back(id, "rejet"))
}

/// An empty form (only its CSRF token).
#[derive(Debug, Deserialize)]
pub struct EmptyForm {}

/// `POST /dossiers/{id}/remords`.
pub async fn undo(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<EmptyForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    state.engine.undo(posted.person.actor, id).await?;
    Ok(back(id, "remords"))
}

/// The transfer form.
#[derive(Debug, Deserialize)]
pub struct TransferForm {
    version: Option<i64>,
    to: String,
}

/// `POST /dossiers/{id}/transferer`.
pub async fn transfer(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<TransferForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let to: DeskId = posted
        .form
        .to
        .parse()
        .map_err(|_| ApiError::invalid("to", "choisissez un bureau"))?;
    state
        .engine
        .transfer(posted.person.actor, id, to, posted.form.version)
        .await?;
    Ok(back(id, "transfert"))
}

/// The second-opinion form.
#[derive(Debug, Deserialize)]
pub struct OpinionForm {
    desk: String,
    question: String,
}

/// `POST /dossiers/{id}/avis`.
pub async fn ask_opinion(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<OpinionForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let desk: DeskId = posted
        .form
        .desk
        .parse()
        .map_err(|_| ApiError::invalid("desk", "choisissez un bureau"))?;
    state
        .engine
        .ask_opinion(posted.person.actor, id, desk, posted.form.question.trim())
        .await?;
    Ok(back(id, "avis"))
}

/// The answer to a second opinion.
#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    answer: String,
}

/// `POST /dossiers/{id}/avis/{opinion}`: answers a second opinion asked of the person's desk.
pub async fn answer_opinion(
    State(state): State<Arc<ApiState>>,
    Path((id, opinion)): Path<(String, String)>,
    posted: Posted<AnswerForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let opinion = opinion.parse().map_err(|_| not_found())?;
    state
        .engine
        .answer_opinion(posted.person.actor, id, opinion, posted.form.answer.trim())
        .await?;
    Ok(back(id, "avis-donne"))
}

/// The annotation form.
#[derive(Debug, Deserialize)]
pub struct NoteForm {
    body: String,
    visibility: Option<String>,
}

/// `POST /dossiers/{id}/annoter`.
pub async fn annotate(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    posted: Posted<NoteForm>,
) -> UiResult<Response> {
    let id = parse_id(&id)?;
    let visibility = match posted.form.visibility.as_deref() {
        Some("private") => Visibility::Private,
        _ => Visibility::Public,
    };
    state
        .engine
        .annotate(posted.person.actor, id, posted.form.body.trim(), visibility)
        .await?;
    Ok(back(id, "annotation"))
}
