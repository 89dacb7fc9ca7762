//! [`WebhookEvent`]: one delivery's body, and its `Deserialize` (the reference parse).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::data::{DataError, EventData};
use super::data_object::{check_object, DataObject};
use super::envelope::raw_type;
use super::error::in_data;
use super::event_type::WebhookEventType;
use super::surrogates::replace_lone_surrogates;
use super::validate::{legacy_shape, validate, TextField};

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
/// [`parse_event`](super::parse_event). Outside the crate, build one with
/// [`WebhookEvent::new`]: the struct is `#[non_exhaustive]`, as CloudContactAI may add envelope
/// fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
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
    /// An event of `event_type` with `data` and `event_hash`, as is: nothing is checked (a
    /// received body is checked by [`parse_event`](super::parse_event)). For tests, and for a
    /// program that makes events of its own (sample events, replays from another source).
    ///
    /// ```
    /// use ccai::webhook::{EventData, WebhookEvent, WebhookEventType};
    /// use serde_json::json;
    ///
    /// let data = json!({"To": "+14155550100", "TotalPrice": 0.0079});
    /// let serde_json::Value::Object(data) = data else { unreachable!() };
    /// let event = WebhookEvent::new(WebhookEventType::MessageSent, data, "h1");
    /// assert_eq!(event.event_hash, "h1");
    /// assert!(matches!(event.typed_data()?, EventData::Sent(sent) if sent.total_price == Some(0.0079)));
    ///
    /// // An event type given by name.
    /// let event = WebhookEvent::new("message.sent", serde_json::Map::new(), "h2");
    /// assert_eq!(event.event_type, WebhookEventType::MessageSent);
    /// # Ok::<(), ccai::webhook::DataError>(())
    /// ```
    pub fn new(
        event_type: impl Into<WebhookEventType>,
        data: impl Into<DataObject>,
        event_hash: impl Into<String>,
    ) -> Self {
        Self {
            event_type: event_type.into(),
            data: data.into(),
            event_hash: event_hash.into(),
        }
    }

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
    /// Applies the same checks as [`parse_event`](super::parse_event) and accepts exactly what it
    /// accepts, from any of serde_json's sources (`from_slice`, `from_str`, `from_reader`,
    /// `from_value`; axum's `Json` uses `from_slice`). Only JSON objects are read (never an array
    /// in positional form); the values of fields that are otherwise ignored are still read as
    /// JSON text, so invalid UTF-8 anywhere in the body is refused, as `parse_event` refuses it.
    /// Other serde formats are not supported: a delivery is JSON.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = deserializer.deserialize_map(WireVisitor)?;
        // `data` as its text, checked as `parse_event` checks it: every value of it, including
        // those a repeated key would overwrite in a map.
        let data = match &wire.data {
            None => None,
            Some(raw) => Some(match raw_type(raw.get()) {
                "an object" => Ok(checked_data(raw).map_err(|e| de::Error::custom(in_data(&e)))?),
                other => Err(other),
            }),
        };
        let present = |seen: Option<bool>| seen.unwrap_or(false).then_some(());
        let legacy = legacy_shape(
            &present(wire.legacy[0]),
            &present(wire.legacy[1]),
            &present(wire.legacy[2]),
        );
        let (event_type, event_hash, data) = validate(
            wire.event_type.as_deref().map(text_field).transpose()?,
            wire.event_hash.as_deref().map(text_field).transpose()?,
            data,
            legacy,
        )
        .map_err(serde::de::Error::custom)?;
        Ok(WebhookEvent {
            event_type: WebhookEventType::from(event_type),
            data: DataObject::from_checked(data.into()),
            event_hash: event_hash.into_owned(),
        })
    }
}

/// `data`'s text if it is an object `DataObject` can build, with lone surrogate escapes in its
/// strings read as U+FFFD when that is what stands in the way, as `parse_event` reads them.
fn checked_data(raw: &RawValue) -> Result<Cow<'_, str>, serde_json::Error> {
    let text = raw.get();
    match check_object(text) {
        Ok(()) => Ok(Cow::Borrowed(text)),
        Err(e) => match replace_lone_surrogates(text) {
            Some(clean) => check_object(&clean).map(|()| Cow::Owned(clean)),
            None => Err(e),
        },
    }
}

/// `eventType` or `eventHash` from its raw text: the string, or the JSON type found instead (read
/// as strictly as `parse_event` reads it, lone surrogate escapes included).
fn text_field<E: de::Error>(raw: &RawValue) -> Result<TextField<'static>, E> {
    let read = |text: &str| -> Result<TextField<'static>, serde_json::Error> {
        Ok(match serde_json::from_str::<TextField<'_>>(text)? {
            TextField::Text(text) => TextField::Text(Cow::Owned(text.into_owned())),
            TextField::Other(found) => TextField::Other(found),
        })
    };
    match read(raw.get()) {
        Err(e) => match replace_lone_surrogates(raw.get()) {
            Some(clean) => read(&clean),
            None => Err(e),
        },
        read => read,
    }
    .map_err(E::custom)
}

/// The top level as read by `Deserialize`: the three fields as their text, the legacy markers
/// (`type`, `campaign`, `smsSid`) as present and not `null`.
struct Wire {
    event_type: Option<Box<RawValue>>,
    data: Option<Box<RawValue>>,
    event_hash: Option<Box<RawValue>>,
    legacy: [Option<bool>; 3],
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Wire;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (a delivery)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire, A::Error> {
        let mut wire = Wire {
            event_type: None,
            data: None,
            event_hash: None,
            legacy: [None; 3],
        };
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "eventType" => &mut wire.event_type,
                "eventHash" => &mut wire.event_hash,
                "data" => {
                    if wire.data.is_some() {
                        return Err(de::Error::duplicate_field("data"));
                    }
                    wire.data = Some(map.next_value()?);
                    continue;
                }
                "type" | "campaign" | "smsSid" => {
                    let (index, name) = match key.as_str() {
                        "type" => (0, "type"),
                        "campaign" => (1, "campaign"),
                        _ => (2, "smsSid"),
                    };
                    if wire.legacy[index].is_some() {
                        return Err(de::Error::duplicate_field(name));
                    }
                    // Read as JSON text, like any ignored value (see `skip`).
                    let marker: Option<Box<RawValue>> = map.next_value()?;
                    wire.legacy[index] = Some(marker.is_some());
                    continue;
                }
                _ => {
                    skip(&mut map)?;
                    continue;
                }
            };
            if slot.is_some() {
                let name = if key == "eventType" {
                    "eventType"
                } else {
                    "eventHash"
                };
                return Err(de::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value()?);
        }
        Ok(wire)
    }
}

/// Skips a value the way `parse_event` does (syntax checked, numbers not range-checked), but as
/// JSON text: serde_json checks the UTF-8 of raw text, not of a value it merely skips.
fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<Box<RawValue>>().map(drop)
}
