//! `ccai listen`'s lines on standard output, written by a thread of their own.
//!
//! A reader that stops reading (a paused `| less`, a stalled log shipper) must not stop the
//! receiver. Written on the runtime's threads, a line blocked its thread once the pipe was full,
//! and soon every one: deliveries hung, `/healthz` went silent, and not even a second Ctrl-C got
//! through (the runtime handles the signals). Here a line waits in a queue instead; past
//! [`QUEUE_LIMIT`] bytes waiting, lines are left out and stderr says so.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use crate::stdout::errln;

/// How many bytes of lines may wait for standard output (a terminal catching up on a burst needs
/// far less; `--json` lines carry whole deliveries).
const QUEUE_LIMIT: usize = 4 << 20;

enum Message {
    Line(String),
    /// Answered once every line queued before it has been written.
    Flush(mpsc::SyncSender<()>),
}

/// The writer thread's queue (`None` if the thread could not be started).
static QUEUE: OnceLock<Option<mpsc::Sender<Message>>> = OnceLock::new();
/// Bytes queued and not written yet.
static QUEUED: AtomicUsize = AtomicUsize::new(0);
/// Lines left out since the start.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Whether lines are being left out now: told once, until the queue has drained.
static DROPPING: AtomicBool = AtomicBool::new(false);

fn queue() -> Option<&'static mpsc::Sender<Message>> {
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = mpsc::channel();
            std::thread::Builder::new()
                .name("ccai-stdout".into())
                .spawn(move || write_lines(receiver))
                .ok()
                .map(|_| sender)
        })
        .as_ref()
}

/// Queues `line` (made inert for a terminal) for standard output; never blocks.
pub(super) fn emit(line: &str) {
    let text = format!("{}\n", crate::output::inert(line));
    let Some(queue) = queue() else {
        // No thread: written here, as before.
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        return;
    };
    let len = text.len();
    let before = QUEUED.fetch_add(len, Ordering::SeqCst);
    // A line longer than the limit still goes out when nothing waits.
    if before > 0 && before.saturating_add(len) > QUEUE_LIMIT {
        QUEUED.fetch_sub(len, Ordering::SeqCst);
        DROPPED.fetch_add(1, Ordering::Relaxed);
        if !DROPPING.swap(true, Ordering::SeqCst) {
            errln!(
                "warning: standard output is not being read: event lines are left out until it is (deliveries are still answered)"
            );
        }
        return;
    }
    if queue.send(Message::Line(text)).is_err() {
        QUEUED.fetch_sub(len, Ordering::SeqCst);
    }
}

/// Waits (at most `limit`) until the queued lines are written, then says how many were left out.
pub(super) fn finish(limit: Duration) {
    if let Some(queue) = QUEUE.get().and_then(Option::as_ref) {
        let (done, flushed) = mpsc::sync_channel(1);
        let written =
            queue.send(Message::Flush(done)).is_ok() && flushed.recv_timeout(limit).is_ok();
        if !written {
            errln!(
                "warning: standard output is not being read: the last event lines were not printed"
            );
        }
    }
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        errln!("warning: {dropped} event line(s) were not printed: standard output was not read fast enough");
    }
}

fn write_lines(receiver: mpsc::Receiver<Message>) {
    for message in receiver {
        match message {
            Message::Line(text) => {
                // A closed pipe (`ccai listen | head`) loses the line, not the process.
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                if QUEUED.fetch_sub(text.len(), Ordering::SeqCst) == text.len() {
                    DROPPING.store(false, Ordering::SeqCst);
                }
            }
            Message::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
