//! Entry point of the `seing` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = seing_api::cli::Cli::parse();
    match seing_api::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("seing: {error:#}");
            ExitCode::from(3)
        }
    }
}
