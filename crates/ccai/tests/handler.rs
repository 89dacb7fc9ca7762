//! The webhook handler against real HTTP: a server on 127.0.0.1:0 (axum, and plain hyper) and
//! real requests (reqwest, and raw TCP for what a client library refuses to send).
#![cfg(feature = "axum")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use ccai::webhook::{
    create_handler, sign, ConfigError, DeliveryMethod, HandlerConfigError, HandlerOptions,
    MemoryDeduper, Rejection, VerifiedEvent, Verifier, WebhookEvent, WebhookHandler,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLIENT_ID: &str = "1231";
const SECRET: &str = "whsec-test-fixture-secret";
const PATH: &str = "/webhook/ccai";

fn fixtures() -> Value {
    serde_json::from_str(include_str!("fixtures/events.json")).expect("fixture is JSON")
}

/// The fixture's `message.sent` delivery and its signature.
fn sent_delivery() -> (String, String) {
    let event = &fixtures()["events"]["message.sent"];
    let hash = event["eventHash"].as_str().expect("hash").to_owned();
    (event.to_string(), sign(CLIENT_ID, &hash, SECRET))
}

fn delivery(hash: &str) -> (String, String) {
    let body = serde_json::json!({
        "eventType": "message.sent",
        "data": {"SmsSid": 1, "To": "+14155550100", "Message": "payload-marker-text"},
        "eventHash": hash,
    });
    (body.to_string(), sign(CLIENT_ID, hash, SECRET))
}

type Seen = Arc<Mutex<Vec<WebhookEvent>>>;

fn recording_options() -> (HandlerOptions, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |event: WebhookEvent| {
        let sink = sink.clone();
        async move {
            sink.lock().expect("lock").push(event);
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    (options, seen)
}

async fn serve_router(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn serve(handler: WebhookHandler) -> SocketAddr {
    serve_router(Router::new().route_service(PATH, handler)).await
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}{PATH}")
}

struct Answer {
    status: u16,
    content_type: Option<String>,
    allow: Option<String>,
    body: String,
}

async fn post(addr: SocketAddr, body: &str, signature: Option<&str>) -> Answer {
    let client = reqwest::Client::new();
    let mut request = client
        .post(url(addr))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("X-CCAI-Signature", signature);
    }
    answer(request.send().await.expect("request")).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    let status = response.status().as_u16();
    let content_type = header("content-type");
    let allow = header("allow");
    let body = response.text().await.expect("body");
    Answer {
        status,
        content_type,
        allow,
        body,
    }
}

/// Sends raw bytes on a fresh connection and returns (status, raw response text).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

fn error_message(answer: &Answer) -> String {
    let json: Value = serde_json::from_str(&answer.body).expect("error body is JSON");
    assert_eq!(json["success"], false, "{}", answer.body);
    json["error"].as_str().expect("error message").to_owned()
}

/// Nothing secret or sent by the client is echoed in an error body.
fn assert_no_leak(answer: &Answer, signature: &str) {
    for needle in [SECRET, signature, "payload-marker-text", "Hello John"] {
        if needle.is_empty() {
            continue;
        }
        assert!(
            !answer.body.contains(needle),
            "error body {:?} leaks {needle:?}",
            answer.body
        );
    }
}

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
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                panic!("callback bug");
            }
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("panics-once");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 500);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_run_each_callback_exactly_once() {
    let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let c = counts.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |event: WebhookEvent| {
        let c = c.clone();
        async move {
            *c.lock().expect("lock").entry(event.event_hash).or_default() += 1;
            // Stay in flight for a while so that repeats arrive meanwhile (and wait).
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let client = client.clone();
        let hash = format!("event-{}", (i * 7) % 200);
        tasks.spawn(async move {
            let (body, signature) = delivery(&hash);
            client
                .post(url(addr))
                .header("X-CCAI-Signature", signature)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.expect("task").expect("request"), 200);
        ok += 1;
    }
    assert_eq!(ok, 1000);
    let counts = counts.lock().expect("lock");
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[tokio::test]
async fn failing_callback_is_retried_and_then_deduplicated() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(std::io::Error::other("transient"))
            } else {
                Ok(())
            }
        }
    })
    .secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("fails-once");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 500);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Processed: a replay is acknowledged without calling back.
    let replay = post(addr, &body, Some(&signature)).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body, r#"{"success":true}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_deduplication_every_repeat_is_processed() {
    let (options, seen) = recording_options();
    let addr = serve(create_handler(options.without_deduplication()).expect("handler")).await;
    let (body, signature) = delivery("repeat");
    for _ in 0..3 {
        assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    }
    assert_eq!(seen.lock().expect("lock").len(), 3);

    // And a custom deduper is used when given.
    let deduper = Arc::new(MemoryDeduper::new());
    let (options, seen) = recording_options();
    let addr =
        serve(create_handler(options.shared_deduper(deduper.clone())).expect("handler")).await;
    for _ in 0..3 {
        assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    }
    assert_eq!(seen.lock().expect("lock").len(), 1);
    assert_eq!(
        deduper.state("repeat"),
        Some(ccai::webhook::EntryState::Completed)
    );
}

#[tokio::test]
async fn on_reject_observes_every_rejection_with_its_reason() {
    let rejections: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
    let sink = rejections.clone();
    let options = HandlerOptions::new(CLIENT_ID, |event: WebhookEvent| async move {
        if event.event_hash == "fail" {
            Err("downstream refused".to_owned())
        } else {
            Ok(())
        }
    })
    .secret(SECRET)
    .on_reject(move |rejection: &Rejection| {
        sink.lock()
            .expect("lock")
            .push((rejection.status().as_u16(), rejection.to_string()));
    });
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("ok");
    let (fail, fail_signature) = delivery("fail");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(post(addr, &body, None).await.status, 400);
    assert_eq!(post(addr, &body, Some(&fail_signature)).await.status, 401);
    assert_eq!(post(addr, &fail, Some(&fail_signature)).await.status, 500);
    let rejections = rejections.lock().expect("lock");
    assert_eq!(rejections.len(), 3);
    assert_eq!(rejections[0].0, 400);
    assert!(rejections[0].1.contains("missing X-CCAI-Signature"));
    assert_eq!(rejections[1].0, 401);
    assert_eq!(rejections[2].0, 500);
    // The CLI can show the callback's own error.
    assert!(
        rejections[2].1.contains("downstream refused"),
        "{:?}",
        rejections[2]
    );
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

#[test]
fn construction_errors() {
    let noop = |_: WebhookEvent| async { Ok::<_, std::io::Error>(()) };
    let err = |options| create_handler(options).expect_err("must be refused");
    assert_eq!(
        err(HandlerOptions::new(CLIENT_ID, noop)),
        HandlerConfigError::Verifier(ConfigError::NoSecret)
    );
    assert_eq!(
        err(HandlerOptions::new(CLIENT_ID, noop).secret("")),
        HandlerConfigError::Verifier(ConfigError::EmptySecret)
    );
    assert_eq!(
        err(HandlerOptions::new("", noop).secret(SECRET)),
        HandlerConfigError::Verifier(ConfigError::EmptyClientId)
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

async fn receive(VerifiedEvent(event): VerifiedEvent) -> axum::Json<Value> {
    axum::Json(serde_json::json!({"success": true, "eventHash": event.event_hash}))
}

#[tokio::test]
async fn extractor_verifies_with_the_verifier_in_state() {
    let verifier = Verifier::new(CLIENT_ID, SECRET).expect("verifier");
    let app = Router::new()
        .route(PATH, axum::routing::post(receive))
        .with_state(verifier);
    let addr = serve_router(app).await;
    let (body, signature) = sent_delivery();

    let ok = post(addr, &body, Some(&signature)).await;
    assert_eq!(ok.status, 200);
    let json: Value = serde_json::from_str(&ok.body).expect("json");
    assert_eq!(json["eventHash"], "042896dc1966b8a6214e5383aba5b8b9");

    let missing = post(addr, &body, None).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.content_type.as_deref(), Some("application/json"));
    assert!(error_message(&missing).contains("X-CCAI-Signature"));

    let wrong = sign(CLIENT_ID, "other", SECRET);
    let bad = post(addr, &body, Some(&wrong)).await;
    assert_eq!(bad.status, 401);
    assert_no_leak(&bad, &wrong);

    let invalid = post(addr, "{payload-marker-text", Some(&signature)).await;
    assert_eq!(invalid.status, 400);
    assert_no_leak(&invalid, &signature);

    let request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-CCAI-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        ccai::webhook::DEFAULT_BODY_LIMIT + 1
    );
    let (status, text) = raw(addr, request.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
}

#[tokio::test]
async fn serves_under_plain_hyper() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use tower::Service;

    let (options, seen) = recording_options();
    let handler = create_handler(options).expect("handler");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let mut handler = handler.clone();
                    handler.call(request)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    // Any path: the handler is the whole server.
    let (body, signature) = sent_delivery();
    let answer = post(addr, &body, Some(&signature)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, r#"{"success":true}"#);
    let get = answer_of(reqwest::Client::new().get(url(addr))).await;
    assert_eq!(get.status, 405);
    assert_eq!(post(addr, &body, None).await.status, 400);
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

async fn answer_of(request: reqwest::RequestBuilder) -> Answer {
    answer(request.send().await.expect("send")).await
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// On a current-thread runtime the server runs on this thread, so a thread-local subscriber sees
/// everything the handler logs.
#[tokio::test]
async fn logs_name_events_and_reasons_but_not_secrets_or_payloads() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let options = HandlerOptions::new(CLIENT_ID, |event: WebhookEvent| async move {
        if event.event_hash == "fail" {
            Err("callback failure")
        } else {
            Ok(())
        }
    })
    .secret(SECRET)
    .log_events(true);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("logged-hash");
    let (fail, fail_signature) = delivery("fail");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(post(addr, &body, Some(&fail_signature)).await.status, 401);
    assert_eq!(post(addr, &fail, Some(&fail_signature)).await.status, 500);
    assert_eq!(
        post(addr, "{payload-marker-text", Some(&signature))
            .await
            .status,
        400
    );

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    assert!(logs.contains("logged-hash"), "{logs}");
    assert!(logs.contains("does not verify"), "{logs}");
    assert!(logs.contains("callback failure"), "{logs}");
    for needle in [SECRET, &signature, &fail_signature, "payload-marker-text"] {
        assert!(!logs.contains(needle), "logs leak {needle:?}: {logs}");
    }
}

#[tokio::test]
async fn disabling_verification_warns_at_creation() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let options = HandlerOptions::new(CLIENT_ID, |_: WebhookEvent| async {
        Ok::<_, std::io::Error>(())
    })
    .dangerously_disable_verification();
    let _handler = create_handler(options).expect("handler");
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("verification is DISABLED"), "{logs}");
}

/// A repeat that arrives while the first delivery's callback runs waits for it; the first one
/// fails, so the repeat is processed (and not lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_during_a_failing_callback_is_processed_after_it() {
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(tokio::sync::Notify::new());
    let (c, s, g) = (calls.clone(), started.clone(), gate.clone());
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let (s, g) = (s.clone(), g.clone());
        async move {
            if n == 0 {
                s.notify_one();
                g.notified().await;
                Err(std::io::Error::other("first attempt fails"))
            } else {
                Ok(())
            }
        }
    })
    .secret(SECRET);
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("slow-then-fails");
    let (b, sig) = (body.clone(), signature.clone());
    let first = tokio::spawn(async move { post(addr, &b, Some(&sig)).await.status });
    started.notified().await;
    let (b, sig) = (body.clone(), signature.clone());
    let second = tokio::spawn(async move { post(addr, &b, Some(&sig)).await.status });
    // The first callback is still running: no repeat may have run the callback.
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    gate.notify_one();
    assert_eq!(first.await.expect("first"), 500);
    assert_eq!(second.await.expect("second"), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A signed POST for calling the handler as a `tower::Service`, without a socket.
fn signed_request(
    body: &str,
    signature: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::post(PATH)
        .header("X-CCAI-Signature", signature)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .expect("request")
}

/// A request abandoned while its callback runs (client gone: the service future is dropped)
/// releases its claim, so the retry is processed instead of waiting forever.
#[tokio::test]
async fn abandoned_request_releases_its_claim() {
    use http_body_util::BodyExt;
    use tower::Service;

    let calls = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let (c, s) = (calls.clone(), started.clone());
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let s = s.clone();
        async move {
            if n == 0 {
                s.notify_one();
                std::future::pending::<()>().await;
            }
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    let mut handler = create_handler(options).expect("handler");
    let (body, signature) = delivery("abandoned");
    let request = || signed_request(&body, &signature);
    let first = handler.call(request());
    tokio::select! {
        _ = first => panic!("the first callback never finishes"),
        _ = started.notified() => {}
    }
    // `first` is dropped here, as hyper drops it when the client disconnects.
    let response = handler.call(request()).await.expect("infallible");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], br#"{"success":true}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
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
    let shown = format!("{:?}", seen[0]);
    assert!(
        !shown.contains(&signature) && !shown.contains("1.50"),
        "{shown}"
    );
}

/// Polls `future` with a no-op waker, at most `polls` times, without any async runtime.
fn poll_without_runtime<F: std::future::Future + Unpin>(
    future: &mut F,
    polls: usize,
) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    (0..polls).find_map(|_| match std::pin::Pin::new(&mut *future).poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    })
}

/// Outside any tokio runtime, a request abandoned while its callback runs still releases its
/// claim (the in-memory release completes at once), so the retry is processed.
#[test]
fn abandoned_request_releases_its_claim_without_a_runtime() {
    use tower::Service;

    assert!(tokio::runtime::Handle::try_current().is_err());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, std::io::Error>(())
        }
    })
    .secret(SECRET);
    let mut handler = create_handler(options).expect("handler");
    let (body, signature) = delivery("abandoned-no-runtime");
    let request = || signed_request(&body, &signature);
    let mut first = handler.call(request());
    assert!(poll_without_runtime(&mut first, 1).is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    drop(first);
    let mut second = handler.call(request());
    let response = poll_without_runtime(&mut second, 100)
        .expect("the retry is not left waiting for the abandoned claim")
        .expect("infallible");
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A deduper whose first `release` fails.
struct FlakyRelease {
    inner: MemoryDeduper,
    failures: AtomicUsize,
}

impl ccai::webhook::Deduper for FlakyRelease {
    fn claim<'a>(&'a self, hash: &'a str) -> ccai::webhook::DedupFuture<'a, ccai::webhook::Claim> {
        self.inner.claim(hash)
    }

    fn complete<'a>(&'a self, hash: &'a str) -> ccai::webhook::DedupFuture<'a, ()> {
        self.inner.complete(hash)
    }

    fn release<'a>(&'a self, hash: &'a str) -> ccai::webhook::DedupFuture<'a, ()> {
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            Box::pin(std::future::ready(Err(ccai::webhook::DedupError::Backend(
                "store unavailable".into(),
            ))))
        } else {
            self.inner.release(hash)
        }
    }
}

/// The callback failed and so did releasing its claim: the release is retried, so the next
/// delivery is processed instead of waiting forever.
#[tokio::test]
async fn failed_release_after_a_failed_callback_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(std::io::Error::other("first attempt fails"))
            } else {
                Ok(())
            }
        }
    })
    .secret(SECRET)
    .deduper(FlakyRelease {
        inner: MemoryDeduper::new(),
        failures: AtomicUsize::new(1),
    });
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("release-fails");
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 500);
    let retry = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        post(addr, &body, Some(&signature)),
    )
    .await
    .expect("the retry is not left waiting for the failed claim");
    assert_eq!(retry.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A panicking `on_reject` hook is contained: the rejection is still answered.
#[tokio::test]
async fn panicking_on_reject_hook_still_answers() {
    let hooked = Arc::new(AtomicUsize::new(0));
    let h = hooked.clone();
    let (options, seen) = recording_options();
    let options = options.on_reject(move |_: &Rejection| {
        h.fetch_add(1, Ordering::SeqCst);
        panic!("hook bug");
    });
    let addr = serve(create_handler(options).expect("handler")).await;
    let (body, signature) = delivery("hook-panics");
    let answer = post(addr, &body, None).await;
    assert_eq!(answer.status, 400);
    assert!(error_message(&answer).contains("missing X-CCAI-Signature"));
    assert_eq!(post(addr, &body, Some(&signature)).await.status, 200);
    assert_eq!(hooked.load(Ordering::SeqCst), 1);
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

/// A POST of `body` with `Transfer-Encoding: chunked` (no `Content-Length`), in chunks of `size`.
fn chunked_request(signature: &str, body: &str, size: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-CCAI-Signature: {signature}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.as_bytes().chunks(size) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}
