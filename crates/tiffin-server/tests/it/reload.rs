//! Reloads: a new version found in a served folder is verified and swapped in under load
//! without failing a request; a tampered one is refused and the old versions stay served.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use serde_json::json;
use tiffin_server::{AppState, Config};

use crate::common::{IRIS_ROWS, fixture, get, post};

/// Packs iris as `version` into `out` (the authoring folder copied with the version changed).
fn pack_iris_version(version: &str, out: &Path) {
    pack_iris_edited(out, |toml| {
        toml.replace("version = \"1.0.0\"", &format!("version = \"{version}\""))
    });
}

/// Packs iris into `out` with its `tiffin.toml` changed by `edit`.
fn pack_iris_edited(out: &Path, edit: impl FnOnce(String) -> String) {
    let authoring = tempfile::tempdir().unwrap();
    for file in ["model.onnx", "reference.json", "tiffin.toml"] {
        std::fs::copy(fixture("iris").join(file), authoring.path().join(file)).unwrap();
    }
    let toml = authoring.path().join("tiffin.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, edit(text)).unwrap();
    tiffin_core::pack(
        &tiffin_core::PackOptions {
            source: authoring.path().to_owned(),
            out: Some(out.to_owned()),
            force: false,
            examples: None,
            runtime: Default::default(),
        },
        &tiffin_core::hash::NoProgress,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_fails_no_request() {
    let served = tempfile::tempdir().unwrap();
    pack_iris_version("1.0.0", served.path());
    let state = AppState::new(Config::default(), vec![served.path().to_owned()]);
    let first = state.load().await.unwrap();
    // The folder and the archive `pack` wrote are one package, served once.
    assert_eq!(first.loaded.len(), 1);

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (state, stop) = (state.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answered = 0;
                while !stop.load(Ordering::Relaxed) {
                    let answer = post(&state, "/v2/models/iris/infer", &json!({
                        "inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": IRIS_ROWS}],
                    }))
                    .await;
                    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
                    answered += 1;
                }
                answered
            })
        })
        .collect();

    pack_iris_version("1.1.0", served.path());
    let report = state.load().await.unwrap();
    assert_eq!(
        report
            .loaded
            .iter()
            .map(|(n, v, _)| (n.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [("iris", "1.1.0")]
    );
    assert_eq!(report.kept, [("iris".to_owned(), "1.0.0".to_owned())]);

    // A tampered 1.2.0: its model changed after packing.
    let elsewhere = tempfile::tempdir().unwrap();
    pack_iris_version("1.2.0", elsewhere.path());
    let target = served.path().join("iris/1.2.0");
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(elsewhere.path().join("iris/1.2.0")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
    tamper(&target.join("model.onnx"));
    let failures = state.load().await.unwrap_err();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].path.ends_with("iris/1.2.0"), "{failures:?}");

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        assert!(client.await.unwrap() > 0);
    }
    let meta = get(&state, "/v2/models/iris").await.json();
    assert_eq!(meta["versions"], json!(["1.0.0", "1.1.0"]));
    let answer = post(&state, "/models/iris/predict", &json!({"X": IRIS_ROWS})).await;
    assert_eq!(answer.status, StatusCode::OK);
    let v2 = post(
        &state,
        "/v2/models/iris/infer",
        &json!({
            "inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[0]}],
        }),
    )
    .await
    .json();
    assert_eq!(v2["model_version"], "1.1.0");
    let old = post(
        &state,
        "/v2/models/iris/versions/1.0.0/infer",
        &json!({
            "inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[0]}],
        }),
    )
    .await
    .json();
    assert_eq!(old["model_version"], "1.0.0");

    // Through the admin endpoint too: the failure named by file, without the server's paths.
    let answer = post(&state, "/admin/reload", &json!({})).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(
        !text.contains(&served.path().display().to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn a_tampered_package_stops_the_start_unless_partial_is_allowed() {
    let served = tempfile::tempdir().unwrap();
    pack_iris_version("1.0.0", served.path());
    std::fs::remove_file(served.path().join("iris-1.0.0.tiffin")).unwrap();
    let model = served.path().join("iris/1.0.0/model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    let good = crate::common::package("breast_cancer");
    let paths = vec![served.path().join("iris/1.0.0"), good];
    let strict = AppState::new(Config::default(), paths.clone());
    let failures = strict.load().await.unwrap_err();
    assert!(failures[0].reason.contains("model.onnx"), "{}", failures[0]);
    assert!(!strict.is_ready());
    let partial = AppState::new(
        Config {
            allow_partial: true,
            ..Config::default()
        },
        paths,
    );
    let report = partial.load().await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(partial.is_ready());
    assert_eq!(
        partial.registry().names().collect::<Vec<_>>(),
        ["breast_cancer"]
    );
}

/// Copies the files of a package folder `from` into `to` (created).
fn copy_package(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn a_package_replaced_by_a_tampered_one_keeps_its_old_version_served() {
    let packs = tempfile::tempdir().unwrap();
    pack_iris_version("1.0.0", packs.path());
    pack_iris_version("1.1.0", packs.path());
    let served = tempfile::tempdir().unwrap();
    let current = served.path().join("current");
    copy_package(&packs.path().join("iris/1.0.0"), &current);
    let state = partial(vec![
        current.clone(),
        crate::common::package("breast_cancer"),
    ])
    .await;

    // The same path now holds 1.1.0 with its model changed after packing.
    std::fs::remove_dir_all(&current).unwrap();
    copy_package(&packs.path().join("iris/1.1.0"), &current);
    tamper(&current.join("model.onnx"));

    let report = state.load().await.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.removed.is_empty(), "{report:?}");
    assert!(
        report
            .kept
            .contains(&("iris".to_owned(), "1.0.0".to_owned()))
    );
    let answer = post(
        &state,
        "/v2/models/iris/infer",
        &json!({
            "inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[0]}],
        }),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["model_version"], "1.0.0");

    // Mended: the good 1.1.0 at that path replaces 1.0.0.
    std::fs::remove_dir_all(&current).unwrap();
    copy_package(&packs.path().join("iris/1.1.0"), &current);
    let report = state.load().await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.removed, [("iris".to_owned(), "1.0.0".to_owned())]);
    let meta = get(&state, "/v2/models/iris").await.json();
    assert_eq!(meta["versions"], json!(["1.1.0"]));
}

#[tokio::test]
async fn an_admin_reload_is_not_cut_short_by_the_request_timeout() {
    let served = tempfile::tempdir().unwrap();
    pack_iris_version("1.0.0", served.path());
    // Far shorter than verifying and loading a package takes.
    let state = AppState::new(
        Config {
            request_timeout: std::time::Duration::from_micros(1),
            ..Config::default()
        },
        vec![served.path().to_owned()],
    );
    state.load().await.unwrap();
    pack_iris_version("1.1.0", served.path());
    let answer = post(&state, "/admin/reload", &json!({})).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["loaded"][0]["version"], "1.1.0");
    let meta = get(&state, "/v2/models/iris").await.json();
    assert_eq!(meta["versions"], json!(["1.0.0", "1.1.0"]));
}

#[tokio::test]
async fn a_refused_reload_names_no_server_path() {
    let served = tempfile::tempdir().unwrap();
    pack_iris_version("1.0.0", served.path());
    let more = tempfile::tempdir().unwrap();
    copy_package(
        &crate::common::package("breast_cancer")
            .parent()
            .unwrap()
            .join("breast_cancer/1.0.0"),
        &more.path().join("breast_cancer"),
    );
    let roots = vec![served.path().to_owned(), more.path().to_owned()];
    let state = AppState::new(Config::default(), roots);
    state.load().await.unwrap();
    // Another iris 1.0.0, with other content, in the other folder: a version served twice.
    let other = tempfile::tempdir().unwrap();
    pack_iris_edited(other.path(), |toml| {
        toml.replace("description = \"", "description = \"Other. ")
    });
    copy_package(
        &other.path().join("iris/1.0.0"),
        &more.path().join("second"),
    );

    let answer = post(&state, "/admin/reload", &json!({})).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(text.contains("also served from"), "{text}");
    for root in [served.path(), more.path()] {
        assert!(!text.contains(&root.display().to_string()), "{text}");
    }
    assert!(!text.contains("/tmp"), "{text}");
}

/// A path whose package now fails keeps its old version only while nothing loaded now gives
/// the same version: a good copy of that version elsewhere replaces it, and the reload is not
/// refused as a version served twice.
#[tokio::test]
async fn a_failing_path_yields_its_version_to_a_good_copy_loaded_elsewhere() {
    let packs = tempfile::tempdir().unwrap();
    pack_iris_version("1.0.0", packs.path());
    let served = tempfile::tempdir().unwrap();
    let current = served.path().join("current");
    copy_package(&packs.path().join("iris/1.0.0"), &current);
    let state = partial(vec![served.path().to_owned()]).await;
    tamper(&current.join("model.onnx"));
    // A new manifest digest at the same path (the file list is unchanged, the model is not).
    let manifest = current.join("tiffin.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen("{", "{ ", 1)).unwrap();
    let other = tempfile::tempdir().unwrap();
    pack_iris_edited(other.path(), |toml| {
        toml.replace("description = \"", "description = \"Other. ")
    });
    copy_package(
        &other.path().join("iris/1.0.0"),
        &served.path().join("fixed"),
    );

    let report = state.load().await.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.loaded.len(), 1, "{report:?}");
    let meta = get(&state, "/v2/models/iris").await.json();
    assert_eq!(meta["versions"], json!(["1.0.0"]));
    let served_now = state.registry();
    let iris = served_now.get("iris", None).unwrap();
    assert!(
        iris.loaded.path.ends_with("fixed"),
        "{:?}",
        iris.loaded.path
    );
}

/// A state over `paths` that serves what loads (`allow_partial`), loaded.
async fn partial(paths: Vec<std::path::PathBuf>) -> AppState {
    let state = AppState::new(
        Config {
            allow_partial: true,
            ..Config::default()
        },
        paths,
    );
    state.load().await.unwrap();
    state
}

/// Flips a bit of the file's last byte: the content a package's digest no longer matches.
fn tamper(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(file, bytes).unwrap();
}

/// A server waiting for its packages (KServe's `MODEL_INIT_MODE=async`) is live and not ready
/// while its folder is missing, then empty, then holds a package only in a hidden folder (as
/// one being written sits); it becomes ready once the package is renamed into place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_server_loads_the_package_once_it_is_in_place() {
    let root = tempfile::tempdir().unwrap();
    let models = root.path().join("models");
    let state = AppState::new(Config::default(), vec![models.clone()]);
    let waiting = {
        let state = state.clone();
        tokio::spawn(async move {
            state
                .load_when_present(std::time::Duration::from_millis(20))
                .await
        })
    };
    let still_waiting = |state: &AppState| {
        assert!(!state.is_ready());
        assert!(!waiting.is_finished());
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    still_waiting(&state);
    assert_eq!(get(&state, "/v2/health/live").await.status, StatusCode::OK);
    assert_eq!(
        get(&state, "/v2/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // A whole package folder under a hidden name is one still being written or renamed.
    let packed = root.path().join("packed");
    pack_iris_version("1.0.0", &packed);
    std::fs::create_dir_all(&models).unwrap();
    let hidden = models.join(".incoming");
    std::fs::rename(packed.join("iris/1.0.0"), &hidden).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    still_waiting(&state);

    std::fs::create_dir(models.join("iris")).unwrap();
    std::fs::rename(&hidden, models.join("iris/1.0.0")).unwrap();
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
        .await
        .expect("the package was found")
        .unwrap();
    assert_eq!(report.loaded.len(), 1);
    assert!(state.is_ready());
    assert_eq!(get(&state, "/v2/health/ready").await.status, StatusCode::OK);
}

/// The reasons a server gives for no package lead with `missing` or `permission denied`.
#[test]
fn discover_says_missing_for_an_absent_or_empty_folder() {
    let root = tempfile::tempdir().unwrap();
    let absent = root.path().join("absent");
    let failure = tiffin_server::discover(&[absent]).unwrap_err();
    assert!(
        failure.reason.starts_with("cannot read it: missing:"),
        "{failure}"
    );
    let failure = tiffin_server::discover(&[root.path().to_owned()]).unwrap_err();
    assert!(
        failure.reason.starts_with("missing: no package"),
        "{failure}"
    );
}

/// A model the runtime refuses is reported with the runtime's reason, not only its path.
#[tokio::test]
async fn a_model_the_runtime_refuses_is_reported_with_the_reason() {
    let state = AppState::new(
        Config {
            runtime: tiffin_core::runtime::Runtime::Ort {
                library: "/no/such/libonnxruntime.so".into(),
            },
            ..Config::default()
        },
        vec![crate::common::package("iris")],
    );
    let failures = state.load().await.unwrap_err();
    let reason = &failures[0].reason;
    // Either this build has no ONNX Runtime, or the library is missing: both say so.
    assert!(reason.contains("ONNX Runtime"), "{}", failures[0]);
    assert!(!reason.ends_with(".tiffin"), "{}", failures[0]);
}
