//! The `X-CCAI-Signature` scheme: signing, verifying, secrets.
//!
//! `X-CCAI-Signature` is `base64(HMAC-SHA256(secret, clientId + ":" + eventHash))`. HTTP-free:
//! nothing here depends on the `axum` or `client` features.
//!
//! | Need | Use |
//! |---|---|
//! | Check one signature (the official SDKs' function) | [`verify_signature`] |
//! | Verify deliveries: several secrets (rotation), a reason on failure, keyed once | [`Verifier`] |
//! | Produce a signature | [`sign`] |
//! | Produce a whole signed delivery (tools, tests, load generators) | [`SignedDelivery`] |
//! | Hold a secret without printing it | [`Secret`] |
//!
//! # What the signature covers
//! It authenticates the pair `clientId:eventHash` only, not `eventType` or `data`: a delivery whose
//! `data` was altered in transit still verifies, and nobody outside CloudContactAI can check `data`
//! against `eventHash`. Serve your endpoint over HTTPS. There is no timestamp either, so a captured
//! delivery verifies forever: deduplicate on `eventHash` (see [`crate::dedup`]).

mod scheme;
mod secret;
mod signed_delivery;
mod verifier;

pub use scheme::{sign, verify_signature, SIGNATURE_HEADER};
pub use secret::Secret;
pub use signed_delivery::{SignedDelivery, SignedDeliveryBuilder};
pub use verifier::{Verifier, VerifierConfigError, VerifyError};
