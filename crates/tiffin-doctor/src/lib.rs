//! `doctor`: the packaging checklist as named rules, run on an authoring folder before packing or
//! on a package after, each finding with a level, a message, the fix and where it applies.
//!
//! Every rule reuses the part of the core that owns the question: `verify` for integrity, the
//! `safety` sniffer for unsafe formats, the runtime for the signature and the examples. What is
//! new here is the judgement on top (pinned dependencies, the model card, metadata, device, size,
//! preprocessing heuristics) and one report that says what passes, what warns and what fails.

mod card;
mod deps;
mod model;
mod rules;
mod subject;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use tiffin_manifest::FileRole;

use tiffin_core::layout::{AUTHORING_FILE, MANIFEST_FILE};
use tiffin_core::{Error, Result};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The rule holds.
    Pass,
    /// Worth fixing, but the package is usable; `--strict` turns warnings into a non-zero exit.
    Warn,
    /// The package is broken or unsafe for this rule; `pack` refuses to pack on one.
    Fail,
}

impl Level {
    /// `pass`, `warn` or `fail`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Pass => "pass",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rules `doctor` checks, in the order it reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Digests verify, the file list is exact, `checksum.txt` agrees; for an authoring folder,
    /// `tiffin.toml` is valid and every file it names exists.
    Integrity,
    /// The version is a semantic version.
    Version,
    /// The signature matches the graph, its dynamic dims are meaningfully named, and a real
    /// payload (`--payload`, or the golden examples) conforms and runs.
    Signature,
    /// Every environment file pins its dependencies.
    Dependencies,
    /// No pickle, joblib or torch-zip file, recognised by content.
    UnsafeFormats,
    /// Heuristics for preprocessing done outside the model.
    Preprocessing,
    /// The package records its agreement with the original model's outputs (the export was
    /// faithful), or the authoring folder gives them for `pack` to compare.
    Parity,
    /// The model card has the expected sections and Hugging Face style front matter.
    ModelCard,
    /// License (SPDX), authors, training commit, creation time.
    Metadata,
    /// This machine meets the declared device requirements.
    Device,
    /// What takes the space, and files that look packed by mistake.
    Size,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 11] = [
        Rule::Integrity,
        Rule::Version,
        Rule::Signature,
        Rule::Dependencies,
        Rule::UnsafeFormats,
        Rule::Preprocessing,
        Rule::Parity,
        Rule::ModelCard,
        Rule::Metadata,
        Rule::Device,
        Rule::Size,
    ];

    /// The rule id, as `--skip-check` and the JSON report spell it, e.g. `unsafe-formats`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Rule::Integrity => "integrity",
            Rule::Version => "version",
            Rule::Signature => "signature",
            Rule::Dependencies => "dependencies",
            Rule::UnsafeFormats => "unsafe-formats",
            Rule::Preprocessing => "preprocessing",
            Rule::Parity => "parity",
            Rule::ModelCard => "model-card",
            Rule::Metadata => "metadata",
            Rule::Device => "device",
            Rule::Size => "size",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Rule, String> {
        Rule::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Rule::ALL.iter().map(Rule::as_str).collect();
                format!("unknown rule `{s}`: the rules are {}", known.join(", "))
            })
    }
}

/// Where a finding applies: a file (of the package, or of the authoring folder) and a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file, as a path inside the package or the authoring folder.
    pub file: String,
    /// The line, counted from 1, when the finding is about one line.
    pub line: Option<usize>,
}

impl Location {
    pub(crate) fn file(file: impl Into<String>) -> Option<Location> {
        Some(Location {
            file: file.into(),
            line: None,
        })
    }

    pub(crate) fn line(file: impl Into<String>, line: Option<usize>) -> Option<Location> {
        Some(Location {
            file: file.into(),
            line,
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// One result of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// Pass, warn or fail.
    pub level: Level,
    /// What was found, for people.
    pub message: String,
    /// What to do about it; `None` for passes.
    pub fix: Option<String>,
    /// The file and line concerned, where there is one.
    pub location: Option<Location>,
}

/// A rule that did not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The rule.
    pub rule: Rule,
    /// Why it did not run.
    pub reason: String,
}

/// What `doctor` looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A folder holding `tiffin.toml`, before packing.
    Authoring,
    /// A package folder `NAME/VERSION/`.
    Folder,
    /// A package archive `NAME-VERSION.tiffin`.
    Archive,
}

/// One file of the package (or of the package an authoring folder will make) and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSize {
    /// The path inside the package.
    pub path: String,
    /// What the file is for.
    pub role: FileRole,
    /// Bytes.
    pub size: u64,
}

/// What to check and how.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// A sample payload (any JSON form `predict` takes) that must conform to the signature and run.
    pub payload: Option<PathBuf>,
    /// Rules not to run.
    pub skip: Vec<Rule>,
    /// Load the model: check its signature against the graph, run the examples and the payload,
    /// and read its operators for the preprocessing hints. `pack` turns this off, since it loads
    /// and checks the model itself.
    pub run_model: bool,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            payload: None,
            skip: Vec::new(),
            run_model: true,
        }
    }
}

/// Everything `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// The path checked.
    pub path: PathBuf,
    /// Authoring folder, package folder or archive.
    pub kind: SubjectKind,
    /// The package name, when it could be read.
    pub name: Option<String>,
    /// The package version, when it could be read.
    pub version: Option<String>,
    /// Every finding, rule by rule in [`Rule::ALL`] order.
    pub findings: Vec<Finding>,
    /// Rules that did not run, and why.
    pub skipped: Vec<Skipped>,
    /// The package's files and their sizes, the largest first.
    pub files: Vec<FileSize>,
}

impl DoctorReport {
    /// The worst level found; `Pass` when nothing warns or fails.
    pub fn worst(&self) -> Level {
        self.findings
            .iter()
            .map(|f| f.level)
            .max()
            .unwrap_or(Level::Pass)
    }

    /// How many findings have `level`.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

/// Collects findings as the rules run.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    list: Vec<Finding>,
    skipped: Vec<Skipped>,
}

impl Findings {
    pub(crate) fn push(
        &mut self,
        rule: Rule,
        level: Level,
        message: impl Into<String>,
        fix: Option<String>,
        location: Option<Location>,
    ) {
        self.list.push(Finding {
            rule,
            level,
            message: message.into(),
            fix,
            location,
        });
    }

    pub(crate) fn fail(
        &mut self,
        rule: Rule,
        message: impl Into<String>,
        fix: impl Into<String>,
        location: Option<Location>,
    ) {
        self.push(rule, Level::Fail, message, Some(fix.into()), location);
    }

    pub(crate) fn warn(
        &mut self,
        rule: Rule,
        message: impl Into<String>,
        fix: impl Into<String>,
        location: Option<Location>,
    ) {
        self.push(rule, Level::Warn, message, Some(fix.into()), location);
    }

    /// Records a pass for `rule` unless it already warned or failed: every rule that ran says
    /// something, so a clean report still shows what was checked.
    pub(crate) fn pass_unless_flagged(&mut self, rule: Rule, message: impl Into<String>) {
        if !self.flagged(rule) {
            self.push(rule, Level::Pass, message, None, None);
        }
    }

    /// True when `rule` has a warning or a failure.
    pub(crate) fn flagged(&self, rule: Rule) -> bool {
        self.list
            .iter()
            .any(|f| f.rule == rule && f.level != Level::Pass)
    }

    pub(crate) fn skip(&mut self, rule: Rule, reason: impl Into<String>) {
        if !self.skipped.iter().any(|s| s.rule == rule) {
            self.skipped.push(Skipped {
                rule,
                reason: reason.into(),
            });
        }
    }
}

/// Runs every rule on `path`: an authoring folder (or its `tiffin.toml`), a package folder or a
/// package archive. An `Err` means the path cannot be read or is none of these; problems with
/// the package itself are findings in the report.
pub fn doctor(path: &Path, options: &DoctorOptions) -> Result<DoctorReport> {
    let meta = path.metadata().map_err(Error::read(path))?;
    let authoring_toml = if meta.is_dir() {
        let toml = path.join(AUTHORING_FILE);
        (toml.is_file() && !path.join(MANIFEST_FILE).exists()).then_some(toml)
    } else {
        (path.file_name().and_then(|n| n.to_str()) == Some(AUTHORING_FILE)).then(|| path.to_owned())
    };
    let mut findings = Findings::default();
    let subject = match authoring_toml {
        Some(toml) => subject::authoring(&toml, &mut findings)?,
        None => subject::package(path, &mut findings)?,
    };
    rules::run_all(&subject, options, &mut findings)?;

    let mut list = findings.list;
    list.retain(|f| !options.skip.contains(&f.rule));
    // A stable sort keeps each rule's findings in the order they were found.
    list.sort_by_key(|f| f.rule);
    let mut skipped: Vec<Skipped> = options
        .skip
        .iter()
        .map(|&rule| Skipped {
            rule,
            reason: "skipped on request (--skip-check)".to_owned(),
        })
        .collect();
    for s in findings.skipped {
        if !skipped.iter().any(|k| k.rule == s.rule) {
            skipped.push(s);
        }
    }
    skipped.sort_by_key(|s| s.rule);
    skipped.dedup_by_key(|s| s.rule);
    let mut files = subject.files.clone();
    files.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    Ok(DoctorReport {
        path: path.to_owned(),
        kind: subject.kind,
        name: subject.name.clone(),
        version: subject.version.clone(),
        findings: list,
        skipped,
        files,
    })
}

/// Packs as `tiffin pack` does: once pack's own checks pass (tiffin.toml, the files, the model),
/// the authoring folder is held to every rule except those in `skip` (without loading the model
/// again), and a failure refuses it before anything is written, as [`Error::Checks`] listing
/// each failure with its fix. [`tiffin_core::pack`] alone builds a package that verifies,
/// without this policy (a creation time in the future, a device this machine lacks, a missing
/// licence...).
pub fn pack(
    options: &tiffin_core::PackOptions,
    skip: &[Rule],
    progress: &dyn tiffin_core::hash::Progress,
) -> Result<tiffin_core::Packed> {
    tiffin_core::pack_checked(options, progress, |dir| gate(dir, skip))
}

/// The check [`pack`] runs before writing anything: every rule except those in `skip`, without
/// loading the model, refusing on any failure.
fn gate(authoring_dir: &Path, skip: &[Rule]) -> Result<()> {
    let options = DoctorOptions {
        payload: None,
        skip: skip.to_vec(),
        run_model: false,
    };
    let report = doctor(authoring_dir, &options)?;
    let failures: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.level == Level::Fail)
        .map(|f| {
            let at = f
                .location
                .as_ref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            let fix = f
                .fix
                .as_ref()
                .map(|fix| format!("; fix: {fix}"))
                .unwrap_or_default();
            format!("[{}] {}{at}{fix}", f.rule, f.message)
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Checks {
            path: authoring_dir.to_owned(),
            failures,
        })
    }
}

/// A size for people: `524 B`, `12.3 KiB`, `1.20 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.2} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The number of the first line of `text` that, trimmed, starts with `prefix`.
pub(crate) fn line_of(text: &str, prefix: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_round_trip_and_unknown_ones_list_the_known() {
        for rule in Rule::ALL {
            assert_eq!(rule.as_str().parse::<Rule>().unwrap(), rule);
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::json!(rule.as_str())
            );
        }
        let err = "pickles".parse::<Rule>().unwrap_err();
        assert!(err.contains("unsafe-formats"), "{err}");
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(524), "524 B");
        assert_eq!(human_size(12_595), "12.3 KiB");
        assert_eq!(human_size(1_258_291), "1.20 MiB");
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a = 1\n  license = \"MIT\"\n", "license"), Some(2));
        assert_eq!(line_of("a = 1\n", "license"), None);
    }
}
