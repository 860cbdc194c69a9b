//! `checksum.txt`: the sha256 list in the exact format `sha256sum -c` reads, written and read back.

use crate::{Digest, Error};

/// One line of a checksum file: a file's sha256 and its path relative to the file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumLine {
    /// The file's sha256.
    pub sha256: Digest,
    /// The path, `/`-separated, relative to the folder holding `checksum.txt`.
    pub path: String,
}

/// Renders lines as `sha256sum` writes them in text mode (`<hex>␠␠<path>`), one per line, in the
/// order given. Paths containing a newline or backslash are refused: `sha256sum` would escape
/// them, and no tiffin package path contains one.
pub fn render_checksums(lines: &[ChecksumLine]) -> Result<String, Error> {
    let mut out = String::with_capacity(lines.len() * 80);
    for line in lines {
        if line.path.contains(['\n', '\r', '\\']) {
            return Err(Error::UnrepresentablePath(line.path.clone()));
        }
        out.push_str(&line.sha256.to_hex());
        out.push_str("  ");
        out.push_str(&line.path);
        out.push('\n');
    }
    Ok(out)
}

/// Parses a checksum file as `sha256sum -c` does: `<hex>␠␠<path>` (text mode) or
/// `<hex>␠*<path>` (binary mode), one per line; blank lines are refused, as are escaped lines
/// and paths holding a backslash or a carriage return, which [`render_checksums`] refuses to
/// write (so that whatever parses renders back the same).
pub fn parse_checksums(text: &str) -> Result<Vec<ChecksumLine>, Error> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let bad = |reason: &str| Error::BadChecksumLine {
            line: i + 1,
            reason: reason.to_owned(),
        };
        if raw.starts_with('\\') {
            return Err(bad("escaped names are not used by tiffin packages"));
        }
        let (hex, rest) = raw
            .split_at_checked(64)
            .ok_or_else(|| bad("expected 64 hex characters, two spaces and a path"))?;
        let sha256 = Digest::from_hex(hex)
            .map_err(|_| bad("the digest is not 64 lowercase hex characters"))?;
        let path = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                bad("expected two spaces (or a space and `*`) and a path after the digest")
            })?;
        if path.contains(['\r', '\\']) {
            return Err(bad(
                "the path holds a backslash or a carriage return, which sha256sum would have \
                 written escaped and no tiffin package path holds",
            ));
        }
        out.push(ChecksumLine {
            sha256,
            path: path.to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(b: u8, path: &str) -> ChecksumLine {
        ChecksumLine {
            sha256: Digest([b; 32]),
            path: path.into(),
        }
    }

    /// Found by the `checksums` fuzz target: a path with a backslash parsed, then could not be
    /// rendered. What parses must render.
    #[test]
    fn a_path_render_refuses_does_not_parse() {
        let hex = "1".repeat(64);
        for path in ["examples/in\\x", "a\rb"] {
            let err = parse_checksums(&format!("{hex}  {path}\n")).unwrap_err();
            assert!(err.to_string().contains("backslash"), "{err}");
            assert!(render_checksums(&[line(1, path)]).is_err());
        }
    }

    #[test]
    fn round_trip() {
        let lines = vec![line(1, "model.onnx"), line(2, "examples/inputs.json")];
        let text = render_checksums(&lines).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            format!("{}  model.onnx", "01".repeat(32))
        );
        assert_eq!(parse_checksums(&text).unwrap(), lines);
    }

    #[test]
    fn binary_mode_lines_are_read() {
        let text = format!("{} *model.onnx\n", "ab".repeat(32));
        assert_eq!(parse_checksums(&text).unwrap()[0].path, "model.onnx");
    }

    #[test]
    fn bad_lines_name_the_line() {
        let text = format!("{}  a\nnot a line\n", "ab".repeat(32));
        let err = parse_checksums(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            "checksum.txt line 2: expected 64 hex characters, two spaces and a path"
        );
        let err = parse_checksums(&format!("{} a\n", "ab".repeat(32)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("two spaces"),
            "{err}"
        );
        assert!(render_checksums(&[line(0, "a\nb")]).is_err());
    }
}
