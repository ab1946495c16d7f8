//! The one error type of the crate.

use std::path::PathBuf;

use crate::problem::Problem;
use crate::s2low::{ActesTransaction, S2lowStatus};

/// Everything that can go wrong while building a package or reading a return.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input (metadata or files) breaks one or more rules; every problem is listed.
    #[error("{} problème(s) : {}", .0.len(), Problem::join(.0))]
    Invalid(Vec<Problem>),
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// An XML document is not well-formed, or is not the message that was expected.
    #[error("XML illisible : {0}")]
    Xml(String),
    /// A message is well-formed but does not say what its format requires.
    #[error("message non conforme : {0}")]
    Format(String),
    /// An outside platform could not be reached, timed out, failed (5xx) or answered something
    /// unreadable: retrying later may help.
    #[error("plateforme injoignable : {0}")]
    Transport(String),
    /// An outside platform refused the request and said why: retrying the same request cannot help.
    #[error("refusé par la plateforme : {0}")]
    Refused(String),
    /// The outside platform has this document already (a repeated sending).
    #[error("déjà reçu par la plateforme : {0}")]
    Duplicate(String),
    /// No such record in the caller's tenant (the kind of record is named).
    #[error("{0} introuvable")]
    NotFound(&'static str),
    /// The request contradicts what is recorded; the reason says what.
    #[error("{0}")]
    Conflict(String),
    /// S²LOW has the act's numéro interne already, in a transaction that can no longer go on
    /// (in error, refused or cancelled): the act needs a new number before it is sent again.
    #[error(
        "S²LOW a déjà le numéro interne {number} (transaction {transaction}, {}) : donnez un nouveau numéro interne à l'acte puis renvoyez-le",
        ended(*.status, .message.as_deref())
    )]
    NumberTaken {
        /// The numéro interne.
        number: String,
        /// The transaction holding it.
        transaction: ActesTransaction,
        /// Where that transaction stands.
        status: S2lowStatus,
        /// S²LOW's message on it, if any.
        message: Option<String>,
    },
    /// Another dossier of the authority already sent an act under this numéro interne (a
    /// prefecture takes each number once): the act needs a new number.
    #[error(
        "le numéro interne {number} a déjà servi à l'acte « {title} » (dossier {dossier}) : donnez un nouveau numéro interne à l'acte puis renvoyez-le"
    )]
    NumberUsed {
        /// The numéro interne.
        number: String,
        /// The dossier that used it.
        dossier: String,
        /// That dossier's title.
        title: String,
    },
    /// The notification's recipient cannot receive it: the address is not one, or its mail
    /// server refuses it for good (SMTP 5xx). The dossier needs another recipient.
    #[error(
        "le destinataire {recipient} ne peut pas recevoir la notification ({reason}) : corrigez « destinataire_email » puis renvoyez le dossier"
    )]
    RecipientRefused {
        /// The address, as given.
        recipient: String,
        /// Why, as the address parser or the mail server says.
        reason: String,
    },
    /// The database holding the connectors' records failed.
    #[error("base de données : {0}")]
    Storage(String),
    /// The output file exists already; nothing is overwritten.
    #[error("{} existe déjà", .0.display())]
    Exists(PathBuf),
    /// A webhook delivery's `Seing-Signature` does not check out.
    #[error("signature de webhook refusée : {0}")]
    WebhookSignature(&'static str),
}

/// How a transaction that can no longer go on ended, in French, with S²LOW's message.
fn ended(status: S2lowStatus, message: Option<&str>) -> String {
    let state = match status {
        S2lowStatus::Error => "en erreur".to_owned(),
        S2lowStatus::Cancelled => "annulée".to_owned(),
        S2lowStatus::Refused => "refusée".to_owned(),
        other => format!("au statut {other}"),
    };
    match message.filter(|m| !m.is_empty()) {
        Some(message) => format!("{state} : « {message} »"),
        None => state,
    }
}

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<roxmltree::Error> for Error {
    fn from(error: roxmltree::Error) -> Self {
        Self::Xml(error.to_string())
    }
}
