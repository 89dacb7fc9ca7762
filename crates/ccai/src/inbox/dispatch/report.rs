//! [`AttemptReport`]: what became of one attempt, once the store has recorded it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the store recorded for an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptResult {
    /// The consumer accepted the event.
    Delivered,
    /// It failed; the next attempt is due at this time (schedule, jitter and `Retry-After` applied).
    RetryAt(SystemTime),
    /// It failed and no attempt is left (or the consumer said it never will succeed).
    Dead,
}

/// One attempt, reported to [`DispatcherBuilder::on_attempt`](super::DispatcherBuilder::on_attempt)
/// after the store recorded its outcome (an attempt whose lease was lost is not reported: its result
/// was dropped).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttemptReport {
    /// The event's `eventHash`.
    pub event_hash: String,
    /// The event's `eventType`.
    pub event_type: String,
    /// Which attempt this was (1 for the first). With [`AttemptResult::Dead`] and no attempt
    /// left to make (the error says so), none was made: it is the number of attempts made.
    pub attempt: u32,
    /// How many attempts the retry schedule allows in all.
    pub max_attempts: u32,
    /// What the store recorded.
    pub result: AttemptResult,
    /// The consumer's HTTP status, when it had one.
    pub http_status: Option<u16>,
    /// Why it failed (bounded excerpt), when it did.
    pub error: Option<String>,
    /// How long the attempt took.
    pub duration: Duration,
    /// With [`AttemptResult::RetryAt`], the wait chosen when the attempt failed (the schedule's
    /// delay with jitter, or a longer `Retry-After` within bounds). Exact, unlike the time left
    /// until `RetryAt` when the report arrives: recording the outcome may take a while (a busy
    /// store is tried again for as long as the lease lasts).
    pub retry_in: Option<Duration>,
}

/// The hook, shared by the workers.
#[derive(Clone)]
pub(crate) struct OnAttempt(pub(crate) Arc<dyn Fn(&AttemptReport) + Send + Sync>);

impl fmt::Debug for OnAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnAttempt")
    }
}
