//! CAdES baseline signatures (ETSI EN 319 122-1), levels B-B and B-T, detached (`.p7s`) or
//! enveloping.
//!
//! Signed attributes: content-type, message-digest, signing-time, ESS signing-certificate-v2;
//! the signer's chain goes in `certificates`; B-T adds a signature-time-stamp unsigned attribute
//! over the signature value. A detached signature of a file streams it (constant memory).

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
use crate::verify::{
    Indication, SignatureReport, SubIndication, VerificationReport, VerifyOptions, validate_signer,
};

/// Where the signed content goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Packaging {
    /// The content stays outside (`.p7s` next to the file).
    #[default]
    Detached,
    /// The content is inside the SignedData.
    Enveloping,
}

/// Options of a CAdES signature.
#[derive(Debug, Clone, Default)]
pub struct CadesRequest {
    /// B-B or B-T.
    pub level: Level,
    /// Digest algorithm (SHA-256 by default).
    pub digest_algorithm: Option<DigestAlgorithm>,
    /// Detached or enveloping.
    pub packaging: Packaging,
    /// TSA URL, required for B-T.
    pub tsa_url: Option<String>,
    /// The claimed signing time (default: now).
    pub signing_time: Option<OffsetDateTime>,
}

/// The serializable state between prepare and finalize.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CadesState {
    /// What was to be signed (checked again in finalize).
    pub data_to_sign: DataToSign,
    /// DER `SET OF Attribute` that was signed.
    #[serde(with = "crate::model::base64_bytes")]
    pub signed_attributes: Vec<u8>,
    /// The signer's chain.
    pub chain: CertificateChain,
    /// The enveloped content (enveloping packaging only).
    #[serde(with = "optional_bytes", default)]
    pub content: Option<Vec<u8>>,
    /// The level asked.
    pub level: Level,
    /// The TSA for B-T.
    pub tsa_url: Option<String>,
}

mod optional_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct B(#[serde(with = "crate::model::base64_bytes")] Vec<u8>);

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(|b| B(b.clone())).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<B>::deserialize(d)?.map(|b| b.0))
    }
}

/// The CAdES format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cades;

impl SignatureFormat for Cades {
    type Request = CadesRequest;
    type State = CadesState;

    fn prepare(
        &self,
        document: &Document,
        request: &CadesRequest,
        chain: &CertificateChain,
    ) -> Result<Prepared<CadesState>> {
        request.level.tsa_url(request.tsa_url.as_deref())?;
        chain.key_algorithm()?;
        let digest_algorithm = request.digest_algorithm.unwrap_or(DigestAlgorithm::Sha256);
        let (content_digest, content) = match request.packaging {
            Packaging::Detached => (document.digest(digest_algorithm)?, None),
            Packaging::Enveloping => {
                let bytes = document.read_all()?;
                (digest_algorithm.digest(&bytes), Some(bytes))
            }
        };
        let signing_time = request.signing_time.unwrap_or_else(OffsetDateTime::now_utc);
        let signed_attributes = cms::signed_attributes_der(
            digest_algorithm,
            &content_digest,
            Some(signing_time),
            &chain.signer,
        )?;
        let data_to_sign = DataToSign {
            items: vec![ToSign {
                label: "CAdES".into(),
                digest_algorithm,
                digest: digest_algorithm.digest(&signed_attributes),
            }],
        };
        Ok(Prepared {
            data_to_sign: data_to_sign.clone(),
            state: CadesState {
                data_to_sign,
                signed_attributes,
                chain: chain.clone(),
                content,
                level: request.level,
                tsa_url: request.tsa_url.clone(),
            },
        })
    }

    fn finalize(&self, state: CadesState, values: &[SignatureValue]) -> Result<Vec<u8>> {
        let item = state
            .data_to_sign
            .items
            .first()
            .ok_or_else(|| Error::State("nothing to sign".into()))?;
        if item.digest != item.digest_algorithm.digest(&state.signed_attributes) {
            return Err(Error::State(
                "the state's signed attributes do not match its data to sign".into(),
            ));
        }
        check_signature_values(&state.data_to_sign, &state.chain.signer, values)?;
        let tsa_url = state.level.tsa_url(state.tsa_url.as_deref())?;
        cms::assemble_signed_data(SignedDataParts {
            chain: &state.chain,
            digest_algorithm: item.digest_algorithm,
            signed_attributes_der: &state.signed_attributes,
            signature: &values[0],
            content: state.content.as_deref(),
            tsa_url,
        })
    }
}

/// Verifies a CAdES signature (DER or PEM), with the detached data from `options` when needed.
pub fn verify(signature: &[u8], options: &VerifyOptions) -> Result<VerificationReport> {
    let sd = cms::parse_signed_data(signature)?;
    let embedded = cms::embedded_certificates(&sd);
    let content = match &sd.encap_content_info.econtent {
        Some(any) => Some(
            any.decode_as::<der::asn1::OctetString>()
                .map_err(|e| Error::Format(format!("eContent: {e}")))?
                .into_bytes(),
        ),
        None => None,
    };
    let mut reports = Vec::new();
    for (i, si) in sd.signer_infos.0.iter().enumerate() {
        let mut report = SignatureReport::new(format!("signer #{}", i + 1), "CAdES");
        let mut digest = |a: DigestAlgorithm| -> Result<Option<Vec<u8>>> {
            match (&content, &options.detached_data) {
                (Some(c), _) => Ok(Some(a.digest(c))),
                (None, Some(path)) => Document::File(path.clone()).digest(a).map(Some),
                (None, None) => Ok(None),
            }
        };
        let pool: Vec<_> = embedded
            .iter()
            .chain(options.certificates.iter())
            .cloned()
            .collect();
        let check = cms::check_signer_info(si, &pool, &mut digest, &mut report);
        verify_common(&check, &embedded, options, &mut report);
        reports.push(report);
    }
    Ok(VerificationReport::new(reports))
}

/// The checks CAdES and PAdES share once a SignerInfo is checked: timestamp, then the signer's
/// chain at the best known signing time.
pub(crate) fn verify_common(
    check: &cms::SignerInfoCheck,
    embedded: &[x509_cert::Certificate],
    options: &VerifyOptions,
    report: &mut SignatureReport,
) {
    report.claimed_signing_time = report.claimed_signing_time.or(check.signing_time);
    report.level = Some("B-B".into());
    let mut proven_time = None;
    if let Some(token) = &check.timestamp_token {
        report.level = Some("B-T".into());
        if let Some((gen_time, tsa_cert)) =
            cms::check_signature_timestamp(token, &check.signature_octets, report)
        {
            report.timestamp_time = Some(gen_time);
            proven_time = Some(gen_time);
            match tsa_cert {
                Some(tsa) => {
                    let mut tsa_report = SignatureReport::new("timestamp", "RFC 3161");
                    validate_signer(&tsa, embedded, gen_time, false, options, &mut tsa_report);
                    if tsa_report.indication != Indication::TotalPassed {
                        report.fail(
                            Indication::Indeterminate,
                            SubIndication::NoCertificateChainFound,
                            format!(
                                "the timestamp authority is not trusted: {}",
                                tsa_report.messages.join("; ")
                            ),
                        );
                    }
                }
                None => report.fail(
                    Indication::Indeterminate,
                    SubIndication::NoCertificateChainFound,
                    "the timestamp carries no TSA certificate",
                ),
            }
        }
    }
    let Some(cert) = &check.certificate else {
        return;
    };
    let at = proven_time
        .or(report.claimed_signing_time)
        .or(options.validation_time)
        .unwrap_or_else(OffsetDateTime::now_utc);
    let signer = report.signer.clone();
    validate_signer(cert, embedded, at, proven_time.is_some(), options, report);
    report.signer = signer.or(report.signer.take());
}
