//! Recognises model files that run code when loaded (pickle, joblib, torch zip) by their bytes.
//!
//! A pickle is a program for Python's unpickler, and loading one runs whatever callables it names;
//! no package that claims to be safe to load may carry one. The extension alone proves nothing (a
//! pickle renamed `model.onnx` is still a pickle), so the check reads the first bytes of a file,
//! and the extension only adds to what the content says.

use std::fmt;
use std::io::Read;

/// How many leading bytes [`sniff`] looks at. Enough for a zip's first local header with its name
/// and for the start of a compressed joblib stream.
pub const HEAD_LEN: usize = 4096;

/// A format that executes code when loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnsafeFormat {
    /// A Python pickle stream (what `pickle.dump` and uncompressed `joblib.dump` write).
    Pickle,
    /// A pickle inside zlib, gzip, bz2, xz or lzma compression, as `joblib.dump(compress=…)` writes.
    CompressedPickle,
    /// A zip archive holding a `.pkl` member, as `torch.save` writes.
    TorchZip,
    /// A file whose name says it is one of the above, even though its bytes were not recognised.
    PickleByName,
}

impl fmt::Display for UnsafeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsafeFormat::Pickle => "a Python pickle",
            UnsafeFormat::CompressedPickle => "a compressed Python pickle (joblib)",
            UnsafeFormat::TorchZip => "a torch.save zip holding a pickle",
            UnsafeFormat::PickleByName => "named like a pickle/joblib/torch checkpoint",
        })
    }
}

/// What to tell a user who packed a pickle: the reason and the way out.
pub const UNSAFE_FIX: &str = "loading it runs arbitrary code; export the model to ONNX \
    (skl2onnx, torch.onnx.export) or NNEF and package that instead";

const PICKLE_EXTENSIONS: &[&str] = &[".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".sav"];

/// Says whether a file is an unsafe format, from its name and its first bytes (at least
/// [`HEAD_LEN`] of them when the file is that long).
pub fn sniff(name: &str, head: &[u8]) -> Option<UnsafeFormat> {
    if is_pickle(head) {
        return Some(UnsafeFormat::Pickle);
    }
    if is_compressed_pickle(head) {
        return Some(UnsafeFormat::CompressedPickle);
    }
    if is_torch_zip(head) {
        return Some(UnsafeFormat::TorchZip);
    }
    let lower = name.to_ascii_lowercase();
    PICKLE_EXTENSIONS
        .iter()
        .any(|ext| lower.ends_with(ext))
        .then_some(UnsafeFormat::PickleByName)
}

/// Protocol 2 and later open with the PROTO opcode; protocols 0 and 1 open with a GLOBAL/INST
/// naming a callable, a MARK before one, or an empty list/dict followed by a memo put.
fn is_pickle(head: &[u8]) -> bool {
    match head {
        [0x80, 2..=5, ..] => true,
        [b'c', rest @ ..] => is_global_args(rest),
        [b'(', b'c', rest @ ..] | [b'(', b'i', rest @ ..] => is_global_args(rest),
        [b'(', b'd' | b'l', b'p', d, ..] => d.is_ascii_digit(),
        [b']' | b'}', b'q', 0, ..] => true,
        _ => false,
    }
}

/// `module\nname\n`, both Python dotted identifiers: the argument of GLOBAL and INST.
fn is_global_args(rest: &[u8]) -> bool {
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let ident = |s: Option<&[u8]>| {
        s.is_some_and(|s| {
            !s.is_empty()
                && !s[0].is_ascii_digit()
                && s.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        })
    };
    ident(parts.next()) && ident(parts.next()) && parts.next().is_some()
}

/// Decompresses the start of a zlib or gzip stream and looks for a pickle in it. The other
/// compressors joblib offers (bz2, xz, lzma) are recognised by magic number alone: nothing else a
/// model package ships starts with those bytes and also fails every other check.
fn is_compressed_pickle(head: &[u8]) -> bool {
    let mut out = [0u8; 64];
    let inflated = match head {
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => {
            read_some(flate2::read::ZlibDecoder::new(head), &mut out)
        }
        [0x1f, 0x8b, ..] => read_some(flate2::read::GzDecoder::new(head), &mut out),
        _ => return false,
    };
    inflated > 2 && is_pickle(&out[..inflated])
}

fn read_some(mut r: impl Read, out: &mut [u8]) -> usize {
    let mut n = 0;
    while n < out.len() {
        match r.read(&mut out[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// A zip whose first member is a pickle: `torch.save` writes `<name>/data.pkl` first.
fn is_torch_zip(head: &[u8]) -> bool {
    if head.len() < 30 || &head[..4] != b"PK\x03\x04" {
        return false;
    }
    let name_len = u16::from_le_bytes([head[26], head[27]]) as usize;
    head.get(30..30 + name_len)
        .is_some_and(|name| name.ends_with(b".pkl"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn pickles_of_every_protocol() {
        assert_eq!(
            sniff("model.onnx", b"\x80\x04\x95\x10\x00"),
            Some(UnsafeFormat::Pickle)
        );
        assert_eq!(sniff("m", b"\x80\x02}q\x00."), Some(UnsafeFormat::Pickle));
        let proto0 = b"ccopy_reg\n_reconstructor\np0\n(csklearn.linear_model\nLogisticRegression\n";
        assert_eq!(sniff("m", proto0), Some(UnsafeFormat::Pickle));
        assert_eq!(sniff("m", b"(dp0\nVa\np1\n"), Some(UnsafeFormat::Pickle));
        assert_eq!(sniff("m", b"]q\x00(K\x01e."), Some(UnsafeFormat::Pickle));
    }

    #[test]
    fn compressed_joblib_and_torch_zip() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
        z.write_all(b"\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00\x8c\x07sklearn")
            .unwrap();
        assert_eq!(
            sniff("model.bin", &z.finish().unwrap()),
            Some(UnsafeFormat::CompressedPickle)
        );

        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[0; 22]);
        zip.extend_from_slice(&(14u16).to_le_bytes());
        zip.extend_from_slice(&[0, 0]);
        zip.extend_from_slice(b"model/data.pkl");
        assert_eq!(sniff("weights", &zip), Some(UnsafeFormat::TorchZip));
    }

    #[test]
    fn safe_files_pass_and_names_still_count() {
        // The first bytes of an ONNX protobuf (ir_version field) and of plain text.
        assert_eq!(sniff("model.onnx", b"\x08\x07\x12\x07skl2onnx"), None);
        assert_eq!(sniff("README.md", b"# churn model\n"), None);
        assert_eq!(sniff("requirements.txt", b"cloudpickle==2.1.0\n"), None);
        // A gzip of plain text is not a pickle.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a,b,c\n1,2,3\n").unwrap();
        assert_eq!(sniff("data.csv.gz", &gz.finish().unwrap()), None);
        assert_eq!(
            sniff("Model.PKL", b"whatever"),
            Some(UnsafeFormat::PickleByName)
        );
    }
}
