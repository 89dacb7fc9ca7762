//! [`StoreDeduper`]: the durable [`Deduper`] on a [`SqliteStore`]'s file.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::writes::{self, DedupClaim};
use super::SqliteStore;
use crate::dedup::{Claim, DedupError, DedupFuture, Deduper};
use crate::inbox::StoreError;

/// A durable [`Deduper`]: claims and completions are rows in the store's file, so they survive a
/// restart and are shared by every process using the file.
///
/// A claim is leased ([`DEFAULT_LEASE`](Self::DEFAULT_LEASE) by default): if the process
/// holding it dies, the event can be claimed again once the lease lapses. Choose a lease longer
/// than the slowest processing. Callers waiting for an in-flight claim are woken at once when it
/// is completed or released through the same [`SqliteStore`] (any of its dedupers), and poll
/// otherwise (another process). Completed records are deleted
/// by [`Store::purge`](crate::inbox::Store::purge) with the event rows.
#[derive(Clone)]
pub struct StoreDeduper {
    store: SqliteStore,
    lease: Duration,
    poll: Duration,
    changed: Arc<Notify>,
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
            let now = SystemTime::now();
            let until = crate::inbox::time::after(now, self.lease);
            let path: Arc<str> = Arc::from(self.store.path());
            let key = hash.to_owned();
            let found = self
                .store
                .writer()
                .write(move |conn| writes::dedup_claim(conn, &path, &key, now, until))
                .await
                .map_err(backend)?;
            let wait = match found {
                DedupClaim::Acquired => return Ok(Claim::Acquired),
                DedupClaim::Completed => return Ok(Claim::AlreadyCompleted),
                DedupClaim::Busy(lease_until) => lease_until
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
                    .min(self.poll),
            };
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

impl Deduper for StoreDeduper {
    fn claim<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, Claim> {
        Box::pin(self.claim_now(event_hash))
    }

    fn complete<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, ()> {
        Box::pin(async move {
            let path: Arc<str> = Arc::from(self.store.path());
            let key = event_hash.to_owned();
            self.store
                .writer()
                .write(move |conn| writes::dedup_complete(conn, &path, &key, SystemTime::now()))
                .await
                .map_err(backend)?;
            self.changed.notify_waiters();
            Ok(())
        })
    }

    fn release<'a>(&'a self, event_hash: &'a str) -> DedupFuture<'a, ()> {
        Box::pin(async move {
            let path: Arc<str> = Arc::from(self.store.path());
            let key = event_hash.to_owned();
            self.store
                .writer()
                .write(move |conn| writes::dedup_release(conn, &path, &key))
                .await
                .map_err(backend)?;
            self.changed.notify_waiters();
            Ok(())
        })
    }
}
