//! The Open Inference Protocol (KServe V2): metadata, readiness, inference in JSON and in the
//! binary tensor extension, and every request error.

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tiffin_server::{AppState, Config};

use crate::common::{IRIS_ROWS, get, loaded, package, post, post_bytes, scalar_package, send};

async fn iris() -> AppState {
    loaded(&["iris", "breast_cancer"], Config::default()).await
}

fn iris_request() -> Value {
    json!({
        "id": "req-7",
        "inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": IRIS_ROWS}],
    })
}

#[tokio::test]
async fn health_is_live_at_once_and_ready_only_once_loaded() {
    let state = AppState::new(Config::default(), vec![package("iris")]);
    let live = get(&state, "/v2/health/live").await;
    assert_eq!(
        (live.status, live.json()),
        (StatusCode::OK, json!({"live": true}))
    );
    let ready = get(&state, "/v2/health/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json(), json!({"ready": false}));
    state.load().await.unwrap();
    let ready = get(&state, "/v2/health/ready").await;
    assert_eq!(
        (ready.status, ready.json()),
        (StatusCode::OK, json!({"ready": true}))
    );
    assert_eq!(
        get(&state, "/v2/models/iris/ready").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&state, "/v2/models/iris/versions/1.0.0/ready")
            .await
            .status,
        StatusCode::OK
    );
    state.drain();
    assert_eq!(
        get(&state, "/v2/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn metadata_names_tensors_with_v2_datatypes_and_dynamic_dims() {
    let state = iris().await;
    let server = get(&state, "/v2").await.json();
    assert_eq!(server["name"], "tiffin");
    assert_eq!(
        server["extensions"],
        json!([
            "binary_tensor_data",
            "classification",
            "model_configuration"
        ])
    );
    let meta = get(&state, "/v2/models/iris").await.json();
    assert_eq!(meta["name"], "iris");
    assert_eq!(meta["versions"], json!(["1.0.0"]));
    assert_eq!(
        meta["inputs"],
        json!([{"name": "X", "datatype": "FP32", "shape": [-1, 4]}])
    );
    assert_eq!(
        meta["outputs"],
        json!([
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ])
    );
    assert_eq!(
        get(&state, "/v2/models/iris/versions/1.0.0").await.json(),
        meta
    );
    let config = get(&state, "/v2/models/iris/config").await.json();
    assert_eq!(config["max_batch_size"], 0);
    assert_eq!(
        config["input"],
        json!([{"name": "X", "data_type": "TYPE_FP32", "dims": [-1, 4]}])
    );
    assert_eq!(config["output"][0]["data_type"], "TYPE_STRING");
}

#[tokio::test]
async fn json_inference_echoes_the_id_and_names_the_model() {
    let state = iris().await;
    let answer = post(&state, "/v2/models/iris/infer", &iris_request()).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let body = answer.json();
    assert_eq!(body["id"], "req-7");
    assert_eq!(body["model_name"], "iris");
    assert_eq!(body["model_version"], "1.0.0");
    assert_eq!(body["outputs"][0]["name"], "label");
    assert_eq!(body["outputs"][0]["datatype"], "BYTES");
    assert_eq!(body["outputs"][0]["shape"], json!([3]));
    assert_eq!(
        body["outputs"][0]["data"],
        json!(["setosa", "virginica", "versicolor"])
    );
    assert_eq!(body["outputs"][1]["shape"], json!([3, 3]));
    assert_eq!(body["outputs"][1]["data"].as_array().unwrap().len(), 9);

    // Flat data, a versioned path, and only the output asked for.
    let flat: Vec<f32> = IRIS_ROWS.iter().flatten().copied().collect();
    let request = json!({
        "inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": flat}],
        "outputs": [{"name": "probabilities"}],
    });
    let body = post(&state, "/v2/models/iris/versions/1.0.0/infer", &request)
        .await
        .json();
    assert_eq!(body["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(body["outputs"][0]["name"], "probabilities");
    assert!(body.get("id").is_none());
}

#[tokio::test]
async fn data_reads_alike_before_and_after_the_datatype() {
    // Clients write a tensor as name, shape, datatype, data, and tiffin then reads the data
    // straight into the datatype; `data` first (as serde_json writes a `json!` map, sorted) is
    // read as JSON values and converted after. Both must answer alike, byte for byte, in every
    // case: values that fit, values that do not, and data that is missing or given twice.
    let state = iris().await;
    let rows = serde_json::to_string(&IRIS_ROWS).unwrap();
    let cases = [
        ("[3, 4]", "FP32", rows.clone(), StatusCode::OK),
        (
            "[1, 4]",
            "FP32",
            "[[5.1, 3, [1], 0.2]]".to_owned(),
            StatusCode::OK,
        ),
        (
            "[1, 4]",
            "FP32",
            // Read (JSON has no NaN, so it comes as a string), then refused by the model's
            // finite-numbers check.
            "[[5.1, \"NaN\", 1, 0.2]]".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "[1, 4]",
            "FP32",
            "[5.1, 3.5, 1.4, 1e39]".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "[1, 4]",
            "FP32",
            "[5.1, 3.5, \"x\", 0.2]".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "[1, 4]",
            "FP32",
            "[5.1, 3.5, {\"a\": 1}, 0.2]".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "[1, 4]",
            "FP32",
            "[5.1, true, 1.4, 0.2]".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        ("[1, 4]", "FP32", "null".to_owned(), StatusCode::BAD_REQUEST),
        (
            "[1, 4]",
            "FP32",
            "[5.1, 3.5, 1.4]".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "[1, 4]",
            "INT64",
            "[5, 3, 1, 0]".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "[1, 4]",
            "FP17",
            "[5.1, 3.5, 1.4, 0.2]".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (shape, datatype, data, status) in cases {
        let written = format!(
            r#"{{"inputs": [{{"name": "X", "shape": {shape}, "datatype": "{datatype}", "data": {data}}}]}}"#
        );
        let sorted = format!(
            r#"{{"inputs": [{{"data": {data}, "datatype": "{datatype}", "name": "X", "shape": {shape}}}]}}"#
        );
        let mut answers = Vec::new();
        for body in [written, sorted] {
            answers.push(post_bytes(&state, "/v2/models/iris/infer", body.into()).await);
        }
        let what = format!("{shape} {datatype} {data}");
        assert_eq!(
            answers[0].status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&answers[0].body)
        );
        assert_eq!(answers[1].status, status, "{what}");
        assert_eq!(answers[0].body, answers[1].body, "{what}");
    }
    // A field given twice is refused, whichever it is, as serde refuses it in a derived struct.
    for field in [
        "\"data\": [1, 2, 3, 4]",
        "\"datatype\": \"FP32\"",
        "\"name\": \"X\"",
    ] {
        let body = format!(
            r#"{{"inputs": [{{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2], {field}}}]}}"#
        );
        let answer = post_bytes(&state, "/v2/models/iris/infer", body.into_bytes()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(
            answer.message().contains("could not be read"),
            "{field}: {}",
            answer.message()
        );
    }
}

/// A body of a JSON header followed by raw tensors, as V2 clients send it.
fn binary_request(header: &Value, tensors: &[&[u8]]) -> Request<Body> {
    let head = serde_json::to_vec(header).unwrap();
    let mut body = head.clone();
    for t in tensors {
        body.extend_from_slice(t);
    }
    Request::post("/v2/models/iris/infer")
        .header("inference-header-content-length", head.len())
        .header("content-type", "application/octet-stream")
        .body(Body::from(body))
        .unwrap()
}

/// Splits a binary answer into its JSON header and the bytes after it.
fn split_binary(answer: &crate::common::Answer) -> (Value, Vec<u8>) {
    let length: usize = answer.headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (head, rest) = answer.body.split_at(length);
    (serde_json::from_slice(head).unwrap(), rest.to_vec())
}

#[tokio::test]
async fn binary_tensors_both_ways() {
    let state = iris().await;
    let raw: Vec<u8> = IRIS_ROWS
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let header = json!({
        "inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "parameters": {"binary_data_size": raw.len()}}],
        "parameters": {"binary_data_output": true},
    });
    let answer = send(&state, binary_request(&header, &[&raw])).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.headers["content-type"], "application/octet-stream");
    let (head, rest) = split_binary(&answer);
    let label_size = head["outputs"][0]["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    let prob_size = head["outputs"][1]["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(label_size + prob_size, rest.len());
    assert_eq!(prob_size, 9 * 4);
    // BYTES: u32 little-endian length, then the text.
    let mut labels = Vec::new();
    let mut at = 0;
    while at < label_size {
        let n = u32::from_le_bytes(rest[at..at + 4].try_into().unwrap()) as usize;
        labels.push(String::from_utf8(rest[at + 4..at + 4 + n].to_vec()).unwrap());
        at += 4 + n;
    }
    assert_eq!(labels, ["setosa", "virginica", "versicolor"]);

    // The same answer as JSON, to compare the probabilities bit for bit.
    let json_answer = post(&state, "/v2/models/iris/infer", &iris_request())
        .await
        .json();
    let from_json: Vec<f32> = json_answer["outputs"][1]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let from_binary: Vec<f32> = rest[label_size..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(from_json, from_binary);

    // One output asked for in binary, the other in JSON.
    let header = json!({
        "inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "parameters": {"binary_data_size": raw.len()}}],
        "outputs": [{"name": "label"}, {"name": "probabilities", "parameters": {"binary_data": true}}],
    });
    let answer = send(&state, binary_request(&header, &[&raw])).await;
    let (head, rest) = split_binary(&answer);
    assert_eq!(
        head["outputs"][0]["data"],
        json!(["setosa", "virginica", "versicolor"])
    );
    assert_eq!(rest.len(), 36);
}

#[tokio::test]
async fn a_zero_header_length_means_the_body_is_the_one_input() {
    let state = iris().await;
    let raw: Vec<u8> = IRIS_ROWS
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let request = Request::post("/v2/models/iris/infer")
        .header("inference-header-content-length", "0")
        .body(Body::from(raw.clone()))
        .unwrap();
    let answer = send(&state, request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["outputs"][0]["shape"], json!([3]));
    let request = Request::post("/v2/models/iris/infer")
        .header("inference-header-content-length", "0")
        .body(Body::from(raw[..10].to_vec()))
        .unwrap();
    let answer = send(&state, request).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.message().contains("16 bytes each"),
        "{}",
        answer.message()
    );
}

/// A rank-0 input has no batch dim for the byte count to size: raw bytes are refused with a
/// 400 (this once panicked in the handler, which dropped the connection without an answer).
#[tokio::test]
async fn raw_bytes_for_a_scalar_input_are_refused() {
    let state = AppState::new(Config::default(), vec![scalar_package()]);
    state.load().await.unwrap();
    // Every length, the one value's 4 bytes among them.
    for len in 0..=8 {
        let request = Request::post("/v2/models/scalar/infer")
            .header("inference-header-content-length", "0")
            .body(Body::from(vec![0u8; len]))
            .unwrap();
        let answer = send(&state, request).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{}",
            answer.message()
        );
        assert!(
            answer.message().contains("send the JSON header"),
            "{}",
            answer.message()
        );
    }
    // The same value in JSON is answered.
    let answer = post(
        &state,
        "/v2/models/scalar/infer",
        &json!({
            "inputs": [{"name": "x", "shape": [], "datatype": "FP32", "data": [2.5]}],
        }),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.message());
    assert_eq!(answer.json()["outputs"][0]["data"], json!([3.5]));
}

#[tokio::test]
async fn gzip_bodies_are_read_and_answers_compressed_only_as_asked() {
    let state = iris().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&iris_request()).unwrap())
        .unwrap();
    let request = Request::post("/v2/models/iris/infer")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    let answer = send(&state, request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-encoding"], "gzip");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&answer.body[..]),
        &mut text,
    )
    .unwrap();
    assert!(text.contains("\"model_name\":\"iris\""));
    // A client that advertises brotli and gzip gets gzip; one that asks only brotli gets none.
    for (accept, expected) in [
        ("br, gzip", Some("gzip")),
        ("br", None),
        ("deflate", Some("deflate")),
    ] {
        let request = Request::post("/v2/models/iris/infer")
            .header("accept-encoding", accept)
            .body(Body::from(serde_json::to_vec(&iris_request()).unwrap()))
            .unwrap();
        let answer = send(&state, request).await;
        assert_eq!(
            answer
                .headers
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            expected,
            "Accept-Encoding: {accept}"
        );
    }
}

/// Every request error: the status, and words the message must contain.
#[tokio::test]
async fn request_errors_name_the_input_and_never_echo_data() {
    let state = iris().await;
    let x = |shape: Value, datatype: &str, data: Value| json!({"inputs": [{"name": "X", "shape": shape, "datatype": datatype, "data": data}]});
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "/v2/models/nope/infer",
            iris_request(),
            StatusCode::NOT_FOUND,
            "no model `nope`",
        ),
        (
            "/v2/models/iris/versions/9.9.9/infer",
            iris_request(),
            StatusCode::NOT_FOUND,
            "no version `9.9.9`",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "Y", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}),
            StatusCode::BAD_REQUEST,
            "unknown input `Y`",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": []}),
            StatusCode::BAD_REQUEST,
            "input `X` is missing",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([1, 4]), "FP64", json!([1, 2, 3, 4])),
            StatusCode::BAD_REQUEST,
            "FP64 given, but the model takes FP32",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([1, 4]), "FP17", json!([1, 2, 3, 4])),
            StatusCode::BAD_REQUEST,
            "unknown datatype",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([4]), "FP32", json!([1, 2, 3, 4])),
            StatusCode::BAD_REQUEST,
            "`X`",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([1, 3]), "FP32", json!([1, 2, 3])),
            StatusCode::BAD_REQUEST,
            "size 4 on axis 1",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([2, 4]), "FP32", json!([1, 2, 3, 4])),
            StatusCode::BAD_REQUEST,
            "holds 8 values, but 4",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([-1, 4]), "FP32", json!([1, 2, 3, 4])),
            StatusCode::BAD_REQUEST,
            "negative",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([1, 4]), "FP32", json!([1, "NaN", 3, 4])),
            StatusCode::BAD_REQUEST,
            "NaN or infinite",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([1, 4]), "FP32", json!([1, "secret-text", 3, 4])),
            StatusCode::BAD_REQUEST,
            "not a number",
        ),
        (
            "/v2/models/iris/infer",
            x(json!([1, 4]), "FP32", json!([1, 2, 3, 1e300])),
            StatusCode::BAD_REQUEST,
            "does not fit in f32",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32"}]}),
            StatusCode::BAD_REQUEST,
            "neither `data`",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": iris_request()["inputs"], "outputs": [{"name": "nope"}]}),
            StatusCode::BAD_REQUEST,
            "unknown output `nope`",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": 3}),
            StatusCode::BAD_REQUEST,
            "could not be read",
        ),
    ];
    for (uri, body, status, words) in cases {
        let answer = post(&state, uri, &body).await;
        assert_eq!(
            answer.status,
            status,
            "{uri} {body}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let message = answer.message();
        assert!(
            message.contains(words),
            "{body}: `{message}` lacks `{words}`"
        );
        assert!(
            !message.contains("secret-text") && !message.contains("1e300"),
            "{message}"
        );
        assert!(
            !message.contains("/tmp") && !message.contains(".tiffin"),
            "{message}"
        );
    }
    // Not JSON at all, with the data in it.
    let request = Request::post("/v2/models/iris/infer")
        .body(Body::from("{\"inputs\": [secret-text"))
        .unwrap();
    let answer = send(&state, request).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(!answer.message().contains("secret"), "{}", answer.message());
    // Binary sizes that do not add up.
    let header = json!({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]});
    let answer = send(&state, binary_request(&header, &[&[0u8; 8]])).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.message().contains("only 8 bytes"),
        "{}",
        answer.message()
    );
    let answer = send(&state, binary_request(&header, &[&[0u8; 20]])).await;
    assert!(
        answer.message().contains("no input claims"),
        "{}",
        answer.message()
    );
}

#[tokio::test]
async fn classification_answers_the_top_classes_with_their_labels() {
    let state = iris().await;
    let scores = post(&state, "/v2/models/iris/infer", &iris_request())
        .await
        .json()["outputs"][1]["data"]
        .clone();
    let scores: Vec<f32> = serde_json::from_value(scores).unwrap();
    let request = json!({
        "inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": IRIS_ROWS}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}],
    });
    let answer = post(&state, "/v2/models/iris/infer", &request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.message());
    let out = &answer.json()["outputs"][0];
    assert_eq!(out["datatype"], "BYTES");
    assert_eq!(out["shape"], json!([3, 2]));
    let labels = ["setosa", "versicolor", "virginica"];
    for (row, top) in out["data"].as_array().unwrap().chunks(2).enumerate() {
        let row_scores = &scores[row * 3..row * 3 + 3];
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| row_scores[b].total_cmp(&row_scores[a]));
        for (entry, ix) in top.iter().zip(order) {
            assert_eq!(
                entry.as_str().unwrap(),
                format!("{}:{ix}:{}", row_scores[ix], labels[ix])
            );
        }
    }
    // The first row's best class is the label the model gives it.
    assert!(out["data"][0].as_str().unwrap().ends_with(":setosa"));

    // More classes than there are are capped; strings cannot be classified; k must be positive.
    let ask = |output: &str, k: Value| {
        json!({
            "inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": IRIS_ROWS}],
            "outputs": [{"name": output, "parameters": {"classification": k}}],
        })
    };
    let all = post(
        &state,
        "/v2/models/iris/infer",
        &ask("probabilities", json!(10)),
    )
    .await;
    assert_eq!(all.json()["outputs"][0]["shape"], json!([3, 3]));
    for (output, k) in [("label", json!(1)), ("probabilities", json!(0))] {
        let refused = post(&state, "/v2/models/iris/infer", &ask(output, k)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(refused.message().contains(output), "{}", refused.message());
    }
}

#[tokio::test]
async fn unsupported_extensions_are_501_not_ignored() {
    let state = iris().await;
    let mut sequence = iris_request();
    sequence["parameters"] = json!({"sequence_id": 42, "sequence_start": true});
    let refused = post(&state, "/v2/models/iris/infer", &sequence).await;
    assert_eq!(refused.status, StatusCode::NOT_IMPLEMENTED);
    assert!(
        refused.message().contains("sequence_id"),
        "{}",
        refused.message()
    );
    // A zero sequence id is how clients say "no sequence".
    let mut none = iris_request();
    none["parameters"] = json!({"sequence_id": 0, "sequence_start": false});
    assert_eq!(
        post(&state, "/v2/models/iris/infer", &none).await.status,
        StatusCode::OK
    );
    let mut shared = iris_request();
    shared["inputs"][0]["parameters"] = json!({"shared_memory_region": "r0"});
    let refused = post(&state, "/v2/models/iris/infer", &shared).await;
    assert_eq!(refused.status, StatusCode::NOT_IMPLEMENTED);
    assert!(refused.message().contains("`X`"));

    for (path, word) in [
        ("/v2/repository/index", "repository"),
        ("/v2/repository/models/iris/load", "repository"),
        ("/v2/models/stats", "statistics"),
        ("/v2/models/iris/versions/1.0.0/stats", "statistics"),
        ("/v2/trace/setting", "trace"),
        ("/v2/logging", "logging"),
        ("/v2/systemsharedmemory/status", "shared-memory"),
        ("/v2/cudasharedmemory/region/r0/register", "shared-memory"),
    ] {
        let answer = post(&state, path, &json!({})).await;
        assert_eq!(answer.status, StatusCode::NOT_IMPLEMENTED, "{path}");
        assert!(
            answer.message().contains(word),
            "{path}: {}",
            answer.message()
        );
    }
}

#[tokio::test]
async fn declared_shapes_and_sizes_past_the_data_given_are_refused_before_allocating() {
    // A shape is checked against the values the body holds (at most `max_body_bytes` of
    // them), never allocated from: a claim of 10^12 values is a 400 at once.
    let state = iris().await;
    let huge = json!({"inputs": [{"name": "X", "shape": [1_000_000_000_000_u64, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]});
    let answer = post(&state, "/v2/models/iris/infer", &huge).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer
            .message()
            .contains("shape [1000000000000, 4] holds 4000000000000 values, but 4 were given"),
        "{}",
        answer.message()
    );
    // The same claim in the binary extension, and a byte count past the body.
    let header = json!({"inputs": [{"name": "X", "shape": [1_000_000_000_000_u64, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]});
    let answer = send(&state, binary_request(&header, &[&[0u8; 16]])).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.message().contains("holds 4000000000000 values"),
        "{}",
        answer.message()
    );
    let header = json!({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 1_000_000_000_000_u64}}]});
    let answer = send(&state, binary_request(&header, &[&[0u8; 16]])).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer
            .message()
            .contains("binary_data_size is 1000000000000, but only 16 bytes"),
        "{}",
        answer.message()
    );
}

#[tokio::test]
async fn json_nested_past_serde_jsons_recursion_limit_is_a_400() {
    // serde_json reads at most 128 levels; deeper bodies are refused as they are parsed,
    // without exhausting the stack.
    let state = iris().await;
    for depth in [129, 100_000] {
        let body = format!(
            r#"{{"inputs": [{{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": {}{}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let answer = post_bytes(&state, "/v2/models/iris/infer", body.into_bytes()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{depth}");
        assert!(
            answer.message().contains("could not be read"),
            "{}",
            answer.message()
        );
    }
}
