//! [`WebhookDelivery`]: a verified event together with the request it arrived in.

use std::fmt;

use bytes::Bytes;

use crate::event::{DeliveryMethod, WebhookEvent};

/// A verified delivery: the parsed event plus the exact bytes and signature it came with.
///
/// Given to callbacks registered with [`HandlerOptions::for_deliveries`](super::HandlerOptions::for_deliveries),
/// for receivers that store or forward the original request (the signature only verifies against
/// the original `eventHash`, and re-serialising `data` would not reproduce the body byte for byte).
/// Cloning is cheap: the body is reference-counted.
#[derive(Clone)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// The parsed, verified event.
    pub event: WebhookEvent,
    /// The request body exactly as received.
    pub body: Bytes,
    /// The `X-CCAI-Signature` header as received (absent only when verification is disabled).
    pub signature: Option<String>,
    /// The HTTP method it was delivered with.
    pub method: DeliveryMethod,
    /// The `Content-Type` header as received (absent if there was none, or it was not visible
    /// ASCII), for forwarding the request unchanged.
    pub content_type: Option<String>,
}

impl fmt::Debug for WebhookDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signature is a credential for this event (a replay verifies forever): never shown.
        f.debug_struct("WebhookDelivery")
            .field("event_type", &self.event.event_type)
            .field("event_hash", &self.event.event_hash)
            .field("body_len", &self.body.len())
            .field("signature", &self.signature.as_ref().map(|_| "[REDACTED]"))
            .field("method", &self.method)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}
