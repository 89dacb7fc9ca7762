//! The behaviour every [`Store`] must have, generic over a [`StoreFactory`]. A backend runs the
//! whole suite with `store_conformance!(its_factory)` (see `sqlite.rs`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, BatchHistogram, DeliveryState, DeliveryStatus, Finish, Inserted,
    LeaseRequest, ListFilter, ListRequest, NewDelivery, ReplayTarget, Retention, Store, StoreError,
    ERROR_EXCERPT_LIMIT,
};
use sha2::{Digest, Sha256};

/// How a test wants its store.
pub(crate) struct Config {
    pub queue_capacity: usize,
    pub destinations: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            destinations: vec!["default".into()],
        }
    }
}

/// One store under test.
pub(crate) trait StoreInstance {
    fn store(&self) -> Arc<dyn Store>;
    /// The group-commit batch sizes, for a backend that batches writes.
    fn batch_sizes(&self) -> Option<BatchHistogram>;
    /// Closes the store and opens the same storage again.
    async fn reopen(&mut self);
    /// Closes the store, drops `columns` of `table` with the backend's own SQL (as a hand edit
    /// would), and opens the same storage again: what opening answered.
    async fn drop_columns_and_reopen(
        &mut self,
        table: &str,
        columns: &[&str],
    ) -> Result<(), StoreError>;
}

/// Makes empty stores of one backend.
pub(crate) trait StoreFactory {
    type Instance: StoreInstance;
    async fn create(&self, config: Config) -> Self::Instance;
    /// Why this backend cannot be tested here (e.g. no database configured): its tests pass
    /// after printing `skipped: <reason>`.
    fn skip_reason(&self) -> Option<String> {
        None
    }
}

/// Generates one test per behaviour for `$factory`.
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        $crate::store_conformance!(@tests $factory;
            insert_new_duplicate_conflict,
            concurrent_inserts_are_all_committed_in_batches,
            full_queue_is_overloaded_and_loses_nothing_accepted,
            reopen_keeps_everything,
            close_answers_queued_inserts_then_refuses,
            claim_takes_due_deliveries_under_a_lease,
            stale_token_cannot_finish_extend_or_release,
            a_finish_tried_again_by_its_lease_is_answered_and_recorded_once,
            a_finish_again_after_a_requeue_or_replay_is_refused,
            finishes_of_one_lease_at_once_are_answered_as_one_after_the_other,
            concurrent_outcomes_each_count_once,
            expired_lease_is_reclaimed_and_counted,
            a_claim_takes_lapsed_and_pending_oldest_due_first,
            a_claim_cut_at_its_limit_leaves_the_rest_as_they_were,
            retry_then_dead,
            no_attempt_left_is_dead_without_an_invented_attempt,
            attempts_are_recorded_with_bounded_errors,
            an_error_with_a_nul_is_recorded,
            a_token_with_a_nul_is_stale_and_alone,
            list_filters,
            time_bounds_with_a_fraction_of_a_millisecond,
            an_event_hash_filter_matches_that_hash_alone,
            a_hash_prefix_filter_matches_byte_for_byte,
            pagination_is_stable_while_events_arrive,
            replay_by_hash_and_by_filter,
            requeue_dead_starts_the_schedule_over,
            purge_nulls_bodies_then_deletes_rows,
            a_replay_counts_the_events_left_for_their_purged_body,
            a_replay_or_requeue_by_text_keeps_the_status_rules,
            stats_count_statuses_and_age,
            stats_with_several_destinations,
            one_delivery_per_destination,
            a_list_counts_every_attempt_recorded,
            destinations_are_those_with_deliveries,
            a_destination_named_twice_is_one,
            a_huge_lease_or_duration_saturates,
            an_empty_text_filter_is_no_filter,
            a_search_text_past_the_limit_is_refused,
            a_nul_in_a_lookup_matches_nothing,
            one_account_s_event_by_client_id_and_hash,
            oldest_first_pages_in_stored_order,
            stats_add_up_while_inserts_commit,
            keys_no_store_can_hold_are_refused_alone,
            the_method_is_kept,
            a_column_dropped_outside_ccai_is_refused_naming_it,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let factory = $factory;
                if let Some(reason) = $crate::conformance::StoreFactory::skip_reason(&factory) {
                    println!("skipped: {reason}");
                    return;
                }
                $crate::conformance::$name(&factory).await;
            }
        )*
    };
}

const CLIENT: &str = "1231";

fn delivery(hash: &str, event_type: &str, body: &str) -> NewDelivery {
    NewDelivery::new(CLIENT, hash, event_type, body.as_bytes().to_vec())
        .signature(format!("sig-{hash}"))
        .content_type("application/json")
}

fn body_of(hash: &str) -> String {
    format!(r#"{{"eventType":"message.sent","eventHash":"{hash}","data":{{"To":"+1415"}}}}"#)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn lease(owner: &str, secs: u64) -> LeaseRequest {
    LeaseRequest::new(owner, Duration::from_secs(secs))
}

/// Stores `n` events, `{prefix}0` to `{prefix}{n-1}`, in that order.
async fn insert_numbered(store: &dyn Store, prefix: &str, n: usize) {
    for i in 0..n {
        let hash = format!("{prefix}{i}");
        store
            .insert(delivery(&hash, "message.sent", &body_of(&hash)))
            .await
            .expect("insert");
    }
}

/// Claims the one due delivery (the oldest) for `owner`, leased for `secs`.
async fn claim_oldest(
    store: &dyn Store,
    owner: &str,
    secs: u64,
    now: SystemTime,
) -> ccai::inbox::ClaimedDelivery {
    store
        .claim("default", lease(owner, secs), 1, now)
        .await
        .expect("claim")
        .remove(0)
}

/// Claims up to `limit` due deliveries for `owner`, leased for `secs`; their leases.
async fn claim_leases(
    store: &dyn Store,
    owner: &str,
    secs: u64,
    limit: usize,
    now: SystemTime,
) -> Vec<ccai::inbox::Lease> {
    store
        .claim("default", lease(owner, secs), limit, now)
        .await
        .expect("claim")
        .into_iter()
        .map(|c| c.lease)
        .collect()
}

/// The deliveries counted per status: pending, in progress, delivered, dead.
fn by_status(stats: &ccai::inbox::Stats) -> [u64; 4] {
    DeliveryStatus::ALL.map(|s| stats.count(s))
}

async fn status_of(store: &dyn Store, hash: &str) -> DeliveryStatus {
    let detail = store.get(hash).await.expect("get").expect("event stored");
    detail.summary.deliveries[0].status
}

pub(crate) async fn insert_new_duplicate_conflict(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let body = body_of("h1");
    let d = || delivery("h1", "message.sent", &body);
    assert_eq!(store.insert(d()).await, Ok(Inserted::New));
    assert_eq!(store.insert(d()).await, Ok(Inserted::Duplicate));
    assert_eq!(store.insert(d()).await, Ok(Inserted::Duplicate));
    let other = body.replace("+1415", "+1999");
    assert_eq!(
        store.insert(delivery("h1", "message.sent", &other)).await,
        Ok(Inserted::Conflict)
    );
    let detail = store.get("h1").await.expect("get").expect("stored");
    assert_eq!(
        (detail.summary.duplicates, detail.summary.conflicts),
        (2, 1)
    );
    // The first body is kept; the conflicting one is remembered by its digest only.
    assert_eq!(detail.body.as_deref(), Some(body.as_bytes()));
    assert_eq!(detail.body_sha256, sha256_hex(body.as_bytes()));
    assert_eq!(
        detail.last_conflict_sha256,
        Some(sha256_hex(other.as_bytes()))
    );
    assert_eq!(
        detail.summary.deliveries.len(),
        1,
        "repeats create no delivery"
    );
    // Debug shows neither the body nor the signature.
    let shown = format!("{detail:?}");
    assert!(
        !shown.contains("+1415") && !shown.contains("sig-h1"),
        "{shown}"
    );
    // Another account's event with the same hash is another event.
    let theirs = NewDelivery::new("9999", "h1", "message.sent", body.clone().into_bytes());
    assert_eq!(store.insert(theirs).await, Ok(Inserted::New));
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!((stats.events, stats.duplicates, stats.conflicts), (2, 2, 1));
    assert_eq!(stats.count(DeliveryStatus::Pending), 2);
}

pub(crate) async fn concurrent_inserts_are_all_committed_in_batches(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let mut tasks = Vec::new();
    for task in 0..50 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let inserts = (0..40).map(|i| {
                let hash = format!("c{task}-{i}");
                let body = body_of(&hash);
                let store = Arc::clone(&store);
                async move { store.insert(delivery(&hash, "message.sent", &body)).await }
            });
            futures_join_all(inserts).await
        }));
    }
    let mut new = 0;
    for task in tasks {
        for result in task.await.expect("task") {
            assert_eq!(result, Ok(Inserted::New));
            new += 1;
        }
    }
    assert_eq!(new, 2000);
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(stats.events, 2000);
    assert_eq!(stats.count(DeliveryStatus::Pending), 2000);
    if let Some(batches) = instance.batch_sizes() {
        assert!(batches.writes() >= 2000, "{batches:?}");
        assert!(batches.max() > 1, "no group commit happened: {batches:?}");
        assert!(batches.batches() < 2000, "{batches:?}");
    }
}

/// Runs futures concurrently on the current task (what `futures::future::join_all` does).
pub(crate) async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in set.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}

pub(crate) async fn full_queue_is_overloaded_and_loses_nothing_accepted(
    factory: &impl StoreFactory,
) {
    let instance = factory
        .create(Config {
            queue_capacity: 2,
            ..Config::default()
        })
        .await;
    let store = instance.store();
    let results = futures_join_all((0..500).map(|i| {
        let store = Arc::clone(&store);
        async move {
            let hash = format!("o{i}");
            (
                hash.clone(),
                store
                    .insert(delivery(&hash, "message.sent", &body_of(&hash)))
                    .await,
            )
        }
    }))
    .await;
    let accepted: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r == &Ok(Inserted::New))
        .map(|(h, _)| h)
        .collect();
    let overloaded = results
        .iter()
        .filter(|(_, r)| r == &Err(StoreError::Overloaded))
        .count();
    assert_eq!(
        accepted.len() + overloaded,
        500,
        "only New or Overloaded expected"
    );
    assert!(
        overloaded > 0,
        "a queue of 2 must overflow under 500 concurrent inserts"
    );
    assert!(StoreError::Overloaded.is_transient());
    // Every accepted insert is stored; no refused one is.
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(stats.events, accepted.len() as u64);
    for hash in accepted.iter().take(20) {
        assert!(store.get(hash).await.expect("get").is_some());
    }
}

/// `Store::close` through the trait: every insert sent before it is either committed and
/// answered `Ok` or refused as closed (none left unanswered, none answered `Ok` and lost); after
/// it, reads and writes fail as closed; a second close does nothing; the storage opens again
/// with exactly the inserts answered `Ok`.
pub(crate) async fn close_answers_queued_inserts_then_refuses(factory: &impl StoreFactory) {
    let mut instance = factory.create(Config::default()).await;
    let store = instance.store();
    let (answered, mut first_answer) = tokio::sync::mpsc::unbounded_channel();
    let inserts: Vec<_> = (0..200)
        .map(|i| {
            let store = Arc::clone(&store);
            let answered = answered.clone();
            tokio::spawn(async move {
                let hash = format!("q{i}");
                let result = store
                    .insert(delivery(&hash, "message.sent", &body_of(&hash)))
                    .await;
                let _ = answered.send(());
                result
            })
        })
        .collect();
    // Closed once the first insert is answered, while the others are queued, in a batch being
    // committed, or not yet sent.
    first_answer.recv().await.expect("an insert answered");
    store.close().await;
    let mut stored = 0;
    for insert in inserts {
        match insert.await.expect("task") {
            Ok(Inserted::New) => stored += 1,
            Ok(other) => panic!("a new hash answered {other:?}"),
            Err(StoreError::Unavailable(why)) => assert!(why.contains("closed"), "{why}"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(stored >= 1, "the first answer was before close");
    let late = delivery("late", "message.sent", &body_of("late"));
    match store.insert(late).await {
        Err(StoreError::Unavailable(why)) => {
            assert!(why.contains("the store is closed"), "{why}")
        }
        other => panic!("an insert after close: {other:?}"),
    }
    match store.stats(SystemTime::now()).await {
        Err(StoreError::Unavailable(why)) => {
            assert!(why.contains("the store is closed"), "{why}")
        }
        other => panic!("a read after close: {other:?}"),
    }
    let claimed = store
        .claim("default", lease("w", 60), 10, SystemTime::now())
        .await;
    assert!(
        matches!(claimed, Err(StoreError::Unavailable(_))),
        "{claimed:?}"
    );
    store.close().await; // again: nothing to do
    drop(store);
    instance.reopen().await;
    let store = instance.store();
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(
        stats.events, stored,
        "every insert answered Ok is stored, and only those"
    );
}

pub(crate) async fn reopen_keeps_everything(factory: &impl StoreFactory) {
    let mut instance = factory.create(Config::default()).await;
    let store = instance.store();
    let body = body_of("r1");
    store
        .insert(delivery("r1", "message.sent", &body))
        .await
        .expect("insert");
    store
        .insert(delivery("r1", "message.sent", &body))
        .await
        .expect("duplicate");
    let now = SystemTime::now();
    let claimed = store
        .claim("default", lease("w", 60), 1, now)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let record = AttemptRecord::new(now, Duration::from_millis(5), AttemptOutcome::Failure)
        .http_status(500)
        .error("boom");
    assert_eq!(
        store
            .finish(
                &claimed[0].lease,
                Finish::RetryAt(now + Duration::from_secs(1)),
                record
            )
            .await,
        Ok(true)
    );
    drop(store);
    instance.reopen().await;
    let store = instance.store();
    let detail = store.get("r1").await.expect("get").expect("still there");
    assert_eq!(detail.body.as_deref(), Some(body.as_bytes()));
    assert_eq!(detail.signature.as_deref(), Some("sig-r1"));
    assert_eq!(detail.summary.duplicates, 1);
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.summary.deliveries[0].attempts, 1);
    assert_eq!(detail.summary.deliveries[0].status, DeliveryStatus::Pending);
    // Still deduplicated after reopening.
    assert_eq!(
        store.insert(delivery("r1", "message.sent", &body)).await,
        Ok(Inserted::Duplicate)
    );
}

pub(crate) async fn claim_takes_due_deliveries_under_a_lease(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let t = SystemTime::now();
    for (i, hash) in ["a", "b", "c"].iter().enumerate() {
        let d = delivery(hash, "message.sent", &body_of(hash))
            .received_at(t - Duration::from_secs(10 - i as u64));
        store.insert(d).await.expect("insert");
    }
    // Oldest due first, each with its own token; nothing is handed out twice.
    let first = store
        .claim("default", lease("w1", 30), 2, t)
        .await
        .expect("claim");
    let hashes: Vec<&str> = first.iter().map(|c| c.event_hash.as_str()).collect();
    assert_eq!(hashes, ["a", "b"]);
    assert_ne!(first[0].lease.token, first[1].lease.token);
    assert_eq!(first[0].attempt, 1);
    assert_eq!(first[0].body.as_ref(), body_of("a").as_bytes());
    assert_eq!(first[0].signature.as_deref(), Some("sig-a"));
    assert_eq!(first[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(first[0].lease.owner, "w1");
    assert!(first[0].lease.until >= t + Duration::from_secs(29));
    let second = store
        .claim("default", lease("w2", 30), 5, t)
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].event_hash, "c");
    assert!(store
        .claim("default", lease("w3", 30), 5, t)
        .await
        .expect("claim")
        .is_empty());
    // Another destination has nothing.
    assert!(store
        .claim("elsewhere", lease("w3", 30), 5, t)
        .await
        .expect("claim")
        .is_empty());
    assert_eq!(status_of(&*store, "a").await, DeliveryStatus::InProgress);
    // Debug never shows the token or the signature.
    let shown = format!("{:?}", first[0]);
    assert!(
        !shown.contains(&first[0].lease.token) && !shown.contains("sig-a"),
        "{shown}"
    );
    // A released delivery is due at once, with no attempt counted.
    assert_eq!(store.release(&first[0].lease).await, Ok(true));
    let again = store
        .claim("default", lease("w4", 30), 5, SystemTime::now())
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].event_hash.as_str(), again[0].attempt), ("a", 1));
}

pub(crate) async fn stale_token_cannot_finish_extend_or_release(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("s1", "message.sent", &body_of("s1")))
        .await
        .expect("insert");
    let t = SystemTime::now();
    let old = claim_oldest(store.as_ref(), "old", 1, t).await;
    // The lease lapses; another worker takes over.
    let later = t + Duration::from_secs(5);
    let new = claim_oldest(store.as_ref(), "new", 30, later).await;
    let record = || AttemptRecord::new(t, Duration::from_millis(1), AttemptOutcome::Success);
    assert_eq!(
        store.finish(&old.lease, Finish::Delivered, record()).await,
        Ok(false)
    );
    assert_eq!(
        store
            .extend_lease(&old.lease, later + Duration::from_secs(60))
            .await,
        Ok(false)
    );
    assert_eq!(store.release(&old.lease).await, Ok(false));
    assert_eq!(status_of(&*store, "s1").await, DeliveryStatus::InProgress);
    assert_eq!(
        store
            .extend_lease(&new.lease, later + Duration::from_secs(60))
            .await,
        Ok(true)
    );
    assert_eq!(
        store.finish(&new.lease, Finish::Delivered, record()).await,
        Ok(true)
    );
    assert_eq!(status_of(&*store, "s1").await, DeliveryStatus::Delivered);
    // Finishing again the same way (a retry whose first try was recorded) is answered as
    // recorded, and records nothing more; another way, it is refused.
    assert_eq!(
        store.finish(&new.lease, Finish::Delivered, record()).await,
        Ok(true)
    );
    assert_eq!(
        store.finish(&new.lease, Finish::Dead, record()).await,
        Ok(false)
    );
    let detail = store.get("s1").await.expect("get").expect("stored");
    let outcomes: Vec<AttemptOutcome> = detail.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [AttemptOutcome::LeaseExpired, AttemptOutcome::Success]
    );
}

/// A finish that failed may have been recorded all the same (a commit whose answer was lost):
/// the dispatcher tries it again, and must be told that it was recorded, not that its lease was
/// taken over. Nothing is recorded twice, and the token kept holds no lease.
pub(crate) async fn a_finish_tried_again_by_its_lease_is_answered_and_recorded_once(
    factory: &impl StoreFactory,
) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_numbered(store.as_ref(), "f", 4).await;
    let t = SystemTime::now();
    let later = t + Duration::from_secs(3600);
    let record = || {
        AttemptRecord::new(t, Duration::from_millis(3), AttemptOutcome::Failure).error("refused")
    };
    let mut retried = None;
    for (i, finish, status, attempts) in [
        (0, Finish::Delivered, DeliveryStatus::Delivered, 1),
        (1, Finish::RetryAt(later), DeliveryStatus::Pending, 1),
        (2, Finish::Dead, DeliveryStatus::Dead, 1),
        (3, Finish::DeadUnsent, DeliveryStatus::Dead, 0),
    ] {
        let hash = format!("f{i}");
        let c = claim_oldest(store.as_ref(), "w", 60, t).await;
        assert_eq!(c.event_hash, hash);
        assert_eq!(store.finish(&c.lease, finish, record()).await, Ok(true));
        assert_eq!(
            store.finish(&c.lease, finish, record()).await,
            Ok(true),
            "{hash} finished again"
        );
        let other = match finish {
            Finish::Delivered => Finish::Dead,
            _ => Finish::Delivered,
        };
        assert_eq!(
            store.finish(&c.lease, other, record()).await,
            Ok(false),
            "{hash} finished another way"
        );
        assert_eq!(store.extend_lease(&c.lease, later).await, Ok(false));
        assert_eq!(store.release(&c.lease).await, Ok(false));
        let detail = store.get(&hash).await.expect("get").expect("stored");
        let state = &detail.summary.deliveries[0];
        assert_eq!(
            (state.status, state.attempts, detail.attempts.len()),
            (status, attempts, attempts as usize),
            "{hash}"
        );
        if i == 1 {
            retried = Some(c.lease);
        }
    }
    // Claimed again when its retry is due, the delivery is another lease's: the first one's
    // finish is refused again, as a lease taken over.
    let first = retried.expect("f1's lease");
    let again = claim_oldest(store.as_ref(), "w2", 60, later).await;
    assert_eq!((again.event_hash.as_str(), again.attempt), ("f1", 2));
    assert_eq!(
        store.finish(&first, Finish::RetryAt(later), record()).await,
        Ok(false)
    );
    let success = AttemptRecord::new(later, Duration::from_millis(1), AttemptOutcome::Success);
    assert_eq!(
        store.finish(&again.lease, Finish::Delivered, success).await,
        Ok(true)
    );
    assert_eq!(status_of(&*store, "f1").await, DeliveryStatus::Delivered);
}

/// A delivery requeued or replayed no longer stays where its last lease's finish moved it: that
/// lease's finish, whatever its status, is refused and records nothing, even where the delivery
/// is now pending as a retry would have left it.
pub(crate) async fn a_finish_again_after_a_requeue_or_replay_is_refused(
    factory: &impl StoreFactory,
) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_numbered(store.as_ref(), "q", 3).await;
    let t = SystemTime::now();
    let later = t + Duration::from_secs(3600);
    let record = || AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Failure).error("late");
    for (i, first) in [Finish::Dead, Finish::Delivered, Finish::RetryAt(later)]
        .into_iter()
        .enumerate()
    {
        let hash = format!("q{i}");
        let c = claim_oldest(store.as_ref(), "w", 60, t).await;
        assert_eq!(c.event_hash, hash);
        assert_eq!(store.finish(&c.lease, first, record()).await, Ok(true));
        let moved = if i == 0 {
            store.requeue_dead(ListFilter::new()).await
        } else {
            store.replay(ReplayTarget::Hash(hash.clone())).await
        };
        assert_eq!(moved.map(|r| r.due), Ok(1), "{hash}");
        for again in [Finish::RetryAt(later), first] {
            assert_eq!(
                store.finish(&c.lease, again, record()).await,
                Ok(false),
                "{hash}: {again:?} after {first:?} and a requeue or replay"
            );
        }
        let detail = store.get(&hash).await.expect("get").expect("stored");
        let state = &detail.summary.deliveries[0];
        assert_eq!(state.status, DeliveryStatus::Pending, "{hash}");
        // A replay keeps a pending delivery's count, and starts a finished one's over.
        assert_eq!(state.attempts, u32::from(i == 2), "{hash}");
        assert!(
            state.next_attempt_at.expect("due") <= SystemTime::now(),
            "{hash}"
        );
        assert_eq!(detail.attempts.len(), 1, "{hash}: nothing more recorded");
    }
}

/// Finishes of one lease sent at once (a store may record them together) are answered as one
/// after the other would be: the first to a status that the lease still holds is recorded, and
/// of the rest, those to the status the delivery is in then are answered `true`, recording
/// nothing, and the others refused, whichever comes first.
pub(crate) async fn finishes_of_one_lease_at_once_are_answered_as_one_after_the_other(
    factory: &impl StoreFactory,
) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_numbered(store.as_ref(), "b", 2).await;
    let t = SystemTime::now();
    let record = || AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Failure).error("x");
    // Already finished dead: a retry of that finish beside one to another status.
    let c = claim_oldest(store.as_ref(), "w", 60, t).await;
    assert_eq!(c.event_hash, "b0");
    assert_eq!(
        store.finish(&c.lease, Finish::Dead, record()).await,
        Ok(true)
    );
    let (other, again) = tokio::join!(
        store.finish(&c.lease, Finish::Delivered, record()),
        store.finish(&c.lease, Finish::Dead, record()),
    );
    assert_eq!((other, again), (Ok(false), Ok(true)), "b0");
    assert_eq!(status_of(&*store, "b0").await, DeliveryStatus::Dead);
    // Still held: one of two statuses is recorded, and its repeat answered as recorded.
    let c = claim_oldest(store.as_ref(), "w", 60, t).await;
    assert_eq!(c.event_hash, "b1");
    let (delivered, dead, dead_again) = tokio::join!(
        store.finish(&c.lease, Finish::Delivered, record()),
        store.finish(&c.lease, Finish::Dead, record()),
        store.finish(&c.lease, Finish::Dead, record()),
    );
    let (delivered, dead) = (delivered.expect("finish"), dead.expect("finish"));
    assert!(delivered != dead, "one status only: {delivered} {dead}");
    assert_eq!(dead_again, Ok(dead), "b1");
    let expected = if delivered {
        DeliveryStatus::Delivered
    } else {
        DeliveryStatus::Dead
    };
    let detail = store.get("b1").await.expect("get").expect("stored");
    assert_eq!(detail.summary.deliveries[0].status, expected);
    assert_eq!(detail.attempts.len(), 1, "recorded once");
}

pub(crate) async fn expired_lease_is_reclaimed_and_counted(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("e1", "message.sent", &body_of("e1")))
        .await
        .expect("insert");
    let t = SystemTime::now();
    let first = store
        .claim("default", lease("dies", 10), 1, t)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    // Not before the lease lapses...
    let early = t + Duration::from_secs(9);
    assert!(store
        .claim("default", lease("b", 10), 1, early)
        .await
        .expect("claim")
        .is_empty());
    // ...then by anyone, as the next attempt.
    let late = t + Duration::from_secs(11);
    let again = store
        .claim("default", lease("b", 10), 1, late)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    // A heartbeat keeps a lease alive past its first expiry.
    assert_eq!(
        store
            .extend_lease(&again[0].lease, late + Duration::from_secs(100))
            .await,
        Ok(true)
    );
    let much_later = late + Duration::from_secs(50);
    assert!(store
        .claim("default", lease("c", 10), 1, much_later)
        .await
        .expect("claim")
        .is_empty());
    let detail = store.get("e1").await.expect("get").expect("stored");
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].outcome, AttemptOutcome::LeaseExpired);
    assert!(detail.attempts[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("dies"));
}

/// One claim that takes pending deliveries and a lapsed lease together: oldest due first, each
/// under its own token, the lapsed one counted, and its message naming the owner within the
/// excerpt's bound however long the owner's name.
pub(crate) async fn a_claim_takes_lapsed_and_pending_oldest_due_first(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_numbered(&*store, "m", 3).await;
    let t = SystemTime::now() + Duration::from_secs(1);
    // 300 four-byte characters: 1,200 bytes of owner.
    let owner = "\u{1F980}".repeat(300);
    let first = claim_oldest(&*store, &owner, 10, t).await;
    assert_eq!(first.event_hash, "m0");
    // m1 and m2 have been due since they were stored; m0 from when its lease lapsed.
    let later = t + Duration::from_secs(11);
    let claimed = store
        .claim("default", lease("b", 30), 10, later)
        .await
        .expect("claim");
    let hashes: Vec<&str> = claimed.iter().map(|c| c.event_hash.as_str()).collect();
    assert_eq!(hashes, ["m1", "m2", "m0"]);
    let attempts: Vec<u32> = claimed.iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 1, 2]);
    let tokens: HashSet<&str> = claimed.iter().map(|c| c.lease.token.as_str()).collect();
    assert_eq!(tokens.len(), 3, "each claim has a token of its own");
    assert!(!tokens.contains(first.lease.token.as_str()));
    let expected = format!(
        "the lease of {} expired before the attempt finished",
        "\u{1F980}".repeat(100)
    );
    assert!(expected.len() <= ccai::inbox::ERROR_EXCERPT_LIMIT);
    let detail = store.get("m0").await.expect("get").expect("stored");
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].outcome, AttemptOutcome::LeaseExpired);
    assert_eq!(detail.attempts[0].error.as_deref(), Some(expected.as_str()));
    assert_eq!(
        detail.summary.deliveries[0].last_error.as_deref(),
        Some(expected.as_str())
    );
    for c in &claimed {
        assert_eq!(
            store
                .finish(
                    &c.lease,
                    Finish::Delivered,
                    AttemptRecord::new(later, Duration::ZERO, AttemptOutcome::Success)
                )
                .await,
            Ok(true),
            "{}",
            c.event_hash
        );
    }
    assert_eq!(
        store
            .finish(
                &first.lease,
                Finish::Delivered,
                AttemptRecord::new(later, Duration::ZERO, AttemptOutcome::Success)
            )
            .await,
        Ok(false),
        "the lapsed lease is stale"
    );
}

/// More due than the claim's limit, pending and lapsed together: the oldest due are taken, and
/// a lapsed lease beyond the limit is left as it was (not counted, not leased) for a later claim.
pub(crate) async fn a_claim_cut_at_its_limit_leaves_the_rest_as_they_were(
    factory: &impl StoreFactory,
) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_numbered(&*store, "m", 3).await;
    let t = SystemTime::now() + Duration::from_secs(1);
    let first = claim_oldest(&*store, "a", 10, t).await;
    assert_eq!(first.event_hash, "m0");
    // m1 and m2 have been due since they were stored, m0 since its lease lapsed (later).
    let later = t + Duration::from_secs(11);
    let claimed = store
        .claim("default", lease("b", 30), 2, later)
        .await
        .expect("claim");
    let hashes: Vec<&str> = claimed.iter().map(|c| c.event_hash.as_str()).collect();
    assert_eq!(hashes, ["m1", "m2"]);
    let attempts: Vec<u32> = claimed.iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, [1, 1]);
    let detail = store.get("m0").await.expect("get").expect("stored");
    assert!(
        detail.attempts.is_empty(),
        "m0 was not taken: nothing counted"
    );
    assert_eq!(
        detail.summary.deliveries[0].status,
        DeliveryStatus::InProgress
    );
    let record = || AttemptRecord::new(later, Duration::ZERO, AttemptOutcome::Success);
    for c in &claimed {
        assert_eq!(
            store.finish(&c.lease, Finish::Delivered, record()).await,
            Ok(true)
        );
    }
    let rest = store
        .claim("default", lease("b", 30), 2, later)
        .await
        .expect("claim");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event_hash, "m0");
    assert_eq!(rest[0].attempt, 2);
    assert_eq!(
        store
            .finish(&rest[0].lease, Finish::Delivered, record())
            .await,
        Ok(true)
    );
}

pub(crate) async fn retry_then_dead(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("d1", "message.sent", &body_of("d1")))
        .await
        .expect("insert");
    let t = SystemTime::now();
    let failure = || {
        AttemptRecord::new(t, Duration::from_millis(3), AttemptOutcome::Failure).error("HTTP 500")
    };
    let c = claim_oldest(store.as_ref(), "w", 30, t).await;
    let retry_at = t + Duration::from_secs(60);
    assert_eq!(
        store
            .finish(&c.lease, Finish::RetryAt(retry_at), failure())
            .await,
        Ok(true)
    );
    let detail = store.get("d1").await.expect("get").expect("stored");
    let state = &detail.summary.deliveries[0];
    assert_eq!((state.status, state.attempts), (DeliveryStatus::Pending, 1));
    assert_eq!(state.last_error.as_deref(), Some("HTTP 500"));
    let next = state.next_attempt_at.expect("next attempt time");
    assert!(
        next >= retry_at - Duration::from_millis(1) && next <= retry_at + Duration::from_millis(1)
    );
    // Not due before the retry time.
    assert!(store
        .claim("default", lease("w", 30), 1, t + Duration::from_secs(59))
        .await
        .expect("claim")
        .is_empty());
    let c = claim_oldest(store.as_ref(), "w", 30, retry_at).await;
    assert_eq!(c.attempt, 2);
    assert_eq!(
        store.finish(&c.lease, Finish::Dead, failure()).await,
        Ok(true)
    );
    assert_eq!(status_of(&*store, "d1").await, DeliveryStatus::Dead);
    let far = t + Duration::from_secs(86_400 * 365);
    assert!(store
        .claim("default", lease("w", 30), 1, far)
        .await
        .expect("claim")
        .is_empty());
}

/// A delivery with as many attempts made as a shortened retry schedule allows is made dead by
/// the dispatcher without another attempt: its count and history stay as they were (two real
/// failures), the last error says the schedule allows no more, and the report says two attempts.
/// It was finished as a failed attempt: a third attempt (0 ms, no HTTP status) that was never
/// sent appeared in the history and the count. `Finish::DeadUnsent` alone does the same.
pub(crate) async fn no_attempt_left_is_dead_without_an_invented_attempt(
    factory: &impl StoreFactory,
) {
    use ccai::inbox::{AttemptResult, CallbackConsumer, Dispatcher, InboxEvent, RetrySchedule};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_numbered(store.as_ref(), "short", 2).await;
    let failure = |t| {
        AttemptRecord::new(t, Duration::from_millis(3), AttemptOutcome::Failure)
            .http_status(500)
            .error("HTTP 500")
    };
    // Two real failures each, retried at once.
    for _ in 0..2 {
        for lease in claim_leases(store.as_ref(), "earlier", 60, 2, SystemTime::now()).await {
            let t = SystemTime::now();
            assert_eq!(
                store.finish(&lease, Finish::RetryAt(t), failure(t)).await,
                Ok(true)
            );
        }
    }

    // The store alone: dead, nothing counted or recorded but the reason.
    let c = claim_oldest(store.as_ref(), "w", 60, SystemTime::now()).await;
    assert_eq!((c.event_hash.as_str(), c.attempt), ("short0", 3));
    let reason = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Failure)
        .error("no attempt left");
    assert_eq!(
        store.finish(&c.lease, Finish::DeadUnsent, reason).await,
        Ok(true)
    );
    let detail = store.get("short0").await.expect("get").expect("stored");
    let state = &detail.summary.deliveries[0];
    assert_eq!((state.status, state.attempts), (DeliveryStatus::Dead, 2));
    assert_eq!(state.last_error.as_deref(), Some("no attempt left"));
    assert_eq!(detail.attempts.len(), 2, "{:?}", detail.attempts);
    assert!(detail.attempts.iter().all(|a| a.http_status == Some(500)));

    // The dispatcher with a schedule allowing two attempts: the consumer is never called.
    let calls = Arc::new(AtomicUsize::new(0));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = {
        let calls = Arc::clone(&calls);
        let reports = Arc::clone(&reports);
        Dispatcher::builder(
            Arc::clone(&store),
            CallbackConsumer::new(move |_event: InboxEvent| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok::<(), std::io::Error>(()) }
            }),
        )
        .retry_schedule("1s".parse::<RetrySchedule>().expect("schedule").jitter(0.0))
        .poll_interval(Duration::from_millis(20))
        .on_attempt(move |report: &ccai::inbox::AttemptReport| {
            reports.lock().unwrap().push(report.clone())
        })
        .start()
    };
    let limit = std::time::Instant::now() + Duration::from_secs(15);
    while status_of(&*store, "short1").await != DeliveryStatus::Dead {
        assert!(std::time::Instant::now() < limit, "short1 never went dead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dispatcher.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no attempt is left to make"
    );
    let detail = store.get("short1").await.expect("get").expect("stored");
    let state = &detail.summary.deliveries[0];
    assert_eq!(state.attempts, 2, "no attempt was made");
    assert_eq!(detail.attempts.len(), 2, "{:?}", detail.attempts);
    assert!(detail.attempts.iter().all(|a| a.http_status == Some(500)));
    let last_error = state.last_error.clone().unwrap_or_default();
    assert!(
        last_error.contains("no attempt left: 2 attempts made") && last_error.contains("allows 2"),
        "{last_error}"
    );
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].attempt, 2, "the attempts made");
    assert_eq!(reports[0].result, AttemptResult::Dead);
    assert_eq!(reports[0].error.as_deref(), Some(last_error.as_str()));
}

/// A target's answer may hold any bytes, and its excerpt becomes the attempt's error: a NUL in
/// it (which PostgreSQL text cannot hold) must not make the outcome unrecordable, or the
/// delivery would wait for its lease to lapse and be sent again.
pub(crate) async fn an_error_with_a_nul_is_recorded(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("n1", "message.sent", &body_of("n1")))
        .await
        .expect("insert");
    let t = SystemTime::now();
    let c = claim_oldest(store.as_ref(), "w", 30, t).await;
    let record = AttemptRecord::new(t, Duration::from_millis(3), AttemptOutcome::Failure)
        .http_status(500)
        .error("HTTP 500: bad\0byte");
    assert_eq!(store.finish(&c.lease, Finish::Dead, record).await, Ok(true));
    let detail = store.get("n1").await.expect("get").expect("stored");
    let delivery = &detail.summary.deliveries[0];
    assert_eq!(delivery.status, DeliveryStatus::Dead);
    // Both backends store the same: the NUL replaced.
    let recorded = Some("HTTP 500: bad\u{FFFD}byte");
    assert_eq!(delivery.last_error.as_deref(), recorded);
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].error.as_deref(), recorded);
}

/// A lease whose token holds a NUL (no store issues one: a lease altered or read back from
/// elsewhere) is a stale lease: finish, extend and release answer `Ok(false)`, and the outcomes
/// recorded at the same time as its finish still count.
pub(crate) async fn a_token_with_a_nul_is_stale_and_alone(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_numbered(store.as_ref(), "z", 20).await;
    let t = SystemTime::now();
    let leases = claim_leases(store.as_ref(), "w", 60, 20, t).await;
    assert_eq!(leases.len(), 20);
    let mut bad = leases[0].clone();
    bad.token.push('\0');
    assert_eq!(
        store.extend_lease(&bad, t + Duration::from_secs(120)).await,
        Ok(false)
    );
    assert_eq!(store.release(&bad).await, Ok(false));
    let record = || AttemptRecord::new(t, Duration::from_millis(1), AttemptOutcome::Success);
    // Polled together, so that a store that records outcomes in batches gets them in one; the
    // NUL one in the middle.
    let mut finishing: Vec<_> = leases.iter().map(|l| (l, true)).collect();
    finishing.insert(10, (&bad, false));
    let answers = futures_join_all(
        finishing
            .iter()
            .map(|(lease, _)| store.finish(lease, Finish::Delivered, record())),
    )
    .await;
    for ((lease, holds), done) in finishing.iter().zip(answers) {
        assert_eq!(done, Ok(*holds), "delivery {}", lease.delivery_id);
    }
    let stats = store.stats(t).await.expect("stats");
    assert_eq!(stats.count(DeliveryStatus::Delivered), 20);
}

/// Outcomes recorded at once (a store may record them together): each delivery's lease counts
/// once, whether its holder finishes twice (both answered as recorded) or a stale holder
/// finishes beside the current one (refused).
pub(crate) async fn concurrent_outcomes_each_count_once(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_numbered(store.as_ref(), "o", 60).await;
    let t = SystemTime::now();
    // 20 claimed under short leases that lapse and are claimed again under new tokens; 40 under
    // long ones.
    let stale = claim_leases(store.as_ref(), "old", 10, 20, t).await;
    let mut current = claim_leases(store.as_ref(), "long", 60, 40, t).await;
    assert_eq!((stale.len(), current.len()), (20, 40));
    let later = t + Duration::from_secs(11);
    let again = claim_leases(store.as_ref(), "new", 60, 60, later).await;
    assert_eq!(again.len(), 20);
    current.extend(again);
    // Every current lease finished twice, every stale one once, all at the same time.
    let mut tasks = Vec::new();
    for (lease, holds) in current
        .iter()
        .flat_map(|l| [(l.clone(), true), (l.clone(), true)])
        .chain(stale.iter().map(|l| (l.clone(), false)))
    {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let record =
                AttemptRecord::new(later, Duration::from_millis(2), AttemptOutcome::Success);
            let done = store
                .finish(&lease, Finish::Delivered, record)
                .await
                .expect("finish");
            (lease.delivery_id, holds, done)
        }));
    }
    for task in tasks {
        let (id, holds, done) = task.await.expect("task");
        assert_eq!(done, holds, "delivery {id}");
    }
    let stats = store.stats(later).await.expect("stats");
    assert_eq!(stats.count(DeliveryStatus::Delivered), 60);
    // One success each, and the lapsed leases' attempts (the 20 oldest).
    for i in 0..60 {
        let hash = format!("o{i}");
        let detail = store.get(&hash).await.expect("get").expect("stored");
        let outcomes: Vec<AttemptOutcome> = detail.attempts.iter().map(|a| a.outcome).collect();
        let expected: &[AttemptOutcome] = if i < 20 {
            &[AttemptOutcome::LeaseExpired, AttemptOutcome::Success]
        } else {
            &[AttemptOutcome::Success]
        };
        assert_eq!(outcomes, expected, "{hash}");
    }
}

pub(crate) async fn attempts_are_recorded_with_bounded_errors(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("a1", "message.sent", &body_of("a1")))
        .await
        .expect("insert");
    let t = SystemTime::now();
    let c = claim_oldest(store.as_ref(), "w", 30, t).await;
    // Two-byte characters, so that 512 bytes falls inside one.
    let long = "é".repeat(2000) + "x";
    let record = AttemptRecord::new(t, Duration::from_millis(1234), AttemptOutcome::Failure)
        .http_status(503)
        .error(long);
    assert_eq!(
        store.finish(&c.lease, Finish::RetryAt(t), record).await,
        Ok(true)
    );
    // A record whose error was set directly is bounded by the store too.
    let c = claim_oldest(store.as_ref(), "w", 30, t).await;
    let mut raw = AttemptRecord::new(t, Duration::from_millis(1), AttemptOutcome::Failure);
    raw.error = Some("z".repeat(10_000));
    assert_eq!(
        store.finish(&c.lease, Finish::RetryAt(t), raw).await,
        Ok(true)
    );
    let detail = store.get("a1").await.expect("get").expect("stored");
    let last_error = detail.summary.deliveries[0].last_error.as_deref();
    assert_eq!(last_error.map(str::len), Some(ERROR_EXCERPT_LIMIT));
    let c = claim_oldest(store.as_ref(), "w", 30, t).await;
    let ok = AttemptRecord::new(
        t + Duration::from_secs(1),
        Duration::from_millis(7),
        AttemptOutcome::Success,
    )
    .http_status(204);
    assert_eq!(
        store.finish(&c.lease, Finish::Delivered, ok).await,
        Ok(true)
    );
    let detail = store.get("a1").await.expect("get").expect("stored");
    assert_eq!(detail.attempts.len(), 3);
    let raw_error = detail.attempts[1].error.as_deref().expect("error kept");
    assert_eq!(raw_error.len(), ERROR_EXCERPT_LIMIT);
    assert_eq!(
        detail.summary.deliveries[0].last_error, None,
        "a success clears the last error"
    );
    let failed = &detail.attempts[0];
    assert_eq!(failed.outcome, AttemptOutcome::Failure);
    assert_eq!(failed.http_status, Some(503));
    assert_eq!(failed.duration, Duration::from_millis(1234));
    let error = failed.error.as_deref().expect("error kept");
    assert!(
        error.len() <= ERROR_EXCERPT_LIMIT && error.len() >= ERROR_EXCERPT_LIMIT - 1,
        "{}",
        error.len()
    );
    assert!(error.chars().all(|c| c == 'é'));
    let succeeded = &detail.attempts[2];
    assert_eq!(
        (
            succeeded.outcome,
            succeeded.http_status,
            succeeded.error.as_deref()
        ),
        (AttemptOutcome::Success, Some(204), None)
    );
    assert_eq!(
        detail.summary.deliveries[0].status,
        DeliveryStatus::Delivered
    );
    assert!(detail.summary.deliveries[0].delivered_at.is_some());
}

/// Stores `n` events `l0..l{n-1}`, received one second apart (the last newest), alternating
/// `message.sent` and `message.incoming`.
async fn fill(store: &dyn Store, n: usize, t: SystemTime) {
    for i in 0..n {
        let hash = format!("l{i}");
        let event_type = if i % 2 == 0 {
            "message.sent"
        } else {
            "message.incoming"
        };
        let body = format!(
            r#"{{"eventType":"{event_type}","eventHash":"{hash}","data":{{"Message":"note {i} marker{}"}}}}"#,
            i % 3
        );
        let d =
            delivery(&hash, event_type, &body).received_at(t - Duration::from_secs((n - i) as u64));
        store.insert(d).await.expect("insert");
    }
}

/// `time` cut to whole milliseconds.
fn whole_ms(time: SystemTime) -> SystemTime {
    let since_epoch = time.duration_since(UNIX_EPOCH).expect("after 1970");
    UNIX_EPOCH + Duration::from_millis(u64::try_from(since_epoch.as_millis()).expect("ms"))
}

fn hashes(page: &ccai::inbox::Page) -> Vec<String> {
    page.events.iter().map(|e| e.event_hash.clone()).collect()
}

/// Stored times are whole milliseconds; a bound with a fraction (`--since 1h` is computed from
/// `now()`) still keeps `since` inclusive and `until` exclusive: an event received at `m` is
/// before `m + 0.5 ms`.
pub(crate) async fn time_bounds_with_a_fraction_of_a_millisecond(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
    store
        .insert(NewDelivery::new("1231", "ms", "message.sent", &b"{}"[..]).received_at(at))
        .await
        .expect("insert");
    let half = at + Duration::from_micros(500);
    let listed = |filter: ListFilter| {
        let store = Arc::clone(&store);
        async move {
            hashes(
                &store
                    .list(ListRequest::new(filter, 10))
                    .await
                    .expect("list"),
            )
        }
    };
    assert_eq!(listed(ListFilter::new().until(half)).await, ["ms"]);
    assert!(listed(ListFilter::new().since(half)).await.is_empty());
    assert_eq!(listed(ListFilter::new().since(at)).await, ["ms"]);
    assert!(listed(ListFilter::new().until(at)).await.is_empty());
}

/// Stores an empty `message.sent` delivery for each (client id, hash), in that order.
async fn insert_each(store: &dyn Store, deliveries: &[(&str, &str)]) {
    for &(client, hash) in deliveries {
        store
            .insert(NewDelivery::new(client, hash, "message.sent", &b"{}"[..]))
            .await
            .expect("insert");
    }
}

/// The (client id, hash) of each event `filter` lists (the first page of 10), newest first.
async fn accounts_and_hashes(store: &dyn Store, filter: ListFilter) -> Vec<(String, String)> {
    let page = store
        .list(ListRequest::new(filter, 10))
        .await
        .expect("list");
    page.events
        .iter()
        .map(|e| (e.client_id.clone(), e.event_hash.clone()))
        .collect()
}

/// `ListFilter::event_hash` matches the events stored under exactly that hash (one per client
/// id), whether merged into the hash index or not, and nothing for a hash no event has.
pub(crate) async fn an_event_hash_filter_matches_that_hash_alone(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_each(
        &*store,
        &[
            ("1231", "h-one"),
            ("1231", "h-two"),
            ("9999", "h-one"),
            ("1231", "h-one2"),
        ],
    )
    .await;
    let listed = |filter: ListFilter| accounts_and_hashes(&*store, filter);
    assert_eq!(
        listed(ListFilter::new().event_hash("h-one")).await,
        [
            ("9999".to_owned(), "h-one".to_owned()),
            ("1231".to_owned(), "h-one".to_owned())
        ]
    );
    assert!(listed(ListFilter::new().event_hash("h-")).await.is_empty());
    assert!(listed(ListFilter::new().event_hash("h-one\0"))
        .await
        .is_empty());
    assert!(!ListFilter::new().event_hash("h-one").is_empty());
}

/// `ListFilter::hash_prefix` matches the events whose hash starts with it, compared byte for
/// byte: `%` and `_` are no wildcards, case counts, and an empty prefix is no condition.
pub(crate) async fn a_hash_prefix_filter_matches_byte_for_byte(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    insert_each(
        &*store,
        &[
            ("1231", "ab%_cd"),
            ("1231", "abXYcd"),
            ("9999", "ab%_cd"),
            ("1231", "ab%Zcd"),
            ("1231", "Ab%_cd"),
            ("1231", "é1"),
        ],
    )
    .await;
    let listed = |filter: ListFilter| accounts_and_hashes(&*store, filter);
    let pair = |client: &str, hash: &str| (client.to_owned(), hash.to_owned());
    // Newest first, every account's.
    assert_eq!(
        listed(ListFilter::new().hash_prefix("ab%_")).await,
        [pair("9999", "ab%_cd"), pair("1231", "ab%_cd")]
    );
    assert_eq!(
        listed(ListFilter::new().hash_prefix("ab%")).await,
        [
            pair("1231", "ab%Zcd"),
            pair("9999", "ab%_cd"),
            pair("1231", "ab%_cd")
        ]
    );
    assert_eq!(
        listed(ListFilter::new().hash_prefix("ab")).await.len(),
        4,
        "not the capital A"
    );
    // The whole hash is its own prefix; one byte more is none.
    assert_eq!(
        listed(ListFilter::new().hash_prefix("abXYcd").client_id("1231")).await,
        [pair("1231", "abXYcd")]
    );
    for none in ["ab%_cd_", "a_", "%", "_b", "ab_", "AB", "e", "ab%_\0"] {
        assert!(
            listed(ListFilter::new().hash_prefix(none)).await.is_empty(),
            "{none:?} matches nothing"
        );
    }
    // Beyond ASCII too.
    assert_eq!(
        listed(ListFilter::new().hash_prefix("é")).await,
        [pair("1231", "é1")]
    );
    assert_eq!(listed(ListFilter::new().hash_prefix("")).await.len(), 6);
    assert!(ListFilter::new().hash_prefix("").is_empty());
    assert!(!ListFilter::new().hash_prefix("ab").is_empty());
}

pub(crate) async fn list_filters(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    // Whole milliseconds, as the store keeps them: the bounds below fall exactly on received
    // times, and a fraction would be compared against the stored value, not the one given
    // (see `time_bounds_with_a_fraction_of_a_millisecond`).
    let t = whole_ms(SystemTime::now());
    fill(&*store, 6, t).await;
    let all = store
        .list(ListRequest::new(ListFilter::new(), 100))
        .await
        .expect("list");
    assert_eq!(hashes(&all), ["l5", "l4", "l3", "l2", "l1", "l0"]);
    assert_eq!(all.next, None);
    let newest = store.get("l5").await.expect("get").expect("stored");
    let newest_len = newest.body.as_ref().map(|b| b.len());
    assert_eq!(all.events[0].body_len, newest_len);
    assert!(newest_len > Some(60));
    let incoming = store
        .list(ListRequest::new(
            ListFilter::new().event_type("message.incoming"),
            100,
        ))
        .await
        .expect("list");
    assert_eq!(hashes(&incoming), ["l5", "l3", "l1"]);
    // l4 and l5 were received in the last 2.5 seconds.
    let recent = store
        .list(ListRequest::new(
            ListFilter::new().since(t - Duration::from_millis(2500)),
            100,
        ))
        .await
        .expect("list");
    assert_eq!(hashes(&recent), ["l5", "l4"]);
    let window = store
        .list(ListRequest::new(
            ListFilter::new()
                .since(t - Duration::from_secs(5))
                .until(t - Duration::from_secs(2)),
            100,
        ))
        .await
        .expect("list");
    assert_eq!(hashes(&window), ["l3", "l2", "l1"]);
    let text = store
        .list(ListRequest::new(ListFilter::new().text("marker1"), 100))
        .await
        .expect("list");
    assert_eq!(hashes(&text), ["l4", "l1"]);
    // Status: deliver l2.
    let c = store
        .claim("default", lease("w", 30), 6, t)
        .await
        .expect("claim");
    for claimed in &c {
        let finish = if claimed.event_hash == "l2" {
            Finish::Delivered
        } else {
            Finish::RetryAt(t)
        };
        let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success);
        store
            .finish(&claimed.lease, finish, record)
            .await
            .expect("finish");
    }
    let delivered = store
        .list(ListRequest::new(
            ListFilter::new().status(DeliveryStatus::Delivered),
            100,
        ))
        .await
        .expect("list");
    assert_eq!(hashes(&delivered), ["l2"]);
    let combined = store
        .list(ListRequest::new(
            ListFilter::new()
                .status(DeliveryStatus::Pending)
                .event_type("message.sent")
                .text("marker"),
            100,
        ))
        .await
        .expect("list");
    assert_eq!(hashes(&combined), ["l4", "l0"]);
}

pub(crate) async fn pagination_is_stable_while_events_arrive(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let t = SystemTime::now();
    fill(&*store, 7, t).await;
    let filter = ListFilter::new();
    let first = store
        .list(ListRequest::new(filter.clone(), 3))
        .await
        .expect("list");
    assert_eq!(hashes(&first), ["l6", "l5", "l4"]);
    let cursor = first.next.expect("more pages");
    assert_eq!(ccai::inbox::Cursor::decode(&cursor.encode()), Some(cursor));
    // New events arrive between pages: they do not shift the pages after the first.
    for i in 0..3 {
        let hash = format!("new{i}");
        store
            .insert(delivery(&hash, "message.sent", &body_of(&hash)))
            .await
            .expect("insert");
    }
    let second = store
        .list(ListRequest::new(filter.clone(), 3).after(Some(cursor)))
        .await
        .expect("list");
    assert_eq!(hashes(&second), ["l3", "l2", "l1"]);
    let third = store
        .list(ListRequest::new(filter.clone(), 3).after(second.next))
        .await
        .expect("list");
    assert_eq!(hashes(&third), ["l0"]);
    assert_eq!(third.next, None);
    let fresh = store.list(ListRequest::new(filter, 3)).await.expect("list");
    assert_eq!(hashes(&fresh), ["new2", "new1", "new0"]);
}

pub(crate) async fn replay_by_hash_and_by_filter(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let t = SystemTime::now();
    fill(&*store, 4, t).await;
    let claimed = store
        .claim("default", lease("w", 30), 4, t)
        .await
        .expect("claim");
    for c in &claimed {
        let record =
            AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success).http_status(200);
        store
            .finish(&c.lease, Finish::Delivered, record)
            .await
            .expect("finish");
    }
    assert_eq!(
        store.replay(ReplayTarget::Filter(ListFilter::new())).await,
        Err(StoreError::InvalidRequest(
            "a bulk replay needs a non-empty filter (status, type, time range or text)".into()
        ))
    );
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("l1".into()))
            .await
            .map(|r| r.due),
        Ok(1)
    );
    let detail = store.get("l1").await.expect("get").expect("stored");
    let state = &detail.summary.deliveries[0];
    assert_eq!(state.status, DeliveryStatus::Pending);
    // A finished delivery starts its schedule over; its attempt records stay.
    assert_eq!(state.attempts, 0);
    assert_eq!(detail.attempts.len(), 1, "history is kept");
    assert!(state.next_attempt_at.expect("due") <= SystemTime::now());
    // Due now: claimable, as a first attempt (a replay is never out of attempts).
    let again = store
        .claim("default", lease("w", 30), 4, SystemTime::now())
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].event_hash.as_str(), again[0].attempt), ("l1", 1));
    // In progress: not replayed.
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("l1".into()))
            .await
            .map(|r| r.due),
        Ok(0)
    );
    // Dead after the replay, replayed again: a first attempt again, three records in all.
    let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Failure).error("gone");
    store
        .finish(&again[0].lease, Finish::Dead, record)
        .await
        .expect("finish");
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("l1".into()))
            .await
            .map(|r| r.due),
        Ok(1)
    );
    let third = store
        .claim("default", lease("w", 30), 4, SystemTime::now())
        .await
        .expect("claim");
    assert_eq!((third[0].event_hash.as_str(), third[0].attempt), ("l1", 1));
    let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success);
    store
        .finish(&third[0].lease, Finish::Delivered, record)
        .await
        .expect("finish");
    let detail = store.get("l1").await.expect("get").expect("stored");
    assert_eq!(detail.attempts.len(), 3);
    assert_eq!(detail.summary.deliveries[0].attempts, 1);
    // A pending delivery keeps its count: a replay makes it due now, no more.
    store
        .insert(delivery("p1", "message.sent", &body_of("p1")))
        .await
        .expect("insert");
    let first = store
        .claim("default", lease("w", 30), 4, SystemTime::now())
        .await
        .expect("claim");
    assert_eq!((first[0].event_hash.as_str(), first[0].attempt), ("p1", 1));
    let later = SystemTime::now() + Duration::from_secs(3600);
    let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Failure).error("down");
    store
        .finish(&first[0].lease, Finish::RetryAt(later), record)
        .await
        .expect("finish");
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("p1".into()))
            .await
            .map(|r| r.due),
        Ok(1)
    );
    let retried = store
        .claim("default", lease("w", 30), 4, SystemTime::now())
        .await
        .expect("claim");
    assert_eq!(
        (retried[0].event_hash.as_str(), retried[0].attempt),
        ("p1", 2)
    );
    // By filter: the delivered message.sent events (l0, l2).
    let filter = ListFilter::new()
        .event_type("message.sent")
        .status(DeliveryStatus::Delivered);
    assert_eq!(
        store
            .replay(ReplayTarget::Filter(filter))
            .await
            .map(|r| r.due),
        Ok(2)
    );
    assert_eq!(status_of(&*store, "l0").await, DeliveryStatus::Pending);
    assert_eq!(status_of(&*store, "l3").await, DeliveryStatus::Delivered);
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("unknown".into()))
            .await
            .map(|r| r.due),
        Ok(0)
    );
}

pub(crate) async fn requeue_dead_starts_the_schedule_over(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let t = SystemTime::now();
    fill(&*store, 3, t).await;
    let claimed = store
        .claim("default", lease("w", 30), 3, t)
        .await
        .expect("claim");
    for c in &claimed {
        let finish = if c.event_hash == "l2" {
            Finish::Delivered
        } else {
            Finish::Dead
        };
        let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Failure).error("gone");
        store
            .finish(&c.lease, finish, record)
            .await
            .expect("finish");
    }
    assert_eq!(
        store
            .requeue_dead(ListFilter::new().event_type("message.incoming"))
            .await
            .map(|r| r.due),
        Ok(1)
    );
    let detail = store.get("l1").await.expect("get").expect("stored");
    assert_eq!(detail.summary.deliveries[0].status, DeliveryStatus::Pending);
    assert_eq!(detail.summary.deliveries[0].attempts, 0);
    assert_eq!(detail.attempts.len(), 1, "history is kept");
    assert_eq!(status_of(&*store, "l0").await, DeliveryStatus::Dead);
    assert_eq!(
        store.requeue_dead(ListFilter::new()).await.map(|r| r.due),
        Ok(1)
    );
    assert_eq!(status_of(&*store, "l0").await, DeliveryStatus::Pending);
    assert_eq!(status_of(&*store, "l2").await, DeliveryStatus::Delivered);
    let again = store
        .claim("default", lease("w", 30), 3, SystemTime::now())
        .await
        .expect("claim");
    assert!(again.iter().all(|c| c.attempt == 1));
    assert_eq!(again.len(), 2);
}

/// A replay or a requeue of the dead says how many events matching it left as they were for
/// their purged body (nothing to send), beside the deliveries it made due: a caller told "0
/// replayed" could not tell that from nothing matching.
pub(crate) async fn a_replay_counts_the_events_left_for_their_purged_body(
    factory: &impl StoreFactory,
) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    for (hash, days) in [("p-dead", 40), ("p-done", 40), ("kept-done", 1)] {
        let aged = delivery(hash, "message.sent", &body_of(hash)).received_at(now - day * days);
        store.insert(aged).await.expect("insert");
    }
    for c in store
        .claim("default", lease("w", 30), 10, now)
        .await
        .expect("claim")
    {
        let finish = if c.event_hash == "p-dead" {
            Finish::Dead
        } else {
            Finish::Delivered
        };
        let record = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Failure);
        assert_eq!(store.finish(&c.lease, finish, record).await, Ok(true));
    }
    let purged = store
        .purge(Retention::new(30 * day, 1000 * day), now)
        .await
        .expect("purge");
    assert_eq!(purged.bodies_purged, 2);
    let counts = |r: ccai::inbox::ReplayReport| (r.due, r.purged);

    let by_hash = store.replay(ReplayTarget::Hash("p-done".into())).await;
    assert_eq!(by_hash.map(counts), Ok((0, 1)));
    let delivered = ListFilter::new().status(DeliveryStatus::Delivered);
    let by_status = store.replay(ReplayTarget::Filter(delivered)).await;
    assert_eq!(
        by_status.map(counts),
        Ok((1, 1)),
        "kept-done due, p-done left"
    );
    let requeued = store.requeue_dead(ListFilter::new()).await;
    assert_eq!(requeued.map(counts), Ok((0, 1)), "p-dead left");
    let by_type = ListFilter::new().event_type("message.sent");
    let by_type = store.replay(ReplayTarget::Filter(by_type)).await;
    assert_eq!(by_type.map(counts), Ok((1, 2)));
    let unknown = store.replay(ReplayTarget::Hash("unknown".into())).await;
    assert_eq!(unknown.map(counts), Ok((0, 0)));
    assert_eq!(
        status_of(&*store, "p-done").await,
        DeliveryStatus::Delivered
    );
    assert_eq!(status_of(&*store, "p-dead").await, DeliveryStatus::Dead);
    assert_eq!(
        status_of(&*store, "kept-done").await,
        DeliveryStatus::Pending
    );
}

/// A replay or a requeue of the dead by text (which the SQLite store searches for before it
/// writes) makes due what one by any other filter would: no delivery in progress, the filter's
/// status and type alone, the dead alone for a requeue; a pending delivery keeps its count.
pub(crate) async fn a_replay_or_requeue_by_text_keeps_the_status_rules(
    factory: &impl StoreFactory,
) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let events = [
        ("n-done", "message.incoming", Finish::Delivered),
        ("n-dead", "message.incoming", Finish::Dead),
        ("n-dead-sent", "message.sent", Finish::Dead),
        (
            "n-retry",
            "message.incoming",
            Finish::RetryAt(SystemTime::now() + Duration::from_secs(3600)),
        ),
        // Left in progress.
        ("n-busy", "message.incoming", Finish::Delivered),
        ("other", "message.incoming", Finish::Dead),
    ];
    for (hash, event_type, _) in &events {
        let word = if *hash == "other" {
            "haystack"
        } else {
            "needle"
        };
        let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"a {word}"}}}}"#);
        store
            .insert(delivery(hash, event_type, &body))
            .await
            .expect("insert");
    }
    let now = SystemTime::now();
    for c in store
        .claim("default", lease("w", 300), 10, now)
        .await
        .expect("claim")
    {
        let (_, _, finish) = events
            .iter()
            .find(|(hash, _, _)| *hash == c.event_hash)
            .expect("one of them");
        if c.event_hash != "n-busy" {
            let record = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Failure);
            assert_eq!(store.finish(&c.lease, *finish, record).await, Ok(true));
        }
    }
    let needle = || ListFilter::new().text("needle");
    let counts = |r: ccai::inbox::ReplayReport| (r.due, r.purged);

    let requeued = store
        .requeue_dead(needle().event_type("message.incoming"))
        .await;
    assert_eq!(requeued.map(counts), Ok((1, 0)), "n-dead alone");
    assert_eq!(status_of(&*store, "n-dead").await, DeliveryStatus::Pending);
    assert_eq!(
        status_of(&*store, "n-dead-sent").await,
        DeliveryStatus::Dead
    );
    assert_eq!(status_of(&*store, "other").await, DeliveryStatus::Dead);

    let delivered = needle().status(DeliveryStatus::Delivered);
    let replayed = store.replay(ReplayTarget::Filter(delivered)).await;
    assert_eq!(replayed.map(counts), Ok((1, 0)), "n-done alone");
    assert_eq!(status_of(&*store, "n-done").await, DeliveryStatus::Pending);

    // Every one but the one in progress, and the one without the text.
    let replayed = store.replay(ReplayTarget::Filter(needle())).await;
    assert_eq!(replayed.map(counts), Ok((4, 0)));
    for hash in ["n-done", "n-dead", "n-dead-sent", "n-retry"] {
        let detail = store.get(hash).await.expect("get").expect("stored");
        let state = &detail.summary.deliveries[0];
        assert_eq!(state.status, DeliveryStatus::Pending, "{hash}");
        assert!(
            state.next_attempt_at.expect("due") <= SystemTime::now(),
            "{hash}"
        );
        // A pending delivery keeps its count; a finished one starts its schedule over.
        let attempts = if hash == "n-retry" { 1 } else { 0 };
        assert_eq!(state.attempts, attempts, "{hash}");
    }
    assert_eq!(
        status_of(&*store, "n-busy").await,
        DeliveryStatus::InProgress
    );
    assert_eq!(status_of(&*store, "other").await, DeliveryStatus::Dead);
}

pub(crate) async fn purge_nulls_bodies_then_deletes_rows(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let aged = |hash: &str, days: u32| {
        delivery(hash, "message.sent", &body_of(hash)).received_at(now - day * days)
    };
    for (hash, days) in [
        ("old-done", 100),
        ("mid-done", 40),
        ("new-done", 1),
        ("old-pending", 100),
    ] {
        store.insert(aged(hash, days)).await.expect("insert");
    }
    let claimed = store
        .claim("default", lease("w", 30), 10, now)
        .await
        .expect("claim");
    for c in claimed {
        let finish = if c.event_hash == "old-pending" {
            Finish::RetryAt(now + day)
        } else {
            Finish::Delivered
        };
        let record = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Success);
        store
            .finish(&c.lease, finish, record)
            .await
            .expect("finish");
    }
    // Bodies only (rows kept 1000 days): old finished bodies go, the pending one stays.
    let report = store
        .purge(Retention::new(30 * day, 1000 * day), now)
        .await
        .expect("purge");
    assert_eq!((report.bodies_purged, report.events_deleted), (2, 0));
    let mid = store.get("mid-done").await.expect("get").expect("row kept");
    assert_eq!(mid.body, None);
    assert_eq!(mid.summary.body_len, None);
    assert!(store
        .get("new-done")
        .await
        .expect("get")
        .expect("kept")
        .body
        .is_some());
    assert!(store
        .get("old-pending")
        .await
        .expect("get")
        .expect("kept")
        .body
        .is_some());
    // A late retry of a purged event is still a duplicate while its row lives.
    assert_eq!(
        store.insert(aged("mid-done", 40)).await,
        Ok(Inserted::Duplicate)
    );
    // An event whose body was purged has nothing to send: it is not replayed, nor requeued.
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("mid-done".into()))
            .await
            .map(|r| r.due),
        Ok(0)
    );
    assert_eq!(
        status_of(&*store, "mid-done").await,
        DeliveryStatus::Delivered
    );
    // The text filter never matches a purged body.
    let found = store
        .list(ListRequest::new(ListFilter::new().text("mid-done"), 10))
        .await
        .expect("list");
    assert!(found.events.is_empty());
    // Defaults: bodies 30 days, rows 90 days.
    let report = store.purge(Retention::default(), now).await.expect("purge");
    assert_eq!((report.bodies_purged, report.events_deleted), (0, 1));
    assert!(store.get("old-done").await.expect("get").is_none());
    assert!(
        store.get("old-pending").await.expect("get").is_some(),
        "pending work is never purged"
    );
    assert!(store.get("mid-done").await.expect("get").is_some());
    // Once the row is gone, the hash is new again.
    assert_eq!(store.insert(aged("old-done", 100)).await, Ok(Inserted::New));
}

pub(crate) async fn stats_count_statuses_and_age(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let empty = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(empty.events, 0);
    assert_eq!(empty.oldest_pending_age, None);
    assert_eq!(empty.count(DeliveryStatus::Pending), 0);
    let t = SystemTime::now();
    fill(&*store, 4, t).await; // received 4, 3, 2, 1 seconds before t
    store
        .insert(delivery("l0", "message.sent", "different"))
        .await
        .expect("conflict");
    let claimed = store
        .claim("default", lease("w", 30), 2, t)
        .await
        .expect("claim");
    let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success);
    store
        .finish(&claimed[0].lease, Finish::Delivered, record.clone())
        .await
        .expect("finish");
    store
        .finish(&claimed[1].lease, Finish::Dead, record)
        .await
        .expect("finish");
    let one_in_progress = store
        .claim("default", lease("w", 30), 1, t)
        .await
        .expect("claim");
    assert_eq!(one_in_progress.len(), 1);
    let stats = store
        .stats(t + Duration::from_secs(10))
        .await
        .expect("stats");
    assert_eq!(stats.events, 4);
    assert_eq!(stats.conflicts, 1);
    assert_eq!(stats.duplicates, 0);
    assert_eq!(by_status(&stats), [1, 1, 1, 1]);
    // The pending one is l3, received 1 s before t.
    let age = stats.oldest_pending_age.expect("a pending delivery");
    assert!(
        age >= Duration::from_millis(10_900) && age <= Duration::from_millis(11_100),
        "{age:?}"
    );
}

/// Stats over two destinations with deliveries in every status: each status counted, and the
/// oldest pending the first stored event with a pending delivery to either destination.
pub(crate) async fn stats_with_several_destinations(factory: &impl StoreFactory) {
    let instance = factory
        .create(Config {
            destinations: vec!["a".into(), "b".into()],
            ..Config::default()
        })
        .await;
    let store = instance.store();
    let t = SystemTime::now();
    for i in 0..4u64 {
        let hash = format!("m{i}");
        let received = t - Duration::from_secs(100 - 10 * i);
        store
            .insert(delivery(&hash, "message.sent", &body_of(&hash)).received_at(received))
            .await
            .expect("insert");
    }
    let record = || AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success);
    let age = |stats: &ccai::inbox::Stats| {
        stats
            .oldest_pending_age
            .map(|age| age.as_secs_f64().round() as u64)
    };
    // m0 to a: delivered; m1 to a: dead; m2 to a: in progress; m0 to b stays pending.
    let a = store.claim("a", lease("w", 60), 3, t).await.expect("claim");
    assert_eq!(a.len(), 3);
    let finished = [Finish::Delivered, Finish::Dead];
    for (claimed, finish) in a.iter().zip(finished) {
        assert_eq!(
            store.finish(&claimed.lease, finish, record()).await,
            Ok(true)
        );
    }
    let stats = store.stats(t).await.expect("stats");
    assert_eq!(stats.events, 4);
    assert_eq!(by_status(&stats), [5, 1, 1, 1]);
    assert_eq!(age(&stats), Some(100), "m0's delivery to b");
    // Every delivery of m0 and m1 finished: m2's to b is the oldest pending (its delivery to a
    // is in progress).
    let b = store.claim("b", lease("w", 60), 2, t).await.expect("claim");
    assert_eq!(b.len(), 2);
    for claimed in &b {
        assert_eq!(
            store
                .finish(&claimed.lease, Finish::Delivered, record())
                .await,
            Ok(true)
        );
    }
    let stats = store.stats(t).await.expect("stats");
    assert_eq!(by_status(&stats), [3, 1, 3, 1]);
    assert_eq!(age(&stats), Some(80), "m2's delivery to b");
}

/// `Store::destinations`: the destinations with deliveries, each once, sorted, whatever their
/// status (what a dispatcher checks its own against when it starts).
pub(crate) async fn destinations_are_those_with_deliveries(factory: &impl StoreFactory) {
    let instance = factory
        .create(Config {
            destinations: vec!["crm".into(), "archive".into(), "Zed".into()],
            ..Config::default()
        })
        .await;
    let store = instance.store();
    // None yet: an empty store cannot tell a typo.
    assert_eq!(store.destinations().await, Ok(Vec::<String>::new()));
    for hash in ["d1", "d2"] {
        store
            .insert(delivery(hash, "message.sent", &body_of(hash)))
            .await
            .expect("insert");
    }
    // A finished delivery still counts.
    let t = SystemTime::now();
    let crm = store
        .claim("crm", lease("w", 30), 5, t)
        .await
        .expect("claim");
    for claimed in &crm {
        let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success);
        assert_eq!(
            store
                .finish(&claimed.lease, Finish::Delivered, record)
                .await,
            Ok(true)
        );
    }
    // Sorted by bytes: upper case first.
    assert_eq!(
        store.destinations().await,
        Ok(vec![
            "Zed".to_owned(),
            "archive".to_owned(),
            "crm".to_owned()
        ])
    );
}

pub(crate) async fn one_delivery_per_destination(factory: &impl StoreFactory) {
    let instance = factory
        .create(Config {
            destinations: vec!["archive".into(), "crm".into()],
            ..Config::default()
        })
        .await;
    let store = instance.store();
    store
        .insert(delivery("f1", "message.sent", &body_of("f1")))
        .await
        .expect("insert");
    let t = SystemTime::now();
    let crm = store
        .claim("crm", lease("w", 30), 5, t)
        .await
        .expect("claim");
    assert_eq!(crm.len(), 1);
    assert_eq!(crm[0].destination, "crm");
    let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success);
    store
        .finish(&crm[0].lease, Finish::Delivered, record)
        .await
        .expect("finish");
    let detail = store.get("f1").await.expect("get").expect("stored");
    let states: Vec<(&str, DeliveryStatus)> = detail
        .summary
        .deliveries
        .iter()
        .map(|d| (d.destination.as_str(), d.status))
        .collect();
    assert_eq!(
        states,
        [
            ("archive", DeliveryStatus::Pending),
            ("crm", DeliveryStatus::Delivered)
        ]
    );
    assert_eq!(
        store
            .claim("archive", lease("w", 30), 5, t)
            .await
            .expect("claim")
            .len(),
        1
    );
}

/// A replay starts a delivery's schedule over (`attempts` back to 0) but keeps its attempt
/// records, and the list's `total_attempts` counts them all, per destination: what `get` lists.
/// (`ccai events list` showed the count of the current schedule, as if earlier attempts had
/// vanished, while `ccai events show` listed them.)
pub(crate) async fn a_list_counts_every_attempt_recorded(factory: &impl StoreFactory) {
    let instance = factory
        .create(Config {
            destinations: vec!["archive".into(), "crm".into()],
            ..Config::default()
        })
        .await;
    let store = instance.store();
    store
        .insert(delivery("t1", "message.sent", &body_of("t1")))
        .await
        .expect("insert");
    let t = SystemTime::now();
    // crm: a failure (retried at once), then delivered; replayed; a failure again. archive: one
    // success, replayed.
    let attempt = |destination: &'static str| {
        let store = &store;
        async move {
            store
                .claim(destination, lease("w", 30), 1, SystemTime::now())
                .await
                .expect("claim")
                .pop()
                .expect("t1 due")
        }
    };
    let failed = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Failure).error("down");
    let ok = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success).http_status(200);
    let c = attempt("crm").await;
    let retry = Finish::RetryAt(SystemTime::now());
    store
        .finish(&c.lease, retry, failed.clone())
        .await
        .expect("finish");
    let c = attempt("crm").await;
    store
        .finish(&c.lease, Finish::Delivered, ok.clone())
        .await
        .expect("finish");
    let a = attempt("archive").await;
    store
        .finish(&a.lease, Finish::Delivered, ok)
        .await
        .expect("finish");
    let replayed = store
        .replay(ReplayTarget::Filter(
            ListFilter::new().event_hash("t1").client_id(CLIENT),
        ))
        .await
        .expect("replay");
    assert_eq!(replayed.due, 2);
    let c = attempt("crm").await;
    assert_eq!(c.attempt, 1, "a replay starts the schedule over");
    let later = SystemTime::now() + Duration::from_secs(3600);
    store
        .finish(&c.lease, Finish::RetryAt(later), failed)
        .await
        .expect("finish");
    // Never attempted.
    store
        .insert(delivery("t0", "message.sent", &body_of("t0")))
        .await
        .expect("insert");

    let counts = |deliveries: &[DeliveryState]| -> Vec<(String, u32, u32)> {
        deliveries
            .iter()
            .map(|d| (d.destination.clone(), d.attempts, d.total_attempts))
            .collect()
    };
    let page = store
        .list(ListRequest::new(ListFilter::new(), 10))
        .await
        .expect("list");
    assert_eq!(hashes(&page), ["t0", "t1"]);
    let expected = vec![("archive".to_owned(), 0, 1), ("crm".to_owned(), 1, 3)];
    assert_eq!(counts(&page.events[1].deliveries), expected);
    assert_eq!(
        counts(&page.events[0].deliveries),
        [("archive".to_owned(), 0, 0), ("crm".to_owned(), 0, 0)]
    );
    let detail = store.get("t1").await.expect("get").expect("stored");
    assert_eq!(counts(&detail.summary.deliveries), expected);
    for (destination, _, total) in &expected {
        let listed = detail
            .attempts
            .iter()
            .filter(|a| &a.destination == destination)
            .count();
        assert_eq!(
            listed, *total as usize,
            "{destination}: as many as get lists"
        );
    }
}

/// A destination named twice is one destination (it used to make every SQLite insert fail).
pub(crate) async fn a_destination_named_twice_is_one(factory: &impl StoreFactory) {
    let instance = factory
        .create(Config {
            destinations: vec!["a".into(), "a".into(), "b".into()],
            ..Config::default()
        })
        .await;
    let store = instance.store();
    store
        .insert(delivery("x", "message.sent", &body_of("x")))
        .await
        .expect("insert");
    let stored = store.get("x").await.expect("get").expect("stored");
    assert_eq!(stored.summary.deliveries.len(), 2);
}

/// A lease or an attempt of `Duration::MAX` saturates: it panicked in SQLite's writer thread
/// (which then failed every insert) and in PostgreSQL's claim and finish.
pub(crate) async fn a_huge_lease_or_duration_saturates(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("big-lease", "message.sent", &body_of("big-lease")))
        .await
        .expect("insert");
    let claimed = store
        .claim(
            "default",
            LeaseRequest::new("w", Duration::MAX),
            10,
            SystemTime::now(),
        )
        .await
        .expect("claim with a huge lease");
    assert_eq!(claimed.len(), 1);
    let record = AttemptRecord::new(SystemTime::now(), Duration::MAX, AttemptOutcome::Success);
    assert!(store
        .finish(&claimed[0].lease, Finish::Delivered, record)
        .await
        .expect("finish with a huge duration"));
    assert_eq!(
        status_of(store.as_ref(), "big-lease").await,
        DeliveryStatus::Delivered
    );
    // The store still takes writes.
    assert_eq!(
        store
            .insert(delivery("after", "message.sent", &body_of("after")))
            .await
            .expect("insert after"),
        Inserted::New
    );
}

/// `text("")` matches every body, so it does not count as a filter: a bulk replay with it is
/// refused (it used to replay everything), and a list with it shows what a list without it
/// shows, events whose body was purged included (it used to hide them).
pub(crate) async fn an_empty_text_filter_is_no_filter(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("a", "message.sent", &body_of("a")))
        .await
        .expect("insert");
    let err = store
        .replay(ReplayTarget::Filter(ListFilter::new().text("")))
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::InvalidRequest(_)), "{err:?}");

    let now = SystemTime::now();
    let claimed = store
        .claim("default", lease("w", 30), 10, now)
        .await
        .expect("claim");
    for c in claimed {
        let record = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Success);
        store
            .finish(&c.lease, Finish::Delivered, record)
            .await
            .expect("finish");
    }
    let day = Duration::from_secs(86_400);
    let later = now + Duration::from_secs(1);
    let report = store
        .purge(Retention::new(Duration::ZERO, 1000 * day), later)
        .await
        .expect("purge");
    assert_eq!(report.bodies_purged, 1);
    for filter in [ListFilter::new(), ListFilter::new().text("")] {
        let page = store
            .list(ListRequest::new(filter.clone(), 50))
            .await
            .expect("list");
        assert_eq!(page.events.len(), 1, "{filter:?}");
    }
}

/// A search text longer than 1,024 bytes is refused, by a list, a replay and a requeue alike,
/// before anything is searched or changed; one of 1,024 bytes (counted in bytes, not characters)
/// is searched as any other.
pub(crate) async fn a_search_text_past_the_limit_is_refused(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let at_limit = "a".repeat(1024);
    let body = format!(r#"{{"eventHash":"a","data":{{"Message":"{at_limit}"}}}}"#);
    store
        .insert(delivery("a", "message.sent", &body))
        .await
        .expect("insert");
    let now = SystemTime::now();
    for c in store
        .claim("default", lease("w", 30), 10, now)
        .await
        .expect("claim")
    {
        let record = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Success);
        assert_eq!(
            store.finish(&c.lease, Finish::Delivered, record).await,
            Ok(true)
        );
    }
    let page = store
        .list(ListRequest::new(
            ListFilter::new().text(at_limit.clone()),
            50,
        ))
        .await
        .expect("a search at the limit");
    assert_eq!(hashes(&page), ["a"]);

    // One byte more, here an `é` (two bytes) after 1,023 `a`s: 512 characters would pass.
    for too_long in [format!("{at_limit}a"), format!("{}é", "a".repeat(1023))] {
        let filter = ListFilter::new().text(too_long);
        let refused = |result: Result<_, StoreError>, what: &str| match result {
            Err(StoreError::InvalidRequest(why)) => assert!(
                why.contains("1025 bytes") && why.contains("at most 1024"),
                "{what}: {why}"
            ),
            other => panic!("{what}: {other:?}"),
        };
        refused(
            store
                .list(ListRequest::new(filter.clone(), 50))
                .await
                .map(drop),
            "list",
        );
        let by_type = filter.clone().event_type("message.sent");
        refused(
            store.replay(ReplayTarget::Filter(by_type)).await.map(drop),
            "replay",
        );
        refused(store.requeue_dead(filter).await.map(drop), "requeue");
    }
    assert_eq!(status_of(&*store, "a").await, DeliveryStatus::Delivered);
}

/// A NUL in a hash or a type to look up matches nothing, and is no error (PostgreSQL refuses
/// one as a parameter, which read as the database being unavailable, an error to retry).
pub(crate) async fn a_nul_in_a_lookup_matches_nothing(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("a", "message.sent", &body_of("a")))
        .await
        .expect("insert");
    assert!(store.get("a\0b").await.expect("get").is_none());
    let page = store
        .list(ListRequest::new(
            ListFilter::new().event_type("message\0sent"),
            50,
        ))
        .await
        .expect("list");
    assert!(page.events.is_empty());
    assert_eq!(
        store
            .replay(ReplayTarget::Hash("a\0".into()))
            .await
            .expect("replay")
            .due,
        0
    );
    assert_eq!(
        store
            .replay(ReplayTarget::Filter(
                ListFilter::new().event_type("message\0sent")
            ))
            .await
            .expect("replay by filter")
            .due,
        0
    );
    assert_eq!(
        status_of(store.as_ref(), "a").await,
        DeliveryStatus::Pending
    );
    // A claim for a destination with a NUL finds nothing (none is stored: refused at open).
    let none = store
        .claim("default\0", lease("w", 30), 10, SystemTime::now())
        .await
        .expect("claim");
    assert!(none.is_empty());
    // A lease owner with a NUL, set directly (`new` replaces it), is recorded with U+FFFD.
    let mut odd_owner = lease("w", 30);
    odd_owner.owner = "w\0x".into();
    let claimed = store
        .claim("default", odd_owner, 10, SystemTime::now())
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease.owner, "w\u{FFFD}x");
    assert_eq!(
        LeaseRequest::new("a\0b", Duration::ZERO).owner,
        "a\u{FFFD}b"
    );
}

/// Two accounts store an event under the same hash: `get_for` and a filter with the client id
/// name one of them, and replaying through that filter leaves the other account's event alone.
pub(crate) async fn one_account_s_event_by_client_id_and_hash(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    for (client, body) in [("1231", "first account"), ("9999", "second account")] {
        store
            .insert(NewDelivery::new(
                client,
                "shared",
                "message.sent",
                body.as_bytes().to_vec(),
            ))
            .await
            .expect("insert");
    }
    let body = |detail: Option<ccai::inbox::EventDetail>| {
        detail
            .expect("stored")
            .body
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    assert_eq!(
        body(store.get_for("1231", "shared").await.expect("get_for")).as_deref(),
        Some("first account")
    );
    assert_eq!(
        body(store.get_for("9999", "shared").await.expect("get_for")).as_deref(),
        Some("second account")
    );
    // `get` without an account gives the newest.
    assert_eq!(
        body(store.get("shared").await.expect("get")).as_deref(),
        Some("second account")
    );
    assert!(store
        .get_for("7777", "shared")
        .await
        .expect("get_for")
        .is_none());
    assert!(store
        .get_for("1231\0", "shared")
        .await
        .expect("get_for")
        .is_none());

    let one = ListFilter::new().client_id("1231").event_hash("shared");
    let page = store
        .list(ListRequest::new(one.clone(), 10))
        .await
        .expect("list");
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].client_id, "1231");
    let by_client = store
        .list(ListRequest::new(ListFilter::new().client_id("9999"), 10))
        .await
        .expect("list");
    assert_eq!(hashes(&by_client), ["shared"]);
    assert_eq!(by_client.events[0].client_id, "9999");
    assert!(store
        .list(ListRequest::new(ListFilter::new().client_id("9999\0"), 10))
        .await
        .expect("list")
        .events
        .is_empty());

    // Deliver both, then replay one account's event through the filter.
    let claimed = store
        .claim("default", lease("w", 60), 10, SystemTime::now())
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        let attempt = AttemptRecord::new(
            SystemTime::now(),
            Duration::from_millis(1),
            AttemptOutcome::Success,
        )
        .http_status(200);
        assert!(store
            .finish(&c.lease, Finish::Delivered, attempt)
            .await
            .expect("finish"));
    }
    assert_eq!(
        store
            .replay(ReplayTarget::Filter(one))
            .await
            .expect("replay")
            .due,
        1
    );
    let status = |detail: Option<ccai::inbox::EventDetail>| {
        detail.expect("stored").summary.deliveries[0].status
    };
    assert_eq!(
        status(store.get_for("1231", "shared").await.expect("get_for")),
        DeliveryStatus::Pending
    );
    assert_eq!(
        status(store.get_for("9999", "shared").await.expect("get_for")),
        DeliveryStatus::Delivered
    );
}

/// `oldest_first` lists in the order events were stored, and its cursor continues that order;
/// events stored meanwhile come at the end, not into pages already read.
pub(crate) async fn oldest_first_pages_in_stored_order(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    fill(&*store, 7, SystemTime::now()).await;
    let request = |after| {
        ListRequest::new(ListFilter::new(), 3)
            .oldest_first()
            .after(after)
    };
    let first = store.list(request(None)).await.expect("list");
    assert_eq!(hashes(&first), ["l0", "l1", "l2"]);
    store
        .insert(delivery("late", "message.sent", &body_of("late")))
        .await
        .expect("insert");
    let second = store.list(request(first.next)).await.expect("list");
    assert_eq!(hashes(&second), ["l3", "l4", "l5"]);
    let third = store.list(request(second.next)).await.expect("list");
    assert_eq!(hashes(&third), ["l6", "late"]);
    assert_eq!(third.next, None);
    // With a filter, the same order.
    let sent = store
        .list(ListRequest::new(ListFilter::new().event_type("message.incoming"), 10).oldest_first())
        .await
        .expect("list");
    assert_eq!(hashes(&sent), ["l1", "l3", "l5"]);
}

/// The counts of one `stats` call come from one snapshot: with one destination, deliveries per
/// status add up to the events, whichever inserts commit while it reads.
pub(crate) async fn stats_add_up_while_inserts_commit(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for round in 0..60 {
                let batch = (0..25).map(|i| {
                    let hash = format!("s{round}-{i}");
                    let store = Arc::clone(&store);
                    async move {
                        store
                            .insert(delivery(&hash, "message.sent", &body_of(&hash)))
                            .await
                            .expect("insert")
                    }
                });
                futures_join_all(batch).await;
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let stats = store.stats(SystemTime::now()).await.expect("stats");
        let deliveries: u64 = stats.deliveries.values().sum();
        assert_eq!(deliveries, stats.events, "one snapshot: {stats:?}");
        reads += 1;
    }
    writer.await.expect("writer");
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(stats.events, 1_500);
    assert_eq!(stats.count(DeliveryStatus::Pending), 1_500);
    assert!(reads > 0);
}

/// A key longer than `MAX_FIELD_LEN` or with a NUL is refused on its own, and the inserts
/// queued beside it are stored (on PostgreSQL such a row used to fail its whole batch).
pub(crate) async fn keys_no_store_can_hold_are_refused_alone(factory: &impl StoreFactory) {
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    let too_long = "k".repeat(ccai::event::MAX_FIELD_LEN + 1);
    // Past PostgreSQL's 2,704-byte index row, and not compressible below it.
    let far_too_long: String = (0..50u32).map(|i| sha256_hex(&i.to_le_bytes())).collect();
    let bad = [
        NewDelivery::new(CLIENT, far_too_long, "message.sent", &b"{}"[..]),
        NewDelivery::new(CLIENT, "bad-type", too_long.clone(), &b"{}"[..]),
        NewDelivery::new(CLIENT, "nul\0hash", "message.sent", &b"{}"[..]),
        NewDelivery::new(too_long, "bad-client", "message.sent", &b"{}"[..]),
        // After the year 9999: its first due time overflowed PostgreSQL's bigint, failing the
        // whole batch.
        NewDelivery::new(CLIENT, "far-future", "message.sent", &b"{}"[..])
            .received_at(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2)),
    ];
    let bad_count = bad.len();
    let good = (0..20).map(|i| {
        let hash = format!("good-{i}");
        delivery(&hash, "message.sent", &body_of(&hash))
    });
    let all: Vec<NewDelivery> = bad.into_iter().chain(good).collect();
    let results = futures_join_all(all.into_iter().map(|d| {
        let store = Arc::clone(&store);
        async move { store.insert(d).await }
    }))
    .await;
    for (i, result) in results.iter().enumerate() {
        if i < bad_count {
            assert!(
                matches!(result, Err(StoreError::InvalidRequest(_))),
                "bad {i}: {result:?}"
            );
        } else {
            assert!(matches!(result, Ok(Inserted::New)), "good {i}: {result:?}");
        }
    }
    // The last second of the year 9999 is taken.
    let latest = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    assert_eq!(
        store
            .insert(delivery("latest", "message.sent", "{}").received_at(latest))
            .await,
        Ok(Inserted::New)
    );
    let longest = "k".repeat(ccai::event::MAX_FIELD_LEN);
    assert!(matches!(
        store
            .insert(NewDelivery::new(
                CLIENT,
                longest.clone(),
                longest,
                &b"{}"[..]
            ))
            .await,
        Ok(Inserted::New)
    ));
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        22
    );
}

/// The HTTP method a delivery came with is stored and handed on by `claim` and `get` (POST
/// unless said otherwise).
pub(crate) async fn the_method_is_kept(factory: &impl StoreFactory) {
    use ccai::event::DeliveryMethod;
    let instance = factory.create(Config::default()).await;
    let store = instance.store();
    store
        .insert(delivery("put", "message.sent", &body_of("put")).method(DeliveryMethod::Put))
        .await
        .expect("insert");
    store
        .insert(delivery("post", "message.sent", &body_of("post")))
        .await
        .expect("insert");
    let claimed = store
        .claim("default", lease("w", 60), 10, SystemTime::now())
        .await
        .expect("claim");
    let methods: std::collections::HashMap<String, DeliveryMethod> = claimed
        .iter()
        .map(|c| (c.event_hash.clone(), c.method))
        .collect();
    assert_eq!(methods["put"], DeliveryMethod::Put);
    assert_eq!(methods["post"], DeliveryMethod::Post);
    let method = |hash: &'static str| {
        let store = Arc::clone(&store);
        async move { store.get(hash).await.expect("get").expect("stored").method }
    };
    assert_eq!(method("put").await, DeliveryMethod::Put);
    assert_eq!(method("post").await, DeliveryMethod::Post);
}

/// A store whose table lost columns outside ccai is refused on open, naming the table and the
/// columns, rather than opened to fail each command with the database's "no such column".
pub(crate) async fn a_column_dropped_outside_ccai_is_refused_naming_it(
    factory: &impl StoreFactory,
) {
    let mut instance = factory.create(Config::default()).await;
    instance
        .store()
        .insert(delivery("kept", "message.sent", &body_of("kept")))
        .await
        .expect("insert");
    let refused = instance
        .drop_columns_and_reopen("deliveries", &["last_error", "delivered_at"])
        .await
        .expect_err("a table lacks columns");
    match &refused {
        StoreError::MissingColumns { table, columns, .. } => {
            assert_eq!(table, "deliveries");
            assert_eq!(columns, &["last_error", "delivered_at"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(!refused.is_transient());
    let message = refused.to_string();
    assert!(
        message.contains(
            "was changed outside ccai: its deliveries table lacks the columns last_error, \
             delivered_at: restore it from a backup or open another store"
        ),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}
