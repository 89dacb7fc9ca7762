//! CloudContactAI webhooks: events, signatures, verification and the management API's types.
//!
//! | Need | Use |
//! |---|---|
//! | Parse a delivery body | [`parse_event`] → [`WebhookEvent`] (its `data` a [`DataObject`], read on demand), [`WebhookEvent::typed_data`] → [`EventData`] |
//! | Check a signature | [`verify_signature`], or a [`Verifier`] (rotation, reasons, keyed once) |
//! | Produce a signature (tests, tools) | [`sign`] |
//! | Receive deliveries over HTTP (feature `axum`) | `create_handler(HandlerOptions)`, or the `VerifiedEvent` axum extractor |
//! | Deduplicate by `eventHash` | [`Deduper`], [`MemoryDeduper`] |
//! | Register an endpoint | [`WebhookConfig`] → [`WebhookResponse`] |
//!
//! # What the signature covers
//! `X-CCAI-Signature` is `base64(HMAC-SHA256(secret, clientId + ":" + eventHash))`. It does **not**
//! cover `eventType` or `data`: a delivery whose `data` was altered in transit still verifies, and
//! nobody outside CloudContactAI can check `data` against `eventHash`. Serve your endpoint over HTTPS.
//! There is no timestamp either, so a captured delivery verifies forever: deduplicate on
//! `eventHash`.

mod data;
mod data_object;
mod dedup;
mod envelope;
mod event;
mod event_type;
#[cfg(feature = "axum")]
mod handler;
mod secret;
mod signature;
mod types;
mod verifier;

#[cfg(feature = "client")]
mod answer;
#[cfg(feature = "client")]
mod legacy_client;
#[cfg(feature = "client")]
mod service;

pub use data::{DataError, EventData, MessageError, MessageExcluded, MessageIncoming, MessageSent};
pub use data_object::DataObject;
pub use dedup::{Claim, DedupError, DedupFuture, Deduper, EntryState, MemoryDeduper};
pub use event::{parse_event, LegacyShape, ParseError, WebhookEvent};
pub use event_type::WebhookEventType;
#[cfg(feature = "axum")]
pub use handler::{
    create_handler, BoxError, HandlerConfigError, HandlerFuture, HandlerOptions, HandlerResponse,
    Rejection, VerifiedEvent, WebhookDelivery, WebhookHandler, DEFAULT_BODY_LIMIT,
};
pub use secret::Secret;
pub use signature::{sign, verify_signature, SIGNATURE_HEADER, SIGNATURE_LEN};
pub use types::{
    DeliveryMethod, UnknownDeliveryMethod, WebhookConfig, WebhookDeleteResponse, WebhookId,
    WebhookResponse,
};
pub use verifier::{ConfigError, Verifier, VerifyError};

#[cfg(feature = "client")]
pub use legacy_client::Client;
#[cfg(feature = "client")]
pub use service::Service;
