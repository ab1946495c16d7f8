//! Signing a PES_Aller: one XAdES-EPES (1.1.1) enveloped signature per unsigned bordereau, each
//! independent of the others, inserted into the original bytes.

use serde::{Deserialize, Serialize};

use super::summary::{bordereaux, has_signature_child, pes_root};
use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::key::{KeySource, SignatureValue, verify_digest_signature};
use crate::model::{
    BatchItemReport, BatchStatus, CertificateChain, DataToSign, Document, Prepared,
    SignatureFormat, ToSign,
};
use crate::xades::build::{ReferenceSpec, SignatureTemplate};
use crate::xades::{ProductionPlace, SignaturePolicy, SignedPropertiesSpec, XadesVersion, uri};
use crate::xml::c14n::{self, Subtree};
use crate::xml::insert::{Insertion, end_tag_position, write_with_insertions};
use crate::xml::{C14nMode, XmlEncoding, encoding, parse};

/// The claimed properties of PES signatures.
#[derive(Debug, Clone)]
pub struct PesRequest {
    /// The claimed role, e.g. "Ordonnateur" or "Maire".
    pub role: Option<String>,
    /// City, postal code and country of the signature.
    pub place: Option<ProductionPlace>,
    /// The Hélios signature policy (configurable: DGFiP revises it).
    pub policy: SignaturePolicy,
}

impl Default for PesRequest {
    fn default() -> Self {
        Self {
            role: Some("Ordonnateur".into()),
            place: None,
            policy: SignaturePolicy::helios(),
        }
    }
}

/// The PES V2 (Hélios) format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pes;

/// One signature waiting for its value.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Target {
    /// The Id the signature references (a Bordereau's or PES_Aller's).
    label: String,
    /// Where the signature goes in the original bytes (before the element's end tag).
    offset: usize,
    template: SignatureTemplate,
}

/// What `finalize` needs: the original bytes and one template per signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PesState {
    #[serde(with = "crate::model::base64_bytes")]
    original: Vec<u8>,
    encoding: XmlEncoding,
    chain: CertificateChain,
    targets: Vec<Target>,
    /// Bordereaux already signed, kept as they are.
    pub already_signed: Vec<String>,
    /// Bordereaux that could not be prepared, with the reason.
    pub not_prepared: Vec<(String, String)>,
}

/// A signed PES and what happened to each bordereau.
#[derive(Debug, Clone)]
pub struct PesSigned {
    /// The signed file.
    pub output: Vec<u8>,
    /// One entry per bordereau (or the whole file) that was to be signed.
    pub items: Vec<BatchItemReport>,
    /// Bordereaux already signed before, kept byte for byte.
    pub already_signed: Vec<String>,
}

fn doc_error(e: impl std::fmt::Display) -> Error {
    Error::Document(e.to_string())
}

impl Pes {
    /// Prepares, reporting bordereaux that cannot be signed instead of failing the whole file
    /// (fails only when nothing at all can be signed).
    pub fn prepare_bytes(
        &self,
        bytes: Vec<u8>,
        request: &PesRequest,
        chain: &CertificateChain,
    ) -> Result<Prepared<PesState>> {
        let decoded = encoding::decode(&bytes).map_err(doc_error)?;
        let doc = parse::parse(&decoded.text).map_err(doc_error)?;
        let root = pes_root(&doc)?;
        let all = bordereaux(&doc, root);
        if all.is_empty() {
            return Err(Error::Document("aucun bordereau dans le fichier".into()));
        }
        let spec = SignedPropertiesSpec {
            signing_time: time::OffsetDateTime::now_utc(),
            policy: Some(request.policy.clone()),
            role: request.role.clone(),
            place: request.place.clone(),
        };
        let mut already_signed = Vec::new();
        let mut candidates = Vec::new();
        if all
            .iter()
            .all(|(b, _)| doc.get_attribute(*b, "Id").is_some())
        {
            for (b, _) in &all {
                let id = doc.get_attribute(*b, "Id").unwrap_or_default().to_string();
                if has_signature_child(&doc, *b) {
                    already_signed.push(id);
                } else {
                    candidates.push((*b, id));
                }
            }
        } else {
            let id = doc.get_attribute(root, "Id").ok_or_else(|| {
                Error::Document(
                    "un bordereau n'a pas d'Id et PES_Aller non plus : rien à référencer".into(),
                )
            })?;
            if has_signature_child(&doc, root) {
                already_signed.push(id.to_string());
            } else {
                candidates.push((root, id.to_string()));
            }
        }
        if candidates.is_empty() {
            return Err(Error::Document(
                "tout est déjà signé : rien à signer".into(),
            ));
        }
        let mut positions = Vec::new();
        let mut templates = Vec::new();
        let mut not_prepared = Vec::new();
        for (node, id) in candidates {
            let prepared = (|| -> Result<(usize, SignatureTemplate)> {
                let position = end_tag_position(&doc, node).map_err(doc_error)?;
                let digest = c14n::digest(
                    &doc,
                    Subtree {
                        apex: node,
                        excluded: &[],
                        with_comments: false,
                    },
                    C14nMode::Exclusive,
                    &[],
                    DigestAlgorithm::Sha256,
                )
                .map_err(doc_error)?;
                let reference = ReferenceSpec {
                    id: None,
                    uri: format!("#{id}"),
                    transforms: vec![uri::ENVELOPED.into(), uri::EXC_C14N.into()],
                    digest,
                    data_object_format: None,
                };
                let sid = format!("SIG-{id}-{}", &crate::xades::format::uuid_like()[..8]);
                let template =
                    SignatureTemplate::build(&sid, XadesVersion::V111, &[reference], chain, &spec)?;
                Ok((position, template))
            })();
            match prepared {
                Ok((position, template)) => {
                    positions.push(position);
                    templates.push((id, template));
                }
                Err(e) => not_prepared.push((id, e.to_string())),
            }
        }
        if templates.is_empty() {
            let reasons: Vec<String> = not_prepared
                .iter()
                .map(|(i, e)| format!("{i} : {e}"))
                .collect();
            return Err(Error::Document(reasons.join(" ; ")));
        }
        // Targets are in document order, so positions are ascending.
        let offsets = decoded.original_offsets(&positions);
        let encoding = decoded.encoding;
        drop(doc);
        drop(decoded);
        let targets: Vec<Target> = templates
            .into_iter()
            .zip(offsets)
            .map(|((label, template), offset)| Target {
                label,
                offset,
                template,
            })
            .collect();
        let data_to_sign = DataToSign {
            items: targets
                .iter()
                .map(|t| ToSign {
                    label: t.label.clone(),
                    digest_algorithm: t.template.digest_algorithm(),
                    digest: t.template.digest.clone(),
                })
                .collect(),
        };
        Ok(Prepared {
            data_to_sign,
            state: PesState {
                original: bytes,
                encoding,
                chain: chain.clone(),
                targets,
                already_signed,
                not_prepared,
            },
        })
    }

    /// Assembles the signed file from one outcome per item: an item whose value is missing or
    /// does not verify is reported and left unsigned; the others are inserted. Fails (nothing
    /// produced) when no item can be signed.
    pub fn finalize_each(
        &self,
        state: PesState,
        values: Vec<Result<SignatureValue>>,
    ) -> Result<PesSigned> {
        if values.len() != state.targets.len() {
            return Err(Error::SignatureCount {
                expected: state.targets.len(),
                got: values.len(),
            });
        }
        let mut items: Vec<BatchItemReport> = state
            .not_prepared
            .iter()
            .map(|(label, e)| failed(label, e.clone()))
            .collect();
        let mut insertions = Vec::new();
        for (index, (target, value)) in state.targets.iter().zip(values).enumerate() {
            let checked = value.and_then(|v| {
                let ok = verify_digest_signature(
                    &state.chain.signer,
                    target.template.digest_algorithm(),
                    &target.template.digest,
                    &v,
                )?;
                if ok {
                    Ok(v)
                } else {
                    Err(Error::BadSignatureValue { index })
                }
            });
            match checked.and_then(|v| {
                state
                    .encoding
                    .encode_ascii(&target.template.assemble(&v, None))
                    .map_err(doc_error)
            }) {
                Ok(bytes) => {
                    insertions.push(Insertion {
                        offset: target.offset,
                        bytes,
                    });
                    items.push(BatchItemReport {
                        input: target.label.clone(),
                        output: None,
                        status: BatchStatus::Signed,
                        error: None,
                    });
                }
                Err(e) => items.push(failed(&target.label, e.to_string())),
            }
        }
        if insertions.is_empty() {
            let reasons: Vec<String> = items
                .iter()
                .filter_map(|i| Some(format!("{} : {}", i.input, i.error.as_ref()?)))
                .collect();
            return Err(Error::Document(format!(
                "aucun bordereau signé ({})",
                reasons.join(" ; ")
            )));
        }
        let extra: usize = insertions.iter().map(|i| i.bytes.len()).sum();
        let mut output = Vec::with_capacity(state.original.len() + extra);
        write_with_insertions(&state.original, &insertions, &mut output)?;
        Ok(PesSigned {
            output,
            items,
            already_signed: state.already_signed,
        })
    }
}

fn failed(label: &str, error: String) -> BatchItemReport {
    BatchItemReport {
        input: label.to_string(),
        output: None,
        status: BatchStatus::Failed,
        error: Some(error),
    }
}

impl SignatureFormat for Pes {
    type Request = PesRequest;
    type State = PesState;

    fn prepare(
        &self,
        document: &Document,
        request: &PesRequest,
        chain: &CertificateChain,
    ) -> Result<Prepared<PesState>> {
        self.prepare_bytes(document.read_all()?, request, chain)
    }

    /// Strict: every value must verify and every bordereau be signed, or nothing is produced.
    fn finalize(&self, state: PesState, values: &[SignatureValue]) -> Result<Vec<u8>> {
        if let Some((label, reason)) = state.not_prepared.first() {
            return Err(Error::Document(format!("{label} : {reason}")));
        }
        let signed = self.finalize_each(state, values.iter().cloned().map(Ok).collect())?;
        match signed
            .items
            .iter()
            .find(|i| i.status == BatchStatus::Failed)
        {
            Some(item) => Err(Error::Document(format!(
                "{} : {}",
                item.input,
                item.error.as_deref().unwrap_or("échec")
            ))),
            None => Ok(signed.output),
        }
    }
}

/// Signs every unsigned bordereau of a PES with `key` (one session, one login), each signature
/// independent: a bordereau that fails is reported and the others are signed.
pub fn sign_pes(bytes: Vec<u8>, request: &PesRequest, key: &dyn KeySource) -> Result<PesSigned> {
    let chain = CertificateChain::of_key(key);
    let prepared = Pes.prepare_bytes(bytes, request, &chain)?;
    let values = key.sign_digests(&prepared.data_to_sign.items);
    Pes.finalize_each(prepared.state, values)
}
