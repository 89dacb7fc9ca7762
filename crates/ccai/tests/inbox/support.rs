//! Helpers: SQLite stores in temporary directories, polling with a deadline, an axum target.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ccai::inbox::{
    AttemptOutcome, AttemptRecord, ClaimedDelivery, Finish, Lease, LeaseRequest, SqliteOptions,
    SqliteStore, Store, StoreError,
};
use tokio::net::TcpListener;

/// A store in its own temporary directory (kept alive as long as the value).
#[derive(Debug)]
pub(crate) struct TempStore {
    pub store: SqliteStore,
    /// Deleted when the value is dropped.
    _dir: tempfile::TempDir,
}

pub(crate) fn temp_store(options: SqliteOptions) -> TempStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("inbox.db"), options).expect("open store");
    TempStore { store, _dir: dir }
}

/// Polls `check` until it returns `Some`, for up to `limit`; panics with `what` otherwise.
pub(crate) async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request the target received.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How the target answers, in turn; the last answer repeats.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub retry_after: Option<&'static str>,
    pub location: Option<&'static str>,
}

impl Answer {
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            location: None,
        }
    }
}

#[derive(Default)]
pub(crate) struct TargetState {
    pub received: Mutex<Vec<Received>>,
    pub answers: Mutex<Vec<Answer>>,
}

/// A real axum server recording what it receives.
pub(crate) struct Target {
    pub addr: SocketAddr,
    pub state: Arc<TargetState>,
    server: tokio::task::JoinHandle<()>,
}

impl Target {
    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn hook(State(state): State<Arc<TargetState>>, headers: HeaderMap, body: Bytes) -> Response {
    state.received.lock().expect("lock").push(Received {
        at: Instant::now(),
        headers,
        body,
    });
    let answer = {
        let mut answers = state.answers.lock().expect("lock");
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers.first().cloned().unwrap_or(Answer::status(200))
        }
    };
    let status = StatusCode::from_u16(answer.status).expect("status");
    let mut response = (status, "target says hello").into_response();
    if let Some(wait) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static(wait));
    }
    if let Some(location) = answer.location {
        response
            .headers_mut()
            .insert("location", HeaderValue::from_static(location));
    }
    response
}

/// Serves the target on `addr` (port 0 for any), answering `answers` in turn.
pub(crate) async fn start_target_on(addr: SocketAddr, answers: Vec<Answer>) -> Target {
    let state = Arc::new(TargetState {
        received: Mutex::default(),
        answers: Mutex::new(answers),
    });
    let listener = TcpListener::bind(addr).await.expect("bind target");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/elsewhere", post(hook))
        .with_state(Arc::clone(&state));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Target {
        addr,
        state,
        server,
    }
}

/// Serves `app` on a free port of 127.0.0.1: its address, and the server's task.
pub(crate) async fn serve_app(app: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

pub(crate) async fn start_target(answers: Vec<Answer>) -> Target {
    start_target_on("127.0.0.1:0".parse().expect("addr"), answers).await
}

/// Claims up to one delivery to `default` now, under a one-minute lease held by `w`.
pub(crate) async fn claim_one(store: &dyn Store) -> Result<Vec<ClaimedDelivery>, StoreError> {
    store
        .claim(
            "default",
            LeaseRequest::new("w", Duration::from_secs(60)),
            1,
            SystemTime::now(),
        )
        .await
}

/// Ends the attempt under `lease` with a failure that makes the delivery dead.
pub(crate) async fn finish_dead(store: &dyn Store, lease: &Lease) {
    let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Failure);
    store
        .finish(lease, Finish::Dead, record)
        .await
        .expect("finish");
}
