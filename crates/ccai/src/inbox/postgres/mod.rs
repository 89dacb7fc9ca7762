//! [`PostgresStore`]: the [`Store`] on a PostgreSQL database shared by several receivers.

mod batch;
mod clock;
mod connect;
mod filter;
mod finish;
mod listen;
mod probe;
mod queries;
mod read_limit;
mod schema;
mod writes;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use deadpool_postgres::Pool;
use tokio::sync::Notify;

use self::batch::Batcher;
use self::connect::{pg_error, pool_error};
use self::finish::Finisher;
use self::read_limit::ReadLimit;
use super::sqlite::convert::sha256_hex;
use super::sqlite::read_deadline::Read;
use super::store::{checked_destinations, CloseFuture};
use super::{
    AttemptRecord, BatchHistogram, ClaimedDelivery, EventDetail, Finish, Inserted, Lease,
    LeaseRequest, ListFilter, ListRequest, NewDelivery, Page, PurgeReport, ReplayReport,
    ReplayTarget, Retention, Stats, Store, StoreError, StoreFuture, DEFAULT_DESTINATION,
};

/// The newest version of the PostgreSQL schema this build of ccai knows.
pub const POSTGRES_SCHEMA_VERSION: i64 = schema::SCHEMA_VERSION;

/// The PostgreSQL schema the store's tables live in unless the URL (`?schema=`) or
/// [`PostgresOptions::schema`] names another.
pub const DEFAULT_POSTGRES_SCHEMA: &str = "ccai_inbox";

/// Default [`PostgresOptions::operation_timeout`]: 10 s.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How a [`PostgresStore`] connects and batches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The PostgreSQL schema of the store's tables (default: the URL's `schema` parameter, else
    /// [`DEFAULT_POSTGRES_SCHEMA`]). Letters, digits and `_`.
    pub schema: Option<String>,
    /// The destinations each new event gets a delivery for (default `["default"]`).
    pub destinations: Vec<String>,
    /// Pooled connections at most (default 16).
    pub pool_size: usize,
    /// How long connecting, or waiting for a pooled connection, may take before an operation
    /// fails with [`StoreError::Unavailable`] (default 5 s).
    pub connect_timeout: Duration,
    /// How long each operation may wait for the database before it fails with
    /// [`StoreError::Unavailable`] and its connection is closed (default 10 s): a batch of
    /// inserts, a claim, a batch of outcomes, a lease's extension or release,
    /// [`check_writable`](PostgresStore::check_writable), and the reads and admin writes (list,
    /// get, stats, replay, requeue, purge) alike. Without it, a database that stops answering
    /// with no error (a network partition, a frozen host) would hold every request until the
    /// operating system gave up on the connection, many minutes later; with it, a receiver
    /// answers 503 and the sender retries, and `ccai events` or a `ccai ui` request reports the
    /// error. An insert whose commit reached the database just before the time ran out is stored
    /// although it was answered 503: the sender's retry is then a duplicate, answered 200. A
    /// claim out of time is rolled back (it commits only once its rows arrived), so its
    /// deliveries stay due and count no attempt. The URL's `operation_timeout` parameter
    /// (seconds), if any, takes precedence.
    ///
    /// A read (list, get, stats, destinations) is stopped by the server a little sooner: each
    /// runs in a transaction whose `statement_timeout` (`SET LOCAL`, so the pooled session keeps
    /// its own for the writes) is a quarter less, at most 1 s less (9 s of the default 10 s). Such
    /// a read fails with [`StoreError::ReadStopped`], whose message says to narrow the filter of
    /// a list or search, or to try a read without a filter again later: a page's live refresh
    /// does not repeat it, as it does an unavailable database. A read waiting for a lock another
    /// session holds (an `ALTER TABLE`, a `VACUUM FULL`, a `LOCK TABLE`) is stopped sooner still
    /// (its `lock_timeout`, a quarter below the `statement_timeout`, at most 1 s below) with the
    /// same error, saying so: try again later, and find the session in `pg_locks`. Both stop at
    /// the largest the server takes (2^31 - 1 ms, 24.8 days). Writes, claims and outcomes get
    /// no statement or lock timeout of ours.
    ///
    /// A purge, or a replay or requeue by filter, is bounded by the same time (a hang is worse
    /// than an error that says what to raise): each is one transaction, so one cut short before
    /// its commit reached the server changes nothing (the server rolls it back when it finds the
    /// connection closed: within a second on PostgreSQL 14 and later, which each connection asks
    /// to check, while a statement runs, that its client is still there), and on a large inbox it may need a longer timeout for that run
    /// (`ccai events purge --store 'postgres://…?operation_timeout=600'`). Only the creation or
    /// migration of the schema on [`connect`](PostgresStore::connect) is not bounded (building an
    /// index on a large inbox, or waiting for another instance's migration, can take long);
    /// connecting itself gives up after [`connect_timeout`](Self::connect_timeout).
    pub operation_timeout: Duration,
    /// How many inserts may wait for the collector; beyond that inserts fail at once with
    /// [`StoreError::Overloaded`] (default 4096).
    pub queue_capacity: usize,
    /// The most inserts committed in one transaction (default 256).
    pub max_batch: usize,
    /// How many insert transactions may be in flight at once (default 1). Fewer means larger
    /// batches (each waits for the previous commit) and less database CPU per event: on a
    /// 2-core machine one in flight acknowledged more events/s than two (`BENCHMARKS.md`). More
    /// keeps one slow transaction (e.g. waiting for another instance's insert of the same event,
    /// or a slow disk's flush) from holding up the others.
    pub insert_concurrency: usize,
    /// Whether to `LISTEN` for other instances' inserts on a dedicated connection (default on).
    pub listen: bool,
    /// Whether connecting may create the inbox where the schema holds none (default on).
    pub create: bool,
    /// Whether to connect for reading only (default off): see [`read_only`](Self::read_only).
    pub read_only: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            schema: None,
            destinations: vec![DEFAULT_DESTINATION.to_owned()],
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            queue_capacity: 4096,
            max_batch: 256,
            insert_concurrency: 1,
            listen: true,
            create: true,
            read_only: false,
        }
    }
}

impl PostgresOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The PostgreSQL schema of the store's tables.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    queue_setters!("insert");

    /// Pooled connections at most.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long connecting or waiting for a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long each operation may wait for the database (at least 1 ms). See
    /// [`operation_timeout`](Self::operation_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ccai::inbox::PostgresOptions;
    ///
    /// let options = PostgresOptions::new().operation_timeout(Duration::from_secs(3));
    /// assert_eq!(options.operation_timeout, Duration::from_secs(3));
    /// ```
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many insert transactions may be in flight at once.
    pub fn insert_concurrency(mut self, concurrency: usize) -> Self {
        self.insert_concurrency = concurrency.clamp(1, batch::MAX_INSERT_CONCURRENCY);
        self
    }

    /// Whether to `LISTEN` for other instances' inserts.
    pub fn listen(mut self, on: bool) -> Self {
        self.listen = on;
        self
    }

    /// Whether connecting may create the inbox's tables where the schema holds none. Off, for a
    /// tool that only inspects an existing inbox, a mistyped schema name is refused
    /// ([`StoreError::InvalidRequest`]) instead of becoming a new, empty inbox. An older inbox
    /// is still migrated.
    ///
    /// ```
    /// use ccai::inbox::PostgresOptions;
    ///
    /// let existing_only = PostgresOptions::new().create(false);
    /// assert!(!existing_only.create);
    /// ```
    pub fn create(mut self, on: bool) -> Self {
        self.create = on;
        self
    }

    /// Whether to connect for reading only, for a tool that only inspects an inbox with a role
    /// that may read but not write it (a reporting role granted `USAGE` on the schema and
    /// `SELECT` on its tables, or one that lacks any privilege
    /// [`PostgresStore::check_writable`] probes; a hot standby). Nothing is created, migrated or
    /// written: every pooled session is read-only on the server (`SET SESSION CHARACTERISTICS AS
    /// TRANSACTION READ ONLY` as it connects), no `LISTEN` connection is opened, and every
    /// write ([`Store::insert`], [`Store::claim`], [`Store::replay`], [`Store::purge`], …) and
    /// [`PostgresStore::check_writable`] answer [`StoreError::ReadOnly`] without a word to the
    /// server. The schema must hold an inbox of this build's version with all its columns: an
    /// older one needs one writable connect to migrate it first ([`StoreError::ReadOnly`] says
    /// so), a newer one is refused as ever ([`StoreError::NewerSchema`]).
    ///
    /// ```no_run
    /// use ccai::inbox::{NewDelivery, PostgresOptions, PostgresStore, Store, StoreError};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let url = "postgres://reporting@db.internal/webhooks";
    /// let store = PostgresStore::connect(url, PostgresOptions::new().read_only(true)).await?;
    /// let event = NewDelivery::new("1231", "h1", "message.sent", &b"{}"[..]);
    /// assert!(matches!(store.insert(event).await, Err(StoreError::ReadOnly { .. })));
    /// println!("{} events", store.stats(std::time::SystemTime::now()).await?.events);
    /// store.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }
}

/// What the store's tasks share.
pub(crate) struct Shared {
    pool: Pool,
    /// `postgres://user@host:port/db (schema s)`: never the password.
    shown: Arc<str>,
    /// The quoted schema name.
    ident: String,
    /// Takes the schema's migration lock shared ([`schema::write_lock`]).
    write_lock: String,
    /// [`PostgresStore::check_writable`]'s statement ([`probe::statement`]).
    writable_probe: String,
    destinations: Vec<String>,
    /// The `NOTIFY` channel of this schema.
    channel: String,
    /// Woken when deliveries may have become due (an insert here or, through `LISTEN`, elsewhere).
    wake: Arc<Notify>,
    /// Due times and leases are on the database's clock; this converts.
    clock: clock::DbClock,
    /// How long each operation may wait for the database ([`Shared::within`]).
    operation_timeout: Duration,
}

impl Shared {
    /// `template` with `{s}` replaced by the quoted schema and `{v}` by [`schema::SCHEMA_VERSION`].
    fn sql(&self, template: &str) -> String {
        template
            .replace("{s}", &self.ident)
            .replace("{v}", &schema::SCHEMA_VERSION.to_string())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(&self.shown, e))
    }

    fn error(&self, error: &tokio_postgres::Error) -> StoreError {
        pg_error(&self.shown, error)
    }

    /// Runs `work` on a pooled connection within [`operation_timeout`](Self::operation_timeout):
    /// every operation that waits for the database goes through here. Out of time (a network
    /// partition, a frozen host: no error, no answer), it is [`StoreError::Unavailable`], so a
    /// receiver answers 503 and the sender retries instead of waiting for ever; and the
    /// connection, whose state is unknown (a statement half sent, a transaction open), is closed
    /// instead of going back to the pool: the server rolls back what it had not committed. So is
    /// the connection of work cut short otherwise (its future dropped).
    async fn within<T>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.within_or_close(async move |client| (work(client).await, Reuse::Pool))
            .await
    }

    /// [`within`](Self::within), for `work` that says whether its connection may go back to
    /// the pool ([`Reuse::Close`]: its state is not known to be clean).
    async fn within_or_close<T>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> (Result<T, StoreError>, Reuse),
    ) -> Result<T, StoreError> {
        let mut unfinished = Unfinished(Some(self.client().await?));
        let Some(client) = unfinished.0.as_mut() else {
            return Err(StoreError::Unavailable(format!(
                "{}: no connection",
                self.shown
            )));
        };
        match tokio::time::timeout(self.operation_timeout, work(client)).await {
            Ok((outcome, Reuse::Pool)) => {
                unfinished.finished();
                outcome
            }
            // `unfinished` closes the connection.
            Ok((outcome, Reuse::Close)) => outcome,
            // `unfinished` closes the connection.
            Err(_) => Err(StoreError::Unavailable(format!(
                "{}: the database did not answer within {:?} (the connection was closed; is the \
                 server or the network down, or does the operation, such as a purge of a large \
                 inbox, need a larger operation_timeout?)",
                self.shown, self.operation_timeout
            ))),
        }
    }

    /// Runs the `read` `work` [within](Self::within) the operation timeout, in a transaction
    /// whose statements the server stops a little sooner
    /// ([`read_limit::statement_timeout`]; a wait for a lock sooner still): a slow read (a
    /// search of large bodies, or one held up by another session's lock) then fails with
    /// [`StoreError::ReadStopped`] (mapped by the [`ReadLimit`] `work` is given), which a
    /// program repeating reads by itself does not repeat, while a database that does not answer
    /// at all is still [`StoreError::Unavailable`].
    async fn read<T>(
        &self,
        read: Read,
        work: impl AsyncFnOnce(&deadpool_postgres::Object, &ReadLimit<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let timeout = read_limit::statement_timeout(self.operation_timeout);
        let begin = read_limit::begin(timeout);
        self.within_or_close(async |client| {
            let client: &deadpool_postgres::Object = client;
            let limit = ReadLimit::start(&self.shown, timeout, read);
            // Polled once, `BEGIN` is sent: the read's first statement follows it in the same
            // round trip, and runs in its transaction.
            let mut begun = std::pin::pin!(client.batch_execute(&begin));
            let first_poll =
                std::future::poll_fn(|cx| std::task::Poll::Ready(begun.as_mut().poll(cx))).await;
            let outcome = work(client, &limit).await;
            let begun = match first_poll {
                std::task::Poll::Ready(begun) => begun,
                std::task::Poll::Pending => begun.await,
            };
            // The connection goes back to the pool only with its transaction ended (a stopped
            // statement aborted it): otherwise it is closed.
            match (begun, outcome) {
                (Ok(()), Ok(value)) => match client.batch_execute("COMMIT").await {
                    Ok(()) => (Ok(value), Reuse::Pool),
                    Err(e) => (Err(self.error(&e)), Reuse::Close),
                },
                (begun, outcome) => {
                    let reuse = match client.batch_execute("ROLLBACK").await {
                        Ok(()) => Reuse::Pool,
                        Err(_) => Reuse::Close,
                    };
                    match begun {
                        Err(e) => (Err(self.error(&e)), reuse),
                        Ok(()) => (outcome, reuse),
                    }
                }
            }
        })
        .await
    }

    /// Tells every instance's listeners that deliveries became due (best effort: they poll too).
    /// Within the operation timeout too: a release waits for it.
    async fn announce(&self) {
        wake_all(&self.wake);
        let notified = self
            .within(async |client| {
                client
                    .execute("SELECT pg_notify($1, '')", &[&self.channel])
                    .await
                    .map_err(|e| self.error(&e))
            })
            .await;
        if let Err(error) = notified {
            tracing::debug!(target: "ccai::inbox", %error, "NOTIFY failed");
        }
    }
}

/// Whether a connection whose work is done may go back to the pool.
enum Reuse {
    /// Yes: its session is as the pool handed it out.
    Pool,
    /// No, it is closed: a transaction may be left open on it.
    Close,
}

/// A pooled connection whose work has not finished: dropped so, it is closed instead of going
/// back to the pool.
struct Unfinished(Option<deadpool_postgres::Object>);

impl Unfinished {
    /// The work finished: the connection goes back to the pool.
    fn finished(&mut self) {
        drop(self.0.take());
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// Wakes everyone waiting on `wake` now, and the next to wait if nobody is.
fn wake_all(wake: &Notify) {
    wake.notify_waiters();
    wake.notify_one();
}

/// The durable inbox on PostgreSQL: several receivers (processes or machines) share one
/// database, each event stored once and handed on once across all of them.
///
/// - Inserts from concurrent requests are collected and committed together: one multi-row
///   `INSERT … ON CONFLICT (client_id, event_hash) DO UPDATE … RETURNING` per batch, with
///   `synchronous_commit` on, before [`insert`](Store::insert) returns. The unique index makes
///   the deduplication race-free across instances.
/// - Claims lock due deliveries with `FOR UPDATE SKIP LOCKED`, in batches, and lease each under
///   its own fencing token; only the token's holder can finish, extend or release it, and a
///   lapsed lease is reclaimed by any instance. Outcomes of concurrent attempts are recorded
///   together, one statement for what has queued, each checked against its token.
/// - Each insert of a new event sends a `NOTIFY`; every store `LISTEN`s on a dedicated
///   connection and wakes its [`notifier`](Self::notifier) (pass it to
///   [`DispatcherBuilder::wake_on`](super::DispatcherBuilder::wake_on)); the dispatcher's
///   polling is the fallback.
/// - The schema is created and migrated on [`connect`](Self::connect) in one transaction under
///   an advisory lock; a schema written by a newer ccai is refused
///   ([`StoreError::NewerSchema`]), as is one whose tables lack columns
///   ([`StoreError::MissingColumns`]).
/// - PostgreSQL down or restarting: operations fail with [`StoreError::Unavailable`] (transient:
///   a receiver answers `503`) within the connect timeout, and the pool reconnects on later
///   calls. A database that stops answering without an error (a network partition, a frozen
///   host) fails the operation waiting on it (an insert, a claim, an outcome, a read, an admin
///   write) within the [operation timeout](PostgresOptions::operation_timeout), and its
///   connection is closed. A read that runs too long (a search of large bodies) or waits for
///   another session's lock is stopped by the server a little before that, and fails with
///   [`StoreError::ReadStopped`].
///
/// The URL is `postgres://user[:password]@host[:port]/database`, with the usual parameters
/// (`sslmode`, `sslrootcert`, `connect_timeout`, …) and our own `schema` and
/// `operation_timeout` (seconds). `sslmode=require` uses
/// rustls and checks the server's certificate and name against the CA certificates of the PEM
/// file `sslrootcert=PATH` (a private CA, a cloud provider's bundle) or, without it, the web PKI
/// roots; `disable` and `prefer` (the default) connect in plain TCP. The password never appears in messages, logs or Debug.
///
/// Clones share the pool and the insert collector.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ccai::inbox::{Dispatcher, HttpForward, NewDelivery, PostgresOptions, PostgresStore, Store};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect(
///     "postgres://ccai@db.internal:5432/webhooks?sslmode=require",
///     PostgresOptions::default().schema("ccai_inbox"),
/// )
/// .await?;
/// let dispatcher = Dispatcher::builder(
///     Arc::new(store.clone()),
///     HttpForward::new("http://127.0.0.1:9000/hook")?,
/// )
/// .wake_on(store.notifier())
/// .start();
/// // In the receiver, after verifying a delivery (a transient error: answer 503):
/// store.insert(NewDelivery::new("1231", "hash", "message.sent", &b"{}"[..])).await?;
/// dispatcher.shutdown(Duration::from_secs(10)).await;
/// # Ok(())
/// # }
/// ```
///
/// Logging: `tokio-postgres` logs each statement's parameters at `debug` under the target
/// `tokio_postgres::query`, and the stored bodies and their signatures are parameters. Keep that
/// target at `info` or above in your subscriber's filter (`ccai listen` caps it whatever
/// `CCAI_LOG` says).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    schema: String,
    options: PostgresOptions,
    batcher: Batcher,
    finisher: Finisher,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.shared.shown)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url`, creating (unless [`PostgresOptions::create`] is off)
    /// or migrating the inbox schema, and starts
    /// the insert collector (and the `LISTEN` connection). Needs a tokio runtime.
    ///
    /// Fails with [`StoreError::InvalidRequest`] for a bad URL or schema name,
    /// [`StoreError::Unavailable`] if the database cannot be reached,
    /// [`StoreError::NewerSchema`] if a newer ccai wrote the schema, and
    /// [`StoreError::MissingColumns`] if a table lacks columns (changed outside ccai), and
    /// [`StoreError::NotWritable`] if the role may not create or migrate the schema. Connected
    /// [read-only](PostgresOptions::read_only), it checks the schema instead, writing nothing,
    /// and fails with [`StoreError::ReadOnly`] if it is older than this build's.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let mut options = options;
        checked_destinations(&mut options.destinations)?;
        let target = connect::parse_url(url)?;
        let schema = options
            .schema
            .clone()
            .or_else(|| target.schema.clone())
            .unwrap_or_else(|| DEFAULT_POSTGRES_SCHEMA.to_owned());
        let ident = connect::schema_ident(&schema)?;
        let address = connect::shown(&target.config);
        let pool = connect::pool(
            &target,
            options.pool_size,
            options.connect_timeout,
            options.read_only,
        )?;
        if options.read_only {
            schema::check_read_only(&pool, &address, &schema, &ident).await?;
        } else {
            schema::migrate(&pool, &address, &schema, &ident, options.create).await?;
        }
        let shown: Arc<str> = Arc::from(format!("{address} (schema {schema})"));
        let digest = sha256_hex(schema.as_bytes());
        let shared = Arc::new(Shared {
            pool,
            shown: Arc::clone(&shown),
            writable_probe: probe::statement(&ident),
            ident,
            write_lock: schema::write_lock(&schema),
            destinations: options.destinations.clone(),
            channel: format!("ccai_inbox_{}", &digest[..16]),
            wake: Arc::new(Notify::new()),
            clock: clock::DbClock::unmeasured(),
            operation_timeout: target
                .operation_timeout
                .unwrap_or(options.operation_timeout),
        });
        shared
            .within(async |client| {
                let refreshed = shared.clock.refresh(client).await;
                refreshed.map_err(|e| shared.error(&e))
            })
            .await?;
        // A read-only store has no dispatcher to wake.
        let listener = (options.listen && !options.read_only).then(|| {
            let mut config = target.config.clone();
            if config.get_connect_timeout().is_none() {
                config.connect_timeout(options.connect_timeout);
            }
            listen::spawn(
                config,
                target.tls.clone(),
                shared.channel.clone(),
                Arc::clone(&shared.wake),
                shown,
            )
        });
        let batcher = Batcher::start(
            Arc::clone(&shared),
            options.queue_capacity,
            options.max_batch,
            options.insert_concurrency,
            options.connect_timeout,
        );
        let finisher = Finisher::start(Arc::clone(&shared));
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                schema,
                options,
                batcher,
                finisher,
                listener,
            }),
        })
    }

    /// Where the store is, as shown in messages: `postgres://user@host:port/db (schema s)`,
    /// never with the password.
    pub fn target(&self) -> &str {
        &self.inner.shared.shown
    }

    /// The PostgreSQL schema of the store's tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// How many inserts each committed batch carried so far.
    pub fn batch_sizes(&self) -> BatchHistogram {
        self.inner.batcher.histogram()
    }

    /// Notified when deliveries may have become due: after an insert of a new event through
    /// this store or (through `LISTEN`/`NOTIFY`) any other instance on the same schema, and
    /// after a replay. Give it to the dispatcher with
    /// [`DispatcherBuilder::wake_on`](super::DispatcherBuilder::wake_on).
    pub fn notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.shared.wake)
    }

    /// Checks that this process can write to the store now, with one statement (one round trip)
    /// that writes, changing nothing and locking no row (each write matches no row), every
    /// table the store's writes do, with each privilege they need: `INSERT`, `UPDATE` and
    /// `DELETE` on `events`, `INSERT` and `UPDATE` on `deliveries`, `INSERT` on `attempts`
    /// (on the columns the store writes), `SELECT` on the columns of `events` and `deliveries`
    /// the writes read (none of `attempts`), and reads the schema's version (`SELECT` on
    /// `inbox_schema`, which only a migration writes). A read-only database, role or hot standby
    /// fails it, where a read would pass, and so does a role that lacks any one of those
    /// privileges, which would fail every insert, claim or purge it needs: a receiver calls
    /// this at start and in its readiness probe, before it accepts deliveries it could not
    /// store or forward. A database that does not answer within the
    /// [operation timeout](PostgresOptions::operation_timeout) fails it too, as does a schema a
    /// newer ccai migrated since, or a table locked (an `ALTER TABLE`, a `VACUUM FULL`) for
    /// longer: each write takes the lock an insert takes on its table. A statement-level
    /// trigger of yours on those tables fires for it. A role or server that refuses the write
    /// fails it with [`StoreError::NotWritable`], which names the table PostgreSQL refused and
    /// every privilege the role lacks; a store connected
    /// [read-only](PostgresOptions::read_only) with [`StoreError::ReadOnly`], without asking.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.writable()?;
        let shared = self.shared();
        shared
            .within(async |client| probe::check_writable(client, shared).await)
            .await
    }

    /// Closes the store, for this handle and every clone, and waits until it is closed: the
    /// inserts queued before are committed and answered, then the `LISTEN` task is ended and
    /// the pool closes its connections (their sockets close as their tasks end, just after).
    /// Later operations fail with [`StoreError::Unavailable`] ("the store is closed"). Closing
    /// again does nothing. Shut a dispatcher on the store down first: its claims would fail.
    ///
    /// A database that stops answering (no error, no reply) cannot hold it up for longer than
    /// [`PostgresOptions::connect_timeout`]: the inserts still waiting then are answered
    /// [`StoreError::Unavailable`], their outcome unknown.
    ///
    /// Dropping the last handle also ends the `LISTEN` task and the pool, without waiting for
    /// queued inserts' answers.
    ///
    /// ```no_run
    /// use ccai::inbox::{PostgresOptions, PostgresStore};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let url = "postgres://ccai@127.0.0.1/webhooks";
    /// let store = PostgresStore::connect(url, PostgresOptions::new()).await?;
    /// // … receive and dispatch …
    /// store.close().await;
    /// assert!(store.check_writable().await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) {
        self.inner.batcher.close().await;
        if let Some(listener) = &self.inner.listener {
            listener.abort();
        }
        self.inner.shared.pool.close();
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// [`StoreError::ReadOnly`] for a store connected read-only: its writes are refused before
    /// they reach the server.
    fn writable(&self) -> Result<(), StoreError> {
        if self.inner.options.read_only {
            return Err(StoreError::ReadOnly {
                path: self.inner.shared.shown.to_string(),
                refused: "it takes no writes".to_owned(),
            });
        }
        Ok(())
    }
}

impl Store for PostgresStore {
    fn insert<'a>(&'a self, delivery: NewDelivery) -> StoreFuture<'a, Inserted> {
        Box::pin(async move {
            self.writable()?;
            let batcher = &self.inner.batcher;
            batcher.insert(&self.inner.shared.shown, delivery).await
        })
    }

    fn claim<'a>(
        &'a self,
        destination: &'a str,
        lease: LeaseRequest,
        limit: usize,
        now: SystemTime,
    ) -> StoreFuture<'a, Vec<ClaimedDelivery>> {
        let lease = lease.recordable();
        Box::pin(async move {
            self.writable()?;
            writes::claim(self.shared(), destination, &lease, limit, now).await
        })
    }

    fn finish<'a>(
        &'a self,
        lease: &'a Lease,
        finish: Finish,
        attempt: AttemptRecord,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.writable()?;
            let finisher = &self.inner.finisher;
            finisher
                .finish(self.shared(), lease, finish, &attempt)
                .await
        })
    }

    fn extend_lease<'a>(&'a self, lease: &'a Lease, until: SystemTime) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.writable()?;
            writes::extend_lease(self.shared(), lease, until).await
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.writable()?;
            writes::release(self.shared(), lease, SystemTime::now()).await
        })
    }

    fn list<'a>(&'a self, request: ListRequest) -> StoreFuture<'a, Page> {
        Box::pin(async move {
            request.filter.validate()?;
            queries::list(self.shared(), &request).await
        })
    }

    fn get<'a>(&'a self, event_hash: &'a str) -> StoreFuture<'a, Option<EventDetail>> {
        Box::pin(queries::get(self.shared(), event_hash, None))
    }

    fn get_for<'a>(
        &'a self,
        client_id: &'a str,
        event_hash: &'a str,
    ) -> StoreFuture<'a, Option<EventDetail>> {
        Box::pin(queries::get(self.shared(), event_hash, Some(client_id)))
    }

    fn replay<'a>(&'a self, target: ReplayTarget) -> StoreFuture<'a, ReplayReport> {
        Box::pin(async move {
            if let ReplayTarget::Filter(filter) = &target {
                filter.validate()?;
            }
            self.writable()?;
            writes::replay(self.shared(), &target, SystemTime::now()).await
        })
    }

    fn requeue_dead<'a>(&'a self, filter: ListFilter) -> StoreFuture<'a, ReplayReport> {
        Box::pin(async move {
            filter.validate()?;
            self.writable()?;
            writes::requeue_dead(self.shared(), &filter, SystemTime::now()).await
        })
    }

    fn purge<'a>(&'a self, retention: Retention, now: SystemTime) -> StoreFuture<'a, PurgeReport> {
        Box::pin(async move {
            self.writable()?;
            writes::purge(self.shared(), retention, now).await
        })
    }

    fn stats<'a>(&'a self, now: SystemTime) -> StoreFuture<'a, Stats> {
        Box::pin(queries::stats(self.shared(), now))
    }

    fn destinations<'a>(&'a self) -> StoreFuture<'a, Vec<String>> {
        Box::pin(queries::destinations(self.shared()))
    }

    fn close<'a>(&'a self) -> CloseFuture<'a> {
        Box::pin(PostgresStore::close(self))
    }
}
