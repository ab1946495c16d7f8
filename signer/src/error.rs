//! The error type of `seing-signer`.

use std::path::PathBuf;

/// Everything that can go wrong while loading keys, preparing, signing, finalizing or verifying.
///
/// Messages are one readable line and never contain a PIN or a password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error on a stream that has no path.
    #[error("I/O error: {0}")]
    Stream(#[from] std::io::Error),
    /// A PKCS#11 URI could not be understood.
    #[error("invalid PKCS#11 URI: {0}")]
    Pkcs11Uri(String),
    /// The PKCS#11 module could not be loaded or initialized.
    #[error("cannot load PKCS#11 module {module}: {reason}")]
    Pkcs11Module {
        /// The module path.
        module: String,
        /// Why.
        reason: String,
    },
    /// No token matched the URI.
    #[error("no PKCS#11 token matches {0}")]
    TokenNotFound(String),
    /// The PIN was refused by the token.
    #[error("incorrect PIN for token {0}")]
    WrongPin(String),
    /// The token's user PIN is locked.
    #[error("the PIN of token {0} is locked")]
    PinLocked(String),
    /// The private key or certificate object was not found on the token.
    #[error("no {kind} matches {uri} on the token")]
    ObjectNotFound {
        /// "private key" or "certificate".
        kind: &'static str,
        /// The URI's object selector (never the PIN).
        uri: String,
    },
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 {operation} failed: {reason}")]
    Pkcs11 {
        /// What was being done.
        operation: &'static str,
        /// The module's answer.
        reason: String,
    },
    /// A key or certificate file could not be decoded, or the password is wrong.
    #[error("cannot load key: {0}")]
    Key(String),
    /// The key type is not supported (only RSA and ECDSA P-256 are).
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// A certificate could not be parsed or is unusable.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A signature value handed to `finalize` does not verify against the signer's public key.
    #[error("signature value {index} does not match the signer's public key")]
    BadSignatureValue {
        /// Index of the value in the data-to-sign list.
        index: usize,
    },
    /// The number of signature values differs from the number of items to sign.
    #[error("expected {expected} signature values, got {got}")]
    SignatureCount {
        /// Items prepared.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// The state handed to `finalize` belongs to another format or is inconsistent.
    #[error("invalid signing state: {0}")]
    State(String),
    /// ASN.1 encoding or decoding failed.
    #[error("ASN.1: {0}")]
    Asn1(#[from] der::Error),
    /// The input document is not acceptable (encrypted PDF, damaged file, …).
    #[error("invalid input document: {0}")]
    Document(String),
    /// The input signature cannot be parsed.
    #[error("invalid signature structure: {0}")]
    Format(String),
    /// The timestamp authority failed.
    #[error("timestamp: {0}")]
    Timestamp(String),
    /// The request asks for something this format cannot do.
    #[error("unsupported request: {0}")]
    Unsupported(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
