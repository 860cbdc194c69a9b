//! `tiffin pack`: build a package folder and archive from an authoring folder.

use indicatif::HumanBytes;
use tiffin_core::PackOptions;

use crate::Outcome;
use crate::args::PackArgs;
use crate::progress::Bar;

pub(crate) fn run(args: &PackArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let options = PackOptions {
        source: args.dir.clone(),
        out: args.out.clone(),
        force: args.force,
        examples: args.examples.clone(),
        runtime: args.runtime.runtime(),
    };
    let bar = Bar::new(quiet, "packing");
    // Held to the doctor's checklist first, as the command promises.
    let packed = tiffin_doctor::pack(&options, &args.skip_check, &bar)?;
    bar.finish();
    let m = &packed.manifest;
    if args.json {
        super::print_json(&serde_json::json!({
            "name": m.name,
            "version": m.version.to_string(),
            "digest": format!("sha256:{}", packed.digest),
            "folder": packed.folder,
            "archive": packed.archive,
            "archive_size": packed.archive_size,
            "files": m.files.len(),
            "parity": m.examples.as_ref().and_then(|e| e.parity.as_ref()).map(|p| &p.outputs),
        }))?;
    } else {
        outln!("packed {} {}", m.name, m.version);
        outln!("  folder   {}", packed.folder.display());
        outln!(
            "  archive  {} ({})",
            packed.archive.display(),
            HumanBytes(packed.archive_size)
        );
        outln!("  digest   sha256:{}", packed.digest);
        if let Some(parity) = m.examples.as_ref().and_then(|e| e.parity.as_ref()) {
            outln!("  parity with the original model's outputs:");
            super::inspect::print_table(&tiffin_core::examples::parity_table(&parity.outputs));
            // An allowed disagreement is stated, never silent.
            for (name, r) in parity.outputs.iter().filter(|(_, r)| r.mismatches > 0) {
                eprintln!(
                    "warning: output `{name}`: {} of {} values differ from the original model's, \
                     within the {:.2}% agreement [examples.parity.{name}] allows",
                    r.mismatches,
                    r.compared,
                    r.tolerance.min_agreement * 100.0
                );
            }
        }
    }
    Ok(Outcome::Success)
}
