//! PAdES baseline signatures (ETSI EN 319 142-1), levels B-B and B-T.
//!
//! The signature is an incremental update ([`update`]): every original byte stays in place, a
//! signature field (invisible, or a visible text stamp) is added with `/SubFilter
//! /ETSI.CAdES.detached`, and `/ByteRange` covers the whole file but `/Contents`. The CMS carries
//! content-type, message-digest and signing-certificate-v2, and no signing-time (the time is the
//! dictionary's `/M`). Files with classic xref tables or xref streams, linearized files, files
//! with earlier updates or signatures are accepted; encrypted and damaged ones are refused.

pub mod update;
mod verify;

pub use update::Stamp;
pub use verify::verify;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cms::{self, SignedDataParts};
use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::key::SignatureValue;
use crate::model::{
    CertificateChain, DataToSign, Document, Level, Prepared, SignatureFormat, ToSign,
    check_signature_values,
};

/// Bytes reserved for the CMS in `/Contents`: the chain, a timestamp token with its TSA
/// certificates and RSA-4096 signatures fit with room to spare.
const CONTENTS_RESERVED: usize = 24 * 1024;

/// Options of a PAdES signature.
#[derive(Debug, Clone, Default)]
pub struct PadesRequest {
    /// B-B or B-T.
    pub level: Level,
    /// Digest algorithm (SHA-256 by default).
    pub digest_algorithm: Option<DigestAlgorithm>,
    /// TSA URL, required for B-T.
    pub tsa_url: Option<String>,
    /// A visible stamp; invisible when `None`.
    pub stamp: Option<Stamp>,
    /// The signing time written in `/M` (default: now).
    pub signing_time: Option<OffsetDateTime>,
}

/// The serializable state between prepare and finalize.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PadesState {
    /// What was to be signed.
    pub data_to_sign: DataToSign,
    /// The prepared PDF (original + update with an empty `/Contents`).
    #[serde(with = "crate::model::base64_bytes")]
    pub pdf: Vec<u8>,
    /// Offset of `<` of `/Contents`.
    pub contents_start: usize,
    /// Offset after `>` of `/Contents`.
    pub contents_end: usize,
    /// DER `SET OF Attribute` that was signed.
    #[serde(with = "crate::model::base64_bytes")]
    pub signed_attributes: Vec<u8>,
    /// The signer's chain.
    pub chain: CertificateChain,
    /// The level asked.
    pub level: Level,
    /// The TSA for B-T.
    pub tsa_url: Option<String>,
}

/// The PAdES format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pades;

fn french_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:02}/{:02}/{:04} à {:02}:{:02} UTC",
        at.day(),
        u8::from(at.month()),
        at.year(),
        at.hour(),
        at.minute()
    )
}

impl SignatureFormat for Pades {
    type Request = PadesRequest;
    type State = PadesState;

    fn prepare(
        &self,
        document: &Document,
        request: &PadesRequest,
        chain: &CertificateChain,
    ) -> Result<Prepared<PadesState>> {
        request.level.tsa_url(request.tsa_url.as_deref())?;
        chain.key_algorithm()?;
        let digest_algorithm = request.digest_algorithm.unwrap_or(DigestAlgorithm::Sha256);
        let inc = update::load(document.read_all()?)?;
        let signing_time = request.signing_time.unwrap_or_else(OffsetDateTime::now_utc);
        let stamp = request.stamp.map(|s| {
            let who = crate::x509::common_name(&chain.signer)
                .unwrap_or_else(|| crate::x509::subject(&chain.signer));
            (
                s,
                vec![
                    format!("Signé par {who}"),
                    format!("le {}", french_date(signing_time)),
                ],
            )
        });
        let placeholder = update::add_signature_field(inc, CONTENTS_RESERVED, signing_time, stamp)?;
        let content_digest = digest_ranges(
            digest_algorithm,
            &placeholder.bytes,
            placeholder.contents_start,
            placeholder.contents_end,
        );
        let signed_attributes =
            cms::signed_attributes_der(digest_algorithm, &content_digest, None, &chain.signer)?;
        let data_to_sign = DataToSign {
            items: vec![ToSign {
                label: "PAdES".into(),
                digest_algorithm,
                digest: digest_algorithm.digest(&signed_attributes),
            }],
        };
        Ok(Prepared {
            data_to_sign: data_to_sign.clone(),
            state: PadesState {
                data_to_sign,
                pdf: placeholder.bytes,
                contents_start: placeholder.contents_start,
                contents_end: placeholder.contents_end,
                signed_attributes,
                chain: chain.clone(),
                level: request.level,
                tsa_url: request.tsa_url.clone(),
            },
        })
    }

    fn finalize(&self, mut state: PadesState, values: &[SignatureValue]) -> Result<Vec<u8>> {
        let item = state
            .data_to_sign
            .items
            .first()
            .ok_or_else(|| Error::State("nothing to sign".into()))?;
        let digest_algorithm = item.digest_algorithm;
        if item.digest != digest_algorithm.digest(&state.signed_attributes)
            || state.contents_start >= state.contents_end
            || state.contents_end > state.pdf.len()
        {
            return Err(Error::State("inconsistent PAdES state".into()));
        }
        check_signature_values(&state.data_to_sign, &state.chain.signer, values)?;
        let tsa_url = state.level.tsa_url(state.tsa_url.as_deref())?;
        let cms = cms::assemble_signed_data(SignedDataParts {
            chain: &state.chain,
            digest_algorithm,
            signed_attributes_der: &state.signed_attributes,
            signature: &values[0],
            content: None,
            tsa_url,
        })?;
        let room = (state.contents_end - state.contents_start - 2) / 2;
        if cms.len() > room {
            return Err(Error::Unsupported(format!(
                "CMS of {} bytes does not fit the {room} reserved",
                cms.len()
            )));
        }
        let hex = hex::encode_upper(&cms);
        let at = state.contents_start + 1;
        state.pdf[at..at + hex.len()].copy_from_slice(hex.as_bytes());
        Ok(state.pdf)
    }
}

/// Hashes the file but `/Contents` (the two ranges of `/ByteRange`).
pub(crate) fn digest_ranges(
    algorithm: DigestAlgorithm,
    pdf: &[u8],
    contents_start: usize,
    contents_end: usize,
) -> Vec<u8> {
    let reader = std::io::Read::chain(&pdf[..contents_start], &pdf[contents_end..]);
    // Reading from memory cannot fail.
    cms::digest_reader(algorithm, reader).unwrap_or_default()
}
