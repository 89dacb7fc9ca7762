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
//! Where to go from here:
//!
//! - **An endpoint in axum** (feature `axum`, on by default): `server::create_handler` answers
//!   CloudContactAI with the protocol's status codes, deduplicates retries and calls your async
//!   function; or the `server::VerifiedEvent` extractor in a route of your own.
//! - **A durable inbox** (feature `inbox`): `server::HandlerOptions::inbox` stores each verified
//!   delivery before answering 200, and an `inbox::Dispatcher` hands it to your code (or to
//!   another URL) with retries, a dead letter and replay; the store's admin API (the
//!   `inbox::Store` trait's methods) lists and replays. The documentation of `HandlerOptions::inbox` holds a complete receiver inside an
//!   axum app.
//! - **Managing the endpoints** CloudContactAI delivers to (feature `client`, on by default):
//!   `ccai::Client` and its `webhook()` service (`api::Webhooks`).
//!
//! ## The map
//!
//! Layers depend one way: the protocol (`event`, `signature`, `dedup`) knows nothing of HTTP; the
//! receiver (`server`, which stores into `inbox` in inbox mode) and the management API (`api`)
//! build on it; the receiver and the API never import each other.
//!
//! | Module | What it owns | Feature |
//! |---|---|---|
//! | [`event`] | the delivery body: [`event::WebhookEvent`], [`event::parse_event`], event types, typed `data` | always |
//! | [`signature`] | `X-CCAI-Signature`: [`signature::sign`], [`signature::verify_signature`], [`signature::Verifier`], [`signature::Secret`], [`signature::SignedDelivery`] | always |
//! | [`dedup`] | deduplication by `eventHash`: [`dedup::Deduper`], [`dedup::MemoryDeduper`] | always |
//! | `server` | the receiver over HTTP: `create_handler`, `HandlerOptions`, the `VerifiedEvent` extractor | `axum` |
//! | `api` | the management API: `Client`, `Webhooks`, `WebhookConfig`, the legacy client | `client` |
//! | `inbox` | the durable inbox: a store of verified deliveries (SQLite, or PostgreSQL for several receivers), the dispatcher that hands them on with retries, dead letter and replay | `inbox` (`postgres` for `PostgresStore`) |
//! | `telemetry` | metrics through the `metrics` facade (`ccai_*` counters, histograms, queue gauges) | `metrics` |
//! | [`webhook`] | a façade: the `event`, `signature`, `dedup`, `server` and `api` items under the Go SDK's names | (per item) |
//!
//! `client` and `axum` are on by default; `inbox`, `postgres` and `metrics` are opt-in;
//! `default-features = false` leaves the HTTP-free protocol layer (serde, HMAC, base64). The wire
//! protocol this crate implements is described in `docs/protocol.md` in the repository.
//!
//! The crate logs through `tracing` (it installs no subscriber) under the targets `ccai::api`,
//! `ccai::inbox`, `ccai::server` and `ccai::webhook`; `docs/operations.md` says what each logs.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod dedup;
pub mod event;
pub mod signature;
pub mod webhook;

#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub mod inbox;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod api;
#[cfg(feature = "axum")]
mod error_chain;
#[cfg(any(feature = "client", feature = "inbox"))]
mod redact;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod server;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod telemetry;
#[cfg(not(feature = "metrics"))]
mod telemetry;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use api::{Client, ClientError, Config, HttpClient};

/// Any error, boxed: what an event callback may return, and the cause carried by transport and
/// body-reading errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The README's Rust examples, compiled as doctests so they stay correct.
#[cfg(all(doctest, feature = "axum", feature = "client"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
