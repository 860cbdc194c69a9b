//! The simple JSON form of the classic tutorial: `POST /predict` with `{"X": [[...]]}`, named
//! inputs, records by feature name or pandas' split form; answers named outputs, with class
//! labels mapped.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use super::{Named, decode_body, encode_answer, json_error, read_body, tagged};
use crate::error::{ApiError, Flavor};
use crate::registry::Served;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/predict", post(predict_only))
        .route("/models/{m}/predict", post(predict))
        .route("/models/{m}/versions/{v}/predict", post(predict))
}

async fn predict_only(State(state): State<AppState>, body: Body) -> Response {
    let served = match state.registry().only() {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let result = answer(&state, &served, body).await;
    tagged(&served, result)
}

async fn predict(
    State(state): State<AppState>,
    Named { served, .. }: Named,
    body: Body,
) -> Response {
    let result = answer(&state, &served, body).await;
    tagged(&served, result)
}

async fn answer(state: &AppState, served: &Arc<Served>, body: Body) -> Result<Response, ApiError> {
    let read = read_body(state, body, Flavor::Plain).await?;
    let inputs = decode_body(served, read, |sig, bytes| {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
        Ok(tiffin_core::payload::decode(sig, &value)?)
    })
    .await?;
    let outputs = state.infer(served, inputs).await?;
    encode_answer(served, outputs, |served, outputs| {
        let answer = tiffin_core::payload::encoded(served.signature(), outputs, true);
        Ok(axum::Json(answer).into_response())
    })
    .await
}
