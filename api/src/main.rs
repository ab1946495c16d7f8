//! Entry point of the `seing` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit 3 (not clap's 2, which `seing verify` uses for INDETERMINATE).
    let cli = match seing_api::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 3 } else { 0 });
        }
    };
    match seing_api::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("seing: {error:#}");
            ExitCode::from(3)
        }
    }
}
