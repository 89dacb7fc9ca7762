//! Standard output for the one-shot commands, without `println!`'s panic on a write error.
//!
//! A closed pipe (`ccai events list | head -1`) stops the output, not the command: a replay
//! that is sending events finishes, nothing panics, and the exit code is the command's own (as
//! ripgrep does). Any other write error (a full disk behind `> file`) is kept and reported once
//! the command has run, as an error exit: output that was lost must not look like success.
//! Everything written goes through [`output::inert`](crate::output::inert) first, so that no
//! stored text can act on the terminal.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set once a write found the reader gone: later output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first write error other than a closed pipe.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Writes `args` to standard output (what [`out!`] and [`outln!`] call).
pub(crate) fn write(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let text = args.to_string();
    let mut out = io::stdout().lock();
    let written = out
        .write_all(crate::output::inert(&text).as_bytes())
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        } else if let Ok(mut failed) = FAILED.lock() {
            failed.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Why output was lost, if it was for another reason than a closed pipe.
pub(crate) fn failure() -> Option<String> {
    FAILED.lock().ok().and_then(|failed| failed.clone())
}

/// `print!` that never panics (see the module docs).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

/// `println!` that never panics (see the module docs).
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: a closed standard error (`ccai listen 2>&1 | head`) loses the
/// line, not the process (a receiver that panicked on its "Stopped." line would exit 101). For
/// `ccai listen`, written by a thread of its own ([`line_writer`](crate::line_writer)).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::line_writer::err_text(format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, out, outln};
