//! `cargo xtask kserve`: the YAML of `deploy/kserve/` checked against KServe's and Kubernetes'
//! own schemas, and copies broken on purpose refused.
//!
//! No cluster runs here, so `kubectl apply --dry-run=server` is out of reach. The schemas come as
//! the types KServe and Kubernetes generate from their OpenAPI definitions and publish on PyPI
//! (the `kserve` SDK for the CRDs, the `kubernetes` client for pods' parts), pinned in
//! `deploy/kserve/check/requirements.txt`; `deploy/kserve/check/validate.py` walks each document
//! through them. The broken copies prove the check can fail: each breaks one field the way a
//! hand edit would, and each must be refused.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use crate::interop::{self, TempDir};
use crate::process;

const DIR: &str = "deploy/kserve";
const SCRIPT: &str = "deploy/kserve/check/validate.py";
const REQUIREMENTS: &str = "deploy/kserve/check/requirements.txt";

/// One broken copy: in `file`, the only occurrence of `from` becomes `to`.
struct Breakage {
    file: &'static str,
    from: &'static str,
    to: &'static str,
    what: &'static str,
}

const BREAKAGES: &[Breakage] = &[
    Breakage {
        file: "cluster-serving-runtime.yaml",
        from: "  containers:\n",
        to: "  container:\n",
        what: "a misspelt field of the ServingRuntime spec",
    },
    Breakage {
        file: "cluster-serving-runtime.yaml",
        from: "containerPort: 8080",
        to: "containerPort: \"8080\"",
        what: "a port given as a string",
    },
    Breakage {
        file: "cluster-serving-runtime.yaml",
        from: "      readinessProbe:\n        httpGet:\n",
        to: "      readinessProbe:\n        httpGets:\n",
        what: "a misspelt field of a Kubernetes probe",
    },
    Breakage {
        file: "cluster-storage-container.yaml",
        from: "    name: storage-initializer\n",
        to: "",
        what: "the container's required name removed",
    },
    Breakage {
        file: "cluster-storage-container.yaml",
        from: "  supportedUriFormats:",
        to: "  supportedUriFormat:",
        what: "a misspelt field of the StorageContainer spec",
    },
    Breakage {
        file: "inference-service.yaml",
        from: "storageUri:",
        to: "storageURI:",
        what: "storageUri with the wrong case",
    },
    Breakage {
        file: "inference-service.yaml",
        from: "      modelFormat:\n        name: tiffin\n",
        to: "",
        what: "the model's required modelFormat removed",
    },
    Breakage {
        file: "inference-service.yaml",
        from: "apiVersion: serving.kserve.io/v1beta1",
        to: "apiVersion: serving.kserve.io/v1beta9",
        what: "an API version KServe does not have",
    },
];

pub(crate) fn run() -> Result<()> {
    let start = Instant::now();
    let root = process::workspace_root();
    let python = interop::python_locked("kserve-venv", REQUIREMENTS)?;
    let script = root.join(SCRIPT);

    let mut files: Vec<_> = std::fs::read_dir(root.join(DIR))
        .with_context(|| format!("cannot list {DIR}"))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {DIR}"))?;
    files.retain(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    ensure!(
        !files.is_empty(),
        "{DIR} holds no YAML file: nothing to check"
    );
    let mut check = Command::new(&python);
    check.arg(&script).args(&files);
    process::announce(&process::shown(&check));
    process::run(&mut check).context(
        "the KServe YAML does not match KServe's schemas (the FAIL lines say which field)",
    )?;

    let broken = TempDir::new("tiffin-kserve-broken")?;
    let mut copies = Vec::new();
    for (index, breakage) in BREAKAGES.iter().enumerate() {
        copies.push(write_broken(
            &root.join(DIR),
            broken.path(),
            index,
            breakage,
        )?);
    }
    let mut refuse = Command::new(&python);
    refuse.arg(&script).arg("--refuse").args(&copies);
    process::announce(&process::shown(&refuse));
    process::run(&mut refuse)
        .context("a copy of the KServe YAML broken on purpose passed the check")?;

    eprintln!(
        "    kserve passed in {} ({} files valid, {} broken copies refused)",
        process::human_duration(start.elapsed()),
        files.len(),
        BREAKAGES.len()
    );
    Ok(())
}

/// Writes `breakage` applied to its file as `NN-FILE` in `out`, after checking that the text it
/// replaces occurs exactly once: a breakage that no longer applies would otherwise test a valid
/// copy and fail for the wrong reason, or be edited until it tests nothing.
fn write_broken(dir: &Path, out: &Path, index: usize, breakage: &Breakage) -> Result<String> {
    let source = dir.join(breakage.file);
    let text = std::fs::read_to_string(&source)
        .with_context(|| format!("cannot read {}", source.display()))?;
    let found = text.matches(breakage.from).count();
    ensure!(
        found == 1,
        "the breakage \"{}\" expects {:?} once in {}, found it {found} times: update BREAKAGES \
         in xtask/src/kserve.rs to the file",
        breakage.what,
        breakage.from,
        breakage.file
    );
    let path = out.join(format!("{index:02}-{}", breakage.file));
    std::fs::write(&path, text.replacen(breakage.from, breakage.to, 1))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.display().to_string())
}
