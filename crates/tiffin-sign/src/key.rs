//! Signing and public keys from PEM files: ECDSA P-256 only, the curve every `model_signing`
//! verifier accepts; every other key type is refused with what to give instead.

use std::path::Path;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::der::asn1::ObjectIdentifier;
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};

use crate::{Error, Result};

/// id-ecPublicKey: the algorithm of every elliptic-curve key in PKCS#8 and SPKI.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// The curve P-256 (prime256v1, secp256r1).
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

/// How to make a key tiffin accepts, appended to every refusal.
const MAKE_KEY: &str = "make one with `openssl ecparam -name prime256v1 -genkey -noout -out key.pem` \
     and its public key with `openssl ec -in key.pem -pubout -out pub.pem`";

/// A private ECDSA P-256 key, to sign packages with.
#[derive(Clone)]
pub struct SigningKey(p256::ecdsa::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret: only which public key it belongs to.
        f.debug_struct("SigningKey")
            .field("hint", &self.public_key().hint())
            .finish()
    }
}

impl SigningKey {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`), on
    /// the curve P-256. A file may hold an `EC PARAMETERS` block before the key, as
    /// `openssl ecparam -genkey` writes.
    pub fn from_pem_file(path: &Path) -> Result<Self> {
        read_pem_file(path, Self::from_pem)
    }

    /// Parses a PEM private key; the error says what the text holds instead and what to give.
    pub fn from_pem(text: &[u8]) -> Result<Self, String> {
        let (label, der) = pem_block(text)?;
        let secret = match label.as_str() {
            "PRIVATE KEY" => {
                let info = p256::pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| format!("not a valid PKCS#8 private key ({e}); {MAKE_KEY}"))?;
                check_algorithm(info.algorithm.oid, info.algorithm.parameters_oid().ok())?;
                p256::SecretKey::from_pkcs8_der(&der)
                    .map_err(|e| format!("not a valid P-256 private key ({e}); {MAKE_KEY}"))?
            }
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der).map_err(|e| {
                // SEC1 names the curve by its OID in the key's parameters; look for the other
                // curves model_signing knows, to name them rather than say "invalid".
                for curve in [P384, P521] {
                    let mut encoded = vec![0x06, curve.as_bytes().len() as u8];
                    encoded.extend_from_slice(curve.as_bytes());
                    if der.windows(encoded.len()).any(|w| w == encoded) {
                        return check_algorithm(EC_PUBLIC_KEY, Some(curve)).unwrap_err();
                    }
                }
                format!("not a valid P-256 private key ({e}); {MAKE_KEY}")
            })?,
            other => return Err(refuse_label(other, Wanted::Private)),
        };
        Ok(SigningKey(p256::ecdsa::SigningKey::from(secret)))
    }

    /// The public key that checks this key's signatures.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// The DER ECDSA signature (SHA-256) of `message`. RFC 6979: the same key and message always
    /// give the same signature, which keeps signed packages reproducible.
    pub(crate) fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.0.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

/// A public ECDSA P-256 key, to check signatures with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(p256::ecdsa::VerifyingKey);

impl PublicKey {
    /// Reads a PEM public key (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo) on the curve P-256.
    pub fn from_pem_file(path: &Path) -> Result<Self> {
        read_pem_file(path, Self::from_pem)
    }

    /// Parses a PEM public key; the error says what the text holds instead and what to give.
    pub fn from_pem(text: &[u8]) -> Result<Self, String> {
        let (label, der) = pem_block(text)?;
        if label != "PUBLIC KEY" {
            return Err(refuse_label(&label, Wanted::Public));
        }
        Self::from_spki_der(&der)
    }

    /// Parses a DER SubjectPublicKeyInfo (a public key file's content, or a certificate's key).
    pub(crate) fn from_spki_der(der: &[u8]) -> Result<Self, String> {
        let info = p256::pkcs8::SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| format!("not a valid public key ({e}); {MAKE_KEY}"))?;
        check_algorithm(info.algorithm.oid, info.algorithm.parameters_oid().ok())?;
        let key = p256::PublicKey::from_public_key_der(der)
            .map_err(|e| format!("not a valid P-256 public key ({e}); {MAKE_KEY}"))?;
        Ok(PublicKey(key.into()))
    }

    /// The PEM text of the key as OpenSSL and Python's `cryptography` write it (64-column base64,
    /// LF line ends).
    pub fn to_pem(&self) -> String {
        p256::PublicKey::from(self.0)
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 public key always encodes")
    }

    /// The key hint of Sigstore bundles: hex sha256 of [`PublicKey::to_pem`], as `model_signing`
    /// computes it. It names the key; it proves nothing by itself.
    pub fn hint(&self) -> String {
        tiffin_hash::sha256(self.to_pem().as_bytes()).to_hex()
    }

    /// True when `der` is a valid DER ECDSA (SHA-256) signature of `message` by this key.
    pub(crate) fn verifies(&self, message: &[u8], der: &[u8]) -> bool {
        p256::ecdsa::Signature::from_der(der).is_ok_and(|sig| self.0.verify(message, &sig).is_ok())
    }
}

enum Wanted {
    Private,
    Public,
}

/// Reads the key file at `path` with `parse`, naming the file in the error.
fn read_pem_file<K>(path: &Path, parse: impl FnOnce(&[u8]) -> Result<K, String>) -> Result<K> {
    let text = std::fs::read(path).map_err(Error::read(path))?;
    parse(&text).map_err(|reason| Error::Key {
        path: path.to_owned(),
        reason,
    })
}

/// The first PEM block of `text` that is not EC parameters: its label and DER bytes.
fn pem_block(text: &[u8]) -> Result<(String, Vec<u8>), String> {
    let text = std::str::from_utf8(text)
        .map_err(|_| format!("not a PEM file (it is not text); {MAKE_KEY}"))?;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let Some(label_end) = block["-----BEGIN ".len()..].find("-----") else {
            break;
        };
        let label = &block["-----BEGIN ".len()..][..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else {
            return Err(format!(
                "the PEM block `{label}` has no `{end_marker}` line: the file is cut short"
            ));
        };
        let block = &block[..end + end_marker.len()];
        rest = &rest[start + block.len()..];
        if label == "EC PARAMETERS" {
            continue;
        }
        let (label, der) = pem::decode_vec(block.as_bytes())
            .map_err(|e| format!("the PEM block `{label}` is damaged ({e})"))?;
        return Ok((label.to_owned(), der));
    }
    Err(format!(
        "not a PEM key file (no `-----BEGIN` line); {MAKE_KEY}"
    ))
}

/// Accepts an EC key on P-256; refuses every other algorithm and curve, naming it.
fn check_algorithm(oid: ObjectIdentifier, curve: Option<ObjectIdentifier>) -> Result<(), String> {
    let only = "the OpenSSF model_signing format tiffin writes accepts only ECDSA keys on P-256 \
                (model_signing also takes P-384 and P-521, tiffin does not yet)";
    let what = match oid {
        EC_PUBLIC_KEY => match curve {
            Some(P256) => return Ok(()),
            Some(P384) => "an ECDSA P-384 key".to_owned(),
            Some(P521) => "an ECDSA P-521 key".to_owned(),
            Some(other) => format!("an elliptic-curve key on the curve {other}"),
            None => "an elliptic-curve key without a named curve".to_owned(),
        },
        ED25519 => "an Ed25519 key".to_owned(),
        ED448 => "an Ed448 key".to_owned(),
        RSA | RSA_PSS => "an RSA key".to_owned(),
        other => format!("a key of the algorithm {other}"),
    };
    Err(format!("this is {what}: {only}; {MAKE_KEY}"))
}

fn refuse_label(label: &str, wanted: Wanted) -> String {
    match (label, wanted) {
        ("PUBLIC KEY", Wanted::Private) => {
            format!("this is a public key: signing needs the private key (PEM `BEGIN PRIVATE KEY` or `BEGIN EC PRIVATE KEY`); {MAKE_KEY}")
        }
        ("PRIVATE KEY" | "EC PRIVATE KEY", Wanted::Public) => {
            "this is a private key: checking needs only the public key; write it with \
             `openssl ec -in key.pem -pubout -out pub.pem` and give that"
                .to_owned()
        }
        ("CERTIFICATE", _) => {
            "this is a certificate: tiffin signs and checks with keys only; take the public key out \
             with `openssl x509 -in cert.pem -pubkey -noout > pub.pem`"
                .to_owned()
        }
        ("ENCRYPTED PRIVATE KEY", _) => {
            "the private key is encrypted: tiffin reads unencrypted keys only; decrypt it with \
             `openssl pkcs8 -in key.pem -out plain.pem` (and keep that file private)"
                .to_owned()
        }
        ("RSA PRIVATE KEY" | "RSA PUBLIC KEY", _) => check_algorithm(RSA, None).unwrap_err(),
        ("OPENSSH PRIVATE KEY", _) => {
            format!("this is an OpenSSH key: give a PEM ECDSA P-256 key instead; {MAKE_KEY}")
        }
        (other, Wanted::Private) => format!(
            "the PEM block is `{other}`, not a private key (`BEGIN PRIVATE KEY` or `BEGIN EC PRIVATE KEY`); {MAKE_KEY}"
        ),
        (other, Wanted::Public) => format!(
            "the PEM block is `{other}`, not a public key (`BEGIN PUBLIC KEY`); {MAKE_KEY}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/keys")
            .join(name);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn sec1_and_pkcs8_forms_of_one_key_agree_with_its_public_key() {
        let sec1 = SigningKey::from_pem(&key("signer.pem")).unwrap();
        let pkcs8 = SigningKey::from_pem(&key("signer.pkcs8.pem")).unwrap();
        let public = PublicKey::from_pem(&key("signer.pub.pem")).unwrap();
        assert_eq!(sec1.public_key(), public);
        assert_eq!(pkcs8.public_key(), public);
        // The hint is the sha256 of the PEM text exactly as OpenSSL wrote it.
        assert_eq!(public.to_pem().as_bytes(), key("signer.pub.pem"));
        assert_eq!(
            public.hint(),
            tiffin_hash::sha256(&key("signer.pub.pem")).to_hex()
        );
    }

    #[test]
    fn signatures_are_deterministic_and_checked() {
        let signer = SigningKey::from_pem(&key("signer.pem")).unwrap();
        let other = PublicKey::from_pem(&key("other.pub.pem")).unwrap();
        let sig = signer.sign_der(b"message");
        assert_eq!(sig, signer.sign_der(b"message"));
        assert!(signer.public_key().verifies(b"message", &sig));
        assert!(!signer.public_key().verifies(b"messagE", &sig));
        assert!(!other.verifies(b"message", &sig));
        assert!(!signer.public_key().verifies(b"message", b"not der"));
    }

    #[test]
    fn other_key_types_are_refused_by_name() {
        for (file, private, expected) in [
            (
                "ed25519.pem",
                true,
                "this is an Ed25519 key: the OpenSSF model_signing format",
            ),
            ("ed25519.pub.pem", false, "this is an Ed25519 key"),
            ("rsa.pem", true, "this is an RSA key"),
            ("rsa.pub.pem", false, "this is an RSA key"),
            ("p384.pem", true, "this is an ECDSA P-384 key"),
            ("p384.pub.pem", false, "this is an ECDSA P-384 key"),
            (
                "signer.pub.pem",
                true,
                "this is a public key: signing needs the private key",
            ),
            (
                "signer.pem",
                false,
                "this is a private key: checking needs only the public key",
            ),
        ] {
            let err = if private {
                SigningKey::from_pem(&key(file)).unwrap_err()
            } else {
                PublicKey::from_pem(&key(file)).unwrap_err()
            };
            assert!(err.starts_with(expected), "{file}: {err}");
            assert!(
                err.contains("prime256v1") || err.contains("openssl"),
                "{file}: {err}"
            );
        }
    }

    #[test]
    fn garbage_is_refused_with_the_fix() {
        for (text, expected) in [
            (&b"\xff\xfe"[..], "not a PEM file (it is not text)"),
            (b"hello", "not a PEM key file (no `-----BEGIN` line)"),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n",
                "the PEM block `PRIVATE KEY` has no `-----END PRIVATE KEY-----` line",
            ),
            (
                b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
                "the PEM block `PRIVATE KEY` is damaged",
            ),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "not a valid PKCS#8 private key",
            ),
            (
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "the private key is encrypted",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "this is a certificate",
            ),
        ] {
            let err = SigningKey::from_pem(text).unwrap_err();
            assert!(err.starts_with(expected), "{err}");
        }
        let err =
            PublicKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .unwrap_err();
        assert!(err.starts_with("not a valid public key"), "{err}");
    }

    #[test]
    fn a_key_file_error_names_the_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/keys/rsa.pem");
        let err = SigningKey::from_pem_file(&path).unwrap_err().to_string();
        assert!(err.contains("rsa.pem: this is an RSA key"), "{err}");
        let missing = SigningKey::from_pem_file(Path::new("no-such-key.pem")).unwrap_err();
        assert!(missing.to_string().contains("no-such-key.pem"), "{missing}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let signer = SigningKey::from_pem(&key("signer.pem")).unwrap();
        let shown = format!("{signer:?}");
        assert!(shown.starts_with("SigningKey { hint: "), "{shown}");
    }
}
