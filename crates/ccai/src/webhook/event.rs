//! A delivery's body: [`WebhookEvent`] and [`parse_event`].

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::data::{DataError, EventData};
use super::data_object::DataObject;
use super::envelope::{self, Envelope};
use super::event_type::WebhookEventType;

/// One delivery from CloudContactAI: `{"eventType": …, "data": {…}, "eventHash": …}`.
///
/// `data` is kept as received (keys are PascalCase, as sent) in a [`DataObject`]: index it like a
/// JSON object, or use [`WebhookEvent::typed_data`] for a typed view per event type.
///
/// ```
/// use ccai::webhook::{parse_event, WebhookEventType};
///
/// let body = br#"{"eventType":"message.sent","data":{"SmsSid":1,"To":"+14155550100"},"eventHash":"abc"}"#;
/// let event = parse_event(body)?;
/// assert_eq!(event.event_type, WebhookEventType::MessageSent);
/// assert_eq!(event.data["To"], "+14155550100");
/// # Ok::<(), ccai::webhook::ParseError>(())
/// ```
///
/// Deserialising a `WebhookEvent` (e.g. with axum's `Json`) applies the same checks as
/// [`parse_event`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookEvent {
    /// What happened (`eventType`).
    #[serde(rename = "eventType")]
    pub event_type: WebhookEventType,
    /// The event's fields (`data`), as received: read like a JSON object, built on first use.
    pub data: DataObject,
    /// CloudContactAI's identifier of this event (`eventHash`): what the signature covers and what
    /// deduplication keys on.
    #[serde(rename = "eventHash")]
    pub event_hash: String,
}

impl WebhookEvent {
    /// A typed view of [`data`](Self::data) for this event's type.
    ///
    /// Every field is optional (deliveries omit fields freely). Numbers that arrive as numeric
    /// strings (`"TotalPrice": "0.01"`) are accepted; a field of an unusable type is an error that
    /// names it. Unknown event types give [`EventData::Unknown`], never an error.
    ///
    /// ```
    /// use ccai::webhook::{parse_event, EventData};
    ///
    /// let body = br#"{"eventType":"message.sent","eventHash":"h","data":{"id":7,"TotalPrice":"0.01"}}"#;
    /// match parse_event(body)?.typed_data()? {
    ///     EventData::Sent(sent) => {
    ///         assert_eq!(sent.sms_sid, Some(7));
    ///         assert_eq!(sent.total_price, Some(0.01));
    ///     }
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn typed_data(&self) -> Result<EventData, DataError> {
        EventData::from_map(&self.event_type, self.data.as_map())
    }
}

/// Why a body is not a delivery. The message names the problem and never quotes the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is not UTF-8 (JSON must be).
    #[error("body is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    InvalidUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// The body is not JSON at all, or is cut short.
    #[error("body is not valid JSON: {reason}")]
    InvalidJson {
        /// serde_json's description with line and column (no payload text).
        reason: String,
    },
    /// The body is JSON, but not an object.
    #[error("body must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type found: `array`, `string`, …
        found: &'static str,
    },
    /// A required top-level field is absent.
    #[error("missing required field `{field}`")]
    MissingField {
        /// `eventType`, `data` or `eventHash`.
        field: &'static str,
    },
    /// A top-level field has the wrong JSON type.
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field's wire name.
        field: &'static str,
        /// What it must be: `a string`, `an object`.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A required string field is empty.
    #[error("field `{field}` must not be empty")]
    EmptyField {
        /// The field's wire name.
        field: &'static str,
    },
    /// An older, unsigned payload shape that a verifying receiver must reject.
    #[error(
        "legacy payload shape ({0}) without `eventHash`: it is unsigned and cannot be verified"
    )]
    Legacy(LegacyShape),
}

/// The pre-`eventHash` payload shapes (PROTOCOL.md §2, "Legacy shapes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyShape {
    /// `{"type", "campaign": {…}, "from", "to", "message"}`.
    #[error("campaign message with `type`")]
    CampaignWithType,
    /// `{"campaign": {…}, "from", "to", "message"}` (no `type`).
    #[error("campaign message without `type`")]
    Campaign,
    /// `{"smsSid", "totalPrice", "to", "messageStatus", "segments"}`.
    #[error("delivery receipt with `smsSid`")]
    DeliveryReceipt,
}

/// The same shape without borrowing, for `Deserialize` from any source (e.g. axum's `Json`).
#[derive(Deserialize)]
pub(crate) struct OwnedWire {
    #[serde(rename = "eventType", default, deserialize_with = "present")]
    event_type: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    data: Option<Value>,
    #[serde(rename = "eventHash", default, deserialize_with = "present")]
    event_hash: Option<Value>,
    #[serde(rename = "type")]
    legacy_type: Option<IgnoredAny>,
    campaign: Option<IgnoredAny>,
    #[serde(rename = "smsSid")]
    sms_sid: Option<IgnoredAny>,
}

/// A field that is present, even as `null`, is `Some`: `null` is a wrong type, not a missing field.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Parses a delivery body.
///
/// Unknown top-level fields are ignored; an unknown `eventType` is kept, not refused. Errors say
/// exactly what is wrong: invalid UTF-8, not JSON, not an object, a missing, empty or mistyped
/// `eventType`/`eventHash`/`data`, or one of the legacy unsigned shapes. Any input, including
/// arbitrarily deep nesting, gives a value or an error, never a panic (serde_json stops at a
/// nesting depth of 128).
///
/// `data` is checked but kept as text; its fields are built when first read (see [`DataObject`]).
///
/// This does not verify anything; use [`Verifier::verify_event`](crate::webhook::Verifier::verify_event)
/// on untrusted input.
///
/// ```
/// use ccai::webhook::{parse_event, ParseError};
///
/// let err = parse_event(br#"{"eventType":"message.sent","data":{}}"#).unwrap_err();
/// assert_eq!(err, ParseError::MissingField { field: "eventHash" });
/// assert_eq!(err.to_string(), "missing required field `eventHash`");
/// ```
pub fn parse_event(payload: &[u8]) -> Result<WebhookEvent, ParseError> {
    Envelope::parse(payload).map(Envelope::into_event)
}

impl<'de> Deserialize<'de> for WebhookEvent {
    /// Applies the same checks as [`parse_event`] (from any serde source, e.g. axum's `Json`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = OwnedWire::deserialize(deserializer)?;
        let data = wire.data.map(|value| match value {
            Value::Object(map) => Ok(map),
            other => Err(json_type(&other)),
        });
        let legacy = envelope::legacy_shape(&wire.legacy_type, &wire.campaign, &wire.sms_sid);
        let (event_type, event_hash, data) = envelope::validate(
            wire.event_type.map(envelope::TextField::from),
            wire.event_hash.map(envelope::TextField::from),
            data,
            legacy,
        )
        .map_err(serde::de::Error::custom)?;
        Ok(WebhookEvent {
            event_type: WebhookEventType::from(event_type),
            data: DataObject::from(data),
            event_hash: event_hash.into_owned(),
        })
    }
}

pub(crate) fn classify_non_object(text: &str) -> ParseError {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => ParseError::NotAnObject {
            found: json_type(&value),
        },
        Err(e) => json_error(e),
    }
}

pub(crate) fn json_error(e: serde_json::Error) -> ParseError {
    use serde_json::error::Category;
    let reason = match e.classify() {
        // Syntax and EOF messages describe position only.
        Category::Syntax | Category::Eof | Category::Io => e.to_string(),
        // "Data" errors from the derive quote the offending value ("invalid type: string \"…\""),
        // which may be payload; say where instead.
        Category::Data if e.to_string().starts_with("duplicate field") => {
            format!("{e} (a delivery must name each field once)")
        }
        Category::Data => format!(
            "unexpected value shape at line {} column {}",
            e.line(),
            e.column()
        ),
    };
    ParseError::InvalidJson { reason }
}

pub(crate) fn wrong_type(
    field: &'static str,
    expected: &'static str,
    found: &'static str,
) -> ParseError {
    ParseError::WrongType {
        field,
        expected,
        found,
    }
}

/// The JSON type of a value, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
