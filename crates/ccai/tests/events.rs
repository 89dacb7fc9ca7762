//! Every sample delivery of the shared fixtures (copied into `fixtures/events.json`).

use ccai::webhook::{
    parse_event, sign, EventData, LegacyShape, ParseError, Verifier, VerifyError, WebhookEvent,
    WebhookEventType,
};
use serde_json::{Map, Value};

fn fixtures() -> Value {
    serde_json::from_str(include_str!("fixtures/events.json")).expect("fixture parses")
}

fn section(name: &str) -> Map<String, Value> {
    fixtures()[name].as_object().expect("section").clone()
}

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn parse(value: &Value) -> WebhookEvent {
    parse_event(&body(value)).expect("fixture delivery parses")
}

#[test]
fn each_event_type_parses_with_its_typed_fields() {
    let events = section("events");
    assert_eq!(events.len(), 6);
    for (name, value) in &events {
        let event = parse(value);
        assert_eq!(event.event_type.as_str(), name);
        assert!(event.event_type.is_known());
        assert_eq!(event.event_hash, value["eventHash"].as_str().unwrap());
        assert_eq!(&Value::Object(event.data.as_map().clone()), &value["data"]);
        // `data` keeps its exact text: a slice of the body.
        let text = String::from_utf8(body(value)).unwrap();
        assert!(text.contains(event.data.json()), "{name}");
        assert_eq!(
            serde_json::from_str::<Value>(event.data.json()).unwrap(),
            value["data"]
        );
    }

    match parse(&events["message.sent"]).typed_data().unwrap() {
        EventData::Sent(s) => {
            assert_eq!(s.sms_sid, Some(12345));
            assert_eq!(s.message_status.as_deref(), Some("DELIVERED"));
            assert_eq!(s.to.as_deref(), Some("+14155550100"));
            assert_eq!(
                s.message.as_deref(),
                Some("Hello John, your appointment is confirmed.")
            );
            assert_eq!(s.custom_data.as_deref(), Some("order-42"));
            assert_eq!(s.client_external_id.as_deref(), Some("customer-7"));
            assert_eq!(s.campaign_id, Some(98765));
            assert_eq!(s.campaign_title.as_deref(), Some("Appointment reminders"));
            assert_eq!(s.segments, Some(1));
            assert_eq!(s.total_price, Some(0.0079));
        }
        other => panic!("expected Sent, got {other:?}"),
    }
    match parse(&events["message.incoming"]).typed_data().unwrap() {
        EventData::Incoming(i) => {
            assert_eq!(i.sms_sid, Some(0));
            assert_eq!(i.from.as_deref(), Some("+14155550100"));
            assert_eq!(i.to.as_deref(), Some("+14155550199"));
            assert_eq!(i.message_status.as_deref(), Some("RECEIVED"));
            assert_eq!(i.custom_data.as_deref(), Some(""));
        }
        other => panic!("expected Incoming, got {other:?}"),
    }
    match parse(&events["message.excluded"]).typed_data().unwrap() {
        EventData::Excluded(e) => {
            assert_eq!(e.excluded_reason.as_deref(), Some("Contact opted out"));
            assert_eq!(e.campaign_id, Some(98766));
        }
        other => panic!("expected Excluded, got {other:?}"),
    }
    match parse(&events["message.error.carrier"])
        .typed_data()
        .unwrap()
    {
        EventData::ErrorCarrier(e) => {
            assert_eq!(e.error_code.as_deref(), Some("30008"));
            assert_eq!(
                e.error_message.as_deref(),
                Some("Unknown destination handset")
            );
            assert_eq!(e.error_type.as_deref(), Some("carrier"));
            assert_eq!(e.campaign_id, Some(0));
            assert_eq!(e.sms_sid, Some(12346));
        }
        other => panic!("expected ErrorCarrier, got {other:?}"),
    }
    match parse(&events["message.error.cloudcontact"])
        .typed_data()
        .unwrap()
    {
        EventData::ErrorCloudcontact(e) => {
            assert_eq!(e.error_code.as_deref(), Some("CCAI-001"));
            assert_eq!(e.error_type.as_deref(), Some("cloudcontact"));
            assert_eq!(e.client_external_id.as_deref(), Some(""));
        }
        other => panic!("expected ErrorCloudcontact, got {other:?}"),
    }
    let received = parse(&events["message.received"]);
    assert_eq!(received.event_type, WebhookEventType::MessageReceived);
    match received.typed_data().unwrap() {
        EventData::Incoming(i) => {
            assert_eq!(i.message.as_deref(), Some("STOP"));
            assert_eq!(i.sms_sid, None);
        }
        other => panic!("expected Incoming, got {other:?}"),
    }
}

#[test]
fn quirks_parse() {
    let quirks = section("quirks");
    assert_eq!(quirks.len(), 6);

    match parse(&quirks["sent-with-id-instead-of-SmsSid"])
        .typed_data()
        .unwrap()
    {
        EventData::Sent(s) => {
            assert_eq!(s.sms_sid, Some(142065));
            assert_eq!(s.total_price, Some(0.03));
        }
        other => panic!("{other:?}"),
    }
    match parse(&quirks["sent-with-string-numbers"])
        .typed_data()
        .unwrap()
    {
        EventData::Sent(s) => {
            assert_eq!(s.total_price, Some(0.01));
            assert_eq!(s.campaign_id, Some(123));
            assert_eq!(s.segments, Some(1));
            assert_eq!(s.from.as_deref(), Some("+15551234567"));
        }
        other => panic!("{other:?}"),
    }

    let unknown = parse(&quirks["unknown-event-type"]);
    assert_eq!(
        unknown.event_type,
        WebhookEventType::Other("contact.unsubscribed".into())
    );
    assert!(!unknown.event_type.is_known());
    match unknown.typed_data().unwrap() {
        EventData::Unknown { event_type, data } => {
            assert_eq!(event_type, "contact.unsubscribed");
            assert_eq!(data["ContactData"]["firstName"], "Jane");
        }
        other => panic!("{other:?}"),
    }
    // Unknown types round-trip byte for byte.
    let reserialised: Value = serde_json::to_value(&unknown).unwrap();
    assert_eq!(reserialised, quirks["unknown-event-type"]);

    let extra = parse(&quirks["extra-top-level-fields"]);
    assert_eq!(extra.event_type, WebhookEventType::MessageSent);
    assert_eq!(extra.event_hash, "4e90553f9801bdb5a4ffd95a5bb57ae6");

    match parse(&quirks["unicode-message"]).typed_data().unwrap() {
        EventData::Incoming(i) => {
            assert_eq!(i.message.as_deref(), Some("Grüße 👋 — ¿qué tal? 你好"))
        }
        other => panic!("{other:?}"),
    }
    match parse(&quirks["empty-data"]).typed_data().unwrap() {
        EventData::Sent(s) => assert_eq!(s, Default::default()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn legacy_shapes_are_rejected_by_name() {
    let legacy = section("legacy");
    let expect = [
        ("legacy-A-sdk-documented", LegacyShape::CampaignWithType),
        ("legacy-B-real-inbound-capture", LegacyShape::Campaign),
        ("legacy-C-delivery-receipt", LegacyShape::DeliveryReceipt),
    ];
    assert_eq!(legacy.len(), expect.len());
    for (name, shape) in expect {
        let err = parse_event(&body(&legacy[name])).unwrap_err();
        assert_eq!(err, ParseError::Legacy(shape), "{name}");
        assert!(err.to_string().contains("legacy"), "{err}");
        assert!(err.to_string().contains("cannot be verified"), "{err}");
    }
}

#[test]
fn malformed_bodies_get_specific_errors() {
    let malformed = section("malformed");
    let cases: Vec<(&str, Vec<u8>, ParseError)> = vec![
        (
            "not-json",
            vec![],
            ParseError::InvalidJson { reason: String::new() },
        ),
        ("json-array", vec![], ParseError::NotAnObject { found: "an array" }),
        ("json-string", vec![], ParseError::NotAnObject { found: "a string" }),
        ("truncated", vec![], ParseError::InvalidJson { reason: String::new() }),
        (
            "event-type-not-string",
            vec![],
            ParseError::WrongType { field: "eventType", expected: "a string", found: "a number" },
        ),
        (
            "event-hash-not-string",
            vec![],
            ParseError::WrongType { field: "eventHash", expected: "a string", found: "a number" },
        ),
        (
            "data-not-object",
            vec![],
            ParseError::WrongType { field: "data", expected: "an object", found: "a string" },
        ),
        ("missing-event-hash", vec![], ParseError::MissingField { field: "eventHash" }),
        ("missing-event-type", vec![], ParseError::MissingField { field: "eventType" }),
        (
            "invalid-utf8",
            b"{\"eventType\":\"message.sent\",\"data\":{\"Message\":\"\xff\xfe\"},\"eventHash\":\"abc\"}"
                .to_vec(),
            ParseError::InvalidUtf8 { valid_up_to: 47 },
        ),
        ("deeply-nested", vec![], ParseError::InvalidJson { reason: String::new() }),
    ];
    assert_eq!(
        cases.len(),
        malformed.len(),
        "every malformed fixture is covered"
    );
    for (name, explicit, expected) in cases {
        let bytes = if explicit.is_empty() {
            malformed[name]
                .as_str()
                .expect("string fixture")
                .as_bytes()
                .to_vec()
        } else {
            explicit
        };
        let err = parse_event(&bytes).unwrap_err();
        match (&err, &expected) {
            (ParseError::InvalidJson { reason }, ParseError::InvalidJson { .. }) => {
                assert!(reason.contains("line 1 column"), "{name}: {reason}");
            }
            _ => assert_eq!(err, expected, "{name}"),
        }
    }
    // The nesting case names the limit, not a generic failure.
    let nested = malformed["deeply-nested"].as_str().unwrap();
    assert!(parse_event(nested.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("recursion limit"));
}

#[test]
fn error_messages_name_the_problem_without_quoting_the_payload() {
    let err =
        parse_event(br#"{"eventType":"message.sent","data":"sekrit-payload","eventHash":"abc"}"#)
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `data` must be an object, found a string"
    );
    let err =
        parse_event(br#"{"eventType":"message.sent","data":{},"eventHash":"h","eventHash":"h2"}"#)
            .unwrap_err();
    assert!(
        err.to_string().contains("duplicate field `eventHash`"),
        "{err}"
    );
    let err = parse_event(br#"{"eventType":"message.sent","data":{},"eventHash":""}"#).unwrap_err();
    assert_eq!(err, ParseError::EmptyField { field: "eventHash" });
    // What no store could index, or PostgreSQL hold, is refused by both parses.
    let with = |event_type: &str, hash: &str| {
        serde_json::json!({"eventType": event_type, "data": {}, "eventHash": hash}).to_string()
    };
    let longest = "h".repeat(ccai::event::MAX_FIELD_LEN);
    for ok in [with("message.sent", &longest), with(&longest, "h")] {
        assert!(parse_event(ok.as_bytes()).is_ok());
        assert!(serde_json::from_str::<ccai::webhook::WebhookEvent>(&ok).is_ok());
    }
    let too_long = format!("{longest}h");
    for (body, field, problem) in [
        (
            with("message.sent", &too_long),
            "eventHash",
            "is longer than 1024 bytes",
        ),
        (
            with(&too_long, "h"),
            "eventType",
            "is longer than 1024 bytes",
        ),
        (
            with("message.sent", "h\0h"),
            "eventHash",
            "contains a NUL character",
        ),
        (
            with("message\0sent", "h"),
            "eventType",
            "contains a NUL character",
        ),
    ] {
        let err = parse_event(body.as_bytes()).unwrap_err();
        assert_eq!(err, ParseError::InvalidField { field, problem });
        assert_eq!(err.to_string(), format!("field `{field}` {problem}"));
        let err = serde_json::from_str::<ccai::webhook::WebhookEvent>(&body).unwrap_err();
        assert!(err.to_string().contains(problem), "{err}");
    }
    let err = parse_event(b"").unwrap_err();
    assert!(matches!(err, ParseError::InvalidJson { .. }), "{err:?}");
    let err = parse_event(br#"{"eventType":null,"data":{},"eventHash":"h"}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `eventType` must be a string, found null"
    );
}

#[test]
fn mistyped_data_fields_are_named() {
    let event =
        parse_event(br#"{"eventType":"message.sent","data":{"SmsSid":[1]},"eventHash":"h"}"#)
            .unwrap();
    let err = event.typed_data().unwrap_err();
    assert_eq!(err.field, "SmsSid");
    assert_eq!(
        err.to_string(),
        "data field `SmsSid` must be an integer or a string holding one, found an array"
    );
    let event = parse_event(
        br#"{"eventType":"message.sent","data":{"TotalPrice":"cheap"},"eventHash":"h"}"#,
    )
    .unwrap();
    assert_eq!(event.typed_data().unwrap_err().field, "TotalPrice");
}

#[test]
fn verify_event_signs_and_parses_fixtures_with_the_fixture_secret() {
    let all = fixtures();
    let client_id = all["clientId"].as_str().unwrap();
    let secret = all["secret"].as_str().unwrap();
    let verifier = Verifier::new(client_id, secret).unwrap();
    for (name, value) in section("events").iter().chain(section("quirks").iter()) {
        let raw = body(value);
        let hash = value["eventHash"].as_str().unwrap();
        let signature = sign(client_id, hash, secret);
        let event = verifier
            .verify_event(Some(&signature), &raw)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(event.event_hash, hash);
        // Wrong secret: mismatch.
        let forged = sign(client_id, hash, "not-the-secret");
        assert_eq!(
            verifier.verify_event(Some(&forged), &raw),
            Err(VerifyError::Mismatch),
            "{name}"
        );
    }
    // A well-formed signature gets the body parsed, which names the legacy shape (a malformed
    // one is refused first: see the next assertion).
    let well_formed = sign(client_id, "any", "not-the-secret");
    for value in section("legacy").values() {
        let err = verifier
            .verify_event(Some(&well_formed), &body(value))
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Parse(ParseError::Legacy(_))),
            "{err:?}"
        );
        let err = verifier.verify_event(Some("x"), &body(value)).unwrap_err();
        assert_eq!(err, VerifyError::MalformedSignature);
    }
}

#[test]
fn verify_event_refuses_a_delivery_with_an_empty_event_hash_as_not_a_delivery() {
    let verifier = Verifier::new("1231", "secret").unwrap();
    // Signed over the empty hash with the right secret: still refused (as `verify` refuses an
    // empty hash), by the parse that comes before the comparison.
    let signature = sign("1231", "", "secret");
    let body = br#"{"eventType":"message.sent","data":{},"eventHash":""}"#;
    assert_eq!(
        verifier.verify_event(Some(&signature), body),
        Err(VerifyError::Parse(ParseError::EmptyField {
            field: "eventHash"
        }))
    );
}

#[test]
fn event_types_round_trip_and_normalise() {
    for t in WebhookEventType::KNOWN {
        let s = t.as_str();
        assert_eq!(s.parse::<WebhookEventType>().unwrap(), t);
        assert_eq!(WebhookEventType::from(s.to_string()), t);
        assert_eq!(t.to_string(), s);
        assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{s}\""));
        let back: WebhookEventType = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(back, t);
        assert!(matches!(
            WebhookEventType::from(s),
            t2 if !matches!(t2, WebhookEventType::Other(_))
        ));
    }
    // Unknown strings are kept, including case and odd characters.
    for s in ["Message.Sent", "sms.sent", "", "a\"b\\c\u{1F600}"] {
        let t = WebhookEventType::from(s);
        assert!(matches!(&t, WebhookEventType::Other(o) if o == s));
        let json = serde_json::to_string(&t).unwrap();
        let back: WebhookEventType = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_str(), s);
    }
    assert_eq!(
        WebhookEventType::Other("message.sent".into()),
        WebhookEventType::MessageSent
    );
}

#[test]
fn webhook_ids_accept_numbers_and_strings() {
    use ccai::webhook::{WebhookDeleteResponse, WebhookId, WebhookResponse};
    let a: WebhookResponse =
        serde_json::from_str(r#"{"id":42,"url":"u","method":"POST","integrationType":"ALL"}"#)
            .unwrap();
    let b: WebhookResponse = serde_json::from_str(
        r#"{"id":"42","url":"u","method":"POST","integrationType":"ALL","secretKey":null}"#,
    )
    .unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(a.id, WebhookId::from(42));
    assert_eq!(a.secret_key, None);
    assert_eq!(b.secret_key, None);
    let c: WebhookId = serde_json::from_str(r#""wh_abc""#).unwrap();
    assert_eq!(c.as_i64(), None);
    assert_eq!(serde_json::to_string(&c).unwrap(), r#""wh_abc""#);
    assert!(serde_json::from_str::<WebhookId>("[1]").is_err());
    let d: WebhookDeleteResponse = serde_json::from_str(r#"{"success":true}"#).unwrap();
    assert_eq!(d, WebhookDeleteResponse::new(true, ""));
}

#[test]
fn deserialising_a_webhook_event_applies_the_same_checks() {
    let ok: WebhookEvent =
        serde_json::from_str(r#"{"eventType":"message.sent","data":{},"eventHash":"h"}"#).unwrap();
    assert_eq!(ok.event_hash, "h");
    let err = serde_json::from_str::<WebhookEvent>(
        r#"{"eventType":"message.sent","data":{},"eventHash":""}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`eventHash` must not be empty"),
        "{err}"
    );
    let err = serde_json::from_str::<WebhookEvent>(r#"{"smsSid":1,"to":"+1"}"#).unwrap_err();
    assert!(err.to_string().contains("legacy"), "{err}");
}

/// serde_json reserves a few object keys (its raw-value marker, on in this crate's build): a body
/// using one where serde_json would read it specially is refused, never accepted with its data lost.
#[test]
fn reserved_serde_json_keys_are_refused_not_dropped() {
    let body = br#"{"eventType":"message.sent","data":{"To":"+1","Meta":{"$serde_json::private::RawValue":0}},"eventHash":"h"}"#;
    let err = parse_event(body).unwrap_err();
    assert!(
        matches!(err, ccai::webhook::ParseError::InvalidJson { .. }),
        "{err:?}"
    );
    assert!(serde_json::from_slice::<WebhookEvent>(body).is_err());
    // Anywhere else too: serialising sorts the keys, which would make it first (a round trip
    // that does not read back).
    let body = br#"{"eventType":"message.sent","data":{"To":"+1","$serde_json::private::RawValue":0},"eventHash":"h"}"#;
    assert!(parse_event(body).is_err());
    assert!(serde_json::from_slice::<WebhookEvent>(body).is_err());
}

/// A numeric `ErrorCode` comes out as the integer it holds, in plain digits; one whose digits
/// were lost when it was read (past 64 bits) is an error, not `1.2345678901234569e+23`.
#[test]
fn a_numeric_error_code_keeps_its_digits_or_is_refused() {
    let code = |raw: &str| {
        let body = format!(
            r#"{{"eventType":"message.error.carrier","data":{{"ErrorCode":{raw}}},"eventHash":"h"}}"#
        );
        match parse_event(body.as_bytes()).unwrap().typed_data() {
            Ok(EventData::ErrorCarrier(e)) => Ok(e.error_code),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        }
    };
    assert_eq!(code("30008"), Ok(Some("30008".to_owned())));
    assert_eq!(code("30008.0"), Ok(Some("30008".to_owned())));
    assert_eq!(code("3e4"), Ok(Some("30000".to_owned())));
    assert_eq!(code("-0"), Ok(Some("0".to_owned())));
    assert_eq!(
        code("18446744073709551615"),
        Ok(Some("18446744073709551615".to_owned()))
    );
    assert_eq!(code(r#""30008""#), Ok(Some("30008".to_owned())));
    for lossy in ["123456789012345678901234", "18446744073709551616", "1.5"] {
        let error = code(lossy).expect_err(lossy);
        assert!(
            error.contains("`ErrorCode`") && error.contains("cannot be kept exactly"),
            "{lossy}: {error}"
        );
    }
}

/// A lone UTF-16 surrogate escape (an emoji split in two, common in SMS text cut into segments)
/// is valid JSON that every official SDK's parser takes: JavaScript and Python keep it, Java
/// strings hold it, Go's `encoding/json` makes it U+FFFD. Here it becomes U+FFFD too, in both
/// parses, instead of failing the whole delivery (a 400 that the sender retries for nothing).
#[test]
fn lone_surrogate_escapes_are_read_as_the_replacement_character() {
    let cases = [
        (r#""split \ud83d""#, "split \u{fffd}"),
        (r#""\ude00 first""#, "\u{fffd} first"),
        (r#""\ude00\ud83d""#, "\u{fffd}\u{fffd}"),
        (r#""\ud83d\ud83d\ude00""#, "\u{fffd}\u{1f600}"),
        (r#""\uD83D\u0041""#, "\u{fffd}A"),
        // Untouched: a real pair, and an escaped backslash followed by the letters "ud800".
        (r#""ok \ud83d\ude00""#, "ok \u{1f600}"),
        (r#""\\ud800""#, "\\ud800"),
    ];
    for (raw, expected) in cases {
        let body = format!(
            r#"{{"eventType":"message.incoming","data":{{"Message":{raw},"To":"+1"}},"eventHash":"h1"}}"#
        );
        let event = parse_event(body.as_bytes()).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(event.data["Message"], expected, "{raw}");
        assert_eq!(event.data["To"], "+1");
        match event.typed_data() {
            Ok(EventData::Incoming(incoming)) => {
                assert_eq!(incoming.message.as_deref(), Some(expected), "{raw}")
            }
            other => panic!("{raw}: {other:?}"),
        }
        let deserialized: WebhookEvent =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(deserialized, event, "{raw}");
        // The event reads back from its serialisation.
        let again = parse_event(&serde_json::to_vec(&event).unwrap()).expect("reads back");
        assert_eq!(again, event, "{raw}");
    }

    // In `eventHash` as well: verified as the UTF-8 of U+FFFD, as Node's HMAC encodes it.
    let body = r#"{"eventType":"message.sent","data":{},"eventHash":"h\udc00"}"#;
    let signature = sign("1231", "h\u{fffd}", "s3cret");
    let event = Verifier::new("1231", "s3cret")
        .unwrap()
        .verify_event(Some(&signature), body.as_bytes())
        .expect("verifies");
    assert_eq!(event.event_hash, "h\u{fffd}");

    // Everything else about the body is still checked; and in an object key (a field name, not
    // text) such an escape is still refused, by both parses alike.
    for body in [
        r#"{"eventType":"message.sent","data":{"Message":"\ud83d","x":1e400},"eventHash":"h"}"#,
        r#"{"eventType":"message.sent","data":{"\ud83d":"x"},"eventHash":"h"}"#,
        r#"{"eventType":"message.sent","data":{},"eventHash":"h","\ud800version":2}"#,
    ] {
        assert!(parse_event(body.as_bytes()).is_err(), "{body}");
        assert!(
            serde_json::from_str::<WebhookEvent>(body).is_err(),
            "{body}"
        );
        assert!(serde_json::from_slice::<WebhookEvent>(body.as_bytes()).is_err());
    }
}
