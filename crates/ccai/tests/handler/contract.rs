//! Each status code of the handler's contract: 200, 405 (with `Allow`), 400, 500, and the
//! configurations `create_handler` refuses.

use std::sync::atomic::Ordering;

use ccai::webhook::{
    create_handler, sign, DeliveryMethod, HandlerConfigError, HandlerOptions, VerifierConfigError,
    WebhookEvent,
};
use serde_json::Value;

use crate::support::{
    answer, assert_no_leak, delivery, error_message, first_call_options, post, recording_options,
    sent_delivery, serve, url, CLIENT_ID, SECRET,
};

#[tokio::test]
async fn valid_delivery_is_200_json_and_reaches_the_callback() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = sent_delivery();

    let answer = post(addr, &body, Some(&signature)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let json: Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(json, serde_json::json!({"success": true}));

    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].event_hash, "042896dc1966b8a6214e5383aba5b8b9");
    assert_eq!(seen[0].event_type, "message.sent");
    assert_eq!(seen[0].data["To"], "+14155550100");
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let client = reqwest::Client::new();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let answer = answer(
            client
                .request(method.clone(), url(addr))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.allow.as_deref(), Some("POST"), "{method}");
        assert!(error_message(&answer).contains("not allowed"));
    }
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn put_delivery_method_is_configurable() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options.method(DeliveryMethod::Put)).expect("handler")).await;
    let (body, signature) = delivery("put-1");
    let client = reqwest::Client::new();
    let put = client
        .put(url(addr))
        .header("X-CCAI-Signature", &signature)
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(put.status(), 200);
    let post = answer(
        client
            .post(url(addr))
            .header("X-CCAI-Signature", &signature)
            .body(body)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.allow.as_deref(), Some("PUT"));
    assert_eq!(seen.lock().expect("lock").len(), 1);

    let (both, _) = recording_options();
    let addr = serve(
        create_handler(both.methods([DeliveryMethod::Post, DeliveryMethod::Put])).expect("handler"),
    )
    .await;
    let get = answer(client.get(url(addr)).send().await.expect("send")).await;
    assert_eq!(get.allow.as_deref(), Some("POST, PUT"));
}

#[tokio::test]
async fn invalid_bodies_are_400_naming_the_problem() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let signature = sign(CLIENT_ID, "h", SECRET);
    let cases = [
        ("{not json payload-marker-text", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (r#"{"eventType":"message.sent","data":{}}"#, "eventHash"),
        (
            r#"{"eventType":"message.sent","eventHash":"h","data":"payload-marker-text"}"#,
            "`data` must be an object",
        ),
        (
            r#"{"type":"x","campaign":{},"from":"+1","to":"+2","message":"payload-marker-text"}"#,
            "legacy",
        ),
        ("", "not valid JSON"),
    ];
    for (body, expected) in cases {
        let answer = post(addr, body, Some(&signature)).await;
        assert_eq!(answer.status, 400, "{body}");
        let message = error_message(&answer);
        assert!(message.contains(expected), "{body}: {message}");
        assert_no_leak(&answer, &signature);
    }
    // Invalid UTF-8 inside a string.
    let mut bytes = br#"{"eventType":"message.sent","eventHash":"h","data":{"To":""#.to_vec();
    bytes.extend_from_slice(&[0xFF, 0xFE]);
    bytes.extend_from_slice(br#""}}"#);
    let response = reqwest::Client::new()
        .post(url(addr))
        .header("X-CCAI-Signature", &signature)
        .body(bytes)
        .send()
        .await
        .expect("send");
    let answer = answer(response).await;
    assert_eq!(answer.status, 400);
    assert!(error_message(&answer).contains("UTF-8"));
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn missing_signature_is_400() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, _) = sent_delivery();
    let answer = post(addr, &body, None).await;
    assert_eq!(answer.status, 400);
    assert!(error_message(&answer).contains("X-CCAI-Signature"));
    assert_no_leak(&answer, "unused");
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn callback_error_is_500_without_details() {
    let options = HandlerOptions::new(CLIENT_ID, |_: WebhookEvent| async {
        Err::<(), _>(format!("database said no to {SECRET}"))
    })
    .secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = sent_delivery();
    let answer = post(addr, &body, Some(&signature)).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(error_message(&answer), "event callback failed");
    assert!(!answer.body.contains("database said no"));
    assert_no_leak(&answer, &signature);
}

#[tokio::test]
async fn callback_panic_is_500_and_the_retry_is_processed() {
    let (options, calls) = first_call_options(|| panic!("callback bug"));
    let options = options.secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("panics-once");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 500);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn construction_errors() {
    let noop = |_: WebhookEvent| async { Ok::<_, std::io::Error>(()) };
    let err = |options| create_handler(options).expect_err("must be refused");
    assert_eq!(
        err(HandlerOptions::new(CLIENT_ID, noop)),
        HandlerConfigError::Verifier(VerifierConfigError::NoSecret)
    );
    assert_eq!(
        err(HandlerOptions::new(CLIENT_ID, noop).secret("")),
        HandlerConfigError::Verifier(VerifierConfigError::EmptySecret)
    );
    assert_eq!(
        err(HandlerOptions::new("", noop).secret(SECRET)),
        HandlerConfigError::Verifier(VerifierConfigError::EmptyClientId)
    );
    assert_eq!(
        err(HandlerOptions::new(CLIENT_ID, noop)
            .secret(SECRET)
            .methods([])),
        HandlerConfigError::NoMethods
    );
    // Debug output never shows the secrets.
    let options = HandlerOptions::new(CLIENT_ID, noop).secret(SECRET);
    assert!(!format!("{options:?}").contains(SECRET));
    let handler = create_handler(options).expect("handler");
    assert!(!format!("{handler:?}").contains(SECRET));
    assert!(handler.verifies());
}

#[test]
fn debug_says_what_deduplicates() {
    let noop = |_: WebhookEvent| async { Ok::<(), std::io::Error>(()) };
    let options = HandlerOptions::new(CLIENT_ID, noop).secret(SECRET);
    let off = options.clone().without_deduplication();
    assert!(
        format!("{options:?}").contains(r#"deduplication: "deduper""#),
        "{options:?}"
    );
    assert!(
        format!("{off:?}").contains(r#"deduplication: "off""#),
        "{off:?}"
    );
    let handler = create_handler(options).expect("handler");
    assert!(
        format!("{handler:?}").contains(r#"deduplication: "deduper""#),
        "{handler:?}"
    );
    let handler = create_handler(off).expect("handler");
    assert!(
        format!("{handler:?}").contains(r#"deduplication: "off""#),
        "{handler:?}"
    );
}
