//! `tiffin serve`: the model server on a socket, until SIGTERM or Ctrl-C.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use tiffin_server::{AppState, Config};
use tracing_subscriber::EnvFilter;

use crate::Outcome;
use crate::args::{LogFormat, Scoped, ServeArgs};
use crate::log_writer::LogBuffer;

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<Outcome> {
    fix_malloc_mmap_threshold();
    let started = Instant::now();
    let filter = EnvFilter::try_from_env("TIFFIN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Log lines go to stderr through a buffer a thread of its own writes out: logging never
    // makes a request wait, even on a log reader that stopped reading (see log_writer.rs).
    let (writer, _flush_at_exit) =
        LogBuffer::start(std::io::stderr(), 8 << 20, Duration::from_millis(5))
            .context("cannot start the log writer")?;
    let dropped = writer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    match args.log_format {
        LogFormat::Text => subscriber.init(),
        LogFormat::Json => subscriber.json().init(),
    }
    // A panic the runtime catches (tract's, on inputs it does not handle) would otherwise be
    // printed raw to stderr, outside the log's format, and with a backtrace under
    // RUST_BACKTRACE for every such request: it goes through the log instead, as one error line.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info.payload_as_str().unwrap_or_default();
        tracing::error!(%location, reason = %message, "panic");
    }));
    let defaults = Config::default();
    let config = Config {
        max_body_bytes: args.max_body_bytes,
        max_body_memory: args.max_body_memory,
        max_connections: args.max_connections,
        max_request_rows: args.max_request_rows,
        max_concurrency: args.max_concurrency.unwrap_or(defaults.max_concurrency),
        max_queue: args.max_queue,
        request_timeout: Duration::from_millis(args.timeout_ms),
        shutdown_grace: Duration::from_millis(args.grace_ms),
        force_batch_size: for_all(&args.max_batch_size),
        force_delay: for_all(&args.max_delay_us).map(Duration::from_micros),
        model_batch_size: by_model(&args.max_batch_size),
        model_delay: by_model(&args.max_delay_us)
            .into_iter()
            .map(|(model, us)| (model, Duration::from_micros(us)))
            .collect(),
        force_plan_cache: for_all(&args.plan_cache),
        model_plan_cache: by_model(&args.plan_cache),
        batch_probe: !args.no_batch_probe,
        allow_partial: args.allow_partial,
        inline_below: Duration::from_micros(args.inline_below_us),
        model_threads: args.model_threads,
        ort_sessions: args.ort_sessions,
        runtime: args.runtime.runtime(),
        ui: !args.no_ui,
        verifier: tiffin_core::Verifier::from_pem_files(args.key.as_deref(), args.root.as_deref())?,
        ..defaults
    };
    let wait = args.wait_for_models || std::env::var("MODEL_INIT_MODE").is_ok_and(|m| m == "async");
    // Store references are resolved once, here: a reload reads the same folders again. A server
    // that waits takes its paths as they are: they may not exist yet.
    let packages = if wait {
        args.packages.clone()
    } else {
        args.packages
            .iter()
            .map(|p| tiffin_store::resolve(p))
            .collect::<Result<Vec<_>, _>>()?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let state = AppState::new(config, packages);
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        tracing::info!("listening on http://{addr}");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let signals = tiffin_server::signals(state.clone());
        tokio::spawn(report_dropped_lines(dropped));
        let mut server = tokio::spawn(tiffin_server::serve(listener, state.clone(), async move {
            tokio::select! {
                () = signals => {}
                _ = stopped => {}
            }
        }));
        let loaded = if wait {
            tracing::info!("live; waiting for packages, ready once one is served");
            tokio::select! {
                report = state.load_when_present(WAIT_POLL) => Ok(report),
                // A signal stopped the server while it was still waiting.
                finished = &mut server => {
                    finished??;
                    return Ok(Outcome::Success);
                }
            }
        } else {
            state.load().await
        };
        match loaded {
            Ok(report) => {
                for (name, version, took) in &report.loaded {
                    tracing::info!(%name, %version, ms = took.as_millis() as u64, "loaded");
                }
                for failure in &report.failed {
                    tracing::warn!(%failure, "left out");
                }
                let registry = state.registry();
                if registry.is_empty() {
                    let _ = stop.send(());
                    server.await??;
                    anyhow::bail!("no package could be served");
                }
                let config = state.config();
                let unknown = config
                    .model_batch_size
                    .keys()
                    .chain(config.model_delay.keys())
                    .find(|name| registry.versions(name).is_none());
                if let Some(name) = unknown {
                    let _ = stop.send(());
                    server.await??;
                    anyhow::bail!(
                        "--max-batch-size or --max-delay-us names model `{name}`, which is not \
                         served (no package of that name loaded); served: {}",
                        registry.names().collect::<Vec<_>>().join(", ")
                    );
                }
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    engine = %config.runtime.name(),
                    "ready: {} model version(s) on http://{addr}",
                    report.loaded.len()
                );
            }
            Err(failures) => {
                let _ = stop.send(());
                server.await??;
                let list: Vec<String> = failures.iter().map(|f| format!("  {f}")).collect();
                anyhow::bail!(
                    "not serving: {} package(s) failed (--allow-partial serves the rest):\n{}",
                    failures.len(),
                    list.join("\n")
                );
            }
        }
        server.await??;
        Ok(Outcome::Success)
    });
    // Dropping the runtime would wait for every blocking thread, so a model run longer than the
    // grace period (or a reload in progress) would keep the process alive past `--grace-ms`:
    // the grace period is the bound, what still runs after it is abandoned.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome
}

/// How often a server waiting for its packages looks for them again.
const WAIT_POLL: Duration = Duration::from_millis(500);

/// Says, once a second at most, how many log lines were dropped because the log's reader did
/// not keep up. While it does not, these lines are dropped too, so each also gives the total:
/// the first one through once the reader is back says how many were lost in all.
async fn report_dropped_lines(log: LogBuffer) {
    let mut reported = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = log.dropped();
        if now > reported {
            tracing::warn!(
                dropped = now - reported,
                dropped_total = now,
                "log lines dropped: the log's reader did not keep up"
            );
            reported = now;
        }
    }
}

/// The last setting given for every model, if any.
fn for_all<T: Copy>(settings: &[Scoped<T>]) -> Option<T> {
    settings.iter().rev().find_map(|s| match s {
        Scoped::All(v) => Some(*v),
        Scoped::Model(..) => None,
    })
}

/// The settings given for single models, the last one for each name.
fn by_model<T: Copy>(settings: &[Scoped<T>]) -> BTreeMap<String, T> {
    settings
        .iter()
        .filter_map(|s| match s {
            Scoped::Model(name, v) => Some((name.clone(), *v)),
            Scoped::All(_) => None,
        })
        .collect()
}

/// glibc's malloc serves a large allocation with its own mapping, and by default each free of
/// one raises that threshold to its size and the heap's trim threshold to twice it (up to 32 and
/// 64 MiB). After the loads had freed their large buffers, freed memory at the top of each arena
/// was no longer given back: with every fixture loaded the heap was 28 MiB with glibc's default
/// arenas (RSS 51-57 MiB), which is why `serve` used to run with one arena (20 MiB heap, but
/// the two workers queued on its lock). Setting the threshold turns the raising off and leaves
/// the trim threshold at 128 KiB. At 128 KiB the server is ready with every fixture in 46-47 MiB
/// (heap 17-18 MiB) with default arenas; at glibc's largest, 32 MiB, a batch's tensors of a few
/// MiB are reused from the heap instead of mapped and faulted in on every run (batched mnist_cnn
/// 9.4-10.3k req/s against 6.7-7.9k) but the server holds 49-50 MiB, at the 50 MB goal, so the
/// default is 128 KiB and docs/server.md tells operators of large batches to set
/// `MALLOC_MMAP_THRESHOLD_=33554432`. glibc reads the setting from the environment only as the
/// process starts, so `serve` starts itself again, once, with it set. A value the operator set
/// already (directly or in `GLIBC_TUNABLES`) is left as it is, and if starting again fails the
/// server goes on with glibc's defaults.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_malloc_mmap_threshold() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    const BYTES: &str = "131072";
    let tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("mmap_threshold"));
    if tuned || std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // `exec` returns only when it failed; on success this process is the new one.
    let error = command.args(args).env(VAR, BYTES).exec();
    eprintln!(
        "note: could not start again with {VAR}={BYTES} ({error}); serving with glibc's defaults"
    );
}

/// Other allocators have no such threshold to fix.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_malloc_mmap_threshold() {}
