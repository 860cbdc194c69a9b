//! `tiffin doctor`: the packaging checklist on an authoring folder or a package, grouped by level.

use indicatif::HumanBytes;
use tiffin_doctor::{DoctorOptions, DoctorReport, Level, SubjectKind, doctor};

use crate::Outcome;
use crate::args::DoctorArgs;

pub(crate) fn run(args: &DoctorArgs) -> anyhow::Result<Outcome> {
    let options = DoctorOptions {
        payload: args.payload.clone(),
        skip: args.skip_check.clone(),
        run_model: true,
    };
    let report = doctor(&tiffin_store::resolve(&args.path)?, &options)?;
    if args.json {
        super::print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(match report.worst() {
        Level::Fail => Outcome::Failure,
        Level::Warn if args.strict => Outcome::Warnings,
        _ => Outcome::Success,
    })
}

/// How many files the breakdown lists; `--json` has them all.
const FILES_SHOWN: usize = 12;

fn print_report(report: &DoctorReport) {
    let what = match report.kind {
        SubjectKind::Authoring => "authoring folder",
        SubjectKind::Folder => "package folder",
        SubjectKind::Archive => "package archive",
    };
    outln!(
        "{} {} ({what} {})",
        report.name.as_deref().unwrap_or("?"),
        report.version.as_deref().unwrap_or("?"),
        report.path.display()
    );
    for (level, title) in [
        (Level::Fail, "FAIL"),
        (Level::Warn, "WARN"),
        (Level::Pass, "PASS"),
    ] {
        let findings: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.level == level)
            .collect();
        if findings.is_empty() {
            continue;
        }
        outln!("\n{title} ({})", findings.len());
        for f in findings {
            outln!("  [{}] {}", f.rule, f.message);
            if let Some(location) = &f.location {
                outln!("      at   {location}");
            }
            if let Some(fix) = &f.fix {
                outln!("      fix  {fix}");
            }
        }
    }
    if !report.files.is_empty() {
        // The breakdown behind the size rule: the largest files first, so a stray data set shows.
        outln!("\nFILES ({}, largest first)", report.files.len());
        let width = report.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
        for f in report.files.iter().take(FILES_SHOWN) {
            let role = serde_json::to_value(f.role).unwrap_or_default();
            outln!(
                "  {:<width$}  {:<12} {:>10}",
                f.path,
                role.as_str().unwrap_or_default(),
                HumanBytes(f.size).to_string()
            );
        }
        if report.files.len() > FILES_SHOWN {
            outln!("  ... and {} smaller", report.files.len() - FILES_SHOWN);
        }
    }
    if !report.skipped.is_empty() {
        outln!("\nSKIPPED ({})", report.skipped.len());
        for s in &report.skipped {
            outln!("  [{}] {}", s.rule, s.reason);
        }
    }
    outln!(
        "\n{} fail, {} warn, {} pass",
        report.count(Level::Fail),
        report.count(Level::Warn),
        report.count(Level::Pass)
    );
}
