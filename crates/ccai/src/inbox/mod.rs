//! The durable inbox (feature `inbox`): a webhook receiver as a store-and-forward gateway.
//!
//! Every verified delivery is stored durably ([`Store::insert`]) before the receiver answers
//! `200`; a [`Dispatcher`] then hands each event on (to an async callback or, with
//! [`HttpForward`], to another HTTP endpoint) at least once, with retries on a schedule, a dead
//! letter after the last attempt, and replay. The admin side of the [`Store`] lists, filters,
//! replays and purges.
//!
//! | Piece | Type |
//! |---|---|
//! | The storage contract | [`Store`] (object-safe: `Arc<dyn Store>`) |
//! | SQLite implementation (WAL, group commit) | [`SqliteStore`], [`SqliteOptions`] |
//! | Receive over HTTP into the store (feature `axum`) | `ccai::server::HandlerOptions::inbox`, whose docs hold a complete receiver in an axum app |
//! | Durable deduplication for a handler that calls back instead (in inbox mode the store deduplicates) | [`StoreDeduper`] ([`SqliteStore::deduper`]) |
//! | PostgreSQL implementation, shared by several receivers (feature `postgres`) | `PostgresStore`, `PostgresOptions` |
//! | Hand events on | [`Dispatcher`], [`HttpForward`], [`CallbackConsumer`] |
//!
//! A tool that only inspects an inbox it may not write (another user's SQLite file, a PostgreSQL
//! role that may only `SELECT`) opens it read-only: [`SqliteOptions::read_only`],
//! `PostgresOptions::read_only`. Every write then answers [`StoreError::ReadOnly`].
//!
//! # Delivery is at least once
//! A worker that dies after the consumer accepted an event but before the store recorded it
//! delivers it again after its lease lapses. Consumers should be idempotent on `eventHash`
//! ([`InboxEvent::event_hash`]).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ccai::inbox::{CallbackConsumer, Dispatcher, InboxEvent, NewDelivery, SqliteOptions, SqliteStore, Store};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("inbox.db");
//! let store = Arc::new(SqliteStore::open(&path, SqliteOptions::default())?);
//! // Hands each event to an async function; `HttpForward::new(url)?` forwards it over HTTP instead.
//! let (seen, mut handed_on) = tokio::sync::mpsc::unbounded_channel();
//! let consumer = CallbackConsumer::new(move |event: InboxEvent| {
//!     let seen = seen.clone();
//!     async move { seen.send(event.event_hash) } // an `Err` is retried on the schedule
//! });
//! let dispatcher = Dispatcher::builder(store.clone(), consumer)
//!     .concurrency(8)
//!     .start();
//! // In the receiver, after verifying a delivery (the handler's inbox mode,
//! // `HandlerOptions::inbox` with the `axum` feature, does this and answers 200 once it is stored;
//! // its `wake_on(dispatcher.waker())` wakes the dispatcher):
//! store.insert(NewDelivery::new("1231", "evt_1", "message.sent", &b"{}"[..])).await?;
//! dispatcher.wake();
//! assert_eq!(handed_on.recv().await.as_deref(), Some("evt_1"));
//! // On shutdown: the dispatcher first, then the store (queued writes answered, files tidied).
//! dispatcher.shutdown(Duration::from_secs(10)).await;
//! store.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # The admin API
//! Listing, details, replay, requeue, purge and statistics are methods of the [`Store`] trait:
//! bring it into scope (`use ccai::inbox::Store`) to call them on a [`SqliteStore`]. Nothing is
//! deleted by itself: call [`Store::purge`] with a [`Retention`] now and then (a daily timer),
//! or the store keeps every body and row.
//!
//! ```
//! use std::time::SystemTime;
//! use ccai::inbox::{
//!     DeliveryStatus, ListFilter, ListRequest, NewDelivery, ReplayTarget, Retention, SqliteOptions,
//!     SqliteStore, Store,
//! };
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default())?;
//! # for hash in ["evt_1", "evt_2", "evt_3"] {
//! #     store.insert(NewDelivery::new("1231", hash, "message.sent", &b"{}"[..])).await?;
//! # }
//! // Every pending event, newest first, a page at a time.
//! let mut request = ListRequest::new(ListFilter::new().status(DeliveryStatus::Pending), 2);
//! let mut hashes = Vec::new();
//! loop {
//!     let page = store.list(request.clone()).await?;
//!     hashes.extend(page.events.into_iter().map(|event| event.event_hash));
//!     if page.next.is_none() {
//!         break;
//!     }
//!     request = request.after(page.next);
//! }
//! assert_eq!(hashes, ["evt_3", "evt_2", "evt_1"]);
//!
//! // One event in full (body, signature redacted in Debug, attempts), and a replay of it.
//! let detail = store.get("evt_2").await?.expect("stored");
//! assert_eq!(detail.body.as_deref(), Some(&b"{}"[..]));
//! store.replay(ReplayTarget::Hash("evt_2".into())).await?;
//!
//! let stats = store.stats(SystemTime::now()).await?;
//! assert_eq!(stats.count(DeliveryStatus::Pending), 3);
//! // Retention: bodies of finished events after 30 days, rows after 90 (the defaults).
//! store.purge(Retention::default(), SystemTime::now()).await?;
//! store.close().await;
//! # Ok(())
//! # }
//! ```

/// The largest write queue a store keeps: a larger `queue_capacity` is clamped to it (more would
/// only hold memory, and tokio's channels refuse a capacity near `usize::MAX`).
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

/// The most writes one transaction takes: a larger `max_batch` is clamped to it.
pub const MAX_BATCH: usize = 1 << 16;

/// `(queue_capacity, max_batch)` within 1..=[`MAX_QUEUE_CAPACITY`] and 1..=[`MAX_BATCH`]: the
/// options' fields are public, so the stores clamp what they use, not only the setters.
pub(crate) fn queue_limits(queue_capacity: usize, max_batch: usize) -> (usize, usize) {
    (
        queue_capacity.clamp(1, MAX_QUEUE_CAPACITY),
        max_batch.clamp(1, MAX_BATCH),
    )
}

/// The builder setters `SqliteOptions` and `PostgresOptions` share: the queue of writes the
/// store commits in batches, and the destinations of new events. `$write` names one queued write
/// in the docs ("write", "insert").
macro_rules! queue_setters {
    ($write:literal) => {
        #[doc = concat!("The capacity of the ", $write, " queue (1 to [`MAX_QUEUE_CAPACITY`](crate::inbox::MAX_QUEUE_CAPACITY)).")]
        pub fn queue_capacity(mut self, capacity: usize) -> Self {
            self.queue_capacity = crate::inbox::queue_limits(capacity, 1).0;
            self
        }

        #[doc = concat!("The most ", $write, "s per transaction (1 to [`MAX_BATCH`](crate::inbox::MAX_BATCH)).")]
        pub fn max_batch(mut self, max_batch: usize) -> Self {
            self.max_batch = crate::inbox::queue_limits(1, max_batch).1;
            self
        }

        /// The destinations new events get a delivery for (at least one).
        pub fn destinations<I, S>(mut self, destinations: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.destinations = destinations.into_iter().map(Into::into).collect();
            self
        }
    };
}

mod admin;
mod claim;
mod columns;
mod delivery;
pub(crate) mod dispatch;
mod error;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;
mod status;
mod store;
mod time;
mod transient;

pub use admin::{
    AttemptInfo, Cursor, DeliveryState, EventDetail, EventSummary, ListFilter, ListOrder,
    ListRequest, Page, PurgeReport, ReplayReport, ReplayTarget, Retention, Stats,
};
pub use claim::{
    error_excerpt, AttemptOutcome, AttemptRecord, ClaimedDelivery, Finish, Lease, LeaseRequest,
    ERROR_EXCERPT_LIMIT,
};
pub use delivery::{Inserted, NewDelivery};
pub use dispatch::{
    parse_duration, redact_path_tokens, request_failure, tls_failure, Accepted, AttemptReport,
    AttemptResult, CallbackConsumer, Consumer, ConsumerFuture, Dispatcher, DispatcherBuilder,
    Failure, ForwardConfigError, HttpForward, InboxEvent, ParseScheduleError, RetrySchedule,
    ShutdownReport, MAX_CONCURRENCY,
};
pub use error::StoreError;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{
    PostgresOptions, PostgresStore, DEFAULT_POSTGRES_SCHEMA, POSTGRES_SCHEMA_VERSION,
};
pub use sqlite::{
    BatchHistogram, SqliteOptions, SqliteStore, StoreDeduper, Synchronous, DEFAULT_DESTINATION,
    DEFAULT_READ_TIMEOUT, MAX_BUSY_TIMEOUT, SCHEMA_VERSION,
};
pub use status::{DeliveryStatus, UnknownStatus};
pub use store::{CloseFuture, Store, StoreFuture};

/// How Debug shows a signature: whether there is one, never what it is.
fn redacted(signature: &Option<String>) -> Option<&'static str> {
    signature.as_ref().map(|_| "[REDACTED]")
}
