//! Errors of the API as `application/problem+json` (RFC 9457): every error of the engine and of
//! the HTTP layer is mapped here, once.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seing_engine::EngineError;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An engine refusal or failure.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No valid credential was presented.
    #[error("authentification requise (jeton d'API ou session)")]
    Unauthenticated,
    /// The caller's role does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A state-changing request of a session came without its CSRF token.
    #[error("jeton CSRF absent ou invalide (en-tête X-CSRF-Token)")]
    Csrf,
    /// The request is malformed (syntax).
    #[error("{0}")]
    BadRequest(String),
    /// A field is missing or invalid (semantics).
    #[error("{field} : {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The body is larger than the configured limit.
    #[error("requête trop volumineuse (limite configurée : max_upload_bytes)")]
    TooLarge,
    /// The body has an unsupported media type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many failed logins.
    #[error("trop de tentatives de connexion, réessayez dans {retry_after} s")]
    TooManyAttempts {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The `Idempotency-Key` was used with another request.
    #[error("cette clé d'idempotence a déjà servi pour une autre requête")]
    IdempotencyConflict,
    /// No such route or resource.
    #[error("ressource introuvable")]
    NotFound,
    /// An outside platform (S²LOW, an archive system) could not be reached or failed.
    #[error("{0}")]
    Upstream(String),
    /// A server-side failure (details are logged, never shown).
    #[error("{0}")]
    Internal(String),
}

/// The body of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short title of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a person (French).
    pub detail: String,
    /// The offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// Status, problem slug and title.
    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Engine(e) => match e {
                EngineError::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found", "Introuvable"),
                EngineError::Forbidden { .. } => {
                    (StatusCode::FORBIDDEN, "forbidden", "Action refusée")
                }
                EngineError::Conflict { .. } => (StatusCode::CONFLICT, "conflict", "Conflit"),
                EngineError::Invalid { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "Donnée invalide",
                ),
                EngineError::Template { .. }
                | EngineError::Storage(_)
                | EngineError::Documents(_)
                | EngineError::Corrupted(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Erreur interne",
                ),
            },
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Non authentifié",
            ),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Action refusée"),
            Self::Csrf => (StatusCode::FORBIDDEN, "csrf", "Jeton CSRF invalide"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Requête mal formée"),
            Self::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "Donnée invalide",
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Requête trop volumineuse",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Type de contenu non pris en charge",
            ),
            Self::TooManyAttempts { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                "Trop de tentatives",
            ),
            Self::IdempotencyConflict => (
                StatusCode::CONFLICT,
                "idempotency-conflict",
                "Clé d'idempotence réutilisée",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found", "Introuvable"),
            Self::Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                "upstream",
                "Plateforme extérieure en échec",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Erreur interne",
            ),
        }
    }

    /// Shorthand for [`ApiError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Maps the status of an axum rejection: only 413 and 415 are kept apart.
    fn from_status(status: StatusCode, text: String) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(text),
            StatusCode::UNPROCESSABLE_ENTITY => Self::invalid("body", text),
            _ => Self::BadRequest(text),
        }
    }
}

impl From<seing_connectors::Error> for ApiError {
    fn from(error: seing_connectors::Error) -> Self {
        use seing_connectors::Error;
        match error {
            Error::Invalid(problems) => Self::Invalid {
                field: problems
                    .first()
                    .map(|p| p.field.clone())
                    .unwrap_or_default(),
                reason: seing_connectors::Problem::join(&problems),
            },
            Error::Storage(_) | Error::Io { .. } => Self::Internal(error.to_string()),
            Error::NotFound(entity) => Self::Engine(EngineError::NotFound { entity }),
            Error::Conflict(reason) => Self::Engine(EngineError::Conflict { reason }),
            Error::Transport(_) => Self::Upstream(error.to_string()),
            other => Self::invalid("settings", other.to_string()),
        }
    }
}

impl ApiError {
    /// The status and the detail shown to the client (server errors are logged, not shown).
    pub fn status_and_detail(&self) -> (StatusCode, String, Option<String>) {
        let (status, _, _) = self.kind();
        let (detail, field) = match self {
            // A foreign id and an unknown one must answer the same bytes: only the entity kind.
            Self::Engine(EngineError::NotFound { entity }) => {
                (format!("{entity} introuvable"), None)
            }
            Self::Engine(EngineError::Forbidden { reason }) => (reason.clone(), None),
            Self::Engine(EngineError::Conflict { reason }) => (reason.clone(), None),
            Self::Engine(EngineError::Invalid { field, reason }) => {
                (reason.clone(), Some(field.clone()))
            }
            Self::Invalid { field, reason } => (reason.clone(), Some(field.clone())),
            Self::Upstream(reason) => (reason.clone(), None),
            _ if status.is_server_error() => {
                tracing::error!(error = %self, "request failed");
                (
                    "erreur interne du service ; elle est consignée dans le journal du serveur"
                        .to_owned(),
                    None,
                )
            }
            other => (other.to_string(), None),
        };
        (status, detail, field)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.kind();
        let (_, detail, field) = self.status_and_detail();
        let problem = Problem {
            kind: format!("urn:seing:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail,
            field,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Self::TooManyAttempts { retry_after } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if let Self::Unauthenticated = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"seing\""),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::from_status(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        // A malformed id is as unknown as a well-formed one that does not exist.
        Self::NotFound
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid("query", rejection.body_text())
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(rejection: MultipartRejection) -> Self {
        Self::from_status(rejection.status(), rejection.body_text())
    }
}

impl From<MultipartError> for ApiError {
    fn from(error: MultipartError) -> Self {
        Self::from_status(error.status(), error.body_text())
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
