//! [`WebhookList`]: a list of integrations read entry by entry, so that one the client cannot read
//! is reported instead of failing the others.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::integration_method::IntegrationMethod;
use super::types::{WebhookId, WebhookResponse};
use crate::event::json_type as kind;
use crate::signature::Secret;

/// The integrations a list answer held: those read, and those that could not be.
///
/// An integration that does not have the protocol's shape (a `method` that is not a string, no
/// `id`, a `url` that is an object, …) does not fail the list: it is kept in
/// [`unreadable`](Self::unreadable) with the reason, and the others are in
/// [`webhooks`](Self::webhooks), both in the API's order.
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), ccai::ClientError> {
/// let client = ccai::Client::new(ccai::Config::new("1231", "your-api-key"))?;
/// let list = client.webhook().list_with_unreadable().await?;
/// for hook in &list.webhooks {
///     println!("{} {}", hook.id, hook.url);
/// }
/// for entry in &list.unreadable {
///     eprintln!("integration #{} could not be read: {}", entry.index, entry.reason);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct WebhookList {
    /// The integrations read.
    pub webhooks: Vec<WebhookResponse>,
    /// The entries that could not be read.
    pub unreadable: Vec<UnreadableWebhook>,
}

impl WebhookList {
    /// Whether every entry was read (nothing in [`unreadable`](Self::unreadable)).
    pub fn is_complete(&self) -> bool {
        self.unreadable.is_empty()
    }

    /// Reads each entry on its own.
    pub(crate) fn read(entries: Vec<Value>) -> Self {
        let mut list = Self::default();
        for (index, raw) in entries.into_iter().enumerate() {
            match WebhookResponse::deserialize(&raw) {
                Ok(webhook) => list.webhooks.push(webhook),
                Err(_) => list.unreadable.push(UnreadableWebhook {
                    index,
                    id: readable_id(&raw),
                    reason: why_unreadable(&raw),
                    raw,
                }),
            }
        }
        list
    }
}

/// An entry of a list answer that is not an integration this crate can read.
///
/// `Debug` leaves out the entry itself: it may hold a secret (`secretKey`) in any shape.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct UnreadableWebhook {
    /// Its position in the API's answer, from 0.
    pub index: usize,
    /// Its id, when that much could be read.
    pub id: Option<WebhookId>,
    /// Why it could not be read, in one line naming the field and the JSON type found (never a
    /// value from the entry), e.g. ``its `method` is a number, not a string``.
    pub reason: String,
    raw: Value,
}

impl UnreadableWebhook {
    /// The entry exactly as the API sent it, secret included: for a caller that reads it its own
    /// way. Do not log it whole.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The entry as the API sent it (see [`raw`](Self::raw)).
    pub fn into_raw(self) -> Value {
        self.raw
    }
}

impl fmt::Debug for UnreadableWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnreadableWebhook")
            .field("index", &self.index)
            .field("id", &self.id)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

fn readable_id(raw: &Value) -> Option<WebhookId> {
    raw.get("id").and_then(|id| WebhookId::deserialize(id).ok())
}

/// Why `raw` is not a [`WebhookResponse`], in our words only: serde's own messages quote the
/// value (a secret, say) and do not name the field.
pub(crate) fn why_unreadable(raw: &Value) -> String {
    let Value::Object(fields) = raw else {
        return format!("it is {}, not an integration object", kind(raw));
    };
    if matches!(fields.get("id"), None | Some(Value::Null)) {
        return "it has no `id`".to_owned();
    }
    for (name, reads, expected) in FIELDS {
        if let Some(value) = fields.get(name).filter(|value| !reads(value)) {
            return format!("its `{name}` is {}, not {expected}", kind(value));
        }
    }
    "it does not have the shape of an integration".to_owned()
}

/// A field of [`WebhookResponse`]: its name on the wire, whether a value reads as its type, and
/// what that type is in words.
type Field = (&'static str, fn(&Value) -> bool, &'static str);

/// Every field of [`WebhookResponse`], in its order, read as it reads them.
const FIELDS: [Field; 5] = [
    ("id", reads_as::<WebhookId>, "an integer or a string"),
    ("url", reads_as::<Option<String>>, "a string"),
    ("method", reads_as::<IntegrationMethod>, "a string"),
    ("integrationType", reads_as::<Option<String>>, "a string"),
    ("secretKey", reads_as::<Option<Secret>>, "a string"),
];

fn reads_as<T: DeserializeOwned>(value: &Value) -> bool {
    T::deserialize(value).is_ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every way a field can make an integration unreadable is explained by naming that field:
    /// the checks above follow `WebhookResponse`'s fields.
    #[test]
    fn every_unreadable_field_is_named() {
        let kinds = [
            json!(null),
            json!(true),
            json!(7),
            json!(-7),
            json!(1.5),
            json!("text"),
            json!([]),
            json!({}),
        ];
        for field in ["id", "url", "method", "integrationType", "secretKey"] {
            for value in &kinds {
                let mut raw = json!({"id": 1, "url": "u", "method": "POST"});
                raw[field] = value.clone();
                if serde_json::from_value::<WebhookResponse>(raw.clone()).is_ok() {
                    continue;
                }
                let reason = why_unreadable(&raw);
                assert!(reason.contains(&format!("`{field}`")), "{raw}: {reason}");
                assert!(!reason.contains("text"), "{raw}: {reason}");
            }
        }
    }

    #[test]
    fn reads_each_entry_on_its_own() {
        let list = WebhookList::read(vec![
            json!({"id": 1}),
            json!({"id": 2, "method": 5, "secretKey": "s3cr3t"}),
            json!(null),
        ]);
        assert_eq!(list.webhooks.len(), 1);
        assert_eq!(list.unreadable.len(), 2);
        assert_eq!(list.unreadable[0].index, 1);
        assert_eq!(list.unreadable[0].id, Some(WebhookId::new("2")));
        assert_eq!(
            list.unreadable[0].reason,
            "its `method` is a number, not a string"
        );
        assert_eq!(
            list.unreadable[1].reason,
            "it is null, not an integration object"
        );
        assert!(!format!("{list:?}").contains("s3cr3t"));
    }
}
