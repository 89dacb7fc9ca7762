//! With serde_json's `arbitrary_precision` on, serde_json hands a number that is not an `i64` or
//! `u64` (`0.0079`, a 20-digit id) to visitors as a one-entry map. Real deliveries carry such
//! numbers (`TotalPrice`): they must still be accepted, over real HTTP, and read as numbers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccai::server::Server;
use ccai::webhook::{create_handler, parse_event, sign, EventData, HandlerOptions, WebhookEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLIENT_ID: &str = "1231";
const SECRET: &str = "whsec-test-fixture-secret";
const SENT: &str = include_str!("../../../crates/ccai/tests/fixtures/message-sent.json");

/// POSTs `body` signed for its `eventHash` on a fresh connection; the status and the whole answer.
async fn post(addr: std::net::SocketAddr, body: &str, hash: &str) -> (u16, String) {
    let signature = sign(CLIENT_ID, hash, SECRET);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nX-CCAI-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn deliveries_with_decimal_and_big_numbers_are_accepted() {
    let seen: Arc<Mutex<Vec<WebhookEvent>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let options = HandlerOptions::new(CLIENT_ID, move |event: WebhookEvent| {
        let recorded = Arc::clone(&recorded);
        async move {
            recorded.lock().expect("lock").push(event);
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    let handler = create_handler(options).expect("handler");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(Server::new().serve(listener, handler));

    // The fixture's `message.sent`, as sent: `"TotalPrice": 0.0079`.
    let (status, answer) = post(addr, SENT, "042896dc1966b8a6214e5383aba5b8b9").await;
    assert_eq!(status, 200, "{answer}");
    // Nested, in arrays, past u64, negative, with an exponent.
    let body = r#"{"eventType":"message.sent","eventHash":"h-big","data":{"TotalPrice":0.03,"Id":123456789012345678901234567890,"List":[-1.5,{"x":2e-3}],"Segments":2}}"#;
    let (status, answer) = post(addr, body, "h-big").await;
    assert_eq!(status, 200, "{answer}");

    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 2);
    match seen[0].typed_data().expect("typed data") {
        EventData::Sent(sent) => assert_eq!(sent.total_price, Some(0.0079)),
        other => panic!("not a sent event: {other:?}"),
    }
    assert_eq!(seen[1].data["TotalPrice"].as_f64(), Some(0.03));
    assert_eq!(
        seen[1].data["Id"].to_string(),
        "123456789012345678901234567890"
    );
    assert_eq!(seen[1].data["List"][1]["x"].as_f64(), Some(0.002));
}

/// `Deserialize for WebhookEvent` reads the same bodies as `parse_event`, and what the marker
/// key spells out literally is read as `serde_json::Value` reads it.
#[test]
fn both_parses_read_numbers_as_value_does() {
    for body in [
        SENT,
        r#"{"eventType":"t","eventHash":"h","data":{"a":{"$serde_json::private::Number":"1.5"}}}"#,
    ] {
        let parsed = parse_event(body.as_bytes()).expect("parse_event");
        let derived: WebhookEvent = serde_json::from_str(body).expect("Deserialize");
        assert_eq!(parsed, derived);
        let value: serde_json::Value = serde_json::from_str(body).expect("Value");
        assert_eq!(
            &serde_json::Value::Object(parsed.data.as_map().clone()),
            &value["data"]
        );
    }
    for body in [
        // Not a number behind the marker, a marker with company, the marker not first, or the
        // marker as `data` itself: refused, never a panic later.
        r#"{"eventType":"t","eventHash":"h","data":{"a":{"$serde_json::private::Number":"x"}}}"#,
        r#"{"eventType":"t","eventHash":"h","data":{"a":{"$serde_json::private::Number":"1","b":2}}}"#,
        r#"{"eventType":"t","eventHash":"h","data":{"a":{"b":2,"$serde_json::private::Number":"1"}}}"#,
        r#"{"eventType":"t","eventHash":"h","data":{"$serde_json::private::Number":"1"}}"#,
    ] {
        assert!(parse_event(body.as_bytes()).is_err(), "{body}");
        assert!(
            serde_json::from_str::<WebhookEvent>(body).is_err(),
            "{body}"
        );
    }
}
