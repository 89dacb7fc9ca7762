//! The dispatcher's writes (claim with `FOR UPDATE SKIP LOCKED`, finish, extend, release) and
//! the admin writes (replay, requeue, purge).

use std::future::Future;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio_postgres::types::ToSql;

use super::filter::{refs, Condition, Param};
use super::{schema, Shared};
use crate::inbox::claim::{LAPSED_OWNER_CHARS, LAPSED_PREFIX, LAPSED_SUFFIX, LAPSED_UNKNOWN_OWNER};
use crate::inbox::sqlite::convert::{from_ms, new_token, to_ms};
use crate::inbox::{
    ClaimedDelivery, Lease, LeaseRequest, ListFilter, PurgeReport, ReplayReport, ReplayTarget,
    Retention, StoreError,
};

type Result<T> = std::result::Result<T, StoreError>;

/// Claims up to `$3` due deliveries of destination `$1` at `$2`, in one statement (sent with its
/// `BEGIN`: one round trip; committed once its rows arrived, see [`claim`]): locks them (pending and due, or in progress with a lapsed lease; rows another
/// transaction holds are skipped), counts the attempt of each lapsed lease (so that a delivery
/// that kills its worker every time still reaches the dead letter), and leases them to
/// `$4` until `$5` under the tokens `$6`, returning what to hand on, oldest due first. Due times
/// and leases are on the database's clock (`clock.rs`); the lapsed attempts start at `$11`.
/// A lapsed lease's message is `$7 || owner (at most $9 characters, or $8) || $10`, the text of
/// `lapsed_lease_message`. Nothing once a newer ccai migrated the schema (the version, read under
/// the migration lock taken with the `BEGIN`: see [`in_write_transaction`]).
const CLAIM: &str = "WITH p AS (
    SELECT id, status, lease_owner, next_attempt_at AS due_at FROM {s}.deliveries
     WHERE destination = $1 AND status = 'pending' AND next_attempt_at <= $2
       AND (SELECT max(version) FROM {s}.inbox_schema) = {v}
     ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
), l AS (
    SELECT id, status, lease_owner, lease_until AS due_at FROM {s}.deliveries
     WHERE destination = $1 AND status = 'in_progress' AND lease_until <= $2
       AND (SELECT max(version) FROM {s}.inbox_schema) = {v}
     ORDER BY lease_until, id LIMIT $3 FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id, status = 'in_progress' AS lapsed,
           $7 || left(coalesce(lease_owner, $8), $9) || $10 AS message,
           row_number() OVER (ORDER BY due_at, id) AS n
      FROM (SELECT * FROM p UNION ALL SELECT * FROM l) u
     ORDER BY due_at, id LIMIT $3
), a AS (
    INSERT INTO {s}.attempts (delivery_id, started_at, duration_ms, outcome, error)
    SELECT id, $11, 0, 'lease_expired', message FROM due WHERE lapsed
), t AS (
    UPDATE {s}.deliveries d SET status = 'in_progress', lease_owner = $4,
           lease_token = ($6::text[])[due.n], lease_until = $5,
           attempts = d.attempts + CASE WHEN due.lapsed THEN 1 ELSE 0 END,
           last_error = CASE WHEN due.lapsed THEN due.message ELSE d.last_error END
      FROM due WHERE d.id = due.id
    RETURNING d.id, d.destination, d.attempts, d.event_id, d.lease_token, due.n
)
SELECT t.id, t.destination, t.attempts, e.client_id, e.event_hash, e.event_type, e.body,
       e.signature, e.content_type, e.received_at, t.lease_token, e.method
  FROM t JOIN {s}.events e ON e.id = t.event_id
 ORDER BY t.n";

const EXTEND: &str = "UPDATE {s}.deliveries SET lease_until = $3
  WHERE id = $1 AND lease_token = $2 AND status = 'in_progress'
    AND (SELECT max(version) FROM {s}.inbox_schema) = {v}";

const RELEASE: &str = "UPDATE {s}.deliveries SET status = 'pending', next_attempt_at = $3,
       lease_owner = NULL, lease_token = NULL, lease_until = NULL
 WHERE id = $1 AND lease_token = $2 AND status = 'in_progress'
   AND (SELECT max(version) FROM {s}.inbox_schema) = {v}";

/// Runs `write` in a transaction that takes the migration lock shared first
/// ([`schema::write_lock`]). The statement changes nothing unless `(SELECT max(version) FROM
/// {s}.inbox_schema) = {v}`, as each write of the dispatcher: a newer ccai may have given the
/// tables another meaning, and under the lock no migration commits before the write does.
/// BEGIN, the statement and COMMIT go out together (tokio-postgres sends requests in the order
/// they are first polled): one round trip, as the statement alone. After a failed statement the
/// COMMIT rolls back.
pub(super) async fn in_write_transaction<T>(
    client: &tokio_postgres::Client,
    shared: &Shared,
    write: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> std::result::Result<T, tokio_postgres::Error> {
    let begin = format!("BEGIN; {}", shared.write_lock);
    let (begun, written, committed) = tokio::join!(
        client.batch_execute(&begin),
        write,
        client.batch_execute("COMMIT")
    );
    begun?;
    let written = written?;
    committed?;
    Ok(written)
}

/// Runs one write statement on a pooled connection, refused once a newer ccai migrated the
/// schema; returns the rows it changed.
async fn execute(shared: &Shared, template: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    shared
        .within(async |client| {
            let statement = client
                .prepare_cached(&shared.sql(template))
                .await
                .map_err(|e| shared.error(&e))?;
            let changed = in_write_transaction(client, shared, client.execute(&statement, params))
                .await
                .map_err(|e| shared.error(&e))?;
            if changed == 0 {
                // Nothing changed: the lease was lost, or the schema is no longer this build's.
                schema::check_current(client, &shared.shown, &shared.ident).await?;
            }
            Ok(changed)
        })
        .await
}

/// The most deliveries one claim takes: each gets a token made beforehand. As many as a
/// dispatcher asks for at most, since it reads a claim that comes back short as "nothing more is
/// due" and waits for the poll interval.
const MAX_CLAIM: i64 = crate::inbox::MAX_CONCURRENCY as i64;

pub(crate) async fn claim(
    shared: &Shared,
    destination: &str,
    lease: &LeaseRequest,
    limit: usize,
    now: SystemTime,
) -> Result<Vec<ClaimedDelivery>> {
    // No destination holds a NUL (refused at open), and PostgreSQL refuses one as a parameter.
    if limit == 0 || destination.contains('\0') {
        return Ok(Vec::new());
    }
    let err = |e: tokio_postgres::Error| shared.error(&e);
    let now_ms = to_ms(now);
    let until = from_ms(to_ms(crate::inbox::time::after(now, lease.duration)));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX).min(MAX_CLAIM);
    // One token for each delivery the claim may take; those it does not take are never used.
    let tokens: Vec<String> = (0..limit).map(|_| new_token()).collect();
    let owner_chars = i32::try_from(LAPSED_OWNER_CHARS).unwrap_or(i32::MAX);
    let rows = shared
        .within(async |client| {
            if shared.clock.stale() {
                shared.clock.refresh(client).await.map_err(err)?;
            }
            let statement = client
                .prepare_cached(&shared.sql(CLAIM))
                .await
                .map_err(err)?;
            let (now_db, until_db) = (shared.clock.to_db(now), shared.clock.to_db(until));
            let params: [&(dyn ToSql + Sync); 11] = [
                &destination,
                &now_db,
                &limit,
                &lease.owner,
                &until_db,
                &tokens,
                &LAPSED_PREFIX,
                &LAPSED_UNKNOWN_OWNER,
                &owner_chars,
                &LAPSED_SUFFIX,
                &now_ms,
            ];
            // BEGIN and the claim go out together (one round trip, as the claim alone); COMMIT
            // only once the rows arrived. A claim whose answer comes too late is then rolled
            // back when `within` closes the connection, where on its own (an implicit
            // transaction) it committed before answering: its leases held, unused, until they
            // lapsed, and each delivery counted a spurious `lease_expired` attempt.
            // The migration lock, shared, with the BEGIN: see `in_write_transaction`.
            let begin = format!("BEGIN; {}", shared.write_lock);
            let (begun, rows) = tokio::join!(
                client.batch_execute(&begin),
                client.query(&statement, &params)
            );
            let committed = match (begun, rows) {
                (Ok(()), Ok(rows)) => client.batch_execute("COMMIT").await.map(|()| rows),
                (Err(error), _) | (_, Err(error)) => {
                    // The connection goes back to the pool: out of the failed transaction.
                    let _ = client.batch_execute("ROLLBACK").await;
                    Err(error)
                }
            };
            let rows = committed.map_err(err)?;
            if rows.is_empty() {
                // Nothing was due, or the schema is no longer this build's.
                schema::check_current(client, &shared.shown, &shared.ident).await?;
            }
            Ok(rows)
        })
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let attempts: i32 = row.try_get(2).map_err(err)?;
        let body: Option<Vec<u8>> = row.try_get(6).map_err(err)?;
        claimed.push(ClaimedDelivery {
            lease: Lease {
                delivery_id: row.try_get(0).map_err(err)?,
                owner: lease.owner.clone(),
                token: row.try_get(10).map_err(err)?,
                until,
            },
            destination: row.try_get(1).map_err(err)?,
            attempt: u32::try_from(attempts.saturating_add(1)).unwrap_or(u32::MAX),
            client_id: row.try_get(3).map_err(err)?,
            event_hash: row.try_get(4).map_err(err)?,
            event_type: row.try_get(5).map_err(err)?,
            body: body.map(Bytes::from).unwrap_or_default(),
            signature: row.try_get(7).map_err(err)?,
            content_type: row.try_get(8).map_err(err)?,
            method: crate::inbox::delivery::method_from(
                row.try_get::<_, Option<&str>>(11).map_err(err)?,
            ),
            received_at: from_ms(row.try_get(9).map_err(err)?),
        });
    }
    Ok(claimed)
}

pub(crate) async fn extend_lease(
    shared: &Shared,
    lease: &Lease,
    until: SystemTime,
) -> Result<bool> {
    // No lease holds a token with a NUL, and PostgreSQL refuses one as a parameter.
    if lease.token.contains('\0') {
        return Ok(false);
    }
    let changed = execute(
        shared,
        EXTEND,
        &[&lease.delivery_id, &lease.token, &shared.clock.to_db(until)],
    )
    .await?;
    Ok(changed == 1)
}

pub(crate) async fn release(shared: &Shared, lease: &Lease, now: SystemTime) -> Result<bool> {
    if lease.token.contains('\0') {
        return Ok(false);
    }
    let changed = execute(
        shared,
        RELEASE,
        &[&lease.delivery_id, &lease.token, &shared.clock.to_db(now)],
    )
    .await?;
    if changed == 1 {
        shared.announce().await;
    }
    Ok(changed == 1)
}

/// The first key of the advisory lock that keeps purges apart from replays and requeues (the
/// second is the schema's hash): "ccai" in ASCII.
const PURGE_LOCK: i32 = 0x6363_6169;

/// Takes the schema's migration lock shared for the rest of `tx` ([`schema::write_lock`]) and
/// fails unless the schema is still this build's: a newer ccai may have given its tables another
/// meaning. For the admin writes, whose statements are built at run time.
async fn hold_current_schema(
    tx: &deadpool_postgres::Transaction<'_>,
    shared: &Shared,
) -> Result<()> {
    tx.batch_execute(&shared.write_lock)
        .await
        .map_err(|e| shared.error(&e))?;
    schema::check_current(tx, &shared.shown, &shared.ident).await
}

/// Takes the schema's purge lock for the rest of `tx`: alone for a purge, shared for a write
/// that makes deliveries due again. At READ COMMITTED each statement reads its own snapshot, and
/// neither side locks the rows the other checks: without this, a replay that read a body before
/// a purge removed it made the delivery pending with no body, and a purge that read a delivery
/// as finished deleted it after a requeue made it pending again.
async fn lock_against_purge(
    tx: &deadpool_postgres::Transaction<'_>,
    shared: &Shared,
    purge: bool,
) -> Result<()> {
    let function = if purge {
        "pg_advisory_xact_lock"
    } else {
        "pg_advisory_xact_lock_shared"
    };
    tx.execute(
        &format!("SELECT {function}($1, hashtext($2))"),
        &[&PURGE_LOCK, &shared.ident],
    )
    .await
    .map_err(|e| shared.error(&e))?;
    Ok(())
}

/// Runs a statement (built at run time) that makes deliveries due, and announces them, and in the
/// same transaction one counting the events it leaves for their purged body (`purged`, with
/// `purged_params`); returns both counts.
async fn make_due(
    shared: &Shared,
    sql: &str,
    params: &[Param],
    purged: &str,
    purged_params: &[Param],
) -> Result<ReplayReport> {
    let err = |e: tokio_postgres::Error| shared.error(&e);
    let report = shared
        .within(async |client| {
            let tx = client.transaction().await.map_err(err)?;
            hold_current_schema(&tx, shared).await?;
            lock_against_purge(&tx, shared, false).await?;
            let skipped: i64 = tx
                .query_one(purged, &refs(purged_params))
                .await
                .and_then(|row| row.try_get(0))
                .map_err(err)?;
            let changed = tx.execute(sql, &refs(params)).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(ReplayReport {
                due: changed,
                purged: u64::try_from(skipped).unwrap_or(0),
            })
        })
        .await?;
    if report.due > 0 {
        shared.announce().await;
    }
    Ok(report)
}

/// Counts the events matching `condition` (on `{s}.events e`) with no body left and a delivery
/// matching `deliveries` (on `{s}.deliveries`): those a replay or requeue leaves as they were.
fn purged_matches(s: &str, condition: &str, deliveries: &str) -> String {
    format!(
        "SELECT count(*) FROM {s}.events e WHERE ({condition}) AND e.body IS NULL
            AND EXISTS (SELECT 1 FROM {s}.deliveries WHERE event_id = e.id AND {deliveries})"
    )
}

pub(crate) async fn replay(
    shared: &Shared,
    target: &ReplayTarget,
    now: SystemTime,
) -> Result<ReplayReport> {
    let s = &shared.ident;
    let mut params: Vec<Param> = vec![Box::new(shared.clock.to_db(now))];
    // The count's parameters are numbered from $1: without the time.
    let mut counted: Vec<Param> = Vec::new();
    let (condition, counted_condition, status) = match target {
        // Never stored (text cannot hold a NUL), and refused as a parameter.
        ReplayTarget::Hash(hash) if hash.contains('\0') => return Ok(ReplayReport::default()),
        ReplayTarget::Hash(hash) => {
            params.push(Box::new(hash.clone()));
            counted.push(Box::new(hash.clone()));
            (
                "e.event_hash = $2".to_owned(),
                "e.event_hash = $1".to_owned(),
                None,
            )
        }
        ReplayTarget::Filter(filter) if filter.is_empty() => {
            return Err(StoreError::InvalidRequest(
                "a bulk replay needs a non-empty filter (status, type, time range or text)".into(),
            ))
        }
        ReplayTarget::Filter(filter) => {
            let condition = Condition::events(filter, s, params.len());
            params.extend(condition.params);
            let counted_condition = Condition::events(filter, s, 0);
            counted.extend(counted_condition.params);
            (condition.sql, counted_condition.sql, filter.status)
        }
    };
    let (status_sql, counted_status_sql) = match status {
        Some(status) => {
            params.push(Box::new(status.as_str().to_owned()));
            counted.push(Box::new(status.as_str().to_owned()));
            (
                format!(" AND status = ${}", params.len()),
                format!(" AND status = ${}", counted.len()),
            )
        }
        None => (String::new(), String::new()),
    };
    let purged = purged_matches(
        s,
        &counted_condition,
        &format!("status <> 'in_progress'{counted_status_sql}"),
    );
    let sql = format!(
        // As in the SQLite store: a finished delivery starts its schedule over, a pending one
        // keeps its count, an event whose body was purged is not replayed.
        "UPDATE {s}.deliveries SET status = 'pending', next_attempt_at = $1,
                attempts = CASE WHEN status = 'pending' THEN attempts ELSE 0 END,
                lease_owner = NULL, lease_token = NULL, lease_until = NULL
          WHERE status <> 'in_progress'
            AND event_id IN (SELECT e.id FROM {s}.events e
                              WHERE ({condition}) AND e.body IS NOT NULL){status_sql}"
    );
    make_due(shared, &sql, &params, &purged, &counted).await
}

pub(crate) async fn requeue_dead(
    shared: &Shared,
    filter: &ListFilter,
    now: SystemTime,
) -> Result<ReplayReport> {
    let s = &shared.ident;
    let mut params: Vec<Param> = vec![Box::new(shared.clock.to_db(now))];
    let condition = Condition::events(filter, s, params.len());
    params.extend(condition.params);
    let counted = Condition::events(filter, s, 0);
    let purged = purged_matches(s, &counted.sql, "status = 'dead'");
    // The token of the lease that made it dead goes too: kept, that lease's finish to pending
    // read as one already recorded (`finish::FINISHED_BY`).
    let sql = format!(
        "UPDATE {s}.deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1,
                lease_owner = NULL, lease_token = NULL, lease_until = NULL
          WHERE status = 'dead' AND event_id IN (SELECT e.id FROM {s}.events e
                                                  WHERE ({}) AND e.body IS NOT NULL)",
        condition.sql
    );
    make_due(shared, &sql, &params, &purged, &counted.params).await
}

pub(crate) async fn purge(
    shared: &Shared,
    retention: Retention,
    now: SystemTime,
) -> Result<PurgeReport> {
    let s = &shared.ident;
    let err = |e: tokio_postgres::Error| shared.error(&e);
    let cut = |keep: Duration| to_ms(now.checked_sub(keep).unwrap_or(std::time::UNIX_EPOCH));
    let unfinished = format!(
        "EXISTS (SELECT 1 FROM {s}.deliveries d WHERE d.event_id = events.id
                   AND d.status IN ('pending', 'in_progress'))"
    );
    let (bodies, rows) = shared
        .within(async |client| {
            let tx = client.transaction().await.map_err(err)?;
            hold_current_schema(&tx, shared).await?;
            lock_against_purge(&tx, shared, true).await?;
            let bodies = tx
                .execute(
                    &format!(
                        "UPDATE {s}.events SET body = NULL
                          WHERE body IS NOT NULL AND received_at < $1 AND NOT {unfinished}"
                    ),
                    &[&cut(retention.bodies)],
                )
                .await
                .map_err(err)?;
            let rows = tx
                .execute(
                    &format!("DELETE FROM {s}.events WHERE received_at < $1 AND NOT {unfinished}"),
                    &[&cut(retention.rows)],
                )
                .await
                .map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok((bodies, rows))
        })
        .await?;
    Ok(PurgeReport {
        bodies_purged: bodies,
        events_deleted: rows,
    })
}
