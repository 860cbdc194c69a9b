//! The simple `/predict` form, TF-Serving/KServe V1, `/openapi.json` and `/metrics`.

use axum::http::StatusCode;
use serde_json::json;
use tiffin_server::Config;

use crate::common::{IRIS_ROWS, get, loaded, post, post_json};

#[tokio::test]
async fn predict_takes_the_tutorial_payload_and_answers_named_outputs() {
    let state = loaded(&["iris"], Config::default()).await;
    let answer = post_json(&state, "/predict", &json!({"X": IRIS_ROWS})).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["label"], json!(["setosa", "virginica", "versicolor"]));
    assert_eq!(body["probabilities"].as_array().unwrap().len(), 3);
    assert_eq!(
        post(&state, "/models/iris/predict", &json!({"X": IRIS_ROWS}))
            .await
            .json(),
        body
    );
    assert_eq!(
        post(
            &state,
            "/models/iris/versions/1.0.0/predict",
            &json!(IRIS_ROWS)
        )
        .await
        .json(),
        body
    );
    let answer = post(&state, "/models/iris/predict", &json!({"X": [[1, 2]]})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("`X`"));
    assert_eq!(
        post(&state, "/models/nope/predict", &json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&state, "/nowhere").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn v1_rows_and_columns() {
    let state = loaded(&["iris", "breast_cancer"], Config::default()).await;
    assert_eq!(get(&state, "/").await.json(), json!({"status": "alive"}));
    assert_eq!(
        get(&state, "/v1/models").await.json(),
        json!({"models": ["breast_cancer", "iris"]})
    );
    let status = get(&state, "/v1/models/iris").await.json();
    assert_eq!(
        (status["name"].clone(), status["ready"].clone()),
        (json!("iris"), json!(true))
    );
    let rows = post(
        &state,
        "/v1/models/iris:predict",
        &json!({"instances": IRIS_ROWS}),
    )
    .await;
    assert_eq!(rows.status, StatusCode::OK);
    let rows = rows.json();
    assert_eq!(rows["predictions"][1]["label"], "virginica");
    assert_eq!(
        rows["predictions"][1]["probabilities"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let objects =
        json!({"instances": IRIS_ROWS.iter().map(|r| json!({"X": r})).collect::<Vec<_>>()});
    assert_eq!(
        post(&state, "/v1/models/iris:predict", &objects)
            .await
            .json(),
        rows
    );
    let versioned = post(
        &state,
        "/v1/models/iris/versions/1.0.0:predict",
        &json!({"instances": IRIS_ROWS}),
    )
    .await;
    assert_eq!(versioned.json(), rows);
    let columns = post(
        &state,
        "/v1/models/iris:predict",
        &json!({"inputs": {"X": IRIS_ROWS}}),
    )
    .await
    .json();
    assert_eq!(
        columns["outputs"]["label"],
        json!(["setosa", "virginica", "versicolor"])
    );
    let both = post(
        &state,
        "/v1/models/iris:predict",
        &json!({"inputs": IRIS_ROWS, "instances": IRIS_ROWS}),
    )
    .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert!(both.message().contains("not both"));
    assert_eq!(
        post(&state, "/v1/models/iris:explain", &json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(&state, "/v1/models/nope:predict", &json!({"instances": []}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn openapi_describes_each_model_with_its_signature() {
    let state = loaded(&["iris", "breast_cancer"], Config::default()).await;
    let doc = get(&state, "/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let predict = &doc["paths"]["/models/iris/predict"]["post"];
    let x = &predict["requestBody"]["content"]["application/json"]["schema"]["properties"]["X"];
    assert_eq!(x["type"], "array");
    assert_eq!(x["items"]["minItems"], 4);
    assert_eq!(x["items"]["items"]["type"], "number");
    let label = &predict["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
        ["label"];
    assert_eq!(label["items"]["type"], "string");
    assert!(doc["paths"]["/v2/models/breast_cancer/infer"].is_object());
    assert!(doc["paths"]["/v1/models/iris:predict"].is_object());
    // Two names: no unnamed /predict or /invocations.
    assert!(doc["paths"].get("/predict").is_none());
}

#[tokio::test]
async fn metrics_count_requests_by_model_protocol_and_status() {
    let state = loaded(&["iris"], Config::default()).await;
    post(&state, "/models/iris/predict", &json!({"X": IRIS_ROWS})).await;
    post(&state, "/v2/models/iris/infer", &json!({"inputs": []})).await;
    let text = String::from_utf8(get(&state, "/metrics").await.body.to_vec()).unwrap();
    for line in [
        r#"tiffin_requests_total{model="iris",version="1.0.0",protocol="simple",status="200"} 1"#,
        r#"tiffin_requests_total{model="iris",version="1.0.0",protocol="v2",status="400"} 1"#,
        r#"tiffin_batch_rows_count{model="iris",version="1.0.0"} 1"#,
        r#"tiffin_inference_duration_seconds_count{model="iris",version="1.0.0"} 1"#,
        "tiffin_model_load_seconds{",
        "tiffin_in_flight_requests 1",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
}
