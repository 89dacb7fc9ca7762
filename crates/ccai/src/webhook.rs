//! The façade for readers of the official SDKs: everything under the names of the Go SDK's
//! `webhook` package, in one namespace.
//!
//! The items live in the layered modules ([`crate::event`], [`crate::signature`], [`crate::dedup`],
//! `crate::server`, `crate::api`); this module re-exports them so that code ported from the Go
//! package (`webhook.ParseEvent`, `webhook.VerifySignature`, `webhook.CreateHandler`,
//! `webhook.Service`, …) finds what it looks for. New code may use either path: they are the same
//! items.
//!
//! | Go SDK | Here | Canonical path |
//! |---|---|---|
//! | `ParseEvent` | [`parse_event`] → [`WebhookEvent`] | [`crate::event`] |
//! | `VerifySignature` | [`verify_signature`] (and [`Verifier`] for rotation and reasons) | [`crate::signature`] |
//! | `CreateHandler`, `HandlerOptions` | `create_handler`, `HandlerOptions` (feature `axum`) | `crate::server` |
//! | `Service` (register, list, update, delete) | `Service` = `api::Webhooks` (feature `client`) | `crate::api` |
//! | `Client` (the older `/webhooks` REST shape) | `Client` = `api::LegacyClient` (feature `client`; **not** `ccai::Client`, the integrations API's client) | `crate::api` |
//! | `WebhookConfig`, `WebhookResponse` | the same names (feature `client`) | `crate::api` |
//!
//! # What the signature covers
//! `X-CCAI-Signature` is `base64(HMAC-SHA256(secret, clientId + ":" + eventHash))`. It does **not**
//! cover `eventType` or `data`: a delivery whose `data` was altered in transit still verifies, and
//! nobody outside CloudContactAI can check `data` against `eventHash`. Serve your endpoint over HTTPS.
//! There is no timestamp either, so a captured delivery verifies forever: deduplicate on
//! `eventHash`.

pub use crate::dedup::{Claim, DedupError, DedupFuture, Deduper, MemoryDeduper};
pub use crate::event::{
    parse_event, DataError, DataObject, DeliveryMethod, EventData, LegacyShape, MessageError,
    MessageExcluded, MessageIncoming, MessageSent, ParseError, UnknownDeliveryMethod, WebhookEvent,
    WebhookEventType,
};
pub use crate::signature::{
    sign, verify_signature, Secret, SignedDelivery, Verifier, VerifierConfigError, VerifyError,
    SIGNATURE_HEADER,
};
pub use crate::BoxError;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use crate::server::{
    create_handler, HandlerConfigError, HandlerFuture, HandlerOptions, HandlerResponse, Rejection,
    VerifiedEvent, WebhookDelivery, WebhookHandler, DEFAULT_BODY_LIMIT,
};

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use crate::api::{
    IntegrationMethod, UnreadableWebhook, WebhookConfig, WebhookDeleteResponse, WebhookId,
    WebhookList, WebhookResponse, Webhooks as Service,
};

/// The Go SDK's `webhook.Client`: [`LegacyClient`](crate::api::LegacyClient) under that name,
/// for the older `/webhooks` REST API (`Client::new(base_url, api_key)`, no client id).
///
/// **Not the same type as [`ccai::Client`](crate::Client)**, which talks to the integrations API
/// (`/v1/client/{clientId}/integration`, built from a [`Config`](crate::Config)) and is what new
/// code should use; this name is kept so that code ported from the Go SDK finds it.
///
// Inlined (unlike the other re-exports) so that its page carries this note.
#[doc(inline)]
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use crate::api::LegacyClient as Client;
