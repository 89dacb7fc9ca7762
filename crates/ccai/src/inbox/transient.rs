//! [`Retries`]: a few quick tries more for a store operation worth finishing (a release at
//! shutdown, a deduplication record) that failed with an error that may pass by itself (SQLite
//! busy past its timeout, a dropped PostgreSQL connection, a full write queue). Given up at once,
//! a lease stayed until it lapsed (the event was handed on that much later) and a deduplication
//! claim stayed in flight (the sender's retry was held until its lease lapsed).

use std::future::Future;
use std::time::Duration;

use super::StoreError;

/// Tries after the first, for one [`Retries`].
const RETRIES: u32 = 4;

/// The pause before the first retry, doubled before each next: 50, 100, 200, 400 ms.
const FIRST_PAUSE: Duration = Duration::from_millis(50);

/// A budget of retries after transient errors ([`StoreError::is_transient`]): four, with pauses
/// doubling from 50 ms (0.75 s of pauses in all). One budget may be shared by several
/// operations (the releases of one shutdown), so that a store down for good does not hold them
/// four times each.
#[derive(Debug)]
pub(crate) struct Retries {
    left: u32,
    pause: Duration,
}

impl Retries {
    pub(crate) fn new() -> Self {
        Self {
            left: RETRIES,
            pause: FIRST_PAUSE,
        }
    }

    /// Runs `operation`, again after a transient error while retries are left; the last result.
    pub(crate) async fn run<T, F, Fut>(&mut self, mut operation: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        loop {
            match operation().await {
                Err(error) if error.is_transient() && self.left > 0 => {
                    tracing::debug!(target: "ccai::inbox", %error, "a store write failed; trying again");
                    tokio::time::sleep(self.pause).await;
                    self.left -= 1;
                    self.pause = self.pause.saturating_mul(2);
                }
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_tried_again_a_few_times_and_others_not() {
        let calls = AtomicU32::new(0);
        let mut retries = Retries::new();
        let started = tokio::time::Instant::now();
        let result: Result<(), _> = retries
            .run(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Overloaded)
            })
            .await;
        assert_eq!(result, Err(StoreError::Overloaded));
        assert_eq!(calls.load(Ordering::Relaxed), 1 + RETRIES);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(50 + 100 + 200 + 400)
        );
        // The budget is spent: the next operation is tried once.
        calls.store(0, Ordering::Relaxed);
        let _ = retries
            .run(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(StoreError::Locked("x.db".into()))
            })
            .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1);

        // A permanent error is not tried again; a transient one that passes gives the result.
        calls.store(0, Ordering::Relaxed);
        let corrupt = StoreError::Corrupt("x.db".into());
        let result: Result<(), _> = Retries::new()
            .run(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(corrupt.clone())
            })
            .await;
        assert_eq!((result, calls.load(Ordering::Relaxed)), (Err(corrupt), 1));
        calls.store(0, Ordering::Relaxed);
        let result = Retries::new()
            .run(|| async {
                match calls.fetch_add(1, Ordering::Relaxed) {
                    0 | 1 => Err(StoreError::Unavailable("x.db: closed".into())),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!((result, calls.load(Ordering::Relaxed)), (Ok(7), 3));
    }
}
