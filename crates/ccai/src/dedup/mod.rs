//! Deduplication of deliveries by `eventHash`: the [`Deduper`] trait and [`MemoryDeduper`].
//!
//! HTTP-free. The signature scheme has no timestamp, so a replayed delivery verifies forever and a
//! sender's retry looks like the original: recording which hashes were processed makes both
//! harmless.

mod memory;

use std::future::Future;
use std::pin::Pin;

pub use memory::MemoryDeduper;

/// The boxed future a [`Deduper`] method returns (boxed so that the trait is object-safe and
/// usable as `Arc<dyn Deduper>`).
pub type DedupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DedupError>> + Send + 'a>>;

/// The outcome of [`Deduper::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Claim {
    /// The caller now owns the event: it must process it, then call [`Deduper::complete`] if that
    /// succeeded or [`Deduper::release`] if it failed.
    Acquired,
    /// The event was already processed successfully: acknowledge it, do not process it again.
    AlreadyCompleted,
}

/// A deduper's storage failed. The handler answers 500 so that the sender retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DedupError {
    /// The backing store (a database, a cache) failed: its error is the
    /// [`source`](std::error::Error::source), not repeated in the message.
    #[error("deduplication store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Records which events (by `eventHash`) were processed, are being processed, or failed.
///
/// Implementations must be safe to share between concurrent requests (`Send + Sync`) and, for a
/// durable store shared by several processes, make [`claim`](Self::claim) atomic (e.g. an `INSERT`
/// that fails on conflict) and give in-flight claims a lease, so that a process that dies while
/// processing does not block the event forever.
///
/// The trait is object-safe: the handler holds an `Arc<dyn Deduper>`.
///
/// The signature scheme has no timestamp or nonce, so a retried delivery and a replayed one look the
/// same as the original. Recording which `eventHash` values were processed makes both harmless: a
/// repeat of an event whose processing succeeded is acknowledged without running the callback again.
///
/// # The protocol between a receiver and a deduper
///
/// For each verified delivery the receiver (e.g. the handler of `create_handler`, feature `axum`)
/// calls [`Deduper::claim`] with the event's hash:
///
/// | State of the hash | `claim` | Then |
/// |---|---|---|
/// | unknown, expired or released | [`Claim::Acquired`] | process; then [`complete`](Deduper::complete) on success or [`release`](Deduper::release) on failure |
/// | completed | [`Claim::AlreadyCompleted`] | acknowledge without processing |
/// | in flight (claimed, not yet completed or released) | waits | acts on the outcome: `AlreadyCompleted` if it completed, `Acquired` for one waiter if it was released |
///
/// So an event is never processed twice concurrently, a success is never processed again (while
/// its record lives), and a failure is retried by the next delivery.
///
/// ```
/// use std::sync::Arc;
/// use ccai::dedup::{Claim, Deduper, MemoryDeduper};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let deduper: Arc<dyn Deduper> = Arc::new(MemoryDeduper::new());
/// assert_eq!(deduper.claim("h1").await?, Claim::Acquired);
/// // ... the callback failed: give the event back so that the retry processes it.
/// deduper.release("h1").await?;
/// assert_eq!(deduper.claim("h1").await?, Claim::Acquired);
/// // ... the callback succeeded this time.
/// deduper.complete("h1").await?;
/// assert_eq!(deduper.claim("h1").await?, Claim::AlreadyCompleted);
/// # Ok::<(), ccai::dedup::DedupError>(())
/// # }).unwrap();
/// ```
pub trait Deduper: Send + Sync {
    /// Claims `event_hash` for processing.
    ///
    /// Returns [`Claim::Acquired`] if the event is new (or its record expired, or an earlier attempt
    /// was released), [`Claim::AlreadyCompleted`] if it was processed successfully. If another
    /// caller holds the claim, waits until that caller completes or releases it, then answers
    /// accordingly.
    fn claim<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, Claim>;

    /// Records that the event claimed with [`claim`](Self::claim) was processed successfully, and
    /// wakes the callers waiting for it.
    fn complete<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, ()>;

    /// Gives back a claim whose processing failed, so that a retry processes the event, and wakes
    /// the callers waiting for it (one of them acquires it). Releasing an event that is already
    /// completed does nothing.
    fn release<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, ()>;
}
