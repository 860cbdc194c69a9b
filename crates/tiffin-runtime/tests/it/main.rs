//! Integration tests of tiffin-runtime on the committed fixtures: parity with onnxruntime,
//! input checks, signature checks, NNEF round trips and concurrent runs; with the `ort` feature, the same
//! through ONNX Runtime.

mod common;
mod concurrency;
mod inputs;
mod nnef;
#[cfg(feature = "ort")]
mod ort;
mod parity;
mod per_shape;
mod signature;
mod span;
