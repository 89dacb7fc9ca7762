//! Live updates: one task looks at the store every [`POLL`] and bumps a version when what the page
//! shows changed (a new event, a status, an attempt, a count); each `/api/stream` client gets a
//! server-sent event per bump. Polling works whoever writes the store: `ccai listen` in this
//! process or another one.
//!
//! Looking costs a `stats` and a page of the list, which grow with the store (about 0.1 s with a
//! million events), so the task looks only while a page is connected, and waits at least
//! [`LOOK_SHARE`] times as long as its last look took (up to [`LONGEST_WAIT`]): an open page
//! costs the store a tenth of a reader (more only when a look takes over half a second), and
//! nothing when nobody watches.

use std::collections::hash_map::{Entry, HashMap};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ccai::inbox::{ListFilter, ListRequest, Store};
use futures_util::stream;
use tokio::sync::watch;

/// How often the store is looked at, at most.
const POLL: Duration = Duration::from_millis(500);
/// The wait after a look is at least this many times what the look took...
const LOOK_SHARE: u32 = 10;
/// ...up to this: a look that failed slowly (PostgreSQL down: the 5 s connect timeout) must not
/// keep a page stale for a minute once the database is back.
const LONGEST_WAIT: Duration = Duration::from_secs(5);
/// The live-update streams open at once, over every listener the view is served on. Each holds
/// its connection while its page is open, and the admin listener (`ccai listen --ui
/// --admin-port`) serves 64 connections in all: without a cap, open pages (or a client opening
/// stream after stream) took them all and left `/healthz` and `/readyz` unanswered. A page
/// refused one shows it is disconnected and tries again.
pub(crate) const MAX_STREAMS: usize = 32;
/// The live-update streams one client (an address; an IPv6 /64) may have open: a client opening
/// stream after stream took all [`MAX_STREAMS`] and left every other page without live updates.
/// Eight pages of the view open at once from one address is more than a person reads.
pub(crate) const MAX_STREAMS_PER_CLIENT: usize = 8;
/// How many of the newest events are compared (status and attempt changes further down are not
/// announced; the page loads them when asked).
const WATCHED: usize = 50;

/// Open streams per client network (`ccai::server::client_network`), an entry per client with
/// one open.
type PerClient = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// What the stream handlers get: the version, the count of open streams the watcher reads, and
/// the count per client.
#[derive(Clone, Debug)]
pub(crate) struct Changes {
    version: watch::Receiver<u64>,
    viewers: Arc<AtomicUsize>,
    per_client: PerClient,
}

/// One open stream, counted while it lives (for its client too, when its address is known).
struct Viewer {
    viewers: Arc<AtomicUsize>,
    client: Option<(PerClient, IpAddr)>,
}

/// Why a stream is refused.
#[derive(Debug, PartialEq)]
enum Refused {
    /// [`MAX_STREAMS`] are open.
    AllTaken,
    /// Its client has [`MAX_STREAMS_PER_CLIENT`] open.
    ClientsShareTaken,
}

impl Viewer {
    /// Counts one more stream, from `client` if known, unless [`MAX_STREAMS`] are open or the
    /// client has [`MAX_STREAMS_PER_CLIENT`] open.
    fn admit(changes: &Changes, client: Option<IpAddr>) -> Result<Self, Refused> {
        let network = client.map(ccai::server::client_network);
        // Held until the stream is counted in all, so that two of one client's cannot both
        // take its last place.
        let mut per_client = changes
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(network) = network {
            if per_client.get(&network).copied().unwrap_or(0) >= MAX_STREAMS_PER_CLIENT {
                return Err(Refused::ClientsShareTaken);
            }
        }
        changes
            .viewers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (open < MAX_STREAMS).then_some(open + 1)
            })
            .map_err(|_| Refused::AllTaken)?;
        if let Some(network) = network {
            *per_client.entry(network).or_insert(0) += 1;
        }
        Ok(Self {
            viewers: Arc::clone(&changes.viewers),
            client: network.map(|network| (Arc::clone(&changes.per_client), network)),
        })
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if let Some((per_client, network)) = &self.client {
            let mut per_client = per_client.lock().unwrap_or_else(PoisonError::into_inner);
            if let Entry::Occupied(mut open) = per_client.entry(*network) {
                *open.get_mut() -= 1;
                if *open.get() == 0 {
                    open.remove();
                }
            }
        }
        self.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the watcher; the version changes when the store does. The watcher (and with it every
/// stream) ends when `stop` turns true.
pub(crate) fn watch_store(store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) -> Changes {
    let (tx, version) = watch::channel(0u64);
    let viewers = Arc::new(AtomicUsize::new(0));
    let watched = Arc::clone(&viewers);
    tokio::spawn(async move {
        let mut last: Option<String> = None;
        let mut version = 0u64;
        let mut first = true;
        loop {
            let mut wait = POLL;
            // The first look sets what a page that connects later is compared with; after it,
            // the store is looked at only while a page is connected. A page that connects
            // after a pause gets a bump if the store changed meanwhile (it reloads on `ready`
            // anyway).
            if first || watched.load(Ordering::Relaxed) > 0 {
                first = false;
                let began = Instant::now();
                // Errors (a busy database) are skipped: the next look tries again.
                if let Some(now) = fingerprint(store.as_ref()).await {
                    if last.as_ref().is_some_and(|last| *last != now) {
                        version += 1;
                        let _ = tx.send(version);
                    }
                    last = Some(now);
                }
                wait = wait.max((began.elapsed() * LOOK_SHARE).min(LONGEST_WAIT));
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    });
    Changes {
        version,
        viewers,
        per_client: Arc::default(),
    }
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

/// `GET /api/stream` from `client` (its address, when known): `ready` at once, then `change`
/// (data: a version number) whenever the store changed. Ends when the server stops. A 503 (with
/// `Retry-After`) while [`MAX_STREAMS`] are open, or [`MAX_STREAMS_PER_CLIENT`] from the client.
pub(crate) fn stream(changes: Changes, client: Option<IpAddr>) -> Response {
    let viewer = Viewer::admit(&changes, client);
    let viewer = match viewer {
        Ok(viewer) => viewer,
        Err(refused) => return refusal(&refused),
    };
    let state = (changes.version, true, viewer);
    let events = stream::unfold(state, |(mut changes, first, viewer)| async move {
        if first {
            let version = *changes.borrow_and_update();
            let ready = Event::default().event("ready").data(version.to_string());
            return Some((Ok::<_, Infallible>(ready), (changes, false, viewer)));
        }
        changes.changed().await.ok()?;
        let version = *changes.borrow_and_update();
        let change = Event::default().event("change").data(version.to_string());
        Some((Ok(change), (changes, false, viewer)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The 503 for a refused stream, which the page retries after `Retry-After`.
fn refusal(refused: &Refused) -> Response {
    let message = match refused {
        Refused::AllTaken => format!(
            "{MAX_STREAMS} live-update streams are open, the most this view serves: close a page of the view you do not need"
        ),
        Refused::ClientsShareTaken => format!(
            "{MAX_STREAMS_PER_CLIENT} live-update streams are open from your address, the most one client gets: close a page of the view you do not need"
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_of_streams_and_a_closed_ones_place_back() {
        let (_tx, version) = watch::channel(0);
        let changes = Changes {
            version,
            viewers: Arc::default(),
            per_client: Arc::default(),
        };
        let one = Some(IpAddr::from([127, 0, 0, 2]));
        let mut open: Vec<Viewer> = (0..MAX_STREAMS_PER_CLIENT)
            .map(|_| Viewer::admit(&changes, one).expect("within its share"))
            .collect();
        assert_eq!(
            Viewer::admit(&changes, one).err(),
            Some(Refused::ClientsShareTaken)
        );
        open.pop();
        open.push(Viewer::admit(&changes, one).expect("a closed stream's place"));
        // Without an address, only the total counts.
        while changes.viewers.load(Ordering::Relaxed) < MAX_STREAMS {
            open.push(Viewer::admit(&changes, None).expect("under the total"));
        }
        let other = Some(IpAddr::from([127, 0, 0, 3]));
        assert_eq!(
            Viewer::admit(&changes, other).err(),
            Some(Refused::AllTaken)
        );
        drop(open);
        assert_eq!(changes.viewers.load(Ordering::Relaxed), 0);
        assert!(changes
            .per_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty());
    }
}
