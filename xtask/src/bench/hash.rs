//! `cargo xtask bench hash`: how fast `tiffin pack` and `tiffin verify` hash a large package,
//! next to `sha256sum`, `b3sum` and a plain `cat`.
//!
//! The package is the breast_cancer fixture plus a large `weights.bin` of pseudo-random bytes, so
//! that hashing dominates and the numbers compare with hashing that one file alone.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Args;

use crate::process;

/// The size of `weights.bin` unless `--size-mib` says otherwise: 1 GiB, large enough that process
/// start-up and the small files are noise.
const DEFAULT_SIZE_MIB: u64 = 1024;
const MIB: u64 = 1 << 20;
/// Timed runs per command, after one untimed warm-up run; the best is reported, since the noise
/// of a shared machine only ever adds time.
const RUNS: usize = 5;
/// The fixture whose model and metadata the benchmark package reuses.
const FIXTURE: &str = "fixtures/breast_cancer";
const WEIGHTS: &str = "weights.bin";

#[derive(Debug, Args)]
pub(crate) struct HashArgs {
    /// Size of weights.bin in MiB; a smaller one makes a quick run.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SIZE_MIB,
          value_parser = clap::value_parser!(u64).range(1..))]
    size_mib: u64,
    /// Keep the package source and packages in target/xtask-bench/ instead of deleting them.
    #[arg(long)]
    keep: bool,
}

impl Default for HashArgs {
    fn default() -> Self {
        Self {
            size_mib: DEFAULT_SIZE_MIB,
            keep: false,
        }
    }
}

pub(crate) fn run(args: &HashArgs) -> Result<()> {
    let target = process::target_dir()?;
    let tiffin = build_cli()?;
    let scratch = Scratch::create(target.join("xtask-bench"), args.keep)?;
    // Every command runs in the scratch folder with relative paths, so the table shows commands
    // short enough to read and to paste.
    let work = scratch.dir.as_path();
    let bytes = args.size_mib * MIB;
    let weights = Path::new("src").join(WEIGHTS);

    write_source(&work.join("src"), args.size_mib)?;
    let packed = pack(&tiffin, work)?;

    let mut rows = Vec::new();
    let mut cat = Command::new("cat");
    cat.arg(&weights);
    let ceiling = time(
        &mut rows,
        work,
        format!("cat {} > /dev/null", weights.display()),
        "read from page cache: the ceiling",
        cat,
    )?;
    let mut verify = |extra: &[&str], target: &Path, what: &'static str| -> Result<f64> {
        let mut command = Command::new(&tiffin);
        command.args(["verify", "--quiet"]).args(extra).arg(target);
        time(&mut rows, work, process::shown(&command), what, command)
    };
    let tiffin_seconds = verify(&[], &packed.folder, "folder, blake3 (default)")?;
    verify(&["--sha256"], &packed.folder, "folder, sha256+blake3")?;
    verify(&[], &packed.archive, "archive, blake3 (default)")?;
    // Digests only, without loading the model: what compares with b3sum most closely. The
    // archive's members are hashed in place, so it should keep up with the folder.
    verify(
        &["--no-run"],
        &packed.folder,
        "folder, digests only, blake3",
    )?;
    let archive_seconds = verify(
        &["--no-run"],
        &packed.archive,
        "archive, digests only, blake3",
    )?;
    let mut rivals = Vec::new();
    let mut skipped = Vec::new();
    for (tool, what, install) in [
        ("sha256sum", "sha256", "it is part of GNU coreutils"),
        (
            "b3sum",
            "blake3, multi-threaded",
            "install it with `cargo install b3sum`",
        ),
    ] {
        if process::which(tool).is_some() {
            let mut command = Command::new(tool);
            command.arg(&weights);
            let seconds = time(&mut rows, work, process::shown(&command), what, command)?;
            rivals.push((tool, seconds));
        } else {
            skipped.push(format!("{tool} skipped: not on PATH ({install})"));
        }
    }

    println!();
    println!(
        "bench hash: {WEIGHTS} is {} MiB ({bytes} bytes) of pseudo-random bytes; {} CPUs",
        args.size_mib,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "The page cache is warm: every file was just written and each command runs once untimed"
    );
    println!("before the best of {RUNS} timed runs, so these times measure hashing, not the disk.");
    println!("GB/s is 10^9 bytes of {WEIGHTS} per second.");
    println!();
    println!(
        "pack: {:.3} s, one run, {:.2} GB/s (sha256+blake3 in one read pass, plus writing the",
        packed.seconds,
        gb_per_second(bytes, packed.seconds)
    );
    println!("      package folder and the archive)");
    println!();
    print!("{}", table(&rows, bytes));
    println!();
    for line in &skipped {
        println!("{line}");
    }
    println!(
        "{}",
        verdict("folder, blake3", tiffin_seconds, &rivals, ceiling)
    );
    println!(
        "{}",
        verdict(
            "archive, digests only, blake3",
            archive_seconds,
            &rivals,
            ceiling
        )
    );
    // The archive, digests only, against b3sum of the same archive file (issue #16: at most
    // 1.1x).
    if process::which("b3sum").is_some() {
        let mut command = Command::new("b3sum");
        command.arg(&packed.archive);
        let b3sum = time(
            &mut Vec::new(),
            work,
            process::shown(&command),
            "blake3 of the archive",
            command,
        )?;
        println!(
            "archive: `tiffin verify --no-run` {archive_seconds:.3} s against `b3sum` of the same \
             archive {b3sum:.3} s: {:.2}x",
            archive_seconds / b3sum
        );
    }
    Ok(())
}

/// The release `tiffin` the benchmarks drive: the `-ort` build of `cargo xtask dist`, with ONNX
/// Runtime support so that `bench server` can compare the two engines (tract unless `--runtime
/// ort` is given). It is the binary the ONNX Runtime archive ships, and one release build shared
/// with the dist step rather than another of its own.
pub(super) fn build_cli() -> Result<PathBuf> {
    crate::dist::ort_binary()
}

/// The scratch folder of a run, deleted when the run ends, failed or not, unless kept.
struct Scratch {
    dir: PathBuf,
    keep: bool,
}

impl Scratch {
    fn create(dir: PathBuf, keep: bool) -> Result<Self> {
        // A kept or interrupted run leaves the folder behind, and pack refuses to overwrite a
        // package, so every run starts from nothing.
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot delete the old {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self { dir, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.dir.display());
        } else if let Err(err) = fs::remove_dir_all(&self.dir) {
            eprintln!("warning: cannot delete {}: {err}", self.dir.display());
        }
    }
}

/// Writes the package source into `dir`: the weights, the fixture's model and a tiffin.toml.
fn write_source(dir: &Path, size_mib: u64) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let weights = dir.join(WEIGHTS);
    process::announce(&format!(
        "writing {size_mib} MiB of pseudo-random bytes to {}",
        weights.display()
    ));
    let start = Instant::now();
    write_weights(&weights, size_mib)
        .with_context(|| format!("cannot write {}", weights.display()))?;
    eprintln!("    took {}", process::human_duration(start.elapsed()));

    let fixture = process::workspace_root().join(FIXTURE);
    let model = fixture.join("model.onnx");
    fs::copy(&model, dir.join("model.onnx"))
        .with_context(|| format!("cannot copy {}", model.display()))?;
    let authoring = fixture.join("tiffin.toml");
    let text = fs::read_to_string(&authoring)
        .with_context(|| format!("cannot read {}", authoring.display()))?;
    let text = bench_toml(&text).with_context(|| format!("cannot edit {}", authoring.display()))?;
    fs::write(dir.join("tiffin.toml"), text).context("cannot write the bench tiffin.toml")
}

/// Writes `size_mib` MiB of xorshift output, flushed to disk so that the write-back of the
/// file does not compete with the timed runs.
fn write_weights(path: &Path, size_mib: u64) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    let mut buffer = vec![0; MIB as usize];
    let mut state = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..size_mib {
        fill(&mut state, &mut buffer);
        file.write_all(&buffer)?;
    }
    file.sync_all()
}

/// Fills `buffer` (a multiple of 8 bytes long) with xorshift64 output: not random enough for
/// anything but a benchmark, where it only needs to be fast to make and not compressible.
fn fill(state: &mut u64, buffer: &mut [u8]) {
    for word in buffer.chunks_exact_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
}

/// The fixture's tiffin.toml made into the benchmark's: without the model card (not copied) and
/// the fixture's extra files, and with `weights.bin` as the one extra file.
///
/// It goes through a TOML table rather than editing lines, so that it does not depend on how the
/// fixture happens to be laid out; the comments it drops do not matter to `tiffin pack`.
fn bench_toml(fixture: &str) -> Result<String> {
    let mut table: toml::Table = toml::from_str(fixture)?;
    if let Some(toml::Value::Table(package)) = table.get_mut("package") {
        package.remove("model_card");
    }
    let mut weights = toml::Table::new();
    weights.insert("path".into(), WEIGHTS.into());
    weights.insert("role".into(), "extra".into());
    table.insert(
        "files".into(),
        toml::Value::Array(vec![toml::Value::Table(weights)]),
    );
    Ok(toml::to_string(&table)?)
}

/// Where `tiffin pack` put the package, and how long it took.
struct Packed {
    folder: PathBuf,
    archive: PathBuf,
    seconds: f64,
}

/// Packs `work/src` into `work/out`, once: pack refuses to overwrite, and one run of a 1 GiB
/// pack is long enough to be stable.
fn pack(tiffin: &Path, work: &Path) -> Result<Packed> {
    let mut command = Command::new(tiffin);
    command
        .current_dir(work)
        .args(["pack", "--quiet", "--json", "--out", "out", "src"]);
    process::announce(&process::shown(&command));
    let start = Instant::now();
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", tiffin.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    ensure!(
        output.status.success(),
        "`{}` failed ({})",
        process::shown(&command),
        output.status
    );
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("tiffin pack --json printed bad JSON")?;
    let path = |key: &str| -> Result<PathBuf> {
        let path = Path::new(
            result[key]
                .as_str()
                .with_context(|| format!("tiffin pack --json printed no `{key}`"))?,
        );
        Ok(path.strip_prefix(work).unwrap_or(path).to_path_buf())
    };
    let packed = Packed {
        folder: path("folder")?,
        archive: path("archive")?,
        seconds,
    };
    // Pack's output is still being written back to disk; flushing it now keeps that I/O out of
    // the timed runs.
    sync_tree(&work.join(&packed.folder))?;
    sync_tree(&work.join(&packed.archive))?;
    Ok(packed)
}

/// Flushes a file, or every file below a folder, to disk.
fn sync_tree(path: &Path) -> Result<()> {
    if path.is_dir() {
        for entry in
            fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?
        {
            sync_tree(&entry?.path())?;
        }
        Ok(())
    } else {
        File::open(path)
            .and_then(|file| file.sync_all())
            .with_context(|| format!("cannot flush {}", path.display()))
    }
}

/// One line of the table.
#[derive(Debug)]
struct Row {
    command: String,
    what: &'static str,
    seconds: f64,
}

/// Times `command` in `work`: one warm-up run, then the best of [`RUNS`]; records and returns it.
fn time(
    rows: &mut Vec<Row>,
    work: &Path,
    shown: String,
    what: &'static str,
    mut command: Command,
) -> Result<f64> {
    process::announce(&format!(
        "timing `{shown}`: 1 warm-up run, then best of {RUNS}"
    ));
    command
        .current_dir(work)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut best = f64::INFINITY;
    for run in 0..=RUNS {
        let start = Instant::now();
        let output = command
            .output()
            .with_context(|| format!("cannot run `{shown}`"))?;
        let seconds = start.elapsed().as_secs_f64();
        ensure!(
            output.status.success(),
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        if run > 0 {
            best = best.min(seconds);
        }
    }
    rows.push(Row {
        command: shown,
        what,
        seconds: best,
    });
    Ok(best)
}

fn gb_per_second(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e9
}

/// The results as an aligned table: command, what it measures, best seconds and GB/s.
fn table(rows: &[Row], bytes: u64) -> String {
    let header = ["command", "measures", "best s", "GB/s"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|row| {
            [
                row.command.clone(),
                row.what.to_owned(),
                format!("{:.3}", row.seconds),
                format!("{:.2}", gb_per_second(bytes, row.seconds)),
            ]
        })
        .collect();
    let width = |column: usize| {
        cells
            .iter()
            .map(|cells| cells[column].len())
            .chain([header[column].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    let line = |cells: [&str; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )
    };
    let mut text = line(header);
    for cells in &cells {
        text.push_str(&line([&cells[0], &cells[1], &cells[2], &cells[3]]));
    }
    text
}

/// A one-line conclusion: `tiffin verify` of one form (`what`) against the fastest of the usual
/// tools, and how close it comes to reading the file from the page cache.
fn verdict(what: &str, tiffin: f64, rivals: &[(&str, f64)], ceiling: f64) -> String {
    let ceiling_share = format!(
        "it runs at {:.0}% of the page-cache read speed",
        ceiling / tiffin * 100.0
    );
    let Some(&(rival, seconds)) = rivals.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else {
        return format!("verdict: no sha256sum or b3sum to compare with; {ceiling_share}");
    };
    let comparison = if seconds >= tiffin {
        format!("{:.2}x faster than", seconds / tiffin)
    } else {
        format!("{:.2}x slower than", tiffin / seconds)
    };
    let which = if rivals.len() > 1 {
        let names: Vec<_> = rivals.iter().map(|r| r.0).collect();
        format!(", the faster of {}", names.join(" and "))
    } else {
        String::new()
    };
    format!(
        "verdict: `tiffin verify` ({what}) is {comparison} {rival}{which} \
         ({tiffin:.3} s vs {seconds:.3} s); {ceiling_share}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_deterministic_and_not_constant() {
        let (mut a, mut b) = ([0; 64], [0; 64]);
        let (mut state_a, mut state_b) = (1, 1);
        fill(&mut state_a, &mut a);
        fill(&mut state_b, &mut b);
        assert_eq!(a, b);
        assert_ne!(a[..8], a[8..16]);
        // The state carries on, so consecutive buffers differ.
        fill(&mut state_a, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn bench_toml_swaps_the_files_and_drops_the_model_card() {
        let fixture = r#"
# a comment
[package]
name = "breast_cancer"
version = "1.0.0"
model_card = "MODEL_CARD.md"

[model]
path = "model.onnx"

[[signature.inputs]]
name = "X"
shape = ["batch", 30]

[[files]]
path = "requirements.txt"
role = "environment"

[[files]]
path = "other.txt"
"#;
        let edited: toml::Table = toml::from_str(&bench_toml(fixture).unwrap()).unwrap();
        let expected: toml::Table = toml::from_str(
            r#"
[package]
name = "breast_cancer"
version = "1.0.0"

[model]
path = "model.onnx"

[[signature.inputs]]
name = "X"
shape = ["batch", 30]

[[files]]
path = "weights.bin"
role = "extra"
"#,
        )
        .unwrap();
        assert_eq!(edited, expected);
    }

    #[test]
    fn the_real_fixture_becomes_a_bench_source() {
        let path = process::workspace_root().join(FIXTURE).join("tiffin.toml");
        let text = bench_toml(&fs::read_to_string(path).unwrap()).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert!(table["package"].get("model_card").is_none());
        assert_eq!(table["files"].as_array().unwrap().len(), 1);
        assert_eq!(table["files"][0]["path"].as_str(), Some(WEIGHTS));
    }

    #[test]
    fn table_aligns_columns() {
        let rows = [
            Row {
                command: "sha256sum src/weights.bin".into(),
                what: "sha256",
                seconds: 2.0,
            },
            Row {
                command: "b3sum src/weights.bin".into(),
                what: "blake3",
                seconds: 0.25,
            },
        ];
        assert_eq!(
            table(&rows, 1_000_000_000),
            "\
command                    measures  best s  GB/s
sha256sum src/weights.bin  sha256     2.000  0.50
b3sum src/weights.bin      blake3     0.250  4.00
"
        );
    }

    #[test]
    fn verdict_compares_with_the_fastest_rival() {
        assert_eq!(
            verdict(
                "folder, blake3",
                0.5,
                &[("sha256sum", 2.0), ("b3sum", 1.0)],
                0.25
            ),
            "verdict: `tiffin verify` (folder, blake3) is 2.00x faster than b3sum, the faster \
             of sha256sum and b3sum (0.500 s vs 1.000 s); it runs at 50% of the page-cache read \
             speed"
        );
        assert_eq!(
            verdict(
                "archive, digests only, blake3",
                2.0,
                &[("sha256sum", 1.0)],
                0.5
            ),
            "verdict: `tiffin verify` (archive, digests only, blake3) is 2.00x slower than sha256sum \
             (2.000 s vs 1.000 s); it runs at 25% of the page-cache read speed"
        );
        assert!(verdict("folder, blake3", 1.0, &[], 0.5).contains("no sha256sum or b3sum"));
    }
}
