//! The one error type of the engine; its variants map to HTTP statuses in the API
//! (`NotFound` 404, `Forbidden` 403, `Conflict` 409, `Invalid` 422, the rest 500).

use crate::storage::StorageError;

/// Everything an engine operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The entity does not exist in the caller's tenant (foreign ids look exactly the same).
    #[error("{entity} not found")]
    NotFound {
        /// Kind of entity looked up ("dossier", "desk", …).
        entity: &'static str,
    },
    /// The caller may not do this; `reason` says why, in French for the end user.
    #[error("action refusée : {reason}")]
    Forbidden {
        /// Why the action is refused.
        reason: String,
    },
    /// The action does not fit the current state (someone acted first, wrong step, …).
    #[error("conflit : {reason}")]
    Conflict {
        /// What conflicts.
        reason: String,
    },
    /// An input is malformed or missing.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A circuit template file is broken.
    #[error("circuit template {file}: {field}: {reason}")]
    Template {
        /// The template file.
        file: String,
        /// The field (dotted path) at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The document store failed.
    #[error("document store: {0}")]
    Documents(#[from] std::io::Error),
    /// Stored data could not be decoded (corrupted row).
    #[error("corrupted stored data: {0}")]
    Corrupted(String),
}

impl EngineError {
    /// Shorthand for [`EngineError::Forbidden`].
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::Forbidden {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`EngineError::Conflict`].
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::Conflict {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`EngineError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(error: sqlx::Error) -> Self {
        Self::Storage(StorageError::from(error))
    }
}

/// Result alias of the engine.
pub type EngineResult<T> = Result<T, EngineError>;
