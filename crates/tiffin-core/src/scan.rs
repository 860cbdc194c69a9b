//! `scan`: walks the opcodes of a pickle (or joblib) file and names every callable it imports.
//!
//! Loading a pickle calls whatever the stream names through GLOBAL, INST and STACK_GLOBAL, so
//! those names are what makes a pickle dangerous. This walker reads the opcodes without running
//! anything, tracks the stack and the memo far enough to resolve STACK_GLOBAL's operands, and
//! reports each import with its byte offset, flagging anything outside a short list of plain data
//! types. It never panics and stops at the first byte it cannot read as an opcode (joblib embeds
//! raw array bytes in its streams), saying where.

use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;

use serde::Serialize;

use crate::safety::{self, UnsafeFormat};

/// Imports that only build plain data, as `pickle` allowlists in the wild do: containers,
/// numbers and numpy arrays. Everything else can run code.
const PLAIN_DATA: &[&str] = &[
    "builtins.set",
    "builtins.frozenset",
    "builtins.bytearray",
    "builtins.complex",
    "builtins.slice",
    "__builtin__.set",
    "collections.OrderedDict",
    "_codecs.encode",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
];

/// The most opcodes the walk reads before it stops, saying so in [`ScanReport::stopped`]. Each
/// opcode may push a stack slot and a memo entry, so this bounds the walker's memory (a few
/// hundred megabytes at worst) whatever the stream holds. Real model pickles keep their arrays
/// as raw bytes and take thousands to a few million opcodes.
pub const MAX_PICKLE_OPCODES: u64 = 10_000_000;

/// One import found in a pickle stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    /// Byte offset of the opcode, in the decompressed stream.
    pub offset: u64,
    /// `GLOBAL`, `INST` or `STACK_GLOBAL`.
    pub opcode: &'static str,
    /// `module.name`, or `?` parts where STACK_GLOBAL's operands were not plain strings.
    pub name: String,
    /// True when the name is on the plain-data allowlist.
    pub plain_data: bool,
}

/// What `scan` found in a file.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// What the file was recognised as, if it is a pickle-based format at all.
    pub format: Option<UnsafeFormat>,
    /// The pickle protocol, from the PROTO opcode (0 when there is none).
    pub protocol: u8,
    /// Every import, in stream order.
    pub imports: Vec<Import>,
    /// Opcodes read.
    pub opcodes: u64,
    /// Why the walk stopped before the end, if it did (e.g. raw array bytes embedded by joblib).
    pub stopped: Option<String>,
    /// True when the walk stopped at [`MAX_PICKLE_OPCODES`]: the rest of the stream was not
    /// read, so nothing can be said of what it imports.
    pub bounded: bool,
}

impl ScanReport {
    /// The imports that are not plain data: each one can run code when the file is loaded.
    pub fn dangerous(&self) -> impl Iterator<Item = &Import> {
        self.imports.iter().filter(|i| !i.plain_data)
    }
}

/// Scans bytes of a file named `name`. Compressed joblib files (zlib, gzip) are decompressed
/// first, reading at most `limit` decompressed bytes.
pub fn scan(name: &str, bytes: &[u8], limit: u64) -> ScanReport {
    let format = safety::sniff(name, &bytes[..bytes.len().min(safety::HEAD_LEN)]);
    let mut inflated = Vec::new();
    let stream: &[u8] = match bytes {
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => {
            inflated = inflate(flate2::read::ZlibDecoder::new(bytes), limit);
            &inflated[..inflated.len().min(limit as usize)]
        }
        [0x1f, 0x8b, ..] => {
            inflated = inflate(flate2::read::GzDecoder::new(bytes), limit);
            &inflated[..inflated.len().min(limit as usize)]
        }
        _ => bytes,
    };
    let mut report = walk(stream);
    report.format = format;
    if inflated.len() as u64 > limit {
        // The inflated stream goes on past the limit: what lies beyond is unknown.
        report.bounded = true;
        report.stopped = Some(format!(
            "the stream inflates to more than {limit} bytes, the limit of the scan; what lies \
             beyond was not scanned, so treat the file as unsafe"
        ));
    }
    report
}

/// Inflates at most one byte past `limit`, so that a stream longer than the limit is told apart
/// from one exactly at it.
fn inflate(reader: impl Read, limit: u64) -> Vec<u8> {
    let mut out = Vec::new();
    // A stream that fails part-way is scanned as far as it inflated: what was read is evidence.
    let _ = reader.take(limit.saturating_add(1)).read_to_end(&mut out);
    out
}

/// What the walker knows of a stack slot.
#[derive(Debug, Clone)]
enum Item {
    /// Shared, so that DUP, GET and PUT copy a pointer rather than the string: a stream of one
    /// long string and many DUPs would otherwise take memory quadratic in its length.
    Str(Rc<str>),
    Mark,
    Other,
}

/// How one opcode went.
enum Step {
    Next,
    /// STOP: the pickle is complete.
    Done,
    /// The walk cannot go on; the reason.
    Fail(String),
}

/// The opcode walker: position, a model of the stack (strings only), the memo and the findings.
struct Walker<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u64, Item>,
    imports: Vec<Import>,
    protocol: u8,
}

impl<'a> Walker<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// A little-endian unsigned argument of `n` bytes.
    fn uint(&mut self, n: usize) -> Option<u64> {
        let raw = self.take(n)?;
        Some(
            raw.iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    /// A newline-terminated argument (protocol 0), without the newline.
    fn line(&mut self) -> Option<Rc<str>> {
        let rest = self.bytes.get(self.pos..)?;
        let end = rest.iter().position(|&b| b == b'\n')?;
        self.pos += end + 1;
        Some(String::from_utf8_lossy(&rest[..end]).into())
    }

    /// A length-prefixed argument whose length takes `len_bytes` bytes.
    fn counted(&mut self, len_bytes: usize) -> Option<Rc<str>> {
        let len = usize::try_from(self.uint(len_bytes)?).ok()?;
        self.take(len).map(|b| String::from_utf8_lossy(b).into())
    }

    // The stack effects below return `Some(())` so that every opcode arm reads alike: `None`
    // only ever means an argument could not be read.
    fn pop(&mut self, n: usize) -> Option<()> {
        let keep = self.stack.len().saturating_sub(n);
        self.stack.truncate(keep);
        Some(())
    }

    fn pop_to_mark(&mut self) -> Option<()> {
        while let Some(item) = self.stack.pop() {
            if matches!(item, Item::Mark) {
                break;
            }
        }
        Some(())
    }

    fn push(&mut self, item: Item) -> Option<()> {
        self.stack.push(item);
        Some(())
    }

    fn push_other(&mut self) -> Option<()> {
        self.push(Item::Other)
    }

    fn top(&self) -> Item {
        self.stack.last().cloned().unwrap_or(Item::Other)
    }

    fn recall(&mut self, key: Option<u64>) {
        let item = key
            .and_then(|k| self.memo.get(&k).cloned())
            .unwrap_or(Item::Other);
        self.stack.push(item);
    }

    fn import(&mut self, offset: usize, opcode: &'static str, module: &str, name: &str) {
        let name = format!("{module}.{name}");
        let plain_data = PLAIN_DATA.contains(&name.as_str());
        self.imports.push(Import {
            offset: offset as u64,
            opcode,
            name,
            plain_data,
        });
    }

    /// Reads one opcode and its argument and applies its effect on the stack and memo.
    fn step(&mut self) -> Step {
        let offset = self.pos;
        let Some(&op) = self.bytes.get(offset) else {
            return Step::Fail("the stream ends without a STOP opcode".to_owned());
        };
        self.pos += 1;
        let read = match op {
            b'.' => return Step::Done,
            b'(' => self.push(Item::Mark),
            b'0' => self.pop(1),
            b'1' => self.pop_to_mark(),
            b'2' => self.push(self.top()),
            // Numbers, persistent ids: a line, or fixed or counted bytes.
            b'F' | b'I' | b'L' | b'P' => self.line().and_then(|_| self.push_other()),
            b'K' | 0x82 => self.take(1).and_then(|_| self.push_other()),
            b'M' | 0x83 => self.take(2).and_then(|_| self.push_other()),
            b'J' | 0x84 => self.take(4).and_then(|_| self.push_other()),
            b'G' => self.take(8).and_then(|_| self.push_other()),
            0x8a | b'C' => self.counted(1).and_then(|_| self.push_other()),
            0x8b | b'B' => self.counted(4).and_then(|_| self.push_other()),
            0x8e | 0x96 => self.counted(8).and_then(|_| self.push_other()),
            b'N' | 0x88 | 0x89 | b'}' | b']' | b')' | 0x8f | 0x97 => self.push_other(),
            // Strings: the only values STACK_GLOBAL cares about.
            b'S' => self
                .line()
                .and_then(|l| self.push(Item::Str(l.trim_matches(['\'', '"']).into()))),
            b'V' => self.line().and_then(|l| self.push(Item::Str(l))),
            b'T' | b'X' => self.counted(4).and_then(|s| self.push(Item::Str(s))),
            b'U' | 0x8c => self.counted(1).and_then(|s| self.push(Item::Str(s))),
            0x8d => self.counted(8).and_then(|s| self.push(Item::Str(s))),
            // Containers and calls.
            b'a' | b'b' => self.pop(1),
            b's' => self.pop(2),
            b'e' | b'u' | 0x90 => self.pop_to_mark(),
            b't' | b'l' | b'd' | 0x91 | b'o' => {
                self.pop_to_mark();
                self.push_other()
            }
            0x85..=0x87 => {
                self.pop(usize::from(op - 0x84));
                self.push_other()
            }
            b'Q' => {
                self.pop(1);
                self.push_other()
            }
            b'R' | 0x81 => {
                self.pop(2);
                self.push_other()
            }
            0x92 => {
                self.pop(3);
                self.push_other()
            }
            // Imports.
            b'c' | b'i' => self.line().zip(self.line()).map(|(module, name)| {
                let opcode = if op == b'c' { "GLOBAL" } else { "INST" };
                self.import(offset, opcode, &module, &name);
                if op == b'i' {
                    self.pop_to_mark();
                }
                self.push_other();
            }),
            0x93 => {
                let name = self.stack.pop();
                let module = self.stack.pop();
                let part = |item: Option<Item>| match item {
                    Some(Item::Str(s)) => s,
                    _ => "?".into(),
                };
                self.import(offset, "STACK_GLOBAL", &part(module), &part(name));
                self.push_other()
            }
            // The memo: STACK_GLOBAL operands are often fetched from it.
            b'g' => self.line().map(|l| self.recall(l.trim().parse().ok())),
            b'h' => self.uint(1).map(|k| self.recall(Some(k))),
            b'j' => self.uint(4).map(|k| self.recall(Some(k))),
            b'p' => self.line().map(|l| {
                let top = self.top();
                self.memo.insert(l.trim().parse().unwrap_or(u64::MAX), top);
            }),
            b'q' | b'r' => self.uint(if op == b'q' { 1 } else { 4 }).map(|k| {
                let top = self.top();
                self.memo.insert(k, top);
            }),
            0x94 => {
                let top = self.top();
                self.memo.insert(self.memo.len() as u64, top);
                Some(())
            }
            0x80 => self.uint(1).map(|p| self.protocol = p as u8),
            0x95 => self.take(8).map(|_| ()),
            0x98 => Some(()),
            _ => {
                return Step::Fail(format!(
                    "byte 0x{op:02x} at offset {offset} is not a pickle opcode"
                ));
            }
        };
        match read {
            Some(()) => Step::Next,
            None => Step::Fail(format!("opcode 0x{op:02x} at offset {offset} is cut short")),
        }
    }
}

fn walk(bytes: &[u8]) -> ScanReport {
    let mut w = Walker {
        bytes,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
        imports: Vec::new(),
        protocol: 0,
    };
    let mut opcodes = 0;
    let mut bounded = false;
    let stopped = loop {
        if opcodes == MAX_PICKLE_OPCODES {
            bounded = true;
            break Some(format!(
                "the stream holds more than {MAX_PICKLE_OPCODES} opcodes, the bound \
                 MAX_PICKLE_OPCODES; what lies beyond was not scanned, so treat the file as \
                 unsafe"
            ));
        }
        opcodes += 1;
        match w.step() {
            Step::Next => {}
            Step::Done => break None,
            Step::Fail(reason) => break Some(reason),
        }
    };
    ScanReport {
        format: None,
        protocol: w.protocol,
        imports: w.imports,
        opcodes,
        stopped,
        bounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/unsafe")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn protocol_4_sklearn_pickle_names_its_imports() {
        let report = scan("model.pkl", &fixture("model.pkl"), 1 << 20);
        assert_eq!(report.format, Some(UnsafeFormat::Pickle));
        assert_eq!(report.protocol, 4);
        let names: Vec<&str> = report.imports.iter().map(|i| i.name.as_str()).collect();
        assert!(
            names.contains(&"sklearn.linear_model._logistic.LogisticRegression"),
            "{names:?}"
        );
        assert!(report.imports.iter().all(|i| i.opcode == "STACK_GLOBAL"));
        assert!(report.dangerous().any(|i| i.name.starts_with("sklearn.")));
        assert!(
            report
                .imports
                .iter()
                .any(|i| i.plain_data && i.name.starts_with("numpy")),
            "{names:?}"
        );
        assert_eq!(report.stopped, None);
    }

    #[test]
    fn protocol_0_and_joblib_are_read_too() {
        let report = scan("model_proto0.pkl", &fixture("model_proto0.pkl"), 1 << 20);
        assert_eq!(report.protocol, 0);
        assert!(
            report
                .imports
                .iter()
                .any(|i| i.opcode == "GLOBAL" && i.name == "copy_reg._reconstructor")
        );
        assert!(
            report
                .dangerous()
                .any(|i| i.name == "sklearn.linear_model._logistic.LogisticRegression")
        );

        let report = scan("model.joblib", &fixture("model.joblib"), 1 << 20);
        assert_eq!(report.format, Some(UnsafeFormat::CompressedPickle));
        assert!(
            report
                .dangerous()
                .any(|i| i.name == "sklearn.linear_model._logistic.LogisticRegression")
        );
    }

    #[test]
    fn hand_made_streams_resolve_memo_and_never_panic() {
        // PROTO 4, "os" MEMOIZE, "system" MEMOIZE, BINGET 0, BINGET 1, STACK_GLOBAL, STOP
        let stream = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93.";
        let report = scan("x", stream, 1 << 20);
        assert_eq!(report.imports[0].name, "os.system");
        assert_eq!(report.imports[0].offset, 20);
        assert!(!report.imports[0].plain_data);
        // Every prefix of a stream, and garbage, ends with a reason instead of a panic.
        for cut in 0..stream.len() - 1 {
            assert!(
                scan("x", &stream[..cut], 1 << 20).stopped.is_some(),
                "cut at {cut}"
            );
        }
        let report = scan("x", b"\x80\x04\xff", 1 << 20);
        assert_eq!(
            report.stopped.as_deref(),
            Some("byte 0xff at offset 2 is not a pickle opcode")
        );
        assert_eq!(scan("x", b"\x93\x93\x93.", 1 << 20).imports[0].name, "?.?");
    }

    #[test]
    fn a_compressed_stream_is_inflated_up_to_its_limit() {
        use std::io::Write;
        // 1000 POPs and a STOP, gzipped: 1001 bytes once inflated.
        let mut stream = vec![b'0'; 1000];
        stream.push(b'.');
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&stream).unwrap();
        let gz = gz.finish().unwrap();
        let report = scan("model.joblib", &gz, 1001);
        assert_eq!((report.opcodes, report.stopped), (1001, None));
        assert!(!report.bounded);
        // One byte less and the STOP is past the limit: not inflated, so not read, and the
        // file is not known to be safe.
        let report = scan("model.joblib", &gz, 1000);
        assert!(report.bounded);
        assert_eq!(
            report.stopped.as_deref(),
            Some(
                "the stream inflates to more than 1000 bytes, the limit of the scan; what lies \
                 beyond was not scanned, so treat the file as unsafe"
            )
        );
    }

    #[test]
    fn a_stream_of_max_pickle_opcodes_is_read_whole_and_a_longer_one_stops_at_the_bound() {
        // POP on an empty stack: an opcode that takes no memory, so only the count grows.
        let limit = MAX_PICKLE_OPCODES as usize;
        let mut stream = vec![b'0'; limit - 1];
        stream.push(b'.');
        let report = scan("x", &stream, 1 << 20);
        assert!(!report.bounded);
        assert_eq!((report.opcodes, report.stopped), (MAX_PICKLE_OPCODES, None));

        stream.insert(0, b'0');
        let report = scan("x", &stream, 1 << 20);
        assert!(report.bounded);
        assert_eq!(report.opcodes, MAX_PICKLE_OPCODES);
        let stopped = report.stopped.unwrap();
        assert!(
            stopped.contains("more than 10000000 opcodes, the bound MAX_PICKLE_OPCODES"),
            "{stopped}"
        );
    }
}
