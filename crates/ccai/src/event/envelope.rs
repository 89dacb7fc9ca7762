//! [`Envelope`]: a delivery body checked and split into what verification needs, borrowing from
//! the body. The hot path of [`parse_event`](super::parse_event) and of every verification.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::data_object::{self, DataObject};
use super::error::{classify_non_object, data_error, json_error, ParseError};
use super::event_type::WebhookEventType;
use super::surrogates::replace_lone_surrogates;
use super::validate::{legacy_shape, validate, TextField};
use super::webhook_event::WebhookEvent;

/// The top-level shape, read in one pass that borrows from the body: `eventType` and `eventHash`
/// as text (or the JSON type found instead), `data` as its raw text, the legacy markers only as
/// present. Unknown keys are skipped.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "eventType", default, borrow, deserialize_with = "text_field")]
    event_type: Option<TextField<'a>>,
    #[serde(default, borrow, deserialize_with = "raw_field")]
    data: Option<&'a RawValue>,
    #[serde(rename = "eventHash", default, borrow, deserialize_with = "text_field")]
    event_hash: Option<TextField<'a>>,
    #[serde(rename = "type")]
    legacy_type: Option<IgnoredAny>,
    campaign: Option<IgnoredAny>,
    #[serde(rename = "smsSid")]
    sms_sid: Option<IgnoredAny>,
}

/// A present field (even `null`, which is a wrong type, not a missing field), as its text.
fn raw_field<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

fn text_field<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TextField<'de>>, D::Error> {
    TextField::deserialize(deserializer).map(Some)
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
/// The escape of a lone UTF-16 surrogate in a string value (`"\ud83d"`: half an emoji, as a text
/// cut into SMS segments can carry) is valid JSON that the official SDKs accept; it is read as
/// U+FFFD, the replacement character, as Go's `encoding/json` reads it. (In an object key it is
/// refused.)
///
/// This does not verify anything; use [`Verifier::verify_event`](crate::signature::Verifier::verify_event)
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

/// A body checked to be a delivery, still borrowing from it: what verification needs
/// (`event_hash`) without building anything. [`Envelope::into_event`] makes the owned event.
pub(crate) struct Envelope<'a> {
    pub(crate) event_type: Cow<'a, str>,
    pub(crate) event_hash: Cow<'a, str>,
    /// The text of `data`, checked to be an object [`DataObject`] can always build.
    data: Cow<'a, str>,
}

impl<'a> Envelope<'a> {
    /// Everything [`parse_event`] checks, with the same errors.
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(payload).map_err(|e| ParseError::InvalidUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        match Self::parse_text(text) {
            // Perhaps valid JSON that serde_json refuses: lone surrogate escapes in strings. Read
            // again with them as U+FFFD, as the official SDKs read them (no cost when it parses).
            Err(error) => match replace_lone_surrogates(text) {
                Some(text) => Envelope::parse_text(&text).map(Envelope::into_owned),
                None => Err(error),
            },
            parsed => parsed,
        }
    }

    /// [`parse`](Self::parse) of the text as it is.
    fn parse_text(text: &str) -> Result<Envelope<'_>, ParseError> {
        // A derived struct also accepts a JSON array positionally; only objects are deliveries.
        if !text.trim_start().starts_with('{') {
            return Err(classify_non_object(text));
        }
        match scan(text) {
            Some(envelope) => Ok(envelope),
            // Anything the single pass does not take (an error, or an unusual but valid body):
            // the derived parse, which is the reference and words the errors.
            None => parse_derived(text),
        }
    }

    /// The owned event (copies `eventHash` and `data`'s text; builds nothing else).
    pub(crate) fn into_event(self) -> WebhookEvent {
        WebhookEvent {
            event_type: WebhookEventType::from(self.event_type),
            data: DataObject::from_checked(self.data.into()),
            event_hash: self.event_hash.into_owned(),
        }
    }

    /// The envelope, borrowing nothing.
    fn into_owned(self) -> Envelope<'static> {
        Envelope {
            event_type: Cow::Owned(self.event_type.into_owned()),
            event_hash: Cow::Owned(self.event_hash.into_owned()),
            data: Cow::Owned(self.data.into_owned()),
        }
    }
}

/// The reference parse: a derived struct over the whole body, then `data` checked on its own.
fn parse_derived(text: &str) -> Result<Envelope<'_>, ParseError> {
    let wire: Wire<'_> = serde_json::from_str(text).map_err(json_error)?;
    let data = match wire.data {
        None => None,
        Some(raw) => Some(match raw_type(raw.get()) {
            "an object" => {
                if let Err(e) = data_object::check_object(raw.get()) {
                    // At the body's line and column, saying it is in `data`.
                    return Err(data_error(text, raw.get(), &e));
                }
                Ok(raw.get())
            }
            other => Err(other),
        }),
    };
    let legacy = legacy_shape(&wire.legacy_type, &wire.campaign, &wire.sms_sid);
    let (event_type, event_hash, data) = validate(wire.event_type, wire.event_hash, data, legacy)?;
    Ok(Envelope {
        event_type,
        event_hash,
        data: Cow::Borrowed(data),
    })
}

/// The JSON type of a raw value, from its first character (the text is valid JSON).
pub(crate) fn raw_type(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The single pass of the common case: walks the top-level object itself and hands each value to
/// `serde_json` (`data` straight to the check that [`DataObject`] relies on, so it is read once),
/// borrowing everything. `None` for whatever it does not take: any error, a duplicate field, an
/// escaped key. [`Envelope::parse`] then falls back to the derived parse, so this only has to be
/// right when it returns `Some` (and the property tests hold it to the derived parse's results).
fn scan(text: &str) -> Option<Envelope<'_>> {
    let bytes = text.as_bytes();
    let mut pos = skip_whitespace(bytes, 0);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_whitespace(bytes, pos + 1);
    let mut event_type = None;
    let mut event_hash = None;
    let mut data = None;
    // `type`, `campaign`, `smsSid`: present and not `null` (as `Option<IgnoredAny>` reads them).
    let mut legacy: [Option<bool>; 3] = [None; 3];
    if bytes.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        loop {
            // A key without escapes or control characters; anything else goes the long way.
            if bytes.get(pos) != Some(&b'"') {
                return None;
            }
            let start = pos + 1;
            let len = bytes
                .get(start..)?
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            if bytes[start + len] != b'"' {
                return None;
            }
            let key = &text[start..start + len];
            pos = skip_whitespace(bytes, start + len + 1);
            if bytes.get(pos) != Some(&b':') {
                return None;
            }
            pos = skip_whitespace(bytes, pos + 1);
            // `pos` only ever moves past ASCII, so it is a char boundary.
            let rest = text.get(pos..)?;
            let used = match key {
                "eventType" => once(&mut event_type, rest)?,
                "eventHash" => once(&mut event_hash, rest)?,
                "data" => {
                    if data.is_some() {
                        return None;
                    }
                    let (data_object::Checked, used) = value(rest)?;
                    data = Some(&rest[..used]);
                    used
                }
                "type" | "campaign" | "smsSid" => {
                    let slot = &mut legacy[match key {
                        "type" => 0,
                        "campaign" => 1,
                        _ => 2,
                    }];
                    if slot.is_some() {
                        return None;
                    }
                    let (marker, used) = value::<Option<IgnoredAny>>(rest)?;
                    *slot = Some(marker.is_some());
                    used
                }
                _ => value::<IgnoredAny>(rest)?.1,
            };
            pos = skip_whitespace(bytes, pos + used);
            match bytes.get(pos) {
                Some(b',') => pos = skip_whitespace(bytes, pos + 1),
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if skip_whitespace(bytes, pos) != bytes.len() {
        return None;
    }
    let data = data.map(|text| match raw_type(text) {
        "an object" => Ok(text),
        other => Err(other),
    });
    let present = |slot: Option<bool>| slot.unwrap_or(false).then_some(());
    let legacy = legacy_shape(
        &present(legacy[0]),
        &present(legacy[1]),
        &present(legacy[2]),
    );
    let (event_type, event_hash, data) = validate(event_type, event_hash, data, legacy).ok()?;
    Some(Envelope {
        event_type,
        event_hash,
        data: Cow::Borrowed(data),
    })
}

/// Reads a text field's value into `slot`, refusing a second occurrence.
fn once<'a>(slot: &mut Option<TextField<'a>>, rest: &'a str) -> Option<usize> {
    if slot.is_some() {
        return None;
    }
    let (field, used) = value(rest)?;
    *slot = Some(field);
    Some(used)
}

/// One JSON value at the start of `rest`, and how many bytes it took.
fn value<'a, T: Deserialize<'a>>(rest: &'a str) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<T>();
    let value = values.next()?.ok()?;
    Some((value, values.byte_offset()))
}

/// The position of the first byte at or after `pos` that is not JSON whitespace.
fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Fields = (String, String, String);

    /// What both parses make of a body, comparable.
    fn fields(envelope: Envelope<'_>) -> Fields {
        (
            envelope.event_type.into_owned(),
            envelope.event_hash.into_owned(),
            envelope.data.into_owned(),
        )
    }

    fn scanned(text: &str) -> Option<Fields> {
        scan(text).map(fields)
    }

    fn derived(text: &str) -> Option<Fields> {
        parse_derived(text).ok().map(fields)
    }

    #[test]
    fn the_usual_body_takes_the_single_pass() {
        let body = r#" {"eventType":"message.sent", "data" : {"To":"+1","n":[1,{"a":null}]},
            "eventHash":"h\u00e9","extra":{"x":[1e400]},"campaign":null} "#;
        let fields = scanned(body).expect("single pass");
        assert_eq!(Some(&fields), derived(body).as_ref());
        assert_eq!(fields.1, "h\u{e9}");
        assert_eq!(fields.2, r#"{"To":"+1","n":[1,{"a":null}]}"#);
    }

    #[test]
    fn what_the_single_pass_leaves_goes_the_long_way() {
        for body in [
            r#"{"event\u0054ype":"message.sent","data":{},"eventHash":"h"}"#, // escaped key: valid
            r#"{"eventType":"a","eventType":"b","data":{},"eventHash":"h"}"#, // duplicate: error
            r#"{"eventType":"a","data":{"x":1e400},"eventHash":"h"}"#,        // out of range: error
            r#"{"eventType":"a","data":{},"eventHash":"h"} x"#,               // trailing: error
            r#"{"eventType":"a","data":[],"eventHash":"h"}"#,                 // not an object
            r#"{"campaign":{},"from":"+1"}"#,                                 // legacy
        ] {
            assert_eq!(scanned(body), None, "{body}");
        }
        assert!(derived(r#"{"event\u0054ype":"t","data":{},"eventHash":"h"}"#).is_some());
    }

    /// A delivery's three members (values mostly valid) in any order, among extra members of
    /// every kind (repeated, escaped and legacy keys, values of every type), with odd whitespace,
    /// now and then a missing or wrong separator and trailing text.
    fn body() -> impl Strategy<Value = String> {
        let text = || {
            prop::sample::select(vec![
                r#""message.sent""#,
                r#""message.sent""#,
                r#""h\u00e9""#,
                r#""a\"b""#,
                r#""x""#,
                r#""y""#,
                r#""""#,
                r#""\ud800""#,
                "1",
                "null",
            ])
        };
        let object = prop::sample::select(vec![
            r#"{"To":"+1"}"#,
            r#"{"To":"+1"}"#,
            "{}",
            r#"{"x":[1,{"y":2.5e3}],"x":null}"#,
            r#"{ "a" : "\u00e9\n" }"#,
            r#"{"x":1e400}"#,
            "[]",
            "null",
            r#""{}""#,
        ]);
        let key = prop::sample::select(vec![
            r#""eventType""#,
            r#""eventHash""#,
            r#""data""#,
            r#""type""#,
            r#""campaign""#,
            r#""smsSid""#,
            r#""other""#,
            r#""even\u0074Hash""#,
            r#""""#,
        ]);
        let value = prop::sample::select(vec![
            r#""t""#,
            "{}",
            r#"{"a":[1e400]}"#,
            "[1,2]",
            "null",
            "-1.5",
            "true",
            r#"{"x":"#,
            "nul",
        ]);
        let space = || prop::sample::select(vec!["", " ", "\n\t", "\r "]);
        let required = (text(), object, text()).prop_map(|(t, d, h)| {
            vec![
                (r#""eventType""#.to_owned(), t.to_owned()),
                (r#""data""#.to_owned(), d.to_owned()),
                (r#""eventHash""#.to_owned(), h.to_owned()),
            ]
        });
        let extra = prop::collection::vec((key, value), 0..2).prop_map(|v| {
            v.into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        });
        let separator = prop::sample::select(vec![",", ",", ",", ",", ",", ",", ",", ",", "", ";"]);
        (
            required,
            extra,
            any::<prop::sample::Index>(),
            prop::collection::vec((space(), space(), separator), 6),
            prop::sample::select(vec!["", "", "", "", "", " x", "}"]),
        )
            .prop_map(|(required, extra, at, layout, tail)| {
                let mut members = required;
                let split = at.index(members.len() + 1);
                let tail_members = members.split_off(split);
                members.extend(extra);
                members.extend(tail_members);
                let n = members.len();
                let mut body = String::from("{");
                for (i, (k, v)) in members.into_iter().enumerate() {
                    let (s1, s2, sep) = layout[i % layout.len()];
                    body.push_str(&format!("{s1}{k}{s2}:{s1}{v}{s2}"));
                    if i + 1 < n {
                        body.push_str(sep);
                    }
                }
                body.push_str(&format!("}}{tail}"));
                body
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever the single pass accepts, the derived parse accepts with the same result.
        #[test]
        fn the_single_pass_agrees_with_the_derived_parse(body in body()) {
            if let Some(fields) = scanned(&body) {
                prop_assert_eq!(Some(fields), derived(&body), "{}", body);
            }
        }
    }
}
