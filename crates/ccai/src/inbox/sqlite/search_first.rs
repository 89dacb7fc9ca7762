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
use crate::inbox::{ListFilter, ReplayReport, StoreError};

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
/// them on a reader connection, then makes their deliveries due on the writer, [`CHUNK`] events
/// a write. The counts add up over the writes. An error part-way (the store closed meanwhile)
/// leaves the events of the writes before it due.
pub(crate) async fn make_due(
    readers: &Arc<Readers>,
    writer: &Writer,
    path: Arc<str>,
    bulk: Bulk,
    filter: ListFilter,
) -> Result<ReplayReport> {
    // A store that takes no writes says so before it searches.
    if let Some(failure) = writer.write_failure() {
        return Err(failure);
    }
    let now = SystemTime::now();
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
    for chunk in ids.chunks(CHUNK) {
        let condition = Condition::ids(chunk).and(Condition::events(&rest));
        let (path, status) = (Arc::clone(&path), rest.status);
        let done = writer
            .write(move |conn| match bulk {
                Bulk::Replay => writes::replay_where(conn, &path, condition, status, now),
                Bulk::RequeueDead => writes::requeue_dead_where(conn, &path, condition, now),
            })
            .await?;
        report.due += done.due;
        report.purged += done.purged;
    }
    Ok(report)
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
    use crate::inbox::{NewDelivery, ReplayTarget, SqliteOptions, SqliteStore, Store, Synchronous};

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
}
