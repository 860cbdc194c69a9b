//! [`Metrics`]: what `GET /metrics` reports, in the Prometheus (OpenMetrics) text format.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The protocols requests are counted by, as [`RequestLabels::protocol`] names them.
pub(crate) const PROTOCOLS: [&str; 5] = ["v2", "v1", "mlflow", "simple", "other"];

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
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabels {
    pub(crate) model: String,
    pub(crate) version: String,
}

fn seconds() -> Histogram {
    // 50 µs to about 3.3 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 17))
}

fn build_seconds() -> Histogram {
    // 1 ms to about 33 s: typing and optimizing a plan for a new shape.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
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
    plans: Family<ModelLabels, Gauge>,
    plan_builds: Seconds,
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
        let plans = Family::<ModelLabels, Gauge>::default();
        let plan_builds = Family::new_with_constructor(build_seconds as fn() -> Histogram);
        registry.register(
            "model_plans",
            "Plans kept per model, each typed and optimized for one batch size or input shape",
            plans.clone(),
        );
        registry.register(
            "plan_build_duration_seconds",
            "Time to type and optimize a plan for a batch size or input shape seen for the first \
             time (the cost of a new shape)",
            plan_builds.clone(),
        );
        Metrics {
            plans,
            plan_builds,
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

    /// Counts a request that named no model (health, metadata of the server, errors before a
    /// model was found), under empty model and version labels.
    pub(crate) fn request_done(&self, protocol: &'static str, status: u16, elapsed: Duration) {
        let none = ModelLabels::default();
        self.route(&none, protocol).observe(elapsed.as_secs_f64());
        self.requests(&none, protocol, status).inc();
    }

    pub(crate) fn loaded(&self, model: &ModelLabels, seconds: f64) {
        self.load.get_or_create(model).set(seconds);
    }

    /// Brings one model's plan series up to date: the plans it keeps now, and the time of
    /// each plan it built since the last scrape.
    pub(crate) fn plans(&self, model: &ModelLabels, kept: usize, builds: &[Duration]) {
        self.plans
            .get_or_create(model)
            .set(i64::try_from(kept).unwrap_or(i64::MAX));
        if !builds.is_empty() {
            let histogram = self.plan_builds.get_or_create(model);
            for took in builds {
                histogram.observe(took.as_secs_f64());
            }
        }
    }

    /// The latency histogram of `protocol`'s requests to one model (or to none, under empty
    /// labels), for [`ModelMetrics`] to keep.
    fn route(&self, labels: &ModelLabels, protocol: &'static str) -> Histogram {
        self.total
            .get_or_create(&RouteLabels {
                model: labels.model.clone(),
                version: labels.version.clone(),
                protocol,
            })
            .clone()
    }

    /// The counter of one model's requests over `protocol` answered with `status`.
    fn requests(&self, labels: &ModelLabels, protocol: &'static str, status: u16) -> Counter {
        self.requests
            .get_or_create(&RequestLabels {
                model: labels.model.clone(),
                version: labels.version.clone(),
                protocol,
                status,
            })
            .clone()
    }

    /// The text `GET /metrics` answers.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// One served model's metrics. Each series is looked up in its family (hashing the model's
/// labels under the family's lock) the first time it is used and its handle kept, so a request
/// updates its counters and histograms without a lookup or a copy of the labels. Series are
/// made on first use, as a lookup would make them, so `/metrics` shows the same series.
#[derive(Debug)]
pub(crate) struct ModelMetrics {
    /// The model's name and version, as labels.
    pub(crate) labels: ModelLabels,
    metrics: Arc<Metrics>,
    queue: OnceLock<Histogram>,
    inference: OnceLock<Histogram>,
    batch_rows: OnceLock<Histogram>,
    /// Per protocol (in [`PROTOCOLS`] order): the request latency histogram, and the counter of
    /// 200 answers; other statuses are rarer and looked up each time.
    routes: [OnceLock<Histogram>; PROTOCOLS.len()],
    ok: [OnceLock<Counter>; PROTOCOLS.len()],
}

impl ModelMetrics {
    pub(crate) fn new(metrics: Arc<Metrics>, labels: ModelLabels) -> ModelMetrics {
        ModelMetrics {
            labels,
            metrics,
            queue: OnceLock::new(),
            inference: OnceLock::new(),
            batch_rows: OnceLock::new(),
            routes: Default::default(),
            ok: Default::default(),
        }
    }

    /// Counts a request answered by this model over `protocol` with `status`.
    pub(crate) fn request_done(&self, protocol: &'static str, status: u16, elapsed: Duration) {
        let Some(ix) = PROTOCOLS.iter().position(|p| *p == protocol) else {
            // Every protocol a path maps to is listed; one added later is counted all the same.
            self.metrics
                .route(&self.labels, protocol)
                .observe(elapsed.as_secs_f64());
            self.metrics.requests(&self.labels, protocol, status).inc();
            return;
        };
        self.routes[ix]
            .get_or_init(|| self.metrics.route(&self.labels, protocol))
            .observe(elapsed.as_secs_f64());
        if status == 200 {
            self.ok[ix]
                .get_or_init(|| self.metrics.requests(&self.labels, protocol, 200))
                .inc();
        } else {
            self.metrics.requests(&self.labels, protocol, status).inc();
        }
    }

    /// Records a run that answered a request: how long the request waited for it, and how
    /// long it took.
    pub(crate) fn ran(&self, queued: Duration, inference: Duration) {
        let of = |family: &Seconds| family.get_or_create(&self.labels).clone();
        self.queue
            .get_or_init(|| of(&self.metrics.queue))
            .observe(queued.as_secs_f64());
        self.inference
            .get_or_init(|| of(&self.metrics.inference))
            .observe(inference.as_secs_f64());
    }

    /// Records the rows of one run.
    pub(crate) fn batch(&self, rows: usize) {
        self.batch_rows
            .get_or_init(|| self.metrics.batch_rows.get_or_create(&self.labels).clone())
            .observe(rows as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_handles_count_in_the_families_series() {
        let metrics = Arc::new(Metrics::new());
        let labels = ModelLabels {
            model: "iris".into(),
            version: "1.0.0".into(),
        };
        let model = ModelMetrics::new(metrics.clone(), labels.clone());
        let ms = Duration::from_millis(1);
        model.request_done("v2", 200, ms);
        model.request_done("v2", 200, ms);
        model.request_done("v2", 400, ms);
        model.request_done("simple", 200, ms);
        // A second keeper of the same model (a reload keeps the labels) adds to the same series.
        ModelMetrics::new(metrics.clone(), labels).request_done("v2", 200, ms);
        model.ran(ms, ms);
        model.batch(3);
        metrics.request_done("other", 404, ms);
        let text = metrics.render();
        for line in [
            r#"tiffin_requests_total{model="iris",version="1.0.0",protocol="v2",status="200"} 3"#,
            r#"tiffin_requests_total{model="iris",version="1.0.0",protocol="v2",status="400"} 1"#,
            r#"tiffin_requests_total{model="iris",version="1.0.0",protocol="simple",status="200"} 1"#,
            r#"tiffin_requests_total{model="",version="",protocol="other",status="404"} 1"#,
            r#"tiffin_request_duration_seconds_count{model="iris",version="1.0.0",protocol="v2"} 4"#,
            r#"tiffin_queue_duration_seconds_count{model="iris",version="1.0.0"} 1"#,
            r#"tiffin_inference_duration_seconds_count{model="iris",version="1.0.0"} 1"#,
            r#"tiffin_batch_rows_sum{model="iris",version="1.0.0"} 3.0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
