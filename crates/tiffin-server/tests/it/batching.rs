//! Dynamic batching: concurrent requests merged into one run, each caller given exactly its
//! own rows (compared with unbatched answers), never more rows than the maximum.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tiffin_core::manifest::Tolerance;
use tiffin_core::runtime::{Tensor, TensorData};
use tiffin_server::Config;

use crate::common::{assert_numbers_close, get, loaded, post};

/// `n` distinct mnist images of `rows` rows each, as `{"image": [...]}` payloads.
fn images(n: usize, rows: usize) -> Vec<Value> {
    let reference = crate::common::reference("mnist_cnn");
    let t: Tensor = serde_json::from_value(reference["inputs"]["image"].clone()).unwrap();
    let TensorData::F32(values) = t.data() else {
        panic!("f32 images")
    };
    let per_image = 28 * 28;
    let available = values.len() / per_image;
    (0..n)
        .map(|i| {
            let batch: Vec<Vec<Vec<Vec<f32>>>> = (0..rows)
                .map(|r| {
                    let k = (i * rows + r) % available;
                    let img = &values[k * per_image..(k + 1) * per_image];
                    vec![img.chunks(28).map(<[f32]>::to_vec).collect()]
                })
                .collect();
            json!({"image": batch})
        })
        .collect()
}

/// Posts every payload to `uri` at once, from as many tasks, and returns the answers in order.
async fn post_at_once(
    state: &tiffin_server::AppState,
    uri: &'static str,
    payloads: &[Value],
) -> Vec<crate::common::Answer> {
    let tasks: Vec<_> = payloads
        .iter()
        .cloned()
        .map(|p| {
            let state = state.clone();
            tokio::spawn(async move { post(&state, uri, &p).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_answers_equal_unbatched_ones_row_for_row() {
    let payloads = images(24, 2);
    let plain = loaded(&["mnist_cnn"], Config::default()).await;
    let mut expected = Vec::new();
    for p in &payloads {
        let answer = post(&plain, "/models/mnist_cnn/predict", p).await;
        assert_eq!(answer.status, StatusCode::OK);
        expected.push(answer.json());
    }
    let batched = loaded(
        &["mnist_cnn"],
        Config {
            force_batch_size: Some(16),
            batch_probe: false,
            force_delay: Some(Duration::from_millis(30)),
            max_concurrency: 1,
            ..Config::default()
        },
    )
    .await;
    let answers = post_at_once(&batched, "/models/mnist_cnn/predict", &payloads).await;
    for (answer, want) in answers.into_iter().zip(&expected) {
        assert_eq!(answer.status, StatusCode::OK);
        let got = answer.json();
        // Convolutions over a larger batch may sum in another order: equal within 1e-5 plus 1e-5 of the value.
        let (g, w) = (&got["logits"], &want["logits"]);
        let flat = |v: &Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
                .collect()
        };
        let (g, w) = (flat(g), flat(w));
        assert_eq!(g.len(), w.len());
        assert!(
            g.iter()
                .zip(&w)
                .all(|(a, b)| Tolerance::within(1e-5, 1e-5).allows(*b, *a)),
            "{g:?} vs {w:?}"
        );
    }
    let metrics = String::from_utf8(get(&batched, "/metrics").await.body.to_vec()).unwrap();
    let line = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let runs = line("tiffin_batch_rows_count{");
    let rows = line("tiffin_batch_rows_sum{");
    assert_eq!(rows, 48.0);
    assert!(
        runs < 24.0,
        "24 concurrent requests ran in {runs} runs: nothing was merged"
    );
    // No run above the maximum: the bucket at 16 rows holds every run.
    let at_16 = line("tiffin_batch_rows_bucket{le=\"16.0\",");
    assert_eq!(at_16, runs, "{metrics}");
    // A request larger than the batch is refused with the limit named.
    let answer = post(&batched, "/models/mnist_cnn/predict", &images(1, 17)[0]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("at most 16"));
}

#[tokio::test]
async fn a_lone_request_waits_no_longer_than_the_delay() {
    let state = loaded(
        &["iris"],
        Config {
            force_batch_size: Some(64),
            batch_probe: false,
            force_delay: Some(Duration::from_millis(200)),
            ..Config::default()
        },
    )
    .await;
    let start = std::time::Instant::now();
    let answer = post(
        &state,
        "/models/iris/predict",
        &json!({"X": [[5.1, 3.5, 1.4, 0.2]]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    // It waited for company (the delay), and then ran: a bound, not a timing goal.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

/// Batching set for one model by name applies to that model alone, over the setting for every
/// model: seen in the row limit a batched model puts on one request (its batch size).
#[tokio::test]
async fn batching_set_for_one_model_applies_to_it_alone() {
    let config = Config {
        force_batch_size: Some(3),
        batch_probe: false,
        model_batch_size: [("iris".to_owned(), 2)].into(),
        model_delay: [("iris".to_owned(), Duration::from_micros(100))].into(),
        ..Config::default()
    };
    let state = loaded(&["iris", "breast_cancer"], config).await;
    let iris = |rows: usize| json!({ "X": vec![crate::common::IRIS_ROWS[0]; rows] });
    assert_eq!(
        post(&state, "/models/iris/predict", &iris(2)).await.status,
        StatusCode::OK
    );
    let refused = post(&state, "/models/iris/predict", &iris(3)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.message().contains("at most 2"),
        "{}",
        refused.message()
    );
    // breast_cancer keeps the setting for every model: 3 rows pass, 4 do not.
    let reference = crate::common::reference("breast_cancer");
    let t: Tensor = serde_json::from_value(reference["inputs"]["X"].clone()).unwrap();
    let TensorData::F32(values) = t.data() else {
        panic!("f32 rows")
    };
    let rows = |n: usize| {
        let rows: Vec<&[f32]> = values.chunks(30).take(n).collect();
        json!({ "X": rows })
    };
    assert_eq!(
        post(&state, "/models/breast_cancer/predict", &rows(3))
            .await
            .status,
        StatusCode::OK
    );
    let refused = post(&state, "/models/breast_cancer/predict", &rows(4)).await;
    assert!(
        refused.message().contains("at most 3"),
        "{}",
        refused.message()
    );
}

/// mnist_cnn packed with two of its reference images as golden examples, the inputs the
/// batching probe times.
fn mnist_with_examples(dir: &std::path::Path) -> std::path::PathBuf {
    let examples = dir.join("examples.json");
    std::fs::write(&examples, images(1, 2)[0].to_string()).unwrap();
    tiffin_core::pack(
        &tiffin_core::PackOptions {
            source: crate::common::fixture("mnist_cnn"),
            out: Some(dir.to_owned()),
            force: false,
            examples: Some(examples),
            runtime: Default::default(),
        },
        &tiffin_core::hash::NoProgress,
    )
    .unwrap()
    .archive
}

async fn serve_one(
    path: std::path::PathBuf,
    config: Config,
) -> std::sync::Arc<tiffin_server::Served> {
    let state = tiffin_server::AppState::new(config, vec![path]);
    state.load().await.expect("the package loads");
    state.registry().only().unwrap()
}

/// With batching set, the load times a batch of the examples against single runs and merges
/// requests only when the batch is cheaper per row; which way it goes depends on the machine,
/// so the test holds the server to what it measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batching_is_measured_at_load_and_follows_the_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let package = mnist_with_examples(dir.path());
    let config = Config {
        force_batch_size: Some(64),
        ..Config::default()
    };
    let served = serve_one(package.clone(), config).await;
    match &served.batching {
        tiffin_server::Batching::On {
            max_rows: 64,
            probe: Some(probe),
        } => {
            assert!(probe.pays(), "{probe:?}");
            assert_eq!(served.max_batch_size(), Some(64));
        }
        tiffin_server::Batching::Declined {
            max_rows: 64,
            probe: Some(probe),
            reason,
        } => {
            assert!(!probe.pays(), "{probe:?}");
            assert!(reason.contains("a batch of 8 costs"), "{reason}");
            assert_eq!(served.max_batch_size(), None, "requests run singly");
        }
        other => panic!("not measured: {other:?}"),
    }
    let probe = match &served.batching {
        tiffin_server::Batching::On { probe, .. }
        | tiffin_server::Batching::Declined { probe, .. } => probe.unwrap(),
        tiffin_server::Batching::Off => unreachable!(),
    };
    assert_eq!(probe.rows, 8);
    assert!(probe.single > Duration::ZERO && probe.batched_per_row > Duration::ZERO);

    // Without the probe, batching is as set.
    let config = Config {
        force_batch_size: Some(64),
        batch_probe: false,
        ..Config::default()
    };
    let served = serve_one(package, config).await;
    assert_eq!(
        served.batching,
        tiffin_server::Batching::On {
            max_rows: 64,
            probe: None
        }
    );
    assert_eq!(served.max_batch_size(), Some(64));
}

/// A package without examples has nothing to time: it batches as set.
#[tokio::test]
async fn a_package_without_examples_batches_as_set() {
    let config = Config {
        force_batch_size: Some(16),
        ..Config::default()
    };
    let served = serve_one(crate::common::package("iris"), config).await;
    assert_eq!(
        served.batching,
        tiffin_server::Batching::On {
            max_rows: 16,
            probe: None
        }
    );
}

/// A model tract types per shape (bert_tiny) serves requests of several sequence lengths at
/// once, batched: only requests of one length are merged, and each gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_several_lengths_are_served_and_batched_by_length() {
    let tokens = |len: usize, seed: usize| -> Value {
        let ids: Vec<i64> = (0..len)
            .map(|i| ((i * 7 + seed * 13) % 100) as i64)
            .collect();
        json!({"input_ids": [ids], "attention_mask": [vec![1; len]], "token_type_ids": [vec![0; len]]})
    };
    let payloads: Vec<Value> = [3, 5, 5, 7, 3, 9, 5, 7]
        .iter()
        .enumerate()
        .map(|(seed, &len)| tokens(len, seed))
        .collect();
    let plain = loaded(&["bert_tiny"], Config::default()).await;
    let mut expected = Vec::new();
    for p in &payloads {
        let answer = post(&plain, "/models/bert_tiny/predict", p).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.message());
        expected.push(answer.json());
    }
    let batched = loaded(
        &["bert_tiny"],
        Config {
            force_batch_size: Some(8),
            batch_probe: false,
            force_delay: Some(Duration::from_millis(30)),
            ..Config::default()
        },
    )
    .await;
    let answers = post_at_once(&batched, "/models/bert_tiny/predict", &payloads).await;
    for ((answer, want), p) in answers.into_iter().zip(&expected).zip(&payloads) {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.message());
        let got = answer.json();
        let len = p["input_ids"][0].as_array().unwrap().len();
        assert_eq!(got["last_hidden_state"][0].as_array().unwrap().len(), len);
        assert_numbers_close(&got, want);
    }
}

/// The plans of a model typed per shape, kept as the package's `serving.plan_cache` says
/// unless the operator says otherwise, and reported by `/metrics` with the time each took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_typed_per_shape_keeps_the_plans_its_package_or_the_operator_says() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("bert_tiny");
    std::fs::create_dir(&source).unwrap();
    for entry in std::fs::read_dir(crate::common::fixture("bert_tiny")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), source.join(entry.file_name())).unwrap();
    }
    let toml = source.join("tiffin.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[serving]\nplan_cache = 2\n")).unwrap();
    let packed = tiffin_core::pack(
        &tiffin_core::PackOptions {
            source: source.clone(),
            out: Some(dir.path().to_owned()),
            force: false,
            examples: None,
            runtime: Default::default(),
        },
        &tiffin_core::hash::NoProgress,
    )
    .unwrap();
    let series = |text: &str, name: &str| -> f64 {
        let prefix = format!("{name}{{model=\"bert_tiny\",version=\"1.0.0\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .parse()
            .unwrap()
    };
    let lengths = [3, 5, 7, 9];
    let cases = [
        (Config::default(), 2.0),
        (
            Config {
                force_plan_cache: Some(3),
                ..Config::default()
            },
            3.0,
        ),
        (
            Config {
                force_plan_cache: Some(3),
                model_plan_cache: [("bert_tiny".to_owned(), 1)].into(),
                ..Config::default()
            },
            1.0,
        ),
    ];
    for (config, kept) in cases {
        let state = tiffin_server::AppState::new(config, vec![packed.archive.clone()]);
        state.load().await.unwrap();
        let before = String::from_utf8(get(&state, "/metrics").await.body.to_vec()).unwrap();
        let built = series(&before, "tiffin_plan_build_duration_seconds_count");
        for len in lengths {
            let ids = vec![vec![1; len]];
            let body = json!({"input_ids": ids, "attention_mask": ids, "token_type_ids": ids});
            let answer = post(&state, "/models/bert_tiny/predict", &body).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.message());
        }
        let after = String::from_utf8(get(&state, "/metrics").await.body.to_vec()).unwrap();
        assert_eq!(series(&after, "tiffin_model_plans"), kept, "{after}");
        // Each new length built its plan once, and each build was timed.
        assert_eq!(
            series(&after, "tiffin_plan_build_duration_seconds_count") - built,
            lengths.len() as f64,
            "{after}"
        );
    }
}
