//! RFC 3161 timestamps: the protocol's ASN.1 types and a blocking HTTP client.
//!
//! The client asks a TSA for a token over a digest, then checks what a B-T signature relies on:
//! status granted, a SignedData whose eContent is a TSTInfo carrying our imprint and nonce,
//! signed by a certificate with the timeStamping extended key usage. It does not verify the
//! token's signature or the TSA's chain: that is the verifier's job.

use std::time::Duration;

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc3161::ID_CT_TST_INFO;
use const_oid::db::rfc5280::ID_KP_TIME_STAMPING;
use const_oid::db::rfc5911::ID_SIGNED_DATA;
use der::asn1::{BitString, GeneralizedTime, Int, OctetString, Uint};
use der::{Any, Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectKeyIdentifier};

use crate::digest::DigestAlgorithm;

/// MIME type of a timestamp request.
pub const CONTENT_TYPE_QUERY: &str = "application/timestamp-query";
/// MIME type of a timestamp response.
pub const CONTENT_TYPE_REPLY: &str = "application/timestamp-reply";

/// Largest response the client reads (a token with a certificate chain is a few KiB).
const MAX_RESPONSE: u64 = 1 << 20;

/// `MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct MessageImprint {
    /// The digest algorithm.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// The digest of the timestamped data.
    pub hashed_message: OctetString,
}

/// `TimeStampReq` (RFC 3161 §2.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampReq {
    /// Always 1.
    pub version: u8,
    /// What is timestamped.
    pub message_imprint: MessageImprint,
    /// The TSA policy asked for, if any.
    pub req_policy: Option<ObjectIdentifier>,
    /// A random number the TSA must echo.
    pub nonce: Option<Uint>,
    /// Whether the TSA must include its certificate.
    #[asn1(default = "Default::default")]
    pub cert_req: bool,
    /// Request extensions.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// `PKIStatusInfo` (RFC 3161 §2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiStatusInfo {
    /// `PKIStatus`: 0 granted, 1 grantedWithMods, 2 rejection, 3 waiting, 4 revocationWarning,
    /// 5 revocationNotification.
    pub status: u8,
    /// `PKIFreeText`: human-readable explanations.
    pub status_string: Option<Vec<String>>,
    /// `PKIFailureInfo` bits (see [`failure_names`]).
    pub fail_info: Option<BitString>,
}

/// `TimeStampResp` (RFC 3161 §2.4.2); the token is kept as the raw ContentInfo.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TimeStampResp {
    /// The status.
    pub status: PkiStatusInfo,
    /// The token (a CMS ContentInfo holding a SignedData), when granted.
    pub time_stamp_token: Option<Any>,
}

/// `Accuracy` (RFC 3161 §2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct Accuracy {
    /// Seconds.
    pub seconds: Option<u64>,
    /// Milliseconds (1..999).
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub millis: Option<u16>,
    /// Microseconds (1..999).
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub micros: Option<u16>,
}

/// `TSTInfo` (RFC 3161 §2.4.2), the content signed by the TSA.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TstInfo {
    /// Always 1.
    pub version: u8,
    /// The TSA policy under which the token was issued.
    pub policy: ObjectIdentifier,
    /// The imprint copied from the request.
    pub message_imprint: MessageImprint,
    /// The token's serial number, unique for the TSA.
    pub serial_number: Int,
    /// When the token was produced.
    pub gen_time: GeneralizedTime,
    /// Accuracy of `gen_time`.
    pub accuracy: Option<Accuracy>,
    /// Whether tokens of this TSA can be ordered by `gen_time` alone.
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    /// The nonce copied from the request.
    pub nonce: Option<Uint>,
    /// The TSA's name.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<GeneralName>,
    /// Extensions.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// Names of the `PKIFailureInfo` bits set in `bits` (RFC 3161 §2.4.2).
pub fn failure_names(bits: &BitString) -> Vec<&'static str> {
    const NAMES: [(usize, &str); 6] = [
        (0, "badAlg"),
        (2, "badRequest"),
        (5, "badDataFormat"),
        (14, "timeNotAvailable"),
        (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"),
    ];
    let set: Vec<usize> = bits
        .bits()
        .enumerate()
        .filter_map(|(i, b)| b.then_some(i))
        .collect();
    let mut names: Vec<&str> = NAMES
        .iter()
        .filter(|(i, _)| set.contains(i))
        .map(|(_, n)| *n)
        .collect();
    if set.contains(&17) {
        names.push("addInfoNotAvailable");
    }
    if set.contains(&25) {
        names.push("systemFailure");
    }
    names
}

/// Why a timestamp could not be obtained or read.
#[derive(Debug, thiserror::Error)]
pub enum TspError {
    /// The TSA could not be reached (DNS, connection, TLS, timeout).
    #[error("autorité d'horodatage injoignable ({url}) : {message}")]
    Unreachable {
        /// The TSA URL.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The TSA answered with an HTTP error status.
    #[error("l'autorité d'horodatage a répondu HTTP {status}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// The TSA refused the request.
    #[error("horodatage refusé (PKIStatus {status}{}{})", .text.as_deref().map(|t| format!(", « {t} »")).unwrap_or_default(), if .failures.is_empty() { String::new() } else { format!(", {}", .failures.join(", ")) })]
    Rejected {
        /// The PKIStatus value.
        status: u8,
        /// The TSA's explanation, if any.
        text: Option<String>,
        /// The failure reasons (`badAlg`, `badDataFormat`…).
        failures: Vec<&'static str>,
    },
    /// The response or token is not valid DER of the expected structure.
    #[error("réponse d'horodatage illisible : {0}")]
    Malformed(String),
    /// The token does not timestamp the digest that was sent.
    #[error("le jeton d'horodatage ne porte pas l'empreinte demandée")]
    ImprintMismatch,
    /// The token does not echo the request's nonce.
    #[error("le jeton d'horodatage ne reprend pas le nonce de la requête")]
    NonceMismatch,
    /// The token's digest algorithm is not SHA-256/384/512.
    #[error("algorithme d'empreinte non pris en charge dans le jeton : {0}")]
    UnsupportedDigest(ObjectIdentifier),
    /// The digest given to the client has the wrong length for its algorithm.
    #[error("empreinte de {got} octets pour {algorithm:?} (attendu {expected})")]
    DigestLength {
        /// The algorithm named.
        algorithm: DigestAlgorithm,
        /// The digest length received.
        got: usize,
        /// The algorithm's digest length.
        expected: usize,
    },
    /// The token carries no certificate for its signer although one was requested.
    #[error("le jeton d'horodatage ne contient pas le certificat de l'autorité")]
    MissingCertificate,
    /// The signer's certificate lacks the timeStamping extended key usage.
    #[error("le certificat de l'autorité d'horodatage n'a pas l'usage timeStamping")]
    NotTimestampingCertificate,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct TspOptions {
    /// Whole-exchange timeout (default 30 s).
    pub timeout: Duration,
    /// TSA policy to ask for (default none: the TSA's default).
    pub policy: Option<ObjectIdentifier>,
    /// Ask the TSA to include its certificate (default true; then its absence is an error).
    pub cert_req: bool,
}

impl Default for TspOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            policy: None,
            cert_req: true,
        }
    }
}

/// A timestamp token: its DER ContentInfo and the fields read from its TSTInfo.
#[derive(Debug, Clone)]
pub struct TimeStampToken {
    /// DER of the ContentInfo (what goes into a signature-time-stamp attribute or an
    /// `EncapsulatedTimeStamp`).
    pub der: Vec<u8>,
    /// The signed TSTInfo.
    pub info: TstInfo,
    /// `genTime` of the TSTInfo.
    pub gen_time: time::OffsetDateTime,
    /// Serial number of the token (big-endian bytes).
    pub serial: Vec<u8>,
    /// Digest algorithm of the imprint.
    pub digest_algorithm: DigestAlgorithm,
    /// Digest of the imprint.
    pub digest: Vec<u8>,
    /// The TSA certificate that signed the token, when the token includes it.
    pub tsa_certificate: Option<Certificate>,
}

/// Builds the DER request for `digest` with a fresh random nonce; returns it with the nonce.
pub fn build_request(
    digest_algorithm: DigestAlgorithm,
    digest: &[u8],
    options: &TspOptions,
) -> Result<(Vec<u8>, Uint), TspError> {
    if digest.len() != digest_algorithm.output_len() {
        return Err(TspError::DigestLength {
            algorithm: digest_algorithm,
            got: digest.len(),
            expected: digest_algorithm.output_len(),
        });
    }
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce)
        .map_err(|e| TspError::Malformed(format!("générateur aléatoire indisponible : {e}")))?;
    // A leading non-zero byte keeps the nonce 8 bytes long once encoded as an INTEGER.
    nonce[0] = (nonce[0] & 0x7f) | 0x01;
    let nonce = Uint::new(&nonce).map_err(malformed)?;
    let request = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: digest_algorithm.algorithm_identifier(),
            hashed_message: OctetString::new(digest).map_err(malformed)?,
        },
        req_policy: options.policy,
        nonce: Some(nonce.clone()),
        cert_req: options.cert_req,
        extensions: None,
    };
    Ok((request.to_der().map_err(malformed)?, nonce))
}

/// Asks the TSA at `url` for a token over `digest` and checks it (see the module doc).
pub fn request_timestamp(
    url: &str,
    digest_algorithm: DigestAlgorithm,
    digest: &[u8],
    options: &TspOptions,
) -> Result<TimeStampToken, TspError> {
    let (request, nonce) = build_request(digest_algorithm, digest, options)?;
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let unreachable = |e: ureq::Error| TspError::Unreachable {
        url: url.to_owned(),
        message: e.to_string(),
    };
    let mut response = agent
        .post(url)
        .header("Content-Type", CONTENT_TYPE_QUERY)
        .header("Accept", CONTENT_TYPE_REPLY)
        .send(&request[..])
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(TspError::HttpStatus { status });
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()
        .map_err(unreachable)?;
    let token = parse_response(&body)?;
    check_token(
        &token,
        digest_algorithm,
        digest,
        Some(&nonce),
        options.cert_req,
    )?;
    Ok(token)
}

/// Reads a `TimeStampResp`: the token when granted, the rejection otherwise.
pub fn parse_response(der: &[u8]) -> Result<TimeStampToken, TspError> {
    let response = TimeStampResp::from_der(der).map_err(malformed)?;
    let st = &response.status;
    if st.status > 1 {
        return Err(TspError::Rejected {
            status: st.status,
            text: st.status_string.as_ref().map(|v| v.join(" ")),
            failures: st.fail_info.as_ref().map(failure_names).unwrap_or_default(),
        });
    }
    let token = response
        .time_stamp_token
        .ok_or_else(|| TspError::Malformed("statut accordé mais aucun jeton".into()))?;
    parse_token(&token.to_der().map_err(malformed)?)
}

/// Reads a timestamp token (a DER ContentInfo holding a SignedData over a TSTInfo).
pub fn parse_token(der: &[u8]) -> Result<TimeStampToken, TspError> {
    let content_info = ContentInfo::from_der(der).map_err(malformed)?;
    if content_info.content_type != ID_SIGNED_DATA {
        return Err(TspError::Malformed(format!(
            "type de contenu {} au lieu de signedData",
            content_info.content_type
        )));
    }
    let signed: SignedData = content_info.content.decode_as().map_err(malformed)?;
    let encap = &signed.encap_content_info;
    if encap.econtent_type != ID_CT_TST_INFO {
        return Err(TspError::Malformed(format!(
            "contenu signé {} au lieu de id-ct-TSTInfo",
            encap.econtent_type
        )));
    }
    let econtent = encap
        .econtent
        .as_ref()
        .ok_or_else(|| TspError::Malformed("TSTInfo absent".into()))?;
    let octets: OctetString = econtent.decode_as().map_err(malformed)?;
    let info = TstInfo::from_der(octets.as_bytes()).map_err(malformed)?;
    let digest_algorithm = DigestAlgorithm::from_oid(&info.message_imprint.hash_algorithm.oid)
        .ok_or(TspError::UnsupportedDigest(
            info.message_imprint.hash_algorithm.oid,
        ))?;
    let gen_time = time::OffsetDateTime::from_unix_timestamp_nanos(
        info.gen_time.to_unix_duration().as_nanos() as i128,
    )
    .map_err(|e| TspError::Malformed(format!("genTime : {e}")))?;
    let tsa_certificate = signer_certificate(&signed)?;
    Ok(TimeStampToken {
        der: der.to_vec(),
        gen_time,
        serial: info.serial_number.as_bytes().to_vec(),
        digest_algorithm,
        digest: info.message_imprint.hashed_message.as_bytes().to_vec(),
        tsa_certificate,
        info,
    })
}

/// Checks that `token` timestamps `digest`, echoes `nonce` and comes from a timestamping
/// certificate (required when `require_certificate`).
pub fn check_token(
    token: &TimeStampToken,
    digest_algorithm: DigestAlgorithm,
    digest: &[u8],
    nonce: Option<&Uint>,
    require_certificate: bool,
) -> Result<(), TspError> {
    if token.digest_algorithm != digest_algorithm || token.digest != digest {
        return Err(TspError::ImprintMismatch);
    }
    if let Some(nonce) = nonce
        && token.info.nonce.as_ref() != Some(nonce)
    {
        return Err(TspError::NonceMismatch);
    }
    match &token.tsa_certificate {
        Some(cert) if !has_timestamping_usage(cert)? => Err(TspError::NotTimestampingCertificate),
        None if require_certificate => Err(TspError::MissingCertificate),
        _ => Ok(()),
    }
}

/// The certificate of the token's (single) signer, if the SignedData carries it.
fn signer_certificate(signed: &SignedData) -> Result<Option<Certificate>, TspError> {
    let signer = signed
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| TspError::Malformed("aucun signataire".into()))?;
    let Some(certs) = &signed.certificates else {
        return Ok(None);
    };
    for choice in certs.0.iter() {
        let CertificateChoices::Certificate(cert) = choice else {
            continue;
        };
        let tbs = cert.tbs_certificate();
        let matches = match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
                .get_extension::<SubjectKeyIdentifier>()
                .map_err(malformed)?
                .is_some_and(|(_, own)| own == *ski),
        };
        if matches {
            return Ok(Some(cert.clone()));
        }
    }
    Ok(None)
}

fn has_timestamping_usage(cert: &Certificate) -> Result<bool, TspError> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .map_err(malformed)?
        .is_some_and(|(_, eku)| eku.0.contains(&ID_KP_TIME_STAMPING)))
}

fn malformed(e: der::Error) -> TspError {
    TspError::Malformed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_der_with_nonce_and_cert_req() {
        let digest = DigestAlgorithm::Sha384.digest(b"acte");
        let (der, nonce) =
            build_request(DigestAlgorithm::Sha384, &digest, &TspOptions::default()).unwrap();
        let req = TimeStampReq::from_der(&der).unwrap();
        assert_eq!(req.version, 1);
        assert!(req.cert_req);
        assert_eq!(req.nonce, Some(nonce.clone()));
        assert_eq!(nonce.as_bytes().len(), 8);
        assert_eq!(
            req.message_imprint.hash_algorithm.oid,
            DigestAlgorithm::Sha384.oid()
        );
        assert_eq!(req.message_imprint.hashed_message.as_bytes(), &digest[..]);
        assert_eq!(req.to_der().unwrap(), der);
    }

    #[test]
    fn wrong_digest_length_is_refused_before_any_network() {
        let err =
            build_request(DigestAlgorithm::Sha256, &[0; 20], &TspOptions::default()).unwrap_err();
        assert!(
            matches!(err, TspError::DigestLength { got: 20, .. }),
            "{err}"
        );
    }

    #[test]
    fn rejection_reports_status_text_and_failure() {
        let resp = TimeStampResp {
            status: PkiStatusInfo {
                status: 2,
                status_string: Some(vec!["algorithme refusé".into()]),
                fail_info: Some(BitString::new(7, [0x80]).unwrap()),
            },
            time_stamp_token: None,
        };
        let err = parse_response(&resp.to_der().unwrap()).unwrap_err();
        let TspError::Rejected {
            status, failures, ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!((*status, failures.as_slice()), (2, &["badAlg"][..]));
        assert!(err.to_string().contains("algorithme refusé"), "{err}");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(matches!(
            parse_response(b"\x30\x03garbage"),
            Err(TspError::Malformed(_))
        ));
        assert!(matches!(parse_token(b""), Err(TspError::Malformed(_))));
    }

    #[test]
    fn http_error_status_is_reported_with_its_code() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
        });
        let digest = DigestAlgorithm::Sha256.digest(b"x");
        let err = request_timestamp(
            &url,
            DigestAlgorithm::Sha256,
            &digest,
            &TspOptions::default(),
        )
        .unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, TspError::HttpStatus { status: 503 }), "{err}");
        assert!(err.to_string().contains("503"), "{err}");
    }

    #[test]
    fn unreachable_tsa_is_reported_as_such() {
        // A port that was free a moment ago: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        let digest = DigestAlgorithm::Sha256.digest(b"x");
        let options = TspOptions {
            timeout: Duration::from_secs(5),
            ..TspOptions::default()
        };
        let err = request_timestamp(&url, DigestAlgorithm::Sha256, &digest, &options).unwrap_err();
        assert!(matches!(err, TspError::Unreachable { .. }), "{err}");
    }
}
