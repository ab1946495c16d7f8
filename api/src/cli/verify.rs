//! `seing verify`: verify the signatures of a file and print an ETSI EN 319 102-1 report.
//!
//! Exit code: 0 TOTAL_PASSED, 1 TOTAL_FAILED, 2 INDETERMINATE, 3 usage or input error. The format
//! is recognised from the content ([`detect`]); a new format adds a [`Detected`] variant and an
//! arm in [`verify_file`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use seing_signer::verify::{Indication, VerificationReport, VerifyOptions};

/// `seing verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Trust anchor (PEM; repeatable).
    #[arg(long, value_name = "CA_PEM")]
    pub trust: Vec<PathBuf>,
    /// Further certificates for chain building (PEM; repeatable).
    #[arg(long, value_name = "PEM")]
    pub certs: Vec<PathBuf>,
    /// CRL for revocation checks (PEM or DER; repeatable).
    #[arg(long, value_name = "CRL")]
    pub crl: Vec<PathBuf>,
    /// The signed data of a detached signature.
    #[arg(long, value_name = "DETACHED_FILE")]
    pub data: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The signed file (or detached signature).
    pub file: PathBuf,
}

/// The kinds of signed files `seing verify` recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// A CMS SignedData (DER or PEM).
    Cades,
    /// An XML file with XAdES / XML-DSig signatures.
    Xades,
    /// A PES_Aller (Hélios) with its bordereaux' signatures.
    Pes,
    /// A PDF.
    Pades,
}

/// Recognises the format of `bytes`.
pub fn detect(bytes: &[u8]) -> anyhow::Result<Detected> {
    let head = &bytes[..bytes.len().min(64)];
    if head.starts_with(b"%PDF-") {
        return Ok(Detected::Pades);
    }
    if head.first() == Some(&0x30) || head.starts_with(b"-----BEGIN") {
        return Ok(Detected::Cades);
    }
    match super::pes::xml_kind(bytes) {
        Some(super::pes::XmlKind::Pes) => return Ok(Detected::Pes),
        Some(super::pes::XmlKind::Xades) => return Ok(Detected::Xades),
        None => {}
    }
    anyhow::bail!("format de signature non reconnu")
}

fn load_options(args: &VerifyArgs) -> anyhow::Result<VerifyOptions> {
    let mut options = VerifyOptions::default();
    for p in &args.trust {
        options
            .trust_anchors
            .extend(seing_signer::x509::read_certificates(p)?);
    }
    for p in &args.certs {
        options
            .certificates
            .extend(seing_signer::x509::read_certificates(p)?);
    }
    for p in &args.crl {
        options.crls.push(seing_signer::x509::read_crl(p)?);
    }
    if let Some(d) = &args.data {
        if !d.is_file() {
            anyhow::bail!("{} : fichier introuvable", d.display());
        }
        options.detached_data = Some(d.clone());
    }
    Ok(options)
}

/// Verifies `file` with `options`.
pub fn verify_file(file: &Path, options: &VerifyOptions) -> anyhow::Result<VerificationReport> {
    let bytes = std::fs::read(file).with_context(|| format!("lecture de {}", file.display()))?;
    verify_bytes(&bytes, options)
}

/// Verifies the signatures of a signed file's bytes (the format is recognised from them); the
/// API's verification endpoint uses it too.
pub fn verify_bytes(bytes: &[u8], options: &VerifyOptions) -> anyhow::Result<VerificationReport> {
    Ok(match detect(bytes)? {
        Detected::Cades => seing_signer::cades::verify(bytes, options)?,
        Detected::Xades => seing_signer::xades::verify::verify(bytes, options)?,
        Detected::Pes => seing_signer::pes::verify::verify(bytes, options)?,
        Detected::Pades => seing_signer::pades::verify(bytes, options)?,
    })
}

fn indication_fr(i: Indication) -> &'static str {
    match i {
        Indication::TotalPassed => "TOTAL_PASSED (signature valide)",
        Indication::TotalFailed => "TOTAL_FAILED (signature invalide)",
        Indication::Indeterminate => "INDETERMINATE (validité indéterminée)",
    }
}

/// Runs `seing verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let options = load_options(&args)?;
    let report = verify_file(&args.file, &options)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for s in &report.signatures {
            let sub = s
                .sub_indication
                .map(|x| {
                    format!(
                        " / {}",
                        serde_json::to_value(x)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            writeln!(
                out,
                "{} [{}{}] : {}{}",
                s.id,
                s.format,
                s.level
                    .as_deref()
                    .map(|l| format!(" {l}"))
                    .unwrap_or_default(),
                indication_fr(s.indication),
                sub
            )?;
            if let Some(signer) = &s.signer {
                writeln!(out, "  signataire : {signer}")?;
            }
            if let Some(t) = s.claimed_signing_time {
                writeln!(out, "  date de signature déclarée : {t}")?;
            }
            if let Some(t) = s.timestamp_time {
                writeln!(out, "  horodatage : {t}")?;
            }
            for m in &s.messages {
                writeln!(out, "  - {m}")?;
            }
        }
        writeln!(out, "résultat : {}", indication_fr(report.indication))?;
    }
    Ok(ExitCode::from(report.indication.exit_code()))
}
