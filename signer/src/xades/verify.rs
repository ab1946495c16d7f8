//! Verification of XML signatures (XML-DSig with XAdES 1.1.1, 1.2.2 or 1.3.2 qualifying
//! properties), made by seing or by other products: any prefixes, whitespace, inclusive or
//! exclusive canonicalization, enveloped or detached references, several signatures per file.
//!
//! Each signature gets a [`SignatureReport`] in the ETSI EN 319 102-1 vocabulary: references'
//! digests (HASH_FAILURE), the SignedInfo's signature value (SIG_CRYPTO_FAILURE), the signing
//! certificate property, the B-T timestamp, then the signer's chain.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bergshamra_xml::uppsala::{Document, NodeId};
use der::{Decode, Encode};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_cert::Certificate;

use super::XadesVersion;
use super::build::decimal;
use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, SignatureValue, verify_digest_signature};
use crate::verify::{
    Indication, SignatureReport, SubIndication, VerificationReport, VerifyOptions, validate_signer,
};
use crate::xml::c14n::{self, Subtree};
use crate::xml::{C14nMode, DS_NS, encoding, parse};

/// What the verifier learnt about one signature besides its report (used by the PES profile).
#[derive(Debug, Clone)]
pub struct SignatureFacts {
    /// The `ds:Signature` element.
    pub node: NodeId,
    /// URI of each Reference, in order (`None` when absent).
    pub reference_uris: Vec<Option<String>>,
    /// Transform algorithms of the first Reference.
    pub first_transforms: Vec<String>,
    /// The namespace version of the qualifying properties, if any.
    pub xades: Option<XadesVersion>,
}

fn digest_algorithm_of(uri: &str) -> Option<DigestAlgorithm> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#sha256" => Some(DigestAlgorithm::Sha256),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Some(DigestAlgorithm::Sha384),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Some(DigestAlgorithm::Sha512),
        _ => None,
    }
}

fn signature_method_of(uri: &str) -> Option<(KeyAlgorithm, DigestAlgorithm)> {
    let more = "http://www.w3.org/2001/04/xmldsig-more#";
    let rest = uri.strip_prefix(more)?;
    Some(match rest {
        "rsa-sha256" => (KeyAlgorithm::Rsa, DigestAlgorithm::Sha256),
        "rsa-sha384" => (KeyAlgorithm::Rsa, DigestAlgorithm::Sha384),
        "rsa-sha512" => (KeyAlgorithm::Rsa, DigestAlgorithm::Sha512),
        "ecdsa-sha256" => (KeyAlgorithm::EcdsaP256, DigestAlgorithm::Sha256),
        "ecdsa-sha384" => (KeyAlgorithm::EcdsaP256, DigestAlgorithm::Sha384),
        "ecdsa-sha512" => (KeyAlgorithm::EcdsaP256, DigestAlgorithm::Sha512),
        _ => return None,
    })
}

fn ds_child(doc: &Document<'_>, node: NodeId, local: &str) -> Option<NodeId> {
    parse::child(doc, node, Some(DS_NS), local)
}

fn ds_children<'d>(
    doc: &'d Document<'_>,
    node: NodeId,
    local: &'d str,
) -> impl Iterator<Item = NodeId> + 'd {
    parse::child_elements(doc, node).filter(move |c| parse::is_element(doc, *c, Some(DS_NS), local))
}

fn b64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

/// A canonicalization method element: its mode and InclusiveNamespaces prefixes.
fn c14n_of(doc: &Document<'_>, method: NodeId) -> Option<(C14nMode, Vec<String>)> {
    let mode = C14nMode::from_uri(doc.get_attribute(method, "Algorithm")?)?;
    let prefixes = parse::child_elements(doc, method)
        .find(|c| parse::local_name(doc, *c) == Some("InclusiveNamespaces"))
        .and_then(|c| doc.get_attribute(c, "PrefixList"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    Some((mode, prefixes))
}

/// Every element carrying `Id`, `ID` or `id` equal to `id`.
fn elements_with_id(doc: &Document<'_>, id: &str) -> Vec<NodeId> {
    doc.descendants(doc.root())
        .into_iter()
        .filter(|n| {
            doc.element(*n).is_some_and(|e| {
                e.attributes.iter().any(|a| {
                    a.name.namespace_uri.is_none()
                        && matches!(a.name.local_name.as_ref(), "Id" | "ID" | "id")
                        && a.value == id
                })
            })
        })
        .collect()
}

/// Outcome of one reference.
enum RefOutcome {
    Ok,
    Mismatch(String),
    NotFound(String),
    Unsupported(String),
}

fn check_reference(
    doc: &Document<'_>,
    signature: NodeId,
    reference: NodeId,
    options: &VerifyOptions,
) -> RefOutcome {
    let uri = doc.get_attribute(reference, "URI");
    let shown = uri.unwrap_or("(sans URI)").to_string();
    let Some(method) =
        ds_child(doc, reference, "DigestMethod").and_then(|m| doc.get_attribute(m, "Algorithm"))
    else {
        return RefOutcome::Unsupported(format!("référence {shown} : DigestMethod absent"));
    };
    let Some(algorithm) = digest_algorithm_of(method) else {
        return RefOutcome::Unsupported(format!(
            "référence {shown} : algorithme d'empreinte {method} refusé (SHA-256 au moins)"
        ));
    };
    let Some(expected) =
        ds_child(doc, reference, "DigestValue").and_then(|v| b64(&parse::text(doc, v)))
    else {
        return RefOutcome::Unsupported(format!("référence {shown} : DigestValue illisible"));
    };
    let mut enveloped = false;
    let mut c14n: Option<(C14nMode, Vec<String>)> = None;
    if let Some(transforms) = ds_child(doc, reference, "Transforms") {
        for t in ds_children(doc, transforms, "Transform") {
            let alg = doc.get_attribute(t, "Algorithm").unwrap_or_default();
            if alg == super::uri::ENVELOPED {
                enveloped = true;
            } else if let Some(m) = c14n_of(doc, t) {
                c14n = Some(m);
            } else {
                return RefOutcome::Unsupported(format!(
                    "référence {shown} : transformation {alg} non prise en charge"
                ));
            }
        }
    }
    let same_document = uri.is_some_and(|u| u.is_empty() || u.starts_with('#'));
    let computed = if same_document {
        let uri = uri.unwrap_or_default();
        let (apex, with_comments) = if uri.is_empty() {
            (doc.root(), false)
        } else if uri == "#xpointer(/)" {
            (doc.root(), true)
        } else {
            let id = uri.trim_start_matches('#');
            let id = id
                .strip_prefix("xpointer(id('")
                .and_then(|s| s.strip_suffix("'))"))
                .unwrap_or(id);
            let found = elements_with_id(doc, id);
            match found.as_slice() {
                [one] => (*one, uri.starts_with("#xpointer")),
                [] => {
                    return RefOutcome::NotFound(format!(
                        "référence {shown} : élément introuvable"
                    ));
                }
                _ => {
                    return RefOutcome::Unsupported(format!(
                        "référence {shown} : Id présent plusieurs fois (signature wrapping ?)"
                    ));
                }
            }
        };
        let excluded = if enveloped {
            vec![signature]
        } else {
            Vec::new()
        };
        let (mode, prefixes) = c14n.unwrap_or((C14nMode::Inclusive, Vec::new()));
        match c14n::digest(
            doc,
            Subtree {
                apex,
                excluded: &excluded,
                with_comments,
            },
            mode,
            &prefixes,
            algorithm,
        ) {
            Ok(d) => d,
            Err(e) => return RefOutcome::Unsupported(format!("référence {shown} : {e}")),
        }
    } else {
        let Some(path) = &options.detached_data else {
            return RefOutcome::NotFound(format!(
                "référence détachée {shown} : données signées non fournies"
            ));
        };
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => return RefOutcome::NotFound(format!("{} : {e}", path.display())),
        };
        match c14n {
            None if !enveloped => algorithm.digest(&data),
            _ => {
                let canonical = encoding::decode(&data)
                    .map_err(|e| e.to_string())
                    .and_then(|d| {
                        let ext = parse::parse(&d.text).map_err(|e| e.to_string())?;
                        let (mode, prefixes) =
                            c14n.clone().unwrap_or((C14nMode::Inclusive, Vec::new()));
                        c14n::digest(
                            &ext,
                            Subtree {
                                apex: ext.root(),
                                excluded: &[],
                                with_comments: false,
                            },
                            mode,
                            &prefixes,
                            algorithm,
                        )
                        .map_err(|e| e.to_string())
                    });
                match canonical {
                    Ok(d) => d,
                    Err(e) => return RefOutcome::Unsupported(format!("référence {shown} : {e}")),
                }
            }
        }
    };
    if computed == expected {
        RefOutcome::Ok
    } else {
        RefOutcome::Mismatch(format!(
            "référence {shown} : l'empreinte ne correspond pas (document modifié)"
        ))
    }
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let t = text.trim();
    OffsetDateTime::parse(t, &Rfc3339)
        .ok()
        .or_else(|| OffsetDateTime::parse(&format!("{t}Z"), &Rfc3339).ok())
}

/// The qualifying properties of a signature: (element, version).
fn qualifying_properties(doc: &Document<'_>, signature: NodeId) -> Option<(NodeId, XadesVersion)> {
    ds_children(doc, signature, "Object")
        .flat_map(|o| parse::child_elements(doc, o).collect::<Vec<_>>())
        .find_map(|q| {
            let e = doc.element(q)?;
            let version = XadesVersion::from_namespace(e.name.namespace_uri.as_deref()?)?;
            (e.name.local_name == "QualifyingProperties").then_some((q, version))
        })
}

fn find_desc(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> Option<NodeId> {
    doc.descendants(node)
        .into_iter()
        .find(|d| parse::is_element(doc, *d, Some(ns), local))
}

/// Verifies one `ds:Signature` of a parsed document.
pub fn verify_signature(
    doc: &Document<'_>,
    signature: NodeId,
    index: usize,
    options: &VerifyOptions,
) -> (SignatureReport, SignatureFacts) {
    let id = doc
        .get_attribute(signature, "Id")
        .map(str::to_string)
        .unwrap_or_else(|| format!("signature #{}", index + 1));
    let mut report = SignatureReport::new(id, "XAdES");
    let mut facts = SignatureFacts {
        node: signature,
        reference_uris: Vec::new(),
        first_transforms: Vec::new(),
        xades: None,
    };
    let format_failure = |report: &mut SignatureReport, m: String| {
        report.fail(Indication::TotalFailed, SubIndication::FormatFailure, m)
    };
    let Some(signed_info) = ds_child(doc, signature, "SignedInfo") else {
        format_failure(&mut report, "SignedInfo absent".into());
        return (report, facts);
    };
    let references: Vec<NodeId> = ds_children(doc, signed_info, "Reference").collect();
    facts.reference_uris = references
        .iter()
        .map(|r| doc.get_attribute(*r, "URI").map(str::to_string))
        .collect();
    if let Some(t) = references
        .first()
        .and_then(|r| ds_child(doc, *r, "Transforms"))
    {
        facts.first_transforms = ds_children(doc, t, "Transform")
            .filter_map(|t| doc.get_attribute(t, "Algorithm").map(str::to_string))
            .collect();
    }
    let qualifying = qualifying_properties(doc, signature);
    facts.xades = qualifying.map(|(_, v)| v);
    // Certificates: KeyInfo's X509Certificate elements.
    let embedded: Vec<Certificate> = ds_child(doc, signature, "KeyInfo")
        .map(|k| {
            doc.descendants(k)
                .into_iter()
                .filter(|n| parse::is_element(doc, *n, Some(DS_NS), "X509Certificate"))
                .filter_map(|n| b64(&parse::text(doc, n)))
                .filter_map(|der| Certificate::from_der(&der).ok())
                .collect()
        })
        .unwrap_or_default();

    // References.
    for r in &references {
        match check_reference(doc, signature, *r, options) {
            RefOutcome::Ok => {}
            RefOutcome::Mismatch(m) => {
                report.fail(Indication::TotalFailed, SubIndication::HashFailure, m)
            }
            RefOutcome::NotFound(m) => report.fail(
                Indication::Indeterminate,
                SubIndication::SignedDataNotFound,
                m,
            ),
            RefOutcome::Unsupported(m) => format_failure(&mut report, m),
        }
    }

    // Qualifying properties: signing certificate and signing time.
    let mut signer_cert: Option<Certificate> = None;
    if let Some((qp, version)) = qualifying {
        let ns = version.namespace();
        let sig_id = doc.get_attribute(signature, "Id").unwrap_or_default();
        if doc.get_attribute(qp, "Target") != Some(&format!("#{sig_id}")) {
            format_failure(
                &mut report,
                "QualifyingProperties/@Target ne désigne pas cette signature".into(),
            );
        }
        match find_desc(doc, qp, ns, "SignedProperties") {
            Some(sp) => {
                let sp_id = doc.get_attribute(sp, "Id").unwrap_or_default();
                if sp_id.is_empty()
                    || !facts
                        .reference_uris
                        .iter()
                        .any(|u| u.as_deref() == Some(&format!("#{sp_id}")))
                {
                    format_failure(
                        &mut report,
                        "les SignedProperties ne sont couvertes par aucune référence".into(),
                    );
                }
                if let Some(t) = find_desc(doc, sp, ns, "SigningTime") {
                    report.claimed_signing_time = parse_time(&parse::text(doc, t));
                }
                let cert_node = find_desc(doc, sp, ns, "SigningCertificateV2")
                    .or_else(|| find_desc(doc, sp, ns, "SigningCertificate"));
                if let Some(sc) = cert_node {
                    signer_cert = match_signing_certificate(doc, sc, ns, &embedded, &mut report);
                } else {
                    report
                        .messages
                        .push("propriété SigningCertificate absente".into());
                }
            }
            None => format_failure(&mut report, "SignedProperties absentes".into()),
        }
    } else {
        report.format = "XML-DSig".into();
        report.messages.push("aucune propriété XAdES".into());
    }
    let signer = signer_cert.or_else(|| embedded.first().cloned());
    let Some(signer) = signer else {
        report.fail(
            Indication::Indeterminate,
            SubIndication::NoSignerCertificateFound,
            "aucun certificat signataire dans KeyInfo",
        );
        return (report, facts);
    };

    // The signature value over the canonical SignedInfo.
    let method = ds_child(doc, signed_info, "SignatureMethod")
        .and_then(|m| doc.get_attribute(m, "Algorithm"))
        .unwrap_or_default();
    let c14n_method =
        ds_child(doc, signed_info, "CanonicalizationMethod").and_then(|m| c14n_of(doc, m));
    let value = ds_child(doc, signature, "SignatureValue").and_then(|v| b64(&parse::text(doc, v)));
    match (signature_method_of(method), c14n_method, value) {
        (None, _, _) => report.fail(
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailure,
            format!("algorithme de signature {method} refusé"),
        ),
        (_, None, _) => format_failure(
            &mut report,
            "CanonicalizationMethod non pris en charge".into(),
        ),
        (_, _, None) => format_failure(&mut report, "SignatureValue illisible".into()),
        (Some((_, digest_alg)), Some((mode, prefixes)), Some(value)) => {
            let digest = c14n::digest(
                doc,
                Subtree {
                    apex: signed_info,
                    excluded: &[],
                    with_comments: true,
                },
                mode,
                &prefixes,
                digest_alg,
            );
            match digest
                .map_err(|e| Error::Format(e.to_string()))
                .and_then(|d| {
                    verify_digest_signature(&signer, digest_alg, &d, &SignatureValue(value))
                }) {
                Ok(true) => {}
                Ok(false) => report.fail(
                    Indication::TotalFailed,
                    SubIndication::SigCryptoFailure,
                    "la valeur de signature ne correspond pas à la clé du signataire",
                ),
                Err(e) => format_failure(&mut report, e.to_string()),
            }
        }
    }

    // B-T: the signature timestamp over the canonical SignatureValue.
    let mut proven = None;
    report.level = qualifying.map(|_| "B-B".to_string());
    if let Some((qp, version)) = qualifying
        && let Some(ts) = find_desc(doc, qp, version.namespace(), "SignatureTimeStamp")
    {
        report.level = Some("B-T".into());
        proven = check_timestamp(doc, signature, ts, version, &embedded, options, &mut report);
    }
    let at = proven
        .or(report.claimed_signing_time)
        .or(options.validation_time)
        .unwrap_or_else(OffsetDateTime::now_utc);
    validate_signer(
        &signer,
        &embedded,
        at,
        proven.is_some(),
        options,
        &mut report,
    );
    (report, facts)
}

/// Finds the certificate the SigningCertificate(V2) property designates, checking its digest
/// and IssuerSerial against the embedded certificates.
fn match_signing_certificate(
    doc: &Document<'_>,
    sc: NodeId,
    ns: &str,
    embedded: &[Certificate],
    report: &mut SignatureReport,
) -> Option<Certificate> {
    let cert =
        parse::child_elements(doc, sc).find(|c| parse::local_name(doc, *c) == Some("Cert"))?;
    let digest_node = find_desc(doc, cert, ns, "CertDigest")?;
    let method = parse::child_elements(doc, digest_node)
        .find(|c| parse::local_name(doc, *c) == Some("DigestMethod"))
        .and_then(|m| doc.get_attribute(m, "Algorithm"))
        .unwrap_or_default();
    let value = parse::child_elements(doc, digest_node)
        .find(|c| parse::local_name(doc, *c) == Some("DigestValue"))
        .and_then(|v| b64(&parse::text(doc, v)));
    let Some(value) = value else {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "CertDigest sans DigestValue lisible",
        );
        return None;
    };
    // Older products hash the certificate with SHA-1: still a binding to the certificate.
    let sha1 = method == "http://www.w3.org/2000/09/xmldsig#sha1";
    let algorithm = digest_algorithm_of(method);
    if algorithm.is_none() && !sha1 {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            format!("CertDigest : algorithme {method} inconnu"),
        );
        return None;
    }
    let matches = |c: &Certificate| {
        c.to_der().is_ok_and(|der| match algorithm {
            Some(a) => a.digest(&der) == value,
            None => {
                use sha1::Digest as _;
                sha1::Sha1::digest(&der).as_slice() == value.as_slice()
            }
        })
    };
    let Some(found) = embedded.iter().find(|c| matches(c)).cloned() else {
        report.fail(
            Indication::Indeterminate,
            SubIndication::NoSignerCertificateFound,
            "SigningCertificate ne désigne aucun certificat de KeyInfo",
        );
        return None;
    };
    if let Some(is) = find_desc(doc, cert, ns, "IssuerSerial")
        && let Some(serial) = find_desc(doc, is, DS_NS, "X509SerialNumber")
    {
        let expected = decimal(found.tbs_certificate().serial_number().as_bytes());
        if parse::text(doc, serial).trim() != expected {
            report.fail(
                Indication::Indeterminate,
                SubIndication::NoSignerCertificateFound,
                "IssuerSerial ne correspond pas au certificat signataire",
            );
        }
    }
    Some(found)
}

fn check_timestamp(
    doc: &Document<'_>,
    signature: NodeId,
    ts: NodeId,
    version: XadesVersion,
    embedded: &[Certificate],
    options: &VerifyOptions,
    report: &mut SignatureReport,
) -> Option<OffsetDateTime> {
    let token = find_desc(doc, ts, version.namespace(), "EncapsulatedTimeStamp")
        .and_then(|e| b64(&parse::text(doc, e)));
    let Some(token) = token else {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "SignatureTimeStamp sans EncapsulatedTimeStamp lisible",
        );
        return None;
    };
    let (mode, prefixes) = ds_child(doc, ts, "CanonicalizationMethod")
        .and_then(|m| c14n_of(doc, m))
        .unwrap_or((C14nMode::Inclusive, Vec::new()));
    let value = ds_child(doc, signature, "SignatureValue")?;
    let canonical = c14n::canonicalize(
        doc,
        Subtree {
            apex: value,
            excluded: &[],
            with_comments: true,
        },
        mode,
        &prefixes,
    )
    .ok()?;
    let (gen_time, tsa) = crate::cms::check_signature_timestamp(&token, &canonical, report)?;
    report.timestamp_time = Some(gen_time);
    match tsa {
        Some(tsa) => {
            let mut tsa_report = SignatureReport::new("timestamp", "RFC 3161");
            validate_signer(&tsa, embedded, gen_time, false, options, &mut tsa_report);
            if tsa_report.indication != Indication::TotalPassed {
                report.fail(
                    Indication::Indeterminate,
                    SubIndication::NoCertificateChainFound,
                    format!(
                        "l'autorité d'horodatage n'est pas de confiance : {}",
                        tsa_report.messages.join("; ")
                    ),
                );
            }
        }
        None => report.fail(
            Indication::Indeterminate,
            SubIndication::NoCertificateChainFound,
            "le jeton d'horodatage ne contient pas le certificat de l'autorité",
        ),
    }
    Some(gen_time)
}

/// All `ds:Signature` elements of a document that are not inside another signature.
pub fn find_signatures(doc: &Document<'_>) -> Vec<NodeId> {
    doc.descendants(doc.root())
        .into_iter()
        .filter(|n| parse::is_element(doc, *n, Some(DS_NS), "Signature"))
        .filter(|n| {
            !doc.ancestors(*n)
                .into_iter()
                .any(|a| parse::is_element(doc, a, Some(DS_NS), "Signature"))
        })
        .collect()
}

/// Verifies every signature of an XML file (XAdES, or plain XML-DSig).
pub fn verify(bytes: &[u8], options: &VerifyOptions) -> Result<VerificationReport> {
    let decoded = encoding::decode(bytes).map_err(|e| Error::Document(e.to_string()))?;
    let doc = parse::parse(&decoded.text).map_err(|e| Error::Document(e.to_string()))?;
    let reports = find_signatures(&doc)
        .into_iter()
        .enumerate()
        .map(|(i, s)| verify_signature(&doc, s, i, options).0)
        .collect();
    Ok(VerificationReport::new(reports))
}
