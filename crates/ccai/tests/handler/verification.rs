//! Signature verification: what is refused (401), what the scheme does not cover, secret rotation
//! and disabled verification.

use std::sync::Arc;

use ccai::webhook::{create_handler, sign, HandlerOptions, WebhookEvent};
use serde_json::Value;

use crate::support::{
    answer_of, assert_no_leak, delivery, error_message, post, raw, recording_options,
    sent_delivery, serve, serve_router, url, Seen, CLIENT_ID, PATH, SECRET,
};

#[tokio::test]
async fn signatures_that_do_not_verify_are_401() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, good) = sent_delivery();
    let wrong_secret = sign(
        CLIENT_ID,
        "042896dc1966b8a6214e5383aba5b8b9",
        "other-secret",
    );
    let wrong_client = sign("9999", "042896dc1966b8a6214e5383aba5b8b9", SECRET);
    let url_safe = good.replace('+', "-").replace('/', "_");
    let unpadded = good.trim_end_matches('=').to_owned();
    let prefixed = format!("sha256={good}");
    let hex = "a".repeat(64);
    for signature in [
        wrong_secret.as_str(),
        wrong_client.as_str(),
        unpadded.as_str(),
        prefixed.as_str(),
        hex.as_str(),
        "",
    ] {
        let answer = post(addr, &body, Some(signature)).await;
        assert_eq!(answer.status, 401, "{signature:?}");
        assert!(error_message(&answer).contains("does not verify"));
        assert_no_leak(&answer, signature);
        assert_no_leak(&answer, &good);
    }
    if url_safe != good {
        assert_eq!(post(addr, &body, Some(&url_safe)).await.status, 401);
    }

    // A header value that is not UTF-8 / not ASCII: 401, never 500.
    for bytes in [&b"\xff\xfe\xfd"[..], "é".repeat(22).as_bytes()] {
        let value = reqwest::header::HeaderValue::from_bytes(bytes).expect("obs-text is allowed");
        let response = reqwest::Client::new()
            .post(url(addr))
            .header("X-CCAI-Signature", value)
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401);
    }

    // Two signature headers, one of them right: refused.
    let mut request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-CCAI-Signature: {good}\r\nx-ccai-signature: {wrong_secret}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    let (status, text) = raw(addr, &request).await;
    assert_eq!(status, 401, "{text}");

    assert!(seen.lock().expect("lock").is_empty());
    // And the right one still works (header name in any case).
    let response = reqwest::Client::new()
        .post(url(addr))
        .header("x-ccai-signature", &good)
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
}

/// The signature covers `clientId:eventHash` only: an altered `data` (or `eventType`) with an
/// intact hash and signature verifies. Nothing outside CloudContactAI can tie `data` to the hash.
#[tokio::test]
async fn tampered_data_with_a_valid_signature_is_accepted() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = sent_delivery();
    let mut tampered: Value = serde_json::from_str(&body).expect("json");
    tampered["data"]["To"] = Value::from("+19999999999");
    tampered["eventType"] = Value::from("message.excluded");
    let answer = post(addr, &tampered.to_string(), Some(&signature)).await;
    assert_eq!(answer.status, 200);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen[0].data["To"], "+19999999999");
    assert_eq!(seen[0].event_type, "message.excluded");
}

#[tokio::test]
async fn rotation_accepts_old_and_new_secrets() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options.secret("the-new-secret")).expect("handler")).await;
    let (body_old, _) = delivery("rot-old");
    let (body_new, _) = delivery("rot-new");
    let old = sign(CLIENT_ID, "rot-old", SECRET);
    let new = sign(CLIENT_ID, "rot-new", "the-new-secret");
    let neither = sign(CLIENT_ID, "rot-x", "retired-secret");
    assert_eq!(post(addr, &body_old, Some(&old)).await.status, 200);
    assert_eq!(post(addr, &body_new, Some(&new)).await.status, 200);
    let (body_x, _) = delivery("rot-x");
    assert_eq!(post(addr, &body_x, Some(&neither)).await.status, 401);
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn disabled_verification_ignores_the_signature() {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let options = HandlerOptions::new("", move |event: WebhookEvent| {
        let sink = sink.clone();
        async move {
            sink.lock().expect("lock").push(event);
            Ok::<_, std::io::Error>(())
        }
    })
    .dangerously_disable_verification();
    assert!(options.verification_disabled());
    let handler = create_handler(options).expect("handler");
    assert!(!handler.verifies());
    let addr = serve(handler).await;
    let (body, _) = delivery("unsigned");
    assert_eq!(post(addr, &body, None).await.status, 200);
    let (body, _) = delivery("badly-signed");
    assert_eq!(post(addr, &body, Some("garbage")).await.status, 200);
    // The body is still checked.
    assert_eq!(post(addr, "{}", None).await.status, 400);
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

/// A repeated `X-CCAI-Signature` is refused (which value counts is not the receiver's to pick),
/// by the handler and the extractor alike, and the answer says it was repeated: both values are
/// well-formed 44-character signatures, so "malformed" would send the sender looking for the
/// wrong fault. Neither value is echoed.
#[tokio::test]
async fn a_repeated_signature_header_is_401_saying_it_was_sent_twice() {
    let (options, seen) = recording_options();
    let handler = serve(create_handler(options).expect("handler")).await;
    let verifier = ccai::webhook::Verifier::new(CLIENT_ID, SECRET).expect("verifier");
    let app = axum::Router::new()
        .route(
            PATH,
            axum::routing::post(|_: ccai::webhook::VerifiedEvent| async { "stored" }),
        )
        .with_state(verifier);
    let extractor = serve_router(app).await;
    let (body, good) = sent_delivery();
    let other = sign(
        CLIENT_ID,
        "042896dc1966b8a6214e5383aba5b8b9",
        "other-secret",
    );
    for addr in [handler, extractor] {
        for second in [&good, &other] {
            let answer = answer_of(
                reqwest::Client::new()
                    .post(url(addr))
                    .header("X-CCAI-Signature", &good)
                    .header("x-ccai-signature", second)
                    .body(body.clone()),
            )
            .await;
            assert_eq!(answer.status, 401, "{}", answer.body);
            let message = error_message(&answer);
            assert!(message.contains("sent more than once"), "{message}");
            assert!(!message.contains("44 characters"), "{message}");
            assert_no_leak(&answer, &good);
            assert_no_leak(&answer, &other);
        }
    }
    assert!(seen.lock().expect("lock").is_empty());
}
