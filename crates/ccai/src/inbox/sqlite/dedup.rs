//! [`StoreDeduper`]: the durable [`Deduper`] on a [`SqliteStore`]'s file.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::writes::{self, DedupClaim};
use super::SqliteStore;
use crate::dedup::{Claim, DedupError, DedupFuture, Deduper};
use crate::event::Escaped;
use crate::inbox::transient::Retries;
use crate::inbox::StoreError;

/// The deduplication claims held in this process, by hash: each claim's owner token. Shared by
/// every [`StoreDeduper`] of one [`SqliteStore`].
#[derive(Clone, Default)]
pub(crate) struct Held(Arc<Mutex<HashMap<String, i64>>>);

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `owner`'s claim on `hash`; `false` if this process already has one.
    fn register(&self, hash: &str, owner: i64) -> bool {
        let mut held = self.lock();
        if held.contains_key(hash) {
            return false;
        }
        held.insert(hash.to_owned(), owner);
        true
    }

    /// Forgets `owner`'s claim on `hash` (not another's).
    fn unregister(&self, hash: &str, owner: i64) {
        let mut held = self.lock();
        if held.get(hash) == Some(&owner) {
            held.remove(hash);
        }
    }

    /// Forgets this process's claim on `hash`, returning its owner token.
    fn take(&self, hash: &str) -> Option<i64> {
        self.lock().remove(hash)
    }
}

/// A durable [`Deduper`]: claims and completions are rows in the store's file, so they survive a
/// restart and are shared by every process using the file.
///
/// A claim is leased ([`DEFAULT_LEASE`](Self::DEFAULT_LEASE) by default): if the process
/// holding it dies, the event can be claimed again once the lease lapses. Choose a lease longer
/// than the slowest processing. Within one process the lease does not matter: a claim held
/// here (through any deduper of the same [`SqliteStore`]) is waited for until it is completed or
/// released, as [`MemoryDeduper`](crate::dedup::MemoryDeduper) waits, however long that takes.
/// Each claim has an owner token: a release frees that claim only, never the claim of another
/// process that took the event over after the lease lapsed. A claim whose caller stops waiting
/// for it (the request was cancelled) is released, so a retry need not wait out the lease. Callers waiting for an in-flight claim are woken at once when it
/// is completed or released through the same [`SqliteStore`] (any of its dedupers), and poll
/// otherwise (another process). A completion or release that fails with a transient error (the
/// file locked by another process past the busy timeout, a full write queue) is tried again a
/// few times (0.75 s of pauses at most) before it fails, logged. Completed records are deleted
/// by [`Store::purge`](crate::inbox::Store::purge) with the event rows.
#[derive(Clone)]
pub struct StoreDeduper {
    store: SqliteStore,
    lease: Duration,
    poll: Duration,
    changed: Arc<Notify>,
    held: Held,
}

impl fmt::Debug for StoreDeduper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreDeduper")
            .field("store", &self.store.path())
            .field("lease", &self.lease)
            .field("poll", &self.poll)
            .finish()
    }
}

fn backend(error: StoreError) -> DedupError {
    DedupError::Backend(Box::new(error))
}

impl StoreDeduper {
    /// How long an in-flight claim lasts by default: 5 minutes.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

    pub(crate) fn new(store: SqliteStore) -> Self {
        Self {
            changed: store.dedup_changed(),
            held: store.dedup_held(),
            store,
            lease: Self::DEFAULT_LEASE,
            poll: Duration::from_millis(100),
        }
    }

    /// How long an in-flight claim lasts before another caller may take it over.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often a caller waiting for a claim held elsewhere checks again (default 100 ms).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    async fn claim_now(&self, hash: &str) -> Result<Claim, DedupError> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a completion in between is not missed.
            changed.as_mut().enable();
            let owner = fastrand::i64(..);
            // One claim per hash at a time from this process, from before it is written until it
            // is completed or released: a claim held here is alive, whatever its lease says, and
            // two claims queued at once could both find a lease lapsed while the writer stalled.
            if !self.held.register(hash, owner) {
                tokio::select! {
                    _ = changed => {}
                    _ = tokio::time::sleep(self.poll) => {}
                }
                continue;
            }
            let now = SystemTime::now();
            let until = crate::inbox::time::after(now, self.lease);
            let path: Arc<str> = Arc::from(self.store.path());
            let key = hash.to_owned();
            // Released if this future is dropped before the answer: the claim may be written
            // even so, and nobody would release it.
            let mut unanswered = Unanswered {
                deduper: Some(self),
                hash,
                owner,
            };
            let found = self
                .store
                .writer()
                .write(move |conn| writes::dedup_claim(conn, &path, &key, now, until, owner))
                .await
                .map_err(backend)?;
            unanswered.deduper = None;
            let wait = match found {
                DedupClaim::Acquired => return Ok(Claim::Acquired),
                DedupClaim::Completed => {
                    self.held.unregister(hash, owner);
                    return Ok(Claim::AlreadyCompleted);
                }
                // Held by another process. Not announced to this process's waiters: they
                // would only find it busy too.
                DedupClaim::Busy(lease_until) => {
                    self.held.unregister(hash, owner);
                    lease_until
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO)
                        .min(self.poll)
                }
            };
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// A claim sent to the writer whose answer has not come back: dropped so (the caller went away,
/// or the write failed with its outcome unknown), it queues the release of whatever claim
/// `owner` may hold, and lets this process claim the hash again.
struct Unanswered<'a> {
    deduper: Option<&'a StoreDeduper>,
    hash: &'a str,
    owner: i64,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        let Some(deduper) = self.deduper else { return };
        let path: Arc<str> = Arc::from(deduper.store.path());
        let (key, owner) = (self.hash.to_owned(), self.owner);
        let changed = Arc::clone(&deduper.changed);
        let release = move |conn: &rusqlite::Connection| {
            writes::dedup_release(conn, &path, &key, Some(owner))?;
            changed.notify_waiters();
            Ok(())
        };
        let writer = deduper.store.writer().clone();
        // Queued now, in order with this process's next claim; its outcome is awaited, and a
        // transient failure tried again, on a task, as `release` does (this drop cannot wait).
        let mut first = Some(writer.write_detached(release.clone()));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let event_hash = self.hash.to_owned();
            runtime.spawn(async move {
                let released = Retries::new()
                    .run(|| {
                        let (first, writer, release) =
                            (first.take(), writer.clone(), release.clone());
                        async move {
                            match first {
                                Some(first) => first.await,
                                None => writer.write(release).await,
                            }
                        }
                    })
                    .await;
                if let Err(error) = released {
                    tracing::warn!(
                        target: "ccai::inbox", %error, event_hash = %Escaped(&event_hash),
                        "could not release the claim of an event whose caller went away, even \
                         after retrying; a repeat of it is held until the claim's lease lapses"
                    );
                }
            });
        }
        // After queuing the release: a claim this process sends next is written after it (or,
        // if the queue was full, finds this one by its owner token and waits or takes over).
        deduper.held.unregister(self.hash, owner);
    }
}

impl Deduper for StoreDeduper {
    fn claim<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, Claim> {
        Box::pin(self.claim_now(event_hash))
    }

    fn complete<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, ()> {
        Box::pin(async move {
            let path: Arc<str> = Arc::from(self.store.path());
            // No longer waited for in this process, whatever the write's outcome: if it fails,
            // the record's lease decides, as for a claim of another process.
            self.held.take(event_hash);
            let completed = Retries::new()
                .run(|| {
                    let (path, key) = (Arc::clone(&path), event_hash.to_owned());
                    self.store.writer().write(move |conn| {
                        writes::dedup_complete(conn, &path, &key, SystemTime::now())
                    })
                })
                .await;
            if let Err(error) = completed {
                tracing::warn!(
                    target: "ccai::inbox", %error, event_hash = %Escaped(event_hash),
                    "could not record an event as processed, even after retrying; its claim stays \
                     in flight until it is released or its lease lapses"
                );
                return Err(backend(error));
            }
            self.changed.notify_waiters();
            Ok(())
        })
    }

    fn release<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, ()> {
        Box::pin(async move {
            let path: Arc<str> = Arc::from(self.store.path());
            // This process's claim only; with none held here, the in-flight record (a caller
            // that claimed through another store handle on the file).
            let owner = self.held.take(event_hash);
            let released = Retries::new()
                .run(|| {
                    let (path, key) = (Arc::clone(&path), event_hash.to_owned());
                    self.store
                        .writer()
                        .write(move |conn| writes::dedup_release(conn, &path, &key, owner))
                })
                .await;
            if let Err(error) = released {
                tracing::warn!(
                    target: "ccai::inbox", %error, event_hash = %Escaped(event_hash),
                    "could not release an event's claim, even after retrying; a repeat of it is \
                     held until the claim's lease lapses"
                );
                return Err(backend(error));
            }
            self.changed.notify_waiters();
            Ok(())
        })
    }
}
