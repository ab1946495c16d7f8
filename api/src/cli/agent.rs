//! `seing agent`: runs the local signing agent on the élu's workstation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::agent::{AgentConfig, DEFAULT_LISTEN};

/// `seing agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The seing web address whose pages may use this agent (scheme, host and port, e.g.
    /// https://parapheur.example.fr); every other origin is refused.
    #[arg(long, env = "SEING_AGENT_ORIGIN")]
    pub origin: String,
    /// Loopback address and port to listen on; with another port than 7431, start
    /// `seing serve` with the same `--agent-port` so that its pages find the agent.
    #[arg(long, env = "SEING_AGENT_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// PKCS#11 module of the smart card or USB token.
    #[arg(long, default_value = seing_signer::key::pkcs11::DEFAULT_MODULE)]
    pub module: PathBuf,
    /// PEM file of intermediate CA certificates to send after the signer's certificate.
    #[arg(long)]
    pub chain: Option<PathBuf>,
}

/// Runs the agent until Ctrl-C.
pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let origin = args.origin.trim_end_matches('/').to_owned();
    anyhow::ensure!(
        origin.starts_with("https://") || origin.starts_with("http://"),
        "--origin must be a web origin such as https://parapheur.example.fr"
    );
    let chain = match &args.chain {
        Some(path) => seing_signer::x509::read_certificates(path)?,
        None => Vec::new(),
    };
    let config = AgentConfig {
        listen: args.listen,
        origin,
        module: args.module,
        chain,
    };
    tokio::runtime::Runtime::new()?.block_on(crate::agent::run(config))?;
    Ok(ExitCode::SUCCESS)
}
