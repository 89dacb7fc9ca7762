//! `ccai ui` under load: the real binary serving a real SQLite inbox filled through the library,
//! asked more than it reads at once.

mod common;
mod ui_support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use ccai::inbox::{ListFilter, NewDelivery, Store};
use common::Sandbox;
use ui_support::{inbox_path, open, start_ui, CLIENT, MINUTE};

/// Events in the slow inbox, and the length of the text each body holds: 200 MB in all.
const SLOW_EVENTS: usize = 800;
const SLOW_TEXT: usize = 256 * 1024;
/// The length of the slow search's run of `a`s: as long as a search may be, with its `b`.
const NEEDLE: usize = ListFilter::MAX_TEXT_LEN - 1;
/// Searches sent at once: three times as many as the view reads at once, and under its
/// connections per client.
const SEARCHES: usize = 12;

/// An inbox whose text search takes seconds: every body is a long run of `a`, and the search is
/// a long run of `a` followed by a `b`, which matches nowhere and is compared in full at every
/// position of every body (SQLite's `instr`).
async fn fill_slow(store: &impl Store) {
    let text = "a".repeat(SLOW_TEXT);
    let now = SystemTime::now();
    for i in 0..SLOW_EVENTS {
        let hash = format!("{i:016x}-slow");
        let body = format!(
            r#"{{"eventType":"message.incoming","eventHash":"{hash}","data":{{"Message":"{text}"}}}}"#
        );
        let delivery = NewDelivery::new(CLIENT, hash.as_str(), "message.incoming", body)
            .received_at(now - MINUTE);
        store.insert(delivery).await.expect("insert");
    }
}

/// Many slow searches at once do not all run: the view reads the store a few at a time, and a
/// search that waits too long for its turn is answered 503 with `Retry-After` and the API's
/// `{"error"}`, so that the searches cannot take every core from a receiver in the same process.
/// Every answer is either a page or that refusal, and at least one is the refusal: the first
/// searches hold every turn for longer than the others wait.
#[tokio::test]
async fn many_slow_searches_at_once_are_bounded_and_the_rest_refused_with_retry_after() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = open(&path);
    fill_slow(&store).await;
    store.close().await;
    let ui = start_ui(&sandbox, &path, &[]);

    let needle = format!("{}b", "a".repeat(NEEDLE));
    let url = format!("{}/api/events?q={needle}", ui.base);
    let http = reqwest::Client::new();
    let searches = (0..SEARCHES).map(|_| {
        let request = http.get(&url);
        async move {
            let response = request.send().await.expect("GET /api/events?q=");
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("ASCII").to_owned());
            let text = response.text().await.expect("body");
            (status, retry_after, text)
        }
    });
    let answers = futures_util::future::join_all(searches).await;

    let mut refused = 0;
    for (status, retry_after, text) in &answers {
        let body: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
        match status {
            200 => assert_eq!(body["events"], serde_json::json!([]), "{text}"),
            503 => {
                refused += 1;
                assert_eq!(retry_after.as_deref(), Some("1"), "{text}");
                let error = body["error"].as_str().unwrap_or_else(|| panic!("{text}"));
                assert!(error.contains("busy"), "{error}");
                assert!(!error.contains('\n'), "one line: {error:?}");
            }
            other => panic!("{other}: {text}"),
        }
    }
    assert!(
        refused > 0,
        "{SEARCHES} slow searches at once, none refused: {:?}",
        answers.iter().map(|(s, _, _)| s).collect::<Vec<_>>()
    );
    assert!(
        refused < SEARCHES,
        "every search refused: the view reads none"
    );
}

/// Opens a connection to `to` from the loopback address `source`.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> std::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    let stream = socket.connect(to).await.expect("connect");
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// One client trickling request heads on many connections cannot keep another's page from being
/// answered: with only the view's cap of 128, 140 such connections from one address held every
/// slot until the 10 s header timeout. Past its share, a client's connections are closed at
/// once. The other client waits at most 5 s: under the header timeout, which alone freed a slot.
#[tokio::test]
async fn one_client_trickling_connections_leaves_anothers_page_answered() {
    use std::io::Write;
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    open(&path).close().await;
    let ui = start_ui(&sandbox, &path, &[]);
    let addr: SocketAddr = ui
        .base
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", ui.base));
    let mut held = Vec::new();
    for _ in 0..140 {
        let mut stream = connect_from([127, 0, 0, 2], addr).await;
        let _ = stream.write_all(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        held.push(stream);
    }
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let status = other
        .get(format!("{}/api/stats", ui.base))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(
        matches!(status, Ok(200)),
        "/api/stats from 127.0.0.3 with 140 connections held by 127.0.0.2: {status:?}"
    );
    drop(held);
}
