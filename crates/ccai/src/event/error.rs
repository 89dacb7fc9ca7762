//! [`ParseError`]: why a body is not a delivery, and the wording shared by both parses.

use serde_json::Value;

/// Why a body is not a delivery. The message names the problem and never quotes the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is not UTF-8 (JSON must be).
    #[error("body is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    InvalidUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// The body is not JSON at all, or is cut short.
    #[error("body is not valid JSON: {reason}")]
    InvalidJson {
        /// serde_json's description with line and column (no payload text).
        reason: String,
    },
    /// The body is JSON, but not an object.
    #[error("body must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type found: `array`, `string`, …
        found: &'static str,
    },
    /// A required top-level field is absent.
    #[error("missing required field `{field}`")]
    MissingField {
        /// `eventType`, `data` or `eventHash`.
        field: &'static str,
    },
    /// A top-level field has the wrong JSON type.
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field's wire name.
        field: &'static str,
        /// What it must be: `a string`, `an object`.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A required string field is empty.
    #[error("field `{field}` must not be empty")]
    EmptyField {
        /// The field's wire name.
        field: &'static str,
    },
    /// A required string field holds what no delivery carries: more than
    /// [`MAX_FIELD_LEN`](super::MAX_FIELD_LEN) bytes, or a NUL character.
    #[error("field `{field}` {problem}")]
    InvalidField {
        /// The field's wire name.
        field: &'static str,
        /// What is wrong, e.g. `is longer than 1024 bytes`.
        problem: &'static str,
    },
    /// An older, unsigned payload shape that a verifying receiver must reject.
    #[error(
        "legacy payload shape ({0}) without `eventHash`: it is unsigned and cannot be verified"
    )]
    Legacy(LegacyShape),
}

/// The pre-`eventHash` payload shapes (`docs/protocol.md` §2, "Legacy shapes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyShape {
    /// `{"type", "campaign": {…}, "from", "to", "message"}`.
    #[error("campaign message with `type`")]
    CampaignWithType,
    /// `{"campaign": {…}, "from", "to", "message"}` (no `type`).
    #[error("campaign message without `type`")]
    Campaign,
    /// `{"smsSid", "totalPrice", "to", "messageStatus", "segments"}`.
    #[error("delivery receipt with `smsSid`")]
    DeliveryReceipt,
}

pub(crate) fn classify_non_object(text: &str) -> ParseError {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => ParseError::NotAnObject {
            found: json_type(&value),
        },
        Err(e) => json_error(e),
    }
}

pub(crate) fn json_error(e: serde_json::Error) -> ParseError {
    use serde_json::error::Category;
    let reason = match e.classify() {
        // Syntax and EOF messages describe position only.
        Category::Syntax | Category::Eof | Category::Io => e.to_string(),
        // "Data" errors from the derive quote the offending value ("invalid type: string \"…\""),
        // which may be payload; say where instead.
        Category::Data if e.to_string().starts_with("duplicate field") => {
            format!("{e} (a delivery must name each field once)")
        }
        Category::Data => format!(
            "unexpected value shape at line {} column {}",
            e.line(),
            e.column()
        ),
    };
    ParseError::InvalidJson { reason }
}

/// serde_json's message for `e` without the position it appends (` at line L column C`).
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&position) {
        Some(message) if e.line() != 0 => message.to_owned(),
        _ => text,
    }
}

/// An error `e` that reading `data`'s text on its own gave, worded so that it says it is in
/// `data` (a payload error, not the envelope's), with its position in `data`'s text.
pub(crate) fn in_data(e: &serde_json::Error) -> String {
    if e.line() == 0 {
        return format!("in `data`: {e}");
    }
    format!(
        "in `data`: {} at line {} column {} of `data`",
        message(e),
        e.line(),
        e.column()
    )
}

/// An error `e` that reading `data`'s text (`data`, a slice of `body`) on its own gave, as a
/// [`ParseError`] of the body: worded as [`json_error`] words it, at the body's line and column,
/// and saying it is in `data`.
pub(crate) fn data_error(body: &str, data: &str, e: &serde_json::Error) -> ParseError {
    use serde_json::error::Category;
    let what = match (e.classify(), message(e)) {
        // The check's own words (nesting too deep, a reserved key) quote nothing.
        (Category::Data, own) if own.starts_with("recursion limit") || own.contains("reserved") => {
            own
        }
        // As in `json_error`: another "data" error may quote the value.
        (Category::Data, _) => "unexpected value shape".to_owned(),
        (Category::Syntax | Category::Eof | Category::Io, message) => message,
    };
    let offset = (data.as_ptr() as usize)
        .checked_sub(body.as_ptr() as usize)
        .filter(|&offset| offset <= body.len());
    let reason = match (offset.and_then(|offset| body.get(..offset)), e.line()) {
        (_, 0) => format!("in `data`: {what}"),
        (Some(before), line) => {
            // serde_json counts lines from 1 and columns in bytes after the last newline.
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let (line, column) = if line == 1 {
                (
                    before.matches('\n').count() + 1,
                    before.len() - line_start + e.column(),
                )
            } else {
                (before.matches('\n').count() + line, e.column())
            };
            format!("in `data`: {what} at line {line} column {column}")
        }
        (None, _) => in_data(e),
    };
    ParseError::InvalidJson { reason }
}

pub(crate) fn wrong_type(
    field: &'static str,
    expected: &'static str,
    found: &'static str,
) -> ParseError {
    ParseError::WrongType {
        field,
        expected,
        found,
    }
}

/// The JSON type of a value, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_event, WebhookEvent};
    use super::*;

    /// An error in `data` says so, in each parse, so that it is not taken for the envelope's.
    #[test]
    fn an_error_inside_data_says_it_is_in_data() {
        let body =
            "{\"eventType\":\"message.sent\",\n\"eventHash\":\"h\",\n  \"data\":{\"a\":1e400}}";
        // The body's position, as a parse of the whole body gives it.
        let whole = serde_json::from_str::<Value>(body).expect_err("out of range");
        assert_eq!((whole.line(), whole.column()), (3, 19));
        assert_eq!(
            parse_event(body.as_bytes())
                .expect_err("out of range")
                .to_string(),
            "body is not valid JSON: in `data`: number out of range at line 3 column 19"
        );
        assert_eq!(
            serde_json::from_str::<WebhookEvent>(body)
                .expect_err("out of range")
                .to_string(),
            "in `data`: number out of range at line 1 column 10 of `data`"
        );
        // Further down `data`: the body's line, and the column on it.
        let body = "{\"eventType\":\"message.sent\",\"eventHash\":\"h\",\"data\":{\n\"b\":1,\n \"a\":1e400}}";
        let whole = serde_json::from_str::<Value>(body).expect_err("out of range");
        let reason = parse_event(body.as_bytes())
            .expect_err("out of range")
            .to_string();
        assert!(
            reason.ends_with(&format!(
                "in `data`: number out of range at line {} column {}",
                whole.line(),
                whole.column()
            )),
            "{reason}"
        );

        // Reading `data` into the caller's own type.
        #[derive(Debug, serde::Deserialize)]
        struct Sent {
            #[serde(rename = "Segments")]
            _segments: u32,
        }
        let event =
            parse_event(br#"{"eventType":"message.sent","eventHash":"h","data":{"Segments":"x"}}"#)
                .expect("a delivery");
        assert_eq!(
            event
                .data
                .deserialize::<Sent>()
                .expect_err("a string")
                .to_string(),
            "in `data`: invalid type: string \"x\", expected u32 at line 1 column 15 of `data`"
        );
    }

    /// Envelope errors do not mention `data`.
    #[test]
    fn an_envelope_error_does_not_say_data() {
        let body = br#"{"eventType":5,"eventHash":"h","data":{}}"#;
        for error in [
            parse_event(body).expect_err("mistyped").to_string(),
            serde_json::from_slice::<WebhookEvent>(body)
                .expect_err("mistyped")
                .to_string(),
        ] {
            assert!(!error.contains("in `data`"), "{error}");
        }
    }
}
