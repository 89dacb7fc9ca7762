//! [`DataObject`]: a delivery's `data`, kept as the JSON text it arrived as and read on demand.

use std::fmt;
use std::ops::Index;
use std::sync::OnceLock;

use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The `data` object of a delivery.
///
/// Parsing a delivery only checks `data` (it must be a JSON object that `serde_json` can read) and
/// keeps its text; the map of fields is built the first time it is asked for, then kept. A
/// receiver that only verifies, deduplicates, stores or forwards deliveries never pays for it, and
/// a body whose signature does not verify is never expanded at all.
///
/// Read it like a [`serde_json::Value`] object: `data["To"]` (`Value::Null` when absent),
/// [`get`](Self::get), [`as_map`](Self::as_map); or straight into your own type with
/// [`deserialize`](Self::deserialize), or typed per event type with
/// [`WebhookEvent::typed_data`](crate::webhook::WebhookEvent::typed_data).
///
/// ```
/// use ccai::webhook::parse_event;
///
/// let body = br#"{"eventType":"message.sent","eventHash":"h","data":{"To":"+14155550100","Segments":2}}"#;
/// let event = parse_event(body)?;
/// assert_eq!(event.data["To"], "+14155550100");
/// assert_eq!(event.data.get("Segments").and_then(|v| v.as_u64()), Some(2));
/// assert!(event.data["Missing"].is_null());
/// assert_eq!(event.data.json(), r#"{"To":"+14155550100","Segments":2}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Equality compares the fields, not the text: `{"a":1}` equals `{ "a" : 1 }`.
pub struct DataObject {
    /// The object's JSON text, exactly as it appeared in the body.
    raw: Box<str>,
    /// The fields, built on first use. Always buildable: `raw` was checked to parse as a map.
    map: OnceLock<Map<String, Value>>,
}

impl DataObject {
    /// `raw` must already have passed [`check_object`].
    pub(crate) fn from_checked(raw: Box<str>) -> Self {
        Self {
            raw,
            map: OnceLock::new(),
        }
    }

    /// The object's JSON text, exactly as received (field order, spacing and number spelling
    /// included).
    pub fn json(&self) -> &str {
        &self.raw
    }

    /// The fields, parsed on first call and kept.
    pub fn as_map(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            // Cannot fail: `check_object` accepted this exact text with the same parser rules.
            serde_json::from_str(&self.raw).unwrap_or_default()
        })
    }

    /// The fields, by value.
    pub fn into_map(self) -> Map<String, Value> {
        match self.map.into_inner() {
            Some(map) => map,
            None => serde_json::from_str(&self.raw).unwrap_or_default(),
        }
    }

    /// One field, `None` when absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().get(key)
    }

    /// Whether the object has the field.
    pub fn contains_key(&self, key: &str) -> bool {
        self.as_map().contains_key(key)
    }

    /// Reads the object into any deserialisable type, straight from its text (the map is not built).
    ///
    /// ```
    /// use ccai::webhook::parse_event;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Sent {
    ///     #[serde(rename = "To")]
    ///     to: String,
    /// }
    ///
    /// let event = parse_event(br#"{"eventType":"message.sent","eventHash":"h","data":{"To":"+1415"}}"#)?;
    /// let sent: Sent = event.data.deserialize()?;
    /// assert_eq!(sent.to, "+1415");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.raw)
    }
}

impl From<Map<String, Value>> for DataObject {
    /// An object with these fields (its text is their compact JSON).
    fn from(map: Map<String, Value>) -> Self {
        // Serialising a map of `Value`s cannot fail: its keys are strings.
        let raw = serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned());
        Self {
            raw: raw.into_boxed_str(),
            map: OnceLock::from(map),
        }
    }
}

impl Default for DataObject {
    /// `{}`.
    fn default() -> Self {
        Self::from(Map::new())
    }
}

impl Clone for DataObject {
    fn clone(&self) -> Self {
        Self {
            raw: self.raw.clone(),
            map: self.map.clone(),
        }
    }
}

impl PartialEq for DataObject {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw || self.as_map() == other.as_map()
    }
}

impl Index<&str> for DataObject {
    type Output = Value;

    /// The field, or `Value::Null` when absent (like indexing a [`Value`]).
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl fmt::Debug for DataObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.as_map()).finish()
    }
}

impl Serialize for DataObject {
    /// As the map of fields, so that every serde format can write it; use [`DataObject::json`] for
    /// the text as received.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DataObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::<String, Value>::deserialize(deserializer).map(Self::from)
    }
}

/// Checks that `text` parses as a JSON object under exactly the rules `serde_json` applies when
/// building a [`Map`] of [`Value`]s (syntax, string escapes, number range, nesting depth), without
/// allocating anything for it. What passes is what [`DataObject::as_map`] can always build.
pub(crate) fn check_object(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Checked>(text).map(|_| ())
}

/// Accepts any JSON value by walking it the way `Value` is built (`deserialize_any` all the way
/// down), keeping nothing.
pub(crate) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Checked, D::Error> {
        Checked::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> DataObject {
        check_object(text).expect("checked");
        DataObject::from_checked(text.into())
    }

    #[test]
    fn the_map_is_built_from_the_text_once() {
        let data = object(r#" {"To": "+1", "n": [1, {"x": null}]} "#.trim());
        assert_eq!(data["To"], "+1");
        assert_eq!(data["n"][1]["x"], Value::Null);
        assert!(std::ptr::eq(data.as_map(), data.as_map()));
        assert_eq!(data.clone().into_map().len(), 2);
    }

    #[test]
    fn equality_is_by_fields() {
        assert_eq!(
            object(r#"{"a":1,"b":2}"#),
            object(r#"{ "b" : 2, "a" : 1 }"#)
        );
        assert_ne!(object(r#"{"a":1}"#), object(r#"{"a":2}"#));
        let mut map = Map::new();
        map.insert("a".into(), 1.into());
        assert_eq!(DataObject::from(map), object(r#"{"a":1}"#));
    }

    #[test]
    fn what_check_object_refuses_value_refuses_too() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for bad in [
            r#"{"a":1e400}"#.to_owned(),
            r#"{"a":"\ud800"}"#.to_owned(),
            r#"{"\x":1}"#.to_owned(),
            r#"{"\udc00":1}"#.to_owned(),
            format!(r#"{{"a":{deep}}}"#),
        ] {
            assert!(check_object(&bad).is_err(), "{bad:.40}");
            assert!(serde_json::from_str::<Map<String, Value>>(&bad).is_err());
        }
    }
}
