//! What a delete's answer means. Any 2xx is a delete done, whatever its body says (the API answers
//! `{"success", "message"}`, the deleted object, `true`, text, or nothing), unless the body says
//! `success: false`. A `404` to a retry, after an attempt whose outcome is unknown, is a delete
//! most likely done by that attempt.

use serde_json::Value;

use super::error::{truncate, ClientError, MAX_ERROR_BODY_CHARS};
use super::types::WebhookDeleteResponse;

/// The outcome of `DELETE …/{id}`, from what the transport returned.
pub(crate) fn delete_outcome(
    id: &str,
    sent: Result<Option<Value>, ClientError>,
) -> Result<WebhookDeleteResponse, ClientError> {
    match sent {
        Ok(answer) => Ok(answered(id, answer)),
        // The integration is gone, which is what was asked; the earlier attempt most likely did
        // it. Reported as an error, a cleanup script would fail on a delete that worked.
        Err(ClientError::Api(error)) if error.status == 404 && error.after_unknown_outcome => {
            Ok(WebhookDeleteResponse {
                success: true,
                message: format!(
                    "integration {id} not found when the delete was retried: an earlier attempt \
                     got no clear answer (a timeout, a lost connection or a server error) and \
                     most likely deleted it"
                ),
                not_found_on_retry: true,
            })
        }
        // A 2xx whose body could not be read (over the size limit, or a custom transport's
        // decode error): the status says the delete happened. The reason is ours, not the body.
        Err(ClientError::Decode { reason, .. }) => Ok(WebhookDeleteResponse::new(
            true,
            format!("integration {id} deleted (its answer could not be read: {reason})"),
        )),
        Err(other) => Err(other),
    }
}

/// A 2xx answer's meaning: deleted, unless it says `success: false` (or is `false`).
fn answered(id: &str, answer: Option<Value>) -> WebhookDeleteResponse {
    let done = || format!("integration {id} deleted");
    match answer {
        Some(Value::Bool(false)) => {
            WebhookDeleteResponse::new(false, "the API answered false without saying why")
        }
        Some(Value::String(text)) => {
            WebhookDeleteResponse::new(true, text_message(id, &text).unwrap_or_else(done))
        }
        Some(Value::Object(fields)) => {
            let message = fields.get("message").and_then(message_text);
            match fields.get("success").and_then(flag) {
                Some(false) => WebhookDeleteResponse::new(
                    false,
                    message.unwrap_or_else(|| {
                        "the API answered success: false without saying why".to_owned()
                    }),
                ),
                // `true`, no `success` field (the deleted object), or one that says neither
                // yes nor no: the status decides.
                _ => WebhookDeleteResponse::new(true, message.unwrap_or_else(done)),
            }
        }
        // No body, `null`, `true`, a number, an array.
        _ => WebhookDeleteResponse::new(true, done()),
    }
}

/// A `success` field's yes or no: a boolean, or one written as a string or as `1`/`0`.
fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A `message` field as one line: a string as is, anything else as its JSON text.
fn message_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => one_line(text),
        other => one_line(&other.to_string()),
    }
}

/// A body that was not JSON (or a bare JSON string), as the message. An HTML page says nothing
/// worth showing but may mean the base URL is a web site rather than the API: say so.
fn text_message(id: &str, text: &str) -> Option<String> {
    if text.trim_start().starts_with('<') {
        return Some(format!(
            "integration {id} deleted (the API answered an HTML page rather than JSON: if it is \
             still listed, check the base URL)"
        ));
    }
    one_line(text)
}

/// `text` on one line (control characters as spaces), trimmed and cut to a readable length;
/// `None` when nothing is left.
fn one_line(text: &str) -> Option<String> {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    (!line.is_empty()).then(|| truncate(line, MAX_ERROR_BODY_CHARS))
}

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::json;

    use super::*;
    use crate::api::ApiError;

    fn answered_with(answer: Option<Value>) -> WebhookDeleteResponse {
        delete_outcome("5", Ok(answer)).expect("a 2xx is never an error")
    }

    #[test]
    fn any_2xx_is_a_delete_done_unless_it_says_otherwise() {
        let explicit = answered_with(Some(json!({"success": false, "message": "nope"})));
        assert_eq!(explicit, WebhookDeleteResponse::new(false, "nope"));
        let object = answered_with(Some(json!({"id": 5, "url": "u"})));
        assert_eq!(
            object,
            WebhookDeleteResponse::new(true, "integration 5 deleted")
        );
        assert!(answered_with(None).success);
        assert!(answered_with(Some(json!(null))).success);
        assert!(answered_with(Some(json!([1]))).success);
        let refused = answered_with(Some(json!(false)));
        assert!(!refused.success);
        assert!(!refused.message.is_empty(), "says why it failed");
    }

    #[test]
    fn a_success_flag_written_as_text_or_a_number_is_read() {
        for (success, expected) in [
            (json!("true"), true),
            (json!(" TRUE "), true),
            (json!(1), true),
            (json!("false"), false),
            (json!(0), false),
            // Neither yes nor no: the 2xx status decides.
            (json!("done"), true),
            (json!(null), true),
            (json!(7), true),
        ] {
            let deleted = answered_with(Some(json!({"success": success, "message": "m"})));
            assert_eq!(deleted.success, expected, "{success}");
            assert_eq!(deleted.message, "m", "{success}");
        }
    }

    #[test]
    fn text_is_the_message_on_one_line_and_html_is_described() {
        assert_eq!(answered_with(Some(json!("OK"))).message, "OK");
        assert_eq!(
            answered_with(Some(json!("deleted\nall\u{1b}[2J"))).message,
            "deleted all [2J"
        );
        assert_eq!(
            answered_with(Some(json!("  "))).message,
            "integration 5 deleted"
        );
        let long = answered_with(Some(json!("x".repeat(2000)))).message;
        assert_eq!(long.chars().count(), MAX_ERROR_BODY_CHARS + 1);
        let html = answered_with(Some(json!("<!doctype html><html>Welcome</html>")));
        assert!(html.success);
        assert!(html.message.contains("HTML page"), "{}", html.message);
        assert!(!html.message.contains("Welcome"), "{}", html.message);
        let numeric = answered_with(Some(json!({"message": 42})));
        assert_eq!(numeric.message, "42");
    }

    #[test]
    fn a_404_is_gone_only_after_an_attempt_with_an_unknown_outcome() {
        let first = ApiError::new(Method::DELETE, "/x/5", 404, "");
        let err = delete_outcome("5", Err(first.clone().into())).unwrap_err();
        assert_eq!(err.status(), Some(404));
        let mut retried = first;
        retried.after_unknown_outcome = true;
        let gone = delete_outcome("5", Err(retried.clone().into())).unwrap();
        assert!(gone.success && gone.not_found_on_retry, "{gone:?}");
        assert!(gone.message.contains("most likely"), "{}", gone.message);
        // Any other status after such an attempt is still the error it is.
        retried.status = 409;
        assert!(delete_outcome("5", Err(retried.into())).is_err());
    }

    #[test]
    fn an_unreadable_2xx_is_a_delete_done() {
        let unreadable = ClientError::Decode {
            method: Method::DELETE,
            path: "/x/5".into(),
            reason: "too large".into(),
        };
        let deleted = delete_outcome("5", Err(unreadable)).unwrap();
        assert!(deleted.success);
        assert!(deleted.message.contains("too large"), "{}", deleted.message);
    }
}
