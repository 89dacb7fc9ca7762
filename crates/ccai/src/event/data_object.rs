//! [`DataObject`]: a delivery's `data`, kept as the JSON text it arrived as and read on demand.

use std::fmt;
use std::ops::Index;
use std::sync::OnceLock;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
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
/// [`WebhookEvent::typed_data`](super::WebhookEvent::typed_data).
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
    /// The object's JSON text, exactly as it appeared in the body (but for lone surrogate
    /// escapes, read as `\ufffd`).
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
    /// included), except that the escape of a lone UTF-16 surrogate in a string value (`\ud83d`
    /// without its pair, which no Rust string can hold) reads `\ufffd`, the replacement
    /// character, as Go's SDK reads it. The delivery's body bytes are never changed.
    pub fn json(&self) -> &str {
        &self.raw
    }

    /// The fields, parsed on first call and kept.
    pub fn as_map(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| parse_checked(&self.raw))
    }

    /// The fields, by value.
    pub fn into_map(self) -> Map<String, Value> {
        match self.map.into_inner() {
            Some(map) => map,
            None => parse_checked(&self.raw),
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
    ///
    /// An error says it is in `data` (`in `data`: invalid type: …, expected u32 at line 1 column 15
    /// of `data``), with its position in [`json`](Self::json)'s text, so that it is not taken for
    /// an error of the delivery's envelope; its [`line`](serde_json::Error::line) and
    /// [`column`](serde_json::Error::column) are 0, as for any error made with `custom`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.raw)
            .map_err(|e| <serde_json::Error as de::Error>::custom(super::error::in_data(&e)))
    }
}

impl From<Map<String, Value>> for DataObject {
    /// An object with these fields (its text is their compact JSON).
    fn from(map: Map<String, Value>) -> Self {
        // Serialising a map of `Value`s cannot fail: its keys are strings.
        let raw = serde_json::to_string(&map).expect("a map of JSON values always serialises");
        Self {
            raw: raw.into_boxed_str(),
            map: OnceLock::from(map),
        }
    }
}

/// Builds the map of text that `check_object` accepted. That check follows serde_json's own rules
/// (escapes, number range, depth, reserved keys), so a failure here is a bug in it: fail loudly
/// rather than hand out an empty map, which would be silent data loss.
fn parse_checked(raw: &str) -> Map<String, Value> {
    serde_json::from_str(raw)
        .expect("`data` was checked at parse time to be a readable JSON object")
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
/// building a [`Map`] of [`Value`]s (syntax, string escapes, number range, nesting depth, the
/// reserved keys of this build), without allocating anything for it. What passes is what
/// [`DataObject::as_map`] can always build.
pub(crate) fn check_object(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Checked>(text).map(|_| ())
}

/// The deepest nesting a value may have, counting itself: serde_json stops at 127 levels, and the
/// value sits inside a delivery's envelope. Held to this, an accepted event also reads back from
/// its serialised form, and `parse_event` agrees with `Deserialize for WebhookEvent`.
pub(crate) const MAX_DEPTH: usize = 126;

/// Accepts any JSON value by walking it the way `Value` is built (`deserialize_any` all the way
/// down), keeping nothing.
pub(crate) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor { depth: 0 })
    }
}

/// A value nested `depth` levels down.
#[derive(Clone, Copy)]
struct CheckedSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for CheckedSeed {
    type Value = Checked;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(CheckedVisitor { depth: self.depth })
    }
}

/// Walks one value; `depth` is the number of arrays and objects around it.
pub(crate) struct CheckedVisitor {
    pub(crate) depth: usize,
}

impl CheckedVisitor {
    /// The depth of this value's contents, if it may have any.
    fn inner_depth<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            Err(E::custom("recursion limit exceeded"))
        } else {
            Ok(self.depth + 1)
        }
    }
}

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
        CheckedSeed { depth: self.depth }.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let depth = self.inner_depth()?;
        while seq.next_element_seed(CheckedSeed { depth })?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let first = map.next_key_seed(FirstKeySeed)?;
        if first == Some(FirstKey::Number) {
            // A number, as `Value` reads it: no nesting, and no more entries (serde_json refuses
            // any after it). Not as `data` itself, which must be an object.
            if self.depth == 0 {
                return Err(de::Error::custom(RESERVED_KEY));
            }
            map.next_value_seed(NumberText)?;
            return Ok(Checked);
        }
        let depth = self.inner_depth()?;
        if first.is_some() {
            map.next_value_seed(CheckedSeed { depth })?;
            while map.next_key_seed(KeySeed)?.is_some() {
                map.next_value_seed(CheckedSeed { depth })?;
            }
        }
        Ok(Checked)
    }
}

/// What the first key of an object makes of it.
#[derive(PartialEq)]
enum FirstKey {
    /// serde_json's number marker, with `arbitrary_precision` on (any crate in a program can turn
    /// it on): serde_json hands every number that is not an `i64` or `u64` (`0.0079`, a 20-digit
    /// id) to a visitor as a one-entry map from the marker to the number's text, and `Value`
    /// reads such a map as that number. Real deliveries carry such numbers (`TotalPrice`).
    Number,
    /// Any other key: an object (reserved keys are refused, as [`KeySeed`] refuses them).
    Object,
}

struct FirstKeySeed;

impl<'de> DeserializeSeed<'de> for FirstKeySeed {
    type Value = FirstKey;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FirstKey, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FirstKeySeed {
    type Value = FirstKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<FirstKey, E> {
        if key == NUMBER_MARKER && is_reserved_key(key) {
            Ok(FirstKey::Number)
        } else {
            KeySeed.visit_str(key).map(|()| FirstKey::Object)
        }
    }
}

/// The text behind the number marker: a number, or an error, as `Value` reads it.
struct NumberText;

impl<'de> DeserializeSeed<'de> for NumberText {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NumberText {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("string containing a number")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        text.parse::<serde_json::Number>()
            .map(drop)
            .map_err(E::custom)
    }
}

const RESERVED_KEY: &str = "an object key is reserved by serde_json";

/// serde_json's private number marker (see [`FirstKey::Number`]).
const NUMBER_MARKER: &str = "$serde_json::private::Number";

/// An object's key, which must not be one that makes serde_json build something other than an
/// object in this build (see [`is_reserved_key`]). Only the first key of an object is read that
/// way, but serialising `data` sorts its keys: refused anywhere, such a key cannot become first
/// when an accepted event is written back and read again.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        if is_reserved_key(key) {
            Err(E::custom(RESERVED_KEY))
        } else {
            Ok(())
        }
    }
}

/// Whether `key`, first in an object, makes `serde_json` read the object as something else (it is
/// refused in any position, but for the number marker first in a nested value, read as the number
/// it stands for: see [`FirstKey::Number`]): its
/// private number and raw-value markers, when the features that use them (`arbitrary_precision`,
/// `raw_value`) are on in this build, which any crate in a program can turn on. Found out once, by
/// asking serde_json itself.
pub(crate) fn is_reserved_key(key: &str) -> bool {
    const MARKERS: [&str; 2] = [NUMBER_MARKER, "$serde_json::private::RawValue"];
    static RESERVED: OnceLock<[bool; 2]> = OnceLock::new();
    if !key.starts_with('$') {
        return false;
    }
    let reserved = RESERVED.get_or_init(|| {
        MARKERS.map(|marker| {
            let probe = format!(r#"{{"{marker}":"1"}}"#);
            !matches!(
                serde_json::from_str::<Value>(&probe),
                Ok(Value::Object(ref object)) if object.contains_key(marker)
            )
        })
    });
    MARKERS
        .iter()
        .zip(reserved)
        .any(|(marker, reserved)| *reserved && key == *marker)
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
    fn serde_json_markers_are_refused_anywhere() {
        // This crate turns on serde_json's `raw_value`: as the first key of an object, its marker
        // makes serde_json read a raw value instead, which would leave the map empty. Not first,
        // it reads as a key, but serialising sorts the keys and may make it first: refused
        // anywhere, so that an accepted event reads back from its serialisation.
        for bad in [
            r#"{"To":"+1","Meta":{"$serde_json::private::RawValue":0}}"#,
            r#"{"a":[{"$serde_json::private::RawValue":"{"}]}"#,
            r#"{"$serde_json::private::RawValue":"1"}"#,
            r#"{"a":{"b":1,"$serde_json::private::RawValue":0}}"#,
            r#"{"To":"+1","$serde_json::private::RawValue":0}"#,
        ] {
            assert!(check_object(bad).is_err(), "{bad}");
        }
        // Not a marker: an ordinary key.
        let fine = r#"{"a":{"b":1,"$serde_json::private::RawValu":0},"$x":2}"#;
        assert!(check_object(fine).is_ok());
        assert_eq!(object(fine)["$x"], 2);
    }

    #[test]
    fn nesting_is_limited_as_inside_an_envelope() {
        let nested = |levels: usize| {
            format!(
                r#"{{"a":{}1{}}}"#,
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        assert!(check_object(&nested(MAX_DEPTH)).is_ok());
        assert!(check_object(&nested(MAX_DEPTH + 1)).is_err());
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
