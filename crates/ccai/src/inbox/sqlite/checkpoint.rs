//! The background checkpointer: copies committed WAL frames into the database file on a thread
//! and connection of its own, so that the writer thread (where every acknowledgement waits) does
//! not.
//!
//! The writer keeps SQLite's automatic checkpoint as a backstop at [`WRITER_FALLBACK_PAGES`]: a
//! passive checkpoint running beside a busy writer rarely catches the WAL's very end, and the WAL
//! only starts over from its beginning once a checkpoint has. That backstop runs in the writer
//! right after a commit, with nothing else writing, and has little left to copy.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// The writer's own automatic checkpoint, in WAL pages (about 40 MiB of 4 KiB pages).
pub(crate) const WRITER_FALLBACK_PAGES: u32 = 10_000;

/// How often at most the checkpointer runs while commits keep coming.
const INTERVAL: Duration = Duration::from_millis(100);

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
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Checkpointer {
    /// Starts the checkpointer on its own connection `conn` to the store at `path`.
    pub(crate) fn start(conn: Connection, path: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("ccai-inbox-checkpoint".into())
            .spawn(move || run(&conn, &thread_shared, &path))?;
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

fn run(conn: &Connection, shared: &Shared, path: &str) {
    loop {
        {
            let mut state = shared.lock();
            state.idle = true;
            while !state.due && !state.stopped {
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.idle = false;
            if state.stopped {
                return;
            }
            state.due = false;
        }
        // PASSIVE: copies what it can without waiting for, or holding up, the writer.
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        }) {
            // Harmless: the next round or the writer's backstop catches up.
            tracing::debug!(target: "ccai::inbox", %error, path, "background checkpoint failed");
        }
        // At most one round per interval; commits meanwhile make the next one due. Only a stop
        // wakes this wait.
        let until = Instant::now() + INTERVAL;
        let mut state = shared.lock();
        while !state.stopped {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = shared
                .wake
                .wait_timeout(state, left)
                .map(|(state, _)| state)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if state.stopped {
            return;
        }
    }
}
