//! `tiffin inspect`: show what a package holds.

use indicatif::HumanBytes;
use tiffin_core::inspect;
use tiffin_core::manifest::{Dim, TensorSpec};

use crate::Outcome;
use crate::args::InspectArgs;

pub(crate) fn run(args: &InspectArgs) -> anyhow::Result<Outcome> {
    let info = inspect(&tiffin_store::resolve(&args.path)?)?;
    if args.json {
        super::print_json(&info)?;
        return Ok(Outcome::Success);
    }
    let m = &info.manifest;
    outln!("{} {}", m.name, m.version);
    if let Some(description) = &m.description {
        outln!("  {description}");
    }
    outln!();
    let field = |label: &str, value: Option<String>| {
        if let Some(value) = value {
            outln!("{label:<11}{value}");
        }
    };
    field("digest", Some(info.digest.clone()));
    field("created", Some(m.created.clone()));
    field("license", m.license.clone());
    field(
        "authors",
        (!m.authors.is_empty()).then(|| m.authors.join(", ")),
    );
    field(
        "framework",
        m.framework
            .as_ref()
            .map(|f| format!("{} {}", f.name, f.version.as_deref().unwrap_or(""))),
    );
    let opset = m
        .model
        .opset
        .map(|o| format!(", opset {o}"))
        .unwrap_or_default();
    field(
        "model",
        Some(format!("{} ({}{opset})", m.model.path, m.model.format)),
    );
    field(
        "training",
        m.training
            .as_ref()
            .and_then(|t| t.commit.clone())
            .map(|c| format!("commit {c}")),
    );

    for (title, tensors) in [
        ("inputs", &m.signature.inputs),
        ("outputs", &m.signature.outputs),
    ] {
        outln!("\n{title}");
        let width = tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in tensors {
            outln!(
                "  {:<width$}  {:<6} {}{}",
                t.name,
                t.dtype.as_str(),
                shape(t),
                notes(t)
            );
        }
    }

    if let Some(parity) = m.examples.as_ref().and_then(|e| e.parity.as_ref()) {
        let source = parity
            .source
            .as_ref()
            .map_or_else(|| "the original model".to_owned(), ToString::to_string);
        outln!("\nparity with the original model ({source}), measured at pack time");
        print_table(&tiffin_core::examples::parity_table(&parity.outputs));
    } else if m.examples.is_some() {
        outln!(
            "\nparity with the original model: not recorded (give [examples] expected when \
             packing)"
        );
    }

    outln!(
        "\nfiles ({} in {})",
        m.files.len(),
        HumanBytes(info.files_size)
    );
    let width = m.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
    for f in &m.files {
        let role = serde_json::to_value(f.role)?;
        outln!(
            "  {:<width$}  {:<12} {:>10}  sha256:{}",
            f.path,
            role.as_str().unwrap_or_default(),
            HumanBytes(f.size).to_string(),
            &f.sha256[..16]
        );
    }
    Ok(Outcome::Success)
}

/// A table from `parity_table`, indented like the rest of the listing.
pub(crate) fn print_table(table: &str) {
    for line in table.lines() {
        outln!("  {line}");
    }
}

fn shape(t: &TensorSpec) -> String {
    let dims: Vec<String> = t
        .shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Named(name) => name.clone(),
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

fn notes(t: &TensorSpec) -> String {
    let mut out = String::new();
    if let Some(features) = &t.feature_names {
        out.push_str(&format!("  features: {}", abbreviate(features)));
    }
    if let Some(classes) = &t.class_labels {
        out.push_str(&format!("  classes: {}", abbreviate(classes)));
    }
    out
}

/// The first few names and a count of the rest, so a 30-feature input fits on one line.
fn abbreviate(names: &[String]) -> String {
    const SHOWN: usize = 4;
    let head = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        format!("{head}, … ({} in all)", names.len())
    } else {
        head
    }
}
