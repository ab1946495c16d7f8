//! Building a `ds:Signature` with XAdES qualifying properties: the SignedProperties and the
//! SignedInfo are fixed at prepare time (their canonical forms are what the key signs), the
//! signature value and the optional timestamp are added at finalize time.
//!
//! Everything is written without whitespace between elements and with non-ASCII characters as
//! character references, so the same text can be inserted into a file of any encoding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::Encode;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use x509_cert::Certificate;

use super::{SignedPropertiesSpec, XadesVersion, uri};
use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, SignatureValue};
use crate::model::CertificateChain;
use crate::xml::c14n::{self, Subtree};
use crate::xml::insert::escape;
use crate::xml::{C14nMode, DS_NS, parse};

/// One data reference of the SignedInfo (the SignedProperties reference is added by the builder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceSpec {
    /// The Reference's `Id` (needed by a DataObjectFormat).
    pub id: Option<String>,
    /// The `URI` attribute: `#Id`, `""` or a file name for a detached reference.
    pub uri: String,
    /// Transform algorithm URIs, in order.
    pub transforms: Vec<String>,
    /// SHA-256 of the transformed data.
    #[serde(with = "crate::model::base64_bytes")]
    pub digest: Vec<u8>,
    /// The MIME type (and description) announced in a DataObjectFormat (XAdES 1.3.2 only).
    pub data_object_format: Option<super::DataObjectFormat>,
}

/// A signature waiting for its value: what `prepare` leaves in the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureTemplate {
    /// The `Id` of the `ds:Signature`.
    pub signature_id: String,
    /// The namespace of the qualifying properties.
    pub version: XadesVersion,
    /// The signer's key algorithm (RSA or ECDSA), which fixes the SignatureMethod.
    pub key_algorithm: KeyAlgorithm,
    signed_info: String,
    key_info: String,
    signed_properties: String,
    /// SHA-256 of the canonical SignedInfo: what the key signs.
    #[serde(with = "crate::model::base64_bytes")]
    pub digest: Vec<u8>,
}

fn xades_prefix(version: XadesVersion) -> &'static str {
    match version {
        XadesVersion::V111 => "xad",
        XadesVersion::V122 | XadesVersion::V132 => "xades",
    }
}

/// The decimal form of a big-endian unsigned integer (X509SerialNumber).
pub fn decimal(bytes: &[u8]) -> String {
    let mut digits: Vec<u8> = vec![0];
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

fn digest_method(prefix: &str) -> String {
    format!("<{prefix}:DigestMethod Algorithm=\"{}\"/>", uri::SHA256)
}

fn signed_properties(
    version: XadesVersion,
    id: &str,
    signer: &Certificate,
    spec: &SignedPropertiesSpec,
    references: &[ReferenceSpec],
) -> Result<String> {
    let x = xades_prefix(version);
    // XAdES 1.1.1 puts DigestMethod/DigestValue of CertDigest and SigPolicyHash in its own
    // namespace; later versions use ds:.
    let dp = if version == XadesVersion::V111 {
        x
    } else {
        "ds"
    };
    let mut s = format!("<{x}:SignedProperties Id=\"{id}\"><{x}:SignedSignatureProperties>");
    let time = spec
        .signing_time
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| Error::State(e.to_string()))?
        .format(&Rfc3339)
        .map_err(|e| Error::State(e.to_string()))?;
    s.push_str(&format!("<{x}:SigningTime>{time}</{x}:SigningTime>"));
    let cert_der = signer.to_der()?;
    let cert_digest = STANDARD.encode(DigestAlgorithm::Sha256.digest(&cert_der));
    let tbs = signer.tbs_certificate();
    let v2 = version == XadesVersion::V132;
    let sc = if v2 {
        "SigningCertificateV2"
    } else {
        "SigningCertificate"
    };
    s.push_str(&format!(
        "<{x}:{sc}><{x}:Cert><{x}:CertDigest>{}<{dp}:DigestValue>{cert_digest}</{dp}:DigestValue></{x}:CertDigest>",
        digest_method(dp)
    ));
    if !v2 {
        s.push_str(&format!(
            "<{x}:IssuerSerial><ds:X509IssuerName>{}</ds:X509IssuerName><ds:X509SerialNumber>{}</ds:X509SerialNumber></{x}:IssuerSerial>",
            escape(&tbs.issuer().to_string()),
            decimal(tbs.serial_number().as_bytes())
        ));
    }
    s.push_str(&format!("</{x}:Cert></{x}:{sc}>"));
    if let Some(policy) = &spec.policy {
        if policy.hash_algorithm != DigestAlgorithm::Sha256 {
            return Err(Error::Unsupported("policy hash other than SHA-256".into()));
        }
        s.push_str(&format!(
            "<{x}:SignaturePolicyIdentifier><{x}:SignaturePolicyId><{x}:SigPolicyId><{x}:Identifier>{}</{x}:Identifier>",
            escape(&policy.identifier)
        ));
        if let Some(d) = &policy.description {
            s.push_str(&format!("<{x}:Description>{}</{x}:Description>", escape(d)));
        }
        s.push_str(&format!(
            "</{x}:SigPolicyId><{x}:SigPolicyHash>{}<{dp}:DigestValue>{}</{dp}:DigestValue></{x}:SigPolicyHash>",
            digest_method(dp),
            STANDARD.encode(&policy.hash)
        ));
        if let Some(u) = &policy.uri {
            s.push_str(&format!(
                "<{x}:SigPolicyQualifiers><{x}:SigPolicyQualifier><{x}:SPURI>{}</{x}:SPURI></{x}:SigPolicyQualifier></{x}:SigPolicyQualifiers>",
                escape(u)
            ));
        }
        s.push_str(&format!(
            "</{x}:SignaturePolicyId></{x}:SignaturePolicyIdentifier>"
        ));
    } else if version == XadesVersion::V111 {
        return Err(Error::Unsupported(
            "XAdES 1.1.1 (PES) requires a signature policy".into(),
        ));
    }
    if let Some(place) = spec.place.as_ref().filter(|p| !p.is_empty()) {
        let sp = if v2 {
            "SignatureProductionPlaceV2"
        } else {
            "SignatureProductionPlace"
        };
        s.push_str(&format!("<{x}:{sp}>"));
        for (name, value) in [
            ("City", &place.city),
            ("PostalCode", &place.postal_code),
            ("CountryName", &place.country),
        ] {
            if let Some(v) = value {
                s.push_str(&format!("<{x}:{name}>{}</{x}:{name}>", escape(v)));
            }
        }
        s.push_str(&format!("</{x}:{sp}>"));
    }
    if let Some(role) = &spec.role {
        let sr = if v2 { "SignerRoleV2" } else { "SignerRole" };
        s.push_str(&format!(
            "<{x}:{sr}><{x}:ClaimedRoles><{x}:ClaimedRole>{}</{x}:ClaimedRole></{x}:ClaimedRoles></{x}:{sr}>",
            escape(role)
        ));
    }
    s.push_str(&format!("</{x}:SignedSignatureProperties>"));
    let formats: Vec<_> = references
        .iter()
        .filter_map(|r| Some((r.id.as_ref()?, r.data_object_format.as_ref()?)))
        .collect();
    if !formats.is_empty() && version != XadesVersion::V111 {
        s.push_str(&format!("<{x}:SignedDataObjectProperties>"));
        for (ref_id, f) in formats {
            s.push_str(&format!(
                "<{x}:DataObjectFormat ObjectReference=\"#{ref_id}\">"
            ));
            if let Some(d) = &f.description {
                s.push_str(&format!("<{x}:Description>{}</{x}:Description>", escape(d)));
            }
            s.push_str(&format!(
                "<{x}:MimeType>{}</{x}:MimeType></{x}:DataObjectFormat>",
                escape(&f.mime_type)
            ));
        }
        s.push_str(&format!("</{x}:SignedDataObjectProperties>"));
    }
    s.push_str(&format!("</{x}:SignedProperties>"));
    Ok(s)
}

fn reference_xml(r: &ReferenceSpec, ref_type: Option<&str>) -> String {
    let mut s = String::from("<ds:Reference");
    if let Some(id) = &r.id {
        s.push_str(&format!(" Id=\"{}\"", escape(id)));
    }
    if let Some(t) = ref_type {
        s.push_str(&format!(" Type=\"{t}\""));
    }
    s.push_str(&format!(" URI=\"{}\">", escape(&r.uri)));
    if !r.transforms.is_empty() {
        s.push_str("<ds:Transforms>");
        for t in &r.transforms {
            s.push_str(&format!("<ds:Transform Algorithm=\"{}\"/>", escape(t)));
        }
        s.push_str("</ds:Transforms>");
    }
    s.push_str(&format!(
        "{}<ds:DigestValue>{}</ds:DigestValue></ds:Reference>",
        digest_method("ds"),
        STANDARD.encode(&r.digest)
    ));
    s
}

/// Canonicalizes (exclusive C14N) the element `local` of namespace `ns` inside a standalone
/// signature text. Exclusive C14N does not depend on the ancestors' namespaces, so the result is
/// what any verifier computes once the signature sits in its document.
fn exclusive_c14n_of(signature_xml: &str, ns: &str, local: &str) -> Result<Vec<u8>> {
    let doc = parse::parse(signature_xml).map_err(|e| Error::State(e.to_string()))?;
    let root = doc
        .document_element()
        .ok_or_else(|| Error::State("empty signature".into()))?;
    let node = doc
        .descendants(root)
        .into_iter()
        .find(|n| parse::is_element(&doc, *n, Some(ns), local))
        .ok_or_else(|| Error::State(format!("{local} missing from the signature")))?;
    c14n::canonicalize(
        &doc,
        Subtree {
            apex: node,
            excluded: &[],
            with_comments: false,
        },
        C14nMode::Exclusive,
        &[],
    )
    .map_err(|e| Error::State(e.to_string()))
}

impl SignatureTemplate {
    /// Builds the SignedProperties and SignedInfo over `references` for `chain`'s signer.
    pub fn build(
        signature_id: &str,
        version: XadesVersion,
        references: &[ReferenceSpec],
        chain: &CertificateChain,
        spec: &SignedPropertiesSpec,
    ) -> Result<Self> {
        let key_algorithm = chain.key_algorithm()?;
        let props_id = format!("{signature_id}-SignedProperties");
        let signed_properties =
            signed_properties(version, &props_id, &chain.signer, spec, references)?;
        let mut key_info = String::from("<ds:KeyInfo><ds:X509Data>");
        for cert in chain.all() {
            key_info.push_str(&format!(
                "<ds:X509Certificate>{}</ds:X509Certificate>",
                STANDARD.encode(cert.to_der()?)
            ));
        }
        key_info.push_str("</ds:X509Data></ds:KeyInfo>");
        let mut template = Self {
            signature_id: signature_id.to_string(),
            version,
            key_algorithm,
            signed_info: String::new(),
            key_info,
            signed_properties,
            digest: Vec::new(),
        };
        let props_c14n = exclusive_c14n_of(
            &template.assemble_xml("", None),
            version.namespace(),
            "SignedProperties",
        )?;
        let props_ref = ReferenceSpec {
            id: None,
            uri: format!("#{props_id}"),
            transforms: vec![uri::EXC_C14N.to_string()],
            digest: DigestAlgorithm::Sha256.digest(&props_c14n),
            data_object_format: None,
        };
        let method = match key_algorithm {
            KeyAlgorithm::Rsa => uri::RSA_SHA256,
            KeyAlgorithm::EcdsaP256 => uri::ECDSA_SHA256,
        };
        let mut si = format!(
            "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{}\"/><ds:SignatureMethod Algorithm=\"{method}\"/>",
            uri::EXC_C14N
        );
        for r in references {
            si.push_str(&reference_xml(r, None));
        }
        si.push_str(&reference_xml(
            &props_ref,
            Some(uri::SIGNED_PROPERTIES_TYPE),
        ));
        si.push_str("</ds:SignedInfo>");
        template.signed_info = si;
        let si_c14n = exclusive_c14n_of(&template.assemble_xml("", None), DS_NS, "SignedInfo")?;
        template.digest = DigestAlgorithm::Sha256.digest(&si_c14n);
        Ok(template)
    }

    /// The `ds:Signature` text with a signature value (base64) and an optional timestamp token.
    fn assemble_xml(&self, value_b64: &str, timestamp: Option<&[u8]>) -> String {
        let x = xades_prefix(self.version);
        let sid = &self.signature_id;
        let mut s = format!(
            "<ds:Signature xmlns:ds=\"{DS_NS}\" Id=\"{sid}\">{}<ds:SignatureValue Id=\"{sid}-SignatureValue\">{value_b64}</ds:SignatureValue>{}<ds:Object><{x}:QualifyingProperties xmlns:{x}=\"{}\" Target=\"#{sid}\">{}",
            self.signed_info,
            self.key_info,
            self.version.namespace(),
            self.signed_properties
        );
        if let Some(token) = timestamp {
            let c14n = if self.version == XadesVersion::V111 {
                String::new()
            } else {
                format!(
                    "<ds:CanonicalizationMethod Algorithm=\"{}\"/>",
                    uri::EXC_C14N
                )
            };
            s.push_str(&format!(
                "<{x}:UnsignedProperties><{x}:UnsignedSignatureProperties><{x}:SignatureTimeStamp Id=\"{sid}-SignatureTimeStamp\">{c14n}<{x}:EncapsulatedTimeStamp>{}</{x}:EncapsulatedTimeStamp></{x}:SignatureTimeStamp></{x}:UnsignedSignatureProperties></{x}:UnsignedProperties>",
                STANDARD.encode(token)
            ));
        }
        s.push_str(&format!(
            "</{x}:QualifyingProperties></ds:Object></ds:Signature>"
        ));
        s
    }

    /// The digest the key signs, with its algorithm.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        DigestAlgorithm::Sha256
    }

    /// The bytes a B-T signature timestamp covers: the exclusive canonical form of the
    /// `ds:SignatureValue` element (XAdES 1.2.2 / 1.3.2, which name that canonicalization).
    pub fn timestamp_input(&self, value: &SignatureValue) -> Result<Vec<u8>> {
        if self.version == XadesVersion::V111 {
            return Err(Error::Unsupported(
                "B-T timestamps are only produced with XAdES 1.3.2".into(),
            ));
        }
        exclusive_c14n_of(
            &self.assemble_xml(&STANDARD.encode(value.as_bytes()), None),
            DS_NS,
            "SignatureValue",
        )
    }

    /// The complete `ds:Signature` (ASCII text) with its value and optional timestamp token.
    pub fn assemble(&self, value: &SignatureValue, timestamp: Option<&[u8]>) -> String {
        self.assemble_xml(&STANDARD.encode(value.as_bytes()), timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_are_written_in_decimal() {
        assert_eq!(decimal(&[0]), "0");
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        assert_eq!(
            decimal(&[0x24, 0xEB, 0x05, 0x6A, 0xB7, 0x97, 0x07, 0xFC]),
            u64::from_be_bytes([0x24, 0xEB, 0x05, 0x6A, 0xB7, 0x97, 0x07, 0xFC]).to_string()
        );
    }
}
