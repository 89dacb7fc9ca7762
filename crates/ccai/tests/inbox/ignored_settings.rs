//! A `HandlerOptions` setting that does nothing in the handler's mode is named in one warning
//! when the handler is built; a configuration whose settings all apply logs none.

use std::sync::{Arc, Mutex};

use ccai::event::WebhookEvent;
use ccai::inbox::{SqliteOptions, SqliteStore, Store};
use ccai::server::{create_handler, HandlerOptions};
use ccai::webhook::MemoryDeduper;

use crate::receiver::{CLIENT_ID, SECRET};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `build` logs on this thread. A second registered dispatcher (ignoring everything) makes
/// tracing ask each one at every call site, rather than cache the answer of whichever thread
/// reached it first (see `tests/handler/hooks.rs`).
fn logs_of(build: impl FnOnce()) -> String {
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, build);
    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    text
}

fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::new()).expect("open");
    (Arc::new(store), dir)
}

fn callback() -> HandlerOptions {
    HandlerOptions::new(CLIENT_ID, |_: WebhookEvent| async {
        Ok::<_, std::io::Error>(())
    })
    .secret(SECRET)
}

#[test]
fn a_setting_the_mode_does_not_use_is_one_warning_naming_it() {
    let (store, _dir) = store();
    let inbox = || HandlerOptions::inbox(CLIENT_ID, Arc::clone(&store)).secret(SECRET);
    let cases: Vec<(&str, &str, HandlerOptions)> = vec![
        (
            "on_duplicate",
            "on_stored receives them",
            inbox().on_duplicate(|_| {}).on_duplicate(|_| {}),
        ),
        (
            "deduper",
            "the store deduplicates",
            inbox().deduper(MemoryDeduper::new()),
        ),
        (
            "without_deduplication",
            "the store always deduplicates",
            inbox().without_deduplication(),
        ),
        (
            "on_stored",
            "outside inbox mode",
            callback().on_stored(|_, _| {}),
        ),
        (
            "wake_on",
            "outside inbox mode",
            callback().wake_on(Arc::default()),
        ),
    ];
    for (setting, why, options) in cases {
        let logs = logs_of(|| drop(create_handler(options).expect("handler")));
        let named = format!("HandlerOptions::{setting} has no effect");
        assert_eq!(logs.matches(&named).count(), 1, "{setting}: {logs}");
        let line = logs.lines().find(|l| l.contains(&named)).expect("line");
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains(why), "{line}");
    }
}

#[test]
fn settings_that_apply_are_not_warned_about() {
    let (store, _dir) = store();
    let logs = logs_of(|| {
        let inbox = HandlerOptions::inbox(CLIENT_ID, Arc::clone(&store))
            .secret(SECRET)
            .on_stored(|_, _| {})
            .wake_on(Arc::default())
            .on_reject(|_| {})
            .log_events(true);
        drop(create_handler(inbox).expect("inbox handler"));
        let callback = callback()
            .deduper(MemoryDeduper::new())
            .on_duplicate(|_| {})
            .without_deduplication();
        drop(create_handler(callback).expect("callback handler"));
    });
    assert!(!logs.contains("WARN"), "{logs}");
}
