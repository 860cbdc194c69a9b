//! `tiffin predict`: run a package's model on a JSON payload.

use std::io::Read;

use anyhow::Context;
use tiffin_core::runtime::LoadOptions;

use crate::Outcome;
use crate::args::PredictArgs;

pub(crate) fn run(args: &PredictArgs) -> anyhow::Result<Outcome> {
    let text = match args.input.as_deref() {
        Some(file) if file.starts_with('@') => std::fs::read_to_string(&file[1..])
            .with_context(|| format!("cannot read {}", &file[1..]))?,
        Some(inline) => inline.to_owned(),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the payload from standard input")?;
            text
        }
    };
    let payload: serde_json::Value =
        serde_json::from_str(&text).context("the payload is not JSON")?;
    let package = tiffin_store::resolve(&args.package)?;
    // One call: a plan concretized for its size would cost more to build than it saves.
    let options = LoadOptions::default()
        .with_plan_cache(0)
        .with_threads(args.threads)
        .with_runtime(args.runtime.runtime());
    let loaded = tiffin_core::load(&package, &options)?;
    let outputs = loaded.predict_json(&payload, !args.raw).map_err(|e| {
        // A model packed and checked on another engine fails with the way to run it.
        match tiffin_core::unchecked_runtime_note(&loaded.manifest, &options.runtime) {
            Some(note) => anyhow::Error::new(e).context(note),
            None => e.into(),
        }
    })?;
    outln!("{}", serde_json::to_string(&outputs)?);
    Ok(Outcome::Success)
}
