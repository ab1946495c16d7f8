//! The `xades` profile in the prepare → sign → finalize model: an enveloped signature (last child
//! of the document element, over the whole document) or a detached one (a standalone signature
//! over one or more files).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::build::{ReferenceSpec, SignatureTemplate};
use super::{DataObjectFormat, SignedPropertiesSpec, XadesVersion, uri};
use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::key::SignatureValue;
use crate::model::{
    CertificateChain, DataToSign, Document, Level, Prepared, SignatureFormat, ToSign,
    check_signature_values,
};
use crate::xml::c14n::{self, Subtree};
use crate::xml::insert::{end_tag_position, insertions_at, write_with_insertions};
use crate::xml::{C14nMode, encoding, parse};

/// Enveloped or detached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packaging {
    /// The signature becomes the last child of the signed XML document's root element.
    Enveloped,
    /// A standalone signature over the document and these further files.
    Detached {
        /// More files signed by the same signature.
        more: Vec<PathBuf>,
    },
}

/// What to produce.
#[derive(Debug, Clone)]
pub struct XadesRequest {
    /// Enveloped or detached.
    pub packaging: Packaging,
    /// B-B, or B-T with a timestamp from `tsa_url`.
    pub level: Level,
    /// RFC 3161 time-stamping service for B-T.
    pub tsa_url: Option<String>,
    /// Role, place, policy (the signing time is fixed by `prepare`).
    pub role: Option<String>,
    /// Where the signature is produced.
    pub place: Option<super::ProductionPlace>,
    /// An optional signature policy.
    pub policy: Option<super::SignaturePolicy>,
}

/// The XAdES 1.3.2 format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Xades;

/// What `finalize` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct XadesState {
    template: SignatureTemplate,
    chain: CertificateChain,
    data_to_sign: DataToSign,
    level: Level,
    tsa_url: Option<String>,
    /// The original document (enveloped) or nothing (detached).
    #[serde(with = "crate::model::base64_bytes")]
    original: Vec<u8>,
    enveloped: bool,
}

fn mime_of(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".xml") {
        "text/xml"
    } else if lower.ends_with(".pdf") {
        "application/pdf"
    } else if lower.ends_with(".txt") {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// The URI a detached reference gives a file: its name, percent-encoded where needed.
fn file_uri(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".into());
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn signature_id() -> String {
    format!("xades-{}", uuid_like())
}

/// A random identifier (hex) for signature Ids, unique enough to never collide in a document.
pub(crate) fn uuid_like() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        bytes.copy_from_slice(&nanos.to_be_bytes()[4..]);
    }
    hex::encode(bytes)
}

impl SignatureFormat for Xades {
    type Request = XadesRequest;
    type State = XadesState;

    fn prepare(
        &self,
        document: &Document,
        request: &XadesRequest,
        chain: &CertificateChain,
    ) -> Result<Prepared<XadesState>> {
        request.level.tsa_url(request.tsa_url.as_deref())?;
        let spec = SignedPropertiesSpec {
            signing_time: time::OffsetDateTime::now_utc(),
            policy: request.policy.clone(),
            role: request.role.clone(),
            place: request.place.clone(),
        };
        let sid = signature_id();
        let (references, original) = match &request.packaging {
            Packaging::Enveloped => {
                let bytes = document.read_all()?;
                let decoded =
                    encoding::decode(&bytes).map_err(|e| Error::Document(e.to_string()))?;
                let doc =
                    parse::parse(&decoded.text).map_err(|e| Error::Document(e.to_string()))?;
                // URI="" selects the whole document without comments; the enveloped transform
                // removes our signature, which is not there yet.
                let digest = c14n::digest(
                    &doc,
                    Subtree {
                        apex: doc.root(),
                        excluded: &[],
                        with_comments: false,
                    },
                    C14nMode::Exclusive,
                    &[],
                    DigestAlgorithm::Sha256,
                )
                .map_err(|e| Error::Document(e.to_string()))?;
                let refs = vec![ReferenceSpec {
                    id: Some(format!("{sid}-ref-0")),
                    uri: String::new(),
                    transforms: vec![uri::ENVELOPED.into(), uri::EXC_C14N.into()],
                    digest,
                    data_object_format: Some(DataObjectFormat {
                        mime_type: "text/xml".into(),
                        description: None,
                    }),
                }];
                drop(doc);
                drop(decoded);
                (refs, bytes)
            }
            Packaging::Detached { more } => {
                let mut docs: Vec<(String, Document)> = vec![(
                    match document {
                        Document::File(p) => file_uri(p),
                        Document::Bytes(_) => "document".into(),
                    },
                    document.clone(),
                )];
                docs.extend(
                    more.iter()
                        .map(|p| (file_uri(p), Document::File(p.clone()))),
                );
                let mut refs = Vec::new();
                for (i, (name, doc)) in docs.iter().enumerate() {
                    refs.push(ReferenceSpec {
                        id: Some(format!("{sid}-ref-{i}")),
                        uri: name.clone(),
                        transforms: Vec::new(),
                        digest: doc.digest(DigestAlgorithm::Sha256)?,
                        data_object_format: Some(DataObjectFormat {
                            mime_type: mime_of(name).into(),
                            description: Some(name.clone()),
                        }),
                    });
                }
                (refs, Vec::new())
            }
        };
        let template =
            SignatureTemplate::build(&sid, XadesVersion::V132, &references, chain, &spec)?;
        let data_to_sign = DataToSign {
            items: vec![ToSign {
                label: sid.clone(),
                digest_algorithm: template.digest_algorithm(),
                digest: template.digest.clone(),
            }],
        };
        Ok(Prepared {
            data_to_sign: data_to_sign.clone(),
            state: XadesState {
                template,
                chain: chain.clone(),
                data_to_sign,
                level: request.level,
                tsa_url: request.tsa_url.clone(),
                enveloped: request.packaging == Packaging::Enveloped,
                original,
            },
        })
    }

    fn finalize(&self, state: XadesState, values: &[SignatureValue]) -> Result<Vec<u8>> {
        check_signature_values(&state.data_to_sign, &state.chain.signer, values)?;
        let value = &values[0];
        let token = match state.level.tsa_url(state.tsa_url.as_deref())? {
            None => None,
            Some(url) => {
                let input = state.template.timestamp_input(value)?;
                Some(request_timestamp(url, &input)?)
            }
        };
        let signature = state.template.assemble(value, token.as_deref());
        if !state.enveloped {
            let mut out = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".to_vec();
            out.extend_from_slice(signature.as_bytes());
            out.push(b'\n');
            return Ok(out);
        }
        let decoded =
            encoding::decode(&state.original).map_err(|e| Error::Document(e.to_string()))?;
        let doc = parse::parse(&decoded.text).map_err(|e| Error::Document(e.to_string()))?;
        let root = doc
            .document_element()
            .ok_or_else(|| Error::Document("no root element".into()))?;
        let pos = end_tag_position(&doc, root).map_err(|e| Error::Document(e.to_string()))?;
        let insertions = insertions_at(&decoded, vec![(pos, signature)])
            .map_err(|e| Error::Document(e.to_string()))?;
        let mut out = Vec::with_capacity(state.original.len() + insertions[0].bytes.len());
        write_with_insertions(&state.original, &insertions, &mut out)?;
        Ok(out)
    }
}

/// Asks the TSA for a token over `data` (SHA-256 imprint) and returns the token's DER.
fn request_timestamp(url: &str, data: &[u8]) -> Result<Vec<u8>> {
    let digest = DigestAlgorithm::Sha256.digest(data);
    crate::tsp::request_timestamp(
        url,
        DigestAlgorithm::Sha256,
        &digest,
        &crate::tsp::TspOptions::default(),
    )
    .map(|token| token.der)
    .map_err(|e| Error::Timestamp(e.to_string()))
}
