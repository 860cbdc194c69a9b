//! Limits: body size (after decoding), rows per request, request timeout, and request ids.

use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tiffin_server::{AppState, Config};

use crate::common::{IRIS_ROWS, loaded, post, send};

#[tokio::test]
async fn a_body_over_the_limit_is_413_even_when_compressed_small() {
    let config = Config {
        max_body_bytes: 1000,
        ..Config::default()
    };
    let state = loaded(&["iris"], config).await;
    let big = json!({"X": vec![[1.0, 2.0, 3.0, 4.0]; 200]});
    let answer = post(&state, "/models/iris/predict", &big).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer.message().contains("1000 bytes"));
    // 200 KB of zeros gzip to a few hundred bytes: the limit holds on what they decode to.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 200_000]).unwrap();
    let small = gz.finish().unwrap();
    assert!(small.len() < 1000);
    let request = Request::post("/models/iris/predict")
        .header("content-encoding", "gzip")
        .body(Body::from(small))
        .unwrap();
    assert_eq!(
        send(&state, request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn too_many_rows_are_refused_before_running() {
    let config = Config {
        max_request_rows: 2,
        ..Config::default()
    };
    let state = loaded(&["iris"], config).await;
    let answer = post(&state, "/models/iris/predict", &json!({"X": IRIS_ROWS})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("3 rows"), "{}", answer.message());
    assert!(answer.message().contains("at most 2"));
}

#[tokio::test]
async fn a_request_past_its_deadline_is_503_with_retry_after() {
    // A batch that waits far longer than the request may take.
    let config = Config {
        request_timeout: Duration::from_millis(50),
        force_batch_size: Some(64),
        force_delay: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let state = loaded(&["iris"], config).await;
    let answer = post(&state, "/models/iris/predict", &json!({"X": IRIS_ROWS})).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["retry-after"], "1");
    assert!(answer.message().contains("50 ms"));
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let state = loaded(&["iris"], Config::default()).await;
    let request = Request::get("/v2/health/live")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&state, request).await.headers["x-request-id"],
        "abc-123"
    );
    let made = send(
        &state,
        Request::get("/v2/health/live").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(made.headers["x-request-id"].len(), 16);
}

/// A model that fails while running (tract panics on an integer division by zero) answers a
/// 500 on every protocol, naming the request id the log line carries and nothing internal; the
/// model keeps serving.
#[tokio::test]
async fn a_failing_run_is_a_500_that_names_the_request_id() {
    let state = AppState::new(Config::default(), vec![crate::common::idiv_package()]);
    state.load().await.unwrap();
    let requests = [
        ("/predict", json!({"x": [0]})),
        ("/invocations", json!({"inputs": {"x": [0]}})),
        ("/v1/models/idiv:predict", json!({"instances": [0]})),
        (
            "/v2/models/idiv/infer",
            json!({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [0]}]}),
        ),
    ];
    for (n, (uri, body)) in requests.iter().enumerate() {
        let id = format!("failing-{n}");
        let request = Request::post(*uri)
            .header("x-request-id", &id)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap();
        let answer = send(&state, request).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        let message = answer.message();
        assert!(
            message.contains(&format!("request id {id}")),
            "{uri}: {message}"
        );
        assert!(
            !message.contains("divide") && !message.contains(".rs"),
            "{message}"
        );
    }
    let answer = post(&state, "/predict", &json!({"x": [3]})).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["y"], json!([1]));
}
