//! [`SignedDelivery`]: a delivery body and its `X-CCAI-Signature`, built the way CloudContactAI
//! sends them. For tools and tests that play the sender (`ccai trigger`, load generators).

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::scheme::sign;
use crate::event::WebhookEventType;

/// A delivery as CloudContactAI sends it: the JSON body (`eventType`, `data`, `eventHash`, in that
/// order) and the signature header value for it.
///
/// ```
/// use ccai::signature::{SignedDelivery, Verifier};
/// use ccai::event::WebhookEventType;
///
/// let mut data = serde_json::Map::new();
/// data.insert("To".into(), "+14155550100".into());
/// let delivery = SignedDelivery::builder(WebhookEventType::MessageSent, "h-1")
///     .data(data)
///     .sign("1231", "my-webhook-secret");
///
/// let event = Verifier::new("1231", "my-webhook-secret")?
///     .verify_event(Some(delivery.signature()), delivery.body())?;
/// assert_eq!(event.event_hash, "h-1");
/// assert_eq!(event.data["To"], "+14155550100");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SignedDelivery {
    body: Vec<u8>,
    signature: String,
    event_hash: String,
}

impl SignedDelivery {
    /// Starts a delivery of `event_type` identified by `event_hash`, with empty `data`.
    pub fn builder(
        event_type: impl Into<WebhookEventType>,
        event_hash: impl Into<String>,
    ) -> SignedDeliveryBuilder {
        SignedDeliveryBuilder {
            event_type: event_type.into(),
            event_hash: event_hash.into(),
            data: Map::new(),
        }
    }

    /// The JSON body, exactly as it is to be sent.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The `X-CCAI-Signature` header value.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The `eventHash` the signature covers.
    pub fn event_hash(&self) -> &str {
        &self.event_hash
    }

    /// The body, taken out.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

impl fmt::Debug for SignedDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedDelivery")
            .field("event_hash", &self.event_hash)
            .field("body_len", &self.body.len())
            .field("signature", &"[REDACTED]")
            .finish()
    }
}

/// Builds a [`SignedDelivery`]; made by [`SignedDelivery::builder`].
#[derive(Debug, Clone)]
pub struct SignedDeliveryBuilder {
    event_type: WebhookEventType,
    event_hash: String,
    data: Map<String, Value>,
}

impl SignedDeliveryBuilder {
    /// The `data` object (keys as CloudContactAI sends them: `To`, `SmsSid`, …).
    pub fn data(mut self, data: Map<String, Value>) -> Self {
        self.data = data;
        self
    }

    /// Serialises the body and signs its `eventHash` for `client_id` with `secret`.
    pub fn sign(self, client_id: &str, secret: &str) -> SignedDelivery {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "eventType")]
            event_type: &'a str,
            data: &'a Map<String, Value>,
            #[serde(rename = "eventHash")]
            event_hash: &'a str,
        }
        let body = serde_json::to_vec(&Body {
            event_type: self.event_type.as_str(),
            data: &self.data,
            event_hash: &self.event_hash,
        })
        .expect("strings and a JSON map always serialise");
        let signature = sign(client_id, &self.event_hash, secret);
        SignedDelivery {
            body,
            signature,
            event_hash: self.event_hash,
        }
    }
}
