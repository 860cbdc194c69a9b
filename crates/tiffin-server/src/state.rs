//! [`AppState`]: what every handler shares: the registry (swapped whole on reload), the
//! inference pool, metrics and readiness; and [`AppState::infer`], the one path every
//! protocol's request takes to a model.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tiffin_core::Loaded;
use tiffin_core::runtime::Tensor;

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::registry::{self, LoadFailure, Registry, Served};

/// The server's shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    paths: Vec<PathBuf>,
    registry: RwLock<Arc<Registry>>,
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    loaded_once: AtomicBool,
    draining: AtomicBool,
    reloading: tokio::sync::Mutex<()>,
    next_request: AtomicU64,
    /// Bytes of request bodies held now (see [`Config::max_body_memory`]).
    body_bytes: AtomicUsize,
}

/// What a load or reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Versions loaded now, as `name version` with the time each took.
    pub loaded: Vec<(String, String, Duration)>,
    /// Versions kept as they were (same package digest).
    pub kept: Vec<(String, String)>,
    /// Versions no longer served.
    pub removed: Vec<(String, String)>,
    /// Packages that failed and were left out (only with `allow_partial`).
    pub failed: Vec<LoadFailure>,
}

impl AppState {
    /// A server for the packages `paths` name, with nothing loaded yet: live, not ready.
    /// Call [`AppState::load`] to load them.
    pub fn new(config: Config, paths: Vec<PathBuf>) -> AppState {
        let pool = Arc::new(Pool::new(config.max_concurrency, config.max_queue));
        AppState {
            inner: Arc::new(Inner {
                config,
                paths,
                registry: RwLock::new(Arc::new(Registry::default())),
                pool,
                metrics: Arc::new(Metrics::new()),
                loaded_once: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                reloading: tokio::sync::Mutex::new(()),
                next_request: AtomicU64::new(1),
                body_bytes: AtomicUsize::new(0),
            }),
        }
    }

    /// The package paths the server was given (files, folders of packages).
    pub fn paths(&self) -> &[PathBuf] {
        &self.inner.paths
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The models served now. A request holds on to this snapshot, so a reload never changes
    /// the model under a request in flight.
    pub fn registry(&self) -> Arc<Registry> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True once the packages have loaded (and their golden examples passed), until shutdown.
    pub fn is_ready(&self) -> bool {
        self.inner.loaded_once.load(Ordering::Acquire)
            && !self.inner.draining.load(Ordering::Acquire)
            && !self.registry().is_empty()
    }

    /// Marks the server as shutting down: readiness turns false so that load balancers stop
    /// sending requests, while those in flight finish.
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::Release);
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Counts `bytes` more of request bodies held, or refuses when that would pass the
    /// configured total. The caller gives them back with [`AppState::release_body`].
    pub(crate) fn hold_body(&self, bytes: usize) -> bool {
        let limit = self.inner.config.max_body_memory;
        self.inner
            .body_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    /// Gives back `bytes` counted by [`AppState::hold_body`].
    pub(crate) fn release_body(&self, bytes: usize) {
        self.inner.body_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    pub(crate) fn request_id(&self) -> u64 {
        self.inner.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Loads (or reloads) every package the paths name. Each new or changed package is
    /// verified, loaded and its golden examples rerun beside the versions being served; a
    /// package whose digest has not changed is kept as it is. The new set is swapped in at
    /// once: requests in flight finish on the models they started with. When any package
    /// fails, nothing changes and every failure is returned, unless `allow_partial`, in which
    /// case the failures are left out and reported, and a path whose package now fails keeps
    /// serving what it served before.
    pub async fn load(&self) -> Result<ReloadReport, Vec<LoadFailure>> {
        let one_at_a_time = self.inner.reloading.lock().await;
        self.load_locked(one_at_a_time).await
    }

    /// As [`AppState::load`], but `None` at once when a load is running already, rather than
    /// queueing another behind it: the admin endpoint's reload, so that clients repeating it
    /// cannot pile up whole loads.
    pub async fn try_load(&self) -> Option<Result<ReloadReport, Vec<LoadFailure>>> {
        let one_at_a_time = self.inner.reloading.try_lock().ok()?;
        Some(self.load_locked(one_at_a_time).await)
    }

    /// Loads the packages once they are there: tries [`AppState::load`] every `every` until it
    /// serves at least one package, logging why not (a missing folder, a permission denied, a
    /// package that fails) each time the reason changes. Until then the server is live and not
    /// ready. This is KServe's `MODEL_INIT_MODE=async`: the model arrives after the server
    /// starts, written by a storage initializer into the folder being served.
    pub async fn load_when_present(&self, every: Duration) -> ReloadReport {
        let mut said = String::new();
        loop {
            let reason = match self.load().await {
                Ok(report) if !self.registry().is_empty() => return report,
                Ok(report) => failures_text(&report.failed),
                Err(failures) => failures_text(&failures),
            };
            if reason != said {
                tracing::info!(%reason, "waiting for packages");
                said = reason;
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn load_locked(
        &self,
        _one_at_a_time: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<ReloadReport, Vec<LoadFailure>> {
        let paths = self.inner.paths.clone();
        let current = self.registry();
        let config = self.inner.config.clone();
        // Every package is read and loaded on one blocking thread: glibc gives each thread that
        // allocates an arena of its own and keeps what is freed in it, so loads spread over
        // the pool's threads left ~10 MiB of freed load-time memory resident (measured with
        // every fixture loaded); on one thread the next load reuses what the last one freed.
        let steps = {
            let current = current.clone();
            tokio::task::spawn_blocking(move || load_all(&paths, &current, &config))
                .await
                .map_err(|e| vec![join_failure(e)])?
                .map_err(|f| vec![f])?
        };
        let mut report = ReloadReport::default();
        let mut served: Vec<Arc<Served>> = Vec::new();
        // What a failing path served before is kept only where no package loaded now gives the
        // same name and version (a fixed copy beside a broken one): it would clash with it.
        let fresh: HashSet<(String, String)> = steps
            .iter()
            .filter_map(|step| match step {
                Step::Loaded(checked, _) => Some((
                    checked.loaded.manifest.name.clone(),
                    checked.loaded.manifest.version.to_string(),
                )),
                _ => None,
            })
            .collect();
        for step in steps {
            match step {
                Step::KeepOnFailure(existing)
                    if fresh.contains(&(
                        existing.name().to_owned(),
                        existing.version().to_string(),
                    )) => {}
                Step::Keep(existing) | Step::KeepOnFailure(existing) => {
                    report
                        .kept
                        .push((existing.name().to_owned(), existing.version().to_string()));
                    served.push(existing);
                }
                Step::Loaded(loaded, took) => {
                    let s = Served::new(
                        *loaded,
                        took,
                        &self.inner.config,
                        &self.inner.pool,
                        &self.inner.metrics,
                    );
                    report
                        .loaded
                        .push((s.name().to_owned(), s.version().to_string(), took));
                    served.push(Arc::new(s));
                }
                Step::Failed(failure) => report.failed.push(failure),
            }
        }
        if !report.failed.is_empty() && !self.inner.config.allow_partial {
            return Err(report.failed);
        }
        let next = Registry::new(served).map_err(|f| vec![f])?;
        for old in current.iter() {
            let still = next
                .versions(old.name())
                .is_some_and(|mut v| v.any(|s| Arc::ptr_eq(s, old)));
            if !still {
                report
                    .removed
                    .push((old.name().to_owned(), old.version().to_string()));
            }
        }
        *self
            .inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        self.inner.loaded_once.store(true, Ordering::Release);
        Ok(report)
    }

    /// Runs `served` on inputs decoded from a request, in signature order. They are checked
    /// first (names, dtypes, ranks, fixed dims, finite values, the row limit), so a bad request
    /// is refused before it waits or joins a batch; then the request is batched with others or
    /// run alone on the pool.
    pub(crate) async fn infer(
        &self,
        served: &Served,
        inputs: Vec<Tensor>,
    ) -> Result<Vec<Tensor>, ApiError> {
        let loaded = &served.loaded;
        loaded.model.check(&inputs)?;
        if !loaded.manifest.serving.allow_non_finite {
            for (t, spec) in inputs.iter().zip(&loaded.manifest.signature.inputs) {
                if let Some(at) = t.data().first_non_finite() {
                    return Err(ApiError::bad_request(format!(
                        "input `{}`: value {at} (row-major) is NaN or infinite; this model takes \
                         finite numbers only",
                        spec.name
                    )));
                }
            }
        }
        let rows = if served.has_batch_dim {
            inputs[0].shape()[0]
        } else {
            1
        };
        let limit = match &served.batcher {
            Some(b) => b.policy.max_rows.min(self.inner.config.max_request_rows),
            None => self.inner.config.max_request_rows,
        };
        if rows > limit {
            return Err(ApiError::bad_request(format!(
                "the request has {rows} rows; this server takes at most {limit} per request \
                 for model `{}`: split it",
                served.name()
            )));
        }
        if let Some(batcher) = &served.batcher {
            return batcher.submit(inputs, rows).await;
        }
        let slot = self.inner.pool.reserve(&served.turns).await?;
        let queued = slot.waited;
        let elements = inputs.iter().map(|t| t.data().len()).sum::<usize>();
        // A run the model's measured cost says is shorter than the hop to a blocking thread
        // and back runs here, on the async worker, still holding its pool slot so the number
        // of runs at once stays bounded; anything longer goes to the blocking pool.
        let (outputs, took) = if served
            .cost
            .runs_inline(elements, self.inner.config.inline_below)
        {
            let timed = timed_run(loaded, &inputs);
            drop(slot);
            timed
        } else {
            let model = loaded.clone();
            crate::pool::Pool::run(slot, move || timed_run(&model, &inputs)).await?
        };
        let outputs = outputs?;
        // The cost is the run alone, never the hop to the pool and back: under load that
        // hop can take longer than the run, and counting it would keep a cheap model on the
        // pool for good.
        served.cost.record(elements, took);
        served.metrics.ran(queued, took);
        served.metrics.batch(rows);
        Ok(outputs)
    }
}

/// Runs `model` on `inputs` and says how long the run itself took.
fn timed_run(model: &Loaded, inputs: &[Tensor]) -> (tiffin_core::Result<Vec<Tensor>>, Duration) {
    let start = Instant::now();
    let outputs = model.run(inputs);
    (outputs, start.elapsed())
}

/// What a load does with one package found on the paths.
enum Step {
    /// Served already, unchanged: keep serving it as it is.
    Keep(Arc<Served>),
    /// Served already from a path whose package now fails: keep serving it, unless a package
    /// loaded now gives the same version.
    KeepOnFailure(Arc<Served>),
    /// Verified, loaded and its examples passed, in this long.
    Loaded(Box<registry::Checked>, Duration),
    /// Refused, and why.
    Failed(LoadFailure),
}

/// Finds the packages on `paths` and loads each new or changed one, on the calling thread.
fn load_all(
    paths: &[PathBuf],
    current: &Registry,
    config: &Config,
) -> Result<Vec<Step>, LoadFailure> {
    let mut steps = Vec::new();
    let mut seen = HashSet::new();
    for path in registry::discover(paths)? {
        let inspected = tiffin_core::inspect(&path);
        if let Ok(inspection) = &inspected {
            // `tiffin pack` writes a folder and an archive of the same package side by side:
            // serve it once.
            if !seen.insert(inspection.digest.clone()) {
                continue;
            }
            // Keep what has not changed: same path, same manifest digest.
            if let Some(existing) = current
                .iter()
                .find(|s| s.loaded.path == path && s.loaded.digest == inspection.digest)
            {
                steps.push(Step::Keep(existing.clone()));
                continue;
            }
        }
        let start = Instant::now();
        match registry::load_package(&path, config) {
            Ok(loaded) => steps.push(Step::Loaded(Box::new(loaded), start.elapsed())),
            Err(failure) => {
                // What this path served before stays served: a package replaced by one that
                // fails to verify must not take the working version down with it. (Without
                // `allow_partial` the whole reload is refused anyway.)
                steps.extend(
                    current
                        .iter()
                        .filter(|s| s.loaded.path == path)
                        .map(|s| Step::KeepOnFailure(s.clone())),
                );
                steps.push(Step::Failed(failure));
            }
        }
    }
    Ok(steps)
}

fn join_failure(e: tokio::task::JoinError) -> LoadFailure {
    LoadFailure {
        path: PathBuf::new(),
        reason: format!("loading stopped: {e}"),
    }
}

/// Load failures as one line, for the log of a server waiting for its packages.
fn failures_text(failures: &[LoadFailure]) -> String {
    if failures.is_empty() {
        return "no package found".into();
    }
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
