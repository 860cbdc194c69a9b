//! Limits: body size (after decoding), rows per request, request timeout, and request ids.

use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tiffin_server::{AppState, Config};

use crate::common::{IRIS_ROWS, get, loaded, post, send};

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
        batch_probe: false,
        force_delay: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let state = loaded(&["iris"], config).await;
    let answer = post(&state, "/models/iris/predict", &json!({"X": IRIS_ROWS})).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["retry-after"], "1");
    assert!(answer.message().contains("50 ms"));
    let v1 = post(
        &state,
        "/v1/models/iris/versions/1.0.0:predict",
        &json!({"instances": IRIS_ROWS}),
    )
    .await;
    assert_eq!(v1.status, StatusCode::SERVICE_UNAVAILABLE);
    // Counted under the model the path names, though its handler never finished.
    let metrics = String::from_utf8(get(&state, "/metrics").await.body.to_vec()).unwrap();
    for line in [
        r#"tiffin_requests_total{model="iris",version="1.0.0",protocol="simple",status="503"} 1"#,
        r#"tiffin_requests_total{model="iris",version="1.0.0",protocol="v1",status="503"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
}

/// Answers made below the handlers (a method a route does not take, a content encoding not
/// decoded) are JSON errors with the request id, like every other.
#[tokio::test]
async fn bodiless_refusals_are_json_errors() {
    let state = loaded(&["iris"], Config::default()).await;
    let answer = get(&state, "/predict").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers["allow"], "POST");
    assert!(
        answer.message().contains("does not take GET"),
        "{}",
        answer.message()
    );
    assert!(answer.headers.contains_key("x-request-id"));
    let request = Request::post("/invocations")
        .header("content-encoding", "br")
        .body(Body::from("{}"))
        .unwrap();
    let answer = send(&state, request).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer.json()["error_code"], "BAD_REQUEST");
    assert!(
        answer.message().contains("gzip or deflate"),
        "{}",
        answer.message()
    );
    assert!(answer.headers.contains_key("x-request-id"));
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

/// Bodies are counted against the memory all bodies may hold together as they are read: one
/// that would pass it is a 503 at once, while a body half-read holds its share; the share comes
/// back when its request is answered.
#[tokio::test]
async fn bodies_past_the_shared_memory_limit_are_refused_until_others_finish() {
    let config = Config {
        max_body_memory: 64 * 1024,
        ..Config::default()
    };
    let state = loaded(&["iris"], config).await;
    let padded = |pad: usize| format!("{{\"X\": {}[[5.1, 3.5, 1.4, 0.2]]}}", " ".repeat(pad));
    let post_str = |body: String| {
        let state = state.clone();
        async move {
            send(
                &state,
                Request::post("/predict").body(Body::from(body)).unwrap(),
            )
            .await
        }
    };
    // A body the limit could not hold even alone is too large (not worth a retry); under it,
    // answered.
    let answer = post_str(padded(70 * 1024)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        answer.message().contains("65536 bytes"),
        "{}",
        answer.message()
    );
    assert_eq!(post_str(padded(40 * 1024)).await.status, StatusCode::OK);

    // A body of 40 KiB half-read holds its share...
    let (mut sender, body) =
        http_body_util::channel::Channel::<bytes::Bytes, std::convert::Infallible>::new(1);
    let first = tokio::spawn({
        let state = state.clone();
        async move {
            send(
                &state,
                Request::post("/predict").body(Body::new(body)).unwrap(),
            )
            .await
        }
    });
    sender
        .send_data(bytes::Bytes::from(format!(
            "{{\"X\": {}",
            " ".repeat(40 * 1024)
        )))
        .await
        .unwrap();
    // The channel holds one piece: once this one is taken in, the first has been read (and
    // counted, on this one-threaded runtime, before the reader gave way).
    sender
        .send_data(bytes::Bytes::from_static(b" "))
        .await
        .unwrap();
    sender
        .send_data(bytes::Bytes::from_static(b" "))
        .await
        .unwrap();
    // ...so another 40 KiB does not fit beside it.
    let answer = post_str(padded(40 * 1024)).await;
    assert_unavailable(&answer, "request bodies");
    sender
        .send_data(bytes::Bytes::from_static(b"[[5.1, 3.5, 1.4, 0.2]]}"))
        .await
        .unwrap();
    drop(sender);
    assert_eq!(first.await.unwrap().status, StatusCode::OK);
    // Answered, its share is back.
    assert_eq!(post_str(padded(40 * 1024)).await.status, StatusCode::OK);
}

/// Bodies from 256 KiB on are decoded on a blocking thread: the answers are those of the same
/// request in a small body, on every protocol.
#[tokio::test]
async fn large_bodies_are_answered_as_small_ones_on_every_protocol() {
    let state = loaded(&["iris"], Config::default()).await;
    let rows = json!(IRIS_ROWS);
    let requests = [
        ("/predict", json!({ "X": rows })),
        ("/invocations", json!({ "inputs": rows })),
        ("/v1/models/iris:predict", json!({ "instances": rows })),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": rows}]}),
        ),
    ];
    for (uri, body) in requests {
        let small = serde_json::to_string(&body).unwrap();
        // The same JSON with 300 KiB of spaces after its first `{`.
        let large = format!("{{{}{}", " ".repeat(300 * 1024), &small[1..]);
        let content_type = "application/json";
        let answers = [small, large].map(|text| {
            let state = state.clone();
            async move {
                send(
                    &state,
                    Request::post(uri)
                        .header("content-type", content_type)
                        .body(Body::from(text))
                        .unwrap(),
                )
                .await
            }
        });
        let [small, large] = answers;
        let (small, large) = (small.await, large.await);
        assert_eq!(small.status, StatusCode::OK, "{uri}");
        assert_eq!(
            large.status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&large.body)
        );
        assert_eq!(small.body, large.body, "{uri}");
    }
}

/// With every pool slot taken and no room to queue, a request is refused at once with 503 and
/// `Retry-After`, through the router (here the one slot is held by a batch waiting to fill).
#[tokio::test]
async fn a_full_pool_and_queue_answer_503_with_retry_after() {
    let config = Config {
        max_concurrency: 1,
        max_queue: 0,
        model_batch_size: [("iris".to_owned(), 64)].into(),
        batch_probe: false,
        model_delay: [("iris".to_owned(), Duration::from_secs(5))].into(),
        ..Config::default()
    };
    let state = loaded(&["iris", "breast_cancer"], config).await;
    let waiting = tokio::spawn({
        let state = state.clone();
        async move { post(&state, "/models/iris/predict", &json!({"X": IRIS_ROWS})).await }
    });
    // The batch takes the one slot as its first request arrives, microseconds from now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let row = vec![1.0f32; 30];
    let answer = post(
        &state,
        "/models/breast_cancer/predict",
        &json!({ "X": [row] }),
    )
    .await;
    assert_unavailable(&answer, "queued requests");
    waiting.abort();
}

/// A 503 to retry after a second, whose message says `why`.
fn assert_unavailable(answer: &crate::common::Answer, why: &str) {
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.message()
    );
    assert_eq!(answer.headers["retry-after"], "1");
    assert!(answer.message().contains(why), "{}", answer.message());
}

/// Answers of 64Ki values and more are encoded on a blocking thread: a 70000-value answer comes
/// back whole and right on every protocol.
#[tokio::test]
async fn large_answers_are_encoded_whole_on_every_protocol() {
    let state = AppState::new(Config::default(), vec![crate::common::wide_package()]);
    state.load().await.unwrap();
    let requests = [
        ("/predict", json!({ "x": [[2.5]] })),
        ("/invocations", json!({ "inputs": [[2.5]] })),
        ("/v1/models/wide:predict", json!({ "instances": [[2.5]] })),
        (
            "/v2/models/wide/infer",
            json!({"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [2.5]}]}),
        ),
    ];
    for (uri, body) in requests {
        let answer = post(&state, uri, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&answer.body[..200.min(answer.body.len())])
        );
        // Every number in the answer is the input's value, 70000 of them.
        let text = String::from_utf8(answer.body.to_vec()).unwrap();
        assert_eq!(text.matches("2.5").count(), 70000, "{uri}");
    }
}
