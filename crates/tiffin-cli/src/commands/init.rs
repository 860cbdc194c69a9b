//! `tiffin init`: a tiffin.toml beside a model, signature read from the graph.

use anyhow::{Context, bail};

use crate::Outcome;
use crate::args::InitArgs;

pub(crate) fn run(args: &InitArgs) -> anyhow::Result<Outcome> {
    let authoring = tiffin_core::authoring_for(&args.model, args.name.as_deref(), &args.version)?;
    let text = tiffin_core::render_toml(&authoring);
    if args.stdout {
        out!("{text}");
        return Ok(Outcome::Success);
    }
    let dir = args
        .model
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let dest = dir.join("tiffin.toml");
    if dest.exists() && !args.force {
        bail!(
            "{} already exists: pass --force to replace it, or --stdout to print the new one",
            dest.display()
        );
    }
    std::fs::write(&dest, &text).with_context(|| format!("cannot write {}", dest.display()))?;
    let sig = &authoring.signature;
    outln!(
        "wrote {} for {} ({} input(s), {} output(s)); fill in the metadata, then run `tiffin pack {}`",
        dest.display(),
        args.model.display(),
        sig.inputs.len(),
        sig.outputs.len(),
        dir.display()
    );
    let per_shape = &authoring.runtime.per_shape_dims;
    if !per_shape.is_empty() {
        outln!(
            "tract cannot type this graph with {} as symbols: it types and optimizes the model \
             for each combination of their sizes on its first call (kept, least recently used \
             out); recorded as [runtime] per_shape_dims",
            per_shape
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Outcome::Success)
}
