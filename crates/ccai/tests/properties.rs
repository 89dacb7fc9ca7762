//! Property tests: signing round-trips, any change breaks verification, parsing never panics.

use ccai::webhook::{parse_event, sign, verify_signature, Verifier};
use proptest::prelude::*;

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

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
        // serde_json's depth limit is 128 (the envelope takes two levels); past it, a clear error.
        if depth < 120 {
            prop_assert!(result.is_ok(), "{:?}", result.err());
        } else if depth > 130 {
            let message = result.unwrap_err().to_string();
            prop_assert!(message.contains("recursion limit"), "{}", message);
        }
    }
}
