//! Serving with ONNX Runtime (`Config::runtime`, the `ort` feature): the same answers as tract
//! on every protocol path tested here, batched or not, and the golden examples checked at load.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tiffin_core::runtime::Runtime;
use tiffin_server::Config;

use crate::common::{assert_numbers_close, loaded, post};

fn ort() -> Runtime {
    let library = std::env::var_os("TIFFIN_ORT_LIB")
        .expect("TIFFIN_ORT_LIB names no library: the `ort` tests need libonnxruntime.so");
    Runtime::Ort {
        library: library.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onnx_runtime_serves_what_tract_serves() {
    let ort_config = || Config {
        runtime: ort(),
        ..Config::default()
    };
    let tract = loaded(&["iris", "mnist_cnn"], Config::default()).await;
    let served = loaded(&["iris", "mnist_cnn"], ort_config()).await;
    let iris = json!({"X": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]});
    let v2 = json!({"inputs": [{"name": "X", "datatype": "FP32", "shape": [2, 4],
        "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]});
    for (uri, body) in [
        ("/models/iris/predict", &iris),
        ("/v2/models/iris/infer", &v2),
    ] {
        let (a, b) = (
            post(&served, uri, body).await,
            post(&tract, uri, body).await,
        );
        assert_eq!(a.status, StatusCode::OK, "{}", a.message());
        // String labels equal, probabilities within a few ulps.
        let (a, b) = (a.json(), b.json());
        assert_eq!(a.get("label"), b.get("label"));
        assert_numbers_close(&a, &b);
    }

    // Batched through ONNX Runtime: each caller gets its own rows.
    let batched = loaded(
        &["mnist_cnn"],
        Config {
            force_batch_size: Some(8),
            batch_probe: false,
            force_delay: Some(Duration::from_millis(20)),
            ..ort_config()
        },
    )
    .await;
    let reference = crate::common::reference("mnist_cnn");
    let images = reference["inputs"]["image"].clone();
    let image = |i: usize| -> Value {
        let t: tiffin_core::runtime::Tensor = serde_json::from_value(images.clone()).unwrap();
        let tiffin_core::runtime::TensorData::F32(v) = t.data() else {
            panic!("f32 images")
        };
        let img = &v[i * 784..(i + 1) * 784];
        json!({"image": [[img.chunks(28).map(<[f32]>::to_vec).collect::<Vec<_>>()]]})
    };
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let state = batched.clone();
            let body = image(i);
            tokio::spawn(async move { post(&state, "/models/mnist_cnn/predict", &body).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let got = task.await.unwrap();
        assert_eq!(got.status, StatusCode::OK, "{}", got.message());
        let want = post(&tract, "/models/mnist_cnn/predict", &image(i)).await;
        assert_numbers_close(&got.json(), &want.json());
    }
}
