//! One `Model` serves many threads at once, with the same answers as one thread.

use std::sync::Arc;

use tiffin_manifest::Tolerance;
use tiffin_runtime::{LoadOptions, Model, Tensor};

use crate::common::*;

pub(crate) fn concurrent_runs_match_sequential(
    name: &str,
    options: LoadOptions,
    tolerance: &Tolerance,
) {
    let sessions = options.sessions;
    let model = Arc::new(
        Model::load(
            &source(name),
            tiffin_manifest::ModelFormat::Onnx,
            &signature(name),
            &options,
        )
        .unwrap(),
    );
    // tract's runs go as wide as the callers; ONNX Runtime's one per session at a time.
    let parallel = (model.runtime() == "ort").then_some(sessions);
    assert_eq!(model.parallel_runs(), parallel);
    let r = reference(name);
    let inputs = reference_inputs(&model, &r);
    let calls: Vec<Vec<Tensor>> = [1, 7, 64, 3]
        .iter()
        .map(|&n| rows(&inputs, Some(n)))
        .collect();
    let sequential: Vec<Vec<Tensor>> = calls.iter().map(|c| model.run(c).unwrap()).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let model = Arc::clone(&model);
            let calls = calls.clone();
            std::thread::spawn(move || {
                // Each thread starts at a different call, so different sizes run at once.
                (0..12)
                    .map(|i| (t + i) % calls.len())
                    .map(|c| (c, model.run(&calls[c]).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        for (c, outputs) in thread.join().unwrap() {
            for (got, want) in outputs.iter().zip(&sequential[c]) {
                assert_close(&format!("{name} call {c}"), got, want, tolerance);
            }
        }
    }
}

/// Without the plan cache, every call runs the one general plan: answers are identical.
#[test]
fn threads_share_one_model() {
    concurrent_runs_match_sequential(
        "breast_cancer",
        LoadOptions::default().with_plan_cache(0),
        &Tolerance::exact(),
    );
    concurrent_runs_match_sequential(
        "mnist_cnn",
        LoadOptions::default().with_plan_cache(0),
        &Tolerance::exact(),
    );
}

/// With it, calls move to size-specific plans while others run: answers stay within float noise.
#[test]
fn threads_share_one_model_with_plan_cache() {
    concurrent_runs_match_sequential("mnist_cnn", LoadOptions::default(), &SAME_MACHINE);
}

/// A model whose matrix products are spread over a thread pool answers as the single-threaded
/// one does, for one caller and for several callers sharing that pool.
#[test]
fn multithreaded_products_give_the_single_threaded_answers() {
    let name = "mnist_cnn";
    let load = |options: &LoadOptions| {
        Model::load(
            &source(name),
            tiffin_manifest::ModelFormat::Onnx,
            &signature(name),
            options,
        )
        .unwrap()
    };
    let single = load(&LoadOptions::default().with_plan_cache(0));
    let threaded = load(&LoadOptions::default().with_plan_cache(0).with_threads(2));
    assert!(format!("{threaded:?}").contains("multithreaded: true"));
    let r = reference(name);
    let inputs = reference_inputs(&single, &r);
    let call = rows(&inputs, Some(64));
    for (got, want) in threaded
        .run(&call)
        .unwrap()
        .iter()
        .zip(single.run(&call).unwrap())
    {
        assert_close("multithreaded answer", got, &want, &SAME_MACHINE);
    }
    concurrent_runs_match_sequential(
        name,
        LoadOptions::default().with_plan_cache(0).with_threads(2),
        &SAME_MACHINE,
    );
}
