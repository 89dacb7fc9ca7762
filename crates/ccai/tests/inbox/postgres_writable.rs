//! `PostgresStore::check_writable` probes every privilege the store's writes need (`INSERT`,
//! `UPDATE` and `DELETE` on the tables each is written with), not one table's: a role that lacks
//! any one of them fails it, saying which, where it used to pass and then fail every insert or
//! claim; a role granted exactly those (and `SELECT`) passes it and can do every write.

use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, ListFilter, NewDelivery,
    PostgresOptions, PostgresStore, ReplayTarget, Retention, Store, StoreError,
    POSTGRES_SCHEMA_VERSION,
};

use crate::postgres::{raw, TempSchema};
use crate::postgres_read_only::ReportingRole;

/// Each privilege the store's writes need beyond `SELECT`, as `(privilege, table)`.
const NEEDED: [(&str, &str); 6] = [
    ("INSERT", "events"),
    ("UPDATE", "events"),
    ("DELETE", "events"),
    ("INSERT", "deliveries"),
    ("UPDATE", "deliveries"),
    ("INSERT", "attempts"),
];

fn delivery(hash: &str) -> NewDelivery {
    NewDelivery::new(
        "1231",
        hash,
        "message.sent",
        format!("{{\"h\":\"{hash}\"}}"),
    )
}

fn options() -> PostgresOptions {
    PostgresOptions::new().listen(false)
}

/// An empty inbox in `schema`, created by the test database's own (superuser) role.
async fn created(schema: &TempSchema) {
    let store = PostgresStore::connect(&schema.url, options().schema(schema.name.clone()))
        .await
        .expect("create the inbox");
    store.close().await;
}

async fn admin(url: &str, sql: &str) {
    raw(url).await.batch_execute(sql).await.expect(sql);
}

fn attempt(outcome: AttemptOutcome) -> AttemptRecord {
    AttemptRecord::new(SystemTime::now(), Duration::ZERO, outcome)
}

/// A role granted `SELECT` and exactly [`NEEDED`] (not `UPDATE` on the version table, which only
/// a migration writes) passes the probe, and every write the store makes goes through: the probe
/// asks for nothing the store does not need.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_granted_exactly_the_writes_passes_and_can_do_every_write() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_exact");
    created(&schema).await;
    let role = ReportingRole::new(&url, &schema.name).await;
    let grants: String = NEEDED
        .iter()
        .map(|(privilege, table)| {
            format!(
                "GRANT {privilege} ON \"{}\".{table} TO \"{}\";",
                schema.name, role.name
            )
        })
        .collect();
    admin(&url, &grants).await;

    let store = PostgresStore::connect(&role.url(&url, &schema.name), options())
        .await
        .expect("connect writable");
    store.check_writable().await.expect("may write");

    for hash in ["delivered", "dead", "lapsed", "released"] {
        store.insert(delivery(hash)).await.expect("insert");
    }
    // A duplicate updates the event's counters.
    store
        .insert(delivery("delivered"))
        .await
        .expect("duplicate");
    let now = SystemTime::now();
    let short = LeaseRequest::new("w", Duration::from_secs(1));
    let claimed = store.claim("default", short, 4, now).await.expect("claim");
    assert_eq!(claimed.len(), 4);
    for claim in &claimed {
        match claim.event_hash.as_str() {
            "delivered" => {
                let done = store.finish(
                    &claim.lease,
                    Finish::Delivered,
                    attempt(AttemptOutcome::Success),
                );
                assert_eq!(done.await, Ok(true));
            }
            "dead" => {
                let done =
                    store.finish(&claim.lease, Finish::Dead, attempt(AttemptOutcome::Failure));
                assert_eq!(done.await, Ok(true));
            }
            "released" => {
                let until = now + Duration::from_secs(60);
                assert_eq!(store.extend_lease(&claim.lease, until).await, Ok(true));
                assert_eq!(store.release(&claim.lease).await, Ok(true));
            }
            _ => {}
        }
    }
    // The lease of "lapsed" ran out: claiming it again records the lapsed attempt.
    let later = now + Duration::from_secs(3600);
    let lease = LeaseRequest::new("w2", Duration::from_secs(60));
    let again = store
        .claim("default", lease, 4, later)
        .await
        .expect("claim again");
    let lapsed = again
        .iter()
        .find(|c| c.event_hash == "lapsed")
        .expect("the lapsed lease claimed again");
    assert_eq!(lapsed.attempt, 2, "the lapsed attempt counted");

    let replayed = store.replay(ReplayTarget::Hash("delivered".into())).await;
    assert_eq!(replayed.expect("replay").due, 1);
    let dead = ListFilter::new().status(DeliveryStatus::Dead);
    assert_eq!(store.requeue_dead(dead).await.expect("requeue").due, 1);
    // Finished again, "delivered" is old enough to go, with its deliveries and attempts.
    let claimed = store
        .claim(
            "default",
            LeaseRequest::new("w3", Duration::from_secs(60)),
            4,
            later,
        )
        .await
        .expect("claim the replayed");
    let replayed = claimed
        .iter()
        .find(|c| c.event_hash == "delivered")
        .expect("the replayed delivery claimed");
    let done = store.finish(
        &replayed.lease,
        Finish::Delivered,
        attempt(AttemptOutcome::Success),
    );
    assert_eq!(done.await, Ok(true));
    let retention = Retention::new(Duration::ZERO, Duration::ZERO);
    let purged = store.purge(retention, later).await.expect("purge");
    assert_eq!(purged.events_deleted, 1, "{purged:?}");
    assert!(store.get("delivered").await.expect("get").is_none());
    store.close().await;
}

/// A role that may do everything but one of [`NEEDED`] fails the probe with
/// [`StoreError::NotWritable`], which names the table and the privilege; granted it back, it
/// passes. Before, only the version table was probed, and such a role passed.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_lacks_any_one_write_fails_the_probe_naming_it() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_lacks");
    created(&schema).await;
    let role = ReportingRole::new(&url, &schema.name).await;
    let (s, r) = (&schema.name, &role.name);
    admin(
        &url,
        &format!("GRANT ALL ON ALL TABLES IN SCHEMA \"{s}\" TO \"{r}\""),
    )
    .await;
    let store = PostgresStore::connect(&role.url(&url, s), options())
        .await
        .expect("connect writable");
    store.check_writable().await.expect("may write everything");

    for (privilege, table) in NEEDED {
        admin(
            &url,
            &format!("REVOKE {privilege} ON \"{s}\".{table} FROM \"{r}\""),
        )
        .await;
        match store.check_writable().await {
            Err(StoreError::NotWritable { path, reason }) => {
                assert!(
                    path.contains(r.as_str()) && path.contains(s.as_str()),
                    "{path}"
                );
                assert!(
                    reason.contains(&format!("permission denied for table {table}"))
                        && reason.contains("SQLSTATE 42501"),
                    "{privilege} on {table}: {reason}"
                );
                assert!(
                    reason.contains(&format!("lacks {privilege} on {table}")),
                    "{privilege} on {table}: {reason}"
                );
            }
            other => panic!("without {privilege} on {table}: {other:?}"),
        }
        admin(
            &url,
            &format!("GRANT {privilege} ON \"{s}\".{table} TO \"{r}\""),
        )
        .await;
        store.check_writable().await.expect("granted back");
    }

    // Two missing: both named.
    admin(
        &url,
        &format!(
            "REVOKE INSERT ON \"{s}\".attempts FROM \"{r}\"; REVOKE DELETE ON \"{s}\".events FROM \"{r}\""
        ),
    )
    .await;
    let error = store.check_writable().await.expect_err("two missing");
    let told = error.to_string();
    assert!(
        told.contains("lacks DELETE on events, INSERT on attempts")
            && told.contains("connect as a role that may write its schema"),
        "{told}"
    );
    store.close().await;
}

/// The probe reads nothing the writes do not: a role that may add attempts but not read them
/// (the writes never do; only `ccai events show` does) passes it, and claims, records outcomes
/// (adding attempts) and purges. It used to be refused ("permission denied for table attempts",
/// naming nothing it lacked): the probe's insert selected its columns from the table.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_may_add_attempts_but_not_read_them_passes() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_no_read");
    created(&schema).await;
    let role = ReportingRole::new(&url, &schema.name).await;
    let (s, r) = (&schema.name, &role.name);
    let grants: String = NEEDED
        .iter()
        .map(|(privilege, table)| format!("GRANT {privilege} ON \"{s}\".{table} TO \"{r}\";"))
        .collect();
    admin(
        &url,
        &format!("{grants} REVOKE SELECT ON \"{s}\".attempts FROM \"{r}\";"),
    )
    .await;

    let store = PostgresStore::connect(&role.url(&url, s), options())
        .await
        .expect("connect writable");
    store.check_writable().await.expect("may write");
    store.insert(delivery("h")).await.expect("insert");
    let now = SystemTime::now();
    let lease = LeaseRequest::new("w", Duration::from_secs(60));
    let claimed = store.claim("default", lease, 1, now).await.expect("claim");
    let done = store.finish(
        &claimed[0].lease,
        Finish::Delivered,
        attempt(AttemptOutcome::Success),
    );
    assert_eq!(done.await, Ok(true));
    let retention = Retention::new(Duration::ZERO, Duration::ZERO);
    let later = now + Duration::from_secs(3600);
    let purged = store.purge(retention, later).await.expect("purge");
    assert_eq!(purged.events_deleted, 1, "{purged:?}");
    store.close().await;
}

/// The writes read the events they store and claim: a role that may read all their columns but
/// one (`method`, read by a claim) fails the probe, which names `SELECT on events`.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_may_not_read_a_column_the_writes_read_fails_the_probe_naming_it() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_column");
    created(&schema).await;
    let role = ReportingRole::new(&url, &schema.name).await;
    let (s, r) = (&schema.name, &role.name);
    admin(
        &url,
        &format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA \"{s}\" TO \"{r}\";
             REVOKE SELECT ON \"{s}\".events FROM \"{r}\";
             GRANT SELECT (id, client_id, event_hash, event_type, body, body_len, body_sha256,
                           signature, content_type, received_at, duplicates, conflicts,
                           last_conflict_sha256) ON \"{s}\".events TO \"{r}\";"
        ),
    )
    .await;
    let store = PostgresStore::connect(&role.url(&url, s), options())
        .await
        .expect("connect writable");
    match store.check_writable().await {
        Err(StoreError::NotWritable { reason, .. }) => assert!(
            reason.contains("permission denied for table events")
                && reason.contains("lacks SELECT on events"),
            "{reason}"
        ),
        other => panic!("without SELECT on events.method: {other:?}"),
    }
    store.close().await;
}

/// A role granted the writes column by column: exactly the columns the store writes pass the
/// probe; one short, the probe names that column, not the whole table.
#[tokio::test(flavor = "multi_thread")]
async fn column_grants_pass_when_exact_and_the_one_short_is_named() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_columns");
    created(&schema).await;
    let role = ReportingRole::new(&url, &schema.name).await;
    let (s, r) = (&schema.name, &role.name);
    admin(
        &url,
        &format!(
            "GRANT INSERT (client_id, event_hash, event_type, body, body_len, body_sha256,
                           signature, content_type, received_at, method),
                   UPDATE (duplicates, conflicts, last_conflict_sha256, body),
                   DELETE ON \"{s}\".events TO \"{r}\";
             GRANT INSERT (event_id, destination, status, attempts, next_attempt_at),
                   UPDATE (status, attempts, next_attempt_at, lease_owner, lease_token,
                           lease_until, last_error, delivered_at) ON \"{s}\".deliveries TO \"{r}\";
             GRANT INSERT (delivery_id, started_at, duration_ms, outcome, error)
                ON \"{s}\".attempts TO \"{r}\";"
        ),
    )
    .await;
    let store = PostgresStore::connect(&role.url(&url, s), options())
        .await
        .expect("connect writable");
    match store.check_writable().await {
        Err(StoreError::NotWritable { reason, .. }) => assert!(
            reason.ends_with("; this role lacks INSERT on attempts (http_status)"),
            "{reason}"
        ),
        other => panic!("without INSERT on attempts.http_status: {other:?}"),
    }
    admin(
        &url,
        &format!("GRANT INSERT (http_status) ON \"{s}\".attempts TO \"{r}\""),
    )
    .await;
    store.check_writable().await.expect("every column granted");
    store.close().await;
}

/// A newer ccai's migration that renamed a column the probe names: the probe says that a newer
/// ccai migrated the store, and to run it, as it did when it named no column, not that the
/// column is missing from a schema dropped or changed.
#[tokio::test(flavor = "multi_thread")]
async fn a_newer_schema_without_a_column_the_probe_names_is_told_as_newer() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_newer");
    let store = PostgresStore::connect(&url, options().schema(schema.name.clone()))
        .await
        .expect("create the inbox");
    store.check_writable().await.expect("writable");
    let newer = POSTGRES_SCHEMA_VERSION + 1;
    admin(
        &url,
        &format!(
            "ALTER TABLE \"{s}\".events RENAME COLUMN method TO http_method;
             UPDATE \"{s}\".inbox_schema SET version = {newer};",
            s = schema.name
        ),
    )
    .await;
    let error = store.check_writable().await.expect_err("newer");
    assert!(
        matches!(&error, StoreError::Unavailable(m)
            if m.contains(&format!("a newer ccai migrated the store to schema {newer}"))
                && m.contains("run the newer ccai")),
        "{error:?}"
    );
    store.close().await;
}

/// The version the probe reads with its writes is checked as before: an emptied version table
/// or an older version fails it, saying the version changed (to 0 where no row is left), and the
/// version put back passes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_table_emptied_or_older_fails_the_probe_as_before() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_version");
    let store = PostgresStore::connect(&url, options().schema(schema.name.clone()))
        .await
        .expect("create the inbox");
    let s = &schema.name;
    for (sql, found) in [
        (format!("DELETE FROM \"{s}\".inbox_schema"), 0),
        (
            format!(
                "INSERT INTO \"{s}\".inbox_schema VALUES ({})",
                POSTGRES_SCHEMA_VERSION - 1
            ),
            POSTGRES_SCHEMA_VERSION - 1,
        ),
    ] {
        admin(&url, &sql).await;
        let error = store.check_writable().await.expect_err(&sql);
        assert!(
            matches!(&error, StoreError::Unavailable(m)
                if m.contains(&format!("the store's schema version changed to {found}"))),
            "{sql}: {error:?}"
        );
    }
    admin(
        &url,
        &format!("UPDATE \"{s}\".inbox_schema SET version = {POSTGRES_SCHEMA_VERSION}"),
    )
    .await;
    store.check_writable().await.expect("current again");
    store.close().await;
}

/// An insert tells a new event from a duplicate by its row's `xmax`, a system column a role
/// granted `SELECT` column by column may not read: the probe asks for it, naming it, and with it
/// granted too, the role passes and inserts.
#[tokio::test(flavor = "multi_thread")]
async fn select_granted_column_by_column_needs_xmax_too() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_xmax");
    created(&schema).await;
    let role = ReportingRole::new(&url, &schema.name).await;
    let (s, r) = (&schema.name, &role.name);
    admin(
        &url,
        &format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA \"{s}\" TO \"{r}\";
             REVOKE SELECT ON \"{s}\".events FROM \"{r}\";
             GRANT SELECT (id, client_id, event_hash, event_type, body, body_sha256, signature,
                           content_type, received_at, duplicates, conflicts,
                           last_conflict_sha256, method) ON \"{s}\".events TO \"{r}\";"
        ),
    )
    .await;
    let store = PostgresStore::connect(&role.url(&url, s), options())
        .await
        .expect("connect writable");
    match store.check_writable().await {
        Err(StoreError::NotWritable { reason, .. }) => assert!(
            reason.ends_with("; this role lacks SELECT on events (xmax)"),
            "{reason}"
        ),
        other => panic!("without SELECT on events.xmax: {other:?}"),
    }
    admin(
        &url,
        &format!("GRANT SELECT (xmax) ON \"{s}\".events TO \"{r}\""),
    )
    .await;
    store.check_writable().await.expect("xmax granted");
    store.insert(delivery("h")).await.expect("insert");
    store.close().await;
}

/// The probe's writes take the lock an insert takes: behind an `ALTER TABLE` (or `VACUUM FULL`)
/// holding `events`, it fails within the operation timeout, as an insert would, its backend gone
/// from the lock queue soon after (not waiting on); the lock released, it passes.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_table_fails_the_probe_within_the_operation_timeout() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "probe_locked");
    let store = PostgresStore::connect(
        &url,
        options()
            .schema(schema.name.clone())
            .operation_timeout(Duration::from_millis(500)),
    )
    .await
    .expect("create the inbox");
    store.check_writable().await.expect("writable");
    let events = format!("\"{}\".events", schema.name);
    let mut holder = raw(&url).await;
    let lock = holder.transaction().await.expect("begin");
    lock.batch_execute(&format!("LOCK TABLE {events} IN ACCESS EXCLUSIVE MODE"))
        .await
        .expect("lock");

    let started = std::time::Instant::now();
    match store.check_writable().await {
        Err(StoreError::Unavailable(why)) => {
            assert!(why.contains("did not answer within"), "{why}")
        }
        other => panic!("behind the lock: {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let observer = raw(&url).await;
    let waiting = format!(
        "SELECT count(*) FROM pg_catalog.pg_locks WHERE relation = '{events}'::regclass AND NOT granted"
    );
    let mut left = i64::MAX;
    for _ in 0..50 {
        left = observer
            .query_one(&waiting, &[])
            .await
            .expect("pg_locks")
            .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the probe's backend still waits for the lock");
    lock.rollback().await.expect("unlock");
    store.check_writable().await.expect("writable again");
    store.close().await;
}
