//! XAdES (ETSI EN 319 132-1) signatures: building the `ds:Signature` with its qualifying
//! properties, enveloped or detached, levels B-B and B-T, and verifying XAdES signatures made by
//! seing or by other products (XAdES 1.1.1, 1.2.2 and 1.3.2, any prefixes).
//!
//! The PES V2 profile ([`crate::pes`]) uses the same builder with the XAdES 1.1.1 namespace.

pub mod build;
pub mod format;
pub mod verify;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};

/// Algorithm URIs of XML-DSig used by seing.
pub mod uri {
    /// Exclusive canonicalization without comments.
    pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
    /// Enveloped-signature transform.
    pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
    /// RSA PKCS#1 v1.5 with SHA-256.
    pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    /// ECDSA with SHA-256.
    pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
    /// SHA-256 digest.
    pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
    /// The Type of a Reference to SignedProperties.
    pub const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";
}

/// The XAdES namespace (version) of the qualifying properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum XadesVersion {
    /// `http://uri.etsi.org/01903/v1.1.1#`, what the PES V2 XSD validates.
    V111,
    /// `http://uri.etsi.org/01903/v1.2.2#`.
    V122,
    /// `http://uri.etsi.org/01903/v1.3.2#`, the baseline namespace of EN 319 132-1.
    V132,
}

impl XadesVersion {
    /// The namespace URI.
    pub fn namespace(self) -> &'static str {
        match self {
            Self::V111 => "http://uri.etsi.org/01903/v1.1.1#",
            Self::V122 => "http://uri.etsi.org/01903/v1.2.2#",
            Self::V132 => "http://uri.etsi.org/01903/v1.3.2#",
        }
    }

    /// The version of a namespace URI.
    pub fn from_namespace(ns: &str) -> Option<Self> {
        [Self::V111, Self::V122, Self::V132]
            .into_iter()
            .find(|v| v.namespace() == ns)
    }

    /// The version as people write it ("1.3.2").
    pub fn label(self) -> &'static str {
        match self {
            Self::V111 => "1.1.1",
            Self::V122 => "1.2.2",
            Self::V132 => "1.3.2",
        }
    }
}

/// A signature policy (SignaturePolicyIdentifier) and the hash of its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignaturePolicy {
    /// The policy identifier, e.g. `urn:oid:1.2.250.1.131.1.5.18.21.1.7`.
    pub identifier: String,
    /// Hash algorithm of the policy document.
    #[serde(with = "crate::model::digest_algorithm_name")]
    pub hash_algorithm: DigestAlgorithm,
    /// Hash of the policy document.
    #[serde(with = "crate::model::base64_bytes")]
    pub hash: Vec<u8>,
    /// Where the policy document is published (SPURI).
    pub uri: Option<String>,
    /// A description (kept for readers; 1.1.1 puts it in `SigPolicyId/Description`).
    pub description: Option<String>,
}

impl SignaturePolicy {
    /// The DGFiP Hélios policy identifier.
    pub const HELIOS_OID_URN: &'static str = "urn:oid:1.2.250.1.131.1.5.18.21.1.7";
    /// SHA-256 of the Hélios policy document as published with that identifier (base64).
    pub const HELIOS_HASH_B64: &'static str = "roF9+cfRHNPtVJolhdqfIqGMVuUXX8aR4rpiquf0u5E=";
    /// Where the Hélios policy is published.
    pub const HELIOS_SPURI: &'static str = "https://www.collectivites-locales.gouv.fr/files/files/finances_locales/dematerialisation/ps_helios_dgfip.pdf";

    /// The Hélios policy with seing's defaults (override them when DGFiP revises its policy).
    pub fn helios() -> Self {
        use base64::Engine as _;
        Self {
            identifier: Self::HELIOS_OID_URN.into(),
            hash_algorithm: DigestAlgorithm::Sha256,
            hash: base64::engine::general_purpose::STANDARD
                .decode(Self::HELIOS_HASH_B64)
                .unwrap_or_default(),
            uri: Some(Self::HELIOS_SPURI.into()),
            description: Some("Politique de signature Helios de la DGFiP".into()),
        }
    }

    /// A policy from command-line style values: an OID (`1.2.…` or `urn:oid:1.2.…`), a base64
    /// SHA-256 hash and an optional URI.
    pub fn from_parts(oid: &str, hash_b64: &str, uri: Option<String>) -> Result<Self> {
        use base64::Engine as _;
        let identifier = if oid.starts_with("urn:") {
            oid.to_string()
        } else {
            format!("urn:oid:{oid}")
        };
        let hash = base64::engine::general_purpose::STANDARD
            .decode(hash_b64.trim())
            .map_err(|e| Error::Unsupported(format!("policy hash is not base64: {e}")))?;
        if hash.len() != DigestAlgorithm::Sha256.output_len() {
            return Err(Error::Unsupported(
                "policy hash must be a base64 SHA-256 (32 bytes)".into(),
            ));
        }
        Ok(Self {
            identifier,
            hash_algorithm: DigestAlgorithm::Sha256,
            hash,
            uri,
            description: None,
        })
    }
}

/// Where the signature was produced (SignatureProductionPlace / V2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductionPlace {
    /// City, e.g. "Orléans".
    pub city: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Country name, e.g. "France".
    pub country: Option<String>,
}

impl ProductionPlace {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.city.is_none() && self.postal_code.is_none() && self.country.is_none()
    }
}

/// A DataObjectFormat for one signed reference (XAdES 1.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataObjectFormat {
    /// The MIME type of the signed data, e.g. `text/xml`.
    pub mime_type: String,
    /// A description (file name).
    pub description: Option<String>,
}

/// The signed properties that a signer claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPropertiesSpec {
    /// The signing time (written in UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub signing_time: OffsetDateTime,
    /// The signature policy, for XAdES-EPES.
    pub policy: Option<SignaturePolicy>,
    /// The claimed role ("Ordonnateur", "Maire").
    pub role: Option<String>,
    /// Where the signature is produced.
    pub place: Option<ProductionPlace>,
}
