//! The admin reads: list, get, stats.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio_postgres::Row;

use super::filter::{refs, Condition, Param};
use super::read_limit::ReadLimit;
use super::Shared;
use crate::inbox::sqlite::convert::{from_ms, to_ms};
use crate::inbox::sqlite::read_deadline::Read;
use crate::inbox::{
    AttemptInfo, AttemptOutcome, Cursor, DeliveryState, DeliveryStatus, EventDetail, EventSummary,
    ListOrder, ListRequest, Page, Stats, StoreError,
};

type Result<T> = std::result::Result<T, StoreError>;
type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

const SUMMARY_COLUMNS: &str = "e.id, e.client_id, e.event_hash, e.event_type, e.received_at,
    CASE WHEN e.body IS NULL THEN NULL ELSE e.body_len END, e.duplicates, e.conflicts";

/// The deliveries of the events `$1`, by event then destination (byte order, as SQLite sorts),
/// each with its attempt records counted on their index (`attempts_by_delivery`): a few index
/// entries per listed event, whatever the store's size.
const DELIVERIES: &str = "SELECT d.event_id, d.destination, d.status, d.attempts,
       d.next_attempt_at, d.last_error, d.delivered_at,
       (SELECT count(*) FROM {s}.attempts a WHERE a.delivery_id = d.id)
  FROM {s}.deliveries d WHERE d.event_id = ANY($1)
 ORDER BY d.event_id, d.destination COLLATE \"C\"";

const ATTEMPTS: &str =
    "SELECT d.destination, a.started_at, a.duration_ms, a.outcome, a.http_status,
       a.error
  FROM {s}.attempts a JOIN {s}.deliveries d ON d.id = a.delivery_id
 WHERE d.event_id = $1 ORDER BY a.id";

fn summary(row: &Row) -> PgResult<(i64, EventSummary)> {
    let id: i64 = row.try_get(0)?;
    Ok((
        id,
        EventSummary {
            client_id: row.try_get(1)?,
            event_hash: row.try_get(2)?,
            event_type: row.try_get(3)?,
            received_at: from_ms(row.try_get(4)?),
            body_len: row
                .try_get::<_, Option<i64>>(5)?
                .map(|n| usize::try_from(n).unwrap_or(0)),
            duplicates: u64::try_from(row.try_get::<_, i64>(6)?).unwrap_or(0),
            conflicts: u64::try_from(row.try_get::<_, i64>(7)?).unwrap_or(0),
            deliveries: Vec::new(),
        },
    ))
}

/// Fills in the deliveries of `events` with one query, within the read `limit`.
async fn add_deliveries(
    shared: &Shared,
    client: &deadpool_postgres::Object,
    limit: &ReadLimit<'_>,
    events: &mut [(i64, EventSummary)],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let err = |e: tokio_postgres::Error| limit.error(&e);
    let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    let statement = client
        .prepare_cached(&shared.sql(DELIVERIES))
        .await
        .map_err(err)?;
    let rows = client.query(&statement, &[&ids]).await.map_err(err)?;
    let mut by_event: HashMap<i64, Vec<DeliveryState>> = HashMap::new();
    for row in rows {
        let status: String = row.try_get(2).map_err(err)?;
        let status: DeliveryStatus = status.parse().map_err(|_| {
            StoreError::Corrupt(format!("{}: unknown delivery status", shared.shown))
        })?;
        let attempts: i32 = row.try_get(3).map_err(err)?;
        let next: Option<i64> = row.try_get(4).map_err(err)?;
        let delivered: Option<i64> = row.try_get(6).map_err(err)?;
        let total: i64 = row.try_get(7).map_err(err)?;
        by_event
            .entry(row.try_get(0).map_err(err)?)
            .or_default()
            .push(DeliveryState {
                destination: row.try_get(1).map_err(err)?,
                status,
                attempts: u32::try_from(attempts).unwrap_or(0),
                total_attempts: u32::try_from(total).unwrap_or(u32::MAX),
                next_attempt_at: match status {
                    // Stored on the database's clock (`clock.rs`), shown on this machine's.
                    DeliveryStatus::Pending => next.map(|ms| shared.clock.local_time(ms)),
                    _ => None,
                },
                last_error: row.try_get(5).map_err(err)?,
                delivered_at: delivered.map(from_ms),
            });
    }
    for (id, summary) in events.iter_mut() {
        summary.deliveries = by_event.remove(id).unwrap_or_default();
    }
    Ok(())
}

pub(crate) async fn list(shared: &Shared, request: &ListRequest) -> Result<Page> {
    let s = &shared.ident;
    let condition = Condition::events(&request.filter, s, 0);
    let mut params: Vec<Param> = condition.params;
    let (after_op, order_sql) = match request.order {
        ListOrder::OldestFirst => (">", "ASC"),
        _ => ("<", "DESC"),
    };
    let cursor_sql = match request.after {
        Some(Cursor(id)) => {
            params.push(Box::new(id));
            format!(" AND e.id {after_op} ${}", params.len())
        }
        None => String::new(),
    };
    let limit = request.limit.clamp(1, ListRequest::MAX_LIMIT);
    params.push(Box::new(limit as i64 + 1));
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM {s}.events e WHERE ({}){cursor_sql}
          ORDER BY e.id {order_sql} LIMIT ${}",
        condition.sql,
        params.len()
    );
    let (events, more) = shared
        .read(Read::Filtered, async |client, read| {
            let err = |e: tokio_postgres::Error| read.error(&e);
            let rows = client.query(&sql, &refs(&params)).await.map_err(err)?;
            let mut events = rows
                .iter()
                .map(summary)
                .collect::<PgResult<Vec<_>>>()
                .map_err(err)?;
            let more = events.len() > limit;
            events.truncate(limit);
            add_deliveries(shared, client, read, &mut events).await?;
            Ok((events, more))
        })
        .await?;
    let next = if more {
        events.last().map(|(id, _)| Cursor(*id))
    } else {
        None
    };
    Ok(Page {
        events: events.into_iter().map(|(_, s)| s).collect(),
        next,
    })
}

/// The newest event under `hash`, or the one for `client_id` if given.
pub(crate) async fn get(
    shared: &Shared,
    hash: &str,
    client_id: Option<&str>,
) -> Result<Option<EventDetail>> {
    if hash.contains('\0') || client_id.is_some_and(|c| c.contains('\0')) {
        // Never stored (text cannot hold a NUL), and refused as a parameter.
        return Ok(None);
    }
    let err = |e: tokio_postgres::Error| shared.error(&e);
    let sql = shared.sql(&format!(
        "SELECT {SUMMARY_COLUMNS}, e.body, e.signature, e.content_type, e.body_sha256,
                e.last_conflict_sha256, e.method
           FROM {{s}}.events e WHERE e.event_hash = $1 AND ($2::text IS NULL OR e.client_id = $2)
          ORDER BY e.id DESC LIMIT 1"
    ));
    let found = shared
        .read(Read::Unfiltered, async |client, read| {
            let err = |e: tokio_postgres::Error| read.error(&e);
            let statement = client.prepare_cached(&sql).await.map_err(err)?;
            let Some(row) = client
                .query_opt(&statement, &[&hash, &client_id])
                .await
                .map_err(err)?
            else {
                return Ok(None);
            };
            let mut events = vec![summary(&row).map_err(err)?];
            add_deliveries(shared, client, read, &mut events).await?;
            let Some((id, summary)) = events.pop() else {
                return Ok(None);
            };
            let attempts_statement = client
                .prepare_cached(&shared.sql(ATTEMPTS))
                .await
                .map_err(err)?;
            let attempts = client
                .query(&attempts_statement, &[&id])
                .await
                .map_err(err)?;
            Ok(Some((row, summary, attempts)))
        })
        .await?;
    let Some((row, summary, attempts)) = found else {
        return Ok(None);
    };
    let attempts = attempts
        .iter()
        .map(|row| {
            let outcome: String = row.try_get(3)?;
            let duration: i64 = row.try_get(2)?;
            let http_status: Option<i32> = row.try_get(4)?;
            Ok(AttemptInfo {
                destination: row.try_get(0)?,
                started_at: from_ms(row.try_get(1)?),
                duration: Duration::from_millis(u64::try_from(duration).unwrap_or(0)),
                outcome: AttemptOutcome::parse(&outcome).unwrap_or(AttemptOutcome::Failure),
                http_status: http_status.and_then(|s| u16::try_from(s).ok()),
                error: row.try_get(5)?,
            })
        })
        .collect::<PgResult<Vec<_>>>()
        .map_err(err)?;
    let body: Option<Vec<u8>> = row.try_get(8).map_err(err)?;
    Ok(Some(EventDetail {
        summary,
        body: body.map(Bytes::from),
        signature: row.try_get(9).map_err(err)?,
        content_type: row.try_get(10).map_err(err)?,
        method: crate::inbox::delivery::method_from(
            row.try_get::<_, Option<&str>>(13).map_err(err)?,
        ),
        body_sha256: row.try_get(11).map_err(err)?,
        last_conflict_sha256: row.try_get(12).map_err(err)?,
        attempts,
    }))
}

/// The destinations with deliveries, sorted.
pub(crate) async fn destinations(shared: &Shared) -> Result<Vec<String>> {
    let s = &shared.ident;
    let err = |e: tokio_postgres::Error| shared.error(&e);
    // `COLLATE "C"`: sorted by bytes, as SQLite sorts them, whatever the database's collation.
    let sql =
        format!("SELECT DISTINCT destination COLLATE \"C\" AS d FROM {s}.deliveries ORDER BY d");
    let rows = shared
        .read(Read::Unfiltered, async |client, read| {
            let rows = client.query(sql.as_str(), &[]).await;
            rows.map_err(|e| read.error(&e))
        })
        .await?;
    rows.iter()
        .map(|row| row.try_get::<_, String>(0).map_err(err))
        .collect()
}

pub(crate) async fn stats(shared: &Shared, now: SystemTime) -> Result<Stats> {
    let s = &shared.ident;
    let err = |e: tokio_postgres::Error| shared.error(&e);
    // One statement, so one snapshot: the counts add up while receivers commit. The oldest
    // pending is the first stored, found on the status index (the least `received_at` of all
    // pending read every one: 56 ms with 40,000 pending), then its event by its key. A join
    // ordered by `event_id` let the planner pick a merge join that read the events' primary key
    // from the first event to the first pending one: 127 ms with 360,000 events before a
    // backlog of 40,000, against 0.2 ms.
    let sql = format!(
        "WITH per_status AS (SELECT status, count(*) AS n FROM {s}.deliveries GROUP BY status)
         SELECT (SELECT count(*) FROM {s}.events),
                (SELECT coalesce(sum(duplicates), 0)::int8 FROM {s}.events
                  WHERE duplicates > 0 OR conflicts > 0),
                (SELECT coalesce(sum(conflicts), 0)::int8 FROM {s}.events
                  WHERE duplicates > 0 OR conflicts > 0),
                (SELECT e.received_at FROM {s}.events e
                  WHERE e.id = (SELECT d.event_id FROM {s}.deliveries d
                                 WHERE d.status = 'pending' ORDER BY d.event_id LIMIT 1)),
                (SELECT array_agg(status) FROM per_status),
                (SELECT array_agg(n) FROM per_status)"
    );
    let totals = shared
        .read(Read::Unfiltered, async |client, read| {
            let totals = client.query_one(sql.as_str(), &[]).await;
            totals.map_err(|e| read.error(&e))
        })
        .await?;
    let mut deliveries: BTreeMap<&'static str, u64> = DeliveryStatus::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    let statuses: Option<Vec<String>> = totals.try_get(4).map_err(err)?;
    let counts: Option<Vec<i64>> = totals.try_get(5).map_err(err)?;
    for (status, count) in statuses
        .unwrap_or_default()
        .into_iter()
        .zip(counts.unwrap_or_default())
    {
        if let Ok(status) = status.parse::<DeliveryStatus>() {
            deliveries.insert(status.as_str(), u64::try_from(count).unwrap_or(0));
        }
    }
    let events: i64 = totals.try_get(0).map_err(err)?;
    let duplicates: i64 = totals.try_get(1).map_err(err)?;
    let conflicts: i64 = totals.try_get(2).map_err(err)?;
    let oldest: Option<i64> = totals.try_get(3).map_err(err)?;
    Ok(Stats {
        events: u64::try_from(events).unwrap_or(0),
        deliveries,
        duplicates: u64::try_from(duplicates).unwrap_or(0),
        conflicts: u64::try_from(conflicts).unwrap_or(0),
        oldest_pending_age: oldest.map(|ms| {
            Duration::from_millis(u64::try_from(to_ms(now).saturating_sub(ms)).unwrap_or(0))
        }),
    })
}
