//! Crash points: a test hook that stops the process at a chosen durable step (an fsync, a
//! rename, a removal) so that a test can kill it there with SIGKILL.
//!
//! Every write of tiffin that must never be seen half done (a package folder or archive, a
//! signature, a blob, a package or a tag in the local store) calls [`point`] just before each
//! step that changes what is on disk for good. With no environment variable set, a point costs
//! one load of a cached flag. The crash-consistency test (`cargo xtask crash`) first runs a
//! command with [`LIST_VAR`] set to learn its points, then runs it again once per point with
//! [`AT_VAR`]`=N`: at its Nth point the process prints [`MARKER`] and waits, and the test kills
//! it. Like git's `GIT_TEST_*` variables, these are for tests only; nothing else sets them.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// `TIFFIN_TEST_CRASH_AT=N`: stop at the Nth crash point (counted from 1) and wait to be killed.
pub const AT_VAR: &str = "TIFFIN_TEST_CRASH_AT";

/// `TIFFIN_TEST_CRASH_POINTS=1`: print every crash point passed, without stopping.
pub const LIST_VAR: &str = "TIFFIN_TEST_CRASH_POINTS";

/// The start of the line written to stderr at each point: `tiffin-crash-point N: WHAT`.
pub const MARKER: &str = "tiffin-crash-point";

/// What the environment asked for, read once.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Off,
    List,
    At(usize),
}

fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        if let Some(n) = std::env::var(AT_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
        {
            Mode::At(n)
        } else if std::env::var_os(LIST_VAR).is_some_and(|v| !v.is_empty()) {
            Mode::List
        } else {
            Mode::Off
        }
    })
}

/// Marks a durable step about to happen; `what` says which, for the test's report.
///
/// At the point [`AT_VAR`] names, this never returns: it prints the marker and sleeps until the
/// process is killed.
pub fn point(what: &str) {
    static PASSED: AtomicUsize = AtomicUsize::new(0);
    let mode = mode();
    if matches!(mode, Mode::Off) {
        return;
    }
    let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    let mut stderr = std::io::stderr().lock();
    match mode {
        Mode::Off => {}
        Mode::List => {
            let _ = writeln!(stderr, "{MARKER} {n}: {what}");
        }
        Mode::At(at) if at == n => {
            let _ = writeln!(stderr, "{MARKER} {n}: {what} (stopped here: kill me)");
            let _ = stderr.flush();
            // Holding stderr's lock keeps other threads from reporting past this point.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Mode::At(_) => {}
    }
}
