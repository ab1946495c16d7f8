//! The command line: one subcommand per task, each a thin layer over the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod journal;

pub mod actes;
pub mod admin;
pub mod agent;
pub mod client;
pub mod pes;
pub mod seda;
pub mod sign;
pub mod verify;

use crate::config::{ServeArgs, ServeConfig};

/// seing — parapheur and electronic signature for local authorities.
#[derive(Debug, Parser)]
#[command(name = "seing", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `seing`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (REST API and web UI) and, unless `--no-worker`, the outbox worker.
    Serve(ServeArgs),
    /// Run only the outbox worker (webhooks, transmissions, archives) on the service's database.
    Worker(ServeArgs),
    /// Operator commands: create tenants, users, desks, API tokens; import circuit templates.
    Admin(admin::AdminArgs),
    /// The audit journal: verify its hash chain.
    Journal(journal::JournalArgs),
    /// Acts for the prefecture (@ctes): build a transmission archive, read one, read a return.
    Actes(actes::ActesArgs),
    /// SEDA 2.1 archive transfers: build a package, read a reply.
    Seda(seda::SedaArgs),
    /// PES V2 (Hélios) files: the pre-flight check before signing.
    Pes(pes::PesArgs),
    /// Sign a document (CAdES, PAdES, XAdES, PES V2) with a PKCS#11 token or a software key.
    Sign(sign::SignArgs),
    /// Sign several documents with one PIN entry; one JSON line per document.
    SignBatch(sign::SignBatchArgs),
    /// The local signing agent of an élu's workstation: signs for the web UI with the token.
    Agent(agent::AgentArgs),
    /// Verify the signatures of a file (exit 0 passed, 1 failed, 2 indeterminate, 3 error).
    Verify(verify::VerifyArgs),
    /// The REST API from a terminal: sign the dossiers waiting at your desk (exit 1 if some fail).
    Client(client::ClientArgs),
}

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = ServeConfig::resolve(args)?;
            init_tracing();
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::server::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => {
            let config = ServeConfig::resolve(args)?;
            init_tracing();
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::server::work(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(args) => admin::run(args),
        Command::Journal(args) => journal::run(args),
        Command::Actes(args) => actes::run(args),
        Command::Seda(args) => seda::run(args),
        Command::Pes(args) => pes::run(args),
        Command::Sign(args) => sign::run_sign(args),
        Command::SignBatch(args) => sign::run_sign_batch(args),
        Command::Verify(args) => verify::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Client(args) => client::run(args),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEING_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
