//! Live updates: one task looks at the store every [`POLL`] and bumps a version when what the page
//! shows changed (a new event, a status, an attempt, a count); each `/api/stream` client gets a
//! server-sent event per bump. Polling works whoever writes the store: `ccai listen` in this
//! process or another one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::response::sse::{Event, KeepAlive, Sse};
use ccai::inbox::{ListFilter, ListRequest, Store};
use futures_util::stream::{self, Stream};
use tokio::sync::watch;

/// How often the store is looked at.
const POLL: Duration = Duration::from_millis(500);
/// How many of the newest events are compared (status and attempt changes further down are not
/// announced; the page loads them when asked).
const WATCHED: usize = 50;

/// Starts the watcher; the receiver's value changes when the store does. The watcher (and with it
/// every stream) ends when `stop` turns true.
pub(crate) fn watch_store(
    store: Arc<dyn Store>,
    mut stop: watch::Receiver<bool>,
) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut last: Option<String> = None;
        let mut version = 0u64;
        loop {
            // Errors (a busy database) are skipped: the next look tries again.
            if let Some(now) = fingerprint(store.as_ref()).await {
                if last.as_ref().is_some_and(|last| *last != now) {
                    version += 1;
                    let _ = tx.send(version);
                }
                last = Some(now);
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    });
    rx
}

/// What the page shows, as text: the counts and the newest events with their deliveries.
async fn fingerprint(store: &dyn Store) -> Option<String> {
    let stats = store.stats(SystemTime::now()).await.ok()?;
    let page = store
        .list(ListRequest::new(ListFilter::new(), WATCHED))
        .await
        .ok()?;
    Some(format!(
        "{} {:?} {} {} {:?}",
        stats.events, stats.deliveries, stats.duplicates, stats.conflicts, page.events
    ))
}

/// `GET /api/stream`: `ready` at once, then `change` (data: a version number) whenever the store
/// changed. Ends when the server stops.
pub(crate) fn stream(
    changes: watch::Receiver<u64>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = stream::unfold((changes, true), |(mut changes, first)| async move {
        if first {
            let version = *changes.borrow_and_update();
            let ready = Event::default().event("ready").data(version.to_string());
            return Some((Ok(ready), (changes, false)));
        }
        changes.changed().await.ok()?;
        let version = *changes.borrow_and_update();
        let change = Event::default().event("change").data(version.to_string());
        Some((Ok(change), (changes, false)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
