//! [`ApiError`]: every failure a request can meet, as a status and a message safe to send.
//!
//! Messages name the input, model or limit concerned and what was expected; they never carry
//! the request's data or the server's paths. Internal failures are logged in full and answered
//! with a generic message and the request id, so the log has the detail and the client does not.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which protocol's error shape to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// `{"error": "..."}`: the V2, V1 and simple protocols.
    #[default]
    Plain,
    /// `{"error_code": "...", "message": "..."}`: MLflow's scoring protocol.
    Mlflow,
}

/// A failed request: its status, a message for the client, and the protocol's error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and what was expected, safe to send.
    pub message: String,
    /// Seconds after which a retry may succeed (overload), sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// The error shape to answer with.
    pub flavor: Flavor,
    /// For a 500: what failed, for the log only, never sent. The request middleware logs it
    /// beside the request's id and names that id in the answer.
    pub detail: Option<Arc<str>>,
}

/// An internal failure's detail, carried from the answer to the request middleware in the
/// response's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) detail: Arc<str>,
    pub(crate) flavor: Flavor,
}

impl Failure {
    /// The 500 answer for request `id`: the generic message, with the id to quote when asking
    /// an operator what happened.
    pub(crate) fn answer(&self, id: &str) -> Response {
        ApiError {
            message: format!(
                "the server failed to answer this request (request id {id}); its log has the \
                 details"
            ),
            flavor: self.flavor,
            ..ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
        .into_response()
    }
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            flavor: Flavor::Plain,
            detail: None,
        }
    }

    /// 400: the request is wrong; the message says how.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such model or version.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 413: the body is larger than the server accepts.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the server's limit of {limit} bytes"),
        )
    }

    /// 415: a content type the endpoint does not read.
    pub fn unsupported_media(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }

    /// 501: a protocol feature this server does not implement; the message names it.
    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, message)
    }

    /// 503 with `Retry-After`: the server is overloaded or not ready; try again later.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// 500: something failed on the server's side. `detail` is logged, never sent: the
    /// request middleware logs it with the request's id and puts that id in the answer.
    pub fn internal(detail: &dyn std::fmt::Display) -> ApiError {
        ApiError {
            detail: Some(detail.to_string().into()),
            ..ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server failed to answer this request; its log has the details",
            )
        }
    }

    /// The same error in MLflow's shape.
    pub fn mlflow(mut self) -> ApiError {
        self.flavor = Flavor::Mlflow;
        self
    }

    /// MLflow's name for the status.
    fn mlflow_code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => "BAD_REQUEST",
            StatusCode::PAYLOAD_TOO_LARGE => "INVALID_PARAMETER_VALUE",
            StatusCode::NOT_FOUND => "RESOURCE_DOES_NOT_EXIST",
            StatusCode::SERVICE_UNAVAILABLE => "TEMPORARILY_UNAVAILABLE",
            status if status.is_client_error() => "BAD_REQUEST",
            _ => "INTERNAL_ERROR",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.flavor {
            Flavor::Plain => json!({ "error": self.message }),
            Flavor::Mlflow => json!({ "error_code": self.mlflow_code(), "message": self.message }),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(detail) = self.detail {
            response.extensions_mut().insert(Failure {
                detail,
                flavor: self.flavor,
            });
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Maps a core error met while answering a request: the caller's mistakes are 400 with their
/// message, the rest 500 with the detail logged.
impl From<tiffin_core::Error> for ApiError {
    fn from(err: tiffin_core::Error) -> ApiError {
        match &err {
            tiffin_core::Error::Payload(p) => ApiError::bad_request(p.message.clone()),
            tiffin_core::Error::Model { source, .. } if source.is_input_error() => {
                ApiError::bad_request(source.to_string())
            }
            // The log gets the whole chain in words ("path: tract panicked while running the
            // model (...)"), not the source's Debug form wrapped in an Option.
            _ => match std::error::Error::source(&err) {
                Some(source) => ApiError::internal(&format_args!("{err}: {source}")),
                None => ApiError::internal(&err),
            },
        }
    }
}

impl From<tiffin_core::runtime::Error> for ApiError {
    fn from(err: tiffin_core::runtime::Error) -> ApiError {
        if err.is_input_error() {
            ApiError::bad_request(err.to_string())
        } else {
            ApiError::internal(&err)
        }
    }
}

impl From<tiffin_core::payload::PayloadError> for ApiError {
    fn from(err: tiffin_core::payload::PayloadError) -> ApiError {
        ApiError::bad_request(err.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_errors_carry_mlflow_codes() {
        assert_eq!(
            ApiError::bad_request("x").mlflow().mlflow_code(),
            "BAD_REQUEST"
        );
        assert_eq!(
            ApiError::unavailable("busy").mlflow().mlflow_code(),
            "TEMPORARILY_UNAVAILABLE"
        );
        let response = ApiError::unavailable("busy").into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
