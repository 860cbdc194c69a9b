//! The ai.onnx.ml preprocessing and linear operators of scikit-learn exports that tract 0.23
//! lacks or computes differently from onnxruntime: `Scaler`, `ZipMap`, `LinearClassifier`
//! (string labels, every post transform, onnxruntime's binary case), `Normalizer`, `Imputer`,
//! `OneHotEncoder`, `Binarizer`, `ArrayFeatureExtractor` and `LabelEncoder`. Each matches
//! onnxruntime 1.32, checked against the operator fixtures in `fixtures/ops/`.
//!
//! `CastMap` is not provided: its input is a map (int64 to string or float), and tiffin's model
//! inputs are tensors, so no tiffin model can feed it; no operator here produces a map either.

use tract_onnx::model::OnnxOpRegister;

mod array_feature_extractor;
mod binarizer;
mod common;
mod imputer;
mod label_encoder;
mod linear_classifier;
mod nnef;
mod normalizer;
mod one_hot_encoder;
mod scaler;
mod transform;
mod zipmap;

#[cfg(test)]
mod tests;

/// The NNEF registry (`tiffin_onnx_ml`) of the operators above that tiffin computes itself: tract's
/// NNEF framework needs it to write models that use them (`tiffin convert`) and to read them back.
pub(crate) fn nnef_registry() -> tract_nnef::internal::Registry {
    nnef::registry()
}

/// Adds these operators to tract-onnx's table, replacing tract's own `LinearClassifier`,
/// `Normalizer` and `ArrayFeatureExtractor`.
pub(crate) fn register(ops: &mut OnnxOpRegister) {
    ops.insert("ArrayFeatureExtractor", array_feature_extractor::build);
    ops.insert("Binarizer", binarizer::build);
    ops.insert("Imputer", imputer::build);
    ops.insert("LabelEncoder", label_encoder::build);
    ops.insert("LinearClassifier", linear_classifier::build);
    ops.insert("Normalizer", normalizer::build);
    ops.insert("OneHotEncoder", one_hot_encoder::build);
    ops.insert("Scaler", scaler::build);
    ops.insert("ZipMap", zipmap::build);
}
