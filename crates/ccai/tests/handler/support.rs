//! Shared helpers: the fixture deliveries, a server on 127.0.0.1:0 and the requests sent to it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use ccai::webhook::{sign, HandlerOptions, WebhookEvent, WebhookHandler};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) const CLIENT_ID: &str = "1231";
pub(crate) const SECRET: &str = "whsec-test-fixture-secret";
pub(crate) const PATH: &str = "/webhook/ccai";

pub(crate) fn fixtures() -> Value {
    serde_json::from_str(include_str!("../fixtures/events.json")).expect("fixture is JSON")
}

/// The fixture's `message.sent` delivery and its signature.
pub(crate) fn sent_delivery() -> (String, String) {
    let event = &fixtures()["events"]["message.sent"];
    let hash = event["eventHash"].as_str().expect("hash").to_owned();
    (event.to_string(), sign(CLIENT_ID, &hash, SECRET))
}

pub(crate) fn delivery(hash: &str) -> (String, String) {
    let body = serde_json::json!({
        "eventType": "message.sent",
        "data": {"SmsSid": 1, "To": "+14155550100", "Message": "payload-marker-text"},
        "eventHash": hash,
    });
    (body.to_string(), sign(CLIENT_ID, hash, SECRET))
}

pub(crate) type Seen = Arc<Mutex<Vec<WebhookEvent>>>;

pub(crate) fn recording_options() -> (HandlerOptions, Seen) {
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

pub(crate) async fn serve_router(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub(crate) async fn serve(handler: WebhookHandler) -> SocketAddr {
    serve_router(Router::new().route_service(PATH, handler)).await
}

/// Options whose callback fails its first call with `error` and succeeds after, and the number of
/// calls so far. No secret set.
pub(crate) fn fails_once_options(error: &'static str) -> (HandlerOptions, Arc<AtomicUsize>) {
    first_call_options(move || Err(std::io::Error::other(error)))
}

/// Options whose callback answers its first call with what `first` does (inside the callback's
/// future) and succeeds after, and the number of calls so far. No secret set.
pub(crate) fn first_call_options<F>(first: F) -> (HandlerOptions, Arc<AtomicUsize>)
where
    F: Fn() -> Result<(), std::io::Error> + Copy + Send + Sync + 'static,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let options = HandlerOptions::new(CLIENT_ID, move |_: WebhookEvent| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                first()
            } else {
                Ok(())
            }
        }
    });
    (options, calls)
}

pub(crate) fn url(addr: SocketAddr) -> String {
    format!("http://{addr}{PATH}")
}

pub(crate) struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub allow: Option<String>,
    pub body: String,
}

pub(crate) async fn post(addr: SocketAddr, body: &str, signature: Option<&str>) -> Answer {
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

pub(crate) async fn answer(response: reqwest::Response) -> Answer {
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

pub(crate) async fn answer_of(request: reqwest::RequestBuilder) -> Answer {
    answer(request.send().await.expect("send")).await
}

/// Sends raw bytes on a fresh connection and returns (status, raw response text).
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
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

pub(crate) fn error_message(answer: &Answer) -> String {
    let json: Value = serde_json::from_str(&answer.body).expect("error body is JSON");
    assert_eq!(json["success"], false, "{}", answer.body);
    json["error"].as_str().expect("error message").to_owned()
}

/// Nothing secret or sent by the client is echoed in an error body.
pub(crate) fn assert_no_leak(answer: &Answer, signature: &str) {
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

/// A POST of `body` with `Transfer-Encoding: chunked` (no `Content-Length`), in chunks of `size`.
pub(crate) fn chunked_request(signature: &str, body: &str, size: usize) -> Vec<u8> {
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

/// A signed POST for calling the handler as a `tower::Service`, without a socket.
pub(crate) fn signed_request(
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
