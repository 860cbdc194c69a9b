//! Runs the models of tiffin packages through tract: ONNX and NNEF adapters, and the ai.onnx.ml
//! operators (tree ensembles, scalers, encoders, ZipMap) that tract lacks or gets wrong.
//!
//! [`Model::load`] reads a model, checks it against the package signature and optimizes it once;
//! [`Model::run`] then serves every call, from any thread. [`graph_signature`] and
//! [`check_signature`] compare a signature with what the graph says; [`to_nnef`] converts ONNX
//! to NNEF.

#![deny(missing_docs)]

mod error;
mod graph;
mod model;
mod nnef;
mod onnx_ml;
mod onnx_weights;
#[cfg(feature = "ort")]
mod onnxruntime;
mod span;
mod tensor;
mod tract_io;

#[cfg(test)]
mod testutil;

pub use error::{Error, SignatureProblem, TensorKind};
pub use graph::{GraphOps, ModelSource, check_signature, graph_ops, graph_signature};
pub use model::{LoadOptions, Model, PlanStats, Runtime};
pub use nnef::to_nnef;
pub use tensor::{
    FlatJson, JsonInto, JsonValue, JsonValues, ShapeMismatch, Tensor, TensorData, ValueError, f16,
    flatten_json,
};
