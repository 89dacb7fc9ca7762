//! Human-readable output: tables of integrations, one line per received event.

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

/// Integrations as a table; the secret column says whether one is set, never what it is.
pub(crate) fn integrations(list: &[WebhookResponse]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|w| {
            vec![
                w.id.to_string(),
                w.url.clone(),
                w.method.to_string(),
                w.integration_type.clone(),
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

/// The key fields of an event on one line: type, then what matters for that type.
pub(crate) fn event_summary(event: &WebhookEvent) -> String {
    let data = event.data.as_map();
    let text = |key: &str| -> Option<String> {
        match data.get(key)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut parts: Vec<String> = Vec::new();
    let mut push = |label: &str, key: &str| {
        if let Some(v) = text(key) {
            parts.push(format!("{label}={}", quote_if_needed(&v)));
        }
    };
    match event.event_type.as_str() {
        "message.sent" => {
            push("to", "To");
            push("status", "MessageStatus");
            push("segments", "Segments");
            push("price", "TotalPrice");
        }
        "message.incoming" | "message.received" => {
            push("from", "From");
            push("to", "To");
            push("message", "Message");
        }
        "message.excluded" => {
            push("to", "To");
            push("reason", "ExcludedReason");
        }
        "message.error.carrier" | "message.error.cloudcontact" => {
            push("to", "To");
            push("code", "ErrorCode");
            push("error", "ErrorMessage");
        }
        _ => {
            push("campaign", "CampaignTitle");
            let keys: Vec<&str> = data.keys().map(String::as_str).take(6).collect();
            parts.push(format!("fields={}", keys.join(",")));
            return parts.join(" ");
        }
    }
    push("campaign", "CampaignTitle");
    parts.join(" ")
}

fn quote_if_needed(value: &str) -> String {
    let short: String = value.chars().take(60).collect();
    let short = if short.len() < value.len() {
        format!("{short}…")
    } else {
        short
    };
    if short.contains(char::is_whitespace) || short.contains('"') {
        format!("{short:?}")
    } else {
        short
    }
}

/// The first 12 characters of a hash, enough to tell deliveries apart.
pub(crate) fn short_hash(hash: &str) -> String {
    hash.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
