//! The checks both parses share (the single pass in `envelope` and `Deserialize for WebhookEvent`),
//! in the order their errors take precedence.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use super::data_object::CheckedVisitor;
use super::error::{wrong_type, LegacyShape, ParseError};
use super::MAX_FIELD_LEN;

/// `eventType` or `eventHash` as read off the wire: its text, or the JSON type found instead.
pub(crate) enum TextField<'a> {
    Text(Cow<'a, str>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for TextField<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> serde::de::Visitor<'de> for TextVisitor {
    type Value = TextField<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<TextField<'de>, E> {
        Ok(TextField::Text(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<TextField<'de>, E> {
        Ok(TextField::Text(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<TextField<'de>, E> {
        Ok(TextField::Text(Cow::Owned(s)))
    }

    // A value of the wrong type is still read as strictly as any other (numbers in range, depth),
    // so that what is not JSON `serde_json` can read is reported as such, as the owned parse does.
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        access: A,
    ) -> Result<TextField<'de>, A::Error> {
        CheckedVisitor { depth: 0 }.visit_map(access)?;
        Ok(TextField::Other("an object"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        access: A,
    ) -> Result<TextField<'de>, A::Error> {
        CheckedVisitor { depth: 0 }.visit_seq(access)?;
        Ok(TextField::Other("an array"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<TextField<'de>, E> {
        Ok(TextField::Other("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<TextField<'de>, E> {
        Ok(TextField::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<TextField<'de>, E> {
        Ok(TextField::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<TextField<'de>, E> {
        Ok(TextField::Other("a number"))
    }

    fn visit_unit<E>(self) -> Result<TextField<'de>, E> {
        Ok(TextField::Other("null"))
    }
}

pub(crate) fn legacy_shape<T>(
    legacy_type: &Option<T>,
    campaign: &Option<T>,
    sms_sid: &Option<T>,
) -> Option<LegacyShape> {
    if campaign.is_some() {
        Some(if legacy_type.is_some() {
            LegacyShape::CampaignWithType
        } else {
            LegacyShape::Campaign
        })
    } else if sms_sid.is_some() {
        Some(LegacyShape::DeliveryReceipt)
    } else {
        None
    }
}

/// Refuses what no real delivery carries and no store could keep as a key: a field longer than
/// [`MAX_FIELD_LEN`] (PostgreSQL indexes at most 2,704 bytes per row), or a NUL (PostgreSQL text
/// cannot hold one). Accepted, either would be answered 503 and retried by the sender for ever.
///
/// A NUL is looked for only in a string that was `unescaped` (owned, not borrowed): JSON carries
/// one only as the escape `\u0000` (a raw control character is invalid JSON), and a string with
/// no escape is borrowed from the body as is. So the usual delivery costs no scan. A NUL that
/// another deserializer lets through borrowed still stops at the store
/// (`NewDelivery::check_fields`).
fn check_field(field: &'static str, value: &str, unescaped: bool) -> Result<(), ParseError> {
    const _: () = assert!(MAX_FIELD_LEN == 1024, "the message below names the limit");
    if value.len() > MAX_FIELD_LEN {
        return Err(ParseError::InvalidField {
            field,
            problem: "is longer than 1024 bytes",
        });
    }
    if unescaped && value.contains('\0') {
        return Err(ParseError::InvalidField {
            field,
            problem: "contains a NUL character",
        });
    }
    Ok(())
}

/// The checks common to both parses, in the order their errors take precedence. `data` is the
/// object (`Ok`) or the JSON type found instead (`Err`).
pub(crate) fn validate<'a, D>(
    event_type: Option<TextField<'a>>,
    event_hash: Option<TextField<'a>>,
    data: Option<Result<D, &'static str>>,
    legacy: Option<LegacyShape>,
) -> Result<(Cow<'a, str>, Cow<'a, str>, D), ParseError> {
    let event_type = match event_type {
        Some(TextField::Text(s)) => s,
        Some(TextField::Other(found)) => return Err(wrong_type("eventType", "a string", found)),
        None => {
            if event_hash.is_none() {
                if let Some(shape) = legacy {
                    return Err(ParseError::Legacy(shape));
                }
            }
            return Err(ParseError::MissingField { field: "eventType" });
        }
    };
    if event_type.is_empty() {
        return Err(ParseError::EmptyField { field: "eventType" });
    }
    let event_hash = match event_hash {
        Some(TextField::Text(s)) if s.is_empty() => {
            return Err(ParseError::EmptyField { field: "eventHash" })
        }
        Some(TextField::Text(s)) => s,
        Some(TextField::Other(found)) => return Err(wrong_type("eventHash", "a string", found)),
        None => return Err(ParseError::MissingField { field: "eventHash" }),
    };
    check_field(
        "eventType",
        &event_type,
        matches!(event_type, Cow::Owned(_)),
    )?;
    check_field(
        "eventHash",
        &event_hash,
        matches!(event_hash, Cow::Owned(_)),
    )?;
    let data = match data {
        Some(Ok(data)) => data,
        Some(Err(found)) => return Err(wrong_type("data", "an object", found)),
        None => return Err(ParseError::MissingField { field: "data" }),
    };
    Ok((event_type, event_hash, data))
}
