//! `seing journal verify`: checks the hash chain of the audit journal, tenant by tenant.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use seing_engine::ids::TenantId;
use seing_engine::journal;
use seing_engine::storage::Database;

use crate::config::DEFAULT_DATA_DIR;

/// `seing journal …`
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// What to do with the journal.
    #[command(subcommand)]
    pub command: JournalCommand,
}

/// The journal subcommands.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Verify the hash chain: exit 0 when intact, 1 when broken (the first bad entry is named).
    Verify(VerifyArgs),
}

/// Flags of `seing journal verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Database URL (`sqlite:…` or `postgres://…`); takes precedence over --data-dir.
    #[arg(long, env = "SEING_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Data folder of the service (its SQLite file) [default: ./seing-data].
    #[arg(long, env = "SEING_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Verify only this tenant's chain.
    #[arg(long)]
    pub tenant: Option<String>,
}

/// Runs `seing journal …`.
pub fn run(args: JournalArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        JournalCommand::Verify(args) => verify(args),
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let tenant = args
        .tenant
        .as_deref()
        .map(|t| {
            t.parse::<TenantId>()
                .with_context(|| format!("--tenant `{t}` is not a tenant id"))
        })
        .transpose()?;
    let url = match args.database_url {
        Some(url) => url,
        None => {
            let dir = args
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
            let file = dir.join("seing.db");
            // Verifying must not create an empty database where none was.
            if !file.is_file() {
                bail!("no database at {}", file.display());
            }
            format!("sqlite:{}", file.display())
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let db = Database::connect(&url)
            .await
            .with_context(|| format!("cannot open database {url}"))?;
        let reports = journal::verify(&db, tenant).await;
        db.close().await;
        let reports = reports.context("cannot read the journal")?;
        let mut intact = true;
        for report in &reports {
            match &report.broken {
                None => println!(
                    "tenant {}: {} entries, chain intact",
                    report.tenant, report.entries
                ),
                Some(bad) => {
                    intact = false;
                    println!(
                        "tenant {}: chain BROKEN at entry {}{}: {}",
                        report.tenant,
                        bad.seq,
                        bad.id
                            .as_deref()
                            .map(|id| format!(" (id {id})"))
                            .unwrap_or_default(),
                        bad.reason
                    );
                }
            }
        }
        Ok(if intact {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
