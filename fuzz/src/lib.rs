//! The fuzz targets, as plain functions of the input bytes: each panics when a property fails.
//! Driven by `src/main.rs` on stable, or by cargo-fuzz (`libfuzzer/`) on nightly.

use ccai::webhook::{parse_event, sign, Verifier, WebhookEvent};

mod redact;
pub use redact::redact;

/// The account and secret the `verify` target signs and verifies with.
pub const CLIENT_ID: &str = "1231";
/// See [`CLIENT_ID`].
pub const SECRET: &str = "fuzz-secret";

/// A target: its name and the function run on each input.
pub type Target = (&'static str, fn(&[u8]) -> Outcome);

/// What a target made of an input, coarsely: new outcomes keep an input in the corpus.
pub type Outcome = u64;

/// Every target.
pub const TARGETS: [Target; 5] = [
    ("parse", parse),
    ("verify", verify),
    ("agree", agree),
    ("round_trip", round_trip),
    ("redact", redact),
];

fn outcome_of<T, E: std::fmt::Display>(result: &Result<T, E>) -> Outcome {
    match result {
        Ok(_) => 1,
        // The error's wording without positions and payload: its first few words.
        Err(e) => {
            let text = e.to_string();
            let words: String = text
                .split_whitespace()
                .take(4)
                .collect::<Vec<_>>()
                .join(" ");
            fnv(words.as_bytes())
        }
    }
}

/// FNV-1a: a stable hash for outcomes and crash file names.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Parse, then read `data` as a map and as typed data.
pub fn parse(input: &[u8]) -> Outcome {
    let result = parse_event(input);
    if let Ok(event) = &result {
        let map = event.data.as_map();
        for key in map.keys() {
            assert!(event.data.get(key).is_some());
        }
        let text = event.data.json();
        let reparsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).expect("data's text is a readable object");
        assert_eq!(&reparsed, map);
        let typed = event.typed_data();
        return outcome_of(&result) ^ outcome_of(&typed).rotate_left(7) ^ (map.len() as u64) << 32;
    }
    outcome_of(&result)
}

/// Verification from a header and a body: the input's first line is the `X-CCAI-Signature`
/// header, the rest the body. Never panics; accepts only what the signature covers; a body that
/// parses verifies with its own signature and with no other.
pub fn verify(input: &[u8]) -> Outcome {
    let (header, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&input[..0], input),
    };
    let verifier = Verifier::new(CLIENT_ID, SECRET).expect("verifier");
    let header = String::from_utf8_lossy(header);
    let result = verifier.verify_event(Some(&header), body);
    if let Ok(event) = &result {
        assert_eq!(header, sign(CLIENT_ID, &event.event_hash, SECRET));
        assert_eq!(Ok(event), parse_event(body).as_ref());
    }
    if let Ok(event) = parse_event(body) {
        let good = sign(CLIENT_ID, &event.event_hash, SECRET);
        assert_eq!(
            verifier.verify_event(Some(&good), body).as_ref(),
            Ok(&event)
        );
        let other = sign(CLIENT_ID, &event.event_hash, "another-secret");
        assert!(verifier.verify_event(Some(&other), body).is_err());
    }
    outcome_of(&result)
}

/// `parse_event` and `Deserialize for WebhookEvent` (from_slice, from_str, from_reader) accept the
/// same inputs and make the same event.
pub fn agree(input: &[u8]) -> Outcome {
    let parsed = parse_event(input);
    let from_slice = serde_json::from_slice::<WebhookEvent>(input).ok();
    assert_eq!(
        parsed.as_ref().ok(),
        from_slice.as_ref(),
        "parse_event and from_slice disagree"
    );
    let from_reader = serde_json::from_reader::<_, WebhookEvent>(input).ok();
    assert_eq!(
        from_slice, from_reader,
        "from_slice and from_reader disagree"
    );
    if let Ok(text) = std::str::from_utf8(input) {
        let from_str = serde_json::from_str::<WebhookEvent>(text).ok();
        assert_eq!(from_slice, from_str, "from_slice and from_str disagree");
    }
    outcome_of(&parsed)
}

/// An accepted event's serialisation parses back equal (through both parses), and serialises to
/// the same text again.
pub fn round_trip(input: &[u8]) -> Outcome {
    let parsed = parse_event(input);
    if let Ok(event) = &parsed {
        let text = serde_json::to_string(event).expect("an event serialises");
        let again = parse_event(text.as_bytes())
            .unwrap_or_else(|e| panic!("the serialisation does not parse back ({e}): {text}"));
        assert_eq!(&again, event, "{text}");
        assert_eq!(again.data.as_map(), event.data.as_map(), "{text}");
        let derived: WebhookEvent = serde_json::from_str(&text).expect("Deserialize reads it back");
        assert_eq!(&derived, event);
        assert_eq!(serde_json::to_string(&again).expect("serialises"), text);
    }
    outcome_of(&parsed)
}
