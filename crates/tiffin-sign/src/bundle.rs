//! The wire format of OpenSSF `model_signing` 1.x: a Sigstore bundle v0.3 holding a DSSE envelope
//! whose payload is an in-toto Statement v1 listing every file's sha256.

use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use tiffin_hash::Digest;

pub(crate) const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub(crate) const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub(crate) const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The serialization method that hashes each file whole; the only one `model_signing`'s command
/// line writes (its `shards` method is in the Python API only).
pub(crate) const METHOD_FILES: &str = "files";

/// A Sigstore bundle, as `model_signing` writes it in key mode: field names and order as it
/// writes them, so that the bytes look alike.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Bundle {
    pub(crate) media_type: String,
    pub(crate) verification_material: VerificationMaterial,
    pub(crate) dsse_envelope: Envelope,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerificationMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) public_key: Option<KeyHint>,
    /// Certificate mode: the signing certificate, then the rest of its chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) x509_certificate_chain: Option<CertificateChainJson>,
    #[serde(default)]
    pub(crate) tlog_entries: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CertificateChainJson {
    pub(crate) certificates: Vec<RawCertificate>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawCertificate {
    /// DER, base64.
    pub(crate) raw_bytes: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyHint {
    #[serde(default)]
    pub(crate) hint: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
    /// The statement's JSON, base64.
    pub(crate) payload: String,
    pub(crate) payload_type: String,
    pub(crate) signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EnvelopeSignature {
    /// The DER ECDSA signature of the PAE, base64.
    pub(crate) sig: String,
    #[serde(default)]
    pub(crate) keyid: String,
}

/// The in-toto Statement v1 `model_signing` signs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Statement {
    #[serde(rename = "_type")]
    pub(crate) type_: String,
    pub(crate) subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub(crate) predicate_type: String,
    pub(crate) predicate: Predicate,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Subject {
    pub(crate) name: String,
    pub(crate) digest: SubjectDigest,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SubjectDigest {
    pub(crate) sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Predicate {
    pub(crate) serialization: Serialization,
    pub(crate) resources: Vec<Resource>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Serialization {
    pub(crate) hash_type: String,
    pub(crate) method: String,
    #[serde(default)]
    pub(crate) ignore_paths: Vec<String>,
    #[serde(default)]
    pub(crate) allow_symlinks: bool,
    /// Only in the `shards` method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shard_size: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Resource {
    pub(crate) name: String,
    pub(crate) digest: String,
    pub(crate) algorithm: String,
}

/// DSSE's pre-authentication encoding, the bytes actually signed:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII decimal bytes.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Orders package paths as `model_signing` does: by path component (Python's `PurePosixPath`
/// ordering), so that `a/b` comes before `a.txt` although `/` sorts after `.` as a byte.
pub(crate) fn path_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// The subject digest: sha256 over the raw 32-byte digests of the resources, in their order.
pub(crate) fn subject_digest<'a>(digests: impl IntoIterator<Item = &'a Digest>) -> Digest {
    let mut all = Vec::new();
    for d in digests {
        all.extend_from_slice(&d.0);
    }
    tiffin_hash::sha256(&all)
}

/// The statement over `files` (package path and sha256), which are sorted here.
pub(crate) fn statement(subject: &str, files: &mut [(String, Digest)], ignore: &str) -> Statement {
    files.sort_by(|a, b| path_order(&a.0, &b.0));
    let root = subject_digest(files.iter().map(|(_, d)| d));
    Statement {
        type_: STATEMENT_TYPE.to_owned(),
        subject: vec![Subject {
            name: subject.to_owned(),
            digest: SubjectDigest {
                sha256: root.to_hex(),
            },
        }],
        predicate_type: PREDICATE_TYPE.to_owned(),
        predicate: Predicate {
            serialization: Serialization {
                hash_type: "sha256".to_owned(),
                method: METHOD_FILES.to_owned(),
                ignore_paths: vec![ignore.to_owned()],
                allow_symlinks: false,
                shard_size: None,
            },
            resources: files
                .iter()
                .map(|(name, digest)| Resource {
                    name: name.clone(),
                    digest: digest.to_hex(),
                    algorithm: "sha256".to_owned(),
                })
                .collect(),
        },
    }
}

/// How a bundle names its signer.
#[derive(Debug)]
pub(crate) enum Material<'a> {
    /// Key mode: the hint of the public key.
    Hint(String),
    /// Certificate mode: the DER certificates, the signing one first.
    Chain(Vec<&'a [u8]>),
}

/// The bundle's bytes: the statement as the payload, signed over its PAE by `sign`, which returns
/// a DER signature. Compact JSON in a fixed field order, so the same package and key always give
/// the same bytes.
pub(crate) fn bundle_bytes(
    statement: &Statement,
    material: Material<'_>,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let payload = serde_json::to_vec(statement).expect("a statement always serializes");
    let signature = sign(&pae(PAYLOAD_TYPE, &payload));
    let (public_key, x509_certificate_chain) = match material {
        Material::Hint(hint) => (Some(KeyHint { hint }), None),
        Material::Chain(certs) => (
            None,
            Some(CertificateChainJson {
                certificates: certs
                    .into_iter()
                    .map(|der| RawCertificate {
                        raw_bytes: BASE64.encode(der),
                    })
                    .collect(),
            }),
        ),
    };
    let bundle = Bundle {
        media_type: BUNDLE_MEDIA_TYPE.to_owned(),
        verification_material: VerificationMaterial {
            public_key,
            x509_certificate_chain,
            tlog_entries: Vec::new(),
        },
        dsse_envelope: Envelope {
            payload: BASE64.encode(&payload),
            payload_type: PAYLOAD_TYPE.to_owned(),
            signatures: vec![EnvelopeSignature {
                sig: BASE64.encode(signature),
                keyid: String::new(),
            }],
        },
    };
    serde_json::to_vec(&bundle).expect("a bundle always serializes")
}

/// What a bundle says, once its envelope is decoded (not yet checked against any key).
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) hint: Option<String>,
    /// Certificate mode: the DER certificates, the signing one first.
    pub(crate) chain: Option<Vec<Vec<u8>>>,
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// Decodes a bundle far enough to check its signature; the error says what is wrong.
pub(crate) fn open(bytes: &[u8]) -> Result<Opened, String> {
    let bundle: Bundle =
        serde_json::from_slice(bytes).map_err(|e| format!("is not a Sigstore bundle ({e})"))?;
    if !bundle
        .media_type
        .starts_with("application/vnd.dev.sigstore.bundle")
    {
        return Err(format!(
            "has the media type `{}`, not a Sigstore bundle's (`{BUNDLE_MEDIA_TYPE}`)",
            bundle.media_type
        ));
    }
    let chain = match &bundle.verification_material.x509_certificate_chain {
        None => None,
        Some(chain) => Some(
            chain
                .certificates
                .iter()
                .map(|c| BASE64.decode(&c.raw_bytes))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("has a certificate that is not base64 ({e})"))?,
        ),
    };
    let envelope = bundle.dsse_envelope;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(format!(
            "holds a `{}` payload, not an in-toto statement (`{PAYLOAD_TYPE}`)",
            envelope.payload_type
        ));
    }
    let [signature] = envelope.signatures.as_slice() else {
        return Err(format!(
            "holds {} signatures; a model_signing bundle holds exactly one",
            envelope.signatures.len()
        ));
    };
    let payload = BASE64
        .decode(&envelope.payload)
        .map_err(|e| format!("has a payload that is not base64 ({e})"))?;
    let signature = BASE64
        .decode(&signature.sig)
        .map_err(|e| format!("has a signature that is not base64 ({e})"))?;
    Ok(Opened {
        hint: bundle
            .verification_material
            .public_key
            .map(|k| k.hint)
            .filter(|h| !h.is_empty()),
        chain,
        payload,
        signature,
    })
}

/// What a statement signs: each file with its sha256, in the statement's order, and the paths the
/// signer left out on purpose.
#[derive(Debug)]
pub(crate) struct SignedList {
    pub(crate) files: Vec<(String, Digest)>,
    pub(crate) ignore_paths: Vec<String>,
}

/// The signed file list, read from a payload whose signature checked out: every resource's name
/// and sha256, and the paths the signer ignored. Checks the statement the way `model_signing`
/// does, including that the subject digest matches the resources.
pub(crate) fn signed_files(payload: &[u8]) -> Result<SignedList, String> {
    let statement: Statement = serde_json::from_slice(payload)
        .map_err(|e| format!("signs something that is not a model_signing statement ({e})"))?;
    if statement.type_ != STATEMENT_TYPE {
        return Err(format!(
            "signs a statement of type `{}`, not `{STATEMENT_TYPE}`",
            statement.type_
        ));
    }
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(format!(
            "signs a `{}` predicate, not model_signing's `{PREDICATE_TYPE}`",
            statement.predicate_type
        ));
    }
    let serialization = &statement.predicate.serialization;
    if serialization.method != METHOD_FILES || serialization.hash_type != "sha256" {
        return Err(format!(
            "hashes the model with the `{}` method and {}; tiffin checks the `{METHOD_FILES}` \
             method with sha256, which `model_signing sign` uses by default",
            serialization.method, serialization.hash_type
        ));
    }
    let [subject] = statement.subject.as_slice() else {
        return Err(format!(
            "has {} subjects; a model_signing statement has exactly one",
            statement.subject.len()
        ));
    };
    let mut files = Vec::with_capacity(statement.predicate.resources.len());
    for r in &statement.predicate.resources {
        let digest = Digest::from_hex(&r.digest)
            .ok()
            .filter(|_| r.algorithm == "sha256")
            .ok_or_else(|| {
                format!(
                    "lists `{}` with a {} digest `{}`, not a sha256",
                    r.name, r.algorithm, r.digest
                )
            })?;
        files.push((r.name.clone(), digest));
    }
    let root = subject_digest(files.iter().map(|(_, d)| d));
    if root.to_hex() != subject.digest.sha256 {
        return Err(format!(
            "is inconsistent: its subject digest is {} but its files hash to {root}",
            subject.digest.sha256
        ));
    }
    Ok(SignedList {
        files,
        ignore_paths: serialization.ignore_paths.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // The example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn paths_sort_by_component_as_model_signing_does() {
        let mut paths = vec!["a.txt", "sub/b", "a/b", "a.b", "model.sig", "a"];
        paths.sort_by(|a, b| path_order(a, b));
        assert_eq!(paths, ["a", "a/b", "a.b", "a.txt", "model.sig", "sub/b"]);
    }

    #[test]
    fn the_subject_digest_is_over_raw_digests_in_order() {
        let a = tiffin_hash::sha256(b"a");
        let b = tiffin_hash::sha256(b"b");
        let mut raw = a.0.to_vec();
        raw.extend_from_slice(&b.0);
        assert_eq!(subject_digest([&a, &b]), tiffin_hash::sha256(&raw));
        assert_ne!(subject_digest([&b, &a]), subject_digest([&a, &b]));
    }

    #[test]
    fn a_bundle_has_model_signings_shape_and_reads_back() {
        let mut files = vec![
            ("tiffin.json".to_owned(), tiffin_hash::sha256(b"m")),
            ("examples/inputs.json".to_owned(), tiffin_hash::sha256(b"i")),
        ];
        let statement = statement("iris-1.0.0", &mut files, "tiffin.sigstore.json");
        let bytes = bundle_bytes(&statement, Material::Hint("abc".to_owned()), |pae| {
            assert!(pae.starts_with(b"DSSEv1 28 application/vnd.in-toto+json "));
            vec![0x30, 0x00]
        });
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            json["mediaType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
        assert_eq!(json["verificationMaterial"]["publicKey"]["hint"], "abc");
        assert_eq!(
            json["verificationMaterial"]["tlogEntries"],
            serde_json::json!([])
        );
        let envelope = &json["dsseEnvelope"];
        assert_eq!(envelope["payloadType"], PAYLOAD_TYPE);
        assert_eq!(envelope["signatures"][0]["sig"], "MAA=");
        assert_eq!(envelope["signatures"][0]["keyid"], "");
        let payload = BASE64
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(statement["_type"], STATEMENT_TYPE);
        assert_eq!(statement["predicateType"], PREDICATE_TYPE);
        assert_eq!(statement["subject"][0]["name"], "iris-1.0.0");
        let serialization = &statement["predicate"]["serialization"];
        assert_eq!(serialization["method"], "files");
        assert_eq!(serialization["hash_type"], "sha256");
        assert_eq!(serialization["allow_symlinks"], false);
        assert_eq!(
            serialization["ignore_paths"],
            serde_json::json!(["tiffin.sigstore.json"])
        );
        let resources = &statement["predicate"]["resources"];
        assert_eq!(resources[0]["name"], "examples/inputs.json");
        assert_eq!(resources[1]["name"], "tiffin.json");
        assert_eq!(resources[1]["algorithm"], "sha256");
        assert_eq!(
            resources[1]["digest"],
            tiffin_hash::sha256(b"m").to_hex().as_str()
        );

        let opened = open(&bytes).unwrap();
        assert_eq!(opened.hint.as_deref(), Some("abc"));
        assert_eq!(opened.signature, [0x30, 0x00]);
        let signed = signed_files(&opened.payload).unwrap();
        assert_eq!(signed.files, files);
        assert_eq!(signed.ignore_paths, ["tiffin.sigstore.json"]);
    }

    #[test]
    fn an_inconsistent_statement_is_refused() {
        let mut files = vec![("a".to_owned(), tiffin_hash::sha256(b"a"))];
        let mut statement = statement("x", &mut files, "tiffin.sigstore.json");
        statement.predicate.resources[0].digest = tiffin_hash::sha256(b"b").to_hex();
        let payload = serde_json::to_vec(&statement).unwrap();
        let err = signed_files(&payload).unwrap_err();
        assert!(err.starts_with("is inconsistent"), "{err}");
    }

    #[test]
    fn bundles_that_are_not_model_signing_key_bundles_are_named() {
        for (text, expected) in [
            ("[]", "is not a Sigstore bundle"),
            (
                r#"{"mediaType":"text/plain","verificationMaterial":{},"dsseEnvelope":{"payload":"","payloadType":"x","signatures":[]}}"#,
                "has the media type `text/plain`",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"x509CertificateChain":{"certificates":[{"rawBytes":"!"}]}},"dsseEnvelope":{"payload":"","payloadType":"x","signatures":[]}}"#,
                "has a certificate that is not base64",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"dsseEnvelope":{"payload":"","payloadType":"application/vnd.in-toto+json","signatures":[]}}"#,
                "holds 0 signatures",
            ),
        ] {
            let err = open(text.as_bytes()).unwrap_err();
            assert!(err.starts_with(expected), "{text}: {err}");
        }
    }
}
