//! [`Rejection`]: why a delivery was not acknowledged, and its HTTP status.

use std::borrow::Cow;
use std::fmt;

use http::{Method, StatusCode};

use crate::dedup::DedupError;
use crate::error_chain::Chain;
use crate::event::ParseError;
use crate::signature::VerifyError;

use crate::BoxError;

/// Why the handler (or the [`VerifiedEvent`](super::VerifiedEvent) extractor) did not answer 200.
///
/// [`status`](Self::status) is the HTTP status of the answer. The answer's body is
/// `{"success": false, "error": <message>}` where the message names the problem but never contains
/// a secret, the signature or the payload; the callback's own error is not sent to the client (it
/// is in this value's `Display`, for logs and [`HandlerOptions::on_reject`](super::HandlerOptions::on_reject)).
///
/// A cause is shown once: either in the message (a parse problem, a signature problem, the
/// callback's error) or as the [`source`](std::error::Error::source) (a body read's error, the
/// deduplication store's, the inbox store's), never both, so a reporter that walks the sources
/// shows each once. A log line shows the message and each source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The request method is not an accepted delivery method: 405, with an `Allow` header.
    #[error("method {method} not allowed (allowed: {allow})")]
    MethodNotAllowed {
        /// The request's method.
        method: Method,
        /// The accepted methods, as in the `Allow` header (`POST`, `PUT` or `POST, PUT`).
        allow: &'static str,
    },
    /// The body (by `Content-Length` or while reading) is larger than the limit: 413.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body could not be read (connection error, malformed chunking): 400.
    #[error("request body could not be read")]
    BodyRead(#[source] BoxError),
    /// The body was not read within the deadline
    /// ([`HandlerOptions::body_timeout`](super::HandlerOptions::body_timeout)): 408.
    #[error("request body not received within {timeout:?}")]
    BodyTimeout {
        /// The configured deadline.
        timeout: std::time::Duration,
    },
    /// The body is not a valid delivery: 400. The [`ParseError`] names the problem.
    #[error("invalid delivery: {0}")]
    InvalidEvent(ParseError),
    /// No `X-CCAI-Signature` header: 400.
    #[error("missing X-CCAI-Signature header")]
    MissingSignature,
    /// The signature is malformed, repeated, or does not match any secret: 401.
    #[error("X-CCAI-Signature does not verify: {0}")]
    InvalidSignature(VerifyError),
    /// The event callback returned an error: 500, so that the sender retries.
    #[error("event callback failed: {0}")]
    Callback(BoxError),
    /// The event callback panicked: 500, so that the sender retries.
    #[error("event callback panicked")]
    CallbackPanicked,
    /// The deduplication store failed: 500, so that the sender retries. Shows as the
    /// [`DedupError`] does, its cause included.
    #[error(transparent)]
    Deduplication(DedupError),
    /// The delivery could not be stored (inbox mode: the store's queue is full, the disk is full,
    /// the database is down): 503 with `Retry-After`, so that the sender retries later. Nothing
    /// was acknowledged.
    ///
    /// The cause (the message says only that the delivery could not be stored: the cause is its
    /// [`source`](std::error::Error::source)) is the store's `ccai::inbox::StoreError` (feature
    /// `inbox`): downcast it to tell
    /// an overload from an outage, e.g. in [`on_reject`](super::HandlerOptions::on_reject).
    ///
    /// ```
    /// # #[cfg(feature = "inbox")] {
    /// use ccai::inbox::StoreError;
    /// use ccai::server::Rejection;
    ///
    /// fn overloaded(rejection: &Rejection) -> bool {
    ///     match rejection {
    ///         Rejection::Unavailable(cause) => {
    ///             matches!(cause.downcast_ref::<StoreError>(), Some(StoreError::Overloaded))
    ///         }
    ///         _ => false,
    ///     }
    /// }
    /// assert!(overloaded(&Rejection::Unavailable(Box::new(StoreError::Overloaded))));
    /// # }
    /// ```
    #[error("the delivery could not be stored")]
    Unavailable(#[source] BoxError),
}

impl Rejection {
    /// The HTTP status this rejection is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::BodyRead(_) | Self::InvalidEvent(_) | Self::MissingSignature => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Callback(_) | Self::CallbackPanicked | Self::Deduplication(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The message sent in the response body: the `Display` text, except for server-side failures
    /// whose details stay on the server.
    pub fn public_message(&self) -> Cow<'static, str> {
        match self {
            Self::Callback(_) | Self::CallbackPanicked => Cow::Borrowed("event callback failed"),
            Self::Deduplication(_) => Cow::Borrowed("deduplication store unavailable"),
            Self::Unavailable(_) => {
                Cow::Borrowed("temporarily unable to store the delivery: retry later")
            }
            other => Cow::Owned(other.to_string()),
        }
    }

    /// The message followed by each cause beneath it, joined by `: `: what a log line needs, as
    /// a 503's store error (or a deduplication backend's) is this value's
    /// [`source`](std::error::Error::source), not part of its message.
    ///
    /// ```
    /// # #[cfg(feature = "inbox")] {
    /// use ccai::inbox::StoreError;
    /// use ccai::server::Rejection;
    ///
    /// let rejection = Rejection::Unavailable(Box::new(StoreError::Overloaded));
    /// assert_eq!(rejection.to_string(), "the delivery could not be stored");
    /// assert_eq!(
    ///     rejection.with_causes().to_string(),
    ///     format!("the delivery could not be stored: {}", StoreError::Overloaded)
    /// );
    /// # }
    /// ```
    pub fn with_causes(&self) -> impl fmt::Display + '_ {
        Chain(self)
    }
}

impl From<VerifyError> for Rejection {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::MissingSignature => Self::MissingSignature,
            VerifyError::Parse(e) => Self::InvalidEvent(e),
            other => Self::InvalidSignature(other),
        }
    }
}

impl axum::response::IntoResponse for Rejection {
    fn into_response(self) -> axum::response::Response {
        super::response::rejection(&self).map(axum::body::Body::new)
    }
}
