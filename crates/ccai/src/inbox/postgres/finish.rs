//! Attempts finished in batches: the outcomes of concurrent attempts queue on a channel, and one
//! task records what has queued with one statement (the deliveries' updates and the attempts'
//! rows), then answers each. One statement per outcome cost PostgreSQL more CPU than the work
//! itself (`BENCHMARKS.md`): dispatch ran at about 3k events/s while ingest ran at 10k+.
//!
//! Each outcome still counts only if its lease token holds the delivery, row by row, so a stale
//! worker's outcome changes nothing, in a batch as alone. One whose lease already finished the
//! delivery the same way (a finish tried again after its answer was lost) is answered as
//! recorded, and changes nothing either.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_postgres::types::ToSql;

use super::connect::is_retryable;
use super::writes::in_write_transaction;
use super::{schema, Shared};
use crate::inbox::sqlite::convert::{duration_ms, to_ms};
use crate::inbox::{error_excerpt, AttemptRecord, DeliveryStatus, Finish, Lease, StoreError};

/// The most outcomes one statement records.
const MAX_BATCH: usize = 256;

/// How many batches may be recorded at once: one slow batch (a row lock, a connection being
/// replaced) does not hold up every outcome behind it.
const IN_FLIGHT: usize = 4;

/// How many outcomes may wait for the task; beyond that a worker waits for room.
const QUEUE: usize = 4096;

/// Records the outcomes in the arrays `$1`–`$11` (one element per outcome; `$11` says whether
/// an attempt was made, counted and added to the history) whose lease still holds the delivery;
/// returns the `(id, token, status)` of those recorded. A held lease has an end
/// (`lease_until`): every write that moves a delivery out of progress clears it, and a finish
/// keeps the token, so that its retry can tell that it was recorded ([`FINISHED_BY`]).
/// `status = 'in_progress'` in the condition would lead the planner to the partial index of
/// leases, read whole for the ids (4 ms a batch with 40,000 deliveries); `id = ANY($1)` takes the
/// primary key instead. Nothing once a newer ccai migrated the schema (see
/// `writes::in_write_transaction`).
const FINISH_MANY: &str = "WITH i AS (
    SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[],
                         $6::int8[], $7::int8[], $8::int8[], $9::text[], $10::int4[],
                         $11::bool[])
        AS i (id, token, status, next_at, error, delivered_at, started_at, duration_ms,
              outcome, http_status, counted)
), f AS (
    UPDATE {s}.deliveries d SET status = i.status,
           attempts = d.attempts + CASE WHEN i.counted THEN 1 ELSE 0 END,
           next_attempt_at = i.next_at, lease_owner = NULL,
           lease_until = NULL, last_error = i.error, delivered_at = i.delivered_at
      FROM i
     WHERE d.id = ANY($1) AND d.id = i.id AND d.lease_token = i.token
       AND d.lease_until IS NOT NULL
       AND (SELECT max(version) FROM {s}.inbox_schema) = {v}
    RETURNING d.id, i.token, i.status
), a AS (
    INSERT INTO {s}.attempts (delivery_id, started_at, duration_ms, outcome, http_status, error)
    SELECT i.id, i.started_at, i.duration_ms, i.outcome, i.http_status, i.error
      FROM i JOIN f ON f.id = i.id AND f.token = i.token
     WHERE i.counted
)
SELECT id, token, status FROM f";

/// Of the outcomes in the arrays `$1`–`$3` (id, token, status), those whose lease already
/// finished the delivery to that status: the row keeps the token of the lease that finished it
/// (until a claim, a replay or a requeue), without an end. A finish whose COMMIT went through
/// but whose answer was lost (the connection dropped, the operation timed out) is tried again by
/// the dispatcher: it finds the lease no longer held, and is answered that it was recorded.
/// Read after [`FINISH_MANY`]'s transaction: a first try committing meanwhile held the row's
/// lock, so its commit is seen here, where `FINISH_MANY`'s own snapshot predates it.
const FINISHED_BY: &str = "SELECT d.id, d.lease_token, d.status
  FROM unnest($1::int8[], $2::text[], $3::text[]) AS i (id, token, status)
  JOIN {s}.deliveries d ON d.id = i.id AND d.lease_token = i.token AND d.status = i.status
 WHERE d.id = ANY($1) AND d.lease_until IS NULL";

/// One outcome, as the statement takes it (times on the database's clock).
struct Outcome {
    id: i64,
    token: String,
    status: &'static str,
    next_at: Option<i64>,
    error: Option<String>,
    delivered_at: Option<i64>,
    started_at: i64,
    duration_ms: i64,
    outcome: &'static str,
    http_status: Option<i32>,
    /// Whether an attempt was made (see [`Finish::DeadUnsent`]).
    counted: bool,
}

struct Pending {
    outcome: Outcome,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// The handle to the task that records outcomes.
#[derive(Debug)]
pub(crate) struct Finisher {
    sender: mpsc::Sender<Pending>,
}

impl Finisher {
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(shared, receiver));
        Self { sender }
    }

    /// Records `attempt` and moves the delivery as `finish` says, if `lease` still holds it.
    pub(crate) async fn finish(
        &self,
        shared: &Shared,
        lease: &Lease,
        finish: Finish,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        // No lease holds a token with a NUL (none is issued), and PostgreSQL refuses one as a
        // parameter: in a batch, the error would fail every outcome recorded with it.
        if lease.token.contains('\0') {
            return Ok(false);
        }
        let ended = to_ms(crate::inbox::time::after(
            attempt.started_at,
            attempt.duration,
        ));
        let (status, next_at, delivered_at) = match finish {
            Finish::Delivered => (DeliveryStatus::Delivered, None, Some(ended)),
            Finish::RetryAt(at) => (DeliveryStatus::Pending, Some(shared.clock.to_db(at)), None),
            Finish::Dead | Finish::DeadUnsent => (DeliveryStatus::Dead, None, None),
        };
        let outcome = Outcome {
            id: lease.delivery_id,
            token: lease.token.clone(),
            status: status.as_str(),
            next_at,
            // Bounded here too: the record's fields are public and may not have gone through
            // `error()`.
            error: attempt.error.clone().map(error_excerpt),
            delivered_at,
            started_at: to_ms(attempt.started_at),
            duration_ms: duration_ms(attempt.duration),
            outcome: attempt.outcome.as_str(),
            http_status: attempt.http_status.map(i32::from),
            counted: finish.counts_an_attempt(),
        };
        let (reply, answer) = oneshot::channel();
        let stopped =
            || StoreError::Unavailable(format!("{}: the outcome recorder stopped", shared.shown));
        self.sender
            .send(Pending { outcome, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(shared: Arc<Shared>, mut receiver: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // While every slot is busy, outcomes accumulate in the channel: the next batch is larger.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        // Let the workers already finishing reach the queue before the batch is cut.
        tokio::task::yield_now().await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            match record(&shared, &batch).await {
                Ok(recorded) => {
                    // A lease finished twice in one batch is recorded once and answered `true`
                    // twice, as one finish after the other would be (see `FINISHED_BY`); twice
                    // to different statuses, the one to the status not recorded is refused.
                    for pending in batch {
                        let Outcome {
                            id, token, status, ..
                        } = pending.outcome;
                        let done = recorded.contains(&(id, token, status.to_owned()));
                        let _ = pending.reply.send(Ok(done));
                    }
                }
                Err(error) => {
                    for pending in batch {
                        let _ = pending.reply.send(Err(error.clone()));
                    }
                }
            }
            drop(slot);
        });
    }
}

/// Records the batch's outcomes, each the first time its `(id, token)` appears; returns the
/// `(id, token, status)` of those whose lease still held, and of those (any in the batch) whose
/// lease already finished the delivery so (a finish tried again).
async fn record(
    shared: &Shared,
    batch: &[Pending],
) -> Result<HashSet<(i64, String, String)>, StoreError> {
    let mut seen = HashSet::new();
    // In id order: batches from several receivers then lock shared rows in the same order.
    let mut rows: Vec<&Outcome> = batch
        .iter()
        .map(|p| &p.outcome)
        .filter(|o| seen.insert((o.id, o.token.as_str())))
        .collect();
    rows.sort_by_key(|o| o.id);
    let ids: Vec<i64> = rows.iter().map(|o| o.id).collect();
    let tokens: Vec<&str> = rows.iter().map(|o| o.token.as_str()).collect();
    let statuses: Vec<&str> = rows.iter().map(|o| o.status).collect();
    let next: Vec<Option<i64>> = rows.iter().map(|o| o.next_at).collect();
    let errors: Vec<Option<&str>> = rows.iter().map(|o| o.error.as_deref()).collect();
    let delivered: Vec<Option<i64>> = rows.iter().map(|o| o.delivered_at).collect();
    let started: Vec<i64> = rows.iter().map(|o| o.started_at).collect();
    let durations: Vec<i64> = rows.iter().map(|o| o.duration_ms).collect();
    let outcomes: Vec<&str> = rows.iter().map(|o| o.outcome).collect();
    let http: Vec<Option<i32>> = rows.iter().map(|o| o.http_status).collect();
    let counted: Vec<bool> = rows.iter().map(|o| o.counted).collect();
    let params: [&(dyn ToSql + Sync); 11] = [
        &ids, &tokens, &statuses, &next, &errors, &delivered, &started, &durations, &outcomes,
        &http, &counted,
    ];
    let keys = |rows: Vec<tokio_postgres::Row>| {
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<HashSet<_>, tokio_postgres::Error>>()
            .map_err(|e| shared.error(&e))
    };
    shared
        .within(async |client| {
            let statement = client
                .prepare_cached(&shared.sql(FINISH_MANY))
                .await
                .map_err(|e| shared.error(&e))?;
            let mut tries = 0;
            let mut recorded = loop {
                tries += 1;
                let recording = client.query(&statement, &params);
                match in_write_transaction(client, shared, recording).await {
                    // Two receivers' batches waiting on each other's rows: one is chosen to fail.
                    Err(error) if tries < 3 && is_retryable(&error) => continue,
                    Err(error) => return Err(shared.error(&error)),
                    Ok(recorded) => break keys(recorded)?,
                }
            };
            if recorded.is_empty() {
                // No lease held, or the schema is no longer this build's.
                schema::check_current(client, &shared.shown, &shared.ident).await?;
            }
            // Rare (a stale lease, a finish tried again): read only then. Every outcome of the
            // batch, not only the first of each lease: a retry behind one to another status is
            // answered as it would be after it.
            let missing: Vec<&Outcome> = batch
                .iter()
                .map(|p| &p.outcome)
                .filter(|o| !recorded.contains(&(o.id, o.token.clone(), o.status.to_owned())))
                .collect();
            if !missing.is_empty() {
                let ids: Vec<i64> = missing.iter().map(|o| o.id).collect();
                let tokens: Vec<&str> = missing.iter().map(|o| o.token.as_str()).collect();
                let statuses: Vec<&str> = missing.iter().map(|o| o.status).collect();
                let finished = client
                    .query(&shared.sql(FINISHED_BY), &[&ids, &tokens, &statuses])
                    .await
                    .map_err(|e| shared.error(&e))?;
                recorded.extend(keys(finished)?);
            }
            Ok(recorded)
        })
        .await
}
