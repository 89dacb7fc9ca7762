//! [`WebhookHandler`]: the `tower::Service` returned by [`create_handler`](super::create_handler).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::{Method, Request};
use http_body::Body;

use crate::dedup::{Claim, DedupError, Deduper};
use crate::error_chain::Chain;
use crate::event::{parse_event, DeliveryMethod, Escaped};
use crate::signature::Verifier;
use crate::telemetry::{self, Received};
use crate::BoxError;

use super::body::{declared_length, read_in_time};
use super::options::{CallbackFuture, HandlerConfigError, OnDuplicate, OnEvent, OnReject};
use super::response::{self, HandlerResponse};
use super::signature_header::SignatureHeader;
use super::{HandlerOptions, Rejection, WebhookDelivery};

/// The future returned by [`WebhookHandler`]'s `Service::call`.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<HandlerResponse, Infallible>> + Send>>;

/// The webhook endpoint as a [`tower::Service`], built by [`create_handler`](super::create_handler).
///
/// Cheap to clone (one `Arc`). It accepts any request body type implementing
/// [`http_body::Body`] (axum's, hyper's `Incoming`, …), never fails (`Error = Infallible`: every
/// outcome is an HTTP answer) and answers according to the contract in the
/// documentation of [`create_handler`](super::create_handler).
///
/// In axum: `Router::new().route_service("/webhook/ccai", handler)`. Under hyper alone, call it
/// from a `service_fn` (or use `hyper_util::service::TowerToHyperService`):
///
/// ```no_run
/// use ccai::webhook::{create_handler, HandlerOptions, WebhookEvent};
/// use hyper::server::conn::http1;
/// use hyper_util::rt::TokioIo;
/// use tower::Service;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let handler = create_handler(
///     HandlerOptions::new("1231", |_: WebhookEvent| async { Ok::<_, std::io::Error>(()) })
///         .secret("my-webhook-secret"),
/// )?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// loop {
///     let (stream, _) = listener.accept().await?;
///     let handler = handler.clone();
///     tokio::spawn(async move {
///         let service = hyper::service::service_fn(move |request| handler.clone().call(request));
///         let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
///     });
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct WebhookHandler {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only with [`HandlerOptions::dangerously_disable_verification`].
    verifier: Option<Verifier>,
    on_event: OnEvent,
    wants_delivery: bool,
    on_reject: Option<OnReject>,
    on_duplicate: Option<OnDuplicate>,
    log_events: bool,
    accept_post: bool,
    accept_put: bool,
    allow: &'static str,
    body_limit: usize,
    body_timeout: Option<std::time::Duration>,
    deduper: Option<Arc<dyn Deduper>>,
    /// Inbox mode, and the client id deliveries are stored under.
    #[cfg(feature = "inbox")]
    store: Option<(super::inbox_mode::StoreSink, String)>,
}

pub(super) fn build(options: HandlerOptions) -> Result<WebhookHandler, HandlerConfigError> {
    let HandlerOptions {
        client_id,
        secrets,
        verification_disabled,
        on_event,
        wants_delivery,
        on_reject,
        on_duplicate,
        log_events,
        methods,
        body_limit,
        body_timeout,
        deduper,
        #[cfg(feature = "inbox")]
        store,
        ignored,
    } = options;
    #[cfg(feature = "inbox")]
    if store.is_some() && !crate::event::fits_a_store_key(&client_id) {
        // Every insert would be refused (`NewDelivery::check_fields`): refuse now, not with a
        // 503 for every delivery.
        return Err(HandlerConfigError::UnstorableClientId);
    }
    // In inbox mode the store deduplicates and the deduper is never consulted: not kept, so
    // that nothing (Debug included) suggests it runs.
    #[cfg(feature = "inbox")]
    let deduper = deduper.filter(|_| store.is_none());
    #[cfg(feature = "inbox")]
    let store = store.map(|sink| (sink, client_id.clone()));
    let accept_post = methods.contains(&DeliveryMethod::Post);
    let accept_put = methods.contains(&DeliveryMethod::Put);
    let allow = match (accept_post, accept_put) {
        (true, true) => "POST, PUT",
        (true, false) => "POST",
        (false, true) => "PUT",
        (false, false) => return Err(HandlerConfigError::NoMethods),
    };
    let verifier = if verification_disabled {
        tracing::warn!(
            target: "ccai::webhook",
            "webhook signature verification is DISABLED: unsigned and forged deliveries are accepted"
        );
        None
    } else {
        Some(Verifier::with_secrets(
            client_id,
            secrets.iter().map(|s| s.expose_secret()),
        )?)
    };
    // Once, when built (not per request): a setting this mode does not use is named, not
    // silently dropped.
    super::ignored::warn(&ignored);
    Ok(WebhookHandler {
        inner: Arc::new(Inner {
            verifier,
            on_event,
            wants_delivery,
            on_reject,
            on_duplicate,
            log_events,
            accept_post,
            accept_put,
            allow,
            body_limit,
            body_timeout,
            deduper,
            #[cfg(feature = "inbox")]
            store,
        }),
    })
}

impl WebhookHandler {
    /// Whether deliveries are verified (`false` only with
    /// [`HandlerOptions::dangerously_disable_verification`]).
    pub fn verifies(&self) -> bool {
        self.inner.verifier.is_some()
    }
}

impl fmt::Debug for WebhookHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookHandler")
            .field("verifier", &self.inner.verifier)
            .field("allow", &self.inner.allow)
            .field("body_limit", &self.inner.body_limit)
            .field("log_events", &self.inner.log_events)
            .field("deduplication", &self.inner.deduplication())
            .finish_non_exhaustive()
    }
}

impl<B> tower::Service<Request<B>> for WebhookHandler
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = HandlerResponse;
    type Error = Infallible;
    type Future = HandlerFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        // This future is allocated for every request: it keeps only what crosses an await (not
        // the request head, no nested by-value arguments), 2 KiB before, under 600 bytes now.
        let timer = telemetry::Timer::start();
        let accepted = inner.take_head(request);
        Box::pin(async move {
            let outcome = match accepted {
                Ok(incoming) => inner.receive(incoming).await,
                Err(rejection) => Err(rejection),
            };
            telemetry::delivery_answered(&outcome, timer);
            Ok(inner.answer(outcome.map(drop)))
        })
    }
}

/// What the handler keeps of a request while its body arrives.
struct Incoming<B> {
    body: B,
    declared_length: Option<u64>,
    signature: SignatureHeader,
    method: DeliveryMethod,
    /// The `Content-Type` header, kept only where the delivery is (it is stored or forwarded).
    content_type: Option<String>,
}

impl Inner {
    /// What deduplicates, as `Debug` shows it: `"store"`, `"deduper"` or `"off"`.
    fn deduplication(&self) -> &'static str {
        #[cfg(feature = "inbox")]
        let stores = self.store.is_some();
        #[cfg(not(feature = "inbox"))]
        let stores = false;
        super::options::deduplication(stores, self.deduper.is_some())
    }

    fn answer(&self, outcome: Result<(), Rejection>) -> HandlerResponse {
        match outcome {
            Ok(()) => response::success(),
            Err(rejection) => {
                self.report(&rejection);
                response::rejection(&rejection)
            }
        }
    }

    /// Whether the signature and content type are kept: for a callback that takes the whole
    /// delivery, or for the store. Otherwise they cost no allocation.
    fn keeps_delivery(&self) -> bool {
        #[cfg(feature = "inbox")]
        if self.store.is_some() {
            return true;
        }
        self.wants_delivery
    }

    fn allows_method(&self, method: &Method) -> bool {
        (self.accept_post && method == Method::POST) || (self.accept_put && method == Method::PUT)
    }

    /// Checks the method and takes from the head what the rest needs.
    fn take_head<B>(&self, request: Request<B>) -> Result<Incoming<B>, Rejection> {
        if !self.allows_method(request.method()) {
            return Err(Rejection::MethodNotAllowed {
                method: request.method().clone(),
                allow: self.allow,
            });
        }
        let (parts, body) = request.into_parts();
        Ok(Incoming {
            body,
            declared_length: declared_length(&parts.headers),
            signature: SignatureHeader::read(&parts.headers),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .filter(|_| self.keeps_delivery())
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            method: if parts.method == Method::PUT {
                DeliveryMethod::Put
            } else {
                DeliveryMethod::Post
            },
        })
    }

    async fn receive<B>(&self, incoming: Incoming<B>) -> Result<Received, Rejection>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let Incoming {
            body,
            declared_length,
            signature,
            method,
            content_type,
        } = incoming;
        let body = read_in_time(body, declared_length, self.body_limit, self.body_timeout).await?;
        let event = match &self.verifier {
            Some(verifier) => signature.verify(verifier, &body)?,
            None => parse_event(&body).map_err(Rejection::InvalidEvent)?,
        };
        if self.log_events {
            tracing::info!(
                target: "ccai::webhook",
                event_type = %Escaped(event.event_type.as_str()),
                event_hash = %Escaped(&event.event_hash),
                "webhook event received"
            );
        }
        let signature = signature
            .value()
            .filter(|_| self.keeps_delivery())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let delivery = WebhookDelivery {
            event,
            body,
            signature,
            method,
            content_type,
        };
        #[cfg(feature = "inbox")]
        if let Some((sink, client_id)) = &self.store {
            return Box::pin(sink.store(client_id, delivery))
                .await
                .map(Received::from);
        }
        match &self.deduper {
            None => self
                .start_callback(delivery)?
                .await
                .map(|()| Received::Accepted),
            // Boxed: its state (claim, guard, callback) is paid for only when deduplicating.
            Some(deduper) => Box::pin(self.run_deduplicated(deduper, delivery)).await,
        }
    }

    async fn run_deduplicated(
        &self,
        deduper: &Arc<dyn Deduper>,
        delivery: WebhookDelivery,
    ) -> Result<Received, Rejection> {
        let event = &delivery.event;
        match deduper.claim(&event.event_hash).await {
            Ok(Claim::Acquired) => {}
            Ok(Claim::AlreadyCompleted) => {
                tracing::debug!(
                    target: "ccai::webhook",
                    event_hash = %Escaped(&event.event_hash),
                    "duplicate delivery acknowledged without calling back"
                );
                if let Some(hook) = &self.on_duplicate {
                    // A panicking hook must not cost the sender its answer.
                    if catch_unwind(AssertUnwindSafe(|| hook(event))).is_err() {
                        tracing::warn!(target: "ccai::webhook", "the on_duplicate hook panicked");
                    }
                }
                return Ok(Received::Duplicate);
            }
            Err(e) => return Err(Rejection::Deduplication(e)),
        }
        let guard = ClaimGuard {
            deduper: Arc::clone(deduper),
            event_hash: event.event_hash.clone(),
            armed: true,
        };
        let outcome = match self.start_callback(delivery) {
            Ok(callback) => callback.await,
            Err(rejection) => Err(rejection),
        };
        let recorded = guard.finish(outcome.is_ok()).await;
        if let Err(e) = recorded {
            // The callback's outcome stands; a failed record only means a retry may run it again.
            tracing::warn!(target: "ccai::webhook", error = %Chain(&e), "could not record the event's outcome");
        }
        outcome.map(|()| Received::Accepted)
    }

    /// Calls the callback; the returned future runs it to completion.
    fn start_callback(&self, delivery: WebhookDelivery) -> Result<CatchUnwind, Rejection> {
        let on_event = &self.on_event;
        let future = catch_unwind(AssertUnwindSafe(|| on_event(delivery)))
            .map_err(|_| Rejection::CallbackPanicked)?;
        Ok(CatchUnwind { future })
    }

    fn report(&self, rejection: &Rejection) {
        let status = rejection.status().as_u16();
        if rejection.status().is_server_error() {
            tracing::warn!(target: "ccai::webhook", status, reason = %Chain(rejection), "webhook delivery failed");
        } else {
            tracing::debug!(target: "ccai::webhook", status, reason = %Chain(rejection), "webhook delivery rejected");
        }
        if let Some(hook) = &self.on_reject {
            // A panicking hook must not cost the sender its answer.
            if catch_unwind(AssertUnwindSafe(|| hook(rejection))).is_err() {
                tracing::warn!(target: "ccai::webhook", status, "the on_reject hook panicked");
            }
        }
    }
}

/// A claim to complete or release; released on drop if the request is abandoned (client gone,
/// panic), so that waiting repeats are not blocked forever.
struct ClaimGuard {
    deduper: Arc<dyn Deduper>,
    event_hash: String,
    armed: bool,
}

impl ClaimGuard {
    async fn finish(mut self, success: bool) -> Result<(), DedupError> {
        let result = if success {
            self.deduper.complete(&self.event_hash).await
        } else {
            self.deduper.release(&self.event_hash).await
        };
        // A failed `complete` or `release` leaves the claim armed: dropping it releases (again)
        // the event, rather than leaving it in flight forever.
        self.armed = result.is_err();
        result
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let deduper = Arc::clone(&self.deduper);
        let event_hash = std::mem::take(&mut self.event_hash);
        let mut release: Pin<Box<dyn Future<Output = Result<(), DedupError>> + Send>> =
            Box::pin(async move { deduper.release(&event_hash).await });
        // Poll once in place: a release that completes at once (`MemoryDeduper`'s does) needs no
        // runtime, so an abandoned request is released even outside tokio. A panicking deduper
        // must not turn this drop (perhaps during unwinding) into an abort.
        let mut cx = Context::from_waker(Waker::noop());
        match catch_unwind(AssertUnwindSafe(|| release.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(Ok(()))) => {}
            Ok(Poll::Ready(Err(e))) => {
                tracing::warn!(target: "ccai::webhook", error = %Chain(&e), "could not release an abandoned event");
            }
            Err(_) => {
                tracing::warn!(target: "ccai::webhook", "the deduper panicked releasing an abandoned event");
            }
            // Not done yet: finish it on the runtime (tokio polls it again with a real waker).
            Ok(Poll::Pending) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        if let Err(e) = release.await {
                            tracing::warn!(target: "ccai::webhook", error = %Chain(&e), "could not release an abandoned event");
                        }
                    });
                }
                Err(_) => tracing::warn!(
                    target: "ccai::webhook",
                    "no tokio runtime to finish releasing an abandoned event; it stays claimed"
                ),
            },
        }
    }
}

/// Turns a panic while polling the callback's future into an error.
struct CatchUnwind {
    future: CallbackFuture,
}

impl Future for CatchUnwind {
    type Output = Result<(), Rejection>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.future;
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(Rejection::Callback(e))),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(Rejection::CallbackPanicked)),
        }
    }
}
