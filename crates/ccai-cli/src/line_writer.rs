//! `ccai listen`'s standard output and standard error, each written by a thread of its own.
//!
//! A reader that stops reading (a paused `| less`, a stalled log shipper) must not stop the
//! receiver. Written on the runtime's threads, a line blocked its thread once the pipe was full,
//! and soon every one: deliveries hung, `/healthz` went silent, and not even a second Ctrl-C got
//! through (the runtime handles the signals). Once [`start`] is called, lines wait in a queue
//! instead; past [`QUEUE_LIMIT`] bytes waiting, lines are left out and counted. Before it (and
//! for the one-shot commands) they are written where they are produced, as ever.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// How many bytes may wait for each stream (a terminal catching up on a burst needs far less;
/// `--json` lines carry whole deliveries).
const QUEUE_LIMIT: usize = 4 << 20;

/// What a stream that is read gets, at the least, to catch up at the end.
const LEAST_FLUSH: Duration = Duration::from_secs(1);

enum Message {
    Text(String),
    /// Answered once everything queued before it has been written.
    Flush(mpsc::SyncSender<()>),
}

#[derive(Clone, Copy)]
enum Target {
    Stdout,
    Stderr,
}

/// One stream's queue and counts.
struct Stream {
    target: Target,
    /// The writer thread's queue (`None` if the thread could not be started).
    queue: OnceLock<Option<mpsc::Sender<Message>>>,
    /// Bytes queued and not written yet.
    queued: AtomicUsize,
    /// Lines left out, not told yet.
    dropped: AtomicU64,
    /// Whether lines are being left out now: told once, until the queue has drained.
    dropping: AtomicBool,
}

static STDOUT: Stream = Stream::new(Target::Stdout);
static STDERR: Stream = Stream::new(Target::Stderr);
/// Set by [`start`]: from then on, lines go through the queues.
static QUEUEING: AtomicBool = AtomicBool::new(false);

/// From now on, standard output and standard error are written by threads of their own.
pub(crate) fn start() {
    QUEUEING.store(true, Ordering::SeqCst);
}

/// Writes `line` and a newline to standard output, made inert for a terminal.
pub(crate) fn out_line(line: &str) {
    STDOUT.write(format!("{}\n", crate::output::inert(line)));
}

/// Writes `text` to standard error as it is (what [`errln!`](crate::stdout::errln) and the log
/// lines write).
pub(crate) fn err_text(text: String) {
    STDERR.write(text);
}

impl Stream {
    const fn new(target: Target) -> Self {
        Self {
            target,
            queue: OnceLock::new(),
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            dropping: AtomicBool::new(false),
        }
    }

    fn write(&'static self, text: String) {
        let queue = if QUEUEING.load(Ordering::SeqCst) {
            self.queue()
        } else {
            None
        };
        let Some(queue) = queue else {
            write_to(self.target, &text);
            return;
        };
        let len = text.len();
        let before = self.queued.fetch_add(len, Ordering::SeqCst);
        // A text longer than the limit still goes out when nothing waits.
        if before > 0 && before.saturating_add(len) > QUEUE_LIMIT {
            self.queued.fetch_sub(len, Ordering::SeqCst);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.dropping.swap(true, Ordering::SeqCst) {
                if let Target::Stdout = self.target {
                    err_text(
                        "warning: standard output is not being read: event lines are left out until it is (deliveries are still answered)\n"
                            .to_owned(),
                    );
                }
            }
            return;
        }
        if queue.send(Message::Text(text)).is_err() {
            self.queued.fetch_sub(len, Ordering::SeqCst);
        }
    }

    fn queue(&'static self) -> Option<&'static mpsc::Sender<Message>> {
        self.queue
            .get_or_init(|| {
                let (sender, receiver) = mpsc::channel();
                let name = match self.target {
                    Target::Stdout => "ccai-stdout",
                    Target::Stderr => "ccai-stderr",
                };
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || self.write_queued(receiver))
                    .ok()
                    .map(|_| sender)
            })
            .as_ref()
    }

    fn write_queued(&self, receiver: mpsc::Receiver<Message>) {
        for message in receiver {
            match message {
                Message::Text(text) => {
                    write_to(self.target, &text);
                    if self.queued.fetch_sub(text.len(), Ordering::SeqCst) == text.len() {
                        self.dropping.store(false, Ordering::SeqCst);
                    }
                }
                Message::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Waits until `deadline` (at least [`LEAST_FLUSH`]) for what is queued to be written;
    /// whether it was.
    fn flush(&self, deadline: Instant) -> bool {
        let Some(queue) = self.queue.get().and_then(Option::as_ref) else {
            return true;
        };
        let (done, flushed) = mpsc::sync_channel(1);
        let limit = deadline
            .saturating_duration_since(Instant::now())
            .max(LEAST_FLUSH);
        queue.send(Message::Flush(done)).is_ok() && flushed.recv_timeout(limit).is_ok()
    }
}

/// A closed pipe (`ccai listen | head`) loses the text, not the process.
fn write_to(target: Target, text: &str) {
    let _ = match target {
        Target::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
        Target::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// Waits (about `limit` in all) for the queued lines to be written, saying on standard error
/// what was left out. Blocks: call it off the runtime's threads, or on the way out.
pub(crate) fn finish(limit: Duration) {
    if !QUEUEING.load(Ordering::SeqCst) {
        return;
    }
    let deadline = Instant::now() + limit;
    if !STDOUT.flush(deadline) {
        err_text(
            "warning: standard output is not being read: the last event lines were not printed\n"
                .to_owned(),
        );
    }
    let dropped = STDOUT.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let lines = crate::output::count(dropped, "event line was", "event lines were");
        err_text(format!(
            "warning: {lines} not printed: standard output was not read fast enough\n"
        ));
    }
    // Told if standard error is read again, at least.
    let dropped = STDERR.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let lines = crate::output::count(dropped, "line was", "lines were");
        err_text(format!(
            "warning: {lines} not written to standard error: it was not read fast enough\n"
        ));
    }
    STDERR.flush(deadline);
}
