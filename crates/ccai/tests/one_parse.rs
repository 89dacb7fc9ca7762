//! One parse: `parse_event` and `Deserialize for WebhookEvent` accept exactly the same bodies and
//! make the same event of them, and an accepted event's serialisation reads back equal.

use ccai::webhook::{parse_event, WebhookEvent};
use proptest::prelude::*;
use serde_json::Value;

/// What `Deserialize` makes of a body, through each of serde_json's entry points that can see it.
fn deserialized(body: &[u8]) -> Option<WebhookEvent> {
    let from_slice = serde_json::from_slice::<WebhookEvent>(body).ok();
    let from_reader = serde_json::from_reader::<_, WebhookEvent>(body).ok();
    assert_eq!(
        from_slice, from_reader,
        "from_slice and from_reader disagree"
    );
    if let Ok(text) = std::str::from_utf8(body) {
        let from_str = serde_json::from_str::<WebhookEvent>(text).ok();
        assert_eq!(from_slice, from_str, "from_slice and from_str disagree");
    }
    from_slice
}

/// Both parses agree on `body`; the event, if any.
fn agree(body: &[u8]) -> Option<WebhookEvent> {
    let parsed = parse_event(body).ok();
    assert_eq!(
        parsed,
        deserialized(body),
        "parse_event and Deserialize disagree on {:?}",
        String::from_utf8_lossy(body)
    );
    parsed
}

/// An accepted event's serialisation reads back equal, through both parses.
fn round_trips(event: &WebhookEvent) {
    let text = serde_json::to_string(event).expect("an event serialises");
    let again = agree(text.as_bytes()).unwrap_or_else(|| panic!("does not read back: {text}"));
    assert_eq!(&again, event, "{text}");
    assert_eq!(again.data.as_map(), event.data.as_map(), "{text}");
}

#[test]
fn an_array_in_positional_form_is_refused_by_both() {
    for body in [
        r#"["message.sent",{},"h",null,null,null]"#,
        r#"["message.sent",{},"h"]"#,
        r#"[]"#,
    ] {
        assert!(parse_event(body.as_bytes()).is_err(), "{body}");
        assert!(
            serde_json::from_str::<WebhookEvent>(body).is_err(),
            "{body}"
        );
        assert!(
            serde_json::from_value::<WebhookEvent>(serde_json::from_str(body).unwrap()).is_err()
        );
    }
}

#[test]
fn invalid_utf8_in_an_ignored_field_is_refused_by_both() {
    for (prefix, suffix) in [
        (
            &br#"{"eventType":"message.sent","data":{},"eventHash":"h","note":""#[..],
            &br#""}"#[..],
        ),
        (
            br#"{"eventType":"message.sent","data":{},"eventHash":"h","x":{"y":[""#,
            br#""]}}"#,
        ),
        (
            br#"{"eventType":"message.sent","data":{},"eventHash":"h","type":""#,
            br#""}"#,
        ),
        (
            br#"{"eventType":"message.sent","data":{},"eventHash":"h","campaign":{"a":""#,
            br#""}}"#,
        ),
    ] {
        for bad in [&b"\xff"[..], b"\xc3", b"\xed\xa0\x80", b"ok\x80"] {
            let body = [prefix, bad, suffix].concat();
            assert!(parse_event(&body).is_err());
            assert!(
                serde_json::from_slice::<WebhookEvent>(&body).is_err(),
                "{body:?}"
            );
            assert!(serde_json::from_reader::<_, WebhookEvent>(&body[..]).is_err());
        }
    }
}

#[test]
fn ignored_fields_are_as_lax_in_both() {
    // Out-of-range numbers and lone surrogates in fields nobody reads: accepted by both.
    let body = br#"{"eventType":"message.sent","data":{},"eventHash":"h","x":[1e400,"\ud800"],"type":null}"#;
    assert!(agree(body).is_some());
}

#[test]
fn floats_read_back_exactly() {
    for float in [
        "1.748623157e308",
        "0.1",
        "2.2250738585072014e-308",
        "5e-324",
        "-1.7976931348623157e308",
        "0.30000000000000004",
    ] {
        let body = format!(
            r#"{{"eventType":"message.sent","data":{{"TotalPrice":{float}}},"eventHash":"h"}}"#
        );
        let event = agree(body.as_bytes()).expect("accepted");
        let expected: f64 = float.parse().unwrap();
        assert_eq!(event.data["TotalPrice"].as_f64(), Some(expected), "{float}");
        round_trips(&event);
    }
}

/// Found by `parse_event_and_deserialize_agree`: a repeated key in `data` whose first value is
/// refused (here a reserved key inside it) must be refused by both, though a map keeps only the
/// last value.
#[test]
fn a_refused_value_under_a_repeated_data_key_is_refused_by_both() {
    for body in [
        r#"{"eventType":"message.sent","data":{"W":[{"":0.0,"$serde_json::private::RawValue":0.0}],"W":0.0},"eventHash":"h"}"#,
        r#"{"eventType":"message.sent","data":{"W":1e400,"W":0},"eventHash":"h"}"#,
    ] {
        assert_eq!(agree(body.as_bytes()), None, "{body}");
    }
    let kept = agree(br#"{"eventType":"message.sent","data":{"W":1,"W":2},"eventHash":"h"}"#)
        .expect("repeated keys are JSON");
    assert_eq!(kept.data["W"], 2);
    round_trips(&kept);
}

#[test]
fn duplicate_top_level_fields_are_refused_by_both() {
    for body in [
        r#"{"eventType":"a","eventType":"a","data":{},"eventHash":"h"}"#,
        r#"{"eventType":"a","data":{},"data":{},"eventHash":"h"}"#,
        r#"{"eventType":"a","data":{},"eventHash":"h","type":1,"type":1}"#,
        r#"{"eventType":"a","data":{},"eventHash":"h","even\u0074Hash":"h"}"#,
    ] {
        assert_eq!(agree(body.as_bytes()), None, "{body}");
    }
    // Unknown keys may repeat.
    assert!(agree(br#"{"eventType":"a","data":{},"eventHash":"h","x":1,"x":2}"#).is_some());
}

/// JSON text for a value inside `data` or an ignored field: floats of every size, keys that sort
/// anywhere (serde_json's reserved marker among them), and near-misses.
fn value_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap_or_default()),
        (any::<u64>(), -330i32..310).prop_map(|(m, e)| format!("{m}e{e}")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| Value::String(s).to_string()),
        prop::sample::select(vec![
            "null",
            "true",
            "1e400",
            "-0",
            "0.1e1",
            r#""\ud800""#,
            r#""\ud83d\ude00""#,
            "01",
            "nul",
            "[1,]",
        ])
        .prop_map(str::to_owned),
    ];
    let key = prop_oneof![
        any::<String>(),
        prop::sample::select(vec![
            "$serde_json::private::RawValue",
            "$serde_json::private::Number",
            "$",
            "",
            "To",
            "a\u{0}b",
        ])
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key.clone(), inner), 0..4).prop_map(|v| {
                let fields: Vec<String> = v
                    .into_iter()
                    .map(|(k, v)| format!("{}:{v}", Value::String(k)))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// A body: the three members (values usually right) and extra members in any order, as an object
/// or, now and then, an array of the same values; then perhaps one byte replaced by one that
/// breaks UTF-8, or cut short.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        4 => prop::sample::select(vec![r#""message.sent""#, r#""message.incoming""#, r#""x.y""#, r#""h""#]).prop_map(str::to_owned),
        1 => value_text(),
    ];
    let data = prop_oneof![
        4 => prop::collection::vec(("[A-Za-z$]{0,8}", value_text()), 0..5).prop_map(|v| {
            let fields: Vec<String> = v.into_iter().map(|(k, v)| format!("{}:{v}", Value::String(k))).collect();
            format!("{{{}}}", fields.join(","))
        }),
        1 => value_text(),
    ];
    let extra_key = prop::sample::select(vec![
        "type",
        "campaign",
        "smsSid",
        "other",
        "eventType",
        "even\\u0074Hash",
    ]);
    let members = (
        text.clone(),
        data,
        text,
        prop::collection::vec((extra_key, value_text()), 0..3),
    );
    (
        members,
        any::<prop::sample::Index>(),
        any::<bool>(),
        any::<u8>(),
        any::<prop::sample::Index>(),
        0u8..10,
    )
        .prop_map(
            |((event_type, data, hash, extra), at, array, bad, where_, mutation)| {
                let mut members = vec![
                    ("eventType".to_owned(), event_type),
                    ("data".to_owned(), data),
                    ("eventHash".to_owned(), hash),
                ];
                let tail = members.split_off(at.index(4));
                members.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
                members.extend(tail);
                let text = if array && mutation == 0 {
                    let values: Vec<String> = members.into_iter().map(|(_, v)| v).collect();
                    format!("[{}]", values.join(","))
                } else {
                    let fields: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                };
                let mut bytes = text.into_bytes();
                let i = where_.index(bytes.len().max(1));
                match mutation {
                    1 if !bytes.is_empty() => bytes[i] = 0x80 | (bad & 0x7f),
                    2 if !bytes.is_empty() => bytes.insert(i, 0xff),
                    3 => bytes.truncate(i),
                    _ => {}
                }
                bytes
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Both parses accept the same bodies and make the same event; accepted events read back.
    #[test]
    fn parse_event_and_deserialize_agree(body in body()) {
        if let Some(event) = agree(&body) {
            round_trips(&event);
        }
    }

    /// Any float in `data` reads back exactly from the event's serialisation.
    #[test]
    fn any_float_round_trips(float in any::<f64>().prop_filter("finite", |f| f.is_finite()), key in "[A-Za-z]{1,8}") {
        let body = format!(
            r#"{{"eventType":"message.sent","data":{{{}:{}}},"eventHash":"h"}}"#,
            Value::String(key.clone()),
            serde_json::to_string(&float).unwrap()
        );
        let event = agree(body.as_bytes()).expect("accepted");
        prop_assert_eq!(event.data[key.as_str()].as_f64(), Some(float));
        round_trips(&event);
    }
}
