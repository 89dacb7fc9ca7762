//! The insert collector: inserts from concurrent requests queue on a bounded channel; a task
//! takes up to `max_batch` of them at a time and commits them with one multi-row
//! `INSERT … ON CONFLICT (client_id, event_hash) DO UPDATE … RETURNING` (with
//! `synchronous_commit` on), a few batches in flight at once, then answers each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::connect::is_retryable;
use super::schema;
use super::Shared;
use crate::inbox::sqlite::convert::{sha256_hex, to_ms};
use crate::inbox::{BatchHistogram, Inserted, NewDelivery, StoreError};

/// How many times the collector yields to other tasks between the first insert of a batch and
/// draining the queue.
const YIELDS_BEFORE_CUT: usize = 2;

type Reply = oneshot::Sender<Result<Inserted, StoreError>>;

/// One queued insert, its body's digest computed by the caller.
struct Pending {
    delivery: NewDelivery,
    digest: String,
    reply: Reply,
}

/// The handle to the collector task.
#[derive(Debug)]
pub(crate) struct Batcher {
    sender: mpsc::Sender<Pending>,
    histogram: Arc<Mutex<BatchHistogram>>,
    /// Turned true by [`close`](Self::close): the collector takes no more inserts.
    closing: watch::Sender<bool>,
    /// Turns true when the collector has answered every insert it took and stopped.
    stopped: watch::Receiver<bool>,
    /// Ends the collector task and, with it, the batches it waits for.
    collector: AbortHandle,
    /// How long [`close`](Self::close) waits for the queued inserts before giving up on them.
    close_deadline: Duration,
}

/// Inserts events; for those new, one delivery per destination (`$10`) due when received, and a
/// `NOTIFY` on the schema's channel (`$11`). `$12` is the methods (NULL for POST). `$13` is the
/// database's clock minus this machine's: due times are on the database's clock (`clock.rs`).
/// `xmax = 0` tells a row inserted by this statement from one it updated.
const INSERT: &str = "WITH ins AS (
    INSERT INTO {s}.events AS e (client_id, event_hash, event_type, body, body_len, body_sha256,
                                 signature, content_type, received_at, method)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::int8[], $6::text[],
                         $7::text[], $8::text[], $9::int8[], $12::text[])
    -- Nothing under the old schema once a newer ccai migrated it.
    WHERE (SELECT max(version) FROM {s}.inbox_schema) = {v}
    ON CONFLICT (client_id, event_hash) DO UPDATE SET
        duplicates = e.duplicates + CASE WHEN e.body_sha256 = excluded.body_sha256 THEN 1 ELSE 0 END,
        conflicts = e.conflicts + CASE WHEN e.body_sha256 = excluded.body_sha256 THEN 0 ELSE 1 END,
        last_conflict_sha256 = CASE WHEN e.body_sha256 = excluded.body_sha256
                                    THEN e.last_conflict_sha256 ELSE excluded.body_sha256 END
    RETURNING e.id, e.client_id, e.event_hash, (e.xmax = 0) AS inserted, e.body_sha256,
              e.received_at
), deliveries AS (
    INSERT INTO {s}.deliveries (event_id, destination, status, attempts, next_attempt_at)
    SELECT ins.id, d.destination, 'pending', 0, ins.received_at + $13::int8
      FROM ins CROSS JOIN unnest($10::text[]) AS d (destination)
     WHERE ins.inserted
), notified AS (
    -- Delivered to the listeners at commit; once per statement.
    SELECT pg_notify($11, '') FROM ins WHERE ins.inserted LIMIT 1
)
SELECT client_id, event_hash, inserted, body_sha256, (SELECT count(*) FROM notified) FROM ins";

/// The most insert transactions in flight at once (each holds a pooled connection).
pub(crate) const MAX_INSERT_CONCURRENCY: usize = 1024;

impl Batcher {
    pub(crate) fn start(
        shared: Arc<Shared>,
        capacity: usize,
        max_batch: usize,
        in_flight: usize,
        close_deadline: Duration,
    ) -> Self {
        let (capacity, max_batch) = crate::inbox::queue_limits(capacity, max_batch);
        let (sender, receiver) = mpsc::channel(capacity);
        let histogram = Arc::new(Mutex::new(BatchHistogram::default()));
        let (closing, closing_rx) = watch::channel(false);
        let (stopped_tx, stopped) = watch::channel(false);
        let in_flight = in_flight.clamp(1, MAX_INSERT_CONCURRENCY);
        let collector = Collector {
            shared,
            receiver,
            max_batch,
            slots: Arc::new(Semaphore::new(in_flight)),
            histogram: Arc::clone(&histogram),
            batches: JoinSet::new(),
        };
        let collector = tokio::spawn(async move {
            collector.run(closing_rx, in_flight).await;
            // (Were the task dropped instead, by a runtime shutting down, dropping `stopped_tx`
            // would end `close`'s wait just the same.)
            let _ = stopped_tx.send(true);
        })
        .abort_handle();
        Self {
            sender,
            histogram,
            closing,
            stopped,
            collector,
            close_deadline,
        }
    }

    /// Stops taking inserts, and waits until those queued before are committed (or failed) and
    /// answered. A database that stops answering (a partition, a frozen server: no error, no
    /// reply) would hold that wait forever: after `close_deadline` the collector and its
    /// batches are ended, and the inserts still waiting answered an error (their outcome
    /// unknown: a batch may have committed just before).
    pub(crate) async fn close(&self) {
        self.closing.send_replace(true);
        let mut stopped = self.stopped.clone();
        // An error means the collector task is gone: nothing is left to wait for.
        let waited = tokio::time::timeout(self.close_deadline, stopped.wait_for(|s| *s))
            .await
            .is_ok();
        if !waited {
            tracing::warn!(target: "ccai::inbox", "closing: the database did not answer the queued inserts in time; they are answered an error");
            self.collector.abort();
            let _ = stopped.wait_for(|stopped| *stopped).await;
        }
    }

    /// Queues `delivery`; fails at once with [`StoreError::Overloaded`] if the queue is full.
    pub(crate) async fn insert(
        &self,
        shown: &str,
        delivery: NewDelivery,
    ) -> Result<Inserted, StoreError> {
        check_text(&delivery)?;
        let digest = sha256_hex(&delivery.body);
        let (reply, answer) = oneshot::channel();
        let closed = || {
            StoreError::Unavailable(if *self.closing.borrow() {
                format!("{shown}: the store is closed")
            } else {
                format!("{shown}: the insert collector stopped")
            })
        };
        self.sender
            .try_send(Pending {
                delivery,
                digest,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => closed(),
            })?;
        answer.await.map_err(|_| closed())?
    }

    pub(crate) fn histogram(&self) -> BatchHistogram {
        self.histogram
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What PostgreSQL cannot store or index: refuse such a delivery alone rather than fail its batch.
fn check_text(delivery: &NewDelivery) -> Result<(), StoreError> {
    delivery.check_fields()?;
    let headers = [
        delivery.signature.as_deref(),
        delivery.content_type.as_deref(),
    ];
    if headers.into_iter().flatten().any(|f| f.contains('\0')) {
        return Err(StoreError::InvalidRequest(
            "a delivery's headers contain a NUL character".into(),
        ));
    }
    Ok(())
}

/// The collector task's state.
struct Collector {
    shared: Arc<Shared>,
    receiver: mpsc::Receiver<Pending>,
    max_batch: usize,
    /// One permit per insert transaction that may be in flight.
    slots: Arc<Semaphore>,
    histogram: Arc<Mutex<BatchHistogram>>,
    /// The batches in flight: aborted (their inserts answered an error) if the collector is.
    batches: JoinSet<()>,
}

impl Collector {
    /// Commits batches until `closing` turns true and the queue is drained, then waits for the
    /// `in_flight` transactions to finish.
    async fn run(mut self, mut closing: watch::Receiver<bool>, in_flight: usize) {
        let mut open = true;
        loop {
            // While every slot is busy, inserts accumulate in the channel: the next batch is
            // larger.
            let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
                return;
            };
            let first = tokio::select! {
                first = self.receiver.recv() => first,
                _ = closing.wait_for(|closing| *closing), if open => {
                    // Later sends fail; what is queued is still received, then `None`.
                    self.receiver.close();
                    open = false;
                    continue;
                }
            };
            let Some(first) = first else {
                break;
            };
            self.spawn_batch(first, slot).await;
        }
        // Every permit back: every batch taken has committed (or failed) and been answered.
        let permits = u32::try_from(in_flight).unwrap_or(u32::MAX);
        let _ = self.slots.acquire_many(permits).await;
    }

    /// Cuts a batch that starts with `first` and commits it on a task of its own, which gives
    /// `slot` back once the batch is answered.
    async fn spawn_batch(&mut self, first: Pending, slot: OwnedSemaphorePermit) {
        // Let the request tasks already running reach the queue before the batch is cut: larger
        // batches, fewer transactions (about 10 % more events/s from one receiver, measured).
        for _ in 0..YIELDS_BEFORE_CUT {
            tokio::task::yield_now().await;
        }
        let mut batch = vec![first];
        while batch.len() < self.max_batch {
            match self.receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        // Forget the batches that ended (each gave its slot back).
        while self.batches.try_join_next().is_some() {}
        let shared = Arc::clone(&self.shared);
        let histogram = Arc::clone(&self.histogram);
        self.batches.spawn(async move {
            let size = batch.len();
            let result = commit(&shared, &batch).await;
            if result.is_ok() {
                let mut histogram = histogram.lock().unwrap_or_else(|e| e.into_inner());
                *histogram.counts.entry(size).or_insert(0) += 1;
            }
            match result {
                Ok(outcomes) => {
                    if outcomes.contains(&Inserted::New) {
                        super::wake_all(&shared.wake);
                    }
                    for (pending, outcome) in batch.into_iter().zip(outcomes) {
                        if outcome == Inserted::Conflict {
                            log_conflict(&pending);
                        }
                        // The caller may have stopped waiting: nothing to do.
                        let _ = pending.reply.send(Ok(outcome));
                    }
                }
                Err(error) => {
                    tracing::error!(target: "ccai::inbox", %error, size, "an insert batch did not commit");
                    for pending in batch {
                        let _ = pending.reply.send(Err(error.clone()));
                    }
                }
            }
            drop(slot);
        });
    }
}

fn log_conflict(pending: &Pending) {
    tracing::warn!(
        target: "ccai::inbox",
        event_hash = %crate::event::Escaped(&pending.delivery.event_hash),
        received_sha256 = %pending.digest,
        "a delivery repeats a stored eventHash with a different body: the first body is kept"
    );
}

/// Commits `batch` (retrying a deadlock or serialization failure twice); one outcome per entry.
async fn commit(shared: &Shared, batch: &[Pending]) -> Result<Vec<Inserted>, StoreError> {
    let rounds = rounds(batch);
    shared
        .within(async |client| {
            let mut tries = 0;
            loop {
                tries += 1;
                match try_commit(shared, client, batch, &rounds).await {
                    Err(error) if tries < 3 && is_retryable(&error) => continue,
                    Err(error) => return Err(shared.error(&error)),
                    Ok(outcomes) => {
                        if outcomes.iter().any(Option::is_none) {
                            // The usual reason the `INSERT` returns no row for an entry.
                            schema::check_current(client, &shared.shown, &shared.ident).await?;
                        }
                        return outcomes
                            .into_iter()
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| {
                                StoreError::Unavailable(format!(
                                    "{}: the database did not report the outcome of an insert",
                                    shared.shown
                                ))
                            });
                    }
                }
            }
        })
        .await
}

/// Splits the batch so that no statement names one `(client_id, event_hash)` twice (PostgreSQL
/// refuses that): round `k` has the `k`-th occurrence of each key, sorted by key so that
/// concurrent batches lock rows in the same order.
fn rounds(batch: &[Pending]) -> Vec<Vec<usize>> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (index, pending) in batch.iter().enumerate() {
        let d = &pending.delivery;
        let round = seen
            .entry((d.client_id.as_str(), d.event_hash.as_str()))
            .or_insert(0);
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push(index);
        *round += 1;
    }
    for round in &mut rounds {
        round.sort_by(|a, b| {
            let (a, b) = (&batch[*a].delivery, &batch[*b].delivery);
            (&a.client_id, &a.event_hash).cmp(&(&b.client_id, &b.event_hash))
        });
    }
    rounds
}

/// The columns of one round's `INSERT`, borrowed from the batch.
struct Columns<'a> {
    client_ids: Vec<&'a str>,
    hashes: Vec<&'a str>,
    types: Vec<&'a str>,
    bodies: Vec<&'a [u8]>,
    lens: Vec<i64>,
    digests: Vec<&'a str>,
    signatures: Vec<Option<&'a str>>,
    content_types: Vec<Option<&'a str>>,
    received: Vec<i64>,
    methods: Vec<Option<&'static str>>,
    clock_offset: i64,
}

impl<'a> Columns<'a> {
    fn new(batch: &'a [Pending], round: &[usize], clock_offset: i64) -> Self {
        let entries: Vec<&Pending> = round.iter().map(|i| &batch[*i]).collect();
        let text = |f: fn(&NewDelivery) -> &str| -> Vec<&'a str> {
            entries.iter().map(|p| f(&p.delivery)).collect()
        };
        Self {
            client_ids: text(|d| &d.client_id),
            hashes: text(|d| &d.event_hash),
            types: text(|d| &d.event_type),
            bodies: entries.iter().map(|p| &p.delivery.body[..]).collect(),
            lens: entries
                .iter()
                .map(|p| p.delivery.body.len() as i64)
                .collect(),
            digests: entries.iter().map(|p| p.digest.as_str()).collect(),
            signatures: entries
                .iter()
                .map(|p| p.delivery.signature.as_deref())
                .collect(),
            content_types: entries
                .iter()
                .map(|p| p.delivery.content_type.as_deref())
                .collect(),
            received: entries
                .iter()
                .map(|p| to_ms(p.delivery.received_at))
                .collect(),
            methods: entries
                .iter()
                .map(|p| crate::inbox::delivery::stored_method(p.delivery.method))
                .collect(),
            clock_offset,
        }
    }

    fn params<'s>(&'s self, shared: &'s Shared) -> [&'s (dyn ToSql + Sync); 13] {
        [
            &self.client_ids,
            &self.hashes,
            &self.types,
            &self.bodies,
            &self.lens,
            &self.digests,
            &self.signatures,
            &self.content_types,
            &self.received,
            &shared.destinations,
            &shared.channel,
            &self.methods,
            &self.clock_offset,
        ]
    }
}

/// Makes the transaction durable before anyone is answered, whatever the server's or role's
/// default.
const DURABLE: &str = "SET LOCAL synchronous_commit TO on";

async fn try_commit(
    shared: &Shared,
    client: &mut deadpool_postgres::Object,
    batch: &[Pending],
    rounds: &[Vec<usize>],
) -> Result<Vec<Option<Inserted>>, tokio_postgres::Error> {
    let statement = client.prepare_cached(&shared.sql(INSERT)).await?;
    // The migration lock, shared: a newer ccai's migration waits for this transaction, and one
    // under way makes it wait, so that the `INSERT` sees the version it leaves. Sent with the
    // BEGIN: no round trip of its own.
    let begin = format!("BEGIN; {DURABLE}; {}", shared.write_lock);
    let columns: Vec<Columns<'_>> = rounds
        .iter()
        .map(|r| Columns::new(batch, r, shared.clock.offset_ms()))
        .collect();
    let results: Vec<Vec<Row>> = if let [only] = columns.as_slice() {
        // The usual case, one statement: BEGIN, the INSERT and COMMIT go out together
        // (tokio-postgres sends requests in the order they are first polled), one round trip
        // instead of three. After a failed INSERT the COMMIT rolls back; its rows count only if
        // the COMMIT succeeded.
        let params = only.params(shared);
        let (begun, rows, committed) = tokio::join!(
            client.batch_execute(&begin),
            client.query(&statement, &params),
            client.batch_execute("COMMIT"),
        );
        begun?;
        let rows = rows?;
        committed?;
        vec![rows]
    } else {
        let tx = client.transaction().await?;
        tx.batch_execute(&format!("{DURABLE}; {}", shared.write_lock))
            .await?;
        let mut all = Vec::with_capacity(columns.len());
        for round in &columns {
            all.push(tx.query(&statement, &round.params(shared)).await?);
        }
        tx.commit().await?;
        all
    };
    let mut outcomes = vec![None; batch.len()];
    for (round, rows) in rounds.iter().zip(results) {
        let mut by_key: HashMap<(String, String), (bool, String)> = HashMap::new();
        for row in rows {
            by_key.insert(
                (row.try_get(0)?, row.try_get(1)?),
                (row.try_get(2)?, row.try_get(3)?),
            );
        }
        for index in round {
            let pending = &batch[*index];
            let key = (
                pending.delivery.client_id.clone(),
                pending.delivery.event_hash.clone(),
            );
            outcomes[*index] = match by_key.get(&key) {
                Some((true, _)) => Some(Inserted::New),
                Some((false, stored)) if *stored == pending.digest => Some(Inserted::Duplicate),
                Some((false, _)) => Some(Inserted::Conflict),
                None => None,
            };
        }
    }
    Ok(outcomes)
}
