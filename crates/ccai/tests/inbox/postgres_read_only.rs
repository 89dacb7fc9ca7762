//! `PostgresStore` connected with `PostgresOptions::read_only`: a role that may only `SELECT`
//! (granted `USAGE` on the schema and `SELECT` on its tables) reads the inbox; every write answers
//! `StoreError::ReadOnly` without reaching the server, even for a role that could write; the
//! schema is checked, never created or migrated.

use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, ListFilter, ListRequest,
    NewDelivery, PostgresOptions, PostgresStore, ReplayTarget, Retention, Store, StoreError,
    POSTGRES_SCHEMA_VERSION,
};

use crate::postgres::{raw, unique_schema, TempSchema};

fn delivery(hash: &str) -> NewDelivery {
    NewDelivery::new(
        "1231",
        hash,
        "message.sent",
        format!("{{\"h\":\"{hash}\"}}").into_bytes(),
    )
}

/// A login role granted `USAGE` on a schema and `SELECT` on its tables, nothing more; ended
/// (its sessions, its grants, the role) when dropped.
pub(crate) struct ReportingRole {
    admin_url: String,
    pub name: String,
}

impl ReportingRole {
    pub(crate) async fn new(admin_url: &str, schema: &str) -> Self {
        let name = unique_schema("reader");
        let client = raw(admin_url).await;
        client
            .batch_execute(&format!(
                "CREATE ROLE \"{name}\" LOGIN;
                 GRANT USAGE ON SCHEMA \"{schema}\" TO \"{name}\";
                 GRANT SELECT ON ALL TABLES IN SCHEMA \"{schema}\" TO \"{name}\";"
            ))
            .await
            .expect("create the reporting role");
        Self {
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    /// `url` (the test database's) as this role, with `?schema=` `schema`.
    pub(crate) fn url(&self, url: &str, schema: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let host = rest.split_once('@').map_or(rest, |(_, host)| host);
        let separator = if host.contains('?') { '&' } else { '?' };
        format!("{scheme}://{}@{host}{separator}schema={schema}", self.name)
    }
}

impl Drop for ReportingRole {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Its own thread and runtime: this may run inside any runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let client = raw(&url).await;
                client
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                        &[&name],
                    )
                    .await?;
                client
                    .batch_execute(&format!(
                        "DROP OWNED BY \"{name}\"; DROP ROLE IF EXISTS \"{name}\""
                    ))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test role {}", self.name);
        }
    }
}

/// An inbox in `schema` with two events, `h1` pending and `h2` dead, written by the test
/// database's own (superuser) role; closed.
async fn filled(schema: &TempSchema) {
    let store = PostgresStore::connect(
        &schema.url,
        PostgresOptions::new().schema(schema.name.clone()),
    )
    .await
    .expect("connect writable");
    for hash in ["h1", "h2"] {
        store.insert(delivery(hash)).await.expect("insert");
    }
    let lease = LeaseRequest::new("w", Duration::from_secs(30));
    let claimed = store
        .claim("default", lease, 2, SystemTime::now())
        .await
        .expect("claim");
    for claim in claimed {
        let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Failure);
        let finished = if claim.event_hash == "h2" {
            store.finish(&claim.lease, Finish::Dead, record).await
        } else {
            store.release(&claim.lease).await
        };
        assert_eq!(finished, Ok(true));
    }
    store.close().await;
}

/// Everything the schema's tables hold, as text: unchanged means nothing was written.
async fn snapshot(url: &str, schema: &str) -> Vec<String> {
    let client = raw(url).await;
    let mut all = Vec::new();
    for table in ["inbox_schema", "events", "deliveries", "attempts"] {
        let row = client
            .query_one(
                &format!(
                    "SELECT coalesce(string_agg(t::text, ';' ORDER BY t::text), '') FROM \"{schema}\".{table} t"
                ),
                &[],
            )
            .await
            .expect("snapshot");
        all.push(format!("{table}: {}", row.get::<_, String>(0)));
    }
    all
}

fn read_only() -> PostgresOptions {
    PostgresOptions::new().read_only(true)
}

fn is_read_only<T: std::fmt::Debug>(result: Result<T, StoreError>, target: &str) {
    match result {
        Err(StoreError::ReadOnly { path, refused }) => {
            assert_eq!(path, target);
            assert_eq!(refused, "it takes no writes");
        }
        other => panic!("not refused as read-only: {other:?}"),
    }
}

/// Every write of the store answers `ReadOnly`.
async fn every_write_is_refused(store: &PostgresStore) {
    let target = store.target().to_owned();
    is_read_only(store.insert(delivery("h3")).await, &target);
    let lease = LeaseRequest::new("w", Duration::from_secs(30));
    is_read_only(
        store.claim("default", lease, 1, SystemTime::now()).await,
        &target,
    );
    is_read_only(store.replay(ReplayTarget::Hash("h2".into())).await, &target);
    let dead = ListFilter::new().status(DeliveryStatus::Dead);
    is_read_only(store.requeue_dead(dead).await, &target);
    let retention = Retention::new(Duration::ZERO, Duration::ZERO);
    let later = SystemTime::now() + Duration::from_secs(3600);
    is_read_only(store.purge(retention, later).await, &target);
    is_read_only(store.check_writable().await, &target);
    let error = store.insert(delivery("h4")).await.expect_err("refused");
    assert!(!error.is_transient(), "the same handle never will write");
    let told = error.to_string();
    assert!(
        told.contains("was opened read-only")
            && told.contains("open it writable, as a role that may write its schema"),
        "{told}"
    );
}

/// A role that may only `SELECT` lists, shows and counts; every write is refused as read-only.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_may_only_select_reads_and_every_write_is_refused_saying_so() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "ro_role");
    filled(&schema).await;
    let role = ReportingRole::new(&url, &schema.name).await;
    let before = snapshot(&url, &schema.name).await;

    let store = PostgresStore::connect(&role.url(&url, &schema.name), read_only())
        .await
        .expect("connect read-only as the reporting role");
    assert!(
        store.target().contains(&role.name) && !store.target().contains('?'),
        "{}",
        store.target()
    );
    let page = store
        .list(ListRequest::new(ListFilter::new(), 10))
        .await
        .expect("list");
    assert_eq!(page.events.len(), 2);
    let detail = store.get("h1").await.expect("get").expect("stored");
    assert_eq!(detail.body.as_deref(), Some(&b"{\"h\":\"h1\"}"[..]));
    let stats = store.stats(SystemTime::now()).await.expect("stats");
    assert_eq!((stats.events, stats.count(DeliveryStatus::Dead)), (2, 1));
    assert_eq!(
        store.destinations().await.expect("destinations"),
        ["default"]
    );

    every_write_is_refused(&store).await;
    store.close().await;
    assert_eq!(
        snapshot(&url, &schema.name).await,
        before,
        "nothing written"
    );
}

/// A role that may read some tables but not all (here not the attempts) connects, and a read it
/// may not do says so: the schema's columns are checked whatever this role's privileges, where
/// the information schema shows only the columns a role may use, and a table it may not read
/// was refused as missing ("changed outside ccai: restore it from a backup").
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_may_not_read_every_table_is_not_told_that_one_is_missing() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "ro_partial");
    filled(&schema).await;
    let role = ReportingRole::new(&url, &schema.name).await;
    raw(&url)
        .await
        .batch_execute(&format!(
            "REVOKE SELECT ON \"{}\".attempts FROM \"{}\"",
            schema.name, role.name
        ))
        .await
        .expect("revoke");

    let store = PostgresStore::connect(&role.url(&url, &schema.name), read_only())
        .await
        .expect("connect read-only as a role that may not read the attempts");
    // A read of the attempts says why it fails: the privilege, not a missing table.
    let error = store
        .list(ListRequest::new(ListFilter::new(), 10))
        .await
        .expect_err("the attempts may not be read");
    assert!(
        error
            .to_string()
            .contains("permission denied for table attempts"),
        "{error}"
    );
    store.close().await;
}

/// A role that could write, connected read-only, writes nothing either: the writes are refused
/// before the server, and the sessions are read-only on the server too.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_store_writes_nothing_even_for_a_role_that_could() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "ro_owner");
    filled(&schema).await;
    let before = snapshot(&url, &schema.name).await;

    let store = PostgresStore::connect(&schema.url, read_only().schema(schema.name.clone()))
        .await
        .expect("connect read-only");
    every_write_is_refused(&store).await;
    assert_eq!(
        snapshot(&url, &schema.name).await,
        before,
        "nothing written"
    );

    // Beside a writer: its commits are read.
    let writer = PostgresStore::connect(
        &schema.url,
        PostgresOptions::new().schema(schema.name.clone()),
    )
    .await
    .expect("connect writable");
    writer.insert(delivery("h5")).await.expect("insert");
    assert!(store.get("h5").await.expect("get").is_some());
    writer.close().await;
    store.close().await;
}

/// The sessions of a read-only store are read-only on the server: a read that would write (here
/// the attempts table is a view whose every read logs itself through a function) is refused by
/// the server, so no code path of the store could write.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_stores_sessions_are_read_only_on_the_server() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "ro_session");
    filled(&schema).await;
    let s = &schema.name;
    let admin = raw(&url).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE \"{s}\".reads (at timestamptz NOT NULL DEFAULT now());
             CREATE FUNCTION \"{s}\".logged() RETURNS boolean LANGUAGE sql VOLATILE
                 AS $$ INSERT INTO \"{s}\".reads DEFAULT VALUES RETURNING true $$;
             ALTER TABLE \"{s}\".attempts RENAME TO attempts_kept;
             CREATE VIEW \"{s}\".attempts AS
                 SELECT a.* FROM \"{s}\".attempts_kept a, (SELECT \"{s}\".logged()) logged;"
        ))
        .await
        .expect("a view whose reads write");
    let logged = || async {
        admin
            .query_one(&format!("SELECT count(*) FROM \"{s}\".reads"), &[])
            .await
            .expect("count")
            .get::<_, i64>(0)
    };

    let store = PostgresStore::connect(&schema.url, read_only().schema(s.clone()))
        .await
        .expect("connect read-only");
    let error = store
        .get("h2")
        .await
        .expect_err("the server refuses the write");
    assert!(
        error.to_string().contains("read-only transaction"),
        "{error}"
    );
    store.close().await;
    assert_eq!(logged().await, 0, "nothing written");

    // The same read on a writable store writes: the view works as meant.
    let writable = PostgresStore::connect(&schema.url, PostgresOptions::new().schema(s.clone()))
        .await
        .expect("connect writable");
    assert!(writable.get("h2").await.expect("get").is_some());
    writable.close().await;
    assert!(logged().await > 0, "the read logged itself");
}

/// An older schema is refused (a writable connect must migrate it first), a newer one as ever, a
/// schema without an inbox or lacking a column too; nothing is created or migrated.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_connect_migrates_nothing_and_creates_nothing() {
    let url = crate::postgres_url_or_skip!();
    let schema = TempSchema::new(&url, "ro_schema");
    filled(&schema).await;
    let admin = raw(&url).await;
    let s = &schema.name;
    let connect = || PostgresStore::connect(&schema.url, read_only().schema(s.clone()));

    admin
        .batch_execute(&format!(
            "UPDATE \"{s}\".inbox_schema SET version = {}",
            POSTGRES_SCHEMA_VERSION - 1
        ))
        .await
        .expect("an older version");
    let before = snapshot(&url, s).await;
    match connect().await {
        Err(StoreError::ReadOnly { refused, path }) => {
            assert!(path.contains(s.as_str()), "{path}");
            assert!(
                refused.contains(&format!("its schema {}", POSTGRES_SCHEMA_VERSION - 1))
                    && refused.contains("needs one writable open first"),
                "{refused}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&url, s).await, before, "not migrated");

    admin
        .batch_execute(&format!(
            "UPDATE \"{s}\".inbox_schema SET version = {}",
            POSTGRES_SCHEMA_VERSION + 1
        ))
        .await
        .expect("a newer version");
    let newer = connect().await.expect_err("newer");
    assert!(
        matches!(newer, StoreError::NewerSchema { found, .. } if found == POSTGRES_SCHEMA_VERSION + 1),
        "{newer:?}"
    );

    admin
        .batch_execute(&format!(
            "UPDATE \"{s}\".inbox_schema SET version = {POSTGRES_SCHEMA_VERSION};
             ALTER TABLE \"{s}\".events DROP COLUMN method;"
        ))
        .await
        .expect("a column dropped");
    let lacking = connect().await.expect_err("lacks a column");
    assert!(
        matches!(&lacking, StoreError::MissingColumns { columns, .. } if columns == &["method"]),
        "{lacking:?}"
    );

    // No inbox in the schema: refused, and the schema is not created.
    let missing = TempSchema::new(&url, "ro_missing");
    let refused = PostgresStore::connect(&missing.url, read_only().schema(missing.name.clone()))
        .await
        .expect_err("no inbox");
    assert!(
        matches!(&refused, StoreError::InvalidRequest(why) if why.contains("holds no inbox")),
        "{refused:?}"
    );
    let created: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&missing.name],
        )
        .await
        .expect("pg_namespace")
        .get(0);
    assert_eq!(created, 0, "nothing created");
}
