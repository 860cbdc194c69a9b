//! The `tiffin` command: a thin layer over tiffin-core that parses arguments and prints results.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod commands;
mod progress;

/// How a command ended, when it did not fail outright.
pub(crate) enum Outcome {
    /// Everything was fine.
    Success,
    /// The command ran, and what it checked failed (a package with problems); already reported.
    Failure,
    /// The command ran and found warnings it was asked to treat as an error (`doctor --strict`).
    Warnings,
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Ok(Outcome::Warnings) => ExitCode::from(2),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
