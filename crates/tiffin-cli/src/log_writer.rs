//! The log writer of `tiffin serve`: lines are appended to a bounded buffer that a thread of its
//! own writes out every few milliseconds, so that logging never makes a request wait.
//!
//! Written where they were made, log lines cost each request a `write(2)`, and a log reader that
//! stopped reading (a stalled pipe, a log driver that blocks) filled the pipe after some 400
//! requests and then held every async worker in `write`: the server answered nothing more. A
//! writer thread woken for each line (tracing-appender's non-blocking writer) fixed that and
//! raised throughput, but its wake-ups, one every few requests, competed with the workers for
//! the cores and raised the 99th percentile latency by 1-2 ms at 8 connections. Here the thread
//! wakes on a timer while there is output and sleeps while there is none; a full buffer drops
//! lines and counts them rather than wait.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::Thread;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Where log lines go: cheap to clone, given to tracing-subscriber as its writer.
#[derive(Clone)]
pub(crate) struct LogBuffer {
    shared: Arc<Shared>,
}

struct Shared {
    lines: Mutex<Vec<u8>>,
    /// Most bytes held before lines are dropped.
    capacity: usize,
    dropped: AtomicU64,
    /// Set while the writer thread sleeps with nothing to write, until a line wakes it.
    idle: AtomicBool,
    stop: AtomicBool,
    thread: Thread,
}

/// Stops the writer thread when dropped, once it has written what it holds (waiting at most a
/// second: a stalled reader must not keep the process from exiting).
pub(crate) struct FlushOnDrop {
    shared: Arc<Shared>,
    done: mpsc::Receiver<()>,
}

impl LogBuffer {
    /// Starts the writer thread writing to `out` every `every`, holding at most `capacity`
    /// bytes meanwhile.
    pub(crate) fn start(
        mut out: impl Write + Send + 'static,
        capacity: usize,
        every: Duration,
    ) -> std::io::Result<(LogBuffer, FlushOnDrop)> {
        let (ready, shared) = mpsc::channel::<Arc<Shared>>();
        let (finished, done) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("tiffin-log".into())
            .spawn(move || {
                let Ok(shared) = shared.recv() else { return };
                write_until_stopped(&shared, &mut out, every);
                let _ = finished.send(());
            })?;
        let shared = Arc::new(Shared {
            lines: Mutex::new(Vec::with_capacity(KEPT)),
            capacity,
            dropped: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            thread: handle.thread().clone(),
        });
        let _ = ready.send(shared.clone());
        Ok((
            LogBuffer {
                shared: shared.clone(),
            },
            FlushOnDrop { shared, done },
        ))
    }

    /// Lines dropped so far because the buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// What the buffers keep between batches; a burst's larger allocation is given back.
const KEPT: usize = 64 * 1024;

fn write_until_stopped(shared: &Shared, out: &mut impl Write, every: Duration) {
    let mut batch = Vec::with_capacity(KEPT);
    loop {
        // Read before the swap: a line appended before the stop was asked for is then in the
        // batch taken below, so the last batch before returning holds every such line.
        let stopping = shared.stop.load(Ordering::Acquire);
        {
            let mut lines = shared.lines.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut *lines, &mut batch);
        }
        if !batch.is_empty() {
            // A reader that is gone (EPIPE) or stalled loses lines, never the server.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            if batch.capacity() > KEPT {
                batch = Vec::with_capacity(KEPT);
            } else {
                batch.clear();
            }
            if !stopping {
                std::thread::sleep(every);
            }
            continue;
        }
        if stopping {
            return;
        }
        // Nothing to write: sleep until a line comes (or the stop). The flag is set before
        // the buffer is looked at again, so a line appended meanwhile either is seen here or
        // sees the flag and unparks, and an unpark before `park` makes it return at once.
        shared.idle.store(true, Ordering::SeqCst);
        let empty = shared
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if empty && !shared.stop.load(Ordering::Acquire) {
            std::thread::park();
        }
        shared.idle.store(false, Ordering::SeqCst);
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.thread.unpark();
        let _ = self.done.recv_timeout(Duration::from_secs(1));
    }
}

/// One log line on its way into the buffer. Each `write` is taken or dropped whole, so a line
/// must come in one call: tracing-subscriber's fmt layer writes each formatted event (text or
/// JSON, newline included) with one `write_all`, which makes one `write` here.
pub(crate) struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let was_empty = {
            let mut lines = self
                .shared
                .lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if lines.len() + buf.len() > self.shared.capacity {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(buf.len());
            }
            let was_empty = lines.is_empty();
            lines.extend_from_slice(buf);
            was_empty
        };
        if was_empty && self.shared.idle.load(Ordering::SeqCst) {
            self.shared.thread.unpark();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` into a shared vector, or one that blocks until released.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(buffer: &LogBuffer, text: &str) {
        buffer.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_come_out_whole_and_in_order_and_are_flushed_at_the_end() {
        let sink = Sink::default();
        let (buffer, flush) =
            LogBuffer::start(sink.clone(), 1 << 20, Duration::from_millis(1)).unwrap();
        for n in 0..1000 {
            line(&buffer, &format!("line {n}\n"));
            if n % 100 == 0 {
                // Let the thread go idle now and then, so that waking it is exercised too.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        drop(flush);
        let text = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        assert_eq!(text, expected);
        assert_eq!(buffer.dropped(), 0);
    }

    #[test]
    fn a_line_wakes_the_idle_thread() {
        let sink = Sink::default();
        let (buffer, _flush) =
            LogBuffer::start(sink.clone(), 1 << 20, Duration::from_millis(1)).unwrap();
        for n in 0..3 {
            while !buffer.shared.idle.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            line(&buffer, &format!("line {n}\n"));
            // Written without anything else happening: no later line, no flush at exit.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !String::from_utf8_lossy(&sink.bytes.lock().unwrap())
                .contains(&format!("line {n}\n"))
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "line {n} was never written"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    #[test]
    fn a_stalled_reader_drops_lines_instead_of_blocking() {
        let sink = Sink::default();
        let gate = sink.gate.lock().unwrap();
        let (buffer, flush) =
            LogBuffer::start(sink.clone(), 100, Duration::from_millis(1)).unwrap();
        // The first line is taken by the thread, which then blocks writing it; the buffer
        // fills behind it, and the rest is dropped, with no call blocking here.
        line(&buffer, "first\n");
        while !buffer.shared.lines.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        for _ in 0..1000 {
            line(&buffer, "0123456789\n");
        }
        // Nine lines of 11 bytes fit in 100.
        assert_eq!(buffer.dropped(), 991);
        drop(gate);
        drop(flush);
        let text = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("first\n"), "{text}");
        assert_eq!(text.len(), "first\n".len() + 9 * 11, "{text}");
    }
}
