//! Registry references: `host[:port]/repository[:tag|@sha256:<hex>]`.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A parsed registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port`, e.g. `localhost:5000` or `ghcr.io`.
    pub registry: String,
    /// The repository path, e.g. `models/churn`.
    pub repository: String,
    /// The tag, e.g. `1.0.0`.
    pub tag: Option<String>,
    /// The manifest digest, `sha256:<hex>`, when the reference pins one.
    pub digest: Option<String>,
}

impl Reference {
    /// The tag or digest a manifest is fetched or written by.
    pub fn target(&self) -> Option<&str> {
        self.digest.as_deref().or(self.tag.as_deref())
    }

    /// True when the registry is on this machine (`localhost`, `127.*`, `::1`), where plain
    /// HTTP is allowed without `--insecure`.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(rest),
            None => self
                .registry
                .rsplit_once(':')
                .map_or(self.registry.as_str(), |(h, _)| h),
        };
        host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The same reference with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The URI scheme a reference may be written with, as in KServe's `storageUri`.
pub const URI_SCHEME: &str = "tiffin://";

impl FromStr for Reference {
    type Err = Error;

    /// Parses `host[:port]/repository[:tag][@sha256:hex]`, optionally written as a URI
    /// `tiffin://host/...` (the form of a KServe `storageUri`).
    fn from_str(given: &str) -> Result<Reference> {
        let s = given.strip_prefix(URI_SCHEME).unwrap_or(given);
        let bad = |reason: &str| Error::BadReference {
            given: given.to_owned(),
            reason: format!(
                "{reason}; write `host[:port]/repository[:tag]`, e.g. `localhost:5000/models/churn:1.0.0`"
            ),
        };
        let (registry, rest) = s
            .split_once('/')
            .ok_or_else(|| bad("it names no registry host"))?;
        let looks_like_host = registry.contains('.')
            || registry.contains(':')
            || registry == "localhost"
            || registry.starts_with('[');
        if !looks_like_host {
            return Err(bad(&format!(
                "`{registry}` is not a registry host (a host has a `.` or a port, or is `localhost`)"
            )));
        }
        if registry.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(bad(&format!("`{registry}` is not a registry host")));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
                    bad(&format!(
                        "`{digest}` is not a sha256 digest (`sha256:` and 64 hex digits)"
                    ))
                })?;
                if hex.len() != 64
                    || !hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    return Err(bad(&format!(
                        "`{digest}` is not a sha256 digest (`sha256:` and 64 lowercase hex digits)"
                    )));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (rest, None),
        };
        // A tag follows the last `:` after the last `/`.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_owned()),
            ),
            None => (rest, None),
        };
        if !repository.split('/').all(is_path_component) {
            return Err(bad(&format!(
                "`{repository}` is not a repository path: use lowercase letters and digits, \
                 separated by `/`, `.`, `_`, `__` or `-`"
            )));
        }
        if let Some(tag) = &tag {
            let ok = tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(bad(&format!(
                    "`{tag}` is not a tag: up to 128 letters, digits, `_`, `.` or `-`, not \
                     starting with `.` or `-`"
                )));
            }
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }
}

/// One `/`-separated part of a repository: `[a-z0-9]+` runs joined by `.`, `_`, `__` or `-`s.
fn is_path_component(part: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if part.is_empty() || !part.starts_with(alnum) || !part.ends_with(alnum) {
        return false;
    }
    let mut separator = String::new();
    for c in part.chars() {
        if alnum(c) {
            let ok = separator.is_empty()
                || matches!(separator.as_str(), "." | "_" | "__")
                || separator.chars().all(|s| s == '-');
            if !ok {
                return false;
            }
            separator.clear();
        } else if matches!(c, '.' | '_' | '-') {
            separator.push(c);
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn parses_host_port_repository_tag_and_digest() {
        let r = parse("localhost:5000/models/churn:1.0.0");
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "models/churn");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert_eq!(r.digest, None);
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "localhost:5000/models/churn:1.0.0");

        let hex = "a".repeat(64);
        let r = parse(&format!("ghcr.io/acme/churn@sha256:{hex}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.target(), Some(format!("sha256:{hex}").as_str()));
        assert!(!r.is_loopback());

        let r = parse("127.0.0.1:5000/churn");
        assert_eq!(r.tag, None);
        assert!(r.is_loopback());
        assert!(parse("[::1]:5000/a/b:x").is_loopback());
        assert!(!parse("example.com:5000/a:x").is_loopback());
    }

    #[test]
    fn takes_the_tiffin_uri_form() {
        let r = parse("tiffin://registry.example.com/models/churn:1.0.0");
        assert_eq!(r, parse("registry.example.com/models/churn:1.0.0"));
        let err = "tiffin://churn"
            .parse::<Reference>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`tiffin://churn`"), "{err}");
    }

    #[test]
    fn refuses_bad_references_naming_the_part() {
        for (bad, part) in [
            ("churn:1.0.0", "names no registry host"),
            ("models/churn:1.0.0", "`models` is not a registry host"),
            (
                "localhost:5000/Models/churn:1",
                "`Models/churn` is not a repository",
            ),
            ("localhost:5000/a//b", "is not a repository"),
            ("localhost:5000/a:-x", "`-x` is not a tag"),
            ("localhost:5000/a@sha256:abc", "is not a sha256 digest"),
            ("localhost:5000/a@md5:abc", "is not a sha256 digest"),
        ] {
            let err = bad.parse::<Reference>().unwrap_err().to_string();
            assert!(err.contains(part), "{bad}: {err}");
            assert!(
                err.contains("e.g. `localhost:5000/models/churn:1.0.0`"),
                "{err}"
            );
        }
    }

    #[test]
    fn repository_components_follow_the_distribution_grammar() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "a1"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a._b", "a___b", "A"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }
}
