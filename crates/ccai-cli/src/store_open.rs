//! `--store` (and `CCAI_STORE`) names either a SQLite file or a PostgreSQL database
//! (`postgres://user@host:port/db[?schema=s]`); this opens either behind one type.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccai::inbox::{PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store, StoreError};
use tokio::sync::Notify;

/// The one destination `ccai listen` forwards stored events to.
pub(crate) const DESTINATION: &str = "forward";

/// How long a readiness probe of a PostgreSQL store may take.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// The `postgres://…` (or `postgresql://…`) URL `--store` gives, if it is one.
pub(crate) fn postgres_url(flag: Option<&Path>) -> Option<&str> {
    let text = flag?.to_str()?;
    (text.starts_with("postgres://") || text.starts_with("postgresql://")).then_some(text)
}

/// The stores this command opened, closed before the process exits ([`close_opened`]):
/// dropping the last handle of a SQLite store leaves its writer thread to finish on its own,
/// which the exit cuts short (nothing acknowledged is lost, but `-wal` and `-shm` stay beside
/// the file); a PostgreSQL store's connections would end without a goodbye.
static OPENED: Mutex<Vec<Arc<dyn Store>>> = Mutex::new(Vec::new());

fn remember(store: Arc<dyn Store>) {
    OPENED.lock().unwrap_or_else(|e| e.into_inner()).push(store);
}

/// `error`, met opening or first writing the store, with the command line's way to name
/// another: the library's messages say "open another store" or "pass another path", since a
/// library user has no `--store`.
pub(crate) fn advised(error: StoreError) -> anyhow::Error {
    match error {
        // Nothing about which store: another would fare no better.
        StoreError::Overloaded | StoreError::InvalidRequest(_) => anyhow::Error::new(error),
        error => anyhow::anyhow!("{error} (--store or CCAI_STORE names another store)"),
    }
}

/// Opens the SQLite store at `path`, to be closed by [`close_opened`].
pub(crate) fn open_sqlite(path: &Path, options: SqliteOptions) -> anyhow::Result<SqliteStore> {
    let store = SqliteStore::open(path, options).map_err(advised)?;
    remember(Arc::new(store.clone()));
    Ok(store)
}

/// Opens the SQLite store at `path` for a command that mostly reads: writable (migrating an
/// older schema) where this process may write it, else read-only, so that a store another user
/// owns, or one on a read-only mount, can still be read. With the read-only store comes why the
/// writable open failed. A writable open that fails otherwise (locked, corrupt, newer schema) is
/// the error; so is the read-only open's refusal of an older schema where this process may not
/// write the file, which says what to do (where it may, the writable open's failure is).
pub(crate) fn open_sqlite_for_reading(
    path: &Path,
    options: SqliteOptions,
) -> anyhow::Result<(SqliteStore, Option<StoreError>)> {
    let refused = match SqliteStore::open(path, options.clone()) {
        Ok(store) => {
            remember(Arc::new(store.clone()));
            return Ok((store, None));
        }
        // What a file, folder or mount this process may not write gives.
        Err(error @ StoreError::Unavailable(_)) => error,
        Err(error) => return Err(advised(error)),
    };
    match SqliteStore::open(path, options.read_only(true)) {
        Ok(store) => {
            remember(Arc::new(store.clone()));
            Ok((store, Some(refused)))
        }
        // An older schema, which a read-only open cannot migrate: what to do, where this
        // process may not write the file. Where it may, the writable open failed otherwise
        // (its migration, a full disk): that is what to tell.
        Err(error @ StoreError::ReadOnly { .. }) if !may_write(path) => Err(advised(error)),
        Err(_) => Err(advised(refused)),
    }
}

/// Whether this process may open the file at `path` for writing (opened to append, nothing
/// written).
fn may_write(path: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

/// Closes every store this command opened: queued writes finish; for SQLite the WAL is folded
/// back into the database file and the side files go.
pub(crate) async fn close_opened() {
    let stores = std::mem::take(&mut *OPENED.lock().unwrap_or_else(|e| e.into_inner()));
    for store in stores {
        store.close().await;
    }
}

/// Connects to the PostgreSQL store at `url` (creating or migrating its schema), to be closed
/// by [`close_opened`].
pub(crate) async fn connect_postgres(
    url: &str,
    options: PostgresOptions,
) -> anyhow::Result<PostgresStore> {
    // StoreError's messages name the database (never the password) and say what failed.
    let store = PostgresStore::connect(url, options)
        .await
        .map_err(advised)?;
    remember(Arc::new(store.clone()));
    Ok(store)
}

/// Connects to the PostgreSQL store at `url` for a command that mostly reads, as
/// [`open_sqlite_for_reading`] opens a file: writable (migrating an older schema) where the role
/// may write it, else read-only, so that a role that may only `SELECT` (a reporting role), or a
/// read-only server, can still read it. With the read-only store comes why the role may not
/// write ([`StoreError::NotWritable`], from the writable connect or a write that changes
/// nothing). Any other failure is the error; so is the read-only connect's refusal of an older
/// schema, which says what to do.
pub(crate) async fn connect_postgres_for_reading(
    url: &str,
    options: PostgresOptions,
) -> anyhow::Result<(PostgresStore, Option<StoreError>)> {
    let refused = match PostgresStore::connect(url, options.clone()).await {
        // Opening writes nothing on a schema already at this build's version: only a write
        // tells whether the role may.
        Ok(store) => match probe_postgres(&store).await {
            Err(refused @ StoreError::NotWritable { .. }) => {
                store.close().await;
                refused
            }
            // Another failure of the probe (no answer in time) is no reason to refuse a read.
            _ => {
                remember(Arc::new(store.clone()));
                return Ok((store, None));
            }
        },
        // An older schema the role may not migrate, or a server that takes no writes.
        Err(refused @ StoreError::NotWritable { .. }) => refused,
        Err(error) => return Err(advised(error)),
    };
    match PostgresStore::connect(url, options.read_only(true)).await {
        Ok(store) => {
            remember(Arc::new(store.clone()));
            Ok((store, Some(refused)))
        }
        // An older schema, which a read-only connect cannot migrate: what to do.
        Err(error @ StoreError::ReadOnly { .. }) => Err(advised(error)),
        Err(_) => Err(advised(refused)),
    }
}

/// Connects to the PostgreSQL store at `url` for a command that writes (`replay`, `purge`):
/// a role or server that may not write is refused at once, saying so, before any work.
pub(crate) async fn connect_postgres_for_writing(
    url: &str,
    options: PostgresOptions,
) -> anyhow::Result<PostgresStore> {
    let store = connect_postgres(url, options).await?;
    match probe_postgres(&store).await {
        Err(refused @ StoreError::NotWritable { .. }) => Err(advised(refused)),
        // Any other failure is the command's own write's to tell.
        _ => Ok(store),
    }
}

/// An open store: a SQLite file or a PostgreSQL database.
#[derive(Clone)]
pub(crate) enum OpenedStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl OpenedStore {
    /// The store behind the trait the handler, the dispatcher and the view use.
    pub(crate) fn as_dyn(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(store) => Arc::clone(store) as Arc<dyn Store>,
            Self::Postgres(store) => Arc::clone(store) as Arc<dyn Store>,
        }
    }

    /// For PostgreSQL: notified when another instance stored an event (give it to the
    /// dispatcher with `wake_on`).
    pub(crate) fn notifier(&self) -> Option<Arc<Notify>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(store) => Some(store.notifier()),
        }
    }

    /// Whether a write can go through now (SQLite: an empty transaction through the writer;
    /// PostgreSQL: a write that changes nothing, within 2 s).
    pub(crate) async fn check_writable(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.check_writable().await,
            Self::Postgres(store) => probe_postgres(store).await,
        }
    }
}

/// A write that changes nothing, within [`PROBE_DEADLINE`] (a read would pass on a read-only
/// database or standby, where every delivery would be refused).
pub(crate) async fn probe_postgres(store: &PostgresStore) -> Result<(), StoreError> {
    match tokio::time::timeout(PROBE_DEADLINE, store.check_writable()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(StoreError::Unavailable(format!(
            "{}: no answer within {} s",
            store.target(),
            PROBE_DEADLINE.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library's advice names no flag; the command line adds its own.
    #[test]
    fn store_errors_get_the_command_line_advice() {
        let locked = StoreError::Locked("/srv/inbox.db".to_owned());
        assert!(!locked.to_string().contains("--store"), "{locked}");
        let told = advised(locked).to_string();
        assert!(
            told.starts_with("the store /srv/inbox.db is locked by another process")
                && told.ends_with("(--store or CCAI_STORE names another store)"),
            "{told}"
        );
        let overloaded = advised(StoreError::Overloaded).to_string();
        assert!(!overloaded.contains("--store"), "{overloaded}");
    }

    #[test]
    fn postgres_urls_are_told_from_paths() {
        assert_eq!(
            postgres_url(Some(Path::new("postgres://u@h:5432/db?schema=s"))),
            Some("postgres://u@h:5432/db?schema=s")
        );
        assert!(postgres_url(Some(Path::new("postgresql://u@h/db"))).is_some());
        assert_eq!(postgres_url(Some(Path::new("./inbox.db"))), None);
        assert_eq!(postgres_url(Some(Path::new("postgres.db"))), None);
        assert_eq!(postgres_url(None), None);
    }
}
