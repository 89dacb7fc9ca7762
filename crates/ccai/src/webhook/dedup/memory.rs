//! [`MemoryDeduper`]: a bounded, expiring, in-process [`Deduper`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::{ready, Future};
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::{Claim, DedupFuture, Deduper};

/// Where an event stands in a [`MemoryDeduper`] (see [`MemoryDeduper::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryState {
    /// Claimed and being processed: repeats wait for the outcome.
    InFlight,
    /// Processed successfully: repeats are acknowledged without processing.
    Completed,
}

/// An in-memory [`Deduper`] for one process: the default of the handler's `HandlerOptions`.
///
/// - Completed events are remembered for a time-to-live ([`DEFAULT_TTL`](Self::DEFAULT_TTL), one
///   day, by default) and at most [`capacity`](Self::with_capacity) of them
///   ([`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) by default); beyond that the oldest completed
///   entries are forgotten first. A forgotten event that is delivered again is processed again.
/// - Events in flight are never evicted (there are at most as many as concurrent requests).
/// - State is lost on restart and not shared between processes: several instances behind a load
///   balancer need a shared, durable [`Deduper`].
///
/// Every operation is a short critical section on one mutex; waiting for an in-flight event does
/// not hold it, and needs no particular async runtime.
///
/// ```
/// use std::time::Duration;
/// use ccai::webhook::{Claim, Deduper, EntryState, MemoryDeduper};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let deduper = MemoryDeduper::new()
///     .with_capacity(50_000)
///     .with_ttl(Duration::from_secs(6 * 3600));
/// assert_eq!(deduper.claim("h1").await?, Claim::Acquired);
/// assert_eq!(deduper.state("h1"), Some(EntryState::InFlight));
/// deduper.complete("h1").await?;
/// assert_eq!(deduper.state("h1"), Some(EntryState::Completed));
/// assert_eq!(deduper.claim("h1").await?, Claim::AlreadyCompleted);
/// # Ok::<(), ccai::webhook::DedupError>(())
/// # }).unwrap();
/// ```
pub struct MemoryDeduper {
    capacity: usize,
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Completed entries in completion order, with the sequence number they were completed with;
    /// a record whose entry has since changed is stale and skipped.
    order: VecDeque<(String, u64)>,
    completed: usize,
    next_seq: u64,
}

enum Entry {
    InFlight { waiters: Vec<Waker> },
    Completed { at: Instant, seq: u64 },
}

impl MemoryDeduper {
    /// How many completed events are remembered by default.
    pub const DEFAULT_CAPACITY: usize = 10_000;
    /// How long a completed event is remembered by default: one day.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

    /// A deduper with the default capacity and time-to-live.
    pub fn new() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            ttl: Self::DEFAULT_TTL,
            state: Mutex::new(State::default()),
        }
    }

    /// Remember at most `capacity` completed events (the oldest are forgotten first). `0` keeps
    /// only the in-flight deduplication.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Forget a completed event after `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The maximum number of completed events remembered.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How long completed events are remembered.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Where `event_hash` stands, if it is known (an expired completed entry counts as unknown).
    pub fn state(&self, event_hash: &str) -> Option<EntryState> {
        let state = self.lock();
        match state.entries.get(event_hash)? {
            Entry::InFlight { .. } => Some(EntryState::InFlight),
            Entry::Completed { at, .. } if at.elapsed() < self.ttl => Some(EntryState::Completed),
            Entry::Completed { .. } => None,
        }
    }

    /// How many events are remembered (in flight or completed, expired ones included until they
    /// are swept).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no event is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic cannot happen while the lock is held (no user code runs under it), but never
        // propagate poisoning to requests anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poll_claim(&self, event_hash: &str, waker: &Waker) -> Poll<Claim> {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        state.sweep_expired(now, self.ttl);
        match state.entries.get_mut(event_hash) {
            Some(Entry::InFlight { waiters }) => {
                if !waiters.iter().any(|w| w.will_wake(waker)) {
                    waiters.push(waker.clone());
                }
                Poll::Pending
            }
            Some(Entry::Completed { at, .. }) if now.saturating_duration_since(*at) < self.ttl => {
                Poll::Ready(Claim::AlreadyCompleted)
            }
            Some(entry) => {
                // Expired but not yet swept (its order record is behind a younger one only if
                // the clock went backwards; handle it anyway).
                state.completed = state.completed.saturating_sub(1);
                *entry = Entry::InFlight {
                    waiters: Vec::new(),
                };
                Poll::Ready(Claim::Acquired)
            }
            None => {
                state.entries.insert(
                    event_hash.to_owned(),
                    Entry::InFlight {
                        waiters: Vec::new(),
                    },
                );
                Poll::Ready(Claim::Acquired)
            }
        }
    }

    fn complete_now(&self, event_hash: &str) {
        let now = Instant::now();
        let waiters = {
            let mut state = self.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            let previous = state
                .entries
                .insert(event_hash.to_owned(), Entry::Completed { at: now, seq });
            let waiters = match previous {
                Some(Entry::InFlight { waiters }) => {
                    state.completed += 1;
                    waiters
                }
                Some(Entry::Completed { .. }) => Vec::new(),
                None => {
                    state.completed += 1;
                    Vec::new()
                }
            };
            state.order.push_back((event_hash.to_owned(), seq));
            state.sweep_expired(now, self.ttl);
            while state.completed > self.capacity {
                if !state.evict_oldest() {
                    break;
                }
            }
            state.compact(self.capacity);
            waiters
        };
        waiters.into_iter().for_each(Waker::wake);
    }

    fn release_now(&self, event_hash: &str) {
        let waiters = {
            let mut state = self.lock();
            if !matches!(state.entries.get(event_hash), Some(Entry::InFlight { .. })) {
                return;
            }
            match state.entries.remove(event_hash) {
                Some(Entry::InFlight { waiters }) => waiters,
                _ => Vec::new(),
            }
        };
        waiters.into_iter().for_each(Waker::wake);
    }
}

impl State {
    /// Whether the order record `(hash, seq)` still describes a completed entry.
    fn is_current(&self, hash: &str, seq: u64) -> bool {
        matches!(self.entries.get(hash), Some(Entry::Completed { seq: s, .. }) if *s == seq)
    }

    /// Forgets completed entries older than `ttl`, oldest first, and drops stale order records.
    fn sweep_expired(&mut self, now: Instant, ttl: Duration) {
        while let Some((hash, seq)) = self.order.front() {
            let expired = match self.entries.get(hash.as_str()) {
                Some(Entry::Completed { at, seq: s }) if s == seq => {
                    if now.saturating_duration_since(*at) < ttl {
                        return;
                    }
                    true
                }
                _ => false,
            };
            if let Some((hash, _)) = self.order.pop_front() {
                if expired {
                    self.entries.remove(&hash);
                    self.completed = self.completed.saturating_sub(1);
                }
            }
        }
    }

    /// Forgets the oldest completed entry. Returns `false` if there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((hash, seq)) = self.order.pop_front() {
            if self.is_current(&hash, seq) {
                self.entries.remove(&hash);
                self.completed = self.completed.saturating_sub(1);
                return true;
            }
        }
        false
    }

    /// Keeps the order queue proportional to the number of completed entries.
    fn compact(&mut self, capacity: usize) {
        if self.order.len() > 2 * capacity.max(self.completed) + 64 {
            let order = std::mem::take(&mut self.order);
            self.order = order
                .into_iter()
                .filter(|(hash, seq)| self.is_current(hash, *seq))
                .collect();
        }
    }
}

impl Default for MemoryDeduper {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryDeduper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryDeduper")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("entries", &state.entries.len())
            .field("completed", &state.completed)
            .finish()
    }
}

impl Deduper for MemoryDeduper {
    fn claim<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, Claim> {
        Box::pin(claim_future(self, event_hash))
    }

    fn complete<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, ()> {
        self.complete_now(event_hash);
        Box::pin(ready(Ok(())))
    }

    fn release<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, ()> {
        self.release_now(event_hash);
        Box::pin(ready(Ok(())))
    }
}

fn claim_future<'a>(
    deduper: &'a MemoryDeduper,
    event_hash: &'a str,
) -> impl Future<Output = Result<Claim, super::DedupError>> + Send + 'a {
    std::future::poll_fn(move |cx| deduper.poll_claim(event_hash, cx.waker()).map(Ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(f))
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    }

    #[test]
    fn completed_is_remembered_and_released_is_not() {
        block_on(async {
            let d = MemoryDeduper::new();
            assert_eq!(d.claim("a").await.ok(), Some(Claim::Acquired));
            d.release("a").await.ok();
            assert_eq!(d.state("a"), None);
            assert_eq!(d.claim("a").await.ok(), Some(Claim::Acquired));
            d.complete("a").await.ok();
            d.release("a").await.ok();
            assert_eq!(d.claim("a").await.ok(), Some(Claim::AlreadyCompleted));
        });
    }

    #[test]
    fn capacity_evicts_oldest_completed_first() {
        block_on(async {
            let d = MemoryDeduper::new().with_capacity(3);
            for h in ["a", "b", "c", "d", "e"] {
                assert_eq!(d.claim(h).await.ok(), Some(Claim::Acquired));
                d.complete(h).await.ok();
            }
            assert_eq!(d.state("a"), None);
            assert_eq!(d.state("b"), None);
            for h in ["c", "d", "e"] {
                assert_eq!(d.state(h), Some(EntryState::Completed), "{h}");
            }
            assert_eq!(d.len(), 3);
            // In-flight entries are not evicted and do not count.
            assert_eq!(d.claim("x").await.ok(), Some(Claim::Acquired));
            assert_eq!(d.claim("f").await.ok(), Some(Claim::Acquired));
            d.complete("f").await.ok();
            assert_eq!(d.state("x"), Some(EntryState::InFlight));
            assert_eq!(d.state("c"), None);
        });
    }

    #[test]
    fn zero_ttl_forgets_completed_events() {
        block_on(async {
            let d = MemoryDeduper::new().with_ttl(Duration::ZERO);
            assert_eq!(d.claim("a").await.ok(), Some(Claim::Acquired));
            d.complete("a").await.ok();
            assert_eq!(d.state("a"), None);
            assert_eq!(d.claim("a").await.ok(), Some(Claim::Acquired));
        });
    }

    #[test]
    fn waiters_act_on_the_outcome() {
        block_on(async {
            let d = std::sync::Arc::new(MemoryDeduper::new());
            assert_eq!(d.claim("a").await.ok(), Some(Claim::Acquired));
            let d2 = d.clone();
            let waiter = tokio::spawn(async move { d2.claim("a").await.ok() });
            tokio::task::yield_now().await;
            assert!(!waiter.is_finished());
            d.release("a").await.ok();
            // Released: the waiter acquires it.
            assert_eq!(waiter.await.ok().flatten(), Some(Claim::Acquired));
            let d3 = d.clone();
            let waiter = tokio::spawn(async move { d3.claim("a").await.ok() });
            tokio::task::yield_now().await;
            d.complete("a").await.ok();
            assert_eq!(waiter.await.ok().flatten(), Some(Claim::AlreadyCompleted));
        });
    }

    #[test]
    fn order_queue_stays_bounded_under_churn() {
        block_on(async {
            let d = MemoryDeduper::new()
                .with_capacity(4)
                .with_ttl(Duration::ZERO);
            for i in 0..1000 {
                let h = format!("h{}", i % 3);
                let _ = d.claim(&h).await;
                d.complete(&h).await.ok();
            }
            assert!(d.lock().order.len() <= 2 * 4 + 64);
        });
    }
}
