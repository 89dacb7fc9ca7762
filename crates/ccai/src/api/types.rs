//! The management API's data types: what is sent to register an endpoint and what comes back.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::integration_method::IntegrationMethod;
use crate::event::{DeliveryMethod, WebhookEventType};
use crate::signature::Secret;

/// What to register (or update): where CloudContactAI should deliver, and with which secret.
///
/// ```
/// use ccai::webhook::{DeliveryMethod, WebhookConfig, WebhookEventType};
///
/// let config = WebhookConfig::new("https://example.com/webhook/ccai")
///     .events([WebhookEventType::MessageSent, WebhookEventType::MessageIncoming])
///     .secret("my-secret")
///     .method(DeliveryMethod::Post);
/// assert!(!format!("{config:?}").contains("my-secret"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The endpoint URL.
    pub url: String,
    /// Event types to subscribe to: sent by [`LegacyClient`](super::LegacyClient) only (its
    /// `events` field). [`Client`](crate::Client) does not send it: the integrations API has no
    /// such field and delivers every event type (`integrationType: ALL`). See
    /// [`WebhookConfig::events`].
    pub events: Vec<WebhookEventType>,
    /// The signing secret. `None` (or an empty secret) lets the server generate one on register
    /// (returned once in [`WebhookResponse::secret_key`]) and keeps the current one on update.
    pub secret: Option<Secret>,
    /// How CloudContactAI delivers: `POST` or `PUT`. `None` (the default) means `POST` on
    /// register and, on update, the integration's current method (read from the API first).
    /// Sent by [`Client`](crate::Client) only; [`LegacyClient`](super::LegacyClient) does not
    /// send it. See [`WebhookConfig::method`].
    pub method: Option<DeliveryMethod>,
}

impl WebhookConfig {
    /// A configuration for `url`: no events listed, server-generated secret, `POST`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            events: Vec::new(),
            secret: None,
            method: None,
        }
    }

    /// Sets the event types to subscribe to.
    ///
    /// Which client sends it:
    ///
    /// - [`LegacyClient`](super::LegacyClient) (the older `/webhooks` API) sends the list as
    ///   `events`.
    /// - [`Client`](crate::Client) (the integrations API) does **not** send it: that API has no
    ///   event list and delivers every event type (`integrationType: ALL`), as the official SDKs
    ///   send it. Filter by [`WebhookEventType`] in your handler instead.
    pub fn events(mut self, events: impl IntoIterator<Item = WebhookEventType>) -> Self {
        self.events = events.into_iter().collect();
        self
    }

    /// Sets the signing secret. An empty one counts as none (as in the official SDKs): the server
    /// generates a secret on register and keeps the current one on update.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// The secret to send as `secretKey`: `None` when none was given or it is empty, so that the
    /// key is left out of the request rather than sent as `""` (which would set an empty secret,
    /// one no verifier accepts).
    pub(crate) fn secret_to_send(&self) -> Option<&str> {
        self.secret
            .as_ref()
            .map(Secret::expose_secret)
            .filter(|s| !s.is_empty())
    }

    /// Sets the delivery method: the HTTP method CloudContactAI delivers with (`POST` or `PUT`).
    ///
    /// Which client sends it:
    ///
    /// - [`Client`](crate::Client) (the integrations API) sends it as `method`.
    /// - [`LegacyClient`](super::LegacyClient) (the older `/webhooks` API) does **not** send it:
    ///   that API's body is `url`, `events` and `secretKey` only (as in the Go SDK, whose legacy
    ///   client it mirrors), and a field it does not document is not invented. A method set here
    ///   is ignored by it; register with [`Client`](crate::Client) to deliver with `PUT`.
    pub fn method(mut self, method: DeliveryMethod) -> Self {
        self.method = Some(method);
        self
    }
}

/// An integration's id. The API sends it as a JSON number in some responses and a string in others;
/// both become this one type. It serialises as a JSON integer when it is one written plainly
/// (`42`); any other text stays a string (`"wh_abc"`, and `"042"` or `"+42"`, which name another
/// path than `42` does).
///
/// ```
/// use ccai::webhook::WebhookId;
///
/// let a: WebhookId = serde_json::from_str("42").unwrap();
/// let b: WebhookId = serde_json::from_str("\"42\"").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.as_i64(), Some(42));
/// assert_eq!(serde_json::to_string(&a).unwrap(), "42");
/// assert_eq!(serde_json::to_string(&WebhookId::new("042")).unwrap(), r#""042""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookId(String);

impl WebhookId {
    /// Wraps an id as given.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an integer, if it is one (the API's update body needs it so).
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<i64> for WebhookId {
    fn from(id: i64) -> Self {
        Self(id.to_string())
    }
}

impl From<&str> for WebhookId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for WebhookId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl Serialize for WebhookId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Only where the number reads back as the same text: `042` printed as `42` would send a
        // later `get 42` or `delete 42` to another path. A number past `i64` (read as `u64`)
        // goes back out as the number it came in as.
        match (self.0.parse::<i64>(), self.0.parse::<u64>()) {
            (Ok(n), _) if n.to_string() == self.0 => serializer.serialize_i64(n),
            (_, Ok(n)) if n.to_string() == self.0 => serializer.serialize_u64(n),
            _ => serializer.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for WebhookId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            UInt(u64),
            Str(String),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Int(n)) => Ok(Self(n.to_string())),
            Ok(Raw::UInt(n)) => Ok(Self(n.to_string())),
            Ok(Raw::Str(s)) => Ok(Self(s)),
            Err(_) => Err(serde::de::Error::custom(
                "integration id must be an integer or a string",
            )),
        }
    }
}

/// An integration as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookResponse {
    /// The integration's id (number or string on the wire).
    pub id: WebhookId,
    /// The endpoint URL (empty when the API leaves it out or sends `null`: one such integration
    /// must not make a whole list unreadable).
    #[serde(default, deserialize_with = "null_as_default")]
    pub url: String,
    /// The delivery method (`POST` when the API leaves it out or sends `null`); a value this
    /// crate does not know is kept as [`IntegrationMethod::Other`].
    #[serde(default)]
    pub method: IntegrationMethod,
    /// The integration type, `ALL` in practice, kept as the API sent it (empty when it left it
    /// out or sent `null`). Serialized only when not empty: a type the API did not send is left
    /// out, not shown as `""`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub integration_type: String,
    /// The signing secret, when the server returns it (absent or `null` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<Secret>,
}

/// The answer to a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookDeleteResponse {
    /// Whether the integration was deleted (or, with
    /// [`not_found_on_retry`](Self::not_found_on_retry), is gone).
    pub success: bool,
    /// The server's message (one line, API key scrubbed), or ours when it sent none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// The API did not confirm this delete itself: an earlier attempt got no clear answer (it
    /// timed out, lost its connection, or was answered `500`, `502` or `504`), and the retry was
    /// answered `404 Not Found`. The integration is gone, most likely deleted by that attempt.
    #[serde(default)]
    pub not_found_on_retry: bool,
}

impl WebhookDeleteResponse {
    /// A response with the given outcome and message.
    pub fn new(success: bool, message: impl Into<String>) -> Self {
        Self {
            success,
            message: message.into(),
            not_found_on_retry: false,
        }
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integration_type_the_api_did_not_send_is_not_serialized() {
        for answer in [
            r#"{"id":42,"url":"https://x/h","method":"POST"}"#,
            r#"{"id":42,"url":"https://x/h","method":"POST","integrationType":null}"#,
        ] {
            let read: WebhookResponse = serde_json::from_str(answer).unwrap();
            assert_eq!(read.integration_type, "");
            let shown = serde_json::to_value(&read).unwrap();
            assert!(shown.get("integrationType").is_none(), "{shown}");
            let back: WebhookResponse = serde_json::from_value(shown).unwrap();
            assert_eq!(back, read);
        }
        let read: WebhookResponse =
            serde_json::from_str(r#"{"id":42,"method":"POST","integrationType":"ALL"}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&read).unwrap()["integrationType"],
            "ALL"
        );
    }

    #[test]
    fn an_id_is_a_json_number_only_when_it_reads_back_the_same() {
        for (id, json) in [
            ("42", "42"),
            ("-7", "-7"),
            ("18446744073709551615", "18446744073709551615"),
            ("042", r#""042""#),
            ("+42", r#""+42""#),
            (" 42", r#"" 42""#),
            ("wh_abc", r#""wh_abc""#),
        ] {
            let shown = serde_json::to_string(&WebhookId::new(id)).unwrap();
            assert_eq!(shown, json, "{id:?}");
            let back: WebhookId = serde_json::from_str(&shown).unwrap();
            assert_eq!(back.as_str(), id, "{id:?} round-trips");
        }
    }
}
