//! sha256 and blake3 digests of files, readers and whole packages, computed in one read pass.
//!
//! Every file of a tiffin package carries two digests: sha256, because it is what the rest of the
//! world checks (`sha256sum -c`, OCI registries, the OpenSSF model signing format), and blake3,
//! because it hashes in parallel and so lets `tiffin verify` keep up with the disk. This crate
//! computes either or both while reading the data once, hashes large files with blake3's
//! memory-mapped multi-threaded mode, and hashes many files in parallel.
//!
//! It draws nothing: callers that want a progress bar pass a [`Progress`] and draw it themselves.

#![deny(missing_docs)]

mod checksum;
mod digest;
mod hasher;

pub use checksum::{ChecksumLine, parse_checksums, render_checksums};
pub use digest::{Algorithms, Digest, Digests};
pub use hasher::{
    Hasher, HashingReader, copy_hashing, hash_file, hash_files, hash_reader, hash_span, sha256,
};

use std::path::PathBuf;

/// Everything that can go wrong while hashing or reading a checksum file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file that failed.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A reader failed part-way.
    #[error("read failed")]
    Io(#[from] std::io::Error),
    /// A span of a file to hash runs past the file's end (an archive whose header declares more
    /// bytes than the archive holds, say).
    #[error(
        "the span of {len} bytes at byte {offset} runs past the end of the file ({file_len} bytes)"
    )]
    SpanPastEnd {
        /// Where the span starts.
        offset: u64,
        /// The span's length.
        len: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A hex string was not a 32-byte digest.
    #[error("`{0}` is not a 64-character lowercase hex digest")]
    BadHex(String),
    /// A line of a `checksum.txt` was not in the format `sha256sum` writes.
    #[error("checksum.txt line {line}: {reason}")]
    BadChecksumLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A path cannot be written to `checksum.txt` in a form `sha256sum -c` reads back.
    #[error("path `{0}` cannot go into checksum.txt: it contains a newline or a backslash")]
    UnrepresentablePath(String),
}

/// Observer of hashing progress, in bytes. Implementations must be cheap: `advance` is called once
/// per chunk read (a few MiB), possibly from several threads at once.
pub trait Progress: Sync {
    /// `bytes` more are expected in total (called once per file, before it is read).
    fn grow(&self, bytes: u64) {
        let _ = bytes;
    }
    /// `bytes` more have been hashed.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
}

/// A [`Progress`] that reports nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
