//! Integration tests of tiffin-server: every protocol through the router with `oneshot`, the
//! limits, batching, reloads, and a real socket with a graceful shutdown.

mod batching;
mod common;
mod limits;
mod mangled;
mod mlflow;
#[cfg(feature = "ort")]
mod ort;
mod reload;
mod simple_v1;
mod socket;
mod ui;
mod v2;
