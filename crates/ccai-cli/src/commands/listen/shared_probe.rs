//! One store probe for many readiness checks: concurrent `/readyz` calls share the probe in
//! flight, and its result answers the calls that follow for a short while.
//!
//! Each call probed the store on its own: a flood of them (26,546 calls from many clients)
//! contended with each other and the receiver's writer for SQLite's write lock, and 23 were
//! answered 503 from a store healthy all along; each probe also cost the writer a turn.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A probe's answer: `Err` holds why the store is not ready.
pub(super) type Probed = Result<(), String>;

/// How long a probe's result is reused. Load balancers probe every few seconds, so each of
/// their calls still gets a fresh probe; a flood gets at most one a second. A failure is reused
/// as long as a success: a store that cannot take writes is not probed by every call of a
/// flood, and one that recovers is seen within the second.
pub(super) const REUSE: Duration = Duration::from_secs(1);

/// The probe in flight and the last result (see the module's doc).
#[derive(Default)]
pub(super) struct SharedProbe {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// When the last probe finished, and what it found.
    last: Option<(Instant, Probed)>,
    /// The probe running now: its result is sent here once it finishes.
    in_flight: Option<watch::Receiver<Option<Probed>>>,
}

impl SharedProbe {
    /// The last probe's result if it finished less than [`REUSE`] ago; else that of the probe in
    /// flight, or of a new one `probe` makes. The probe runs on a task of its own: a caller that
    /// goes away (its client hung up) leaves it to finish for the others.
    pub(super) async fn check<F>(&self, probe: impl FnOnce() -> F) -> Probed
    where
        F: Future<Output = Probed> + Send + 'static,
    {
        let mut answer = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, probed)) = &state.last {
                if at.elapsed() < REUSE {
                    return probed.clone();
                }
            }
            match &state.in_flight {
                Some(answer) => answer.clone(),
                None => {
                    let (send, answer) = watch::channel(None);
                    state.in_flight = Some(answer.clone());
                    tokio::spawn(run(probe(), Arc::clone(&self.state), send));
                    answer
                }
            }
        };
        let probed = match answer.wait_for(Option::is_some).await {
            Ok(probed) => probed.clone(),
            // Not expected: `run` always sends.
            Err(_) => None,
        };
        probed.unwrap_or_else(|| Err(FAILED.into()))
    }
}

/// Why the store is not ready when the probe itself failed (it panicked).
const FAILED: &str = "the store probe failed";

/// Runs `probe` (on a task of its own, so that a panic in it is an answer too), keeps its result
/// in `state` and sends it to the callers waiting.
async fn run(
    probe: impl Future<Output = Probed> + Send + 'static,
    state: Arc<Mutex<State>>,
    send: watch::Sender<Option<Probed>>,
) {
    let probed = tokio::spawn(probe)
        .await
        .unwrap_or_else(|_| Err(FAILED.into()));
    ccai::telemetry::record_readiness_probe(probed.is_ok());
    {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.last = Some((Instant::now(), probed.clone()));
        state.in_flight = None;
    }
    send.send_replace(Some(probed));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Calls made while a probe runs share it, and those that follow reuse its result.
    #[tokio::test]
    async fn concurrent_calls_share_one_probe_and_the_next_reuse_it() {
        let shared = Arc::new(SharedProbe::default());
        let probes = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (shared, probes, mut released) =
                (Arc::clone(&shared), Arc::clone(&probes), released.clone());
            calls.spawn(async move {
                shared
                    .check(|| async move {
                        probes.fetch_add(1, Ordering::SeqCst);
                        let _ = released.wait_for(|r| *r).await;
                        Err("busy".to_owned())
                    })
                    .await
            });
        }
        // Every call waits on the one probe until it is let finish.
        while probes.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        release.send_replace(true);
        while let Some(answer) = calls.join_next().await {
            assert_eq!(answer.expect("a call"), Err("busy".to_owned()));
        }
        assert_eq!(probes.load(Ordering::SeqCst), 1);
        let again = shared
            .check(|| async { panic!("probed again within the reuse interval") })
            .await;
        assert_eq!(again, Err("busy".to_owned()));
    }

    /// A probe that panics is an answer (not ready), and the next call past the reuse interval
    /// probes again.
    #[tokio::test]
    async fn a_probe_that_panics_is_not_ready_and_the_next_is_run() {
        let shared = SharedProbe::default();
        let answer = shared.check(|| async { panic!("the probe broke") }).await;
        assert_eq!(answer, Err(FAILED.to_owned()));
        shared
            .state
            .lock()
            .expect("state")
            .last
            .as_mut()
            .expect("kept")
            .0 -= REUSE;
        assert_eq!(shared.check(|| async { Ok(()) }).await, Ok(()));
    }
}
