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
//! | Durable deduplication for the handler | [`StoreDeduper`] ([`SqliteStore::deduper`]) |
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
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ccai::inbox::{Dispatcher, HttpForward, NewDelivery, SqliteOptions, SqliteStore, Store};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(SqliteStore::open("inbox.db", SqliteOptions::default())?);
//! let dispatcher = Dispatcher::builder(store.clone(), HttpForward::new("http://127.0.0.1:9000/hook")?)
//!     .concurrency(8)
//!     .start();
//! // In the receiver, after verifying a delivery:
//! store.insert(NewDelivery::new("1231", "hash", "message.sent", &b"{}"[..])).await?;
//! dispatcher.wake();
//! // On shutdown: the dispatcher first, then the store (queued writes answered, files tidied).
//! dispatcher.shutdown(Duration::from_secs(10)).await;
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
