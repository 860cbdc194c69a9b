//! Whether merging requests pays for a model, measured at load before any request is merged.
//!
//! A merged run is cheaper per row than single runs only when the model's kernels put the extra
//! rows to use (matrix products over a batch). Some do not: tract's convolutions cost as much
//! per image or more in a batch, and `mnist_cnn` batched served 0.6x the requests per second it
//! served unbatched, each request also waiting for company. So when batching is asked for, the
//! server times the package's first example row run alone and a batch of copies of it, on the
//! loaded model, and runs requests singly when the batch is not clearly cheaper per row.

use std::time::{Duration, Instant};

use serde::Serialize;
use tiffin_core::Loaded;
use tiffin_core::runtime::Tensor;

/// A batch must cost at most this share of a single run per row to be worth merging requests
/// for: below it the saving outweighs the wait for company and the noise of a shared machine.
const PAYS_BELOW: f64 = 0.9;

/// The largest batch timed: enough to show whether batching helps, cheap enough to run at load.
const PROBE_ROWS: usize = 8;

/// At most this many timings of each kind.
const ROUNDS: usize = 7;

/// Timing stops after this long, once `MIN_ROUNDS` of each kind are in: a large model must not
/// hold its load up for long to decide.
const BUDGET: Duration = Duration::from_millis(300);
const MIN_ROUNDS: usize = 3;

/// What the probe measured, per row: a single run against a merged run of `rows` rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BatchProbe {
    /// The rows of the merged run timed.
    pub rows: usize,
    /// Median time of a one-row run.
    #[serde(serialize_with = "micros")]
    pub single: Duration,
    /// Median time of the merged run, divided by its rows.
    #[serde(serialize_with = "micros")]
    pub batched_per_row: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e6)
}

impl BatchProbe {
    /// A merged run's cost per row as a share of a single run's.
    pub fn ratio(&self) -> f64 {
        let single = self.single.as_secs_f64();
        if single == 0.0 {
            return 1.0;
        }
        self.batched_per_row.as_secs_f64() / single
    }

    /// Whether merging requests pays: a batch costs clearly less per row.
    pub fn pays(&self) -> bool {
        self.ratio() <= PAYS_BELOW
    }
}

/// Times the first row of the package's examples alone and as a batch of copies (up to
/// `max_rows`, at most [`PROBE_ROWS`]). `Ok(None)` when the package has no examples to time;
/// an `Err` says why a batch could not run, which means requests must not be merged either.
pub(crate) fn measure(
    loaded: &Loaded,
    batch_dim: &str,
    max_rows: usize,
) -> Result<Option<BatchProbe>, String> {
    let Some(examples) = loaded.example_inputs().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let row = examples
        .iter()
        .map(|t| match t.shape().first() {
            Some(&1) => Ok(t.clone()),
            Some(&n) if n > 1 => t
                .split_rows(&[1, n - 1])
                .and_then(|mut parts| parts.drain(..1).next())
                .ok_or_else(|| format!("cannot take a row of the example input {t}")),
            _ => Err(format!("the example input {t} has no rows")),
        })
        .collect::<Result<Vec<Tensor>, String>>()?;
    let rows = max_rows.clamp(2, PROBE_ROWS);
    let batch = row
        .iter()
        .map(|t| Tensor::concat_rows(&vec![t; rows]))
        .collect::<Result<Vec<Tensor>, String>>()?;
    // Both sizes on their own concretized plans, as requests of those sizes will find them
    // (built now, not in the background mid-measurement). A model with other dynamic dims has
    // no plan per batch size alone; it is timed on whatever plan it runs.
    for size in [1, rows] {
        let _ = loaded.model.prepare(&[(batch_dim, size)]);
    }
    let run = |inputs: &[Tensor]| -> Result<Duration, String> {
        let start = Instant::now();
        loaded.run(inputs).map_err(|e| e.to_string())?;
        Ok(start.elapsed())
    };
    // One run of each first: the first run of a plan pays for allocations the others reuse.
    run(&row)?;
    run(&batch).map_err(|e| format!("a batch of {rows} rows does not run: {e}"))?;
    let started = Instant::now();
    let (mut singles, mut batches) = (Vec::new(), Vec::new());
    while singles.len() < ROUNDS && (singles.len() < MIN_ROUNDS || started.elapsed() < BUDGET) {
        // Alternated, so that a stretch of a busy machine slows both kinds alike.
        singles.push(run(&row)?);
        batches.push(run(&batch)?);
    }
    Ok(Some(BatchProbe {
        rows,
        single: median(&mut singles),
        batched_per_row: median(&mut batches) / rows as u32,
    }))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(single_us: u64, batched_per_row_us: u64) -> BatchProbe {
        BatchProbe {
            rows: 8,
            single: Duration::from_micros(single_us),
            batched_per_row: Duration::from_micros(batched_per_row_us),
        }
    }

    #[test]
    fn batching_pays_only_when_clearly_cheaper_per_row() {
        assert!(probe(100, 20).pays(), "a fifth of the cost per row");
        assert!(probe(100, 90).pays(), "at the bound");
        assert!(!probe(100, 95).pays(), "within the noise");
        assert!(
            !probe(250, 400).pays(),
            "dearer per row, as tract's convolutions are"
        );
        assert!(!probe(0, 0).pays(), "nothing measured is no evidence");
    }

    #[test]
    fn the_median_ignores_one_slow_run() {
        let mut times: Vec<Duration> = [5, 6, 500, 5, 7]
            .into_iter()
            .map(Duration::from_micros)
            .collect();
        assert_eq!(median(&mut times), Duration::from_micros(6));
    }
}
