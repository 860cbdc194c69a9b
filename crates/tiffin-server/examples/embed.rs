//! Embeds tiffin's server in one's own axum application: `tiffin_server::app` is a `Router` like
//! any other, merged here beside a route of the application's own, so one process answers both.
//!
//! ```text
//! cargo run -p tiffin-server --example embed -- PKG                # two requests, in process
//! cargo run -p tiffin-server --example embed -- PKG 127.0.0.1:8080 # serve them on a socket
//! ```
//!
//! Without an address it answers `GET /hello` and `GET /v2/models/NAME` through the router
//! itself (no socket) and prints both, which is how CI runs it.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use http_body_util::BodyExt;
use tiffin_server::{AppState, Config};
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(package) = args.next() else {
        return Err("usage: embed PACKAGE [ADDRESS]".into());
    };
    let address = args.next();

    // The packages are verified, loaded and checked against their golden examples here, once.
    let state = AppState::new(Config::default(), vec![PathBuf::from(package)]);
    if let Err(failures) = state.load().await {
        let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
        return Err(format!("not serving: {}", reasons.join("; ")).into());
    }
    let models: Vec<String> = state
        .registry()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();

    // tiffin's routes (V2, MLflow, V1, /predict, health, metrics) beside the application's own.
    let app = Router::new()
        .route("/hello", get(|| async { "hello from the application\n" }))
        .merge(tiffin_server::app(state));

    if let Some(address) = address {
        let listener = tokio::net::TcpListener::bind(&address).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        return Ok(());
    }
    for uri in ["/hello".to_owned(), format!("/v2/models/{}", models[0])] {
        let request = Request::get(&uri).body(Body::empty())?;
        let response = app.clone().oneshot(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!(
            "GET {uri} -> {status}\n{}",
            String::from_utf8_lossy(&body).trim_end()
        );
        if !status.is_success() {
            return Err(format!("GET {uri} answered {status}").into());
        }
    }
    Ok(())
}
