//! Canonicalization (C14N 1.0, 1.1, exclusive; with or without comments) of parsed documents,
//! straight into a digest when only the hash is needed.

pub use bergshamra_c14n::C14nMode;
use bergshamra_c14n::C14nSink;
use bergshamra_xml::NodeSet;
use bergshamra_xml::uppsala::{Document, NodeId};
use sha2::Digest as _;

use super::XmlError;
use crate::digest::DigestAlgorithm;

/// The nodes a canonicalization covers: a subtree (or the whole document) minus some subtrees.
#[derive(Debug, Clone, Copy)]
pub struct Subtree<'a> {
    /// The apex: an element, or the document node for the whole document.
    pub apex: NodeId,
    /// Subtrees left out (an enveloped signature).
    pub excluded: &'a [NodeId],
    /// Whether comments are kept (XML-DSig same-document references drop them).
    pub with_comments: bool,
}

fn node_set(doc: &Document<'_>, subtree: Subtree<'_>) -> NodeSet {
    let base = if subtree.with_comments {
        NodeSet::tree_with_comments(subtree.apex, doc)
    } else {
        NodeSet::tree_without_comments(subtree.apex, doc)
    };
    subtree.excluded.iter().fold(base, |set, &excluded| {
        set.subtract(&NodeSet::tree_with_comments(excluded, doc))
    })
}

/// Canonicalizes a subtree into `sink`.
pub fn canonicalize_to<W: C14nSink>(
    doc: &Document<'_>,
    subtree: Subtree<'_>,
    mode: C14nMode,
    inclusive_prefixes: &[String],
    sink: &mut W,
) -> Result<(), XmlError> {
    let whole = subtree.apex == doc.root() && subtree.excluded.is_empty();
    let set = (!whole).then(|| node_set(doc, subtree));
    let mode = match (mode, subtree.with_comments || whole) {
        (C14nMode::InclusiveWithComments, false) => C14nMode::Inclusive,
        (C14nMode::Inclusive11WithComments, false) => C14nMode::Inclusive11,
        (C14nMode::ExclusiveWithComments, false) => C14nMode::Exclusive,
        (m, _) => m,
    };
    bergshamra_c14n::canonicalize_doc_to(doc, mode, set.as_ref(), inclusive_prefixes, sink)
        .map_err(|e| XmlError::Canonicalization(e.to_string()))
}

/// Canonicalizes a subtree into a byte vector.
pub fn canonicalize(
    doc: &Document<'_>,
    subtree: Subtree<'_>,
    mode: C14nMode,
    inclusive_prefixes: &[String],
) -> Result<Vec<u8>, XmlError> {
    let mut out = Vec::new();
    canonicalize_to(doc, subtree, mode, inclusive_prefixes, &mut out)?;
    Ok(out)
}

/// Hashes a subtree's canonical form without holding it in memory.
pub fn digest(
    doc: &Document<'_>,
    subtree: Subtree<'_>,
    mode: C14nMode,
    inclusive_prefixes: &[String],
    algorithm: DigestAlgorithm,
) -> Result<Vec<u8>, XmlError> {
    let mut sink = HashSink::new(algorithm);
    canonicalize_to(doc, subtree, mode, inclusive_prefixes, &mut sink)?;
    Ok(sink.finish())
}

/// A canonicalization sink that hashes.
enum HashSink {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl HashSink {
    fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha384 => Self::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl C14nSink for HashSink {
    fn write(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha384(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }
}
