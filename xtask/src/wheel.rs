//! `cargo xtask wheel`: the Python wheel, the static `tiffin` binary plus the `tiffin` module.
//!
//! The wheel is laid out the way maturin lays out a `bindings = "bin"` wheel (ruff's and uv's):
//! the module at the root, the binary in `tiffin-VERSION.data/scripts/`, metadata and licences
//! in `tiffin-VERSION.dist-info/`. It packs the binary `cargo xtask dist` builds rather than
//! letting maturin build another one: maturin's build runs cargo with its own flags and, measured,
//! compiled the whole release again (13.5 minutes on 2 cores), where CI builds it once and shares
//! it. The metadata comes from `pyproject.toml`'s `[project]`, which maturin reads for source
//! builds, so both builds describe the same package (checked: the METADATA must equal the
//! PKG-INFO of `maturin sdist`, field by field); PyPA's `wheel pack` writes the archive and its
//! RECORD, and PyPA's `packaging` validates the metadata against the core-metadata spec.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::{dist, interop, process};

/// The tools that pack and check the wheel (PyPA's wheel and packaging), pinned.
const BUILD_REQUIREMENTS: &str = "python/requirements-build.txt";

/// The platform tags of the static x86_64 Linux binary: it needs no shared library, glibc's
/// included, so the oldest manylinux tag pip still knows (2014, glibc 2.17) is honest.
const TAGS: &[&str] = &[
    "py3-none-manylinux_2_17_x86_64",
    "py3-none-manylinux2014_x86_64",
];

/// Builds the wheel into `target/wheel/` and returns its path.
pub(crate) fn build() -> Result<PathBuf> {
    let root = process::workspace_root();
    let project = Project::read(&root.join("pyproject.toml"))?;
    let cargo_version = dist::workspace_version(root)?;
    ensure!(
        project.version == cargo_version,
        "pyproject.toml says version {} but the workspace is {cargo_version}: set \
         [project] version in pyproject.toml to {cargo_version}",
        project.version
    );
    let binary = dist::static_binary()?;
    let python = interop::python("wheel-build-venv", BUILD_REQUIREMENTS)?;

    let out = process::target_dir()?.join("wheel");
    let stage = out.join("stage");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("cannot remove {}", out.display()))?;
    }
    let dist_name = format!("{}-{}", project.name, project.version);
    copy_module(&root.join("python").join("tiffin"), &stage.join("tiffin"))?;

    let scripts = stage.join(format!("{dist_name}.data")).join("scripts");
    fs::create_dir_all(&scripts)?;
    let script = scripts.join(format!("tiffin{}", std::env::consts::EXE_SUFFIX));
    fs::copy(&binary, &script)
        .with_context(|| format!("cannot copy {} into the wheel", binary.display()))?;
    make_executable(&script)?;

    let info = stage.join(format!("{dist_name}.dist-info"));
    fs::create_dir_all(info.join("licenses"))?;
    for licence in &project.license_files {
        fs::copy(root.join(licence), info.join("licenses").join(licence))
            .with_context(|| format!("cannot copy the licence {licence}"))?;
    }
    let readme = fs::read_to_string(root.join(&project.readme))
        .with_context(|| format!("cannot read the readme {}", project.readme))?;
    let metadata = project.metadata(&readme);
    fs::write(info.join("METADATA"), &metadata)?;
    fs::write(info.join("WHEEL"), wheel_file())?;

    // The metadata must be what pip and PyPI accept: packaging parses it as they do, strictly.
    let mut check = Command::new(&python);
    check
        .args([
            "-c",
            "import sys; from packaging.metadata import Metadata; \
             m = Metadata.from_email(open(sys.argv[1], encoding='utf-8').read(), validate=True); \
             print(f'    METADATA valid: {m.name} {m.version}, {len(m.requires_dist or [])} \
             requirements, extras {sorted(m.provides_extra or [])}')",
        ])
        .arg(info.join("METADATA"));
    process::run(&mut check).context("the wheel's METADATA is not valid core metadata")?;

    same_metadata_as_maturin(&python, &info.join("METADATA"), &out)?;

    let mut pack = Command::new(&python);
    pack.args(["-m", "wheel", "pack", "--dest-dir"])
        .arg(&out)
        .arg(&stage)
        // Every member gets the commit's time, so the same commit packs the same wheel.
        .env("SOURCE_DATE_EPOCH", dist::commit_time(root)?.to_string());
    process::announce(&process::shown(&pack));
    interop::run_quietly(&mut pack).context("wheel pack failed")?;
    fs::remove_dir_all(&stage)?;

    let wheel = format!(
        "{}-{}-{}.whl",
        project.name.replace('-', "_"),
        project.version,
        compressed_tag()
    );
    let path = out.join(wheel);
    ensure!(
        path.is_file(),
        "wheel pack wrote no {} (look in {})",
        path.display(),
        out.display()
    );
    let size = fs::metadata(&path)?.len();
    eprintln!(
        "==> wrote {} ({:.1} MB)",
        path.display(),
        size as f64 / 1_000_000.0
    );
    Ok(path)
}

/// Fails unless the METADATA written here equals, field by field, the PKG-INFO that maturin
/// writes from the same `pyproject.toml` for a source build (`maturin sdist`, seconds: it
/// compiles nothing), so that the wheel CI ships and one built from source describe one package.
fn same_metadata_as_maturin(python: &Path, metadata: &Path, out: &Path) -> Result<()> {
    let sdist_dir = out.join("sdist");
    let maturin = python.with_file_name(format!("maturin{}", std::env::consts::EXE_SUFFIX));
    let mut sdist = Command::new(&maturin);
    sdist
        .args(["sdist", "--out"])
        .arg(&sdist_dir)
        .current_dir(process::workspace_root());
    process::announce(&process::shown(&sdist));
    interop::run_quietly(&mut sdist).context("maturin sdist failed")?;
    let tarball = fs::read_dir(&sdist_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .with_context(|| format!("maturin wrote no .tar.gz in {}", sdist_dir.display()))?;
    let mut compare = Command::new(python);
    compare
        .arg(process::workspace_root().join("python/tools/same_metadata.py"))
        .arg(metadata)
        .arg(&tarball);
    process::run(&mut compare).context("the wheel's metadata is not maturin's")?;
    fs::remove_dir_all(&sdist_dir)?;
    Ok(())
}

/// The tags as they appear in the file name: `py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64`.
fn compressed_tag() -> String {
    // `wheel pack` joins the platforms in sorted order, as `packaging` does.
    let mut platforms: Vec<&str> = TAGS
        .iter()
        .map(|tag| tag.splitn(3, '-').nth(2).unwrap_or(tag))
        .collect();
    platforms.sort_unstable();
    format!("py3-none-{}", platforms.join("."))
}

/// The `WHEEL` file: the wheel format version and the tags. `Root-Is-Purelib: false` because the
/// wheel holds a platform binary.
fn wheel_file() -> String {
    let mut text = format!(
        "Wheel-Version: 1.0\nGenerator: cargo xtask wheel ({})\nRoot-Is-Purelib: false\n",
        env!("CARGO_PKG_VERSION")
    );
    for tag in TAGS {
        text.push_str(&format!("Tag: {tag}\n"));
    }
    text
}

/// Copies the module's files (Python sources and the `py.typed` marker), never bytecode caches.
fn copy_module(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    let mut copied = 0;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_file() && (name.ends_with(".py") || name == "py.typed") {
            fs::copy(&path, to.join(name))?;
            copied += 1;
        }
    }
    ensure!(copied > 0, "{} holds no Python module", from.display());
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<()> {
    Ok(())
}

/// What the wheel's METADATA is written from: `pyproject.toml`'s `[project]`.
#[derive(Debug)]
struct Project {
    name: String,
    version: String,
    description: String,
    readme: String,
    requires_python: String,
    license: String,
    license_files: Vec<String>,
    authors: Vec<String>,
    keywords: Vec<String>,
    classifiers: Vec<String>,
    dependencies: Vec<String>,
    extras: Vec<(String, Vec<String>)>,
    urls: Vec<(String, String)>,
}

impl Project {
    fn read(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    fn parse(text: &str) -> Result<Self> {
        let document: toml::Table = toml::from_str(text)?;
        let Some(project) = document.get("project").and_then(toml::Value::as_table) else {
            bail!("there is no [project] table");
        };
        let string = |key: &str| -> Result<String> {
            project
                .get(key)
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("[project] needs `{key}` as a string"))
        };
        let strings = |value: Option<&toml::Value>, key: &str| -> Result<Vec<String>> {
            let Some(value) = value else {
                return Ok(Vec::new());
            };
            value
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .with_context(|| format!("[project] `{key}` must be a list of strings"))
        };
        let mut authors = Vec::new();
        for author in project
            .get("authors")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = author
                .get("name")
                .and_then(toml::Value::as_str)
                .context("[project] each of `authors` needs a name")?;
            authors.push(name.to_owned());
        }
        let mut extras = Vec::new();
        if let Some(table) = project.get("optional-dependencies") {
            let table = table
                .as_table()
                .context("[project] `optional-dependencies` must be a table")?;
            for (extra, requirements) in table {
                extras.push((extra.clone(), strings(Some(requirements), extra)?));
            }
        }
        let mut urls = Vec::new();
        if let Some(table) = project.get("urls").and_then(toml::Value::as_table) {
            for (label, url) in table {
                let url = url
                    .as_str()
                    .with_context(|| format!("[project.urls] `{label}` must be a string"))?;
                urls.push((label.clone(), url.to_owned()));
            }
        }
        Ok(Self {
            name: string("name")?,
            version: string("version")?,
            description: string("description")?,
            readme: string("readme")?,
            requires_python: string("requires-python")?,
            license: string("license")?,
            license_files: strings(project.get("license-files"), "license-files")?,
            authors,
            keywords: strings(project.get("keywords"), "keywords")?,
            classifiers: strings(project.get("classifiers"), "classifiers")?,
            dependencies: strings(project.get("dependencies"), "dependencies")?,
            extras,
            urls,
        })
    }

    /// The core metadata (version 2.4: `License-Expression`, `License-File`), the readme as the
    /// description.
    fn metadata(&self, readme: &str) -> String {
        let mut lines = vec![
            "Metadata-Version: 2.4".to_owned(),
            format!("Name: {}", self.name),
            format!("Version: {}", self.version),
            format!("Summary: {}", self.description),
        ];
        if !self.keywords.is_empty() {
            lines.push(format!("Keywords: {}", self.keywords.join(",")));
        }
        if !self.authors.is_empty() {
            lines.push(format!("Author: {}", self.authors.join(", ")));
        }
        lines.push(format!("License-Expression: {}", self.license));
        for file in &self.license_files {
            lines.push(format!("License-File: {file}"));
        }
        for classifier in &self.classifiers {
            lines.push(format!("Classifier: {classifier}"));
        }
        lines.push(format!("Requires-Python: {}", self.requires_python));
        for requirement in &self.dependencies {
            lines.push(format!("Requires-Dist: {requirement}"));
        }
        for (extra, requirements) in &self.extras {
            lines.push(format!("Provides-Extra: {extra}"));
            for requirement in requirements {
                lines.push(format!(
                    "Requires-Dist: {requirement} ; extra == \"{extra}\""
                ));
            }
        }
        for (label, url) in &self.urls {
            lines.push(format!("Project-URL: {label}, {url}"));
        }
        lines.push("Description-Content-Type: text/markdown".to_owned());
        format!("{}\n\n{readme}", lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_pyproject_gives_metadata_with_every_extra() {
        let text = fs::read_to_string(process::workspace_root().join("pyproject.toml")).unwrap();
        let project = Project::parse(&text).unwrap();
        assert_eq!(project.name, "tiffin");
        let metadata = project.metadata("# readme\n");
        assert!(metadata.starts_with("Metadata-Version: 2.4\nName: tiffin\n"));
        assert!(metadata.contains("\nRequires-Dist: numpy>=1.24\n"));
        assert!(metadata.contains("\nProvides-Extra: sklearn\n"));
        assert!(metadata.contains("\nRequires-Dist: skl2onnx>=1.17 ; extra == \"sklearn\"\n"));
        assert!(metadata.contains("\nLicense-File: LICENSE-MIT\n"));
        assert!(metadata.ends_with("\n\n# readme\n"));
    }

    #[test]
    fn a_project_without_a_version_is_refused_by_name() {
        let error = Project::parse("[project]\nname = \"tiffin\"\n").unwrap_err();
        assert!(format!("{error:#}").contains("`version`"), "{error:#}");
    }

    #[test]
    fn the_file_name_compresses_the_platform_tags() {
        assert_eq!(
            compressed_tag(),
            "py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64"
        );
        assert!(wheel_file().contains("\nTag: py3-none-manylinux2014_x86_64\n"));
    }
}
