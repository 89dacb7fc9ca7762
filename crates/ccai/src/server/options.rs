//! [`HandlerOptions`]: what [`create_handler`](super::create_handler) is built from.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::dedup::{Deduper, MemoryDeduper};
use crate::event::{DeliveryMethod, WebhookEvent};
use crate::signature::{Secret, VerifierConfigError};
use crate::BoxError;

use super::ignored::{self, Ignored};
use super::{Rejection, WebhookDelivery};

/// The boxed future an event callback is stored as.
pub(crate) type CallbackFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
pub(crate) type OnEvent = Arc<dyn Fn(WebhookDelivery) -> CallbackFuture + Send + Sync>;
pub(crate) type OnReject = Arc<dyn Fn(&Rejection) + Send + Sync>;
pub(crate) type OnDuplicate = Arc<dyn Fn(&WebhookEvent) + Send + Sync>;

/// Why [`create_handler`](super::create_handler) refused its options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerConfigError {
    /// The client id or the secrets cannot verify anything: empty client id, an empty secret, or
    /// no secret at all (turning verification off takes
    /// [`HandlerOptions::dangerously_disable_verification`]).
    #[error(transparent)]
    Verifier(#[from] VerifierConfigError),
    /// The list of accepted delivery methods is empty.
    #[error("no delivery method accepted: accept POST, PUT or both")]
    NoMethods,
    /// Inbox mode: the client id, which every delivery is stored under, is longer than
    /// [`MAX_FIELD_LEN`](crate::event::MAX_FIELD_LEN) bytes or contains a NUL character, which
    /// no store can hold (every delivery would be answered 503).
    #[error("the client id cannot be stored in the inbox: it is longer than 1024 bytes or contains a NUL character")]
    UnstorableClientId,
}

/// Configuration of the webhook handler: account, secrets, callback and limits.
///
/// Built with [`HandlerOptions::new`] and the builder methods, turned into a service by
/// [`create_handler`](super::create_handler). Defaults: `POST` only, a body limit of
/// [`DEFAULT_BODY_LIMIT`](super::DEFAULT_BODY_LIMIT) (256 KiB), a body read deadline of
/// [`DEFAULT_BODY_TIMEOUT`](super::DEFAULT_BODY_TIMEOUT) (30 s), an in-memory
/// [`MemoryDeduper`], events not logged, no rejection hook.
///
/// ```
/// use ccai::webhook::{create_handler, DeliveryMethod, HandlerOptions, WebhookEvent};
///
/// #[derive(Debug)]
/// struct StoreDown;
/// impl std::fmt::Display for StoreDown {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("store down") }
/// }
/// impl std::error::Error for StoreDown {}
///
/// let options = HandlerOptions::new("1231", |event: WebhookEvent| async move {
///     println!("{} {}", event.event_type, event.event_hash);
///     Ok::<_, StoreDown>(())
/// })
/// .secret("new-secret")
/// .secret("old-secret") // rotation: both verify
/// .methods([DeliveryMethod::Post, DeliveryMethod::Put])
/// .body_limit(64 * 1024)
/// .log_events(true)
/// .on_reject(|rejection| {
///     // With its causes: a 503's store error is beneath its message.
///     eprintln!("rejected ({}): {}", rejection.status(), rejection.with_causes())
/// });
/// let handler = create_handler(options)?;
/// # let _ = handler;
/// # Ok::<(), ccai::webhook::HandlerConfigError>(())
/// ```
///
/// Cloning is cheap; clones share the callback, the hook and the deduplicator.
#[derive(Clone)]
pub struct HandlerOptions {
    pub(crate) client_id: String,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) verification_disabled: bool,
    pub(crate) on_event: OnEvent,
    /// Whether the callback looks at more than the event (`for_deliveries`): only then is the
    /// signature header copied for it.
    pub(crate) wants_delivery: bool,
    pub(crate) on_reject: Option<OnReject>,
    pub(crate) on_duplicate: Option<OnDuplicate>,
    pub(crate) log_events: bool,
    pub(crate) methods: Vec<DeliveryMethod>,
    pub(crate) body_limit: usize,
    pub(crate) body_timeout: Option<std::time::Duration>,
    pub(crate) deduper: Option<Arc<dyn Deduper>>,
    /// Inbox mode: store instead of calling back.
    #[cfg(feature = "inbox")]
    pub(crate) store: Option<super::inbox_mode::StoreSink>,
    /// Settings made that this mode does not use: warned about when the handler is built.
    pub(crate) ignored: Vec<Ignored>,
}

impl HandlerOptions {
    /// Options for the account `client_id`, calling `on_event` with each verified event.
    ///
    /// `on_event` is an async function of the [`WebhookEvent`] returning `Result<(), E>` for any
    /// error type `E` (anything that converts into [`BoxError`]: your own error, `std::io::Error`,
    /// `anyhow::Error`, a `String`). An `Err` (or a panic) is answered with 500, so that
    /// CloudContactAI retries the delivery.
    ///
    /// At least one [`secret`](Self::secret) must be added before
    /// [`create_handler`](super::create_handler).
    pub fn new<F, Fut, E>(client_id: impl Into<String>, on_event: F) -> Self
    where
        F: Fn(WebhookEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self {
            wants_delivery: false,
            ..Self::for_deliveries(client_id, move |delivery: WebhookDelivery| {
                on_event(delivery.event)
            })
        }
    }

    /// Like [`new`](Self::new), but the callback gets the whole [`WebhookDelivery`]: the event
    /// plus the exact body bytes and signature, for storing or forwarding the original request.
    ///
    /// ```
    /// use ccai::webhook::{HandlerOptions, WebhookDelivery};
    ///
    /// let options = HandlerOptions::for_deliveries("1231", |delivery: WebhookDelivery| async move {
    ///     println!("{} bytes for {}", delivery.body.len(), delivery.event.event_hash);
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .secret("my-webhook-secret");
    /// # let _ = options;
    /// ```
    pub fn for_deliveries<F, Fut, E>(client_id: impl Into<String>, on_delivery: F) -> Self
    where
        F: Fn(WebhookDelivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let on_event: OnEvent = Arc::new(move |delivery| {
            let fut = on_delivery(delivery);
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        Self {
            client_id: client_id.into(),
            secrets: Vec::new(),
            verification_disabled: false,
            on_event,
            wants_delivery: true,
            on_reject: None,
            on_duplicate: None,
            log_events: false,
            methods: vec![DeliveryMethod::Post],
            body_limit: super::DEFAULT_BODY_LIMIT,
            body_timeout: Some(super::DEFAULT_BODY_TIMEOUT),
            deduper: Some(Arc::new(MemoryDeduper::new())),
            #[cfg(feature = "inbox")]
            store: None,
            ignored: Vec::new(),
        }
    }

    /// Inbox mode: each verified delivery is stored durably in `store` (its exact body, signature
    /// and content type) and answered 200 only once the store has committed it. A store that
    /// cannot take it is answered 503 with `Retry-After`, so that the sender retries. A repeat is
    /// answered 200 and counted by the store, which deduplicates durably (no
    /// [`Deduper`] is used).
    ///
    /// Nothing is processed by the handler: run a [`Dispatcher`](crate::inbox::Dispatcher) on the
    /// same store to hand events on, and have the handler wake it with
    /// [`wake_on`](Self::wake_on)`(dispatcher.waker())` (without that it finds them on its next
    /// poll, within a second by default).
    ///
    /// A complete receiver inside an app of your own: the handler mounted beside the app's routes,
    /// a dispatcher handing each event to an async function (with
    /// [`HttpForward`](crate::inbox::HttpForward) instead, to another HTTP endpoint), the admin
    /// API listing what was stored, and the shutdown in its order (server, dispatcher, store).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use axum::{extract::State, routing::get, Router};
    /// use ccai::event::parse_event;
    /// use ccai::inbox::{
    ///     CallbackConsumer, Dispatcher, InboxEvent, ListFilter, ListRequest, SqliteOptions,
    ///     SqliteStore, Store, // `Store`: the admin API (`list`, `stats`, `replay`, `purge`) is its methods
    /// };
    /// use ccai::server::{create_handler, HandlerOptions, Server};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("inbox.db");
    /// // `open` does blocking file I/O: call it at start-up.
    /// let store = Arc::new(SqliteStore::open(&path, SqliteOptions::default())?);
    ///
    /// // Your processing: at least once, so idempotent on the eventHash. An `Err` is retried on
    /// // the dispatcher's schedule, then the delivery goes dead (replayable).
    /// let (seen, mut processed) = tokio::sync::mpsc::unbounded_channel();
    /// let consumer = CallbackConsumer::new(move |stored: InboxEvent| {
    ///     let seen = seen.clone();
    ///     async move {
    ///         let event = parse_event(&stored.body)?; // the typed event, as the handler verified it
    ///         seen.send(format!("{} {}", event.event_type, event.event_hash))?;
    ///         Ok::<(), ccai::BoxError>(())
    ///     }
    /// });
    /// let dispatcher = Dispatcher::builder(store.clone(), consumer).start();
    ///
    /// let handler = create_handler(
    ///     HandlerOptions::inbox("1231", store.clone())
    ///         .secret("my-webhook-secret") // in production: from the environment or a vault
    ///         .wake_on(dispatcher.waker()), // each new event is handed on at once
    /// )?;
    ///
    /// // Your app's own routes and state, with the webhook beside them.
    /// async fn pending(State(store): State<Arc<SqliteStore>>) -> String {
    ///     match store.stats(std::time::SystemTime::now()).await {
    ///         Ok(stats) => format!("{} pending", stats.count(ccai::inbox::DeliveryStatus::Pending)),
    ///         Err(e) => e.to_string(),
    ///     }
    /// }
    /// let app = Router::new()
    ///     .route("/admin/pending", get(pending))
    ///     .with_state(store.clone())
    ///     .route_service("/webhook/ccai", handler);
    ///
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let url = format!("http://{}/webhook/ccai", listener.local_addr()?);
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(Server::new().serve_with_shutdown(listener, app, async {
    ///     let _ = stopped.await; // in production: tokio::signal::ctrl_c()
    /// }));
    ///
    /// // What CloudContactAI sends.
    /// let body = r#"{"eventType":"message.sent","eventHash":"evt_1","data":{"To":"+14155550100"}}"#;
    /// let answer = reqwest::Client::new()
    ///     .post(&url)
    ///     .header("X-CCAI-Signature", ccai::signature::sign("1231", "evt_1", "my-webhook-secret"))
    ///     .body(body)
    ///     .send()
    ///     .await?;
    /// assert_eq!(answer.status(), 200); // stored durably before this answer
    /// assert_eq!(processed.recv().await.as_deref(), Some("message.sent evt_1"));
    ///
    /// // The admin API: what is stored, newest first, and where each delivery stands.
    /// let page = store.list(ListRequest::new(ListFilter::new(), 50)).await?;
    /// assert_eq!(page.events[0].event_hash, "evt_1");
    ///
    /// let _ = stop.send(());
    /// server.await?;
    /// dispatcher.shutdown(Duration::from_secs(10)).await;
    /// store.close().await;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "inbox")]
    #[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
    pub fn inbox(client_id: impl Into<String>, store: Arc<dyn crate::inbox::Store>) -> Self {
        let mut options = Self::for_deliveries(client_id, |_: WebhookDelivery| async {
            Ok::<(), std::convert::Infallible>(())
        });
        options.deduper = None;
        options.store = Some(super::inbox_mode::StoreSink {
            store,
            on_stored: None,
            wake: Vec::new(),
        });
        options
    }

    /// In inbox mode, calls `hook` after each delivery is stored, with the event and what the
    /// store made of it (new, duplicate, conflict): to print or count (to wake a dispatcher,
    /// [`wake_on`](Self::wake_on) does it). Runs on the request's task before the answer: keep it
    /// short.
    ///
    /// Does nothing outside inbox mode ([`create_handler`](super::create_handler) logs a warning
    /// saying so).
    #[cfg(feature = "inbox")]
    #[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
    pub fn on_stored<F>(mut self, hook: F) -> Self
    where
        F: Fn(&WebhookEvent, crate::inbox::Inserted) + Send + Sync + 'static,
    {
        match &mut self.store {
            Some(sink) => sink.on_stored = Some(Arc::new(hook)),
            None => ignored::record(&mut self.ignored, Ignored::OnStored),
        }
        self
    }

    /// In inbox mode, notifies `wake` after each new event is stored (not for a duplicate or a
    /// conflicting repeat, which add nothing to hand on): pass a [`Dispatcher`]'s
    /// [`waker`](crate::inbox::Dispatcher::waker), or the signal given to its builder's
    /// [`wake_on`](crate::inbox::DispatcherBuilder::wake_on), and it hands the event on at once
    /// instead of on its next poll. Composes with [`on_stored`](Self::on_stored): both run.
    ///
    /// With several destinations, call it once for each one's dispatcher: every signal given is
    /// notified. Give each dispatcher its own signal: one shared by several wakes only one of
    /// them for each event, the others finding it on their next poll.
    ///
    /// Does nothing outside inbox mode ([`create_handler`](super::create_handler) logs a warning
    /// saying so).
    ///
    /// [`Dispatcher`]: crate::inbox::Dispatcher
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ccai::inbox::{CallbackConsumer, Dispatcher, InboxEvent, SqliteOptions, SqliteStore};
    /// use ccai::server::{create_handler, HandlerOptions};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let store = Arc::new(SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default())?);
    /// let consumer = CallbackConsumer::new(|event: InboxEvent| async move {
    ///     println!("{}", event.event_hash);
    ///     Ok::<(), ccai::BoxError>(())
    /// });
    ///
    /// // One signal for both sides: the handler notifies it, the dispatcher waits on it.
    /// let wake = Arc::new(tokio::sync::Notify::new());
    /// let dispatcher = Dispatcher::builder(store.clone(), consumer)
    ///     .wake_on(wake.clone())
    ///     .start();
    /// let handler = create_handler(
    ///     HandlerOptions::inbox("1231", store.clone())
    ///         .secret("my-webhook-secret")
    ///         .wake_on(wake),
    /// )?;
    /// # let _ = handler;
    /// # dispatcher.shutdown(std::time::Duration::from_secs(1)).await;
    /// # store.close().await;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "inbox")]
    #[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
    pub fn wake_on(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        match &mut self.store {
            Some(sink) => sink.wake.push(wake),
            None => ignored::record(&mut self.ignored, Ignored::WakeOn),
        }
        self
    }

    /// Adds an accepted secret. Call it again for rotation: a delivery signed with any of the
    /// secrets verifies.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Adds several accepted secrets.
    pub fn secrets<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Secret>,
    {
        self.secrets.extend(secrets.into_iter().map(Into::into));
        self
    }

    /// Logs each accepted event (type and hash, never the data) through `tracing` at `INFO`. Both
    /// are chosen by the sender: they are logged quoted, with control characters and bidirectional
    /// overrides escaped, and cut to 80 characters.
    pub fn log_events(mut self, log: bool) -> Self {
        self.log_events = log;
        self
    }

    /// Accepts only `method` (the integration's delivery `method`; `POST` by default).
    pub fn method(self, method: DeliveryMethod) -> Self {
        self.methods([method])
    }

    /// Accepts any of `methods` (e.g. both while an integration is switched from POST to PUT).
    pub fn methods(mut self, methods: impl IntoIterator<Item = DeliveryMethod>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// The largest body accepted, in bytes (default 256 KiB). Larger ones are answered 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The deadline for reading a request's whole body, from the moment the handler starts
    /// reading it (default [`DEFAULT_BODY_TIMEOUT`](super::DEFAULT_BODY_TIMEOUT), 30 s; `None`:
    /// no deadline). A body not read in time is answered 408: without a deadline, a client that
    /// sends its headers and then trickles the body holds the connection for as long as it likes.
    /// Needs tokio's time driver (any `#[tokio::main]` runtime has it); outside a tokio runtime
    /// the deadline is not applied.
    pub fn body_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Deduplicates with `deduper` instead of the default [`MemoryDeduper`].
    ///
    /// Not in inbox mode ([`inbox`](Self::inbox)): there the store deduplicates (durably, by event
    /// hash, counting repeats) and no deduper runs, so this setting is not used
    /// ([`create_handler`](super::create_handler) logs a warning saying so).
    pub fn deduper(self, deduper: impl Deduper + 'static) -> Self {
        self.shared_deduper(Arc::new(deduper))
    }

    /// Deduplicates with a shared `deduper` (e.g. one also used elsewhere).
    ///
    /// Not in inbox mode ([`inbox`](Self::inbox)): there the store deduplicates and the deduper
    /// is not used ([`create_handler`](super::create_handler) logs a warning saying so).
    pub fn shared_deduper(mut self, deduper: Arc<dyn Deduper>) -> Self {
        if self.stores() {
            ignored::record(&mut self.ignored, Ignored::Deduper);
        }
        self.deduper = Some(deduper);
        self
    }

    /// Turns deduplication off: every verified delivery runs the callback, repeats included, and
    /// repeats of one event may run concurrently.
    ///
    /// Not in inbox mode ([`inbox`](Self::inbox)): the store always deduplicates (a repeat is
    /// answered 200 and counted, not stored again), whatever this says
    /// ([`create_handler`](super::create_handler) logs a warning saying so).
    pub fn without_deduplication(mut self) -> Self {
        if self.stores() {
            ignored::record(&mut self.ignored, Ignored::WithoutDeduplication);
        }
        self.deduper = None;
        self
    }

    /// Calls `hook` for every rejected delivery, with the reason (which carries the callback's
    /// error when the callback failed). The hook runs on the request's task: keep it short.
    pub fn on_reject<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Rejection) + Send + Sync + 'static,
    {
        self.on_reject = Some(Arc::new(hook));
        self
    }

    /// Calls `hook` for every delivery answered 200 as a duplicate without calling back: the
    /// deduplicator had it processed already (a sender's retry, a replay). Without it a repeat
    /// leaves no trace but a debug log line. The hook runs on the request's task: keep it short.
    ///
    /// Not in inbox mode ([`inbox`](Self::inbox)): there [`on_stored`](Self::on_stored) tells
    /// each duplicate, as [`Inserted::Duplicate`](crate::inbox::Inserted::Duplicate), and this
    /// hook never runs ([`create_handler`](super::create_handler) logs a warning saying so).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use ccai::webhook::{HandlerOptions, WebhookEvent};
    ///
    /// let repeats = Arc::new(AtomicU64::new(0));
    /// let counted = Arc::clone(&repeats);
    /// let options = HandlerOptions::new("1231", |_event: WebhookEvent| async {
    ///     Ok::<(), std::io::Error>(())
    /// })
    /// .secret("my-webhook-secret")
    /// .on_duplicate(move |event| {
    ///     counted.fetch_add(1, Ordering::Relaxed);
    ///     eprintln!("duplicate of {}", event.event_hash);
    /// });
    /// # let _ = options;
    /// ```
    pub fn on_duplicate<F>(mut self, hook: F) -> Self
    where
        F: Fn(&WebhookEvent) + Send + Sync + 'static,
    {
        if self.stores() {
            ignored::record(&mut self.ignored, Ignored::OnDuplicate);
        }
        self.on_duplicate = Some(Arc::new(hook));
        self
    }

    /// **Accepts unsigned and forged deliveries.** Turns signature verification off: the
    /// `X-CCAI-Signature` header is ignored and secrets are not required. Only for local
    /// experiments; [`create_handler`](super::create_handler) logs a warning when it is set.
    pub fn dangerously_disable_verification(mut self) -> Self {
        self.verification_disabled = true;
        self
    }

    /// Whether [`dangerously_disable_verification`](Self::dangerously_disable_verification) was
    /// called.
    pub fn verification_disabled(&self) -> bool {
        self.verification_disabled
    }

    /// Inbox mode: whether deliveries go to a store (which deduplicates) rather than a callback.
    fn stores(&self) -> bool {
        #[cfg(feature = "inbox")]
        if self.store.is_some() {
            return true;
        }
        false
    }

    /// What deduplicates, as `Debug` shows it: `"store"` in inbox mode (a deduper set there is
    /// not used), `"deduper"`, or `"off"`.
    fn deduplication(&self) -> &'static str {
        deduplication(self.stores(), self.deduper.is_some())
    }
}

/// What deduplicates deliveries, as the `Debug` of [`HandlerOptions`] and of the handler show it.
pub(crate) fn deduplication(stores: bool, has_deduper: bool) -> &'static str {
    match (stores, has_deduper) {
        (true, _) => "store",
        (false, true) => "deduper",
        (false, false) => "off",
    }
}

impl fmt::Debug for HandlerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerOptions")
            .field("client_id", &self.client_id)
            .field(
                "secrets",
                &format_args!("[REDACTED; {}]", self.secrets.len()),
            )
            .field("verification_disabled", &self.verification_disabled)
            .field("log_events", &self.log_events)
            .field("methods", &self.methods)
            .field("body_limit", &self.body_limit)
            .field("body_timeout", &self.body_timeout)
            .field("deduplication", &self.deduplication())
            .field("on_reject", &self.on_reject.is_some())
            .field("on_duplicate", &self.on_duplicate.is_some())
            .finish_non_exhaustive()
    }
}
