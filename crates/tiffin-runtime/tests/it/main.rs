//! Integration tests of tiffin-runtime on the committed fixtures: parity with onnxruntime,
//! input checks, signature checks, NNEF round trips and concurrent runs.

mod common;
mod concurrency;
mod inputs;
mod nnef;
mod parity;
mod signature;
