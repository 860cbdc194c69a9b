//! [`AppState`]: what every handler shares: the registry (swapped whole on reload), the
//! inference pool, metrics and readiness; and [`AppState::infer`], the one path every
//! protocol's request takes to a model.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

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
            }),
        }
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

    pub(crate) fn request_id(&self) -> u64 {
        self.inner.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Loads (or reloads) every package the paths name. Each new or changed package is
    /// verified, loaded and its golden examples rerun beside the versions being served; a
    /// package whose digest has not changed is kept as it is. The new set is swapped in at
    /// once: requests in flight finish on the models they started with. When any package
    /// fails, nothing changes and every failure is returned, unless `allow_partial`, in which
    /// case the failures are left out and reported.
    pub async fn load(&self) -> Result<ReloadReport, Vec<LoadFailure>> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let paths = self.inner.paths.clone();
        let found = tokio::task::spawn_blocking(move || registry::discover(&paths))
            .await
            .map_err(|e| vec![join_failure(e)])?
            .map_err(|f| vec![f])?;
        let current = self.registry();
        let mut report = ReloadReport::default();
        let mut served: Vec<Arc<Served>> = Vec::new();
        for path in found {
            // Keep what has not changed: same path, same manifest digest.
            let probe = path.clone();
            let inspected = tokio::task::spawn_blocking(move || tiffin_core::inspect(&probe))
                .await
                .map_err(|e| vec![join_failure(e)])?;
            // `tiffin pack` writes a folder and an archive of the same package side by side:
            // serve it once.
            if let Ok(inspection) = &inspected
                && served.iter().any(|s| s.loaded.digest == inspection.digest)
            {
                continue;
            }
            if let Ok(inspection) = &inspected
                && let Some(existing) = current
                    .iter()
                    .find(|s| s.loaded.path == path && s.loaded.digest == inspection.digest)
            {
                report
                    .kept
                    .push((existing.name().to_owned(), existing.version().to_string()));
                served.push(existing.clone());
                continue;
            }
            let config = self.inner.config.clone();
            let start = Instant::now();
            let result =
                tokio::task::spawn_blocking(move || registry::load_package(&path, &config))
                    .await
                    .map_err(|e| vec![join_failure(e)])?;
            match result {
                Ok(loaded) => {
                    let took = start.elapsed();
                    let s = Served::new(
                        loaded,
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
                Err(failure) => report.failed.push(failure),
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
        let slot = self.inner.pool.reserve().await?;
        let queued = slot.waited;
        let model = loaded.clone();
        let start = Instant::now();
        let outputs = crate::pool::Pool::run(slot, move || model.run(&inputs)).await??;
        self.inner
            .metrics
            .ran(&served.labels, queued, start.elapsed());
        self.inner.metrics.batch(&served.labels, rows);
        Ok(outputs)
    }
}

fn join_failure(e: tokio::task::JoinError) -> LoadFailure {
    LoadFailure {
        path: PathBuf::new(),
        reason: format!("loading stopped: {e}"),
    }
}
