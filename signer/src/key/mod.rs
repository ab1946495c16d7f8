//! Key sources: where signature values come from.
//!
//! A [`KeySource`] holds one private key and its certificate, and signs **digests** (never whole
//! documents): the formats compute what is signed, so the same key code serves CMS, PDF and
//! XML-DSig. Two implementations: [`pkcs11::Pkcs11Key`] (smart cards, HSMs, SoftHSM2, named by an
//! RFC 7512 URI) and [`software::SoftwareKey`] (PKCS#12 or PEM files). A source opened once signs
//! any number of digests with one session and one login, which is what a batch relies on.
//!
//! Signature values come back in the key's native form ([`SignatureValue`]): PKCS#1 v1.5 bytes
//! for RSA, raw `r‖s` for ECDSA. CMS and PAdES need ECDSA as a DER `SEQUENCE { r, s }`
//! ([`SignatureValue::to_der_encoding`]); XML-DSig keeps `r‖s`.

pub mod pkcs11;
mod pkcs12;
pub mod software;

use std::fmt;
use std::path::PathBuf;

use der::Encode;
use serde::{Deserialize, Serialize};
use spki::{AlgorithmIdentifierOwned, DecodePublicKey};
use x509_cert::Certificate;

use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::model::ToSign;

/// The public-key algorithm of a signer, read from its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// RSA, signing with PKCS#1 v1.5 padding.
    Rsa,
    /// ECDSA on NIST P-256.
    EcdsaP256,
}

const OID_RSA_ENCRYPTION: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC_PUBLIC_KEY: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_SECP256R1: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

impl KeyAlgorithm {
    /// The algorithm of `certificate`'s public key; an error for anything but RSA and P-256.
    pub fn of_certificate(certificate: &Certificate) -> Result<Self> {
        let spki = certificate.tbs_certificate().subject_public_key_info();
        if spki.algorithm.oid == OID_RSA_ENCRYPTION {
            return Ok(Self::Rsa);
        }
        if spki.algorithm.oid == OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::oid::ObjectIdentifier>().ok());
            if curve == Some(OID_SECP256R1) {
                return Ok(Self::EcdsaP256);
            }
            return Err(Error::UnsupportedKey(
                "elliptic curve other than P-256".into(),
            ));
        }
        Err(Error::UnsupportedKey(format!(
            "public key algorithm {}",
            spki.algorithm.oid
        )))
    }

    /// The signature `AlgorithmIdentifier` (e.g. sha256WithRSAEncryption, ecdsa-with-SHA256) used in
    /// CMS `SignerInfo.signatureAlgorithm`.
    pub fn signature_algorithm_identifier(
        self,
        digest: DigestAlgorithm,
    ) -> AlgorithmIdentifierOwned {
        use const_oid::db::rfc5912::*;
        match self {
            // RFC 4055: the parameters of the RSA PKCS#1 v1.5 algorithms are NULL.
            Self::Rsa => AlgorithmIdentifierOwned {
                oid: match digest {
                    DigestAlgorithm::Sha256 => SHA_256_WITH_RSA_ENCRYPTION,
                    DigestAlgorithm::Sha384 => SHA_384_WITH_RSA_ENCRYPTION,
                    DigestAlgorithm::Sha512 => SHA_512_WITH_RSA_ENCRYPTION,
                },
                parameters: Some(der::asn1::Null.into()),
            },
            // RFC 5758: the ECDSA algorithms have absent parameters.
            Self::EcdsaP256 => AlgorithmIdentifierOwned {
                oid: match digest {
                    DigestAlgorithm::Sha256 => ECDSA_WITH_SHA_256,
                    DigestAlgorithm::Sha384 => ECDSA_WITH_SHA_384,
                    DigestAlgorithm::Sha512 => ECDSA_WITH_SHA_512,
                },
                parameters: None,
            },
        }
    }

    /// The key and digest algorithms named by a CMS/X.509 signature `AlgorithmIdentifier` OID.
    pub fn from_signature_oid(oid: &der::oid::ObjectIdentifier) -> Option<(Self, DigestAlgorithm)> {
        use const_oid::db::rfc5912::*;
        let pairs = [
            (
                SHA_256_WITH_RSA_ENCRYPTION,
                Self::Rsa,
                DigestAlgorithm::Sha256,
            ),
            (
                SHA_384_WITH_RSA_ENCRYPTION,
                Self::Rsa,
                DigestAlgorithm::Sha384,
            ),
            (
                SHA_512_WITH_RSA_ENCRYPTION,
                Self::Rsa,
                DigestAlgorithm::Sha512,
            ),
            (ECDSA_WITH_SHA_256, Self::EcdsaP256, DigestAlgorithm::Sha256),
            (ECDSA_WITH_SHA_384, Self::EcdsaP256, DigestAlgorithm::Sha384),
            (ECDSA_WITH_SHA_512, Self::EcdsaP256, DigestAlgorithm::Sha512),
        ];
        pairs
            .into_iter()
            .find(|(o, _, _)| o == oid)
            .map(|(_, k, d)| (k, d))
    }
}

/// A signature value in the key's native form: PKCS#1 v1.5 bytes (RSA) or raw `r‖s` (ECDSA).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureValue(#[serde(with = "crate::model::base64_bytes")] pub Vec<u8>);

impl fmt::Debug for SignatureValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureValue({} bytes)", self.0.len())
    }
}

impl SignatureValue {
    /// The raw bytes (RSA signature, or ECDSA `r‖s`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The encoding CMS and PDF expect: RSA unchanged, ECDSA as DER `SEQUENCE { r, s }`.
    pub fn to_der_encoding(&self, algorithm: KeyAlgorithm) -> Result<Vec<u8>> {
        match algorithm {
            KeyAlgorithm::Rsa => Ok(self.0.clone()),
            KeyAlgorithm::EcdsaP256 => {
                let sig = p256::ecdsa::Signature::from_slice(&self.0)
                    .map_err(|_| Error::Format("ECDSA signature is not r‖s on P-256".into()))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }

    /// The inverse of [`Self::to_der_encoding`]: a value read from a CMS `SignerInfo`.
    pub fn from_der_encoding(algorithm: KeyAlgorithm, encoded: &[u8]) -> Result<Self> {
        match algorithm {
            KeyAlgorithm::Rsa => Ok(Self(encoded.to_vec())),
            KeyAlgorithm::EcdsaP256 => {
                let sig = p256::ecdsa::Signature::from_der(encoded)
                    .map_err(|_| Error::Format("ECDSA signature is not DER".into()))?;
                Ok(Self(sig.to_bytes().to_vec()))
            }
        }
    }
}

/// Refuses a digest whose length is not that of `algorithm` (a key would sign it blindly).
pub(crate) fn check_digest_length(algorithm: DigestAlgorithm, digest: &[u8]) -> Result<()> {
    if digest.len() != algorithm.output_len() {
        return Err(Error::Unsupported(format!(
            "digest of {} bytes for {algorithm:?}",
            digest.len()
        )));
    }
    Ok(())
}

/// The DER `DigestInfo` prefix that PKCS#1 v1.5 puts in front of a digest of `algorithm`.
pub(crate) fn pkcs1_digest_info_prefix(algorithm: DigestAlgorithm) -> Box<[u8]> {
    match algorithm {
        DigestAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>().prefix,
        DigestAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>().prefix,
        DigestAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>().prefix,
    }
}

pub(crate) fn pkcs1_scheme_for(algorithm: DigestAlgorithm) -> rsa::Pkcs1v15Sign {
    match algorithm {
        DigestAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        DigestAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
        DigestAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
    }
}

/// Checks that `value` is a valid signature of `digest` by `certificate`'s key.
///
/// This is the check `finalize` runs on every value before embedding it, and the cryptographic
/// check of verification: `Ok(false)` means "does not verify", `Err` means the inputs are unusable.
pub fn verify_digest_signature(
    certificate: &Certificate,
    digest_algorithm: DigestAlgorithm,
    digest: &[u8],
    value: &SignatureValue,
) -> Result<bool> {
    let spki_der = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()?;
    verify_with_spki(&spki_der, digest_algorithm, digest, value)
}

/// [`verify_digest_signature`] with a DER `SubjectPublicKeyInfo` instead of a certificate.
pub fn verify_with_spki(
    spki_der: &[u8],
    digest_algorithm: DigestAlgorithm,
    digest: &[u8],
    value: &SignatureValue,
) -> Result<bool> {
    let spki = spki::SubjectPublicKeyInfoRef::try_from(spki_der)
        .map_err(|e| Error::Certificate(format!("public key: {e}")))?;
    if spki.algorithm.oid == OID_RSA_ENCRYPTION {
        let key = rsa::PublicKey::from_public_key_der(spki_der)
            .map_err(|e| Error::Certificate(format!("RSA public key: {e}")))?;
        return Ok(key
            .verify(pkcs1_scheme_for(digest_algorithm), digest, &value.0)
            .is_ok());
    }
    if spki.algorithm.oid == OID_EC_PUBLIC_KEY {
        use signature::hazmat::PrehashVerifier;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
            .map_err(|e| Error::UnsupportedKey(format!("EC public key: {e}")))?;
        let Ok(sig) = p256::ecdsa::Signature::from_slice(&value.0) else {
            return Ok(false);
        };
        return Ok(key.verify_prehash(digest, &sig).is_ok());
    }
    Err(Error::UnsupportedKey(format!(
        "public key algorithm {}",
        spki.algorithm.oid
    )))
}

/// A private key with its certificate, able to sign digests.
///
/// Implementations are `Send + Sync` so one opened key serves a whole batch from any thread.
pub trait KeySource: Send + Sync {
    /// The signer's certificate.
    fn certificate(&self) -> &Certificate;

    /// Further certificates the source knows (intermediate CAs from a PKCS#12 or `--chain`).
    fn chain(&self) -> &[Certificate];

    /// Signs a digest computed with `algorithm`, returning the value in native form.
    fn sign_digest(&self, algorithm: DigestAlgorithm, digest: &[u8]) -> Result<SignatureValue>;

    /// Signs every item, one outcome each in order (a failure concerns its item only).
    ///
    /// Sequential by default, which a PKCS#11 source keeps (one session, one login); software
    /// keys sign on several threads.
    fn sign_digests(&self, items: &[ToSign]) -> Vec<Result<SignatureValue>> {
        sign_each(self, items)
    }

    /// The key's algorithm (read from the certificate).
    fn algorithm(&self) -> Result<KeyAlgorithm> {
        KeyAlgorithm::of_certificate(self.certificate())
    }
}

/// Signs `items` one after the other with `key`.
pub(crate) fn sign_each<K: KeySource + ?Sized>(
    key: &K,
    items: &[ToSign],
) -> Vec<Result<SignatureValue>> {
    items
        .iter()
        .map(|item| key.sign_digest(item.digest_algorithm, &item.digest))
        .collect()
}

/// A secret string (PIN, password) whose `Debug` never shows the value.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where to find a key: what the CLI's `--key`, `--p12` and `--key-pem` options name.
#[derive(Debug, Clone)]
pub enum KeySpec {
    /// A PKCS#11 object named by an RFC 7512 URI, with an optional certificate file overriding
    /// the one on the token.
    Pkcs11 {
        /// The `pkcs11:` URI (it may carry `pin-value`; `Debug` of the spec hides it).
        uri: pkcs11::Pkcs11Uri,
        /// A PEM certificate to use instead of the token's.
        certificate: Option<PathBuf>,
    },
    /// A PKCS#12 file and its password.
    Pkcs12 {
        /// The `.p12` file.
        path: PathBuf,
        /// Its password.
        password: Secret,
    },
    /// A PEM private key (PKCS#8, or PKCS#1 / SEC1) and a PEM certificate.
    Pem {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        certificate: PathBuf,
    },
}

/// Opens the key a [`KeySpec`] names; `extra_chain` adds intermediate certificates.
///
/// For PKCS#11 this loads the module, opens one session and logs in once.
pub fn open(spec: &KeySpec, extra_chain: Vec<Certificate>) -> Result<Box<dyn KeySource>> {
    Ok(match spec {
        KeySpec::Pkcs11 { uri, certificate } => {
            let cert = certificate
                .as_deref()
                .map(crate::x509::read_certificate)
                .transpose()?;
            Box::new(pkcs11::Pkcs11Key::open(uri, cert, extra_chain)?)
        }
        KeySpec::Pkcs12 { path, password } => Box::new(software::SoftwareKey::from_pkcs12_file(
            path,
            password,
            extra_chain,
        )?),
        KeySpec::Pem { key, certificate } => Box::new(software::SoftwareKey::from_pem_files(
            key,
            certificate,
            extra_chain,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_the_value() {
        let s = Secret::new("123456");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "123456");
    }

    #[test]
    fn signature_algorithm_oids_round_trip() {
        for k in [KeyAlgorithm::Rsa, KeyAlgorithm::EcdsaP256] {
            for d in [
                DigestAlgorithm::Sha256,
                DigestAlgorithm::Sha384,
                DigestAlgorithm::Sha512,
            ] {
                let id = k.signature_algorithm_identifier(d);
                assert_eq!(KeyAlgorithm::from_signature_oid(&id.oid), Some((k, d)));
            }
        }
    }
}
