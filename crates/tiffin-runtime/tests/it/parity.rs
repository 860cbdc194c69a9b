//! Every fixture, loaded through `Model`, matches onnxruntime's reference at batch 1, 7 and 64
//! (or the rows the reference has) with one model instance: floats within 1e-5, labels exactly.

use crate::common::*;

fn matches_onnxruntime(name: &str) {
    let model = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let r = reference(name);
    let inputs = reference_inputs(&model, &r);
    for batch in batches(name, &r) {
        let outputs = model
            .run(&rows(&inputs, batch))
            .unwrap_or_else(|e| panic!("{name} at {batch:?}: {e}"));
        assert_eq!(outputs.len(), model.signature().outputs.len());
        for (got, spec) in outputs.iter().zip(&model.signature().outputs) {
            let want = &r.outputs[&spec.name];
            let want = batch.map_or_else(|| want.clone(), |n| head_rows(want, n));
            let what = format!("{name} {} at batch {batch:?}", spec.name);
            let drift = max_abs_diff(&what, got, &want);
            assert!(drift <= 1e-5, "{what}: differs from onnxruntime by {drift}");
        }
    }
}

macro_rules! parity {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { matches_onnxruntime(stringify!($name)); })*
        /// The list above covers every fixture, so a new one is not silently left out.
        #[test]
        fn every_fixture_has_a_parity_test() {
            assert_eq!(fixtures(), vec![$(stringify!($name).to_owned()),*]);
        }
    };
}

parity!(
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
