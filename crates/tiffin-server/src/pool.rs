//! [`Pool`]: the bounded set of blocking threads model runs happen on, with a bounded queue.
//!
//! tract runs a model synchronously, so a run on the async executor would stall every other
//! request on that worker. Runs go to tokio's blocking threads instead, at most
//! `max_concurrency` at once; requests beyond those wait in a queue of at most `max_queue`, and
//! the next one is refused with 503 at once rather than piling up memory and latency. The one
//! exception is a run too short to stall anything (see `RunCost` in registry.rs): it still
//! takes a slot, so the bound holds, but runs where the request is.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The inference pool: shared by every model, so the machine's cores are shared fairly.
#[derive(Debug)]
pub(crate) struct Pool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
}

/// A reserved slot in the pool, with the model's turn where it takes turns: a model run may
/// start.
#[derive(Debug)]
pub(crate) struct Slot {
    // Both held for as long as the slot is, given back when it is dropped.
    _permit: OwnedSemaphorePermit,
    _turn: Option<OwnedSemaphorePermit>,
    /// How long the request waited for it.
    pub(crate) waited: Duration,
}

/// Counts a waiting request for as long as it waits, even when its future is dropped (the
/// client went away, or the request timed out).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub(crate) fn new(max_concurrency: usize, max_queue: usize) -> Pool {
        Pool {
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            max_queue,
        }
    }

    /// Waits for the model's turn (see [`Turns`]) and then a free slot, or refuses at once with
    /// 503 when the queue is full: a request waiting for its turn is queued like one waiting
    /// for a thread, so the bound holds for a model that takes turns too.
    pub(crate) async fn reserve(&self, turns: &Turns) -> Result<Slot, ApiError> {
        let start = Instant::now();
        if let Some(turn) = turns.try_take()
            && let Ok(permit) = self.permits.clone().try_acquire_owned()
        {
            return Ok(Slot {
                _permit: permit,
                _turn: turn,
                waited: Duration::ZERO,
            });
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::unavailable(
                "the server is at its limit of queued requests; retry later",
            ));
        }
        let _waiting = Waiting(&self.waiting);
        // The turn first, then a thread: a request waiting for its model holds no thread
        // another model could use.
        let turn = turns.take().await;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        Ok(Slot {
            _permit: permit,
            _turn: turn,
            waited: start.elapsed(),
        })
    }

    /// Runs `f` on a blocking thread in `slot`. The slot is held until `f` returns, even if
    /// the caller stops waiting, so the pool never runs more than its size.
    pub(crate) async fn run<T: Send + 'static>(
        slot: Slot,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(slot);
            out
        })
        .await
        .map_err(|e| ApiError::internal(&format_args!("a model run panicked: {e}")))
    }

    /// Requests waiting for a slot now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Turns at one model that runs a bounded number of calls at once (ONNX Runtime: one per
/// session). A request waits for a turn on the executor, as part of [`Pool::reserve`]: a
/// run that met a busy session would otherwise block its thread at the session's lock (an async
/// worker, for a short run made inline), and its measured cost would count the wait.
#[derive(Debug, Clone)]
pub(crate) struct Turns(Option<Arc<Semaphore>>);

impl Turns {
    /// Turns for a model of `parallel_runs` runs at once; `None` (tract) takes no turns.
    pub(crate) fn new(parallel_runs: Option<usize>) -> Turns {
        Turns(parallel_runs.map(|runs| Arc::new(Semaphore::new(runs.max(1)))))
    }

    /// Waits for a turn, held until the permit is dropped; `None` for a model that takes none.
    async fn take(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed, so acquiring fails never.
        self.0.as_ref()?.clone().acquire_owned().await.ok()
    }

    /// A turn if one is free now (`Some(None)` for a model that takes none); `None` if not.
    fn try_take(&self) -> Option<Option<OwnedSemaphorePermit>> {
        match &self.0 {
            None => Some(None),
            Some(turns) => turns.clone().try_acquire_owned().ok().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_with_503() {
        let pool = Pool::new(1, 1);
        let running = pool.reserve(&Turns::new(None)).await.unwrap();
        // One may wait...
        let pool = Arc::new(pool);
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.reserve(&Turns::new(None)).await.map(|s| s.waited) })
        };
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        // ...the next is refused.
        let refused = pool.reserve(&Turns::new(None)).await.unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Pool::run(running, || 7).await.unwrap(), 7);
        assert!(waiter.await.unwrap().is_ok());
        assert_eq!(pool.queued(), 0);
    }

    /// A request waiting for its model's turn is queued: with the queue full, the next one is
    /// refused, though a pool thread is free.
    #[tokio::test]
    async fn a_request_waiting_for_its_turn_counts_against_the_queue() {
        let pool = Arc::new(Pool::new(2, 1));
        let turns = Turns::new(Some(1));
        let running = pool.reserve(&turns).await.unwrap();
        let waiter = {
            let (pool, turns) = (pool.clone(), turns.clone());
            tokio::spawn(async move { pool.reserve(&turns).await.is_ok() })
        };
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        let refused = pool.reserve(&turns).await.unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        drop(running);
        assert!(waiter.await.unwrap());
        assert_eq!(pool.queued(), 0);
    }

    #[tokio::test]
    async fn turns_bound_runs_at_once_and_tract_takes_none() {
        assert!(Turns::new(None).take().await.is_none());
        let turns = Turns::new(Some(2));
        let first = turns.take().await.unwrap();
        let _second = turns.take().await.unwrap();
        // A third waits until one is given back.
        let third = {
            let turns = turns.clone();
            tokio::spawn(async move { turns.take().await.is_some() })
        };
        tokio::task::yield_now().await;
        assert!(!third.is_finished());
        drop(first);
        assert!(third.await.unwrap());
    }
}
