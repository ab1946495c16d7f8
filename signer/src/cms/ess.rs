//! ESS `SigningCertificateV2` (RFC 5035), the signed attribute that binds a CAdES/PAdES signature
//! to its signer's certificate.

use const_oid::db::rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};

/// `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies … OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    /// The signer's certificate first.
    pub certs: Vec<EssCertIdV2>,
    /// Policy information (never written by seing; kept when read).
    #[asn1(optional = "true")]
    pub policies: Option<Vec<Any>>,
}

/// `ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash, issuerSerial OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    /// The hash algorithm; absent means SHA-256 (DER omits the default).
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    /// The hash of the whole DER certificate.
    pub cert_hash: OctetString,
    /// The certificate's issuer and serial number.
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    /// The issuer, as a directoryName.
    pub issuer: Vec<GeneralName>,
    /// The serial number.
    pub serial_number: SerialNumber,
}

impl SigningCertificateV2 {
    /// The attribute value for `certificate`, hashed with `algorithm`.
    pub fn for_certificate(certificate: &Certificate, algorithm: DigestAlgorithm) -> Result<Self> {
        let hash = algorithm.digest(&certificate.to_der()?);
        Ok(Self {
            certs: vec![EssCertIdV2 {
                hash_algorithm: match algorithm {
                    DigestAlgorithm::Sha256 => None,
                    other => Some(other.algorithm_identifier()),
                },
                cert_hash: OctetString::new(hash)?,
                issuer_serial: Some(IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(
                        certificate.tbs_certificate().issuer().clone(),
                    )],
                    serial_number: certificate.tbs_certificate().serial_number().clone(),
                }),
            }],
            policies: None,
        })
    }

    /// The signed attribute carrying this value.
    pub fn to_attribute(&self) -> Result<Attribute> {
        let mut values = SetOfVec::new();
        values.insert(Any::from_der(&self.to_der()?)?)?;
        Ok(Attribute {
            oid: ID_AA_SIGNING_CERTIFICATE_V_2,
            values,
        })
    }

    /// Whether the first ESSCertIDv2 designates `certificate`.
    pub fn designates(&self, certificate: &Certificate) -> Result<bool> {
        let first = self
            .certs
            .first()
            .ok_or_else(|| Error::Format("empty SigningCertificateV2".into()))?;
        let algorithm = match &first.hash_algorithm {
            None => DigestAlgorithm::Sha256,
            Some(a) => DigestAlgorithm::from_oid(&a.oid).ok_or_else(|| {
                Error::Format(format!("SigningCertificateV2 hash algorithm {}", a.oid))
            })?,
        };
        Ok(first.cert_hash.as_bytes() == algorithm.digest(&certificate.to_der()?).as_slice())
    }
}
