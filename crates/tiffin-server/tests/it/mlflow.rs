//! MLflow's scoring protocol: the four JSON forms, CSV, and errors in MLflow's shape.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tiffin_server::Config;

use crate::common::{IRIS_ROWS, get, loaded, post_json, send};

#[tokio::test]
async fn every_form_gives_the_same_predictions() {
    let state = loaded(&["breast_cancer"], Config::default()).await;
    assert_eq!(get(&state, "/ping").await.status, StatusCode::OK);
    assert_eq!(get(&state, "/health").await.status, StatusCode::OK);
    assert_eq!(
        get(&state, "/version").await.body,
        env!("CARGO_PKG_VERSION")
    );

    let reference = crate::common::reference("breast_cancer");
    let x: Vec<Vec<f64>> = reference["inputs"]["X"]["data"]
        .as_array()
        .unwrap()
        .chunks(30)
        .take(3)
        .map(|row| row.iter().map(|v| v.as_f64().unwrap()).collect())
        .collect();
    let features: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    let sig = tiffin_core::inspect(&crate::common::package("breast_cancer"))
        .unwrap()
        .manifest
        .signature;
    let names = sig.inputs[0].feature_names.clone().unwrap();
    assert_eq!(names.len(), features.len());
    let records: Vec<serde_json::Value> = x
        .iter()
        .map(|row| {
            serde_json::Value::Object(
                names
                    .iter()
                    .cloned()
                    .zip(row.iter().map(|v| json!(v)))
                    .collect(),
            )
        })
        .collect();
    let forms = [
        json!({"inputs": x}),
        json!({"inputs": {"X": x}}),
        json!({"instances": x}),
        json!({"dataframe_split": {"columns": names, "data": x}}),
        json!({"dataframe_records": records}),
    ];
    let mut answers = Vec::new();
    for form in &forms {
        let answer = post_json(&state, "/invocations", form).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{form}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        answers.push(answer.json());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // Two outputs: an object by output name, labels mapped.
    let labels = &answers[0]["predictions"]["label"];
    assert_eq!(labels.as_array().unwrap().len(), 3);
    assert!(labels[0] == "malignant" || labels[0] == "benign");

    // CSV with a header row of feature names.
    let mut csv = names.join(",");
    for row in &x {
        csv.push('\n');
        csv.push_str(
            &row.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let request = Request::post("/invocations")
        .header("content-type", "text/csv")
        .body(Body::from(csv))
        .unwrap();
    let answer = send(&state, request).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json(), answers[0]);
}

#[tokio::test]
async fn errors_come_in_mlflows_shape() {
    let state = loaded(&["iris"], Config::default()).await;
    let cases = [
        (
            json!({"inputs": IRIS_ROWS, "instances": IRIS_ROWS}),
            "exactly one of",
        ),
        (json!({}), "none"),
        (json!({"rows": IRIS_ROWS}), "unknown field `rows`"),
        (
            json!({"inputs": IRIS_ROWS, "params": {"k": 1}}),
            "no `params`",
        ),
        (json!({"inputs": [[1, 2, 3]]}), "size 4"),
        (
            json!({"dataframe_split": {"data": IRIS_ROWS}}),
            "needs `columns`",
        ),
    ];
    for (body, words) in cases {
        let answer = post_json(&state, "/invocations", &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        let json = answer.json();
        assert_eq!(json["error_code"], "BAD_REQUEST", "{json}");
        assert!(
            json["message"].as_str().unwrap().contains(words),
            "{json} lacks {words}"
        );
    }
    let request = Request::post("/invocations")
        .header("content-type", "text/plain")
        .body(Body::from("1,2,3,4"))
        .unwrap();
    let answer = send(&state, request).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer.json()["error_code"], "BAD_REQUEST");
}

#[tokio::test]
async fn invocations_needs_a_single_model() {
    let state = loaded(&["iris", "breast_cancer"], Config::default()).await;
    let answer = post_json(&state, "/invocations", &json!({"inputs": IRIS_ROWS})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("several models")
    );
}

/// Every number in `value` that is not an integer.
fn fractions(value: &serde_json::Value, out: &mut Vec<f64>) {
    match value {
        serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => out.push(n.as_f64().unwrap()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| fractions(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| fractions(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_protocol_writes_f32_outputs_as_their_shortest_decimal() {
    let state = loaded(&["breast_cancer"], Config::default()).await;
    let reference = crate::common::reference("breast_cancer");
    let row: Vec<serde_json::Value> =
        reference["inputs"]["X"]["data"].as_array().unwrap()[..30].to_vec();
    for (uri, body) in [
        ("/invocations", json!({"inputs": [row]})),
        ("/predict", json!({"X": [row]})),
        ("/v1/models/breast_cancer:predict", json!({"inputs": [row]})),
        (
            "/v2/models/breast_cancer/infer",
            json!({"inputs": [{"name": "X", "shape": [1, 30], "datatype": "FP32", "data": row}]}),
        ),
    ] {
        let answer = post_json(&state, uri, &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.message());
        let mut found = Vec::new();
        fractions(&answer.json(), &mut found);
        assert!(
            !found.is_empty(),
            "{uri}: no probabilities in {}",
            answer.json()
        );
        for v in found {
            // 0.1f32 is written 0.1, not 0.10000000149011612: the f32's shortest decimal
            // reads back as the same f64 the answer holds.
            let shortest: f64 = (v as f32).to_string().parse().unwrap();
            assert_eq!(shortest, v, "{uri}: {v} is not an f32's shortest decimal");
        }
    }
}
