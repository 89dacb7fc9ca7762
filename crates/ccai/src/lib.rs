//! # ccai: CloudContactAI webhooks for Rust
//!
//! CloudContactAI reports what happens to your SMS, MMS and email messages by POSTing signed JSON
//! events to your endpoint. This crate parses those events into types, verifies their signatures
//! (fail-closed, constant time, with secret rotation) and is wire-compatible with the official SDKs.
//!
//! ```
//! use ccai::webhook::{sign, EventData, Verifier};
//!
//! // What CloudContactAI sends: a body and an X-CCAI-Signature header.
//! let body = br#"{"eventType":"message.sent","eventHash":"042896dc","data":{"SmsSid":12345,"To":"+14155550100","TotalPrice":0.0079,"Segments":1}}"#;
//! let header = sign("1231", "042896dc", "my-webhook-secret");
//!
//! // What your endpoint does: verify, then use the typed event.
//! let verifier = Verifier::new("1231", "my-webhook-secret")?;
//! let event = verifier.verify_event(Some(&header), body)?;
//! if let EventData::Sent(sent) = event.typed_data()? {
//!     assert_eq!(sent.to.as_deref(), Some("+14155550100"));
//!     assert_eq!(sent.total_price, Some(0.0079));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Modules
//! - [`webhook`]: events, parsing, signing and verification, the HTTP handler `create_handler` and
//!   the `VerifiedEvent` extractor (feature `axum`, on by default), deduplication, and the management
//!   API's types.
//! - [`client`] (feature `client`, on by default): the management API client, [`Client`].
//!
//! The protocol is byte-compatible with CloudContactAI's Go, Node, Python, Java and .NET SDKs: the
//! same signature for the same `clientId`, `eventHash` and secret, the same JSON field names.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod webhook;

#[cfg(feature = "inbox")]
pub mod inbox;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub use client::{Client, ClientError, Config, HttpClient};

/// The README's Rust examples, compiled as doctests so they stay correct.
#[cfg(all(doctest, feature = "axum", feature = "client"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
