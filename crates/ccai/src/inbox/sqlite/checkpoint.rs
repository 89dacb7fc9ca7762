//! The background checkpointer: copies committed WAL frames into the database file on a thread
//! and connection of its own, so that the writer thread (where every acknowledgement waits) does
//! not.
//!
//! The writer keeps SQLite's automatic checkpoint as a backstop at [`WRITER_FALLBACK_PAGES`]: a
//! passive checkpoint running beside a busy writer rarely catches the WAL's very end, and the WAL
//! only starts over from its beginning once a checkpoint has. That backstop runs in the writer
//! right after a commit, with nothing else writing, and has little left to copy.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
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
    nudges: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the checkpointer on its own connection `conn` to the store at `path`.
    pub(crate) fn start(conn: Connection, path: &str) -> std::io::Result<Self> {
        let (sender, nudges) = std::sync::mpsc::sync_channel(1);
        let path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("ccai-inbox-checkpoint".into())
            .spawn(move || run(&conn, &nudges, &path))?;
        Ok(Self {
            nudges: Some(sender),
            thread: Some(thread),
        })
    }

    /// Tells the checkpointer that a commit happened; never blocks.
    pub(crate) fn committed(&self) {
        if let Some(nudges) = &self.nudges {
            // Full means a nudge is already waiting: one is enough.
            let _ = nudges.try_send(());
        }
    }

    /// Stops the thread and waits for it (a checkpoint under way finishes first), so that the
    /// writer's closing checkpoint is the last word on the file.
    pub(crate) fn stop(mut self) {
        self.nudges = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, nudges: &Receiver<()>, path: &str) {
    // Commits since the last round.
    let mut due = false;
    loop {
        if !due && nudges.recv().is_err() {
            return;
        }
        due = false;
        // PASSIVE: copies what it can without waiting for, or holding up, the writer.
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        }) {
            // Harmless: the next round or the writer's backstop catches up.
            tracing::debug!(target: "ccai::inbox", %error, path, "background checkpoint failed");
        }
        // At most one round per interval; commits meanwhile make the next one due.
        let until = Instant::now() + INTERVAL;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match nudges.recv_timeout(left) {
                Ok(()) => due = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}
