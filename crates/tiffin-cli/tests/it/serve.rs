//! `tiffin serve` as an operator runs it: JSON logs with the time to ready, requests answered
//! on a real socket, a refused start's reason, and exit code 0 after SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `tiffin serve`, killed if the test fails before it exits.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tiffin serve ARGS` on a free port with JSON logs, its stderr piped.
fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tiffin"))
        .arg("serve")
        .args(args)
        .args(["--port", "0", "--log-format", "json"])
        .env_remove("TIFFIN_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tiffin serve starts")
}

impl Served {
    fn start(args: &[&str]) -> Served {
        let mut child = spawn(args);
        let stderr = child.stderr.take().expect("piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Served { child, lines }
    }

    /// Starts `tiffin serve` and waits until it is ready: the log lines up to then, and the
    /// address it listens on.
    fn ready(args: &[&str]) -> (Served, Vec<Value>, String) {
        let served = Served::start(args);
        let lines = served.until("ready:");
        let address = lines
            .iter()
            .find_map(|l| message(l).strip_prefix("listening on http://"))
            .expect("the listening line")
            .to_owned();
        (served, lines, address)
    }

    /// Sends `signal` (`-TERM`, `-HUP`) to the server.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// The next log line, parsed: every line `--log-format json` writes is one JSON object.
    fn next(&self) -> Option<Value> {
        let line = self.lines.recv_timeout(Duration::from_secs(60)).ok()?;
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}")),
        )
    }

    /// Log lines up to and including the first whose message starts with `prefix`.
    fn until(&self, prefix: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(line) = self.next() {
            let done = message(&line).starts_with(prefix);
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("no log line starting with {prefix:?}; saw {seen:#?}");
    }

    /// Starts `tiffin serve` expecting it to refuse to serve: exit code 1; its whole stderr.
    fn refused(args: &[&str]) -> String {
        let mut served = Served::start(args);
        assert_eq!(served.exit_code(Duration::from_secs(60)), Some(1));
        // Until the reader thread has read the pipe to its end.
        served.lines.iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits for the process to end, at most `limit`.
    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "tiffin serve still runs after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

/// One HTTP/1.1 request on its own connection; the answer's status and body.
fn http(address: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_logs_json_answers_and_exits_0_on_sigterm() {
    let temp = crate::packed();
    let archive = temp.path().join("breast_cancer-1.0.0.tiffin");
    let (mut served, lines, address) = Served::ready(&[
        archive.to_str().unwrap(),
        "--max-batch-size",
        "breast_cancer=2",
        "--max-delay-us",
        "breast_cancer=300",
    ]);
    let ready = lines.last().unwrap();
    assert!(ready["fields"]["ms"].is_u64(), "{ready}");
    assert_eq!(ready["level"], "INFO");

    let (status, body) = http(&address, "GET", "/v2/health/ready", "");
    assert_eq!((status, body.as_str()), (200, r#"{"ready":true}"#));
    let row = vec!["0"; 30].join(",");
    let (status, body) = http(
        &address,
        "POST",
        "/predict",
        &format!(r#"{{"X": [[{row}]]}}"#),
    );
    assert_eq!(status, 200, "{body}");
    // Batching set for this model by name: at most 2 rows a request.
    let (status, body) = http(
        &address,
        "POST",
        "/predict",
        &format!(r#"{{"X": [[{row}], [{row}], [{row}]]}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 2"), "{body}");
    // Each request's log line carries its id, status and model.
    let logged = served.until("request");
    let request = logged.last().unwrap();
    assert_eq!(request["fields"]["status"], 200, "{request}");
    assert!(request["fields"]["request_id"].is_string(), "{request}");

    served.signal("-TERM");
    assert_eq!(served.exit_code(Duration::from_secs(30)), Some(0));
}

#[test]
fn a_tampered_package_stops_serve_with_the_reason() {
    let temp = crate::packed();
    let folder = temp.path().join("breast_cancer/1.0.0");
    let model = folder.join("model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    let text = Served::refused(&[folder.to_str().unwrap()]);
    assert!(text.contains("not serving: 1 package(s) failed"), "{text}");
    assert!(text.contains("model.onnx"), "{text}");
}

#[test]
fn a_batching_setting_for_a_model_not_served_stops_serve() {
    let temp = crate::packed();
    let archive = temp.path().join("breast_cancer-1.0.0.tiffin");
    let text = Served::refused(&[archive.to_str().unwrap(), "--max-batch-size", "iris=8"]);
    assert!(
        text.contains("names model `iris`, which is not served (no package of that name loaded); served: breast_cancer"),
        "{text}"
    );
}

#[test]
fn sighup_loads_a_package_added_to_a_served_folder() {
    let temp = crate::packed();
    let (mut served, _, address) = Served::ready(&[temp.path().to_str().unwrap()]);
    assert_eq!(http(&address, "GET", "/v2/models/iris", "").0, 404);

    let iris = crate::fixtures().join("iris");
    let out = temp.path().to_str().unwrap();
    let packed = crate::tiffin(
        &["pack", iris.to_str().unwrap(), "--out", out],
        temp.path(),
        Some(temp.path()),
    );
    assert!(packed.starts_with("exit_code: 0"), "{packed}");
    served.signal("-HUP");
    let loaded = served.until("loaded");
    let line = loaded.last().unwrap();
    assert_eq!(line["fields"]["name"], "iris", "{line}");
    let (status, body) = http(&address, "GET", "/v2/models/iris", "");
    assert_eq!(status, 200, "{body}");
    // The model served before is still there.
    assert_eq!(http(&address, "GET", "/v2/models/breast_cancer", "").0, 200);
    served.signal("-TERM");
    assert_eq!(served.exit_code(Duration::from_secs(30)), Some(0));
}

/// A log reader that stops reading must not stop the server: once the pipe is full, lines are
/// dropped and requests answered (written where they were made, the log's writes blocked every
/// worker after some 400 requests).
#[test]
fn a_log_reader_that_stops_reading_does_not_stop_the_server() {
    let temp = crate::packed();
    let archive = temp.path().join("breast_cancer-1.0.0.tiffin");
    let mut child = spawn(&[archive.to_str().unwrap()]);
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut address = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).expect("a log line") > 0 {
        let parsed: Value = serde_json::from_str(&line).expect("a JSON log line");
        let text = message(&parsed);
        if let Some(at) = text.strip_prefix("listening on http://") {
            address = Some(at.to_owned());
        }
        if text.starts_with("ready:") {
            break;
        }
        line.clear();
    }
    let address = address.expect("the listening line");
    // From here on nobody reads the log; each request writes a line of ~150 bytes, so 2000 of
    // them are several times what a pipe holds.
    for n in 0..2000 {
        let (status, body) = http(&address, "GET", "/v2/health/live", "");
        assert_eq!(status, 200, "request {n}: {body}");
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stderr);
}
