//! `ccai listen --store postgres://…` end to end: real `ccai listen` processes sharing one
//! PostgreSQL schema, real HTTP servers on 127.0.0.1 (the forward target records what it
//! receives). Each test runs on a schema of its own, dropped at the end.
//!
//! The database is `CCAI_TEST_POSTGRES_URL` (CI: postgres://postgres@127.0.0.1:5432/test); without
//! it every test here passes after printing that it was skipped. The test that restarts the
//! PostgreSQL server runs only with `CCAI_TEST_PG_RESTART=1`: it disturbs other tests using the
//! same server.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::postgres::{database, Schema};
use common::{
    closed_port, recorder, run, stderr, stdout, Listening, Recorded, Recorder, Sandbox, WAIT,
};

const CLIENT_ID: &str = "pg-client";
const SECRET: &str = "pg-secret";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// `--forward-concurrency`: at most this many forwards are in flight in one instance.
const IN_FLIGHT: usize = 4;

fn ccai(sandbox: &Sandbox) -> Command {
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    cmd
}

/// `ccai listen --store STORE --forward-to TARGET --quiet` on `port`.
fn listen(sandbox: &Sandbox, store: &str, target: &str, port: &str) -> Listening {
    listen_with(sandbox, store, target, port, &["--quiet"])
}

/// `ccai listen --store STORE --forward-to TARGET` on `port` with more flags.
fn listen_with(
    sandbox: &Sandbox,
    store: &str,
    target: &str,
    port: &str,
    extra: &[&str],
) -> Listening {
    let forward = format!("{target}/hook");
    let retries = vec!["100ms"; 50].join(",");
    let concurrency = IN_FLIGHT.to_string();
    let args = [
        "--port",
        port,
        "--store",
        store,
        "--forward-to",
        &forward,
        "--retry-schedule",
        &retries,
        "--forward-concurrency",
        &concurrency,
    ];
    let args: Vec<&str> = args.iter().chain(extra).copied().collect();
    Listening::announced(Listening::launch(ccai(sandbox), &args))
}

/// A message.sent delivery with unusual formatting (forwarding must not re-serialise it).
fn body(hash: &str) -> String {
    format!(
        "{{ \"eventType\" : \"message.sent\",\n  \"eventHash\": \"{hash}\", \"data\": {{\"To\": \"+14155550100\", \"TotalPrice\": 0.0070}} }}"
    )
}

fn signature(hash: &str) -> String {
    ccai::webhook::sign(CLIENT_ID, hash, SECRET)
}

/// POSTs a signed delivery; the status, or `None` if the listener could not be reached.
async fn deliver(http: &reqwest::Client, url: &str, hash: &str) -> Option<StatusCode> {
    let response = http
        .post(url)
        .header("content-type", CONTENT_TYPE)
        .header("x-ccai-signature", signature(hash))
        .body(body(hash))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    Some(response.status())
}

/// Delivers until answered 200, trying the instances in turn from `first`, like a sender
/// behind a load balancer that sends again what was not acknowledged.
async fn deliver_until_ok(http: &reqwest::Client, urls: &[String], first: usize, hash: &str) {
    let start = Instant::now();
    let mut at = first;
    while deliver(http, &urls[at % urls.len()], hash).await != Some(StatusCode::OK) {
        assert!(start.elapsed() < WAIT * 2, "{hash} was never acknowledged");
        at += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until(deadline: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The target's requests by eventHash: how many, each checked byte for byte with its signature
/// and content type.
fn received(target: &Recorder) -> HashMap<String, usize> {
    let mut by_hash: HashMap<String, usize> = HashMap::new();
    for request in target.requests.lock().expect("lock").iter() {
        let hash = request.json()["eventHash"]
            .as_str()
            .expect("eventHash")
            .to_owned();
        assert_eq!(request.body.as_ref(), body(&hash).as_bytes(), "{hash}");
        assert_eq!(
            request.header("x-ccai-signature").as_deref(),
            Some(signature(&hash).as_str()),
            "{hash}"
        );
        assert_eq!(
            request.header("content-type").as_deref(),
            Some(CONTENT_TYPE),
            "{hash}"
        );
        *by_hash.entry(hash).or_default() += 1;
    }
    by_hash
}

/// Waits until every one of `hashes` reached the target (each copy checked).
async fn wait_for_all(target: &Recorder, hashes: &HashSet<String>, deadline: Duration) {
    wait_until(
        deadline,
        "every acknowledged event reached the target",
        || {
            let got = received(target);
            hashes.iter().all(|h| got.contains_key(h))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_schema_forward_each_event_once() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    let store = schema.url();
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    // The first also serves /readyz, which asks the database.
    let instances: Vec<Listening> = (0..3)
        .map(|i| {
            let admin: &[&str] = if i == 0 {
                &["--quiet", "--admin-port", "0"]
            } else {
                &["--quiet"]
            };
            listen_with(
                &sandbox,
                &store,
                &target.url,
                &closed_port().to_string(),
                admin,
            )
        })
        .collect();
    let readyz = readyz_url(&instances[0]);
    assert_eq!(
        status_of(&reqwest::Client::new(), &readyz).await,
        Some(StatusCode::OK)
    );
    // The banner names the database, never a password.
    assert!(
        instances[0].banner.iter().any(|l| l
            .starts_with("Storing verified deliveries in postgres://")
            && l.contains(&schema.name)),
        "{:?}",
        instances[0].banner
    );
    let urls: Vec<String> = instances.iter().map(|l| l.url.clone()).collect();

    // Events spread over the instances; every third one also delivered to the next instance.
    const EVENTS: usize = 90;
    let http = reqwest::Client::new();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..EVENTS {
        let (http, urls) = (http.clone(), urls.clone());
        sends.spawn(async move {
            let hash = format!("multi-{i}");
            let mut to = vec![i % 3];
            if i % 3 == 0 {
                to.push((i + 1) % 3);
            }
            for at in to {
                assert_eq!(
                    deliver(&http, &urls[at], &hash).await,
                    Some(StatusCode::OK),
                    "{hash} to instance {at}"
                );
            }
            hash
        });
    }
    let mut hashes = HashSet::new();
    while let Some(hash) = sends.join_next().await {
        hashes.insert(hash.expect("sender"));
    }
    assert_eq!(hashes.len(), EVENTS);

    wait_for_all(&target, &hashes, Duration::from_secs(60)).await;
    // Long enough for a second copy to show up, were one to be sent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = received(&target);
    for hash in &hashes {
        assert_eq!(got.get(hash), Some(&1), "{hash} reached the target {got:?}");
    }
    assert_eq!(target.requests.lock().unwrap().len(), EVENTS);
    drop(instances);
}

/// A target that records each request as it arrives and answers 200 after `delay`: forwards stay in flight
/// that long, so that a kill finds some.
async fn slow_recorder(delay: Duration) -> Recorder {
    use axum::extract::{Request, State};
    type Requests = Arc<Mutex<Vec<Recorded>>>;
    async fn record(
        State((requests, delay)): State<(Requests, Duration)>,
        request: Request,
    ) -> StatusCode {
        let recorded = Recorded::read(request).await;
        requests.lock().expect("lock").push(recorded);
        // Recorded on arrival: a forward cut by a kill after this counts as received.
        tokio::time::sleep(delay).await;
        StatusCode::OK
    }
    let requests: Requests = Arc::default();
    let app = axum::Router::new()
        .fallback(record)
        .with_state((Arc::clone(&requests), delay));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Recorder { url, requests }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_killed_under_load_loses_nothing() {
    let Some(database) = database() else { return };
    const SENDERS: usize = 6;
    const PER_SENDER: usize = 80;
    let schema = Schema::new(&database);
    let store = schema.url();
    let sandbox = Sandbox::new();
    // Each forward takes 100 ms: the killed instance has forwards in flight.
    let target = slow_recorder(Duration::from_millis(100)).await;
    let ports: Vec<String> = (0..3).map(|_| closed_port().to_string()).collect();
    // Not quiet: each forward is a line, so that the kill comes while forwards are in flight.
    let mut instances: Vec<Listening> = ports
        .iter()
        .map(|port| listen_with(&sandbox, &store, &target.url, port, &[]))
        .collect();
    let urls: Vec<String> = instances.iter().map(|l| l.url.clone()).collect();

    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let kill_over = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (urls, acknowledged) = (urls.clone(), Arc::clone(&acknowledged));
        let kill_over = Arc::clone(&kill_over);
        senders.spawn(async move {
            let http = common::sender_client();
            for i in 0..PER_SENDER {
                if kill_over.load(Ordering::SeqCst) && i > PER_SENDER / 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                let hash = format!("kill-{sender}-{i}");
                deliver_until_ok(&http, &urls, sender + i, &hash).await;
                acknowledged.lock().unwrap().insert(hash);
            }
        });
    }

    // Kill instance 1 under load, once it is forwarding, then start it again on its port.
    let start = Instant::now();
    let mut forwarded = 0;
    while forwarded < 10 {
        assert!(
            start.elapsed() < WAIT,
            "instance 1 forwarded only {forwarded}"
        );
        match instances[1].out.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains("forwarded") => forwarded += 1,
            _ => {}
        }
    }
    let before = acknowledged.lock().unwrap().len();
    assert!(
        before < SENDERS * PER_SENDER,
        "the load ended before the kill"
    );
    instances[1].child.kill().expect("SIGKILL");
    let killed_at = Instant::now();
    instances[1].child.wait().expect("reap");
    eprintln!("kill: {before} events acknowledged so far");
    tokio::time::sleep(Duration::from_millis(300)).await;
    instances[1] = listen_with(&sandbox, &store, &target.url, &ports[1], &[]);
    kill_over.store(true, Ordering::SeqCst);
    while let Some(done) = senders.join_next().await {
        done.expect("sender");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    // Forwards in flight at the kill come back when their lease lapses (10 s).
    wait_for_all(&target, &acknowledged, Duration::from_secs(60)).await;
    // The target records a forward as it arrives: those cut by the kill are there already, and
    // are sent again once their lease (10 s) lapses. Wait for that before counting.
    wait_until(
        Duration::from_secs(60),
        "nothing is left to forward",
        || killed_at.elapsed() > Duration::from_secs(12) && sandbox.nothing_pending(&store),
    )
    .await;
    let total = target.requests.lock().unwrap().len();
    let duplicates = total - acknowledged.len();
    eprintln!(
        "{} events acknowledged, {total} requests at the target, {duplicates} duplicates after the kill",
        acknowledged.len()
    );
    assert!(
        duplicates <= IN_FLIGHT,
        "{duplicates} duplicates: more than the forwards one instance can have in flight"
    );
    drop(instances);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_list_reads_the_postgres_store() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    let store = schema.url();
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let listening = listen(&sandbox, &store, &target.url, &closed_port().to_string());
    let http = reqwest::Client::new();
    for hash in ["listed-1", "listed-2"] {
        assert_eq!(
            deliver(&http, &listening.url, hash).await,
            Some(StatusCode::OK)
        );
    }
    drop(listening);

    let mut cmd = sandbox.ccai();
    cmd.args(["events", "list", "--json", "--store", &store]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let mut hashes: Vec<String> = stdout(&out)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            value["eventHash"].as_str().expect("eventHash").to_owned()
        })
        .collect();
    hashes.sort();
    assert_eq!(hashes, ["listed-1", "listed-2"]);

    // The same through CCAI_STORE.
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "stats"]).env("CCAI_STORE", &store);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

/// With every log level open (`CCAI_LOG=debug`, and `tokio_postgres=trace` asked for by name),
/// no line shows a signature or a body: tokio-postgres logs statement parameters at debug, and
/// the stored deliveries are parameters.
#[tokio::test(flavor = "multi_thread")]
async fn debug_logs_on_postgres_show_no_signature_or_body() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    let store = schema.url();
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    for filter in ["debug", "debug,tokio_postgres=trace"] {
        let mut cmd = ccai(&sandbox);
        cmd.env("CCAI_LOG", filter);
        let forward = format!("{}/hook", target.url);
        let listening = Listening::announced(Listening::launch(
            cmd,
            &[
                "--port",
                "0",
                "--store",
                &store,
                "--forward-to",
                &forward,
                "--quiet",
            ],
        ));
        let hash = format!("logged-{}", filter.len());
        let http = reqwest::Client::new();
        assert_eq!(
            deliver(&http, &listening.url, &hash).await,
            Some(StatusCode::OK)
        );
        wait_until(WAIT, "the forward", || {
            received(&target).contains_key(&hash)
        })
        .await;
        let mut lines = listening.banner.clone();
        while let Ok(line) = listening.err.recv_timeout(Duration::from_millis(500)) {
            lines.push(line);
        }
        drop(listening);
        // The filter was on: tokio-postgres's own debug lines are there, its parameters not.
        assert!(
            lines.iter().any(|l| l.contains("tokio_postgres")),
            "{filter}: no tokio_postgres line at all: {lines:?}"
        );
        for line in &lines {
            assert!(
                !line.contains(&signature(&hash)),
                "{filter}: a signature in {line}"
            );
            assert!(!line.contains("TotalPrice"), "{filter}: a body in {line}");
        }
    }
}

/// `ccai events` and `ccai ui` open an existing inbox only: a mistyped schema is an error, not
/// a new empty inbox; and `ccai listen` refuses to start on a database it could not write.
#[tokio::test(flavor = "multi_thread")]
async fn inspecting_creates_nothing_and_listen_needs_a_writable_database() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    let sandbox = Sandbox::new();
    for args in [
        &["events", "stats"][..],
        &["events", "list"],
        &["ui", "--port", "0"],
    ] {
        let mut cmd = sandbox.ccai();
        cmd.args(args).args(["--store", &schema.url()]);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("holds no inbox"), "{args:?}: {err}");
    }
    let base = database.split('?').next().unwrap_or(&database);
    let exists = Command::new("psql")
        .args([base, "-tAc"])
        .arg(format!(
            "SELECT count(*) FROM pg_namespace WHERE nspname = '{}'",
            schema.name
        ))
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&exists.stdout).trim(), "0");

    // Created by a first listen; then a read-only session cannot store, so listen says so.
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    drop(listen(
        &sandbox,
        &schema.url(),
        &target.url,
        &closed_port().to_string(),
    ));
    let read_only = format!(
        "{}&options=-c%20default_transaction_read_only%3Don",
        schema.url()
    );
    let mut cmd = ccai(&sandbox);
    cmd.args(["listen", "--port", "0", "--store", &read_only]);
    let out = run(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("read-only"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_is_one_line_and_exit_2() {
    // Needs no database: nothing listens on the port.
    let sandbox = Sandbox::new();
    let store = format!(
        "postgres://someone:hunter2@127.0.0.1:{}/nothing",
        closed_port()
    );
    for args in [
        vec!["events", "list", "--store", &store],
        vec!["listen", "--port", "0", "--store", &store],
    ] {
        let mut cmd = ccai(&sandbox);
        cmd.args(&args);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains("127.0.0.1"), "{args:?}: {err}");
        // Why, not only "error connecting to server".
        assert!(err.contains("Connection refused"), "{args:?}: {err}");
        assert!(!err.contains("hunter2"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn sync_with_a_postgres_store_is_refused_not_ignored() {
    // Needs no database: refused before connecting.
    let sandbox = Sandbox::new();
    let store = format!("postgres://someone@127.0.0.1:{}/nothing", closed_port());
    for sync in ["normal", "full"] {
        let mut cmd = ccai(&sandbox);
        cmd.args(["listen", "--port", "0", "--store", &store, "--sync", sync]);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--sync {sync}: {err}");
        assert!(
            err.starts_with("error: --sync applies to the SQLite store only"),
            "--sync {sync}: {err}"
        );
    }
}

/// `pg_ctlcluster --skip-systemctl-redirect VERSION main ACTION` for the one cluster here.
fn pg_cluster(action: &str) {
    let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(versions.len(), 1, "one PostgreSQL cluster: {versions:?}");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &versions[0], "main", action])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action}");
}

/// The `/readyz` URL of a listener started with `--admin-port`.
fn readyz_url(listen: &Listening) -> String {
    let admin = listen
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("Admin listener on "))
        .unwrap_or_else(|| panic!("no admin line in {:?}", listen.banner));
    let base = admin.split_whitespace().next().expect("url");
    format!("{}/readyz", base.trim_end_matches('/'))
}

async fn status_of(http: &reqwest::Client, url: &str) -> Option<StatusCode> {
    let response = http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    Some(response.status())
}

/// Stops and starts the shared PostgreSQL server: only with `CCAI_TEST_PG_RESTART=1`, since the
/// other tests on that server fail meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_are_refused_while_postgres_is_down_and_taken_again_after() {
    let Some(database) = database() else { return };
    if std::env::var("CCAI_TEST_PG_RESTART").as_deref() != Ok("1") {
        println!("skipped: CCAI_TEST_PG_RESTART=1 not set (this test restarts PostgreSQL)");
        return;
    }
    let schema = Schema::new(&database);
    let store = schema.url();
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let admin = ["--quiet", "--admin-port", "0"];
    let instances: Vec<Listening> = (0..2)
        .map(|_| {
            listen_with(
                &sandbox,
                &store,
                &target.url,
                &closed_port().to_string(),
                &admin,
            )
        })
        .collect();
    let urls: Vec<String> = instances.iter().map(|l| l.url.clone()).collect();
    let readyz: Vec<String> = instances.iter().map(readyz_url).collect();
    let http = reqwest::Client::new();
    for url in &readyz {
        assert_eq!(status_of(&http, url).await, Some(StatusCode::OK), "{url}");
    }
    let mut acknowledged = HashSet::new();
    for i in 0..20 {
        let hash = format!("before-{i}");
        assert_eq!(
            deliver(&http, &urls[i % 2], &hash).await,
            Some(StatusCode::OK)
        );
        acknowledged.insert(hash);
    }

    pg_cluster("stop");
    let mut refused = Vec::new();
    for i in 0..4 {
        let hash = format!("down-{i}");
        let status = deliver(&http, &urls[i % 2], &hash).await;
        assert_eq!(status, Some(StatusCode::SERVICE_UNAVAILABLE), "{hash}");
        refused.push(hash);
    }
    // Past the second for which `/readyz` reuses its last probe (the 200s above).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for url in &readyz {
        assert_eq!(
            status_of(&http, url).await,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "{url}"
        );
    }
    pg_cluster("start");

    // The same receivers take deliveries again once the database is back; senders send again
    // what was refused.
    let start = Instant::now();
    for (i, hash) in refused.iter().enumerate() {
        loop {
            match deliver(&http, &urls[i % 2], hash).await {
                Some(StatusCode::OK) => break,
                other => {
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "{hash} still refused ({other:?}) a minute after PostgreSQL came back"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        acknowledged.insert(hash.clone());
    }
    for i in 0..20 {
        let hash = format!("after-{i}");
        assert_eq!(
            deliver(&http, &urls[i % 2], &hash).await,
            Some(StatusCode::OK)
        );
        acknowledged.insert(hash);
    }

    wait_for_all(&target, &acknowledged, Duration::from_secs(60)).await;
    drop(instances);
}

/// `ccai` under libfaketime with its clock `offset` ahead (`+10m`): a receiver on a machine whose
/// clock is wrong. Its timers (monotonic) are left alone. Preloaded into `ccai` itself, not
/// through the `faketime` tool, which forks: killing the tool would leave `ccai` running. `None`,
/// after saying why, where the library is not installed (Debian's package `faketime`; `.ci/run`
/// installs it).
fn ccai_with_clock(sandbox: &Sandbox, offset: &str) -> Option<Command> {
    let libfaketime = common::LIBFAKETIME;
    if !std::path::Path::new(libfaketime).exists() {
        println!("skipped: {libfaketime} not installed (apt-get install faketime)");
        return None;
    }
    let mut cmd = ccai(sandbox);
    cmd.env("LD_PRELOAD", libfaketime)
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    Some(cmd)
}

/// Receivers whose clocks disagree share one inbox: due times and leases are on the database's
/// clock. One whose clock runs ten minutes ahead does not take over a forward another holds
/// under a live lease (each event forwarded twice), and an event it stores is due at once for
/// the others (not ten minutes later).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_whose_clock_runs_ahead_neither_steals_forwards_nor_delays_events() {
    let Some(database) = database() else { return };
    let sandbox = Sandbox::new();
    let Some(_) = ccai_with_clock(&sandbox, "+10m") else {
        return;
    };
    let schema = Schema::new(&database);
    let store = schema.url();

    // The target holds the first request of "held" for 5 s (a slow consumer), answers the rest.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = {
        let seen = Arc::clone(&seen);
        axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let hash = value["eventHash"].as_str().unwrap_or("").to_owned();
                let first = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(hash.clone());
                    seen.iter().filter(|h| **h == hash).count() == 1
                };
                if first && hash == "held" {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                StatusCode::OK
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let count = |hash: &str| {
        seen.lock()
            .expect("lock")
            .iter()
            .filter(|h| *h == hash)
            .count()
    };

    let right = listen(&sandbox, &store, &target, &closed_port().to_string());
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &right.url, "held").await,
        Some(StatusCode::OK)
    );
    wait_until(WAIT, "the right receiver forwards `held`", || {
        count("held") == 1
    })
    .await;

    // A receiver ten minutes ahead starts while that forward is held: on its own clock the
    // lease (10 s, extended by heartbeats) lapsed long ago.
    let port = closed_port().to_string();
    let forward = format!("{target}/hook");
    let retries = vec!["100ms"; 50].join(",");
    let ahead = Listening::announced(Listening::launch(
        ccai_with_clock(&sandbox, "+10m").expect("faketime"),
        &[
            "--port",
            &port,
            "--store",
            &store,
            "--forward-to",
            &forward,
            "--retry-schedule",
            &retries,
            "--quiet",
        ],
    ));
    // Past the held forward (5 s): it polls every second meanwhile.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        count("held"),
        1,
        "a live lease was taken over: {:?}",
        seen.lock()
    );
    drop(ahead);

    // An event stored by a receiver ahead (and not forwarding) is due at once for the others.
    let port = closed_port().to_string();
    let store_only = Listening::announced(Listening::launch(
        ccai_with_clock(&sandbox, "+10m").expect("faketime"),
        &["--port", &port, "--store", &store, "--quiet"],
    ));
    assert_eq!(
        deliver(&http, &store_only.url, "from-ahead").await,
        Some(StatusCode::OK)
    );
    // It did run ten minutes ahead: its received time is in the future.
    let mut list = ccai(&sandbox);
    list.args(["events", "list", "--json", "--store", &store]);
    let out = run(list).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let received = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["eventHash"] == "from-ahead")
        .and_then(|e| e["receivedAt"].as_str().map(str::to_owned))
        .expect("from-ahead listed");
    let now = humantime_now();
    assert!(
        received.as_str() > now.as_str(),
        "received {received}, now {now}"
    );
    wait_until(
        Duration::from_secs(8),
        "the right receiver forwards what the one ahead stored",
        || count("from-ahead") == 1,
    )
    .await;
    drop((store_only, right));
}

/// Now as RFC 3339 in UTC to the second (`2026-12-01T21:30:00Z`), to compare with listed times.
fn humantime_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `sql` with psql on the database of `base` (without its query: psql takes no `schema=`).
fn psql(base: &str, sql: &str) -> String {
    let base = base.split('?').next().unwrap_or(base);
    let out = Command::new("psql")
        .args([base, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A child process killed (and reaped) when this goes out of scope, even if the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A session still holding a lock in a test's schema (a transaction a failed test left open)
/// made the schema's drop, and with it the test run, wait for ever: the drop now waits 2 s, ends
/// the sessions holding locks in that schema, and drops it.
#[test]
fn a_test_schema_is_dropped_even_while_a_session_holds_a_lock_in_it() {
    use std::io::Write;
    use std::process::Stdio;
    let Some(base) = database() else { return };
    let schema = Schema::new(&base);
    let name = schema.name.clone();
    psql(
        &base,
        &format!("CREATE SCHEMA {name}; CREATE TABLE {name}.t (x int)"),
    );
    // A transaction left open: psql waits for more on its standard input, which stays open.
    let mut locker = Killed(
        Command::new("psql")
            .args([base.split('?').next().unwrap_or(&base), "-qX"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run psql"),
    );
    let mut input = locker.0.stdin.take().expect("psql's stdin");
    writeln!(
        input,
        "BEGIN; LOCK TABLE {name}.t IN ACCESS EXCLUSIVE MODE;"
    )
    .expect("send the lock");
    let held = format!(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{name}' AND l.granted AND l.mode = 'AccessExclusiveLock'"
    );
    let started = Instant::now();
    while psql(&base, &held) != "1" {
        assert!(started.elapsed() < WAIT, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(50));
    }
    // On another thread, so that a drop that waits for ever fails this test rather than hangs it.
    let (dropped, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(schema);
        let _ = dropped.send(());
    });
    let waited = done.recv_timeout(WAIT);
    assert!(
        waited.is_ok(),
        "the schema's drop still waits after {WAIT:?}"
    );
    assert_eq!(
        psql(
            &base,
            &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{name}'")
        ),
        "0",
        "the schema is gone"
    );
    drop(input);
    drop(locker);
}

/// A flood of `/readyz` on a PostgreSQL store shares the probe query, as on SQLite: every call
/// is answered 200, and the database is probed at most once a second (a result is reused for
/// 1 s), not once a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_readiness_probes_runs_few_probe_queries() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    let store = schema.url();
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let began = Instant::now();
    let listen = listen_with(
        &sandbox,
        &store,
        &target.url,
        &closed_port().to_string(),
        &["--quiet", "--admin-port", "0"],
    );
    let readyz = readyz_url(&listen);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, readyz) = (reqwest::Client::new(), readyz.clone());
        calls.spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..100 {
                statuses.push(status_of(&http, &readyz).await);
            }
            statuses
        });
    }
    while let Some(statuses) = calls.join_next().await {
        for status in statuses.expect("a probing client") {
            assert_eq!(status, Some(StatusCode::OK));
        }
    }
    let seconds = began.elapsed().as_secs_f64().ceil();
    let metrics = reqwest::get(readyz.replace("/readyz", "/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let probes: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ccai_readiness_probes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        (1.0..=seconds + 1.0).contains(&probes),
        "{probes} probe queries for 800 calls in {seconds} s"
    );
}
