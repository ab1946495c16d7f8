//! `seing-certs-test`: generates the test PKI, provisions SoftHSM2 tokens, runs a test TSA.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seing_certs_test::{Error, TestPki, TestTsa, pki, token};

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
    /// Lance une autorité d'horodatage RFC 3161 de test sur HTTP.
    Tsa {
        /// Adresse d'écoute (port 0 : un port libre).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// PKI de test existante ; à défaut, une PKI est générée dans un dossier temporaire.
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
        Command::Tsa { listen, pki } => {
            let (pki, _keep) = match pki {
                Some(p) => (TestPki::open(&p)?, None),
                None => {
                    let dir = tempfile::tempdir()
                        .map_err(|e| Error::Tsa(format!("temporary folder: {e}")))?;
                    (pki::generate(dir.path())?, Some(dir))
                }
            };
            let tsa = TestTsa::start_on(&pki, listen)?;
            println!("listening on {}", tsa.url());
            std::io::stdout()
                .flush()
                .map_err(|e| Error::Tsa(format!("stdout: {e}")))?;
            tsa.wait();
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
