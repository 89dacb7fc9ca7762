//! The protocol's events: what a delivery body is, how it is parsed, and its typed data.
//!
//! HTTP-free: nothing here depends on the `axum` or `client` features.
//!
//! | Need | Use |
//! |---|---|
//! | Parse a delivery body | [`parse_event`] → [`WebhookEvent`] |
//! | Read `data` (built on first use) | [`DataObject`] (`event.data["To"]`) |
//! | A typed view per event type | [`WebhookEvent::typed_data`] → [`EventData`] |
//! | The event types | [`WebhookEventType`], [`WebhookEventType::KNOWN`] |
//! | How CloudContactAI sends (`POST` or `PUT`) | [`DeliveryMethod`] |
//! | Why a body was refused | [`ParseError`] (and [`LegacyShape`] for the old unsigned shapes) |
//!
//! The wire format is described in `docs/protocol.md` in the repository.

mod data;
mod data_object;
mod delivery_method;
mod envelope;
mod error;
#[cfg(any(feature = "axum", feature = "inbox"))]
mod escaped;
mod event_type;
mod surrogates;
mod validate;
mod webhook_event;

pub use data::{DataError, EventData, MessageError, MessageExcluded, MessageIncoming, MessageSent};
pub use data_object::DataObject;
pub use delivery_method::{DeliveryMethod, UnknownDeliveryMethod};
pub use envelope::parse_event;
pub(crate) use envelope::Envelope;
#[cfg(feature = "client")]
pub(crate) use error::json_type;
pub use error::{LegacyShape, ParseError};

/// The longest `eventType` and `eventHash` a delivery may carry, in bytes. Real ones are a short
/// name and a hex digest; a longer value is refused ([`ParseError::InvalidField`]), so that every
/// store can index what the receiver accepts.
pub const MAX_FIELD_LEN: usize = 1024;

/// Whether every store can keep `value` as a key (an account id, an `eventHash`, an
/// `eventType`): at most [`MAX_FIELD_LEN`] bytes (PostgreSQL indexes at most 2,704 bytes per row)
/// and no NUL character (PostgreSQL text cannot hold one).
///
/// ```
/// use ccai::event::{fits_a_store_key, MAX_FIELD_LEN};
///
/// assert!(fits_a_store_key("1231"));
/// assert!(!fits_a_store_key("12\031"));
/// assert!(!fits_a_store_key(&"9".repeat(MAX_FIELD_LEN + 1)));
/// ```
pub fn fits_a_store_key(value: &str) -> bool {
    value.len() <= MAX_FIELD_LEN && !value.contains('\0')
}

#[cfg(any(feature = "axum", feature = "inbox"))]
pub(crate) use escaped::Escaped;
pub use event_type::WebhookEventType;
pub use webhook_event::WebhookEvent;
