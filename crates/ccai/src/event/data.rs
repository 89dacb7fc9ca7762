//! Typed views of a delivery's `data`, one struct per event type.

use serde::Serialize;
use serde_json::{Map, Value};

use super::error::json_type;
use super::event_type::WebhookEventType;

/// A field of `data` that has a type no accessor can use (e.g. `"SmsSid": [1]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data field `{field}` must be {expected}, found {found}")]
#[non_exhaustive]
pub struct DataError {
    /// The wire (PascalCase) name of the field.
    pub field: &'static str,
    /// What the field must be.
    pub expected: &'static str,
    /// The JSON type found.
    pub found: &'static str,
}

/// `data` of a delivery, typed by its `eventType`. Obtained from
/// [`WebhookEvent::typed_data`](super::WebhookEvent::typed_data).
///
/// The raw map stays available on the event for fields not modelled here.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum EventData {
    /// `message.sent`.
    Sent(MessageSent),
    /// `message.incoming`, and its legacy name `message.received`.
    Incoming(MessageIncoming),
    /// `message.excluded`.
    Excluded(MessageExcluded),
    /// `message.error.carrier`.
    ErrorCarrier(MessageError),
    /// `message.error.cloudcontact`.
    ErrorCloudcontact(MessageError),
    /// Any other event type, with its data untouched.
    Unknown {
        /// The type as received.
        event_type: String,
        /// The data as received.
        data: Map<String, Value>,
    },
}

macro_rules! message_struct {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $read:ident($key:literal) ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        #[non_exhaustive]
        pub struct $name {
            /// `SmsSid` (some deliveries send `id` instead): CloudContactAI's message id.
            pub sms_sid: Option<i64>,
            /// `MessageStatus`, e.g. `DELIVERED`, `RECEIVED`, `FAILED`.
            pub message_status: Option<String>,
            /// `To`: the recipient's phone number.
            pub to: Option<String>,
            /// `Message`: the message text.
            pub message: Option<String>,
            /// `CustomData`: the sender's own string (`""` when unset).
            pub custom_data: Option<String>,
            /// `ClientExternalId`: the sender's id for the contact.
            pub client_external_id: Option<String>,
            /// `CampaignId` (`0` when none).
            pub campaign_id: Option<i64>,
            /// `CampaignTitle`.
            pub campaign_title: Option<String>,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $name {
            /// Reads the struct from a `data` map.
            pub fn from_map(data: &Map<String, Value>) -> Result<Self, DataError> {
                let f = Fields(data);
                Ok(Self {
                    sms_sid: match f.int("SmsSid")? {
                        Some(v) => Some(v),
                        None => f.int("id")?,
                    },
                    message_status: f.string("MessageStatus")?,
                    to: f.string("To")?,
                    message: f.string("Message")?,
                    custom_data: f.string("CustomData")?,
                    client_external_id: f.string("ClientExternalId")?,
                    campaign_id: f.int("CampaignId")?,
                    campaign_title: f.string("CampaignTitle")?,
                    $( $field: f.$read($key)?, )*
                })
            }
        }
    };
}

message_struct! {
    /// `data` of `message.sent`.
    MessageSent {
        /// `From`: the sending number, when present.
        from: Option<String> = string("From"),
        /// `Segments`: SMS segments billed.
        segments: Option<i64> = int("Segments"),
        /// `TotalPrice`: what the message cost.
        total_price: Option<f64> = float("TotalPrice"),
    }
}

message_struct! {
    /// `data` of `message.incoming` (and legacy `message.received`).
    MessageIncoming {
        /// `From`: the contact who wrote.
        from: Option<String> = string("From"),
    }
}

message_struct! {
    /// `data` of `message.excluded`.
    MessageExcluded {
        /// `ExcludedReason`: why the message was not sent.
        excluded_reason: Option<String> = string("ExcludedReason"),
    }
}

message_struct! {
    /// `data` of `message.error.carrier` and `message.error.cloudcontact`.
    MessageError {
        /// `ErrorCode`, e.g. `30008` or `CCAI-001` (numbers are rendered as strings).
        error_code: Option<String> = string_or_number("ErrorCode"),
        /// `ErrorMessage`.
        error_message: Option<String> = string("ErrorMessage"),
        /// `ErrorType`: `carrier` or `cloudcontact`.
        error_type: Option<String> = string("ErrorType"),
    }
}

impl EventData {
    /// Types `data` according to `event_type`.
    pub fn from_map(
        event_type: &WebhookEventType,
        data: &Map<String, Value>,
    ) -> Result<Self, DataError> {
        Ok(match event_type {
            WebhookEventType::MessageSent => Self::Sent(MessageSent::from_map(data)?),
            WebhookEventType::MessageIncoming | WebhookEventType::MessageReceived => {
                Self::Incoming(MessageIncoming::from_map(data)?)
            }
            WebhookEventType::MessageExcluded => Self::Excluded(MessageExcluded::from_map(data)?),
            WebhookEventType::MessageErrorCarrier => {
                Self::ErrorCarrier(MessageError::from_map(data)?)
            }
            WebhookEventType::MessageErrorCloudcontact => {
                Self::ErrorCloudcontact(MessageError::from_map(data)?)
            }
            WebhookEventType::Other(t) => match WebhookEventType::from(t.as_str()) {
                // `Other("message.sent")` built by hand: treat it as what it says.
                WebhookEventType::Other(_) => Self::Unknown {
                    event_type: t.clone(),
                    data: data.clone(),
                },
                known => return Self::from_map(&known, data),
            },
        })
    }
}

/// Lenient readers over the `data` map: absent or `null` is `None`.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, DataError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(mistyped(key, "a string", other)),
        }
    }

    fn string_or_number(&self, key: &'static str) -> Result<Option<String>, DataError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => exact_integer_text(n).map(Some).map_err(|found| DataError {
                field: key,
                expected: "a string, or a whole number (past 2^53 in plain digits, up to 64 bits)",
                found,
            }),
            Some(other) => Err(mistyped(key, "a string or a number", other)),
        }
    }

    fn int(&self, key: &'static str) -> Result<Option<i64>, DataError> {
        const EXPECTED: &str = "an integer or a string holding one";
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().and_then(whole))
                .map(Some)
                .ok_or_else(|| mistyped(key, EXPECTED, v)),
            // Some senders stringify numbers, floats included: `"1.0"` holds the integer 1.
            Some(Value::String(s)) => {
                let s = s.trim();
                match s.parse::<i64>() {
                    Ok(i) => Ok(Some(i)),
                    Err(_) => match s.parse::<f64>() {
                        Ok(f) if f.is_finite() => whole(f).map(Some).ok_or(DataError {
                            field: key,
                            expected: EXPECTED,
                            found: if f.fract() != 0.0 {
                                "a string holding a number with a fraction"
                            } else {
                                "a string holding a number too large to keep exactly"
                            },
                        }),
                        _ => Err(DataError {
                            field: key,
                            expected: EXPECTED,
                            found: "a string that is not a number",
                        }),
                    },
                }
            }
            Some(other) => Err(mistyped(key, EXPECTED, other)),
        }
    }

    fn float(&self, key: &'static str) -> Result<Option<f64>, DataError> {
        const EXPECTED: &str = "a number or a string holding one";
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| mistyped(key, EXPECTED, v)),
            Some(v @ Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| mistyped(key, EXPECTED, v)),
            Some(other) => Err(mistyped(key, EXPECTED, other)),
        }
    }
}

/// A number as the integer it holds, in plain digits (`30008`, also for `30008.0` or `3e4`); an
/// error (what was found) for a fraction, or for a number read as a float at or past 2^53, whose
/// digits may already be lost: `123456789012345678901234` must not come out as
/// `1.2345678901234568e+23`, nor `9007199254740993.0` as `9007199254740992` (the float both read as).
fn exact_integer_text(n: &serde_json::Number) -> Result<String, &'static str> {
    if let Some(i) = n.as_i64() {
        return Ok(i.to_string());
    }
    if let Some(u) = n.as_u64() {
        return Ok(u.to_string());
    }
    // 2^53: from there on, neighbouring integers read as the same float.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let f = n.as_f64().ok_or("a number that cannot be kept exactly")?;
    if f.fract() != 0.0 {
        Err("a number that cannot be kept exactly (it has a fraction)")
    } else if f.abs() >= EXACT {
        Err("a number that cannot be kept exactly (past 64 bits, or a float at or past 2^53)")
    } else {
        Ok(format!("{}", f as i64))
    }
}

/// A float's integer, when it has no fraction and is below 9e15 (under 2^53, where every
/// integer is still its own float).
fn whole(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() < 9e15).then_some(f as i64)
}

fn mistyped(field: &'static str, expected: &'static str, found: &Value) -> DataError {
    DataError {
        field,
        expected,
        found: match found {
            Value::String(_) => "a string that is not a number",
            other => json_type(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_code(raw: &str) -> Result<Option<String>, DataError> {
        let data: Map<String, Value> =
            serde_json::from_str(&format!(r#"{{"ErrorCode":{raw}}}"#)).expect("test JSON");
        MessageError::from_map(&data).map(|e| e.error_code)
    }

    #[test]
    fn an_error_code_written_as_a_float_is_kept_only_below_2_pow_53() {
        assert_eq!(error_code("30008.0"), Ok(Some("30008".to_owned())));
        assert_eq!(
            error_code("9007199254740991.0"),
            Ok(Some("9007199254740991".to_owned()))
        );
        // In plain digits, an integer is exact however large (up to 64 bits).
        assert_eq!(
            error_code("9007199254740993"),
            Ok(Some("9007199254740993".to_owned()))
        );
        // `9007199254740993.0` reads as this float too: its digits are not known.
        for lossy in [
            "9007199254740992.0",
            "9007199254740993.0",
            "-9007199254740992.0",
            "1e300",
            "-1e300",
        ] {
            let error = error_code(lossy).expect_err(lossy);
            assert_eq!(error.field, "ErrorCode");
            assert!(error.found.contains("2^53"), "{lossy}: {error}");
            assert!(
                error.to_string().contains("cannot be kept exactly"),
                "{lossy}: {error}"
            );
        }
        let fraction = error_code("1.5").expect_err("1.5");
        assert!(fraction.found.contains("fraction"), "{fraction}");
    }

    fn segments(raw: &str) -> Result<Option<i64>, DataError> {
        let data: Map<String, Value> =
            serde_json::from_str(&format!(r#"{{"Segments":{raw}}}"#)).expect("test JSON");
        MessageSent::from_map(&data).map(|e| e.segments)
    }

    #[test]
    fn an_integer_field_takes_a_string_holding_a_whole_float() {
        assert_eq!(segments(r#""1.0""#), Ok(Some(1)));
        assert_eq!(segments(r#"" 2.00 ""#), Ok(Some(2)));
        assert_eq!(segments(r#""3e2""#), Ok(Some(300)));
        assert_eq!(segments(r#""-4.0""#), Ok(Some(-4)));
        // As before: plain digits in a string, and whole floats as numbers.
        assert_eq!(segments(r#""12""#), Ok(Some(12)));
        assert_eq!(segments("1.0"), Ok(Some(1)));
    }

    #[test]
    fn an_integer_field_refuses_a_string_holding_a_fraction_and_says_so() {
        let error = segments(r#""1.5""#).expect_err("1.5");
        assert_eq!(error.field, "Segments");
        assert_eq!(
            error.to_string(),
            "data field `Segments` must be an integer or a string holding one, \
             found a string holding a number with a fraction"
        );
        let error = segments(r#""1e300""#).expect_err("1e300");
        assert!(error.found.contains("too large"), "{error}");
        for not_a_number in [r#""x""#, r#""NaN""#, r#""inf""#, r#""""#] {
            let error = segments(not_a_number).expect_err(not_a_number);
            assert_eq!(
                error.found, "a string that is not a number",
                "{not_a_number}"
            );
        }
        assert!(segments("1.5").is_err());
    }
}
