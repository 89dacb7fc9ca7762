//! The admin side of a [`Store`](super::Store): filters, pages, event details, replay, retention
//! and statistics.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{redacted, AttemptOutcome, DeliveryStatus};

/// Which events to list, replay or requeue. Every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListFilter {
    /// Events with a delivery in this status.
    pub status: Option<DeliveryStatus>,
    /// Events of this `eventType`.
    pub event_type: Option<String>,
    /// Events received at or after this time. Compared with the received time as stored and
    /// shown (whole milliseconds).
    pub since: Option<SystemTime>,
    /// Events received before this time. Compared with the received time as stored and shown
    /// (whole milliseconds).
    pub until: Option<SystemTime>,
    /// Events whose body contains this text (case-sensitive; purged bodies never match). At most
    /// [`MAX_TEXT_LEN`](Self::MAX_TEXT_LEN) bytes: a store refuses a longer one.
    pub text: Option<String>,
    /// Events stored under exactly this `eventHash` (one per client id).
    pub event_hash: Option<String>,
    /// Events whose `eventHash` starts with this text, compared byte for byte (`%` and `_` are
    /// no wildcards). An empty prefix matches every hash, so it is no condition.
    pub hash_prefix: Option<String>,
    /// Events received for exactly this client id (account). With
    /// [`event_hash`](Self::event_hash), the filter names one event even in a store that several
    /// accounts share.
    pub client_id: Option<String>,
}

impl ListFilter {
    /// The longest [`text`](Self::text) a store searches for, in bytes: a longer one is refused
    /// ([`validate`](Self::validate)).
    ///
    /// A search compares the text at every position of every body it reads, so its cost grows
    /// with the text's length times the bodies' length: a crafted text (a long run of one letter
    /// then another, against large bodies of that letter) costs hundreds of times an honest one.
    /// What people search for is short: an `eventHash`, a phone number, a phrase of a message.
    /// 1,024 bytes is far above any of them, and bounds what one search can cost.
    pub const MAX_TEXT_LEN: usize = 1024;

    /// Whether a store takes this filter: its [`text`](Self::text) is at most
    /// [`MAX_TEXT_LEN`](Self::MAX_TEXT_LEN) bytes long. Every store checks it before a
    /// [`list`](super::Store::list), a [`replay`](super::Store::replay) or a
    /// [`requeue_dead`](super::Store::requeue_dead) runs; a program may check first, to say what
    /// is wrong in its own terms.
    ///
    /// ```
    /// use ccai::inbox::{ListFilter, StoreError};
    ///
    /// assert!(ListFilter::new().text("+14155550100").validate().is_ok());
    /// let crafted = ListFilter::new().text("a".repeat(ListFilter::MAX_TEXT_LEN + 1));
    /// assert!(matches!(crafted.validate(), Err(StoreError::InvalidRequest(_))));
    /// ```
    pub fn validate(&self) -> Result<(), super::StoreError> {
        match self.text.as_deref().map(str::len) {
            Some(len) if len > Self::MAX_TEXT_LEN => {
                Err(super::StoreError::InvalidRequest(format!(
                    "the search text is {len} bytes long, and may be at most {}: search for a \
                 shorter part of the body (an eventHash, a phone number, a phrase)",
                    Self::MAX_TEXT_LEN
                )))
            }
            _ => Ok(()),
        }
    }

    /// No condition: every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only events with a delivery in `status`.
    pub fn status(mut self, status: DeliveryStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only events of `event_type`.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Only events received at or after `since`.
    pub fn since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }

    /// Only events received before `until`.
    pub fn until(mut self, until: SystemTime) -> Self {
        self.until = Some(until);
        self
    }

    /// Only events whose body contains `text` (at most [`MAX_TEXT_LEN`](Self::MAX_TEXT_LEN)
    /// bytes: a store refuses a longer one).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Only events stored under exactly `event_hash` (one per client id): to act on one event
    /// through a filter, e.g. [`Store::requeue_dead`](super::Store::requeue_dead).
    pub fn event_hash(mut self, event_hash: impl Into<String>) -> Self {
        self.event_hash = Some(event_hash.into());
        self
    }

    /// Only events whose `eventHash` starts with `prefix`, byte for byte: to find the event a
    /// hash's start names (as the lists show 12 characters of it) without reading every event.
    ///
    /// ```
    /// use ccai::inbox::ListFilter;
    ///
    /// let filter = ListFilter::new().hash_prefix("d411242f");
    /// assert_eq!(filter.hash_prefix.as_deref(), Some("d411242f"));
    /// assert!(ListFilter::new().hash_prefix("").is_empty());
    /// ```
    pub fn hash_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.hash_prefix = Some(prefix.into());
        self
    }

    /// Only events received for `client_id`.
    ///
    /// ```
    /// use ccai::inbox::ListFilter;
    ///
    /// // Exactly one event, whichever other accounts share the store.
    /// let one = ListFilter::new().client_id("12345").event_hash("evt_1");
    /// assert!(!one.is_empty());
    /// ```
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Whether no condition is set (bulk operations refuse such a filter). An empty text matches
    /// every body, and an empty hash prefix every hash, so they count as no condition.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.event_type.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.text.as_deref().is_none_or(str::is_empty)
            && self.event_hash.is_none()
            && self.hash_prefix.as_deref().is_none_or(str::is_empty)
            && self.client_id.is_none()
    }
}

/// Where a page of [`Store::list`](super::Store::list) ends; pass it back, in a request with
/// the same order, for the next page. Stable while new events arrive: newest first, they sort
/// before the first page, not into later ones; oldest first, they come at the end.
///
/// One exception, on PostgreSQL with several receivers writing: ids are handed out when an
/// insert runs, not when it commits, so an event whose batch commits late can sort just after a
/// page already read. A listing that must not miss one repeats with `since` set to the time it
/// began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor(pub(crate) i64);

impl Cursor {
    /// The cursor at the stored event with `id` (a page's last), in a store's own numbering: what a
    /// [`Store::list`](super::Store::list) of your own puts in [`Page::next`], and reads back
    /// with [`id`](Self::id) from [`ListRequest::after`]. Use positive ids: [`decode`](Self::decode)
    /// refuses the others, so such a cursor would not come back through an HTTP query.
    pub fn from_id(id: i64) -> Self {
        Cursor(id)
    }

    /// The id given to [`from_id`](Self::from_id).
    pub fn id(&self) -> i64 {
        self.0
    }

    /// The cursor as text (for an HTTP query parameter).
    pub fn encode(&self) -> String {
        self.0.to_string()
    }

    /// A cursor from [`encode`](Self::encode)'s text.
    pub fn decode(text: &str) -> Option<Self> {
        text.parse().ok().filter(|id| *id > 0).map(Cursor)
    }
}

/// A request for one page of [`Store::list`](super::Store::list): a filter, a page size, and
/// where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListRequest {
    /// Which events.
    pub filter: ListFilter,
    /// At most this many (capped at [`ListRequest::MAX_LIMIT`]).
    pub limit: usize,
    /// Continue after this cursor (the previous page's `next`).
    pub after: Option<Cursor>,
    /// Newest first (the default) or oldest first.
    pub order: ListOrder,
}

/// The order of a [`ListRequest`]'s events: by when they were stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListOrder {
    /// The most recently stored first: what a person browsing wants.
    #[default]
    NewestFirst,
    /// In the order they were stored: what a bulk replay to a consumer wants.
    OldestFirst,
}

impl ListRequest {
    /// The largest page.
    pub const MAX_LIMIT: usize = 1000;

    /// The first page of `limit` events matching `filter`, newest first.
    pub fn new(filter: ListFilter, limit: usize) -> Self {
        Self {
            filter,
            limit: limit.clamp(1, Self::MAX_LIMIT),
            after: None,
            order: ListOrder::NewestFirst,
        }
    }

    /// The events in the order they were stored, oldest first.
    ///
    /// ```
    /// use ccai::inbox::{ListFilter, ListOrder, ListRequest};
    ///
    /// let request = ListRequest::new(ListFilter::new(), 100).oldest_first();
    /// assert_eq!(request.order, ListOrder::OldestFirst);
    /// ```
    pub fn oldest_first(mut self) -> Self {
        self.order = ListOrder::OldestFirst;
        self
    }

    /// The page after `cursor`.
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.after = cursor;
        self
    }
}

/// One page of events, in the request's order (newest first by default).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page {
    /// The events.
    pub events: Vec<EventSummary>,
    /// The cursor of the next page (in the request's order), if there may be one.
    pub next: Option<Cursor>,
}

impl Page {
    /// A page of `events`, with the cursor of the next one if there may be one (`None` on the
    /// last page).
    pub fn new(events: Vec<EventSummary>, next: Option<Cursor>) -> Self {
        Self { events, next }
    }
}

/// Where one destination's delivery of an event stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryState {
    /// The destination's name.
    pub destination: String,
    /// Its status.
    pub status: DeliveryStatus,
    /// Attempts made on the current schedule: what the retry schedule counts, so a replay or a
    /// requeue of the dead starts it again at 0.
    pub attempts: u32,
    /// Every attempt recorded for this delivery, earlier schedules included: as many as
    /// [`EventDetail::attempts`] lists for its destination.
    pub total_attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<SystemTime>,
    /// The last attempt's error excerpt.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<SystemTime>,
}

impl DeliveryState {
    /// The delivery to `destination`, in `status` after `attempts` attempts (on the current
    /// schedule, and in all until [`total_attempts`](Self::total_attempts) says otherwise), with
    /// no next attempt time, error or delivery time (the setters add them).
    pub fn new(destination: impl Into<String>, status: DeliveryStatus, attempts: u32) -> Self {
        Self {
            destination: destination.into(),
            status,
            attempts,
            total_attempts: attempts,
            next_attempt_at: None,
            last_error: None,
            delivered_at: None,
        }
    }

    /// Every attempt recorded, earlier schedules included (after a replay, more than
    /// `attempts`).
    pub fn total_attempts(mut self, total: u32) -> Self {
        self.total_attempts = total;
        self
    }

    /// When the next attempt is due.
    pub fn next_attempt_at(mut self, at: SystemTime) -> Self {
        self.next_attempt_at = Some(at);
        self
    }

    /// The last attempt's error excerpt.
    pub fn last_error(mut self, error: impl Into<String>) -> Self {
        self.last_error = Some(error.into());
        self
    }

    /// When it was delivered.
    pub fn delivered_at(mut self, at: SystemTime) -> Self {
        self.delivered_at = Some(at);
        self
    }
}

/// An event in a [`Page`]: what it is and where its deliveries stand, without the body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventSummary {
    /// The receiver's account id.
    pub client_id: String,
    /// The event's `eventHash`.
    pub event_hash: String,
    /// The event's `eventType`.
    pub event_type: String,
    /// When it was received (the first time).
    pub received_at: SystemTime,
    /// The body's size, or `None` if it was purged.
    pub body_len: Option<usize>,
    /// How many repeats with the same body arrived after the first.
    pub duplicates: u64,
    /// How many repeats with a different body arrived after the first.
    pub conflicts: u64,
    /// One per destination.
    pub deliveries: Vec<DeliveryState>,
}

impl EventSummary {
    /// The event `event_hash` of type `event_type` received for `client_id` at `received_at`,
    /// with no duplicate, no conflict and no delivery, and its body purged (`body_len` `None`)
    /// unless [`body_len`](Self::body_len) says otherwise.
    pub fn new(
        client_id: impl Into<String>,
        event_hash: impl Into<String>,
        event_type: impl Into<String>,
        received_at: SystemTime,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            event_hash: event_hash.into(),
            event_type: event_type.into(),
            received_at,
            body_len: None,
            duplicates: 0,
            conflicts: 0,
            deliveries: Vec::new(),
        }
    }

    /// The stored body's size.
    pub fn body_len(mut self, len: usize) -> Self {
        self.body_len = Some(len);
        self
    }

    /// How many repeats with the same body arrived after the first.
    pub fn duplicates(mut self, duplicates: u64) -> Self {
        self.duplicates = duplicates;
        self
    }

    /// How many repeats with a different body arrived after the first.
    pub fn conflicts(mut self, conflicts: u64) -> Self {
        self.conflicts = conflicts;
        self
    }

    /// Where its deliveries stand, one per destination.
    pub fn deliveries(mut self, deliveries: Vec<DeliveryState>) -> Self {
        self.deliveries = deliveries;
        self
    }
}

/// One recorded attempt of an event's delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptInfo {
    /// The destination it was for.
    pub destination: String,
    /// When it started.
    pub started_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The HTTP status answered, if any.
    pub http_status: Option<u16>,
    /// The error excerpt, if any.
    pub error: Option<String>,
}

impl AttemptInfo {
    /// An attempt for `destination` that started at `started_at`, took `duration` and ended
    /// with `outcome`, with no HTTP status or error (the setters add them).
    pub fn new(
        destination: impl Into<String>,
        started_at: SystemTime,
        duration: Duration,
        outcome: AttemptOutcome,
    ) -> Self {
        Self {
            destination: destination.into(),
            started_at,
            duration,
            outcome,
            http_status: None,
            error: None,
        }
    }

    /// The HTTP status answered.
    pub fn http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// The error excerpt.
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// Everything stored about one event ([`Store::get`](super::Store::get)).
#[derive(Clone)]
#[non_exhaustive]
pub struct EventDetail {
    /// The summary (status of each delivery, counts).
    pub summary: EventSummary,
    /// The body exactly as received, unless purged.
    pub body: Option<Bytes>,
    /// The original `X-CCAI-Signature` (redacted in Debug).
    pub signature: Option<String>,
    /// The original `Content-Type`.
    pub content_type: Option<String>,
    /// The HTTP method it came with.
    pub method: crate::event::DeliveryMethod,
    /// The hex SHA-256 of the stored body.
    pub body_sha256: String,
    /// The hex SHA-256 of the last conflicting body received, if any.
    pub last_conflict_sha256: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptInfo>,
}

impl EventDetail {
    /// The event `summary` describes, whose stored body had the hex SHA-256 `body_sha256`: its
    /// body purged, received by POST with no signature or content type, no conflict and no
    /// attempt, until the setters say otherwise.
    pub fn new(summary: EventSummary, body_sha256: impl Into<String>) -> Self {
        Self {
            summary,
            body: None,
            signature: None,
            content_type: None,
            method: crate::event::DeliveryMethod::Post,
            body_sha256: body_sha256.into(),
            last_conflict_sha256: None,
            attempts: Vec::new(),
        }
    }

    /// The body exactly as received (not purged).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The original `X-CCAI-Signature`.
    pub fn signature(mut self, signature: impl Into<String>) -> Self {
        self.signature = Some(signature.into());
        self
    }

    /// The original `Content-Type`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The HTTP method it came with.
    pub fn method(mut self, method: crate::event::DeliveryMethod) -> Self {
        self.method = method;
        self
    }

    /// The hex SHA-256 of the last conflicting body received.
    pub fn last_conflict_sha256(mut self, sha256: impl Into<String>) -> Self {
        self.last_conflict_sha256 = Some(sha256.into());
        self
    }

    /// Every attempt, oldest first.
    pub fn attempts(mut self, attempts: Vec<AttemptInfo>) -> Self {
        self.attempts = attempts;
        self
    }
}

impl fmt::Debug for EventDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventDetail")
            .field("summary", &self.summary)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("signature", &redacted(&self.signature))
            .field("content_type", &self.content_type)
            .field("body_sha256", &self.body_sha256)
            .field("last_conflict_sha256", &self.last_conflict_sha256)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// What [`Store::replay`](super::Store::replay) makes due again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayTarget {
    /// The event with this `eventHash` (every destination). In a store that several accounts
    /// share, every account's event under this hash; a [`Filter`](Self::Filter) with
    /// [`client_id`](ListFilter::client_id) and [`event_hash`](ListFilter::event_hash) names one.
    Hash(String),
    /// Every event matching this filter, which must not be empty.
    Filter(ListFilter),
}

/// How long [`Store::purge`](super::Store::purge) keeps things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Bodies of finished events (every delivery delivered or dead) received longer ago are
    /// deleted (the row stays). An event with a delivery pending or in progress keeps its body.
    pub bodies: Duration,
    /// Finished events (every delivery delivered or dead) received longer ago are deleted
    /// entirely, with their deliveries and attempts. Keep this well past the
    /// sender's retry horizon: until then a late retry is still recognised as a duplicate.
    pub rows: Duration,
}

impl Retention {
    /// Bodies kept 30 days by default.
    pub const DEFAULT_BODIES: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Rows kept 90 days by default.
    pub const DEFAULT_ROWS: Duration = Duration::from_secs(90 * 24 * 3600);

    /// Bodies kept for `bodies`, rows for `rows`.
    pub fn new(bodies: Duration, rows: Duration) -> Self {
        Self { bodies, rows }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BODIES, Self::DEFAULT_ROWS)
    }
}

/// What a replay or a requeue of the dead did ([`Store::replay`](super::Store::replay),
/// [`Store::requeue_dead`](super::Store::requeue_dead)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Deliveries made due.
    pub due: u64,
    /// Events that matched but were left as they were: their body was purged, so there is
    /// nothing to send (those with a delivery it would have made due).
    pub purged: u64,
}

impl ReplayReport {
    /// `due` deliveries made due, and `purged` matching events left as they were for their
    /// purged body: for a [`Store`](super::Store) of your own.
    pub fn new(due: u64, purged: u64) -> Self {
        Self { due, purged }
    }
}

/// What a purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Bodies deleted.
    pub bodies_purged: u64,
    /// Events deleted (with their deliveries and attempts).
    pub events_deleted: u64,
}

impl PurgeReport {
    /// `bodies_purged` bodies and `events_deleted` events deleted.
    pub fn new(bodies_purged: u64, events_deleted: u64) -> Self {
        Self {
            bodies_purged,
            events_deleted,
        }
    }
}

/// Counts over the whole store ([`Store::stats`](super::Store::stats)).
///
/// A [`Store`](super::Store) of your own builds one from [`Stats::default`] (all zero, no
/// status counted) by setting the fields, `deliveries` keyed by
/// [`DeliveryStatus::as_str`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events stored.
    pub events: u64,
    /// Deliveries per status (every status present, zero included).
    pub deliveries: BTreeMap<&'static str, u64>,
    /// Duplicate deliveries received (same hash, same body).
    pub duplicates: u64,
    /// Conflicting deliveries received (same hash, different body).
    pub conflicts: u64,
    /// How long the first stored of the pending deliveries has been waiting since it was
    /// received. Events are stored in the order they arrive (to within the requests in flight
    /// at once), so this is the age of the oldest pending work; it is found on an index, not by
    /// reading every pending delivery, so that a large backlog keeps `stats` cheap. (An import
    /// that sets [`NewDelivery::received_at`](super::NewDelivery::received_at) out of order
    /// makes it the age of the first imported.)
    pub oldest_pending_age: Option<Duration>,
}

impl Stats {
    /// The number of deliveries in `status`.
    pub fn count(&self, status: DeliveryStatus) -> u64 {
        self.deliveries.get(status.as_str()).copied().unwrap_or(0)
    }
}
