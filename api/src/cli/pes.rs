//! `seing pes check`: the pre-flight check of a PES_Aller before signing (XSD, bordereaux,
//! already-signed bordereaux, InfoDematerialisee), with the summary the élu reads; and the XAdES /
//! PES options and helpers that `seing sign` and `seing verify` use for those profiles.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use seing_signer::key::KeySource;
use seing_signer::model::{BatchStatus, Level};
use seing_signer::pes::{self, PesRequest, PreflightReport};
use seing_signer::xades::format::{Packaging, XadesRequest};
use seing_signer::xades::{ProductionPlace, SignaturePolicy};

/// `seing pes …`
#[derive(Debug, Args)]
pub struct PesArgs {
    /// What to do with the PES file.
    #[command(subcommand)]
    pub command: PesCommand,
}

/// The `pes` subcommands.
#[derive(Debug, Subcommand)]
pub enum PesCommand {
    /// Check a PES_Aller before signing: exit 0 when it can be signed, 1 with the reasons.
    Check(CheckArgs),
}

/// Options of `seing pes check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The PES V2 schemas folder (the bundle holding PES_V2/Rev0/PES_Aller.xsd).
    #[arg(long, env = "SEING_PES_SCHEMAS")]
    pub schemas: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The PES_Aller file.
    pub file: PathBuf,
}

/// Runs a `pes` subcommand.
pub fn run(args: PesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PesCommand::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let schemas = args.schemas.context(
        "schémas PES introuvables : précisez --schemas DOSSIER ou la variable SEING_PES_SCHEMAS",
    )?;
    let report = pes::preflight(&args.file, &schemas)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&args.file, &report));
    }
    Ok(if report.signable() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The text report, in French: what the élu will sign.
fn render(file: &std::path::Path, report: &PreflightReport) -> String {
    let mut out = format!("Fichier : {}\n", file.display());
    if let Some(s) = &report.summary {
        out.push_str(&format!(
            "Encodage : {} — PES_Aller {}\n",
            s.encoding,
            s.id.as_deref().unwrap_or("(sans Id)")
        ));
        if let Some(name) = &s.file_name {
            out.push_str(&format!("Nom du flux : {name}\n"));
        }
        out.push_str(&format!(
            "Collectivité : {} — budget : {}\n",
            s.collectivite.as_deref().unwrap_or("?"),
            s.budget.as_deref().unwrap_or("?")
        ));
        out.push_str(&format!(
            "{} bordereau(x), {} pièce(s) justificative(s) jointe(s)\n",
            s.bordereaux.len(),
            s.pj_count
        ));
        for b in &s.bordereaux {
            out.push_str(&format!(
                "  {:<24} {:<8} exercice {} n° {:<8} type {} {:>4} pièce(s) {:>16} €{}\n",
                b.id.as_deref().unwrap_or("(sans Id)"),
                b.domain.label(),
                b.exercice.as_deref().unwrap_or("?"),
                b.number.as_deref().unwrap_or("?"),
                b.kind.as_deref().unwrap_or("?"),
                b.pieces,
                b.amount.as_deref().unwrap_or("?"),
                if b.signed { "  [déjà signé]" } else { "" }
            ));
        }
    }
    for w in &report.warnings {
        out.push_str(&format!("Attention : {w}\n"));
    }
    for p in &report.problems {
        out.push_str(&format!("Problème : {p}\n"));
    }
    out.push_str(if report.signable() {
        "Résultat : signable\n"
    } else {
        "Résultat : NON signable\n"
    });
    out
}

/// The XAdES and PES options of `seing sign` / `seing sign-batch`.
#[derive(Debug, Clone, Args)]
pub struct XmlSignArgs {
    /// XAdES/PES: the claimed role (ClaimedRole), e.g. "Ordonnateur" or "Maire".
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// XAdES/PES: city of the signature production place.
    #[arg(long, value_name = "CITY")]
    pub city: Option<String>,
    /// XAdES/PES: postal code of the signature production place.
    #[arg(long, value_name = "CODE")]
    pub postal_code: Option<String>,
    /// XAdES/PES: country of the signature production place.
    #[arg(long, value_name = "COUNTRY")]
    pub country: Option<String>,
    /// XAdES/PES: signature policy OID (PES default: the Hélios policy 1.2.250.1.131.1.5.18.21.1.7).
    #[arg(long, value_name = "OID", requires = "policy_hash")]
    pub policy_oid: Option<String>,
    /// XAdES/PES: base64 SHA-256 of the policy document.
    #[arg(long, value_name = "BASE64", requires = "policy_oid")]
    pub policy_hash: Option<String>,
    /// XAdES/PES: where the policy is published (SPURI).
    #[arg(long, value_name = "URI")]
    pub policy_uri: Option<String>,
    /// PES: run the pre-flight check (XSD included) with these schemas before signing.
    #[arg(long, value_name = "DIR", env = "SEING_PES_SCHEMAS")]
    pub schemas: Option<PathBuf>,
}

impl XmlSignArgs {
    fn place(&self) -> Option<ProductionPlace> {
        let place = ProductionPlace {
            city: self.city.clone(),
            postal_code: self.postal_code.clone(),
            country: self.country.clone(),
        };
        (!place.is_empty()).then_some(place)
    }

    fn policy(&self) -> anyhow::Result<Option<SignaturePolicy>> {
        let (Some(oid), Some(hash)) = (&self.policy_oid, &self.policy_hash) else {
            return Ok(None);
        };
        Ok(Some(SignaturePolicy::from_parts(
            oid,
            hash,
            self.policy_uri.clone(),
        )?))
    }

    /// The PES request: the Hélios policy unless another is given, "Ordonnateur" by default.
    pub fn pes_request(&self) -> anyhow::Result<PesRequest> {
        let mut policy = self.policy()?.unwrap_or_else(SignaturePolicy::helios);
        if self.policy_oid.is_none()
            && let Some(uri) = &self.policy_uri
        {
            policy.uri = Some(uri.clone());
        }
        Ok(PesRequest {
            role: self.role.clone().or_else(|| PesRequest::default().role),
            place: self.place(),
            policy,
        })
    }

    /// The XAdES request.
    pub fn xades_request(
        &self,
        detached: bool,
        level: Level,
        tsa_url: Option<String>,
    ) -> anyhow::Result<XadesRequest> {
        Ok(XadesRequest {
            packaging: if detached {
                Packaging::Detached { more: Vec::new() }
            } else {
                Packaging::Enveloped
            },
            level,
            tsa_url,
            role: self.role.clone(),
            place: self.place(),
            policy: self.policy()?,
        })
    }
}

/// `seing sign --profile pes`: after the pre-flight check when schemas are known, signs every
/// unsigned bordereau; a bordereau that fails is reported on stderr and the others are signed
/// (the file is produced when at least one is).
pub fn sign_file(
    key: &dyn KeySource,
    input: &std::path::Path,
    request: &PesRequest,
    schemas: Option<&std::path::Path>,
) -> seing_signer::error::Result<Vec<u8>> {
    if let Some(schemas) = schemas {
        let report = pes::preflight(input, schemas)?;
        if !report.signable() {
            return Err(seing_signer::error::Error::Document(format!(
                "{} : non signable : {}",
                input.display(),
                report.problems.join(" ; ")
            )));
        }
    }
    let bytes = std::fs::read(input).map_err(|e| seing_signer::error::Error::io(input, e))?;
    let signed = pes::sign_pes(bytes, request, key)?;
    for id in &signed.already_signed {
        eprintln!("bordereau {id} : déjà signé, conservé tel quel");
    }
    for item in &signed.items {
        if item.status == BatchStatus::Failed {
            eprintln!(
                "bordereau {} : NON signé : {}",
                item.input,
                item.error.as_deref().unwrap_or("échec")
            );
        }
    }
    Ok(signed.output)
}

/// Whether `bytes` look like XML, and then whether the root is a PES_Aller (for `seing verify`).
pub fn xml_kind(bytes: &[u8]) -> Option<XmlKind> {
    let head = &bytes[..bytes.len().min(4096)];
    let text: String = if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        let le = head.starts_with(&[0xFF, 0xFE]);
        let units: Vec<u16> = head[2..]
            .chunks_exact(2)
            .map(|p| {
                if le {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        head.iter().map(|&b| char::from(b)).collect()
    };
    let text = text
        .trim_start_matches('\u{FEFF}')
        .trim_start_matches("ï»¿")
        .trim_start();
    if !text.starts_with('<') {
        return None;
    }
    // The root element: the first tag that is not a declaration, comment or DOCTYPE.
    let root = text
        .match_indices('<')
        .map(|(i, _)| &text[i + 1..])
        .find(|t| !t.starts_with('?') && !t.starts_with('!'))?;
    let name: String = root
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
        .collect();
    let local = name.rsplit(':').next().unwrap_or_default();
    Some(if local == "PES_Aller" {
        XmlKind::Pes
    } else {
        XmlKind::Xades
    })
}

/// The kinds of XML signed files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlKind {
    /// A PES_Aller (Hélios).
    Pes,
    /// Any other XML with XAdES / XML-DSig signatures.
    Xades,
}
