//! `seing-certs-test`: generates the test PKI, provisions SoftHSM2 tokens, runs a test TSA.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seing_certs_test::{Error, TestPki, pki, token};

#[derive(Parser)]
#[command(
    name = "seing-certs-test",
    version,
    about = "Fixtures de test de seing : PKI, jetons SoftHSM2, horodatage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Génère la PKI de test (PEM, PKCS#8, PKCS#12, CRL) dans DIR.
    Pki {
        /// Dossier de sortie (créé au besoin).
        #[arg(long)]
        out: PathBuf,
    },
    /// Crée un jeton SoftHSM2 isolé dans DIR, clés générées sur le jeton, et affiche token.json.
    Token {
        /// Dossier du jeton (configuration, magasin, certificats).
        #[arg(long)]
        dir: PathBuf,
        /// Libellé du jeton.
        #[arg(long)]
        label: String,
        /// Code PIN utilisateur.
        #[arg(long)]
        pin: String,
        /// PKI de test existante ; à défaut, une PKI est générée dans DIR/pki.
        #[arg(long)]
        pki: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Pki { out } => {
            let pki = pki::generate(&out)?;
            println!("PKI de test écrite dans {}", pki.dir.display());
        }
        Command::Token {
            dir,
            label,
            pin,
            pki,
        } => {
            let pki = match pki {
                Some(p) => TestPki::open(&p)?,
                None => pki::generate(&dir.join("pki"))?,
            };
            let token = token::create(&dir, &label, &pin, &pki)?;
            println!("{}", token.to_json()?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seing-certs-test : {e}");
            ExitCode::FAILURE
        }
    }
}
