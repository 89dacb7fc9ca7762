//! The background checkpointer: copies committed WAL frames into the database file on a thread
//! and connection of its own, so that the writer thread (where every acknowledgement waits) does
//! not.
//!
//! The writer keeps SQLite's automatic checkpoint as a backstop at [`WRITER_FALLBACK_PAGES`]: a
//! passive checkpoint running beside a busy writer rarely catches the WAL's very end, and the WAL
//! only starts over from its beginning once a checkpoint has. That backstop runs in the writer
//! right after a commit, with nothing else writing, and has little left to copy.
//!
//! The checkpointer also looks at the store's files ([`FileWatch`]) at each round and once a
//! second while no commit comes, so that an idle store notices too when its database file is
//! deleted or replaced. The store's WAL then belongs to a file nothing will open again, yet it
//! stays at `<path>-wal`, and the next open replays a WAL found there into whatever database
//! file is at the path then (a WAL does not say which file it belongs to): after a crash or a
//! kill, the old file's pages would be written over the new one. So the checkpointer empties it
//! at once (`wal_checkpoint(TRUNCATE)`: what it holds goes into the old file, where it harms
//! nothing, and the log is cut to zero bytes, which nothing replays) and keeps it empty. A clean
//! close removes it, as before.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::file_watch::FileWatch;

/// The writer's own automatic checkpoint, in WAL pages (about 40 MiB of 4 KiB pages).
pub(crate) const WRITER_FALLBACK_PAGES: u32 = 10_000;

/// How often at most the checkpointer runs while commits keep coming.
const INTERVAL: Duration = Duration::from_millis(100);

/// How often the store's files are looked at while no commit comes.
const IDLE_WATCH: Duration = Duration::from_secs(1);

/// The writer's handle on the checkpointer thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the writer and the checkpointer share.
///
/// A flag under a mutex rather than a channel: the writer commits hundreds of times a second,
/// and a channel woke the checkpointer at each commit only for it to go back to sleep until its
/// interval was over. The writer now wakes it only when it sleeps with nothing to do.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Commits since the last round.
    due: bool,
    /// The checkpointer waits for a commit (not for its interval to pass).
    idle: bool,
    /// The writer found a store file gone: the WAL is to be emptied now.
    files_gone: bool,
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `until`, or until `wake_on` holds.
    fn wait_until<'a>(
        &self,
        mut state: MutexGuard<'a, State>,
        until: Instant,
        wake_on: impl Fn(&State) -> bool,
    ) -> MutexGuard<'a, State> {
        while !wake_on(&state) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .wake
                .wait_timeout(state, left)
                .map(|(state, _)| state)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        state
    }
}

impl Checkpointer {
    /// Starts the checkpointer on its own connection `conn` to the store at `path`, whose files
    /// `files` watches.
    pub(crate) fn start(
        conn: Connection,
        path: &str,
        files: Arc<FileWatch>,
    ) -> std::io::Result<Self> {
        // A read opens the connection's WAL now, while it is the store's own: one opened only
        // after the file was replaced would be whatever is at `<path>-wal` then.
        if let Err(error) = conn.query_row("PRAGMA schema_version", [], |row| row.get::<_, i64>(0))
        {
            tracing::debug!(target: "ccai::inbox", %error, path, "the checkpointer's first read failed");
        }
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("ccai-inbox-checkpoint".into())
            .spawn(move || run(&conn, &thread_shared, &files, &path))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Tells the checkpointer that a commit happened; never blocks for long.
    pub(crate) fn committed(&self) {
        let mut state = self.shared.lock();
        state.due = true;
        if state.idle {
            self.shared.wake.notify_one();
        }
    }

    /// Tells the checkpointer that the writer found a store file gone, so that it empties the
    /// WAL now rather than at its next look.
    pub(crate) fn files_gone(&self) {
        self.shared.lock().files_gone = true;
        self.shared.wake.notify_one();
    }

    /// Stops the thread and waits for it (a checkpoint under way finishes first), so that the
    /// writer's closing checkpoint is the last word on the file.
    pub(crate) fn stop(mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Not stopped (the writer thread panicked): let the thread end on its own.
        self.shared.lock().stopped = true;
        self.shared.wake.notify_one();
    }
}

fn run(conn: &Connection, shared: &Shared, files: &FileWatch, path: &str) {
    let mut orphan = OrphanWal::default();
    loop {
        let due = {
            let mut state = shared.lock();
            state.idle = true;
            // Woken by a commit, a stop or the writer finding a file gone; else a look a second.
            let mut state = shared.wait_until(state, Instant::now() + IDLE_WATCH, |s| {
                s.due || s.stopped || s.files_gone
            });
            state.idle = false;
            state.files_gone = false;
            if state.stopped {
                return;
            }
            std::mem::take(&mut state.due)
        };
        // A `stat` of the database file (and of the WAL, once a second at most), here rather
        // than on the writer, where every acknowledgement waits.
        if files.failure().is_some() {
            orphan.keep_empty(conn, files, path);
            continue;
        }
        if !due {
            continue;
        }
        // PASSIVE: copies what it can without waiting for, or holding up, the writer.
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        }) {
            // Harmless: the next round or the writer's backstop catches up.
            tracing::debug!(target: "ccai::inbox", %error, path, "background checkpoint failed");
        }
        // At most one round per interval; commits meanwhile make the next one due. Only a stop
        // (or a file found gone) cuts this wait short.
        let state = shared.lock();
        let state = shared.wait_until(state, Instant::now() + INTERVAL, |s| {
            s.stopped || s.files_gone
        });
        if state.stopped {
            return;
        }
    }
}

/// The WAL of a store whose database file was deleted or replaced, kept empty.
#[derive(Debug, Default)]
struct OrphanWal {
    /// It was emptied once.
    emptied: bool,
    /// A failure to empty it was logged (once: it is tried again every second).
    failure_told: bool,
}

impl OrphanWal {
    /// Empties the WAL the first time, and again whenever the file at `<path>-wal`, still the
    /// store's own, holds something (a write that began before the writer saw the file gone).
    fn keep_empty(&mut self, conn: &Connection, files: &FileWatch, path: &str) {
        if self.emptied && files.own_wal_len().is_none_or(|len| len == 0) {
            return;
        }
        // TRUNCATE waits (up to the busy timeout) for the writer's transaction and for readers
        // still reading a snapshot that needs the WAL. The writer looks again for a file gone
        // once it holds the write lock, so nothing is committed after this.
        let outcome = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        });
        let why = match outcome {
            Ok(0) => {
                if !self.emptied || self.failure_told {
                    tracing::warn!(
                        target: "ccai::inbox",
                        path,
                        "emptied the write-ahead log of the deleted or replaced store file, so \
                         that no later open replays it into the file at the path"
                    );
                }
                self.emptied = true;
                self.failure_told = false;
                return;
            }
            Ok(_) => "a reader or a writer kept it busy".to_owned(),
            Err(error) => error.to_string(),
        };
        if !self.failure_told {
            self.failure_told = true;
            tracing::error!(
                target: "ccai::inbox",
                path,
                error = %why,
                "cannot empty the write-ahead log of the deleted or replaced store file (tried \
                 again every second): if this process is killed now, the next open may replay it \
                 into the file at the path; stop it cleanly instead (Ctrl-C or SIGTERM), which \
                 removes the log"
            );
        }
    }
}
