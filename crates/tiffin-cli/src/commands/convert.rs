//! `tiffin convert`: ONNX package to NNEF package, with a parity check on the golden examples.

use tiffin_core::{ConvertOptions, convert_to_nnef};

use crate::Outcome;
use crate::args::{ConvertArgs, TargetFormat};

pub(crate) fn run(args: &ConvertArgs) -> anyhow::Result<Outcome> {
    let TargetFormat::Nnef = args.to;
    let package = tiffin_store::resolve(&args.package)?;
    // Beside a package of the store would be inside the store: the current folder instead.
    let from_store = package != args.package;
    let options = ConvertOptions {
        package,
        out: args
            .out
            .clone()
            .or_else(|| from_store.then(|| std::path::PathBuf::from("."))),
        force: args.force,
    };
    let conversion = convert_to_nnef(&options)?;
    if args.json {
        let mut value = serde_json::to_value(&conversion)?;
        if let Some(packed) = &conversion.packed {
            value["folder"] = serde_json::json!(packed.folder);
            value["archive"] = serde_json::json!(packed.archive);
            value["digest"] = serde_json::json!(format!("sha256:{}", packed.digest));
        }
        super::print_json(&value)?;
    } else {
        outln!("drift of the golden outputs, NNEF against the package's golden values:");
        super::print_drifts(&conversion.drifts);
        outln!(
            "load + optimize: ONNX {:.1} ms, NNEF {:.1} ms",
            conversion.onnx_load_ms,
            conversion.nnef_load_ms
        );
        if let Some(packed) = &conversion.packed {
            outln!(
                "packed {} {}",
                packed.manifest.name,
                packed.manifest.version
            );
            outln!("  folder   {}", packed.folder.display());
            outln!("  archive  {}", packed.archive.display());
            outln!("  digest   sha256:{}", packed.digest);
        }
    }
    if conversion.passed() {
        Ok(Outcome::Success)
    } else {
        eprintln!("error: the converted model drifted beyond tolerance; nothing was written");
        Ok(Outcome::Failure)
    }
}
