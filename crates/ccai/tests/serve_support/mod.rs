//! Shared by the `serve` and `serve_fds` tests: a handler served by `ccai::server::Server` on
//! 127.0.0.1:0, a signed delivery, and raw requests.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use ccai::server::Server;
use ccai::webhook::{create_handler, sign, HandlerOptions, WebhookEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) const CLIENT_ID: &str = "1231";
pub(crate) const SECRET: &str = "whsec-test-fixture-secret";
pub(crate) const PATH: &str = "/webhook/ccai";

pub(crate) fn handler_options() -> HandlerOptions {
    HandlerOptions::new(CLIENT_ID, |_: WebhookEvent| async {
        Ok::<_, std::io::Error>(())
    })
    .secret(SECRET)
}

/// Serves the handler built from `options` with `server`; returns the address.
pub(crate) async fn start(server: Server, options: HandlerOptions) -> SocketAddr {
    let handler = create_handler(options).expect("handler");
    let app = Router::new().route_service(PATH, handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(server.serve(listener, app));
    addr
}

/// A complete signed `message.sent` request (keep-alive unless `close`).
pub(crate) fn signed_request(hash: &str, close: bool) -> Vec<u8> {
    let body = serde_json::json!({
        "eventType": "message.sent",
        "data": {"SmsSid": 1, "To": "+14155550100"},
        "eventHash": hash,
    })
    .to_string();
    let signature = sign(CLIENT_ID, hash, SECRET);
    let connection = if close { "close" } else { "keep-alive" };
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\nContent-Type: application/json\r\nX-CCAI-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one response head and its `Content-Length` body; returns the status.
pub(crate) async fn read_response<R: AsyncReadExt + Unpin>(stream: &mut R) -> u16 {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buffer)
        );
        buffer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buffer).to_string();
    let status = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("body");
    status
}

/// Waits until the peer closes `stream` (EOF or reset), reading and discarding; `None` if it is
/// still open after `within`.
pub(crate) async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

pub(crate) async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
}
