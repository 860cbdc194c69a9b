//! The ai.onnx.ml operators scikit-learn exports need and tract 0.23 lacks or gets wrong,
//! registered into tract-onnx's operator table from this crate (tract itself is not forked).

use tract_onnx::model::OnnxOpRegister;

mod preprocess;
mod tree;

/// The NNEF forms of tiffin's operators, so that models using them convert to NNEF and load back.
pub(crate) fn nnef_registry() -> tract_nnef::internal::Registry {
    preprocess::nnef_registry()
}

/// Adds (or replaces) tiffin's ai.onnx.ml operators in a tract-onnx operator table.
pub(crate) fn register(ops: &mut OnnxOpRegister) {
    tree::register(ops);
    preprocess::register(ops);
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;

    /// Models tract runs correctly on its own keep working with tiffin's operators registered.
    #[test]
    fn the_mlp_fixture_matches_onnxruntime() {
        let r = reference("breast_cancer_mlp");
        let outputs = run_fixture("breast_cancer_mlp", &[r.inputs["X"].clone()]);
        assert_close("label", &outputs[0], &r.outputs["label"], &ORT);
        assert_close(
            "probabilities",
            &outputs[1],
            &r.outputs["probabilities"],
            &ORT,
        );
    }
}
