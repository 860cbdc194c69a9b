//! [`Metrics`]: what `GET /metrics` reports, in the Prometheus (OpenMetrics) text format.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request: the model and version it named (empty for endpoints that name none),
/// the protocol, and the answer's status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) model: String,
    pub(crate) version: String,
    pub(crate) protocol: &'static str,
    pub(crate) status: u16,
}

/// Labels of a request's latency: as [`RequestLabels`] without the status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) model: String,
    pub(crate) version: String,
    pub(crate) protocol: &'static str,
}

/// Labels of what happens inside one model.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabels {
    pub(crate) model: String,
    pub(crate) version: String,
}

fn seconds() -> Histogram {
    // 50 µs to about 3.3 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 17))
}

fn rows() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

type Seconds = Family<ModelLabels, Histogram, fn() -> Histogram>;

/// Every metric the server keeps, registered once.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    total: Family<RouteLabels, Histogram, fn() -> Histogram>,
    queue: Seconds,
    inference: Seconds,
    batch_rows: Family<ModelLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    load: Family<ModelLabels, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tiffin");
        let requests = Family::<RequestLabels, Counter>::default();
        let total = Family::new_with_constructor(seconds as fn() -> Histogram);
        let queue = Family::new_with_constructor(seconds as fn() -> Histogram);
        let inference = Family::new_with_constructor(seconds as fn() -> Histogram);
        let batch_rows = Family::new_with_constructor(rows as fn() -> Histogram);
        let in_flight = Gauge::default();
        let load = Family::<ModelLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "requests",
            "Requests answered, by model, version, protocol and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer",
            total.clone(),
        );
        registry.register(
            "queue_duration_seconds",
            "Time a request waited for a model run to start (batching and the pool)",
            queue.clone(),
        );
        registry.register(
            "inference_duration_seconds",
            "Time of the model run that answered a request",
            inference.clone(),
        );
        registry.register(
            "batch_rows",
            "Rows in each model run (several requests' rows when batched)",
            batch_rows.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests being answered now",
            in_flight.clone(),
        );
        registry.register(
            "model_load_seconds",
            "Time to verify, load and check the golden examples of each served model",
            load.clone(),
        );
        Metrics {
            registry,
            requests,
            total,
            queue,
            inference,
            batch_rows,
            in_flight,
            load,
        }
    }

    pub(crate) fn request_started(&self) {
        self.in_flight.inc();
    }

    pub(crate) fn request_finished(&self) {
        self.in_flight.dec();
    }

    pub(crate) fn request_done(&self, labels: RequestLabels, elapsed: Duration) {
        self.total
            .get_or_create(&RouteLabels {
                model: labels.model.clone(),
                version: labels.version.clone(),
                protocol: labels.protocol,
            })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    pub(crate) fn ran(&self, model: &ModelLabels, queued: Duration, inference: Duration) {
        self.queue
            .get_or_create(model)
            .observe(queued.as_secs_f64());
        self.inference
            .get_or_create(model)
            .observe(inference.as_secs_f64());
    }

    pub(crate) fn batch(&self, model: &ModelLabels, rows: usize) {
        self.batch_rows.get_or_create(model).observe(rows as f64);
    }

    pub(crate) fn loaded(&self, model: &ModelLabels, seconds: f64) {
        self.load.get_or_create(model).set(seconds);
    }

    /// The text `GET /metrics` answers.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
