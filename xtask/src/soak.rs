//! `cargo xtask soak` (and, for 10 s, the `soak` step of `cargo xtask ci`): a sustained mixed
//! load against `tiffin serve` on every protocol, with the disturbances a served folder meets in
//! production, checking that nothing leaks and no well-formed request fails.
//!
//! It packs iris into a temporary folder and serves the folder on a free loopback port. Client
//! threads send well-formed requests in turn on every protocol (V2 JSON and binary, MLflow JSON
//! and CSV, V1, `/predict`) over keep-alive connections, and every answer must be a 200 equal to
//! the one given at the start. Meanwhile the folder is reloaded every 2 s; a new iris version is
//! added and later removed; a tampered package is dropped in once (the reload must be refused,
//! naming it, while the good versions stay served) and taken out again; slow clients hold
//! connections with half their headers or half their body sent; and bodies over the server's
//! limit are sent, which must be answered 413. Only those refusals are failures the test means.
//!
//! Pass: no well-formed request failed, the server's open file descriptors are back to their
//! count after the warm-up, its resident memory grew less than 5% from the warm-up to the end,
//! and the tampered package was refused and named. It prints requests per second and latency
//! per protocol, the memory curve and what was done to the server. Everything is bounded: every
//! socket has a timeout, the server is killed when dropped and the temporary folder removed.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::interop::{TempDir, run_quietly};
use crate::process;
use crate::served::{self, Server};

#[derive(Debug, clap::Args)]
pub(crate) struct SoakArgs {
    /// Seconds of load, the warm-up (a fifth, between 2 and 10 s) included; the slow clients of
    /// the last round may keep it a few seconds longer.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The `tiffin` binary to serve with, rather than the debug one of the workspace's test
    /// build (which `cargo xtask ci` has built already, but which costs a whole test build
    /// otherwise): e.g. target/debug/tiffin after `cargo build -p tiffin-cli`.
    #[arg(long, value_name = "PATH")]
    tiffin: Option<PathBuf>,
}

impl SoakArgs {
    /// The short form `cargo xtask ci` runs: 10 s with the test build's `tiffin`.
    pub(crate) fn short() -> SoakArgs {
        SoakArgs {
            seconds: 10,
            tiffin: None,
        }
    }
}

/// The server's body limit for the run: small, so that an oversize body costs little to send.
const BODY_LIMIT: usize = 64 * 1024;

/// The server's request deadline for the run, in milliseconds. It is what drops a client that
/// sent its headers and half its body, so it is far shorter than the default 30 s for the slow
/// clients to be dropped within a short run; a well-formed iris request takes a few
/// milliseconds even on a debug build sharing two cores.
const REQUEST_TIMEOUT_MS: u64 = 3000;

/// The server's deadline for a request's headers (`tiffin_server::Config::header_timeout`,
/// which `tiffin serve` does not let one change): what drops a client stalled in its headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How much later than its deadline the server may drop a slow client: the timers fire on a
/// loaded machine.
const DROP_SLACK: Duration = Duration::from_secs(5);

/// Client threads of the steady load. Two cores are shared by the server and the clients; more
/// threads would measure queueing, not the server.
const CLIENTS: usize = 6;

/// Each socket's read, write and connect timeout: a well-formed request answered later than
/// this is a failure, and nothing can hang the soak.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

const RELOAD_EVERY: Duration = Duration::from_secs(2);
const RSS_EVERY: Duration = Duration::from_millis(500);
const OVERSIZE_EVERY: Duration = Duration::from_millis(250);

/// Largest growth of the server's resident memory from the end of the warm-up to the end.
const RSS_GROWTH_LIMIT: f64 = 0.05;

/// Slow clients of each kind per round.
const SLOW_PER_ROUND: usize = 4;

/// The name the tampered package is dropped in under, which the refusal must give.
const TAMPERED: &str = "iris-tampered";

/// The rows every well-formed request sends (three iris flowers, one of each class).
const ROWS: [[f32; 4]; 3] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 4.2, 1.5],
];

/// The iris input's feature names, the header of the CSV and the columns of `dataframe_split`.
const FEATURES: [&str; 4] = [
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
];

/// One kind of well-formed request: a protocol and, for MLflow, a body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    V2Json,
    V2Binary,
    MlflowJson,
    MlflowCsv,
    V1,
    Predict,
}

const KINDS: [Kind; 6] = [
    Kind::V2Json,
    Kind::V2Binary,
    Kind::MlflowJson,
    Kind::MlflowCsv,
    Kind::V1,
    Kind::Predict,
];

/// A request ready to send.
#[derive(Debug, Clone)]
struct Request {
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::V2Json => "V2 JSON",
            Kind::V2Binary => "V2 binary",
            Kind::MlflowJson => "MLflow JSON",
            Kind::MlflowCsv => "MLflow CSV",
            Kind::V1 => "V1",
            Kind::Predict => "/predict",
        }
    }

    fn index(self) -> usize {
        KINDS
            .iter()
            .position(|k| *k == self)
            .expect("every kind is listed")
    }

    /// This kind's request for `rows`. V2 JSON names version 1.0.0, which stays served; the
    /// others take the latest version, which changes under them when 1.1.0 comes and goes (an
    /// answer from either is the same model's).
    fn request(self, rows: &[[f32; 4]]) -> Request {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let json_body = |value: Value| value.to_string().into_bytes();
        let json_type = vec![("Content-Type", "application/json".to_owned())];
        match self {
            Kind::V2Json => Request {
                path: "/v2/models/iris/versions/1.0.0/infer",
                headers: json_type,
                body: json_body(json!({"inputs": [
                    {"name": "X", "shape": [rows.len(), 4], "datatype": "FP32", "data": flat}
                ]})),
            },
            Kind::V2Binary => {
                let raw: Vec<u8> = flat.iter().flat_map(|x| x.to_le_bytes()).collect();
                let header = json_body(json!({
                    "inputs": [{"name": "X", "shape": [rows.len(), 4], "datatype": "FP32",
                                "parameters": {"binary_data_size": raw.len()}}],
                    "parameters": {"binary_data_output": true},
                }));
                let mut body = header.clone();
                body.extend_from_slice(&raw);
                Request {
                    path: "/v2/models/iris/infer",
                    headers: vec![
                        ("Content-Type", "application/octet-stream".to_owned()),
                        ("Inference-Header-Content-Length", header.len().to_string()),
                    ],
                    body,
                }
            }
            Kind::MlflowJson => Request {
                path: "/invocations",
                headers: json_type,
                body: json_body(json!({"dataframe_split": {"columns": FEATURES, "data": rows}})),
            },
            Kind::MlflowCsv => {
                let mut csv = FEATURES.join(",");
                for row in rows {
                    csv.push('\n');
                    let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
                    csv.push_str(&cells.join(","));
                }
                Request {
                    path: "/invocations",
                    headers: vec![("Content-Type", "text/csv".to_owned())],
                    body: csv.into_bytes(),
                }
            }
            Kind::V1 => Request {
                path: "/v1/models/iris:predict",
                headers: json_type,
                body: json_body(json!({ "instances": rows })),
            },
            Kind::Predict => Request {
                path: "/predict",
                headers: json_type,
                body: json_body(json!({ "X": rows })),
            },
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The answer without what differs between equal answers: the model version the latest
    /// version was at, and the ids. A binary V2 answer is its JSON header so cleaned, followed
    /// by its raw tensors.
    fn normalized(&self) -> Result<Vec<u8>> {
        let (head, raw) = match self.header("inference-header-content-length") {
            Some(length) => {
                let length: usize = length.parse().context("a header length")?;
                ensure!(length <= self.body.len(), "a header longer than the body");
                self.body.split_at(length)
            }
            None => (&self.body[..], &[][..]),
        };
        let mut json: Value = serde_json::from_slice(head).with_context(|| {
            format!(
                "the answer is not JSON: {}",
                String::from_utf8_lossy(&self.body)
            )
        })?;
        if let Some(object) = json.as_object_mut() {
            for key in ["model_version", "model_name", "id"] {
                object.remove(key);
            }
        }
        let mut out = serde_json::to_vec(&json)?;
        out.extend_from_slice(raw);
        Ok(out)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 client over one keep-alive connection, opened when needed and dropped
/// when the server closes it or anything fails. xtask needs nothing more than Content-Length
/// requests and Content-Length or chunked answers, so it takes no HTTP client dependency.
struct Client {
    address: SocketAddr,
    connection: Option<BufReader<TcpStream>>,
}

impl Client {
    fn new(address: SocketAddr) -> Client {
        Client {
            address,
            connection: None,
        }
    }

    fn post(&mut self, request: &Request) -> Result<Answer> {
        self.send("POST", request.path, &request.headers, &request.body)
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Answer> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self
                .connection
                .insert(BufReader::new(connect(self.address)?)),
        };
        let mut bytes = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            bytes.push_str(&format!("{name}: {value}\r\n"));
        }
        bytes.push_str("\r\n");
        let mut bytes = bytes.into_bytes();
        bytes.extend_from_slice(body);
        let outcome = connection
            .get_mut()
            .write_all(&bytes)
            .context("cannot send the request")
            .and_then(|()| read_answer(connection));
        match &outcome {
            Ok(answer)
                if !answer
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close")) => {}
            _ => self.connection = None,
        }
        outcome
    }
}

fn connect(address: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)
        .with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads one answer: status line, headers, and a body of Content-Length bytes or in chunks.
fn read_answer(reader: &mut impl BufRead) -> Result<Answer> {
    let line = read_line(reader)?;
    ensure!(!line.is_empty(), "the connection closed without an answer");
    let mut words = line.split_whitespace();
    ensure!(
        words.next().is_some_and(|v| v.starts_with("HTTP/1.")),
        "not an HTTP answer: {line:?}"
    );
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("a header line without a colon: {line:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size = read_line(reader)?;
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("a chunk size that is not hex: {size:?}"))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while !read_line(reader)?.is_empty() {}
                break;
            }
            let start = answer.body.len();
            answer.body.resize(start + size, 0);
            reader.read_exact(&mut answer.body[start..])?;
            read_line(reader)?;
        }
    } else if let Some(length) = answer.header("content-length") {
        let length: usize = length.parse().context("a Content-Length")?;
        answer.body.resize(length, 0);
        reader
            .read_exact(&mut answer.body)
            .context("the body ended early")?;
    } else {
        reader.read_to_end(&mut answer.body)?;
    }
    Ok(answer)
}

/// A line without its CRLF; empty at the end of the stream.
fn read_line(reader: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("cannot read the answer")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// What one client thread saw.
#[derive(Debug, Default)]
struct Tally {
    /// Latencies of the successful requests, per kind.
    latencies: [Vec<Duration>; 6],
    /// Failed well-formed requests, per kind.
    failures: [usize; 6],
    /// The first few failures, said.
    said: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.latencies.iter_mut().zip(other.latencies) {
            mine.extend(theirs);
        }
        for (mine, theirs) in self.failures.iter_mut().zip(other.failures) {
            *mine += theirs;
        }
        self.said.extend(other.said);
        self.said.truncate(20);
    }

    fn failed(&self) -> usize {
        self.failures.iter().sum()
    }
}

/// The steady load of one thread: every kind in turn (starting at `first`, so the threads do
/// not all send the same kind at once) until `stop`, each answer checked against `expected`.
fn load(
    address: SocketAddr,
    requests: &[Request],
    expected: &[Vec<u8>],
    first: usize,
    stop: &AtomicBool,
) -> Tally {
    let mut client = Client::new(address);
    let mut tally = Tally::default();
    let mut at = first;
    while !stop.load(Ordering::Relaxed) {
        let kind = KINDS[at % KINDS.len()];
        at += 1;
        let started = Instant::now();
        let outcome = client.post(&requests[kind.index()]).and_then(|answer| {
            ensure!(
                answer.status == 200,
                "answered {}: {}",
                answer.status,
                answer.text()
            );
            ensure!(
                answer.normalized()? == expected[kind.index()],
                "answered otherwise than at the start: {}",
                answer.text()
            );
            Ok(())
        });
        match outcome {
            Ok(()) => tally.latencies[kind.index()].push(started.elapsed()),
            Err(err) => {
                tally.failures[kind.index()] += 1;
                if tally.said.len() < 5 {
                    tally.said.push(format!("{}: {err:#}", kind.label()));
                }
            }
        }
    }
    tally
}

/// Runs `CLIENTS` load threads until `stop` and returns what they saw together.
fn spawn_load<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    address: SocketAddr,
    requests: &'s [Request],
    expected: &'s [Vec<u8>],
    stop: &'s AtomicBool,
) -> Vec<std::thread::ScopedJoinHandle<'s, Tally>> {
    (0..CLIENTS)
        .map(|n| scope.spawn(move || load(address, requests, expected, n, stop)))
        .collect()
}

fn join_load(handles: Vec<std::thread::ScopedJoinHandle<'_, Tally>>) -> Result<Tally> {
    let mut all = Tally::default();
    for handle in handles {
        let tally = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        all.merge(tally);
    }
    Ok(all)
}

/// The folders of the run: the one served, and where packages are made before they are moved
/// into it whole (a rename in the same file system, so a reload never sees half a package).
struct Folders {
    _root: TempDir,
    served: PathBuf,
    staging: PathBuf,
}

/// What the disturbing thread did and saw.
#[derive(Debug, Default)]
struct Disturbed {
    reloads: usize,
    /// What happened, with the time since the start of the phase.
    events: Vec<String>,
    /// Everything that went otherwise than it should.
    problems: Vec<String>,
    /// Whether the tampered package was refused by a reload answer naming it.
    tampered_refused: bool,
}

/// Asks for a reload and returns its answer (status and JSON body).
fn reload(client: &mut Client) -> Result<(u16, Value)> {
    let answer = client.send("POST", "/admin/reload", &[], b"")?;
    let body = serde_json::from_slice(&answer.body)
        .with_context(|| format!("the reload answered no JSON: {}", answer.text()))?;
    Ok((answer.status, body))
}

/// Whether a reload answer's list `key` holds iris `version`.
fn lists(answer: &Value, key: &str, version: &str) -> bool {
    answer[key].as_array().is_some_and(|entries| {
        entries
            .iter()
            .any(|e| e["name"] == "iris" && e["version"] == version)
    })
}

/// Reloads every `RELOAD_EVERY` until `stop`; on the way, at fixed shares of the phase's
/// `length`, adds iris 1.1.0, drops in the tampered package and takes it out, then removes
/// 1.1.0, each followed by a reload whose answer must say so. Both go back to the staging
/// folder, for the next phase to use again.
fn disturb(
    address: SocketAddr,
    folders: &Folders,
    length: Duration,
    stop: &AtomicBool,
) -> Disturbed {
    let mut client = Client::new(address);
    let mut seen = Disturbed::default();
    let start = Instant::now();
    let at = |fraction: f64| length.mul_f64(fraction);
    let (add_at, tamper_at, remove_at) = (at(0.15), at(0.35), at(0.6));
    let (mut added, mut tampered, mut removed) = (false, false, false);
    let mut next_reload = start + RELOAD_EVERY;
    let when = |start: Instant| format!("{:.1} s", start.elapsed().as_secs_f64());
    while !stop.load(Ordering::Relaxed) {
        let elapsed = start.elapsed();
        let outcome: Result<()> = if !added && elapsed >= add_at {
            added = true;
            (|| {
                std::fs::rename(
                    folders.staging.join("out/iris-1.1.0.tiffin"),
                    folders.served.join("iris-1.1.0.tiffin"),
                )?;
                let (status, answer) = reload(&mut client)?;
                seen.reloads += 1;
                ensure!(
                    status == 200 && lists(&answer, "loaded", "1.1.0"),
                    "the reload after adding iris 1.1.0 answered {status}: {answer}"
                );
                seen.events
                    .push(format!("{}: iris 1.1.0 added and loaded", when(start)));
                Ok(())
            })()
        } else if !tampered && elapsed >= tamper_at {
            tampered = true;
            (|| {
                let dropped = folders.served.join(TAMPERED);
                std::fs::rename(folders.staging.join(TAMPERED), &dropped)?;
                let (status, answer) = reload(&mut client)?;
                seen.reloads += 1;
                let named = answer["failed"]
                    .as_array()
                    .is_some_and(|failed| failed.iter().any(|f| f["package"] == TAMPERED));
                ensure!(
                    status == 409 && named,
                    "the reload with the tampered package in the folder answered {status} \
                     without naming `{TAMPERED}` as refused: {answer}"
                );
                seen.tampered_refused = true;
                let reason = answer["failed"][0]["reason"].as_str().unwrap_or("");
                seen.events.push(format!(
                    "{}: tampered package `{TAMPERED}` dropped in, reload refused (409): {reason}",
                    when(start)
                ));
                // Back to the staging folder, for the next phase to drop in again.
                std::fs::rename(&dropped, folders.staging.join(TAMPERED))?;
                let (status, answer) = reload(&mut client)?;
                seen.reloads += 1;
                ensure!(
                    status == 200,
                    "the reload after taking the tampered package out answered {status}: {answer}"
                );
                seen.events.push(format!(
                    "{}: tampered package taken out, reload 200",
                    when(start)
                ));
                Ok(())
            })()
        } else if added && !removed && elapsed >= remove_at {
            removed = true;
            (|| {
                std::fs::rename(
                    folders.served.join("iris-1.1.0.tiffin"),
                    folders.staging.join("out/iris-1.1.0.tiffin"),
                )?;
                let (status, answer) = reload(&mut client)?;
                seen.reloads += 1;
                ensure!(
                    status == 200 && lists(&answer, "removed", "1.1.0"),
                    "the reload after removing iris 1.1.0 answered {status}: {answer}"
                );
                seen.events
                    .push(format!("{}: iris 1.1.0 removed and unloaded", when(start)));
                Ok(())
            })()
        } else if Instant::now() >= next_reload {
            next_reload += RELOAD_EVERY;
            reload(&mut client).and_then(|(status, answer)| {
                seen.reloads += 1;
                ensure!(status == 200, "a reload answered {status}: {answer}");
                Ok(())
            })
        } else {
            std::thread::sleep(Duration::from_millis(20));
            Ok(())
        };
        if let Err(err) = outcome {
            seen.problems.push(format!("{err:#}"));
        }
    }
    seen
}

/// What the oversize thread saw.
#[derive(Debug, Default)]
struct Oversize {
    sent: usize,
    /// Answers other than 413, said.
    wrong: Vec<String>,
}

/// Sends a well-formed body over the server's limit every `OVERSIZE_EVERY`, on each protocol in
/// turn, until `stop`; each must be answered 413.
fn oversize(address: SocketAddr, stop: &AtomicBool) -> Oversize {
    // Rows enough that even the binary body (16 bytes a row) is over the limit.
    let rows = vec![ROWS[0]; BODY_LIMIT / 16 + 64];
    let requests: Vec<Request> = KINDS.iter().map(|k| k.request(&rows)).collect();
    let mut seen = Oversize::default();
    let mut at = 0;
    while !stop.load(Ordering::Relaxed) {
        let kind = KINDS[at % KINDS.len()];
        at += 1;
        // A connection each: the server closes one whose body it did not read.
        let mut client = Client::new(address);
        seen.sent += 1;
        match client.post(&requests[kind.index()]) {
            Ok(answer) if answer.status == 413 => {}
            Ok(answer) => seen.wrong.push(format!(
                "{}: {} {}",
                kind.label(),
                answer.status,
                answer.text()
            )),
            Err(err) => seen.wrong.push(format!("{}: {err:#}", kind.label())),
        }
        std::thread::sleep(OVERSIZE_EVERY);
    }
    seen
}

/// How a slow client stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// Half of its request headers sent.
    InHeaders,
    /// Its headers and half of its body sent.
    InBody,
}

impl Stall {
    /// When the server must have dropped it by.
    fn deadline(self) -> Duration {
        match self {
            Stall::InHeaders => HEADER_TIMEOUT + DROP_SLACK,
            Stall::InBody => Duration::from_millis(REQUEST_TIMEOUT_MS) + DROP_SLACK,
        }
    }
}

/// What the slow clients saw.
#[derive(Debug, Default)]
struct Slow {
    rounds: usize,
    /// Per stall: how long the server took to close each connection, and what it answered.
    dropped: Vec<(Stall, Duration, Option<u16>)>,
    /// Slow clients the server did not drop in time, or that could not be set up.
    problems: Vec<String>,
}

/// Opens `SLOW_PER_ROUND` connections of each of `stalls`, a round a second after the start
/// and then every 20 s while a round still ends before `end`, and waits for the server to close
/// each.
fn slow_clients(address: SocketAddr, end: Instant, stalls: &[Stall], stop: &AtomicBool) -> Slow {
    let mut seen = Slow::default();
    let round_length = stalls
        .iter()
        .map(|s| s.deadline())
        .max()
        .unwrap_or_default();
    let mut next = Instant::now() + Duration::from_secs(1);
    loop {
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        seen.rounds += 1;
        // In the order given: those stalled in their body first, their deadline is the earlier.
        let opened: Vec<(Stall, Result<TcpStream>)> = stalls
            .iter()
            .copied()
            .flat_map(|stall| std::iter::repeat_n(stall, SLOW_PER_ROUND))
            .map(|stall| (stall, stall_connection(address, stall)))
            .collect();
        let started = Instant::now();
        for (stall, stream) in opened {
            let outcome = stream.and_then(|stream| wait_for_drop(stream, started, stall));
            match outcome {
                Ok((after, status)) => seen.dropped.push((stall, after, status)),
                Err(err) => seen.problems.push(format!("{stall:?}: {err:#}")),
            }
        }
        next = started + Duration::from_secs(20);
        if next + round_length > end {
            return seen;
        }
    }
}

/// A connection that sent part of a request, then stalls.
fn stall_connection(address: SocketAddr, stall: Stall) -> Result<TcpStream> {
    let mut stream = connect(address)?;
    let body = Kind::Predict.request(&ROWS).body;
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    match stall {
        Stall::InHeaders => stream.write_all(&head.as_bytes()[..head.len() / 2])?,
        Stall::InBody => {
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body[..body.len() / 2])?;
        }
    }
    Ok(stream)
}

/// Reads until the server closes the connection, at most until the stall's deadline; returns
/// when it closed (from `since`) and the status of what it answered first, if anything.
fn wait_for_drop(
    mut stream: TcpStream,
    since: Instant,
    stall: Stall,
) -> Result<(Duration, Option<u16>)> {
    let deadline = since + stall.deadline();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        // Past the deadline, one last look at what the server did meanwhile.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        ensure!(
            Instant::now() < deadline + Duration::from_millis(100),
            "the server still held the connection {} after it stalled{}",
            process::human_duration(stall.deadline()),
            if answer.is_empty() {
                String::new()
            } else {
                format!(
                    " (after answering {:?})",
                    String::from_utf8_lossy(&answer)
                        .lines()
                        .next()
                        .unwrap_or("")
                )
            }
        );
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            // A reset is the server dropping the connection as well.
            Err(err) if err.kind() == ErrorKind::ConnectionReset => break,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok());
    Ok((since.elapsed(), status))
}

/// The number of file descriptors the process has open.
fn open_fds(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd (is the server still running?)"))?
        .count())
}

/// The count of open descriptors once it has stayed the same for half a second (connections
/// just closed by clients take the server a moment to notice), or after 5 s whatever it is.
fn settled_fds(pid: u32) -> Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = open_fds(pid)?;
    let mut same = 0;
    while same < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = open_fds(pid)?;
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    Ok(last)
}

fn rss_mib(pid: u32) -> Result<f64> {
    Ok(served::proc_status_kib(pid, "VmRSS:")? / 1024.0)
}

/// Resident memory that is not file pages (the heap and stacks, not the binary's code): what a
/// leak grows.
fn anon_mib(pid: u32) -> Result<f64> {
    Ok(served::proc_status_kib(pid, "RssAnon:")? / 1024.0)
}

/// The `q` quantile of sorted latencies, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at].as_secs_f64() * 1e3
}

/// Packs iris into the served folder, and into the staging folder version 1.1.0 (to add
/// later) and the tampered package (a 1.2.0 whose model changed after packing).
fn prepare(tiffin: &Path) -> Result<Folders> {
    let root = TempDir::new("tiffin-soak")?;
    let served = root.path().join("served");
    let staging = root.path().join("staging");
    std::fs::create_dir_all(&served)?;
    std::fs::create_dir_all(&staging)?;
    let iris = process::workspace_root().join("fixtures/iris");
    pack(tiffin, &iris, &served)?;
    for version in ["1.1.0", "1.2.0"] {
        let source = staging.join(format!("iris-{version}-source"));
        std::fs::create_dir_all(&source)?;
        for entry in std::fs::read_dir(&iris)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), source.join(entry.file_name()))?;
            }
        }
        let toml = source.join("tiffin.toml");
        let text = std::fs::read_to_string(&toml)?;
        ensure!(
            text.contains("version = \"1.0.0\""),
            "fixtures/iris/tiffin.toml no longer says version = \"1.0.0\""
        );
        std::fs::write(
            &toml,
            text.replace("version = \"1.0.0\"", &format!("version = \"{version}\"")),
        )?;
        pack(tiffin, &source, &staging.join("out"))?;
    }
    // The tampered package: 1.2.0's folder with one byte of its model changed, which its
    // checksums no longer match.
    let tampered = staging.join(TAMPERED);
    std::fs::create_dir_all(&tampered)?;
    for entry in std::fs::read_dir(staging.join("out/iris/1.2.0"))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), tampered.join(entry.file_name()))?;
        }
    }
    let model = tampered.join("model.onnx");
    let mut bytes = std::fs::read(&model)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&model, bytes)?;
    Ok(Folders {
        _root: root,
        served,
        staging,
    })
}

fn pack(tiffin: &Path, source: &Path, out: &Path) -> Result<()> {
    let mut command = Command::new(tiffin);
    command
        .args(["-q", "pack"])
        .arg(source)
        .arg("--out")
        .arg(out);
    run_quietly(&mut command)
}

pub(crate) fn run(args: &SoakArgs) -> Result<()> {
    ensure!(args.seconds >= 8, "--seconds must be at least 8");
    let tiffin = match &args.tiffin {
        Some(path) => path.clone(),
        None => crate::test_build::tiffin()?,
    };
    let total = Duration::from_secs(args.seconds);
    // At least 4 s: the rehearsal's slow clients stalled in their body take 1 + 3 s.
    let warm_up = (total / 5).clamp(Duration::from_secs(4), Duration::from_secs(10));
    let measured = total - warm_up;

    let folders = prepare(&tiffin)?;
    let mut serve = Command::new(&tiffin);
    serve
        .arg("serve")
        .arg(&folders.served)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(["--max-body-bytes", &BODY_LIMIT.to_string()])
        .args(["--timeout-ms", &REQUEST_TIMEOUT_MS.to_string()])
        // Per-request lines at info, as in production; `TIFFIN_LOG=warn` in the caller's
        // environment must not hide the line giving the port.
        .env("TIFFIN_LOG", "info");
    process::announce(&process::shown(&serve));
    let mut server = Server::start(serve)?;
    let address: SocketAddr = server
        .wait_until_ready(Duration::from_secs(60))?
        .parse()
        .context("the server's address")?;
    let pid = server.id();
    // Only the lines worth checking are kept; the per-request ones are drained and dropped.
    let worth_keeping = ["WARN", "ERROR", "panicked", TAMPERED];
    let outcome = soak(&mut server, address, &folders, warm_up, measured);
    server.keep_only(&worth_keeping);
    let report = match outcome {
        Ok(report) => report,
        Err(err) => {
            server.print_log();
            return Err(err);
        }
    };
    let tampered_logged = server.logged(TAMPERED, "reload refused");
    let errors = server.logged("ERROR", "reload refused");
    drop(server);
    report.print(&tampered_logged, pid);

    let mut failed = Vec::new();
    if report.main.load.failed() > 0 {
        failed.push(format!(
            "{} well-formed requests failed, first: {}",
            report.main.load.failed(),
            report.main.load.said.join("; ")
        ));
    }
    if report.fds_end != report.fds_baseline {
        failed.push(format!(
            "the server had {} file descriptors open at the end, {} after the warm-up",
            report.fds_end, report.fds_baseline
        ));
    }
    let growth = report.rss_end / report.rss_baseline - 1.0;
    if growth >= RSS_GROWTH_LIMIT {
        failed.push(format!(
            "the server's RSS grew {:.1}% from the warm-up to the end (limit {:.0}%)",
            growth * 100.0,
            RSS_GROWTH_LIMIT * 100.0
        ));
    }
    if tampered_logged.is_empty() {
        failed.push(format!(
            "the server's log does not name the tampered package `{TAMPERED}`"
        ));
    }
    if !errors.is_empty() {
        failed.push(format!("the server logged errors: {}", errors.join(" | ")));
    }
    if report.rehearsal.load.failed() > 0 {
        failed.push(format!(
            "{} well-formed requests failed in the warm-up, first: {}",
            report.rehearsal.load.failed(),
            report.rehearsal.load.said.join("; ")
        ));
    }
    failed.extend(
        report
            .rehearsal
            .problems()
            .into_iter()
            .map(|p| format!("in the warm-up: {p}")),
    );
    failed.extend(report.main.problems());
    failed.extend(report.end_problems.iter().cloned());
    if !failed.is_empty() {
        bail!("the soak failed:\n  - {}", failed.join("\n  - "));
    }
    eprintln!("    soak passed");
    Ok(())
}

/// Everything one soak measured.
struct Report {
    warm_up: Duration,
    measured: Duration,
    /// What the warm-up saw; only its failures are reported.
    rehearsal: Phase,
    /// What the measured load saw.
    main: Phase,
    fds_baseline: usize,
    fds_end: usize,
    rss_baseline: f64,
    rss_end: f64,
    /// Resident memory that is not file pages (heap, stacks), after the warm-up and at the end,
    /// in MiB: what a leak would grow.
    anon: (f64, f64),
    /// (seconds since the start of the load, RSS and its part not file pages, in MiB).
    rss_curve: Vec<(f64, f64, f64)>,
    end_problems: Vec<String>,
}

/// What one phase of load and disturbances saw.
struct Phase {
    load: Tally,
    disturbed: Disturbed,
    oversize: Oversize,
    slow: Slow,
}

impl Phase {
    /// What went wrong in the phase, besides failed well-formed requests.
    fn problems(&self) -> Vec<String> {
        let mut problems = self.disturbed.problems.clone();
        if !self.disturbed.tampered_refused {
            problems.push(format!(
                "the tampered package `{TAMPERED}` was not refused by name"
            ));
        }
        problems.extend(
            self.oversize
                .wrong
                .iter()
                .map(|w| format!("an oversize body was not answered 413: {w}")),
        );
        if self.oversize.sent == 0 {
            problems.push("no oversize body was sent".into());
        }
        problems.extend(
            self.slow
                .problems
                .iter()
                .map(|p| format!("a slow client: {p}")),
        );
        problems
    }
}

/// Runs the load, the disturbances, the oversize bodies and slow clients stalled as `stalls`
/// say for `length`, calling `sample` every `RSS_EVERY`; the slow clients' last round may
/// outlast it by their deadline.
fn phase(
    server: &mut Server,
    address: SocketAddr,
    folders: &Folders,
    (requests, expected): (&[Request], &[Vec<u8>]),
    length: Duration,
    stalls: &[Stall],
    sample: &mut dyn FnMut(&mut Server) -> Result<()>,
) -> Result<Phase> {
    let stop = AtomicBool::new(false);
    let end = Instant::now() + length;
    std::thread::scope(|scope| -> Result<Phase> {
        let load = spawn_load(scope, address, requests, expected, &stop);
        let disturbing = scope.spawn(|| disturb(address, folders, length, &stop));
        let oversizing = scope.spawn(|| oversize(address, &stop));
        let slowing = scope.spawn(|| slow_clients(address, end, stalls, &stop));
        while Instant::now() < end {
            std::thread::sleep(RSS_EVERY);
            sample(server)?;
        }
        stop.store(true, Ordering::Relaxed);
        let load = join_load(load)?;
        let panicked = |what: &str| anyhow::anyhow!("the {what} thread panicked");
        let disturbed = disturbing.join().map_err(|_| panicked("disturbing"))?;
        let oversize = oversizing.join().map_err(|_| panicked("oversize"))?;
        let slow = slowing.join().map_err(|_| panicked("slow client"))?;
        Ok(Phase {
            load,
            disturbed,
            oversize,
            slow,
        })
    })
}

/// The soak itself, on a ready server: warm-up, baseline, measured load with disturbances,
/// then the end state.
fn soak(
    server: &mut Server,
    address: SocketAddr,
    folders: &Folders,
    warm_up: Duration,
    measured: Duration,
) -> Result<Report> {
    let pid = server.id();
    let requests: Vec<Request> = KINDS.iter().map(|k| k.request(&ROWS)).collect();
    // The answers every later one must equal: one of each kind, on a connection of its own.
    let mut expected = Vec::new();
    let mut client = Client::new(address);
    for (kind, request) in KINDS.iter().zip(&requests) {
        let answer = client.post(request)?;
        ensure!(
            answer.status == 200,
            "{} answered {}: {}",
            kind.label(),
            answer.status,
            answer.text()
        );
        expected.push(answer.normalized()?);
    }
    drop(client);

    let start = Instant::now();
    let mut rss_curve = Vec::new();
    let sample = |server: &mut Server, curve: &mut Vec<(f64, f64, f64)>| -> Result<()> {
        curve.push((start.elapsed().as_secs_f64(), rss_mib(pid)?, anon_mib(pid)?));
        server.keep_only(&["WARN", "ERROR", "panicked", TAMPERED]);
        Ok(())
    };

    // Warm-up: the same load with every disturbance once (slow clients only in their body:
    // one stalled in its headers takes 10 s to drop), so that every code path has run, its
    // pages are resident, and the allocator's arenas have reached their working size before
    // the baseline is taken. What grows after it grows with repetition.
    process::announce(&format!(
        "warm-up: {} s of load on every protocol with every disturbance once",
        warm_up.as_secs()
    ));
    let rehearsal = phase(
        server,
        address,
        folders,
        (&requests, &expected),
        warm_up,
        &[Stall::InBody],
        &mut |server| sample(server, &mut rss_curve),
    )?;
    let fds_baseline = settled_fds(pid)?;
    let rss_baseline = rss_mib(pid)?;
    let anon_baseline = anon_mib(pid)?;
    eprintln!(
        "    after the warm-up: {fds_baseline} file descriptors open, RSS {rss_baseline:.1} MiB"
    );

    process::announce(&format!(
        "soak: {} s of load on every protocol with reloads, a version added and removed, a \
         tampered package, slow clients and oversize bodies",
        measured.as_secs()
    ));
    let main_start = Instant::now();
    let main = phase(
        server,
        address,
        folders,
        (&requests, &expected),
        measured,
        &[Stall::InBody, Stall::InHeaders],
        &mut |server| sample(server, &mut rss_curve),
    )?;
    let measured = main_start.elapsed().min(measured);

    // Everything closed: the server must be back where it was after the warm-up.
    let fds_end = settled_fds(pid)?;
    let rss_end = rss_mib(pid)?;
    let anon_end = anon_mib(pid)?;
    rss_curve.push((start.elapsed().as_secs_f64(), rss_end, anon_end));
    let mut end_problems = Vec::new();
    let mut client = Client::new(address);
    match client.send("GET", "/v2/models/iris", &[], b"") {
        Ok(answer) if answer.status == 200 => {
            let meta: Value = serde_json::from_slice(&answer.body)?;
            if meta["versions"] != json!(["1.0.0"]) {
                end_problems.push(format!(
                    "iris's versions at the end are {}, not [\"1.0.0\"]",
                    meta["versions"]
                ));
            }
        }
        Ok(answer) => end_problems.push(format!(
            "GET /v2/models/iris answered {} at the end: {}",
            answer.status,
            answer.text()
        )),
        Err(err) => end_problems.push(format!("the server did not answer at the end: {err:#}")),
    }
    drop(client);
    // The check above opened a connection: wait for the server to close its end too.
    let fds_end = if fds_end == fds_baseline {
        settled_fds(pid)?
    } else {
        fds_end
    };
    Ok(Report {
        warm_up,
        measured,
        rehearsal,
        main,
        fds_baseline,
        fds_end,
        rss_baseline,
        rss_end,
        anon: (anon_baseline, anon_end),
        rss_curve,
        end_problems,
    })
}

impl Report {
    fn print(&self, tampered_logged: &[String], pid: u32) {
        let seconds = self.measured.as_secs_f64();
        println!();
        println!(
            "soak of tiffin serve (pid {pid}): {:.0} s warm-up, then {seconds:.0} s measured, \
             {CLIENTS} client threads on keep-alive connections",
            self.warm_up.as_secs_f64()
        );
        println!(
            "{:<12} {:>9} {:>8} {:>8} {:>8} {:>9}",
            "protocol", "requests", "req/s", "p50 ms", "p99 ms", "failures"
        );
        let mut all = Vec::new();
        for kind in KINDS {
            let mut latencies = self.main.load.latencies[kind.index()].clone();
            latencies.sort_unstable();
            let failures = self.main.load.failures[kind.index()];
            println!(
                "{:<12} {:>9} {:>8.0} {:>8.2} {:>8.2} {:>9}",
                kind.label(),
                latencies.len() + failures,
                latencies.len() as f64 / seconds,
                quantile_ms(&latencies, 0.5),
                quantile_ms(&latencies, 0.99),
                failures
            );
            all.extend(latencies);
        }
        all.sort_unstable();
        println!(
            "{:<12} {:>9} {:>8.0} {:>8.2} {:>8.2} {:>9}",
            "all",
            all.len() + self.main.load.failed(),
            all.len() as f64 / seconds,
            quantile_ms(&all, 0.5),
            quantile_ms(&all, 0.99),
            self.main.load.failed()
        );
        println!(
            "warm-up: {} requests, {} reloads, {} changes of the folder (iris 1.1.0 added and \
             removed, the tampered package refused), {} oversize bodies, {} slow clients",
            self.rehearsal
                .load
                .latencies
                .iter()
                .map(Vec::len)
                .sum::<usize>()
                + self.rehearsal.load.failed(),
            self.rehearsal.disturbed.reloads,
            self.rehearsal.disturbed.events.len(),
            self.rehearsal.oversize.sent,
            self.rehearsal.slow.dropped.len()
        );
        println!(
            "reloads: {} (every {} s, and after each change of the folder)",
            self.main.disturbed.reloads,
            RELOAD_EVERY.as_secs()
        );
        for event in &self.main.disturbed.events {
            println!("  {event}");
        }
        for line in tampered_logged.iter().take(2) {
            println!("  server log: {line}");
        }
        for stall in [Stall::InHeaders, Stall::InBody] {
            let dropped: Vec<_> = self
                .main
                .slow
                .dropped
                .iter()
                .filter(|d| d.0 == stall)
                .collect();
            let slowest = dropped.iter().map(|d| d.1).max().unwrap_or_default();
            let answers: Vec<String> = dropped
                .iter()
                .map(|d| {
                    d.2.map_or("closed".to_owned(), |s| format!("{s} then closed"))
                })
                .collect();
            println!(
                "slow clients stalled {}: {} in {} round(s), dropped by the server within {:.1} s ({})",
                match stall {
                    Stall::InHeaders => "in their headers",
                    Stall::InBody => "halfway through their body",
                },
                dropped.len(),
                self.main.slow.rounds,
                slowest.as_secs_f64(),
                dedup(answers).join(", ")
            );
        }
        println!(
            "oversize bodies (over {} KiB, every protocol): {} sent, {} answered 413",
            BODY_LIMIT / 1024,
            self.main.oversize.sent,
            self.main.oversize.sent - self.main.oversize.wrong.len()
        );
        println!(
            "file descriptors: {} after the warm-up, {} at the end",
            self.fds_baseline, self.fds_end
        );
        println!(
            "RSS: {:.1} MiB after the warm-up, {:.1} MiB at the end ({:+.1}%)",
            self.rss_baseline,
            self.rss_end,
            (self.rss_end / self.rss_baseline - 1.0) * 100.0,
        );
        let (anon_baseline, anon_end) = self.anon;
        println!(
            "  of which not file pages (heap, stacks): {anon_baseline:.1} MiB after the warm-up, \
             {anon_end:.1} MiB at the end ({:+.1}%)",
            (anon_end / anon_baseline - 1.0) * 100.0
        );
        println!(
            "RSS/not file pages every {} ms from the start of the warm-up, MiB:",
            RSS_EVERY.as_millis()
        );
        for line in self.rss_curve.chunks(10) {
            let cells: Vec<String> = line
                .iter()
                .map(|(t, rss, anon)| format!("{t:5.1}s {rss:4.1}/{anon:3.1}"))
                .collect();
            println!("  {}", cells.join("  "));
        }
    }
}

/// Each distinct text once, with how many times it came: `503 then closed x4`.
fn dedup(texts: Vec<String>) -> Vec<String> {
    let mut counted: Vec<(String, usize)> = Vec::new();
    for text in texts {
        match counted.iter_mut().find(|(t, _)| *t == text) {
            Some((_, n)) => *n += 1,
            None => counted.push((text, 1)),
        }
    }
    counted
        .into_iter()
        .map(|(t, n)| format!("{t} x{n}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_length_and_chunked_answers() {
        let mut plain: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\n\r\nhelloHTTP/1.1 413 X\r\n";
        let answer = read_answer(&mut plain).unwrap();
        assert_eq!(
            (answer.status, answer.body.as_slice()),
            (200, &b"hello"[..])
        );
        assert_eq!(answer.header("X-A"), Some("b"));
        let mut chunked: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                                   3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(read_answer(&mut chunked).unwrap().body, b"abcde");
        let mut closed: &[u8] = b"";
        assert!(read_answer(&mut closed).is_err());
    }

    #[test]
    fn binary_answers_normalize_their_header_only() {
        let head = br#"{"model_name":"iris","model_version":"1.1.0","outputs":[]}"#;
        let mut body = head.to_vec();
        body.extend_from_slice(&[1, 2, 3]);
        let answer = Answer {
            status: 200,
            headers: vec![(
                "Inference-Header-Content-Length".into(),
                head.len().to_string(),
            )],
            body,
        };
        let mut expected = br#"{"outputs":[]}"#.to_vec();
        expected.extend_from_slice(&[1, 2, 3]);
        assert_eq!(answer.normalized().unwrap(), expected);
    }

    #[test]
    fn oversize_requests_are_over_the_limit_and_the_others_under() {
        let rows = vec![ROWS[0]; BODY_LIMIT / 16 + 64];
        for kind in KINDS {
            assert!(kind.request(&rows).body.len() > BODY_LIMIT, "{kind:?}");
            assert!(kind.request(&ROWS).body.len() < 1024, "{kind:?}");
        }
    }

    #[test]
    fn quantiles_of_sorted_latencies() {
        let ms = |n| Duration::from_millis(n);
        let sorted = [ms(1), ms(2), ms(3), ms(4), ms(100)];
        assert_eq!(quantile_ms(&sorted, 0.5), 3.0);
        assert_eq!(quantile_ms(&sorted, 0.99), 100.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }
}
