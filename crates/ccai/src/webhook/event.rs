//! A delivery's body: [`WebhookEvent`] and [`parse_event`].

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::data::{DataError, EventData};
use super::event_type::WebhookEventType;

/// One delivery from CloudContactAI: `{"eventType": …, "data": {…}, "eventHash": …}`.
///
/// `data` is kept as the raw JSON object (keys are PascalCase, as sent); [`WebhookEvent::typed_data`]
/// gives a typed view of it per event type.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire")]
pub struct WebhookEvent {
    /// What happened (`eventType`).
    #[serde(rename = "eventType")]
    pub event_type: WebhookEventType,
    /// The event's fields (`data`), as received.
    pub data: Map<String, Value>,
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
        EventData::from_map(&self.event_type, &self.data)
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

/// The top-level shape, read in one pass without building a map of the whole body. Unknown keys are
/// skipped; the legacy markers are only noted as present.
#[derive(Deserialize)]
pub(crate) struct Wire {
    #[serde(rename = "eventType", default, deserialize_with = "present")]
    event_type: Option<Value>,
    #[serde(default, deserialize_with = "data_field")]
    data: Option<DataField>,
    #[serde(rename = "eventHash", default, deserialize_with = "present")]
    event_hash: Option<Value>,
    #[serde(rename = "type")]
    legacy_type: Option<IgnoredAny>,
    campaign: Option<IgnoredAny>,
    #[serde(rename = "smsSid")]
    sms_sid: Option<IgnoredAny>,
}

/// A field that is present, even as `null`, is `Some`: `null` is a wrong type, not a missing field.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `data` as read off the wire: the object, or the JSON type found instead.
pub(crate) enum DataField {
    Object(Map<String, Value>),
    Other(&'static str),
}

/// Reads `data` straight into a map sized for a typical delivery (about ten fields), instead of
/// growing one from empty: fewer reallocations on the hot path.
fn data_field<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DataField>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = DataField;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut access: A,
        ) -> Result<DataField, A::Error> {
            let mut map = Map::with_capacity(access.size_hint().unwrap_or(0).max(12));
            while let Some((key, value)) = access.next_entry::<String, Value>()? {
                map.insert(key, value);
            }
            Ok(DataField::Object(map))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut access: A,
        ) -> Result<DataField, A::Error> {
            while access.next_element::<IgnoredAny>()?.is_some() {}
            Ok(DataField::Other("an array"))
        }

        fn visit_str<E>(self, _: &str) -> Result<DataField, E> {
            Ok(DataField::Other("a string"))
        }

        fn visit_bool<E>(self, _: bool) -> Result<DataField, E> {
            Ok(DataField::Other("a boolean"))
        }

        fn visit_i64<E>(self, _: i64) -> Result<DataField, E> {
            Ok(DataField::Other("a number"))
        }

        fn visit_u64<E>(self, _: u64) -> Result<DataField, E> {
            Ok(DataField::Other("a number"))
        }

        fn visit_f64<E>(self, _: f64) -> Result<DataField, E> {
            Ok(DataField::Other("a number"))
        }

        fn visit_unit<E>(self) -> Result<DataField, E> {
            Ok(DataField::Other("null"))
        }
    }
    deserializer.deserialize_any(Visitor).map(Some)
}

/// Parses a delivery body.
///
/// Unknown top-level fields are ignored; an unknown `eventType` is kept, not refused. Errors say
/// exactly what is wrong: invalid UTF-8, not JSON, not an object, a missing, empty or mistyped
/// `eventType`/`eventHash`/`data`, or one of the legacy unsigned shapes. Any input, including
/// arbitrarily deep nesting, gives a value or an error, never a panic (serde_json stops at a
/// nesting depth of 128).
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
    let text = std::str::from_utf8(payload).map_err(|e| ParseError::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    // A derived struct also accepts a JSON array positionally; only objects are deliveries.
    if !text.trim_start().starts_with('{') {
        return Err(classify_non_object(text));
    }
    let wire: Wire = serde_json::from_str(text).map_err(json_error)?;
    WebhookEvent::try_from(wire)
}

impl TryFrom<Wire> for WebhookEvent {
    type Error = ParseError;

    fn try_from(wire: Wire) -> Result<Self, ParseError> {
        validate(wire)
    }
}

fn validate(wire: Wire) -> Result<WebhookEvent, ParseError> {
    let event_type = match wire.event_type {
        Some(Value::String(s)) => WebhookEventType::from(s),
        Some(other) => return Err(wrong_type("eventType", "a string", &other)),
        None => {
            if wire.event_hash.is_none() {
                if wire.campaign.is_some() {
                    return Err(ParseError::Legacy(if wire.legacy_type.is_some() {
                        LegacyShape::CampaignWithType
                    } else {
                        LegacyShape::Campaign
                    }));
                }
                if wire.sms_sid.is_some() {
                    return Err(ParseError::Legacy(LegacyShape::DeliveryReceipt));
                }
            }
            return Err(ParseError::MissingField { field: "eventType" });
        }
    };
    if event_type.as_str().is_empty() {
        return Err(ParseError::EmptyField { field: "eventType" });
    }
    let event_hash = match wire.event_hash {
        Some(Value::String(s)) if s.is_empty() => {
            return Err(ParseError::EmptyField { field: "eventHash" })
        }
        Some(Value::String(s)) => s,
        Some(other) => return Err(wrong_type("eventHash", "a string", &other)),
        None => return Err(ParseError::MissingField { field: "eventHash" }),
    };
    let data = match wire.data {
        Some(DataField::Object(map)) => map,
        Some(DataField::Other(found)) => {
            return Err(ParseError::WrongType {
                field: "data",
                expected: "an object",
                found,
            })
        }
        None => return Err(ParseError::MissingField { field: "data" }),
    };
    Ok(WebhookEvent {
        event_type,
        data,
        event_hash,
    })
}

fn classify_non_object(text: &str) -> ParseError {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => ParseError::NotAnObject {
            found: json_type(&value),
        },
        Err(e) => json_error(e),
    }
}

fn json_error(e: serde_json::Error) -> ParseError {
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

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> ParseError {
    ParseError::WrongType {
        field,
        expected,
        found: json_type(found),
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
