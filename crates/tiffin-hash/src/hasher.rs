//! Streaming hashers: one read pass feeds sha256 and blake3, large inputs use every core.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len};

use rayon::prelude::*;
use sha2::Digest as _;

use crate::{Algorithms, Digest, Digests, Error, Progress};

/// Bytes read per step. Large enough that blake3's parallel mode has work to split across cores
/// (it needs well over 128 KiB to pay) and that sha256 and blake3 can run side by side on a chunk.
const CHUNK: usize = 4 << 20;

/// Below this, running the two digests on separate threads costs more than it saves.
const PARALLEL_MIN: usize = 256 << 10;

/// Files at least this large are hashed through blake3's memory-mapped, multi-threaded reader when
/// only blake3 is wanted; smaller ones are cheaper to read plainly.
const MMAP_MIN: u64 = 16 << 20;

/// The largest piece of a span one task reads and hashes on its own, a power of two (a valid blake3
/// subtree size, see [`hash_span`]). Large enough that blake3's SIMD has many chunks to hash at
/// once and that a span of a few hundred MiB splits into hundreds of tasks to balance over the
/// cores; small enough that there are that many.
const SUBTREE: u64 = 1 << 20;

/// Bytes of a subtree read per positioned read: small enough that the buffer stays in the core's
/// L2 cache between the copy out of the page cache and the hashing, which is what makes reading
/// (instead of mapping) the file as fast as `b3sum`.
const SPAN_READ: usize = 256 << 10;

/// An incremental hasher computing the chosen [`Algorithms`] over the bytes fed to it.
#[derive(Debug, Clone)]
pub struct Hasher {
    sha256: Option<sha2::Sha256>,
    blake3: Option<blake3::Hasher>,
    size: u64,
}

impl Hasher {
    /// A hasher for the chosen algorithms.
    pub fn new(algorithms: Algorithms) -> Self {
        Hasher {
            sha256: algorithms.sha256.then(sha2::Sha256::new),
            blake3: algorithms.blake3.then(blake3::Hasher::new),
            size: 0,
        }
    }

    /// Feeds bytes. Large slices are hashed by sha256 and blake3 at the same time, and blake3
    /// itself splits them across the rayon pool.
    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        let parallel = data.len() >= PARALLEL_MIN;
        match (&mut self.sha256, &mut self.blake3) {
            (Some(sha), Some(b3)) if parallel => {
                rayon::join(|| sha.update(data), || b3.update_rayon(data));
            }
            (sha, b3) => {
                if let Some(sha) = sha {
                    sha.update(data);
                }
                if let Some(b3) = b3 {
                    if parallel {
                        b3.update_rayon(data);
                    } else {
                        b3.update(data);
                    }
                }
            }
        }
    }

    /// Number of bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digests of everything fed.
    pub fn finalize(self) -> Digests {
        Digests {
            size: self.size,
            sha256: self.sha256.map(|h| Digest(h.finalize().into())),
            blake3: self.blake3.map(|h| Digest(*h.finalize().as_bytes())),
        }
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that hashes everything read through it, for checking a stream while it is consumed
/// by something else (a tar entry being copied, say).
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`, hashing with the chosen algorithms.
    pub fn new(inner: R, algorithms: Algorithms) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(algorithms),
        }
    }

    /// The digests of everything read so far, and the inner reader.
    pub fn finish(self) -> (Digests, R) {
        (self.hasher.finalize(), self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Hashes everything `reader` yields, reading in large chunks.
pub fn hash_reader<R: Read>(
    reader: R,
    algorithms: Algorithms,
    progress: &dyn Progress,
) -> io::Result<Digests> {
    copy_hashing(reader, &mut io::sink(), algorithms, progress)
}

/// Copies `reader` to `writer` and hashes the bytes on the way, so that packing a file reads it
/// once. Each chunk is hashed before it is written.
pub fn copy_hashing<R: Read, W: Write + ?Sized>(
    mut reader: R,
    writer: &mut W,
    algorithms: Algorithms,
    progress: &dyn Progress,
) -> io::Result<Digests> {
    let mut hasher = Hasher::new(algorithms);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = fill(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        progress.advance(n as u64);
        if n < buf.len() {
            break;
        }
    }
    Ok(hasher.finalize())
}

/// Reads until `buf` is full or the reader ends, so that every chunk but the last is full size
/// and worth hashing in parallel.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The sha256 of a byte slice held in memory.
pub fn sha256(bytes: &[u8]) -> Digest {
    Digest(sha2::Sha256::digest(bytes).into())
}

/// Hashes one file.
pub fn hash_file(
    path: &Path,
    algorithms: Algorithms,
    progress: &dyn Progress,
) -> Result<Digests, Error> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    progress.grow(len);
    if algorithms == Algorithms::BLAKE3 && len >= MMAP_MIN {
        // blake3 maps the file itself and hashes it on every core, which is what `b3sum` does;
        // there is no copy into a buffer at all. The price is that progress comes in one step.
        let mut hasher = blake3::Hasher::new();
        hasher.update_mmap_rayon(path).map_err(read_err)?;
        progress.advance(len);
        return Ok(Digests {
            size: hasher.count(),
            sha256: None,
            blake3: Some(Digest(*hasher.finalize().as_bytes())),
        });
    }
    hash_reader(file, algorithms, progress).map_err(read_err)
}

/// Hashes the `len` bytes of `file` that start at byte `offset`, in place: a member of an
/// uncompressed archive, say, without reading the archive as a stream.
///
/// blake3 alone is hashed as [`hash_file`] hashes a large file, on every core, but by positioned
/// reads instead of a memory map (mapping a range of a file takes `unsafe`): the span is split
/// along blake3's own tree into subtrees of at most 1 MiB, rayon's tasks each read one
/// into a small buffer and hash it while it is still in cache, and the subtrees' chaining values
/// are merged up to the root. With sha256 the span is read once, in order, like any reader.
///
/// Progress advances by the span's bytes as they are hashed; like [`hash_reader`], this does not
/// [`grow`](Progress::grow) it, since the caller knows best what the whole is (an archive). A span
/// that runs past the end of the file is refused before anything is read
/// ([`Error::SpanPastEnd`]); a file that shrinks while it is read gives an [`Error::Io`] of kind
/// [`io::ErrorKind::UnexpectedEof`].
pub fn hash_span(
    file: &File,
    offset: u64,
    len: u64,
    algorithms: Algorithms,
    progress: &dyn Progress,
) -> Result<Digests, Error> {
    let file_len = file.metadata()?.len();
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(Error::SpanPastEnd {
            offset,
            len,
            file_len,
        });
    }
    if algorithms == Algorithms::BLAKE3 {
        let hash = blake3_span(file, offset, len, progress)?;
        return Ok(Digests {
            size: len,
            sha256: None,
            blake3: Some(Digest(*hash.as_bytes())),
        });
    }
    let span = SpanReader {
        file,
        at: offset,
        end: offset + len,
    };
    let digests = hash_reader(span, algorithms, progress)?;
    if digests.size != len {
        return Err(Error::Io(ended_early(offset + digests.size)));
    }
    Ok(digests)
}

/// The error of a file that ended at byte `at`, inside a span checked against its length before.
fn ended_early(at: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the file ended at byte {at}, inside the span being hashed (it shrank)"),
    )
}

/// Reads a span of a file in order by positioned reads, so that it needs no cursor of its own.
struct SpanReader<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for SpanReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..n], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// The blake3 hash of a span, as the root of blake3's tree over it: the two subtrees below the
/// root hashed side by side, each split again until it is at most [`SUBTREE`] bytes.
fn blake3_span(
    file: &File,
    offset: u64,
    len: u64,
    progress: &dyn Progress,
) -> io::Result<blake3::Hash> {
    if len <= SUBTREE {
        // A span this short is one task anyway, and a root of a single chunk has no subtrees.
        let mut hasher = blake3::Hasher::new();
        feed(file, offset, len, &mut hasher, progress)?;
        return Ok(hasher.finalize());
    }
    let left = left_subtree_len(len);
    let (l, r) = rayon::join(
        || subtree(file, offset, 0, left, progress),
        || subtree(file, offset, left, len - left, progress),
    );
    Ok(blake3::hazmat::merge_subtrees_root(&l?, &r?, Mode::Hash))
}

/// The chaining value of the subtree of `len` bytes at byte `at` of a span starting at byte
/// `base` of the file. The callers keep blake3's rules for subtrees (`at` a multiple of the
/// subtree's size, rounded up to a power of two) by splitting only where
/// [`left_subtree_len`] says.
fn subtree(
    file: &File,
    base: u64,
    at: u64,
    len: u64,
    progress: &dyn Progress,
) -> io::Result<ChainingValue> {
    if len <= SUBTREE {
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(at);
        feed(file, base + at, len, &mut hasher, progress)?;
        return Ok(hasher.finalize_non_root());
    }
    let left = left_subtree_len(len);
    let (l, r) = rayon::join(
        || subtree(file, base, at, left, progress),
        || subtree(file, base, at + left, len - left, progress),
    );
    Ok(blake3::hazmat::merge_subtrees_non_root(
        &l?,
        &r?,
        Mode::Hash,
    ))
}

thread_local! {
    /// Each thread's read buffer for [`feed`], kept so that a span of a thousand subtrees does
    /// not allocate (and fault in) a thousand buffers.
    static SPAN_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads `len` bytes of `file` from `offset` and feeds them to `hasher`, a cache-sized piece at a
/// time.
fn feed(
    file: &File,
    offset: u64,
    len: u64,
    hasher: &mut blake3::Hasher,
    progress: &dyn Progress,
) -> io::Result<()> {
    SPAN_BUFFER.with(|cell| {
        // The buffer is only ever borrowed here, and nothing here yields to rayon, so it is free;
        // a fresh buffer is still the answer should that ever change, rather than a panic.
        let mut own = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let buffer = match &mut borrowed {
            Ok(buffer) => &mut **buffer,
            Err(_) => &mut own,
        };
        buffer.resize(SPAN_READ, 0);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(SPAN_READ as u64) as usize;
            file.read_exact_at(&mut buffer[..n], offset + done)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => ended_early(offset + done),
                    _ => e,
                })?;
            hasher.update(&buffer[..n]);
            progress.advance(n as u64);
            done += n as u64;
        }
        Ok(())
    })
}

/// Hashes many files in parallel; the results are in the order of `paths`.
pub fn hash_files<P: AsRef<Path> + Sync>(
    paths: &[P],
    algorithms: Algorithms,
    progress: &dyn Progress,
) -> Vec<Result<Digests, Error>> {
    paths
        .par_iter()
        .map(|p| hash_file(p.as_ref(), algorithms, progress))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;
    use std::sync::atomic::{AtomicU64, Ordering};

    // Known answers from `sha256sum` and `b3sum` for the bytes "abc".
    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const ABC_BLAKE3: &str = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";

    #[test]
    fn known_answers() {
        let d = hash_reader(&b"abc"[..], Algorithms::BOTH, &NoProgress).unwrap();
        assert_eq!(d.size, 3);
        assert_eq!(d.sha256.unwrap().to_hex(), ABC_SHA256);
        assert_eq!(sha256(b"abc").to_hex(), ABC_SHA256);
        assert_eq!(d.blake3.unwrap().to_hex(), ABC_BLAKE3);
        let only = hash_reader(&b"abc"[..], Algorithms::BLAKE3, &NoProgress).unwrap();
        assert_eq!(only.sha256, None);
        assert_eq!(only.blake3, d.blake3);
    }

    #[test]
    fn chunking_and_parallel_paths_agree_with_one_shot() {
        // Longer than several chunks and not a multiple of the chunk size, so that the full-chunk,
        // partial-chunk and parallel code paths all run.
        let data: Vec<u8> = (0..(2 * CHUNK + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let streamed = hash_reader(&data[..], Algorithms::BOTH, &NoProgress).unwrap();
        let mut reference = sha2::Sha256::new();
        reference.update(&data);
        assert_eq!(
            streamed.sha256.unwrap().0,
            <[u8; 32]>::from(reference.finalize())
        );
        assert_eq!(streamed.blake3.unwrap().0, *blake3::hash(&data).as_bytes());

        let mut small_steps = Hasher::new(Algorithms::BOTH);
        for piece in data.chunks(1000) {
            small_steps.update(piece);
        }
        assert_eq!(small_steps.finalize(), streamed);

        let mut copy = Vec::new();
        let copied = copy_hashing(&data[..], &mut copy, Algorithms::BOTH, &NoProgress).unwrap();
        assert_eq!((copied, &copy), (streamed, &data));

        let mut through = HashingReader::new(&data[..], Algorithms::BOTH);
        io::copy(&mut through, &mut io::sink()).unwrap();
        assert_eq!(through.finish().0, streamed);
    }

    #[test]
    fn files_in_parallel_and_the_mmap_path() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..(MMAP_MIN as usize + 7))
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(dir.path().join("big"), &big).unwrap();
        std::fs::write(dir.path().join("abc"), b"abc").unwrap();
        let paths = [
            dir.path().join("abc"),
            dir.path().join("big"),
            dir.path().join("missing"),
        ];
        let out = hash_files(&paths, Algorithms::BLAKE3, &NoProgress);
        assert_eq!(
            out[0].as_ref().unwrap().blake3.unwrap().to_hex(),
            ABC_BLAKE3
        );
        let big_digest = out[1].as_ref().unwrap();
        assert_eq!(big_digest.size, big.len() as u64);
        assert_eq!(big_digest.blake3.unwrap().0, *blake3::hash(&big).as_bytes());
        let err = out[2].as_ref().unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read ") && err.contains("missing"),
            "{err}"
        );
    }

    /// Counts what a hash reports: bytes announced (`grow`), then bytes hashed (`advance`).
    #[derive(Default)]
    struct Count(AtomicU64, AtomicU64);

    impl Progress for Count {
        fn grow(&self, b: u64) {
            self.0.fetch_add(b, Ordering::Relaxed);
        }
        fn advance(&self, b: u64) {
            self.1.fetch_add(b, Ordering::Relaxed);
        }
    }

    #[test]
    fn progress_counts_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; CHUNK + 5]).unwrap();
        let count = Count::default();
        hash_file(&dir.path().join("a"), Algorithms::BOTH, &count).unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), (CHUNK + 5) as u64);
        assert_eq!(count.1.load(Ordering::Relaxed), (CHUNK + 5) as u64);
    }

    /// Deterministic bytes that differ from chunk to chunk, so that a subtree hashed at the
    /// wrong place or merged in the wrong order gives a wrong hash.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i * 131 % 251) as u8 ^ (i >> 10) as u8)
            .collect()
    }

    #[test]
    fn spans_hash_like_the_bytes_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let span = SUBTREE as usize;
        // Empty, inside one chunk, at the chunk and subtree boundaries, and spans of many
        // subtrees that are not powers of two, so that the tree is split unevenly.
        let lengths = [
            0,
            1,
            1023,
            1024,
            1025,
            3 * 1024 + 5,
            span - 1,
            span,
            span + 1,
            2 * span + 1024,
            5 * span + 777,
        ];
        let prefix = 7;
        let longest = lengths.iter().max().unwrap();
        let bytes = pattern(prefix + longest + 3);
        let path = dir.path().join("archive");
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        for len in lengths {
            for offset in [0, prefix] {
                let data = &bytes[offset..offset + len];
                let (at, n) = (offset as u64, len as u64);
                let b3 = hash_span(&file, at, n, Algorithms::BLAKE3, &NoProgress).unwrap();
                assert_eq!(b3.size, n);
                assert_eq!(b3.sha256, None);
                assert_eq!(
                    b3.blake3.unwrap().0,
                    *blake3::hash(data).as_bytes(),
                    "{len} bytes at {offset}"
                );
                let both = hash_span(&file, at, n, Algorithms::BOTH, &NoProgress).unwrap();
                assert_eq!(
                    both,
                    hash_reader(data, Algorithms::BOTH, &NoProgress).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_span_past_the_end_is_refused_by_its_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        std::fs::write(&path, pattern(3000)).unwrap();
        let file = File::open(&path).unwrap();
        for algorithms in [Algorithms::BLAKE3, Algorithms::BOTH] {
            let err = hash_span(&file, 2048, 1000, algorithms, &NoProgress).unwrap_err();
            assert_eq!(
                err.to_string(),
                "the span of 1000 bytes at byte 2048 runs past the end of the file (3000 bytes)"
            );
            // A length whose end does not fit in a u64, as a hostile header may declare.
            let err = hash_span(&file, 512, u64::MAX, algorithms, &NoProgress).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::SpanPastEnd {
                        offset: 512,
                        len: u64::MAX,
                        file_len: 3000
                    }
                ),
                "{err}"
            );
        }
        // A file that shrank after the check: the reads end early and say where.
        let err = blake3_span(&file, 0, 3 * SUBTREE, &NoProgress).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("ended at byte"), "{err}");
        let short = SpanReader {
            file: &file,
            at: 2000,
            end: 5000,
        };
        assert_eq!(
            hash_reader(short, Algorithms::BOTH, &NoProgress)
                .unwrap()
                .size,
            1000
        );
        // The span that ends exactly at the end of the file is whole.
        let last = hash_span(&file, 2000, 1000, Algorithms::BLAKE3, &NoProgress).unwrap();
        assert_eq!(last.size, 1000);
    }

    #[test]
    fn a_span_advances_progress_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let len = 3 * SUBTREE + 5;
        std::fs::write(&path, pattern(len as usize + 100)).unwrap();
        let file = File::open(&path).unwrap();
        for algorithms in [Algorithms::BLAKE3, Algorithms::BOTH] {
            let count = Count::default();
            hash_span(&file, 100, len, algorithms, &count).unwrap();
            assert_eq!(count.0.load(Ordering::Relaxed), 0);
            assert_eq!(count.1.load(Ordering::Relaxed), len);
        }
    }
}
