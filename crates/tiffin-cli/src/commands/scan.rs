//! `tiffin scan`: what a pickle would import, and why tiffin will not package it.

use anyhow::Context;
use tiffin_core::scan;

use crate::Outcome;
use crate::args::ScanArgs;

/// Decompressed joblib streams are read up to this size; what lies beyond is not scanned.
const INFLATE_LIMIT: u64 = 4 << 30;

pub(crate) fn run(args: &ScanArgs) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = scan::scan(&name, &bytes, INFLATE_LIMIT);
    let dangerous = report.dangerous().count();
    if args.json {
        super::print_json(&report)?;
    } else if report.format.is_none() && report.imports.is_empty() {
        outln!(
            "{}: not a pickle, joblib or torch file; nothing imports code",
            args.file.display()
        );
    } else {
        let format = report
            .format
            .map_or("not a recognised pickle format".to_owned(), |f| {
                f.to_string()
            });
        outln!(
            "{}: {format}, protocol {}, {} opcodes read",
            args.file.display(),
            report.protocol,
            report.opcodes
        );
        if let Some(reason) = &report.stopped {
            outln!("  stopped early: {reason}");
        }
        if !report.imports.is_empty() {
            outln!("\n  {:>8}  {:<13} import", "offset", "opcode");
            for i in &report.imports {
                let verdict = if i.plain_data {
                    "plain data"
                } else {
                    "RUNS CODE"
                };
                outln!(
                    "  {:>8}  {:<13} {:<60} {verdict}",
                    i.offset,
                    i.opcode,
                    i.name
                );
            }
        }
        outln!();
        if dangerous > 0 {
            outln!(
                "{dangerous} import(s) can run code when this file is loaded. Export the model instead: \
                 skl2onnx for scikit-learn, torch.onnx.export for PyTorch; then `tiffin pack` the ONNX file."
            );
        } else if !report.bounded {
            outln!("no import that runs code was found");
        }
        if report.bounded {
            outln!(
                "the scan stopped at a bound before the end, so this file is not known to be \
                 safe: treat it as unsafe, and export the model to ONNX instead"
            );
        }
    }
    // A scan that stopped at a bound read only part of the file: it cannot vouch for the rest.
    Ok(if dangerous > 0 || report.bounded {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}
