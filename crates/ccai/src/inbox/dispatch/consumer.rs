//! What the dispatcher hands events to: the [`Consumer`] trait, the [`InboxEvent`] it receives,
//! how it fails ([`Failure`]), and [`CallbackConsumer`] for an async function.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::inbox::{redacted, ClaimedDelivery};

use crate::BoxError;

/// An event handed to a [`Consumer`], exactly as it was received.
///
/// The fields are the stored delivery; the typed event is one parse away:
/// [`parse_event(&event.body)`](crate::event::parse_event) gives the [`WebhookEvent`](crate::event::WebhookEvent)
/// the handler verified (an empty body, purged before the delivery, fails to parse).
#[derive(Clone)]
#[non_exhaustive]
pub struct InboxEvent {
    /// The receiver's account id.
    pub client_id: String,
    /// The event's `eventHash`: consumers should be idempotent on it (delivery is at least once).
    pub event_hash: String,
    /// The event's `eventType`.
    pub event_type: String,
    /// The body exactly as received (empty if it was purged before delivery).
    pub body: Bytes,
    /// The original `X-CCAI-Signature` (it verifies against the original body; redacted in Debug).
    pub signature: Option<String>,
    /// The original `Content-Type`.
    pub content_type: Option<String>,
    /// The HTTP method it came with (forward it with the same).
    pub method: crate::event::DeliveryMethod,
    /// When the receiver got it.
    pub received_at: SystemTime,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// The destination this delivery is for.
    pub destination: String,
}

impl InboxEvent {
    /// The first attempt at an event received now by POST, with no signature or content type,
    /// for the [`DEFAULT_DESTINATION`](crate::inbox::DEFAULT_DESTINATION); the setters below
    /// change the rest. The dispatcher builds its events from the store's claims; this is for
    /// testing a [`Consumer`] and for a [`Store`](crate::inbox::Store) of your own (with
    /// [`ClaimedDelivery::new`]).
    ///
    /// ```
    /// use ccai::inbox::{Consumer, ConsumerFuture, Failure, Accepted, InboxEvent};
    ///
    /// /// Takes `message.sent` events, refuses the rest for good.
    /// #[derive(Debug)]
    /// struct SentOnly;
    ///
    /// impl Consumer for SentOnly {
    ///     fn deliver<'a>(&'a self, event: &'a InboxEvent) -> ConsumerFuture<'a> {
    ///         Box::pin(async move {
    ///             if event.event_type == "message.sent" {
    ///                 Ok(Accepted::new())
    ///             } else {
    ///                 Err(Failure::new(format!("unexpected {}", event.event_type)).permanent())
    ///             }
    ///         })
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sent = InboxEvent::new("1231", "evt_1", "message.sent", &br#"{"eventHash":"evt_1"}"#[..]);
    /// assert_eq!(SentOnly.deliver(&sent).await, Ok(Accepted::new()));
    ///
    /// let retried = InboxEvent::new("1231", "evt_2", "message.failed", &b"{}"[..]).attempt(3);
    /// let failure = SentOnly.deliver(&retried).await.expect_err("refused");
    /// assert!(failure.permanent);
    /// # }
    /// ```
    pub fn new(
        client_id: impl Into<String>,
        event_hash: impl Into<String>,
        event_type: impl Into<String>,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            event_hash: event_hash.into(),
            event_type: event_type.into(),
            body: body.into(),
            signature: None,
            content_type: None,
            method: crate::event::DeliveryMethod::Post,
            received_at: SystemTime::now(),
            attempt: 1,
            destination: crate::inbox::DEFAULT_DESTINATION.to_owned(),
        }
    }

    /// The `X-CCAI-Signature` header it came with.
    pub fn signature(mut self, signature: impl Into<String>) -> Self {
        self.signature = Some(signature.into());
        self
    }

    /// The `Content-Type` header it came with.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The HTTP method it came with (default POST).
    pub fn method(mut self, method: crate::event::DeliveryMethod) -> Self {
        self.method = method;
        self
    }

    /// When it was received (default: when [`new`](Self::new) was called).
    pub fn received_at(mut self, received_at: SystemTime) -> Self {
        self.received_at = received_at;
        self
    }

    /// Which attempt this is (default 1, the first).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// The destination this delivery is for (default
    /// [`DEFAULT_DESTINATION`](crate::inbox::DEFAULT_DESTINATION)).
    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = destination.into();
        self
    }
}

impl From<&ClaimedDelivery> for InboxEvent {
    fn from(claimed: &ClaimedDelivery) -> Self {
        Self {
            client_id: claimed.client_id.clone(),
            event_hash: claimed.event_hash.clone(),
            event_type: claimed.event_type.clone(),
            body: claimed.body.clone(),
            signature: claimed.signature.clone(),
            content_type: claimed.content_type.clone(),
            method: claimed.method,
            received_at: claimed.received_at,
            attempt: claimed.attempt,
            destination: claimed.destination.clone(),
        }
    }
}

impl fmt::Debug for InboxEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxEvent")
            .field("event_hash", &self.event_hash)
            .field("event_type", &self.event_type)
            .field("body_len", &self.body.len())
            .field("signature", &redacted(&self.signature))
            .field("content_type", &self.content_type)
            .field("attempt", &self.attempt)
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

/// A consumer accepted the event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// The HTTP status the target answered, for an HTTP consumer.
    pub http_status: Option<u16>,
}

impl Accepted {
    /// Accepted, with no HTTP status.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepted with this HTTP status.
    pub fn with_status(status: u16) -> Self {
        Self {
            http_status: Some(status),
        }
    }
}

/// Why a consumer did not accept an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// What went wrong (recorded as the attempt's error excerpt).
    pub message: String,
    /// The HTTP status answered, if any.
    pub http_status: Option<u16>,
    /// How long the target asked to wait (`Retry-After`); the dispatcher waits at least that,
    /// within its cap.
    pub retry_after: Option<Duration>,
    /// Whether retrying is pointless (e.g. `410 Gone`): the delivery goes dead at once.
    pub permanent: bool,
}

impl Failure {
    /// A failure worth retrying.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            http_status: None,
            retry_after: None,
            permanent: false,
        }
    }

    /// With the HTTP status answered.
    pub fn http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// With the wait the target asked for.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Not worth retrying.
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }
}

/// The boxed future a [`Consumer`] returns.
pub type ConsumerFuture<'a> = Pin<Box<dyn Future<Output = Result<Accepted, Failure>> + Send + 'a>>;

/// Takes events from the [`Dispatcher`](super::Dispatcher). Delivery is at least once: an event
/// may arrive again after it was accepted (a worker died before recording it), so be idempotent
/// on [`InboxEvent::event_hash`].
///
/// A consumer that panics (building its future or polling it) fails that attempt, recorded as
/// "the consumer panicked", and the delivery is retried and goes dead as for any failure: the
/// worker carries on with the next event.
pub trait Consumer: Send + Sync + fmt::Debug {
    /// Hands `event` on.
    fn deliver<'a>(&'a self, event: &'a InboxEvent) -> ConsumerFuture<'a>;
}

type Callback =
    dyn Fn(InboxEvent) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync;

/// A [`Consumer`] that calls an async function; an `Err` is a failure worth retrying.
///
/// `Ok` marks the delivery delivered. An `Err` is retried on the dispatcher's
/// [`RetrySchedule`](crate::inbox::RetrySchedule), its `Display` recorded as the attempt's error,
/// and the delivery goes dead after the last attempt. To give up at once or to ask for a later
/// retry ([`Failure::permanent`](Failure::permanent()), [`Failure::retry_after`](Failure::retry_after())),
/// implement [`Consumer`] instead (the example on [`InboxEvent::new`]).
///
/// ```
/// use ccai::event::{parse_event, EventData};
/// use ccai::inbox::{CallbackConsumer, Consumer, InboxEvent};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let consumer = CallbackConsumer::new(|stored: InboxEvent| async move {
///     let event = parse_event(&stored.body)?;
///     if let EventData::Sent(sent) = event.typed_data()? {
///         println!("sent to {:?} (attempt {})", sent.to, stored.attempt);
///     }
///     Ok::<(), ccai::BoxError>(())
/// });
///
/// let body = &br#"{"eventType":"message.sent","eventHash":"evt_1","data":{"To":"+14155550100"}}"#[..];
/// assert!(consumer.deliver(&InboxEvent::new("1231", "evt_1", "message.sent", body)).await.is_ok());
/// // A body that does not parse is an `Err`: retried, its message recorded.
/// let failure = consumer.deliver(&InboxEvent::new("1231", "evt_2", "message.sent", &b""[..])).await;
/// assert!(!failure.expect_err("no event").permanent);
/// # }
/// ```
#[derive(Clone)]
pub struct CallbackConsumer {
    callback: Arc<Callback>,
}

impl CallbackConsumer {
    /// Calls `callback` for each event.
    pub fn new<F, Fut, E>(callback: F) -> Self
    where
        F: Fn(InboxEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self {
            callback: Arc::new(move |event| {
                let future = callback(event);
                Box::pin(async move { future.await.map_err(Into::into) })
            }),
        }
    }
}

impl fmt::Debug for CallbackConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackConsumer")
    }
}

impl Consumer for CallbackConsumer {
    fn deliver<'a>(&'a self, event: &'a InboxEvent) -> ConsumerFuture<'a> {
        let future = (self.callback)(event.clone());
        Box::pin(async move {
            future
                .await
                .map(|()| Accepted::new())
                .map_err(|e| Failure::new(e.to_string()))
        })
    }
}
