//! The served models: which packages a path names, loading and checking each one, and the
//! [`Registry`] of names and versions requests are routed by.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use semver::Version;
use serde::Serialize;
use tiffin_core::examples::Drift;
use tiffin_core::manifest::{Dim, Signature};
use tiffin_core::payload::shown;
use tiffin_core::runtime::LoadOptions;
use tiffin_core::{Loaded, SignatureOptions, VerifyOptions, layout};

use crate::batch::{BatchPolicy, Batcher};
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::{Metrics, ModelLabels, ModelMetrics};
use crate::pool::{Pool, Turns};
use crate::probe::{self, BatchProbe};

/// A package that could not be served, and why (for the operator: it names the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The package, or the path that was searched for packages.
    pub path: PathBuf,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// The packages `paths` name: each path is a package (a `NAME/VERSION/` folder or an archive),
/// or a folder of packages (archives, `NAME/VERSION/` folders, or package folders), which is
/// how a reload finds a version added since the start. Sorted, so loading is deterministic.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadFailure> {
    let mut found = Vec::new();
    for path in paths {
        let fail = |reason: String| LoadFailure {
            path: path.clone(),
            reason,
        };
        let meta = path
            .metadata()
            .map_err(|e| fail(format!("cannot read it: {}", io_reason(&e))))?;
        if !meta.is_dir() || path.join(layout::MANIFEST_FILE).is_file() {
            found.push(path.clone());
            continue;
        }
        let before = found.len();
        for entry in
            sorted_entries(path).map_err(|e| fail(format!("cannot list it: {}", io_reason(&e))))?
        {
            if entry.is_file() && entry.extension().is_some_and(|e| e == "tiffin") {
                found.push(entry);
            } else if entry.is_dir() {
                if entry.join(layout::MANIFEST_FILE).is_file() {
                    found.push(entry);
                } else {
                    // NAME/VERSION/ folders as `tiffin pack` writes them.
                    let versions = sorted_entries(&entry).unwrap_or_default();
                    found.extend(
                        versions
                            .into_iter()
                            .filter(|v| v.join(layout::MANIFEST_FILE).is_file()),
                    );
                }
            }
        }
        if found.len() == before {
            return Err(fail(
                "missing: no package in this folder: give package archives (.tiffin), \
                 NAME/VERSION/ folders, or a folder holding them"
                    .into(),
            ));
        }
    }
    Ok(found)
}

/// The entries of a folder, sorted, without hidden ones: a package being written (by `pack` or
/// `pull --into`) sits in a hidden folder until it is renamed into place whole.
fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)?
        .filter(|e| {
            e.as_ref()
                .map_or(true, |e| !e.file_name().to_string_lossy().starts_with('.'))
        })
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// A core error as the reason of a load failure, which names the package already: the
/// runtime's own message for a model it refused (the error's text is the model's path), the
/// error with its causes otherwise.
fn core_reason(e: &tiffin_core::Error) -> String {
    if let tiffin_core::Error::Model { source, .. } = e {
        return source.to_string();
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// An I/O error as an operator reads it, led by `missing` or `permission denied` where it is
/// one of those, the two a server waiting for its packages tells apart (KServe's storage
/// initializer may not have written the folder yet, or may have written it as another user).
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("missing: {e}"),
        std::io::ErrorKind::PermissionDenied => format!("permission denied: {e}"),
        _ => e.to_string(),
    }
}

/// A package verified and loaded, with what its checks found (shown on the web page).
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) loaded: Loaded,
    /// The golden examples' drift per output, `None` for a package without examples.
    pub(crate) drifts: Option<Vec<Drift>>,
    pub(crate) signature: SignatureStatus,
    /// The batching set for it (rows, delay).
    pub(crate) policy: BatchPolicy,
    /// Whether it merges requests, decided from the policy and, when the probe is on, what a
    /// batch of its examples was measured to cost.
    pub(crate) batching: Batching,
}

/// What the server knows of a served package's signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SignatureStatus {
    /// The package holds a signature bundle (`tiffin.sigstore.json`).
    pub signed: bool,
    /// The signer's key hint (hex sha256 of its public key PEM): the key that verified the
    /// signature, or, when the server was given none, the one the bundle names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hint: Option<String>,
    /// Certificate mode: the signing certificate's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The signature was checked at load with the key or roots the server was given (with
    /// them, a package that fails the check is not served at all).
    pub verified: bool,
}

/// Verifies a package (every digest, the signature against the graph, and with a configured
/// verifier its cryptographic signature), loads its model and reruns its golden examples; a
/// package whose examples drift past tolerance, or unsigned when a verifier is set, is refused.
pub(crate) fn load_package(path: &Path, config: &Config) -> Result<Checked, LoadFailure> {
    let fail = |reason: String| LoadFailure {
        path: path.to_owned(),
        reason,
    };
    // With a verifier, the package is verified as part of the signature check, and that report
    // is what the model is loaded on: every file is hashed once.
    let mut verified = None;
    let signature = match &config.verifier {
        Some(verifier) => {
            // The verification `load` would make (blake3, no model run); the signed sha256
            // digests are checked against the manifest's.
            let options = SignatureOptions {
                bundle: None,
                verify: VerifyOptions {
                    run_model: false,
                    ..VerifyOptions::default()
                },
            };
            let report = tiffin_core::verify_signature(
                path,
                verifier,
                &options,
                &tiffin_core::hash::NoProgress,
            )
            .map_err(|e| fail(core_reason(&e)))?;
            if !report.is_ok() {
                let problems = report
                    .problems
                    .iter()
                    .chain(report.package.iter().flat_map(|p| &p.problems))
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(fail(format!("signature refused: {problems}")));
            }
            verified = report.package;
            SignatureStatus {
                signed: true,
                key_hint: Some(report.key_hint),
                certificate: report.certificate,
                verified: true,
            }
        }
        None => match tiffin_core::signature_claim(path).map_err(|e| fail(core_reason(&e)))? {
            Some(claim) => SignatureStatus {
                signed: true,
                key_hint: claim.key_hint,
                certificate: claim.certificate,
                verified: false,
            },
            None => SignatureStatus::default(),
        },
    };
    // Verified here when the signature check did not, as `tiffin_core::load` would, so that the
    // manifest's plan cache is known before the model is loaded.
    let report = match verified {
        Some(report) => report,
        None => {
            let options = VerifyOptions {
                run_model: false,
                ..VerifyOptions::default()
            };
            tiffin_core::verify(path, &options, &tiffin_core::hash::NoProgress)
                .map_err(|e| fail(core_reason(&e)))?
        }
    };
    let options = LoadOptions::default()
        .with_plan_cache(plan_cache(config, report.manifest.as_ref()))
        .with_threads(config.model_threads)
        .with_sessions(config.ort_sessions)
        .with_runtime(config.runtime.clone());
    // A model packed and checked on another engine fails with the way to run it.
    let note = report
        .manifest
        .as_ref()
        .and_then(|m| tiffin_core::unchecked_runtime_note(m, &config.runtime))
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let loaded = tiffin_core::load_verified(path, report, &options)
        .map_err(|e| fail(format!("{}{note}", core_reason(&e))))?;
    let drifts = loaded
        .check_examples()
        .map_err(|e| fail(format!("running the golden examples: {e}{note}")))?;
    if let Some(failed) = drifts.iter().flatten().find(|d| !d.passed()) {
        return Err(fail(format!(
            "golden example output `{}` drifted beyond its tolerance ({} of {} values; max abs \
             {:.3e}, max rel {:.3e}){}{note}",
            failed.output,
            failed.mismatches,
            failed.compared,
            failed.max_abs,
            failed.max_rel,
            failed
                .problem
                .as_ref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default()
        )));
    }
    let policy = batch_policy(config, &loaded);
    let dim = batch_dim(&loaded.manifest.signature);
    let probe = match dim {
        Some(dim) if config.batch_probe && policy.max_rows > 1 => {
            Some(probe::measure(&loaded, dim, policy.max_rows))
        }
        _ => None,
    };
    let batching = batching(policy.max_rows, dim.is_some(), probe);
    Ok(Checked {
        loaded,
        drifts,
        signature,
        policy,
        batching,
    })
}

/// The plans a model keeps: the operator's setting for it, then for every model, then the
/// package's own, then the server's default.
fn plan_cache(config: &Config, manifest: Option<&tiffin_core::manifest::Manifest>) -> usize {
    let own = manifest.and_then(|m| m.serving.plan_cache);
    manifest
        .and_then(|m| config.model_plan_cache.get(&m.name).copied())
        .or(config.force_plan_cache)
        .unwrap_or_else(|| own.map_or(config.plan_cache, |n| n as usize))
}

/// The batching a model gets: the operator's setting for it, then for every model, then the
/// package's own, then the server's default.
fn batch_policy(config: &Config, loaded: &Loaded) -> BatchPolicy {
    let serving = &loaded.manifest.serving;
    let name = &loaded.manifest.name;
    let max_rows = config
        .model_batch_size
        .get(name)
        .copied()
        .or(config.force_batch_size)
        .unwrap_or_else(|| {
            serving
                .max_batch_size
                .map_or(config.max_batch_size, |n| n as usize)
        });
    let max_delay = config
        .model_delay
        .get(name)
        .copied()
        .or(config.force_delay)
        .unwrap_or_else(|| {
            serving
                .max_delay_us
                .map_or(config.max_delay, Duration::from_micros)
        });
    BatchPolicy {
        max_rows,
        max_delay,
    }
}

/// Whether a served model merges requests, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Batching {
    /// Not set for this model (or it has no batch dim): every request runs alone.
    Off,
    /// Requests are merged, up to `max_rows` rows; `probe` is what the load measured, if it did.
    On {
        /// Most rows in one merged run.
        max_rows: usize,
        /// The measurement that found merging pays (`None`: not measured).
        probe: Option<BatchProbe>,
    },
    /// Set, but requests run alone: merging did not pay, or a batch did not run.
    Declined {
        /// The batch size that was set.
        max_rows: usize,
        /// The measurement, when one was made.
        probe: Option<BatchProbe>,
        /// Why, for people.
        reason: String,
    },
}

/// The batch dim of a signature: the named dim every input and output starts with, if there
/// is one. Only such models can merge requests along their first axis.
pub(crate) fn batch_dim(sig: &Signature) -> Option<&str> {
    fn first(shape: &[Dim]) -> Option<&str> {
        shape.first().and_then(Dim::name)
    }
    let name = first(&sig.inputs.first()?.shape)?;
    sig.inputs
        .iter()
        .chain(&sig.outputs)
        .all(|t| first(&t.shape) == Some(name))
        .then_some(name)
}

/// One model version being served.
#[derive(Debug)]
pub struct Served {
    /// The verified, loaded package.
    pub loaded: Arc<Loaded>,
    /// How long verifying, loading and checking it took.
    pub load_time: Duration,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// The golden examples' drift measured at load, per output (`None`: no examples).
    pub drifts: Option<Vec<Drift>>,
    /// Its signature, as far as the server knows it.
    pub signature: SignatureStatus,
    pub(crate) batcher: Option<Batcher>,
    /// Whether it merges requests, and why.
    pub batching: Batching,
    /// Its metrics, with their handles kept.
    pub(crate) metrics: Arc<ModelMetrics>,
    /// Whether every input and output starts with the batch dim, so a request's first axis
    /// counts its rows.
    pub(crate) has_batch_dim: bool,
    /// What a run of this model has cost, measured on the runs served so far.
    pub(crate) cost: RunCost,
    /// Its turns, for an engine that runs a bounded number of calls at once.
    pub(crate) turns: Turns,
}

/// A model's measured cost per input value, which decides where its runs happen.
///
/// Handing a run to a blocking thread and waking the request again costs several
/// microseconds; a small tabular model runs in two. For such models the hop is most of the
/// work, so runs the measured cost says are short enough stay on the async worker. The cost
/// is a moving average (weight 1/8 for each new run) of nanoseconds per input value, so a
/// request with more rows is judged by its size; it starts unknown, so the first runs of
/// every model go to the pool and measure it there.
#[derive(Debug)]
pub(crate) struct RunCost {
    /// `f64` bits of nanoseconds per input value; NaN while nothing has been measured.
    ns_per_value: AtomicU64,
}

impl RunCost {
    fn new() -> RunCost {
        RunCost {
            ns_per_value: AtomicU64::new(f64::NAN.to_bits()),
        }
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.ns_per_value.load(Ordering::Relaxed))
    }

    /// Whether a run on `values` input values is expected to finish within `budget`.
    pub(crate) fn runs_inline(&self, values: usize, budget: Duration) -> bool {
        if budget.is_zero() {
            return false;
        }
        let per_value = self.get();
        // NaN (never measured) compares false, so unmeasured models go to the pool.
        per_value * values as f64 <= budget.as_nanos() as f64
    }

    /// Adds a run of `values` input values that took `took`. Concurrent updates may lose one
    /// another's sample, which an average does not mind.
    ///
    /// A sample counts for at most four times the average. On a busy machine the thread of a
    /// 2 µs run is now and then descheduled for milliseconds mid-run; taken whole, one such run
    /// raised the average a thousandfold and sent the next dozen or so runs through the
    /// blocking pool, hops that cost more than the runs. A model whose runs really grow slower
    /// still gets there, the average rising by 37% a run.
    pub(crate) fn record(&self, values: usize, took: Duration) {
        let sample = took.as_nanos() as f64 / values.max(1) as f64;
        let old = self.get();
        let new = if old.is_nan() {
            sample
        } else {
            old + (sample.min(old * 4.0) - old) / 8.0
        };
        self.ns_per_value.store(new.to_bits(), Ordering::Relaxed);
    }
}

impl Served {
    /// Wraps a loaded package, starting its batch collector when batching applies. Must be
    /// called on a tokio runtime.
    pub(crate) fn new(
        checked: Checked,
        load_time: Duration,
        config: &Config,
        pool: &Arc<Pool>,
        metrics: &Arc<Metrics>,
    ) -> Served {
        let Checked {
            loaded,
            drifts,
            signature,
            policy,
            batching,
        } = checked;
        let labels = ModelLabels {
            model: loaded.manifest.name.clone(),
            version: loaded.manifest.version.to_string(),
        };
        let has_batch_dim = batch_dim(&loaded.manifest.signature).is_some();
        metrics.loaded(&labels, load_time.as_secs_f64());
        let model_metrics = Arc::new(ModelMetrics::new(metrics.clone(), labels));
        let loaded = Arc::new(loaded);
        match &batching {
            Batching::On {
                probe: Some(probe), ..
            } => tracing::info!(
                model = %loaded.manifest.name,
                version = %loaded.manifest.version,
                "batching pays: a batch of {} costs {:.2}x a single run per row ({} against {})",
                probe.rows,
                probe.ratio(),
                shown_micros(probe.batched_per_row),
                shown_micros(probe.single),
            ),
            Batching::Declined { reason, .. } => tracing::warn!(
                model = %loaded.manifest.name,
                version = %loaded.manifest.version,
                "batching set (max {} rows) but requests run singly: {reason}",
                policy.max_rows
            ),
            _ => {}
        }
        let turns = Turns::new(loaded.model.parallel_runs());
        let batcher = matches!(batching, Batching::On { .. }).then(|| {
            Batcher::start(
                loaded.clone(),
                turns.clone(),
                policy,
                pool.clone(),
                config.max_queue,
                model_metrics.clone(),
            )
        });
        Served {
            loaded,
            load_time,
            loaded_at: SystemTime::now(),
            drifts,
            signature,
            batcher,
            batching,
            metrics: model_metrics,
            has_batch_dim,
            cost: RunCost::new(),
            turns,
        }
    }

    /// The package name.
    pub fn name(&self) -> &str {
        &self.loaded.manifest.name
    }

    /// The package version.
    pub fn version(&self) -> &Version {
        &self.loaded.manifest.version
    }

    /// The package signature.
    pub fn signature(&self) -> &Signature {
        &self.loaded.manifest.signature
    }

    /// The most rows one merged run takes, when requests are batched.
    pub fn max_batch_size(&self) -> Option<usize> {
        self.batcher.as_ref().map(|b| b.policy.max_rows)
    }
}

/// What batching a model gets from its setting and the probe's measurement.
fn batching(
    max_rows: usize,
    has_batch_dim: bool,
    probe: Option<Result<Option<BatchProbe>, String>>,
) -> Batching {
    if max_rows <= 1 || !has_batch_dim {
        return Batching::Off;
    }
    match probe {
        None | Some(Ok(None)) => Batching::On {
            max_rows,
            probe: None,
        },
        Some(Ok(Some(probe))) if probe.pays() => Batching::On {
            max_rows,
            probe: Some(probe),
        },
        Some(Ok(Some(probe))) => Batching::Declined {
            max_rows,
            reason: format!(
                "a batch of {} costs {:.2}x a single run per row ({} against {}), \
                 so merging would not pay (--no-batch-probe merges anyway)",
                probe.rows,
                probe.ratio(),
                shown_micros(probe.batched_per_row),
                shown_micros(probe.single),
            ),
            probe: Some(probe),
        },
        Some(Err(reason)) => Batching::Declined {
            max_rows,
            probe: None,
            reason,
        },
    }
}

/// A short time in microseconds, with decimals only where they matter: `0.31 µs`, `88 µs`.
fn shown_micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else {
        format!("{us:.0} µs")
    }
}

/// Every model version served, by name then version.
#[derive(Debug, Default)]
pub struct Registry {
    models: BTreeMap<String, BTreeMap<Version, Arc<Served>>>,
}

impl Registry {
    /// A registry holding `served`; an error names a name and version given twice with
    /// different content.
    pub(crate) fn new(served: Vec<Arc<Served>>) -> Result<Registry, LoadFailure> {
        let mut models: BTreeMap<String, BTreeMap<Version, Arc<Served>>> = BTreeMap::new();
        for s in served {
            let versions = models.entry(s.name().to_owned()).or_default();
            match versions.get(s.version()) {
                Some(existing) if existing.loaded.digest == s.loaded.digest => {}
                Some(existing) => {
                    return Err(LoadFailure {
                        path: s.loaded.path.clone(),
                        reason: format!(
                            "{} {} is also served from {}, with other content ({} vs {}); \
                             give each version once",
                            s.name(),
                            s.version(),
                            existing.loaded.path.display(),
                            s.loaded.digest,
                            existing.loaded.digest
                        ),
                    });
                }
                None => {
                    versions.insert(s.version().clone(), s);
                }
            }
        }
        Ok(Registry { models })
    }

    /// Every served version, by name then version.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.models.values().flat_map(|v| v.values())
    }

    /// The names served, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// True when nothing is served.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The versions of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Option<impl Iterator<Item = &Arc<Served>>> {
        self.models.get(name).map(|v| v.values())
    }

    /// The model `name` at `version`, or its newest version when none is given.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<Arc<Served>, ApiError> {
        let versions = self.models.get(name).ok_or_else(|| {
            ApiError::not_found(format!(
                "no model `{}` is served; served models: {:?}",
                shown(name),
                self.models.keys().collect::<Vec<_>>()
            ))
        })?;
        match version {
            None => Ok(versions
                .values()
                .next_back()
                .expect("a served name has a version")
                .clone()),
            Some(v) => {
                let wanted = Version::parse(v).ok();
                wanted
                    .and_then(|w| versions.get(&w))
                    // A bare major (`1`), as Triton's clients name versions, picks the newest
                    // version of that major.
                    .or_else(|| {
                        let major: u64 = v.parse().ok()?;
                        versions.values().rev().find(|s| s.version().major == major)
                    })
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "model `{name}` has no version `{}`; served versions: {:?}",
                            shown(v),
                            versions.keys().map(ToString::to_string).collect::<Vec<_>>()
                        ))
                    })
            }
        }
    }

    /// The model a request that names none goes to: the only name served (its newest version).
    pub fn only(&self) -> Result<Arc<Served>, ApiError> {
        let mut names = self.models.keys();
        match (names.next(), names.next()) {
            (Some(name), None) => self.get(name, None),
            (None, _) => Err(ApiError::unavailable("no model is loaded yet")),
            (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
                "several models are served ({:?}); name one, e.g. POST /models/{{name}}/predict",
                self.models.keys().collect::<Vec<_>>()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiffin_core::manifest::{DType, TensorSpec};

    #[test]
    fn one_descheduled_run_does_not_send_a_cheap_model_to_the_pool() {
        let budget = Duration::from_micros(50);
        let cost = RunCost::new();
        assert!(
            !cost.runs_inline(30, budget),
            "unmeasured models start on the pool"
        );
        for _ in 0..20 {
            cost.record(30, Duration::from_micros(2));
        }
        assert!(cost.runs_inline(30, budget));
        // A run whose thread lost the CPU for 3 ms.
        cost.record(30, Duration::from_millis(3));
        assert!(cost.runs_inline(30, budget));
        // A model that has really become slow goes to the pool within a few runs.
        let mut runs = 0;
        while cost.runs_inline(30, budget) {
            cost.record(30, Duration::from_millis(3));
            runs += 1;
            assert!(runs < 20, "still inline after {runs} slow runs");
        }
        // And back once its runs are short again.
        while !cost.runs_inline(30, budget) {
            cost.record(30, Duration::from_micros(2));
            runs += 1;
            assert!(runs < 80, "still on the pool after {runs} runs");
        }
    }

    fn spec(name: &str, shape: Vec<Dim>) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype: DType::F32,
            shape,
            feature_names: None,
            class_labels: None,
            description: None,
        }
    }

    #[test]
    fn batching_needs_one_named_first_dim_on_every_tensor() {
        let batch = || Dim::Named("batch".into());
        let mut sig = Signature {
            inputs: vec![spec("x", vec![batch(), Dim::Fixed(4)])],
            outputs: vec![spec("y", vec![batch()])],
        };
        assert_eq!(batch_dim(&sig), Some("batch"));
        sig.outputs.push(spec("state", vec![Dim::Fixed(2)]));
        assert_eq!(batch_dim(&sig), None);
        sig.outputs.pop();
        sig.inputs[0].shape[0] = Dim::Fixed(1);
        assert_eq!(batch_dim(&sig), None);
    }

    #[test]
    fn batching_follows_the_setting_and_the_measurement() {
        let probe = |single_us, batched_us| BatchProbe {
            rows: 8,
            single: Duration::from_micros(single_us),
            batched_per_row: Duration::from_micros(batched_us),
        };
        assert_eq!(batching(1, true, None), Batching::Off);
        assert_eq!(batching(64, false, None), Batching::Off, "no batch dim");
        assert_eq!(
            batching(64, true, None),
            Batching::On {
                max_rows: 64,
                probe: None
            },
            "not measured: as set"
        );
        assert_eq!(
            batching(64, true, Some(Ok(None))),
            Batching::On {
                max_rows: 64,
                probe: None
            },
            "no examples to time: as set"
        );
        assert!(matches!(
            batching(64, true, Some(Ok(Some(probe(100, 30))))),
            Batching::On { probe: Some(_), .. }
        ));
        let Batching::Declined { reason, .. } = batching(64, true, Some(Ok(Some(probe(250, 400)))))
        else {
            panic!("a batch dearer per row is declined")
        };
        assert!(reason.contains("1.60x"), "{reason}");
        assert!(matches!(
            batching(64, true, Some(Err("a batch of 8 rows does not run".into()))),
            Batching::Declined { probe: None, .. }
        ));
    }
}
