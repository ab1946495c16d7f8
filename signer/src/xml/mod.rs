//! XML plumbing shared by XAdES and PES: safe parsing, encoding detection and transcoding,
//! canonicalization, and insertion of new bytes into an untouched original byte stream.

pub mod c14n;
pub mod encoding;
pub mod insert;
pub mod parse;

pub use c14n::C14nMode;
pub use encoding::{DecodedXml, XmlEncoding};

/// Namespace of XML-DSig.
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Errors of the XML layer.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// The bytes are not in a supported or coherent character encoding.
    #[error("encodage : {0}")]
    Encoding(String),
    /// The document declares entities or external resources, which seing refuses to process.
    #[error("document refusé : {0}")]
    Forbidden(String),
    /// The document is not well-formed XML.
    #[error("XML mal formé : {0}")]
    Malformed(String),
    /// Canonicalization failed.
    #[error("canonicalisation : {0}")]
    Canonicalization(String),
}
