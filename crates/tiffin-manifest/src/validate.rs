//! Validation rules shared by the authoring file and the packed manifest, and the
//! types that report every broken rule at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::{Dim, Signature, TensorSpec, Training};

/// One broken rule: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is, as a path into the document, e.g. `package.version`,
    /// `signature.inputs[1].shape[0]` or `files[3].path`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found by a validation, in document order; never empty when returned as
/// an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<Problem>);

impl ValidationErrors {
    /// The problems reported for `field`, so that a caller can check one field.
    pub fn for_field<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a Problem> + 'a {
        self.0.iter().filter(move |p| p.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "- {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Collects problems while a document is checked, so that all of them are reported together.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    pub(crate) fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

/// The longest package path accepted, in bytes: the `PATH_MAX` of Linux, so that every path a
/// package holds can be written below an output folder on the systems tiffin runs on. Real paths
/// are tens of bytes; the bound keeps a hostile manifest, archive member or registry annotation
/// from carrying megabytes in one name.
pub const MAX_PATH_LEN: usize = 4096;

/// The most files a package may list: far more than any model package holds (a model, a card,
/// examples, tokenizer files), few enough that the per-file bookkeeping of verify, pack and pull
/// stays small.
pub const MAX_FILES: usize = 100_000;

/// The problem of a files list longer than [`MAX_FILES`].
pub(crate) fn too_many_files(count: usize) -> String {
    format!(
        "{count} files are listed, more than the bound MAX_FILES ({MAX_FILES}) allows: \
         put many small files into a few larger ones (an archive, a table)"
    )
}

/// Checks that `p` is a portable relative path that stays inside the package.
///
/// Paths in a package are `/`-separated and relative to the package root (the folder of
/// `tiffin.toml` when authoring). Absolute paths, drive letters, backslashes, empty, `.` or
/// `..` components and the names tiffin writes itself (`tiffin.json`, `checksum.txt` and the
/// signature bundle `tiffin.sigstore.json`) are refused, and so is a path longer than
/// [`MAX_PATH_LEN`] bytes. The error message names the path and says how to fix it.
pub fn check_relative_path(p: &str) -> Result<(), String> {
    const FIX: &str = "use a relative path inside the model folder, with `/` between folders, e.g. `data/example.json`";
    let bytes = p.as_bytes();
    if p.is_empty() {
        return Err(format!("the path is empty: {FIX}"));
    }
    // First, so that the other messages, which quote the path, never quote a huge one.
    if p.len() > MAX_PATH_LEN {
        let head: String = p.chars().take(64).collect();
        return Err(format!(
            "`{}...` is {} bytes long, more than the bound MAX_PATH_LEN ({MAX_PATH_LEN}) allows: \
             use a shorter path",
            head.escape_default(),
            p.len()
        ));
    }
    if p.starts_with('/') {
        return Err(format!("`{p}` is absolute: {FIX}"));
    }
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(format!("`{p}` starts with a drive letter: {FIX}"));
    }
    if p.contains('\\') {
        return Err(format!(
            "`{p}` contains a backslash, which is not portable: {FIX}"
        ));
    }
    if p.chars().any(char::is_control) {
        return Err(format!(
            "`{}` contains a control character: {FIX}",
            p.escape_default()
        ));
    }
    for component in p.split('/') {
        match component {
            "" => {
                return Err(format!(
                    "`{p}` has an empty component (`//` or a trailing `/`): {FIX}"
                ));
            }
            "." => return Err(format!("`{p}` has a `.` component: {FIX}")),
            ".." => {
                return Err(format!(
                    "`{p}` contains `..`, which leaves the package: {FIX}"
                ));
            }
            _ => {}
        }
    }
    if p == "tiffin.json" || p == "checksum.txt" {
        return Err(format!(
            "`{p}` is reserved: the packer writes it; rename your file and {FIX}"
        ));
    }
    if p == "tiffin.sigstore.json" {
        return Err(format!(
            "`{p}` is reserved: `tiffin sign` writes it; rename your file and {FIX}"
        ));
    }
    Ok(())
}

/// Whether `name` is a valid package name: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn is_package_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && name.len() <= 64
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Reports `name` unless it is a valid package name.
pub(crate) fn check_name(problems: &mut Problems, field: &str, name: &str) {
    if !is_package_name(name) {
        problems.push(
            field,
            format!(
                "`{name}` is not a valid package name: use 1 to 64 lowercase letters, digits, `.`, `_` or `-`, \
                 starting with a letter or digit, e.g. `breast_cancer` (the name is used in folder names, \
                 archive names and OCI references)"
            ),
        );
    }
}

/// Reports `version` unless it is a semantic version.
pub(crate) fn check_version(problems: &mut Problems, field: &str, version: &str) {
    if let Err(err) = semver::Version::parse(version) {
        problems.push(
            field,
            format!(
                "`{version}` is not a semantic version ({err}): use MAJOR.MINOR.PATCH, e.g. 1.0.0"
            ),
        );
    }
}

/// Reports `license` unless it is a plausible SPDX expression.
pub(crate) fn check_license(problems: &mut Problems, field: &str, license: Option<&str>) {
    if let Some(license) = license
        && !is_spdx_expression(license)
    {
        problems.push(
            field,
            format!(
                "`{license}` is not an SPDX license expression: use SPDX ids joined by AND, OR or WITH, \
                 e.g. `MIT OR Apache-2.0`; write `LicenseRef-<name>` for a license of your own or \
                 `NOASSERTION` if unknown"
            ),
        );
    }
}

/// Reports `created` unless it is an RFC 3339 timestamp.
pub(crate) fn check_created(problems: &mut Problems, field: &str, created: &str) {
    if !is_rfc3339(created) {
        problems.push(
            field,
            format!(
                "`{created}` is not an RFC 3339 timestamp: write a date, a time and an offset, \
                 e.g. `2024-05-01T12:00:00Z`"
            ),
        );
    }
}

/// Reports a training commit that is not a git commit hash.
pub(crate) fn check_training(problems: &mut Problems, field: &str, training: Option<&Training>) {
    let Some(commit) = training.and_then(|t| t.commit.as_deref()) else {
        return;
    };
    let is_hash = (7..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hash {
        problems.push(
            format!("{field}.commit"),
            format!(
                "`{commit}` is not a git commit hash: use 7 to 64 hex characters, \
                 e.g. the output of `git rev-parse HEAD`"
            ),
        );
    }
}

/// Reports `digest` unless it is 64 lowercase hex characters, the form of both SHA-256 and BLAKE3.
pub(crate) fn check_digest(problems: &mut Problems, field: &str, algorithm: &str, digest: &str) {
    let ok = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok {
        problems.push(
            field,
            format!(
                "`{digest}` is not a {algorithm} digest: expected 64 lowercase hex characters; \
                 pack the model again so that tiffin computes it"
            ),
        );
    }
}

/// Checks the signature: tensors, their names, shapes, feature names and class labels.
pub(crate) fn check_signature(problems: &mut Problems, signature: &Signature) {
    for (kind, list, field) in [
        ("input", &signature.inputs, "signature.inputs"),
        ("output", &signature.outputs, "signature.outputs"),
    ] {
        if list.is_empty() {
            problems.push(
                field,
                format!("the model needs at least one {kind}: add a [[{field}]] table with its name, dtype and shape"),
            );
        }
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (i, tensor) in list.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if let Some(first) = first_seen.get(tensor.name.as_str()) {
                problems.push(
                    format!("{at}.name"),
                    format!(
                        "{kind} `{}` is declared twice (first at {field}[{first}]): give each {kind} its own name",
                        tensor.name
                    ),
                );
            } else {
                first_seen.insert(&tensor.name, i);
            }
            check_tensor(problems, &at, tensor);
        }
    }
    check_named_feature_dims(problems, signature);
}

/// Checks one tensor: its name, dims, feature names and class labels.
fn check_tensor(problems: &mut Problems, at: &str, tensor: &TensorSpec) {
    let name = &tensor.name;
    if name.is_empty() {
        problems.push(
            format!("{at}.name"),
            "the tensor name is empty: use the name the model gives this tensor, e.g. `X`",
        );
    }
    for (d, dim) in tensor.shape.iter().enumerate() {
        match dim {
            Dim::Fixed(0) => problems.push(
                format!("{at}.shape[{d}]"),
                "a fixed dim must be at least 1: use a dim name such as \"batch\" for a size that varies",
            ),
            Dim::Named(dim_name) if !is_identifier(dim_name) => problems.push(
                format!("{at}.shape[{d}]"),
                format!(
                    "dim name `{dim_name}` is not an identifier: use letters, digits and `_`, \
                     not starting with a digit, e.g. \"batch\""
                ),
            ),
            _ => {}
        }
    }
    if let Some(features) = &tensor.feature_names {
        let field = format!("{at}.feature_names");
        match tensor.shape.last() {
            None => problems.push(
                &field,
                format!("`{name}` is a scalar (its shape is empty), so it has no columns to name: remove feature_names"),
            ),
            Some(Dim::Fixed(size)) if *size != features.len() as u64 => problems.push(
                &field,
                format!(
                    "`{name}` has {} feature names but its last dim is {size}: give exactly one name per column",
                    features.len()
                ),
            ),
            _ => {}
        }
        report_duplicates(problems, &field, "feature name", name, features);
    }
    if let Some(labels) = &tensor.class_labels {
        let field = format!("{at}.class_labels");
        if labels.is_empty() {
            problems.push(
                &field,
                format!(
                    "class_labels of `{name}` is empty: list one label per class in the model's class order, \
                     or remove class_labels"
                ),
            );
        }
        report_duplicates(problems, &field, "class label", name, labels);
    }
}

/// Reports each value of `values` that repeats an earlier one.
fn report_duplicates(
    problems: &mut Problems,
    field: &str,
    what: &str,
    tensor: &str,
    values: &[String],
) {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, value) in values.iter().enumerate() {
        match first_seen.get(value.as_str()) {
            Some(first) => problems.push(
                field,
                format!(
                    "{what} `{value}` appears twice in `{tensor}` (positions {first} and {i}): \
                     each {what} must be unique"
                ),
            ),
            None => {
                first_seen.insert(value, i);
            }
        }
    }
}

/// A named last dim gets its size from the feature names of each tensor that uses it; two
/// tensors with different counts would give the dim two sizes, which no input can satisfy.
fn check_named_feature_dims(problems: &mut Problems, signature: &Signature) {
    let mut sizes: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    let tensors = signature
        .inputs
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("signature.inputs[{i}]"), t))
        .chain(
            signature
                .outputs
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("signature.outputs[{i}]"), t)),
        );
    for (at, tensor) in tensors {
        let (Some(Dim::Named(dim)), Some(features)) = (tensor.shape.last(), &tensor.feature_names)
        else {
            continue;
        };
        match sizes.get(dim.as_str()) {
            Some(&(size, from)) if size != features.len() => problems.push(
                format!("{at}.feature_names"),
                format!(
                    "dim `{dim}` would take two sizes: {size} (from {from}.feature_names) and {} \
                     (from {}.feature_names): give both tensors the same number of feature names, \
                     or use different dim names",
                    features.len(),
                    tensor.name
                ),
            ),
            Some(_) => {}
            None => {
                sizes.insert(dim, (features.len(), &tensor.name));
            }
        }
    }
}

/// Whether `s` matches `[A-Za-z_][A-Za-z0-9_]*`.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `s` is a plausible SPDX license expression.
///
/// This checks the grammar, not that each id is on the SPDX list, so that new licenses and
/// `LicenseRef-` ids are accepted without this crate carrying the list:
/// `expr := and (OR and)*`, `and := term (AND term)*`, `term := id [WITH id] | ( expr )`.
fn is_spdx_expression(s: &str) -> bool {
    let Some(tokens) = spdx_tokens(s) else {
        return false;
    };
    let mut pos = 0;
    spdx_or(&tokens, &mut pos) && pos == tokens.len()
}

/// Splits an expression into ids, operators and parentheses, or `None` on a character
/// that cannot appear in one.
fn spdx_tokens(s: &str) -> Option<Vec<&str>> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        let is_id_char = c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-');
        if is_id_char {
            start.get_or_insert(i);
            continue;
        }
        if let Some(st) = start.take() {
            tokens.push(&s[st..i]);
        }
        match c {
            '(' | ')' => tokens.push(&s[i..i + 1]),
            c if c.is_whitespace() => {}
            _ => return None,
        }
    }
    if let Some(st) = start {
        tokens.push(&s[st..]);
    }
    Some(tokens)
}

/// Parses `and (OR and)*`.
fn spdx_or(tokens: &[&str], pos: &mut usize) -> bool {
    if !spdx_and(tokens, pos) {
        return false;
    }
    while tokens.get(*pos) == Some(&"OR") {
        *pos += 1;
        if !spdx_and(tokens, pos) {
            return false;
        }
    }
    true
}

/// Parses `term (AND term)*`.
fn spdx_and(tokens: &[&str], pos: &mut usize) -> bool {
    if !spdx_term(tokens, pos) {
        return false;
    }
    while tokens.get(*pos) == Some(&"AND") {
        *pos += 1;
        if !spdx_term(tokens, pos) {
            return false;
        }
    }
    true
}

/// Parses `id [WITH id]` or `( expr )`.
fn spdx_term(tokens: &[&str], pos: &mut usize) -> bool {
    let is_id = |t: &&str| !matches!(*t, "AND" | "OR" | "WITH" | "(" | ")");
    match tokens.get(*pos) {
        Some(&"(") => {
            *pos += 1;
            if !spdx_or(tokens, pos) || tokens.get(*pos) != Some(&")") {
                return false;
            }
            *pos += 1;
            true
        }
        Some(t) if is_id(t) => {
            *pos += 1;
            if tokens.get(*pos) == Some(&"WITH") {
                *pos += 1;
                if !tokens.get(*pos).is_some_and(is_id) {
                    return false;
                }
                *pos += 1;
            }
            true
        }
        _ => false,
    }
}

/// Whether `s` is an RFC 3339 timestamp such as `2024-05-01T12:00:00Z`.
///
/// jiff alone is more lenient than RFC 3339 (it also takes RFC 9557 time zone annotations
/// and ISO 8601 forms), so the layout is checked here and jiff checks the calendar.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let date_time_ok = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !date_time_ok {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    let offset_ok = match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    };
    offset_ok && s.parse::<jiff::Timestamp>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        for ok in ["breast_cancer", "a", "0day", "v1.2-x_y", &"a".repeat(64)] {
            assert!(is_package_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Breast",
            "_x",
            "-x",
            ".x",
            "a b",
            "a/b",
            "ünï",
            &"a".repeat(65),
        ] {
            assert!(!is_package_name(bad), "{bad}");
        }
    }

    #[test]
    fn identifiers() {
        for ok in ["batch", "_n", "N2", "seq_len"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "2n", "batch size", "n-1"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn spdx_expressions() {
        for ok in [
            "MIT",
            "Apache-2.0 OR MIT",
            "((MIT))",
            "(MIT OR Apache-2.0) AND BSD-2-Clause",
            "Apache-2.0 WITH LLVM-exception",
            "LicenseRef-x",
            "NOASSERTION",
        ] {
            assert!(is_spdx_expression(ok), "{ok}");
        }
        for bad in [
            "",
            "MIT OR",
            "OR MIT",
            "MIT AND AND BSD",
            "(MIT",
            "MIT)",
            "MIT WITH",
            "MIT, BSD",
            "MIT WITH (X)",
        ] {
            assert!(!is_spdx_expression(bad), "{bad}");
        }
    }

    #[test]
    fn rfc3339_timestamps() {
        for ok in [
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00.5Z",
            "2024-05-01T12:00:00+02:00",
            "2024-05-01T12:00:00.123456789-07:30",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0200",
            "2024-02-30T12:00:00Z",
            "2024-05-01T12:00:00Z[UTC]",
            "20240501T120000Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn validation_errors_display_one_problem_per_line() {
        let mut problems = Problems::default();
        assert_eq!(Problems::default().finish(), Ok(()));
        problems.push("package.name", "bad name");
        problems.push("files[0].path", "bad path");
        let errors = problems.finish().unwrap_err();
        assert_eq!(
            errors.to_string(),
            "- package.name: bad name\n- files[0].path: bad path"
        );
        assert_eq!(errors.for_field("files[0].path").count(), 1);
    }
}
