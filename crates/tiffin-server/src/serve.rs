//! [`serve`]: the router on a socket, with the limits hyper enforces per connection (a header
//! deadline against slow clients, a bound on open connections) and a graceful shutdown; and
//! [`signals`], the Unix signals an operator sends: SIGTERM/SIGINT stop, SIGHUP reloads.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::state::AppState;

/// Serves [`app`](crate::app) on `listener` until `shutdown` completes, then stops accepting,
/// turns readiness false, lets the requests in flight finish (at most the configured grace
/// period) and returns. Each connection must send its request headers within the header
/// timeout, and at most `max_connections` are open at once.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let config = state.config().clone();
    let app = crate::app(state.clone());
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small; do not let Nagle's algorithm hold them back.
        let _ = stream.set_nodelay(true);
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    state.drain();
    tracing::info!("shutting down: finishing the requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("every request finished"),
        () = tokio::time::sleep(config.shutdown_grace) => tracing::warn!(
            grace_ms = config.shutdown_grace.as_millis() as u64,
            "requests still running at the end of the grace period were dropped"
        ),
    }
    Ok(())
}

/// Completes on SIGTERM or SIGINT (Ctrl-C); meanwhile each SIGHUP reloads the packages, a
/// failed reload leaving the models served before it in place.
pub async fn signals(state: AppState) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot listen for signals; stop the server with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = tokio::signal::ctrl_c() => return,
                _ = hup.recv() => {
                    let state = state.clone();
                    tokio::spawn(async move { reload_logged(&state).await });
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = state;
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Reloads and logs the outcome.
pub(crate) async fn reload_logged(state: &AppState) {
    match state.load().await {
        Ok(report) => {
            for (name, version, took) in &report.loaded {
                tracing::info!(%name, %version, ms = took.as_millis() as u64, "loaded");
            }
            for (name, version) in &report.removed {
                tracing::info!(%name, %version, "no longer served");
            }
            for failure in &report.failed {
                tracing::warn!(%failure, "left out");
            }
        }
        Err(failures) => {
            for failure in &failures {
                tracing::error!(%failure, "reload refused; the previous models stay served");
            }
        }
    }
}
