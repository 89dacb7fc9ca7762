//! The single writer thread with group commit: write requests queue on a bounded channel; the
//! thread drains up to `max_batch` of them, runs them in one transaction (each in a savepoint, so
//! one failing request does not undo the others), commits once, then answers each, or, with
//! [`Synchronous::Full`](super::Synchronous::Full), hands the batch to the
//! [WAL syncer](super::wal_sync) which answers once the commit is on disk.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use super::checkpoint::{Checkpointer, WRITER_FALLBACK_PAGES};
use super::convert::{opened_read_only, store_error};
use super::file_watch::FileWatch;
use super::keys::RecentKeys;
use super::schema_watch::SchemaWatch;
use super::wal_sync::{sync_failed, Committed, WalSyncer};
use crate::inbox::StoreError;
use crate::telemetry;

/// After a failed merge or fold slice, the write batches committed before the next try.
const MERGE_RETRY_BATCHES: u32 = 1000;

/// Writes that must already wait when a batch commits for its WAL sync to go to the sync thread
/// while the writer goes on with them. About what the writer commits in the time of one
/// `fdatasync` (0.1–0.3 ms, at about 10 µs a write): with fewer waiting, the overlap saves less
/// than the hand-over's thread wake-up costs every caller of the batch. Measured both ways: 64
/// in-process inserters keep their rate (the queue is deep), and `ccai listen` over 32 HTTP
/// connections acknowledges 7–14 % more deliveries per second than when any waiting write made
/// the writer hand over (BENCHMARKS.md).
const HAND_OVER_AT: usize = 16;

/// Whether the writer hands a committed batch to the sync thread rather than syncing it itself:
/// when enough writes wait to overlap the sync with, or when the sync thread is already busy (a
/// second sync of the file beside its own would wait for it anyway, and hold up the writer
/// meanwhile).
fn hand_over(waiting: usize, sync_thread_busy: bool) -> bool {
    waiting >= HAND_OVER_AT || sync_thread_busy
}

/// One queued write: runs inside the batch's transaction, answers after the commit.
pub(crate) trait Job: Send {
    /// Runs the write; returns whether it succeeded (a failure is rolled back to its savepoint).
    fn run(&mut self, conn: &Connection, keys: &mut RecentKeys) -> bool;
    /// Sends the result, or `commit`'s error if the batch did not commit.
    fn answer(self: Box<Self>, commit: Result<(), StoreError>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection, &mut RecentKeys) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection, keys: &mut RecentKeys) -> bool {
        let result = match self.work.take() {
            // A panicking write (a bug, or an input no check foresaw) fails alone: the writer
            // thread, and with it the whole store, must live on.
            Some(work) => match catch_unwind(AssertUnwindSafe(|| work(conn, keys))) {
                Ok(result) => result,
                Err(_) => {
                    tracing::error!(target: "ccai::inbox", "a store write panicked; it was rolled back");
                    Err(StoreError::InvalidRequest(
                        "the write failed unexpectedly and was rolled back".into(),
                    ))
                }
            },
            None => Err(StoreError::Unavailable("a write ran twice".into())),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<(), StoreError>) {
        let result = match (commit, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(e), Some(Ok(_))) | (Err(e), None) => Err(e),
            // The job failed on its own: its error says more than the commit's.
            (_, Some(Err(e))) => Err(e),
            (Ok(()), None) => Err(StoreError::Unavailable("a write was not run".into())),
        };
        // The caller may have stopped waiting (e.g. a cancelled request): nothing to do.
        let _ = self.reply.send(result);
    }
}

/// How many writes each committed transaction carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchHistogram {
    /// Number of transactions per batch size.
    pub counts: BTreeMap<usize, u64>,
}

impl BatchHistogram {
    /// Transactions committed.
    pub fn batches(&self) -> u64 {
        self.counts
            .values()
            .fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// Writes committed.
    pub fn writes(&self) -> u64 {
        // Saturating: `counts` is public, and no real histogram comes near the limit.
        self.counts
            .iter()
            .map(|(size, n)| (*size as u64).saturating_mul(*n))
            .fold(0, u64::saturating_add)
    }

    /// The largest batch.
    pub fn max(&self) -> usize {
        self.counts.keys().next_back().copied().unwrap_or(0)
    }

    /// The batch size below or at which `fraction` (0.0–1.0) of the writes were committed.
    pub fn percentile_by_write(&self, fraction: f64) -> usize {
        let target = (self.writes() as f64 * fraction.clamp(0.0, 1.0)).ceil() as u64;
        let mut seen = 0;
        for (size, n) in &self.counts {
            seen = (*size as u64).saturating_mul(*n).saturating_add(seen);
            if seen >= target {
                return *size;
            }
        }
        self.max()
    }
}

/// What the writer thread and its handles share.
#[derive(Debug)]
struct Shared {
    histogram: Mutex<BatchHistogram>,
    /// Set by [`Writer::close`]: the thread takes no more work once it sees it.
    closing: AtomicBool,
    /// The database file and WAL as opened: once either is deleted or replaced, writes fail
    /// (the checkpointer watches them too).
    files: Arc<FileWatch>,
    /// Set once another process (a newer ccai) changed the schema version: writes fail.
    schema_changed: OnceLock<StoreError>,
}

/// The handle to the writer thread: submits writes, reads the batch histogram.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    sender: mpsc::Sender<Box<dyn Job>>,
    /// What the handles and the thread share.
    shared: Arc<Shared>,
    path: Arc<str>,
    /// Set once a sync of the WAL failed ([`Synchronous::Full`](super::Synchronous::Full) only).
    sync_failed: Option<Arc<AtomicBool>>,
    /// Turns true when the writer thread has ended (its connection closed); its sender is
    /// dropped instead if the thread panics. Every [`close`](Self::close) waits for it, not
    /// only the first: a second close, concurrent or after one dropped mid-await, must not
    /// return before the store is closed.
    stopped: watch::Receiver<bool>,
    /// A store opened read-only: no thread, and every write is refused saying so.
    read_only: bool,
}

/// The database file under SQLite's own name for it (absolute, links resolved) when it has a
/// UTF-8 one, else `database` as given.
fn database_path(conn: &Connection, database: &std::path::Path) -> std::path::PathBuf {
    match conn.path().filter(|p| !p.is_empty()) {
        Some(resolved) => resolved.into(),
        None => database.to_path_buf(),
    }
}

/// The WAL beside the database file.
fn wal_path(conn: &Connection, database: &std::path::Path) -> std::path::PathBuf {
    let mut wal = database_path(conn, database).into_os_string();
    wal.push("-wal");
    wal.into()
}

impl std::fmt::Debug for dyn Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    /// Starts the writer thread on `conn` (opened on `database`), and the checkpointer on
    /// `checkpoint_conn` (another connection to the same file). With `sync_wal`, `conn` must
    /// commit without syncing (`synchronous=NORMAL`): the WAL is synced before each batch is
    /// answered ([`WalSyncer`]). The threads end when every handle is dropped.
    pub(crate) fn start(
        conn: Connection,
        checkpoint_conn: Connection,
        path: Arc<str>,
        capacity: usize,
        max_batch: usize,
        database: &std::path::Path,
        sync_wal: bool,
    ) -> Result<Self, StoreError> {
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_FALLBACK_PAGES)
            .map_err(|e| store_error(&path, e))?;
        let wal = wal_path(&conn, database);
        let files = Arc::new(FileWatch::start(
            &database_path(&conn, database),
            &wal,
            &path,
        ));
        let syncer = match sync_wal {
            true => Some(WalSyncer::start(wal, &path)?),
            false => None,
        };
        let sync_failed = syncer.as_ref().map(WalSyncer::failure);
        let checkpointer = Checkpointer::start(checkpoint_conn, &path, Arc::clone(&files))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
            })?;
        let (capacity, max_batch) = crate::inbox::queue_limits(capacity, max_batch);
        let (sender, receiver) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            histogram: Mutex::default(),
            closing: AtomicBool::new(false),
            files,
            schema_changed: OnceLock::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread_path = Arc::clone(&path);
        let (stopped_tx, stopped) = watch::channel(false);
        std::thread::Builder::new()
            .name("ccai-inbox-writer".into())
            .spawn(move || {
                run(
                    conn,
                    checkpointer,
                    syncer,
                    receiver,
                    max_batch,
                    &thread_shared,
                    &thread_path,
                );
                // `run` has checkpointed and closed its connection.
                stopped_tx.send_replace(true);
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            sender,
            shared,
            path,
            sync_failed,
            stopped,
            read_only: false,
        })
    }

    /// The writer of a store opened read-only: no thread, no connection; every write fails
    /// with [`StoreError::ReadOnly`] (its queue has no receiver) and closing has nothing to
    /// wait for.
    pub(crate) fn read_only(path: Arc<str>) -> Self {
        let (sender, _) = mpsc::channel(1);
        let (_, stopped) = watch::channel(true);
        let shared = Arc::new(Shared {
            histogram: Mutex::default(),
            closing: AtomicBool::new(false),
            files: Arc::new(FileWatch::unwatched(&path)),
            schema_changed: OnceLock::new(),
        });
        Self {
            sender,
            shared,
            path,
            sync_failed: None,
            stopped,
            read_only: true,
        }
    }

    /// Stops the writer for every handle and waits for its thread to end: the writes queued
    /// before are done and answered, later ones fail, then the WAL is folded back into the
    /// database file and the writer's connections are closed.
    pub(crate) async fn close(&self) {
        self.shared.closing.store(true, Ordering::Release);
        // Wakes the thread if it waits for work; it sees `closing` and takes no more.
        let _ = self.write(|_| Ok(())).await;
        // An error means the thread is gone (it panicked): nothing is left to wait for.
        let _ = self.stopped.clone().wait_for(|stopped| *stopped).await;
    }

    /// Why every write fails from now on: a sync of the WAL has failed, the store's file was
    /// deleted or replaced (one `stat` per file), or a write found that another process (a newer
    /// ccai) changed the schema version.
    pub(crate) fn write_failure(&self) -> Option<StoreError> {
        if self.read_only {
            return Some(opened_read_only(&self.path));
        }
        let failed = self
            .sync_failed
            .as_ref()
            .is_some_and(|failed| failed.load(Ordering::Acquire));
        if failed {
            return Some(sync_failed(&self.path));
        }
        self.shared
            .files
            .failure()
            .or_else(|| self.shared.schema_changed.get().cloned())
    }

    /// Marks the store as if a sync had failed, to test what follows.
    #[cfg(test)]
    pub(crate) fn fail_sync_for_test(&self) {
        if let Some(failed) = &self.sync_failed {
            failed.store(true, Ordering::Release);
        }
    }

    /// Queues `work`, which also gets the writer's [`RecentKeys`]; fails at once with
    /// [`StoreError::Overloaded`] if the queue is full.
    pub(crate) async fn try_write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut RecentKeys) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, reply) = job(work);
        self.sender.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => self.closed(),
        })?;
        reply.await.map_err(|_| self.closed())?
    }

    /// Queues `work`, waiting for room in the queue.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, reply) = job(move |conn: &Connection, _: &mut RecentKeys| work(conn));
        self.sender.send(job).await.map_err(|_| self.closed())?;
        reply.await.map_err(|_| self.closed())?
    }

    /// Queues `work` without waiting for it: for clean-up from a `Drop`, where nothing can be
    /// awaited. With the queue full, a task waits for room if there is a tokio runtime; without
    /// one the work is dropped (callers use this only where a lease bounds what that leaves).
    /// Returns its outcome, for a task that can wait for it; dropping that does not stop it.
    pub(crate) fn write_detached<F>(
        &self,
        work: F,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let (job, reply) = job(move |conn: &Connection, _: &mut RecentKeys| work(conn));
        if let Err(mpsc::error::TrySendError::Full(job)) = self.sender.try_send(job) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let sender = self.sender.clone();
                runtime.spawn(async move {
                    let _ = sender.send(job).await;
                });
            }
        }
        let writer = self.clone();
        async move { reply.await.map_err(|_| writer.closed())? }
    }

    pub(crate) fn histogram(&self) -> BatchHistogram {
        self.shared
            .histogram
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn closed(&self) -> StoreError {
        if self.read_only {
            return opened_read_only(&self.path);
        }
        let why = if self.shared.closing.load(Ordering::Acquire) {
            "the store is closed"
        } else {
            "the writer thread stopped"
        };
        StoreError::Unavailable(format!("{}: {why}", self.path))
    }
}

pub(crate) type Reply<T> = oneshot::Receiver<Result<T, StoreError>>;

pub(crate) fn job<T, F>(work: F) -> (Box<dyn Job>, Reply<T>)
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut RecentKeys) -> Result<T, StoreError> + Send + 'static,
{
    let (reply, receiver) = oneshot::channel();
    let job = TypedJob {
        work: Some(work),
        result: None,
        reply,
    };
    (Box::new(job), receiver)
}

fn run(
    conn: Connection,
    checkpointer: Checkpointer,
    mut syncer: Option<WalSyncer>,
    mut receiver: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    shared: &Shared,
    path: &str,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    let mut keys = RecentKeys::default();
    let mut schema = SchemaWatch::default();
    let mut merge_pause = 0u32;
    loop {
        // Looked at before each wait, not only once a write arrives: the write that `close`
        // sends to wake the thread may have been taken into the batch just run, behind one
        // received before `closing` was set, and then no write may ever come to wake it again.
        if shared.closing.load(Ordering::Acquire) {
            // Later sends fail; what is queued is still received, then the loop ends.
            receiver.close();
        }
        let Some(first) = receiver.blocking_recv() else {
            break;
        };
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Nothing more is committed once a sync failed, or once the file is no longer where the
        // next start will look: it could not be acknowledged. Nor once a newer ccai migrated it.
        let failure = match syncer.as_ref().is_some_and(WalSyncer::has_failed) {
            true => Some(sync_failed(path)),
            false => shared
                .files
                .failure()
                .or_else(|| shared.schema_changed.get().cloned()),
        };
        if let Some(failure) = failure {
            if shared.files.known_failure().is_some() {
                checkpointer.files_gone();
            }
            for job in batch.drain(..) {
                job.answer(Err(failure.clone()));
            }
            continue;
        }
        let size = batch.len();
        let timer = telemetry::Timer::start();
        let commit = run_batch(&conn, &mut batch, &mut keys, &mut schema, shared, path);
        if commit.is_err() {
            keys.batch_rolled_back();
        } else {
            keys.batch_committed();
            checkpointer.committed();
            let mut histogram = shared.histogram.lock().unwrap_or_else(|e| e.into_inner());
            *histogram.counts.entry(size).or_insert(0) += 1;
        }
        match (&mut syncer, commit) {
            (Some(syncer), Ok(())) => {
                let jobs = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
                let committed = Committed { jobs, timer, size };
                if hand_over(receiver.len(), syncer.busy()) {
                    syncer.submit(committed);
                } else {
                    syncer.sync_here(committed);
                }
            }
            (_, commit) => {
                if commit.is_ok() {
                    telemetry::store_committed(timer, size);
                }
                for job in batch.drain(..) {
                    job.answer(commit.clone());
                }
            }
        }
        // After the answers, so no acknowledgement waits for it; one slice per batch keeps
        // each pause short. A failed slice (a full disk, say) waits for a while before the next
        // try, so it neither fills the log nor taxes every batch.
        if shared.schema_changed.get().is_some() || shared.files.known_failure().is_some() {
            // Nothing more is written under the old schema, or into the WAL of a file gone (the
            // checkpointer empties it), upkeep included.
        } else if merge_pause > 0 {
            merge_pause -= 1;
        } else if keys.merge_due() || keys.fold_due() {
            if let Err(e) = keys.upkeep_step(&conn) {
                tracing::warn!(
                    target: "ccai::inbox",
                    path,
                    error = %e,
                    "merging or folding the eventHash index failed; it is tried again after {MERGE_RETRY_BATCHES} more write batches"
                );
                merge_pause = MERGE_RETRY_BATCHES;
            }
        }
    }
    // Every handle is gone: answer what waits for a sync, then fold what the WAL holds back into
    // the database. PASSIVE: another process writing the file (a `ccai events` command ending
    // beside a running `ccai listen`) is not blocked meanwhile. Closing the last connection to
    // the file then removes the WAL and `-shm`, so that a clean stop leaves one file. A failure
    // costs nothing (the next open replays the WAL).
    if let Some(syncer) = syncer {
        syncer.stop();
    }
    checkpointer.stop();
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
        tracing::debug!(target: "ccai::inbox", error = %e, "checkpoint at close failed");
    }
}

fn run_batch(
    conn: &Connection,
    batch: &mut [Box<dyn Job>],
    keys: &mut RecentKeys,
    schema: &mut SchemaWatch,
    shared: &Shared,
    path: &str,
) -> Result<(), StoreError> {
    keys.batch_started();
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| store_error(path, e))?;
    // Looked at again under the write lock: the checkpointer empties the WAL of a file found
    // gone under that lock too, and no frame may follow.
    if let Some(error) = shared.files.known_failure() {
        // Nothing was written: the rollback only ends the transaction.
        let _ = conn.execute_batch("ROLLBACK");
        return Err(error);
    }
    match schema.check(conn, path, &shared.schema_changed) {
        Ok(data_version) => keys.data_version_read(data_version),
        Err(error) => {
            // Nothing was written: the rollback only ends the transaction.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(error);
        }
    }
    let result = (|| {
        // Prepared once and cached: parsing these for every write costs more than running them.
        for job in batch.iter_mut() {
            conn.prepare_cached("SAVEPOINT job")?.execute([])?;
            keys.job_started();
            if !job.run(conn, keys) {
                conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
                keys.job_rolled_back();
            }
            conn.prepare_cached("RELEASE job")?.execute([])?;
        }
        conn.prepare_cached("COMMIT")?.execute([]).map(drop)
    })();
    result.map_err(|e| {
        // Leave no transaction open for the next batch; if the rollback fails too, the next
        // BEGIN reports it.
        let _ = conn.execute_batch("ROLLBACK");
        let error = store_error(path, e);
        tracing::error!(target: "ccai::inbox", %error, "a write batch did not commit");
        error
    })
}

#[cfg(test)]
mod tests {
    use super::{hand_over, HAND_OVER_AT};
    use crate::inbox::{NewDelivery, SqliteOptions, SqliteStore, Store, Synchronous};
    use std::time::Duration;

    /// `close` returns whenever it comes during a burst of writes. Its wake-up write could be
    /// taken into a batch behind a write received just before `closing` was set; the thread then
    /// waited for another write that never came, and `close` with it, for ever (seen once in CI).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_returns_whenever_it_comes_during_a_burst_of_writes() {
        let dir = tempfile::tempdir().expect("dir");
        for round in 0..100 {
            let options = SqliteOptions::new().synchronous(Synchronous::Normal);
            let path = dir.path().join(format!("{round}.db"));
            let store = SqliteStore::open(&path, options).expect("open");
            let inserts: Vec<_> = (0..32)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let hash = format!("r{round}-{i}");
                        let body = format!(r#"{{"eventHash":"{hash}"}}"#);
                        let delivery =
                            NewDelivery::new("1231", hash.as_str(), "message.sent", body);
                        store.insert(delivery).await
                    })
                })
                .collect();
            tokio::task::yield_now().await;
            let closed = tokio::time::timeout(Duration::from_secs(60), store.close()).await;
            assert!(closed.is_ok(), "round {round}: close never returned");
            for insert in inserts {
                let _ = insert.await.expect("task");
            }
        }
    }

    #[test]
    fn a_batch_goes_to_the_sync_thread_only_with_enough_writes_waiting_or_a_sync_under_way() {
        assert!(!hand_over(0, false));
        assert!(!hand_over(HAND_OVER_AT - 1, false));
        assert!(hand_over(HAND_OVER_AT, false));
        assert!(hand_over(0, true));
    }

    /// `counts` is public: sizes and counts whose product overflows saturate, not panic.
    #[test]
    fn histogram_arithmetic_saturates() {
        let mut histogram = super::BatchHistogram::default();
        histogram.counts.insert(usize::MAX, 2);
        histogram.counts.insert(3, u64::MAX);
        assert_eq!(histogram.writes(), u64::MAX);
        assert_eq!(histogram.batches(), u64::MAX);
        assert_eq!(histogram.percentile_by_write(0.5), 3);
        assert_eq!(histogram.max(), usize::MAX);
    }
}
