//! `tiffin verify`: check a package and report every problem.

use indicatif::HumanBytes;
use tiffin_core::hash::Algorithms;
use tiffin_core::{PackageKind, VerifyOptions, verify};

use crate::Outcome;
use crate::args::VerifyArgs;
use crate::progress::Bar;

pub(crate) fn run(args: &VerifyArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let algorithms = if args.sha256 {
        Algorithms::BOTH
    } else {
        Algorithms::BLAKE3
    };
    let bar = Bar::new(quiet, "verifying");
    let report = verify(
        &tiffin_core::store::resolve(&args.path)?,
        &VerifyOptions {
            algorithms,
            run_model: !args.no_run,
        },
        &bar,
    )?;
    bar.finish();
    if args.json {
        super::print_json(&report)?;
    } else if report.is_ok() {
        let kind = match report.kind {
            PackageKind::Folder => "folder",
            PackageKind::Archive => "archive",
        };
        println!(
            "verified {} {} ({kind}): {} files, {}, {}",
            report.name.as_deref().unwrap_or("?"),
            report.version.as_deref().unwrap_or("?"),
            report.files_checked,
            HumanBytes(report.bytes_checked),
            report.algorithms.join("+"),
        );
        println!("  digest   {}", report.digest);
        if report.model_checked {
            println!("  model    loads; signature matches the graph");
        }
        if let Some(drifts) = &report.examples {
            println!("  golden examples rerun:");
            super::print_drifts(drifts);
        }
    } else {
        println!(
            "{}: {} problem(s)",
            args.path.display(),
            report.problems.len()
        );
        for p in &report.problems {
            match &p.file {
                Some(file) => println!("  {file}: {}", p.message),
                None => println!("  {}", p.message),
            }
        }
    }
    if report.is_ok() {
        Ok(Outcome::Success)
    } else {
        if !args.json {
            eprintln!("error: {} failed verification", args.path.display());
        }
        Ok(Outcome::Failure)
    }
}
