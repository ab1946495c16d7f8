//! The pre-flight check of a PES_Aller before signing: XSD validation against the official
//! schemas (by `xmllint`), the bordereaux summary, already-signed bordereaux and the coherence of
//! `InfoDematerialisee` with an electronic signature.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::summary::{PesSummary, summarize};
use crate::error::{Error, Result};

/// The outcome of the pre-flight check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreflightReport {
    /// The summary, when the file could be read.
    pub summary: Option<PesSummary>,
    /// What prevents signing (empty when signable).
    pub problems: Vec<String>,
    /// What the élu should know but does not prevent signing.
    pub warnings: Vec<String>,
}

impl PreflightReport {
    /// Whether the file can be signed.
    pub fn signable(&self) -> bool {
        self.summary.is_some() && self.problems.is_empty()
    }
}

/// The PES_Aller.xsd entry point inside a schemas folder (the v5.12 bundle's root, or the
/// folder holding PES_Aller.xsd itself).
pub fn schema_entry(schemas: &Path) -> Result<PathBuf> {
    [
        schemas.join("PES_V2/Rev0/PES_Aller.xsd"),
        schemas.join("Rev0/PES_Aller.xsd"),
        schemas.join("PES_Aller.xsd"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| {
        Error::Document(format!(
            "PES_Aller.xsd introuvable dans {} (attendu : PES_V2/Rev0/PES_Aller.xsd)",
            schemas.display()
        ))
    })
}

/// Validates `file` against the PES_Aller XSD with `xmllint` (no network; `--huge` because
/// pièces justificatives can hold one base64 line of more than 10 MB). Returns the schema
/// errors, empty when valid.
pub fn validate_xsd(file: &Path, schemas: &Path) -> Result<Vec<String>> {
    let xsd = schema_entry(schemas)?;
    let out = Command::new("xmllint")
        .args(["--nonet", "--noout", "--huge", "--schema"])
        .arg(&xsd)
        .arg(file)
        .output()
        .map_err(|e| {
            Error::Unsupported(format!(
                "xmllint introuvable ({e}) : installez libxml2-utils pour valider le PES"
            ))
        })?;
    if out.status.success() {
        return Ok(Vec::new());
    }
    let errors: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.ends_with("fails to validate") && !l.trim().is_empty())
        .take(20)
        .map(|l| format!("XSD : {}", l.trim()))
        .collect();
    Ok(if errors.is_empty() {
        vec!["XSD : le fichier n'est pas valide".into()]
    } else {
        errors
    })
}

fn is_true(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some("1") | Some("true"))
}

/// Checks the signability rules on a summary (no XSD): appends problems and warnings.
pub fn check_summary(summary: &PesSummary, problems: &mut Vec<String>, warnings: &mut Vec<String>) {
    if summary.bordereaux.is_empty() {
        problems.push("aucun bordereau dans le fichier".into());
    }
    for (domain, value) in &summary.info_dematerialisee {
        if !is_true(value.as_deref()) {
            problems.push(format!(
                "InfoDematerialisee vaut {} dans le domaine {} : Hélios rejette un flux signé dont InfoDematerialisee n'est pas 1",
                value.as_deref().unwrap_or("0 (absente)"),
                domain.label()
            ));
        }
    }
    let all_have_id = summary.bordereaux.iter().all(|b| b.id.is_some());
    if all_have_id {
        let unsigned = summary.bordereaux.iter().filter(|b| !b.signed).count();
        if unsigned == 0 && !summary.bordereaux.is_empty() {
            problems.push("tous les bordereaux sont déjà signés".into());
        }
    } else if summary.id.is_none() {
        problems.push(
            "un bordereau n'a pas d'attribut Id et PES_Aller non plus : rien que la signature puisse référencer"
                .into(),
        );
    } else if summary.file_signed {
        problems.push("le fichier est déjà signé".into());
    }
    for b in &summary.bordereaux {
        let label =
            b.id.clone()
                .unwrap_or_else(|| format!("n° {}", b.number.as_deref().unwrap_or("?")));
        if b.signed {
            warnings.push(format!(
                "bordereau {label} déjà signé : conservé tel quel, pas signé de nouveau"
            ));
        }
        if let Some(n) = b.declared_pieces
            && usize::try_from(n).ok() != Some(b.pieces)
        {
            warnings.push(format!(
                "bordereau {label} : NbrPce annonce {n} pièces, le fichier en contient {}",
                b.pieces
            ));
        }
    }
}

/// Runs the whole pre-flight check on a file.
pub fn preflight(file: &Path, schemas: &Path) -> Result<PreflightReport> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let summary = match summarize(&bytes) {
        Ok(s) => Some(s),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    if summary.is_some() {
        problems.extend(validate_xsd(file, schemas)?);
    }
    if let Some(s) = &summary {
        check_summary(s, &mut problems, &mut warnings);
    }
    Ok(PreflightReport {
        summary,
        problems,
        warnings,
    })
}
