//! The HTTP surface: [`app`] builds one router for every protocol, with the middleware every
//! request goes through (request id, timeout, metrics, logs, gzip/deflate both ways).

mod mlflow;
mod openapi;
mod simple;
mod v1;
mod v2;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Limited};
use serde_json::json;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;

use crate::error::{ApiError, Failure, Flavor};
use crate::metrics::ModelMetrics;
use crate::registry::Served;
use crate::state::AppState;

/// The request id header: taken from the client when it sends a sane one, made up otherwise,
/// and sent back on every answer.
const REQUEST_ID: &str = "x-request-id";

/// The router for every protocol, over `state`. Test it with `tower::ServiceExt::oneshot`;
/// [`serve`](crate::serve) runs it on a socket.
pub fn app(state: AppState) -> Router {
    let ui = if state.config().ui {
        crate::ui::routes()
    } else {
        Router::new()
    };
    Router::new()
        // Health, shared by the protocols that ask for it under these names.
        .route("/", get(root))
        .route("/health", get(health))
        .route("/ping", get(mlflow::ping))
        .route("/version", get(mlflow::version))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/admin/reload", post(reload))
        .merge(v2::routes())
        .merge(mlflow::routes())
        .merge(v1::routes())
        .merge(simple::routes())
        .merge(ui)
        .fallback(not_found)
        // Bodies are decoded before handlers read them, and the size limit applies to what
        // the decoding yields, so a small compressed bomb cannot expand past it. Answers are
        // compressed with gzip or deflate only when asked: never brotli, which a widely used
        // async V2 client advertises but cannot decode. Both inside `track`, so that a body in
        // an encoding not decoded (415) is logged, counted and answered in JSON like the rest.
        .layer(RequestDecompressionLayer::new().gzip(true).deflate(true))
        .layer(CompressionLayer::new().gzip(true).deflate(true))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// The protocol a path belongs to, for metrics and error shapes.
fn protocol_of(path: &str) -> &'static str {
    if path.starts_with("/v2") {
        "v2"
    } else if path.starts_with("/v1") {
        "v1"
    } else if path == "/invocations" || path == "/ping" || path == "/version" {
        "mlflow"
    } else if path == "/predict" || path.starts_with("/models/") {
        "simple"
    } else {
        "other"
    }
}

/// Counts the request in flight for as long as it is, even when the client goes away.
struct InFlight<'a>(&'a AppState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics().request_finished();
    }
}

/// Every request: an id, a deadline, metrics and one structured log line.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let protocol = protocol_of(request.uri().path());
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| format!("{:016x}", state.request_id()), str::to_owned);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    state.metrics().request_started();
    let _in_flight = InFlight(&state);
    // A reload verifies and loads whole packages, which for large models takes longer than
    // any request should: it is exempt from the request deadline (and runs to its end even if
    // the client stops waiting, see `reload`).
    let timeout = if path == "/admin/reload" {
        Duration::MAX
    } else {
        state.config().request_timeout
    };
    // A panic in a handler would drop the connection without an answer: it is caught here and
    // answered as a 500, counted and logged like any other answer.
    let handled = AssertUnwindSafe(next.run(request)).catch_unwind();
    let failed = match tokio::time::timeout(timeout, handled).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("no message");
            Err(ApiError::internal(&format_args!(
                "a request handler panicked: {what}"
            )))
        }
        Err(_) => Err(ApiError::unavailable(format!(
            "the request did not finish within {} ms",
            timeout.as_millis()
        ))),
    };
    let mut response = match failed {
        Ok(response) => response,
        Err(err) => {
            let err = if protocol == "mlflow" {
                err.mlflow()
            } else {
                err
            };
            let mut response = err.into_response();
            // The handler, which tags its answer with the model, is gone: the path says which.
            if let Some(served) = model_of_path(&state, &path) {
                response.extensions_mut().insert(served.metrics.clone());
            }
            response
        }
    };
    // Answers made below the handlers (a method the route does not take, an encoding not
    // decoded) have no body: every error is JSON.
    if response.status().is_client_error() && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        response = with_json_error(response, &method, protocol == "mlflow");
    }
    let elapsed = start.elapsed();
    let status = response.status();
    let model = response.extensions_mut().remove::<Arc<ModelMetrics>>();
    // An internal failure is logged here, where the request's id is known, and its answer
    // names that id so that the one can be found from the other.
    if let Some(failure) = response.extensions_mut().remove::<Failure>() {
        tracing::error!(request_id = %id, error = %failure.detail, "internal error");
        response = failure.answer(&id);
    }
    let (name, version) = model
        .as_ref()
        .map_or(("", ""), |m| (&*m.labels.model, &*m.labels.version));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    tracing::info!(
        request_id = %id,
        %method,
        path = %path,
        status = status.as_u16(),
        model = %name,
        version = %version,
        micros = elapsed.as_micros() as u64,
        "request"
    );
    match &model {
        Some(model) => model.request_done(protocol, status.as_u16(), elapsed),
        None => state
            .metrics()
            .request_done(protocol, status.as_u16(), elapsed),
    }
    response
}

/// A request body read whole, counted against the server's body memory for as long as its
/// bytes are held: [`decode_body`] takes it, and it is given back once decoded (or when the
/// request ends first).
pub(super) struct ReadBody {
    bytes: Bytes,
    state: AppState,
    held: usize,
}

impl Drop for ReadBody {
    fn drop(&mut self) {
        self.state.release_body(self.held);
    }
}

/// The model a request's path names, the way the routes read it, for a request whose handler
/// did not finish.
fn model_of_path(state: &AppState, path: &str) -> Option<Arc<Served>> {
    let registry = state.registry();
    if path == "/invocations" || path == "/predict" {
        return registry.only().ok();
    }
    let rest = ["/v2/models/", "/v1/models/", "/models/"]
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))?;
    // V1 puts its verb after a colon: `/v1/models/iris:predict`.
    let mut parts = rest.split(['/', ':']);
    let name = parts.next()?;
    let version = match (parts.next(), parts.next()) {
        (Some("versions"), Some(v)) => Some(v),
        _ => None,
    };
    registry.get(name, version).ok()
}

/// `response`, an error without a body, with a JSON body saying what it means (its headers,
/// such as 405's `allow`, kept).
fn with_json_error(response: Response, method: &axum::http::Method, mlflow: bool) -> Response {
    let status = response.status();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "this endpoint does not take {method}; the `allow` header says what it takes, and \
             GET /openapi.json lists every endpoint"
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "the body's content encoding is not one this \
             server decodes: send it as it is, or in gzip or deflate"
            .to_owned(),
        other => other
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_owned(),
    };
    let mut error = ApiError::bad_request(message);
    error.status = status;
    if mlflow {
        error = error.mlflow();
    }
    let (mut parts, _) = response.into_parts();
    let (json, body) = error.into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.extend(json.headers);
    Response::from_parts(parts, body)
}

/// Reads a request body, at most the configured size after decoding, counting each piece as
/// it arrives against the memory all bodies may hold together: past that, 503 at once, before
/// the rest is read.
async fn read_body(state: &AppState, body: Body, flavor: Flavor) -> Result<ReadBody, ApiError> {
    let limit = state.config().max_body_bytes;
    let with_flavor = |e: ApiError| match flavor {
        Flavor::Mlflow => e.mlflow(),
        Flavor::Plain => e,
    };
    let mut read = ReadBody {
        bytes: Bytes::new(),
        state: state.clone(),
        held: 0,
    };
    // A body the shared limit could never hold, even alone, is too large for this server, not
    // a reason to come back later.
    let memory = state.config().max_body_memory;
    let mut body = Limited::new(body, limit);
    // Most bodies come in one piece, kept as it is; more pieces are joined at the end.
    let mut first: Option<Bytes> = None;
    let mut more: Vec<Bytes> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                return Err(with_flavor(ApiError::too_large(limit)));
            }
            Err(err) => {
                return Err(with_flavor(ApiError::bad_request(format!(
                    "could not read the request body: {}",
                    body_error(&*err)
                ))));
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if read.held.saturating_add(data.len()) > memory {
            return Err(with_flavor(ApiError::too_large(memory.min(limit))));
        }
        if !state.hold_body(data.len()) {
            return Err(with_flavor(ApiError::unavailable(
                "the server holds as many request bodies as it may at once; retry later",
            )));
        }
        read.held += data.len();
        match first {
            None => first = Some(data),
            Some(_) => more.push(data),
        }
    }
    read.bytes = match first {
        None => Bytes::new(),
        Some(first) if more.is_empty() => first,
        Some(first) => {
            let mut all = Vec::with_capacity(read.held);
            all.extend_from_slice(&first);
            for piece in more {
                all.extend_from_slice(&piece);
            }
            all.into()
        }
    };
    Ok(read)
}

/// Bodies from this size on are decoded on a blocking thread: parsing a few hundred KiB of
/// JSON takes about a millisecond, in which an async worker would answer nobody else (an 8 MiB
/// body, tens of milliseconds). Smaller ones are decoded where they are, as the hop to another
/// thread and back would cost more than it saves.
const DECODE_INLINE_BELOW: usize = 256 * 1024;

/// Decodes a request body with `decode`, against the signature of `served`: inline for a
/// small body, on a blocking thread for a large one. The body goes with the work, so that its
/// share of the memory limit is held until the decoding ends, even if the request is dropped
/// (timed out, client gone) meanwhile.
async fn decode_body<T: Send + 'static>(
    served: &Arc<Served>,
    read: ReadBody,
    decode: impl FnOnce(&tiffin_core::manifest::Signature, &[u8]) -> Result<T, ApiError>
    + Send
    + 'static,
) -> Result<T, ApiError> {
    let large = read.bytes.len() >= DECODE_INLINE_BELOW;
    off_workers_if(large, served, read, |served, read| {
        decode(served.signature(), &read.bytes)
    })
    .await
}

/// Answers of this many output values and more are encoded on a blocking thread, as large
/// bodies are decoded there: writing a few MB of JSON (a batch of 4096 rows of embeddings, say)
/// takes milliseconds in which an async worker would answer nobody else.
const ENCODE_INLINE_BELOW: usize = 64 * 1024;

/// Encodes the answer to `outputs` of `served` with `encode`: inline when small, on a blocking
/// thread when large.
async fn encode_answer(
    served: &Arc<Served>,
    outputs: Vec<tiffin_core::runtime::Tensor>,
    encode: impl FnOnce(&Served, &[tiffin_core::runtime::Tensor]) -> Result<Response, ApiError>
    + Send
    + 'static,
) -> Result<Response, ApiError> {
    let large = outputs.iter().map(|t| t.data().len()).sum::<usize>() >= ENCODE_INLINE_BELOW;
    off_workers_if(large, served, outputs, |served, outputs| {
        encode(served, &outputs)
    })
    .await
}

/// Runs `work` over `served` and `input` here, or, when `large`, on a blocking thread, so that
/// it does not hold an async worker for milliseconds.
async fn off_workers_if<I: Send + 'static, T: Send + 'static>(
    large: bool,
    served: &Arc<Served>,
    input: I,
    work: impl FnOnce(&Served, I) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if !large {
        return work(served, input);
    }
    let served = served.clone();
    tokio::task::spawn_blocking(move || work(&served, input))
        .await
        .map_err(|e| ApiError::internal(&format_args!("work on a blocking thread stopped: {e}")))?
}

/// Why a body could not be read, in words that name no internals.
fn body_error(err: &(dyn std::error::Error + 'static)) -> String {
    let text = err.to_string();
    if text.contains("deflate") || text.contains("gzip") || text.contains("invalid") {
        "its content encoding does not decode".into()
    } else {
        "the connection ended before the body was complete".into()
    }
}

/// A JSON body that is not valid, described by category and place, never by its content.
fn json_error(err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let what = match err.classify() {
        Category::Io | Category::Eof => "it ends too early",
        Category::Syntax => "it is not valid JSON",
        Category::Data => "a field has the wrong type or is missing",
    };
    ApiError::bad_request(format!(
        "the request body could not be read: {what} (line {}, column {})",
        err.line(),
        err.column()
    ))
}

/// The model a path names (`{m}`, and `{v}` when the route has it), resolved in the registry
/// as the request arrives: an extractor, so that an unknown model or version is a 404 before the
/// handler runs.
pub(super) struct Named {
    served: Arc<Served>,
    /// Whether the path named a version.
    versioned: bool,
}

impl FromRequestParts<AppState> for Named {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Named, ApiError> {
        // The raw captures (percent-decoded, shared with the router's copy): `Path` into a map
        // would allocate a map and two strings on every request.
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("the path names no model"))?;
        let param = |key: &str| params.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        let name = param("m").unwrap_or_default();
        let version = param("v");
        Ok(Named {
            served: state.registry().get(name, version)?,
            versioned: version.is_some(),
        })
    }
}

/// An answer (or error) tagged with the model that gave it, for metrics and logs.
fn tagged(served: &Served, result: Result<Response, ApiError>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(served.metrics.clone());
    response
}

/// `GET /`: liveness for API clients and probes; the web page for a browser, when it is on.
async fn root(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if state.config().ui && crate::ui::wants_html(&headers) {
        return crate::ui::page().await;
    }
    axum::Json(json!({ "status": "alive" })).into_response()
}

/// `GET /health`: 200 once every model is loaded and its golden examples passed, 503 before.
async fn health(State(state): State<AppState>) -> Response {
    let registry = state.registry();
    let body = json!({
        "status": if state.is_ready() { "ok" } else { "loading" },
        "models": registry.iter().map(|s| json!({"name": s.name(), "version": s.version().to_string()})).collect::<Vec<_>>(),
    });
    let status = if state.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    // Plan caches live in the runtime; their series are brought up to date when read.
    for served in state.registry().iter() {
        let model = &served.loaded.model;
        if let Some(stats) = model.plan_stats() {
            state.metrics().plans(
                &served.metrics.labels,
                stats.kept,
                &model.take_plan_builds(),
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

/// `POST /admin/reload`: loads the packages again from the same paths (SIGHUP does the same).
async fn reload(State(state): State<AppState>) -> Response {
    // On its own task: a client that hangs up must not cancel a reload halfway, after the
    // packages were loaded but before the new set was swapped in.
    // A reload asked for while one runs is refused rather than queued, so that repeated
    // requests cannot pile up whole loads behind each other.
    let loading = state.clone();
    let outcome = tokio::spawn(async move { loading.try_load().await }).await;
    let outcome = match outcome {
        Ok(Some(outcome)) => outcome,
        Ok(None) => {
            return ApiError::unavailable("a reload is running; ask again once it has ended")
                .into_response();
        }
        Err(err) => {
            return ApiError::internal(&format_args!("the reload stopped: {err}")).into_response();
        }
    };
    match outcome {
        Ok(report) => axum::Json(json!({
            "loaded": report.loaded.iter().map(|(n, v, t)| json!({"name": n, "version": v, "ms": t.as_secs_f64() * 1e3})).collect::<Vec<_>>(),
            "kept": report.kept.iter().map(|(n, v)| json!({"name": n, "version": v})).collect::<Vec<_>>(),
            "removed": report.removed.iter().map(|(n, v)| json!({"name": n, "version": v})).collect::<Vec<_>>(),
            "failed": report.failed.iter().map(|f| failure_json(f, state.paths())).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(failures) => {
            for f in &failures {
                tracing::warn!(failure = %f, "reload refused");
            }
            (
                StatusCode::CONFLICT,
                axum::Json(json!({
                    "error": "the reload failed; the models served before it are still served",
                    "failed": failures.iter().map(|f| failure_json(f, state.paths())).collect::<Vec<_>>(),
                })),
            )
                .into_response()
        }
    }
}

/// A load failure for an HTTP answer: the package's file name, and a reason in which the
/// server's paths (the failing package's, and those the server was given, under which another
/// package a reason names may sit) are cut down to what lies below them.
fn failure_json(
    f: &crate::registry::LoadFailure,
    roots: &[std::path::PathBuf],
) -> serde_json::Value {
    let mut reason = f.reason.clone();
    let candidates = [
        f.path.clone(),
        f.path.parent().map(Into::into).unwrap_or_default(),
    ];
    for path in candidates.iter().chain(roots) {
        // A path without a last name (`.`, `/`, `models/..`) is skipped: replacing its text
        // would cut dots or slashes out of the reason's words.
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let display = path.display().to_string();
        let full = display.trim_end_matches('/');
        reason = reason.replace(&format!("{full}/"), "").replace(full, &name);
    }
    let reason = reason.trim_start_matches([':', ' ']).to_owned();
    json!({
        "package": f.path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "reason": reason,
    })
}

async fn not_found() -> Response {
    ApiError::not_found("no such endpoint; GET /openapi.json lists them").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn boom() -> &'static str {
        panic!("boom at /secret/path")
    }

    /// A handler that panics is answered: a JSON 500 naming the request id and nothing of the
    /// panic, from the request middleware (none of the real handlers is known to panic).
    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_with_the_request_id() {
        use tower::ServiceExt;
        let state = AppState::new(crate::Config::default(), Vec::new());
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(middleware::from_fn_with_state(state.clone(), track))
            .with_state(state);
        let request = Request::get("/boom")
            .header(REQUEST_ID, "p-1")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[REQUEST_ID], "p-1");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("request id p-1"), "{text}");
        assert!(!text.contains("secret") && !text.contains("boom"), "{text}");
    }

    #[test]
    fn paths_map_to_protocols() {
        assert_eq!(protocol_of("/v2/models/iris/infer"), "v2");
        assert_eq!(protocol_of("/v1/models/iris:predict"), "v1");
        assert_eq!(protocol_of("/invocations"), "mlflow");
        assert_eq!(protocol_of("/models/iris/predict"), "simple");
        assert_eq!(protocol_of("/metrics"), "other");
        // Every protocol a path maps to has its metric handles kept per model.
        for path in ["/v2/x", "/v1/x", "/invocations", "/predict", "/metrics"] {
            assert!(
                crate::metrics::PROTOCOLS.contains(&protocol_of(path)),
                "{path}"
            );
        }
    }
}
