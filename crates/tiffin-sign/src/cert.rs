//! Certificate mode, as `model_signing sign certificate` and `verify certificate` do it: the bundle
//! carries the signing certificate and its chain; the checker trusts a set of root certificates.
//!
//! The chain check is deliberately narrow, so that it is whole: every certificate ECDSA P-256
//! signed with SHA-256; the path from the signing certificate to a given root built from the
//! bundle's certificates by name and signature; every issuer a CA (basic constraints, key usage,
//! path length); every certificate valid at the signing certificate's notBefore (model_signing's
//! rule, there being no timestamp authority); no unknown critical extension; and the signing
//! certificate allowed to sign (digitalSignature, or the codeSigning extended key usage). Anything
//! outside this is refused by name rather than half checked.

use std::path::Path;
use std::time::Duration;

use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use super::key::PublicKey;
use crate::{Error, Result};

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Extensions that need no processing here when marked critical.
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const AUTHORITY_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
/// Longer chains than this are refused: real ones have one or two intermediates.
const MAX_CHAIN: usize = 8;

/// One parsed certificate, with its DER bytes and its P-256 public key when it has one.
#[derive(Debug, Clone)]
struct Parsed {
    der: Vec<u8>,
    cert: Certificate,
    subject: String,
}

/// The subject of a DER certificate, or `None` when it does not parse.
pub(crate) fn subject_of(der: &[u8]) -> Option<String> {
    Parsed::from_der(der.to_vec()).ok().map(|p| p.subject)
}

impl Parsed {
    fn from_der(der: Vec<u8>) -> Result<Self, String> {
        let cert = Certificate::from_der(&der)
            .map_err(|e| format!("holds a certificate that is not valid DER X.509 ({e})"))?;
        let subject = cert.tbs_certificate.subject.to_string();
        Ok(Parsed { der, cert, subject })
    }

    fn key(&self) -> Result<PublicKey, String> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| format!("the certificate `{}` has a damaged key ({e})", self.subject))?;
        PublicKey::from_spki_der(&spki)
            .map_err(|e| format!("the certificate `{}`: {e}", self.subject))
    }

    fn issued_by_name(&self, issuer: &Parsed) -> bool {
        // Names compare by their DER encoding: a distinguished name is its bytes.
        let a = self.cert.tbs_certificate.issuer.to_der();
        let b = issuer.cert.tbs_certificate.subject.to_der();
        matches!((a, b), (Ok(a), Ok(b)) if a == b)
    }

    /// True when `issuer`'s key signed this certificate; an error for algorithms not checked.
    fn signed_by(&self, issuer: &Parsed) -> Result<bool, String> {
        let algorithm = self.cert.signature_algorithm.oid;
        if algorithm != ECDSA_WITH_SHA256 {
            return Err(format!(
                "the certificate `{}` is signed with the algorithm {algorithm}; tiffin checks \
                 chains of ECDSA P-256 certificates signed with SHA-256 (1.2.840.10045.4.3.2) only",
                self.subject
            ));
        }
        let tbs = self
            .cert
            .tbs_certificate
            .to_der()
            .map_err(|e| format!("the certificate `{}` is damaged ({e})", self.subject))?;
        let Some(signature) = self.cert.signature.as_bytes() else {
            return Ok(false);
        };
        Ok(issuer.key()?.verifies(&tbs, signature))
    }

    /// The certificate's extensions; none when it has no extensions field.
    fn extensions(&self) -> &[x509_cert::ext::Extension] {
        self.cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[])
    }

    fn extension<T: AssociatedOid + for<'a> Decode<'a>>(&self) -> Result<Option<T>, String> {
        let extensions = self.extensions();
        match extensions.iter().find(|e| e.extn_id == T::OID) {
            None => Ok(None),
            Some(e) => T::from_der(e.extn_value.as_bytes())
                .map(Some)
                .map_err(|err| {
                    format!(
                        "the certificate `{}` has a damaged extension {} ({err})",
                        self.subject,
                        T::OID
                    )
                }),
        }
    }

    /// Refuses a certificate with a critical extension this check does not process, as every
    /// X.509 verifier must.
    fn check_critical(&self) -> Result<(), String> {
        let known = [
            BasicConstraints::OID,
            KeyUsage::OID,
            ExtendedKeyUsage::OID,
            SUBJECT_ALT_NAME,
            SUBJECT_KEY_ID,
            AUTHORITY_KEY_ID,
        ];
        let extensions = self.extensions();
        match extensions
            .iter()
            .find(|e| e.critical && !known.contains(&e.extn_id))
        {
            Some(e) => Err(format!(
                "the certificate `{}` has the critical extension {}, which tiffin does not check; \
                 it cannot be trusted",
                self.subject, e.extn_id
            )),
            None => Ok(()),
        }
    }

    fn check_time(&self, at: Duration) -> Result<(), String> {
        let validity = &self.cert.tbs_certificate.validity;
        let (from, until) = (
            validity.not_before.to_unix_duration(),
            validity.not_after.to_unix_duration(),
        );
        if at < from || at > until {
            return Err(format!(
                "the certificate `{}` is valid from {} to {}, which does not include the signing \
                 certificate's start {}",
                self.subject,
                validity.not_before,
                validity.not_after,
                at.as_secs()
            ));
        }
        Ok(())
    }

    /// An issuer must be a CA allowed to sign certificates, with room for the `below`
    /// intermediate certificates between it and the signing certificate.
    fn check_issuer(&self, below: usize) -> Result<(), String> {
        let constraints = self.extension::<BasicConstraints>()?;
        let Some(constraints) = constraints.filter(|c| c.ca) else {
            return Err(format!(
                "the certificate `{}` issued another but is not a CA (its basic constraints do \
                 not say CA:TRUE)",
                self.subject
            ));
        };
        if let Some(limit) = constraints.path_len_constraint
            && below > usize::from(limit)
        {
            return Err(format!(
                "the certificate `{}` allows {limit} intermediate certificate(s) below it, the \
                 chain has {below}",
                self.subject
            ));
        }
        if let Some(usage) = self.extension::<KeyUsage>()?
            && !usage.key_cert_sign()
        {
            return Err(format!(
                "the certificate `{}` issued another but its key usage lacks keyCertSign",
                self.subject
            ));
        }
        Ok(())
    }
}

fn parse_pem_file(path: &Path, what: &str) -> Result<Vec<Parsed>> {
    let text = std::fs::read(path).map_err(Error::read(path))?;
    let bad = |reason: String| Error::Key {
        path: path.to_owned(),
        reason,
    };
    // x509-cert 0.2.5's `load_pem_chain` computes `len - 1` of the input without its trailing
    // line ends, which underflows (a panic with overflow checks) when nothing else is left:
    // found by fuzzing with an empty file. Such a file holds no certificate.
    if text.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        return Err(bad(format!(
            "is empty: it holds no certificate; give the {what}"
        )));
    }
    let certs = Certificate::load_pem_chain(&text).map_err(|e| {
        bad(format!(
            "not a PEM file of certificates (`BEGIN CERTIFICATE`): {e}; give the {what}"
        ))
    })?;
    if certs.is_empty() {
        return Err(bad(format!("holds no certificate; give the {what}")));
    }
    certs
        .into_iter()
        .map(|cert| {
            let der = cert
                .to_der()
                .map_err(|e| bad(format!("holds a damaged certificate ({e})")))?;
            Parsed::from_der(der).map_err(bad)
        })
        .collect()
}

/// The signing certificate and the certificates that lead from it to a root, to put in the
/// bundle (certificate mode of `model_signing`).
#[derive(Debug, Clone)]
pub struct CertificateChain {
    certs: Vec<Parsed>,
}

impl CertificateChain {
    /// Reads the signing certificate (PEM, the first certificate of `leaf`) and, optionally, the
    /// intermediate certificates above it (PEM, any number, in `chain`).
    pub fn from_pem_files(leaf: &Path, chain: Option<&Path>) -> Result<Self> {
        let mut certs = parse_pem_file(leaf, "signing certificate")?;
        certs.truncate(1);
        if let Some(chain) = chain {
            certs.extend(parse_pem_file(chain, "intermediate certificates")?);
        }
        Ok(CertificateChain { certs })
    }

    /// The signing certificate's public key.
    pub(crate) fn leaf_key(&self) -> Result<PublicKey, String> {
        self.certs[0].key()
    }

    /// The signing certificate's subject, e.g. `CN=release signer`.
    pub fn subject(&self) -> &str {
        &self.certs[0].subject
    }

    /// The DER bytes of every certificate, the signing one first.
    pub(crate) fn der(&self) -> impl Iterator<Item = &[u8]> {
        self.certs.iter().map(|c| c.der.as_slice())
    }
}

/// The root certificates a certificate-mode signature must lead to.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    roots: Vec<Parsed>,
}

impl TrustRoots {
    /// Reads one or more root certificates (PEM).
    pub fn from_pem_file(path: &Path) -> Result<Self> {
        Ok(TrustRoots {
            roots: parse_pem_file(path, "root CA certificate(s)")?,
        })
    }
}

/// What a verified chain vouches for.
#[derive(Debug)]
pub(crate) struct Leaf {
    pub(crate) key: PublicKey,
    pub(crate) subject: String,
}

/// Checks a bundle's chain (DER, signing certificate first) against `roots`; returns the signing
/// certificate's key and subject. The error names the certificate at fault.
pub(crate) fn verify_chain(chain: &[Vec<u8>], roots: &TrustRoots) -> Result<Leaf, String> {
    let Some(leaf_der) = chain.first() else {
        return Err("holds an empty certificate chain".to_owned());
    };
    let leaf = Parsed::from_der(leaf_der.clone())?;
    let others: Vec<Parsed> = chain[1..]
        .iter()
        .map(|der| Parsed::from_der(der.clone()))
        .collect::<Result<_, _>>()?;
    let at = leaf
        .cert
        .tbs_certificate
        .validity
        .not_before
        .to_unix_duration();

    let mut path: Vec<&Parsed> = vec![&leaf];
    loop {
        let current = *path.last().expect("the path starts with the leaf");
        if roots.roots.iter().any(|r| r.der == current.der) {
            break;
        }
        if path.len() > MAX_CHAIN {
            return Err(format!(
                "holds a chain longer than {MAX_CHAIN} certificates without reaching a root"
            ));
        }
        let mut issuer = None;
        for candidate in roots.roots.iter().chain(&others) {
            if path.iter().any(|p| p.der == candidate.der) || !current.issued_by_name(candidate) {
                continue;
            }
            if current.signed_by(candidate)? {
                issuer = Some(candidate);
                break;
            }
        }
        let Some(issuer) = issuer else {
            return Err(format!(
                "has a certificate chain that does not lead to a root given: `{}` is issued by \
                 `{}`, which is neither a given root nor a certificate of the bundle that signed \
                 it",
                current.subject, current.cert.tbs_certificate.issuer
            ));
        };
        // Intermediates between this issuer and the signing certificate.
        issuer.check_issuer(path.len() - 1)?;
        path.push(issuer);
    }
    for cert in &path {
        cert.check_time(at)?;
        cert.check_critical()?;
    }
    let can_sign = leaf
        .extension::<KeyUsage>()?
        .is_some_and(|u| u.digital_signature())
        || leaf
            .extension::<ExtendedKeyUsage>()?
            .is_some_and(|u| u.0.contains(&CODE_SIGNING));
    if !can_sign {
        return Err(format!(
            "is signed with the certificate `{}`, which may not sign: its key usage lacks \
             digitalSignature and its extended key usage codeSigning",
            leaf.subject
        ));
    }
    Ok(Leaf {
        key: leaf.key()?,
        subject: leaf.subject.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `pem` fuzz target: an empty file (or one of line ends only) panicked inside
    /// x509-cert with overflow checks on; it is refused by name.
    #[test]
    fn an_empty_certificate_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("empty.pem", &b""[..]), ("blank.pem", &b"\r\n\n"[..])] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let err = TrustRoots::from_pem_file(&path).unwrap_err().to_string();
            assert!(err.contains("is empty"), "{err}");
            assert!(CertificateChain::from_pem_files(&path, None).is_err());
        }
    }
}
