//! The `tiffin` command: a thin layer over tiffin-core that parses arguments and prints results.

use std::process::ExitCode;

use clap::Parser;

/// `println!` that ends the process quietly when stdout is closed (`tiffin list | head -1`)
/// instead of panicking as `println!` does; any other write error still panics, as before.
macro_rules! outln {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` with the same handling of a closed stdout as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

mod args;
mod commands;
mod log_writer;
mod progress;

/// Writes to stdout. A reader that went away (a closed pipe) is not an error of tiffin's: exit
/// with success, as `cat` and ripgrep do, rather than panic.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(err) = std::io::stdout().lock().write_fmt(args) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        panic!("failed printing to stdout: {err}");
    }
}

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
