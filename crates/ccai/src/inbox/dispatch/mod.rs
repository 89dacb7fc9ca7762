//! The [`Dispatcher`]: claims due deliveries from a [`Store`] and hands each event to a
//! [`Consumer`], at least once, with retries, dead letter and graceful shutdown.

mod auth_scheme;
mod consumer;
pub(crate) mod excerpt;
mod http;
mod path_tokens;
mod query_tokens;
mod report;
mod request_failure;
mod retry;
mod tls_failure;
mod url_credentials;
mod worker;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use consumer::{Accepted, CallbackConsumer, Consumer, ConsumerFuture, Failure, InboxEvent};
pub use http::{ForwardConfigError, HttpForward};
pub use path_tokens::redact_path_tokens;
pub use report::{AttemptReport, AttemptResult};
pub use request_failure::request_failure;
pub use retry::{parse_duration, ParseScheduleError, RetrySchedule};
pub use tls_failure::tls_failure;

use super::sqlite::DEFAULT_DESTINATION;
use super::Store;

/// The most events a [`Dispatcher`] hands on at once: a larger
/// [`concurrency`](DispatcherBuilder::concurrency) is clamped to it.
pub const MAX_CONCURRENCY: usize = 4096;

/// How a [`Dispatcher`] runs (see the builder's methods for the defaults).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) destination: String,
    pub(crate) owner: String,
    pub(crate) concurrency: usize,
    pub(crate) lease: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) schedule: RetrySchedule,
    pub(crate) attempt_timeout: Duration,
    pub(crate) heartbeat: bool,
    pub(crate) retry_after_cap: Duration,
    pub(crate) on_attempt: Option<report::OnAttempt>,
}

/// Builds a [`Dispatcher`]: [`Dispatcher::builder`], then [`start`](Self::start).
pub struct DispatcherBuilder {
    store: Arc<dyn Store>,
    consumer: Arc<dyn Consumer>,
    settings: Settings,
    wake: Arc<Notify>,
}

impl fmt::Debug for DispatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherBuilder")
            .field("store", &self.store)
            .field("consumer", &self.consumer)
            .field("settings", &self.settings)
            .finish()
    }
}

impl DispatcherBuilder {
    /// The destination whose deliveries it handles (default `"default"`). A name, stored with
    /// each delivery and shown with it (and in `Debug`): not the target's URL, which may carry a
    /// password or a token. When it starts, a dispatcher whose store has deliveries, none of
    /// them for this destination ([`Store::destinations`]), logs a warning: a mistyped name
    /// hands on nothing.
    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.settings.destination = destination.into();
        self
    }

    /// The name its leases carry (default `dispatcher-<pid>-<random>`).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.settings.owner = owner.into();
        self
    }

    /// How many events are handed on at once (default 4, 1 to [`MAX_CONCURRENCY`]).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = concurrency.clamp(1, MAX_CONCURRENCY);
        self
    }

    /// How long a claim holds without a heartbeat (default 60 s). When a worker dies or hangs,
    /// its delivery becomes due again this long after the last heartbeat.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease.max(Duration::from_millis(10));
        self
    }

    /// How often to look for due deliveries when not woken (default 1 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.settings.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The retry schedule (default [`RetrySchedule::default`]).
    pub fn retry_schedule(mut self, schedule: RetrySchedule) -> Self {
        self.settings.schedule = schedule;
        self
    }

    /// How long one attempt may take before it counts as failed (default 5 min; an
    /// [`HttpForward`] has its own, shorter, request timeout).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.settings.attempt_timeout = timeout;
        self
    }

    /// Whether to extend the lease of running attempts (every third of the lease; default on).
    pub fn heartbeat(mut self, on: bool) -> Self {
        self.settings.heartbeat = on;
        self
    }

    /// The longest `Retry-After` honoured (default 1 h): a target cannot push its retries out
    /// further than this.
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.settings.retry_after_cap = cap;
        self
    }

    /// Calls `hook` after each attempt's outcome is recorded in the store (delivered, retry at,
    /// dead): to print, count or alert. Runs on the worker's task: keep it short.
    pub fn on_attempt<F>(mut self, hook: F) -> Self
    where
        F: Fn(&AttemptReport) + Send + Sync + 'static,
    {
        self.settings.on_attempt = Some(report::OnAttempt(Arc::new(hook)));
        self
    }

    /// Use `wake` as the wake-up signal (e.g. one the receiver already holds; the handler's
    /// inbox mode notifies it with `HandlerOptions::wake_on`).
    pub fn wake_on(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// Starts dispatching on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime (like `tokio::spawn`).
    pub fn start(self) -> Dispatcher {
        let (stop, stopped) = watch::channel(None);
        let task = tokio::spawn(worker::run(
            Arc::clone(&self.store),
            self.consumer,
            self.settings.clone(),
            Arc::clone(&self.wake),
            stopped,
        ));
        Dispatcher {
            wake: self.wake,
            stop,
            task: Some(task),
            settings: self.settings,
        }
    }
}

/// What [`Dispatcher::shutdown`] did with the work in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Attempts in flight at the shutdown that finished within the grace period (not those
    /// that ended before the shutdown began).
    pub finished: usize,
    /// Deliveries given back unfinished (due at once on the next start).
    pub released: usize,
}

/// Hands stored events to a [`Consumer`] until shut down.
///
/// Each turn it claims as many due deliveries as it has free workers (under a lease with a
/// fencing token), hands each event on, and records the attempt: delivered; or retried after the
/// schedule's next delay (or the target's `Retry-After`, capped); or dead after the last attempt,
/// or at once, without more retries, when the consumer's [`Failure`] is
/// [`permanent`](Failure::permanent()) ([`HttpForward`]'s is for a `410 Gone`).
/// A delivery whose lease lapsed (its worker died or hung) is due again and any dispatcher on
/// the same store may claim it; the stale worker's result is then dropped (logged). Delivery is
/// therefore at least once: consumers should be idempotent on `eventHash`.
///
/// It looks for work every poll interval, and at once when [`wake`](Self::wake)d (call it after
/// an insert). Dropping it without [`shutdown`](Self::shutdown) stops it with no grace period.
pub struct Dispatcher {
    wake: Arc<Notify>,
    stop: watch::Sender<Option<Duration>>,
    task: Option<JoinHandle<ShutdownReport>>,
    settings: Settings,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A builder for a dispatcher taking deliveries from `store` and handing them to `consumer`.
    pub fn builder(store: Arc<dyn Store>, consumer: impl Consumer + 'static) -> DispatcherBuilder {
        DispatcherBuilder {
            store,
            consumer: Arc::new(consumer),
            settings: Settings {
                destination: DEFAULT_DESTINATION.to_owned(),
                owner: format!(
                    "dispatcher-{}-{:08x}",
                    std::process::id(),
                    fastrand::u32(..)
                ),
                concurrency: 4,
                lease: Duration::from_secs(60),
                poll_interval: Duration::from_secs(1),
                schedule: RetrySchedule::default(),
                attempt_timeout: Duration::from_secs(300),
                heartbeat: true,
                retry_after_cap: Duration::from_secs(3600),
                on_attempt: None,
            },
            wake: Arc::new(Notify::new()),
        }
    }

    /// Looks for due deliveries now (e.g. right after an insert).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The wake-up signal, for a receiver that pokes it after each insert (the handler's inbox
    /// mode does, given it with `HandlerOptions::wake_on(dispatcher.waker())`).
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Stops claiming, waits up to `grace` for the attempts in flight, then abandons the rest and
    /// releases their deliveries (due at once on the next start, no attempt counted). A release
    /// that fails with a transient error ([`StoreError::is_transient`](crate::inbox::StoreError::is_transient))
    /// is tried again a few times (0.75 s of pauses at most, for all of them together); one that
    /// still fails is logged, and its delivery is due again when its lease lapses.
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        let _ = self.stop.send(Some(grace));
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => ShutdownReport::default(),
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if self.task.is_some() {
            let _ = self.stop.send(Some(Duration::ZERO));
        }
    }
}
