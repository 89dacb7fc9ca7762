//! The reads: a small pool of reader connections (WAL lets them read while the writer writes),
//! used from blocking threads, and the admin queries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};

use super::convert::{from_ms, store_error, to_ms};
use super::filter::Condition;
use super::keys;
use super::read_deadline::{self, Read};
use crate::inbox::{
    AttemptInfo, AttemptOutcome, Cursor, DeliveryState, DeliveryStatus, EventDetail, EventSummary,
    ListOrder, ListRequest, Page, Stats, StoreError,
};

type Result<T> = std::result::Result<T, StoreError>;

/// Opens reader connections on demand and keeps up to `keep` idle ones.
pub(crate) struct Readers {
    path: Arc<str>,
    open: Box<dyn Fn() -> Result<Connection> + Send + Sync>,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
    /// How long one read may run ([`SqliteOptions::read_timeout`](super::SqliteOptions::read_timeout)).
    timeout: Duration,
    /// Set by [`close`](Self::close): no more reads, no connection kept.
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl Readers {
    pub(crate) fn new(
        path: Arc<str>,
        keep: usize,
        timeout: Duration,
        open: impl Fn() -> Result<Connection> + Send + Sync + 'static,
    ) -> Self {
        Self {
            path,
            open: Box::new(open),
            idle: Mutex::new(Vec::new()),
            keep,
            timeout,
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Closes the idle connections; later reads fail, and a read in flight closes its
    /// connection when it ends.
    pub(crate) fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(idle);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Runs `query` (a `read`) on a reader connection in a blocking thread, stopped once it runs
    /// past the read timeout.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, read: Read, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            if readers.is_closed() {
                return Err(StoreError::Unavailable(format!(
                    "{}: the store is closed",
                    readers.path
                )));
            }
            let idle = readers.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match idle {
                Some(conn) => conn,
                None => (readers.open)()?,
            };
            let result = read_deadline::within(&conn, &readers.path, readers.timeout, read, query);
            let mut idle = readers.idle.lock().unwrap_or_else(|e| e.into_inner());
            // A connection left in a transaction (a read stopped half-way that did not roll
            // back) would hold its snapshot, and keep checkpoints from finishing: closed.
            if idle.len() < readers.keep && !readers.is_closed() && conn.is_autocommit() {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("a store read failed: {e}")))?
    }
}

fn status_of(text: &str, path: &str) -> rusqlite::Result<DeliveryStatus> {
    text.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("{path}: unknown delivery status").into(),
        )
    })
}

fn deliveries_of(
    conn: &Connection,
    path: &str,
    event_id: i64,
) -> rusqlite::Result<Vec<DeliveryState>> {
    // The total counts the attempt records of each delivery of the page on their index
    // (`attempts_by_delivery`): a few index entries per listed event, whatever the store's size.
    let mut stmt = conn.prepare_cached(
        "SELECT d.destination, d.status, d.attempts, d.next_attempt_at, d.last_error,
                d.delivered_at,
                (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id)
           FROM deliveries d WHERE d.event_id = ?1 ORDER BY d.destination",
    )?;
    let rows = stmt.query_map([event_id], |row| {
        let status: String = row.get(1)?;
        let attempts: i64 = row.get(2)?;
        let total: i64 = row.get(6)?;
        let status = status_of(&status, path)?;
        Ok(DeliveryState {
            destination: row.get(0)?,
            status,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            total_attempts: u32::try_from(total).unwrap_or(u32::MAX),
            next_attempt_at: match status {
                DeliveryStatus::Pending => row.get::<_, Option<i64>>(3)?.map(from_ms),
                _ => None,
            },
            last_error: row.get(4)?,
            delivered_at: row.get::<_, Option<i64>>(5)?.map(from_ms),
        })
    })?;
    rows.collect()
}

const SUMMARY_COLUMNS: &str = "e.id, e.client_id, e.event_hash, e.event_type, e.received_at,
    CASE WHEN e.body IS NULL THEN NULL ELSE e.body_len END, e.duplicates, e.conflicts";

fn summary(conn: &Connection, path: &str, row: &Row<'_>) -> rusqlite::Result<(i64, EventSummary)> {
    let id: i64 = row.get(0)?;
    Ok((
        id,
        EventSummary {
            client_id: row.get(1)?,
            event_hash: row.get(2)?,
            event_type: row.get(3)?,
            received_at: from_ms(row.get(4)?),
            body_len: row.get::<_, Option<i64>>(5)?.map(|n| n as usize),
            duplicates: row.get::<_, i64>(6)? as u64,
            conflicts: row.get::<_, i64>(7)? as u64,
            deliveries: deliveries_of(conn, path, id)?,
        },
    ))
}

pub(crate) fn list(conn: &Connection, path: &str, request: &ListRequest) -> Result<Page> {
    let condition = Condition::events(&request.filter);
    let mut params = condition.params;
    let (after_sql, order_sql) = match request.order {
        ListOrder::OldestFirst => (" AND e.id > ?", "ASC"),
        _ => (" AND e.id < ?", "DESC"),
    };
    let cursor_sql = match request.after {
        Some(Cursor(id)) => {
            params.push(id.into());
            after_sql
        }
        None => "",
    };
    let limit = request.limit.clamp(1, ListRequest::MAX_LIMIT);
    params.push((limit as i64 + 1).into());
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM events e WHERE ({}){cursor_sql}
          ORDER BY e.id {order_sql} LIMIT ?",
        condition.sql
    );
    let mut rows: Vec<(i64, EventSummary)> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params_from_iter(params), |row| summary(conn, path, row))?
                .collect()
        })
        .map_err(|e| store_error(path, e))?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(id, _)| Cursor(*id))
    } else {
        None
    };
    Ok(Page {
        events: rows.into_iter().map(|(_, s)| s).collect(),
        next,
    })
}

/// The newest event under `hash`, or the one for `client_id` if given.
pub(crate) fn get(
    conn: &Connection,
    path: &str,
    hash: &str,
    client_id: Option<&str>,
) -> Result<Option<EventDetail>> {
    let err = |e| store_error(path, e);
    let mut params = keys::by_hash_params(hash).to_vec();
    let client_sql = match client_id {
        Some(client_id) => {
            params.push(Value::Text(client_id.to_owned()));
            " AND e.client_id = ?"
        }
        None => "",
    };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, e.body, e.signature, e.content_type, e.body_sha256,
                e.last_conflict_sha256, e.method
           FROM events e WHERE {}{client_sql} ORDER BY e.id DESC LIMIT 1",
        keys::BY_HASH_SQL
    );
    let found = conn
        .query_row(&sql, params_from_iter(params), |row| {
            let (id, summary) = summary(conn, path, row)?;
            Ok((
                id,
                EventDetail {
                    summary,
                    body: row.get::<_, Option<Vec<u8>>>(8)?.map(Bytes::from),
                    signature: row.get(9)?,
                    content_type: row.get(10)?,
                    method: crate::inbox::delivery::method_from(
                        row.get::<_, Option<String>>(13)?.as_deref(),
                    ),
                    body_sha256: row.get(11)?,
                    last_conflict_sha256: row.get(12)?,
                    attempts: Vec::new(),
                },
            ))
        })
        .optional()
        .map_err(err)?;
    let Some((id, mut detail)) = found else {
        return Ok(None);
    };
    detail.attempts = conn
        .prepare_cached(
            "SELECT d.destination, a.started_at, a.duration_ms, a.outcome, a.http_status, a.error
               FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
              WHERE d.event_id = ?1 ORDER BY a.id",
        )
        .and_then(|mut stmt| {
            stmt.query_map([id], |row| {
                let outcome: String = row.get(3)?;
                Ok(AttemptInfo {
                    destination: row.get(0)?,
                    started_at: from_ms(row.get(1)?),
                    duration: Duration::from_millis(row.get::<_, i64>(2)?.max(0) as u64),
                    outcome: AttemptOutcome::parse(&outcome).unwrap_or(AttemptOutcome::Failure),
                    http_status: row.get(4)?,
                    error: row.get(5)?,
                })
            })?
            .collect()
        })
        .map_err(err)?;
    Ok(Some(detail))
}

/// The destinations with deliveries, sorted.
pub(crate) fn destinations(conn: &Connection, path: &str) -> Result<Vec<String>> {
    let err = |e| store_error(path, e);
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT destination FROM deliveries ORDER BY destination")
        .map_err(err)?;
    let names = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(err)?;
    Ok(names)
}

pub(crate) fn stats(conn: &Connection, path: &str, now: SystemTime) -> Result<Stats> {
    let err = |e| store_error(path, e);
    // One read transaction: every count from the same snapshot, so that they add up while the
    // writer commits between them.
    let snapshot = conn.unchecked_transaction().map_err(err)?;
    let mut deliveries: BTreeMap<&'static str, u64> = DeliveryStatus::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    // Delivered is what the others leave of the total: SQLite counts a whole table from its
    // B-tree's pages, while a count by status reads every entry in its range, and delivered is
    // the largest (a million delivered: 12 ms against 60 ms for `GROUP BY status`).
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM deliveries")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(err)?;
    let mut others = 0;
    for status in DeliveryStatus::ALL {
        if status == DeliveryStatus::Delivered {
            continue;
        }
        let count: i64 = conn
            .prepare_cached("SELECT count(*) FROM deliveries WHERE status = ?1")
            .and_then(|mut stmt| stmt.query_row([status.as_str()], |row| row.get(0)))
            .map_err(err)?;
        deliveries.insert(status.as_str(), count as u64);
        others += count;
    }
    deliveries.insert(
        DeliveryStatus::Delivered.as_str(),
        total.saturating_sub(others).max(0) as u64,
    );
    let events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .map_err(err)?;
    let (duplicates, conflicts): (i64, i64) = conn
        .query_row(
            "SELECT coalesce(sum(duplicates), 0), coalesce(sum(conflicts), 0) FROM events
              WHERE duplicates > 0 OR conflicts > 0",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(err)?;
    // The first stored of the pending, found on the status index: the least `received_at` of
    // all pending would read every one of them (558 ms with a million pending).
    let oldest: Option<i64> = conn
        .query_row(
            "SELECT e.received_at FROM deliveries d JOIN events e ON e.id = d.event_id
              WHERE d.status = 'pending' ORDER BY d.event_id LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(err)?;
    snapshot.commit().map_err(err)?;
    Ok(Stats {
        events: events as u64,
        deliveries,
        duplicates: duplicates as u64,
        conflicts: conflicts as u64,
        oldest_pending_age: oldest
            .map(|ms| Duration::from_millis(to_ms(now).saturating_sub(ms).max(0) as u64)),
    })
}
