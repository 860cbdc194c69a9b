//! The model card tiffin writes when the authoring folder has none, built from the metadata.
//!
//! It follows the Hugging Face model card layout (YAML front matter, then the usual sections), so
//! that model hubs and people read it the same way. Sections the metadata cannot fill say so and
//! name the `tiffin.toml` field or file that would fill them.

use std::collections::BTreeMap;
use std::fmt::Write;

use tiffin_manifest::{Authoring, Dim, ParityResult, TensorSpec};

/// Renders the card for an authoring file; with `parity` (what pack measured against the
/// original model's outputs), the evaluation section shows it.
pub fn render(a: &Authoring, parity: Option<&BTreeMap<String, ParityResult>>) -> String {
    let p = &a.package;
    let mut s = String::new();
    s.push_str("---\n");
    if let Some(license) = &p.license {
        let _ = writeln!(s, "license: {}", yaml_str(&license.to_ascii_lowercase()));
    }
    if let Some(framework) = &a.framework {
        let _ = writeln!(s, "library_name: {}", yaml_str(&framework.name));
    }
    if !p.tags.is_empty() {
        s.push_str("tags:\n");
        for tag in &p.tags {
            let _ = writeln!(s, "  - {}", yaml_str(tag));
        }
    }
    if let Some(data) = a.training.as_ref().and_then(|t| t.data.as_ref()) {
        let _ = writeln!(s, "datasets:\n  - {}", yaml_str(data));
    }
    s.push_str("---\n\n");

    let _ = writeln!(s, "# {} {}\n", p.name, p.version);
    let missing = |field: &str| format!("_Not stated: set `{field}` in tiffin.toml._");
    let _ = writeln!(
        s,
        "{}\n",
        p.description
            .clone()
            .unwrap_or_else(|| missing("package.description"))
    );

    s.push_str("## Intended use\n\n");
    let _ = writeln!(
        s,
        "{}\n",
        p.intended_use
            .clone()
            .unwrap_or_else(|| missing("package.intended_use"))
    );

    s.push_str("## Training\n\n");
    match &a.training {
        Some(t) => {
            for (label, value) in [
                ("Data", &t.data),
                ("Code", &t.repository),
                ("Commit", &t.commit),
            ] {
                if let Some(value) = value {
                    let _ = writeln!(s, "- {label}: {value}");
                }
            }
            s.push('\n');
        }
        None => {
            let _ = writeln!(s, "{}\n", missing("[training]"));
        }
    }
    if let Some(framework) = &a.framework {
        let version = framework.version.as_deref().unwrap_or("unknown version");
        let _ = writeln!(s, "Trained with {} ({version}).\n", framework.name);
    }

    // The metrics come first and stay "not stated" with parity shown: agreement with the original
    // model is no evaluation of the model, and doctor keeps asking for the metrics.
    s.push_str(
        "## Evaluation\n\n_Not stated: write your own card (`package.model_card`) with the metrics.\n\n",
    );
    if let Some(results) = parity {
        let source = a
            .examples
            .as_ref()
            .and_then(|e| e.expected_from.as_ref())
            .or(a.framework.as_ref())
            .map_or_else(|| "the original model".to_owned(), |f| f.to_string());
        let _ = writeln!(
            s,
            "### Agreement with the original model\n\n\
             Measured when the package was made: the packaged model's outputs on the example \
             inputs against the original model's outputs on the same inputs ({source}), kept in \
             `examples/expected.json`. `tiffin verify` measures again.\n"
        );
        s.push_str(&crate::examples::parity_markdown(results));
        s.push('\n');
    }
    s.push_str("## Limitations\n\n_Not stated: write your own card (`package.model_card`) with the known limits.\n\n");

    s.push_str("## Signature\n\n| | name | dtype | shape |\n|---|---|---|---|\n");
    for (kind, tensors) in [
        ("input", &a.signature.inputs),
        ("output", &a.signature.outputs),
    ] {
        for t in tensors.iter() {
            let _ = writeln!(
                s,
                "| {kind} | `{}` | {} | {} |",
                t.name,
                t.dtype.as_str(),
                shape(t)
            );
        }
    }
    s.push('\n');

    s.push_str("## License\n\n");
    let _ = writeln!(
        s,
        "{}",
        p.license
            .clone()
            .unwrap_or_else(|| missing("package.license"))
    );
    s
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

/// A YAML scalar, quoted when plain style could be misread.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_. /+".contains(c))
        && !s.starts_with([' ', '-', '.'])
        && !s.ends_with(' ');
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars_are_quoted_when_needed() {
        assert_eq!(yaml_str("apache-2.0"), "apache-2.0");
        assert_eq!(yaml_str("s3://bucket/x: y"), "\"s3://bucket/x: y\"");
        assert_eq!(yaml_str("- dash"), "\"- dash\"");
    }
}
