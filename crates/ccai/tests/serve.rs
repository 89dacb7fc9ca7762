//! `ccai::server::Server` over real sockets: slow heads and bodies are cut off, idle connections
//! closed, and past the connection cap a valid delivery is served once a slot frees.

mod serve_support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ccai::server::Server;
use serve_support::{closed_within, handler_options, read_response, send, signed_request, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

#[tokio::test]
async fn slow_headers_are_cut_after_the_header_read_timeout() {
    let server = Server::new()
        .header_read_timeout(Duration::from_secs(1))
        .keep_alive_timeout(Some(Duration::from_secs(30)));
    let addr = start(server, handler_options()).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = b"POST /webhook/ccai HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let start = Instant::now();
    // One byte every 200 ms: 75 bytes would take 15 s; the server cuts it after about 1 s.
    let mut cut = None;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = Some(start.elapsed());
            break;
        }
        if let Some(after) = closed_within(&mut stream, Duration::from_millis(200)).await {
            cut = Some(start.elapsed().max(after));
            break;
        }
    }
    let cut = cut.expect("the server never closed the slow connection");
    assert!(
        cut >= Duration::from_millis(800) && cut < Duration::from_secs(4),
        "closed after {cut:?}"
    );
}

#[tokio::test]
async fn a_slow_body_is_answered_408_after_the_body_timeout() {
    let server = Server::new().header_read_timeout(Duration::from_secs(30));
    let options = handler_options().body_timeout(Some(Duration::from_secs(1)));
    let addr = start(server, options).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send(
        &mut stream,
        b"POST /webhook/ccai HTTP/1.1\r\nHost: x\r\nX-CCAI-Signature: x\r\nContent-Length: 100\r\n\r\n",
    )
    .await;
    let start = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = async {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let answered = tokio::select! {
        status = read_response(&mut reader) => status,
        () = trickle => panic!("the body was read to the end"),
    };
    assert_eq!(answered, 408);
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "answered after {elapsed:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = Server::new()
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive_timeout(Some(Duration::from_millis(500)));
    let addr = start(server, handler_options()).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send(&mut stream, &signed_request("idle-1", false)).await;
    assert_eq!(read_response(&mut stream).await, 200);
    // Kept alive: a second request on the same connection is served.
    send(&mut stream, &signed_request("idle-2", false)).await;
    assert_eq!(read_response(&mut stream).await, 200);
    let closed = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the idle connection was not closed");
    assert!(
        closed >= Duration::from_millis(400) && closed < Duration::from_secs(3),
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn with_the_cap_reached_a_delivery_is_served_once_a_slot_frees() {
    let server = Server::new()
        .max_connections(4)
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive_timeout(Some(Duration::from_secs(30)));
    let addr = start(server, handler_options()).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut stream = TcpStream::connect(addr).await.expect("connect (backlog)");
    send(&mut stream, &signed_request("capped", true)).await;
    let waiting =
        tokio::time::timeout(Duration::from_millis(700), read_response(&mut stream)).await;
    assert!(waiting.is_err(), "served beyond the cap");

    let start = Instant::now();
    drop(idle.pop());
    let status = tokio::time::timeout(Duration::from_secs(3), read_response(&mut stream))
        .await
        .expect("not served after a slot freed");
    assert_eq!(status, 200);
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// A connection to `to` from `source`: loopback addresses other than 127.0.0.1 stand for other
/// clients.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    socket.connect(to).await.expect("connect")
}

/// Past its share, a client's further connections are closed at once and another client is
/// served: without the per-client cap, one client's idle connections held every slot until the
/// header timeout (30 s here; the waits below are shorter, as nothing else frees a slot).
#[tokio::test]
async fn past_its_share_a_clients_connections_are_closed_and_another_is_served() {
    let server = Server::new()
        .max_connections(4)
        .max_connections_per_client(2)
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive_timeout(Some(Duration::from_secs(30)));
    let addr = start(server, handler_options()).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from([127, 0, 0, 2], addr).await);
    }
    // Accepted in order: the first two are served, the next two closed unanswered.
    for stream in &mut held[2..] {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("a connection past the client's share of 2 was kept open");
        assert!(
            matches!(read, Ok(0))
                || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
    }
    send(&mut held[0], &signed_request("first-of-its-share", false)).await;
    assert_eq!(read_response(&mut held[0]).await, 200);
    let mut other = connect_from([127, 0, 0, 3], addr).await;
    send(&mut other, &signed_request("another-client", true)).await;
    let status = tokio::time::timeout(Duration::from_secs(10), read_response(&mut other))
        .await
        .expect("another client was not served");
    assert_eq!(status, 200);
}

/// A client's place is given back however its connection ends: closed by the client, reset by
/// it, or dropped when the service panicked. With a share of 1, a place kept by any of them
/// would lock the client out for good.
#[tokio::test]
async fn a_clients_place_is_given_back_however_its_connection_ends() {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .route(
            "/panic",
            axum::routing::get(|| async {
                if true {
                    panic!("a service that panics");
                }
                "never"
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::new()
        .max_connections_per_client(1)
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive_timeout(Some(Duration::from_secs(30)));
    tokio::spawn(server.serve(listener, app));
    // The answer to a GET of `path` on a new connection from 127.0.0.2, read to its end (an
    // empty one when the connection was closed or reset).
    let get = |path: &'static str| async move {
        let mut stream = connect_from([127, 0, 0, 2], addr).await;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        send(&mut stream, request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    // The place is taken back as soon as the server sees the end: tried again for a while.
    let served_again = || async move {
        for _ in 0..50 {
            let answer = get("/").await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        get("/").await
    };
    let answer = get("/panic").await;
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = served_again().await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "after a panic: {answer}"
    );
    // Reset by the client, its request unanswered.
    let stream = connect_from([127, 0, 0, 2], addr).await;
    stream.set_zero_linger().expect("linger");
    drop(stream);
    let answer = served_again().await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "after a reset: {answer}"
    );
}

/// Every request carries its client's address as axum's `ConnectInfo`.
#[tokio::test]
async fn a_request_carries_its_clients_address() {
    use axum::extract::ConnectInfo;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
            peer.ip().to_string()
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(Server::new().serve(listener, app));
    let mut stream = connect_from([127, 0, 0, 2], addr).await;
    send(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n127.0.0.2"), "{answer}");
}

#[test]
fn a_client_is_an_ipv4_address_or_an_ipv6_64_unless_the_64_is_shared() {
    use ccai::server::client_network;
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    assert_eq!(client_network(ip("192.0.2.7")), ip("192.0.2.7"));
    assert_eq!(client_network(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    assert_eq!(
        client_network(ip("2001:db8:1:2:3:4:5:6")),
        ip("2001:db8:1:2::")
    );
    assert_ne!(
        client_network(ip("2001:db8:1:2::1")),
        client_network(ip("2001:db8:1:3::1"))
    );
    // Where a /64 is shared by design, each address is a client.
    assert_eq!(client_network(ip("::1")), ip("::1"));
    assert_eq!(client_network(ip("fe80::1:2")), ip("fe80::1:2"));
    assert_ne!(client_network(ip("fe80::1")), client_network(ip("fe80::2")));
    assert_ne!(client_network(ip("febf::1")), client_network(ip("febf::2")));
    assert_ne!(
        client_network(ip("2001:0:4136:e378:8000:63bf:3fff:fdd2")),
        client_network(ip("2001:0:4136:e378:8000:63bf:3fff:fdd3"))
    );
    // Just outside those ranges, the /64 again.
    assert_eq!(client_network(ip("fec0::1")), ip("fec0::"));
    assert_eq!(client_network(ip("2001:1::5")), ip("2001:1::"));
}

#[tokio::test]
async fn graceful_shutdown_finishes_and_returns() {
    let handler = ccai::webhook::create_handler(handler_options()).expect("handler");
    let app = axum::Router::new().route_service(serve_support::PATH, handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new()
            .shutdown_grace(Duration::from_secs(2))
            .serve_with_shutdown(listener, app, async {
                let _ = stopped.await;
            }),
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send(&mut stream, &signed_request("before-stop", false)).await;
    assert_eq!(read_response(&mut stream).await, 200);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("serve_with_shutdown did not return")
        .expect("join");
    assert!(closed_within(&mut stream, Duration::from_secs(1))
        .await
        .is_some());
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

/// The calling thread's CPU time so far (user + system), from `/proc/thread-self/stat`. A
/// `#[tokio::test]` runs its server and client on its own thread, apart from the other tests.
#[cfg(target_os = "linux")]
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// A request still in progress when the keep-alive timeout passes (here a body that never
/// comes, until the body timeout answers 408) keeps its connection open without the connection
/// task waking over and over: the idle check is put off, not retried at once.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_request_in_flight_past_the_keep_alive_timeout_costs_no_cpu() {
    let server = Server::new().keep_alive_timeout(Some(Duration::from_millis(200)));
    let options = handler_options().body_timeout(Some(Duration::from_secs(3)));
    let addr = start(server, options).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send(
        &mut stream,
        b"POST /webhook/ccai HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
    )
    .await;
    let before = cpu_time();
    assert_eq!(read_response(&mut stream).await, 408);
    let spent = cpu_time().saturating_sub(before);
    // Spinning burnt about 2.7 s of the 3 s; waiting costs next to nothing.
    assert!(spent < Duration::from_millis(800), "burnt {spent:?} of CPU");
}

/// A client that pipelines requests and never reads the answers cannot keep its connection (and
/// with a cap of one, the server) forever: once an answer has waited `write_timeout` to be
/// written, the connection is dropped and the slot goes to the next client.
#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let server = Server::new()
        .max_connections(1)
        .header_read_timeout(Duration::from_secs(1))
        .keep_alive_timeout(Some(Duration::from_millis(300)))
        .write_timeout(Duration::from_secs(1));
    let addr = start(server, handler_options()).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let mut stuck = socket.connect(addr).await.expect("connect");
    let pipelined = b"GET /webhook/ccai HTTP/1.1\r\nHost: x\r\n\r\n".repeat(50_000);
    // The server stops reading once it cannot write: this write never finishes.
    let _ = tokio::time::timeout(Duration::from_secs(2), stuck.write_all(&pipelined)).await;
    let mut next = TcpStream::connect(addr).await.expect("connect");
    send(&mut next, &signed_request("after-a-stuck-client", true)).await;
    let status = tokio::time::timeout(Duration::from_secs(10), read_response(&mut next))
        .await
        .expect("the only slot is still held by a client that stopped reading");
    assert_eq!(status, 200);
}

/// The `VerifiedEvent` extractor reads the body within `DEFAULT_BODY_TIMEOUT` (30 s, on tokio's
/// paused clock here), so a head announcing a body that never comes gets 408 rather than holding
/// the request open for good.
#[tokio::test(start_paused = true)]
async fn the_extractor_answers_408_to_a_body_that_never_comes() {
    use ccai::webhook::{VerifiedEvent, Verifier};
    async fn receive(VerifiedEvent(_): VerifiedEvent) -> &'static str {
        "ok"
    }
    let verifier =
        Verifier::new(serve_support::CLIENT_ID, serve_support::SECRET).expect("verifier");
    let app = axum::Router::new()
        .route(serve_support::PATH, axum::routing::post(receive))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(Server::new().serve(listener, app));
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send(
        &mut stream,
        b"POST /webhook/ccai HTTP/1.1\r\nHost: x\r\nX-CCAI-Signature: x\r\nContent-Length: 100\r\n\r\n",
    )
    .await;
    let started = tokio::time::Instant::now();
    let limit = ccai::server::DEFAULT_BODY_TIMEOUT + Duration::from_secs(5);
    let status = tokio::time::timeout(limit, read_response(&mut stream))
        .await
        .expect("no answer: the extractor waits for the body for good");
    assert_eq!(status, 408);
    assert!(started.elapsed() >= ccai::server::DEFAULT_BODY_TIMEOUT);
}

/// Timeouts and a grace of `Duration::MAX` (no limit, to a caller) are clamped to
/// [`ccai::server::MAX_TIMEOUT`]: they used to panic each connection's task (a deadline past what
/// an `Instant` holds), so every request went unanswered.
#[tokio::test]
async fn timeouts_of_duration_max_serve_instead_of_panicking() {
    let server = Server::new()
        .header_read_timeout(Duration::MAX)
        .keep_alive_timeout(Some(Duration::MAX))
        .write_timeout(Duration::MAX)
        .shutdown_grace(Duration::MAX);
    let addr = start(server, handler_options()).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    for i in 0..3 {
        send(&mut stream, &signed_request(&format!("max-{i}"), false)).await;
        assert_eq!(read_response(&mut stream).await, 200, "request {i}");
    }
}
