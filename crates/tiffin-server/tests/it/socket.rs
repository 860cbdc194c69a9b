//! A real socket: each protocol over TCP, and a graceful shutdown that lets a request in
//! flight finish.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tiffin_server::{AppState, Config};

use crate::common::loaded;

/// Sends one HTTP/1.1 request and reads the whole answer (the connection is closed after it).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().expect("a status line");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn start(
    state: AppState,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tiffin_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_over_tcp() {
    let state = loaded(&["iris"], Config::default()).await;
    let (addr, stop, server) = start(state).await;
    let row = "[[5.1, 3.5, 1.4, 0.2]]";
    let cases = [
        (
            "GET",
            "/v2/health/ready",
            String::new(),
            "",
            "\"ready\":true",
        ),
        (
            "POST",
            "/v2/models/iris/infer",
            format!(
                r#"{{"inputs":[{{"name":"X","shape":[1,4],"datatype":"FP32","data":{row}}}]}}"#
            ),
            "",
            "\"model_name\":\"iris\"",
        ),
        (
            "POST",
            "/invocations",
            format!(r#"{{"inputs":{row}}}"#),
            "Content-Type: application/json\r\n",
            "\"predictions\"",
        ),
        (
            "POST",
            "/v1/models/iris:predict",
            format!(r#"{{"instances":{row}}}"#),
            "",
            "\"predictions\"",
        ),
        (
            "POST",
            "/predict",
            format!(r#"{{"X":{row}}}"#),
            "",
            "\"setosa\"",
        ),
    ];
    for (method, path, body, headers, expected) in cases {
        let (status, text) =
            tokio::task::spawn_blocking(move || http(addr, method, path, &body, headers))
                .await
                .unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        assert!(text.contains(expected), "{path}: {text}");
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish() {
    // The request waits 500 ms for a batch to fill; shutdown comes while it waits.
    let state = loaded(
        &["iris"],
        Config {
            force_batch_size: Some(64),
            batch_probe: false,
            force_delay: Some(Duration::from_millis(500)),
            ..Config::default()
        },
    )
    .await;
    let (addr, stop, server) = start(state.clone()).await;
    let request = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "POST",
            "/predict",
            r#"{"X": [[5.1, 3.5, 1.4, 0.2]]}"#,
            "",
        )
    });
    // Wait until the request is in flight, then stop.
    loop {
        let metrics =
            String::from_utf8(crate::common::get(&state, "/metrics").await.body.to_vec()).unwrap();
        if metrics.contains("tiffin_in_flight_requests 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    let (status, body) = request.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("setosa"));
    server.await.unwrap().unwrap();
    assert!(!state.is_ready());
    assert!(
        TcpStream::connect(addr).is_err(),
        "the server still accepts after shutdown"
    );
}
