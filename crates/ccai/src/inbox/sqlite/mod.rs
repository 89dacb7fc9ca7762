//! [`SqliteStore`]: the [`Store`] on one SQLite file (WAL), with one writer thread doing group
//! commit, a checkpointer thread and a small pool of readers.

mod checkpoint;
mod columns;
pub(crate) mod convert;
mod dedup;
mod file_watch;
mod filter;
mod fingerprints;
mod keys;
mod queries;
pub(crate) mod read_deadline;
mod schema;
mod schema_watch;
mod search_first;
mod wal_sync;
mod writer;
mod writes;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags};

pub use dedup::StoreDeduper;
pub use writer::BatchHistogram;

use self::convert::{not_writable, store_error};
use self::queries::Readers;
use self::read_deadline::Read;
use self::writer::Writer;
use super::store::{checked_destinations, CloseFuture};
use super::{
    AttemptRecord, ClaimedDelivery, EventDetail, Finish, Inserted, Lease, LeaseRequest, ListFilter,
    ListRequest, NewDelivery, Page, PurgeReport, ReplayReport, ReplayTarget, Retention, Stats,
    Store, StoreError, StoreFuture,
};

/// The newest schema version this build of ccai knows.
pub const SCHEMA_VERSION: i64 = schema::SCHEMA_VERSION;

/// How hard SQLite syncs a commit to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// Every write is on disk before it is answered: a delivery acknowledged `200` survives a
    /// process crash and a power loss. The default.
    ///
    /// Unlike SQLite's own `synchronous=FULL`, which syncs the WAL inside each commit, the
    /// writer commits without syncing and the WAL is synced before the batch's callers are
    /// answered: on another thread while more writes wait (so one batch's sync overlaps the
    /// next batch's work), on the writer when none do. Nothing is answered before it is on
    /// disk, and 1.1–1.6× the inserts per second when many arrive at once (BENCHMARKS.md).
    /// Readers may see a commit a moment before its sync. If a sync fails, every later write
    /// fails too until the store is opened again ([`SqliteStore::write_failure`]).
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash, not a power loss (the last commits may
    /// be lost if the machine goes down). Faster.
    Normal,
}

/// The longest [`SqliteOptions::busy_timeout`]: SQLite takes it in milliseconds as a C `int`
/// (about 24.8 days); a longer one is clamped to it.
pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// How a [`SqliteStore`] is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// The sync mode (default [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// How long a connection waits for another's lock before failing with
    /// [`StoreError::Locked`] (default 5 s).
    pub busy_timeout: Duration,
    /// How many writes may wait for the writer thread; beyond that inserts fail at once with
    /// [`StoreError::Overloaded`] (default 4096).
    pub queue_capacity: usize,
    /// The most writes committed in one transaction (default 256).
    pub max_batch: usize,
    /// The destinations each new event gets a delivery for (default `["default"]`).
    pub destinations: Vec<String>,
    /// Idle reader connections kept open (default 4; none when [`read_only`](Self::read_only)).
    pub readers: usize,
    /// Whether opening may create the inbox in a file that holds none (default on).
    pub create: bool,
    /// Whether to open for reading only (default off): see [`read_only`](Self::read_only).
    pub read_only: bool,
    /// How long one read (a [`Store::list`], [`get`](Store::get), [`stats`](Store::stats), …)
    /// may run before it is stopped and fails with [`StoreError::ReadStopped`], saying the read
    /// took longer than this and what to do: narrow the filter (a list or a search), or try again
    /// later (an event's details, the counts, which take none) (default
    /// [`DEFAULT_READ_TIMEOUT`], 30 s).
    ///
    /// A text search ([`ListFilter::text()`]) reads every body it scans, and a crafted one (a
    /// long run of one letter then another, against large bodies) can take minutes, holding a
    /// reader connection and a thread all along; the deadline gives both back. It is looked at
    /// every 100 of SQLite's virtual-machine instructions, about 25 rows of a search (4 for each
    /// body that does not match), so a read stops once the rows it is on are done: a little after
    /// the deadline (nothing stops SQLite within one row, one search of one body). The reader
    /// connection stays usable for the next read. Writes (the writer thread's statements, never
    /// to be cut off half-way) are not bounded by it; but a [`Store::replay`] or
    /// [`Store::requeue_dead`] whose filter has a text searches for it first, as a read bounded
    /// by it (see [`SqliteStore`]).
    pub read_timeout: Duration,
}

/// Default [`SqliteOptions::read_timeout`]: 30 s, about twenty times an honest full-text search
/// of a million events (1.6 s, BENCHMARKS.md) and three times the PostgreSQL store's default
/// operation timeout, so that only a pathological read is stopped; still short enough that a
/// crafted one gives its thread back before a person waiting for it gives up.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            queue_capacity: 4096,
            max_batch: 256,
            destinations: vec![DEFAULT_DESTINATION.to_owned()],
            readers: 4,
            create: true,
            read_only: false,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

/// The name of the destination a store creates deliveries for by default.
pub const DEFAULT_DESTINATION: &str = "default";

impl SqliteOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sync mode.
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long to wait for another connection's lock (at most [`MAX_BUSY_TIMEOUT`], SQLite's
    /// limit).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout.min(MAX_BUSY_TIMEOUT);
        self
    }

    queue_setters!("write");

    /// How long one read may run (at least 1 ms). See [`read_timeout`](Self::read_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ccai::inbox::SqliteOptions;
    ///
    /// let options = SqliteOptions::new().read_timeout(Duration::from_secs(5));
    /// assert_eq!(options.read_timeout, Duration::from_secs(5));
    /// ```
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Idle reader connections kept open (none when [`read_only`](Self::read_only): each read
    /// opens its own).
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// Whether opening may create the inbox in a file that holds none (an empty SQLite
    /// database, or a new file). Off, for a tool that only inspects an inbox, such a file is
    /// refused ([`StoreError::InvalidRequest`]) and left as it was, instead of getting the
    /// inbox's tables. An older inbox is still migrated.
    ///
    /// ```
    /// use ccai::inbox::{SqliteOptions, SqliteStore, StoreError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("not-yet.db");
    /// let refused = SqliteStore::open(&path, SqliteOptions::new().create(false));
    /// assert!(matches!(refused, Err(StoreError::InvalidRequest(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(mut self, on: bool) -> Self {
        self.create = on;
        self
    }

    /// Whether to open for reading only, for a tool that only inspects an inbox this process
    /// may read but not write (another user's file, a read-only mount). Nothing is created,
    /// migrated or written, and no writer thread starts: every write ([`Store::insert`],
    /// [`Store::replay`], [`Store::purge`], …) and [`SqliteStore::check_writable`] answer
    /// [`StoreError::ReadOnly`]. The file must hold an inbox of this build's schema: an older
    /// one needs one writable open to be migrated first ([`StoreError::ReadOnly`] says so), a
    /// newer one is refused as ever ([`StoreError::NewerSchema`]).
    ///
    /// A store in use has its `-wal` and `-shm` beside it, and SQLite reads them even where it
    /// may not write them, so reads see every commit of a running writer. A store closed
    /// cleanly has neither, and none is created: it is read as an immutable file (SQLite's
    /// `immutable=1`), which takes no locks. Opened plainly, SQLite would create them wherever
    /// the folder allows, owned by this process (they would keep the file's owner from writing
    /// it again), and could not read it in WAL mode where it does not. That is safe as no writer
    /// runs; one that starts meanwhile is seen from the next read on (each read opens a connection
    /// of its own), and a read under way when it first checkpoints may fail, and succeeds when
    /// tried again.
    ///
    /// ```
    /// use ccai::inbox::{NewDelivery, SqliteOptions, SqliteStore, Store, StoreError};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("inbox.db");
    /// SqliteStore::open(&path, SqliteOptions::new())?.close().await;
    ///
    /// let store = SqliteStore::open(&path, SqliteOptions::new().read_only(true))?;
    /// let event = NewDelivery::new("1231", "h1", "message.sent", &b"{}"[..]);
    /// assert!(matches!(store.insert(event).await, Err(StoreError::ReadOnly { .. })));
    /// assert_eq!(store.stats(std::time::SystemTime::now()).await?.events, 0);
    /// store.close().await;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }
}

/// The durable inbox on a SQLite file.
///
/// - WAL journal, every write synced to disk before it is answered by default
///   ([`Synchronous::Full`]), a busy timeout.
/// - Every write goes through one writer thread that commits queued writes in groups (up to
///   [`SqliteOptions::max_batch`] per transaction): concurrent inserts share one fsync.
///   [`batch_sizes`](Self::batch_sizes) shows how well that works.
/// - A checkpointer thread with a connection of its own copies committed WAL pages into the
///   database file, so the writer (where every acknowledgement waits) does not; the WAL stays
///   under about 40 MiB.
/// - Duplicates are found without a unique index on the random `eventHash` (which slowed
///   inserts down as the store grew): recent events' keys are held by the writer thread, older
///   ones merged into a key table in sorted runs. Inserts into a store of a million events run
///   at about 0.8× the empty store's rate, against 0.57× with a unique index (BENCHMARKS.md).
/// - Reads use their own connections on blocking threads.
/// - A [`replay`](Store::replay) or [`requeue_dead`](Store::requeue_dead) whose filter has a
///   [text](ListFilter::text) searches the bodies on a reader connection first, within
///   [`SqliteOptions::read_timeout`] (past it, it fails as a read does, and changes nothing),
///   then updates the events found on the writer thread, by id, a few hundred a write: a search
///   that takes seconds, or a crafted one that would take minutes, does not hold up the inserts
///   meanwhile. It acts on the events that matched when it searched: one stored after is not
///   included. The rest of the filter and the status rules are checked again as it updates,
///   so a delivery claimed since is not touched. An error part-way (the store closed) leaves the
///   events of the writes before it due.
/// - The schema is versioned; opening migrates an older or empty file and refuses one written
///   by a newer ccai ([`StoreError::NewerSchema`]) without touching it, as it does one whose
///   tables lack columns of the schema ([`StoreError::MissingColumns`]).
///
/// Deleting or replacing the file (or its `-wal`) under a running store makes every later write
/// fail ([`write_failure`](Self::write_failure) says why) rather than go where nothing will find
/// it; the writer checks the database file before each batch and the WAL once a second, the
/// checkpointer both once a second while idle (Unix; elsewhere this is not checked). The WAL,
/// still at `<path>-wal`, is then emptied, so that no later open replays it into whatever file
/// is at the path, even after a crash.
///
/// Several processes may open the same file (dispatchers coordinate through leases); a process
/// that holds the write lock longer than the busy timeout makes the others fail with
/// [`StoreError::Locked`]. Clones share the writer; the writer and checkpointer threads end when
/// the last clone (and every [`StoreDeduper`] made from it) is dropped, or at
/// [`close`](Self::close), which also waits for them: call it before the process exits.
///
/// [`open`](Self::open) does blocking file I/O: call it at start-up or from a blocking thread.
/// The other methods need a tokio runtime.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: Arc<str>,
    options: SqliteOptions,
    writer: Writer,
    readers: Arc<Readers>,
    /// Wakes the [`StoreDeduper`]s of this store waiting for an in-flight claim.
    dedup_changed: Arc<tokio::sync::Notify>,
    /// The deduplication claims this process holds, by hash: their owner tokens.
    dedup_held: dedup::Held,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

fn connect(path: &Path, shown: &str, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if options.create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| store_error(shown, e))?;
    conn.busy_timeout(options.busy_timeout.min(MAX_BUSY_TIMEOUT))
        .map_err(|e| store_error(shown, e))?;
    Ok(conn)
}

/// Why a file that holds no inbox is refused where none is to be created.
fn no_inbox(shown: &str) -> StoreError {
    StoreError::InvalidRequest(format!(
        "{shown} holds no inbox (nothing was created): check the path"
    ))
}

/// Opens `path` for reading only, and reads its header. A store closed cleanly (no `-wal`
/// beside it) is read as immutable: opened plainly, SQLite would create `-wal` and `-shm`
/// wherever the folder allows (another user's file in `/tmp` or a group's folder), owned by this
/// process, and they would keep the file's owner from writing the store again; where the folder
/// forbids them, SQLite could not read the file in WAL mode at all. With no WAL there is nothing
/// else to read (see [`SqliteOptions::read_only`] for when a writer starts meanwhile). A store in
/// use is opened plainly: SQLite reads its `-wal` and `-shm`, creating nothing.
fn connect_read_only(
    path: &Path,
    shown: &str,
    options: &SqliteOptions,
) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match closed_file_uri(path) {
        Some(uri) => Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI),
        None => Connection::open_with_flags(path, flags),
    }
    .map_err(|e| store_error(shown, e))?;
    conn.busy_timeout(options.busy_timeout.min(MAX_BUSY_TIMEOUT))
        .map_err(|e| store_error(shown, e))?;
    schema::user_version(&conn, shown)?;
    Ok(conn)
}

/// The immutable URI of `path` when no `-wal` is beside it; `None` when one is (or may be: it
/// cannot be looked for), or the path cannot be written as a URI.
fn closed_file_uri(path: &Path) -> Option<String> {
    // SQLite's own name for the file (links resolved), beside which it looks for the WAL.
    let file = std::fs::canonicalize(path).ok()?;
    let mut wal = file.clone().into_os_string();
    wal.push("-wal");
    if std::path::Path::new(&wal).try_exists().unwrap_or(true) {
        return None;
    }
    immutable_uri(&file)
}

/// `file:PATH?immutable=1` for an absolute, UTF-8 `path` (`%`, `?` and `#` escaped); `None`
/// for any other.
fn immutable_uri(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    if !text.starts_with('/') {
        return None;
    }
    let mut uri = String::from("file:");
    for c in text.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Some(uri)
}

/// Creates `path` empty with mode 0600 if no file is there, before SQLite opens it: SQLite
/// would create it 0644 under the usual umask, and the inbox holds webhook bodies (phone
/// numbers, messages). SQLite gives `-wal` and `-shm` the main file's mode. An existing file's
/// mode is left alone. Any failure is left to SQLite's open, which meets the same obstacle and
/// says what to do. Not on other systems, whose permissions do not work by mode.
#[cfg(unix)]
fn create_private(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    // Not what SQLite reads as an in-memory database or as a URI (`file:x.db?mode=rwc` names
    // x.db: creating the literal path would leave a stray file beside it).
    let text = path.as_os_str().as_encoded_bytes();
    if text.is_empty() || text == b":memory:" || text.starts_with(b"file:") {
        return;
    }
    // `create_new` never truncates and does not follow a symbolic link, so a dangling one is
    // followed here: SQLite would create its target with the umask's mode.
    let target = dangling_link_target(path).unwrap_or_else(|| path.to_path_buf());
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target);
}

/// Where a chain of symbolic links at `path` ends, when it ends at nothing (at most 40 links,
/// the kernel's own limit); `None` for anything else.
#[cfg(unix)]
fn dangling_link_target(path: &Path) -> Option<std::path::PathBuf> {
    let mut current = path.to_path_buf();
    let mut followed = false;
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).ok()?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
                followed = true;
            }
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && followed => return Some(current),
            Err(_) => return None,
        }
    }
    None
}

#[cfg(not(unix))]
fn create_private(_path: &Path) {}

/// The pragmas every connection of a migrated store gets.
fn configure(conn: &Connection, shown: &str, options: &SqliteOptions) -> Result<(), StoreError> {
    let synchronous = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
    ))
    .map_err(|e| store_error(shown, e))
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store at `path`. A file this process may
    /// not write is refused ([`StoreError::Unavailable`], saying so, with nothing created beside
    /// it; it may still be read with [`SqliteOptions::read_only`]), as is a schema newer than
    /// this build knows ([`StoreError::NewerSchema`]) and a table that lacks columns, changed
    /// outside ccai ([`StoreError::MissingColumns`], [`StoreError::MissingTable`]).
    ///
    /// A new file is created owner-only (mode 0600 on Unix, whatever the umask; its `-wal` and
    /// `-shm` get the same): it holds webhook bodies. An existing file keeps its mode; a
    /// `file:` URI path is created by SQLite with the umask's.
    pub fn open(path: impl AsRef<Path>, mut options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let shown: Arc<str> = Arc::from(path.display().to_string());
        checked_destinations(&mut options.destinations)?;
        let no_inbox = || no_inbox(&shown);
        if (options.read_only || !options.create) && !path.is_file() {
            return Err(no_inbox());
        }
        if options.read_only {
            return Self::open_read_only(path, shown, options);
        }
        if options.create {
            create_private(&path);
        }
        let mut conn = connect(&path, &shown, &options)?;
        // SQLite opens a file this process may not write read-only, silently; an empty
        // transaction even succeeds on it, and only the first real write would fail. Told
        // before this connection reads the file: reading a store in WAL mode creates `-wal` and
        // `-shm` wherever the folder allows, owned by this process, and they would keep the
        // file's owner from writing it again. What it holds is read as a read-only open reads
        // it, creating nothing, so that a newer, foreign or damaged file is refused as such.
        if conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|e| store_error(&shown, e))?
        {
            drop(conn);
            match connect_read_only(&path, &shown, &options) {
                Ok(read) => {
                    schema::check_before_writing(&read, &shown)?;
                    if !options.create && !schema::holds_inbox(&read, &shown)? {
                        return Err(no_inbox());
                    }
                }
                Err(error @ StoreError::Corrupt(_)) => return Err(error),
                Err(_) => {}
            }
            return Err(not_writable(&shown));
        }
        // Before anything that writes, even the journal mode: a newer file is left untouched.
        schema::check_before_writing(&conn, &shown)?;
        if !options.create && !schema::holds_inbox(&conn, &shown)? {
            return Err(no_inbox());
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| store_error(&shown, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{shown}: cannot switch to WAL journal mode (got {mode})"
            )));
        }
        configure(&conn, &shown, &options)?;
        schema::migrate(&mut conn, &shown)?;
        let checkpoint_conn = connect(&path, &shown, &options)?;
        configure(&checkpoint_conn, &shown, &options)?;
        // FULL: the writer commits without syncing and a thread of its own syncs the WAL before
        // any caller is answered, so one batch's fsync overlaps the next batch (see `wal_sync`).
        let sync_wal = options.synchronous == Synchronous::Full;
        if sync_wal {
            conn.execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(|e| store_error(&shown, e))?;
        }
        let writer = Writer::start(
            conn,
            checkpoint_conn,
            Arc::clone(&shown),
            options.queue_capacity,
            options.max_batch,
            &path,
            sync_wal,
        )?;
        // Readers never create the file: one opened after the file was deleted would leave an
        // empty database at the path.
        let reader_options = options.clone().create(false);
        let reader_shown = Arc::clone(&shown);
        let readers = Arc::new(Readers::new(
            Arc::clone(&shown),
            options.readers,
            options.read_timeout,
            move || {
                let conn = connect(&path, &reader_shown, &reader_options)?;
                conn.execute_batch("PRAGMA query_only = ON")
                    .map_err(|e| store_error(&reader_shown, e))?;
                Ok(conn)
            },
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                path: shown,
                options,
                writer,
                readers,
                dedup_changed: Arc::default(),
                dedup_held: dedup::Held::default(),
            }),
        })
    }

    /// [`open`](Self::open) with [`SqliteOptions::read_only`]: the schema checked, not
    /// migrated; readers only.
    fn open_read_only(
        path: std::path::PathBuf,
        shown: Arc<str>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let conn = connect_read_only(&path, &shown, &options)?;
        schema::check_before_writing(&conn, &shown)?;
        let found = schema::user_version(&conn, &shown)?;
        if found == 0 {
            return Err(no_inbox(&shown));
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::ReadOnly {
                path: shown.to_string(),
                refused: format!(
                    "its schema {found}, older than this ccai's {SCHEMA_VERSION}, cannot be migrated; it needs one writable open first"
                ),
            });
        }
        drop(conn);
        let reader_options = options.clone();
        let reader_shown = Arc::clone(&shown);
        // No idle connection is kept: one read as immutable would never see a writer started
        // since (nor, after its first checkpoint, read the file right); each read opens its own,
        // as the files beside the store are then.
        let readers = Arc::new(Readers::new(
            Arc::clone(&shown),
            0,
            options.read_timeout,
            move || {
                let conn = connect_read_only(&path, &reader_shown, &reader_options)?;
                conn.execute_batch("PRAGMA query_only = ON")
                    .map_err(|e| store_error(&reader_shown, e))?;
                Ok(conn)
            },
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Writer::read_only(Arc::clone(&shown)),
                path: shown,
                options,
                readers,
                dedup_changed: Arc::default(),
                dedup_held: dedup::Held::default(),
            }),
        })
    }

    /// The store's path, as shown in messages.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// How many writes each committed transaction carried so far (group commit at work).
    pub fn batch_sizes(&self) -> BatchHistogram {
        self.inner.writer.histogram()
    }

    /// Checks that this process can write to the store now: one empty transaction through the
    /// writer. Opening needs no write lock (a reader opens while another process writes), so a
    /// receiver calls this at start to report a store that another process keeps locked, or that
    /// cannot be written, before it accepts deliveries.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.inner.writer.write(|_| Ok(())).await
    }

    /// Why this store refuses every write for good, if it does: a sync of the WAL to disk failed
    /// ([`Synchronous::Full`]), after which the operating system may have dropped unsynced
    /// pages, or the database file or its WAL was deleted or replaced while open (SQLite would go
    /// on writing to the old file, which the next start cannot find). Either way nothing more can
    /// be acknowledged until the store is opened again. A `stat` of the database file (and of the
    /// WAL, once a second at most), no other I/O: cheap enough for a readiness probe. A store
    /// opened [read-only](SqliteOptions::read_only) always answers [`StoreError::ReadOnly`].
    pub fn write_failure(&self) -> Option<StoreError> {
        self.inner.writer.write_failure()
    }

    /// Closes the store, for this handle and every clone, and waits until it is closed: the
    /// writes queued before are committed and answered, the WAL is folded back into the database
    /// file and every connection is closed, so that a clean stop leaves the one file (SQLite
    /// removes `-wal` and `-shm` with the last connection, when no other process has the file
    /// open). Later writes and reads fail with [`StoreError::Unavailable`]. Closing again does
    /// nothing.
    ///
    /// Dropping the last handle closes the store too, on its own thread and without waiting: a
    /// process that exits right after may cut that short (nothing acknowledged is lost, but the
    /// side files stay). Call this before exiting.
    ///
    /// ```
    /// use ccai::inbox::{SqliteOptions, SqliteStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("inbox.db");
    /// let store = SqliteStore::open(&path, SqliteOptions::default())?;
    /// store.check_writable().await?;
    /// store.close().await;
    /// assert!(!dir.path().join("inbox.db-wal").exists());
    /// assert!(store.check_writable().await.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn close(&self) {
        // Readers first: the writer's connection, closing last, then removes the side files.
        self.inner.readers.close();
        self.inner.writer.close().await;
    }

    /// A durable [`Deduper`](crate::dedup::Deduper) on this store's file, with in-flight
    /// claims leased for [`StoreDeduper::DEFAULT_LEASE`].
    pub fn deduper(&self) -> StoreDeduper {
        StoreDeduper::new(self.clone())
    }

    fn path_arc(&self) -> Arc<str> {
        Arc::clone(&self.inner.path)
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    pub(crate) fn dedup_changed(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.dedup_changed)
    }

    pub(crate) fn dedup_held(&self) -> dedup::Held {
        self.inner.dedup_held.clone()
    }
}

impl Store for SqliteStore {
    fn insert<'a>(&'a self, delivery: NewDelivery) -> StoreFuture<'a, Inserted> {
        if let Err(e) = delivery.check_fields() {
            return Box::pin(std::future::ready(Err(e)));
        }
        let path = self.path_arc();
        let destinations = self.inner.options.destinations.clone();
        // Hashed on the caller's task, not on the one writer thread every insert shares.
        let digest = convert::sha256_hex(&delivery.body);
        let key = keys::hash_key(&delivery.event_hash);
        Box::pin(self.inner.writer.try_write(move |conn, keys| {
            writes::insert(conn, keys, &path, &destinations, &delivery, &digest, key)
        }))
    }

    fn claim<'a>(
        &'a self,
        destination: &'a str,
        lease: LeaseRequest,
        limit: usize,
        now: SystemTime,
    ) -> StoreFuture<'a, Vec<ClaimedDelivery>> {
        let path = self.path_arc();
        let destination = destination.to_owned();
        Box::pin(self.inner.writer.write(move |conn| {
            writes::claim(conn, &path, &destination, &lease.recordable(), limit, now)
        }))
    }

    fn finish<'a>(
        &'a self,
        lease: &'a Lease,
        finish: Finish,
        attempt: AttemptRecord,
    ) -> StoreFuture<'a, bool> {
        let path = self.path_arc();
        let lease = lease.clone();
        Box::pin(
            self.inner
                .writer
                .write(move |conn| writes::finish(conn, &path, &lease, finish, &attempt)),
        )
    }

    fn extend_lease<'a>(&'a self, lease: &'a Lease, until: SystemTime) -> StoreFuture<'a, bool> {
        let path = self.path_arc();
        let lease = lease.clone();
        Box::pin(
            self.inner
                .writer
                .write(move |conn| writes::extend_lease(conn, &path, &lease, until)),
        )
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        let path = self.path_arc();
        let lease = lease.clone();
        Box::pin(
            self.inner
                .writer
                .write(move |conn| writes::release(conn, &path, &lease, SystemTime::now())),
        )
    }

    fn list<'a>(&'a self, request: ListRequest) -> StoreFuture<'a, Page> {
        if let Err(e) = request.filter.validate() {
            return Box::pin(std::future::ready(Err(e)));
        }
        Box::pin(self.inner.readers.read(Read::Filtered, move |conn, path| {
            queries::list(conn, path, &request)
        }))
    }

    fn get<'a>(&'a self, event_hash: &'a str) -> StoreFuture<'a, Option<EventDetail>> {
        let hash = event_hash.to_owned();
        Box::pin(
            self.inner
                .readers
                .read(Read::Unfiltered, move |conn, path| {
                    queries::get(conn, path, &hash, None)
                }),
        )
    }

    fn get_for<'a>(
        &'a self,
        client_id: &'a str,
        event_hash: &'a str,
    ) -> StoreFuture<'a, Option<EventDetail>> {
        let (client_id, hash) = (client_id.to_owned(), event_hash.to_owned());
        Box::pin(
            self.inner
                .readers
                .read(Read::Unfiltered, move |conn, path| {
                    queries::get(conn, path, &hash, Some(&client_id))
                }),
        )
    }

    fn replay<'a>(&'a self, target: ReplayTarget) -> StoreFuture<'a, ReplayReport> {
        if let ReplayTarget::Filter(filter) = &target {
            if let Err(e) = filter.validate() {
                return Box::pin(std::future::ready(Err(e)));
            }
            if search_first::searches_bodies(filter) {
                return Box::pin(search_first::make_due(
                    &self.inner.readers,
                    &self.inner.writer,
                    self.path_arc(),
                    search_first::Bulk::Replay,
                    filter.clone(),
                    SystemTime::now(),
                ));
            }
        }
        let path = self.path_arc();
        Box::pin(
            self.inner
                .writer
                .write(move |conn| writes::replay(conn, &path, &target, SystemTime::now())),
        )
    }

    fn requeue_dead<'a>(&'a self, filter: ListFilter) -> StoreFuture<'a, ReplayReport> {
        if let Err(e) = filter.validate() {
            return Box::pin(std::future::ready(Err(e)));
        }
        if search_first::searches_bodies(&filter) {
            return Box::pin(search_first::make_due(
                &self.inner.readers,
                &self.inner.writer,
                self.path_arc(),
                search_first::Bulk::RequeueDead,
                filter,
                SystemTime::now(),
            ));
        }
        let path = self.path_arc();
        Box::pin(
            self.inner
                .writer
                .write(move |conn| writes::requeue_dead(conn, &path, &filter, SystemTime::now())),
        )
    }

    fn purge<'a>(&'a self, retention: Retention, now: SystemTime) -> StoreFuture<'a, PurgeReport> {
        let path = self.path_arc();
        Box::pin(
            self.inner
                .writer
                .write(move |conn| writes::purge(conn, &path, retention, now)),
        )
    }

    fn stats<'a>(&'a self, now: SystemTime) -> StoreFuture<'a, Stats> {
        Box::pin(
            self.inner
                .readers
                .read(Read::Unfiltered, move |conn, path| {
                    queries::stats(conn, path, now)
                }),
        )
    }

    fn destinations<'a>(&'a self) -> StoreFuture<'a, Vec<String>> {
        Box::pin(
            self.inner
                .readers
                .read(Read::Unfiltered, queries::destinations),
        )
    }

    fn close<'a>(&'a self) -> CloseFuture<'a> {
        Box::pin(SqliteStore::close(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::AttemptOutcome;

    #[tokio::test]
    async fn after_a_failed_sync_every_write_fails_and_the_store_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default()).expect("open");
        let first = NewDelivery::new("1231", "h1", "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(first).await, Ok(Inserted::New));
        assert!(store.write_failure().is_none());

        // What a failed fdatasync leaves behind (no disk here can be made to fail on cue).
        store.inner.writer.fail_sync_for_test();
        let second = NewDelivery::new("1231", "h2", "message.sent", &b"{}"[..]);
        let error = store
            .insert(second)
            .await
            .expect_err("nothing is acknowledged");
        assert!(
            matches!(&error, StoreError::Unavailable(m) if m.contains("restart to reopen the store")),
            "{error:?}"
        );
        assert_eq!(store.write_failure(), Some(error));
        // Not committed either: reads see only the first event.
        let stats = store.stats(SystemTime::now()).await.expect("stats");
        assert_eq!(stats.events, 1);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_deleted_store_file_takes_no_more_writes_and_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
        let first = NewDelivery::new("1231", "h1", "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(first).await, Ok(Inserted::New));
        assert!(store.write_failure().is_none());

        std::fs::remove_file(&path).expect("delete");
        // The readiness probe's check sees it before any write does.
        let failure = store.write_failure().expect("noticed");
        let second = NewDelivery::new("1231", "h2", "message.sent", &b"{}"[..]);
        let error = store.insert(second).await.expect_err("not acknowledged");
        assert!(
            matches!(&error, StoreError::Unavailable(m) if m.contains("deleted or replaced")),
            "{error:?}"
        );
        assert_eq!(error, failure);
        // A reader opened now finds nothing at the path, and leaves nothing there.
        let _ = store.stats(SystemTime::now()).await;
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_newer_ccai_migrating_the_file_under_a_running_store_stops_its_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
        let first = NewDelivery::new("1231", "h1", "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(first).await, Ok(Inserted::New));

        // Another process committing is no schema change: writes go on.
        let other = SqliteStore::open(&path, SqliteOptions::default()).expect("open again");
        let theirs = NewDelivery::new("1231", "h2", "message.sent", &b"{}"[..]);
        assert_eq!(other.insert(theirs).await, Ok(Inserted::New));
        other.close().await;
        let second = NewDelivery::new("1231", "h3", "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(second).await, Ok(Inserted::New));
        assert!(store.write_failure().is_none());
        let lease = LeaseRequest::new("w", Duration::from_secs(30));
        let held = store
            .claim("default", lease, 1, SystemTime::now())
            .await
            .expect("claim")
            .remove(0)
            .lease;

        // What a newer ccai's migration does to the file: a new column, a higher version.
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE;
                 ALTER TABLE events ADD COLUMN future TEXT NOT NULL DEFAULT 'v{next}';
                 PRAGMA user_version = {next};
                 COMMIT;",
                next = SCHEMA_VERSION + 1
            ))
            .expect("migrate as a newer ccai would");
        }
        let third = NewDelivery::new("1231", "h4", "message.sent", &b"{}"[..]);
        let error = store.insert(third).await.expect_err("not acknowledged");
        assert!(
            matches!(&error, StoreError::Unavailable(m)
                if m.contains(&format!("a newer ccai migrated the store to schema {}", SCHEMA_VERSION + 1))
                    && m.contains("run the newer ccai")),
            "{error:?}"
        );
        assert!(error.is_transient(), "a receiver answers 503");
        assert_eq!(store.write_failure(), Some(error.clone()));
        // Every kind of write, for good.
        let claimed = store
            .claim(
                "default",
                LeaseRequest::new("w", Duration::from_secs(30)),
                10,
                SystemTime::now(),
            )
            .await
            .expect_err("no claim");
        assert_eq!(claimed, error);
        let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Success);
        let later = SystemTime::now() + Duration::from_secs(3600);
        let filter = || ListFilter::new().event_type("message.sent");
        assert_eq!(
            store.finish(&held, Finish::Delivered, record).await,
            Err(error.clone())
        );
        assert_eq!(store.extend_lease(&held, later).await, Err(error.clone()));
        assert_eq!(store.release(&held).await, Err(error.clone()));
        let replayed = store.replay(ReplayTarget::Hash("h1".into())).await;
        assert_eq!(replayed, Err(error.clone()));
        assert_eq!(store.requeue_dead(filter()).await, Err(error.clone()));
        let retention = Retention::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(store.purge(retention, later).await, Err(error.clone()));
        let again = NewDelivery::new("1231", "h5", "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(again).await, Err(error));
        store.close().await;

        let conn = Connection::open(&path).expect("open");
        let hashes: Vec<String> = conn
            .prepare("SELECT event_hash FROM events ORDER BY id")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .expect("events");
        assert_eq!(
            hashes,
            ["h1", "h2", "h3"],
            "nothing stored after the migration"
        );
        drop(conn);
        // Opening it again is refused as before.
        let reopened = SqliteStore::open(&path, SqliteOptions::default()).expect_err("newer");
        assert!(
            matches!(reopened, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
            "{reopened:?}"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_store_file_is_private_and_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
        let delivery = NewDelivery::new("1231", "h1", "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(delivery).await, Ok(Inserted::New));
        assert_eq!(mode(&path), 0o600);
        // SQLite gives the side files the main file's mode.
        assert_eq!(mode(&dir.path().join("inbox.db-wal")), 0o600);
        assert_eq!(mode(&dir.path().join("inbox.db-shm")), 0o600);
        store.close().await;

        // A file the user made readable stays so, new or already an inbox.
        let shared = dir.path().join("shared.db");
        std::fs::write(&shared, b"").expect("create");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = SqliteStore::open(&shared, SqliteOptions::default()).expect("open");
        store.close().await;
        assert_eq!(mode(&shared), 0o644);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
        store.close().await;
        assert_eq!(mode(&path), 0o644);

        // A symbolic link to a file not there yet: its target is created owner-only too
        // (`create_new` does not follow the link, and SQLite created it with the umask's mode).
        let target = dir.path().join("real.db");
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink("real.db", &link).expect("symlink");
        let store = SqliteStore::open(&link, SqliteOptions::default()).expect("open via link");
        store.close().await;
        assert!(std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink());
        assert_eq!(mode(&target), 0o600);
    }

    #[test]
    fn an_immutable_uri_escapes_what_sqlite_reads_as_uri_syntax() {
        assert_eq!(
            immutable_uri(Path::new("/srv/a b/x%1?y#z.db")).as_deref(),
            Some("file:/srv/a b/x%251%3fy%23z.db?immutable=1")
        );
        assert_eq!(immutable_uri(Path::new("relative.db")), None);
    }

    #[tokio::test]
    async fn normal_sync_mode_has_no_sync_to_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = SqliteOptions::default().synchronous(Synchronous::Normal);
        let store = SqliteStore::open(dir.path().join("inbox.db"), options).expect("open");
        store.inner.writer.fail_sync_for_test();
        let delivery = NewDelivery::new("1231", "h1", "message.sent", &b"{}"[..]);
        assert_eq!(store.insert(delivery).await, Ok(Inserted::New));
        assert!(store.write_failure().is_none());
    }
}
