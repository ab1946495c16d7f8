//! The one error type of `seing-certs-test`.

/// Anything that can go wrong while building test fixtures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// DER encoding or decoding failed.
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// The X.509 builder failed.
    #[error("certificate builder: {0}")]
    Builder(#[from] x509_cert::builder::Error),
    /// A key could not be generated, read or used.
    #[error("key: {0}")]
    Key(String),
    /// An external tool (openssl, softhsm2-util, pkcs11-tool) failed or is missing.
    #[error("{tool}: {message}")]
    Tool {
        /// The program name.
        tool: String,
        /// Its error output or why it could not run.
        message: String,
    },
    /// The caller gave an argument that cannot be used.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The test TSA could not start.
    #[error("TSA: {0}")]
    Tsa(String),
}

impl Error {
    /// Wraps an I/O error with the action and path it concerns.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
