//! [`Config`]: the server's limits, batching defaults and load policy, all configurable.

use std::collections::BTreeMap;
use std::time::Duration;

/// How the server runs: limits that keep a slow or hostile client from exhausting it, batching
/// defaults (a package's `[serving]` table overrides them), and what to do with a package that
/// fails to load.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body accepted, in bytes, after gzip/deflate decoding.
    pub max_body_bytes: usize,
    /// Request bodies held in memory at once, in bytes, all requests together; a request whose
    /// body would go past it is answered 503 at once. With `max_body_bytes` this bounds what
    /// many concurrent large requests can take, where the connection limit alone would let
    /// each of them hold a whole body.
    pub max_body_memory: usize,
    /// Largest number of rows (the batch dim) one request may send.
    pub max_request_rows: usize,
    /// Model runs at once: the size of the blocking pool inference runs on.
    pub max_concurrency: usize,
    /// Requests that may wait for a model run beyond those running; more get 503.
    pub max_queue: usize,
    /// Time a request may take, from its first byte to its answer; longer ones get 503.
    pub request_timeout: Duration,
    /// Time a client has to send a request's headers once its connection is open.
    pub header_timeout: Duration,
    /// Open connections at once; further connections wait to be accepted.
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight before it gives up on them.
    pub shutdown_grace: Duration,
    /// Batch size for packages that do not set `serving.max_batch_size`; 0 or 1 is off.
    pub max_batch_size: usize,
    /// Wait for a batch to fill for packages that do not set `serving.max_delay_us`.
    pub max_delay: Duration,
    /// Override every package's batch size (including turning batching off with 1).
    pub force_batch_size: Option<usize>,
    /// Override every package's batching delay.
    pub force_delay: Option<Duration>,
    /// Batch sizes for single models by name, over `force_batch_size` and the package's own.
    pub model_batch_size: BTreeMap<String, usize>,
    /// Batching delays for single models by name, over `force_delay` and the package's own.
    pub model_delay: BTreeMap<String, Duration>,
    /// With batching set for a model, time at load whether a merged run costs clearly less per
    /// row than single runs (on the package's example inputs) and run requests singly when it
    /// does not; off merges whenever batching is set.
    pub batch_probe: bool,
    /// Serve the packages that load even when others fail; otherwise one failure stops the start.
    pub allow_partial: bool,
    /// Runs the model's measured cost says finish within this run on the async worker instead
    /// of a blocking thread, saving the hop there and back; zero sends every run to the pool.
    pub inline_below: Duration,
    /// Threads one model run spreads its matrix products over; 1 (the default) is off, since
    /// the server runs requests in parallel already.
    pub model_threads: usize,
    /// ONNX Runtime sessions each model is loaded into (each a copy of its weights), so that
    /// that many requests run it at once; 1 (the default) runs them in turn behind a lock.
    /// tract ignores it: its plans run concurrent requests already.
    pub ort_sessions: usize,
    /// The engine that runs every model (tract unless asked otherwise).
    pub runtime: tiffin_core::runtime::Runtime,
    /// Concretized plans kept per model (one per batch size, or per shape for a model typed
    /// per shape; see tiffin-runtime) for packages that do not set `serving.plan_cache`.
    pub plan_cache: usize,
    /// Override every package's plan cache.
    pub force_plan_cache: Option<usize>,
    /// Plan caches for single models by name, over `force_plan_cache` and the package's own.
    pub model_plan_cache: BTreeMap<String, usize>,
    /// Serve the web page: the served models for a browser at `/`, a page per model under
    /// `/ui/`. API clients get the same answers either way.
    pub ui: bool,
    /// Check every package's signature at load with this key or these roots, and refuse a
    /// package that is unsigned or whose signature does not verify.
    pub verifier: Option<tiffin_core::Verifier>,
}

impl Default for Config {
    fn default() -> Config {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Config {
            max_body_bytes: 8 * 1024 * 1024,
            max_body_memory: 64 * 1024 * 1024,
            max_request_rows: 4096,
            max_concurrency: cores,
            max_queue: 256,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
            max_batch_size: 0,
            max_delay: Duration::from_micros(500),
            force_batch_size: None,
            force_delay: None,
            model_batch_size: BTreeMap::new(),
            model_delay: BTreeMap::new(),
            batch_probe: true,
            allow_partial: false,
            inline_below: Duration::from_micros(50),
            model_threads: 1,
            ort_sessions: 1,
            runtime: tiffin_core::runtime::Runtime::Tract,
            plan_cache: 8,
            force_plan_cache: None,
            model_plan_cache: BTreeMap::new(),
            ui: true,
            verifier: None,
        }
    }
}
