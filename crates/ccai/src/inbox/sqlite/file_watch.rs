//! Notices when the store's files are deleted or replaced under a running store.
//!
//! SQLite goes on writing to a file it has open after the file is unlinked or renamed over, and
//! every commit succeeds; but the next start opens whatever is at the path then, and what was
//! acknowledged meanwhile is gone with the old file. The writer checks before each batch and,
//! once a file is gone, refuses every write, so that a receiver answers 503 and the sender
//! retries, rather than 200 for events nothing will find again.
//!
//! The database file is looked at before every batch: a `stat` costs nothing measurable there.
//! The WAL is looked at once a second at most: a `stat` of the file the sync thread is syncing
//! waits for the sync, and before every batch that cost 5–8 % of the in-process insert rate
//! (BENCHMARKS.md). Deleting the database file, its folder or `inbox.db*` is seen at once; the
//! WAL alone, within a second. The checkpointer looks too, at each of its rounds and once a
//! second while no write comes, and empties the store's WAL once a file is gone (see
//! [`checkpoint`](super::checkpoint)).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::inbox::StoreError;

/// Which file of the store a path is, for messages.
#[derive(Debug, Clone, Copy)]
enum Role {
    Database,
    Wal,
}

/// A file's identity on its file system: what stays the same while the path names that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
}

/// How often, at most, the WAL is looked at.
const WAL_EVERY: Duration = Duration::from_secs(1);

/// One file looked at.
#[derive(Debug)]
struct Watched {
    role: Role,
    path: PathBuf,
    recorded: Identity,
    /// When it was last looked at, in milliseconds since the watch started.
    last_ms: AtomicU64,
}

impl Watched {
    /// Whether it is time to look at this file again (and if so, records that it is looked at).
    fn due(&self, now_ms: u64) -> bool {
        let every = match self.role {
            Role::Database => return true,
            Role::Wal => WAL_EVERY.as_millis() as u64,
        };
        let last = self.last_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= every
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// The database file and its write-ahead log, as they were when the store opened.
#[derive(Debug)]
pub(crate) struct FileWatch {
    files: Vec<Watched>,
    started: Instant,
    /// Set once a file was found gone: the store refuses writes until it is opened again.
    gone: AtomicBool,
    /// The store's path, as shown in messages.
    shown: String,
}

impl FileWatch {
    /// Records the identity of `database` and `wal` as they are now. A file that cannot be
    /// looked at (a platform without inodes, a WAL not created yet) is not watched.
    pub(crate) fn start(database: &Path, wal: &Path, shown: &str) -> Self {
        let files = [(Role::Database, database), (Role::Wal, wal)]
            .into_iter()
            .filter_map(|(role, path)| {
                identity(path).ok().flatten().map(|recorded| Watched {
                    role,
                    path: path.to_path_buf(),
                    recorded,
                    last_ms: AtomicU64::new(0),
                })
            })
            .collect();
        Self {
            files,
            started: Instant::now(),
            gone: AtomicBool::new(false),
            shown: shown.to_owned(),
        }
    }

    /// Watches nothing: for a store that writes nothing.
    pub(crate) fn unwatched(shown: &str) -> Self {
        Self {
            files: Vec::new(),
            started: Instant::now(),
            gone: AtomicBool::new(false),
            shown: shown.to_owned(),
        }
    }

    /// Why no write may be acknowledged any more, if a watched file was deleted or replaced
    /// (now or at an earlier check). Logs the discovery once.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        if self.gone.load(Ordering::Acquire) {
            return Some(self.error());
        }
        let now_ms = self.started.elapsed().as_millis() as u64;
        for watched in self.files.iter().filter(|w| w.due(now_ms)) {
            let Watched {
                role,
                path,
                recorded,
                ..
            } = watched;
            // Another error (a directory made unreadable, say) says nothing about the file: the
            // writes themselves report what is wrong then.
            let now = match identity(path) {
                Ok(now) => now,
                Err(_) => continue,
            };
            if now != Some(*recorded) && !self.gone.swap(true, Ordering::AcqRel) {
                let file = match role {
                    Role::Database => "the database file",
                    Role::Wal => "the write-ahead log",
                };
                tracing::error!(
                    target: "ccai::inbox",
                    path = %self.shown,
                    file = %path.display(),
                    "{file} was deleted or replaced while the store had it open; nothing more is \
                     stored (writes fail, a receiver answers 503) until the store is opened again"
                );
            }
        }
        self.gone.load(Ordering::Acquire).then(|| self.error())
    }

    /// The failure [`failure`](Self::failure) found earlier, if any; looks at no file. For the
    /// writer inside a transaction, where it holds the write lock: a WAL emptied under that lock
    /// (see [`Checkpointer`](super::checkpoint::Checkpointer)) must get no frame after it.
    pub(crate) fn known_failure(&self) -> Option<StoreError> {
        self.gone.load(Ordering::Acquire).then(|| self.error())
    }

    /// The size of the file at the WAL's path if that is still the store's own WAL; `None` when
    /// it is not, or the WAL is not watched.
    pub(crate) fn own_wal_len(&self) -> Option<u64> {
        let wal = self.files.iter().find(|w| matches!(w.role, Role::Wal))?;
        own_len(&wal.path, wal.recorded)
    }

    fn error(&self) -> StoreError {
        StoreError::Unavailable(format!(
            "{}: the store's file was deleted or replaced while it was open, so what it would \
             store now could not be found again; restart to open the store at its path again",
            self.shown
        ))
    }
}

/// The identity of the file at `path`; `Ok(None)` when nothing is there.
#[cfg(unix)]
fn identity(path: &Path) -> std::io::Result<Option<Identity>> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(Identity {
            device: meta.dev(),
            inode: meta.ino(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Without inodes there is nothing cheap to compare: no file is watched.
#[cfg(not(unix))]
fn identity(_path: &Path) -> std::io::Result<Option<Identity>> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// The size of the file at `path` if it is the file `recorded`.
#[cfg(unix)]
fn own_len(path: &Path, recorded: Identity) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let now = Identity {
        device: meta.dev(),
        inode: meta.ino(),
    };
    (now == recorded).then_some(meta.len())
}

#[cfg(not(unix))]
fn own_len(_path: &Path, _recorded: Identity) -> Option<u64> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::FileWatch;

    #[test]
    fn a_file_deleted_renamed_over_or_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = dir.path().join("inbox.db");
        let wal = dir.path().join("inbox.db-wal");
        std::fs::write(&database, b"db").expect("write");
        std::fs::write(&wal, b"wal").expect("write");

        let watch = FileWatch::start(&database, &wal, "inbox.db");
        // Rewritten in place: still the same file.
        std::fs::write(&database, b"more").expect("write");
        assert!(watch.failure().is_none());
        assert!(watch.known_failure().is_none());
        assert_eq!(watch.own_wal_len(), Some(3));

        // The WAL replaced by another file under its name: seen within a second.
        let other = dir.path().join("other");
        std::fs::write(&other, b"x").expect("write");
        std::fs::rename(&other, &wal).expect("rename");
        std::thread::sleep(super::WAL_EVERY);
        let error = watch.failure().expect("noticed");
        assert!(error.to_string().contains("restart"), "{error}");
        assert_eq!(watch.known_failure(), Some(error.clone()));
        assert_eq!(watch.own_wal_len(), None, "not the store's WAL any more");
        // For good, even once the name is gone too.
        std::fs::remove_file(&wal).expect("remove");
        assert!(watch.failure().is_some());

        let watch = FileWatch::start(&database, &wal, "inbox.db");
        std::fs::remove_file(&database).expect("remove");
        assert!(watch.failure().is_some(), "a deleted database file");
    }
}
