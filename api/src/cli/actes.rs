//! `seing actes …`: build an @ctes transmission archive, list one, read a prefecture return.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use seing_connectors::actes::{
    ActeDocument, ActesMetadata, ActesReturn, SizeLimits, TenantClassification, parse_return,
    read_archive, validate, write_package,
};
use seing_connectors::{Error, Problem};
use time::OffsetDateTime;
use time::macros::format_description;

/// Return address written when META.json gives none (`.local` is never routed on the Internet,
/// so no mail can go astray; the operator is warned).
const DEFAULT_EMAIL: &str = "retour-actes@seing.local";
/// Authority nature code written when META.json gives none: the value of the real SICTIAM
/// transmission in the specs (a commune); the operator is warned.
const DEFAULT_NATURE_COLLECTIVITE: &str = "02";

/// `seing actes`.
#[derive(Debug, Args)]
pub struct ActesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ActesCommand,
}

/// The subcommands of `seing actes`.
#[derive(Debug, Subcommand)]
pub enum ActesCommand {
    /// Build the transmission archive `<TRIGRAMME>-EACT--<SIREN>--<YYYYMMDD>-<n>.tar.gz` of an
    /// act and its annexes; a file `X.p7s` is the detached signature of the file `X` (or of the
    /// file with the same stem). Prints the archive's path.
    Package(PackageArgs),
    /// List what a transmission archive holds: envelope, message, documents.
    Read {
        /// The `.tar.gz` archive.
        archive: PathBuf,
    },
    /// Read a return from the prefecture (ARActe, AnomalieActe, AnomalieEnveloppe,
    /// ARAnnulation).
    Return {
        /// The XML message.
        file: PathBuf,
    },
}

/// Flags of `seing actes package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Metadata (JSON): siren, departement, arrondissement, trigramme, nature, classification,
    /// numero_interne, date_decision, objet; optional type_pj, classification_date,
    /// nature_collectivite, email_retour, referent.
    #[arg(long)]
    pub meta: PathBuf,
    /// Folder the archive is written to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// The tenant's classification (`RetourClassification` XML): subjects and document types
    /// are checked against it.
    #[arg(long)]
    pub classification: Option<PathBuf>,
    /// Transmission date, YYYY-MM-DD [default: today, UTC].
    #[arg(long)]
    pub date: Option<String>,
    /// Number of the transmission that day [default: the first free in the output folder].
    #[arg(long)]
    pub sequence: Option<u32>,
    /// Largest file, in bytes [default: 150 MiB].
    #[arg(long)]
    pub max_file_size: Option<u64>,
    /// Largest total, in bytes [default: 150 MiB].
    #[arg(long)]
    pub max_total_size: Option<u64>,
    /// The act.
    pub act: PathBuf,
    /// The annexes and detached signatures.
    pub annexes: Vec<PathBuf>,
}

/// Runs `seing actes …`.
pub fn run(args: ActesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ActesCommand::Package(args) => package(args),
        ActesCommand::Read { archive } => {
            let archive = read_archive(&archive)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "enveloppe : {}", archive.envelope.file_name)?;
            writeln!(out, "message : {}", archive.message_name)?;
            let acte = &archive.acte;
            writeln!(
                out,
                "acte : {} n° {} du {} — {}",
                acte.nature.abbreviation(),
                acte.numero_interne,
                acte.date_decision,
                acte.objet
            )?;
            writeln!(out, "document : {}", acte.document)?;
            for annexe in &acte.annexes {
                writeln!(out, "annexe : {annexe}")?;
            }
            for member in &archive.members {
                writeln!(out, "fichier : {} ({} octets)", member.name, member.size)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ActesCommand::Return { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("lecture de {}", file.display()))?;
            println!("{}", describe(&parse_return(&bytes)?));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn describe(r: &ActesReturn) -> String {
    match r {
        ActesReturn::Acknowledged(ar) => format!(
            "accusé de réception : acte {} reçu le {}",
            ar.id_acte, ar.date_reception
        ),
        ActesReturn::Anomaly(a) => format!(
            "anomalie {} du {} sur l'acte n° {} : {}",
            a.nature,
            a.date,
            a.acte.numero_interne,
            a.detail.as_deref().unwrap_or("(sans détail)")
        ),
        ActesReturn::EnvelopeAnomaly(a) => format!(
            "anomalie d'enveloppe {} du {} : {}",
            a.nature,
            a.date,
            a.detail.as_deref().unwrap_or("(sans détail)")
        ),
        ActesReturn::CancellationAcknowledged(c) => format!(
            "annulation de l'acte {} reçue le {}",
            c.id_acte, c.date_reception
        ),
    }
}

fn package(args: PackageArgs) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    let meta = read_meta(&args.meta, &mut problems);
    let classification = args.classification.as_deref().and_then(|path| {
        let parsed = std::fs::read(path)
            .map_err(|e| format!("illisible ({}) : {e}", path.display()))
            .and_then(|b| TenantClassification::parse(&b).map_err(|e| e.to_string()));
        parsed
            .map_err(|m| problems.push(Problem::new("classification", m)))
            .ok()
    });
    let date = match &args.date {
        Some(d) => time::Date::parse(d, format_description!("[year]-[month]-[day]"))
            .map_err(|_| {
                problems.push(Problem::new(
                    "--date",
                    format!("« {d} » : date AAAA-MM-JJ attendue"),
                ))
            })
            .ok(),
        None => Some(OffsetDateTime::now_utc().date()),
    };
    let (act, annexes) = pair_signatures(&args.act, &args.annexes, &mut problems);
    let mut limits = SizeLimits::default();
    limits.max_file = args.max_file_size.unwrap_or(limits.max_file);
    limits.max_total = args.max_total_size.unwrap_or(limits.max_total);

    let valid = match (meta, date) {
        (Some(mut meta), Some(date)) => {
            if meta.nature_collectivite.is_none() {
                eprintln!(
                    "seing: avertissement : nature_collectivite absente, « {DEFAULT_NATURE_COLLECTIVITE} » écrit dans l'enveloppe"
                );
                meta.nature_collectivite = Some(DEFAULT_NATURE_COLLECTIVITE.to_owned());
            }
            if meta.email_retour.is_empty() {
                eprintln!(
                    "seing: avertissement : email_retour absent, « {DEFAULT_EMAIL} » écrit dans l'enveloppe"
                );
                meta.email_retour = vec![DEFAULT_EMAIL.to_owned()];
            }
            match validate(
                &meta,
                &act,
                &annexes,
                classification.as_ref(),
                &limits,
                date,
            ) {
                Ok(valid) if problems.is_empty() => Some(valid),
                Ok(_) => None,
                Err(Error::Invalid(more)) => {
                    problems.extend(more);
                    None
                }
                Err(other) => return Err(other.into()),
            }
        }
        _ => None,
    };
    let Some(valid) = valid else {
        return Ok(report(&problems));
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("création de {}", args.out.display()))?;
    let package = write_package(&valid, &args.out, args.sequence)?;
    println!("{}", package.path.display());
    Ok(ExitCode::SUCCESS)
}

/// Prints every problem, one per line, and gives exit code 1.
pub(crate) fn report(problems: &[Problem]) -> ExitCode {
    for p in problems {
        eprintln!("seing: erreur : {p}");
    }
    ExitCode::from(1)
}

fn read_meta(path: &Path, problems: &mut Vec<Problem>) -> Option<ActesMetadata> {
    let field = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| problems.push(Problem::new(&field, format!("illisible : {e}"))))
        .ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|e| problems.push(Problem::new(&field, format!("JSON invalide : {e}"))))
        .ok()
}

/// Attaches each `X.p7s` (or `stem.p7s`) to the file it signs; the others are documents.
fn pair_signatures(
    act: &Path,
    others: &[PathBuf],
    problems: &mut Vec<Problem>,
) -> (ActeDocument, Vec<ActeDocument>) {
    let is_signature = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("p7s"));
    let mut documents: Vec<ActeDocument> = std::iter::once(act)
        .chain(others.iter().map(PathBuf::as_path))
        .filter(|p| !is_signature(p))
        .map(|p| ActeDocument {
            path: p.to_path_buf(),
            signature: None,
        })
        .collect();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for (i, d) in documents.iter().enumerate() {
        if let Some(name) = d.path.file_name() {
            by_name.insert(name.to_string_lossy().into_owned(), i);
        }
        if let Some(stem) = d.path.file_stem() {
            by_name
                .entry(stem.to_string_lossy().into_owned())
                .or_insert(i);
        }
    }
    for sig in std::iter::once(act)
        .chain(others.iter().map(PathBuf::as_path))
        .filter(|p| is_signature(p))
    {
        let signed = sig.file_stem().map(|s| s.to_string_lossy().into_owned());
        let name = sig
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        match signed.and_then(|s| by_name.get(&s).copied()) {
            Some(i) if documents[i].signature.is_none() => {
                documents[i].signature = Some(sig.to_path_buf())
            }
            Some(_) => problems.push(Problem::new(
                &name,
                "deuxième signature pour le même fichier",
            )),
            None => problems.push(Problem::new(
                &name,
                "signature détachée sans le fichier signé (X.p7s signe X)",
            )),
        }
    }
    if is_signature(act) || documents.is_empty() {
        problems.push(Problem::new(
            "acte",
            "le premier fichier doit être l'acte, pas une signature",
        ));
    }
    let mut iter = documents.into_iter();
    let first = iter.next().unwrap_or(ActeDocument {
        path: act.to_path_buf(),
        signature: None,
    });
    (first, iter.collect())
}
