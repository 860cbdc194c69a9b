//! tiffin's model server: verified packages served over the protocols real clients speak.
//!
//! One axum [`Router`](axum::Router) (see [`app`]) carries every protocol as a thin layer over
//! tiffin-core: the Open Inference Protocol (KServe/Triton V2, with the binary tensor
//! extension), MLflow's scoring protocol, TF-Serving/KServe V1 and the simple `{"X": [[...]]}`
//! form, plus health, Prometheus metrics and an OpenAPI document built from the loaded
//! signatures. Requests are checked against the package signature before they reach a model,
//! run on a bounded pool of blocking threads (or, for runs measured to take a few microseconds,
//! on the async worker that holds the request, still within the pool's bound), and merged into
//! batches per model when the signature allows it. [`serve`] runs the router on a socket with
//! header timeouts, reloads and a graceful shutdown.
//!
//! The router embeds in an application's own (`examples/embed.rs` is this as a program, run by
//! tiffin's CI):
//!
//! ```no_run
//! use axum::Router;
//! use axum::routing::get;
//! use tiffin_server::{AppState, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let state = AppState::new(Config::default(), vec!["churn-1.0.0.tiffin".into()]);
//! // Verified, loaded and checked against the golden examples, once.
//! state.load().await.map_err(|failures| format!("{failures:?}"))?;
//! let app = Router::new()
//!     .route("/hello", get(|| async { "hello" }))
//!     .merge(tiffin_server::app(state));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod batch;
mod config;
mod error;
mod metrics;
mod pool;
mod probe;
mod protocol;
mod registry;
mod serve;
mod state;
mod ui;

pub use config::Config;
pub use error::{ApiError, Flavor};
pub use probe::BatchProbe;
pub use protocol::app;
pub use registry::{Batching, LoadFailure, Registry, Served, SignatureStatus, discover};
pub use serve::{serve, signals};
pub use state::{AppState, ReloadReport};
