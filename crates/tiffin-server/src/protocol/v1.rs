//! TF-Serving REST / KServe V1: `POST /v1/models/{m}[/versions/{v}]:predict` with `instances`
//! (rows) or `inputs` (columns), model listing and readiness.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};
use tiffin_core::manifest::Signature;
use tiffin_core::runtime::Tensor;

use super::mlflow::{Answer, Predictions, decode_instances, predictions, rows};
use super::{decode_body, encode_answer, json_error, read_body, tagged};
use crate::error::{ApiError, Flavor};
use crate::registry::Served;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(list))
        .route("/v1/models/{m}", get(status).post(predict))
        .route("/v1/models/{m}/versions/{v}", get(status).post(predict))
}

async fn list(State(state): State<AppState>) -> Response {
    let registry = state.registry();
    axum::Json(json!({ "models": registry.names().collect::<Vec<_>>() })).into_response()
}

/// The model (and version) a V1 path names, with the `:predict` verb split off when `verb`.
fn target(
    params: &std::collections::HashMap<String, String>,
    verb: bool,
) -> Result<(String, Option<String>), ApiError> {
    let (m, v) = (
        params.get("m").cloned().unwrap_or_default(),
        params.get("v").cloned(),
    );
    let split = |s: &str| -> Result<String, ApiError> {
        match s.rsplit_once(':') {
            Some((name, "predict")) if verb => Ok(name.to_owned()),
            Some((_, other)) => Err(ApiError::not_found(format!(
                "`:{other}` is not supported; tiffin answers `:predict`"
            ))),
            None if verb => Err(ApiError::not_found("POST to `/v1/models/{name}:predict`")),
            None => Ok(s.to_owned()),
        }
    };
    Ok(match v {
        Some(v) => (m, Some(split(&v)?)),
        None => (split(&m)?, None),
    })
}

async fn status(
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
) -> Response {
    let registry = state.registry();
    let served = match target(&params, false).and_then(|(m, v)| registry.get(&m, v.as_deref())) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let ready = state.is_ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body =
        json!({ "name": served.name(), "version": served.version().to_string(), "ready": ready });
    tagged(&served, Ok((code, axum::Json(body)).into_response()))
}

async fn predict(
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    body: Body,
) -> Response {
    let registry = state.registry();
    let served = match target(&params, true).and_then(|(m, v)| registry.get(&m, v.as_deref())) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let result = answer(&state, &served, body).await;
    tagged(&served, result)
}

async fn answer(state: &AppState, served: &Arc<Served>, body: Body) -> Result<Response, ApiError> {
    let read = read_body(state, body, Flavor::Plain).await?;
    let (row_form, tensors) = decode_body(served, read, decode).await?;
    let outputs = state.infer(served, tensors).await?;
    encode_answer(served, outputs, move |served, outputs| {
        Ok(encode(served.signature(), row_form, outputs))
    })
    .await
}

/// The answer: rows (`predictions`) for a request of rows, columns (`outputs`) for one of columns.
fn encode(sig: &Signature, row_form: bool, outputs: &[Tensor]) -> Response {
    if row_form && sig.outputs.len() > 1 {
        return axum::Json(json!({ "predictions": rows(sig, outputs) })).into_response();
    }
    // One output's rows are its values as they stand, which is what `predictions` writes.
    if row_form {
        return axum::Json(Answer {
            predictions: predictions(sig, outputs),
        })
        .into_response();
    }
    let answer = ColumnAnswer {
        outputs: predictions(sig, outputs),
    };
    axum::Json(answer).into_response()
}

/// A body's tensors, and whether they came as rows (`instances`) rather than columns.
fn decode(sig: &Signature, bytes: &[u8]) -> Result<(bool, Vec<Tensor>), ApiError> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    decode_b64(&mut value)?;
    match (value.get("instances"), value.get("inputs")) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "send `instances` (rows) or `inputs` (columns), not both",
        )),
        (Some(rows), None) => Ok((true, decode_instances(sig, rows)?)),
        (None, Some(columns)) => Ok((false, tiffin_core::payload::decode(sig, columns)?)),
        (None, None) => Err(ApiError::bad_request(
            "the body needs `instances` (rows) or `inputs` (columns)",
        )),
    }
}

/// Replaces TF-Serving's binary values `{"b64": "..."}` with the text they encode.
fn decode_b64(value: &mut Value) -> Result<(), ApiError> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("b64") => {
            let encoded = map["b64"]
                .as_str()
                .ok_or_else(|| ApiError::bad_request("a `b64` value must be a string"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| ApiError::bad_request("a `b64` value is not valid base64"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("a `b64` value is not UTF-8 text"))?;
            *value = Value::String(text);
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                decode_b64(v)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                decode_b64(v)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// TF-Serving's answer in the column form: the outputs as `predictions` would give them.
#[derive(Serialize)]
struct ColumnAnswer<'a> {
    outputs: Predictions<'a>,
}
