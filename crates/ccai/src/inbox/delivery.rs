//! What the receiver hands the store: [`NewDelivery`], and what it answers: [`Inserted`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{redacted, StoreError};
use crate::event::DeliveryMethod;

/// The stored form of a method: NULL for POST (what nearly every delivery uses).
pub(crate) fn stored_method(method: DeliveryMethod) -> Option<&'static str> {
    (method != DeliveryMethod::Post).then(|| method.as_str())
}

/// A stored method back: POST for NULL (and for anything unknown, which no build writes).
pub(crate) fn method_from(stored: Option<&str>) -> DeliveryMethod {
    stored
        .and_then(|m| m.parse().ok())
        .unwrap_or(DeliveryMethod::Post)
}

/// A verified delivery to store, as received.
///
/// Built with [`NewDelivery::new`] and the builder setters. Debug shows the body's size, never
/// its bytes, and never the signature.
#[derive(Clone)]
#[non_exhaustive]
pub struct NewDelivery {
    /// The receiver's CloudContactAI account id (part of the signed message).
    pub client_id: String,
    /// The event's `eventHash`: the deduplication key, together with `client_id`.
    pub event_hash: String,
    /// The event's `eventType`, verbatim.
    pub event_type: String,
    /// The request body exactly as received.
    pub body: Bytes,
    /// The `X-CCAI-Signature` header as received.
    pub signature: Option<String>,
    /// The `Content-Type` header as received.
    pub content_type: Option<String>,
    /// The HTTP method it came with (forwarded with the same).
    pub method: DeliveryMethod,
    /// When the receiver got it.
    pub received_at: SystemTime,
}

impl NewDelivery {
    /// A delivery received now, with no signature or content type.
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
            method: DeliveryMethod::Post,
            received_at: SystemTime::now(),
        }
    }

    /// The `X-CCAI-Signature` header it came with (forwarded as is).
    pub fn signature(mut self, signature: impl Into<String>) -> Self {
        self.signature = Some(signature.into());
        self
    }

    /// The `Content-Type` header it came with (forwarded as is).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// The HTTP method it came with (default POST; an integration registered with PUT).
    pub fn method(mut self, method: DeliveryMethod) -> Self {
        self.method = method;
        self
    }

    /// When it was received (default: when [`new`](Self::new) was called).
    pub fn received_at(mut self, received_at: SystemTime) -> Self {
        self.received_at = received_at;
        self
    }
}

/// The latest [`NewDelivery::received_at`] a store takes: the end of the year 9999, far from
/// where milliseconds since the epoch plus a retry delay would overflow 64 bits.
const LATEST_RECEIVED_AT: Duration = Duration::from_secs(253_402_300_799);

impl NewDelivery {
    /// Refuses, alone, keys that not every store can hold: longer than
    /// [`MAX_FIELD_LEN`](crate::event::MAX_FIELD_LEN) (PostgreSQL indexes at most 2,704 bytes per
    /// row) or with a NUL (PostgreSQL text cannot hold one), and a received time after the year
    /// 9999 (the first due time, received time plus a delay, overflowed in PostgreSQL). Checked
    /// before an insert is queued, so that such a delivery cannot fail the batch it would share
    /// with others. The receiver never gets this far with one: parsing refuses the keys first,
    /// and it stamps the time itself.
    pub(crate) fn check_fields(&self) -> Result<(), StoreError> {
        if self
            .received_at
            .duration_since(UNIX_EPOCH)
            .is_ok_and(|since| since > LATEST_RECEIVED_AT)
        {
            return Err(StoreError::InvalidRequest(
                "a delivery's received time is after the year 9999".into(),
            ));
        }
        let keys = [&self.client_id, &self.event_hash, &self.event_type];
        if !keys.iter().all(|k| crate::event::fits_a_store_key(k)) {
            return Err(StoreError::InvalidRequest(
                "a delivery's account id, eventHash or eventType is longer than 1024 bytes or contains a NUL character"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for NewDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewDelivery")
            .field("client_id", &self.client_id)
            .field("event_hash", &self.event_hash)
            .field("event_type", &self.event_type)
            .field("body_len", &self.body.len())
            .field("signature", &redacted(&self.signature))
            .field("content_type", &self.content_type)
            .field("method", &self.method)
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// What [`Store::insert`](super::Store::insert) did with a delivery. Every variant means the
/// store's state is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Inserted {
    /// A new event: stored, and a delivery created for each destination.
    New,
    /// The same hash with the same body was already stored: counted, nothing else changed.
    Duplicate,
    /// The same hash with a different body was already stored: the first is kept, the other's
    /// SHA-256 digest recorded and counted (and a warning logged).
    Conflict,
}
