//! `dependencies`: the environment files a package ships pin what they name, so that the training
//! environment can be rebuilt: `requirements*.txt` lines with `==` (or hashes), `conda.yaml`
//! versions, and a lock file beside `pyproject.toml` or `Pipfile`. Each unpinned entry is listed
//! with its line.

use super::subject::{Meta, Subject};
use super::{Findings, Location, Rule};

/// Lock files that pin what a `pyproject.toml` asks for.
const PYPROJECT_LOCKS: &[&str] = &["poetry.lock", "uv.lock", "pdm.lock"];

/// One entry that does not pin its version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unpinned {
    /// Line number, from 1.
    pub(crate) line: usize,
    /// The entry as written.
    pub(crate) entry: String,
    /// `unpinned` (no version) or `ranged` (a range or wildcard instead of one version).
    pub(crate) why: &'static str,
}

pub(crate) fn check(subject: &Subject, meta: &Meta, findings: &mut Findings) {
    let names: Vec<&str> = subject.files.iter().map(|f| f.path.as_str()).collect();
    let mut checked = Vec::new();
    for (path, bytes) in &subject.environment {
        let text = String::from_utf8_lossy(bytes);
        let name = path.rsplit('/').next().unwrap_or(path);
        let dir = &path[..path.len() - name.len()];
        let unpinned = match name {
            "pyproject.toml" | "Pipfile" => {
                let locks: Vec<String> = if name == "Pipfile" {
                    vec![format!("{dir}Pipfile.lock")]
                } else {
                    PYPROJECT_LOCKS
                        .iter()
                        .map(|l| format!("{dir}{l}"))
                        .collect()
                };
                if !locks.iter().any(|l| names.contains(&l.as_str())) {
                    findings.warn(
                        Rule::Dependencies,
                        format!(
                            "`{path}` declares dependencies but no lock file pins them ({} expected beside it)",
                            locks.join(" or ")
                        ),
                        "ship the lock file too ([[files]] with role environment), or a pip \
                         freeze as requirements.txt",
                        Location::file(path.clone()),
                    );
                }
                checked.push(path.as_str());
                continue;
            }
            n if n.ends_with(".yaml") || n.ends_with(".yml") => conda(&text),
            n if n.ends_with(".lock") => {
                checked.push(path.as_str());
                continue;
            }
            _ => requirements(&text),
        };
        checked.push(path.as_str());
        report(path, &unpinned, findings);
    }
    let python: Vec<Unpinned> = meta
        .runtime
        .python
        .iter()
        .filter_map(|entry| {
            pip_entry(entry).map(|why| Unpinned {
                line: 0,
                entry: entry.clone(),
                why,
            })
        })
        .collect();
    if !python.is_empty() {
        let list: Vec<String> = python
            .iter()
            .map(|u| format!("`{}` ({})", u.entry, u.why))
            .collect();
        findings.warn(
            Rule::Dependencies,
            format!("runtime.python is not pinned: {}", list.join(", ")),
            "pin each to one version with ==, e.g. \"scikit-learn==1.5.2\" (pip freeze gives them)",
            Location::line(
                subject.meta_file,
                super::line_of(&subject.meta_text, "python"),
            ),
        );
    }
    if checked.is_empty() && meta.runtime.python.is_empty() {
        findings.warn(
            Rule::Dependencies,
            "no environment recorded: nothing says which libraries trained or exported the model",
            "ship a pinned requirements.txt (pip freeze) as [[files]] with role environment, or \
             list the pins in runtime.python",
            Location::file(subject.meta_file),
        );
    }
    let mut what = checked.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>();
    if !meta.runtime.python.is_empty() {
        what.push("runtime.python".to_owned());
    }
    findings.pass_unless_flagged(
        Rule::Dependencies,
        format!("every dependency is pinned in {}", what.join(", ")),
    );
}

fn report(path: &str, unpinned: &[Unpinned], findings: &mut Findings) {
    for u in unpinned {
        findings.warn(
            Rule::Dependencies,
            format!("`{}` is {}", u.entry, u.why),
            "pin it to the exact version the model was trained with, e.g. name==1.2.3 (pip \
             freeze gives them)",
            Location::line(path.to_owned(), Some(u.line)),
        );
    }
}

/// The unpinned entries of a pip requirements file. Options (`-i`, `--index-url`, ...) and
/// nested files (`-r`) are not entries; a line with `--hash` is pinned by its hash.
pub(crate) fn requirements(text: &str) -> Vec<Unpinned> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            start = i + 1;
        }
        // A line ending in a backslash continues on the next (pip's own rule).
        if let Some(head) = raw.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        let line = strip_comment(&line).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('-') {
            let editable = line.starts_with("-e ") || line.starts_with("--editable");
            if editable && !pinned_url(line) {
                out.push(Unpinned {
                    line: start,
                    entry: line.to_owned(),
                    why: "an editable install, not a pinned version",
                });
            }
            continue;
        }
        if line.contains("--hash=") {
            continue;
        }
        if let Some(why) = pip_entry(line) {
            out.push(Unpinned {
                line: start,
                entry: line.to_owned(),
                why,
            });
        }
    }
    out
}

/// Why one PEP 508 requirement is not pinned, or `None` when it is.
fn pip_entry(entry: &str) -> Option<&'static str> {
    let spec = entry.split(';').next().unwrap_or(entry).trim();
    if spec.contains(" @ ") || spec.contains("://") {
        return (!pinned_url(spec)).then_some("a URL without a commit or a hash");
    }
    let ops = ["==", ">=", "<=", "~=", "!=", ">", "<"];
    let Some(at) = spec.find(|c| "=<>!~".contains(c)) else {
        return Some("unpinned (no version)");
    };
    let versions = &spec[at..];
    let clauses: Vec<&str> = versions.split(',').map(str::trim).collect();
    let exact = clauses.len() == 1
        && (clauses[0].starts_with("===")
            || (clauses[0].starts_with("==") && !clauses[0].contains('*')));
    if exact {
        None
    } else if ops.iter().any(|op| versions.contains(op)) {
        Some("ranged (a range or a wildcard, not one version)")
    } else {
        Some("unpinned (no version)")
    }
}

/// A URL requirement pins its content when it names a commit or a hash, or a built wheel.
fn pinned_url(spec: &str) -> bool {
    let is_hex_ref = spec.rsplit('@').next().is_some_and(|r| {
        let r = r.split(['#', ' ']).next().unwrap_or(r);
        r.len() >= 7 && r.chars().all(|c| c.is_ascii_hexdigit())
    });
    is_hex_ref || spec.contains("sha256=") || spec.trim_end().ends_with(".whl")
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #") {
        Some(at) => &line[..at],
        None => line,
    }
}

/// The unpinned entries of a conda environment file: the items of its `dependencies:` list
/// (conda specs) and of a nested `pip:` list (pip requirements). A line-based reading, enough for
/// the files `conda env export` writes.
pub(crate) fn conda(text: &str) -> Vec<Unpinned> {
    let mut out = Vec::new();
    let mut in_deps = false;
    let mut pip_indent: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        if indent == 0 {
            in_deps = content.starts_with("dependencies:");
            pip_indent = None;
            continue;
        }
        if !in_deps {
            continue;
        }
        let Some(item) = content.strip_prefix('-').map(str::trim) else {
            continue;
        };
        if let Some(pi) = pip_indent
            && indent <= pi
        {
            pip_indent = None;
        }
        if item == "pip:" {
            pip_indent = Some(indent);
            continue;
        }
        let item = item.trim_matches(['"', '\'']);
        let why = if pip_indent.is_some() {
            pip_entry(item)
        } else {
            conda_entry(item)
        };
        if let Some(why) = why {
            out.push(Unpinned {
                line: i + 1,
                entry: item.to_owned(),
                why,
            });
        }
    }
    out
}

/// Why one conda spec (`name`, `name=1.2.3`, `name==1.2.3`, `channel::name=1.2.3=build`) is not
/// pinned, or `None` when it is.
fn conda_entry(spec: &str) -> Option<&'static str> {
    let spec = spec.rsplit("::").next().unwrap_or(spec).trim();
    if spec.contains(['<', '>', '!', '~', '|', ',', '*']) {
        return Some("ranged (a range or a wildcard, not one version)");
    }
    // `name 1.2.3` (space-separated, as conda also accepts) pins too.
    let version = spec
        .split_once('=')
        .map(|(_, v)| v.trim_start_matches('='))
        .or_else(|| spec.split_once(' ').map(|(_, v)| v.trim()));
    match version {
        Some(v) if !v.is_empty() => None,
        _ => Some("unpinned (no version)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(found: &[Unpinned]) -> Vec<(usize, &str)> {
        found.iter().map(|u| (u.line, u.entry.as_str())).collect()
    }

    #[test]
    fn requirements_pins_hashes_options_and_continuations() {
        let text = "# pinned\nnumpy==2.4.6\nscipy>=1.10\npandas\n-i https://pypi.org/simple\n\
                    torch==2.* ; python_version >= \"3.10\"\nrequests==2.32.3 \\\n    --hash=sha256:abc\n\
                    -r other.txt\nfoo @ git+https://x/foo@3f2a9c1d\nbar @ https://x/bar.tar.gz\n\
                    baz===1.0 # exact\nqux>=1,<2\n-e ./local\n";
        let found = requirements(text);
        assert_eq!(
            lines(&found),
            [
                (3, "scipy>=1.10"),
                (4, "pandas"),
                (6, "torch==2.* ; python_version >= \"3.10\""),
                (11, "bar @ https://x/bar.tar.gz"),
                (13, "qux>=1,<2"),
                (14, "-e ./local"),
            ]
        );
        assert_eq!(found[1].why, "unpinned (no version)");
        assert!(found[0].why.starts_with("ranged"));
    }

    #[test]
    fn conda_specs_and_nested_pip_lists() {
        let text = "name: churn\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  \
                    - numpy\n  - conda-forge::scipy>=1.10\n  - pip\n  - pip:\n    - onnx==1.17.0\n    \
                    - skl2onnx\n  - pandas==2.2.2\nprefix: /opt\n";
        let found = conda(text);
        assert_eq!(
            lines(&found),
            [
                (6, "numpy"),
                (7, "conda-forge::scipy>=1.10"),
                (8, "pip"),
                (11, "skl2onnx"),
            ]
        );
    }
}
