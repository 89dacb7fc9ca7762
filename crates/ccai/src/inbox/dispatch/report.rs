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

impl AttemptReport {
    /// The report of attempt `attempt` (of `max_attempts`) at an event, ended with `result`: to
    /// unit-test an [`on_attempt`](super::DispatcherBuilder::on_attempt) hook. No HTTP status,
    /// error, duration or wait until the setters below say otherwise.
    ///
    /// ```
    /// use ccai::inbox::{AttemptReport, AttemptResult};
    ///
    /// // A hook that pages someone when an event goes dead.
    /// let pages = |report: &AttemptReport| u32::from(report.result == AttemptResult::Dead);
    /// let dead = AttemptReport::new("evt_1", "message.sent", 8, 8, AttemptResult::Dead)
    ///     .http_status(500)
    ///     .error("HTTP 500 Internal Server Error");
    /// assert_eq!(pages(&dead), 1);
    /// ```
    pub fn new(
        event_hash: impl Into<String>,
        event_type: impl Into<String>,
        attempt: u32,
        max_attempts: u32,
        result: AttemptResult,
    ) -> Self {
        Self {
            event_hash: event_hash.into(),
            event_type: event_type.into(),
            attempt,
            max_attempts,
            result,
            http_status: None,
            error: None,
            duration: Duration::ZERO,
            retry_in: None,
        }
    }

    /// The consumer's HTTP status.
    pub fn http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Why it failed.
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// How long the attempt took.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// With [`AttemptResult::RetryAt`], the wait chosen.
    pub fn retry_in(mut self, wait: Duration) -> Self {
        self.retry_in = Some(wait);
        self
    }
}

/// The hook, shared by the workers.
#[derive(Clone)]
pub(crate) struct OnAttempt(pub(crate) Arc<dyn Fn(&AttemptReport) + Send + Sync>);

impl fmt::Debug for OnAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnAttempt")
    }
}
