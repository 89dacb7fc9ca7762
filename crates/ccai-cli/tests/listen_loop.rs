//! A `--forward-to` that reaches the receiver itself by a way the start check cannot see (a
//! port forward or proxy in front of it, another address of this machine): each `ccai listen`
//! names itself in its forwards (`X-CCAI-Forwarded-By`) and refuses its own with 508, so no event
//! shows as delivered (with the store it was forwarded to its own inbox, answered 200 as a
//! duplicate) and no delivery waits on a forward to itself (`--no-store`). Another receiver's
//! forwards still pass (a chain of two listeners). The real binary, real servers on 127.0.0.1, a
//! real TCP proxy.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use common::postgres::{database, Schema};
use common::{closed_port, recorder, run, stderr, stdout, Listening, Sandbox};

const CLIENT_ID: &str = "loop-client";
const SECRET: &str = "loop-secret";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// What the error line and a refused forward say.
const ITSELF: &str = "reaches this receiver itself";

fn ccai(sandbox: &Sandbox) -> Command {
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    cmd
}

fn listen(sandbox: &Sandbox, args: &[&str]) -> Listening {
    Listening::announced(Listening::launch(ccai(sandbox), args))
}

/// A delivery with unusual formatting: forwarding must not re-serialise it.
fn body(hash: &str) -> String {
    format!("{{ \"eventType\" : \"message.sent\",\n  \"eventHash\": \"{hash}\", \"data\": {{\"To\": \"+14155550100\"}} }}")
}

fn signature(hash: &str) -> String {
    ccai::webhook::sign(CLIENT_ID, hash, SECRET)
}

/// POSTs a signed delivery to `url`; the status it got.
async fn deliver(url: &str, hash: &str) -> StatusCode {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", CONTENT_TYPE)
        .header("x-ccai-signature", signature(hash))
        .body(body(hash))
        .send()
        .await
        .expect("the listener answers");
    response.status()
}

/// The next `--json` line of `listen` that is not a `received` one.
fn next_outcome(listen: &Listening) -> serde_json::Value {
    loop {
        let line: serde_json::Value =
            serde_json::from_str(&listen.next_line()).expect("a JSON line");
        if line["status"] != "received" {
            return line;
        }
    }
}

/// Stops `listen` with SIGTERM; what it wrote to stderr after its banner.
fn stop(mut listen: Listening) -> Vec<String> {
    let pid = listen.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    let _ = listen.child.wait();
    listen.err.iter().collect()
}

/// A TCP proxy on 127.0.0.1 to the port set in the returned cell (set once the listener behind
/// it has started): a port forward or reverse proxy in front of a receiver.
async fn tcp_proxy() -> (u16, Arc<OnceLock<u16>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let port = listener.local_addr().expect("addr").port();
    let target = Arc::new(OnceLock::new());
    let to = Arc::clone(&target);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let Some(&port) = to.get() else { continue };
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (port, target)
}

/// The port of a listener's announced URL.
fn port_of(listen: &Listening) -> u16 {
    let address: SocketAddr = listen.address().parse().expect("host:port");
    address.port()
}

/// An address of this machine that is not loopback (the one it would reach the internet from);
/// `None` on a machine without one.
fn non_loopback_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route and the source address.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// With the store: the forward that came back is refused with 508, the attempt recorded as
/// failed and saying why, the event left pending (it was "forwarded 200", the duplicate's
/// answer); the error line is told once however many come back.
async fn assert_stored_events_are_not_delivered_to_themselves(
    sandbox: &Sandbox,
    listen: Listening,
    store: &str,
) {
    for hash in ["loop-1", "loop-2"] {
        assert_eq!(deliver(&listen.url, hash).await, StatusCode::OK);
        let outcome = next_outcome(&listen);
        assert_eq!(outcome["status"], "retrying", "{outcome}");
        assert_eq!(outcome["eventHash"], hash, "{outcome}");
        let error = outcome["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("HTTP 508") && error.contains(ITSELF),
            "{outcome}"
        );
    }
    let err = stop(listen);
    let told: Vec<_> = err
        .iter()
        .filter(|line| line.starts_with("error: --forward-to"))
        .collect();
    assert_eq!(told.len(), 1, "{err:?}");
    assert!(told[0].contains(ITSELF), "{told:?}");
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "list", "--json", "--store", store]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    for event in &events {
        let delivery = &event["deliveries"][0];
        assert_eq!(delivery["status"], "pending", "{event}");
        let error = delivery["lastError"].as_str().unwrap_or_default();
        assert!(error.contains(ITSELF), "{event}");
        // Stored once: the copy that came back was refused before the store.
        assert_eq!(event["duplicates"], 0, "{event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_forward_through_a_proxy_to_itself_is_refused_not_delivered() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("loop.db");
    through_a_proxy_to_itself(&sandbox, file.to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_from_postgres_through_a_proxy_to_itself_is_refused_not_delivered() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    through_a_proxy_to_itself(&Sandbox::new(), &schema.url()).await;
}

/// A listener storing in `store`, forwarding to itself through a proxy.
async fn through_a_proxy_to_itself(sandbox: &Sandbox, store: &str) {
    let (proxy, behind) = tcp_proxy().await;
    let listen = listen(
        sandbox,
        &[
            "--port",
            "0",
            "--store",
            store,
            "--forward-to",
            &format!("http://127.0.0.1:{proxy}/webhook"),
            "--retry-schedule",
            "1h",
            "--json",
        ],
    );
    behind.set(port_of(&listen)).expect("set once");
    assert_stored_events_are_not_delivered_to_themselves(sandbox, listen, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_forward_to_another_address_of_this_machine_is_refused_not_delivered() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no address but loopback to forward to");
        return;
    };
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("loop.db");
    let port = closed_port().to_string();
    let listen = listen(
        &sandbox,
        &[
            "--host",
            "0.0.0.0",
            "--port",
            &port,
            "--store",
            file.to_str().unwrap(),
            "--forward-to",
            &format!(
                "http://{}/webhook",
                SocketAddr::new(ip, port.parse().unwrap())
            ),
            "--retry-schedule",
            "1h",
            "--json",
        ],
    );
    assert_stored_events_are_not_delivered_to_themselves(&sandbox, listen, file.to_str().unwrap())
        .await;
}

/// With `--no-store`: the delivery is answered 500 (the sender retries) with the forward's error
/// saying why, at once; it waited on a forward to itself until the forward timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_through_a_proxy_to_itself_fails_at_once_without_the_store() {
    let sandbox = Sandbox::new();
    let (proxy, behind) = tcp_proxy().await;
    let listen = listen(
        &sandbox,
        &[
            "--port",
            "0",
            "--no-store",
            "--forward-to",
            &format!("http://127.0.0.1:{proxy}/webhook"),
            "--json",
        ],
    );
    behind.set(port_of(&listen)).expect("set once");
    for hash in ["loop-1", "loop-2"] {
        assert_eq!(
            deliver(&listen.url, hash).await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let line: serde_json::Value =
            serde_json::from_str(&listen.next_line()).expect("a JSON line");
        assert_eq!(line["eventHash"], hash, "{line}");
        let error = line["forward"]["error"].as_str().unwrap_or_default();
        assert!(error.contains("508") && error.contains(ITSELF), "{line}");
    }
    let err = stop(listen);
    let told: Vec<_> = err
        .iter()
        .filter(|line| line.starts_with("error: --forward-to"))
        .collect();
    assert_eq!(told.len(), 1, "{err:?}");
}

/// A chain of two listeners, A forwarding to B forwarding to the application: A's forwards carry
/// A's id, which B lets through; the application gets the delivery byte for byte, with its
/// signature and content type, and B's name (whether B stores or not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_two_listeners_still_delivers() {
    for b_stores in [true, false] {
        let sandbox = Sandbox::new();
        let app = recorder(|_| (StatusCode::OK, "{}".into())).await;
        let b_file = sandbox.path().join("b.db");
        let mut b_args = vec!["--port", "0", "--forward-to", &app.url, "--json"];
        if b_stores {
            b_args.extend(["--store", b_file.to_str().unwrap()]);
        } else {
            b_args.push("--no-store");
        }
        let b = listen(&sandbox, &b_args);
        let a_file = sandbox.path().join("a.db");
        let a = listen(
            &sandbox,
            &[
                "--port",
                "0",
                "--store",
                a_file.to_str().unwrap(),
                "--forward-to",
                &b.url,
                "--retry-schedule",
                "1h",
                "--json",
            ],
        );
        assert_eq!(deliver(&a.url, "chain-1").await, StatusCode::OK);
        let outcome = next_outcome(&a);
        assert_eq!(
            outcome["status"], "forwarded",
            "b stores: {b_stores}: {outcome}"
        );
        if b_stores {
            let outcome = next_outcome(&b);
            assert_eq!(outcome["status"], "forwarded", "{outcome}");
        }
        let received = app.requests.lock().expect("lock").clone();
        assert_eq!(received.len(), 1, "b stores: {b_stores}");
        let request = &received[0];
        assert_eq!(&request.body[..], body("chain-1").as_bytes());
        assert_eq!(
            request.header("x-ccai-signature").as_deref(),
            Some(signature("chain-1").as_str())
        );
        assert_eq!(
            request.header("content-type").as_deref(),
            Some(CONTENT_TYPE)
        );
        let by = request.header("x-ccai-forwarded-by").unwrap_or_default();
        assert!(
            by.len() >= 16,
            "b stores: {b_stores}: {:?}",
            request.headers
        );
        // Neither listener said its forwards came back.
        for err in [stop(a), stop(b)] {
            assert!(!err.iter().any(|l| l.contains(ITSELF)), "{err:?}");
        }
    }
}
