//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): the crate
//! records, the application installs whichever exporter it uses (Prometheus, StatsD, …). Without
//! the feature the recording functions are empty and nothing is compiled in.
//!
//! Names follow the Prometheus conventions (`ccai_` prefix, `_total` for counters, base units),
//! and labels are low-cardinality only: never an event hash, a URL or a client id.
//!
//! | Metric | Kind | Labels | Recorded by |
//! |---|---|---|---|
//! | `ccai_deliveries_received_total` | counter | `outcome` (`accepted`, `duplicate`, `conflict`, `rejected`), `reason` (the rejection's kind, `""` otherwise) | the handler |
//! | `ccai_request_duration_seconds` | histogram | `outcome` | the handler |
//! | `ccai_store_commit_duration_seconds` | histogram | | the SQLite writer, per committed transaction |
//! | `ccai_store_batch_size` | histogram | | the SQLite writer: writes per committed transaction |
//! | `ccai_forward_attempts_total` | counter | `outcome` (`delivered`, `retry`, `dead`) | the dispatcher |
//! | `ccai_forward_duration_seconds` | histogram | `outcome` | the dispatcher |
//! | `ccai_deliveries_dead_total` | counter | `reason` (`failed`, `no_attempt_left`) | the dispatcher: a delivery moved to the dead letter |
//! | `ccai_lease_lost_total` | counter | | the dispatcher: an attempt whose lease another worker took |
//! | `ccai_queue_depth` | gauge | `status` (`pending`, `in_progress`, `delivered`, `dead`) | [`record_stats`], when the application asks |
//! | `ccai_oldest_pending_age_seconds` | gauge | | [`record_stats`] |
//! | `ccai_store_readable` | gauge | | [`record_stats`] (1) and [`record_stats_failed`] (0) |
//! | `ccai_readiness_probes_total` | counter | `outcome` (`ready`, `not_ready`) | [`record_readiness_probe`]: a store probe the application ran for a readiness check |
//!
//! Rejection reasons: `method_not_allowed`, `payload_too_large`, `body_timeout`, `body_read`, `invalid_event`,
//! `missing_signature`, `invalid_signature`, `callback_failed`, `callback_panicked`,
//! `deduplication`, `unavailable`.

// Without the feature the module is private and only its empty recording functions are used.
#![cfg_attr(not(feature = "metrics"), allow(dead_code, unreachable_pub))]

/// Deliveries answered by the handler, by `outcome` and rejection `reason`.
pub const DELIVERIES_RECEIVED: &str = "ccai_deliveries_received_total";
/// Time from a request's arrival to its answer, in seconds.
pub const REQUEST_DURATION: &str = "ccai_request_duration_seconds";
/// Time one store transaction took to run and commit, in seconds.
pub const STORE_COMMIT_DURATION: &str = "ccai_store_commit_duration_seconds";
/// Writes carried by one committed store transaction (group commit).
pub const STORE_BATCH_SIZE: &str = "ccai_store_batch_size";
/// Forward attempts by `outcome`.
pub const FORWARD_ATTEMPTS: &str = "ccai_forward_attempts_total";
/// Time one forward attempt took, in seconds.
pub const FORWARD_DURATION: &str = "ccai_forward_duration_seconds";
/// Deliveries that went to the dead letter, by `reason`: `failed` (the last attempt failed, or
/// the consumer refused it for good) or `no_attempt_left` (the schedule's attempts were used up
/// without one recording a last failure: a shortened schedule, or workers that died or hung).
pub const DELIVERIES_DEAD: &str = "ccai_deliveries_dead_total";
/// Attempts abandoned or dropped because their lease was taken over.
pub const LEASE_LOST: &str = "ccai_lease_lost_total";
/// Deliveries per `status`, as of the last [`record_stats`].
pub const QUEUE_DEPTH: &str = "ccai_queue_depth";
/// Age of the oldest pending delivery in seconds (0 when none), as of the last [`record_stats`].
pub const OLDEST_PENDING_AGE: &str = "ccai_oldest_pending_age_seconds";
/// 1 when the last read of the store's counts worked ([`record_stats`]), 0 when it failed
/// ([`record_stats_failed`]): the queue gauges then keep their last values.
pub const STORE_READABLE: &str = "ccai_store_readable";
/// Store probes run for readiness checks, by `outcome` ([`record_readiness_probe`]).
pub const READINESS_PROBES: &str = "ccai_readiness_probes_total";

/// Registers each metric's unit and help text with the installed recorder (call once, after
/// installing it; exporters show it as `# HELP`).
#[cfg(feature = "metrics")]
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        DELIVERIES_RECEIVED,
        "Webhook deliveries answered, by outcome and rejection reason."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from a delivery's arrival to its answer."
    );
    describe_histogram!(
        STORE_COMMIT_DURATION,
        Unit::Seconds,
        "Time one store transaction took to run and commit."
    );
    describe_histogram!(
        STORE_BATCH_SIZE,
        Unit::Count,
        "Writes carried by one committed store transaction."
    );
    describe_counter!(FORWARD_ATTEMPTS, "Forward attempts, by outcome.");
    describe_histogram!(
        FORWARD_DURATION,
        Unit::Seconds,
        "Time one forward attempt took."
    );
    describe_counter!(
        DELIVERIES_DEAD,
        "Deliveries moved to the dead letter, by reason."
    );
    describe_counter!(
        LEASE_LOST,
        "Forward attempts whose lease was taken over by another worker."
    );
    describe_gauge!(QUEUE_DEPTH, "Stored deliveries, by status.");
    describe_gauge!(
        STORE_READABLE,
        "1 when the last read of the store's counts worked, 0 when it failed (the queue gauges keep their last values)."
    );
    describe_counter!(
        READINESS_PROBES,
        "Store probes run for readiness checks (concurrent checks share one), by outcome."
    );
    describe_gauge!(
        OLDEST_PENDING_AGE,
        Unit::Seconds,
        "Age of the oldest pending delivery (0 when none)."
    );
}

/// Sets the queue gauges (`ccai_queue_depth{status}`, `ccai_oldest_pending_age_seconds`) from a
/// store's [`Stats`](crate::inbox::Stats), and `ccai_store_readable` to 1; an exporter calls it
/// before rendering.
#[cfg(all(feature = "metrics", feature = "inbox"))]
pub fn record_stats(stats: &crate::inbox::Stats) {
    for status in crate::inbox::DeliveryStatus::ALL {
        metrics::gauge!(QUEUE_DEPTH, "status" => status.as_str()).set(stats.count(status) as f64);
    }
    let age = stats.oldest_pending_age.unwrap_or_default();
    metrics::gauge!(OLDEST_PENDING_AGE).set(age.as_secs_f64());
    metrics::gauge!(STORE_READABLE).set(1.0);
}

/// Says that the store's counts could not be read for this scrape (`ccai_store_readable` 0):
/// the queue gauges keep their last values, which an alert must not take for current.
#[cfg(all(feature = "metrics", feature = "inbox"))]
pub fn record_stats_failed() {
    metrics::gauge!(STORE_READABLE).set(0.0);
}

/// Counts a store probe run for a readiness check (`ccai_readiness_probes_total{outcome}`):
/// `ready` when the store could take writes, `not_ready` otherwise.
#[cfg(feature = "metrics")]
pub fn record_readiness_probe(ready: bool) {
    let outcome = if ready { "ready" } else { "not_ready" };
    metrics::counter!(READINESS_PROBES, "outcome" => outcome).increment(1);
}

/// Measures a duration when metrics are on; nothing (zero-sized) otherwise.
#[cfg(any(feature = "axum", feature = "inbox"))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    start: std::time::Instant,
}

#[cfg(any(feature = "axum", feature = "inbox"))]
impl Timer {
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            start: std::time::Instant::now(),
        }
    }

    #[cfg(feature = "metrics")]
    fn seconds(self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// What the handler made of a delivery it answered 200.
#[cfg(feature = "axum")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// Handed to the callback (or stored) for the first time.
    Accepted,
    /// A repeat of an event already processed or stored.
    Duplicate,
    /// The same hash with a different body (inbox mode): the first one is kept.
    #[cfg_attr(not(feature = "inbox"), allow(dead_code))]
    Conflict,
}

#[cfg(all(feature = "axum", feature = "inbox"))]
impl From<crate::inbox::Inserted> for Received {
    fn from(inserted: crate::inbox::Inserted) -> Self {
        match inserted {
            crate::inbox::Inserted::Duplicate => Self::Duplicate,
            crate::inbox::Inserted::Conflict => Self::Conflict,
            _ => Self::Accepted,
        }
    }
}

/// The `reason` label of a rejection: its kind, never its message.
#[cfg(feature = "axum")]
pub(crate) fn rejection_reason(rejection: &crate::server::Rejection) -> &'static str {
    use crate::server::Rejection;
    match rejection {
        Rejection::MethodNotAllowed { .. } => "method_not_allowed",
        Rejection::PayloadTooLarge { .. } => "payload_too_large",
        Rejection::BodyTimeout { .. } => "body_timeout",
        Rejection::BodyRead(_) => "body_read",
        Rejection::InvalidEvent(_) => "invalid_event",
        Rejection::MissingSignature => "missing_signature",
        Rejection::InvalidSignature(_) => "invalid_signature",
        Rejection::Callback(_) => "callback_failed",
        Rejection::CallbackPanicked => "callback_panicked",
        Rejection::Deduplication(_) => "deduplication",
        Rejection::Unavailable(_) => "unavailable",
    }
}

/// The handler answered a delivery: counts it by outcome and records how long it took.
#[cfg(feature = "axum")]
pub(crate) fn delivery_answered(
    outcome: &Result<Received, crate::server::Rejection>,
    timer: Timer,
) {
    #[cfg(feature = "metrics")]
    {
        let (outcome, reason) = match outcome {
            Ok(Received::Accepted) => ("accepted", ""),
            Ok(Received::Duplicate) => ("duplicate", ""),
            Ok(Received::Conflict) => ("conflict", ""),
            Err(rejection) => ("rejected", rejection_reason(rejection)),
        };
        metrics::counter!(DELIVERIES_RECEIVED, "outcome" => outcome, "reason" => reason)
            .increment(1);
        metrics::histogram!(REQUEST_DURATION, "outcome" => outcome).record(timer.seconds());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (outcome, timer);
}

/// The store committed a transaction carrying `writes` writes.
#[cfg(feature = "inbox")]
pub(crate) fn store_committed(timer: Timer, writes: usize) {
    #[cfg(feature = "metrics")]
    {
        metrics::histogram!(STORE_COMMIT_DURATION).record(timer.seconds());
        metrics::histogram!(STORE_BATCH_SIZE).record(writes as f64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (timer, writes);
}

/// How a forward attempt ended.
#[cfg(feature = "inbox")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    Delivered,
    Retry,
    Dead,
}

/// A forward attempt ended after `duration`.
#[cfg(feature = "inbox")]
pub(crate) fn forward_attempted(outcome: Forwarded, duration: std::time::Duration) {
    #[cfg(feature = "metrics")]
    {
        let outcome = match outcome {
            Forwarded::Delivered => "delivered",
            Forwarded::Retry => "retry",
            Forwarded::Dead => "dead",
        };
        metrics::counter!(FORWARD_ATTEMPTS, "outcome" => outcome).increment(1);
        metrics::histogram!(FORWARD_DURATION, "outcome" => outcome).record(duration.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (outcome, duration);
}

/// Why a delivery went to the dead letter ([`DELIVERIES_DEAD`]'s `reason`).
#[cfg(feature = "inbox")]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dead {
    /// The last attempt failed, or the consumer refused the event for good.
    Failed,
    /// No attempt was left to make.
    NoAttemptLeft,
}

/// A delivery went to the dead letter (recorded in the store).
#[cfg(feature = "inbox")]
pub(crate) fn delivery_dead(reason: Dead) {
    #[cfg(feature = "metrics")]
    {
        let reason = match reason {
            Dead::Failed => "failed",
            Dead::NoAttemptLeft => "no_attempt_left",
        };
        metrics::counter!(DELIVERIES_DEAD, "reason" => reason).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// An attempt lost its lease (another worker took the delivery over).
#[cfg(feature = "inbox")]
pub(crate) fn lease_lost() {
    #[cfg(feature = "metrics")]
    metrics::counter!(LEASE_LOST).increment(1);
}
