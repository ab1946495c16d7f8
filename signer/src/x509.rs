//! Certificate helpers: reading PEM/DER files, names, signatures of certificates and CRLs, key
//! usage and validity.

use std::path::Path;
use std::time::SystemTime;

use der::{Decode, DecodePem, Encode};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::KeyUsage;

use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, SignatureValue, verify_with_spki};

/// Reads every certificate of a PEM file (or the one certificate of a DER file).
pub fn read_certificates(path: &Path) -> Result<Vec<Certificate>> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let certs = if data.starts_with(b"-----") || data.windows(11).any(|w| w == b"-----BEGIN ") {
        Certificate::load_pem_chain(&data)
            .map_err(|e| Error::Certificate(format!("{}: {e}", path.display())))?
    } else {
        vec![
            Certificate::from_der(&data)
                .map_err(|e| Error::Certificate(format!("{}: {e}", path.display())))?,
        ]
    };
    if certs.is_empty() {
        return Err(Error::Certificate(format!(
            "{}: no certificate inside",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the first certificate of a PEM or DER file.
pub fn read_certificate(path: &Path) -> Result<Certificate> {
    Ok(read_certificates(path)?.remove(0))
}

/// Reads a CRL in PEM or DER.
pub fn read_crl(path: &Path) -> Result<CertificateList> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let crl = if data.starts_with(b"-----") {
        CertificateList::from_pem(&data)
    } else {
        CertificateList::from_der(&data)
    };
    crl.map_err(|e| Error::Certificate(format!("{}: not a CRL: {e}", path.display())))
}

/// The subject of a certificate as an RFC 4514 string.
pub fn subject(certificate: &Certificate) -> String {
    certificate.tbs_certificate().subject().to_string()
}

/// Whether `issuer`'s key signed `signed_der` with `signature` (an X.509/CMS signature
/// `AlgorithmIdentifier` OID and BIT STRING contents).
pub fn signature_is_valid(
    issuer: &Certificate,
    algorithm: &der::oid::ObjectIdentifier,
    signed_der: &[u8],
    signature: &[u8],
) -> bool {
    let Some((key_algorithm, digest_algorithm)) = KeyAlgorithm::from_signature_oid(algorithm)
    else {
        return false;
    };
    let Ok(value) = SignatureValue::from_der_encoding(key_algorithm, signature) else {
        return false;
    };
    let Ok(spki) = issuer.tbs_certificate().subject_public_key_info().to_der() else {
        return false;
    };
    let digest = digest_algorithm.digest(signed_der);
    verify_with_spki(&spki, digest_algorithm, &digest, &value).unwrap_or(false)
}

/// Whether `issuer` issued `certificate`: names match and the signature verifies.
pub fn is_issued_by(certificate: &Certificate, issuer: &Certificate) -> bool {
    if certificate.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return false;
    }
    let Ok(tbs) = certificate.tbs_certificate().to_der() else {
        return false;
    };
    let Some(sig) = certificate.signature().as_bytes() else {
        return false;
    };
    signature_is_valid(issuer, &certificate.signature_algorithm().oid, &tbs, sig)
}

/// Whether `issuer` signed `crl`.
pub fn crl_is_signed_by(crl: &CertificateList, issuer: &Certificate) -> bool {
    if crl.tbs_cert_list.issuer != *issuer.tbs_certificate().subject() {
        return false;
    }
    let Ok(tbs) = crl.tbs_cert_list.to_der() else {
        return false;
    };
    let Some(sig) = crl.signature.as_bytes() else {
        return false;
    };
    signature_is_valid(issuer, &crl.signature_algorithm.oid, &tbs, sig)
}

/// Whether `certificate` is valid (notBefore ≤ `at` ≤ notAfter).
pub fn is_valid_at(certificate: &Certificate, at: SystemTime) -> bool {
    let v = certificate.tbs_certificate().validity();
    v.not_before.to_system_time() <= at && at <= v.not_after.to_system_time()
}

/// Whether the key usage allows signing documents (digitalSignature or nonRepudiation); a
/// certificate without the extension allows it.
pub fn allows_document_signing(certificate: &Certificate) -> bool {
    match certificate.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((_, ku))) => ku.digital_signature() || ku.non_repudiation(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// The time at which `certificate` was revoked according to `crl`, if it is listed.
pub fn revocation_time(crl: &CertificateList, certificate: &Certificate) -> Option<SystemTime> {
    crl.tbs_cert_list
        .revoked_certificates
        .as_ref()?
        .iter()
        .find(|r| r.serial_number == *certificate.tbs_certificate().serial_number())
        .map(|r| r.revocation_date.to_system_time())
}

/// The commonName of the certificate's subject, if any.
pub fn common_name(certificate: &Certificate) -> Option<String> {
    const CN: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
    certificate
        .tbs_certificate()
        .subject()
        .iter()
        .find(|atv| atv.oid == CN)
        .and_then(|atv| {
            atv.value
                .decode_as::<der::asn1::Utf8StringRef<'_>>()
                .map(|s| s.to_string())
                .or_else(|_| {
                    atv.value
                        .decode_as::<der::asn1::PrintableStringRef<'_>>()
                        .map(|s| s.to_string())
                })
                .ok()
        })
}
