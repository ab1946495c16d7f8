//! A test RFC 3161 timestamp authority over HTTP, signing with the PKI's `tsa` certificate.
//!
//! It accepts SHA-256/384/512 imprints and echoes the nonce; anything else gets a
//! `TimeStampResp` with status rejection and the matching failInfo, never a crash. The token is
//! a CMS SignedData (eContentType id-ct-TSTInfo) signed with RSA/SHA-256, with the ESS
//! signing-certificate-v2 signed attribute, the TSA certificate included when asked for.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc3161::ID_CT_TST_INFO;
use const_oid::db::rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2;
use der::asn1::{BitString, GeneralizedTime, Int, OctetString, SetOfVec};
use der::{Any, Decode, DecodePem, Encode, Sequence, Tag};
use pkcs8::DecodePrivateKey;
use rsa::pkcs1v15::SigningKey;
use seing_signer::digest::DigestAlgorithm;
use seing_signer::tsp::{
    Accuracy, CONTENT_TYPE_QUERY, CONTENT_TYPE_REPLY, PkiStatusInfo, TimeStampReq, TimeStampResp,
    TstInfo,
};
use sha2::Sha256;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

use crate::Error;
use crate::files::read;
use crate::pki::TestPki;

/// Policy of the test TSA's tokens. TEST OID under the placeholder arc 1.2.250.1.999.
pub const TSA_POLICY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.250.1.999.1.5.1");

/// `PKIFailureInfo` bit numbers used by the test TSA (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    BadAlg = 0,
    BadRequest = 2,
    BadDataFormat = 5,
    UnacceptedPolicy = 15,
    UnacceptedExtension = 16,
}

/// `ESSCertIDv2` (RFC 5035); `hashAlgorithm` left out since SHA-256 is its DEFAULT.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: Option<IssuerSerial>,
}

/// `IssuerSerial` (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

/// `SigningCertificateV2` (RFC 5035) without policies.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// What the TSA signs with.
struct Signer {
    certificate: Certificate,
    key: SigningKey<Sha256>,
    signing_certificate_v2: Attribute,
}

impl Signer {
    fn load(pki: &TestPki) -> Result<Self, Error> {
        let certificate = Certificate::from_pem(read(&pki.cert("tsa"))?)?;
        let pem = String::from_utf8(read(&pki.key("tsa"))?)
            .map_err(|_| Error::Key("TSA key file is not PEM text".into()))?;
        let key = SigningKey::<Sha256>::from_pkcs8_pem(&pem)
            .map_err(|e| Error::Key(format!("TSA key: {e}")))?;
        let tbs = certificate.tbs_certificate();
        let ess = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(
                    DigestAlgorithm::Sha256.digest(&certificate.to_der()?),
                )?,
                issuer_serial: Some(IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                    serial_number: tbs.serial_number().clone(),
                }),
            }],
        };
        let signing_certificate_v2 = Attribute {
            oid: ID_AA_SIGNING_CERTIFICATE_V_2,
            values: SetOfVec::try_from(vec![Any::encode_from(&ess)?])?,
        };
        Ok(Self {
            certificate,
            key,
            signing_certificate_v2,
        })
    }

    /// The DER `TimeStampResp` answering the DER request `body`.
    fn respond(&self, body: &[u8]) -> Vec<u8> {
        let response = match self.grant(body) {
            Ok(token) => TimeStampResp {
                status: PkiStatusInfo {
                    status: 0,
                    status_string: None,
                    fail_info: None,
                },
                time_stamp_token: Some(token),
            },
            Err((failure, text)) => rejection(failure, text),
        };
        response.to_der().unwrap_or_else(|_| {
            // Only reachable if our own structures failed to encode; say so to the client.
            let fallback = rejection(Failure::BadRequest, "internal encoding error".into());
            fallback.to_der().unwrap_or_default()
        })
    }

    fn grant(&self, body: &[u8]) -> Result<Any, (Failure, String)> {
        let request = TimeStampReq::from_der(body)
            .map_err(|e| (Failure::BadDataFormat, format!("malformed request: {e}")))?;
        if request.version != 1 {
            return Err((Failure::BadRequest, "version must be 1".into()));
        }
        let imprint = &request.message_imprint;
        let algorithm =
            DigestAlgorithm::from_oid(&imprint.hash_algorithm.oid).ok_or_else(|| {
                (
                    Failure::BadAlg,
                    format!("unsupported hash algorithm {}", imprint.hash_algorithm.oid),
                )
            })?;
        if imprint.hashed_message.as_bytes().len() != algorithm.output_len() {
            return Err((
                Failure::BadDataFormat,
                "imprint length does not match its algorithm".into(),
            ));
        }
        if request.req_policy.is_some_and(|p| p != TSA_POLICY_OID) {
            return Err((Failure::UnacceptedPolicy, "unknown policy".into()));
        }
        if request.extensions.is_some() {
            return Err((
                Failure::UnacceptedExtension,
                "no extension is supported".into(),
            ));
        }
        self.sign(&request)
            .map_err(|e| (Failure::BadRequest, format!("signing failed: {e}")))
    }

    fn sign(&self, request: &TimeStampReq) -> Result<Any, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| Error::Tsa(format!("clock before 1970: {e}")))?;
        let mut serial = [0u8; 16];
        rand::fill(&mut serial);
        // Positive, and a non-zero leading byte keeps the INTEGER canonical (DER).
        serial[0] = (serial[0] & 0x7f) | 0x40;
        let info = TstInfo {
            version: 1,
            policy: TSA_POLICY_OID,
            message_imprint: request.message_imprint.clone(),
            serial_number: Int::new(&serial)?,
            gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                now.as_secs(),
            ))?,
            accuracy: Some(Accuracy {
                seconds: Some(1),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce: request.nonce.clone(),
            tsa: None,
            extensions: None,
        };
        let content = EncapsulatedContentInfo {
            econtent_type: ID_CT_TST_INFO,
            econtent: Some(Any::new(Tag::OctetString, info.to_der()?)?),
        };
        let tbs = self.certificate.tbs_certificate();
        let mut signer_info = SignerInfoBuilder::new(
            SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer().clone(),
                serial_number: tbs.serial_number().clone(),
            }),
            DigestAlgorithm::Sha256.algorithm_identifier(),
            &content,
            None,
        )
        .map_err(cms_error)?;
        signer_info
            .add_signed_attribute(self.signing_certificate_v2.clone())
            .map_err(cms_error)?;
        let mut builder = SignedDataBuilder::new(&content);
        builder
            .add_digest_algorithm(DigestAlgorithm::Sha256.algorithm_identifier())
            .map_err(cms_error)?;
        if request.cert_req {
            builder
                .add_certificate(CertificateChoices::Certificate(self.certificate.clone()))
                .map_err(cms_error)?;
        }
        builder
            .add_signer_info::<_, rsa::pkcs1v15::Signature>(signer_info, &self.key)
            .map_err(cms_error)?;
        let content_info = builder.build().map_err(cms_error)?;
        Ok(Any::encode_from(&content_info)?)
    }
}

fn cms_error(e: cms::builder::Error) -> Error {
    Error::Tsa(format!("CMS builder: {e}"))
}

fn rejection(failure: Failure, text: String) -> TimeStampResp {
    let bit = failure as usize;
    let mut bytes = vec![0u8; bit / 8 + 1];
    bytes[bit / 8] = 0x80 >> (bit % 8);
    TimeStampResp {
        status: PkiStatusInfo {
            status: 2,
            status_string: Some(vec![text]),
            fail_info: BitString::new((7 - bit % 8) as u8, bytes).ok(),
        },
        time_stamp_token: None,
    }
}

/// A running test TSA; it stops when dropped.
pub struct TestTsa {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestTsa {
    /// Starts a TSA on 127.0.0.1 with a free port, signing with `pki`'s `tsa` certificate.
    pub fn start(pki: &TestPki) -> Result<Self, Error> {
        Self::start_on(pki, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a TSA listening on `addr` (port 0: any free port).
    pub fn start_on(pki: &TestPki, addr: SocketAddr) -> Result<Self, Error> {
        let signer = std::sync::Arc::new(Signer::load(pki)?);
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| Error::io(format!("listening on {addr}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("configuring the listener", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listening address", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the TSA runtime", e))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let signer = signer.clone();
            async move { handle(&signer, &headers, &body) }
        });
        let thread = std::thread::Builder::new()
            .name(format!("test-tsa-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                });
            })
            .map_err(|e| Error::io("starting the TSA thread", e))?;
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The TSA's URL, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process ends (for the CLI).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn handle(signer: &Signer, headers: &HeaderMap, body: &[u8]) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if content_type != Some(CONTENT_TYPE_QUERY) {
        return (
            StatusCode::BAD_REQUEST,
            format!("Content-Type must be {CONTENT_TYPE_QUERY}\n"),
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE_REPLY)],
        signer.respond(body),
    )
        .into_response()
}
