//! The 32-byte digest type and the pair of digests every package file carries.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A 32-byte digest (sha256 or blake3), shown as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lowercase hex characters. Uppercase is refused so that one digest has exactly
    /// one spelling, which keeps manifests canonical.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let bad = || Error::BadHex(s.to_owned());
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| bad())?;
        Ok(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Digest::from_hex(s)
    }
}

/// Which digests to compute. Packing needs both; a fast verify needs only blake3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithms {
    /// Compute sha256.
    pub sha256: bool,
    /// Compute blake3.
    pub blake3: bool,
}

impl Algorithms {
    /// sha256 and blake3 together, in one read pass.
    pub const BOTH: Algorithms = Algorithms {
        sha256: true,
        blake3: true,
    };
    /// blake3 alone: the fastest full check of a file's content.
    pub const BLAKE3: Algorithms = Algorithms {
        sha256: false,
        blake3: true,
    };
    /// sha256 alone.
    pub const SHA256: Algorithms = Algorithms {
        sha256: true,
        blake3: false,
    };
}

/// The size and digests of one file or stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// Number of bytes hashed.
    pub size: u64,
    /// sha256 of the bytes, when it was asked for.
    pub sha256: Option<Digest>,
    /// blake3 of the bytes, when it was asked for.
    pub blake3: Option<Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        let d = Digest([0xab; 32]);
        assert_eq!(Digest::from_hex(&d.to_hex()).unwrap(), d);
        assert!(Digest::from_hex("ab").is_err());
        assert!(Digest::from_hex(&"AB".repeat(32)).is_err());
        assert!(Digest::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(
            Digest::from_hex("xyz").unwrap_err().to_string(),
            "`xyz` is not a 64-character lowercase hex digest"
        );
    }
}
