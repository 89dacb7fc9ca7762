//! [`WebhookEvent`]: one delivery's body, and its `Deserialize` (the reference parse).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::data::{DataError, EventData};
use super::data_object::DataObject;
use super::error::json_type;
use super::event_type::WebhookEventType;
use super::validate::{legacy_shape, validate, OwnedWire, TextField};

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
/// [`parse_event`](super::parse_event).
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

impl<'de> Deserialize<'de> for WebhookEvent {
    /// Applies the same checks as [`parse_event`](super::parse_event) (from any serde source, e.g. axum's `Json`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = OwnedWire::deserialize(deserializer)?;
        let data = wire.data.map(|value| match value {
            Value::Object(map) => Ok(map),
            other => Err(json_type(&other)),
        });
        let legacy = legacy_shape(&wire.legacy_type, &wire.campaign, &wire.sms_sid);
        let (event_type, event_hash, data) = validate(
            wire.event_type.map(TextField::from),
            wire.event_hash.map(TextField::from),
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
