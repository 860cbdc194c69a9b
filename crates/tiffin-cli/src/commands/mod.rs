//! One module per command; each turns its arguments into a tiffin-core call and prints the result.

use crate::Outcome;
use crate::args::{Cli, Command};

mod add;
mod clap_out;
mod convert;
mod doctor;
mod image;
mod init;
mod inspect;
mod pack;
mod predict;
mod pull;
mod push;
mod scan;
mod serve;
mod sign;
mod store;
mod verify;

pub(crate) fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Pack(args) => pack::run(&args, cli.quiet),
        Command::Predict(args) => predict::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Verify(args) => verify::run(&args, cli.quiet),
        Command::Inspect(args) => inspect::run(&args),
        Command::Sign(args) => sign::run(&args, cli.quiet),
        Command::Doctor(args) => doctor::run(&args),
        Command::Scan(args) => scan::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Add(args) => add::run(&args),
        Command::List(args) => store::list(&args),
        Command::Rm(args) => store::rm(&args),
        Command::Tag(args) => store::tag(&args),
        Command::Gc(args) => store::gc(&args),
        Command::Push(args) => push::run(&args),
        Command::Pull(args) => pull::run(&args),
        Command::Image(args) => image::run(&args),
        Command::Completions(args) => clap_out::completions(&args),
        Command::Man => clap_out::man(),
    }
}

/// Prints a value as pretty JSON on stdout, for `--json`.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a drift table: one line per output, with its tolerance and verdict.
fn print_drifts(drifts: &[tiffin_core::examples::Drift]) {
    outln!(
        "  {:<24} {:>10} {:>10} {:>12}  {:<22} verdict",
        "output",
        "max abs",
        "max rel",
        "outside",
        "tolerance"
    );
    for d in drifts {
        let t = &d.tolerance;
        let tolerance = match t.compare {
            tiffin_core::manifest::Compare::Values if t.abs == 0.0 && t.rel == 0.0 => {
                "exact".to_owned()
            }
            tiffin_core::manifest::Compare::Values => {
                format!("abs {:.0e} rel {:.0e}", t.abs, t.rel)
            }
            tiffin_core::manifest::Compare::Argmax => "argmax".to_owned(),
            tiffin_core::manifest::Compare::TopK => format!("top {}", t.k.unwrap_or(1)),
        };
        let verdict = match (&d.problem, d.passed()) {
            (Some(problem), _) => format!("FAIL: {problem}"),
            (None, true) => "ok".to_owned(),
            (None, false) => "FAIL".to_owned(),
        };
        outln!(
            "  {:<24} {:>10.2e} {:>10.2e} {:>5} of {:<5} {:<22} {verdict}",
            d.output,
            d.max_abs,
            d.max_rel,
            d.mismatches,
            d.compared,
            tolerance
        );
    }
}
