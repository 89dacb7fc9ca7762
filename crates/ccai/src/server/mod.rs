//! The receiver: deliveries over HTTP. [`create_handler`] (a `tower::Service` for axum and hyper)
//! and the [`VerifiedEvent`] axum extractor. Requires the `axum` feature (on by default).
//!
//! | Need | Use |
//! |---|---|
//! | An endpoint that verifies, deduplicates and calls you back | [`HandlerOptions`] → [`create_handler`] → [`WebhookHandler`] |
//! | The exact body and signature in the callback (forwarding, storing) | [`HandlerOptions::for_deliveries`] → [`WebhookDelivery`] |
//! | Verification inside your own axum route | the [`VerifiedEvent`] extractor |
//! | Store every verified delivery durably before the 200 (feature `inbox`) | `HandlerOptions::inbox` |
//! | Why a request was refused, and its status | [`Rejection`] |

mod body;
mod delivery;
mod extractor;
mod handler;
mod ignored;
#[cfg(feature = "inbox")]
mod inbox_mode;
mod options;
mod rejection;
mod response;
mod serve;
mod signature_header;

pub use delivery::WebhookDelivery;
pub use extractor::VerifiedEvent;
pub use handler::{HandlerFuture, WebhookHandler};
pub use options::{HandlerConfigError, HandlerOptions};
pub use rejection::Rejection;
pub use response::{HandlerResponse, ResponseBody};
pub use serve::{
    client_network, serve, HttpService, Server, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_SHUTDOWN_GRACE,
    DEFAULT_WRITE_TIMEOUT, MAX_TIMEOUT,
};

/// The default body size limit: 256 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// The default deadline for reading a request's body: 30 s (256 KiB, the default limit, at under
/// 9 KiB/s still arrives in time; a client trickling its body holds a connection no longer).
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Builds the webhook endpoint from `options`.
///
/// The result is a cloneable [`tower::Service`] over [`http::Request`]: mount it in axum with
/// `Router::route_service(path, handler)`, or serve it directly with hyper. It fails if the options
/// cannot verify anything (no secret, an empty secret or client id) or accept no method, or, in
/// inbox mode, name a client id no store can hold.
///
/// # Contract
///
/// | Request | Answer |
/// |---|---|
/// | method other than the accepted delivery methods (POST by default) | 405, with `Allow` |
/// | body larger than the limit (by `Content-Length` or while reading; default 256 KiB) | 413 |
/// | body that cannot be read | 400 |
/// | body not received within the deadline (default 30 s) | 408 |
/// | body that is not a valid event (the message names the problem) | 400 |
/// | no `X-CCAI-Signature` header | 400 |
/// | signature malformed (including a non-UTF-8 or non-ASCII header value), repeated, or not matching any secret | 401 |
/// | the event callback returns an error or panics, or the deduplication store fails | 500 (the sender retries) |
/// | in inbox mode (`HandlerOptions::inbox`, feature `inbox`), the store cannot take the delivery (queue full, disk full, database down) | 503, with `Retry-After` (the sender retries) |
/// | a repeat of an event already processed successfully | 200, callback not called |
/// | success | 200, `Content-Type: application/json`, `{"success":true}` |
///
/// Errors are answered as `{"success":false,"error":"…"}` (`application/json`); the message never
/// contains a secret, the signature or the payload. The signature is verified before the callback
/// runs, and a missing or malformed signature is refused before the body is parsed (so a request
/// that is both unsigned and invalid is answered for its signature).
///
/// The protocol's "signature present but client id not configured → 500" cannot happen here: a
/// handler cannot be built without a client id and at least one secret ([`create_handler`] returns
/// a [`HandlerConfigError`]), unless verification is turned off with the separately named
/// [`HandlerOptions::dangerously_disable_verification`], which logs a warning when the handler is
/// created and then ignores the signature header.
///
/// # What the signature does not cover
///
/// The signature covers `clientId:eventHash` only. A delivery whose `eventType` or `data` was
/// altered but whose `eventHash` and signature are intact **verifies and is accepted**: only
/// CloudContactAI knows how `eventHash` is derived, so a receiver has no way to check `data`
/// against it. Serve the endpoint over HTTPS. There is no timestamp either: a captured delivery
/// verifies forever, which is why the handler deduplicates on `eventHash` by default (see
/// [`Deduper`](crate::dedup::Deduper)).
///
/// # Example
///
/// ```no_run
/// use axum::Router;
/// use ccai::webhook::{create_handler, HandlerOptions, WebhookEvent};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let handler = create_handler(
///     HandlerOptions::new("1231", |event: WebhookEvent| async move {
///         println!("{} {}", event.event_type, event.event_hash);
///         Ok::<_, std::io::Error>(())
///     })
///     .secret(std::env::var("CCAI_WEBHOOK_SECRET")?),
/// )?;
/// let app = Router::new().route_service("/webhook/ccai", handler);
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// ccai::server::serve(listener, app).await; // timeouts and a connection cap: see `Server`
/// # Ok(())
/// # }
/// ```
///
/// # Construction errors
///
/// ```
/// use ccai::webhook::{create_handler, HandlerConfigError, HandlerOptions, VerifierConfigError, WebhookEvent};
///
/// let no_secret = HandlerOptions::new("1231", |_: WebhookEvent| async { Ok::<_, std::io::Error>(()) });
/// assert_eq!(
///     create_handler(no_secret).unwrap_err(),
///     HandlerConfigError::Verifier(VerifierConfigError::NoSecret)
/// );
/// ```
pub fn create_handler(options: HandlerOptions) -> Result<WebhookHandler, HandlerConfigError> {
    handler::build(options)
}
