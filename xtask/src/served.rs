//! A `tiffin serve` child process for xtask's interop test and server benchmark: started on a
//! free port, its log drained by a thread, ready once `/v2/health/ready` answers 200, killed
//! when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::process;

/// The log line's text before the address, as `tiffin serve` prints it when it listens.
const LISTENING: &str = "listening on http://";

/// A running `tiffin serve`, killed when dropped, so that no failure or panic leaves it behind.
pub(crate) struct Server {
    child: Child,
    /// The server's log lines, read from its stderr by a thread. The pipe must be drained all the
    /// time: a server blocked on a full pipe would stop answering.
    lines: Receiver<String>,
    /// Every line received so far, shown when something fails.
    log: Vec<String>,
}

impl Server {
    pub(crate) fn start(mut command: Command) -> Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start `{}`", process::shown(&command)))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                // Stops at the end of the pipe (the server exited). Once nobody listens (see
                // `forget_log`) lines are still read, so the server never blocks on the pipe.
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        Ok(Self {
            child,
            lines,
            log: Vec::new(),
        })
    }

    /// Waits for the log line that gives the address, then for `/v2/health/ready` to answer 200
    /// (which comes after every package is verified and loaded); returns `127.0.0.1:PORT`.
    pub(crate) fn wait_until_ready(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let address = loop {
            let line = self.next_line(deadline)?;
            if let Some(address) = listening_address(&line) {
                break address;
            }
        };
        loop {
            if ready_status(&address)? == Some(200) {
                return Ok(address);
            }
            if let Some(status) = self.child.try_wait()? {
                self.collect_log();
                self.print_log();
                bail!("tiffin serve exited ({status}) before it was ready");
            }
            if Instant::now() > deadline {
                self.collect_log();
                self.print_log();
                bail!(
                    "tiffin serve was not ready after {}",
                    process::human_duration(timeout)
                );
            }
            // Short, so that the time to ready a benchmark reports is not the polling interval.
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The next log line, failing with the log so far if the server exits or stays silent.
    fn next_line(&mut self, deadline: Instant) -> Result<String> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                self.log.push(line.clone());
                Ok(line)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.print_log();
                let status = self.child.wait()?;
                bail!("tiffin serve exited ({status}) before it listened");
            }
            Err(RecvTimeoutError::Timeout) => {
                self.print_log();
                bail!("tiffin serve printed no `{LISTENING}` line in time");
            }
        }
    }

    /// Stops keeping the log (a load test writes a line per request); it is still drained.
    pub(crate) fn forget_log(&mut self) {
        self.lines = mpsc::channel().1;
        self.log.clear();
    }

    /// Drains the lines logged so far, keeping only those containing one of `needles`: for a
    /// long load whose per-request lines would otherwise pile up in memory.
    pub(crate) fn keep_only(&mut self, needles: &[&str]) {
        let kept = self
            .lines
            .try_iter()
            .filter(|line| needles.iter().any(|needle| line.contains(needle)));
        self.log.extend(kept);
    }

    /// The lines logged up to the first line containing `until` (or for at most a second: the
    /// server writes its log a few milliseconds behind) that contain `needle`.
    pub(crate) fn logged(&mut self, needle: &str, until: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(1);
        self.collect_log();
        while !self.log.iter().any(|line| line.contains(until)) {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(wait) {
                Ok(line) => self.log.push(line),
                Err(_) => break,
            }
        }
        self.log
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    /// The server's process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Moves the lines logged so far into `log`.
    fn collect_log(&mut self) {
        self.log.extend(self.lines.try_iter());
    }

    /// Prints the server's log, indented under the step's own lines.
    pub(crate) fn print_log(&mut self) {
        self.collect_log();
        eprintln!("    log of tiffin serve:");
        for line in &self.log {
            eprintln!("    | {line}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The server may already have exited; there is nothing else to do about an error here.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `host:port` of a `listening on http://127.0.0.1:PORT` log line.
fn listening_address(line: &str) -> Option<String> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    // The address ends at a space, the end of the line or, were the log coloured, an escape.
    let address: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    (!address.is_empty()).then_some(address)
}

/// The status of `GET /v2/health/ready`, or None while the server does not accept connections.
fn ready_status(address: &str) -> Result<Option<u16>> {
    get_status(address, "/v2/health/ready")
}

/// The status of `GET path` at `address`, or None while nothing accepts connections there.
///
/// A plain HTTP/1.1 request on a `TcpStream` is enough for a status line, so xtask needs no
/// HTTP client dependency.
pub(crate) fn get_status(address: &str, path: &str) -> Result<Option<u16>> {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return Ok(None);
    };
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    // A reset or a timeout is the same as no answer yet: the caller tries again.
    if stream.read_to_end(&mut answer).is_err() && answer.is_empty() {
        return Ok(None);
    }
    let answer = String::from_utf8_lossy(&answer);
    Ok(status_code(&answer))
}

/// The body of a 200 answer to `POST path` with a JSON body, over a plain HTTP/1.1 connection
/// (xtask has no HTTP client dependency; the answer is read to the connection's close).
pub(crate) fn post_json(address: &str, path: &str, body: &str) -> Result<String> {
    let mut stream =
        TcpStream::connect(address).with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .with_context(|| format!("{path} answered no HTTP: {answer}"))?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "{path} answered {}",
        head.lines().next().unwrap_or(head)
    );
    Ok(body.to_owned())
}

/// A figure of /proc/PID/status in KiB (`VmRSS:`, `VmHWM:`, `RssAnon:`...), for the memory
/// benchmarks.
pub(crate) fn proc_status_kib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("a number")?
        .parse()?)
}

/// The status code of an HTTP/1.x answer: the second word of its first line.
fn status_code(answer: &str) -> Option<u16> {
    let line = answer.lines().next()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/1."))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_from_the_log() {
        let line = "2026-11-26T20:44:01.667906Z  INFO tiffin::commands::serve: listening on \
                    http://127.0.0.1:33647";
        assert_eq!(listening_address(line).as_deref(), Some("127.0.0.1:33647"));
        let coloured = "\u{1b}[32m INFO\u{1b}[0m listening on http://127.0.0.1:8080\u{1b}[0m";
        assert_eq!(
            listening_address(coloured).as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(listening_address("ready: 3 model version(s)"), None);
    }

    #[test]
    fn reads_a_status_line() {
        assert_eq!(
            status_code("HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            Some(503)
        );
        assert_eq!(
            status_code("HTTP/1.1 200 OK\r\ncontent-length: 14\r\n"),
            Some(200)
        );
        assert_eq!(status_code("garbage"), None);
        assert_eq!(status_code(""), None);
    }
}
