//! The `eventType` of a delivery.

use std::{convert::Infallible, fmt, hash, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What happened to a message: the `eventType` of a delivery.
///
/// Unknown values (CloudContactAI adds types over time, e.g. `contact.unsubscribed`) are kept verbatim
/// in [`WebhookEventType::Other`] and round-trip byte for byte; they are never an error.
///
/// Equality and hashing go by the wire string, so `Other("message.sent".into())` equals
/// [`WebhookEventType::MessageSent`].
///
/// ```
/// use ccai::webhook::WebhookEventType;
///
/// let t: WebhookEventType = "message.sent".parse().unwrap();
/// assert_eq!(t, WebhookEventType::MessageSent);
/// assert_eq!(WebhookEventType::from("contact.unsubscribed").as_str(), "contact.unsubscribed");
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum WebhookEventType {
    /// `message.sent`: a message left CloudContactAI (carries price and segments).
    MessageSent,
    /// `message.incoming`: a contact replied.
    MessageIncoming,
    /// `message.received`: legacy name of `message.incoming`, still delivered by some accounts.
    MessageReceived,
    /// `message.excluded`: a message was not sent (opt-out, invalid number, …).
    MessageExcluded,
    /// `message.error.carrier`: the carrier refused or failed the message.
    MessageErrorCarrier,
    /// `message.error.cloudcontact`: CloudContactAI itself failed the message.
    MessageErrorCloudcontact,
    /// Any other type, kept exactly as received.
    Other(String),
}

impl WebhookEventType {
    /// The six types this crate knows, in documentation order.
    pub const KNOWN: [WebhookEventType; 6] = [
        WebhookEventType::MessageSent,
        WebhookEventType::MessageIncoming,
        WebhookEventType::MessageReceived,
        WebhookEventType::MessageExcluded,
        WebhookEventType::MessageErrorCarrier,
        WebhookEventType::MessageErrorCloudcontact,
    ];

    /// The wire string, e.g. `"message.sent"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MessageSent => "message.sent",
            Self::MessageIncoming => "message.incoming",
            Self::MessageReceived => "message.received",
            Self::MessageExcluded => "message.excluded",
            Self::MessageErrorCarrier => "message.error.carrier",
            Self::MessageErrorCloudcontact => "message.error.cloudcontact",
            Self::Other(s) => s,
        }
    }

    /// Whether this is one of the known types (not [`WebhookEventType::Other`]).
    pub fn is_known(&self) -> bool {
        !matches!(Self::from(self.as_str()), Self::Other(_))
    }

    fn known(s: &str) -> Option<Self> {
        Some(match s {
            "message.sent" => Self::MessageSent,
            "message.incoming" => Self::MessageIncoming,
            "message.received" => Self::MessageReceived,
            "message.excluded" => Self::MessageExcluded,
            "message.error.carrier" => Self::MessageErrorCarrier,
            "message.error.cloudcontact" => Self::MessageErrorCloudcontact,
            _ => return None,
        })
    }
}

impl From<&str> for WebhookEventType {
    fn from(s: &str) -> Self {
        Self::known(s).unwrap_or_else(|| Self::Other(s.to_owned()))
    }
}

impl From<String> for WebhookEventType {
    fn from(s: String) -> Self {
        Self::known(&s).unwrap_or(Self::Other(s))
    }
}

impl From<std::borrow::Cow<'_, str>> for WebhookEventType {
    fn from(s: std::borrow::Cow<'_, str>) -> Self {
        Self::known(&s).unwrap_or_else(|| Self::Other(s.into_owned()))
    }
}

impl FromStr for WebhookEventType {
    type Err = Infallible;

    /// Never fails: unknown strings become [`WebhookEventType::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(s))
    }
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(s) => f.debug_tuple("Other").field(s).finish(),
            known => write!(f, "{}", known.as_str()),
        }
    }
}

impl PartialEq for WebhookEventType {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for WebhookEventType {}

impl hash::Hash for WebhookEventType {
    fn hash<H: hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for WebhookEventType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for WebhookEventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for WebhookEventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookEventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A Cow would avoid an allocation for known types but serde_json only borrows when the
        // string has no escapes; owned keeps the escaped case correct.
        String::deserialize(deserializer).map(Self::from)
    }
}
