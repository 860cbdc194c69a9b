//! Pulls from a small in-process registry: the bearer token flow, an interrupted pull that a
//! rerun resumes, and hostile manifests refused before anything is stored. (Pushes and pulls
//! against a real registry are `cargo xtask registry`.)

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tiffin_core::VerifyOptions;
use tiffin_core::hash::Algorithms;
use tiffin_store::Store;
use tiffin_store::oci::{self, ClientOptions, Credentials, FILEPATH_ANNOTATION, Reference};

use tiffin_testkit::{pack_fixture, pack_into, problems, verify};

/// What the fake registry serves and what it saw.
struct Registry {
    address: String,
    manifest: Vec<u8>,
    blobs: BTreeMap<String, Vec<u8>>,
    /// When set, this blob is cut off half-way, as by a dropped connection.
    cut: Mutex<Option<String>>,
    /// Requests of the token endpoint, with their Authorization header.
    token_requests: Mutex<Vec<(String, String)>>,
    /// Blob downloads served, by digest.
    served: Mutex<Vec<String>>,
    bearer: bool,
    stop: AtomicBool,
}

impl Registry {
    fn start(manifest: Vec<u8>, blobs: BTreeMap<String, Vec<u8>>, bearer: bool) -> Arc<Registry> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let registry = Arc::new(Registry {
            address: listener.local_addr().unwrap().to_string(),
            manifest,
            blobs,
            cut: Mutex::new(None),
            token_requests: Mutex::new(Vec::new()),
            served: Mutex::new(Vec::new()),
            bearer,
            stop: AtomicBool::new(false),
        });
        let serving = registry.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if serving.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serving.answer(stream);
                }
            }
        });
        registry
    }

    fn answer(&self, mut stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        // A pull only GETs, so the method does not change the answer.
        let path = parts.nth(1).unwrap_or("").to_owned();
        let mut authorization = String::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = value.trim().to_owned();
            }
        }
        let authorized = !self.bearer || authorization == "Bearer good-token";
        let (status, headers, body): (u16, Vec<String>, Vec<u8>) = if path.starts_with("/token") {
            self.token_requests
                .lock()
                .unwrap()
                .push((path.clone(), authorization.clone()));
            (200, vec![], br#"{"token": "good-token"}"#.to_vec())
        } else if !authorized {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://{}/token\",service=\"fake\"",
                self.address
            );
            (401, vec![challenge], b"{}".to_vec())
        } else if path == "/v2/" {
            (200, vec![], b"{}".to_vec())
        } else if path == "/v2/models/churn/manifests/1.0.0" {
            let content_type =
                "Content-Type: application/vnd.oci.image.manifest.v1+json".to_owned();
            (200, vec![content_type], self.manifest.clone())
        } else if let Some(digest) = path.strip_prefix("/v2/models/churn/blobs/")
            && let Some(blob) = self.blobs.get(digest)
        {
            self.served.lock().unwrap().push(digest.to_owned());
            if self.cut.lock().unwrap().as_deref() == Some(digest) {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    blob.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&blob[..blob.len() / 2]);
                return;
            }
            (200, vec![], blob.clone())
        } else {
            (404, vec![], b"{}".to_vec())
        };
        let mut head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for h in headers {
            head.push_str(&h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    }

    fn reference(&self) -> Reference {
        format!("{}/models/churn:1.0.0", self.address)
            .parse()
            .unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.address);
    }
}

/// The manifest and blobs of a packed fixture, as `tiffin push` would send them.
fn served_package(folder: &Path) -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
    let artifact = oci::artifact(folder).unwrap();
    let blobs = artifact
        .layers()
        .map(|l| {
            let path = &l.annotations[FILEPATH_ANNOTATION];
            (l.digest.clone(), std::fs::read(folder.join(path)).unwrap())
        })
        .collect();
    (artifact.manifest, blobs)
}

fn quick() -> VerifyOptions {
    VerifyOptions {
        algorithms: Algorithms::BOTH,
        run_model: false,
        ..VerifyOptions::default()
    }
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn bearer_token_flow_then_a_verified_pull() {
    let (_out, packed) = pack_fixture("churn_model");
    let (manifest, blobs) = served_package(&packed.folder);
    let registry = Registry::start(manifest, blobs, true);
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let options = ClientOptions {
        insecure: false,
        credentials: Some(Credentials {
            username: "ada".into(),
            password: "pw".into(),
        }),
    };
    let report = oci::pull(&registry.reference(), &store, &options, &quick(), None).unwrap();
    assert_eq!(
        report.stored.entry.digest,
        format!("sha256:{}", packed.digest)
    );
    assert_eq!(report.reused, 0);
    let tokens = registry.token_requests.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let (query, authorization) = &tokens[0];
    assert!(
        query.contains("scope=repository%3Amodels%2Fchurn%3Apull"),
        "{query}"
    );
    assert!(query.contains("service=fake"), "{query}");
    assert_eq!(authorization, "Basic YWRhOnB3");
    assert!(store.resolve("churn_model:1.0.0").unwrap().is_dir());
}

#[test]
fn an_interrupted_pull_stores_no_package_and_a_rerun_resumes() {
    let (_out, packed) = pack_fixture("churn_model");
    let (manifest, blobs) = served_package(&packed.folder);
    let total = blobs.len();
    // The last layer in manifest order is cut, so the ones before it have arrived.
    let image: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let last = image["layers"][total - 1]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let registry = Registry::start(manifest, blobs, false);
    *registry.cut.lock().unwrap() = Some(last.clone());

    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let options = ClientOptions::default();
    let err = oci::pull(&registry.reference(), &store, &options, &quick(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&last), "{err}");
    assert_eq!(count(&home.path().join("packages")), 0);
    assert_eq!(count(&home.path().join("tags")), 0);
    assert_eq!(count(&home.path().join("tmp")), 0, "no partial blob left");
    assert_eq!(count(&home.path().join("blobs/sha256")), total - 1);

    *registry.cut.lock().unwrap() = None;
    registry.served.lock().unwrap().clear();
    let report = oci::pull(&registry.reference(), &store, &options, &quick(), None).unwrap();
    assert_eq!((report.fetched, report.reused), (1, total - 1));
    assert_eq!(registry.served.lock().unwrap().clone(), [last]);
    assert_eq!(
        report.stored.entry.digest,
        format!("sha256:{}", packed.digest)
    );
}

/// Every name in a folder, hidden ones included, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_pull_into_a_folder_writes_the_verified_package_folder_and_nothing_else() {
    let (_out, packed) = pack_fixture("churn_model");
    let (manifest, blobs) = served_package(&packed.folder);
    let registry = Registry::start(manifest, blobs, false);
    let models = tempfile::tempdir().unwrap();
    let dir = models.path().join("mnt/models");
    let options = ClientOptions::default();
    // The KServe form of the reference.
    let uri: Reference = format!("tiffin://{}", registry.reference())
        .parse()
        .unwrap();
    let pulled = oci::pull_into(&uri, &dir, &options, &quick(), None).unwrap();
    assert!(pulled.new);
    assert_eq!(pulled.folder, dir.join("churn_model/1.0.0"));
    assert_eq!(names(&dir), ["churn_model"], "no staging store left behind");
    let report = verify(&pulled.folder);
    assert!(report.problems.is_empty(), "{:?}", problems(&report));
    assert_eq!(
        pulled.pull.stored.entry.digest,
        format!("sha256:{}", packed.digest)
    );

    // Again: nothing changes.
    let again = oci::pull_into(&uri, &dir, &options, &quick(), None).unwrap();
    assert!(!again.new);
    assert_eq!(names(&dir), ["churn_model"]);

    // Another package where this version goes is refused and left as it is.
    let other = tempfile::tempdir().unwrap();
    std::fs::remove_dir_all(&pulled.folder).unwrap();
    let iris = pack_into(&tiffin_testkit::fixtures().join("iris"), other.path());
    tiffin_testkit::copy_tree(&iris.folder, &pulled.folder);
    let err = oci::pull_into(&uri, &dir, &options, &quick(), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds another package") && err.contains(&iris.digest.to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(pulled.folder.join("tiffin.json")).unwrap(),
        std::fs::read(iris.folder.join("tiffin.json")).unwrap()
    );
}

#[test]
fn an_interrupted_pull_into_a_folder_leaves_it_empty() {
    let (_out, packed) = pack_fixture("churn_model");
    let (manifest, blobs) = served_package(&packed.folder);
    let image: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let last = image["layers"][blobs.len() - 1]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let registry = Registry::start(manifest, blobs, false);
    *registry.cut.lock().unwrap() = Some(last.clone());
    let dir = tempfile::tempdir().unwrap();
    let err = oci::pull_into(
        &registry.reference(),
        dir.path(),
        &ClientOptions::default(),
        &quick(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&last), "{err}");
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

#[test]
fn a_manifest_with_an_escaping_path_is_refused_before_any_download() {
    let (_out, packed) = pack_fixture("churn_model");
    let (manifest, blobs) = served_package(&packed.folder);
    let text = String::from_utf8(manifest).unwrap().replacen(
        "\"model-card.md\"",
        "\"../model-card.md\"",
        1,
    );
    assert!(text.contains("../model-card.md"));
    let registry = Registry::start(text.into_bytes(), blobs, false);
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let err = oci::pull(
        &registry.reference(),
        &store,
        &ClientOptions::default(),
        &quick(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("../model-card.md"), "{err}");
    assert!(registry.served.lock().unwrap().is_empty());
    assert_eq!(count(&home.path().join("blobs/sha256")), 0);
    assert_eq!(count(&home.path().join("packages")), 0);
}

#[test]
fn a_manifest_of_max_small_body_bytes_is_pulled_and_one_byte_more_refused() {
    let (_out, packed) = pack_fixture("churn_model");
    let (manifest, blobs) = served_package(&packed.folder);
    let padded = |len: u64| {
        // JSON allows whitespace after the document: the same manifest, grown to `len` bytes.
        let mut bytes = manifest.clone();
        bytes.resize(len as usize, b' ');
        bytes
    };
    // A pull of a manifest of `len` bytes into a fresh store; the blobs the registry served.
    let pull = |len: u64| {
        let registry = Registry::start(padded(len), blobs.clone(), false);
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(home.path()).unwrap();
        let pulled = oci::pull(
            &registry.reference(),
            &store,
            &ClientOptions::default(),
            &quick(),
            None,
        );
        let served = registry.served.lock().unwrap().len();
        (pulled.map(drop), served)
    };
    let (pulled, _) = pull(oci::MAX_SMALL_BODY);
    pulled.expect("a manifest of MAX_SMALL_BODY bytes is read");
    let (pulled, served) = pull(oci::MAX_SMALL_BODY + 1);
    let err = pulled.unwrap_err().to_string();
    assert!(
        err.contains("answered more than 4194304 bytes, more than the bound MAX_SMALL_BODY"),
        "{err}"
    );
    assert_eq!(served, 0, "no blob is fetched for a refused manifest");
}
