//! The [`Store`] trait: what the receiver, the dispatcher and the admin API need from a durable
//! inbox, whatever database is behind it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use super::{
    AttemptRecord, ClaimedDelivery, EventDetail, Finish, Inserted, Lease, LeaseRequest,
    ListRequest, NewDelivery, Page, PurgeReport, ReplayReport, ReplayTarget, Retention, Stats,
    StoreError,
};

/// The boxed future a [`Store`] method returns (boxed so that the trait is object-safe and usable
/// as `Arc<dyn Store>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The boxed future [`Store::close`] returns.
pub type CloseFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A durable inbox of verified deliveries: the stored row is the queue entry.
///
/// Each event is stored once per `(client_id, event_hash)`, with one delivery per destination
/// the store was opened with. Deliveries move `pending → in_progress → delivered | pending | dead`
/// under leases with fencing tokens, so several dispatchers (in one process or several) can share
/// a store and a worker that died or hung does not block an event.
///
/// Implemented by [`SqliteStore`](super::SqliteStore) and, with the `postgres` feature, by
/// `PostgresStore`; the conformance tests in
/// `tests/inbox/conformance.rs` describe the behaviour every implementation must have.
///
/// A store of your own builds what it returns with the types' constructors:
/// [`ClaimedDelivery::new`] (from a [`Lease::new`] and an
/// [`InboxEvent::new`](super::InboxEvent::new)), [`Page::new`] (with
/// [`Cursor::from_id`](super::Cursor::from_id)), [`EventSummary::new`](super::EventSummary::new),
/// [`DeliveryState::new`](super::DeliveryState::new), [`EventDetail::new`],
/// [`AttemptInfo::new`](super::AttemptInfo::new), [`PurgeReport::new`],
/// [`ReplayReport::new`](super::ReplayReport::new), and
/// [`Stats::default`] with its fields set.
pub trait Store: Send + Sync + fmt::Debug {
    /// Stores a verified delivery. `Ok` means the outcome is committed (durable per the store's
    /// synchronous mode): the receiver may answer `200`. Any error means nothing was stored: the
    /// handler's inbox mode answers it `503` with `Retry-After`, so the sender retries. A
    /// delivery whose account id, `eventHash` or `eventType` is longer than
    /// [`MAX_FIELD_LEN`](crate::event::MAX_FIELD_LEN) or holds a NUL is refused alone with
    /// [`StoreError::InvalidRequest`] (the receiver's parse refuses such an event first).
    fn insert<'a>(&'a self, delivery: NewDelivery) -> StoreFuture<'a, Inserted>;

    /// Claims up to `limit` deliveries to `destination` that are due at `now` (pending and due, or
    /// in progress with a lapsed lease), each under a new lease with its own token, oldest due
    /// first. A delivery reclaimed from a lapsed lease gets an attempt recorded as
    /// [`LeaseExpired`](super::AttemptOutcome::LeaseExpired). A store may cap how many one call
    /// takes, but not below [`MAX_CONCURRENCY`](super::MAX_CONCURRENCY), the most a dispatcher
    /// asks for: it reads a claim that comes back short as nothing more being due (the
    /// PostgreSQL store takes at most that many per call).
    fn claim<'a>(
        &'a self,
        destination: &'a str,
        lease: LeaseRequest,
        limit: usize,
        now: SystemTime,
    ) -> StoreFuture<'a, Vec<ClaimedDelivery>>;

    /// Ends an attempt: records `attempt` and moves the delivery as `finish` says, only if `lease`
    /// still holds the delivery. With [`Finish::DeadUnsent`] no attempt was made: only the
    /// record's error is kept (as the last error), the attempt count and history stay as they
    /// were. `Ok(false)` means the token no longer matched (the lease lapsed and someone else
    /// claimed it, or it was released): nothing changed.
    ///
    /// Finishing again with the lease that already finished the delivery, to the same status
    /// (delivered, pending again, dead), changes nothing and answers `Ok(true)`, for as long as
    /// the delivery stays where that finish moved it: a finish that failed with a transient
    /// error may have been recorded all the same (a commit whose answer was lost), and the
    /// dispatcher tries it again; `Ok(false)` there would read as a lease taken over. To
    /// another status, it is refused (`Ok(false)`). A store that cannot tell answers
    /// `Ok(false)`: the dispatcher then drops the result, as for a lease taken over.
    fn finish<'a>(
        &'a self,
        lease: &'a Lease,
        finish: Finish,
        attempt: AttemptRecord,
    ) -> StoreFuture<'a, bool>;

    /// Extends `lease` to `until` (a heartbeat for long work). `Ok(false)` if the token no longer
    /// matched.
    fn extend_lease<'a>(&'a self, lease: &'a Lease, until: SystemTime) -> StoreFuture<'a, bool>;

    /// Gives a claimed delivery back unattempted: pending and due at once, no attempt counted.
    /// `Ok(false)` if the token no longer matched.
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool>;

    /// One page of events matching the request's filter, in its order (newest first unless it
    /// asks for [`oldest_first`](super::ListRequest::oldest_first)). A filter that
    /// [`ListFilter::validate`](super::ListFilter::validate) refuses (a search text longer than
    /// [`ListFilter::MAX_TEXT_LEN`](super::ListFilter::MAX_TEXT_LEN)) is refused with
    /// [`StoreError::InvalidRequest`], as by [`replay`](Self::replay) and
    /// [`requeue_dead`](Self::requeue_dead).
    fn list<'a>(&'a self, request: ListRequest) -> StoreFuture<'a, Page>;

    /// Everything about the event with `event_hash` (the newest if several accounts used it;
    /// [`get_for`](Self::get_for) names the account).
    fn get<'a>(&'a self, event_hash: &'a str) -> StoreFuture<'a, Option<EventDetail>>;

    /// Everything about the event with `event_hash` received for `client_id`: exactly one event,
    /// as each is stored once per `(client_id, event_hash)`.
    fn get_for<'a>(
        &'a self,
        client_id: &'a str,
        event_hash: &'a str,
    ) -> StoreFuture<'a, Option<EventDetail>>;

    /// Makes the target's deliveries (not those in progress) due now, keeping the event's hash
    /// and its attempt history. A delivered or dead delivery starts its retry schedule over; a
    /// pending one keeps its count. An event whose body was purged is not replayed. Returns how
    /// many deliveries were made due, and how many events matching were not for their purged
    /// body. A filter target must not be empty ([`StoreError::InvalidRequest`]). A store may
    /// make them due over several writes (a SQLite store, for a filter with a text, 500 events
    /// a write): an error after the first leaves those of the writes before it due, and its
    /// message says how many and what running the replay again would do to them.
    fn replay<'a>(&'a self, target: ReplayTarget) -> StoreFuture<'a, ReplayReport>;

    /// Moves dead deliveries of events matching `filter` back to pending, due now, with their
    /// retry schedule started over (history kept). An empty filter means every dead delivery.
    /// Returns how many were moved, and how many events with a dead delivery matching were not
    /// for their purged body. As for [`replay`](Self::replay), an error after a first write of
    /// several leaves that write's deliveries due, and says how many.
    fn requeue_dead<'a>(&'a self, filter: super::ListFilter) -> StoreFuture<'a, ReplayReport>;

    /// Applies `retention` at `now`: deletes bodies, then rows, of events whose deliveries are
    /// all finished, delivered or dead: a dead event loses its body as a delivered one does,
    /// after which it can no longer be replayed or requeued (nothing to send). An event with a
    /// delivery pending or in progress keeps its body and row, however old.
    fn purge<'a>(&'a self, retention: Retention, now: SystemTime) -> StoreFuture<'a, PurgeReport>;

    /// Counts per status, duplicates, conflicts and the oldest pending age at `now`, all read
    /// from one snapshot (they add up while inserts commit).
    fn stats<'a>(&'a self, now: SystemTime) -> StoreFuture<'a, Stats>;

    /// The destinations the store holds deliveries for, each once, sorted: a
    /// [`Dispatcher`](super::Dispatcher) started for a name none of them has (a typo) warns, where
    /// it dispatched nothing without a word. It may read every delivery: call it rarely (a
    /// dispatcher calls it once, when it starts). The default returns an empty list, which
    /// means "cannot tell", as an empty store does: nothing is warned of.
    fn destinations<'a>(&'a self) -> StoreFuture<'a, Vec<String>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Closes the store, for this handle and every clone, and waits until it is closed: the
    /// inserts queued before are committed and answered, then the store's threads, tasks and
    /// connections end. Later operations fail with [`StoreError::Unavailable`] ("the store is
    /// closed"). Closing again does nothing. Shut a dispatcher on the store down first: its
    /// claims would fail.
    ///
    /// Call it before the process exits: dropping the last handle also closes a store, but
    /// without waiting. The default does nothing, and so promises none of the above: it is for
    /// a store that holds nothing to close; one that holds threads, connections or queued
    /// writes must override it.
    fn close<'a>(&'a self) -> CloseFuture<'a> {
        Box::pin(std::future::ready(()))
    }
}

/// The destinations a store opens with: each once (a name twice would make every insert violate
/// the delivery's unique key), and at least one (a new event would get no delivery).
pub(crate) fn checked_destinations(destinations: &mut Vec<String>) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::new();
    destinations.retain(|d| seen.insert(d.clone()));
    if destinations.is_empty() {
        return Err(StoreError::InvalidRequest(
            "a store needs at least one destination".into(),
        ));
    }
    // PostgreSQL text cannot hold a NUL: every insert would fail; refused at open instead, by
    // both stores alike.
    if destinations.iter().any(|d| d.contains('\0')) {
        return Err(StoreError::InvalidRequest(
            "a destination name contains a NUL character".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_deduplicated_and_checked() {
        let mut twice = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        checked_destinations(&mut twice).expect("valid");
        assert_eq!(twice, ["a", "b"]);
        assert!(matches!(
            checked_destinations(&mut Vec::new()),
            Err(StoreError::InvalidRequest(_))
        ));
        match checked_destinations(&mut vec!["crm\0".to_owned()]) {
            Err(StoreError::InvalidRequest(why)) => assert!(why.contains("NUL"), "{why}"),
            other => panic!("a NUL in a destination: {other:?}"),
        }
    }
}
