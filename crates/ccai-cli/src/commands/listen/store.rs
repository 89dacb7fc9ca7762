//! `ccai listen` on the durable inbox: every verified delivery is stored in a SQLite file (or a
//! PostgreSQL database shared with other receivers) before it is answered 200; with `--forward-to`, a dispatcher then forwards it from the store, with
//! retries, until it is delivered or dead.
//!
//! Every stored event gets a pending delivery to one destination, [`DESTINATION`], whether or not
//! `--forward-to` is given: a later start with `--forward-to` forwards what was stored before.

use crate::stdout::errln;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use ccai::inbox::{
    AttemptReport, AttemptResult, DeliveryStatus, Dispatcher, DispatcherBuilder, HttpForward,
    Inserted, PostgresOptions, RetrySchedule, SqliteOptions, SqliteStore, Store, Synchronous,
};
use ccai::webhook::{HandlerOptions, WebhookEvent, WebhookEventType};
use serde_json::json;

use super::{emit, Printer};
use crate::cli::{ListenArgs, SyncMode};
use crate::store_open::{self, OpenedStore};
use crate::{clock, http, output};

/// The one destination stored events are forwarded to.
pub(super) const DESTINATION: &str = store_open::DESTINATION;
/// How long a forward in flight holds its event without a heartbeat: after a crash, the events
/// that were being forwarded are forwarded again this long after the restart.
const LEASE: Duration = Duration::from_secs(10);

/// The open store and, with `--forward-to`, what forwards from it.
pub(super) struct Inbox {
    store: OpenedStore,
    /// A SQLite store's file, as opened (the store's `path()` is its name as shown, which for a
    /// name that is not UTF-8 is another file).
    sqlite_file: Option<PathBuf>,
    sync: SyncMode,
    /// Forwards in flight at once (`--forward-concurrency`).
    forward_concurrency: u16,
    forward: Option<(reqwest::Url, RetrySchedule)>,
    /// What [`Inbox::handler`] forwards with: built before the store is opened, so that a
    /// `--forward-to` it refuses leaves no store behind.
    http_forward: Option<HttpForward>,
    /// With `--forward-to`, the dispatcher set up by [`Inbox::handler`], started by
    /// [`Inbox::start_forwarding`] once nothing can fail the start any more.
    ready_to_forward: Option<DispatcherBuilder>,
    dispatcher: Option<Dispatcher>,
}

/// Creates the store's folder if missing, owner-only (0700 on Unix, as every folder it creates
/// on the way): the inbox holds webhook bodies. A folder that exists keeps its mode. `name` is
/// where the path came from ([`ListenArgs::store_name`]), which the error names and says how to
/// change.
fn create_parent(path: &Path, name: &str) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let Err(error) = private_dir_builder().create(dir) else {
        return Ok(());
    };
    // A file where a folder must be reads "File exists" or "Not a directory": name the file.
    let reason = match dir.ancestors().find(|up| up.exists()) {
        Some(file) if !file.is_dir() => format!("{} is a file, not a folder", file.display()),
        _ => error.to_string(),
    };
    let advice = match name {
        "CCAI_STORE" => "set CCAI_STORE to another path, or pass --store or --no-store",
        "--store" => "pass another --store, or --no-store",
        _ => "set CCAI_DATA_DIR to another folder, or pass --store or --no-store",
    };
    bail!(
        "{name} {}: cannot create the folder {} for it: {reason}; {advice}",
        path.display(),
        dir.display()
    )
}

#[cfg(unix)]
fn private_dir_builder() -> std::fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
}

#[cfg(not(unix))]
fn private_dir_builder() -> std::fs::DirBuilder {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    builder
}

/// Where the store is, as `--store` names it.
enum Location {
    Postgres(String),
    Sqlite(PathBuf),
}

/// The store's flags, checked by [`Inbox::check`] before any port is bound or file created:
/// what [`Inbox::open`] opens and forwards with.
pub(super) struct Checked {
    location: Location,
    schedule: RetrySchedule,
    http_forward: Option<HttpForward>,
}

/// The SQLite file `--store` names, checked to be a file path.
fn sqlite_path(args: &ListenArgs) -> Result<PathBuf> {
    let name = args.store_name();
    let path = crate::store_path::store_path(args.store(), name)?;
    // A trailing `/` names a folder, even one that does not exist yet: SQLite would create a
    // file without the `/`, which `ccai events --store` with the same value cannot find.
    let names_folder = path
        .to_string_lossy()
        .chars()
        .last()
        .is_some_and(std::path::is_separator);
    if names_folder || path.is_dir() {
        bail!(
            "{name} {} is a folder: give a file path such as {}",
            path.display(),
            path.join("inbox.db").display()
        );
    }
    Ok(path)
}

/// Opens (creating and migrating) the SQLite file at `path`.
fn open_sqlite(path: &Path, name: &str, sync: SyncMode) -> Result<SqliteStore> {
    create_parent(path, name)?;
    let synchronous = match sync {
        SyncMode::Full => Synchronous::Full,
        SyncMode::Normal => Synchronous::Normal,
    };
    let options = SqliteOptions::new()
        .synchronous(synchronous)
        .destinations([DESTINATION]);
    // StoreError's messages name the file and say what to do.
    store_open::open_sqlite(path, options)
}

impl Inbox {
    /// Checks the store's flags (where it is, `--sync`, the retry schedule), creating nothing;
    /// `http_forward` is what it will forward with.
    pub(super) fn check(args: &ListenArgs, http_forward: Option<HttpForward>) -> Result<Checked> {
        let schedule = match &args.retry_schedule {
            None => RetrySchedule::default(),
            Some(text) => crate::duration_flag::retry_schedule(text)?,
        };
        let location = match store_open::postgres_url(args.store().as_deref()) {
            Some(url) => {
                if args.sync.is_some() {
                    bail!(
                        "--sync applies to the SQLite store only: a PostgreSQL store commits every \
                         delivery with synchronous_commit on before answering; drop --sync"
                    );
                }
                Location::Postgres(url.to_owned())
            }
            None => Location::Sqlite(sqlite_path(args)?),
        };
        Ok(Checked {
            location,
            schedule,
            http_forward,
        })
    }

    /// Opens (creating and migrating) the store `checked` names.
    pub(super) async fn open(
        args: &ListenArgs,
        forward: Option<&reqwest::Url>,
        checked: Checked,
    ) -> Result<Self> {
        let Checked {
            location,
            schedule,
            http_forward,
        } = checked;
        let sync = args.sync.unwrap_or(SyncMode::Full);
        let mut sqlite_file = None;
        let store = match location {
            Location::Postgres(url) => {
                let options = PostgresOptions::new().destinations([DESTINATION]);
                OpenedStore::Postgres(Arc::new(store_open::connect_postgres(&url, options).await?))
            }
            Location::Sqlite(file) => {
                let store = open_sqlite(&file, args.store_name(), sync)?;
                sqlite_file = Some(file);
                OpenedStore::Sqlite(Arc::new(store))
            }
        };
        Ok(Self {
            store,
            sqlite_file,
            sync,
            forward_concurrency: args.forward_concurrency,
            forward: forward.map(|url| (url.clone(), schedule)),
            http_forward,
            ready_to_forward: None,
            dispatcher: None,
        })
    }

    /// Fails with the store's own message (locked by another process, not writable, disk full)
    /// unless a write can go through now: better said at start than answered 503 to every sender.
    pub(super) async fn check_writable(&self) -> Result<()> {
        self.store
            .check_writable()
            .await
            .map_err(store_open::advised)
    }

    /// Sets forwarding up (with `--forward-to`; [`Self::start_forwarding`] starts it) and returns
    /// the handler options that store each verified delivery, print it and wake the dispatcher.
    pub(super) fn handler(
        &mut self,
        client_id: String,
        printer: &Arc<Printer>,
        readiness: &super::admin::Readiness,
    ) -> HandlerOptions {
        let waker = match (&self.forward, self.http_forward.take()) {
            (Some((_, schedule)), Some(forward)) => {
                let store: Arc<dyn Store> = self.store.as_dyn();
                let reporter = Arc::clone(printer);
                // Events stored by other receivers on the same database wake this one too.
                let waker = self.store.notifier().unwrap_or_default();
                self.ready_to_forward = Some(
                    Dispatcher::builder(store, forward)
                        .on_attempt(move |report| report_attempt(&reporter, report))
                        .wake_on(Arc::clone(&waker))
                        .destination(DESTINATION)
                        .lease(LEASE)
                        .concurrency(usize::from(self.forward_concurrency))
                        .retry_schedule(schedule.clone()),
                );
                Some(waker)
            }
            _ => None,
        };
        let printer = Arc::clone(printer);
        let readiness = readiness.clone();
        let store: Arc<dyn Store> = self.store.as_dyn();
        let options = HandlerOptions::inbox(client_id, store).on_stored(
            move |event: &WebhookEvent, inserted: Inserted| {
                readiness.store_took();
                printer.stored(event, inserted);
            },
        );
        // The handler wakes the dispatcher itself, for a new event only: a duplicate or a
        // conflicting repeat adds nothing to forward.
        match waker {
            Some(waker) => options.wake_on(waker),
            None => options,
        }
    }

    /// Starts forwarding (with `--forward-to`): last, once the listeners are bound, as a start
    /// that fails after claiming events could not put them back in the store it closes (they
    /// would wait out their lease, and a forward already sent would be sent again).
    pub(super) fn start_forwarding(&mut self) {
        if let Some(builder) = self.ready_to_forward.take() {
            self.dispatcher = Some(builder.start());
        }
    }

    /// The store, for the admin listener's probes and the browser view (`--ui`).
    pub(super) fn store(&self) -> OpenedStore {
        self.store.clone()
    }

    /// A SQLite store's file, for the admin listener's write probe.
    pub(super) fn sqlite_file(&self) -> Option<PathBuf> {
        self.sqlite_file.clone()
    }

    /// The start banner's lines about the store.
    pub(super) async fn announce(&self) {
        let sync = match self.sync {
            SyncMode::Full => "full",
            SyncMode::Normal => "normal",
        };
        match &self.store {
            OpenedStore::Sqlite(store) => errln!(
                "Storing verified deliveries in {} (sync {sync})",
                store.path()
            ),
            OpenedStore::Postgres(store) => {
                errln!("Storing verified deliveries in {}", store.target())
            }
        }
        if let Some((url, schedule)) = &self.forward {
            errln!(
                "Forwarding stored deliveries to {} (retries after {schedule})",
                http::shown(url)
            );
        }
        let waiting = match self.store.as_dyn().stats(SystemTime::now()).await {
            Ok(stats) => {
                stats.count(DeliveryStatus::Pending) + stats.count(DeliveryStatus::InProgress)
            }
            Err(e) => {
                errln!("warning: cannot count the stored events: {e}");
                0
            }
        };
        if waiting > 0 {
            let events = output::count(waiting, "stored event", "stored events");
            let them = if waiting == 1 { "it" } else { "them" };
            match &self.forward {
                Some(_) => errln!("{events} not forwarded yet: forwarding {them}"),
                None => errln!(
                    "{events} not forwarded yet: start with --forward-to URL to forward {them}"
                ),
            }
        }
    }

    /// Waits for the forwards in flight (up to `within`, what is left of the grace period); the
    /// others are put back.
    pub(super) async fn shutdown(self, within: Duration) {
        if let Some(dispatcher) = self.dispatcher {
            let report = dispatcher.shutdown(within).await;
            if report.released > 0 {
                let released = report.released as u64;
                let forwards = output::count(released, "forward", "forwards");
                let they = if released == 1 { "it is" } else { "they are" };
                errln!("{forwards} did not finish in time; {they} forwarded at the next start");
            }
        }
    }
}

impl Printer {
    /// The line for a delivery the store took.
    fn stored(&self, event: &WebhookEvent, inserted: Inserted) {
        let hash = output::short_hash(&event.event_hash);
        match inserted {
            Inserted::Conflict => errln!(
                "warning: event #{hash} arrived again with a different body; the first one is kept (the sender reused an eventHash?)"
            ),
            _ if self.quiet || !self.shows(event) => {}
            Inserted::New => emit(&self.event_line(event, None)),
            _ => self.duplicate(event, "stored"),
        }
    }
}

/// Prints what became of a forward, once the store has recorded it.
fn report_attempt(printer: &Printer, report: &AttemptReport) {
    let (clock, timestamp) = clock::now();
    let hash = output::short_hash(&report.event_hash);
    let kind = report.event_type.as_str();
    let attempt = report.attempt;
    let error = report.error.as_deref().unwrap_or("failed");
    // The type comes from the delivery and the error from the target's answer: both untrusted, so
    // escaped and cut in text lines (JSON lines carry them exact).
    let kind_text = output::escape(&output::shorten(kind, 40));
    let error_text = output::escape(&output::shorten(error, 300));
    let json = printer.json;
    let (status, text, extra) = match report.result {
        AttemptResult::Delivered => {
            let code = report.http_status.unwrap_or(200);
            (
                "forwarded",
                format!(
                    "{clock}  {kind_text:<26}  #{hash}  -> forwarded {code} (attempt {attempt})"
                ),
                json!({"code": code}),
            )
        }
        AttemptResult::RetryAt(at) => {
            // The wait as chosen; measured from now, a `Retry-After: 120` wait read "119s".
            let wait = report.retry_in.unwrap_or_else(|| {
                at.duration_since(std::time::SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            });
            // Whole units read better than the exact jittered wait.
            let seconds = wait.as_millis().saturating_add(500) / 1000;
            let seconds = u64::try_from(seconds).unwrap_or(u64::MAX).max(1);
            let wait = RetrySchedule::new(vec![Duration::from_secs(seconds)]);
            (
                "retrying",
                format!(
                    "{clock}  {kind_text:<26}  #{hash}  -> forward failed (attempt {attempt} of {}): {error_text}; will retry in about {wait}",
                    report.max_attempts,
                ),
                json!({"error": error, "retryIn": wait.to_string()}),
            )
        }
        _ => {
            // Always told, even with --quiet: the event will not be forwarded again.
            errln!(
                "{clock}  {kind_text:<26}  #{hash}  -> DEAD after {}: {error_text} (kept in the store)",
                output::count(attempt.into(), "attempt", "attempts")
            );
            ("dead", String::new(), json!({"error": error}))
        }
    };
    if printer.quiet {
        // No line per attempt, but a target that is down is an error the user must hear of: once
        // when forwards start failing, once when one goes through again. (A dead event is told
        // above, always.)
        let failing = &printer.forward_failing;
        match report.result {
            AttemptResult::RetryAt(_) if !failing.swap(true, Ordering::Relaxed) => errln!(
                "{clock}  forwarding is failing: {error_text}; events are kept and retried (--quiet: told again when it works)"
            ),
            AttemptResult::Delivered if failing.swap(false, Ordering::Relaxed) => {
                errln!("{clock}  forwarding works again")
            }
            _ => {}
        }
        return;
    }
    let shown = WebhookEventType::from(kind);
    if !printer.shows_type(&shown) {
        return;
    }
    if json {
        let mut line = json!({
            "time": timestamp,
            "status": status,
            "eventType": kind,
            "eventHash": report.event_hash,
            "attempt": attempt,
        });
        if let (Some(line), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
            line.extend(extra.clone());
        }
        emit(&line.to_string());
    } else if !text.is_empty() {
        emit(&text);
    }
}
