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
