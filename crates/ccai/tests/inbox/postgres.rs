//! `PostgresStore`: the conformance suite against a real PostgreSQL (URL from
//! `CCAI_TEST_POSTGRES_URL`; each test in its own schema, dropped at the end), and what only a
//! shared database has: migrations racing, a newer schema, connections lost, `NOTIFY`, several
//! instances on one schema.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, BatchHistogram, DeliveryStatus, Finish, Inserted, LeaseRequest,
    ListFilter, NewDelivery, PostgresOptions, PostgresStore, PurgeReport, ReplayTarget, Retention,
    Store, StoreError, POSTGRES_SCHEMA_VERSION,
};
use tokio_postgres::NoTls;

use crate::conformance::{Config, StoreFactory, StoreInstance};
pub(crate) use crate::postgres_schema::TempSchema;

pub(crate) const URL_VAR: &str = "CCAI_TEST_POSTGRES_URL";

/// The test database's URL, if one is configured.
pub(crate) fn test_url() -> Option<String> {
    std::env::var(URL_VAR).ok().filter(|url| !url.is_empty())
}

/// The test database's URL, or `return` from the test after saying why it is skipped.
#[macro_export]
macro_rules! postgres_url_or_skip {
    () => {
        match $crate::postgres::test_url() {
            Some(url) => url,
            None => {
                println!("skipped: CCAI_TEST_POSTGRES_URL not set");
                return;
            }
        }
    };
}

/// A schema name no other test (or test run) uses.
pub(crate) fn unique_schema(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "ccai_test_{tag}_{}_{}_{nanos:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain connection for the tests' own SQL.
pub(crate) async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

pub(crate) struct PostgresFactory;

pub(crate) struct PostgresInstance {
    // Dropped before the schema.
    store: Option<PostgresStore>,
    options: PostgresOptions,
    schema: TempSchema,
}

impl StoreInstance for PostgresInstance {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone().expect("open"))
    }

    fn batch_sizes(&self) -> Option<BatchHistogram> {
        self.store.as_ref().map(PostgresStore::batch_sizes)
    }

    async fn reopen(&mut self) {
        self.store = None;
        self.store = Some(
            PostgresStore::connect(&self.schema.url, self.options.clone())
                .await
                .expect("reconnect"),
        );
    }

    async fn drop_columns_and_reopen(
        &mut self,
        table: &str,
        columns: &[&str],
    ) -> Result<(), StoreError> {
        if let Some(store) = self.store.take() {
            store.close().await;
        }
        let client = raw(&self.schema.url).await;
        for column in columns {
            client
                .batch_execute(&format!(
                    "ALTER TABLE \"{}\".{table} DROP COLUMN {column}",
                    self.schema.name
                ))
                .await
                .expect("drop column");
        }
        self.store = Some(PostgresStore::connect(&self.schema.url, self.options.clone()).await?);
        Ok(())
    }
}

impl StoreFactory for PostgresFactory {
    type Instance = PostgresInstance;

    async fn create(&self, config: Config) -> PostgresInstance {
        let url = test_url().expect("skip_reason is checked first");
        let schema = TempSchema::new(&url, "conf");
        let options = PostgresOptions::default()
            .schema(schema.name.clone())
            .queue_capacity(config.queue_capacity)
            .destinations(config.destinations);
        let store = PostgresStore::connect(&url, options.clone())
            .await
            .expect("connect");
        PostgresInstance {
            store: Some(store),
            options,
            schema,
        }
    }

    fn skip_reason(&self) -> Option<String> {
        test_url().is_none().then(|| format!("{URL_VAR} not set"))
    }
}

mod conformance {
    crate::store_conformance!(super::PostgresFactory);
}

/// `url` with a password added (trust authentication ignores it).
fn with_password(url: &str, password: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) => format!("{scheme}://{user}:{password}@{host}"),
            None => format!("{scheme}://postgres:{password}@{rest}"),
        },
        None => url.to_owned(),
    }
}

/// `url` with one more query parameter.
/// How many rows `table` of `schema` holds.
async fn rows_in(client: &tokio_postgres::Client, schema: &str, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".{table}"), &[])
        .await
        .expect("count")
        .get(0)
}

fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

fn delivery(hash: &str) -> NewDelivery {
    NewDelivery::new(
        "1231",
        hash,
        "message.sent",
        format!(r#"{{"eventHash":"{hash}"}}"#),
    )
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_quickly_and_the_password_never_shows() {
    // Nothing listens on port 1; this needs no database.
    let url = "postgres://postgres:hunter2@127.0.0.1:1/test";
    let started = std::time::Instant::now();
    let error = PostgresStore::connect(
        url,
        PostgresOptions::default().connect_timeout(Duration::from_secs(2)),
    )
    .await
    .expect_err("nothing listens there");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.is_transient());
    assert!(started.elapsed() < Duration::from_secs(10));
    let message = error.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains("postgres://postgres@127.0.0.1:1/test"),
        "{message}"
    );
    let invalid = PostgresStore::connect(
        "postgres://postgres:hunter2@127.0.0.1/test",
        PostgresOptions::default().schema("bad name"),
    )
    .await
    .expect_err("invalid schema");
    assert!(
        matches!(invalid, StoreError::InvalidRequest(_)),
        "{invalid:?}"
    );
    assert!(!format!("{invalid:?}").contains("hunter2"));
}

#[tokio::test]
async fn the_password_is_never_shown_by_a_connected_store() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "secret");
    let store = PostgresStore::connect(
        &with_password(&url, "hunter2"),
        PostgresOptions::default().schema(schema.name.clone()),
    )
    .await
    .expect("trust authentication ignores the password");
    assert!(!format!("{store:?}").contains("hunter2"));
    assert!(!store.target().contains("hunter2"));
    assert!(store.target().contains(&schema.name), "{}", store.target());
    assert_eq!(store.schema(), schema.name);
}

#[tokio::test]
async fn sslmode_require_speaks_tls_and_checks_the_certificate() {
    let url = postgres_url_or_skip!();
    // The local server has no certificate from a public CA (or no TLS at all): refused, as
    // unavailable, without the password.
    let error = PostgresStore::connect(
        &with_param(&with_password(&url, "hunter2"), "sslmode=require"),
        PostgresOptions::default().connect_timeout(Duration::from_secs(3)),
    )
    .await
    .expect_err("no trusted certificate here");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test]
async fn sslrootcert_trusts_the_servers_own_ca_over_tls() {
    let url = postgres_url_or_skip!();
    let client = raw(&url).await;
    let setting = |name: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .ok()
                .map(|row| row.get::<_, String>(0))
        }
    };
    let (Some(ssl), Some(cert)) = (setting("ssl").await, setting("ssl_cert_file").await) else {
        println!("skipped: cannot read the server's ssl settings");
        return;
    };
    let names_localhost = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in", &cert])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("DNS:localhost"));
    if ssl != "on" || !names_localhost {
        println!("skipped: the server has no TLS certificate for localhost that openssl can read (ssl {ssl}, {cert})");
        return;
    }
    let schema = TempSchema::new(&url, "tls");
    // The server's self-signed certificate names localhost: connect by that name.
    let tls_url = with_param(
        &url.replacen("127.0.0.1", "localhost", 1),
        &format!("schema={}&sslmode=require&sslrootcert={cert}", schema.name),
    );
    let store = PostgresStore::connect(&tls_url, PostgresOptions::default())
        .await
        .expect("the certificate is trusted through sslrootcert");
    assert_eq!(store.insert(delivery("tls-1")).await, Ok(Inserted::New));
    let encrypted: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE s.ssl AND a.datname = current_database()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted >= 1, "no TLS connection seen");
}

#[tokio::test]
async fn the_schema_can_be_named_in_the_url() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "inurl");
    let store = PostgresStore::connect(
        &with_param(&url, &format!("schema={}", schema.name)),
        PostgresOptions::default(),
    )
    .await
    .expect("connect");
    assert_eq!(store.schema(), schema.name);
    assert_eq!(store.insert(delivery("u1")).await, Ok(Inserted::New));
    let client = raw(&url).await;
    let count = rows_in(&client, &schema.name, "events").await;
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "race");
    let connects = (0..6).map(|_| {
        let (url, name) = (url.clone(), schema.name.clone());
        tokio::spawn(async move {
            PostgresStore::connect(&url, PostgresOptions::default().schema(name)).await
        })
    });
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(connect.await.expect("task").expect("connect"));
    }
    let client = raw(&url).await;
    let versions: Vec<i64> = client
        .query(
            &format!("SELECT version FROM \"{}\".inbox_schema", schema.name),
            &[],
        )
        .await
        .expect("versions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [POSTGRES_SCHEMA_VERSION]);
    assert_eq!(stores[0].insert(delivery("m1")).await, Ok(Inserted::New));
    assert_eq!(
        stores[5].insert(delivery("m1")).await,
        Ok(Inserted::Duplicate)
    );
}

/// Connecting to a schema already at this build's version takes the migration lock shared, as
/// every write does: it waits for no write in flight (a long purge or replay holds the lock
/// shared to its end), so it holds back none of a running receiver's inserts queued behind it.
/// `ccai events list` and `ccai ui` connect writable first, even with a role that may only read.
#[tokio::test]
async fn connecting_to_a_current_schema_waits_for_no_write_in_flight() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "open_lock");
    let options = PostgresOptions::default().schema(schema.name.clone());
    PostgresStore::connect(&url, options.clone())
        .await
        .expect("create")
        .close()
        .await;
    let mut client = raw(&url).await;
    let write = client.transaction().await.expect("begin");
    write
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended('ccai-inbox-schema:{}', 0))",
            schema.name
        ))
        .await
        .expect("hold the lock as a write in flight does");
    // The server gives up a lock wait after a second: no wait at all is what passes.
    let separator = if url.contains('?') { '&' } else { '?' };
    let waiting_for_no_lock = format!("{url}{separator}options=-c%20lock_timeout%3D1000");
    let store = PostgresStore::connect(&waiting_for_no_lock, options)
        .await
        .expect("connect while a write is in flight");
    store.close().await;
    write.commit().await.expect("commit");
}

/// Every column of a new schema is one that opening checks: with any one of them dropped,
/// opening is refused naming that table and column.
#[tokio::test]
async fn dropping_any_column_is_refused_naming_it() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "columns");
    let options = PostgresOptions::default().schema(schema.name.clone());
    PostgresStore::connect(&url, options.clone())
        .await
        .expect("create")
        .close()
        .await;
    let client = raw(&url).await;
    let columns: Vec<(String, String, String)> = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text
               FROM information_schema.columns
              WHERE table_schema = $1 AND table_name <> 'inbox_schema'
              ORDER BY table_name, ordinal_position",
            &[&schema.name],
        )
        .await
        .expect("columns")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(columns.len(), 14 + 11 + 7, "events, deliveries, attempts");
    let s = &schema.name;
    for (table, column, data_type) in &columns {
        client
            .batch_execute(&format!(
                "ALTER TABLE \"{s}\".{table} DROP COLUMN {column} CASCADE"
            ))
            .await
            .expect("drop");
        let refused = PostgresStore::connect(&url, options.clone())
            .await
            .expect_err("a column is missing");
        match refused {
            StoreError::MissingColumns {
                path,
                table: named,
                columns: missing,
            } => {
                assert!(path.ends_with(&format!("(schema {s})")), "{path}");
                assert_eq!((&named, &missing[..]), (table, &[column.clone()][..]));
            }
            other => panic!("{table}.{column}: {other:?}"),
        }
        client
            .batch_execute(&format!(
                "ALTER TABLE \"{s}\".{table} ADD COLUMN {column} {data_type}"
            ))
            .await
            .expect("add back");
    }
    // The names are back (in another order, some without their constraints): it opens.
    PostgresStore::connect(&url, options)
        .await
        .expect("every column is there")
        .close()
        .await;
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "newer");
    let client = raw(&url).await;
    let newer = POSTGRES_SCHEMA_VERSION + 5;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{s}\";
             CREATE TABLE \"{s}\".inbox_schema (version bigint NOT NULL);
             INSERT INTO \"{s}\".inbox_schema VALUES ({newer});
             CREATE TABLE \"{s}\".future (x int);",
            s = schema.name
        ))
        .await
        .expect("a future schema");
    let error =
        PostgresStore::connect(&url, PostgresOptions::default().schema(schema.name.clone()))
            .await
            .expect_err("must refuse");
    assert!(
        matches!(error, StoreError::NewerSchema { found, known, .. } if found == newer && known == POSTGRES_SCHEMA_VERSION),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("newer ccai") && message.contains("upgrade ccai or open another store"),
        "{message}"
    );
    assert!(message.contains(&schema.name), "{message}");
    assert!(!error.is_transient());
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
            &[&schema.name],
        )
        .await
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(tables, ["future", "inbox_schema"], "nothing was created");
}

/// A newer ccai migrating the schema under a running store: its next insert is refused (saying
/// so) rather than stored under the old schema, one in flight makes the migration wait, and one
/// sent while the migration runs waits for it and is refused.
#[tokio::test]
async fn a_newer_ccai_migrating_the_schema_under_a_running_store_stops_its_inserts() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "migrated");
    let store =
        PostgresStore::connect(&url, PostgresOptions::default().schema(schema.name.clone()))
            .await
            .expect("connect");
    assert_eq!(store.insert(delivery("before")).await, Ok(Inserted::New));
    store.check_writable().await.expect("writable");

    // A newer ccai's migration, holding its lock while it runs.
    let mut client = raw(&url).await;
    let migration = client.transaction().await.expect("begin");
    let newer = POSTGRES_SCHEMA_VERSION + 1;
    migration
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtextextended('ccai-inbox-schema:{s}', 0));
             ALTER TABLE \"{s}\".events ADD COLUMN future text;
             UPDATE \"{s}\".inbox_schema SET version = {newer};",
            s = schema.name
        ))
        .await
        .expect("migrate as a newer ccai would");
    let during = tokio::spawn({
        let store = store.clone();
        async move { store.insert(delivery("during")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!during.is_finished(), "the insert waits for the migration");
    migration.commit().await.expect("commit");

    let error = during.await.expect("task").expect_err("not stored");
    assert!(
        matches!(&error, StoreError::Unavailable(m)
            if m.contains(&format!("a newer ccai migrated the store to schema {newer}"))
                && m.contains("run the newer ccai")
                && m.contains(&schema.name)),
        "{error:?}"
    );
    assert_eq!(store.insert(delivery("after")).await, Err(error.clone()));
    // The readiness probe says why.
    assert_eq!(store.check_writable().await, Err(error));
    store.close().await;
    let refused =
        PostgresStore::connect(&url, PostgresOptions::default().schema(schema.name.clone()))
            .await
            .expect_err("newer");
    assert!(
        matches!(refused, StoreError::NewerSchema { found, .. } if found == newer),
        "{refused:?}"
    );
    // Awaited after the refusal, so that its connection's task runs, ends its transaction and
    // closes before the schema is dropped (on another thread, while this one waits).
    assert_eq!(rows_in(&client, &schema.name, "events").await, 1);
    assert_eq!(rows_in(&client, &schema.name, "deliveries").await, 1);
}

/// A newer ccai migrating the schema under a running store: the dispatcher's and the admin's
/// writes are refused as inserts are (a claim, an outcome, a lease's extension or release, a
/// replay, a requeue of the dead, a purge), each with the same error, and none changes a row: a
/// newer schema may give those tables another meaning. Those sent while the migration runs wait
/// for it (the migration lock), then are refused too. Reads go on. (Several threads: the
/// connections' tasks still run while a failing assertion's unwinding drops the schema.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_ccai_migrating_the_schema_under_a_running_store_stops_every_write() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "migwrites");
    let store =
        PostgresStore::connect(&url, PostgresOptions::default().schema(schema.name.clone()))
            .await
            .expect("connect");
    // "dead" dead, "done" delivered, "held" leased to a worker, "due" pending.
    for hash in ["dead", "done", "held", "due"] {
        assert_eq!(store.insert(delivery(hash)).await, Ok(Inserted::New));
    }
    let claim = |limit, at| {
        store.claim(
            "default",
            LeaseRequest::new("w", Duration::from_secs(60)),
            limit,
            at,
        )
    };
    let now = SystemTime::now();
    let lease = |claimed: Vec<ccai::inbox::ClaimedDelivery>| claimed[0].lease.clone();
    crate::support::finish_dead(&store, &lease(claim(1, now).await.expect("claim"))).await;
    let success = || AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Success);
    let done = lease(claim(1, now).await.expect("claim"));
    assert_eq!(
        store.finish(&done, Finish::Delivered, success()).await,
        Ok(true)
    );
    let held = lease(claim(1, now).await.expect("claim"));

    let watcher = raw(&url).await;
    let dump = || async {
        let mut rows = Vec::new();
        for table in ["events", "deliveries", "attempts"] {
            let sql = format!(
                "SELECT t::text FROM \"{}\".{table} t ORDER BY 1",
                schema.name
            );
            for row in watcher.query(&sql, &[]).await.expect("dump") {
                rows.push(format!("{table}: {}", row.get::<_, String>(0)));
            }
        }
        rows
    };
    let before = dump().await;

    let mut client = raw(&url).await;
    // What a newer ccai's migration does: a higher version, its lock held while it runs. Every
    // write sent meanwhile waits for it, then is refused: without the lock each read the version
    // its snapshot saw, the old one, and wrote.
    let newer = POSTGRES_SCHEMA_VERSION + 1;
    let later = SystemTime::now() + Duration::from_secs(3600);
    let migration = client.transaction().await.expect("begin");
    migration
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(hashtextextended('ccai-inbox-schema:{s}', 0));
             UPDATE \"{s}\".inbox_schema SET version = {newer};",
            s = schema.name
        ))
        .await
        .expect("migrate as a newer ccai would");
    type Write = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;
    let shown = |result: Result<String, StoreError>| format!("{result:?}");
    let during: Vec<(&str, Write)> = vec![
        ("claim", {
            let store = store.clone();
            Box::pin(async move {
                let lease = LeaseRequest::new("w", Duration::from_secs(60));
                let claimed = store.claim("default", lease, 10, later).await;
                shown(claimed.map(|c| format!("{} claimed", c.len())))
            })
        }),
        ("finish", {
            let (store, held) = (store.clone(), held.clone());
            Box::pin(async move {
                let record =
                    AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Success);
                let finished = store.finish(&held, Finish::Delivered, record).await;
                shown(finished.map(|v| format!("{v:?}")))
            })
        }),
        ("extend_lease", {
            let (store, held) = (store.clone(), held.clone());
            Box::pin(async move {
                shown(
                    store
                        .extend_lease(&held, later)
                        .await
                        .map(|v| format!("{v:?}")),
                )
            })
        }),
        ("release", {
            let (store, held) = (store.clone(), held.clone());
            Box::pin(async move { shown(store.release(&held).await.map(|v| format!("{v:?}"))) })
        }),
        ("replay", {
            let store = store.clone();
            Box::pin(async move {
                let replayed = store.replay(ReplayTarget::Hash("done".into())).await;
                shown(replayed.map(|v| format!("{v:?}")))
            })
        }),
        ("requeue_dead", {
            let store = store.clone();
            Box::pin(async move {
                let filter = ListFilter::new().event_type("message.sent");
                shown(store.requeue_dead(filter).await.map(|v| format!("{v:?}")))
            })
        }),
        ("purge", {
            let store = store.clone();
            Box::pin(async move {
                let retention = Retention::new(Duration::ZERO, Duration::ZERO);
                shown(
                    store
                        .purge(retention, later)
                        .await
                        .map(|v| format!("{v:?}")),
                )
            })
        }),
    ];
    let count = i64::try_from(during.len()).expect("a few");
    let during: Vec<(&str, tokio::task::JoinHandle<String>)> = during
        .into_iter()
        .map(|(what, write)| (what, tokio::spawn(write)))
        .collect();
    until_waiting(&watcher, &schema.name, count, || {
        during.iter().all(|(_, task)| task.is_finished())
    })
    .await;
    migration.commit().await.expect("commit");
    let mut refused_during = Vec::new();
    for (what, task) in during {
        refused_during.push((what, task.await.expect("task")));
    }
    let in_one_line = format!("a newer ccai migrated the store to schema {newer}");
    let not_refused: Vec<String> = refused_during
        .iter()
        .filter(|(_, result)| !result.contains(&in_one_line))
        .map(|(what, result)| format!("{what} during the migration: {result}"))
        .collect();
    assert!(not_refused.is_empty(), "not refused: {not_refused:#?}");
    assert_eq!(dump().await, before, "no row changed during the migration");

    // Each would change rows under the old schema: the claims take "due" and the lapsed lease
    // of "held", the replay "done", the requeue "dead", the purge "done" and "dead".
    let claimed = |claimed: Vec<ccai::inbox::ClaimedDelivery>| format!("{} claimed", claimed.len());
    let everything = || ListFilter::new().event_type("message.sent");
    let writes: Vec<(&str, Result<String, StoreError>)> = vec![
        ("claim", claim(10, later).await.map(claimed)),
        (
            "finish",
            store
                .finish(&held, Finish::Delivered, success())
                .await
                .map(|v| format!("{v:?}")),
        ),
        (
            "extend_lease",
            store
                .extend_lease(&held, later)
                .await
                .map(|v| format!("{v:?}")),
        ),
        (
            "release",
            store.release(&held).await.map(|v| format!("{v:?}")),
        ),
        (
            "replay by hash",
            store
                .replay(ReplayTarget::Hash("done".into()))
                .await
                .map(|v| format!("{v:?}")),
        ),
        (
            "replay by filter",
            store
                .replay(ReplayTarget::Filter(everything()))
                .await
                .map(|v| format!("{v:?}")),
        ),
        (
            "requeue_dead",
            store
                .requeue_dead(everything())
                .await
                .map(|v| format!("{v:?}")),
        ),
        (
            "purge",
            store
                .purge(Retention::new(Duration::ZERO, Duration::ZERO), later)
                .await
                .map(|v| format!("{v:?}")),
        ),
    ];
    let refused = |error: &StoreError| {
        matches!(error, StoreError::Unavailable(m)
            if m.contains(&format!("a newer ccai migrated the store to schema {newer}"))
                && m.contains("stop it and run the newer ccai")
                && m.contains(&schema.name))
    };
    let not_refused: Vec<String> = writes
        .iter()
        .filter(|(_, result)| !result.as_ref().is_err_and(refused))
        .map(|(what, result)| format!("{what}: {result:?}"))
        .collect();
    assert!(not_refused.is_empty(), "not refused: {not_refused:#?}");
    assert_eq!(dump().await, before, "no row changed");

    // Reads go on.
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(stats.events, 4);
    let got = store
        .get("held")
        .await
        .expect("get")
        .expect("held is stored");
    assert_eq!(got.summary.deliveries[0].status, DeliveryStatus::InProgress);
    store.close().await;
}

/// A version below zero is no version this build wrote: refused as SQLite refuses one, and nothing
/// is created (it skipped every migration, committed, and opened a store whose every operation
/// then failed on missing tables).
#[tokio::test]
async fn a_negative_schema_version_is_refused_and_left_untouched() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "negative");
    let client = raw(&url).await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{s}\";
             CREATE TABLE \"{s}\".inbox_schema (version bigint NOT NULL);
             INSERT INTO \"{s}\".inbox_schema VALUES (-1);",
            s = schema.name
        ))
        .await
        .expect("a schema with a negative version");
    let error =
        PostgresStore::connect(&url, PostgresOptions::default().schema(schema.name.clone()))
            .await
            .expect_err("must refuse");
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert!(
        error.to_string().contains("invalid schema version"),
        "{error}"
    );
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema.name],
        )
        .await
        .expect("tables")
        .get(0);
    assert_eq!(tables, 1, "nothing was created");
}

#[tokio::test]
async fn a_schema_of_someone_else_is_refused() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "foreign");
    raw(&url)
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA \"{s}\"; CREATE TABLE \"{s}\".users (name text);",
            s = schema.name
        ))
        .await
        .expect("a foreign schema");
    let error =
        PostgresStore::connect(&url, PostgresOptions::default().schema(schema.name.clone()))
            .await
            .expect_err("foreign");
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert!(
        error.to_string().contains("no inbox schema version"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_a_field_is_refused_alone() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "nul");
    let store =
        PostgresStore::connect(&url, PostgresOptions::default().schema(schema.name.clone()))
            .await
            .expect("connect");
    let (bad, good) = tokio::join!(
        store.insert(delivery("bad\0hash")),
        store.insert(delivery("good"))
    );
    assert!(matches!(bad, Err(StoreError::InvalidRequest(_))), "{bad:?}");
    assert_eq!(good, Ok(Inserted::New));
}

/// A store in a new schema whose connections carry the schema's name as `application_name`,
/// to find them in `pg_stat_activity`.
async fn store_named_after_its_schema(url: &str, tag: &str) -> (TempSchema, PostgresStore) {
    let schema = TempSchema::new(url, tag);
    let store = PostgresStore::connect(
        &with_param(url, &format!("application_name={}", schema.name)),
        PostgresOptions::default().schema(schema.name.clone()),
    )
    .await
    .expect("connect");
    (schema, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_by_the_server_are_replaced() {
    let url = postgres_url_or_skip!();
    let (schema, store) = store_named_after_its_schema(&url, "killed").await;
    let app = schema.name.clone();
    assert_eq!(store.insert(delivery("k0")).await, Ok(Inserted::New));
    let admin = raw(&url).await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("terminate")
        .get(0);
    assert!(killed >= 1, "the store's connections were found");
    // Each call either works or fails transiently; the store recovers by itself.
    let mut stored = false;
    for attempt in 0..10 {
        match store.insert(delivery("k1")).await {
            Ok(_) => {
                stored = true;
                break;
            }
            Err(error) => {
                assert!(error.is_transient(), "attempt {attempt}: {error:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(stored, "the store did not reconnect");
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(stats.events, 2);
}

/// `close` ends the store's connections, the pooled ones and the `LISTEN` one: a receiver that
/// stops does not leave backends behind on a shared database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_connection() {
    let url = postgres_url_or_skip!();
    let (schema, store) = store_named_after_its_schema(&url, "close").await;
    let app = schema.name.clone();
    assert_eq!(store.insert(delivery("c0")).await, Ok(Inserted::New));
    let admin = raw(&url).await;
    let backends = || async {
        let row = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE query LIKE 'LISTEN%'), count(*)
                   FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .expect("pg_stat_activity");
        (row.get::<_, i64>(0), row.get::<_, i64>(1))
    };
    let mut open = backends().await;
    for _ in 0..50 {
        if open.0 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = backends().await;
    }
    assert!(
        open.0 == 1 && open.1 >= 2,
        "the LISTEN and pooled connections: {open:?}"
    );
    store.close().await;
    let mut left = backends().await;
    for _ in 0..50 {
        if left.1 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = backends().await;
    }
    assert_eq!(left, (0, 0), "backends left after close");
}

/// A TCP proxy on 127.0.0.1 in front of the test database: `url` through it, and a switch that
/// freezes it. Frozen, it keeps every socket open and passes no more bytes (a network partition,
/// a frozen host: no error, no reply); connections opened after it thaws pass again.
async fn freezable_proxy(url: &str) -> (String, Arc<std::sync::atomic::AtomicBool>) {
    proxy_freezing_on(url, None).await
}

/// [`freezable_proxy`], where a connection also freezes, for good, as soon as the client sends
/// bytes that contain `trigger`: the database stops answering in the middle of one operation.
async fn proxy_freezing_on(
    url: &str,
    trigger: Option<&'static [u8]>,
) -> (String, Arc<std::sync::atomic::AtomicBool>) {
    proxy(url, trigger.map(Fault::FreezeOn)).await
}

/// What a connection through [`proxy`] suffers once the client sends bytes that contain the
/// trigger.
#[derive(Clone, Copy)]
pub(crate) enum Fault {
    /// Nothing more passes either way; the sockets stay open.
    FreezeOn(&'static [u8]),
    /// The request reaches the server, but no answer comes back (lost, or slower than the
    /// client waits); when the client closes, the server's side is closed too.
    LoseAnswersAfter(&'static [u8]),
    /// [`LoseAnswersAfter`](Self::LoseAnswersAfter) on the first connection that sends the
    /// trigger only: a request whose answer is lost once, and passes when it is sent again.
    LoseAnswersOnceAfter(&'static [u8]),
}

pub(crate) async fn proxy(
    url: &str,
    fault: Option<Fault>,
) -> (String, Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (head, tail) = url.split_once('@').expect("user@host:port in the test URL");
    let server = tail.split('/').next().expect("host:port").to_owned();
    let path = tail[server.len()..].to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("port").port();
    let proxied = format!("{head}@127.0.0.1:{port}{path}");
    let frozen = Arc::new(AtomicBool::new(false));
    let proxy_frozen = Arc::clone(&frozen);
    // Whether a connection has sent the trigger of `LoseAnswersOnceAfter` yet.
    let fired = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut backend) = tokio::net::TcpStream::connect(&server).await else {
                continue;
            };
            let frozen = Arc::clone(&proxy_frozen);
            let fired = Arc::clone(&fired);
            tokio::spawn(async move {
                let (mut up, mut down) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
                let mut answers_lost = false;
                loop {
                    let (read, upstream) = tokio::select! {
                        n = client.read(&mut up) => (n, true),
                        n = backend.read(&mut down) => (n, false),
                    };
                    let n = match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let sent = |t: &[u8]| upstream && up[..n].windows(t.len()).any(|w| w == t);
                    let triggered = match fault {
                        Some(Fault::FreezeOn(t)) => sent(t),
                        Some(Fault::LoseAnswersAfter(t)) => {
                            answers_lost |= sent(t);
                            false
                        }
                        Some(Fault::LoseAnswersOnceAfter(t)) => {
                            answers_lost |= sent(t) && !fired.swap(true, Ordering::SeqCst);
                            false
                        }
                        None => false,
                    };
                    if triggered || frozen.load(Ordering::SeqCst) {
                        // Hold both sockets open, silent.
                        std::future::pending::<()>().await;
                    }
                    if answers_lost && !upstream {
                        continue;
                    }
                    let written = if upstream {
                        backend.write_all(&up[..n]).await
                    } else {
                        client.write_all(&down[..n]).await
                    };
                    if written.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (proxied, frozen)
}

/// A server that stops answering: close waited forever for the batch in flight, and with it
/// `ccai listen`'s stop. It now gives up after the connect timeout and answers the insert an
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_gives_up_on_a_server_that_stopped_answering() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "frozen");
    let (proxied, frozen) = freezable_proxy(&url).await;
    let store = PostgresStore::connect(
        &proxied,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .connect_timeout(Duration::from_secs(1))
            // Longer than the test: close, not the operation timeout, must end the insert.
            .operation_timeout(Duration::from_secs(600)),
    )
    .await
    .expect("connect");
    assert_eq!(store.insert(delivery("f0")).await, Ok(Inserted::New));
    frozen.store(true, Ordering::SeqCst);
    let stuck = {
        let store = store.clone();
        tokio::spawn(async move { store.insert(delivery("f1")).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(10), store.close())
        .await
        .expect("close still waiting after 10 s");
    match stuck.await.expect("task") {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("the store is closed"), "{why}"),
        other => panic!("the insert in flight: {other:?}"),
    }
}

/// A statement the operation timeout gave up on stops on the server too, within seconds: here the
/// readiness probe's write, waiting for a lock another transaction holds (a read waiting so long
/// is stopped by the server itself, `postgres_read_timeout.rs`). Closing the connection alone would leave
/// its backend waiting (or a purge deleting) until it next wrote to the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_given_up_on_stops_on_the_server_too() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "abandoned");
    let store = PostgresStore::connect(
        &url,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .operation_timeout(Duration::from_millis(500))
            .listen(false),
    )
    .await
    .expect("connect");
    assert_eq!(store.insert(delivery("a")).await, Ok(Inserted::New));
    let locker = raw(&url).await;
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{}\".deliveries IN ACCESS EXCLUSIVE MODE",
            schema.name
        ))
        .await
        .expect("lock");
    // A write: the server stops a read itself before the operation timeout (ReadStopped).
    let probe = tokio::time::timeout(Duration::from_secs(5), store.check_writable())
        .await
        .expect("answered in time");
    assert!(
        matches!(&probe, Err(StoreError::Unavailable(why)) if why.contains("did not answer within")),
        "{probe:?}"
    );
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE '%{}%' AND pid <> pg_backend_pid()",
        schema.name
    );
    let mut left = i64::MAX;
    for _ in 0..150 {
        let row = locker.query_one(&waiting, &[]).await.expect("count");
        left = row.get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the abandoned statement still waits for the lock");
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    // The store works on, on a new connection.
    assert_eq!(store.check_writable().await, Ok(()));
}

/// A server that stops answering: inserts, claims and outcomes waited for ever (a receiver's
/// requests hung until the operating system gave up on the connection). Each now fails as
/// unavailable after the operation timeout, so a receiver answers 503; once the server answers
/// again, new connections replace the ones closed, and nothing answered Ok is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_fails_operations_in_time_then_recovers() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "partition");
    let (proxied, frozen) = freezable_proxy(&url).await;
    let timeout = Duration::from_millis(500);
    let store = PostgresStore::connect(
        &proxied,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .connect_timeout(Duration::from_secs(1))
            .operation_timeout(timeout)
            .listen(false),
    )
    .await
    .expect("connect");
    assert_eq!(store.insert(delivery("p0")).await, Ok(Inserted::New));
    let claimed = crate::support::claim_one(&store)
        .await
        .expect("claim")
        .remove(0);
    // Connections in the pool, so that the insert and the probe below each take one that is
    // open (and then silent), not a new one that the connect timeout would end. Five, not the
    // two needed: a connection still busy with something else at the freeze (an announcement
    // after the claim, on a loaded machine) must not leave the probe without one.
    let primed = tokio::join!(
        store.check_writable(),
        store.check_writable(),
        store.check_writable(),
        store.check_writable(),
        store.check_writable()
    );
    assert_eq!(primed, (Ok(()), Ok(()), Ok(()), Ok(()), Ok(())));
    frozen.store(true, Ordering::SeqCst);
    let unavailable = |result: Result<_, StoreError>, what: &str| match result {
        Err(StoreError::Unavailable(why)) => {
            // Silent on a pooled connection, or on connecting anew (the connection the insert
            // timed out on was closed).
            assert!(
                why.contains("did not answer within")
                    || why.contains("no database connection in time"),
                "{what}: {why}"
            );
        }
        other => panic!("{what} while the server is silent: {other:?}"),
    };
    let bounded = Duration::from_secs(5);
    let insert = tokio::time::timeout(bounded, store.insert(delivery("p1")))
        .await
        .expect("the insert is answered in time");
    // On a connection from the pool: the operation timeout, not the connect timeout.
    match &insert {
        Err(StoreError::Unavailable(why)) => {
            assert!(why.contains("did not answer within 500ms"), "{why}")
        }
        other => panic!("insert: {other:?}"),
    }
    unavailable(insert.map(|_| ()), "insert");
    // The readiness probe's write, too, on a pooled connection.
    let probe = tokio::time::timeout(bounded, store.check_writable())
        .await
        .expect("the probe is answered in time");
    match &probe {
        Err(StoreError::Unavailable(why)) => {
            assert!(why.contains("did not answer within"), "{why}")
        }
        other => panic!("check_writable: {other:?}"),
    }
    let claim = tokio::time::timeout(
        bounded,
        store.claim(
            "default",
            LeaseRequest::new("w2", Duration::from_secs(30)),
            10,
            SystemTime::now(),
        ),
    )
    .await
    .expect("the claim is answered in time");
    unavailable(claim.map(|_| ()), "claim");
    let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Success);
    let finish = tokio::time::timeout(
        bounded,
        store.finish(&claimed.lease, Finish::Delivered, record.clone()),
    )
    .await
    .expect("the outcome is answered in time");
    unavailable(finish.map(|_| ()), "finish");
    // The server answers again: each connection that timed out was closed, and the ones still
    // frozen in the pool time out in turn, so within a few tries everything works.
    frozen.store(false, Ordering::SeqCst);
    let mut stored = None;
    for _ in 0..40 {
        match store.insert(delivery("p1")).await {
            Ok(inserted) => {
                stored = Some(inserted);
                break;
            }
            Err(StoreError::Unavailable(_)) => continue,
            Err(other) => panic!("insert after the thaw: {other:?}"),
        }
    }
    assert_eq!(
        stored,
        Some(Inserted::New),
        "the silent insert never reached the server"
    );
    let mut finished = None;
    for _ in 0..40 {
        match store
            .finish(&claimed.lease, Finish::Delivered, record.clone())
            .await
        {
            Ok(held) => {
                finished = Some(held);
                break;
            }
            Err(StoreError::Unavailable(_)) => continue,
            Err(other) => panic!("finish after the thaw: {other:?}"),
        }
    }
    assert_eq!(finished, Some(true), "the lease still holds");
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(stats.events, 2);
    store.close().await;
}

/// A server that stops answering: the reads and the admin writes (list, an event with its
/// attempts, stats, replays by hash and by filter, a requeue of the dead, a purge) waited for
/// ever, and with them `ccai events` and each request of `ccai ui`. Each now fails as
/// unavailable after the operation timeout, on a connection from the pool (which it closes);
/// once the server answers again, each works and finds the store as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_fails_reads_and_admin_writes_in_time_then_recovers() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "partread");
    let (proxied, frozen) = freezable_proxy(&url).await;
    let store = PostgresStore::connect(
        &proxied,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .connect_timeout(Duration::from_secs(1))
            .operation_timeout(Duration::from_millis(500))
            .listen(false),
    )
    .await
    .expect("connect");
    // d0 dead, d1 and d2 delivered.
    for hash in ["d0", "d1", "d2"] {
        assert_eq!(store.insert(delivery(hash)).await, Ok(Inserted::New));
    }
    let lease = crate::support::claim_one(&store).await.expect("claim")[0]
        .lease
        .clone();
    crate::support::finish_dead(&store, &lease).await;
    for _ in 0..2 {
        let lease = crate::support::claim_one(&store).await.expect("claim")[0]
            .lease
            .clone();
        let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Success);
        let held = store.finish(&lease, Finish::Delivered, record).await;
        assert_eq!(held, Ok(true));
    }
    // More connections in the pool than operations below, so that each meets a connection that
    // is open and then silent (the operation timeout), not a new one (the connect timeout).
    let probes: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.check_writable().await })
        })
        .collect();
    for probe in probes {
        assert_eq!(probe.await.expect("task"), Ok(()));
    }

    let d0_only = || ListFilter::new().event_hash("d0");
    let d1_only = || ListFilter::new().event_hash("d1");
    let purge_at = || SystemTime::now() + Duration::from_secs(1);
    let list = || store.list(ccai::inbox::ListRequest::new(ListFilter::new(), 10));
    let get = || store.get("d0");
    let get_for = || store.get_for("1231", "d1");
    let stats = || store.stats(SystemTime::now());
    let requeue = || store.requeue_dead(d0_only());
    let replay_filter = || store.replay(ReplayTarget::Filter(d1_only()));
    let replay_hash = || store.replay(ReplayTarget::Hash("d0".into()));
    let purge = || store.purge(Retention::new(Duration::ZERO, Duration::ZERO), purge_at());

    frozen.store(true, Ordering::SeqCst);
    async fn silent<T: std::fmt::Debug>(
        what: &str,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) {
        let answered = tokio::time::timeout(Duration::from_secs(5), operation)
            .await
            .unwrap_or_else(|_| panic!("{what}: not answered within 5 s"));
        match answered {
            // The operation timeout on a pooled connection, not the connect timeout.
            Err(StoreError::Unavailable(why)) => {
                assert!(why.contains("did not answer within 500ms"), "{what}: {why}")
            }
            other => panic!("{what} while the server is silent: {other:?}"),
        }
    }
    silent("list", list()).await;
    silent("get", get()).await;
    silent("get_for", get_for()).await;
    silent("stats", stats()).await;
    silent("requeue_dead", requeue()).await;
    silent("replay by filter", replay_filter()).await;
    silent("replay by hash", replay_hash()).await;
    silent("purge", purge()).await;

    // The server answers again: the connections that timed out were closed, and the ones still
    // silent in the pool time out in turn, so within a few tries each works. Nothing the silent
    // operations sent reached the server: each finds the store as it was.
    frozen.store(false, Ordering::SeqCst);
    async fn answered<T, F: std::future::Future<Output = Result<T, StoreError>>>(
        what: &str,
        operation: impl FnMut() -> F,
    ) -> T {
        answered_after(what, operation).await.0
    }
    /// The answer, and whether a try before it timed out: a write whose answer was late may
    /// still have committed (a loaded machine can take the 500 ms), and the next try then finds
    /// its work done.
    async fn answered_after<T, F: std::future::Future<Output = Result<T, StoreError>>>(
        what: &str,
        mut operation: impl FnMut() -> F,
    ) -> (T, bool) {
        let mut timed_out = false;
        for _ in 0..20 {
            match operation().await {
                Ok(value) => return (value, timed_out),
                Err(StoreError::Unavailable(_)) => timed_out = true,
                Err(other) => panic!("{what} after the thaw: {other:?}"),
            }
        }
        panic!("{what}: still unavailable after the thaw")
    }
    let page = answered("list", list).await;
    assert_eq!(page.events.len(), 3);
    let dead = answered("get", get).await.expect("d0 is stored");
    assert_eq!(dead.summary.deliveries[0].status, DeliveryStatus::Dead);
    assert_eq!(dead.attempts.len(), 1);
    let delivered = answered("get_for", get_for).await.expect("d1 is stored");
    assert_eq!(
        delivered.summary.deliveries[0].status,
        DeliveryStatus::Delivered
    );
    let counts = answered("stats", stats).await;
    assert_eq!(
        (counts.events, counts.deliveries.get("dead").copied()),
        (3, Some(1))
    );
    let (requeued, late) = answered_after("requeue_dead", requeue).await;
    assert!(
        requeued.due == 1 || (late && requeued.due == 0),
        "{requeued:?}"
    );
    let d0 = answered("get", get).await.expect("d0 is stored");
    assert_eq!(d0.summary.deliveries[0].status, DeliveryStatus::Pending);
    // Pending or not, a replay makes its deliveries due: 1 whether or not a late try committed.
    assert_eq!(answered("replay by filter", replay_filter).await.due, 1);
    assert_eq!(answered("replay by hash", replay_hash).await.due, 1);
    // d0 and d1 are pending again; only d2 is finished.
    let (purged, late) = answered_after("purge", purge).await;
    let report = (purged.bodies_purged, purged.events_deleted);
    assert!(report == (1, 1) || (late && report == (0, 0)), "{report:?}");
    let counts = answered("stats", stats).await;
    assert_eq!(counts.events, 2, "d2 deleted, d0 and d1 kept");
    store.close().await;
}

/// A server that stops answering after the schema check, as connect measures the database's
/// clock: connect waited for ever (`ccai events` and `ccai ui` hung before their first read).
/// It now fails as unavailable after the operation timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_in_time_when_the_clock_measurement_is_not_answered() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "clockfreeze");
    let (proxied, _) =
        proxy_freezing_on(&url, Some(b"extract(epoch from clock_timestamp())")).await;
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        PostgresStore::connect(
            &proxied,
            PostgresOptions::default()
                .schema(schema.name.clone())
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_millis(500))
                .listen(false),
        ),
    )
    .await
    .expect("connect is answered in time");
    match connected {
        Err(StoreError::Unavailable(why)) => {
            assert!(why.contains("did not answer within 500ms"), "{why}")
        }
        other => panic!("connect while the clock query is not answered: {other:?}"),
    }
    // The schema was created before: a proxy that passes everything connects to it.
    let (passing, _) = freezable_proxy(&url).await;
    let store = PostgresStore::connect(
        &passing,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .create(false)
            .listen(false),
    )
    .await
    .expect("connect through a proxy that answers");
    assert_eq!(store.insert(delivery("c0")).await, Ok(Inserted::New));
    store.close().await;
}

/// A claim whose answer does not come back in time (a slow network, a server slow to answer):
/// the claim fails as unavailable, and what it locked stays due. It committed before the
/// answer was sent, so its leases held until they lapsed, and each delivery then counted a
/// spurious `lease_expired` attempt; now the transaction commits only once the rows arrived,
/// and the server rolls it back when the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_answer_is_lost_leaves_its_deliveries_due() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "lostclaim");
    // The lease owner is a parameter of the claim's execution (not of its preparation).
    let (proxied, _) = proxy(
        &url,
        Some(Fault::LoseAnswersAfter(b"owner-whose-answer-is-lost")),
    )
    .await;
    let store = PostgresStore::connect(
        &proxied,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .connect_timeout(Duration::from_secs(1))
            .operation_timeout(Duration::from_millis(500))
            .listen(false),
    )
    .await
    .expect("connect");
    assert_eq!(store.insert(delivery("l0")).await, Ok(Inserted::New));
    let lost = tokio::time::timeout(
        Duration::from_secs(5),
        store.claim(
            "default",
            LeaseRequest::new("owner-whose-answer-is-lost", Duration::from_secs(600)),
            10,
            SystemTime::now(),
        ),
    )
    .await
    .expect("the claim is answered in time");
    match lost {
        Err(StoreError::Unavailable(why)) => {
            assert!(why.contains("did not answer within 500ms"), "{why}")
        }
        other => panic!("a claim whose answer is lost: {other:?}"),
    }
    // Another worker finds the delivery due (once the server has seen the connection close),
    // as a first attempt, and no attempt was counted for the lost claim.
    let again =
        crate::support::wait_for("the delivery due again", Duration::from_secs(5), || async {
            match crate::support::claim_one(&store).await {
                Ok(mut claimed) if !claimed.is_empty() => Some(claimed.remove(0)),
                _ => None,
            }
        })
        .await;
    assert_eq!(again.attempt, 1);
    let detail = store.get("l0").await.expect("get").expect("l0 is stored");
    assert!(detail.attempts.is_empty(), "{:?}", detail.attempts);
    store.close().await;
}

/// A claim that its caller gives up on (its future dropped) before the answer came: its
/// connection, with the claim's transaction open, would have gone back to the pool, the rows
/// locked for as long as the connection lived. It is closed instead, and the server rolls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_given_up_by_its_caller_leaves_its_deliveries_due() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "dropclaim");
    let (proxied, _) = proxy(&url, Some(Fault::LoseAnswersAfter(b"owner-who-gives-up"))).await;
    let store = PostgresStore::connect(
        &proxied,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .connect_timeout(Duration::from_secs(1))
            // Longer than the test: the caller, not the store, gives up.
            .operation_timeout(Duration::from_secs(600))
            .listen(false),
    )
    .await
    .expect("connect");
    assert_eq!(store.insert(delivery("g0")).await, Ok(Inserted::New));
    let given_up = tokio::time::timeout(
        Duration::from_millis(300),
        store.claim(
            "default",
            LeaseRequest::new("owner-who-gives-up", Duration::from_secs(600)),
            10,
            SystemTime::now(),
        ),
    )
    .await;
    assert!(given_up.is_err(), "the claim was answered: {given_up:?}");
    let again =
        crate::support::wait_for("the delivery due again", Duration::from_secs(5), || async {
            let claimed = tokio::time::timeout(
                Duration::from_millis(500),
                crate::support::claim_one(&store),
            )
            .await;
            match claimed {
                Ok(Ok(mut claimed)) if !claimed.is_empty() => Some(claimed.remove(0)),
                _ => None,
            }
        })
        .await;
    assert_eq!(again.attempt, 1);
    store.close().await;
}

/// A release whose lease write is answered, and whose announcement to the other instances
/// (a `NOTIFY` on a pooled connection) is not: the release waited for ever, and with it the
/// dispatcher's shutdown that releases what it abandons. The announcement is best effort: it
/// gives up after the operation timeout, and the release is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_answered_in_time_when_its_announcement_is_not() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "announce");
    let (proxied, _) = proxy_freezing_on(&url, Some(b"SELECT pg_notify($1, '')")).await;
    let store = PostgresStore::connect(
        &proxied,
        PostgresOptions::default()
            .schema(schema.name.clone())
            .connect_timeout(Duration::from_secs(1))
            .operation_timeout(Duration::from_millis(500))
            .listen(false),
    )
    .await
    .expect("connect");
    assert_eq!(store.insert(delivery("a0")).await, Ok(Inserted::New));
    let claimed = crate::support::claim_one(&store)
        .await
        .expect("claim")
        .remove(0);
    let released = tokio::time::timeout(Duration::from_secs(5), store.release(&claimed.lease))
        .await
        .expect("the release is answered in time");
    assert_eq!(released, Ok(true));
    // The delivery is due again, and the store still works.
    let again = crate::support::claim_one(&store)
        .await
        .expect("claim again");
    assert_eq!(again.len(), 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_elsewhere_wakes_this_store() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "notify");
    let options = PostgresOptions::default().schema(schema.name.clone());
    let sender = PostgresStore::connect(&url, options.clone().listen(false))
        .await
        .expect("connect");
    let listener = PostgresStore::connect(&url, options)
        .await
        .expect("connect");
    let notifier = listener.notifier();
    // Let the listener connect, and use up the wake-up it gives when it does.
    while tokio::time::timeout(Duration::from_millis(300), notifier.notified())
        .await
        .is_ok()
    {}
    let woken = notifier.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    assert_eq!(sender.insert(delivery("n1")).await, Ok(Inserted::New));
    tokio::time::timeout(Duration::from_secs(3), woken)
        .await
        .expect("NOTIFY from the other instance wakes the listener");
}

/// A store on a fresh schema holding one event received `age` ago whose delivery ended as
/// `end`, with a plain connection on the side.
async fn finished_event(
    url: &str,
    tag: &str,
    hash: &str,
    age: Duration,
    end: Finish,
) -> (TempSchema, PostgresStore) {
    let schema = TempSchema::new(url, tag);
    let store = PostgresStore::connect(url, PostgresOptions::default().schema(schema.name.clone()))
        .await
        .expect("connect");
    let received = SystemTime::now() - age;
    store
        .insert(delivery(hash).received_at(received))
        .await
        .expect("insert");
    let claimed = crate::support::claim_one(&store).await.expect("claim");
    let outcome = match end {
        Finish::Delivered => AttemptOutcome::Success,
        _ => AttemptOutcome::Failure,
    };
    let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, outcome);
    assert!(store
        .finish(&claimed[0].lease, end, record)
        .await
        .expect("finish"));
    (schema, store)
}

/// Whether a backend of this database waits for a lock in a statement naming `schema`, or for
/// an advisory lock.
async fn waiting(client: &tokio_postgres::Client, schema: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND (position($1 in query) > 0 OR wait_event = 'advisory')",
            &[&schema],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Waits until `n` backends wait for a lock (see [`waiting`]) or `done` says to stop.
async fn until_waiting(
    client: &tokio_postgres::Client,
    schema: &str,
    n: i64,
    done: impl Fn() -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while waiting(client, schema).await < n && !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `first` (a write that makes the event due again), then a purge with `retention`, each on
/// its own connection, while a third session holds the deliveries' rows: `first` surely takes
/// its snapshot before the purge runs. Returns both results once the rows are released.
async fn race_with_purge<T: Send + 'static>(
    url: &str,
    schema: &str,
    store: &PostgresStore,
    first: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    retention: Retention,
) -> (T, PurgeReport) {
    let locker = raw(url).await;
    let watcher = raw(url).await;
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM \"{schema}\".deliveries FOR UPDATE"
        ))
        .await
        .expect("hold the deliveries");
    let first = tokio::spawn(first);
    until_waiting(&watcher, schema, 1, || first.is_finished()).await;
    let purging = store.clone();
    let purge = tokio::spawn(async move { purging.purge(retention, SystemTime::now()).await });
    until_waiting(&watcher, schema, 2, || purge.is_finished()).await;
    locker
        .batch_execute("COMMIT")
        .await
        .expect("release the deliveries");
    (
        first.await.expect("first task").expect("first write"),
        purge.await.expect("purge task").expect("purge"),
    )
}

/// A replay and a purge at once, on two connections. The replay read the body in its snapshot,
/// the purge then removed it: the delivery was pending with no body, and the next claim handed
/// on an empty body with the original signature. The purge lock now makes the purge wait for
/// the replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_racing_a_purge_never_leaves_a_pending_delivery_without_its_body() {
    let url = postgres_url_or_skip!();
    let day = Duration::from_secs(86_400);
    let (schema, store) = finished_event(&url, "racebody", "x", 40 * day, Finish::Delivered).await;
    let replaying = store.clone();
    let (replayed, purged) = race_with_purge(
        &url,
        &schema.name,
        &store,
        async move {
            replaying
                .replay(ReplayTarget::Hash("x".into()))
                .await
                .map(|r| r.due)
        },
        Retention::new(30 * day, 1000 * day),
    )
    .await;
    let event = store.get("x").await.expect("get").expect("kept");
    let status = event.summary.deliveries[0].status;
    assert!(
        !(status == DeliveryStatus::Pending && event.body.is_none()),
        "pending with its body purged (replayed {replayed}, {purged:?})"
    );
    // The replay came first: the delivery is pending and the purge left the body alone.
    assert_eq!((replayed, purged.bodies_purged), (1, 0));
    let claimed = crate::support::claim_one(&store).await.expect("claim");
    assert_eq!(claimed[0].body.as_ref(), delivery("x").body.as_ref());
}

/// A requeue and a purge at once: the purge read the delivery as dead in its snapshot and
/// deleted the event after the requeue had made it pending again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeue_racing_a_purge_never_loses_the_pending_delivery() {
    let url = postgres_url_or_skip!();
    let day = Duration::from_secs(86_400);
    let (schema, store) = finished_event(&url, "racerow", "y", 100 * day, Finish::Dead).await;
    let requeueing = store.clone();
    let (requeued, purged) = race_with_purge(
        &url,
        &schema.name,
        &store,
        async move {
            requeueing
                .requeue_dead(ListFilter::new())
                .await
                .map(|r| r.due)
        },
        Retention::default(),
    )
    .await;
    assert_eq!(requeued, 1);
    assert_eq!(purged.events_deleted, 0, "{purged:?}");
    let event = store.get("y").await.expect("get").expect("kept");
    assert_eq!(event.summary.deliveries[0].status, DeliveryStatus::Pending);
}

/// With `create(false)`, a schema holding no inbox is refused and left without tables (a
/// mistyped name is not a new empty inbox); an existing inbox opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_that_must_exist_is_not_created() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "nocreate");
    let existing_only = || PostgresOptions::new().schema(&schema.name).create(false);
    let error = PostgresStore::connect(&url, existing_only())
        .await
        .expect_err("no inbox there");
    assert!(matches!(error, StoreError::InvalidRequest(_)), "{error:?}");
    assert!(error.to_string().contains("holds no inbox"), "{error}");
    let client = raw(&url).await;
    let created: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[&schema.name],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(created, 0, "nothing created");
    let store = PostgresStore::connect(&url, PostgresOptions::new().schema(&schema.name))
        .await
        .expect("created");
    store.insert(delivery("kept")).await.expect("insert");
    let reopened = PostgresStore::connect(&url, existing_only())
        .await
        .expect("an existing inbox opens");
    assert!(reopened.get("kept").await.expect("get").is_some());
}

/// `check_writable` writes: a read-only session (as on a standby or with a read-only role)
/// fails it, where a read passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_writable_fails_on_a_read_only_database() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "readonly");
    let options = || PostgresOptions::new().schema(&schema.name).listen(false);
    let writable = PostgresStore::connect(&url, options())
        .await
        .expect("connect");
    writable.check_writable().await.expect("writable");
    let read_only = with_param(&url, "options=-c%20default_transaction_read_only%3Don");
    let store = PostgresStore::connect(&read_only, options())
        .await
        .expect("an existing inbox opens read-only");
    store.stats(SystemTime::now()).await.expect("reads pass");
    let error = store.check_writable().await.expect_err("read-only");
    assert!(error.to_string().contains("read-only"), "{error}");
    assert!(store.insert(delivery("refused")).await.is_err());
}

/// A queue, batch or insert concurrency of `usize::MAX` is clamped: the store used to panic at
/// connect (a channel or semaphore that large).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_queue_options_are_clamped_and_the_store_works() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "extreme");
    let mut options = PostgresOptions::default()
        .schema(schema.name.clone())
        .queue_capacity(usize::MAX)
        .max_batch(usize::MAX)
        .insert_concurrency(usize::MAX);
    assert_eq!(options.queue_capacity, ccai::inbox::MAX_QUEUE_CAPACITY);
    // Set directly on the public fields: the store clamps what it uses.
    options.queue_capacity = usize::MAX;
    options.insert_concurrency = usize::MAX;
    let store = PostgresStore::connect(&url, options)
        .await
        .expect("connect");
    let d = NewDelivery::new("1231", "extreme", "message.sent", &b"{}"[..]);
    assert_eq!(store.insert(d).await, Ok(Inserted::New));
}

/// Outcomes racing releases and heartbeats of the same leases from another instance (other
/// connections): each lease ends once, by its finish or its release, and an attempt is recorded
/// only for a finish that counted; after close, a finish is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outcomes_race_releases_from_another_instance() {
    let url = postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "race");
    let options = || PostgresOptions::default().schema(schema.name.clone());
    let one = PostgresStore::connect(&url, options()).await.expect("one");
    let two = PostgresStore::connect(&url, options()).await.expect("two");
    for i in 0..200 {
        one.insert(delivery(&format!("r{i}")))
            .await
            .expect("insert");
    }
    let t = SystemTime::now();
    let leases: Vec<_> = one
        .claim(
            "default",
            LeaseRequest::new("w", Duration::from_secs(60)),
            200,
            t,
        )
        .await
        .expect("claim")
        .into_iter()
        .map(|c| c.lease)
        .collect();
    assert_eq!(leases.len(), 200);
    let mut tasks = Vec::new();
    for lease in leases {
        let (one, two) = (one.clone(), two.clone());
        tasks.push(tokio::spawn(async move {
            let record = AttemptRecord::new(t, Duration::from_millis(1), AttemptOutcome::Success);
            let (finished, released, extended) = tokio::join!(
                one.finish(&lease, Finish::Delivered, record),
                two.release(&lease),
                two.extend_lease(&lease, t + Duration::from_secs(120)),
            );
            (
                finished.expect("finish"),
                released.expect("release"),
                extended.expect("extend"),
            )
        }));
    }
    let (mut finished, mut released) = (0, 0);
    for task in tasks {
        let (f, r, _) = task.await.expect("task");
        assert!(f ^ r, "a lease ended twice or never");
        finished += usize::from(f);
        released += usize::from(r);
    }
    let stats = one.stats(SystemTime::now()).await.expect("stats");
    assert_eq!(stats.count(DeliveryStatus::Delivered), finished as u64);
    assert_eq!(stats.count(DeliveryStatus::Pending), released as u64);
    let client = raw(&url).await;
    let attempts = rows_in(&client, &schema.name, "attempts").await;
    assert_eq!(attempts, finished as i64);
    // Closed: a finish is answered at once, an error.
    let claimed = crate::support::claim_one(&two).await.expect("claim");
    one.close().await;
    if let Some(c) = claimed.first() {
        let record = AttemptRecord::new(t, Duration::ZERO, AttemptOutcome::Success);
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            one.finish(&c.lease, Finish::Delivered, record),
        )
        .await
        .expect("answered at once");
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "{answer:?}"
        );
    }
    two.close().await;
}

/// The server ends the store's connections while an attempt runs: the release at shutdown is
/// tried again on a new connection (the first call after may fail on the closed one), and the
/// delivery is due at once rather than when its lease lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_released_at_shutdown_after_the_connections_were_closed() {
    use ccai::inbox::{CallbackConsumer, Dispatcher, InboxEvent};
    let url = postgres_url_or_skip!();
    let (schema, store) = store_named_after_its_schema(&url, "release").await;
    let store: Arc<dyn Store> = Arc::new(store);
    let started = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let started = Arc::clone(&started);
        CallbackConsumer::new(move |_event: InboxEvent| {
            started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<(), std::io::Error>>()
        })
    };
    let dispatcher = Dispatcher::builder(Arc::clone(&store), consumer)
        .lease(Duration::from_secs(60))
        .poll_interval(Duration::from_millis(20))
        .start();
    assert_eq!(store.insert(delivery("stuck")).await, Ok(Inserted::New));
    for _ in 0..300 {
        if started.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(started.load(Ordering::SeqCst), 1, "the attempt started");
    let admin = raw(&url).await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&schema.name],
        )
        .await
        .expect("terminate")
        .get(0);
    assert!(killed >= 1, "the store's connections were found");
    let report = dispatcher.shutdown(Duration::ZERO).await;
    assert_eq!(report.released, 1, "{report:?}");
    let stuck = store.get("stuck").await.expect("get").expect("stored");
    let state = &stuck.summary.deliveries[0];
    assert_eq!((state.status, state.attempts), (DeliveryStatus::Pending, 0));
}
