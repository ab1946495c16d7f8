//! CMS building blocks shared by CAdES and PAdES: signed attributes (with ESS
//! signing-certificate-v2), SignedData assembly, the signature-time-stamp attribute, the
//! verification of one SignerInfo, streaming digests.

pub mod ess;
mod signer_info;

pub use signer_info::{
    SignerInfoCheck, check_signature_timestamp, check_signer_info, embedded_certificates,
    find_signer_certificate,
};

use std::io::Read;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::db::rfc5911::{
    ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME,
};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, SignatureValue};
use crate::model::CertificateChain;

/// id-aa-signatureTimeStampToken (RFC 3161 appendix A), the CAdES/PAdES B-T unsigned attribute.
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid, values })
}

/// A CMS `Time` (UTCTime until 2049, GeneralizedTime after, as RFC 5652 § 11.3 requires).
pub fn cms_time(at: OffsetDateTime) -> Result<Time> {
    let secs = u64::try_from(at.unix_timestamp())
        .map_err(|_| Error::Unsupported("signing time before 1970".into()))?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))?;
    Ok(if dt.year() < 2050 {
        Time::UtcTime(der::asn1::UtcTime::from_date_time(dt)?)
    } else {
        Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt))
    })
}

/// The DER `SET OF Attribute` that a CAdES/PAdES signature signs: content-type (id-data),
/// message-digest, signing-time when given (CAdES; PAdES puts the time in `/M`), and ESS
/// signing-certificate-v2.
pub fn signed_attributes_der(
    digest_algorithm: DigestAlgorithm,
    content_digest: &[u8],
    signing_time: Option<OffsetDateTime>,
    signer: &x509_cert::Certificate,
) -> Result<Vec<u8>> {
    let mut attrs: SetOfVec<Attribute> = SetOfVec::new();
    attrs.insert(attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA)?)?)?;
    attrs.insert(attribute(
        ID_MESSAGE_DIGEST,
        Any::encode_from(&OctetString::new(content_digest)?)?,
    )?)?;
    if let Some(at) = signing_time {
        attrs.insert(attribute(
            ID_SIGNING_TIME,
            Any::encode_from(&cms_time(at)?)?,
        )?)?;
    }
    attrs.insert(
        ess::SigningCertificateV2::for_certificate(signer, digest_algorithm)?.to_attribute()?,
    )?;
    Ok(attrs.to_der()?)
}

/// The signature-time-stamp unsigned attribute (id-aa-signatureTimeStampToken) for a token's DER.
pub fn signature_time_stamp_attribute(token_der: &[u8]) -> Result<Attribute> {
    attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, Any::from_der(token_der)?)
}

/// Asks `tsa_url` for a timestamp over the signature value octets (CAdES/PAdES B-T).
pub fn timestamp_signature(
    tsa_url: &str,
    digest_algorithm: DigestAlgorithm,
    signature_octets: &[u8],
) -> Result<Attribute> {
    let digest = digest_algorithm.digest(signature_octets);
    let token = crate::tsp::request_timestamp(
        tsa_url,
        digest_algorithm,
        &digest,
        &crate::tsp::TspOptions::default(),
    )
    .map_err(|e| Error::Timestamp(e.to_string()))?;
    signature_time_stamp_attribute(&token.der)
}

/// What [`assemble_signed_data`] puts together.
pub struct SignedDataParts<'a> {
    /// Signer and intermediates, embedded in `certificates`.
    pub chain: &'a CertificateChain,
    /// The digest algorithm of the signed attributes and content.
    pub digest_algorithm: DigestAlgorithm,
    /// DER `SET OF Attribute` that was signed.
    pub signed_attributes_der: &'a [u8],
    /// The checked signature value.
    pub signature: &'a SignatureValue,
    /// The content for an enveloping signature; `None` for detached.
    pub content: Option<&'a [u8]>,
    /// A TSA URL for B-T.
    pub tsa_url: Option<&'a str>,
}

/// Builds the DER `ContentInfo(SignedData)` with one SignerInfo.
pub fn assemble_signed_data(parts: SignedDataParts<'_>) -> Result<Vec<u8>> {
    let key_algorithm: KeyAlgorithm = parts.chain.key_algorithm()?;
    let signer = &parts.chain.signer;
    let signature_octets = parts.signature.to_der_encoding(key_algorithm)?;
    let unsigned_attrs = match parts.tsa_url {
        Some(url) => {
            let mut set = SetOfVec::new();
            set.insert(timestamp_signature(
                url,
                parts.digest_algorithm,
                &signature_octets,
            )?)?;
            Some(set)
        }
        None => None,
    };
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer.tbs_certificate().issuer().clone(),
            serial_number: signer.tbs_certificate().serial_number().clone(),
        }),
        digest_alg: parts.digest_algorithm.algorithm_identifier(),
        signed_attrs: Some(SetOfVec::<Attribute>::from_der(
            parts.signed_attributes_der,
        )?),
        signature_algorithm: key_algorithm.signature_algorithm_identifier(parts.digest_algorithm),
        signature: OctetString::new(signature_octets)?,
        unsigned_attrs,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(parts.digest_algorithm.algorithm_identifier())?;
    let mut certificates = SetOfVec::new();
    for c in parts.chain.all() {
        certificates.insert(CertificateChoices::Certificate(c.clone()))?;
    }
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer_info)?;
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: parts
                .content
                .map(|c| Any::encode_from(&OctetString::new(c)?))
                .transpose()?,
        },
        certificates: Some(CertificateSet(certificates)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    Ok(ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data)?,
    }
    .to_der()?)
}

/// Decodes a DER (or PEM `CMS`/`PKCS7`) `ContentInfo(SignedData)`.
pub fn parse_signed_data(input: &[u8]) -> Result<SignedData> {
    let der_bytes;
    let input = if input.starts_with(b"-----BEGIN") {
        der_bytes = der::pem::decode_vec(input)
            .map_err(|e| Error::Format(format!("PEM: {e}")))?
            .1;
        &der_bytes[..]
    } else {
        input
    };
    let ci = ContentInfo::from_der(input).map_err(|e| Error::Format(format!("not CMS: {e}")))?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(Error::Format(format!(
            "CMS content type {} is not signedData",
            ci.content_type
        )));
    }
    ci.content
        .decode_as::<SignedData>()
        .map_err(|e| Error::Format(format!("SignedData: {e}")))
}

/// Hashes everything `reader` yields, 64 KiB at a time (constant memory).
pub fn digest_reader(algorithm: DigestAlgorithm, reader: impl Read) -> std::io::Result<Vec<u8>> {
    match algorithm {
        DigestAlgorithm::Sha256 => stream::<sha2::Sha256>(reader),
        DigestAlgorithm::Sha384 => stream::<sha2::Sha384>(reader),
        DigestAlgorithm::Sha512 => stream::<sha2::Sha512>(reader),
    }
}

fn stream<D: sha2::Digest>(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_digest_matches_one_shot() {
        let data = vec![7u8; 200_000];
        for a in [
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            assert_eq!(digest_reader(a, &data[..]).unwrap(), a.digest(&data));
        }
    }
}
