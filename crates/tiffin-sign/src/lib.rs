//! Signatures over lists of files in the format of OpenSSF `model_signing` 1.x, so that either
//! tool checks what the other signed: a Sigstore bundle (v0.3) whose DSSE envelope signs an
//! in-toto statement listing every file with its sha256, made and checked with ECDSA P-256 keys
//! (key mode) or a certificate chain leading to trusted roots (certificate mode).
//!
//! This crate knows bundles, keys and certificates, and nothing of packages, files on disk
//! beyond key and certificate files, or the network: [`sign_files`] signs a list of names and
//! digests, [`check_bundle`] checks a bundle and returns the list it signs, and the caller (for
//! tiffin, `tiffin-core`'s `sign` and `verify_signature`) compares that list with the files it
//! has.
//!
//! ```
//! use tiffin_sign::{SigningKey, Verifier, check_bundle, sign_files};
//!
//! let key = SigningKey::from_pem(include_bytes!("../../../fixtures/keys/signer.pem")).unwrap();
//! let mut files = vec![
//!     ("model.onnx".to_owned(), tiffin_hash::sha256(b"the model's bytes")),
//!     ("tiffin.json".to_owned(), tiffin_hash::sha256(b"the manifest's bytes")),
//! ];
//! let bundle = sign_files("churn-1.0.0", &mut files, "tiffin.sigstore.json", &key, None).unwrap();
//!
//! let check = check_bundle(&bundle.bytes, &Verifier::Key(key.public_key()));
//! let signed = check.outcome.unwrap();
//! assert_eq!(signed.files, files);
//! assert_eq!(check.key_hint, key.public_key().hint());
//! ```

#![deny(missing_docs)]

mod bundle;
mod cert;
mod key;

use std::path::{Path, PathBuf};

use tiffin_hash::Digest;

pub use cert::{CertificateChain, TrustRoots};
pub use key::{PublicKey, SigningKey};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a key or certificate file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file holds no usable key or certificate.
    #[error("{}: {reason}", path.display())]
    Key {
        /// The key or certificate file.
        path: PathBuf,
        /// What is wrong with it and what to give instead.
        reason: String,
    },
}

impl Error {
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Read { path, source }
    }
}

/// What checks a signature: the signer's public key (key mode), or the root certificates its
/// certificate chain must lead to (certificate mode).
#[derive(Debug, Clone)]
pub enum Verifier {
    /// The signer's public key.
    Key(PublicKey),
    /// Trusted root certificates.
    Certificates(TrustRoots),
}

impl Verifier {
    /// The verifier a user names: the public key in `key`, else the root certificates in
    /// `roots` (the key wins when both are given), else none.
    pub fn from_pem_files(key: Option<&Path>, roots: Option<&Path>) -> Result<Option<Verifier>> {
        Ok(match (key, roots) {
            (Some(key), _) => Some(Verifier::Key(PublicKey::from_pem_file(key)?)),
            (None, Some(roots)) => Some(Verifier::Certificates(TrustRoots::from_pem_file(roots)?)),
            (None, None) => None,
        })
    }

    /// The key hint known before any bundle is read: the key's in key mode; empty in
    /// certificate mode, where the key comes from the bundle's certificate.
    pub fn key_hint(&self) -> String {
        match self {
            Verifier::Key(key) => key.hint(),
            Verifier::Certificates(_) => String::new(),
        }
    }
}

impl From<PublicKey> for Verifier {
    fn from(key: PublicKey) -> Self {
        Verifier::Key(key)
    }
}

/// A bundle [`sign_files`] made.
#[derive(Debug, Clone)]
pub struct SignedBundle {
    /// The bundle's bytes (compact JSON; the same files and key always give the same bytes).
    pub bytes: Vec<u8>,
    /// The statement's subject digest: sha256 over every file's digest, in the signed order.
    pub subject_digest: Digest,
    /// The signer's key hint: hex sha256 of its public key PEM.
    pub key_hint: String,
}

/// Signs `files` (each a path, `/`-separated, and its sha256; sorted here into the order
/// `model_signing` uses) as the statement of subject `subject` (e.g. `NAME-VERSION`), with
/// `ignore` listed as the one ignored path (the bundle's own file name). In certificate mode
/// (`certificates`), the chain goes into the bundle instead of the key's hint; it must be the
/// key's own certificate, or the reason is returned.
pub fn sign_files(
    subject: &str,
    files: &mut [(String, Digest)],
    ignore: &str,
    key: &SigningKey,
    certificates: Option<&CertificateChain>,
) -> Result<SignedBundle, String> {
    if let Some(chain) = certificates {
        let leaf = chain.leaf_key()?;
        if leaf != key.public_key() {
            return Err(format!(
                "the certificate `{}` is for another key than the one given; give the key the \
                 certificate was issued for",
                chain.subject()
            ));
        }
    }
    let statement = bundle::statement(subject, files, ignore);
    let subject_digest = Digest::from_hex(&statement.subject[0].digest.sha256)
        .expect("the statement's subject digest is the hex of a sha256");
    let key_hint = key.public_key().hint();
    let material = match certificates {
        Some(chain) => bundle::Material::Chain(chain.der().collect()),
        None => bundle::Material::Hint(key_hint.clone()),
    };
    let bytes = bundle::bundle_bytes(&statement, material, |pae| key.sign_der(pae));
    Ok(SignedBundle {
        bytes,
        subject_digest,
        key_hint,
    })
}

/// What a bundle signs: each file with its sha256, in the statement's order, and the paths the
/// signer left out on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFiles {
    /// Each signed file's path and sha256.
    pub files: Vec<(String, Digest)>,
    /// Paths (files or folders) the signer left out, such as the bundle itself.
    pub ignore_paths: Vec<String>,
}

impl SignedFiles {
    /// True when the signer left `name` out: it is an ignored path or lies under one.
    pub fn ignores(&self, name: &str) -> bool {
        self.ignore_paths.iter().any(|i| {
            let i = i.trim_end_matches('/');
            name == i
                || name
                    .strip_prefix(i)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// What [`check_bundle`] found.
#[derive(Debug, Clone)]
pub struct BundleCheck {
    /// The hint of the key that checked the signature (hex sha256 of its public key PEM): the key
    /// given, or in certificate mode the signing certificate's key once its chain checked out
    /// (empty before).
    pub key_hint: String,
    /// Certificate mode: the signing certificate's subject, once its chain checked out.
    pub certificate: Option<String>,
    /// The hint the bundle names, when it names one.
    pub signer_hint: Option<String>,
    /// True when the bundle's signature verified.
    pub signature_valid: bool,
    /// The signed file list, or why the bundle is refused (a sentence whose subject is the
    /// bundle: "was signed by another key ...").
    pub outcome: Result<SignedFiles, String>,
}

/// Checks a bundle with `verifier`: decodes it, checks the certificate chain against the roots
/// (certificate mode), then the signature, and only then reads the statement it signs, checked
/// as `model_signing` checks it (types, the `files` method with sha256, the subject digest over
/// the resources).
pub fn check_bundle(bytes: &[u8], verifier: &Verifier) -> BundleCheck {
    let mut check = BundleCheck {
        key_hint: verifier.key_hint(),
        certificate: None,
        signer_hint: None,
        signature_valid: false,
        outcome: Err(String::new()),
    };
    check.outcome = checked(bytes, verifier, &mut check);
    check
}

fn checked(
    bytes: &[u8],
    verifier: &Verifier,
    check: &mut BundleCheck,
) -> Result<SignedFiles, String> {
    let opened = bundle::open(bytes)?;
    check.signer_hint = opened.hint.clone();
    let pae = bundle::pae(bundle::PAYLOAD_TYPE, &opened.payload);
    let key = match verifier {
        Verifier::Key(key) => key.clone(),
        Verifier::Certificates(roots) => {
            let Some(chain) = &opened.chain else {
                return Err(
                    "was signed with a key, not a certificate: check it with --key PUB.pem"
                        .to_owned(),
                );
            };
            let leaf = cert::verify_chain(chain, roots)?;
            check.certificate = Some(leaf.subject);
            leaf.key
        }
    };
    check.key_hint = key.hint();
    if let Some(hint) = opened.hint.as_deref().filter(|h| *h != check.key_hint) {
        return Err(format!(
            "was signed by another key (the bundle names the key {hint}; the key given is {}): \
             check with the public key of the signer",
            check.key_hint
        ));
    }
    if !key.verifies(&pae, &opened.signature) {
        return Err(if opened.hint.is_some() {
            "names the key given, but its signature does not verify: the bundle was changed \
             after signing"
        } else {
            "does not verify with the key given: it was signed by another key, or changed after \
             signing"
        }
        .to_owned());
    }
    check.signature_valid = true;
    let bundle::SignedList {
        files,
        ignore_paths,
    } = bundle::signed_files(&opened.payload)?;
    Ok(SignedFiles {
        files,
        ignore_paths,
    })
}

/// Who a bundle says signed it, read without checking anything: for display, never as a
/// verdict ([`check_bundle`] is the check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The key hint the bundle names (hex sha256 of the signer's public key PEM), if any.
    pub key_hint: Option<String>,
    /// Certificate mode: the subject of the signing certificate the bundle carries.
    pub certificate: Option<String>,
}

/// What a bundle claims about its signer; the error says why the bytes are not a bundle.
pub fn claim(bytes: &[u8]) -> Result<Claim, String> {
    let opened = bundle::open(bytes)?;
    Ok(Claim {
        key_hint: opened.hint,
        certificate: opened
            .chain
            .as_ref()
            .and_then(|chain| chain.first())
            .and_then(|der| cert::subject_of(der)),
    })
}
