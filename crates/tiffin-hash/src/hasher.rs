//! Streaming hashers: one read pass feeds sha256 and blake3, large inputs use every core.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

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

/// Hashes bytes already in memory (such as a span of a memory-mapped archive), in pieces large
/// enough to spread over the rayon pool, advancing `progress` after each.
pub fn hash_slice(data: &[u8], algorithms: Algorithms, progress: &dyn Progress) -> Digests {
    let mut hasher = Hasher::new(algorithms);
    for piece in data.chunks(SLICE_PIECE) {
        hasher.update(piece);
        progress.advance(piece.len() as u64);
    }
    hasher.finalize()
}

/// The piece of [`hash_slice`]: progress moves every 64 MiB, and each piece is large enough for
/// blake3 to split across every core.
const SLICE_PIECE: usize = 64 << 20;

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

    /// Bytes in memory hash as the same bytes read from a stream, across the piece size.
    #[test]
    fn slices_hash_as_streams_do() {
        for len in [0, 1, 1000, SLICE_PIECE - 1, SLICE_PIECE + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let streamed = hash_reader(&data[..], Algorithms::BOTH, &NoProgress).unwrap();
            assert_eq!(
                hash_slice(&data, Algorithms::BOTH, &NoProgress),
                streamed,
                "{len}"
            );
        }
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

    #[test]
    fn progress_counts_every_byte() {
        use std::sync::atomic::{AtomicU64, Ordering};
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
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; CHUNK + 5]).unwrap();
        let count = Count::default();
        hash_file(&dir.path().join("a"), Algorithms::BOTH, &count).unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), (CHUNK + 5) as u64);
        assert_eq!(count.1.load(Ordering::Relaxed), (CHUNK + 5) as u64);
    }
}
