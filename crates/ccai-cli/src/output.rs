//! Human-readable output: tables of integrations, one line per received event.

use std::fmt::Display;

use ccai::event::EventData;
use ccai::webhook::{WebhookEvent, WebhookResponse};
use serde_json::Value;

/// A plain text table with a header row, columns padded to their widest cell.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Integrations as a table; the secret column says whether one is set, never what it is. Every
/// cell the API sent is escaped (see [`escape`]): no escape sequence reaches the terminal, and no
/// line break in a URL forges a row.
pub(crate) fn integrations(list: &[WebhookResponse]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|w| {
            vec![
                escape(&w.id.to_string()),
                escape(&w.url),
                escape(&w.method.to_string()),
                escape(&w.integration_type),
                if w.secret_key.is_some() { "set" } else { "-" }.to_owned(),
            ]
        })
        .collect();
    table(&["ID", "URL", "METHOD", "TYPE", "SECRET"], &rows)
}

/// JSON of an integration without its secret (printing it is only done on request).
pub(crate) fn integration_json(w: &WebhookResponse) -> Value {
    let mut value = serde_json::to_value(w).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.remove("secretKey");
    }
    value
}

/// The key fields of an event on one line: what matters for its type, then the campaign. Types
/// the library does not model (and data it cannot type) list their field names instead.
pub(crate) fn event_summary(event: &WebhookEvent) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |label: &str, value: Option<&dyn Display>| {
        let value = value.map(ToString::to_string).filter(|v| !v.is_empty());
        if let Some(v) = value {
            parts.push(format!("{label}={}", quote_if_needed(&v)));
        }
    };
    let campaign = match event.typed_data() {
        Ok(EventData::Sent(m)) => {
            push("to", shown(&m.to));
            push("status", shown(&m.message_status));
            push("segments", shown(&m.segments));
            push("price", shown(&m.total_price));
            m.campaign_title
        }
        Ok(EventData::Incoming(m)) => {
            push("from", shown(&m.from));
            push("to", shown(&m.to));
            push("message", shown(&m.message));
            m.campaign_title
        }
        Ok(EventData::Excluded(m)) => {
            push("to", shown(&m.to));
            push("reason", shown(&m.excluded_reason));
            m.campaign_title
        }
        Ok(EventData::ErrorCarrier(m) | EventData::ErrorCloudcontact(m)) => {
            push("to", shown(&m.to));
            push("code", shown(&m.error_code));
            push("error", shown(&m.error_message));
            m.campaign_title
        }
        _ => {
            let data = event.data.as_map();
            let campaign = match data.get("CampaignTitle") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            push("campaign", shown(&campaign));
            let keys: Vec<String> = data
                .keys()
                .take(6)
                .map(|key| escape(&shorten(key, 30)))
                .collect();
            let more = if data.len() > 6 { ",…" } else { "" };
            parts.push(format!("fields={}{more}", keys.join(",")));
            return parts.join(" ");
        }
    };
    push("campaign", shown(&campaign));
    parts.join(" ")
}

/// An optional field as something to print.
fn shown<T: Display>(value: &Option<T>) -> Option<&dyn Display> {
    value.as_ref().map(|v| v as &dyn Display)
}

/// A value as one safe word of a summary line: at most 60 characters of it, escaped (see
/// [`escape`]), in quotes if it holds spaces or quotes.
fn quote_if_needed(value: &str) -> String {
    let short = escape(&shorten(value, 60));
    if short.contains(char::is_whitespace) || short.contains('"') {
        format!("\"{}\"", short.replace('"', "\\\""))
    } else {
        short
    }
}

/// `n` and the noun for that many: `1 delivery`, `2 deliveries`, `0 deliveries`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `value` cut to `max` characters, with `…` when something was cut.
pub(crate) fn shorten(value: &str, max: usize) -> String {
    let mut chars = value.chars();
    let short: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{short}…")
    } else {
        short
    }
}

/// Whether a terminal could act on `c` rather than show it: control characters (C0, DEL, C1:
/// escape sequences, bells, backspaces, line breaks), the Unicode line and paragraph separators,
/// and the bidirectional overrides, embeddings, isolates and marks that reorder what follows.
pub(crate) fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' // LRM, RLM, ALM
                | '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{202a}'..='\u{202e}' // embeddings and overrides
                | '\u{2066}'..='\u{2069}' // isolates
        )
}

/// Standard output made inert for a terminal, whatever wrote it: every character of
/// [`is_unsafe_char`] other than the C0 controls (DEL, the C1 controls, the line separators and
/// the bidirectional controls) written as the JSON escape `\uXXXX`. serde_json writes these as
/// they are, so `--json` lines could carry a C1 escape sequence or a right-to-left override to
/// the terminal; they occur only inside JSON strings, where the escape is the same value. Text
/// lines have been escaped already (C0 too), so this leaves them as they are.
pub(crate) fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    let acts = |c: char| is_unsafe_char(c) && u32::from(c) >= 0x7f;
    if !text.chars().any(acts) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if acts(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Text from a delivery made inert for a terminal line: every character of [`is_unsafe_char`]
/// written as `\n`, `\r`, `\t` or `\u{…}`, the rest as is. `--json` output never goes through
/// this: it stays exact (only [`inert`] applies to it).
pub(crate) fn escape(text: &str) -> String {
    escape_keeping(text, false)
}

/// Like [`escape`], but `keep_layout` keeps newlines and tabs (for a multi-line body).
pub(crate) fn escape_keeping(text: &str, keep_layout: bool) -> String {
    if !text.chars().any(is_unsafe_char) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\t' if keep_layout => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// An event's type for a text line: escaped, and at most 40 characters of it (a type CloudContactAI
/// sends is a short dotted name; anything else is shown, but cannot fill the screen).
pub(crate) fn event_type(event: &WebhookEvent) -> String {
    event_type_text(event.event_type.as_str())
}

/// [`event_type`] for a type as a store keeps it.
pub(crate) fn event_type_text(event_type: &str) -> String {
    escape(&shorten(event_type, 40))
}

/// The first 12 characters of a hash, enough to tell deliveries apart; escaped.
pub(crate) fn short_hash(hash: &str) -> String {
    escape(&hash.chars().take(12).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_the_singular_and_the_plural() {
        assert_eq!(count(0, "delivery", "deliveries"), "0 deliveries");
        assert_eq!(count(1, "delivery", "deliveries"), "1 delivery");
        assert_eq!(count(2, "attempt", "attempts"), "2 attempts");
    }

    #[test]
    fn table_pads_columns() {
        let t = table(
            &["ID", "URL"],
            &[
                vec!["1".into(), "https://a".into()],
                vec!["12345".into(), "b".into()],
            ],
        );
        assert_eq!(t, "ID     URL\n1      https://a\n12345  b");
    }

    #[test]
    fn summary_quotes_text_with_spaces() {
        let event = ccai::webhook::parse_event(
            br#"{"eventType":"message.incoming","eventHash":"h","data":{"From":"+1","Message":"see you"}}"#,
        )
        .unwrap();
        assert_eq!(event_summary(&event), "from=+1 message=\"see you\"");
    }

    fn summary_of(event_type: &str, data: &str) -> String {
        let body = format!(r#"{{"eventType":"{event_type}","eventHash":"h","data":{data}}}"#);
        event_summary(&ccai::webhook::parse_event(body.as_bytes()).unwrap())
    }

    #[test]
    fn summary_of_message_sent() {
        assert_eq!(
            summary_of(
                "message.sent",
                r#"{"SmsSid":12345,"To":"+14155550100","MessageStatus":"DELIVERED","Message":"Hi there","Segments":2,"TotalPrice":0.0079,"CampaignTitle":"Appointment reminders"}"#
            ),
            "to=+14155550100 status=DELIVERED segments=2 price=0.0079 campaign=\"Appointment reminders\""
        );
        assert_eq!(
            summary_of("message.sent", r#"{"To":"","Segments":"3","TotalPrice":0}"#),
            "segments=3 price=0"
        );
    }

    #[test]
    fn summary_of_message_incoming_and_its_legacy_name() {
        let data = r#"{"SmsSid":0,"From":"+14155550100","To":"+14155550199","Message":"Yes, see you then!","CustomData":"","CampaignTitle":"Reminders"}"#;
        let expected =
            "from=+14155550100 to=+14155550199 message=\"Yes, see you then!\" campaign=Reminders";
        assert_eq!(summary_of("message.incoming", data), expected);
        assert_eq!(summary_of("message.received", data), expected);
    }

    #[test]
    fn summary_of_message_excluded() {
        assert_eq!(
            summary_of(
                "message.excluded",
                r#"{"To":"+14155550100","MessageStatus":"EXCLUDED","ExcludedReason":"Contact opted out","CampaignTitle":""}"#
            ),
            "to=+14155550100 reason=\"Contact opted out\""
        );
    }

    #[test]
    fn summary_of_message_error_carrier() {
        assert_eq!(
            summary_of(
                "message.error.carrier",
                r#"{"To":"+14155550100","ErrorCode":"30008","ErrorMessage":"Unknown destination handset","ErrorType":"carrier","CampaignTitle":"Promo"}"#
            ),
            "to=+14155550100 code=30008 error=\"Unknown destination handset\" campaign=Promo"
        );
    }

    #[test]
    fn summary_of_message_error_cloudcontact() {
        assert_eq!(
            summary_of(
                "message.error.cloudcontact",
                r#"{"To":"+14155550100","ErrorCode":1001,"ErrorMessage":"Insufficient account balance","ErrorType":"cloudcontact"}"#
            ),
            "to=+14155550100 code=1001 error=\"Insufficient account balance\""
        );
    }

    #[test]
    fn summary_of_an_unknown_type_lists_its_fields() {
        assert_eq!(
            summary_of(
                "contact.unsubscribed",
                r#"{"Phone":"+14155550100","CampaignTitle":"Promo","Reason":"STOP"}"#
            ),
            "campaign=Promo fields=CampaignTitle,Phone,Reason"
        );
        assert_eq!(summary_of("contact.unsubscribed", "{}"), "fields=");
    }

    const HOSTILE: &str =
        "\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mred\u{9b}1m\u{202e}txt\u{2066}\u{7f}";

    fn assert_inert(text: &str) {
        assert!(!text.chars().any(is_unsafe_char), "{text:?}");
    }

    #[test]
    fn summary_of_an_escape_sequence_is_inert() {
        let data = serde_json::json!({"From": HOSTILE, "To": "+1", "Message": HOSTILE, "CampaignTitle": HOSTILE});
        let summary = summary_of("message.incoming", &data.to_string());
        assert_inert(&summary);
        assert!(summary.contains(r"message=\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mred\u{9b}1m\u{202e}txt\u{2066}\u{7f}"), "{summary}");
    }

    #[test]
    fn unknown_types_escape_their_field_names_and_the_type() {
        let data = serde_json::json!({HOSTILE: 1, "CampaignTitle": HOSTILE});
        let body = serde_json::json!({"eventType": HOSTILE, "eventHash": HOSTILE, "data": data})
            .to_string();
        let event = ccai::webhook::parse_event(body.as_bytes()).unwrap();
        let summary = event_summary(&event);
        assert_inert(&summary);
        assert!(summary.starts_with(r"campaign=\u{1b}]0;owned"), "{summary}");
        assert_inert(&event_type(&event));
        assert_inert(&short_hash(&event.event_hash));
        assert_eq!(short_hash("\u{1b}[2Jabc"), r"\u{1b}[2Jabc");
    }

    #[test]
    fn long_values_stay_short() {
        let many: serde_json::Map<String, Value> = (0..20)
            .map(|i| (format!("{}{i}", "k".repeat(100)), Value::Null))
            .collect();
        let body =
            serde_json::json!({"eventType": "x".repeat(500), "eventHash": "h", "data": many})
                .to_string();
        let event = ccai::webhook::parse_event(body.as_bytes()).unwrap();
        let summary = event_summary(&event);
        assert!(summary.chars().count() < 6 * 32 + 20, "{summary}");
        assert!(summary.ends_with(",…"), "{summary}");
        assert_eq!(event_type(&event).chars().count(), 41);
    }

    #[test]
    fn summary_shortens_long_text() {
        let long = "x".repeat(70);
        assert_eq!(
            summary_of(
                "message.incoming",
                &format!(r#"{{"From":"+1","Message":"{long}"}}"#)
            ),
            format!("from=+1 message={}…", "x".repeat(60))
        );
    }
}
