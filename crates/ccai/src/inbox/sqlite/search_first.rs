//! A replay or a requeue of the dead by text: the text search runs first, as a read, and the
//! writer then updates the events it found, by id.
//!
//! A text search compares the text at every position of every body it reads: seconds over a
//! large inbox, minutes for a crafted text. Run by the one writer thread, as the rest of a bulk
//! write is, it held up every insert meanwhile (every delivery to the receiver waited, or was
//! answered 503). On a reader connection it is bounded by
//! [`SqliteOptions::read_timeout`](super::SqliteOptions::read_timeout), and inserts go on.
//!
//! The update is of the events found: one stored after the search is not included, even if it
//! matches, as it would not be had it arrived just after the whole write. The rest of the filter
//! and the status rules (no delivery in progress is touched, the filter's status, the dead alone
//! for a requeue, no purged body) are checked again by the update, as the deliveries may have
//! moved since the search. An event's body never changes but to be purged, which the update
//! checks, so the search's answer stands.

use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::{params_from_iter, Connection};

use super::convert::store_error;
use super::filter::Condition;
use super::queries::Readers;
use super::read_deadline::Read;
use super::writer::Writer;
use super::writes;
use crate::inbox::{DeliveryStatus, ListFilter, ReplayReport, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Events updated by one write: a few milliseconds of the writer's time, after which the inserts
/// waiting get their turn; well under SQLite's limit on a statement's parameters (32,766).
pub(crate) const CHUNK: usize = 500;

/// Which bulk write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bulk {
    /// [`Store::replay`](crate::inbox::Store::replay) by filter.
    Replay,
    /// [`Store::requeue_dead`](crate::inbox::Store::requeue_dead).
    RequeueDead,
}

/// Whether `filter` searches the bodies: then its bulk writes search first.
pub(crate) fn searches_bodies(filter: &ListFilter) -> bool {
    filter.text.as_deref().is_some_and(|text| !text.is_empty())
}

/// Runs `bulk` on the events matching `filter` (which has a text: [`searches_bodies`]): finds
/// them on a reader connection, then makes their deliveries due at `now` on the writer,
/// [`CHUNK`] events a write. The counts add up over the writes. An error part-way (the store
/// closed meanwhile, the disk full) leaves the events of the writes before it due, and its
/// message says how many, and what running the same operation again would do to them.
pub(crate) async fn make_due(
    readers: &Arc<Readers>,
    writer: &Writer,
    path: Arc<str>,
    bulk: Bulk,
    filter: ListFilter,
    now: SystemTime,
) -> Result<ReplayReport> {
    // A store that takes no writes says so before it searches.
    if let Some(failure) = writer.write_failure() {
        return Err(failure);
    }
    let search = filter.clone();
    let ids = readers
        .read(Read::Filtered, move |conn, path| {
            matching_ids(conn, path, &search, bulk)
        })
        .await?;
    // The search's answer stands for the text (see the module's doc); the rest is checked again.
    let rest = ListFilter {
        text: None,
        ..filter
    };
    let mut report = ReplayReport::default();
    let mut written = 0;
    for chunk in ids.chunks(CHUNK) {
        let condition = Condition::ids(chunk).and(Condition::events(&rest));
        let (path, status) = (Arc::clone(&path), rest.status);
        let done = writer
            .write(move |conn| match bulk {
                Bulk::Replay => writes::replay_where(conn, &path, condition, status, now),
                Bulk::RequeueDead => writes::requeue_dead_where(conn, &path, condition, now),
            })
            .await;
        let done = match done {
            Ok(done) => done,
            // The writes before this one stay: the caller must hear what they did, or it
            // would take the whole operation for undone.
            Err(error) if written > 0 => {
                let note = partly_done(bulk, rest.status, report, written, ids.len());
                return Err(error.noted(&note));
            }
            Err(error) => return Err(error),
        };
        written += chunk.len();
        report.due += done.due;
        report.purged += done.purged;
    }
    Ok(report)
}

/// What the writes before a failed one did (`report`, for the first `written` of the `found`
/// events), and what running the same `bulk` (with the filter's `status`) again would do to
/// them: for the failure's message.
fn partly_done(
    bulk: Bulk,
    status: Option<DeliveryStatus>,
    report: ReplayReport,
    written: usize,
    found: usize,
) -> String {
    let deliveries = match report.due {
        1 => "1 delivery".to_owned(),
        n => format!("{n} deliveries"),
    };
    let purged = match report.purged {
        0 => String::new(),
        n => format!(" ({n} left as they were for their purged body)"),
    };
    // What a rerun's update takes again is set by its status rule: a replay takes every
    // delivery not in progress, or those in the filter's status; a requeue the dead alone.
    // Said of "it": `ccai ui`'s bulk replay of the dead is a requeue, a library's may be either.
    let again = match (bulk, status) {
        (Bulk::RequeueDead, _) | (Bulk::Replay, Some(DeliveryStatus::Dead)) => {
            "running it again makes due only deliveries still dead, so these only if they are \
             dead again by then"
        }
        (Bulk::Replay, Some(DeliveryStatus::Delivered)) => {
            "running it again leaves these out while they are pending, but any delivered by \
             then is replayed, and sent, a second time"
        }
        (Bulk::Replay, Some(DeliveryStatus::Pending | DeliveryStatus::InProgress)) => {
            "running it again makes due again only those still pending, and sends none a \
             second time"
        }
        (Bulk::Replay, None) => {
            "running it again replays these too: any delivered by then is sent a second time"
        }
    };
    format!(
        "{written} of the {found} events found were written before this error, which does not \
         undo them: {deliveries} made due{purged}; {again}"
    )
}

/// The ids of the events matching `filter` with a delivery that `bulk` would make due, oldest
/// first: the search, on a reader connection.
fn matching_ids(
    conn: &Connection,
    path: &str,
    filter: &ListFilter,
    bulk: Bulk,
) -> Result<Vec<i64>> {
    let condition = Condition::events(filter);
    let mut params = condition.params;
    let deliveries = match bulk {
        Bulk::Replay => writes::replayed_deliveries(filter.status, &mut params),
        Bulk::RequeueDead => writes::REQUEUED_DELIVERIES.to_owned(),
    };
    let sql = format!(
        "SELECT e.id FROM events e WHERE ({})
            AND EXISTS (SELECT 1 FROM deliveries WHERE event_id = e.id AND {deliveries})
          ORDER BY e.id",
        condition.sql
    );
    let mut stmt = conn.prepare(&sql).map_err(|e| store_error(path, e))?;
    let ids = stmt
        .query_map(params_from_iter(params), |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| store_error(path, e))?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::{Duration, UNIX_EPOCH};

    use rusqlite::types::Value;

    use crate::inbox::{
        AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, NewDelivery,
        ReplayTarget, Retention, SqliteOptions, SqliteStore, Store, Synchronous,
    };

    /// More events than one write updates match: every one is made due, over several writes,
    /// and the one that does not match is left alone.
    #[tokio::test]
    async fn a_replay_by_text_of_more_events_than_one_write_takes_makes_them_all_due() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SqliteOptions::new().synchronous(Synchronous::Normal);
        let store = SqliteStore::open(dir.path().join("inbox.db"), options).expect("open");
        let matching = 2 * CHUNK + 1;
        for i in 0..=matching {
            let word = if i == matching { "haystack" } else { "needle" };
            let hash = format!("h{i}");
            let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"{word}"}}}}"#);
            let delivery = NewDelivery::new("1231", hash.as_str(), "message.incoming", body);
            store.insert(delivery).await.expect("insert");
        }
        let before = store.batch_sizes().writes();
        let replayed = store
            .replay(ReplayTarget::Filter(ListFilter::new().text("needle")))
            .await
            .expect("replay by text");
        assert_eq!(replayed, ReplayReport::new(matching as u64, 0));
        assert_eq!(
            store.batch_sizes().writes() - before,
            3,
            "{CHUNK} events a write"
        );
        // None is dead: a requeue by the same text finds nothing, and writes nothing.
        let requeued = store
            .requeue_dead(ListFilter::new().text("needle"))
            .await
            .expect("requeue by text");
        assert_eq!(requeued, ReplayReport::new(0, 0));
        assert_eq!(store.batch_sizes().writes() - before, 3);
        store.close().await;
    }

    /// A store at `path` with `n` events whose body holds "needle", each delivery finished to
    /// `finish` ([`Finish::Dead`] or [`Finish::Delivered`]).
    async fn finished(path: &Path, n: usize, finish: Finish) -> SqliteStore {
        let options = SqliteOptions::new().synchronous(Synchronous::Normal);
        let store = SqliteStore::open(path, options).expect("open");
        for i in 0..n {
            let hash = format!("h{i}");
            let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"a needle"}}}}"#);
            let delivery = NewDelivery::new("1231", hash.as_str(), "message.incoming", body);
            store.insert(delivery).await.expect("insert");
        }
        let now = SystemTime::now();
        let lease = LeaseRequest::new("w", Duration::from_secs(3600));
        loop {
            let claimed = store
                .claim(crate::inbox::DEFAULT_DESTINATION, lease.clone(), 200, now)
                .await
                .expect("claim");
            if claimed.is_empty() {
                break;
            }
            for c in claimed {
                let outcome = match finish {
                    Finish::Delivered => AttemptOutcome::Success,
                    _ => AttemptOutcome::Failure,
                };
                let record = AttemptRecord::new(now, Duration::ZERO, outcome);
                let done = store.finish(&c.lease, finish, record).await;
                assert_eq!(done, Ok(true));
            }
        }
        store
    }

    /// How many deliveries of the store at `path` are pending.
    fn pending(path: &Path) -> usize {
        let conn = Connection::open(path).expect("open");
        conn.query_row(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'",
            [],
            |row| row.get(0),
        )
        .expect("count")
    }

    /// A bulk write by text over more events than one write takes, whose second write fails for
    /// real: a trigger, added to the file as another process would, aborts the update of an
    /// event in it. The error keeps its kind and says how many were made due by the first
    /// write, which stay due, and what running it again would do to them.
    #[tokio::test]
    async fn a_bulk_write_by_text_that_fails_part_way_says_what_it_had_done() {
        let found = 2 * CHUNK + 10;
        for (bulk, finish, again) in [
            (
                Bulk::RequeueDead,
                Finish::Dead,
                "running it again makes due only deliveries still dead",
            ),
            (
                Bulk::Replay,
                Finish::Delivered,
                "any delivered by then is sent a second time",
            ),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("inbox.db");
            let store = finished(&path, found, finish).await;
            assert_eq!(pending(&path), 0);
            {
                let conn = Connection::open(&path).expect("open");
                // An event of the second write, oldest first as the writes go.
                let second: i64 = conn
                    .query_row(
                        "SELECT id FROM events ORDER BY id LIMIT 1 OFFSET ?1",
                        [CHUNK + CHUNK / 2],
                        |row| row.get(0),
                    )
                    .expect("an event of the second write");
                conn.execute_batch(&format!(
                    "CREATE TRIGGER refuse BEFORE UPDATE ON deliveries WHEN NEW.event_id = {second}
                     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                ))
                .expect("trigger");
            }
            let filter = ListFilter::new().text("needle");
            let error = match bulk {
                Bulk::Replay => store.replay(ReplayTarget::Filter(filter)).await,
                Bulk::RequeueDead => store.requeue_dead(filter).await,
            }
            .expect_err("the second write fails");
            let what = format!("{bulk:?}: {error}");
            // The kind of the write's own failure: transient, as it was.
            assert!(
                matches!(&error, StoreError::Unavailable(why) if why.contains("refused by the test")),
                "{what}"
            );
            assert!(
                error.to_string().contains(&format!(
                    "{CHUNK} of the {found} events found were written before this error, \
                     which does not undo them: {CHUNK} deliveries made due; "
                )),
                "{what}"
            );
            assert!(error.to_string().contains(again), "{what}");
            assert_eq!(pending(&path), CHUNK, "{what}");
            store.close().await;
        }
    }

    /// The destinations of the differential test's store: each event has a delivery to both.
    const DESTINATIONS: [&str; 2] = ["a", "b"];

    /// Where one delivery of the differential test's store is left.
    #[derive(Clone, Copy)]
    enum Left {
        /// Claimed, then released: pending, no attempt.
        Released,
        /// Failed once, due again in an hour: pending with an attempt.
        Retrying,
        Delivered,
        Dead,
        /// Claimed and not finished.
        InProgress,
    }

    const LEFT: [Left; 5] = [
        Left::Released,
        Left::Retrying,
        Left::Delivered,
        Left::Dead,
        Left::InProgress,
    ];

    /// A store at `path` holding every combination the filters tell apart: two accounts, two
    /// types, hashes sharing a start, bodies with and without the text, received over an hour,
    /// each delivery (two an event) left in any state, and finished events whose body was purged.
    async fn fill(path: &Path, t0: SystemTime) {
        let options = SqliteOptions {
            destinations: DESTINATIONS.map(str::to_owned).to_vec(),
            ..SqliteOptions::new().synchronous(Synchronous::Normal)
        };
        let store = SqliteStore::open(path, options).expect("open");
        // Purged below: received two days before the others, every delivery finished.
        for i in 0..6 {
            let hash = format!("old{i}");
            let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"a needle"}}}}"#);
            let received = t0 - Duration::from_secs(2 * 24 * 3600);
            let delivery = NewDelivery::new("1231", hash.as_str(), "message.sent", body);
            store
                .insert(delivery.received_at(received))
                .await
                .expect("insert");
        }
        for i in 0..40u64 {
            let client = if i % 3 == 0 { "4567" } else { "1231" };
            let event_type = if i % 2 == 0 {
                "message.sent"
            } else {
                "message.incoming"
            };
            let word = if i % 4 == 3 { "haystack" } else { "needle" };
            let hash = format!("{}{i}", if i % 5 < 2 { "abc" } else { "xyz" });
            let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"a {word}"}}}}"#);
            let delivery = NewDelivery::new(client, hash.as_str(), event_type, body)
                .received_at(t0 + Duration::from_secs(60 * i));
            store.insert(delivery).await.expect("insert");
        }
        let now = SystemTime::now();
        let lease = LeaseRequest::new("w", Duration::from_secs(3600));
        for (d, destination) in DESTINATIONS.iter().enumerate() {
            let claimed = store
                .claim(destination, lease.clone(), 1000, now)
                .await
                .expect("claim");
            assert_eq!(claimed.len(), 46, "{destination}");
            for (n, c) in claimed.iter().enumerate() {
                let left = if c.event_hash.starts_with("old") {
                    if (n + d) % 2 == 0 {
                        Left::Delivered
                    } else {
                        Left::Dead
                    }
                } else {
                    LEFT[(n * 2 + d) % LEFT.len()]
                };
                let record = |outcome| AttemptRecord::new(now, Duration::ZERO, outcome);
                let done = match left {
                    Left::Released => store.release(&c.lease).await,
                    Left::Retrying => {
                        let again = Finish::RetryAt(now + Duration::from_secs(3600));
                        store
                            .finish(&c.lease, again, record(AttemptOutcome::Failure))
                            .await
                    }
                    Left::Delivered => {
                        let success = record(AttemptOutcome::Success);
                        store.finish(&c.lease, Finish::Delivered, success).await
                    }
                    Left::Dead => {
                        let failure = record(AttemptOutcome::Failure);
                        store.finish(&c.lease, Finish::Dead, failure).await
                    }
                    Left::InProgress => Ok(true),
                };
                assert_eq!(done, Ok(true));
            }
        }
        let purged = store
            .purge(
                Retention {
                    bodies: Duration::from_secs(24 * 3600),
                    rows: Duration::from_secs(365 * 24 * 3600),
                },
                now,
            )
            .await
            .expect("purge");
        assert_eq!(purged.bodies_purged, 6);
        store.close().await;
    }

    /// Every delivery of the store at `path`, every column.
    fn deliveries(path: &Path) -> Vec<Vec<Value>> {
        let conn = Connection::open(path).expect("open");
        let mut stmt = conn
            .prepare("SELECT * FROM deliveries ORDER BY id")
            .expect("prepare");
        let columns = stmt.column_count();
        stmt.query_map([], |row| {
            (0..columns)
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .and_then(|rows| rows.collect())
        .expect("read")
    }

    /// A differential test: a replay or requeue by text, searched first and written by id, gives
    /// the counts and leaves every delivery as the single statement it replaced (still the path
    /// of every other filter, and what PostgreSQL runs) does, on the same store at the same time,
    /// for every field a filter has beside its text and every state a delivery can be in.
    #[tokio::test]
    async fn a_bulk_write_by_text_does_what_the_single_statement_did() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("base.db");
        let t0 = SystemTime::now() - Duration::from_secs(3 * 3600);
        fill(&base, t0).await;
        let needle = || ListFilter::new().text("needle");
        let mut filters = vec![
            needle(),
            ListFilter::new().text("haystack"),
            // In every body, the purged ones' included before they were purged.
            ListFilter::new().text("eventHash"),
            ListFilter::new().text("nowhere"),
            needle().event_type("message.sent"),
            needle().since(t0 + Duration::from_secs(60 * 20)),
            needle().until(t0 + Duration::from_secs(60 * 20)),
            needle().event_hash("abc5"),
            needle().event_hash("old1"),
            needle().hash_prefix("abc"),
            needle().client_id("4567"),
            needle()
                .client_id("1231")
                .event_type("message.incoming")
                .hash_prefix("xyz")
                .since(t0 + Duration::from_secs(60 * 5))
                .until(t0 + Duration::from_secs(60 * 35)),
        ];
        for status in [
            DeliveryStatus::Pending,
            DeliveryStatus::InProgress,
            DeliveryStatus::Delivered,
            DeliveryStatus::Dead,
        ] {
            filters.push(needle().status(status));
            filters.push(needle().status(status).event_type("message.incoming"));
        }
        let mut acted = 0;
        for (n, filter) in filters.into_iter().enumerate() {
            for bulk in [Bulk::Replay, Bulk::RequeueDead] {
                let what = format!("{bulk:?} {filter:?}");
                // The same time for both: it is written into the deliveries made due.
                let now = UNIX_EPOCH + Duration::from_millis(to_ms_now());
                let single = dir.path().join(format!("single-{n}-{bulk:?}.db"));
                let searched = dir.path().join(format!("searched-{n}-{bulk:?}.db"));
                std::fs::copy(&base, &single).expect("copy");
                std::fs::copy(&base, &searched).expect("copy");

                let store = SqliteStore::open(&single, SqliteOptions::new()).expect("open");
                let (path, target) = (store.path_arc(), filter.clone());
                let expected = store
                    .inner
                    .writer
                    .write(move |conn| match bulk {
                        Bulk::Replay => {
                            writes::replay(conn, &path, &ReplayTarget::Filter(target), now)
                        }
                        Bulk::RequeueDead => writes::requeue_dead(conn, &path, &target, now),
                    })
                    .await
                    .expect(&what);
                store.close().await;

                let store = SqliteStore::open(&searched, SqliteOptions::new()).expect("open");
                let got = make_due(
                    &store.inner.readers,
                    &store.inner.writer,
                    store.path_arc(),
                    bulk,
                    filter.clone(),
                    now,
                )
                .await
                .expect(&what);
                store.close().await;

                assert_eq!(got, expected, "{what}");
                assert_eq!(deliveries(&searched), deliveries(&single), "{what}");
                if expected.due > 0 {
                    acted += 1;
                }
            }
        }
        // Not a comparison of two writes that did nothing.
        assert!(acted >= 20, "{acted}");
    }

    /// Now, in whole milliseconds (as the store keeps times).
    fn to_ms_now() -> u64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }
}
