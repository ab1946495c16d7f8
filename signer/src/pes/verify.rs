//! Verification of a signed PES_Aller: every signature as XAdES (any product, XAdES 1.1.1 to
//! 1.3.2), plus the Hélios placement rule — a signature is the last child of the element whose
//! `Id` its first reference names, with the enveloped-signature transform.

use bergshamra_xml::uppsala::Document;

use super::summary::pes_root;
use crate::error::{Error, Result};
use crate::verify::{
    Indication, SignatureReport, SubIndication, VerificationReport, VerifyOptions,
};
use crate::xades::uri;
use crate::xades::verify::{SignatureFacts, find_signatures, verify_signature};
use crate::xml::{encoding, parse};

fn check_placement(doc: &Document<'_>, facts: &SignatureFacts, report: &mut SignatureReport) {
    let Some(parent) = doc.parent(facts.node) else {
        return;
    };
    let parent_name = parse::local_name(doc, parent)
        .unwrap_or_default()
        .to_string();
    let parent_id = doc.get_attribute(parent, "Id").map(str::to_string);
    report.id = match (&parent_name[..], &parent_id) {
        ("Bordereau", Some(id)) => format!("Bordereau {id}"),
        ("PES_Aller", Some(id)) => format!("PES_Aller {id}"),
        _ => report.id.clone(),
    };
    if !matches!(&parent_name[..], "Bordereau" | "PES_Aller") {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            format!("signature placée dans {parent_name}, ni un Bordereau ni PES_Aller"),
        );
        return;
    }
    let expected = parent_id.as_ref().map(|i| format!("#{i}"));
    if facts.reference_uris.first().cloned().flatten() != expected {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            format!(
                "la signature de {parent_name} {} ne référence pas son Id (signature déplacée ?)",
                parent_id.as_deref().unwrap_or("sans Id")
            ),
        );
    }
    if !facts.first_transforms.iter().any(|t| t == uri::ENVELOPED) {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "la référence n'applique pas la transformation enveloped-signature",
        );
    }
    let last = parse::child_elements(doc, parent).last();
    if last != Some(facts.node) {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            format!("la signature n'est pas le dernier élément de {parent_name}"),
        );
    }
}

/// Verifies every signature of a PES_Aller file; one report per signature, named after the
/// bordereau (or PES_Aller) it signs.
pub fn verify(bytes: &[u8], options: &VerifyOptions) -> Result<VerificationReport> {
    let decoded = encoding::decode(bytes).map_err(|e| Error::Document(e.to_string()))?;
    let doc = parse::parse(&decoded.text).map_err(|e| Error::Document(e.to_string()))?;
    pes_root(&doc)?;
    let reports = find_signatures(&doc)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let (mut report, facts) = verify_signature(&doc, s, i, options);
            report.format = "PES".into();
            check_placement(&doc, &facts, &mut report);
            report
        })
        .collect();
    Ok(VerificationReport::new(reports))
}
