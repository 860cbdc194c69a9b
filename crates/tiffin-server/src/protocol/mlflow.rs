//! MLflow's scoring protocol: `/ping`, `/health`, `/version` and `POST /invocations` with
//! exactly one of `inputs`, `instances`, `dataframe_split` or `dataframe_records` (JSON), or a
//! CSV table; answers `{"predictions": ...}`, errors `{"error_code", "message"}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tiffin_core::manifest::Signature;
use tiffin_core::payload;
use tiffin_core::runtime::Tensor;

use super::{decode_body, encode_answer, json_error, read_body, tagged};
use crate::error::{ApiError, Flavor};
use crate::registry::Served;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/invocations", post(invocations))
}

/// `GET /ping`: 200 once the model is loaded and checked.
pub(super) async fn ping(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "\n").into_response()
    } else {
        ApiError::unavailable("the models are still loading")
            .mlflow()
            .into_response()
    }
}

/// `GET /version`: the server's version.
pub(super) async fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The four keys MLflow takes, exactly one per request.
const FORMS: [&str; 4] = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
];

async fn invocations(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let served = match state.registry().only() {
        Ok(s) => s,
        Err(e) => return e.mlflow().into_response(),
    };
    let result = answer(&state, &served, &headers, body).await;
    tagged(&served, result.map_err(ApiError::mlflow))
}

async fn answer(
    state: &AppState,
    served: &Arc<Served>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let csv = match content_type.as_deref() {
        None | Some("application/json") => false,
        Some("text/csv") => true,
        Some(other) => {
            return Err(ApiError::unsupported_media(format!(
                "content type `{}` is not supported; send application/json or text/csv",
                payload::shown(other)
            )));
        }
    };
    let read = read_body(state, body, Flavor::Mlflow).await?;
    let inputs = decode_body(served, read, move |sig, bytes| {
        if csv {
            decode_csv(sig, bytes)
        } else {
            let value: Value = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
            decode_json(sig, &value)
        }
    })
    .await?;
    let outputs = state.infer(served, inputs).await?;
    encode_answer(served, outputs, |served, outputs| {
        let answer = Answer {
            predictions: predictions(served.signature(), outputs),
        };
        Ok(axum::Json(answer).into_response())
    })
    .await
}

fn decode_json(sig: &Signature, value: &Value) -> Result<Vec<Tensor>, ApiError> {
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object with one of {FORMS:?}"
        )));
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !FORMS.contains(&k.as_str()) && *k != "params")
    {
        return Err(ApiError::bad_request(format!(
            "unknown field `{}`; send exactly one of {FORMS:?}",
            payload::shown(unknown)
        )));
    }
    if map
        .get("params")
        .is_some_and(|p| !p.is_null() && p.as_object().is_none_or(|o| !o.is_empty()))
    {
        return Err(ApiError::bad_request(
            "this model takes no `params`; leave them out",
        ));
    }
    let given: Vec<&str> = FORMS.into_iter().filter(|k| map.contains_key(*k)).collect();
    let [form] = given.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "send exactly one of {FORMS:?}; this request has {}",
            if given.is_empty() {
                "none".to_owned()
            } else {
                format!("{given:?}")
            }
        )));
    };
    let body = &map[*form];
    Ok(match *form {
        "dataframe_split" => {
            let columns = body
                .get("columns")
                .and_then(Value::as_array)
                .ok_or_else(|| ApiError::bad_request("`dataframe_split` needs `columns`"))?
                .iter()
                .map(|c| c.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| ApiError::bad_request("`columns` must be strings"))?;
            let rows = body
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| ApiError::bad_request("`dataframe_split` needs `data` rows"))?;
            payload::decode_columns(sig, &columns, rows)?
        }
        "dataframe_records" => {
            let rows = body.as_array().ok_or_else(|| {
                ApiError::bad_request("`dataframe_records` must be a list of records")
            })?;
            payload::decode_records(sig, rows)?
        }
        // TF-Serving's rules: `instances` are rows, `inputs` columns (one value for a
        // one-input model, or an object by input name).
        "instances" => decode_instances(sig, body)?,
        _ => payload::decode(sig, body)?,
    })
}

/// Rows in TF-Serving's `instances` form: values of the only input, or objects by input name.
pub(super) fn decode_instances(sig: &Signature, body: &Value) -> Result<Vec<Tensor>, ApiError> {
    let rows = body
        .as_array()
        .ok_or_else(|| ApiError::bad_request("`instances` must be a list of rows"))?;
    if rows.is_empty() {
        return Err(ApiError::bad_request("`instances` is empty"));
    }
    if rows.iter().all(Value::is_object) {
        return Ok(payload::decode_records(sig, rows)?);
    }
    Ok(payload::decode(sig, body)?)
}

/// A CSV table with a header row of feature (or input) names, as pandas writes it.
fn decode_csv(sig: &Signature, bytes: &[u8]) -> Result<Vec<Tensor>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| {
            ApiError::bad_request(format!(
                "the CSV header row cannot be read: {}",
                csv_error(&e)
            ))
        })?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            ApiError::bad_request(format!("CSV row {i} cannot be read: {}", csv_error(&e)))
        })?;
        rows.push(Value::Array(record.iter().map(csv_value).collect()));
    }
    Ok(payload::decode_columns(sig, &columns, &rows)?)
}

/// A CSV error in words that do not repeat the row's content.
fn csv_error(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("it has {len} fields, the header {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "it is not UTF-8".into(),
        _ => "it is not valid CSV".into(),
    }
}

/// A CSV field: a number when it reads as one, else the text.
fn csv_value(field: &str) -> Value {
    if let Ok(i) = field.parse::<i64>() {
        return Value::from(i);
    }
    match field.parse::<f64>() {
        Ok(f) if f.is_finite() => json!(f),
        _ => Value::String(field.to_owned()),
    }
}

/// MLflow's answer to a scoring request.
#[derive(Serialize)]
pub(super) struct Answer<'a> {
    pub(super) predictions: Predictions<'a>,
}

/// MLflow's predictions: the one output's values, or an object of outputs by name, class labels
/// mapped as the original model would answer. Written straight to the answer's JSON.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Predictions<'a> {
    One(payload::EncodedTensor<'a>),
    Each(payload::Encoded<'a>),
}

/// The predictions for `outputs`.
pub(super) fn predictions<'a>(sig: &'a Signature, outputs: &'a [Tensor]) -> Predictions<'a> {
    match (sig.outputs.as_slice(), outputs) {
        ([spec], [tensor]) => Predictions::One(payload::encoded_tensor(spec, tensor, true)),
        _ => Predictions::Each(payload::encoded(sig, outputs, true)),
    }
}

/// For the V1 protocol: the rows of a model with several outputs, as TF-Serving's
/// `predictions`, each row an object of the outputs' values by name. (One output's rows are its
/// values as [`predictions`] writes them.)
pub(super) fn rows(sig: &Signature, outputs: &[Tensor]) -> Value {
    let encoded = payload::encode(sig, outputs, true);
    let Value::Object(map) = encoded else {
        return encoded;
    };
    let per_output: Vec<(String, Vec<Value>)> = map
        .into_iter()
        .map(|(name, v)| match v {
            Value::Array(rows) => (name, rows),
            other => (name, vec![other]),
        })
        .collect();
    let n = per_output.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    // Each output's values are moved into the rows in turn, not cloned.
    let mut per_output: Vec<(String, std::vec::IntoIter<Value>)> = per_output
        .into_iter()
        .map(|(name, rows)| (name, rows.into_iter()))
        .collect();
    Value::Array(
        (0..n)
            .map(|_| {
                let row: Map<String, Value> = per_output
                    .iter_mut()
                    .map(|(name, rows)| (name.clone(), rows.next().unwrap_or(Value::Null)))
                    .collect();
                Value::Object(row)
            })
            .collect(),
    )
}
