//! `tiffin verify`: check a package and report every problem; with `--key`, its signature first.

use indicatif::HumanBytes;
use tiffin_core::hash::Algorithms;
use tiffin_core::{
    Problem, Report, SignatureOptions, SignatureReport, Verifier, VerifyOptions, verify,
    verify_signature,
};

use crate::Outcome;
use crate::args::VerifyArgs;
use crate::progress::Bar;

pub(crate) fn run(args: &VerifyArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let algorithms = if args.sha256 {
        Algorithms::BOTH
    } else {
        Algorithms::BLAKE3
    };
    let options = VerifyOptions {
        algorithms,
        run_model: !args.no_run,
        runtime: args.runtime.runtime(),
    };
    let path = tiffin_store::resolve(&args.path)?;
    let verifier = Verifier::from_pem_files(args.key.as_deref(), args.root.as_deref())?;
    if let Some(verifier) = verifier {
        let bar = Bar::new(quiet, "verifying");
        let options = SignatureOptions {
            bundle: args.signature.clone(),
            verify: options,
        };
        let report = verify_signature(&path, &verifier, &options, &bar)?;
        bar.finish();
        return print_signature_report(args, &report);
    }
    let bar = Bar::new(quiet, "verifying");
    let report = verify(&path, &options, &bar)?;
    bar.finish();
    if args.json {
        super::print_json(&report)?;
    } else if report.is_ok() {
        print_verified(&report);
        if report.signed {
            outln!(
                "  signed   tiffin.sigstore.json, not checked (give --key PUB.pem or --root \
                 ROOTS.pem to check it)"
            );
        }
    } else {
        print_problems(args, report.problems.iter());
    }
    Ok(outcome(args, report.is_ok()))
}

/// With `--key`: the signature's verdict, then the package's.
fn print_signature_report(args: &VerifyArgs, report: &SignatureReport) -> anyhow::Result<Outcome> {
    if args.json {
        super::print_json(report)?;
    } else if let (true, Some(package)) = (report.is_ok(), &report.package) {
        print_verified(package);
        outln!(
            "  signed   signature valid (ECDSA P-256 key {}); {} files match the signed digests",
            report.key_hint,
            report.signed_files
        );
        if let Some(subject) = &report.certificate {
            outln!("  cert     {subject}, its chain leads to a root given");
        }
        match &report.detached {
            Some(bundle) => outln!("  bundle   {} (detached)", bundle.display()),
            None => outln!("  bundle   tiffin.sigstore.json in the package"),
        }
    } else {
        let package = report.package.iter().flat_map(|p| &p.problems);
        print_problems(args, report.problems.iter().chain(package));
    }
    Ok(outcome(args, report.is_ok()))
}

fn print_verified(report: &Report) {
    outln!(
        "verified {} {} ({}): {} files, {}, {}",
        report.name.as_deref().unwrap_or("?"),
        report.version.as_deref().unwrap_or("?"),
        report.kind,
        report.files_checked,
        HumanBytes(report.bytes_checked),
        report.algorithms.join("+"),
    );
    outln!("  digest   {}", report.digest);
    if report.model_checked {
        outln!("  model    loads; signature matches the graph");
    }
    if let Some(drifts) = &report.examples {
        outln!("  golden examples rerun:");
        super::print_drifts(drifts);
    }
    if let Some(parity) = &report.parity {
        outln!("  parity with the original model's outputs, rerun:");
        super::inspect::print_table(&tiffin_core::examples::parity_table(parity));
    }
}

fn print_problems<'a>(args: &VerifyArgs, problems: impl Iterator<Item = &'a Problem>) {
    let problems: Vec<&Problem> = problems.collect();
    outln!("{}: {} problem(s)", args.path.display(), problems.len());
    for p in problems {
        outln!("  {p}");
    }
}

fn outcome(args: &VerifyArgs, ok: bool) -> Outcome {
    if ok {
        Outcome::Success
    } else {
        if !args.json {
            eprintln!("error: {} failed verification", args.path.display());
        }
        Outcome::Failure
    }
}
