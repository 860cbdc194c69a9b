//! One module per command; each turns its arguments into a tiffin-core call and prints the result.

use crate::Outcome;
use crate::args::{Cli, Command};

mod inspect;
mod pack;
mod scan;
mod verify;

pub(crate) fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Pack(args) => pack::run(&args, cli.quiet),
        Command::Verify(args) => verify::run(&args, cli.quiet),
        Command::Inspect(args) => inspect::run(&args),
        Command::Scan(args) => scan::run(&args),
    }
}

/// Prints a value as pretty JSON on stdout, for `--json`.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
