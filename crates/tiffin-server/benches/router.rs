//! Criterion benchmark of one request through the whole router (middleware, protocol, model
//! run and answer) with `oneshot`, no socket: the server's own CPU per request, per protocol,
//! beside `GET /v2/health/live`. Steadier than a load generator on a shared machine, so it
//! shows changes of a few percent that `cargo xtask bench server` cannot.
//! `cargo bench -p tiffin-server --bench router`.

use std::hint::black_box;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tiffin_server::{AppState, Config, app};
use tower::ServiceExt;

/// The first row of breast_cancer's reference inputs, as the load benchmark sends it.
const ROW: &str = "[10.03, 21.28, 63.19, 307.3, 0.08117, 0.03912, 0.00247, 0.005159, 0.163, \
    0.06439, 0.1851, 1.341, 1.184, 11.6, 0.005724, 0.005697, 0.002074, 0.003527, 0.01445, \
    0.002411, 11.11, 28.94, 69.92, 376.3, 0.1126, 0.07094, 0.01235, 0.02579, 0.2349, 0.08061]";

fn router(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let packed = tiffin_core::pack(
        &tiffin_core::PackOptions {
            source: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/breast_cancer"),
            out: Some(dir.path().to_owned()),
            force: false,
            examples: None,
            runtime: Default::default(),
        },
        &tiffin_core::hash::NoProgress,
    )
    .expect("the fixture packs");
    let state = AppState::new(Config::default(), vec![packed.archive]);
    runtime.block_on(state.load()).expect("the fixture loads");
    let router = app(state);
    let requests: [(&str, &str, Option<String>); 4] = [
        ("health", "/v2/health/live", None),
        (
            "v2",
            "/v2/models/breast_cancer/infer",
            Some(format!(
                r#"{{"inputs": [{{"name": "X", "shape": [1, 30], "datatype": "FP32", "data": {ROW}}}]}}"#
            )),
        ),
        (
            "invocations",
            "/invocations",
            Some(format!(r#"{{"inputs": [{ROW}]}}"#)),
        ),
        ("predict", "/predict", Some(format!(r#"{{"X": [{ROW}]}}"#))),
    ];
    let mut group = c.benchmark_group("router");
    for (name, uri, body) in requests {
        let request = || {
            let builder = Request::builder().uri(uri).header("host", "127.0.0.1");
            match &body {
                None => builder.method("GET").body(Body::empty()),
                Some(body) => builder
                    .method("POST")
                    .header("content-type", "application/json")
                    .body(Body::from(body.clone())),
            }
            .expect("a request")
        };
        // Each request must succeed, or the figures would time an error path.
        let answer = runtime.block_on(router.clone().oneshot(request()));
        assert_eq!(
            answer.expect("infallible").status(),
            StatusCode::OK,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let answer = router.clone().oneshot(request()).await.expect("infallible");
                    black_box(answer.into_body().collect().await.expect("a body"))
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, router);
criterion_main!(benches);
