//! The dispatcher's side of a [`Store`](super::Store): a [`ClaimedDelivery`] held under a
//! [`Lease`], and how an attempt ends ([`Finish`], [`AttemptRecord`]).

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{redacted, InboxEvent};

/// Who claims, and for how long, in [`Store::claim`](super::Store::claim).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseRequest {
    /// The claiming worker's name (logged and shown; not used for fencing).
    pub owner: String,
    /// How long the claim holds without a heartbeat.
    pub duration: Duration,
}

impl LeaseRequest {
    /// A lease for `owner` lasting `duration`. A NUL in `owner` is replaced with U+FFFD
    /// (PostgreSQL text cannot hold one).
    pub fn new(owner: impl Into<String>, duration: Duration) -> Self {
        Self {
            owner: without_nul(owner.into()),
            duration,
        }
    }

    /// The request as the stores record it: a NUL in an owner set directly replaced too.
    pub(crate) fn recordable(mut self) -> Self {
        self.owner = without_nul(self.owner);
        self
    }
}

/// `text` with each NUL replaced with U+FFFD: PostgreSQL text cannot hold a NUL, and both stores
/// record the same text.
pub(crate) fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// The most characters of a lease owner's name that [`lapsed_lease_message`] names, so that the
/// message stays within [`ERROR_EXCERPT_LIMIT`] bytes (100 characters of at most 4 bytes each).
pub(crate) const LAPSED_OWNER_CHARS: usize = 100;

/// The message's parts around the owner's name, and the name of an owner that was not recorded.
/// The PostgreSQL store builds the same text in SQL from these parts.
pub(crate) const LAPSED_PREFIX: &str = "the lease of ";
pub(crate) const LAPSED_SUFFIX: &str = " expired before the attempt finished";
pub(crate) const LAPSED_UNKNOWN_OWNER: &str = "a worker";

/// What a claim records for a delivery whose previous lease lapsed: as its attempt's error and as
/// its last error.
pub(crate) fn lapsed_lease_message(owner: Option<&str>) -> String {
    let owner: String = owner
        .unwrap_or(LAPSED_UNKNOWN_OWNER)
        .chars()
        .take(LAPSED_OWNER_CHARS)
        .collect();
    format!("{LAPSED_PREFIX}{owner}{LAPSED_SUFFIX}")
}

/// A claim on one delivery: only the holder of `token` may finish, extend or release it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The claimed delivery.
    pub delivery_id: i64,
    /// Who claimed it.
    pub owner: String,
    /// The random fencing token of this claim.
    pub token: String,
    /// When the claim lapses unless extended.
    pub until: SystemTime,
}

impl Lease {
    /// The lease `token` that `owner` holds on delivery `delivery_id` until `until`: what a
    /// [`Store`](super::Store) of your own hands out with each claim, and recognises again
    /// by its token in [`finish`](super::Store::finish), [`extend_lease`](super::Store::extend_lease)
    /// and [`release`](super::Store::release).
    pub fn new(
        delivery_id: i64,
        owner: impl Into<String>,
        token: impl Into<String>,
        until: SystemTime,
    ) -> Self {
        Self {
            delivery_id,
            owner: owner.into(),
            token: token.into(),
            until,
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("delivery_id", &self.delivery_id)
            .field("owner", &self.owner)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// A delivery claimed for an attempt, with the event to hand on.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClaimedDelivery {
    /// The lease to present when finishing.
    pub lease: Lease,
    /// The destination this delivery is for.
    pub destination: String,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// The receiver's account id.
    pub client_id: String,
    /// The event's `eventHash`.
    pub event_hash: String,
    /// The event's `eventType`.
    pub event_type: String,
    /// The body exactly as received (empty if it was purged).
    pub body: Bytes,
    /// The original `X-CCAI-Signature`.
    pub signature: Option<String>,
    /// The original `Content-Type`.
    pub content_type: Option<String>,
    /// The HTTP method it came with.
    pub method: crate::event::DeliveryMethod,
    /// When the receiver got it.
    pub received_at: SystemTime,
}

impl ClaimedDelivery {
    /// A delivery claimed under `lease`, with the event to hand on: its destination, attempt
    /// number, keys, body and headers are `event`'s (what the dispatcher will give the consumer,
    /// through `InboxEvent::from`). For a [`Store::claim`](super::Store::claim) of your own.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use ccai::inbox::{ClaimedDelivery, InboxEvent, Lease};
    ///
    /// let until = SystemTime::now() + Duration::from_secs(30);
    /// let event = InboxEvent::new("1231", "evt_1", "message.sent", &b"{}"[..]).attempt(2);
    /// let claimed = ClaimedDelivery::new(Lease::new(7, "worker-1", "a-random-token", until), event);
    /// assert_eq!((claimed.lease.delivery_id, claimed.attempt), (7, 2));
    /// assert_eq!(InboxEvent::from(&claimed).event_hash, "evt_1");
    /// ```
    pub fn new(lease: Lease, event: InboxEvent) -> Self {
        Self {
            lease,
            destination: event.destination,
            attempt: event.attempt,
            client_id: event.client_id,
            event_hash: event.event_hash,
            event_type: event.event_type,
            body: event.body,
            signature: event.signature,
            content_type: event.content_type,
            method: event.method,
            received_at: event.received_at,
        }
    }
}

impl fmt::Debug for ClaimedDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedDelivery")
            .field("lease", &self.lease)
            .field("destination", &self.destination)
            .field("attempt", &self.attempt)
            .field("event_hash", &self.event_hash)
            .field("event_type", &self.event_type)
            .field("body_len", &self.body.len())
            .field("signature", &redacted(&self.signature))
            .finish_non_exhaustive()
    }
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finish {
    /// Handed on: done.
    Delivered,
    /// Failed: try again at this time.
    RetryAt(SystemTime),
    /// Failed for good: dead letter.
    Dead,
    /// Dead letter without an attempt: the retry schedule allows none more (it was shortened, or
    /// attempts whose worker died used it up). The record's error becomes the delivery's last
    /// error; no attempt is counted or added to its history, since none was made.
    DeadUnsent,
}

impl Finish {
    /// Whether finishing this way ends an attempt that was made (counted and recorded).
    pub(crate) fn counts_an_attempt(self) -> bool {
        !matches!(self, Finish::DeadUnsent)
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The consumer accepted the event.
    Success,
    /// The consumer failed (error, non-2xx status, timeout, connection error).
    Failure,
    /// The worker's lease lapsed before it finished (it died or hung); recorded when the
    /// delivery is claimed again.
    LeaseExpired,
}

impl AttemptOutcome {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Failure => "failure",
            AttemptOutcome::LeaseExpired => "lease_expired",
        }
    }

    /// The outcome named by [`as_str`](Self::as_str), if any.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Success, Self::Failure, Self::LeaseExpired]
            .into_iter()
            .find(|o| o.as_str() == name)
    }
}

/// The most bytes of an attempt's error message that are kept.
pub const ERROR_EXCERPT_LIMIT: usize = 512;

/// One attempt, as recorded by [`Store::finish`](super::Store::finish).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// When it started.
    pub started_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The HTTP status the target answered, if it was an HTTP attempt that got an answer.
    pub http_status: Option<u16>,
    /// What went wrong, at most [`ERROR_EXCERPT_LIMIT`] bytes (cut at a character boundary).
    pub error: Option<String>,
}

impl AttemptRecord {
    /// An attempt that started at `started_at`, took `duration` and ended with `outcome`.
    pub fn new(started_at: SystemTime, duration: Duration, outcome: AttemptOutcome) -> Self {
        Self {
            started_at,
            duration,
            outcome,
            http_status: None,
            error: None,
        }
    }

    /// The HTTP status the target answered.
    pub fn http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// What went wrong; cut to [`ERROR_EXCERPT_LIMIT`] bytes.
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error_excerpt(error.into()));
        self
    }
}

/// `message` cut to at most [`ERROR_EXCERPT_LIMIT`] bytes at a character boundary, each NUL
/// replaced with U+FFFD.
///
/// A target's answer, excerpted into an error, may hold any bytes; PostgreSQL text cannot hold a
/// NUL, and a store that could not record the outcome would leave the delivery leased until its
/// lease lapsed, then send it again. Both stores record the same text.
///
/// ```
/// use ccai::inbox::{error_excerpt, ERROR_EXCERPT_LIMIT};
///
/// assert_eq!(error_excerpt("HTTP 500: a\0b".into()), "HTTP 500: a\u{FFFD}b");
/// assert_eq!(error_excerpt("x".repeat(10_000)).len(), ERROR_EXCERPT_LIMIT);
/// ```
pub fn error_excerpt(message: String) -> String {
    let mut message = without_nul(message);
    if message.len() > ERROR_EXCERPT_LIMIT {
        let mut end = ERROR_EXCERPT_LIMIT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}
