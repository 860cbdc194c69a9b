//! The web page: the served models for a person with a browser, a page per model (its card,
//! contract, metadata, golden examples, ready-to-copy requests and a try-it form) and live
//! figures read from the server's own `/metrics`.
//!
//! The page is three embedded files (HTML shell, script, style sheet; no front-end build, no
//! CDN) and two JSON endpoints under `/ui/api/`. Everything from a package is untrusted: the
//! script writes package text with `textContent` only, the model card is rendered from markdown
//! and sanitized with ammonia before it is sent, and every answer under `/ui` carries a
//! Content-Security-Policy that allows this server's own script and style and nothing else (no
//! inline script, no other origin). API clients are unaffected: `/` answers them as before, and
//! a browser gets the page there only when it asks for HTML.

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tiffin_core::manifest::FileRole;

use crate::error::ApiError;
use crate::registry::{Served, batch_dim};
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// Only this server's own script, style sheet and API; no inline script, no frame, no form
/// posting elsewhere. Images may be data: URLs (none are fetched, a card's remote images
/// included).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The largest model card rendered, and the largest example input file offered to the try-it
/// form: the page is for people, and a package's files can be large.
const MAX_CARD_BYTES: u64 = 1024 * 1024;
const MAX_EXAMPLE_BYTES: u64 = 1024 * 1024;

/// The page's routes, when the server's `ui` setting is on.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/models/{m}/{v}", get(page))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(style))
        .route("/ui/api/models", get(models))
        .route("/ui/api/models/{m}/{v}", get(model))
}

/// Whether a request to `/` comes from a browser: it lists `text/html` among what it accepts.
/// curl (`*/*`), the V2 clients and health probes do not, and keep the JSON answer.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let kind = parts.next().unwrap_or_default();
            // `text/html;q=0` is a refusal, not a wish.
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            kind.eq_ignore_ascii_case("text/html") && !refused
        })
}

/// The HTML shell; the script fills it from the JSON endpoints.
pub(crate) async fn page() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

async fn script() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets are part of the binary: a new binary may change them, so they are revalidated
    // rather than cached for long.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(response)
}

/// Adds the headers every answer of the page carries.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// What the list shows of one model version.
fn summary(served: &Served) -> Value {
    let manifest = &served.loaded.manifest;
    json!({
        "name": manifest.name,
        "version": manifest.version.to_string(),
        "description": manifest.description,
        "framework": manifest.framework,
        "format": manifest.model.format,
        "digest": served.loaded.digest,
        "loaded_at": unix_seconds(served.loaded_at),
        "load_seconds": served.load_time.as_secs_f64(),
        "signature": served.signature,
        "examples_passed": served.drifts.as_ref().map(|d| d.iter().all(|d| d.passed())),
    })
}

/// `GET /ui/api/models`: the server's state and every model version served.
async fn models(State(state): State<AppState>) -> Response {
    let registry = state.registry();
    secure(
        axum::Json(json!({
            "ready": state.is_ready(),
            "server": { "name": "tiffin", "version": env!("CARGO_PKG_VERSION") },
            "models": registry.iter().map(|s| summary(s)).collect::<Vec<_>>(),
        }))
        .into_response(),
    )
}

/// `GET /ui/api/models/{m}/{v}`: everything the model page shows.
async fn model(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let served = match state.registry().get(&name, Some(&version)) {
        Ok(served) => served,
        Err(error) => return secure(error.into_response()),
    };
    // Reading and rendering the card and examples touches the disk: off the async workers.
    let detail = tokio::task::spawn_blocking(move || detail(&served)).await;
    let response = match detail {
        Ok(value) => axum::Json(value).into_response(),
        Err(error) => ApiError::internal(&error).into_response(),
    };
    secure(response)
}

fn detail(served: &Served) -> Value {
    let manifest = &served.loaded.manifest;
    let mut value = summary(served);
    let object = value.as_object_mut().expect("a summary is an object");
    object.insert(
        "manifest".into(),
        serde_json::to_value(manifest).unwrap_or(Value::Null),
    );
    object.insert(
        "batch_dim".into(),
        json!(batch_dim(&manifest.signature).filter(|_| served.has_batch_dim)),
    );
    object.insert("max_batch_size".into(), json!(served.max_batch_size()));
    object.insert(
        "drifts".into(),
        served.drifts.as_ref().map_or(Value::Null, |drifts| {
            Value::Array(
                drifts
                    .iter()
                    .map(|d| {
                        json!({
                            "output": d.output,
                            "tolerance": d.tolerance,
                            "max_abs": finite(d.max_abs),
                            "max_rel": finite(d.max_rel),
                            "mismatches": d.mismatches,
                            "compared": d.compared,
                            "passed": d.passed(),
                        })
                    })
                    .collect(),
            )
        }),
    );
    let card = manifest
        .files
        .iter()
        .find(|f| f.role == FileRole::ModelCard);
    let (card_html, card_note) = match card {
        None => (Value::Null, Value::Null),
        Some(file) if file.size > MAX_CARD_BYTES => (
            Value::Null,
            json!(format!(
                "The model card `{}` is {} bytes, more than this page renders (the bound \
                 MAX_CARD_BYTES, {MAX_CARD_BYTES} bytes).",
                file.path, file.size
            )),
        ),
        Some(file) => match tiffin_core::read_file(&served.loaded.path, &file.path) {
            Ok(bytes) => (
                json!(render_card(&String::from_utf8_lossy(&bytes))),
                Value::Null,
            ),
            Err(error) => {
                tracing::warn!(model = %manifest.name, error = %error, "reading the model card");
                (
                    Value::Null,
                    json!("The model card could not be read; the server's log says why."),
                )
            }
        },
    };
    object.insert("card_html".into(), card_html);
    object.insert("card_note".into(), card_note);
    let (example, example_note) = example_inputs(served);
    object.insert("example".into(), example);
    object.insert("example_note".into(), example_note);
    value
}

/// JSON has no NaN or infinity; a drift that is one is shown as its name.
fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        json!(x.to_string())
    }
}

/// The golden example inputs, `{NAME: {dtype, shape, data}}`, for the try-it form, and a note
/// when there are some the page does not offer; `null` when the package has none or they are
/// larger than the page offers.
fn example_inputs(served: &Served) -> (Value, Value) {
    let manifest = &served.loaded.manifest;
    let Some(examples) = &manifest.examples else {
        return (Value::Null, Value::Null);
    };
    let Some(file) = manifest.files.iter().find(|f| f.path == examples.inputs) else {
        return (Value::Null, Value::Null);
    };
    if file.size > MAX_EXAMPLE_BYTES {
        return (
            Value::Null,
            json!(format!(
                "The golden example inputs `{}` are {} bytes, more than this page offers (the \
                 bound MAX_EXAMPLE_BYTES, {MAX_EXAMPLE_BYTES} bytes): the form starts from zeros.",
                file.path, file.size
            )),
        );
    }
    match tiffin_core::read_file(&served.loaded.path, &examples.inputs)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    {
        Some(value @ Value::Object(_)) => (value, Value::Null),
        _ => (Value::Null, Value::Null),
    }
}

/// The model card as HTML safe to put in the page: markdown rendered (tables, strikethrough,
/// task lists as GitHub writes them; a leading YAML block skipped), then sanitized by ammonia, which keeps formatting and
/// links with safe schemes and drops scripts, styles, event attributes, `javascript:` URLs and
/// anything else that could run or reach out.
pub(crate) fn render_card(markdown: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    // A Hugging Face style card opens with a YAML block of metadata; it is skipped, not shown
    // as text (the page shows the manifest's own metadata).
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(&unsafe_html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_keeps_its_formatting() {
        let html = render_card(
            "# Churn\n\nPredicts **churn**. See [the paper](https://example.org/p).\n\n\
             | a | b |\n|---|---|\n| 1 | 2 |\n",
        );
        assert!(html.contains("<h1>Churn</h1>"), "{html}");
        assert!(html.contains("<strong>churn</strong>"), "{html}");
        assert!(html.contains("href=\"https://example.org/p\""), "{html}");
        assert!(html.contains("<table>"), "{html}");
    }

    #[test]
    fn a_card_runs_nothing() {
        let html = render_card(
            "Hello <script>window.pwned = 1</script>\n\n\
             <img src=x onerror=\"window.pwned = 2\">\n\n\
             [click](javascript:window.pwned=3) <a href=\"JaVaScRiPt:alert(1)\">x</a>\n\n\
             <iframe src=\"https://example.org\"></iframe><style>body{display:none}</style>\n\n\
             <div onclick=\"alert(1)\" style=\"background:url(javascript:alert(1))\">d</div>\n\n\
             <form action=\"https://example.org\"><input name=q></form>\n",
        );
        let lower = html.to_lowercase();
        for bad in [
            "<script",
            "onerror",
            "onclick",
            "javascript:",
            "<iframe",
            "<style",
            "style=",
            "<form",
            "<input",
        ] {
            assert!(!lower.contains(bad), "`{bad}` survived: {html}");
        }
        assert!(html.contains("Hello"), "{html}");
    }

    #[test]
    fn only_a_browser_asking_for_html_gets_the_page() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            wants_html(&headers)
        };
        assert!(with(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(with("TEXT/HTML"));
        assert!(!with("*/*"));
        assert!(!with("application/json"));
        assert!(!with("text/html;q=0, application/json"));
        assert!(!wants_html(&HeaderMap::new()));
    }
}
