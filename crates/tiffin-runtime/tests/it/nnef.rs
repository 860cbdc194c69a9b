//! ONNX to NNEF: the archive is deterministic, loads as a tar, a gzipped tar and a folder, and
//! answers like the ONNX model; models with operators NNEF cannot hold fail by name.

use std::io::Write as _;

use tiffin_manifest::ModelFormat;
use tiffin_runtime::{Error, LoadOptions, Model, ModelSource, graph_signature, to_nnef};

use crate::common::*;

/// The fixtures made of operators tract itself serializes: they must convert.
const MUST_CONVERT: [&str; 3] = ["mnist_cnn", "silero_vad", "text_direction"];

fn round_trip(name: &str) {
    let onnx = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let declared = signature(name);
    let tar = match to_nnef(&source(name), &declared) {
        Ok(tar) => tar,
        Err(Error::Nnef { reason }) if reason.contains("runs the model per shape") => {
            // A graph tract types only per shape has no one NNEF form.
            assert!(
                !onnx.per_shape_dims().is_empty(),
                "{name}: refused as typed per shape: {reason}"
            );
            return;
        }
        Err(Error::Nnef { reason }) if !MUST_CONVERT.contains(&name) => {
            // Operators without an NNEF form are refused by name.
            assert!(
                reason.starts_with("operator ")
                    && reason.contains(
                        " has no NNEF form in tract 0.23 or tiffin; keep this model as ONNX"
                    ),
                "{name}: unclear refusal: {reason}"
            );
            return;
        }
        Err(e) => panic!("{name}: {e}"),
    };
    assert!(
        tar == to_nnef(&source(name), &declared).unwrap(),
        "{name}: NNEF bytes differ between two conversions"
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(&tar[..]).unpack(dir.path()).unwrap();
    let mut sources = vec![ModelSource::Bytes(tar.clone())];
    // Gzipped and unpacked forms are read the same way for every model; one small one shows it.
    if name == "mnist_cnn" {
        sources.push(ModelSource::Bytes(gz.finish().unwrap()));
        sources.push(ModelSource::Dir(dir.path().to_owned()));
    }
    let r = reference(name);
    let inputs = reference_inputs(&onnx, &r);
    let batch = if name == "silero_vad" { None } else { Some(7) };
    let want = onnx.run(&rows(&inputs, batch)).unwrap();
    for source in &sources {
        let nnef = Model::load(
            source,
            ModelFormat::Nnef,
            &declared,
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name} from {source:?}: {e}"));
        let got = nnef.run(&rows(&inputs, batch)).unwrap();
        for ((g, w), spec) in got.iter().zip(&want).zip(&declared.outputs) {
            let what = format!("{name} {} (NNEF against ONNX)", spec.name);
            assert_close(&what, g, w, &SAME_MACHINE);
        }
    }
    let graph = graph_signature(&sources[0], ModelFormat::Nnef).unwrap();
    let names = |s: &tiffin_manifest::Signature| {
        (
            s.inputs.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            s.outputs.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(names(&graph), names(&declared), "{name}: NNEF tensor names");
}

macro_rules! round_trips {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { round_trip(stringify!($name)); })*
        #[test]
        fn every_fixture_has_a_round_trip_test() {
            assert_eq!(fixtures(), vec![$(stringify!($name).to_owned()),*]);
        }
    };
}

round_trips!(
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
