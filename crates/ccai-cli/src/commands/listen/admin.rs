//! `ccai listen --admin-port N`: the admin listener for load balancers and monitoring.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process is up |
//! | `GET /readyz` | 200 when the receiver accepts deliveries and the store can take writes (one probe shared by concurrent calls, its result reused for 1 s); 503 with the reason otherwise |
//! | `GET /metrics` | the `ccai_*` metrics in the Prometheus text format, queue gauges refreshed from the store |
//!
//! It binds 127.0.0.1 by default. Another address (`--admin-host`) requires a bearer token
//! (`--admin-token` or `CCAI_ADMIN_TOKEN`; one is generated and printed if none is given), checked
//! on every route as `Authorization: Bearer <token>`; a token given on loopback is checked too.
//! Without a token, requests must name the loopback in `Host` (as the browser view's do), so a
//! web page elsewhere cannot read them through a DNS name that resolves to 127.0.0.1.

use crate::stdout::errln;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Args;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::shared_probe::SharedProbe;
use crate::commands::ui::access::{bearer_token, loopback_host, same};
use crate::commands::ui::Serving;
use crate::store_open::{self, OpenedStore};

/// The shortest `--admin-token` accepted.
const MIN_TOKEN_CHARS: usize = 16;
/// How long the readiness probe waits for the store's write lock.
const PROBE_BUSY_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a probe or a stats query may take in all before it counts as a failure.
const STORE_DEADLINE: Duration = Duration::from_secs(2);
/// Histogram buckets for the `_seconds` metrics (1 ms to 30 s).
const SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Histogram buckets for `ccai_store_batch_size`.
const BATCH: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// `ccai listen`'s admin flags (`Debug` hides the token).
#[derive(Args)]
pub(crate) struct AdminArgs {
    /// Serve GET /healthz, /readyz and /metrics (Prometheus) on this port (0 picks a free one).
    #[arg(long, value_name = "PORT")]
    pub admin_port: Option<u16>,
    /// The admin listener's address (with --admin-port). Any address other than loopback
    /// requires a bearer token (--admin-token; generated and printed if not given).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub admin_host: String,
    /// The bearer token the admin routes require (Authorization: Bearer TOKEN; with
    /// --admin-port, without which CCAI_ADMIN_TOKEN is ignored).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CCAI_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Where `admin_token` came from (set after parsing): its errors name `CCAI_ADMIN_TOKEN`
    /// when it came from there.
    #[arg(skip)]
    pub admin_token_source: Option<clap::parser::ValueSource>,
}

impl std::fmt::Debug for AdminArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminArgs")
            .field("admin_port", &self.admin_port)
            .field("admin_host", &self.admin_host)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// How long a delivery the store refused (a full disk, say) keeps `/readyz` at 503 when no
/// delivery is stored since: long enough for a load balancer to see it, short enough that the
/// receiver is tried again once the cause may be gone (no delivery arrives while it is not
/// ready, so none could say it is).
const REFUSED_HOLD: Duration = Duration::from_secs(30);

/// Whether the receiver accepts deliveries: set once it serves, cleared as it starts stopping;
/// and whether the store refused the last delivery it was given.
#[derive(Debug, Clone, Default)]
pub(super) struct Readiness {
    accepting: Arc<AtomicBool>,
    /// Set with `refused`: read on every stored delivery, the lock only when it is set.
    refusing: Arc<AtomicBool>,
    /// When and why the store last refused a delivery, unless one was stored since.
    refused: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Readiness {
    /// The store could not take a delivery (not for a moment's overload, which the next write
    /// clears): `/readyz` says so for [`REFUSED_HOLD`] unless one is stored meanwhile. The
    /// probe's write lock needs no disk space, so a full disk showed "ready" while every
    /// delivery was answered 503.
    pub(super) fn store_refused(&self, error: &ccai::inbox::StoreError) {
        if matches!(error, ccai::inbox::StoreError::Overloaded) {
            return;
        }
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), error.to_string()));
        self.refusing.store(true, Ordering::SeqCst);
    }

    /// A delivery was stored: the store takes writes again.
    pub(super) fn store_took(&self) {
        if self.refusing.swap(false, Ordering::SeqCst) {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Why the store refused a delivery within [`REFUSED_HOLD`] before `now`, if it did and
    /// none was stored since.
    fn refused_recently(&self, now: Instant) -> Option<String> {
        if !self.refusing.load(Ordering::SeqCst) {
            return None;
        }
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let (at, reason) = refused.as_ref()?;
        let ago = now.saturating_duration_since(*at);
        (ago < REFUSED_HOLD)
            .then(|| format!("{reason} (a delivery was refused {} s ago)", ago.as_secs()))
    }

    pub(super) fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::SeqCst);
    }

    fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }
}

struct AdminState {
    readiness: Readiness,
    store: Option<OpenedStore>,
    /// A SQLite store's file, which the readiness probe opens.
    sqlite_file: Option<PathBuf>,
    /// The store probe `/readyz` calls share.
    probe: SharedProbe,
    metrics: PrometheusHandle,
    token: Option<String>,
}

/// The admin flags, checked: where to listen and the token to require.
pub(super) struct Checked {
    ip: IpAddr,
    port: u16,
    token: Option<String>,
    generated: bool,
}

impl Checked {
    /// Where the admin listener is to be bound.
    pub(super) fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.ip, self.port)
    }
}

/// Connections the admin listener serves at once; more wait to be accepted. Probes and a
/// metrics scraper need a handful.
const MAX_CONNECTIONS: usize = 64;
/// Connections one client (an address; an IPv6 /64) is served at once; past it, its further
/// connections are closed at once. A quarter of [`MAX_CONNECTIONS`]: one client trickling
/// request heads on many connections held every slot, and a load balancer's `/healthz` from
/// elsewhere timed out; now it takes four addresses colluding. Still room for a probe, a
/// scraper and a browser on the view (6 connections a host, its streams among them) from one
/// address.
const MAX_CONNECTIONS_PER_CLIENT: usize = 16;

/// Checks the admin flags (`None` without `--admin-port`), before `listen` creates or changes
/// anything: a bad flag is a usage error that leaves no store or development secret behind.
pub(super) fn check(args: &AdminArgs) -> Result<Option<Checked>> {
    let Some(port) = args.admin_port else {
        return Ok(None);
    };
    let ip = crate::http::ip_flag("--admin-host", &args.admin_host)?;
    let mut generated = false;
    let setting = crate::setting_name::ADMIN_TOKEN;
    let name = setting.shown(args.admin_token_source);
    let leave_out = setting.leave_out(args.admin_token_source);
    let token = match args.admin_token.as_deref().map(str::trim) {
        Some("") => anyhow::bail!(
            "{name} is empty: give a token of at least {MIN_TOKEN_CHARS} characters, or {leave_out} to have one generated"
        ),
        // As long as the view's: off the loopback it is all that guards the admin routes.
        Some(token) if token.chars().count() < MIN_TOKEN_CHARS => anyhow::bail!(
            "{name} is too short: give at least {MIN_TOKEN_CHARS} characters, or {leave_out} to have one generated"
        ),
        // Sent in an `Authorization` header, which carries visible ASCII only: any other
        // character would make a token nobody can present.
        Some(token) if !token.bytes().all(|b| b.is_ascii_graphic()) => anyhow::bail!(
            "{name} must be visible ASCII characters (letters, digits, punctuation; no spaces): it is sent in an HTTP header"
        ),
        Some(token) => Some(token.to_owned()),
        None if ip.is_loopback() => None,
        None => {
            generated = true;
            Some(new_token()?)
        }
    };
    Ok(Some(Checked {
        ip,
        port,
        token,
        generated,
    }))
}

/// The admin listener, bound but not served yet ([`start`]).
pub(super) struct Bound {
    listener: tokio::net::TcpListener,
    ip: IpAddr,
    token: Option<String>,
    generated: bool,
}

/// Binds where `checked` says (nothing without `--admin-port`). Apart from [`start`] so that a
/// taken port is found before the store is created.
pub(super) async fn bind(checked: Option<Checked>) -> Result<Option<Bound>> {
    let Some(Checked {
        ip,
        port,
        token,
        generated,
    }) = checked
    else {
        return Ok(None);
    };
    let listener = crate::http::bind(
        SocketAddr::new(ip, port),
        "serve the admin routes on",
        "--admin-host",
        "--admin-port",
        "another `ccai listen --admin-port`",
    )
    .await?;
    Ok(Some(Bound {
        listener,
        ip,
        token,
        generated,
    }))
}

/// Serves the admin routes on the `bound` listener (nothing without `--admin-port`): installs
/// the Prometheus recorder, prints where it listens (and a generated token), and serves in the
/// background.
pub(super) fn start(
    bound: Option<Bound>,
    store: Option<OpenedStore>,
    sqlite_file: Option<PathBuf>,
    readiness: &Readiness,
    view: Option<&Serving>,
) -> Result<()> {
    let Some(Bound {
        listener,
        ip,
        token,
        generated,
    }) = bound
    else {
        return Ok(());
    };
    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(ccai::telemetry::STORE_BATCH_SIZE.into()),
                &BATCH,
            )
        })
        .context("cannot configure the metrics")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    ccai::telemetry::describe();
    let addr = listener
        .local_addr()
        .context("cannot read the admin listener's address")?;
    let state = Arc::new(AdminState {
        readiness: readiness.clone(),
        store,
        sqlite_file,
        probe: SharedProbe::default(),
        metrics,
        token,
    });
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authorize,
        ))
        .with_state(Arc::clone(&state));
    // With --ui, the browser view is served here too, under its own access rules (the loopback,
    // or its token) — but only where those protect it: a view without a token stays off an
    // admin listener other hosts reach, whose admin token does not cover it.
    let view = match view {
        Some(serving) => {
            let router = serving.router_for(ip);
            if router.is_none() {
                errln!(
                    "note: the browser view is not served on the admin listener: {ip} is not the loopback and the view has no token (give --ui-token to serve it there too)"
                );
            }
            router
        }
        None => None,
    };
    let with_view = view.is_some();
    let app = match view {
        Some(view) => app.merge(view),
        None => app,
    };
    // Where a client here reaches it, as the receiver's own line says (not `http://[::]:…`).
    let shown = crate::http::reachable(addr);
    if with_view {
        errln!("Admin listener on http://{shown} (GET /healthz, /readyz, /metrics; the browser view at /)");
    } else {
        errln!("Admin listener on http://{shown} (GET /healthz, /readyz, /metrics)");
    }
    if let (true, Some(token)) = (generated, &state.token) {
        errln!("Admin token (Authorization: Bearer …): {token}");
    }
    // The hardened server, with few connections: a client that opens many and sends nothing
    // must not use up the file descriptors the receiver needs, nor every slot the probes need.
    tokio::spawn(
        ccai::server::Server::new()
            .max_connections(MAX_CONNECTIONS)
            .max_connections_per_client(MAX_CONNECTIONS_PER_CLIENT)
            .serve(listener, app),
    );
    Ok(())
}

fn new_token() -> Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot get random bytes for an admin token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn authorize(State(state): State<Arc<AdminState>>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        // On the loopback without a token, as the view does: a web page elsewhere must not read
        // the metrics or the readiness reasons through a DNS name that resolves to 127.0.0.1.
        if !loopback_host(request.headers()) {
            return (
                StatusCode::FORBIDDEN,
                "the admin routes answer only to localhost, 127.0.0.1 or [::1] (give --admin-token to use another name)\n",
            )
                .into_response();
        }
        return next.run(request).await;
    };
    let given = bearer_token(request.headers());
    if !given.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized: send Authorization: Bearer <admin token>\n",
        )
            .into_response();
    }
    next.run(request).await
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the receiver accepts deliveries and the store can take writes. What is known in
/// memory (a stop began, the writer failed, a delivery was refused) is answered at once; the
/// store probe is shared by concurrent calls and its result reused for a second
/// ([`SharedProbe`]), so a flood of calls probes the store at most once a second.
async fn readyz(State(state): State<Arc<AdminState>>) -> Response {
    if let Some(reason) = not_ready_now(&state) {
        return not_ready(reason);
    }
    let probed = match &state.store {
        Some(OpenedStore::Postgres(store)) => {
            // A cheap write within the deadline: the database is reachable and takes writes.
            let store = Arc::clone(store);
            let probe = || async move {
                store_open::probe_postgres(&store)
                    .await
                    .map_err(|reason| format!("the store cannot take writes: {reason}"))
            };
            state.probe.check(probe).await
        }
        Some(OpenedStore::Sqlite(_)) => {
            // The file as opened: `store.path()` is its name as shown, another file when not
            // UTF-8.
            let Some(path) = state.sqlite_file.clone() else {
                return not_ready("the store's file is not known".into());
            };
            state.probe.check(|| probe_sqlite(path)).await
        }
        None => Ok(()),
    };
    // Again: a stop may have begun while the probe ran.
    if let Some(reason) = not_ready_now(&state) {
        return not_ready(reason);
    }
    match probed {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => not_ready(reason),
    }
}

/// Why the receiver is not ready, from what is known in memory without asking the store.
fn not_ready_now(state: &AdminState) -> Option<String> {
    if !state.readiness.is_accepting() {
        return Some("the receiver is not accepting deliveries".into());
    }
    if let Some(OpenedStore::Sqlite(store)) = &state.store {
        if let Some(failure) = store.write_failure() {
            return Some(format!("the store cannot take writes: {failure}"));
        }
        // SQLite only: PostgreSQL's probe is a write through the server, which sees it down; a
        // hold there would keep every receiver out for its length after the database is back.
        if let Some(reason) = state.readiness.refused_recently(Instant::now()) {
            return Some(format!("the store cannot take writes: {reason}"));
        }
    }
    None
}

/// [`probe_writable`] on a blocking thread, within [`STORE_DEADLINE`]: why the store is not
/// ready, if it is not.
async fn probe_sqlite(path: PathBuf) -> Result<(), String> {
    let probe = tokio::task::spawn_blocking(move || probe_writable(&path));
    match tokio::time::timeout(STORE_DEADLINE, probe).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(reason))) => Err(format!("the store cannot take writes: {reason}")),
        Ok(Err(_)) => Err("the store probe failed".into()),
        Err(_) => Err("the store did not answer in time".into()),
    }
}

fn not_ready(reason: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {reason}\n"),
    )
        .into_response()
}

/// Takes and gives back the database's write lock on a connection of its own, waiting at most
/// [`PROBE_BUSY_TIMEOUT`]: fails if the file is gone, read-only or locked by another writer, or
/// if a newer ccai migrated it (the store's writer refuses writes then, but notices only at the
/// next one: an idle receiver is not ready either).
fn probe_writable(path: &Path) -> Result<(), String> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    conn.busy_timeout(PROBE_BUSY_TIMEOUT)
        .map_err(|e| e.to_string())?;
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK")
        .map_err(|e| e.to_string())?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    let known = ccai::inbox::SCHEMA_VERSION;
    if found != known {
        return Err(format!(
            "its schema changed to version {found} while this ccai (schema {known}) had it open \
             (a newer ccai migrated it?): stop this ccai listen and run the newer ccai"
        ));
    }
    Ok(())
}

async fn render_metrics(State(state): State<Arc<AdminState>>) -> Response {
    if let Some(store) = state.store.as_ref().map(OpenedStore::as_dyn) {
        match tokio::time::timeout(STORE_DEADLINE, store.stats(SystemTime::now())).await {
            Ok(Ok(stats)) => ccai::telemetry::record_stats(&stats),
            Ok(Err(error)) => {
                ccai::telemetry::record_stats_failed();
                tracing::warn!(target: "ccai::cli", %error, "cannot read the queue depth for /metrics")
            }
            Err(_) => {
                ccai::telemetry::record_stats_failed();
                tracing::warn!(
                    target: "ccai::cli",
                    "the store did not answer in time; /metrics has the previous queue depth"
                )
            }
        }
    }
    state.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ccai::inbox::StoreError;

    #[test]
    fn a_refused_delivery_holds_readiness_until_one_is_stored_or_the_hold_is_over() {
        let readiness = Readiness::default();
        let now = Instant::now;
        readiness.store_refused(&StoreError::Overloaded);
        assert_eq!(
            readiness.refused_recently(now()),
            None,
            "a moment's overload"
        );

        readiness.store_refused(&StoreError::Unavailable("x.db: the disk is full".into()));
        let reason = readiness.refused_recently(now()).expect("refused");
        assert!(reason.contains("the disk is full"), "{reason}");
        assert_eq!(readiness.refused_recently(now() + REFUSED_HOLD), None);

        readiness.store_took();
        assert_eq!(readiness.refused_recently(now()), None);
    }
}
