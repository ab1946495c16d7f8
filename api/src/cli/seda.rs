//! `seing seda …`: build a SEDA 2.1 transfer package, read an archive service's reply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use seing_connectors::seda::{
    ObjectRole, ReplyOutcome, SedaFile, SedaMetadata, parse_reply, validate, write_package,
};
use seing_connectors::{Error, Problem};
use time::OffsetDateTime;

use super::actes::report;

/// `seing seda`.
#[derive(Debug, Args)]
pub struct SedaArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SedaCommand,
}

/// The subcommands of `seing seda`.
#[derive(Debug, Subcommand)]
pub enum SedaCommand {
    /// Write `manifest.xml` (ArchiveTransfer) and the files under `content/` into an empty
    /// folder; prints the manifest's path.
    Package(PackageArgs),
    /// Read an ArchiveTransferReply; exit code 0 if the transfer was accepted, 1 if rejected.
    Reply {
        /// The XML message.
        file: PathBuf,
    },
}

/// Flags of `seing seda package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Metadata (JSON): archival_agency, transferring_agency, originating_agency, title;
    /// optional archival_agreement, description, start_date, end_date, keywords,
    /// message_identifier, appraisal_rule, access_rule, and roles (file name → document,
    /// signed, signature or journal; `.p7s` files default to signature, others to document).
    #[arg(long)]
    pub meta: PathBuf,
    /// Folder to write (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// The files of the dossier.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `seing seda …`.
pub fn run(args: SedaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SedaCommand::Package(args) => package(args),
        SedaCommand::Reply { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("lecture de {}", file.display()))?;
            let reply = parse_reply(&bytes)?;
            let verdict = match reply.outcome {
                ReplyOutcome::Accepted => "transfert accepté",
                ReplyOutcome::AcceptedWithWarnings => "transfert accepté avec avertissements",
                ReplyOutcome::Rejected => "transfert refusé",
            };
            println!(
                "{verdict} ({}) pour le message {}",
                reply.reply_code, reply.message_request_identifier
            );
            for event in &reply.events {
                if let Some(m) = &event.message {
                    println!("- {m}");
                }
            }
            Ok(if reply.outcome == ReplyOutcome::Rejected {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn package(args: PackageArgs) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    let (meta, roles) = read_meta(&args.meta, &mut problems);
    let names: Vec<String> = args.files.iter().map(|p| name_of(p)).collect();
    for key in roles.keys() {
        if !names.contains(key) {
            problems.push(Problem::new(
                format!("roles[{key}]"),
                "ne désigne aucun des fichiers donnés",
            ));
        }
    }
    let files: Vec<SedaFile> = args
        .files
        .iter()
        .zip(&names)
        .map(|(path, name)| SedaFile {
            path: path.clone(),
            role: roles
                .get(name)
                .copied()
                .unwrap_or_else(|| ObjectRole::guess(name)),
        })
        .collect();
    let Some(meta) = meta else {
        return Ok(report(&problems));
    };
    match validate(&meta, &files, &args.out) {
        Ok(()) if problems.is_empty() => {}
        Ok(()) => return Ok(report(&problems)),
        Err(Error::Invalid(more)) => {
            problems.extend(more);
            return Ok(report(&problems));
        }
        Err(other) => return Err(other.into()),
    }
    let package = write_package(&meta, &files, &args.out, OffsetDateTime::now_utc())?;
    println!("{}", package.manifest.display());
    Ok(ExitCode::SUCCESS)
}

fn name_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The metadata and the `roles` map (a CLI addition, kept out of the library's metadata).
fn read_meta(
    path: &Path,
    problems: &mut Vec<Problem>,
) -> (Option<SedaMetadata>, BTreeMap<String, ObjectRole>) {
    let field = path.display().to_string();
    let mut fail = |m: String| {
        problems.push(Problem::new(&field, m));
        (None, BTreeMap::new())
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return fail(format!("illisible : {e}")),
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return fail(format!("JSON invalide : {e}")),
    };
    let roles = match value.as_object_mut().and_then(|o| o.remove("roles")) {
        None => BTreeMap::new(),
        Some(r) => match serde_json::from_value(r) {
            Ok(r) => r,
            Err(e) => return fail(format!("roles invalide : {e}")),
        },
    };
    match serde_json::from_value(value) {
        Ok(meta) => (Some(meta), roles),
        Err(e) => fail(format!("JSON invalide : {e}")),
    }
}
