//! Every fixture, loaded through `Model`, matches onnxruntime's reference at batch 1, 7 and 64
//! (or the rows the reference has) with one model instance: floats within [`ORT`] (1e-5 plus
//! 1e-5 of the value, so that the check holds whichever kernels tract picks for the CPU), labels
//! exactly. Built with the `ort` feature, every fixture is also run through ONNX Runtime
//! (`Runtime::Ort`) and must match the same reference and tract's outputs.

use tiffin_runtime::{Model, Tensor, TensorData};

use crate::common::*;

fn matches_onnxruntime(name: &str) {
    let model = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    matches_reference(name, &model);
}

fn matches_reference(name: &str, model: &Model) {
    let r = reference(name);
    let inputs = reference_inputs(model, &r);
    for batch in batches(name, &r) {
        let outputs = model
            .run(&rows(&inputs, batch))
            .unwrap_or_else(|e| panic!("{name} at {batch:?}: {e}"));
        assert_eq!(outputs.len(), model.signature().outputs.len());
        for (got, spec) in outputs.iter().zip(&model.signature().outputs) {
            let want = &r.outputs[&spec.name];
            let want = batch.map_or_else(|| want.clone(), |n| head_rows(want, n));
            let what = format!("{name} {} at batch {batch:?}", spec.name);
            assert_close(&what, got, &want, &ORT);
        }
    }
}

/// The tolerance still catches a real error: each float output of the neural-net fixtures, with
/// one value (the largest in magnitude) moved by 1e-3 of itself, no longer matches.
#[test]
fn a_wrong_value_fails() {
    for name in ["mnist_cnn", "silero_vad", "breast_cancer_mlp"] {
        let model = load(name).unwrap();
        let r = reference(name);
        let outputs = model.run(&reference_inputs(&model, &r)).unwrap();
        for (got, spec) in outputs.iter().zip(&model.signature().outputs) {
            let want = &r.outputs[&spec.name];
            let TensorData::F32(values) = want.data() else {
                continue;
            };
            assert_close(&spec.name, got, want, &ORT);
            let mut wrong = values.clone();
            let largest = (0..wrong.len())
                .max_by(|&a, &b| wrong[a].abs().total_cmp(&wrong[b].abs()))
                .unwrap();
            wrong[largest] *= 1.0 + 1e-3;
            let wrong = Tensor::new(want.shape().to_vec(), TensorData::F32(wrong)).unwrap();
            assert!(
                disagreement(got, &wrong, &ORT).is_some(),
                "{name} {}: a value 1e-3 off passed",
                spec.name
            );
        }
    }
}

/// A fixture through ONNX Runtime: the reference's outputs within [`ORT`] (the same library
/// version may still pick other kernels than the Python build that wrote them), and tract's
/// outputs for the same inputs within the same bound.
#[cfg(feature = "ort")]
fn through_both_runtimes(name: &str) {
    let options = tiffin_runtime::LoadOptions::default().with_runtime(ort_runtime());
    let ort = Model::load(
        &source(name),
        tiffin_manifest::ModelFormat::Onnx,
        &signature(name),
        &options,
    )
    .unwrap_or_else(|e| panic!("{name} through ONNX Runtime: {e}"));
    assert_eq!(ort.runtime(), "ort");
    matches_reference(name, &ort);
    let tract = load(name).unwrap();
    let r = reference(name);
    let inputs = reference_inputs(&tract, &r);
    let (a, b) = (ort.run(&inputs).unwrap(), tract.run(&inputs).unwrap());
    for ((a, b), spec) in a.iter().zip(&b).zip(&tract.signature().outputs) {
        assert_close(
            &format!("{name} {}: ort against tract", spec.name),
            a,
            b,
            &ORT,
        );
    }
}

macro_rules! parity {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { matches_onnxruntime(stringify!($name)); })*
        /// Every fixture through ONNX Runtime as well.
        #[cfg(feature = "ort")]
        mod ort {
            $(#[test] fn $name() { super::through_both_runtimes(stringify!($name)); })*
        }
        /// The list above covers every fixture, so a new one is not silently left out.
        #[test]
        fn every_fixture_has_a_parity_test() {
            assert_eq!(fixtures(), vec![$(stringify!($name).to_owned()),*]);
        }
    };
}

parity!(
    bert_tiny,
    breast_cancer,
    breast_cancer_gbt,
    breast_cancer_mlp,
    breast_cancer_rf,
    breast_cancer_scaled,
    churn_model,
    diabetes_tree_reg,
    forest300,
    iris,
    iris_gbt,
    iris_rf,
    mnist_cnn,
    silero_vad,
    text_direction,
);
