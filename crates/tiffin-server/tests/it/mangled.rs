//! Mangled requests: each protocol's valid request (JSON, binary V2, CSV) cut short at every
//! byte, with every value in it replaced by values of other kinds and sizes or its fields left
//! out, and nested lists that claim far more values than they hold. Every answer must be a JSON
//! error below 500 (or a success): no panic, no crash, no allocation sized by what a request
//! claims.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tiffin_server::{AppState, Config};

use crate::common::{Answer, loaded, post_bytes, send};

/// What each value of a request is replaced with in turn.
const REPLACEMENTS: &[&str] = &[
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "1e308",
    "-1e308",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "\"\"",
    "\"FP32\"",
    "[]",
    "[[]]",
    "{}",
    "[1, 2, 3]",
    "{\"a\": 1}",
    // Shapes whose dims multiply past 2^64 (the first wraps to 0), or hold no values yet carry
    // a huge dim.
    "[4611686018427387904, 4]",
    "[0, 4611686018427387904]",
    "[4294967296, 4294967296, 4294967296]",
];

const ROWS: [[f32; 4]; 2] = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]];

/// A valid request for every protocol and form, on iris.
fn requests() -> Vec<(&'static str, Value)> {
    let features = [
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    ];
    let records: Vec<Value> = ROWS
        .iter()
        .map(|row| {
            Value::Object(
                features
                    .iter()
                    .zip(row)
                    .map(|(f, v)| ((*f).to_owned(), json!(v)))
                    .collect(),
            )
        })
        .collect();
    vec![
        (
            "/v2/models/iris/infer",
            json!({
                "id": "r1",
                "parameters": {"binary_data_output": false},
                "inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": ROWS}],
                "outputs": [
                    {"name": "label"},
                    {"name": "probabilities", "parameters": {"classification": 2}},
                ],
            }),
        ),
        ("/v1/models/iris:predict", json!({"instances": ROWS})),
        ("/v1/models/iris:predict", json!({"inputs": {"X": ROWS}})),
        ("/invocations", json!({"inputs": ROWS})),
        ("/invocations", json!({"instances": ROWS})),
        (
            "/invocations",
            json!({"dataframe_split": {"columns": features, "data": ROWS}}),
        ),
        ("/invocations", json!({"dataframe_records": records})),
        ("/predict", json!({"X": ROWS})),
    ]
}

/// Every copy of `value` with one node replaced by one of [`REPLACEMENTS`], or one object field
/// left out.
fn mutations(value: &Value) -> Vec<Value> {
    mutations_of(value, usize::MAX)
}

/// As [`mutations`], but in a list longer than `items` only the first two items and the last
/// are changed (a 784-value image would otherwise make 16 000 requests).
fn mutations_of(value: &Value, items: usize) -> Vec<Value> {
    let replacements: Vec<Value> = REPLACEMENTS
        .iter()
        .map(|r| serde_json::from_str(r).expect("a JSON replacement"))
        .collect();
    let mut out: Vec<Value> = replacements.clone();
    match value {
        Value::Array(list) => {
            let chosen: Vec<usize> = if list.len() > items {
                vec![0, 1, list.len() - 1]
            } else {
                (0..list.len()).collect()
            };
            for ix in chosen {
                for changed in mutations_of(&list[ix], items) {
                    let mut copy = list.clone();
                    copy[ix] = changed;
                    out.push(Value::Array(copy));
                }
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let mut without = fields.clone();
                without.remove(key);
                out.push(Value::Object(without));
                for changed in mutations_of(item, items) {
                    let mut copy = fields.clone();
                    copy.insert(key.clone(), changed);
                    out.push(Value::Object(copy));
                }
            }
        }
        _ => {}
    }
    out
}

/// A V2 request to iris in the binary tensor data extension: a JSON head of `length` bytes
/// (the header's value), then the raw tensors.
async fn post_binary(state: &AppState, length: &str, body: Vec<u8>) -> Answer {
    post_binary_to(state, "/v2/models/iris/infer", length, body).await
}

async fn post_binary_to(state: &AppState, uri: &str, length: &str, body: Vec<u8>) -> Answer {
    let request = Request::post(uri)
        .header("inference-header-content-length", length)
        .body(Body::from(body))
        .expect("a request");
    send(state, request).await
}

/// An answer a client can act on: a success, or an error below 500 with a message.
fn assert_handled(answer: &Answer, uri: &str, body: &[u8]) {
    let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    assert!(
        answer.status.as_u16() < 500,
        "{uri} answered {} to {shown}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    if !answer.status.is_success() {
        assert!(!answer.message().is_empty(), "{uri}: {shown}");
    }
}

#[tokio::test]
async fn every_mangled_request_gets_an_answer_below_500() {
    let state = loaded(&["iris"], Config::default()).await;
    let mut sent = 0;
    for (uri, valid) in requests() {
        let bytes = serde_json::to_vec(&valid).expect("JSON");
        let answer = post_bytes(&state, uri, bytes.clone()).await;
        assert!(
            answer.status.is_success(),
            "{uri} refused its valid request {valid}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        for end in 0..bytes.len() {
            let cut = bytes[..end].to_vec();
            let answer = post_bytes(&state, uri, cut.clone()).await;
            assert_eq!(answer.status.as_u16(), 400, "{uri}, cut at {end}");
            assert_handled(&answer, uri, &cut);
            sent += 1;
        }
        for changed in mutations(&valid) {
            let body = serde_json::to_vec(&changed).expect("JSON");
            let answer = post_bytes(&state, uri, body.clone()).await;
            assert_handled(&answer, uri, &body);
            sent += 1;
        }
    }
    assert!(sent > 4000, "only {sent} requests were sent");
}

/// Nested lists whose first item at each level is a long list and every other item a number:
/// a few kilobytes that claim `n^depth` values when the shape is read from first items.
fn claimed(depth: usize, n: usize) -> String {
    if depth == 0 {
        return "0".to_owned();
    }
    format!("[{}{}]", claimed(depth - 1, n), ",0".repeat(n - 1))
}

#[tokio::test]
async fn nested_lists_that_claim_more_than_they_hold_are_refused() {
    let state = loaded(&["iris"], Config::default()).await;
    let bomb = claimed(4, 1000);
    assert!(bomb.len() < 10_000);
    for (uri, body) in [
        ("/predict", format!(r#"{{"X": {bomb}}}"#)),
        ("/invocations", format!(r#"{{"inputs": {bomb}}}"#)),
        ("/invocations", format!(r#"{{"instances": {bomb}}}"#)),
        (
            "/v1/models/iris:predict",
            format!(r#"{{"instances": {bomb}}}"#),
        ),
        (
            "/v2/models/iris/infer",
            format!(
                r#"{{"inputs": [{{"name": "X", "shape": [1000000000000, 4], "datatype": "FP32", "data": {bomb}}}]}}"#
            ),
        ),
    ] {
        let answer = post_bytes(&state, uri, body.clone().into_bytes()).await;
        assert_eq!(answer.status.as_u16(), 400, "{uri}");
        assert_handled(&answer, uri, body.as_bytes());
    }
}

#[tokio::test]
async fn every_mangled_binary_request_gets_an_answer_below_500() {
    let state = loaded(&["iris"], Config::default()).await;
    let head = json!({
        "inputs": [{
            "name": "X", "shape": [2, 4], "datatype": "FP32",
            "parameters": {"binary_data_size": 32},
        }],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}],
    });
    let tensor: Vec<u8> = ROWS
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let with = |head: &Value, tensor: &[u8]| {
        let mut body = serde_json::to_vec(head).expect("JSON");
        let length = body.len();
        body.extend_from_slice(tensor);
        (length, body)
    };
    let (length, valid) = with(&head, &tensor);
    let answer = post_binary(&state, &length.to_string(), valid.clone()).await;
    assert!(answer.status.is_success(), "{:?}", answer.body);
    let uri = "/v2/models/iris/infer (binary)";
    // The header's value against the body: every length up to past its end, and non-numbers.
    for claimed in (0..=valid.len() + 8)
        .map(|n| n.to_string())
        .chain(["-1", "", "x", "18446744073709551616"].map(str::to_owned))
    {
        let answer = post_binary(&state, &claimed, valid.clone()).await;
        // 0 means the whole body is the raw input, which bytes of JSON may happen to fit.
        if claimed != length.to_string() && claimed != "0" {
            assert!(!answer.status.is_success(), "length {claimed} was taken");
        }
        assert_handled(&answer, uri, &valid);
    }
    // The binary part cut short, and the head mangled with its length kept true.
    for end in 0..tensor.len() {
        let (length, body) = with(&head, &tensor[..end]);
        let answer = post_binary(&state, &length.to_string(), body.clone()).await;
        assert_eq!(answer.status.as_u16(), 400, "binary part cut at {end}");
    }
    let mut sent = 0;
    for changed in mutations(&head) {
        let (length, body) = with(&changed, &tensor);
        let answer = post_binary(&state, &length.to_string(), body.clone()).await;
        assert_handled(&answer, uri, &body);
        sent += 1;
    }
    assert!(sent > 300, "only {sent} heads were sent");
}

#[tokio::test]
async fn every_mangled_csv_body_gets_an_answer_below_500() {
    let state = loaded(&["iris"], Config::default()).await;
    let csv = |cells: &[&str]| -> Vec<u8> {
        let mut text =
            String::from("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n");
        for row in cells.chunks(4) {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        text.into_bytes()
    };
    let post_csv = |body: Vec<u8>| {
        let request = Request::post("/invocations")
            .header("content-type", "text/csv")
            .body(Body::from(body))
            .expect("a request");
        send(&state, request)
    };
    let cells = ["5.1", "3.5", "1.4", "0.2", "6.7", "3.0", "5.2", "2.3"];
    let valid = csv(&cells);
    assert!(post_csv(valid.clone()).await.status.is_success());
    for end in 0..valid.len() {
        let cut = valid[..end].to_vec();
        let answer = post_csv(cut.clone()).await;
        assert_handled(&answer, "/invocations (csv)", &cut);
    }
    for ix in 0..cells.len() + 1 {
        for odd in [
            "",
            "x",
            "nan",
            "inf",
            "1e400",
            "\"1\"",
            "\"",
            "1,2",
            "\u{0}",
            "18446744073709551616",
        ] {
            let mut changed = cells.to_vec();
            if ix < cells.len() {
                changed[ix] = odd;
            } else {
                changed.push(odd);
            }
            let body = csv(&changed);
            let answer = post_csv(body.clone()).await;
            assert_handled(&answer, "/invocations (csv)", &body);
        }
    }
}

#[tokio::test]
async fn every_fixture_answers_mangled_v2_requests_below_500() {
    // text_direction is left out: images smaller than its convolutions make tract panic, which
    // the runtime turns into a 500 (tests of tiffin-runtime), rightly not a 4xx.
    let names = [
        "breast_cancer_gbt",
        "breast_cancer_mlp",
        "breast_cancer_rf",
        "breast_cancer_scaled",
        "churn_model",
        "diabetes_tree_reg",
        "iris_gbt",
        "mnist_cnn",
        "silero_vad",
    ];
    let state = loaded(&names, Config::default()).await;
    let mut sent = 0;
    for name in names {
        let reference = crate::common::reference(name);
        let inputs: Vec<Value> = reference["inputs"]
            .as_object()
            .expect("inputs by name")
            .iter()
            .map(|(input, t)| {
                // Reference files hold values as `data` or `b64`; the tensor reads either.
                let t: tiffin_core::runtime::Tensor =
                    serde_json::from_value(t.clone()).expect("a reference tensor");
                let mut shape = t.shape().to_vec();
                let mut data = t.data().to_json();
                // One row of an input with a batch dim of more than one; the whole of the rest.
                if shape[0] > 1 {
                    data.truncate(data.len() / shape[0]);
                    shape[0] = 1;
                }
                json!({"name": input, "shape": shape, "datatype": "FP32", "data": data})
            })
            .collect();
        let valid = json!({"inputs": inputs});
        let uri = format!("/v2/models/{name}/infer");
        let answer = post_bytes(&state, &uri, serde_json::to_vec(&valid).expect("JSON")).await;
        assert!(
            answer.status.is_success(),
            "{name} refused its reference row: {}",
            String::from_utf8_lossy(&answer.body)
        );
        for changed in mutations_of(&valid, 4) {
            let body = serde_json::to_vec(&changed).expect("JSON");
            let answer = post_bytes(&state, &uri, body.clone()).await;
            assert_handled(&answer, &uri, &body);
            sent += 1;
        }
    }
    assert!(sent > 2000, "only {sent} requests were sent");
}

#[tokio::test]
async fn claims_of_shape_and_size_past_2_64_are_refused() {
    let state = loaded(&["iris", "silero_vad"], Config::default()).await;
    // A shape whose count wraps to 0, with no values: once taken for an empty tensor.
    for shape in [
        json!([4_611_686_018_427_387_904_u64, 4]),
        json!([0, 4_611_686_018_427_387_904_u64]),
    ] {
        let body =
            json!({"inputs": [{"name": "X", "shape": shape, "datatype": "FP32", "data": []}]});
        let body = serde_json::to_vec(&body).expect("JSON");
        let answer = post_bytes(&state, "/v2/models/iris/infer", body.clone()).await;
        assert_eq!(answer.status.as_u16(), 400, "{shape}");
        assert_handled(&answer, "/v2/models/iris/infer", &body);
    }
    // A binary size that overflows the running offset, on a model of three inputs.
    let head = json!({"inputs": [
        {"name": "input", "shape": [1, 576], "datatype": "FP32",
         "parameters": {"binary_data_size": 2304}},
        {"name": "h", "shape": [1, 1, 128], "datatype": "FP32",
         "parameters": {"binary_data_size": u64::MAX}},
        {"name": "c", "shape": [1, 1, 128], "datatype": "FP32",
         "parameters": {"binary_data_size": 512}},
    ]});
    let mut body = serde_json::to_vec(&head).expect("JSON");
    let length = body.len();
    body.extend(std::iter::repeat_n(0u8, 2304 + 512 + 512));
    let answer = post_binary_to(
        &state,
        "/v2/models/silero_vad/infer",
        &length.to_string(),
        body,
    )
    .await;
    assert_eq!(answer.status.as_u16(), 400);
    assert!(
        answer.message().contains("binary_data_size"),
        "{}",
        answer.message()
    );
}

#[tokio::test]
async fn names_with_json_escapes_are_read_as_their_text() {
    let state = loaded(&["iris"], Config::default()).await;
    // `\u0058` is "X": the name cannot be borrowed from the body and is read into a string.
    let body = r#"{"inputs": [{"name": "\u0058", "shape": [1, 4], "datatype": "FP\u00332",
        "data": [5.1, 3.5, 1.4, 0.2]}], "outputs": [{"name": "l\u0061bel"}]}"#;
    let answer = post_bytes(&state, "/v2/models/iris/infer", body.as_bytes().to_vec()).await;
    assert!(
        answer.status.is_success(),
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["outputs"][0]["name"], "label");
}

/// A model with a rank-0 input (no batch dim, no feature axis) through every protocol, in every
/// form a client might try: each gets an answer below 500.
#[tokio::test]
async fn a_scalar_input_is_answered_below_500_on_every_protocol() {
    let state = AppState::new(Config::default(), vec![crate::common::scalar_package()]);
    state.load().await.expect("the scalar model loads");
    let values = [
        json!(2.5),
        json!([2.5]),
        json!([[2.5]]),
        json!([]),
        json!({"dtype": "f32", "shape": [], "data": [2.5]}),
        json!({"dtype": "f32", "shape": [1], "data": [2.5]}),
    ];
    let mut bodies: Vec<(&str, Value)> = Vec::new();
    for value in &values {
        bodies.push(("/predict", json!({ "x": value })));
        bodies.push(("/predict", json!({ "X": value })));
        bodies.push(("/invocations", json!({ "inputs": value })));
        bodies.push(("/invocations", json!({ "inputs": {"x": value} })));
        bodies.push(("/invocations", json!({ "instances": value })));
        bodies.push((
            "/invocations",
            json!({ "dataframe_records": [{"x": value}] }),
        ));
        bodies.push((
            "/invocations",
            json!({ "dataframe_split": {"columns": ["x"], "data": [[value]]} }),
        ));
        bodies.push(("/v1/models/scalar:predict", json!({ "instances": value })));
        bodies.push(("/v1/models/scalar:predict", json!({ "inputs": value })));
        for shape in [json!([]), json!([1]), json!([1, 1])] {
            bodies.push((
                "/v2/models/scalar/infer",
                json!({"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": value}]}),
            ));
        }
    }
    for (uri, body) in &bodies {
        let body = serde_json::to_vec(body).expect("JSON");
        let answer = post_bytes(&state, uri, body.clone()).await;
        assert_handled(&answer, uri, &body);
    }
    for csv in ["x\n2.5\n", "2.5\n", "x\n", ""] {
        let request = Request::post("/invocations")
            .header("content-type", "text/csv")
            .body(Body::from(csv))
            .expect("a request");
        let answer = send(&state, request).await;
        assert_handled(&answer, "/invocations (csv)", csv.as_bytes());
    }
}
