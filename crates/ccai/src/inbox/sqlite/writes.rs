//! The writes, each run by the writer thread inside a batch's transaction.

use std::time::SystemTime;

use bytes::Bytes;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::convert::{duration_ms, from_ms, new_token, store_error, to_ms};
use super::filter::Condition;
use super::keys::{self, RecentKeys};
use crate::inbox::claim::lapsed_lease_message;
use crate::inbox::delivery::{method_from, stored_method};
use crate::inbox::{
    error_excerpt, AttemptOutcome, AttemptRecord, ClaimedDelivery, DeliveryStatus, Finish,
    Inserted, Lease, LeaseRequest, ListFilter, NewDelivery, PurgeReport, ReplayReport,
    ReplayTarget, Retention, StoreError,
};

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn insert(
    conn: &Connection,
    keys: &mut RecentKeys,
    path: &str,
    destinations: &[String],
    delivery: &NewDelivery,
    digest: &str,
    key: i64,
) -> Result<Inserted> {
    let err = |e| store_error(path, e);
    keys.sync(conn).map_err(err)?;
    let stored = keys
        .find(conn, key, &delivery.client_id, &delivery.event_hash)
        .map_err(err)?;
    let Some(event_id) = stored else {
        let received_at = to_ms(delivery.received_at);
        conn.prepare_cached(
            "INSERT INTO events (client_id, event_hash, event_type, body, body_len, body_sha256,
                                 signature, content_type, received_at, method)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                delivery.client_id,
                delivery.event_hash,
                delivery.event_type,
                &delivery.body[..],
                delivery.body.len() as i64,
                digest,
                delivery.signature,
                delivery.content_type,
                received_at,
                stored_method(delivery.method),
            ])
        })
        .map_err(err)?;
        let event_id = conn.last_insert_rowid();
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO deliveries (event_id, destination, status, attempts, next_attempt_at)
                 VALUES (?1, ?2, 'pending', 0, ?3)",
            )
            .map_err(err)?;
        for destination in destinations {
            stmt.execute(params![event_id, destination, received_at])
                .map_err(err)?;
        }
        keys.added(key, event_id);
        return Ok(Inserted::New);
    };
    let stored_digest: String = conn
        .prepare_cached("SELECT body_sha256 FROM events WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([event_id], |row| row.get(0)))
        .map_err(err)?;
    if stored_digest == digest {
        conn.prepare_cached("UPDATE events SET duplicates = duplicates + 1 WHERE id = ?1")
            .and_then(|mut stmt| stmt.execute([event_id]))
            .map_err(err)?;
        Ok(Inserted::Duplicate)
    } else {
        conn.prepare_cached(
            "UPDATE events SET conflicts = conflicts + 1, last_conflict_sha256 = ?2 WHERE id = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![event_id, digest]))
        .map_err(err)?;
        tracing::warn!(
            target: "ccai::inbox",
            event_hash = %crate::event::Escaped(&delivery.event_hash),
            stored_sha256 = %stored_digest,
            received_sha256 = %digest,
            "a delivery repeats a stored eventHash with a different body: the first body is kept"
        );
        Ok(Inserted::Conflict)
    }
}

pub(crate) fn claim(
    conn: &Connection,
    path: &str,
    destination: &str,
    lease: &LeaseRequest,
    limit: usize,
    now: SystemTime,
) -> Result<Vec<ClaimedDelivery>> {
    let err = |e| store_error(path, e);
    let now_ms = to_ms(now);
    let until = crate::inbox::time::after(now, lease.duration);
    let due: Vec<(i64, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT id, status, lease_owner FROM (
                 SELECT id, status, lease_owner, next_attempt_at AS due FROM deliveries
                  WHERE destination = ?1 AND status = 'pending' AND next_attempt_at <= ?2
                 UNION ALL
                 SELECT id, status, lease_owner, lease_until AS due FROM deliveries
                  WHERE destination = ?1 AND status = 'in_progress' AND lease_until <= ?2
             ) ORDER BY due, id LIMIT ?3",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![destination, now_ms, limit as i64], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect()
        })
        .map_err(err)?;
    let mut claimed = Vec::with_capacity(due.len());
    for (id, status, previous_owner) in due {
        if status == DeliveryStatus::InProgress.as_str() {
            // The previous holder died or hung: count its attempt so a delivery that kills its
            // worker every time still reaches the dead letter.
            let message = lapsed_lease_message(previous_owner.as_deref());
            record_attempt(
                conn,
                path,
                id,
                &AttemptRecord::new(now, std::time::Duration::ZERO, AttemptOutcome::LeaseExpired)
                    .error(message.clone()),
            )?;
            conn.prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![id, message]))
            .map_err(err)?;
        }
        let token = new_token();
        conn.prepare_cached(
            "UPDATE deliveries SET status = 'in_progress', lease_owner = ?2, lease_token = ?3,
                    lease_until = ?4
              WHERE id = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![id, lease.owner, token, to_ms(until)]))
        .map_err(err)?;
        let delivery = conn
            .prepare_cached(
                "SELECT d.destination, d.attempts, e.client_id, e.event_hash, e.event_type, e.body,
                        e.signature, e.content_type, e.received_at, e.method
                   FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([id], |row| {
                    let attempts: i64 = row.get(1)?;
                    let body: Option<Vec<u8>> = row.get(5)?;
                    Ok(ClaimedDelivery {
                        lease: Lease {
                            delivery_id: id,
                            owner: lease.owner.clone(),
                            token: token.clone(),
                            until: from_ms(to_ms(until)),
                        },
                        destination: row.get(0)?,
                        attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                        client_id: row.get(2)?,
                        event_hash: row.get(3)?,
                        event_type: row.get(4)?,
                        body: body.map(Bytes::from).unwrap_or_default(),
                        signature: row.get(6)?,
                        content_type: row.get(7)?,
                        method: method_from(row.get::<_, Option<String>>(9)?.as_deref()),
                        received_at: from_ms(row.get(8)?),
                    })
                })
            })
            .map_err(err)?;
        claimed.push(delivery);
    }
    Ok(claimed)
}

fn record_attempt(
    conn: &Connection,
    path: &str,
    delivery_id: i64,
    attempt: &AttemptRecord,
) -> Result<()> {
    // Bounded here too: the record's fields are public and may not have gone through `error()`.
    let error = attempt.error.clone().map(error_excerpt);
    conn.prepare_cached(
        "INSERT INTO attempts (delivery_id, started_at, duration_ms, outcome, http_status, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            delivery_id,
            to_ms(attempt.started_at),
            duration_ms(attempt.duration),
            attempt.outcome.as_str(),
            attempt.http_status,
            error,
        ])
    })
    .map_err(|e| store_error(path, e))?;
    Ok(())
}

pub(crate) fn finish(
    conn: &Connection,
    path: &str,
    lease: &Lease,
    finish: Finish,
    attempt: &AttemptRecord,
) -> Result<bool> {
    let ended = to_ms(crate::inbox::time::after(
        attempt.started_at,
        attempt.duration,
    ));
    let (status, next, delivered_at) = match finish {
        Finish::Delivered => (DeliveryStatus::Delivered, None, Some(ended)),
        Finish::RetryAt(at) => (DeliveryStatus::Pending, Some(to_ms(at)), None),
        Finish::Dead | Finish::DeadUnsent => (DeliveryStatus::Dead, None, None),
    };
    let counted = finish.counts_an_attempt();
    // The token stays on the finished row: a retry of this finish, after an error whose write
    // went through all the same, is told that it was recorded (see `Store::finish`).
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET status = ?3, attempts = attempts + ?7, next_attempt_at = ?4,
                    lease_owner = NULL, lease_until = NULL,
                    last_error = ?5, delivered_at = ?6
              WHERE id = ?1 AND lease_token = ?2 AND status = 'in_progress'",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                lease.delivery_id,
                lease.token,
                status.as_str(),
                next,
                attempt.error.clone().map(error_excerpt),
                delivered_at,
                i64::from(counted),
            ])
        })
        .map_err(|e| store_error(path, e))?;
    if changed == 0 {
        return finished_by(conn, path, lease, status);
    }
    if counted {
        record_attempt(conn, path, lease.delivery_id, attempt)?;
    }
    Ok(true)
}

/// Whether `lease` already finished its delivery to `status` (never in progress): the row keeps
/// the token of the lease that finished it until it is claimed, replayed or requeued.
fn finished_by(
    conn: &Connection,
    path: &str,
    lease: &Lease,
    status: DeliveryStatus,
) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM deliveries
                         WHERE id = ?1 AND lease_token = ?2 AND status = ?3)",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![lease.delivery_id, lease.token, status.as_str()],
            |row| row.get(0),
        )
    })
    .map_err(|e| store_error(path, e))
}

pub(crate) fn extend_lease(
    conn: &Connection,
    path: &str,
    lease: &Lease,
    until: SystemTime,
) -> Result<bool> {
    conn.prepare_cached(
        "UPDATE deliveries SET lease_until = ?3
          WHERE id = ?1 AND lease_token = ?2 AND status = 'in_progress'",
    )
    .and_then(|mut stmt| stmt.execute(params![lease.delivery_id, lease.token, to_ms(until)]))
    .map(|changed| changed == 1)
    .map_err(|e| store_error(path, e))
}

pub(crate) fn release(
    conn: &Connection,
    path: &str,
    lease: &Lease,
    now: SystemTime,
) -> Result<bool> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?3,
                lease_owner = NULL, lease_token = NULL, lease_until = NULL
          WHERE id = ?1 AND lease_token = ?2 AND status = 'in_progress'",
    )
    .and_then(|mut stmt| stmt.execute(params![lease.delivery_id, lease.token, to_ms(now)]))
    .map(|changed| changed == 1)
    .map_err(|e| store_error(path, e))
}

pub(crate) fn replay(
    conn: &Connection,
    path: &str,
    target: &ReplayTarget,
    now: SystemTime,
) -> Result<ReplayReport> {
    let (condition, status) = match target {
        ReplayTarget::Hash(hash) => (
            Condition {
                sql: keys::BY_HASH_SQL.into(),
                params: keys::by_hash_params(hash).into(),
            },
            None,
        ),
        ReplayTarget::Filter(filter) if filter.is_empty() => {
            return Err(StoreError::InvalidRequest(
                "a bulk replay needs a non-empty filter (status, type, time range or text)".into(),
            ))
        }
        ReplayTarget::Filter(filter) => (Condition::events(filter), filter.status),
    };
    replay_where(conn, path, condition, status, now)
}

/// The SQL, on `deliveries`, of the deliveries a replay makes due: not in progress, and in
/// `status` if the filter names one. Its parameter, if any, is pushed onto `params`.
pub(crate) fn replayed_deliveries(
    status: Option<DeliveryStatus>,
    params: &mut Vec<rusqlite::types::Value>,
) -> String {
    match status {
        Some(status) => {
            params.push(status.as_str().to_owned().into());
            "status != 'in_progress' AND status = ?".into()
        }
        None => "status != 'in_progress'".into(),
    }
}

/// The deliveries a requeue of the dead makes due, on `deliveries`.
pub(crate) const REQUEUED_DELIVERIES: &str = "status = 'dead'";

/// [`replay`] of the events `condition` selects (on `events e`), of their deliveries in `status`
/// if given.
pub(crate) fn replay_where(
    conn: &Connection,
    path: &str,
    condition: Condition,
    status: Option<DeliveryStatus>,
    now: SystemTime,
) -> Result<ReplayReport> {
    let mut params = vec![to_ms(now).into()];
    params.extend(condition.params);
    let deliveries = replayed_deliveries(status, &mut params);
    let purged = purged_matches(conn, path, &condition.sql, &params[1..], &deliveries)?;
    let sql = format!(
        // A finished delivery (delivered or dead) starts its schedule over, as `requeue_dead`
        // does: kept, its count would leave the replay fewer attempts, or none (the dispatcher
        // then makes it dead unsent). A pending one keeps its count. An event whose body was
        // purged has nothing left to send and is not replayed.
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?,
                attempts = CASE WHEN status = 'pending' THEN attempts ELSE 0 END,
                lease_owner = NULL, lease_token = NULL, lease_until = NULL
          WHERE event_id IN (SELECT e.id FROM events e WHERE ({}) AND e.body IS NOT NULL)
            AND {deliveries}",
        condition.sql
    );
    let due = conn
        .execute(&sql, params_from_iter(params))
        .map_err(|e| store_error(path, e))?;
    Ok(ReplayReport {
        due: due as u64,
        purged,
    })
}

/// How many events matching `condition` (on `events e`, with `params`) have no body left and a
/// delivery matching `deliveries` (on `deliveries`, its last parameters included in `params`):
/// those a replay or requeue leaves as they were.
fn purged_matches(
    conn: &Connection,
    path: &str,
    condition: &str,
    params: &[rusqlite::types::Value],
    deliveries: &str,
) -> Result<u64> {
    let sql = format!(
        "SELECT count(*) FROM events e WHERE ({condition}) AND e.body IS NULL
            AND EXISTS (SELECT 1 FROM deliveries WHERE event_id = e.id AND {deliveries})"
    );
    conn.query_row(&sql, params_from_iter(params.iter()), |row| {
        row.get::<_, i64>(0)
    })
    .map(|n| u64::try_from(n).unwrap_or(0))
    .map_err(|e| store_error(path, e))
}

pub(crate) fn requeue_dead(
    conn: &Connection,
    path: &str,
    filter: &ListFilter,
    now: SystemTime,
) -> Result<ReplayReport> {
    requeue_dead_where(conn, path, Condition::events(filter), now)
}

/// [`requeue_dead`] of the events `condition` selects (on `events e`).
pub(crate) fn requeue_dead_where(
    conn: &Connection,
    path: &str,
    condition: Condition,
    now: SystemTime,
) -> Result<ReplayReport> {
    let mut params = vec![to_ms(now).into()];
    params.extend(condition.params);
    let purged = purged_matches(
        conn,
        path,
        &condition.sql,
        &params[1..],
        REQUEUED_DELIVERIES,
    )?;
    // The token of the lease that made it dead goes too: kept, that lease's finish to pending
    // read as one already recorded (`finished_by`).
    let sql = format!(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?,
                lease_owner = NULL, lease_token = NULL, lease_until = NULL
          WHERE event_id IN (SELECT e.id FROM events e WHERE ({}) AND e.body IS NOT NULL)
            AND {REQUEUED_DELIVERIES}",
        condition.sql
    );
    let due = conn
        .execute(&sql, params_from_iter(params))
        .map_err(|e| store_error(path, e))?;
    Ok(ReplayReport {
        due: due as u64,
        purged,
    })
}

const UNFINISHED: &str = "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id
                                   AND d.status IN ('pending', 'in_progress'))";

pub(crate) fn purge(
    conn: &Connection,
    path: &str,
    retention: Retention,
    now: SystemTime,
) -> Result<PurgeReport> {
    let err = |e| store_error(path, e);
    let body_cut = to_ms(
        now.checked_sub(retention.bodies)
            .unwrap_or(std::time::UNIX_EPOCH),
    );
    let row_cut = to_ms(
        now.checked_sub(retention.rows)
            .unwrap_or(std::time::UNIX_EPOCH),
    );
    let bodies = conn
        .execute(
            &format!(
                "UPDATE events SET body = NULL
                  WHERE body IS NOT NULL AND received_at < ?1 AND NOT {UNFINISHED}"
            ),
            [body_cut],
        )
        .map_err(err)?;
    let deleted = format!("received_at < ?1 AND NOT {UNFINISHED}");
    keys::forget(conn, &deleted, [row_cut]).map_err(err)?;
    let rows = conn
        .execute(&format!("DELETE FROM events WHERE {deleted}"), [row_cut])
        .map_err(err)?;
    // Claims never completed nor released (their process died) once their lease lapsed as long
    // ago: nothing will come back for them.
    conn.execute(
        "DELETE FROM dedup WHERE (state = 'completed' AND updated_at < ?1)
                              OR (state = 'in_flight' AND lease_until < ?1)",
        [row_cut],
    )
    .map_err(err)?;
    Ok(PurgeReport {
        bodies_purged: bodies as u64,
        events_deleted: rows as u64,
    })
}

/// What a durable-deduper claim found.
pub(crate) enum DedupClaim {
    Acquired,
    Completed,
    /// Held by another caller whose lease lasts until then.
    Busy(SystemTime),
}

/// Claims `hash` for `owner` (a random token) until `until`.
pub(crate) fn dedup_claim(
    conn: &Connection,
    path: &str,
    hash: &str,
    now: SystemTime,
    until: SystemTime,
    owner: i64,
) -> Result<DedupClaim> {
    let err = |e| store_error(path, e);
    let now_ms = to_ms(now);
    let changed = conn
        .prepare_cached(
            "INSERT INTO dedup (event_hash, state, lease_until, updated_at, owner)
             VALUES (?1, 'in_flight', ?2, ?3, ?4)
             ON CONFLICT (event_hash) DO UPDATE
                SET state = 'in_flight', lease_until = excluded.lease_until,
                    updated_at = excluded.updated_at, owner = excluded.owner
              WHERE dedup.state = 'in_flight' AND dedup.lease_until <= ?3",
        )
        .and_then(|mut stmt| stmt.execute(params![hash, to_ms(until), now_ms, owner]))
        .map_err(err)?;
    if changed == 1 {
        return Ok(DedupClaim::Acquired);
    }
    let row: Option<(String, Option<i64>)> = conn
        .prepare_cached("SELECT state, lease_until FROM dedup WHERE event_hash = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([hash], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(err)?;
    match row {
        Some((state, _)) if state == "completed" => Ok(DedupClaim::Completed),
        Some((_, until)) => Ok(DedupClaim::Busy(from_ms(until.unwrap_or(now_ms)))),
        None => Err(StoreError::Unavailable(format!(
            "{path}: a deduplication record vanished while it was claimed"
        ))),
    }
}

pub(crate) fn dedup_complete(
    conn: &Connection,
    path: &str,
    hash: &str,
    now: SystemTime,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO dedup (event_hash, state, lease_until, updated_at) VALUES (?1, 'completed', NULL, ?2)
         ON CONFLICT (event_hash) DO UPDATE SET state = 'completed', lease_until = NULL,
                                                updated_at = excluded.updated_at, owner = NULL",
    )
    .and_then(|mut stmt| stmt.execute(params![hash, to_ms(now)]))
    .map(drop)
    .map_err(|e| store_error(path, e))
}

/// Frees the in-flight claim on `hash`: only `owner`'s, if given.
pub(crate) fn dedup_release(
    conn: &Connection,
    path: &str,
    hash: &str,
    owner: Option<i64>,
) -> Result<()> {
    let released = match owner {
        Some(owner) => conn
            .prepare_cached(
                "DELETE FROM dedup WHERE event_hash = ?1 AND state = 'in_flight' AND owner = ?2",
            )
            .and_then(|mut stmt| stmt.execute(params![hash, owner])),
        None => conn
            .prepare_cached("DELETE FROM dedup WHERE event_hash = ?1 AND state = 'in_flight'")
            .and_then(|mut stmt| stmt.execute([hash])),
    };
    released.map(drop).map_err(|e| store_error(path, e))
}
