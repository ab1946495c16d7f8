//! Software keys: a PKCS#12 file with its password, or a PEM private key with a PEM certificate.
//!
//! Meant for tests and for server seals without an HSM; élus sign with tokens ([`super::pkcs11`]).
//!
//! RSA private operations run in AWS-LC (constant-time, blinded, ≈0.25 ms per RSA-2048 signature
//! against ≈3 ms for the pure-Rust `rsa` crate); P-256 uses the `p256` crate (RFC 6979 nonces).
//! A software key signs the items of a batch on several threads at once.

use std::fmt;
use std::path::Path;

use pkcs8::DecodePrivateKey;
use x509_cert::Certificate;

use super::{KeyAlgorithm, KeySource, Secret, SignatureValue, check_digest_length};
use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::model::ToSign;

enum Private {
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    P256(p256::ecdsa::SigningKey),
}

/// A private key held in memory with its certificate.
pub struct SoftwareKey {
    key: Private,
    certificate: Certificate,
    chain: Vec<Certificate>,
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKey")
            .field(
                "subject",
                &self.certificate.tbs_certificate().subject().to_string(),
            )
            .finish_non_exhaustive()
    }
}

impl SoftwareKey {
    /// Builds a key from a PKCS#8 DER private key and its certificate.
    ///
    /// Fails when the key does not match the certificate's public key.
    pub fn from_pkcs8_der(
        pkcs8_der: &[u8],
        certificate: Certificate,
        chain: Vec<Certificate>,
    ) -> Result<Self> {
        let key = match KeyAlgorithm::of_certificate(&certificate)? {
            KeyAlgorithm::Rsa => Private::Rsa(
                aws_lc_rs::signature::RsaKeyPair::from_pkcs8(pkcs8_der)
                    .map_err(|e| Error::Key(format!("RSA private key: {e}")))?,
            ),
            KeyAlgorithm::EcdsaP256 => Private::P256(
                p256::ecdsa::SigningKey::from_pkcs8_der(pkcs8_der)
                    .map_err(|e| Error::Key(format!("P-256 private key: {e}")))?,
            ),
        };
        let this = Self {
            key,
            certificate,
            chain,
        };
        this.check_pair()?;
        Ok(this)
    }

    /// Loads a PKCS#12 file: its key, the certificate matching it, and the other certificates as
    /// chain (followed by `extra_chain`).
    pub fn from_pkcs12_file(
        path: &Path,
        password: &Secret,
        extra_chain: Vec<Certificate>,
    ) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let contents = super::pkcs12::parse(&data, password.expose()).map_err(|e| match e {
            Error::Key(m) => Error::Key(format!("{}: {m}", path.display())),
            other => Error::Key(format!("{}: {other}", path.display())),
        })?;
        let key = contents
            .keys
            .first()
            .ok_or_else(|| Error::Key(format!("{}: no private key inside", path.display())))?;
        // The signer's certificate is the one matching the key; the others form the chain.
        for (i, cert) in contents.certificates.iter().enumerate() {
            let mut chain: Vec<Certificate> = contents
                .certificates
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c.clone())
                .collect();
            chain.extend(extra_chain.iter().cloned());
            if let Ok(k) = Self::from_pkcs8_der(key, cert.clone(), chain) {
                return Ok(k);
            }
        }
        Err(Error::Key(format!(
            "{}: no certificate matches the private key",
            path.display()
        )))
    }

    /// Loads a PEM private key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1
    /// `EC PRIVATE KEY`) and a PEM certificate file (the first certificate is the signer's, the
    /// others join the chain).
    pub fn from_pem_files(
        key_path: &Path,
        cert_path: &Path,
        extra_chain: Vec<Certificate>,
    ) -> Result<Self> {
        let mut certs = crate::x509::read_certificates(cert_path)?;
        let certificate = certs.remove(0);
        certs.extend(extra_chain);
        let pem = std::fs::read_to_string(key_path).map_err(|e| Error::io(key_path, e))?;
        let (label, der) = pem_rfc7468_decode(&pem)
            .map_err(|_| Error::Key(format!("{}: not a PEM key", key_path.display())))?;
        let pkcs8 = match label.as_str() {
            "PRIVATE KEY" => der,
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::pkcs8::EncodePrivateKey;
                let k = rsa::PrivateKey::from_pkcs1_der(&der)
                    .map_err(|e| Error::Key(format!("{}: {e}", key_path.display())))?;
                k.to_pkcs8_der()
                    .map_err(|e| Error::Key(e.to_string()))?
                    .as_bytes()
                    .to_vec()
            }
            "EC PRIVATE KEY" => {
                use p256::pkcs8::EncodePrivateKey;
                let k = p256::SecretKey::from_sec1_der(&der)
                    .map_err(|e| Error::Key(format!("{}: {e}", key_path.display())))?;
                k.to_pkcs8_der()
                    .map_err(|e| Error::Key(e.to_string()))?
                    .as_bytes()
                    .to_vec()
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(Error::Key(format!(
                    "{}: encrypted PEM keys are not supported; use a PKCS#12 file",
                    key_path.display()
                )));
            }
            other => {
                return Err(Error::Key(format!(
                    "{}: unexpected PEM block {other}",
                    key_path.display()
                )));
            }
        };
        Self::from_pkcs8_der(&pkcs8, certificate, certs)
    }

    fn check_pair(&self) -> Result<()> {
        let algorithm = DigestAlgorithm::Sha256;
        let digest = algorithm.digest(b"seing key/certificate pairing check");
        let value = self.sign_digest(algorithm, &digest)?;
        if super::verify_digest_signature(&self.certificate, algorithm, &digest, &value)? {
            Ok(())
        } else {
            Err(Error::Key(
                "the private key does not match the certificate".into(),
            ))
        }
    }
}

fn pem_rfc7468_decode(pem: &str) -> std::result::Result<(String, Vec<u8>), der::Error> {
    // Skip anything before the first boundary (OpenSSL writes "Bag Attributes" headers).
    let start = pem.find("-----BEGIN ").ok_or(der::ErrorKind::Failed)?;
    let (label, der) = der::pem::decode_vec(&pem.as_bytes()[start..])
        .map_err(|_| der::Error::from(der::ErrorKind::Failed))?;
    Ok((label.to_string(), der))
}

impl KeySource for SoftwareKey {
    fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    fn sign_digest(&self, algorithm: DigestAlgorithm, digest: &[u8]) -> Result<SignatureValue> {
        check_digest_length(algorithm, digest)?;
        match &self.key {
            Private::Rsa(key) => {
                use aws_lc_rs::{digest, signature};
                let (padding, hash): (&'static dyn signature::RsaEncoding, _) = match algorithm {
                    DigestAlgorithm::Sha256 => (&signature::RSA_PKCS1_SHA256, &digest::SHA256),
                    DigestAlgorithm::Sha384 => (&signature::RSA_PKCS1_SHA384, &digest::SHA384),
                    DigestAlgorithm::Sha512 => (&signature::RSA_PKCS1_SHA512, &digest::SHA512),
                };
                let digest = digest::Digest::import_less_safe(digest, hash)
                    .map_err(|_| Error::Key("RSA signing: digest of the wrong length".into()))?;
                let mut value = vec![0; key.public_modulus_len()];
                key.sign_digest(padding, &digest, &mut value)
                    .map_err(|_| Error::Key("RSA signing failed".into()))?;
                Ok(SignatureValue(value))
            }
            Private::P256(key) => {
                use signature::hazmat::PrehashSigner;
                let sig: p256::ecdsa::Signature = key
                    .sign_prehash(digest)
                    .map_err(|e| Error::Key(format!("ECDSA signing: {e}")))?;
                Ok(SignatureValue(sig.to_bytes().to_vec()))
            }
        }
    }

    /// Signs on up to one thread per core: the key is immutable and each value independent.
    fn sign_digests(&self, items: &[ToSign]) -> Vec<Result<SignatureValue>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(items.len());
        if threads <= 1 {
            return super::sign_each(self, items);
        }
        let chunk = items.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = items
                .chunks(chunk)
                .map(|part| scope.spawn(move || super::sign_each(self, part)))
                .collect();
            handles
                .into_iter()
                .zip(items.chunks(chunk))
                .flat_map(|(handle, part)| {
                    handle.join().unwrap_or_else(|_| {
                        part.iter()
                            .map(|_| Err(Error::Key("signing thread panicked".into())))
                            .collect()
                    })
                })
                .collect()
        })
    }
}
