//! The view's store reads, a few at a time: its requests share the process (and the store) with
//! `ccai listen --ui`'s receiver, and twenty full-text searches of a million events at once
//! slowed its deliveries to 0.7 s at the median. A request that cannot start within [`WAIT`] is
//! answered 503 with `Retry-After`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests that read the store at once. The view runs on 2-core machines beside the receiver,
/// and a read holds a thread (for SQLite, with a reader connection) until it ends: a slow
/// search is a thread busy on a core, so the receiver's threads compete with at most 4 of them
/// (twice the cores) instead of as many as are asked. 4 is also the reader connections a SQLite
/// store keeps open (more are opened and closed for each read), and more than one page asks at
/// once (the list, the counters and an event's details after a change), so a page alone never
/// waits for its own reads.
const AT_ONCE: usize = 4;
/// How long a request waits for its turn before it is refused: a page's reads queue behind
/// others' quick ones, and only slow searches that hold every turn make it give up.
const WAIT: Duration = Duration::from_secs(2);
/// The `Retry-After` of a refusal, in seconds.
const RETRY_AFTER: &str = "1";

/// The turns to read the store, shared by every listener the view is served on.
#[derive(Clone, Debug)]
pub(super) struct Reads(Arc<Semaphore>);

impl Reads {
    pub(super) fn new() -> Self {
        Self(Arc::new(Semaphore::new(AT_ONCE)))
    }

    /// Runs `read` in a turn, waiting for one as long as it takes: for a download's later
    /// pages, whose answer has started (so cannot be a 503). `None` if the read failed to run
    /// (it panicked).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        read: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let permit = Arc::clone(&self.0).acquire_owned().await.ok();
        keeping(permit, read).await.ok()
    }
}

/// Runs `work` in a task of its own, which keeps `permit` until `work` is done: a client that
/// hangs up drops its request's future, but not the store read it started (a SQLite query runs
/// on in its thread), which would otherwise go on outside the count.
async fn keeping<T: Send + 'static>(
    permit: Option<OwnedSemaphorePermit>,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::spawn(async move {
        let done = work.await;
        drop(permit);
        done
    })
    .await
}

/// Middleware for the routes that read the store: runs the request in its turn, or answers 503
/// if none comes within [`WAIT`].
pub(super) async fn in_turn(State(reads): State<Reads>, request: Request, next: Next) -> Response {
    let permit = match tokio::time::timeout(WAIT, Arc::clone(&reads.0).acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        // `Err(_)` of the acquire: closed, which the semaphore never is.
        Ok(Err(_)) | Err(_) => return busy(),
    };
    match keeping(Some(permit), next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "error": "the view failed to answer this request: see its output for why" })),
        )
            .into_response(),
    }
}

/// The answer to a request that got no turn: the API's `{"error"}`, and when to try again.
fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER)],
        axum::Json(json!({
            "error": format!(
                "the view is busy: {AT_ONCE} requests are reading the store (slow searches?); try again in a moment"
            )
        })),
    )
        .into_response()
}
