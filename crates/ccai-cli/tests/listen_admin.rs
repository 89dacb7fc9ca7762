//! `ccai listen --admin-port` and `--log-format json`, end to end: the real binary, a real SQLite
//! file, real HTTP on 127.0.0.1. Nothing here measures time: waits have generous deadlines.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{closed_port, Listening, Sandbox, WAIT};

const CLIENT_ID: &str = "admin-client";
const SECRET: &str = "admin-secret-never-logged";

fn ccai(sandbox: &Sandbox) -> Command {
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    cmd
}

fn body(hash: &str) -> String {
    format!(r#"{{"eventType":"message.sent","eventHash":"{hash}","data":{{"To":"+14155550100"}}}}"#)
}

fn signature(hash: &str) -> String {
    ccai::webhook::sign(CLIENT_ID, hash, SECRET)
}

/// A signature that is well formed but made with another secret.
fn forged(hash: &str) -> String {
    ccai::webhook::sign(CLIENT_ID, hash, "not-the-secret")
}

async fn post(http: &reqwest::Client, url: &str, hash: &str, signature: &str) -> StatusCode {
    http.post(url)
        .header("content-type", "application/json")
        .header("x-ccai-signature", signature)
        .body(body(hash))
        .send()
        .await
        .expect("listen answers")
        .status()
}

/// The admin listener's base URL, from the banner (a 0.0.0.0 bind is reached on 127.0.0.1).
fn admin_url(listen: &Listening) -> String {
    let line = listen
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("Admin listener on "))
        .unwrap_or_else(|| panic!("no admin line in {:?}", listen.banner));
    let url = line.split_whitespace().next().expect("url");
    url.replace("0.0.0.0", "127.0.0.1")
}

async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("admin answers");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn wait_for_status(http: &reqwest::Client, url: &str, want: StatusCode) -> String {
    let start = Instant::now();
    loop {
        let (status, text) = get(http, url, None).await;
        if status == want {
            return text;
        }
        assert!(
            start.elapsed() < WAIT,
            "{url} stayed {status} ({text}), wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_count_the_deliveries_that_were_sent() {
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--admin-port", "0"],
    ));
    let admin = admin_url(&listen);
    assert!(admin.starts_with("http://127.0.0.1:"), "{admin}");
    let http = reqwest::Client::new();

    assert_eq!(
        get(&http, &format!("{admin}/healthz"), None).await.0,
        StatusCode::OK
    );
    let sent = [
        ("m-1", signature("m-1"), StatusCode::OK),
        ("m-2", signature("m-2"), StatusCode::OK),
        ("m-1", signature("m-1"), StatusCode::OK),
        ("m-3", forged("m-3"), StatusCode::UNAUTHORIZED),
        ("m-4", forged("m-4"), StatusCode::UNAUTHORIZED),
        ("m-5", "short".to_owned(), StatusCode::UNAUTHORIZED),
    ];
    for (hash, signature, want) in &sent {
        assert_eq!(
            post(&http, &listen.url, hash, signature).await,
            *want,
            "{hash}"
        );
    }

    let (status, text) = get(&http, &format!("{admin}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK);
    let received = "ccai_deliveries_received_total";
    assert_eq!(
        sample(&text, received, &[r#"outcome="accepted""#]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, received, &[r#"outcome="duplicate""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            received,
            &[r#"outcome="rejected""#, r#"reason="invalid_signature""#]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, received, &[r#"outcome="conflict""#]),
        None,
        "{text}"
    );
    // Nothing forwards: both events wait.
    assert_eq!(
        sample(&text, "ccai_queue_depth", &[r#"status="pending""#]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ccai_queue_depth", &[r#"status="dead""#]),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "ccai_oldest_pending_age_seconds", &[]).is_some(),
        "{text}"
    );
    // Histograms, in buckets; one store commit at least per accepted or duplicate delivery.
    assert!(
        text.contains("# TYPE ccai_request_duration_seconds histogram"),
        "{text}"
    );
    let timed: f64 = ["accepted", "duplicate", "rejected"]
        .iter()
        .filter_map(|o| {
            sample(
                &text,
                "ccai_request_duration_seconds_count",
                &[&format!("outcome=\"{o}\"")],
            )
        })
        .sum();
    assert_eq!(timed, 6.0, "{text}");
    let writes = sample(&text, "ccai_store_batch_size_sum", &[]).expect("batch size");
    assert!(writes >= 3.0, "{text}");
    // No event hash, signature or secret in any label.
    for needle in ["m-1", "m-2", "m-3", SECRET, &signature("m-1")] {
        assert!(!text.contains(needle), "{needle} in {text}");
    }
}

#[tokio::test]
async fn readyz_is_503_while_the_store_cannot_take_writes() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("inbox.db");
    let store = file.to_str().expect("utf-8 path").to_owned();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--admin-port", "0", "--store", &store],
    ));
    let admin = admin_url(&listen);
    let http = reqwest::Client::new();
    let readyz = format!("{admin}/readyz");
    wait_for_status(&http, &readyz, StatusCode::OK).await;

    // Another writer holds the database's write lock.
    let lock = rusqlite::Connection::open(&file).expect("open the store");
    lock.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let text = wait_for_status(&http, &readyz, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(text.contains("the store cannot take writes"), "{text}");
    assert_eq!(
        get(&http, &format!("{admin}/healthz"), None).await.0,
        StatusCode::OK
    );

    lock.execute_batch("ROLLBACK").expect("unlock");
    drop(lock);
    wait_for_status(&http, &readyz, StatusCode::OK).await;
}

/// The store's counts cannot be read for a scrape (its events table gone, as another program
/// could leave it): the queue gauges keep their last values, and `ccai_store_readable` says they
/// are stale; once the store reads again, it says so.
#[tokio::test]
async fn metrics_say_when_the_queue_gauges_could_not_be_read() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("inbox.db");
    let store = file.to_str().expect("utf-8 path").to_owned();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--admin-port", "0", "--store", &store],
    ));
    let metrics = format!("{}/metrics", admin_url(&listen));
    let http = reqwest::Client::new();
    assert_eq!(
        post(&http, &listen.url, "r-1", &signature("r-1")).await,
        StatusCode::OK
    );
    let (_, text) = get(&http, &metrics, None).await;
    assert_eq!(
        sample(&text, "ccai_store_readable", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ccai_queue_depth", &[r#"status="pending""#]),
        Some(1.0),
        "{text}"
    );

    let rename = |from: &str, to: &str| {
        let conn = rusqlite::Connection::open(&file).expect("open the store");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn.execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .expect("rename");
    };
    rename("events", "events_away");
    let (_, text) = get(&http, &metrics, None).await;
    assert_eq!(
        sample(&text, "ccai_store_readable", &[]),
        Some(0.0),
        "{text}"
    );
    rename("events_away", "events");
    let (_, text) = get(&http, &metrics, None).await;
    assert_eq!(
        sample(&text, "ccai_store_readable", &[]),
        Some(1.0),
        "{text}"
    );
}

/// A newer ccai migrates the file under a running `ccai listen`: `/readyz` says so once its last
/// probe's result is no longer reused (a second), and the next delivery is refused (503) rather than stored under the old schema.
#[tokio::test]
async fn readyz_is_503_and_deliveries_are_refused_once_a_newer_ccai_migrated_the_store() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("inbox.db");
    let store = file.to_str().expect("utf-8 path").to_owned();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--admin-port", "0", "--store", &store],
    ));
    let http = reqwest::Client::new();
    let readyz = format!("{}/readyz", admin_url(&listen));
    wait_for_status(&http, &readyz, StatusCode::OK).await;
    assert_eq!(
        post(&http, &listen.url, "before", &signature("before")).await,
        StatusCode::OK
    );

    let newer = ccai::inbox::SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&file)
        .expect("open the store")
        .execute_batch(&format!(
            "ALTER TABLE events ADD COLUMN future TEXT; PRAGMA user_version = {newer};"
        ))
        .expect("migrate as a newer ccai would");
    // Past the second for which `/readyz` reuses its last probe (the 200 above): the next call
    // probes the file again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, text) = get(&http, &readyz, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(
        text.contains(&format!("schema changed to version {newer}"))
            && text.contains("run the newer ccai"),
        "{text}"
    );
    assert_eq!(
        post(&http, &listen.url, "after", &signature("after")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let stored: i64 = rusqlite::Connection::open(&file)
        .expect("open the store")
        .query_row(
            "SELECT count(*) FROM events WHERE event_hash = 'after'",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(stored, 0, "nothing stored under the old schema");
}

#[tokio::test]
async fn readyz_without_a_store_is_ready_while_accepting() {
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--no-store", "--admin-port", "0"],
    ));
    let admin = admin_url(&listen);
    let http = reqwest::Client::new();
    wait_for_status(&http, &format!("{admin}/readyz"), StatusCode::OK).await;
    let (status, text) = get(&http, &format!("{admin}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text.contains("ccai_queue_depth"), "{text}");
}

/// An admin listener on every address, on free ports.
const OFF_LOOPBACK: &[&str] = &[
    "--port",
    "0",
    "--admin-port",
    "0",
    "--admin-host",
    "0.0.0.0",
];

#[tokio::test]
async fn an_admin_host_off_loopback_requires_the_token() {
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(ccai(&sandbox), OFF_LOOPBACK));
    let token = listen
        .banner
        .iter()
        .find_map(|l| l.split_once("Admin token (Authorization: Bearer …): "))
        .map(|(_, token)| token.trim().to_owned())
        .unwrap_or_else(|| panic!("no generated token in {:?}", listen.banner));
    assert!(token.len() >= 32, "{token}");
    let admin = admin_url(&listen);
    let http = reqwest::Client::new();
    for route in ["/healthz", "/readyz", "/metrics"] {
        let url = format!("{admin}{route}");
        assert_eq!(
            get(&http, &url, None).await.0,
            StatusCode::UNAUTHORIZED,
            "{route}"
        );
        assert_eq!(
            get(&http, &url, Some("wrong")).await.0,
            StatusCode::UNAUTHORIZED,
            "{route}"
        );
    }
    assert_eq!(
        get(&http, &format!("{admin}/healthz"), Some(&token))
            .await
            .0,
        StatusCode::OK
    );

    // A given token (here from the environment) is used and not printed.
    let sandbox = Sandbox::new();
    let mut cmd = ccai(&sandbox);
    cmd.env("CCAI_ADMIN_TOKEN", "given-admin-token");
    let listen = Listening::announced(Listening::launch(cmd, OFF_LOOPBACK));
    assert!(
        !listen
            .banner
            .iter()
            .any(|l| l.contains("given-admin-token")),
        "{:?}",
        listen.banner
    );
    let admin = admin_url(&listen);
    let metrics = format!("{admin}/metrics");
    assert_eq!(get(&http, &metrics, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&http, &metrics, Some("given-admin-token")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn json_logs_parse_and_carry_no_secret() {
    let sandbox = Sandbox::new();
    let mut cmd = ccai(&sandbox);
    cmd.env("CCAI_LOG", "ccai=debug");
    let target = format!("http://127.0.0.1:{}/hook", closed_port());
    let listen = Listening::announced(Listening::launch(
        cmd,
        &[
            "--port",
            "0",
            "--log-format",
            "json",
            "--forward-to",
            &target,
            "--retry-schedule",
            "100ms,100ms",
            "--admin-port",
            "0",
        ],
    ));
    let http = reqwest::Client::new();
    let url = &listen.url;
    assert_eq!(
        post(&http, url, "j-1", &signature("j-1")).await,
        StatusCode::OK
    );
    assert_eq!(
        post(&http, url, "j-2", &forged("j-2")).await,
        StatusCode::UNAUTHORIZED
    );

    // The forward to the closed port fails three times, then the event is dead.
    let mut lines = listen.banner.clone();
    let start = Instant::now();
    while !lines.iter().any(|l| l.contains("DEAD after")) {
        assert!(start.elapsed() < WAIT, "no dead event; stderr: {lines:?}");
        if let Ok(line) = listen.err.recv_timeout(Duration::from_millis(100)) {
            lines.push(line);
        }
    }
    while let Ok(line) = listen.err.recv_timeout(Duration::from_millis(300)) {
        lines.push(line);
    }
    // Three attempts, in the plural (it said "3 attempt(s)").
    assert!(
        lines
            .iter()
            .any(|l| l.contains("-> DEAD after 3 attempts: ")),
        "{lines:?}"
    );

    let mut logs = Vec::new();
    for line in &lines {
        for secret in [SECRET, &signature("j-1"), &forged("j-2")] {
            assert!(!line.contains(secret), "a secret in {line}");
        }
        if line.starts_with('{') {
            let log: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            for key in ["timestamp", "level", "message", "target"] {
                assert!(log.get(key).is_some(), "no {key} in {line}");
            }
            logs.push(log);
        } else {
            // The CLI's own notices (banner, dead events) stay plain lines; no log line is text.
            for level in [" TRACE ", " DEBUG ", " INFO ", " WARN ", " ERROR "] {
                assert!(!line.contains(level), "a text log line: {line}");
            }
        }
    }
    let messages: Vec<&str> = logs.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages
            .iter()
            .filter(|m| m.contains("an attempt failed"))
            .count()
            >= 3,
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("webhook delivery rejected")),
        "{messages:?}"
    );
    // The three forwards are counted: two retried, the last one dead.
    let (_, text) = get(&http, &format!("{}/metrics", admin_url(&listen)), None).await;
    let attempts = "ccai_forward_attempts_total";
    assert_eq!(
        sample(&text, attempts, &[r#"outcome="retry""#]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, attempts, &[r#"outcome="dead""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, attempts, &[r#"outcome="delivered""#]),
        None,
        "{text}"
    );
    assert_eq!(
        sample(&text, "ccai_deliveries_dead_total", &[r#"reason="failed""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ccai_queue_depth", &[r#"status="dead""#]),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("127.0.0.1"), "no URL in a label: {text}");
    // Fields stay fields: the failed attempt names the event by its hash, not its body.
    let failed = logs
        .iter()
        .find(|l| l["message"] == "an attempt failed")
        .expect("a failed attempt");
    assert_eq!(failed["event_hash"], "j-1", "{failed}");
    assert_eq!(failed["level"], "INFO", "{failed}");
}

/// With `--ui`, the browser view is served on the admin listener too (and still on its own port).
#[tokio::test]
async fn the_browser_view_is_served_on_the_admin_listener_too() {
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--ui", "--ui-port", "0", "--admin-port", "0"],
    ));
    let admin = admin_url(&listen);
    let http = reqwest::Client::new();
    assert_eq!(
        post(&http, &listen.url, "view-1", &signature("view-1")).await,
        StatusCode::OK
    );
    let (status, text) = get(&http, &format!("{admin}/api/stats"), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let stats: serde_json::Value = serde_json::from_str(&text).expect("stats JSON");
    assert_eq!(stats["received"], 1, "{text}");
    let (status, page) = get(&http, &format!("{admin}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<html"), "{page}");
    let (status, _) = get(&http, &format!("{admin}/healthz"), None).await;
    assert_eq!(status, StatusCode::OK);
}

/// A view without a token is not served on an admin listener other hosts reach: its only guard
/// there would be the `Host` check, and a client elsewhere writes `Host: localhost` itself. With
/// a view token it is served there, behind that token.
#[tokio::test]
async fn a_view_without_a_token_stays_off_an_admin_listener_off_the_loopback() {
    let sandbox = Sandbox::new();
    let mut args = OFF_LOOPBACK.to_vec();
    args.extend(["--ui", "--ui-port", "0"]);
    let listen = Listening::announced(Listening::launch(ccai(&sandbox), &args));
    let token = listen
        .banner
        .iter()
        .find_map(|l| l.split_once("Admin token (Authorization: Bearer …): "))
        .map(|(_, token)| token.trim().to_owned())
        .expect("a generated admin token");
    let admin = admin_url(&listen);
    let http = reqwest::Client::new();
    assert_eq!(
        post(&http, &listen.url, "off-1", &signature("off-1")).await,
        StatusCode::OK
    );
    let stats = format!("{admin}/api/stats");
    for given in [None, Some(token.as_str())] {
        let response = http
            .get(&stats)
            .header("host", "localhost")
            .bearer_auth(given.unwrap_or("none"))
            .send()
            .await
            .expect("admin answers");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_ne!(status, StatusCode::OK, "the view answered: {text}");
        assert!(!text.contains("received"), "{text}");
    }
    assert!(
        listen
            .banner
            .iter()
            .any(|l| l.contains("the browser view is not served on the admin listener")),
        "{:?}",
        listen.banner
    );

    // With a token of its own, the view is served there, behind it.
    let sandbox = Sandbox::new();
    let mut args = OFF_LOOPBACK.to_vec();
    args.extend([
        "--ui",
        "--ui-port",
        "0",
        "--ui-token",
        "a-long-enough-view-token",
    ]);
    let listen = Listening::announced(Listening::launch(ccai(&sandbox), &args));
    let stats = format!("{}/api/stats", admin_url(&listen));
    assert_eq!(get(&http, &stats, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, text) = get(&http, &stats, Some("a-long-enough-view-token")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

/// Without an admin token (the loopback default), the admin routes answer only requests that
/// name the loopback in `Host`: a page elsewhere cannot read them by DNS rebinding.
#[tokio::test]
async fn admin_routes_without_a_token_answer_only_to_a_loopback_host() {
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--admin-port", "0"],
    ));
    let admin = admin_url(&listen);
    let http = reqwest::Client::new();
    let port = admin.rsplit(':').next().expect("port").to_owned();
    for route in ["/healthz", "/readyz", "/metrics"] {
        let url = format!("{admin}{route}");
        let foreign = http
            .get(&url)
            .header("host", format!("attacker.example:{port}"))
            .send()
            .await
            .expect("admin answers");
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN, "{route}");
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            let local = http
                .get(&url)
                .header("host", format!("{host}:{port}"))
                .send()
                .await
                .expect("admin answers");
            assert_ne!(local.status(), StatusCode::FORBIDDEN, "{route} as {host}");
        }
    }
}

/// The scheme of `Authorization: Bearer` is case-insensitive; a token that no HTTP header can
/// carry (not visible ASCII) is refused at start instead of locking everyone out.
#[tokio::test]
async fn the_admin_token_is_one_a_header_can_carry_and_any_bearer_case_works() {
    let sandbox = Sandbox::new();
    let mut cmd = ccai(&sandbox);
    cmd.arg("listen")
        .args(OFF_LOOPBACK)
        .args(["--admin-token", "pässwörd-pässwörd-1"]);
    let out = common::exits(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(err.contains("--admin-token must be visible ASCII"), "{err}");
    assert!(!err.contains("pässwörd"), "{err}");

    let sandbox = Sandbox::new();
    let mut cmd = ccai(&sandbox);
    cmd.env("CCAI_ADMIN_TOKEN", "0123456789abcdefXYZ");
    let listen = Listening::announced(Listening::launch(cmd, OFF_LOOPBACK));
    let healthz = format!("{}/healthz", admin_url(&listen));
    let http = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let status = http
            .get(&healthz)
            .header("authorization", format!("{scheme} 0123456789abcdefXYZ"))
            .send()
            .await
            .expect("admin answers")
            .status();
        assert_eq!(status, StatusCode::OK, "{scheme}");
    }
    let status = http
        .get(&healthz)
        .header("authorization", "Basic 0123456789abcdefXYZ")
        .send()
        .await
        .expect("admin answers")
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Connections to the admin port that never send a request cannot use up the process's file
/// descriptors: with 256 of them, 300 such connections left the receiver unable to accept.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_flood_of_idle_admin_connections_leaves_the_receiver_serving() {
    use std::io::Write;
    let sandbox = Sandbox::new();
    let port = closed_port().to_string();
    let admin_port = closed_port().to_string();
    let cmd = common::wrapped(
        &ccai(&sandbox),
        "sh",
        &["-c", "ulimit -n 256 && exec \"$0\" \"$@\""],
    );
    let listen = Listening::announced(Listening::launch(
        cmd,
        &["--port", &port, "--admin-port", &admin_port, "--no-store"],
    ));
    let admin = format!("127.0.0.1:{admin_port}");
    let mut held = Vec::new();
    for _ in 0..300 {
        let Ok(mut stream) = std::net::TcpStream::connect(&admin) else {
            break;
        };
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n");
        held.push(stream);
    }
    // Give the listener time to accept what it will.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let status = http
        .post(&listen.url)
        .header("content-type", "application/json")
        .header("x-ccai-signature", signature("flood-1"))
        .body(body("flood-1"))
        .send()
        .await
        .map(|r| r.status());
    assert!(
        matches!(status, Ok(StatusCode::OK)),
        "the receiver did not answer with {} idle admin connections open: {status:?}",
        held.len()
    );
    drop(held);
}

/// `/readyz` probes the store's own file, whatever its name: it opened the name as shown in
/// messages, which for a file name that is not UTF-8 (`inbox-\xe9.db` shown `inbox-�.db`) is
/// another file, missing, so the receiver was never ready while it stored every delivery.
#[cfg(unix)]
#[tokio::test]
async fn readyz_probes_a_store_whose_name_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let sandbox = Sandbox::new();
    let file = sandbox
        .path()
        .join(std::ffi::OsStr::from_bytes(b"inbox-\xe9.db"));
    let mut cmd = ccai(&sandbox);
    cmd.args(["listen", "--port", "0", "--admin-port", "0", "--store"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ccai listen");
    let out = common::lines(child.stdout.take().expect("stdout"));
    let err = common::lines(child.stderr.take().expect("stderr"));
    let listen = Listening::announced(common::Spawned { child, out, err });
    let http = reqwest::Client::new();
    assert_eq!(
        post(&http, &listen.url, "latin-1", &signature("latin-1")).await,
        StatusCode::OK
    );
    let readyz = format!("{}/readyz", admin_url(&listen));
    wait_for_status(&http, &readyz, StatusCode::OK).await;
    assert!(file.exists());
}

/// A full disk: every delivery is refused (503), and `/readyz` says so, so that a load balancer
/// sends them elsewhere. The probe's write lock does not need the disk, so it answered "ready"
/// all along. Skipped, saying why, where `unshare` cannot make the namespaces (some containers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_a_full_disk_refuses_deliveries() {
    let sandbox = Sandbox::new();
    let Some((cmd, small)) = common::on_small_disk(&sandbox, &ccai(&sandbox)) else {
        return;
    };
    let store = format!("{small}/inbox.db");
    let listen = Listening::announced(Listening::launch(
        cmd,
        &[
            "--port",
            "0",
            "--admin-port",
            "0",
            "--quiet",
            "--store",
            &store,
        ],
    ));
    let http = reqwest::Client::new();
    let readyz = format!("{}/readyz", admin_url(&listen));
    wait_for_status(&http, &readyz, StatusCode::OK).await;
    // About 1 KiB per event, with a filler: the disk is full long before this many.
    let filler = "z".repeat(1024);
    let mut refused = false;
    for i in 0..20_000 {
        let hash = format!("full-{i}");
        let status = http
            .post(&listen.url)
            .header("content-type", "application/json")
            .header("x-ccai-signature", signature(&hash))
            .body(format!(
                r#"{{"eventType":"message.sent","eventHash":"{hash}","data":{{"To":"+1","Message":"{filler}"}}}}"#
            ))
            .send()
            .await
            .expect("listen answers")
            .status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refused = true;
            break;
        }
        assert_eq!(status, StatusCode::OK, "{hash}");
    }
    assert!(refused, "the disk never filled");
    let (status, text) = get(&http, &readyz, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("the disk is full"), "{text}");
    assert_eq!(
        get(&http, &format!("{}/healthz", admin_url(&listen)), None)
            .await
            .0,
        StatusCode::OK
    );
}

/// A flag that only does something beside another (`--admin-token` with `--admin-port`,
/// `--ui-port` with `--ui`) was ignored without a word when typed alone; it is refused with one
/// line saying what to add, before anything is created. `CCAI_ADMIN_TOKEN` alone, set for more
/// than one run, is still accepted and ignored.
#[tokio::test]
async fn a_flag_typed_without_the_one_it_needs_is_refused() {
    let token = "typed-admin-token-0123";
    for (args, said) in [
        (
            &["--admin-token", token][..],
            "--admin-token applies to the admin listener, which --admin-port starts: add --admin-port N",
        ),
        (
            &["--admin-host", "0.0.0.0"][..],
            "--admin-host applies to the admin listener, which --admin-port starts: add --admin-port N",
        ),
        (
            &["--ui-token", token][..],
            "--ui-token applies to the browser view, which --ui starts: add --ui",
        ),
        (&["--ui-port", "0"][..], "--ui-port applies to the browser view"),
        (&["--ui-host", "127.0.0.1"][..], "--ui-host applies to the browser view"),
        // clap's `requires = "ui"` let this one pass: `--ui` conflicts with `--no-store`.
        (
            &["--no-store", "--ui-port", "0"][..],
            "--ui-port applies to the browser view of the store, which --no-store does not keep: drop --ui-port",
        ),
    ] {
        let sandbox = Sandbox::new();
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--port", "0"]).args(args);
        let out = common::exits(cmd).await;
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(!err.contains(token), "{err}");
        assert!(!sandbox.data_dir().exists(), "{args:?}: a store was created");
        assert!(!sandbox.config_dir().exists(), "{args:?}: credentials made");
    }

    // Given with the flag they need, they are taken.
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &[
            "--port",
            "0",
            "--admin-port",
            "0",
            "--admin-host",
            "127.0.0.1",
            "--admin-token",
            token,
            "--ui",
            "--ui-port",
            "0",
        ],
    ));
    let http = reqwest::Client::new();
    let healthz = format!("{}/healthz", admin_url(&listen));
    assert_eq!(get(&http, &healthz, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&http, &healthz, Some(token)).await.0, StatusCode::OK);
    assert!(
        listen.banner.iter().any(|l| l.starts_with("UI on ")),
        "{:?}",
        listen.banner
    );
    drop(listen);

    // The environment's token alone starts no admin listener and is no error.
    let sandbox = Sandbox::new();
    let mut cmd = ccai(&sandbox);
    cmd.env("CCAI_ADMIN_TOKEN", token)
        .env("CCAI_UI_TOKEN", token);
    let listen = Listening::announced(Listening::launch(cmd, &["--port", "0"]));
    assert!(
        !listen
            .banner
            .iter()
            .any(|l| l.contains("Admin listener") || l.starts_with("UI on ")),
        "{:?}",
        listen.banner
    );
}

/// `CCAI_LOG=warning` is `warn` (tracing read it as "only the target `warning`", so the receiver
/// logged nothing at all, not even its warnings); a word that is neither a level nor a known
/// target is left out with one warning line naming the levels, instead of silently doing that.
#[tokio::test]
async fn ccai_log_takes_warning_and_names_the_levels_for_an_unknown_word() {
    let sandbox = Sandbox::new();
    let mut cmd = ccai(&sandbox);
    cmd.env("CCAI_LOG", "warning");
    let target = format!("http://127.0.0.1:{}/hook", closed_port());
    let listen = Listening::announced(Listening::launch(
        cmd,
        &["--port", "0", "--no-store", "--forward-to", &target],
    ));
    assert!(
        !listen.banner.iter().any(|l| l.contains("CCAI_LOG")),
        "{:?}",
        listen.banner
    );
    // With --no-store a failed forward is answered 500, which the library logs as a warning.
    let http = reqwest::Client::new();
    let status = post(&http, &listen.url, "w-1", &signature("w-1")).await;
    assert!(status.is_server_error(), "{status}");
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < WAIT, "no warning logged");
        if let Ok(line) = listen.err.recv_timeout(Duration::from_millis(100)) {
            if line.contains(" WARN ") && line.contains("webhook delivery failed") {
                break;
            }
        }
    }

    for value in ["verbose", "verbose,ccai=debug"] {
        let mut cmd = ccai(&sandbox);
        cmd.env("CCAI_LOG", value)
            .args(["sign", "--event-hash", "h"]);
        let out = cmd.output().expect("run ccai sign");
        assert!(out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err,
            "warning: ignoring \"verbose\" in CCAI_LOG: not a log level (trace, debug, info, \
             warn, error or off) nor a known target (for another, write target=level)\n",
            "{value}"
        );
    }
    // No line is logged under `ccai_cli` (the CLI's are under `ccai::cli`): alone, that word
    // showed nothing at all, not even errors.
    let mut cmd = ccai(&sandbox);
    cmd.env("CCAI_LOG", "ccai_cli")
        .args(["sign", "--event-hash", "h"]);
    let out = cmd.output().expect("run ccai sign");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warning: ignoring \"ccai_cli\" in CCAI_LOG: not a log level (trace, debug, info, warn, \
         error or off) nor a known target (for another, write target=level)\n"
    );
    // A level or a known target says nothing.
    for value in [
        "warning",
        "Information",
        "ccai=warning",
        "ccai::inbox",
        "debug",
    ] {
        let mut cmd = ccai(&sandbox);
        cmd.env("CCAI_LOG", value)
            .args(["sign", "--event-hash", "h"]);
        let out = cmd.output().expect("run ccai sign");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{value}");
    }
}

/// A connection to `to` from `source`: loopback addresses other than 127.0.0.1 stand for other
/// clients.
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

/// The admin listener's address, from its URL.
fn admin_addr(admin: &str) -> SocketAddr {
    admin
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{admin}: {e}"))
}

/// Opens a live-update stream from `source` on a connection of its own: the connection (kept
/// open) and the head of the answer (with its body when it is refused).
async fn open_stream(source: [u8; 4], to: SocketAddr) -> (std::net::TcpStream, String) {
    use std::io::{Read, Write};
    let mut stream = connect_from(source, to).await;
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream
        .write_all(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let mut head = String::from_utf8_lossy(&head).into_owned();
    if !head.starts_with("HTTP/1.1 200") {
        // A refusal is a short JSON body, sent whole.
        let mut body = [0u8; 512];
        if let Ok(n) = stream.read(&mut body) {
            head.push_str(&String::from_utf8_lossy(&body[..n]));
        }
    }
    (stream, head)
}

/// A client bound to `source`, giving up on an answer after `timeout`.
fn client_from(source: [u8; 4], timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(source))
        .timeout(timeout)
        .build()
        .expect("client")
}

/// The view's live-update streams are capped below the admin listener's connection cap: pages
/// left open, or clients opening stream after stream, took every connection it serves, and
/// `/healthz` and `/readyz` went unanswered (a probe's timeout: a restart, or out of the pool).
/// A stream past the cap is refused with a 503, which the page retries. Five clients (8 streams
/// each at most) open more than the 32 streams served in all.
#[tokio::test]
async fn open_view_streams_leave_the_admin_probes_answered() {
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--ui", "--ui-port", "0", "--admin-port", "0"],
    ));
    let admin = admin_url(&listen);
    let addr = admin_addr(&admin);
    let mut held = Vec::new();
    let mut refused = None;
    'clients: for client in 1..=5u8 {
        for _ in 0..8 {
            let (stream, head) = open_stream([127, 0, 0, client], addr).await;
            if head.starts_with("HTTP/1.1 200") {
                held.push(stream);
            } else {
                refused = Some(head);
                break 'clients;
            }
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("{} streams open, none refused", held.len()));
    assert_eq!(held.len(), 32, "{refused}");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after"), "{refused}");
    assert!(
        refused.contains("32 live-update streams are open"),
        "{refused}"
    );
    let http = client_from([127, 0, 0, 6], Duration::from_secs(5));
    for probe in ["/healthz", "/readyz"] {
        let status = http
            .get(format!("{admin}{probe}"))
            .send()
            .await
            .map(|r| r.status());
        assert!(
            matches!(status, Ok(StatusCode::OK)),
            "{probe} with {} streams open: {status:?}",
            held.len()
        );
    }
    drop(held);
}

/// One client cannot take every live-update stream: it gets 8, and the next is refused with a
/// 503 that says why, while another client still gets one. A client opening stream after stream
/// left every other page of the view without live updates.
#[tokio::test]
async fn one_client_cannot_take_every_live_update_stream() {
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--ui", "--ui-port", "0", "--admin-port", "0"],
    ));
    let addr = admin_addr(&admin_url(&listen));
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..=32 {
        let (stream, head) = open_stream([127, 0, 0, 2], addr).await;
        if head.starts_with("HTTP/1.1 200") {
            held.push(stream);
        } else {
            refused = Some(head);
            break;
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("{} streams open, none refused", held.len()));
    assert_eq!(held.len(), 8, "{refused}");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after"), "{refused}");
    assert!(
        refused.contains("8 live-update streams are open from your address"),
        "{refused}"
    );
    for other in [[127, 0, 0, 3], [127, 0, 0, 1]] {
        let (stream, head) = open_stream(other, addr).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{other:?}: {head}");
        held.push(stream);
    }
    drop(held);
}

/// A page that goes away gives its client's place back: with all 8 of one client's streams
/// closed, it gets a stream again at once, not after the 15 s keep-alive finds a connection
/// closed (tried for 10 s, as the server sees each close on its own time).
#[tokio::test]
async fn a_closed_pages_stream_is_given_back_to_its_client() {
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--ui", "--ui-port", "0", "--admin-port", "0"],
    ));
    let addr = admin_addr(&admin_url(&listen));
    let mut held = Vec::new();
    for _ in 0..8 {
        let (stream, head) = open_stream([127, 0, 0, 2], addr).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(stream);
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    let head = loop {
        let (_stream, head) = open_stream([127, 0, 0, 2], addr).await;
        if head.starts_with("HTTP/1.1 200") || Instant::now() > deadline {
            break head;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// One client trickling request heads on many admin connections cannot keep another's probes
/// from being answered: with only the listener's cap of 64, 80 such connections from one
/// address held every slot until the 10 s header timeout, and `/healthz` went unanswered (a
/// load balancer pulled a healthy receiver). Past its share, a client's connections are closed
/// at once. The probes wait at most 5 s: under the header timeout, which alone freed a slot.
#[tokio::test]
async fn one_client_trickling_admin_connections_leaves_anothers_probes_answered() {
    use std::io::{Read, Write};
    let sandbox = Sandbox::new();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--admin-port", "0", "--no-store"],
    ));
    let admin = admin_url(&listen);
    let addr = admin_addr(&admin);
    let mut held = Vec::new();
    for _ in 0..80 {
        let mut stream = connect_from([127, 0, 0, 2], addr).await;
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        held.push(stream);
    }
    for other in [[127, 0, 0, 3], [127, 0, 0, 1]] {
        let status = client_from(other, Duration::from_secs(5))
            .get(format!("{admin}/healthz"))
            .send()
            .await
            .map(|r| r.status());
        assert!(
            matches!(status, Ok(StatusCode::OK)),
            "/healthz from {other:?} with 80 connections held by 127.0.0.2: {status:?}"
        );
    }
    // The client holding them gets no answer: its connection is closed, not queued until one
    // of its others times out.
    let mut more = connect_from([127, 0, 0, 2], addr).await;
    more.set_read_timeout(Some(WAIT)).expect("timeout");
    let _ = more.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut answer = Vec::new();
    let read = more.read_to_end(&mut answer);
    // Closed with the request unread, the connection may be reset rather than ended.
    let closed = match &read {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        closed,
        "a connection past the client's share: {read:?} {}",
        String::from_utf8_lossy(&answer)
    );
    drop(held);
}

/// A flood of `/readyz` from many clients while deliveries are stored: every answer is 200. Each
/// call probed the store's write lock on its own, contending with the other probes and the
/// receiver's writer: a review's 26,546 calls got 23 503s ("did not answer in time") from a store
/// healthy all along. 56 clients, 8 to an address (under the admin listener's 64 connections in
/// all and 16 from one client).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_readiness_probes_is_answered_ready_while_deliveries_are_stored() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("inbox.db");
    let store = file.to_str().expect("utf-8 path").to_owned();
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &[
            "--port",
            "0",
            "--admin-port",
            "0",
            "--quiet",
            "--store",
            &store,
        ],
    ));
    let admin = admin_url(&listen);
    let readyz = format!("{admin}/readyz");
    let began = Instant::now();
    wait_for_status(&reqwest::Client::new(), &readyz, StatusCode::OK).await;

    let flooding = Arc::new(AtomicBool::new(true));
    let sender = tokio::spawn({
        let (url, flooding) = (listen.url.clone(), Arc::clone(&flooding));
        async move {
            let http = reqwest::Client::new();
            let mut sent = 0u32;
            while flooding.load(Ordering::SeqCst) {
                let hash = format!("flood-{sent}");
                assert_eq!(
                    post(&http, &url, &hash, &signature(&hash)).await,
                    StatusCode::OK,
                    "{hash}"
                );
                sent += 1;
            }
            sent
        }
    });
    let mut probes = tokio::task::JoinSet::new();
    for source in 2..=8u8 {
        let http = client_from([127, 0, 0, source], WAIT);
        for _ in 0..8 {
            let (http, readyz) = (http.clone(), readyz.clone());
            probes.spawn(async move {
                let mut not_ready = Vec::new();
                for _ in 0..200 {
                    let (status, text) = get(&http, &readyz, None).await;
                    if status != StatusCode::OK {
                        not_ready.push(format!("{status} {}", text.trim()));
                    }
                }
                not_ready
            });
        }
    }
    let mut not_ready = Vec::new();
    while let Some(answers) = probes.join_next().await {
        not_ready.extend(answers.expect("a probing client"));
    }
    flooding.store(false, Ordering::SeqCst);
    let sent = sender.await.expect("the sender");
    assert!(sent > 0, "no delivery was sent during the flood");
    assert!(
        not_ready.is_empty(),
        "{} of {} calls were not answered ready ({sent} deliveries meanwhile), e.g. {:?}",
        not_ready.len(),
        56 * 200,
        &not_ready[..not_ready.len().min(5)]
    );
    // The flood probed the store at most once a second (a result is reused for 1 s), and
    // once more for the first call: not once a call.
    let seconds = began.elapsed().as_secs_f64().ceil();
    let (_, metrics) = get(&reqwest::Client::new(), &format!("{admin}/metrics"), None).await;
    let probes: f64 = ["ready", "not_ready"]
        .iter()
        .filter_map(|o| {
            sample(
                &metrics,
                "ccai_readiness_probes_total",
                &[&format!("outcome=\"{o}\"")],
            )
        })
        .sum();
    assert!(
        (1.0..=seconds + 1.0).contains(&probes),
        "{probes} store probes for {} calls in {seconds} s",
        56 * 200
    );
}

/// A stop makes `/readyz` 503 at once, even right after a 200 it could have reused: a load
/// balancer must stop sending deliveries to a receiver that no longer accepts them. A forward
/// to a target that never answers keeps `ccai listen` in its grace period meanwhile.
#[tokio::test]
async fn readyz_is_503_as_soon_as_a_stop_begins() {
    let sandbox = Sandbox::new();
    let store = sandbox.path().join("inbox.db");
    let store = store.to_str().expect("utf-8 path").to_owned();
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the target");
    let target_url = format!("http://{}/hook", target.local_addr().expect("addr"));
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &[
            "--port",
            "0",
            "--admin-port",
            "0",
            "--store",
            &store,
            "--forward-to",
            &target_url,
            "--grace",
            "60s",
        ],
    ));
    let http = reqwest::Client::new();
    assert_eq!(
        post(&http, &listen.url, "held", &signature("held")).await,
        StatusCode::OK
    );
    // The forward is in flight once the target has its connection; it is never answered.
    let (_held, _) = tokio::time::timeout(WAIT, target.accept())
        .await
        .expect("the forward reaches the target")
        .expect("accept");
    let readyz = format!("{}/readyz", admin_url(&listen));
    let (status, text) = get(&http, &readyz, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");

    let pid = listen.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    loop {
        let line = listen.err.recv_timeout(WAIT).expect("listen says it stops");
        if line.starts_with("Stopping") {
            break;
        }
    }
    let (status, text) = get(&http, &readyz, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("not accepting deliveries"), "{text}");
}
