//! Property tests: signing round-trips, any change breaks verification, parsing never panics.

use ccai::webhook::{parse_event, sign, verify_signature, Verifier, WebhookEvent};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn non_empty() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("non-empty", |s| !s.is_empty())
}

/// Changes byte `index` of `s` to another byte that keeps it UTF-8 (flips between two ASCII
/// letters, or replaces a non-ASCII char's first byte's char with 'x').
fn mutate(s: &str, index: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let i = index % chars.len();
    let mut out = chars.clone();
    out[i] = if chars[i] == 'x' { 'y' } else { 'x' };
    out.into_iter().collect()
}

/// JSON text for a field value: valid values of every type (deep, escaped, big numbers), and
/// near-misses (out-of-range numbers, lone surrogates, bad escapes).
fn value_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap_or_default()),
        any::<String>().prop_map(|s| Value::String(s).to_string()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        prop::sample::select(vec![
            "1e400",
            "-1e400",
            "1e-400",
            "18446744073709551616",
            "-0",
            "1E+2",
            "0.1e1",
            r#""\ud800""#,
            r#""\udc00\ud800""#,
            r#""\ud83d\ude00""#,
            r#""\x""#,
            r#""\u12""#,
            "01",
            "1.",
            ".5",
            "+1",
            "nul",
            "[1,]",
            "{\"a\"}",
        ])
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((any::<String>(), inner), 0..4).prop_map(|v| {
                let fields: Vec<String> = v
                    .into_iter()
                    .map(|(k, v)| format!("{}:{v}", Value::String(k)))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `parse_event` only checks `data` and builds it later; it must accept exactly what a full
    /// parse accepts, and build the same fields.
    #[test]
    fn lazily_read_data_matches_a_full_parse(fields in prop::collection::vec(("[a-zA-Z]{1,6}", value_text()), 0..6)) {
        let data: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let body = format!(
            r#"{{"eventType":"message.sent","data":{{{}}},"eventHash":"h"}}"#,
            data.join(",")
        );
        let lazy = parse_event(body.as_bytes());
        let eager = serde_json::from_str::<WebhookEvent>(&body);
        // The full parse reads a lone surrogate escape as U+FFFD, as the official SDKs do (the
        // strategy's only lone ones are `\ud800` and `\udc00`).
        let full = serde_json::from_str::<Value>(
            &body.replace(r"\ud800", r"\ufffd").replace(r"\udc00", r"\ufffd"),
        );
        prop_assert_eq!(lazy.is_ok(), full.is_ok(), "{} {:?}", body, lazy.as_ref().err());
        prop_assert_eq!(eager.is_ok(), full.is_ok());
        if let (Ok(lazy), Ok(eager), Ok(full)) = (lazy, eager, full) {
            prop_assert_eq!(Value::Object(lazy.data.as_map().clone()), full["data"].clone());
            prop_assert_eq!(&lazy, &eager);
            let reparsed: Map<String, Value> = serde_json::from_str(lazy.data.json()).unwrap();
            prop_assert_eq!(&reparsed, lazy.data.as_map());
        }
    }

    #[test]
    fn sign_then_verify(client in non_empty(), hash in non_empty(), secret in non_empty()) {
        let signature = sign(&client, &hash, &secret);
        prop_assert_eq!(signature.len(), 44);
        prop_assert!(verify_signature(&signature, &client, &hash, &secret));
        // The verifier refuses padded settings (a likely mistake); everything else verifies.
        match Verifier::new(client.as_str(), &secret) {
            Ok(verifier) => prop_assert!(verifier.verify(&signature, &hash).is_ok()),
            Err(_) => prop_assert!(client.trim() != client || secret.trim() != secret),
        }
    }

    #[test]
    fn any_changed_input_fails(
        client in non_empty(), hash in non_empty(), secret in non_empty(), at in any::<usize>()
    ) {
        let signature = sign(&client, &hash, &secret);
        // One byte of the signature.
        let mut bytes = signature.clone().into_bytes();
        let i = at % bytes.len();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(!verify_signature(&changed, &client, &hash, &secret));
        // The event hash, the client id, the secret.
        prop_assert!(!verify_signature(&signature, &client, &mutate(&hash, at), &secret));
        prop_assert!(!verify_signature(&signature, &mutate(&client, at), &hash, &secret));
        prop_assert!(!verify_signature(&signature, &client, &hash, &mutate(&secret, at)));
    }

    #[test]
    fn parse_event_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&bytes);
    }

    #[test]
    fn parse_event_never_panics_on_json_like_text(text in r#"[\[\]{}":,a-zA-Z0-9 .\\-]{0,256}"#) {
        let _ = parse_event(text.as_bytes());
    }

    #[test]
    fn a_mistyped_event_type_is_read_as_strictly_as_data(depth in 100usize..140, big in any::<bool>()) {
        let leaf = if big { "1e400" } else { "1" };
        let body = format!(
            r#"{{"eventType":{}{leaf}{},"data":{{}},"eventHash":"h"}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let lazy = parse_event(body.as_bytes()).unwrap_err().to_string();
        let derived = serde_json::from_str::<WebhookEvent>(&body).unwrap_err().to_string();
        // Both say the same kind of thing: not readable JSON, or the wrong type.
        let kind = |m: &str| m.contains("must be a string");
        prop_assert_eq!(kind(&lazy), kind(&derived), "{} / {}", lazy, derived);
    }

    #[test]
    fn parse_event_handles_any_nesting(depth in 0usize..2000, open in prop::sample::select(vec!['[', '{'])) {
        let mut body = String::from(r#"{"eventType":"message.sent","eventHash":"h","data":{"x":"#);
        for _ in 0..depth {
            body.push(open);
            if open == '{' { body.push_str("\"k\":"); }
        }
        body.push('1');
        for _ in 0..depth {
            body.push(if open == '[' { ']' } else { '}' });
        }
        body.push_str("}}");
        let result = parse_event(body.as_bytes());
        // The same limit as reading a `WebhookEvent` with serde, and what is accepted reads back.
        let derived = serde_json::from_str::<WebhookEvent>(&body);
        prop_assert_eq!(result.is_ok(), derived.is_ok(), "depth {}", depth);
        if let Ok(event) = &result {
            let again = serde_json::to_string(event).unwrap();
            prop_assert!(serde_json::from_str::<WebhookEvent>(&again).is_ok(), "depth {}", depth);
        }
        // serde_json's depth limit is 128 (the envelope takes two levels); past it, a clear error.
        if depth < 120 {
            prop_assert!(result.is_ok(), "{:?}", result.err());
        } else if depth > 130 {
            let message = result.unwrap_err().to_string();
            prop_assert!(message.contains("recursion limit"), "{}", message);
        }
    }
}

/// Around serde_json's depth limit, `parse_event` and serde's `Deserialize` accept the same bodies,
/// and an accepted event reads back from its serialised form.
#[test]
fn the_depth_limit_is_the_same_for_both_parses() {
    let mut accepted = 0;
    for depth in 115..135 {
        for (open, close, key) in [("[", "]", ""), ("{", "}", r#""k":"#)] {
            let body = format!(
                r#"{{"eventType":"message.sent","eventHash":"h","data":{{"x":{}1{}}}}}"#,
                format!("{open}{key}").repeat(depth),
                close.repeat(depth)
            );
            let lazy = parse_event(body.as_bytes());
            let derived = serde_json::from_str::<WebhookEvent>(&body);
            assert_eq!(lazy.is_ok(), derived.is_ok(), "depth {depth} {open}");
            if let Ok(event) = lazy {
                accepted += 1;
                let again = serde_json::to_string(&event).unwrap();
                assert!(serde_json::from_str::<WebhookEvent>(&again).is_ok());
                assert!(event.data.as_map().contains_key("x"));
            }
        }
    }
    // The boundary is inside the range: some accepted, some not.
    assert!(accepted > 0 && accepted < 40, "{accepted}");
}
