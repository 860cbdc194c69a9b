//! A byte range of a file read as if it were the whole file: what a model stored as a member of
//! an uncompressed archive is, so that it loads from the archive without its bytes being copied
//! into memory first.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::Error;

/// `len` bytes of a file from `start`, with positions counted from `start`. Reads end at the
/// end of the range, whatever the file holds after it, and a seek cannot move before its start:
/// nothing outside the range is ever read.
#[derive(Debug)]
pub(crate) struct FileSpan {
    file: File,
    start: u64,
    len: u64,
    /// The position in the range; the file's own cursor is kept at `start + pos`.
    pos: u64,
}

impl FileSpan {
    /// Opens the range `offset..offset + len` of the file at `path`, refusing one that passes
    /// the end of the file (an archive changed or cut since it was verified).
    pub(crate) fn open(path: &Path, offset: u64, len: u64) -> Result<FileSpan, Error> {
        let cannot = |e: io::Error| Error::Source(format!("cannot read {}: {e}", path.display()));
        let mut file = File::open(path).map_err(cannot)?;
        let file_len = file.metadata().map_err(cannot)?.len();
        if offset.checked_add(len).is_none_or(|end| end > file_len) {
            return Err(Error::Source(format!(
                "{} holds {file_len} bytes, too few for the model's {len} bytes at offset {offset}; \
                 the file changed since it was verified: verify it again",
                path.display()
            )));
        }
        file.seek(SeekFrom::Start(offset)).map_err(cannot)?;
        Ok(FileSpan {
            file,
            start: offset,
            len,
            pos: 0,
        })
    }

    /// The whole file at `path`.
    pub(crate) fn whole(path: &Path) -> Result<FileSpan, Error> {
        let cannot = |e: io::Error| Error::Source(format!("cannot read {}: {e}", path.display()));
        let len = std::fs::metadata(path).map_err(cannot)?.len();
        FileSpan::open(path, 0, len)
    }

    /// The length of the range.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

impl Read for FileSpan {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for FileSpan {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        // Past the end is allowed, as for a file (reads there return nothing); before the start
        // is not.
        let pos = base.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a seek before the start of the model's bytes",
            )
        })?;
        let in_file = self.start.checked_add(pos).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a seek past any file's end")
        })?;
        self.file.seek(SeekFrom::Start(in_file))?;
        self.pos = pos;
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of `junk` bytes, `inside`, and `junk` bytes again.
    fn framed(inside: &[u8], junk: usize) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&vec![0xAB; junk]).unwrap();
        file.write_all(inside).unwrap();
        file.write_all(&vec![0xCD; junk]).unwrap();
        file
    }

    /// Reading to the end gives the range and nothing of what is around it, and so do seeks from
    /// each end and from the current position.
    #[test]
    fn reads_stay_inside_the_range() {
        let inside: Vec<u8> = (0..=255).collect();
        let file = framed(&inside, 1000);
        let mut span = FileSpan::open(file.path(), 1000, 256).unwrap();
        assert_eq!(span.len(), 256);
        let mut all = Vec::new();
        span.read_to_end(&mut all).unwrap();
        assert_eq!(all, inside);
        assert_eq!(span.seek(SeekFrom::End(-6)).unwrap(), 250);
        let mut tail = Vec::new();
        span.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, [250, 251, 252, 253, 254, 255]);
        assert_eq!(span.seek(SeekFrom::Start(10)).unwrap(), 10);
        assert_eq!(span.seek(SeekFrom::Current(-4)).unwrap(), 6);
        let mut two = [0; 2];
        span.read_exact(&mut two).unwrap();
        assert_eq!(two, [6, 7]);
    }

    /// A seek past the end reads nothing, where the file has more; one before the start is
    /// refused; a read asked for more than is left stops at the end.
    #[test]
    fn the_range_has_no_way_out() {
        let file = framed(&[1, 2, 3, 4], 64);
        let mut span = FileSpan::open(file.path(), 64, 4).unwrap();
        span.seek(SeekFrom::Start(4)).unwrap();
        let mut rest = Vec::new();
        assert_eq!(span.read_to_end(&mut rest).unwrap(), 0);
        span.seek(SeekFrom::End(10)).unwrap();
        assert_eq!(span.read(&mut [0; 8]).unwrap(), 0);
        assert!(span.seek(SeekFrom::Current(-100)).is_err());
        assert!(span.seek(SeekFrom::End(-5)).is_err());
        span.seek(SeekFrom::Start(2)).unwrap();
        let mut buf = [0; 16];
        assert!(span.read_exact(&mut buf).is_err());
        span.seek(SeekFrom::Start(2)).unwrap();
        assert_eq!(span.read(&mut buf).unwrap(), 2);
        assert_eq!(buf[..2], [3, 4]);
    }

    /// A range that passes the end of the file is refused when opened, naming the sizes.
    #[test]
    fn a_range_past_the_end_is_refused() {
        let file = framed(&[1, 2, 3, 4], 8);
        for (offset, len) in [(8, 100), (21, 0), (u64::MAX, 2)] {
            let e = FileSpan::open(file.path(), offset, len).unwrap_err();
            assert!(e.to_string().contains("holds 20 bytes"), "{e}");
        }
        assert_eq!(FileSpan::open(file.path(), 20, 0).unwrap().len(), 0);
        assert_eq!(FileSpan::whole(file.path()).unwrap().len(), 20);
    }
}
