//! `tiffin completions` and `tiffin man`: files generated from the clap definitions themselves,
//! so that they can never disagree with the command line they describe.

use anyhow::Context;
use clap::CommandFactory;

use crate::Outcome;
use crate::args::{Cli, CompletionsArgs};

/// Prints the completion script of `args.shell` on stdout.
pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "tiffin", &mut script);
    print_bytes(script, "completion script")
}

/// Prints the man page (section 1, roff) on stdout. It carries no date, so that two builds of
/// the same source give the same page.
pub(crate) fn man() -> anyhow::Result<Outcome> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("cannot render the man page")?;
    print_bytes(page, "man page")
}

/// Prints generated text through `out!`, which ends quietly on a closed pipe.
fn print_bytes(bytes: Vec<u8>, what: &str) -> anyhow::Result<Outcome> {
    let text = String::from_utf8(bytes).with_context(|| format!("the {what} is not UTF-8"))?;
    out!("{text}");
    Ok(Outcome::Success)
}
