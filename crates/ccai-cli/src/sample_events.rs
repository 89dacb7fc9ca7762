//! Realistic deliveries of each event type, as `ccai trigger` sends them (docs/protocol.md §2).

use anyhow::{bail, Result};
use ccai::event::{DataError, EventData};
use ccai::webhook::WebhookEventType;
use serde_json::{json, Map, Value};

/// The `data` of a plausible delivery of `event_type`.
pub(crate) fn data_for(event_type: &WebhookEventType) -> Result<Map<String, Value>> {
    let common = json!({
        "SmsSid": 12345,
        "MessageStatus": "DELIVERED",
        "To": "+14155550100",
        "Message": "Hello John, your appointment is confirmed for tomorrow at 10am.",
        "CustomData": "order-42",
        "ClientExternalId": "customer-7",
        "CampaignId": 98765,
        "CampaignTitle": "Appointment reminders",
    });
    let Value::Object(mut data) = common else {
        bail!("internal: sample is not an object");
    };
    let extra = match event_type {
        WebhookEventType::MessageSent => json!({"Segments": 1, "TotalPrice": 0.0079}),
        WebhookEventType::MessageIncoming | WebhookEventType::MessageReceived => json!({
            "SmsSid": 0,
            "MessageStatus": "RECEIVED",
            "From": "+14155550100",
            "To": "+14155550199",
            "Message": "Yes, see you then!",
            "CustomData": "",
        }),
        WebhookEventType::MessageExcluded => json!({
            "SmsSid": 0,
            "MessageStatus": "EXCLUDED",
            "ExcludedReason": "Contact opted out",
        }),
        WebhookEventType::MessageErrorCarrier => json!({
            "MessageStatus": "FAILED",
            "ErrorCode": "30008",
            "ErrorMessage": "Unknown destination handset",
            "ErrorType": "carrier",
        }),
        WebhookEventType::MessageErrorCloudcontact => json!({
            "MessageStatus": "FAILED",
            "ErrorCode": "CCAI-001",
            "ErrorMessage": "Insufficient account balance",
            "ErrorType": "cloudcontact",
        }),
        other => return Err(unknown_type(other)),
    };
    if let Value::Object(extra) = extra {
        data.extend(extra);
    }
    Ok(data)
}

/// The error for an event type `trigger` has no sample of: it lists the library's known types.
pub(crate) fn unknown_type(event_type: &WebhookEventType) -> anyhow::Error {
    let known: Vec<&str> = WebhookEventType::KNOWN
        .iter()
        .map(WebhookEventType::as_str)
        .collect();
    anyhow::anyhow!(
        "unknown event type {:?}: use one of {}",
        event_type.as_str(),
        known.join(", ")
    )
}

/// Applies `KEY=VALUE` overrides. A value replacing a number (or a new key) that reads as a JSON
/// number, boolean or null keeps that type; a JSON string literal (`"0.02"`, quotes included) is
/// that string; anything else is the text as a string. An integer too large for 64 bits is
/// refused: it would be sent as a float with other digits.
pub(crate) fn apply_overrides(data: &mut Map<String, Value>, overrides: &[String]) -> Result<()> {
    for item in overrides {
        let Some((key, raw)) = item.split_once('=') else {
            bail!("--set {item:?}: expected KEY=VALUE, e.g. --set To=+14155550123");
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("--set {item:?}: the key is empty");
        }
        let keep_string = matches!(data.get(key), Some(Value::String(_)));
        let value = match serde_json::from_str::<Value>(raw) {
            Ok(Value::String(text)) => Value::String(text),
            Ok(Value::Number(n))
                if !keep_string && n.is_f64() && !raw.contains(['.', 'e', 'E']) =>
            {
                bail!(
                    "--set {key}=…: the integer is too large to send exactly (past 64 bits); quote it to send it as a string: --set '{key}=\"…\"'"
                )
            }
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) if !keep_string => v,
            _ => Value::String(raw.to_owned()),
        };
        data.insert(key.to_owned(), value);
    }
    Ok(())
}

/// The fields of `data` that a receiver typing it ([`EventData::from_map`], what
/// `WebhookEvent::typed_data` calls) refuses, with why. Trigger sends them as given (how a
/// receiver handles a mistyped field is worth trying) but says so.
pub(crate) fn mistyped_fields(
    event_type: &WebhookEventType,
    data: &Map<String, Value>,
) -> Vec<DataError> {
    let mut left = data.clone();
    let mut found = Vec::new();
    // `from_map` stops at the first mistyped field: take it out and look again.
    while let Err(error) = EventData::from_map(event_type, &left) {
        let removed = left.remove(error.field).is_some();
        found.push(error);
        if !removed {
            break;
        }
    }
    found
}

/// A random 32-hex-character event hash.
pub(crate) fn random_event_hash() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot get random bytes for an event hash: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_keep_numbers_exact_and_read_quoted_strings() {
        let mut data = Map::new();
        data.insert("To".into(), Value::String("+1".into()));
        apply_overrides(
            &mut data,
            &[
                "TotalPrice=\"0.02\"".into(),
                "To=\"+14155550100\"".into(),
                "Big=18446744073709551615".into(),
                "Neg=-5".into(),
            ],
        )
        .unwrap();
        assert_eq!(data["TotalPrice"], Value::String("0.02".into()));
        assert_eq!(data["To"], Value::String("+14155550100".into()));
        assert_eq!(data["Big"].to_string(), "18446744073709551615");
        assert_eq!(data["Neg"], serde_json::json!(-5));
        let error = apply_overrides(&mut data, &["Big=123456789012345678901234567890".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("too large to send exactly"), "{error}");
        assert!(!error.contains("123456789012345678901234567890"), "{error}");
    }

    #[test]
    fn mistyped_fields_are_each_named() {
        let sent = WebhookEventType::MessageSent;
        let mut data = data_for(&sent).unwrap();
        assert!(mistyped_fields(&sent, &data).is_empty());
        apply_overrides(
            &mut data,
            &[
                "Segments=abc".into(),
                "TotalPrice=[1]".into(),
                "Extra=x".into(),
            ],
        )
        .unwrap();
        let fields: Vec<_> = mistyped_fields(&sent, &data)
            .iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["Segments", "TotalPrice"]);
    }

    #[test]
    fn every_known_type_has_a_sample_that_types_cleanly() {
        for event_type in WebhookEventType::KNOWN {
            let name = event_type.to_string();
            let data = data_for(&event_type).unwrap();
            let event = ccai::webhook::WebhookEvent::new(event_type, data, "h");
            assert!(event.typed_data().is_ok(), "{name}");
        }
        assert!(data_for(&WebhookEventType::from("sms.sent")).is_err());
    }

    #[test]
    fn overrides_keep_types() {
        let mut data = data_for(&WebhookEventType::MessageSent).unwrap();
        apply_overrides(
            &mut data,
            &[
                "CampaignId=7".into(),
                "To=+1555".into(),
                "Message=42".into(),
                "New=x=y".into(),
            ],
        )
        .unwrap();
        assert_eq!(data["CampaignId"], json!(7));
        assert_eq!(data["To"], json!("+1555"));
        assert_eq!(data["Message"], json!("42"));
        assert_eq!(data["New"], json!("x=y"));
        assert!(apply_overrides(&mut data, &["nokey".into()]).is_err());
    }
}
