//! `cargo xtask bench server`: requests per second and latency of `tiffin serve` under load.
//!
//! Starts release servers on loopback and drives them with wrk (installed from Debian's
//! packages when missing), in parts that `--only` picks: start-up time and memory with every
//! fixture loaded; a classifier (breast_cancer, 30 features) through `/v2/.../infer`,
//! `/invocations` and `/predict` at 1, 8 and 64 connections with tract and ONNX Runtime, each
//! unbatched and batched, beside `GET /v2/health/live` on the same server as the framework's own
//! ceiling; `/predict` of a small logistic regression (iris) against the FastAPI + onnxruntime
//! peer ([`super::peer`]) at 8 connections, with the CPU time per request of each server and
//! of wrk; and convolution models (mnist_cnn and a wider one
//! made at run time, one image per request) at 64 connections without and with dynamic
//! batching. Each measurement is taken several times, in turn with the others, and reported as
//! its median. The load generator shares the machine's cores with the servers, as the goals in
//! the server issues assume; the peer comparison is also run with wrk on one core and each
//! server on another of its own, as if the load came from another machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;

use crate::process;
use crate::served::Server;

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Seconds each load run lasts.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Runs of each measurement, taken in turn (every endpoint once, then again); the figures
    /// printed are the medians, and the share of health is taken within each round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The parts to run, comma-separated; every one when none is named.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

/// The parts of the server bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// Start-up time and memory with every fixture loaded.
    Startup,
    /// A classifier through each protocol at 1, 8 and 64 connections, with tract and ONNX
    /// Runtime, unbatched and batched, beside the health endpoint.
    Protocols,
    /// `/predict` against the FastAPI + onnxruntime peer at 8 connections: wrk sharing the
    /// cores with the servers, then wrk on one core and each server on another.
    Peer,
    /// Convolution models at 64 connections without and with dynamic batching.
    Batching,
}

impl Default for ServerArgs {
    fn default() -> ServerArgs {
        ServerArgs {
            duration: 5,
            rounds: 3,
            only: Vec::new(),
        }
    }
}

/// `tiffin serve` started for a benchmark: where it listens, how long it took to be ready.
struct Bench {
    server: Server,
    url: String,
    ready_ms: u64,
}

impl Bench {
    /// Starts `tiffin serve` on a free port and waits until it is ready.
    fn start(tiffin: &Path, args: &[&str]) -> Result<Bench> {
        Bench::start_with(tiffin, args, &[])
    }

    /// [`Bench::start`] with environment variables `env` set for the server.
    fn start_with(tiffin: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Bench> {
        Bench::start_on(tiffin, args, env, None)
    }

    /// [`Bench::start_with`] on CPU `cpu` alone when given: the server sizes its runtime to
    /// the one core it may use.
    fn start_on(
        tiffin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        cpu: Option<usize>,
    ) -> Result<Bench> {
        let started = Instant::now();
        let mut command = on_cpu(tiffin, cpu);
        // Per-request log lines are written as in production (info), and drained.
        command
            .arg("serve")
            .args(args)
            .args(["--port", "0"])
            .envs(env.iter().copied());
        let mut server = Server::start(command)?;
        let address = server.wait_until_ready(Duration::from_secs(120))?;
        let ready_ms = started.elapsed().as_millis() as u64;
        // What the batching probe measured at load, for the figures below.
        for line in server.logged("batching", "ready:") {
            println!("    {line}");
        }
        server.forget_log();
        Ok(Bench {
            server,
            url: format!("http://{address}"),
            ready_ms,
        })
    }

    /// Resident memory, its peak, and the resident memory that is not file pages (the heap
    /// and stacks, without the binary's own code), from /proc, in MiB.
    fn memory(&self) -> Result<Memory> {
        let field = |name: &str| -> Result<f64> {
            Ok(crate::served::proc_status_kib(self.server.id(), name)? / 1024.0)
        };
        Ok(Memory {
            rss: field("VmRSS:")?,
            peak: field("VmHWM:")?,
            anon: field("RssAnon:")?,
        })
    }
}

/// A server's memory, in MiB.
struct Memory {
    rss: f64,
    peak: f64,
    anon: f64,
}

/// What one wrk run measured.
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time per request, when the run was given the server to watch.
    cpu: Option<Cpu>,
}

/// CPU time per request, user and system, in microseconds: the server's (with the worker
/// processes it forked) and the load generator's. Steadier than requests per second on a
/// shared machine, and it shows where the two cores go: wrk runs on them too.
#[derive(Clone, Copy)]
struct Cpu {
    server_us: f64,
    wrk_us: f64,
}

impl Load {
    /// Each figure's median over `runs`.
    fn median(runs: &[Load]) -> Load {
        let cpu = runs.iter().map(|l| l.cpu).collect::<Option<Vec<Cpu>>>();
        Load {
            rps: median(runs.iter().map(|l| l.rps)),
            p50_ms: median(runs.iter().map(|l| l.p50_ms)),
            p99_ms: median(runs.iter().map(|l| l.p99_ms)),
            cpu: cpu.filter(|c| !c.is_empty()).map(|c| Cpu {
                server_us: median(c.iter().map(|c| c.server_us)),
                wrk_us: median(c.iter().map(|c| c.wrk_us)),
            }),
        }
    }
}

/// Linux reports CPU times in /proc in clock ticks of USER_HZ, which it fixes at 100 for user
/// space on every architecture tiffin builds for.
const TICKS_PER_SECOND: f64 = 100.0;

/// Numeric fields of a `/proc/PID/stat` line, by their numbers in proc(5): 4 the parent, 14
/// and 15 the user and system time, 16 and 17 those of the children waited for.
fn stat_numbers<const N: usize>(text: &str, numbers: [usize; N]) -> Result<[u64; N]> {
    // The command name may hold spaces and parentheses; the state, field 3, follows it.
    let (_, rest) = text
        .rsplit_once(')')
        .context("a /proc stat line without its command")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let mut values = [0; N];
    for (value, n) in values.iter_mut().zip(numbers) {
        *value = fields
            .get(n - 3)
            .with_context(|| format!("no field {n} in the /proc stat line `{text}`"))?
            .parse()?;
    }
    Ok(values)
}

/// Seconds of CPU, user and system, that process `root` and every process under it have
/// used (threads included, as /proc counts them per process): a server, or uvicorn's
/// supervisor with its workers.
fn tree_cpu_seconds(root: u32) -> Result<f64> {
    // Parent and ticks of every process; one that ends while the folder is read is skipped.
    let mut processes: Vec<(u32, u32, u64)> = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let [parent, user, system] = stat_numbers(&text, [4, 14, 15])?;
        processes.push((pid, parent as u32, user + system));
    }
    ensure!(
        processes.iter().any(|&(pid, _, _)| pid == root),
        "process {root} is not running"
    );
    let mut tree = vec![root];
    let mut ticks = 0;
    while let Some(pid) = tree.pop() {
        for &(child, parent, used) in &processes {
            if child == pid {
                ticks += used;
            }
            if parent == pid {
                tree.push(child);
            }
        }
    }
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// Seconds of CPU, user and system, used by the children of this process that have ended
/// and been waited for: read before and after a wrk run, the difference is wrk's.
fn waited_children_cpu_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/self/stat")?;
    let [user, system] = stat_numbers(&text, [16, 17])?;
    Ok((user + system) as f64 / TICKS_PER_SECOND)
}

/// A command running `program`, on CPU `cpu` alone when given (through util-linux's
/// `taskset`, which execs it: the process id is the program's own).
pub(super) fn on_cpu(program: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        None => Command::new(program),
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.args(["--cpu-list", &cpu.to_string()]).arg(program);
            command
        }
    }
}

/// The CPUs this process may run on, as /proc/self/status lists them (`0-3,8,10-11`).
fn allowed_cpus() -> Result<String> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .context("no Cpus_allowed_list in /proc/self/status")?;
    Ok(list.trim().to_owned())
}

/// The CPUs of a list in the form of [`allowed_cpus`], in order.
fn cpu_list(text: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (usize, usize) = (first.parse()?, last.parse()?);
        cpus.extend(first..=last);
    }
    Ok(cpus)
}

/// Where the peer table's processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// wrk and every server on all of the machine's cores, as the kernel schedules them.
    Shared,
    /// wrk (and this process, which reads the servers' logs) on CPU `wrk`, each server on CPU
    /// `server`, started there: as if the load came from another machine, so that what wrk
    /// spends is not taken from the servers.
    Split { wrk: usize, server: usize },
}

impl Placement {
    /// The split placement on the first two CPUs this process may use; `None` on one.
    fn split() -> Result<Option<Placement>> {
        Ok(match cpu_list(&allowed_cpus()?)?[..] {
            [wrk, server, ..] => Some(Placement::Split { wrk, server }),
            _ => None,
        })
    }

    /// The CPU of the servers, when they have one.
    fn server(self) -> Option<usize> {
        match self {
            Placement::Shared => None,
            Placement::Split { server, .. } => Some(server),
        }
    }

    /// The CPU of wrk, when it has one.
    fn wrk(self) -> Option<usize> {
        match self {
            Placement::Shared => None,
            Placement::Split { wrk, .. } => Some(wrk),
        }
    }
}

/// Every thread of this process on one CPU, until dropped, when the CPUs it had are given back
/// (to every thread it then has).
struct Pinned {
    allowed: String,
}

impl Pinned {
    fn to(cpu: usize) -> Result<Pinned> {
        let allowed = allowed_cpus()?;
        set_affinity(&cpu.to_string())?;
        Ok(Pinned { allowed })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // Nothing to do about a failure but say so: the next servers would share one core.
        if let Err(e) = set_affinity(&self.allowed) {
            eprintln!("warning: cannot give this process its CPUs back: {e:#}");
        }
    }
}

/// Sets the CPUs of every thread of this process to `list` (taskset's syntax).
fn set_affinity(list: &str) -> Result<()> {
    let mut command = Command::new("taskset");
    command
        .args(["--all-tasks", "--cpu-list", "--pid", list])
        .arg(std::process::id().to_string())
        .stdout(Stdio::null());
    process::run(&mut command)
}

/// Makes sure wrk is installed, from Debian's packages when it is not.
fn wrk() -> Result<PathBuf> {
    if let Some(path) = process::which("wrk") {
        return Ok(path);
    }
    process::announce("installing wrk from Debian's packages");
    process::apt_install(&["wrk"], "the server bench drives the server with wrk")?;
    Ok(PathBuf::from("wrk"))
}

/// A request body and the headers that describe it.
struct Post {
    bytes: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Post {
    /// A JSON body.
    fn json(text: &str) -> Post {
        Post {
            bytes: text.as_bytes().to_vec(),
            headers: vec![("Content-Type", "application/json".to_owned())],
        }
    }

    /// A V2 inference request in JSON with one input, its fields in the order V2 clients write
    /// them (tritonclient: name, shape, datatype, data), which lets the server read the data
    /// straight into the datatype. serde_json's `json!` sorts the keys, putting `data` first.
    fn v2_json(name: &str, shape: &[usize], datatype: &str, data: &serde_json::Value) -> Post {
        let name = serde_json::Value::from(name);
        let shape = serde_json::Value::from(shape.to_vec());
        Post::json(&format!(
            r#"{{"inputs":[{{"name":{name},"shape":{shape},"datatype":"{datatype}","data":{data}}}]}}"#
        ))
    }

    /// A V2 inference request with its tensors in the binary data extension: the JSON header,
    /// then the tensors' raw bytes, as Triton's clients send images.
    fn v2_binary(header: &str, tensors: &[u8]) -> Post {
        Post {
            bytes: [header.as_bytes(), tensors].concat(),
            headers: vec![
                ("Content-Type", "application/octet-stream".to_owned()),
                ("Inference-Header-Content-Length", header.len().to_string()),
            ],
        }
    }

    /// The wrk script that sends this body: a Lua string of the bytes, every one that is not
    /// plain printable ASCII written as a decimal escape.
    fn script(&self) -> String {
        let mut body = String::with_capacity(self.bytes.len() * 2);
        for &byte in &self.bytes {
            if byte.is_ascii_graphic() && byte != b'\\' && byte != b'\'' || byte == b' ' {
                body.push(byte as char);
            } else {
                body.push_str(&format!("\\{byte:03}"));
            }
        }
        let mut script = format!("wrk.method = 'POST'\nwrk.body = '{body}'\n");
        for (name, value) in &self.headers {
            script.push_str(&format!("wrk.headers['{name}'] = '{value}'\n"));
        }
        script
    }
}

/// Each round's requests per second of `runs` over those of `base` in the same round: servers
/// driven in turn are compared within a round, where the machine's state is the same.
fn ratios(runs: &[Load], base: &[Load]) -> Vec<f64> {
    runs.iter()
        .zip(base)
        .map(|(run, b)| run.rps / b.rps)
        .collect()
}

/// A server whose CPU time a wrk run measures, and the CPU wrk runs on, when it has one.
#[derive(Debug, Clone, Copy)]
struct Watch {
    server: u32,
    wrk_cpu: Option<usize>,
}

/// Runs wrk against `url` with `connections`, POSTing `body` when given, and reads its report;
/// when watching a server, the CPU time per request too.
fn run_wrk(
    wrk: &Path,
    scratch: &Path,
    url: &str,
    body: Option<&Post>,
    connections: usize,
    seconds: u64,
    watch: Option<Watch>,
) -> Result<Load> {
    let mut command = on_cpu(wrk, watch.and_then(|w| w.wrk_cpu));
    let server = watch.map(|w| w.server);
    command.args([
        "--latency",
        "-t",
        &connections.min(2).to_string(),
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
    ]);
    if let Some(body) = body {
        let script = scratch.join("post.lua");
        std::fs::write(&script, body.script())?;
        command.arg("-s").arg(&script);
    }
    command.arg(url);
    let before = match server {
        Some(pid) => Some((tree_cpu_seconds(pid)?, waited_children_cpu_seconds()?)),
        None => None,
    };
    let output = command
        .output()
        .with_context(|| format!("cannot run `{}`", process::shown(&command)))?;
    let after = match server {
        Some(pid) => Some((tree_cpu_seconds(pid)?, waited_children_cpu_seconds()?)),
        None => None,
    };
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        !text.contains("Non-2xx"),
        "the server answered errors under load:\n{text}"
    );
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .context("no Requests/sec in wrk's report")?
        .trim()
        .parse()?;
    let percentile = |p: &str| -> Result<f64> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .with_context(|| format!("no {p} latency in wrk's report:\n{text}"))?;
        parse_latency(line.split_whitespace().nth(1).context("a latency")?)
    };
    // `  123456 requests in 2.00s, 12.34MB read`
    let requests: f64 = text
        .lines()
        .find_map(|l| l.split_once(" requests in ").map(|(n, _)| n.trim()))
        .context("no request count in wrk's report")?
        .parse()?;
    let cpu = before
        .zip(after)
        .map(|((server0, wrk0), (server1, wrk1))| Cpu {
            server_us: (server1 - server0) / requests * 1e6,
            wrk_us: (wrk1 - wrk0) / requests * 1e6,
        });
    Ok(Load {
        rps,
        p50_ms: percentile("50%")?,
        p99_ms: percentile("99%")?,
        cpu,
    })
}

/// wrk's latencies: `812.00us`, `1.23ms`, `2.01s`, in milliseconds.
fn parse_latency(text: &str) -> Result<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        bail!("unknown latency `{text}`")
    };
    Ok(number.parse::<f64>()? * scale)
}

/// A row of the fixture's reference inputs as JSON, `rows` times.
fn reference_rows(
    fixture: &Path,
    input: &str,
    row_len: usize,
    rows: usize,
) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(fixture.join("reference.json"))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let data = json["inputs"][input]["data"].as_array().with_context(|| {
        format!(
            "{}: reference input `{input}` has no plain data",
            fixture.display()
        )
    })?;
    Ok(data[..row_len]
        .iter()
        .cycle()
        .take(row_len * rows)
        .cloned()
        .collect())
}

fn pack(tiffin: &Path, fixture: &Path, out: &Path) -> Result<()> {
    pack_with(tiffin, fixture, out, None)
}

/// Packs `fixture` into `out`, with `examples` as its golden example inputs when given.
fn pack_with(tiffin: &Path, fixture: &Path, out: &Path, examples: Option<&Path>) -> Result<()> {
    let mut command = Command::new(tiffin);
    command
        .args(["-q", "pack"])
        .arg(fixture)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null());
    if let Some(examples) = examples {
        command.arg("--examples").arg(examples);
    }
    process::run(&mut command)
}

pub(crate) fn run(args: &ServerArgs) -> Result<()> {
    let wants = |section| args.only.is_empty() || args.only.contains(&section);
    let target = process::target_dir()?;
    let tiffin = super::hash::build_cli()?;
    let wrk = wrk()?;
    let scratch = target.join("bench-server");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let fixtures = process::workspace_root().join("fixtures");
    let library = crate::onnxruntime::library()?;
    let drive = Drive {
        tiffin: &tiffin,
        wrk: &wrk,
        scratch: &scratch,
        library: library.to_str().context("a UTF-8 path")?,
        rounds: args.rounds.max(1),
        seconds: args.duration,
    };
    println!(
        "medians of {} rounds of {} s; every ratio is taken within each round (listed after it)",
        drive.rounds, drive.seconds
    );
    if wants(Section::Startup) {
        startup(&tiffin, &fixtures, &scratch)?;
    }
    if wants(Section::Protocols) {
        drive.protocols_table(&fixtures)?;
    }
    if wants(Section::Peer) {
        drive.peer_table(&fixtures, Placement::Shared)?;
        match Placement::split()? {
            Some(split) => drive.peer_table(&fixtures, split)?,
            None => println!("one CPU: no table with wrk and the servers on cores of their own"),
        }
    }
    if wants(Section::Batching) {
        // With two example images, as a package made for serving has: the batching probe
        // times them at load.
        let cnn_dir = scratch.join("cnn");
        std::fs::create_dir_all(&cnn_dir)?;
        let image: Vec<f32> = (0..28 * 28).map(|i| (i % 17) as f32 / 17.0).collect();
        let examples = scratch.join("mnist-examples.json");
        let rows: Vec<Vec<Vec<Vec<f32>>>> = (0..2)
            .map(|_| vec![image.chunks(28).map(<[f32]>::to_vec).collect()])
            .collect();
        std::fs::write(&examples, serde_json::json!({ "image": rows }).to_string())?;
        pack_with(
            &tiffin,
            &fixtures.join("mnist_cnn"),
            &cnn_dir,
            Some(&examples),
        )?;
        // Convolution models, one image per request, 64 connections: unbatched and batched,
        // every server up at once and driven in turn, round by round. A synthetic image (the
        // one of the examples): the run's cost does not depend on the pixel values.
        // In JSON, and in the binary data extension as Triton's clients send images: the
        // smaller the cost of reading a request, the larger the model's share of it, and the
        // more batching's saving on the model shows.
        let json = Post::v2_json("image", &[1, 1, 28, 28], "FP32", &serde_json::json!(image));
        let header = serde_json::json!({"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "parameters": {"binary_data_size": image.len() * 4}}]}).to_string();
        let raw: Vec<u8> = image.iter().flat_map(|v| v.to_le_bytes()).collect();
        let binary = Post::v2_binary(&header, &raw);
        let bodies = [(&json, "JSON tensors"), (&binary, "binary tensors")];
        let cnn = cnn_dir.join("mnist_cnn-1.0.0.tiffin");
        for (body, how) in bodies {
            println!();
            drive.batching_table("mnist_cnn", &cnn, body, how)?;
        }
        // A wider network of the same signature (the Keras MNIST example's shape), made at
        // run time with numpy and onnx: the model is most of a request's cost here, as it is
        // for the CNN issue #16 measured, where batching's saving on the model shows in the
        // throughput.
        let wide = wide_cnn(&tiffin, &scratch, &examples)?;
        for (body, how) in bodies {
            println!();
            drive.batching_table("cnn_wide", &wide, body, how)?;
        }
    }
    Ok(())
}

/// Start-up time and memory with every fixture loaded.
fn startup(tiffin: &Path, fixtures: &Path, scratch: &Path) -> Result<()> {
    let all_dir = scratch.join("all");
    std::fs::create_dir_all(&all_dir)?;
    let mut fixture_names = Vec::new();
    for entry in std::fs::read_dir(fixtures)? {
        let dir = entry?.path();
        if dir.join("tiffin.toml").is_file() {
            pack(tiffin, &dir, &all_dir)?;
            fixture_names.push(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    let all = Bench::start(tiffin, &[all_dir.to_str().context("a UTF-8 path")?])?;
    let memory = all.memory()?;
    println!(
        "every fixture ({} models): ready {} ms after launch, RSS {:.1} MiB ({:.1} MiB not file pages)",
        fixture_names.len(),
        all.ready_ms,
        memory.rss,
        memory.anon
    );
    Ok(())
}

/// What every table is driven with.
struct Drive<'a> {
    tiffin: &'a Path,
    wrk: &'a Path,
    scratch: &'a Path,
    library: &'a str,
    rounds: usize,
    seconds: u64,
}

impl Drive<'_> {
    /// A classifier (breast_cancer, one row of 30 features) through each protocol at 1, 8 and
    /// 64 connections, on four servers: tract and ONNX Runtime, each unbatched and with
    /// `--max-batch-size 64` (whose load-time probe decides whether merging pays), each beside
    /// its own health endpoint as the framework's ceiling.
    fn protocols_table(&self, fixtures: &Path) -> Result<()> {
        let dir = self.scratch.join("classifier");
        std::fs::create_dir_all(&dir)?;
        pack(self.tiffin, &fixtures.join("breast_cancer"), &dir)?;
        let package = dir.join("breast_cancer-1.0.0.tiffin");
        let package = package.to_str().context("a UTF-8 path")?;
        let ort = ["--runtime", "ort", "--ort-lib", self.library];
        let batched = ["--max-batch-size", "64", "--max-delay-us", "2000"];
        let setups: [(&str, Vec<&str>); 4] = [
            ("tract", vec![package]),
            ("tract batched", [&[package][..], &batched].concat()),
            ("ort", [&[package][..], &ort].concat()),
            ("ort batched", [&[package][..], &ort, &batched].concat()),
        ];
        let servers = setups
            .iter()
            .map(|(_, args)| Bench::start(self.tiffin, args))
            .collect::<Result<Vec<_>>>()?;
        let x = reference_rows(&fixtures.join("breast_cancer"), "X", 30, 1)?;
        let row = serde_json::Value::Array(x.clone());
        let v2 = Post::v2_json("X", &[1, 30], "FP32", &row);
        let mlflow = Post::json(&serde_json::json!({"inputs": [row.clone()]}).to_string());
        let simple = Post::json(&serde_json::json!({"X": [row]}).to_string());
        let endpoints: [(&str, &str, Option<&Post>); 4] = [
            ("GET /v2/health/live", "/v2/health/live", None),
            (
                "POST /v2/models/m/infer",
                "/v2/models/breast_cancer/infer",
                Some(&v2),
            ),
            ("POST /invocations", "/invocations", Some(&mlflow)),
            ("POST /predict", "/predict", Some(&simple)),
        ];
        println!();
        println!("breast_cancer, one row per request:");
        println!(
            "{:<14} {:<24} {:>5} {:>9} {:>8} {:>8} {:>8}  vs live, each round",
            "server", "endpoint", "conns", "req/s", "p50 ms", "p99 ms", "vs live"
        );
        for connections in [1, 8, 64] {
            // Every server's every endpoint once per round, in turn, so that a slow spell of
            // the machine falls on one round of each rather than on every run of one.
            let mut loads: Vec<Vec<Vec<Load>>> = servers
                .iter()
                .map(|_| endpoints.iter().map(|_| Vec::new()).collect())
                .collect();
            for _ in 0..self.rounds {
                for (server, server_loads) in servers.iter().zip(&mut loads) {
                    for ((_, path, body), runs) in endpoints.iter().zip(server_loads.iter_mut()) {
                        let url = format!("{}{path}", server.url);
                        runs.push(self.wrk(&url, *body, connections)?);
                    }
                }
            }
            for ((label, _), server_loads) in setups.iter().zip(&loads) {
                let health = &server_loads[0];
                for ((name, _, _), runs) in endpoints.iter().zip(server_loads) {
                    let shares: Vec<f64> = ratios(runs, health).iter().map(|r| r * 100.0).collect();
                    let each: Vec<String> = shares.iter().map(|s| format!("{s:.0}%")).collect();
                    let load = Load::median(runs);
                    println!(
                        "{label:<14} {name:<24} {connections:>5} {:>9.0} {:>8.3} {:>8.3} {:>7.0}%  {}",
                        load.rps,
                        load.p50_ms,
                        load.p99_ms,
                        median(shares.iter().copied()),
                        each.join(" ")
                    );
                }
            }
        }
        for ((label, _), server) in setups.iter().zip(&servers) {
            let memory = server.memory()?;
            println!(
                "{label} server after the runs: RSS {:.1} MiB, peak {:.1} MiB",
                memory.rss, memory.peak
            );
        }
        Ok(())
    }

    /// `/predict` of a 4-feature logistic regression (iris, one row per request) at 8
    /// connections: `tiffin serve` with each engine, and with its request log lines off, against
    /// the FastAPI + onnxruntime peer serving the same ONNX file, all up at once and driven in
    /// turn, with the CPU each server and wrk spent per request; and the first server's
    /// health endpoint, the most a request costing no model and no body reaches. The goal of
    /// issue #16: 10x the peer's requests per second, a tenth of its p50. `placement` says
    /// where the servers and wrk run; the peer has a worker for each core it may use.
    fn peer_table(&self, fixtures: &Path, placement: Placement) -> Result<()> {
        let dir = self.scratch.join("iris");
        std::fs::create_dir_all(&dir)?;
        pack(self.tiffin, &fixtures.join("iris"), &dir)?;
        let package = dir.join("iris-1.0.0.tiffin");
        let package = package.to_str().context("a UTF-8 path")?;
        let x = reference_rows(&fixtures.join("iris"), "X", 4, 1)?;
        let json = serde_json::json!({ "X": [x] }).to_string();
        let body = Post::json(&json);
        let ort = ["--runtime", "ort", "--ort-lib", self.library];
        // Every log line but the request's: the bench waits for the `listening on` line.
        let quiet = [("TIFFIN_LOG", "info,tiffin_server::protocol=warn")];
        let cpu = placement.server();
        let start =
            |args: &[&str], env: &[(&str, &str)]| Bench::start_on(self.tiffin, args, env, cpu);
        let tiffins = [
            ("tiffin, tract", start(&[package], &[])?),
            ("tiffin, ort", start(&[&[package][..], &ort].concat(), &[])?),
            ("tiffin, tract, no request log", start(&[package], &quiet)?),
            (
                "tiffin, ort, no request log",
                start(&[&[package][..], &ort].concat(), &quiet)?,
            ),
        ];
        let workers = if cpu.is_some() { 1 } else { 2 };
        let peer = super::peer::Peer::start(
            &fixtures.join("iris/model.onnx"),
            &json,
            &self.scratch.join("peer.log"),
            workers,
            cpu,
        )?;
        // This process reads the servers' logs: on the split placement it runs beside wrk,
        // off the servers' core, until the table is done.
        let _pinned = match placement.wrk() {
            Some(wrk) => Some(Pinned::to(wrk)?),
            None => None,
        };
        // Each server's label, URL, body and process, the peer last. The first server's health
        // endpoint, which runs no model and reads no body, is the framework's ceiling beside it.
        let mut urls: Vec<(String, String, Option<&Post>, u32)> = tiffins
            .iter()
            .map(|(label, bench)| {
                let url = format!("{}/predict", bench.url);
                ((*label).to_owned(), url, Some(&body), bench.server.id())
            })
            .collect();
        urls.insert(
            1,
            (
                "tiffin, tract, GET /v2/health/live".to_owned(),
                format!("{}/v2/health/live", tiffins[0].1.url),
                None,
                tiffins[0].1.server.id(),
            ),
        );
        urls.push((
            format!(
                "FastAPI + onnxruntime, {workers} worker{}",
                if workers == 1 { "" } else { "s" }
            ),
            format!("http://{}/predict", peer.address),
            Some(&body),
            peer.id(),
        ));
        let watch = |server| Watch {
            server,
            wrk_cpu: placement.wrk(),
        };
        // A warm-up run of each, not counted: the peer's workers and both engines' first
        // calls are ready before anything is measured.
        for (_, url, body, pid) in &urls {
            run_wrk(self.wrk, self.scratch, url, *body, 8, 1, Some(watch(*pid)))?;
        }
        let mut loads: Vec<Vec<Load>> = urls.iter().map(|_| Vec::new()).collect();
        for _ in 0..self.rounds {
            for ((_, url, body, pid), runs) in urls.iter().zip(&mut loads) {
                runs.push(run_wrk(
                    self.wrk,
                    self.scratch,
                    url,
                    *body,
                    8,
                    self.seconds,
                    Some(watch(*pid)),
                )?);
            }
        }
        let peer_runs = loads.last().context("the peer's runs")?;
        println!();
        match placement {
            Placement::Shared => println!(
                "iris, one row per request, POST /predict, 8 connections, wrk and the servers \
                 sharing every core (CPU: microseconds of user and system time per request, \
                 of the server and of wrk):"
            ),
            Placement::Split { wrk, server } => println!(
                "the same with wrk on CPU {wrk} and each server on CPU {server} alone, as if \
                 the load came from another machine:"
            ),
        }
        println!(
            "{:<34} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8}  x peer, each round",
            "server", "req/s", "p50 ms", "p99 ms", "x peer", "p50/peer", "CPU srv", "CPU wrk"
        );
        for ((label, ..), runs) in urls.iter().zip(&loads) {
            let gains = ratios(runs, peer_runs);
            let p50s = runs
                .iter()
                .zip(peer_runs)
                .map(|(run, peer)| run.p50_ms / peer.p50_ms);
            let each: Vec<String> = gains.iter().map(|g| format!("{g:.1}x")).collect();
            let load = Load::median(runs);
            let cpu = load.cpu.context("the CPU of a watched run")?;
            println!(
                "{label:<34} {:>9.0} {:>8.3} {:>8.3} {:>8.1}x {:>9.3} {:>8.1} {:>8.1}  {}",
                load.rps,
                load.p50_ms,
                load.p99_ms,
                median(gains.iter().copied()),
                median(p50s),
                cpu.server_us,
                cpu.wrk_us,
                each.join(" ")
            );
        }
        Ok(())
    }

    /// One wrk run of this drive's length.
    fn wrk(&self, url: &str, body: Option<&Post>, connections: usize) -> Result<Load> {
        run_wrk(
            self.wrk,
            self.scratch,
            url,
            body,
            connections,
            self.seconds,
            None,
        )
    }

    /// Serves the package at `package` (model `model`, one 1x28x28 image in) in every setup at
    /// once, drives each with 64 connections in turn for `rounds` rounds, and prints each
    /// setup's median against its engine's unbatched figure.
    fn batching_table(&self, model: &str, package: &Path, body: &Post, how: &str) -> Result<()> {
        let package = package.to_str().context("a UTF-8 path")?;
        let batched = [package, "--max-batch-size", "64", "--max-delay-us", "2000"];
        let ort = ["--runtime", "ort", "--ort-lib", self.library];
        let ort_two = [&ort[..], &["--model-threads", "2"]].concat();
        let ort_sessions = [&ort[..], &["--ort-sessions", "2"]].concat();
        let setups = [
            ("tract unbatched", vec![package]),
            // Batching asked for: the load measures whether it pays and runs requests singly
            // when it does not (the log line says which).
            ("tract --max-batch-size 64 (probed)", batched.to_vec()),
            // Merged whatever it costs, as before the probe.
            (
                "tract --max-batch-size 64 --no-batch-probe",
                [&batched[..], &["--no-batch-probe"]].concat(),
            ),
            // ONNX Runtime, one session taking turns: one thread per run, then two.
            ("ort unbatched", [&[package][..], &ort].concat()),
            (
                "ort --max-batch-size 64 (probed)",
                [&batched[..], &ort].concat(),
            ),
            (
                "ort --max-batch-size 64 --no-batch-probe",
                [&batched[..], &ort, &["--no-batch-probe"]].concat(),
            ),
            (
                "ort --model-threads 2 unbatched",
                [&[package][..], &ort_two].concat(),
            ),
            (
                "ort --model-threads 2 --max-batch-size 64",
                [&batched[..], &ort_two].concat(),
            ),
            // Two sessions (two copies of the weights), one thread each: two requests run the
            // model at once instead of taking turns at one session's lock.
            (
                "ort --ort-sessions 2 unbatched",
                [&[package][..], &ort_sessions].concat(),
            ),
            (
                "ort --ort-sessions 2 --max-batch-size 64",
                [&batched[..], &ort_sessions].concat(),
            ),
        ];
        let servers = setups
            .iter()
            .map(|(_, args)| Bench::start(self.tiffin, args))
            .collect::<Result<Vec<_>>>()?;
        let mut loads: Vec<Vec<Load>> = servers.iter().map(|_| Vec::new()).collect();
        for _ in 0..self.rounds {
            for (server, runs) in servers.iter().zip(&mut loads) {
                let url = format!("{}/v2/models/{model}/infer", server.url);
                runs.push(self.wrk(&url, Some(body), 64)?);
            }
        }
        println!("{model}, one image per request, through /v2/models/{model}/infer, {how}:");
        for (ix, ((label, _), runs)) in setups.iter().zip(&loads).enumerate() {
            // Each runtime's setups against its own unbatched one (ONNX Runtime's with two
            // threads or two sessions against its one-thread, one-session figure too).
            let base = if ix < 3 { 0 } else { 3 };
            let gains = ratios(runs, &loads[base]);
            let each: Vec<String> = gains.iter().map(|g| format!("{g:.1}x")).collect();
            let load = Load::median(runs);
            println!(
                "{label:<44} 64 conns {:>8.0} req/s  p50 {:.3} ms  p99 {:.3} ms  {:.2}x {} unbatched ({})",
                load.rps,
                load.p50_ms,
                load.p99_ms,
                median(gains.iter().copied()),
                if base == 0 { "tract" } else { "ort" },
                each.join(" ")
            );
        }
        Ok(())
    }
}

/// Makes the wide CNN (`make_cnn.py`, in the virtualenv `bench memory` uses) and packs it with
/// `examples` for the batching probe; returns the archive.
fn wide_cnn(tiffin: &Path, scratch: &Path, examples: &Path) -> Result<PathBuf> {
    let python =
        crate::interop::python("bench-memory-venv", "xtask/requirements-bench-memory.txt")?;
    let source = scratch.join("cnn_wide");
    std::fs::create_dir_all(&source)?;
    let mut make = Command::new(&python);
    make.arg(process::workspace_root().join("xtask/src/bench/make_cnn.py"))
        .arg(source.join("model.onnx"));
    process::announce(&process::shown(&make));
    process::run(&mut make)?;
    std::fs::write(
        source.join("tiffin.toml"),
        r#"[package]
name = "cnn_wide"
version = "1.0.0"
description = "The Keras MNIST example's shape with seeded random weights, for measuring batching."
authors = ["tiffin bench"]
license = "MIT"

[model]
path = "model.onnx"
format = "onnx"

[[signature.inputs]]
name = "image"
dtype = "f32"
shape = ["batch", 1, 28, 28]

[[signature.outputs]]
name = "logits"
dtype = "f32"
shape = ["batch", 10]
"#,
    )?;
    let out = scratch.join("cnn_wide_out");
    std::fs::create_dir_all(&out)?;
    pack_with(tiffin, &source, &out, Some(examples))?;
    Ok(out.join("cnn_wide-1.0.0.tiffin"))
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_command_with_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 5 0 0 0 731 212 9 4 20 0 3";
        let numbers = stat_numbers(line, [4, 14, 15, 16, 17]).unwrap();
        assert_eq!(numbers, [17, 731, 212, 9, 4]);
        assert!(stat_numbers("no command", [4]).is_err());
        assert!(stat_numbers(line, [40]).is_err());
        // Field 3 is the state, a letter.
        assert!(stat_numbers(line, [3]).is_err());
    }

    #[test]
    fn cpu_lists_expand_ranges_in_order() {
        assert_eq!(cpu_list("0-1\n").unwrap(), [0, 1]);
        assert_eq!(cpu_list("3").unwrap(), [3]);
        assert_eq!(cpu_list("0-2,8,10-11").unwrap(), [0, 1, 2, 8, 10, 11]);
        assert!(cpu_list("a-b").is_err());
    }

    /// A program run through [`on_cpu`] is the process it names (taskset execs it) and may
    /// use that CPU alone.
    #[test]
    fn a_command_on_a_cpu_runs_there_alone() {
        let cpu = *cpu_list(&allowed_cpus().unwrap()).unwrap().last().unwrap();
        let output = on_cpu(Path::new("grep"), Some(cpu))
            .args(["Cpus_allowed_list", "/proc/self/status"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            text.split_whitespace().nth(1),
            Some(cpu.to_string().as_str()),
            "{text}"
        );
    }

    /// A shell whose only work is a child's busy loop: the tree's CPU holds the child's, which
    /// the shell's own /proc line does not.
    #[test]
    fn a_tree_counts_the_cpu_of_the_processes_under_its_root() {
        use std::os::unix::process::CommandExt;
        let mut root = Command::new("sh")
            .args(["-c", "sh -c 'while :; do :; done' & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = root.id();
        let own = || -> f64 {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let [user, system] = stat_numbers(&text, [14, 15]).unwrap();
            (user + system) as f64 / TICKS_PER_SECOND
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut tree = 0.0;
        while tree < 0.2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            tree = tree_cpu_seconds(pid).unwrap();
        }
        let own = own();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = root.wait();
        assert!(tree >= 0.2, "the tree used {tree} s");
        assert!(
            own < tree / 2.0,
            "the root alone used {own} s of the tree's {tree} s"
        );
        assert!(tree_cpu_seconds(pid).is_err(), "a process that ended");
    }

    /// wrk's CPU is read from what this process's waited-for children used.
    #[test]
    fn waited_children_cpu_grows_by_what_a_child_used() {
        let before = waited_children_cpu_seconds().unwrap();
        let status = Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let used = waited_children_cpu_seconds().unwrap() - before;
        assert!(used >= 0.05, "the child used {used} s");
    }

    #[test]
    fn wrk_latencies_read_in_milliseconds() {
        assert_eq!(parse_latency("812.00us").unwrap(), 0.812);
        assert_eq!(parse_latency("1.50ms").unwrap(), 1.5);
        assert_eq!(parse_latency("2.00s").unwrap(), 2000.0);
        assert!(parse_latency("3m").is_err());
    }

    #[test]
    fn wrk_scripts_escape_every_byte_lua_would_misread() {
        let post = Post::v2_binary("{\"a\": 'b'}", &[0, 92, 65, 255, 10]);
        assert_eq!(
            post.script(),
            "wrk.method = 'POST'\n\
             wrk.body = '{\"a\": \\039b\\039}\\000\\092A\\255\\010'\n\
             wrk.headers['Content-Type'] = 'application/octet-stream'\n\
             wrk.headers['Inference-Header-Content-Length'] = '10'\n"
        );
    }

    #[test]
    fn v2_json_bodies_put_the_datatype_before_the_data() {
        let post = Post::v2_json("x\"y", &[1, 2], "FP32", &serde_json::json!([0.5, 1]));
        assert_eq!(
            String::from_utf8(post.bytes).unwrap(),
            r#"{"inputs":[{"name":"x\"y","shape":[1,2],"datatype":"FP32","data":[0.5,1]}]}"#
        );
    }

    #[test]
    fn ratios_pair_each_round_with_the_same_round_of_the_base() {
        let load = |rps| Load {
            rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            cpu: None,
        };
        let runs = [load(30.0), load(10.0), load(8.0)];
        let base = [load(10.0), load(5.0), load(8.0)];
        assert_eq!(ratios(&runs, &base), [3.0, 2.0, 1.0]);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }
}
