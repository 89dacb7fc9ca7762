//! Request bodies: the size limit (413), unreadable and chunked bodies, and the exact bytes handed to
//! delivery callbacks.

use std::sync::{Arc, Mutex};

use ccai::webhook::{create_handler, sign, DeliveryMethod, HandlerOptions};

use crate::support::{
    chunked_request, delivery, post, raw, recording_options, serve, CLIENT_ID, PATH, SECRET,
};

#[tokio::test]
async fn oversized_body_is_413_by_content_length_and_while_reading() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options.body_limit(1024)).expect("handler")).await;
    let (_, signature) = delivery("big");
    let big = format!(
        r#"{{"eventType":"message.sent","eventHash":"big","data":{{"Message":"payload-marker-text{}"}}}}"#,
        "x".repeat(2000)
    );

    // Declared length over the limit: refused before reading (the body is not even sent here,
    // so that the server closing the connection cannot race with our writing).
    let request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-CCAI-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    let (status, text) = raw(addr, request.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("1024 bytes"), "{text}");
    assert!(!text.contains(&signature));

    // No Content-Length: chunked, over the limit only once read.
    let request = chunked_request(&signature, &big, 500);
    let (status, text) = raw(addr, &request).await;
    assert_eq!(status, 413, "{text}");

    // Exactly at the limit is fine (then it fails on content, not size).
    let at_limit = " ".repeat(1024);
    assert_eq!(post(addr, &at_limit, Some(&signature)).await.status, 400);
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn unreadable_body_is_400() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let (_, signature) = delivery("h");
    // A chunk size that is not hexadecimal.
    let request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-CCAI-Signature: {signature}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
    );
    let (status, text) = raw(addr, request.as_bytes()).await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains(&signature));
    assert!(seen.lock().expect("lock").is_empty());
}

/// A body that arrives in several chunks is joined before parsing.
#[tokio::test]
async fn chunked_body_in_several_frames_is_accepted() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("chunked");
    let request = chunked_request(&signature, &body, 40);
    let (status, text) = raw(addr, &request).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with(r#"{"success":true}"#), "{text}");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].data["Message"], "payload-marker-text");
}

#[tokio::test]
async fn delivery_callbacks_get_the_exact_body_and_signature() {
    let seen: Arc<Mutex<Vec<ccai::webhook::WebhookDelivery>>> = Arc::default();
    let sink = seen.clone();
    let options =
        HandlerOptions::for_deliveries(CLIENT_ID, move |d: ccai::webhook::WebhookDelivery| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(d);
                Ok::<_, std::io::Error>(())
            }
        })
        .secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    // Spacing and key order that re-serialising would not reproduce.
    let body = "{ \"eventHash\": \"raw-1\",\n \"data\": {\"B\": 1.50, \"A\": \"x\"}, \"eventType\": \"message.sent\" }";
    let signature = sign(CLIENT_ID, "raw-1", SECRET);
    assert_eq!(post(addr, body, Some(&signature)).await.status, 200);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert_eq!(&seen[0].body[..], body.as_bytes());
    assert_eq!(seen[0].signature.as_deref(), Some(signature.as_str()));
    assert_eq!(seen[0].method, DeliveryMethod::Post);
    assert_eq!(seen[0].event.event_hash, "raw-1");
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    let shown = format!("{:?}", seen[0]);
    assert!(
        !shown.contains(&signature) && !shown.contains("1.50"),
        "{shown}"
    );
}

/// A correctly signed delivery whose `eventHash` is longer than any store can index is refused
/// 400 (the sender must not retry it for ever against a 503), and the callback never runs.
#[tokio::test]
async fn an_over_long_event_hash_is_400() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let hash = "h".repeat(ccai::event::MAX_FIELD_LEN + 1);
    let body = format!(r#"{{"eventType":"message.sent","data":{{}},"eventHash":"{hash}"}}"#);
    let answer = post(addr, &body, Some(&sign(CLIENT_ID, &hash, SECRET))).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.contains("longer than 1024 bytes"),
        "{}",
        answer.body
    );
    assert!(seen.lock().expect("lock").is_empty());
}

/// An inbound SMS whose emoji was split (a lone surrogate escape in `Message`) is valid JSON that
/// the official SDKs accept: the signed delivery is answered 200 and reaches the callback, with
/// U+FFFD where the half emoji was; the delivery body stays byte for byte as received.
#[tokio::test]
async fn a_split_emoji_in_the_message_is_accepted() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let hash = "5b1e7d0c0d3a4f2e9a8b7c6d5e4f3a2b";
    let body = format!(
        r#"{{"eventType":"message.incoming","data":{{"From":"+14155550100","Message":"see you \ud83d"}},"eventHash":"{hash}"}}"#
    );
    let answer = post(addr, &body, Some(&sign(CLIENT_ID, hash, SECRET))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].data["Message"], "see you \u{fffd}");
    assert_eq!(seen[0].data["From"], "+14155550100");
}
