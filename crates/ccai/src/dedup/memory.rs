//! [`MemoryDeduper`]: a bounded, expiring, in-process [`Deduper`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{Claim, DedupFuture, Deduper};

/// Where an event stands in a [`MemoryDeduper`] (for this module's tests).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EntryState {
    /// Claimed and being processed: repeats wait for the outcome.
    InFlight,
    /// Processed successfully: repeats are acknowledged without processing.
    Completed,
}

/// An in-memory [`Deduper`] for one process: the default of the handler's `HandlerOptions`.
///
/// - Completed events are remembered for a time-to-live ([`DEFAULT_TTL`](Self::DEFAULT_TTL), 30
///   days, by default: past a sender's retries, which can span about 27.6 hours) and at most [`capacity`](Self::with_capacity) of them
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
/// use ccai::dedup::{Claim, Deduper, MemoryDeduper};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let deduper = MemoryDeduper::new()
///     .with_capacity(50_000)
///     .with_ttl(Duration::from_secs(6 * 3600));
/// assert_eq!(deduper.claim("h1").await?, Claim::Acquired);
/// deduper.complete("h1").await?;
/// assert_eq!(deduper.claim("h1").await?, Claim::AlreadyCompleted);
/// # Ok::<(), ccai::dedup::DedupError>(())
/// # }).unwrap();
/// ```
pub struct MemoryDeduper {
    capacity: usize,
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Keys are shared with `order` (one allocation per event).
    entries: HashMap<Arc<str>, Entry>,
    /// Completed entries in completion order, with the sequence number they were completed with;
    /// a record whose entry has since changed is stale and skipped.
    /// Each record carries its completion time, so that expiry is checked without a lookup.
    order: VecDeque<(Arc<str>, u64, Instant)>,
    completed: usize,
    next_seq: u64,
    /// Identifies waiting futures, so that a dropped one can take its waker back.
    next_waiter: u64,
}

enum Entry {
    InFlight(InFlight),
    Completed { at: Instant, seq: u64 },
}

/// A claim being processed and the futures waiting for its outcome.
#[derive(Default)]
struct InFlight {
    /// Where the outcome is published for the waiters; created when the first one arrives (an
    /// uncontended claim allocates nothing).
    flight: Option<Arc<Flight>>,
    waiters: Vec<(u64, Waker)>,
}

/// The outcome of one in-flight claim, shared with the futures waiting for it. Written under the
/// deduper's lock before they are woken, so a waiter learns the outcome of the very claim it
/// waited on even if the entry was evicted, expired or re-claimed in between.
struct Flight {
    outcome: AtomicU8,
}

const PENDING: u8 = 0;
const COMPLETED: u8 = 1;
const RELEASED: u8 = 2;

impl Flight {
    fn outcome(&self) -> u8 {
        self.outcome.load(Ordering::Acquire)
    }
}

impl InFlight {
    /// Publishes `outcome` to the waiters and returns their wakers (to wake outside the lock).
    fn finish(self, outcome: u8) -> Vec<(u64, Waker)> {
        if let Some(flight) = &self.flight {
            flight.outcome.store(outcome, Ordering::Release);
        }
        self.waiters
    }
}

/// A [`MemoryDeduper::claim`] future waiting for an in-flight claim.
struct Waiting {
    flight: Arc<Flight>,
    id: u64,
}

impl MemoryDeduper {
    /// How many completed events are remembered by default.
    pub const DEFAULT_CAPACITY: usize = 10_000;
    /// How long a completed event is remembered by default: 30 days. The usual webhook retry
    /// schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each ±20 %; its first steps match what
    /// CloudContactAI documents) spans about 27.6 hours: a shorter memory (one day, before) let a
    /// late retry of an event whose 200 was lost run the callback again.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

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
    #[cfg(test)]
    fn state(&self, event_hash: &str) -> Option<EntryState> {
        let state = self.lock();
        match state.entries.get(event_hash)? {
            Entry::InFlight(_) => Some(EntryState::InFlight),
            Entry::Completed { at, .. } if at.elapsed() < self.ttl => Some(EntryState::Completed),
            Entry::Completed { .. } => None,
        }
    }

    /// How many events are remembered (in flight or completed, expired ones included until they
    /// are swept).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic cannot happen while the lock is held (no user code runs under it), but never
        // propagate poisoning to requests anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poll_claim(
        &self,
        event_hash: &str,
        waker: &Waker,
        waiting: &mut Option<Waiting>,
    ) -> Poll<Claim> {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(w) = waiting.take() {
            match w.flight.outcome() {
                COMPLETED => return Poll::Ready(Claim::AlreadyCompleted),
                // Released: compete for the event like a new claim (one waiter acquires it).
                RELEASED => {}
                _ => match state.entries.get_mut(event_hash) {
                    Some(Entry::InFlight(in_flight))
                        if in_flight
                            .flight
                            .as_ref()
                            .is_some_and(|f| Arc::ptr_eq(f, &w.flight)) =>
                    {
                        // Still in flight (a spurious poll): keep the latest waker.
                        match in_flight.waiters.iter_mut().find(|(id, _)| *id == w.id) {
                            Some((_, registered)) => registered.clone_from(waker),
                            None => in_flight.waiters.push((w.id, waker.clone())),
                        }
                        *waiting = Some(w);
                        return Poll::Pending;
                    }
                    // Not reachable (every change of the entry publishes an outcome first), but
                    // a fresh claim is the safe answer.
                    _ => {}
                },
            }
        }
        state.sweep_expired(now, self.ttl);
        let id = state.next_waiter;
        match state.entries.get_mut(event_hash) {
            Some(Entry::InFlight(in_flight)) => {
                state.next_waiter += 1;
                let flight = in_flight
                    .flight
                    .get_or_insert_with(|| {
                        Arc::new(Flight {
                            outcome: AtomicU8::new(PENDING),
                        })
                    })
                    .clone();
                in_flight.waiters.push((id, waker.clone()));
                *waiting = Some(Waiting { flight, id });
                Poll::Pending
            }
            Some(Entry::Completed { at, .. }) if now.saturating_duration_since(*at) < self.ttl => {
                Poll::Ready(Claim::AlreadyCompleted)
            }
            Some(entry) => {
                // Expired but not yet swept (its order record is behind a younger one only if
                // the clock went backwards; handle it anyway).
                state.completed = state.completed.saturating_sub(1);
                *entry = Entry::InFlight(InFlight::default());
                Poll::Ready(Claim::Acquired)
            }
            None => {
                state
                    .entries
                    .insert(Arc::from(event_hash), Entry::InFlight(InFlight::default()));
                Poll::Ready(Claim::Acquired)
            }
        }
    }

    /// Takes back the waker of a claim future dropped while waiting.
    fn forget_waiter(&self, event_hash: &str, waiting: &Waiting) {
        if waiting.flight.outcome() != PENDING {
            // Already woken: its waker was taken with the outcome.
            return;
        }
        let mut state = self.lock();
        if let Some(Entry::InFlight(in_flight)) = state.entries.get_mut(event_hash) {
            if in_flight
                .flight
                .as_ref()
                .is_some_and(|f| Arc::ptr_eq(f, &waiting.flight))
            {
                in_flight.waiters.retain(|(id, _)| *id != waiting.id);
            }
        }
    }

    fn complete_now(&self, event_hash: &str) {
        let now = Instant::now();
        let waiters = {
            let mut state = self.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            // Reuse the key of a claimed entry rather than allocating another.
            let key = match state.entries.get_key_value(event_hash) {
                Some((key, _)) => Arc::clone(key),
                None => Arc::from(event_hash),
            };
            let previous = state
                .entries
                .insert(Arc::clone(&key), Entry::Completed { at: now, seq });
            let waiters = match previous {
                Some(Entry::InFlight(in_flight)) => {
                    state.completed += 1;
                    in_flight.finish(COMPLETED)
                }
                Some(Entry::Completed { .. }) => Vec::new(),
                None => {
                    state.completed += 1;
                    Vec::new()
                }
            };
            state.order.push_back((key, seq, now));
            state.sweep_expired(now, self.ttl);
            while state.completed > self.capacity {
                if !state.evict_oldest() {
                    break;
                }
            }
            state.compact();
            waiters
        };
        waiters.into_iter().for_each(|(_, waker)| waker.wake());
    }

    fn release_now(&self, event_hash: &str) {
        let waiters = {
            let mut state = self.lock();
            if !matches!(state.entries.get(event_hash), Some(Entry::InFlight(_))) {
                return;
            }
            match state.entries.remove(event_hash) {
                Some(Entry::InFlight(in_flight)) => in_flight.finish(RELEASED),
                _ => Vec::new(),
            }
        };
        waiters.into_iter().for_each(|(_, waker)| waker.wake());
    }
}

impl State {
    /// Whether the order record `(hash, seq)` still describes a completed entry.
    fn is_current(&self, hash: &str, seq: u64) -> bool {
        matches!(self.entries.get(hash), Some(Entry::Completed { seq: s, .. }) if *s == seq)
    }

    /// Forgets completed entries older than `ttl`, oldest first, and drops the order records
    /// passed on the way (a stale record is dropped once it is as old as `ttl`, or by `compact`).
    fn sweep_expired(&mut self, now: Instant, ttl: Duration) {
        while let Some((_, _, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < ttl {
                return;
            }
            if let Some((hash, seq, _)) = self.order.pop_front() {
                if self.is_current(&hash, seq) {
                    self.entries.remove(&hash);
                    self.completed = self.completed.saturating_sub(1);
                }
            }
        }
    }

    /// Forgets the oldest completed entry (skipping stale records); `false` if there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((hash, seq, _)) = self.order.pop_front() {
            // One lookup in the usual case (the record is current); a stale one is put back.
            match self.entries.remove(&hash) {
                Some(Entry::Completed { seq: s, .. }) if s == seq => {
                    self.completed = self.completed.saturating_sub(1);
                    return true;
                }
                Some(other) => {
                    self.entries.insert(hash, other);
                }
                None => {}
            }
        }
        false
    }

    /// Keeps the order queue proportional to the number of completed entries: compacted once at
    /// least half of it is stale, so each record costs O(1) over time. (Sized by the live count,
    /// not the capacity: a capacity of `usize::MAX`, "remember everything", overflowed here.)
    fn compact(&mut self) {
        if self.order.len() > self.completed.saturating_mul(2).saturating_add(64) {
            let order = std::mem::take(&mut self.order);
            self.order = order
                .into_iter()
                .filter(|(hash, seq, _)| self.is_current(hash, *seq))
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
        Box::pin(ClaimFuture {
            deduper: self,
            event_hash,
            waiting: None,
        })
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

/// The future of [`MemoryDeduper::claim`]. Dropped while waiting, it takes its waker back, so
/// abandoned repeats do not accumulate on a long-running claim.
struct ClaimFuture<'a> {
    deduper: &'a MemoryDeduper,
    event_hash: &'a str,
    waiting: Option<Waiting>,
}

impl Future for ClaimFuture<'_> {
    type Output = Result<Claim, super::DedupError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.deduper
            .poll_claim(this.event_hash, cx.waker(), &mut this.waiting)
            .map(Ok)
    }
}

impl Drop for ClaimFuture<'_> {
    fn drop(&mut self) {
        if let Some(waiting) = &self.waiting {
            self.deduper.forget_waiter(self.event_hash, waiting);
        }
    }
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

    /// The sender's last retry comes up to about 33 hours after the first delivery (27.6 h of
    /// delays, +20 % jitter): a repeat of a processed event must still be recognised then.
    #[test]
    fn the_default_memory_outlasts_the_senders_retries() {
        let delays_secs: u64 = [5, 300, 1800, 7200, 18_000, 36_000, 36_000].iter().sum();
        let horizon = Duration::from_secs(delays_secs).mul_f64(1.2);
        assert!(
            MemoryDeduper::DEFAULT_TTL >= horizon,
            "{:?} < {horizon:?}",
            MemoryDeduper::DEFAULT_TTL
        );
        assert_eq!(MemoryDeduper::new().ttl(), MemoryDeduper::DEFAULT_TTL);
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

    /// "Remember everything": a capacity of `usize::MAX` overflowed the compaction threshold
    /// (a panic in debug builds, after the waiters' wakers were taken).
    #[test]
    fn the_largest_capacity_remembers_without_overflow() {
        block_on(async {
            let d = MemoryDeduper::new().with_capacity(usize::MAX);
            for i in 0..200 {
                let h = format!("h{i}");
                assert_eq!(d.claim(&h).await.ok(), Some(Claim::Acquired));
                // Released once first: a stale record for the compaction to drop.
                d.release(&h).await.ok();
                assert_eq!(d.claim(&h).await.ok(), Some(Claim::Acquired));
                d.complete(&h).await.ok();
            }
            assert_eq!(d.len(), 200);
            assert_eq!(d.state("h0"), Some(EntryState::Completed));
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

    /// A waiter learns the outcome of the claim it waited on, even when the completed entry is
    /// forgotten at once (no capacity, no time-to-live): it must not run the event again.
    #[test]
    fn waiters_see_completion_even_if_the_entry_is_forgotten_at_once() {
        for d in [
            MemoryDeduper::new().with_capacity(0),
            MemoryDeduper::new().with_ttl(Duration::ZERO),
        ] {
            block_on(async {
                let d = std::sync::Arc::new(d);
                assert_eq!(d.claim("a").await.ok(), Some(Claim::Acquired));
                let d2 = d.clone();
                let waiter = tokio::spawn(async move { d2.claim("a").await.ok() });
                tokio::task::yield_now().await;
                assert!(!waiter.is_finished());
                d.complete("a").await.ok();
                assert_eq!(waiter.await.ok().flatten(), Some(Claim::AlreadyCompleted));
                // A later delivery is a new one: the entry is gone.
                assert_eq!(d.state("a"), None);
            });
        }
    }

    /// Completion of one claim is not mistaken for another: a waiter of the first claim that
    /// was released competes for the event again; a later claim's outcome is its own.
    #[test]
    fn released_then_completed_by_another_waiter() {
        block_on(async {
            let d = std::sync::Arc::new(MemoryDeduper::new().with_capacity(0));
            assert_eq!(d.claim("a").await.ok(), Some(Claim::Acquired));
            let (d2, d3) = (d.clone(), d.clone());
            let w1 = tokio::spawn(async move { d2.claim("a").await.ok() });
            let w2 = tokio::spawn(async move { d3.claim("a").await.ok() });
            tokio::task::yield_now().await;
            d.release("a").await.ok();
            tokio::task::yield_now().await;
            // Exactly one waiter acquired; the other waits on the new claim.
            let (first, other) = if w1.is_finished() { (w1, w2) } else { (w2, w1) };
            assert_eq!(first.await.ok().flatten(), Some(Claim::Acquired));
            assert!(!other.is_finished());
            d.complete("a").await.ok();
            assert_eq!(other.await.ok().flatten(), Some(Claim::AlreadyCompleted));
        });
    }

    fn waiting_count(d: &MemoryDeduper, hash: &str) -> usize {
        match d.lock().entries.get(hash) {
            Some(Entry::InFlight(in_flight)) => in_flight.waiters.len(),
            _ => 0,
        }
    }

    /// Dropped claim futures (abandoned repeats) take their wakers back.
    #[test]
    fn dropped_waiters_are_pruned() {
        let d = MemoryDeduper::new();
        let noop = std::task::Waker::noop();
        let mut cx = Context::from_waker(noop);
        assert!(matches!(
            d.claim("a").as_mut().poll(&mut cx),
            Poll::Ready(Ok(Claim::Acquired))
        ));
        for _ in 0..100 {
            let mut waiting = d.claim("a");
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
            // Polled again (spurious wake-up): still one registration.
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
            assert_eq!(waiting_count(&d, "a"), 1);
        }
        assert_eq!(waiting_count(&d, "a"), 0);
        let mut kept = d.claim("a");
        assert!(kept.as_mut().poll(&mut cx).is_pending());
        d.complete_now("a");
        assert!(matches!(
            kept.as_mut().poll(&mut cx),
            Poll::Ready(Ok(Claim::AlreadyCompleted))
        ));
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
