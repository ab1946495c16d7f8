//! The values the engine takes and returns: directory entries, dossiers, documents, annotations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::circuit::Circuit;
use crate::ids::{
    AnnotationId, CircuitId, DelegationId, DeskId, DossierId, OpinionId, TenantId, UserId,
};
use crate::metadata::Metadata;
use crate::workflow::{DossierState, RejectionOrigin, StepInstance};

/// Who calls the engine: an authenticated user of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The user's tenant.
    pub tenant: TenantId,
    /// The user.
    pub user: UserId,
}

/// An authority using the service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    /// Identifier.
    pub id: TenantId,
    /// Name ("Commune de Saint-Martin").
    pub name: String,
    /// SIREN number (9 digits, Luhn-valid).
    pub siren: String,
    /// Département code ("35", "2A", "974").
    pub departement: String,
}

/// What is needed to create a tenant and its first administrator.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Name.
    pub name: String,
    /// SIREN.
    pub siren: String,
    /// Département.
    pub departement: String,
    /// Login of the first administrator.
    pub admin_login: String,
    /// Display name of the first administrator.
    pub admin_name: String,
}

/// A user of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Identifier.
    pub id: UserId,
    /// Login.
    pub login: String,
    /// Display name.
    pub display_name: String,
    /// Tenant administrator (manages desks, circuits, may bypass steps).
    pub admin: bool,
}

/// A desk (*bureau*).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desk {
    /// Identifier.
    pub id: DeskId,
    /// Name ("Maire", "Finances").
    pub name: String,
    /// Parent desk (N+1).
    pub parent: Option<DeskId>,
    /// Users who hold the desk.
    pub holders: Vec<UserId>,
}

/// A delegation: `from` is absent between two times and `to` acts for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delegation {
    /// Identifier.
    pub id: DelegationId,
    /// The absent desk.
    pub from: DeskId,
    /// The replacing desk.
    pub to: DeskId,
    /// Start (inclusive).
    pub starts_at: OffsetDateTime,
    /// End (exclusive).
    pub ends_at: OffsetDateTime,
    /// Only for these circuits (empty: all circuits).
    pub circuits: Vec<CircuitId>,
}

/// A tenant's circuit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitInfo {
    /// Identifier.
    pub id: CircuitId,
    /// Name, unique in the tenant.
    pub name: String,
    /// Template it was made from.
    pub template: String,
    /// The definition with the tenant's desks.
    pub spec: Circuit,
}

/// A document to add.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// File name.
    pub name: String,
    /// Media type (`application/pdf`, `text/xml`).
    pub media_type: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// The role of a document in a dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentRole {
    /// The main document.
    Main,
    /// An annex.
    Annex,
    /// A signed version of a document (PAdES PDF, signed PES).
    Signed,
    /// A detached signature file (CAdES `.p7s`, XAdES).
    Signature,
}

impl DocumentRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Annex => "annex",
            Self::Signed => "signed",
            Self::Signature => "signature",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [Self::Main, Self::Annex, Self::Signed, Self::Signature]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    /// Identifier (UUID text).
    pub id: String,
    /// Role.
    pub role: DocumentRole,
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// SHA-256 (hex), the address in the document store.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// The step whose action produced it (signed documents and signatures).
    pub step: Option<usize>,
}

/// What the emitter gives to create a dossier (a draft).
#[derive(Debug, Clone)]
pub struct NewDossier {
    /// The circuit.
    pub circuit: CircuitId,
    /// The emitting desk (the creator must act for it).
    pub emitter_desk: DeskId,
    /// Title.
    pub title: String,
    /// Main document.
    pub main: NewDocument,
    /// Annexes.
    pub annexes: Vec<NewDocument>,
    /// Metadata.
    pub metadata: Metadata,
    /// Desks chosen at creation, by the circuit's keys.
    pub chosen_desks: BTreeMap<String, DeskId>,
    /// Deadline.
    pub deadline: Option<OffsetDateTime>,
}

/// A dossier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dossier {
    /// Identifier.
    pub id: DossierId,
    /// Circuit.
    pub circuit: CircuitId,
    /// Title.
    pub title: String,
    /// Emitting desk.
    pub emitter_desk: DeskId,
    /// Emitting user.
    pub emitter_user: UserId,
    /// State.
    pub state: DossierState,
    /// Current step index.
    pub current_step: usize,
    /// The resolved steps (empty for a draft).
    pub steps: Vec<StepInstance>,
    /// Metadata.
    pub metadata: Metadata,
    /// Desks chosen at creation.
    pub chosen_desks: BTreeMap<String, DeskId>,
    /// Deadline.
    pub deadline: Option<OffsetDateTime>,
    /// True when the deadline has passed while the dossier still waits for a desk.
    pub late: bool,
    /// Why it was sent back to its emitter, while it is rejected.
    pub rejection: Option<Rejection>,
    /// Optimistic-concurrency version, incremented by every change.
    pub version: i64,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Why a dossier went back to its emitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Who rejected or refused it.
    pub origin: RejectionOrigin,
    /// The reason (a desk's words, or the outside system's reasons).
    pub reason: String,
    /// The step it was rejected at.
    pub step: usize,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Why a dossier is in a desk's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxReason {
    /// The desk must act on the current step.
    Act,
    /// A draft of the desk.
    Draft,
    /// Rejected back to the desk (its emitter).
    Rejected,
    /// The desk is asked a second opinion.
    Opinion,
}

impl InboxReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Act => "act",
            Self::Draft => "draft",
            Self::Rejected => "rejected",
            Self::Opinion => "opinion",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [Self::Act, Self::Draft, Self::Rejected, Self::Opinion]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// One line of a desk's list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DossierSummary {
    /// Identifier.
    pub id: DossierId,
    /// Title.
    pub title: String,
    /// State.
    pub state: DossierState,
    /// Current step.
    pub current_step: usize,
    /// Why it is in this list.
    pub reason: InboxReason,
    /// Deadline.
    pub deadline: Option<OffsetDateTime>,
    /// Past its deadline.
    pub late: bool,
}

/// A page of results and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass it to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Who may read an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Everyone who sees the dossier.
    Public,
    /// Only the author's desk.
    Private,
}

/// An annotation on a dossier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    /// Identifier.
    pub id: AnnotationId,
    /// Author.
    pub user: UserId,
    /// Author's desk.
    pub desk: DeskId,
    /// Visibility.
    pub visibility: Visibility,
    /// Text.
    pub body: String,
}

/// A second opinion asked of a desk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opinion {
    /// Identifier.
    pub id: OpinionId,
    /// The desk asked.
    pub desk: DeskId,
    /// The question.
    pub question: String,
    /// The answer, once given.
    pub answer: Option<String>,
}

/// Common inputs of visa, sign, seal and reject.
#[derive(Debug, Clone, Default)]
pub struct ActionInput {
    /// The version the caller saw; a different current version is a conflict.
    pub version: Option<i64>,
    /// Metadata to set before the step's required metadata are checked.
    pub metadata: Metadata,
    /// A public annotation recorded with the action.
    pub annotation: Option<String>,
}

/// What a signature or seal action hands over: the signed bytes, made by the caller.
#[derive(Debug, Clone, Default)]
pub struct SignedOutput {
    /// Signed documents (PAdES PDF, signed PES).
    pub documents: Vec<NewDocument>,
    /// Detached signature files.
    pub signatures: Vec<NewDocument>,
}
