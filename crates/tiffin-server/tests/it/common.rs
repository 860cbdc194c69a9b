//! Shared helpers: fixture packages packed once per test run, states loaded over them, and
//! one-shot requests through the router.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tiffin_server::{AppState, Config};
use tower::ServiceExt;

/// The fixture authoring folder `name`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// Packs `name` into `out`, returning the archive.
pub(crate) fn pack_into(name: &str, out: &Path) -> PathBuf {
    let packed = tiffin_core::pack(
        &tiffin_core::PackOptions {
            source: fixture(name),
            out: Some(out.to_owned()),
            force: false,
            examples: None,
            runtime: Default::default(),
        },
        &tiffin_core::hash::NoProgress,
    )
    .expect("the fixture packs");
    packed.archive
}

/// The folder packages are made in once for the whole test run, with a lock to hold while one
/// is made (tests run on several threads).
fn run_dir() -> (&'static Path, std::sync::MutexGuard<'static, ()>) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir"));
    let guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (dir.path(), guard)
}

/// The archive of fixture `name`, packed once for the whole test run.
pub(crate) fn package(name: &str) -> PathBuf {
    let (dir, _one_at_a_time) = run_dir();
    let version = toml_version(name);
    let archive = dir.join(format!("{name}-{version}.tiffin"));
    if !archive.exists() {
        pack_into(name, dir);
    }
    archive
}

/// A package whose one input and output are f32 scalars (rank 0), `y = x + 1`: no fixture
/// has a rank-0 input.
pub(crate) fn scalar_package() -> PathBuf {
    nnef_package(
        "scalar",
        "x = external<scalar>(shape = []);\n  y = add(x, 1.0);",
        ("f32", "[]"),
    )
}

/// A package of one i64 input and output of shape [1], `y = x / x`: tract panics on a zero (an
/// integer division by zero), which the server must answer with a 500, not lose.
pub(crate) fn idiv_package() -> PathBuf {
    nnef_package(
        "idiv",
        "x = external<integer>(shape = [1]);\n  y = div(x, x);",
        ("i64", "[1]"),
    )
}

/// An NNEF graph `name(x) -> (y)` with `body`, packed once for the whole test run, its input
/// and output both of `(dtype, shape)`.
fn nnef_package(name: &str, body: &str, (dtype, shape): (&str, &str)) -> PathBuf {
    nnef_package_to(name, body, dtype, (shape, shape))
}

/// A package of one input of 1 x 1 f32 and one output of 1 x 70000, every value the input's:
/// an answer larger than any fixture's, to be encoded off the async workers.
pub(crate) fn wide_package() -> PathBuf {
    nnef_package_to(
        "wide",
        "x = external<scalar>(shape = [1, 1]);\n  y = tile(x, repeats = [1, 70000]);",
        "f32",
        ("[1, 1]", "[1, 70000]"),
    )
}

/// An NNEF graph `name(x) -> (y)` with `body`, packed once for the whole test run: input and
/// output of `dtype`, of the shapes given.
fn nnef_package_to(
    name: &str,
    body: &str,
    dtype: &str,
    (shape, out_shape): (&str, &str),
) -> PathBuf {
    let (dir, _one_at_a_time) = run_dir();
    let archive = dir.join(format!("{name}-1.0.0.tiffin"));
    if archive.exists() {
        return archive;
    }
    let source = dir.join("sources").join(name);
    std::fs::create_dir_all(source.join("model")).unwrap();
    std::fs::write(
        source.join("model/graph.nnef"),
        format!("version 1.0;\n\ngraph {name}(x) -> (y)\n{{\n  {body}\n}}\n"),
    )
    .unwrap();
    let toml = format!(
        r#"
[package]
name = "{name}"
version = "1.0.0"
description = "A graph written by the tests."
authors = ["tiffin tests"]
license = "MIT"

[model]
path = "model/"
format = "nnef"

[[signature.inputs]]
name = "x"
dtype = "{dtype}"
shape = {shape}

[[signature.outputs]]
name = "y"
dtype = "{dtype}"
shape = {out_shape}
"#
    );
    std::fs::write(source.join("tiffin.toml"), toml).unwrap();
    let packed = tiffin_core::pack(
        &tiffin_core::PackOptions {
            source,
            out: Some(dir.to_owned()),
            force: false,
            examples: None,
            runtime: Default::default(),
        },
        &tiffin_core::hash::NoProgress,
    )
    .expect("the graph packs");
    packed.archive
}

fn toml_version(name: &str) -> String {
    let text = std::fs::read_to_string(fixture(name).join("tiffin.toml")).expect("tiffin.toml");
    let authoring = tiffin_core::manifest::Authoring::from_toml_str(&text).expect("valid");
    authoring.package.version
}

/// A state over the given fixtures, loaded.
pub(crate) async fn loaded(names: &[&str], config: Config) -> AppState {
    let paths = names.iter().map(|n| package(n)).collect();
    let state = AppState::new(config, paths);
    state.load().await.expect("the fixtures load");
    state
}

/// An answer: status, headers and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error message of an error answer, in either error shape.
    pub(crate) fn message(&self) -> String {
        let v = self.json();
        v.get("error")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no error message in {v}"))
            .to_owned()
    }
}

/// Sends one request through the router.
pub(crate) async fn send(state: &AppState, request: Request<Body>) -> Answer {
    let response = tiffin_server::app(state.clone())
        .oneshot(request)
        .await
        .expect("the router never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

pub(crate) async fn get(state: &AppState, uri: &str) -> Answer {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// POSTs JSON without a Content-Type, as the V2 Python client does.
pub(crate) async fn post(state: &AppState, uri: &str, body: &Value) -> Answer {
    send(
        state,
        Request::post(uri)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    )
    .await
}

/// POSTs JSON with `Content-Type: application/json`.
pub(crate) async fn post_json(state: &AppState, uri: &str, body: &Value) -> Answer {
    post_bytes(state, uri, serde_json::to_vec(body).unwrap()).await
}

/// POSTs `body` as it is, valid JSON or not, with `Content-Type: application/json`.
pub(crate) async fn post_bytes(state: &AppState, uri: &str, body: Vec<u8>) -> Answer {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a request");
    send(state, request).await
}

/// The reference inputs of a fixture (`reference.json`), by input name.
pub(crate) fn reference(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Rows of iris (4 features each).
pub(crate) const IRIS_ROWS: [[f32; 4]; 3] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 4.2, 1.5],
];

/// Every number of a JSON value, in document order.
pub(crate) fn numbers(v: &Value) -> Vec<f64> {
    fn walk(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            Value::Number(n) => out.push(n.as_f64().unwrap()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// Two answers hold the same numbers, in order, within 1e-5 plus 1e-5 of the value (another
/// batch size or another engine may sum in another order).
pub(crate) fn assert_numbers_close(got: &Value, want: &Value) {
    let (g, w) = (numbers(got), numbers(want));
    assert_eq!(g.len(), w.len(), "{got} vs {want}");
    let tolerance = tiffin_core::manifest::Tolerance::within(1e-5, 1e-5);
    assert!(
        g.iter().zip(&w).all(|(a, b)| tolerance.allows(*b, *a)),
        "{got} vs {want}"
    );
}
