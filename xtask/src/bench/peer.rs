//! The FastAPI + onnxruntime peer of `cargo xtask bench server`: what users run today instead of
//! `tiffin serve`, started beside it so that both are measured in the same run.
//!
//! The app is `peer_fastapi.py` (next to this file), run by uvicorn with a worker per core it
//! is given, uvloop and httptools, in a virtualenv of pinned versions
//! (`xtask/requirements-bench-peer.txt`) made once under the target folder.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{interop, process, registry, served};

/// A running peer server, stopped with its workers when dropped.
pub(super) struct Peer {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(super) address: String,
}

impl Peer {
    /// Starts the peer serving the ONNX file `model` with `workers` worker processes on a free
    /// port, on CPU `cpu` alone when given, its log written to `log`, and waits until it
    /// answers `body` on `/predict` (each worker must be up, which the caller's warm-up run
    /// makes sure of before anything is measured).
    pub(super) fn start(
        model: &Path,
        body: &str,
        log: &Path,
        workers: usize,
        cpu: Option<usize>,
    ) -> Result<Peer> {
        let python = interop::python("bench-peer-venv", "xtask/requirements-bench-peer.txt")?;
        let port = registry::free_port()?;
        let log = std::fs::File::create(log)?;
        let mut command = super::server::on_cpu(&python, cpu);
        command
            .args(["-m", "uvicorn", "peer_fastapi:app", "--workers"])
            .arg(workers.to_string())
            .args(["--loop", "uvloop", "--http", "httptools"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(process::workspace_root().join("xtask/src/bench"))
            .env("PEER_MODEL", model)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so that dropping it stops the workers uvicorn forks too.
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start `{}`", process::shown(&command)))?;
        let peer = Peer {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match served::post_json(&peer.address, "/predict", body) {
                Ok(_) => return Ok(peer),
                Err(e) if Instant::now() > deadline => {
                    bail!("the FastAPI peer did not answer /predict within 60 s: {e:#}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Peer {
    /// The process id of uvicorn's supervisor, whose children are the workers.
    pub(super) fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SIGTERM to the group: uvicorn's supervisor and its workers shut down together. A
        // failure here leaves nothing to do but reap the supervisor.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
