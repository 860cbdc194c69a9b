//! `cargo xtask bench memory`: what a large model costs in memory, against its file size.
//!
//! Writes an ONNX model of dense layers with 1 GiB of float32 weights (numpy + onnx in a
//! virtualenv of the target folder, made at run time and never committed), packs it, then
//! measures with each runtime (tract, and ONNX Runtime from the pinned wheel's library): the
//! peak memory and time of `tiffin verify` (which loads the model), and the resident and peak
//! memory of `tiffin serve` after loading it and answering one request, for the package folder
//! and for the archive (where the model is read from its range of the archive file). The goals
//! of issue #16: resident at most 1.2x the model file, peak at most 1.5x.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;

use crate::served::{Server, post_json, proc_status_kib};
use crate::{interop, process};

#[derive(Debug, Args)]
pub(crate) struct MemoryArgs {
    /// Width of each square weight matrix.
    #[arg(long, default_value_t = 8192)]
    width: usize,
    /// Number of dense layers (8192 wide, 4 of them make 1 GiB of weights).
    #[arg(long, default_value_t = 4)]
    layers: usize,
}

impl Default for MemoryArgs {
    fn default() -> MemoryArgs {
        MemoryArgs {
            width: 8192,
            layers: 4,
        }
    }
}

/// Peak and resident memory of one process, in bytes, and the seconds it took.
struct Measured {
    peak: f64,
    resident: Option<f64>,
    seconds: Option<f64>,
}

pub(crate) fn run(args: &MemoryArgs) -> Result<()> {
    let target = process::target_dir()?;
    let tiffin = super::hash::build_cli()?;
    let library = crate::onnxruntime::library()?;
    let library = library.to_str().context("a UTF-8 path")?.to_owned();
    let python = interop::python("bench-memory-venv", "xtask/requirements-bench-memory.txt")?;
    let scratch = target.join("bench-memory");
    let _ = std::fs::remove_dir_all(&scratch);
    let source = scratch.join("dense");
    std::fs::create_dir_all(&source)?;
    let model = source.join("model.onnx");
    let mut make = Command::new(&python);
    make.arg(process::workspace_root().join("xtask/src/bench/make_dense.py"))
        .arg(&model)
        .arg(args.width.to_string())
        .arg(args.layers.to_string());
    process::announce(&process::shown(&make));
    process::run(&mut make)?;
    std::fs::write(
        source.join("tiffin.toml"),
        format!(
            r#"[package]
name = "dense"
version = "1.0.0"
description = "Dense layers with random weights, for measuring memory."
authors = ["tiffin bench"]
license = "MIT"

[model]
path = "model.onnx"
format = "onnx"

[[signature.inputs]]
name = "x"
dtype = "f32"
shape = ["batch", {w}]

[[signature.outputs]]
name = "y"
dtype = "f32"
shape = ["batch", {w}]
"#,
            w = args.width
        ),
    )?;
    let out = scratch.join("packages");
    let mut pack = Command::new(&tiffin);
    pack.arg("pack").arg(&source).arg("--out").arg(&out);
    process::announce(&process::shown(&pack));
    process::run(&mut pack)?;
    let folder = out.join("dense/1.0.0");
    let archive = out.join("dense-1.0.0.tiffin");
    let file = std::fs::metadata(&model)?.len() as f64;
    println!(
        "model file: {:.0} MiB ({} layers of {w}x{w} float32)",
        file / MIB,
        args.layers,
        w = args.width
    );
    println!(
        "{:<42} {:>10} {:>8} {:>12} {:>8} {:>8}",
        "", "peak MiB", "x file", "resident MiB", "x file", "seconds"
    );
    let ort = ["--runtime", "ort", "--ort-lib", library.as_str()];
    for (runtime, extra) in [("tract", &[][..]), ("ort", &ort[..])] {
        for (form, package) in [("folder", &folder), ("archive", &archive)] {
            let verify = verify(&tiffin, package, extra)?;
            report(&format!("verify, {form} ({runtime})"), &verify, file);
            let serve = serve(&tiffin, package, extra, args.width)?;
            report(
                &format!("serve, one request, {form} ({runtime})"),
                &serve,
                file,
            );
        }
    }
    Ok(())
}

const MIB: f64 = 1024.0 * 1024.0;

fn report(label: &str, m: &Measured, file: f64) {
    let resident = m.resident.map_or_else(
        || format!("{:>12} {:>8}", "-", "-"),
        |r| format!("{:>12.0} {:>7.2}x", r / MIB, r / file),
    );
    println!(
        "{label:<42} {:>10.0} {:>7.2}x {resident} {:>8}",
        m.peak / MIB,
        m.peak / file,
        m.seconds.map_or_else(|| "-".into(), |s| format!("{s:.2}"))
    );
}

/// `tiffin verify` under GNU time: its peak resident memory and wall time.
fn verify(tiffin: &Path, package: &Path, extra: &[&str]) -> Result<Measured> {
    let time = Path::new("/usr/bin/time");
    ensure!(
        time.is_file(),
        "/usr/bin/time is missing (apt-get install time): it measures verify's peak memory"
    );
    let mut command = Command::new(time);
    command
        .args(["-f", "tiffin-bench %M %e"])
        .arg(tiffin)
        .arg("verify")
        .arg(package)
        .args(extra);
    let output = command.output().context("cannot run /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "`{}` failed: {stderr}",
        process::shown(&command)
    );
    let Some(line) = stderr.lines().find(|l| l.starts_with("tiffin-bench ")) else {
        bail!("GNU time printed no figures: {stderr}");
    };
    let mut words = line.split_whitespace().skip(1);
    let kib: f64 = words.next().context("a peak")?.parse()?;
    let seconds: f64 = words.next().context("a time")?.parse()?;
    Ok(Measured {
        peak: kib * 1024.0,
        resident: None,
        seconds: Some(seconds),
    })
}

/// `tiffin serve` with the package, after one request of one row: resident and peak memory
/// from /proc.
fn serve(tiffin: &Path, package: &Path, extra: &[&str], width: usize) -> Result<Measured> {
    let mut command = Command::new(tiffin);
    command
        .arg("serve")
        .arg(package)
        .args(["--port", "0", "--no-ui"])
        .args(extra);
    let mut server = Server::start(command)?;
    let address = server.wait_until_ready(Duration::from_secs(300))?;
    let row = vec!["0.5"; width].join(",");
    let body = format!(
        r#"{{"inputs": [{{"name": "x", "shape": [1, {width}], "datatype": "FP32", "data": [{row}]}}]}}"#
    );
    post_json(&address, "/v2/models/dense/infer", &body)?;
    let field = |name: &str| -> Result<f64> { Ok(proc_status_kib(server.id(), name)? * 1024.0) };
    Ok(Measured {
        peak: field("VmHWM:")?,
        resident: Some(field("VmRSS:")?),
        seconds: None,
    })
}
