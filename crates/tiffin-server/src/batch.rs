//! Dynamic batching: concurrent requests to one model merged into one run, then split back.
//!
//! One collector task per model takes requests from a bounded channel. It waits for a first
//! request, waits until the model can start a run (an ONNX Runtime model runs one call per
//! session at a time), reserves a slot in the inference pool (while it waits, more requests
//! arrive and the batch grows on its own under load), then takes what has arrived, and keeps
//! taking until the batch holds `max_rows` rows or the first request has waited `max_delay`. A lone request is
//! therefore never held longer than `max_delay` for company. A request that would overflow the
//! batch, or whose non-batch axes differ (images of another size), starts the next batch
//! instead. The merged run's outputs are cut back into each caller's rows, in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tiffin_core::Loaded;
use tiffin_core::runtime::Tensor;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::metrics::ModelMetrics;
use crate::pool::{Pool, Turns};

/// When to close a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchPolicy {
    /// Most rows in one run; a single request may not send more.
    pub(crate) max_rows: usize,
    /// Longest a request waits for others to join it.
    pub(crate) max_delay: Duration,
}

struct Job {
    inputs: Vec<Tensor>,
    rows: usize,
    arrived: Instant,
    reply: oneshot::Sender<Result<Vec<Tensor>, ApiError>>,
}

/// The handle requests submit to; the collector task ends when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
    pub(crate) policy: BatchPolicy,
}

impl Batcher {
    /// Starts the collector for `loaded` (whose runs take `turns`) on the current tokio
    /// runtime.
    pub(crate) fn start(
        loaded: Arc<Loaded>,
        turns: Turns,
        policy: BatchPolicy,
        pool: Arc<Pool>,
        queue: usize,
        metrics: Arc<ModelMetrics>,
    ) -> Batcher {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(collect(rx, loaded, turns, policy, pool, metrics));
        Batcher { tx, policy }
    }

    /// Queues a request of `rows` rows (already checked against the signature) and waits for
    /// its share of a batched run.
    pub(crate) async fn submit(
        &self,
        inputs: Vec<Tensor>,
        rows: usize,
    ) -> Result<Vec<Tensor>, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            inputs,
            rows,
            arrived: Instant::now(),
            reply,
        };
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                ApiError::unavailable("the model's batching queue is full; retry later")
            }
            mpsc::error::TrySendError::Closed(_) => {
                ApiError::unavailable("the model is being unloaded; retry")
            }
        })?;
        answer
            .await
            .map_err(|_| ApiError::internal(&"a batch ended without answering a request"))?
    }
}

/// Whether `job` can share a run with `first`: same sizes on every axis but the batch axis.
fn stacks_with(first: &Job, job: &Job) -> bool {
    first
        .inputs
        .iter()
        .zip(&job.inputs)
        .all(|(a, b)| a.shape().get(1..) == b.shape().get(1..))
}

async fn collect(
    mut rx: mpsc::Receiver<Job>,
    loaded: Arc<Loaded>,
    turns: Turns,
    policy: BatchPolicy,
    pool: Arc<Pool>,
    metrics: Arc<ModelMetrics>,
) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        // A model that runs a bounded number of calls at once (ONNX Runtime's sessions) gets
        // a batch closed only when one of them is free (the slot holds the model's turn).
        // Closed earlier, a batch would wait at the session's lock with the requests that
        // arrive meanwhile queued behind it instead of in it: with one session under load,
        // every other batch was the few requests that came in the instant after the previous
        // one closed.
        let slot = match pool.reserve(&turns).await {
            Ok(slot) => slot,
            Err(err) => {
                let _ = first.reply.send(Err(err));
                continue;
            }
        };
        let deadline = tokio::time::Instant::from_std(first.arrived + policy.max_delay);
        let mut rows = first.rows;
        let mut batch = vec![first];
        while rows < policy.max_rows {
            let next = match rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::select! {
                        job = rx.recv() => match job {
                            Some(job) => job,
                            None => break,
                        },
                        () = tokio::time::sleep_until(deadline) => break,
                    }
                }
            };
            if rows + next.rows <= policy.max_rows && stacks_with(&batch[0], &next) {
                rows += next.rows;
                batch.push(next);
            } else {
                held = Some(next);
                break;
            }
        }
        metrics.batch(rows);
        tokio::spawn(run_batch(batch, slot, loaded.clone(), metrics.clone()));
    }
}

/// Runs one batch in its pool slot and answers each of its requests.
async fn run_batch(
    batch: Vec<Job>,
    slot: crate::pool::Slot,
    loaded: Arc<Loaded>,
    metrics: Arc<ModelMetrics>,
) {
    let started = Instant::now();
    let (inputs, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|job| (job.inputs, (job.rows, job.arrived, job.reply)))
        .unzip();
    // Timed on the pool thread, as unbatched runs are: the inference histogram counts the run
    // (with the merge and split), not the hop to the pool and back.
    let result = Pool::run(slot, move || {
        let start = Instant::now();
        let parts = run_merged(&loaded, inputs);
        (parts, start.elapsed())
    })
    .await;
    match result.and_then(|(parts, inference)| parts.map(|p| (p, inference))) {
        Ok((parts, inference)) => {
            for (outputs, (_, arrived, reply)) in parts.into_iter().zip(answers) {
                let queued = started.saturating_duration_since(arrived);
                metrics.ran(queued, inference);
                let _ = reply.send(Ok(outputs));
            }
        }
        Err(err) => {
            // Logged once for the batch here (each request's own line, with its id, comes from
            // the request middleware, if the request is still there to be answered).
            if let Some(detail) = &err.detail {
                tracing::error!(rows = answers.len(), error = %detail, "a batched run failed");
            }
            for (_, _, reply) in answers {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

/// Stacks each input across the requests, runs the model once and cuts every output back into
/// the requests' rows. A batch of one runs as it is.
fn run_merged(loaded: &Loaded, requests: Vec<Vec<Tensor>>) -> Result<Vec<Vec<Tensor>>, ApiError> {
    if requests.len() == 1 {
        let only = requests.into_iter().next().expect("one request");
        return Ok(vec![loaded.run(&only)?]);
    }
    let rows: Vec<usize> = requests.iter().map(|r| r[0].shape()[0]).collect();
    let inputs = (0..requests[0].len())
        .map(|ix| {
            let parts: Vec<&Tensor> = requests.iter().map(|r| &r[ix]).collect();
            Tensor::concat_rows(&parts)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(&format_args!("merging a batch: {e}")))?;
    let outputs = loaded.run(&inputs)?;
    let mut per_request: Vec<Vec<Tensor>> = vec![Vec::with_capacity(outputs.len()); rows.len()];
    for (ix, output) in outputs.iter().enumerate() {
        let parts = output.split_rows(&rows).ok_or_else(|| {
            ApiError::internal(&format_args!(
                "output {ix} has shape {:?}, which does not split into the batch's rows {rows:?}",
                output.shape()
            ))
        })?;
        for (request, part) in per_request.iter_mut().zip(parts) {
            request.push(part);
        }
    }
    Ok(per_request)
}
