//! Verification of one CMS `SignerInfo`: signer certificate, message digest, signature value,
//! ESS signing-certificate-v2, signing time and signature timestamp.

use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::db::rfc5911::{
    ID_AA_SIGNING_CERTIFICATE_V_2, ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SIGNING_TIME,
};
use der::Encode;
use der::asn1::{ObjectIdentifier, OctetString};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::time::Time;

use super::ID_AA_SIGNATURE_TIME_STAMP_TOKEN;
use super::ess::SigningCertificateV2;
use crate::digest::DigestAlgorithm;
use crate::error::Result;
use crate::key::{KeyAlgorithm, SignatureValue, verify_digest_signature};
use crate::verify::{Indication, SignatureReport, SubIndication};

/// What [`check_signer_info`] found, besides the failures it recorded in the report.
#[derive(Debug, Default)]
pub struct SignerInfoCheck {
    /// The signer certificate, when found.
    pub certificate: Option<Certificate>,
    /// The signing-time signed attribute.
    pub signing_time: Option<OffsetDateTime>,
    /// DER of the signature-time-stamp unsigned attribute's token.
    pub timestamp_token: Option<Vec<u8>>,
    /// The signature value octets (what a signature timestamp covers).
    pub signature_octets: Vec<u8>,
    /// The signer's digest algorithm.
    pub digest_algorithm: Option<DigestAlgorithm>,
}

/// The certificates embedded in a SignedData.
pub fn embedded_certificates(sd: &SignedData) -> Vec<Certificate> {
    sd.certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The certificate among `certs` that `sid` designates.
pub fn find_signer_certificate<'a>(
    sid: &SignerIdentifier,
    certs: &'a [Certificate],
) -> Option<&'a Certificate> {
    certs.iter().find(|c| match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            c.tbs_certificate().issuer() == &ias.issuer
                && c.tbs_certificate().serial_number() == &ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(c.tbs_certificate().get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, k))) if k == *ski)
        }
    })
}

fn time_of(t: &Time) -> OffsetDateTime {
    OffsetDateTime::from(t.to_system_time())
}

/// Verifies `si` against `content_digest` (which hashes the signed content with the algorithm
/// asked, or returns `None` when the detached content is missing), recording failures in
/// `report`. `certs` are the certificates available (embedded and given).
pub fn check_signer_info(
    si: &SignerInfo,
    certs: &[Certificate],
    content_digest: &mut dyn FnMut(DigestAlgorithm) -> Result<Option<Vec<u8>>>,
    report: &mut SignatureReport,
) -> SignerInfoCheck {
    let mut out = SignerInfoCheck {
        signature_octets: si.signature.as_bytes().to_vec(),
        ..Default::default()
    };
    let Some(digest_algorithm) = DigestAlgorithm::from_oid(&si.digest_alg.oid) else {
        report.fail(
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailure,
            format!("unsupported digest algorithm {}", si.digest_alg.oid),
        );
        return out;
    };
    out.digest_algorithm = Some(digest_algorithm);
    let Some(certificate) = find_signer_certificate(&si.sid, certs).cloned() else {
        report.fail(
            Indication::Indeterminate,
            SubIndication::NoSignerCertificateFound,
            "the signer certificate is neither in the signature nor given",
        );
        return out;
    };
    report.signer = Some(crate::x509::subject(&certificate));
    out.certificate = Some(certificate.clone());

    let Some(signed_attrs) = &si.signed_attrs else {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "no signed attributes (required by CAdES/PAdES)",
        );
        return out;
    };
    let find = |oid: ObjectIdentifier| signed_attrs.iter().find(|a| a.oid == oid);

    // Message digest.
    match find(ID_MESSAGE_DIGEST).and_then(|a| a.values.get(0)) {
        None => report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "no message-digest signed attribute",
        ),
        Some(v) => match (
            v.decode_as::<OctetString>(),
            content_digest(digest_algorithm),
        ) {
            (Ok(md), Ok(Some(actual))) => {
                if md.as_bytes() != actual.as_slice() {
                    report.fail(
                        Indication::TotalFailed,
                        SubIndication::HashFailure,
                        "the signed data does not match the message-digest attribute",
                    );
                }
            }
            (Ok(_), Ok(None)) => report.fail(
                Indication::Indeterminate,
                SubIndication::SignedDataNotFound,
                "detached signature: give the signed data (--data)",
            ),
            (Err(e), _) => report.fail(
                Indication::TotalFailed,
                SubIndication::FormatFailure,
                format!("message-digest attribute: {e}"),
            ),
            (_, Err(e)) => report.fail(
                Indication::Indeterminate,
                SubIndication::SignedDataNotFound,
                format!("signed data: {e}"),
            ),
        },
    }
    if find(ID_CONTENT_TYPE).is_none() {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "no content-type signed attribute",
        );
    }
    if let Some(t) = find(ID_SIGNING_TIME)
        .and_then(|a| a.values.get(0))
        .and_then(|v| v.decode_as::<Time>().ok())
    {
        out.signing_time = Some(time_of(&t));
    }
    // ESS signing-certificate-v2 binds the signature to the certificate.
    match find(ID_AA_SIGNING_CERTIFICATE_V_2)
        .and_then(|a| a.values.get(0))
        .map(|v| v.decode_as::<SigningCertificateV2>())
    {
        Some(Ok(scv2)) => {
            if !scv2.designates(&certificate).unwrap_or(false) {
                report.fail(
                    Indication::Indeterminate,
                    SubIndication::NoSignerCertificateFound,
                    "signing-certificate-v2 does not designate the signer certificate",
                );
            }
        }
        Some(Err(e)) => report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            format!("signing-certificate-v2: {e}"),
        ),
        None => report
            .messages
            .push("no ESS signing-certificate-v2 attribute (not a baseline signature)".into()),
    }

    // Signature value over the DER SET OF signed attributes.
    let signed = match signed_attrs.to_der() {
        Ok(d) => d,
        Err(e) => {
            report.fail(
                Indication::TotalFailed,
                SubIndication::FormatFailure,
                format!("signed attributes: {e}"),
            );
            return out;
        }
    };
    let sig_ok = KeyAlgorithm::from_signature_oid(&si.signature_algorithm.oid)
        .or_else(|| {
            // Some producers name the key algorithm only (rsaEncryption); use the digest's.
            KeyAlgorithm::of_certificate(&certificate)
                .ok()
                .map(|k| (k, digest_algorithm))
        })
        .and_then(|(k, d)| {
            let value = SignatureValue::from_der_encoding(k, si.signature.as_bytes()).ok()?;
            verify_digest_signature(&certificate, d, &d.digest(&signed), &value).ok()
        })
        .unwrap_or(false);
    if !sig_ok {
        report.fail(
            Indication::TotalFailed,
            SubIndication::SigCryptoFailure,
            "the signature value does not verify with the signer's public key",
        );
    }

    out.timestamp_token = si
        .unsigned_attrs
        .iter()
        .flat_map(|u| u.iter())
        .find(|a| a.oid == ID_AA_SIGNATURE_TIME_STAMP_TOKEN)
        .and_then(|a| a.values.get(0))
        .and_then(|v| v.to_der().ok());
    out
}

/// Verifies a timestamp token over `signature_octets`: imprint, the token's own CMS signature,
/// and returns its genTime. Failures are recorded in `report`.
pub fn check_signature_timestamp(
    token_der: &[u8],
    signature_octets: &[u8],
    report: &mut SignatureReport,
) -> Option<(OffsetDateTime, Option<Certificate>)> {
    let token = match crate::tsp::parse_token(token_der) {
        Ok(t) => t,
        Err(e) => {
            report.fail(
                Indication::TotalFailed,
                SubIndication::FormatFailure,
                format!("signature timestamp: {e}"),
            );
            return None;
        }
    };
    if token.digest != token.digest_algorithm.digest(signature_octets) {
        report.fail(
            Indication::TotalFailed,
            SubIndication::HashFailure,
            "the signature timestamp does not cover this signature value",
        );
        return None;
    }
    // The token is itself a SignedData over the TSTInfo: verify its SignerInfo.
    let Ok(sd) = super::parse_signed_data(token_der) else {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "signature timestamp is not a SignedData",
        );
        return None;
    };
    let Some(tst_info) = sd
        .encap_content_info
        .econtent
        .as_ref()
        .and_then(|e| e.decode_as::<OctetString>().ok())
    else {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "signature timestamp has no TSTInfo",
        );
        return None;
    };
    let certs = embedded_certificates(&sd);
    let mut ts_report = SignatureReport::new("timestamp", "RFC 3161");
    let mut digest = |a: DigestAlgorithm| Ok(Some(a.digest(tst_info.as_bytes())));
    let mut tsa_cert = None;
    for si in sd.signer_infos.0.iter() {
        let check = check_signer_info(si, &certs, &mut digest, &mut ts_report);
        tsa_cert = check.certificate.or(tsa_cert);
    }
    if ts_report.indication != Indication::TotalPassed {
        report.fail(
            Indication::TotalFailed,
            SubIndication::SigConstraintsFailure,
            format!(
                "signature timestamp does not verify: {}",
                ts_report.messages.join("; ")
            ),
        );
        return None;
    }
    let tsa_cert = tsa_cert.or(token.tsa_certificate);
    Some((token.gen_time, tsa_cert))
}
