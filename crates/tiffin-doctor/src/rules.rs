//! The rules that judge metadata alone (version, metadata, device, size) and the unsafe-format
//! check of an authoring folder, and `run_all`, which runs every rule in report order.

use std::fs::File;
use std::io::Read;

use tiffin_manifest::FileRole;

use super::subject::Subject;
use super::{Findings, Location, Rule, SubjectKind, card, deps, human_size, line_of, model};
use tiffin_core::{Error, Result, safety};

/// Runs every rule on `subject`. Rules that cannot run say why in the report's `skipped`.
pub(crate) fn run_all(
    subject: &Subject,
    options: &super::DoctorOptions,
    findings: &mut Findings,
) -> Result<()> {
    if subject.kind == SubjectKind::Authoring {
        findings.pass_unless_flagged(
            Rule::Integrity,
            "tiffin.toml is valid and every file it names is a regular file in the folder \
             (digests are made by pack)",
        );
        unsafe_formats(subject, findings)?;
    } else if !findings.flagged(Rule::UnsafeFormats) && subject.meta.is_some() {
        findings.pass_unless_flagged(
            Rule::UnsafeFormats,
            format!(
                "none of the {} files is a pickle, joblib or torch zip (checked by content)",
                subject.files.len()
            ),
        );
    }
    let Some(meta) = &subject.meta else {
        for rule in super::Rule::ALL {
            if !findings.flagged(rule) {
                findings.skip(rule, "the metadata could not be read");
            }
        }
        return Ok(());
    };
    version(subject, &meta.version, findings);
    if options.skip.contains(&Rule::Signature) && options.skip.contains(&Rule::Preprocessing) {
        // Nothing left for the model step to report: do not pay for loading the model.
    } else if !options.run_model {
        findings.skip(
            Rule::Signature,
            "the model is not loaded here (pack checks it itself)",
        );
        findings.skip(Rule::Preprocessing, "the model is not loaded here");
    } else if !subject.content_ok {
        findings.skip(
            Rule::Signature,
            "the package failed integrity; fix that first",
        );
        findings.skip(
            Rule::Preprocessing,
            "the package failed integrity; fix that first",
        );
    } else {
        model::check(subject, meta, options.payload.as_deref(), findings)?;
    }
    if subject.content_ok {
        deps::check(subject, meta, findings);
        card::check(subject, findings);
    } else {
        findings.skip(
            Rule::Dependencies,
            "the package failed integrity; fix that first",
        );
        findings.skip(
            Rule::ModelCard,
            "the package failed integrity; fix that first",
        );
    }
    parity(subject, findings);
    metadata(subject, findings);
    device(subject, findings);
    size(subject, findings);
    Ok(())
}

/// `parity`: evidence that the export is faithful, the original model's outputs compared with
/// the packaged model's. Golden examples alone prove only that the package reproduces itself.
fn parity(subject: &Subject, findings: &mut Findings) {
    let fix = "give the original model's outputs on the example inputs: `expected = \
               \"expected.json\"` in [examples] of tiffin.toml, \
               then pack again";
    match subject.kind {
        SubjectKind::Authoring => match &subject.expected {
            Some(file) => findings.pass_unless_flagged(
                Rule::Parity,
                format!("pack compares the model with the original model's outputs in `{file}`"),
            ),
            None => findings.warn(
                Rule::Parity,
                "no original model's outputs: the golden examples will prove the package \
                 reproduces itself, not that the export was faithful",
                fix,
                Location::line(subject.meta_file, line_of(&subject.meta_text, "[examples]")),
            ),
        },
        _ => {
            let parity = subject
                .manifest
                .as_ref()
                .and_then(|m| m.examples.as_ref())
                .and_then(|e| e.parity.as_ref());
            let Some(parity) = parity else {
                findings.warn(
                    Rule::Parity,
                    "no parity with the original model is recorded: the package proves it \
                     reproduces itself, not that the export was faithful",
                    fix,
                    None,
                );
                return;
            };
            let source = parity
                .source
                .as_ref()
                .map_or_else(|| "the original model".to_owned(), ToString::to_string);
            for (name, r) in parity.outputs.iter().filter(|(_, r)| r.mismatches > 0) {
                findings.warn(
                    Rule::Parity,
                    format!(
                        "output `{name}`: {} of {} values differ from {source}'s, within the \
                         {:.2}% agreement the author allowed",
                        r.mismatches,
                        r.compared,
                        r.tolerance.min_agreement * 100.0
                    ),
                    "check the cause the author gave (a float32 tree threshold, say) before \
                     relying on those outputs",
                    Some(Location {
                        file: parity.expected.clone(),
                        line: None,
                    }),
                );
            }
            let compared: u64 = parity.outputs.values().map(|r| r.compared).sum();
            let max_abs = parity
                .outputs
                .values()
                .map(|r| r.max_abs)
                .fold(0.0, f64::max);
            findings.pass_unless_flagged(
                Rule::Parity,
                format!(
                    "agrees with {source}'s outputs on {compared} values of {} output(s) (max \
                     abs difference {max_abs:.1e}), measured when packed",
                    parity.outputs.len()
                ),
            );
        }
    }
}

fn meta_location(subject: &Subject, key: &str) -> Option<Location> {
    let needle = match subject.kind {
        SubjectKind::Authoring => key.to_owned(),
        _ => format!("\"{key}\""),
    };
    Location::line(subject.meta_file, line_of(&subject.meta_text, &needle))
}

/// `version`: a semantic version. The local store it should also be checked against does not
/// exist yet, and the pass message says so rather than pretending.
fn version(subject: &Subject, version: &str, findings: &mut Findings) {
    match semver::Version::parse(version) {
        Ok(v) => findings.pass_unless_flagged(
            Rule::Version,
            format!(
                "{v} is a semantic version (not compared with a local store: tiffin has none yet)"
            ),
        ),
        Err(e) => findings.fail(
            Rule::Version,
            format!("`{version}` is not a semantic version: {e}"),
            "write MAJOR.MINOR.PATCH, e.g. version = \"1.0.0\"",
            meta_location(subject, "version"),
        ),
    }
}

/// `unsafe-formats` for an authoring folder: every file pack would copy, by content. (A
/// package's files are sniffed by `verify`.)
fn unsafe_formats(subject: &Subject, findings: &mut Findings) -> Result<()> {
    for (path, source) in &subject.sources {
        let mut head = Vec::with_capacity(safety::HEAD_LEN);
        File::open(source)
            .and_then(|f| f.take(safety::HEAD_LEN as u64).read_to_end(&mut head))
            .map_err(Error::read(source))?;
        if let Some(format) = safety::sniff(path, &head) {
            findings.fail(
                Rule::UnsafeFormats,
                format!("`{path}` is {format}: loading it runs arbitrary code"),
                "export the model to ONNX (skl2onnx, torch.onnx.export) or NNEF and package that \
                 instead; `tiffin scan FILE` lists what the pickle would import",
                Location::file(path.clone()),
            );
        }
    }
    findings.pass_unless_flagged(
        Rule::UnsafeFormats,
        format!(
            "none of the {} files to pack is a pickle, joblib or torch zip (checked by content)",
            subject.sources.len()
        ),
    );
    Ok(())
}

/// `metadata`: an SPDX license, authors, the training commit, a creation time not in the future.
fn metadata(subject: &Subject, findings: &mut Findings) {
    let Some(meta) = &subject.meta else { return };
    let toml = subject.kind == SubjectKind::Authoring;
    let field = |toml_name: &'static str, json_name: &'static str| {
        if toml { toml_name } else { json_name }
    };
    match meta.license.as_deref() {
        None => findings.warn(
            Rule::Metadata,
            "no license: nobody can tell whether they may use the model",
            format!(
                "set {} to an SPDX expression, e.g. \"MIT\" or \"CC-BY-4.0\"",
                field("package.license", "license in tiffin.toml")
            ),
            Location::file(subject.meta_file),
        ),
        Some("NOASSERTION") => findings.warn(
            Rule::Metadata,
            "the license is NOASSERTION: unknown to its authors",
            "find out the license of the model and its training data, and state it",
            meta_location(subject, "license"),
        ),
        Some(license) => match spdx::Expression::parse(license) {
            Ok(expr) => {
                let deprecated: Vec<String> = expr
                    .requirements()
                    .filter_map(|r| r.req.license.id())
                    .filter(|id| id.is_deprecated())
                    .map(|id| id.name.to_owned())
                    .collect();
                if !deprecated.is_empty() {
                    findings.warn(
                        Rule::Metadata,
                        format!(
                            "the license uses deprecated SPDX ids: {}",
                            deprecated.join(", ")
                        ),
                        "use the current id (e.g. GPL-2.0-only for GPL-2.0); see spdx.org/licenses",
                        meta_location(subject, "license"),
                    );
                }
            }
            Err(e) => findings.fail(
                Rule::Metadata,
                format!(
                    "`{license}` is not a valid SPDX license expression: {}",
                    e.reason
                ),
                "use ids from spdx.org/licenses joined by AND, OR or WITH, e.g. \"MIT OR Apache-2.0\"; \
                 LicenseRef-<name> for a license of your own",
                meta_location(subject, "license"),
            ),
        },
    }
    if meta.authors.is_empty() {
        findings.warn(
            Rule::Metadata,
            "no authors: nobody to ask about the model",
            "set package.authors, e.g. [\"Ada <ada@example.com>\"]",
            Location::file(subject.meta_file),
        );
    }
    if meta
        .training
        .as_ref()
        .and_then(|t| t.commit.as_ref())
        .is_none()
    {
        findings.warn(
            Rule::Metadata,
            "no training commit: the model cannot be traced back to the code that trained it",
            "set training.commit to `git rev-parse HEAD` of the training code (and \
             training.repository)",
            meta_location(subject, "[training]").or_else(|| Location::file(subject.meta_file)),
        );
    }
    match meta.created.as_deref() {
        None => {}
        Some(created) => match created.parse::<jiff::Timestamp>() {
            Ok(t) if t > jiff::Timestamp::now() => findings.fail(
                Rule::Metadata,
                format!("created {created} is in the future"),
                "set created to when the model was made (or leave it out of tiffin.toml: pack \
                 takes SOURCE_DATE_EPOCH or the files' times)",
                meta_location(subject, "created"),
            ),
            Ok(_) => {}
            Err(e) => findings.fail(
                Rule::Metadata,
                format!("created `{created}` is not an RFC 3339 time: {e}"),
                "write a date, a time and an offset, e.g. 2024-05-01T12:00:00Z",
                meta_location(subject, "created"),
            ),
        },
    }
    findings.pass_unless_flagged(
        Rule::Metadata,
        format!(
            "license {}, {} author(s), training commit recorded, creation time {}",
            meta.license.as_deref().unwrap_or("?"),
            meta.authors.len(),
            if meta.created.is_some() {
                "in the past"
            } else {
                "set by pack"
            }
        ),
    );
}

/// Whether this machine has a CPU feature: `None` for a name tiffin does not know.
fn cpu_has(name: &str) -> Option<bool> {
    const X86: &[&str] = &[
        "sse",
        "sse2",
        "sse3",
        "ssse3",
        "sse4.1",
        "sse4.2",
        "popcnt",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "bmi1",
        "bmi2",
        "lzcnt",
        "avx512f",
        "avx512bw",
        "avx512cd",
        "avx512dq",
        "avx512vl",
        "avx512vnni",
        "avxvnni",
    ];
    const ARM: &[&str] = &[
        "neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2", "fhm",
    ];
    let name = name.to_ascii_lowercase();
    if X86.contains(&name.as_str()) {
        return Some(x86_has(&name));
    }
    if ARM.contains(&name.as_str()) {
        return Some(arm_has(&name));
    }
    None
}

#[cfg(target_arch = "x86_64")]
fn x86_has(name: &str) -> bool {
    // The detection macro takes literals only, hence one arm per feature.
    match name {
        "sse" => std::arch::is_x86_feature_detected!("sse"),
        "sse2" => std::arch::is_x86_feature_detected!("sse2"),
        "sse3" => std::arch::is_x86_feature_detected!("sse3"),
        "ssse3" => std::arch::is_x86_feature_detected!("ssse3"),
        "sse4.1" => std::arch::is_x86_feature_detected!("sse4.1"),
        "sse4.2" => std::arch::is_x86_feature_detected!("sse4.2"),
        "popcnt" => std::arch::is_x86_feature_detected!("popcnt"),
        "avx" => std::arch::is_x86_feature_detected!("avx"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        "f16c" => std::arch::is_x86_feature_detected!("f16c"),
        "bmi1" => std::arch::is_x86_feature_detected!("bmi1"),
        "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
        "lzcnt" => std::arch::is_x86_feature_detected!("lzcnt"),
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
        "avx512cd" => std::arch::is_x86_feature_detected!("avx512cd"),
        "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
        "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
        "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
        "avxvnni" => std::arch::is_x86_feature_detected!("avxvnni"),
        _ => false,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn x86_has(_name: &str) -> bool {
    false
}

#[cfg(target_arch = "aarch64")]
fn arm_has(name: &str) -> bool {
    match name {
        "neon" => std::arch::is_aarch64_feature_detected!("neon"),
        "fp16" => std::arch::is_aarch64_feature_detected!("fp16"),
        "dotprod" => std::arch::is_aarch64_feature_detected!("dotprod"),
        "i8mm" => std::arch::is_aarch64_feature_detected!("i8mm"),
        "bf16" => std::arch::is_aarch64_feature_detected!("bf16"),
        "sve" => std::arch::is_aarch64_feature_detected!("sve"),
        "sve2" => std::arch::is_aarch64_feature_detected!("sve2"),
        "fhm" => std::arch::is_aarch64_feature_detected!("fhm"),
        _ => false,
    }
}

#[cfg(not(target_arch = "aarch64"))]
fn arm_has(_name: &str) -> bool {
    false
}

/// Total memory of this machine in MiB, where the system says (Linux).
fn memory_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// `device`: the declared CPU features are present here, no GPU is required, enough memory.
fn device(subject: &Subject, findings: &mut Findings) {
    let Some(meta) = &subject.meta else { return };
    let d = &meta.device;
    let at = meta_location(
        subject,
        if subject.kind == SubjectKind::Authoring {
            "[device]"
        } else {
            "device"
        },
    );
    if d.gpu {
        findings.fail(
            Rule::Device,
            "declares gpu = true: not runnable here, tiffin runs models on the CPU through tract",
            "set device.gpu = false if the model runs on a CPU (tiffin checks it does when it \
             packs), or serve it with a GPU runtime",
            at.clone(),
        );
    }
    for feature in &d.cpu_features {
        match cpu_has(feature) {
            Some(true) => {}
            Some(false) => findings.fail(
                Rule::Device,
                format!(
                    "needs the CPU feature `{feature}`, which this machine lacks: not runnable here"
                ),
                "run it on a machine with that feature, or drop it from device.cpu_features if \
                 the model does not really need it",
                at.clone(),
            ),
            None => findings.warn(
                Rule::Device,
                format!("needs the CPU feature `{feature}`, which tiffin cannot check"),
                "use the names of Rust's feature detection, e.g. avx2, fma, avx512f, neon",
                at.clone(),
            ),
        }
    }
    if let (Some(needed), Some(total)) = (d.min_memory_mb, memory_mb())
        && total < needed
    {
        findings.warn(
            Rule::Device,
            format!("needs {needed} MiB of memory; this machine has {total} MiB"),
            "run it on a machine with more memory",
            at.clone(),
        );
    }
    let features = if d.cpu_features.is_empty() {
        "no particular CPU feature".to_owned()
    } else {
        format!(
            "CPU features {}, present on this machine",
            d.cpu_features.join(", ")
        )
    };
    findings.pass_unless_flagged(Rule::Device, format!("needs no GPU and {features}"));
}

/// Files above this size with the role `extra` are flagged: nothing in the package reads them.
const LARGE_EXTRA: u64 = 1 << 20;

/// `size`: flags large files nothing refers to, and a package much bigger than its model.
fn size(subject: &Subject, findings: &mut Findings) {
    let total: u64 = subject.files.iter().map(|f| f.size).sum();
    let model: u64 = subject
        .files
        .iter()
        .filter(|f| f.role == FileRole::Model)
        .map(|f| f.size)
        .sum();
    let mut extras: Vec<_> = subject
        .files
        .iter()
        .filter(|f| f.role == FileRole::Extra && f.size >= LARGE_EXTRA.max(model))
        .collect();
    extras.sort_by_key(|f| std::cmp::Reverse(f.size));
    for f in &extras {
        findings.warn(
            Rule::Size,
            format!(
                "`{}` ({}) has the role extra: no part of the manifest refers to it, and it is \
                 larger than the model ({})",
                f.path,
                human_size(f.size),
                human_size(model)
            ),
            "drop it from [[files]] if it was packed by mistake (a training data set?), or give \
             it the role it has (environment, example)",
            Location::file(f.path.clone()),
        );
    }
    let rest = total - model;
    if extras.is_empty() && rest > model.max(LARGE_EXTRA) * 2 {
        let largest = subject
            .files
            .iter()
            .filter(|f| f.role != FileRole::Model)
            .max_by_key(|f| f.size);
        findings.warn(
            Rule::Size,
            format!(
                "the package is {} but its model only {}: the other files take {}{}",
                human_size(total),
                human_size(model),
                human_size(rest),
                largest
                    .map(|f| format!(", the largest being `{}` ({})", f.path, human_size(f.size)))
                    .unwrap_or_default()
            ),
            "check that every large file belongs in the package",
            None,
        );
    }
    let share = if total == 0 {
        0.0
    } else {
        model as f64 * 100.0 / total as f64
    };
    findings.pass_unless_flagged(
        Rule::Size,
        format!(
            "{} files, {} in all; the model is {} ({share:.0}%)",
            subject.files.len(),
            human_size(total),
            human_size(model)
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_feature_names_are_known_or_not() {
        assert_eq!(cpu_has("no-such-feature"), None);
        // Every x86-64 CPU has SSE2 and no aarch64 CPU lacks NEON; the other architecture's
        // features are always absent.
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            (cpu_has("sse2"), cpu_has("neon")),
            (Some(true), Some(false))
        );
        #[cfg(target_arch = "aarch64")]
        assert_eq!(
            (cpu_has("neon"), cpu_has("avx2")),
            (Some(true), Some(false))
        );
    }
}
