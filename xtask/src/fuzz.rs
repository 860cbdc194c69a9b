//! `cargo xtask fuzz`: the libFuzzer targets of `fuzz/` (functions of crates/tiffin-fuzz) run
//! with cargo-fuzz on a nightly toolchain, with a summary per target; `--seed` writes the seed
//! corpora from the fixtures.
//!
//! Without a nightly toolchain it says so and does nothing: fuzzing needs `-Zsanitizer`, which
//! stable Rust lacks. The committed corpora replay on stable anyway, as the `replay` test of
//! tiffin-fuzz inside `cargo xtask ci`. New inputs libFuzzer finds go to `target/fuzz-corpus/`,
//! not into the committed corpora, which stay small: an input worth keeping (a crash, once fixed)
//! is copied in by hand with its fix.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::{process, test_build};

/// The targets, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` name them.
const TARGETS: &[&str] = &[
    "authoring_toml",
    "manifest_json",
    "checksums",
    "pickle_scan",
    "archive",
    "signature_bundle",
    "pem",
    "oci_reference",
    "oci_manifest",
    "payload_json",
    "request",
    "onnx_model",
    "nnef_model",
];

#[derive(Debug, clap::Args)]
pub(crate) struct FuzzArgs {
    /// Seconds to fuzz each target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Write the seed corpora (fuzz/corpus/*/seed-*) from the fixtures instead of fuzzing.
    #[arg(long)]
    seed: bool,
    /// Fuzz only these targets [default: every one].
    targets: Vec<String>,
}

pub(crate) fn run(args: &FuzzArgs) -> Result<()> {
    if args.seed {
        return seed();
    }
    for target in &args.targets {
        ensure!(
            TARGETS.contains(&target.as_str()),
            "no fuzz target `{target}`; the targets are {}",
            TARGETS.join(", ")
        );
    }
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output();
    match nightly {
        Ok(output) if output.status.success() => {}
        _ => {
            eprintln!(
                "==> skipping: fuzzing needs a nightly toolchain (`rustup toolchain install \
                 nightly`), and none is installed; the corpora still replay on stable in \
                 `cargo test -p tiffin-fuzz`"
            );
            return Ok(());
        }
    }
    install_cargo_fuzz()?;
    let root = process::workspace_root();
    let chosen: Vec<&str> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    let scratch = process::target_dir()?.join("fuzz-corpus");
    let mut rows = Vec::new();
    for target in chosen {
        let found = scratch.join(target);
        std::fs::create_dir_all(&found)?;
        let mut command = Command::new("cargo");
        command
            .current_dir(root.join("fuzz"))
            .args(["+nightly", "fuzz", "run", target])
            .arg(&found)
            .arg(root.join("fuzz/corpus").join(target))
            .args([
                "--",
                &format!("-max_total_time={}", args.seconds),
                "-print_final_stats=1",
                "-rss_limit_mb=4096",
                "-timeout=20",
            ]);
        process::announce(&process::shown(&command));
        let start = Instant::now();
        let output = command
            .output()
            .with_context(|| format!("cannot run `{}`", process::shown(&command)))?;
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        let stats = Stats::read(&log);
        // A finding stops that target (libFuzzer stops at the first); the others still run.
        let found = !output.status.success();
        if found {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "    {target} FAILED after {} (the input is saved under fuzz/artifacts/{target}/):\n{}",
                process::human_duration(start.elapsed()),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        } else {
            eprintln!(
                "    {target}: {} runs, {} exec/s, cov {} ft {}, corpus {}",
                stats.runs, stats.exec_per_sec, stats.cov, stats.ft, stats.corpus
            );
        }
        rows.push((target, stats, found));
    }
    eprintln!(
        "\n| target | seconds | runs | exec/s | cov (edges) | ft (features) | corpus | finding |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    for (target, s, found) in &rows {
        let finding = if *found { "yes" } else { "none" };
        eprintln!(
            "| {target} | {} | {} | {} | {} | {} | {} | {finding} |",
            args.seconds, s.runs, s.exec_per_sec, s.cov, s.ft, s.corpus
        );
    }
    let failed: Vec<&str> = rows.iter().filter(|r| r.2).map(|r| r.0).collect();
    if !failed.is_empty() {
        bail!(
            "fuzzing found failures in {}: fix each, and copy its input from fuzz/artifacts/ \
             into fuzz/corpus/ so that the replay test keeps it fixed",
            failed.join(", ")
        );
    }
    Ok(())
}

/// What libFuzzer printed at the end of a run.
#[derive(Debug, Default)]
struct Stats {
    runs: String,
    exec_per_sec: String,
    cov: String,
    ft: String,
    corpus: String,
}

impl Stats {
    /// Reads `stat::number_of_executed_units`, `stat::average_exec_per_sec` and the last status
    /// line's `cov:`, `ft:` and `corp:` from libFuzzer's output.
    fn read(log: &str) -> Stats {
        let mut stats = Stats::default();
        for line in log.lines() {
            if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
                stats.runs = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
                stats.exec_per_sec = v.trim().to_owned();
            } else if line.starts_with('#') && line.contains(" cov: ") {
                let word = |key: &str| {
                    line.split_whitespace()
                        .skip_while(|w| *w != key)
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned()
                };
                stats.cov = word("cov:");
                stats.ft = word("ft:");
                stats.corpus = word("corp:");
            }
        }
        stats
    }
}

fn install_cargo_fuzz() -> Result<()> {
    let present = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let mut install = Command::new("cargo");
    install.args(["install", "--locked", "cargo-fuzz"]);
    process::announce(&process::shown(&install));
    process::run(&mut install)
}

/// Writes `fuzz/corpus/<target>/seed-*` from the fixtures: authoring files, the manifest,
/// checksums, archive and signature of packed and signed fixtures, keys, the unsafe pickles,
/// small models, payloads and requests. Files libFuzzer added are left alone.
fn seed() -> Result<()> {
    let root = process::workspace_root();
    let fixtures = root.join("fixtures");
    let corpus = root.join("fuzz/corpus");
    let work = process::fresh_dir("tiffin-fuzz-seed")?;
    let tiffin = test_build::tiffin()?;
    let out = work.join("packages");
    for fixture in ["iris", "churn_model"] {
        let pack = Command::new(&tiffin)
            .args(["-q", "pack"])
            .arg(fixtures.join(fixture))
            .arg("--out")
            .arg(&out)
            .output()?;
        ensure!(
            pack.status.success(),
            "tiffin pack {fixture} failed: {pack:?}"
        );
    }
    let sign = Command::new(&tiffin)
        .args(["-q", "sign"])
        .arg(out.join("iris/1.0.0"))
        .arg("--key")
        .arg(fixtures.join("keys/signer.pem"))
        .output()?;
    ensure!(sign.status.success(), "tiffin sign failed: {sign:?}");
    // The NNEF seed: mnist_cnn (convolutions, pools, dense layers) converted, which needs
    // golden examples to check the conversion against.
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("mnist_cnn/reference.json"))?)?;
    let examples = work.join("examples.json");
    let image = serde_json::json!({ "image": reference["inputs"]["image"] });
    std::fs::write(&examples, image.to_string())?;
    let pack = Command::new(&tiffin)
        .args(["-q", "pack"])
        .arg(fixtures.join("mnist_cnn"))
        .arg("--out")
        .arg(&out)
        .arg("--examples")
        .arg(&examples)
        .output()?;
    ensure!(
        pack.status.success(),
        "tiffin pack mnist_cnn failed: {pack:?}"
    );
    let convert = Command::new(&tiffin)
        .args(["-q", "convert", "--to", "nnef"])
        .arg(out.join("mnist_cnn/1.0.0"))
        .output()?;
    ensure!(
        convert.status.success(),
        "tiffin convert failed: {convert:?}"
    );
    let write = |target: &str, name: &str, bytes: &[u8]| -> Result<()> {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{name}")), bytes)
            .with_context(|| format!("cannot write a seed of {target}"))
    };
    let read = |path: PathBuf| -> Result<Vec<u8>> {
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    for fixture in ["iris", "churn_model", "bert_tiny", "breast_cancer"] {
        write(
            "authoring_toml",
            fixture,
            &read(fixtures.join(fixture).join("tiffin.toml"))?,
        )?;
    }
    for fixture in ["iris", "churn_model"] {
        let folder = out.join(fixture).join("1.0.0");
        write("manifest_json", fixture, &read(folder.join("tiffin.json"))?)?;
        write("checksums", fixture, &read(folder.join("checksum.txt"))?)?;
        write("onnx_model", fixture, &read(folder.join("model.onnx"))?)?;
        write(
            "archive",
            fixture,
            &read(out.join(format!("{fixture}-1.0.0.tiffin")))?,
        )?;
    }
    write(
        "signature_bundle",
        "iris",
        &read(out.join("iris/1.0.0/tiffin.sigstore.json"))?,
    )?;
    for key in [
        "signer.pem",
        "signer.pub.pem",
        "signer.cert.pem",
        "root.pem",
        "rsa.pub.pem",
    ] {
        write("pem", key, &read(fixtures.join("keys").join(key))?)?;
    }
    for pickle in ["model.pkl", "model_proto0.pkl", "model.joblib"] {
        write(
            "pickle_scan",
            pickle,
            &read(fixtures.join("unsafe").join(pickle))?,
        )?;
    }
    write(
        "nnef_model",
        "mnist_cnn",
        &read(out.join("mnist_cnn/1.0.0+nnef/model.nnef.tar"))?,
    )?;
    // The OCI seed: the ModelPack manifest `tiffin push` would write for iris, one raw layer
    // per file of checksum.txt.
    let checksums = String::from_utf8(read(out.join("iris/1.0.0/checksum.txt"))?)?;
    let layers: Vec<serde_json::Value> = checksums
        .lines()
        .filter_map(|line| line.split_once("  "))
        .map(|(digest, path)| {
            serde_json::json!({
                "mediaType": "application/vnd.cncf.model.weight.v1.raw",
                "digest": format!("sha256:{digest}"),
                "size": 1024,
                "annotations": {"org.cncf.model.filepath": path},
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.cncf.model.config.v1+json",
            "digest": format!("sha256:{}", "0".repeat(64)),
            "size": 2,
        },
        "layers": layers,
        "annotations": {"org.opencontainers.image.version": "1.0.0"},
    });
    write(
        "oci_manifest",
        "iris",
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    let docker = r#"{"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}}}"#;
    write("oci_manifest", "docker-config", docker.as_bytes())?;
    for (name, reference) in [
        ("tag", "localhost:5000/models/churn:1.0.0"),
        (
            "digest",
            "ghcr.io/org/model@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        ("uri", "oci://registry.example.com:443/a/b/c:v1"),
    ] {
        write("oci_reference", name, reference.as_bytes())?;
    }
    let payloads = [
        (
            "named",
            r#"{"x": [[1, 2, 3]], "n": [1], "s": [["a", "b"]], "flag": [true]}"#,
        ),
        (
            "records",
            r#"[{"a": 1, "b": 2, "c": 3, "n": 1, "s": ["a", "b"], "flag": false}]"#,
        ),
        (
            "columns",
            r#"{"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}"#,
        ),
        (
            "explicit",
            r#"{"x": {"dtype": "f32", "shape": [1, 3], "data": [1, 2, 3]}}"#,
        ),
    ];
    for (name, payload) in payloads {
        write("payload_json", name, payload.as_bytes())?;
    }
    let requests: [(&str, u8, &str); 6] = [
        (
            "v2",
            0,
            r#"{"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}"#,
        ),
        (
            "mlflow",
            2,
            r#"{"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2]]}}"#,
        ),
        (
            "csv",
            3,
            "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n5.1,3.5,1.4,0.2\n",
        ),
        ("v1", 4, r#"{"instances": [[5.1, 3.5, 1.4, 0.2]]}"#),
        ("simple", 5, r#"{"X": [[5.1, 3.5, 1.4, 0.2]]}"#),
        (
            "records",
            6,
            r#"[{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}]"#,
        ),
    ];
    for (name, route, body) in requests {
        let mut bytes = vec![route];
        bytes.extend_from_slice(body.as_bytes());
        write("request", name, &bytes)?;
    }
    // The V2 binary form: a JSON header of the length the second byte gives, then raw FP32.
    let header = r#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#;
    let mut binary = vec![1, u8::try_from(header.len()).context("a short header")?];
    binary.extend_from_slice(header.as_bytes());
    for v in [5.1f32, 3.5, 1.4, 0.2] {
        binary.extend_from_slice(&v.to_le_bytes());
    }
    write("request", "v2-binary", &binary)?;
    std::fs::remove_dir_all(&work).ok();
    eprintln!("wrote the seed corpora in {}", shown(&corpus));
    Ok(())
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_stats_are_read() {
        let log = "#2\tINITED cov: 12 ft: 13 corp: 1/4b exec/s: 0 rss: 30Mb\n\
                   #4096\tpulse  cov: 40 ft: 80 corp: 9/100b lim: 43 exec/s: 2048 rss: 31Mb\n\
                   Done 5000 runs in 2 second(s)\n\
                   stat::number_of_executed_units: 5000\n\
                   stat::average_exec_per_sec:     2500\n";
        let stats = Stats::read(log);
        assert_eq!(
            (stats.runs.as_str(), stats.exec_per_sec.as_str()),
            ("5000", "2500")
        );
        assert_eq!(
            (stats.cov.as_str(), stats.ft.as_str(), stats.corpus.as_str()),
            ("40", "80", "9/100b")
        );
    }

    #[test]
    fn every_target_has_a_libfuzzer_binary() {
        let targets = process::workspace_root().join("fuzz/fuzz_targets");
        for target in TARGETS {
            assert!(
                targets.join(format!("{target}.rs")).is_file(),
                "no fuzz/fuzz_targets/{target}.rs"
            );
        }
    }
}
