//! Load benchmark of the webhook handler against a bare axum route, over real HTTP on 127.0.0.1.
//!
//! ```sh
//! cargo run --release -p ccai --example load_bench            # the system allocator
//! cargo run --release -p ccai --example load_bench_mimalloc   # the same with mimalloc
//! ```
//!
//! Targets: a bare axum route answering 200 (the baseline); an axum route that reads the body and
//! answers the handler's JSON; the same plus the core's `parse_event`, and plus
//! `Verifier::verify_event_bytes` (diagnostics: where the cost goes); the handler without
//! deduplication; the handler with a `MemoryDeduper`, with distinct and with repeated hashes.
//!
//! Starts one axum server per target on 127.0.0.1 (ephemeral ports), opens the same number of
//! keep-alive HTTP/1.1 connections to each with a hyper client, and sends a fixed number of signed
//! deliveries in rounds that interleave the targets (the order rotates every round, so that machine
//! noise spreads over all of them). Reports requests per second and latency percentiles per target,
//! and throughput as a ratio of the bare route's.
//!
//! Then measures the same handlers in-process (`Service::call` on a prepared request, no socket),
//! which isolates the per-request CPU cost of verification, parsing and deduplication.
//!
//! Environment (all optional): `CONNECTIONS` (default 32), `REQUESTS` per target per round
//! (default 2000), `ROUNDS` (default 50). Many short rounds spread the machine's slow and fast
//! moments evenly over the targets (run-to-run spread about ±0.5 points, against ±2 with 10 rounds
//! of 10,000); the ramp-up and tail of each batch weigh under 0.2 points.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use ccai::webhook::{
    create_handler, HandlerOptions, MemoryDeduper, SignedDelivery, WebhookEvent, WebhookEventType,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const CLIENT_ID: &str = "1231";
const SECRET: &str = "whsec-load-bench-secret";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A delivery body and its signature header.
type Delivery = (Bytes, String);

/// A realistic `message.sent` delivery and its signature.
fn delivery(hash: &str) -> Delivery {
    let serde_json::Value::Object(data) = serde_json::json!({
        "SmsSid": 12345, "MessageStatus": "DELIVERED", "To": "+14155550100",
        "Message": "Hello John, your appointment is confirmed.", "CustomData": "order-42",
        "ClientExternalId": "customer-7", "CampaignId": 98765,
        "CampaignTitle": "Appointment reminders", "Segments": 1, "TotalPrice": 0.0079
    }) else {
        unreachable!("a JSON object literal")
    };
    let delivery = SignedDelivery::builder(WebhookEventType::MessageSent, hash)
        .data(data)
        .sign(CLIENT_ID, SECRET);
    let signature = delivery.signature().to_owned();
    (Bytes::from(delivery.into_body()), signature)
}

async fn noop(_: WebhookEvent) -> Result<(), Infallible> {
    Ok(())
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Target {
    name: &'static str,
    connections: Vec<SendRequest<Full<Bytes>>>,
    /// Deliveries to send, cycled through; `next` is shared by all rounds.
    deliveries: Arc<Vec<Delivery>>,
    next: Arc<AtomicUsize>,
    latencies: Vec<Duration>,
    elapsed: Duration,
    sent: usize,
}

async fn connect(addr: std::net::SocketAddr, n: usize) -> Vec<SendRequest<Full<Bytes>>> {
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        connections.push(sender);
    }
    connections
}

/// Sends `requests` deliveries over all of the target's connections; returns the wall time.
async fn run_batch(target: &mut Target, requests: usize) -> Duration {
    let remaining = Arc::new(AtomicUsize::new(requests));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(target.connections.len());
    for sender in target.connections.drain(..) {
        let remaining = remaining.clone();
        let deliveries = target.deliveries.clone();
        let next = target.next.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = sender;
            let mut latencies = Vec::new();
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let i = next.fetch_add(1, Ordering::Relaxed) % deliveries.len();
                let (body, signature) = &deliveries[i];
                let request = http::Request::post("/webhook")
                    .header("host", "127.0.0.1")
                    .header("content-type", "application/json")
                    .header("x-ccai-signature", signature)
                    .body(Full::new(body.clone()))
                    .expect("request");
                let sent = Instant::now();
                sender.ready().await.expect("connection ready");
                let response = sender.send_request(request).await.expect("response");
                let status = response.status();
                response.into_body().collect().await.expect("body");
                latencies.push(sent.elapsed());
                assert_eq!(status, 200, "every delivery must be accepted");
            }
            (sender, latencies)
        }));
    }
    for task in tasks {
        let (sender, latencies) = task.await.expect("client task");
        target.connections.push(sender);
        target.latencies.extend(latencies);
    }
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

#[tokio::main]
pub(crate) async fn main() {
    let connections = env("CONNECTIONS", 32);
    let requests = env("REQUESTS", 2000);
    let rounds = env("ROUNDS", 50);

    let bare: Router = Router::new().route("/webhook", post(|| async { http::StatusCode::OK }));
    let handler = |options: HandlerOptions| {
        Router::new().route_service(
            "/webhook",
            create_handler(options.secret(SECRET)).expect("handler"),
        )
    };
    let bare_json: Router = Router::new().route(
        "/webhook",
        post(|body: Bytes| async move {
            std::hint::black_box(body);
            (
                [(http::header::CONTENT_TYPE, "application/json")],
                r#"{"success":true}"#,
            )
        }),
    );
    // Two diagnostic routes: the core's parse and verify called from a plain axum handler, to
    // separate their cost from the handler's own.
    let vv = ccai::webhook::Verifier::new(CLIENT_ID, SECRET).expect("verifier");
    let route_verify: Router = Router::new().route(
        "/webhook",
        post(move |headers: http::HeaderMap, body: Bytes| {
            let vv = vv.clone();
            async move {
                let sig = headers
                    .get("x-ccai-signature")
                    .and_then(|v| v.to_str().ok());
                std::hint::black_box(vv.verify_event(sig, &body).expect("verifies"));
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    r#"{"success":true}"#,
                )
            }
        }),
    );
    let route_parse: Router = Router::new().route(
        "/webhook",
        post(move |body: Bytes| async move {
            std::hint::black_box(ccai::webhook::parse_event(&body).expect("parses"));
            (
                [(http::header::CONTENT_TYPE, "application/json")],
                r#"{"success":true}"#,
            )
        }),
    );
    let plain = handler(HandlerOptions::new(CLIENT_ID, noop).without_deduplication());
    let dedup_distinct =
        handler(HandlerOptions::new(CLIENT_ID, noop).deduper(MemoryDeduper::new()));
    let dedup_repeated =
        handler(HandlerOptions::new(CLIENT_ID, noop).deduper(MemoryDeduper::new()));

    let total = requests * (rounds + 1);
    let distinct: Arc<Vec<_>> = Arc::new(
        (0..total)
            .map(|i| delivery(&format!("evt-{i:08x}")))
            .collect(),
    );
    let repeated: Arc<Vec<_>> = Arc::new(
        (0..100)
            .map(|i| delivery(&format!("rep-{i:04x}")))
            .collect(),
    );

    let mut targets = Vec::new();
    for (name, app, deliveries) in [
        ("bare axum route (200)", bare, distinct.clone()),
        (
            "axum route reading the body, same JSON answer",
            bare_json,
            distinct.clone(),
        ),
        (
            "axum route + parse_event (same JSON answer)",
            route_parse,
            distinct.clone(),
        ),
        (
            "axum route + Verifier::verify_event_bytes (same JSON answer)",
            route_verify,
            distinct.clone(),
        ),
        (
            "handler (verify + parse + no-op callback)",
            plain,
            distinct.clone(),
        ),
        (
            "handler + MemoryDeduper, distinct hashes",
            dedup_distinct,
            distinct.clone(),
        ),
        (
            "handler + MemoryDeduper, repeated hashes",
            dedup_repeated,
            repeated,
        ),
    ] {
        let addr = serve(app).await;
        targets.push(Target {
            name,
            connections: connect(addr, connections).await,
            deliveries,
            next: Arc::new(AtomicUsize::new(0)),
            latencies: Vec::new(),
            elapsed: Duration::ZERO,
            sent: 0,
        });
    }

    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // Warm-up round, not counted.
    for target in &mut targets {
        run_batch(target, requests).await;
        target.latencies.clear();
    }
    for round in 0..rounds {
        let n = targets.len();
        for k in 0..n {
            let target = &mut targets[(round + k) % n];
            let elapsed = run_batch(target, requests).await;
            target.elapsed += elapsed;
            target.sent += requests;
        }
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average before/after: {} / {}",
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{connections} keep-alive connections per target, {rounds} interleaved rounds of {requests} requests per target (+1 warm-up round)\n"
    );
    println!("| target | requests | req/s | vs bare | p50 µs | p90 µs | p99 µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let bare_rps = targets[0].sent as f64 / targets[0].elapsed.as_secs_f64();
    for target in &mut targets {
        target.latencies.sort_unstable();
        let rps = target.sent as f64 / target.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {:.0} | {:.1}% | {} | {} | {} |",
            target.name,
            target.sent,
            rps,
            100.0 * rps / bare_rps,
            micros(percentile(&target.latencies, 0.50)),
            micros(percentile(&target.latencies, 0.90)),
            micros(percentile(&target.latencies, 0.99)),
        );
    }

    in_process(&distinct, &repeated_in_process()).await;
}

fn repeated_in_process() -> Vec<Delivery> {
    (0..100)
        .map(|i| delivery(&format!("rep-{i:04x}")))
        .collect()
}

/// Per-call cost of the handler without HTTP: `Service::call` on a prepared request.
async fn in_process(distinct: &[Delivery], repeated: &[Delivery]) {
    use tower::Service;

    let n = distinct.len().min(100_000);
    println!("\nin-process `Service::call`, {n} calls each (no socket, no HTTP parsing):\n");
    println!("| handler | ns per call |");
    println!("|---|---:|");
    let cases: [(&str, HandlerOptions, &[Delivery]); 3] = [
        (
            "verify + parse + no-op callback",
            HandlerOptions::new(CLIENT_ID, noop).without_deduplication(),
            distinct,
        ),
        (
            "+ MemoryDeduper, distinct hashes",
            HandlerOptions::new(CLIENT_ID, noop).deduper(MemoryDeduper::new()),
            distinct,
        ),
        (
            "+ MemoryDeduper, repeated hashes",
            HandlerOptions::new(CLIENT_ID, noop).deduper(MemoryDeduper::new()),
            repeated,
        ),
    ];
    for (name, options, deliveries) in cases {
        let mut handler = create_handler(options.secret(SECRET)).expect("handler");
        let requests: Vec<_> = (0..n)
            .map(|i| {
                let (body, signature) = &deliveries[i % deliveries.len()];
                http::Request::post("/webhook")
                    .header("x-ccai-signature", signature)
                    .body(Full::new(body.clone()))
                    .expect("request")
            })
            .collect();
        let start = Instant::now();
        for request in requests {
            let response = handler.call(request).await.expect("infallible");
            assert_eq!(response.status(), 200);
        }
        let per_call = start.elapsed().as_nanos() as f64 / n as f64;
        println!("| {name} | {per_call:.0} |");
    }
}
