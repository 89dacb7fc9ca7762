//! `ccai listen` on the durable inbox, end to end: the real binary, a real SQLite file, real HTTP
//! servers on 127.0.0.1 (the forward target records what it receives). Nothing here measures
//! time: waits have generous deadlines.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use ccai::inbox::{DeliveryStatus, EventDetail, SqliteOptions, SqliteStore, Store};
use common::{
    closed_port, recorder, recorder_on, run, stderr, unprivileged, wrapped, Listening, Recorder,
    Sandbox, WAIT,
};

const CLIENT_ID: &str = "store-client";
const SECRET: &str = "store-secret";
/// The content type deliveries are sent with: forwarded as received.
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// `ccai listen` with a configured account, so that the test can sign deliveries itself.
fn ccai(sandbox: &Sandbox) -> Command {
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    cmd
}

fn listen(sandbox: &Sandbox, args: &[&str]) -> Listening {
    Listening::announced(Listening::launch(ccai(sandbox), args))
}

/// A message.sent delivery with unusual formatting (forwarding must not re-serialise it).
fn body(hash: &str) -> String {
    format!(
        "{{ \"eventType\" : \"message.sent\",\n  \"eventHash\": \"{hash}\", \"data\": {{\"To\": \"+14155550100\", \"TotalPrice\": 0.0070}} }}"
    )
}

/// POSTs a signed delivery; the status, or `None` if the listener could not be reached.
async fn deliver(http: &reqwest::Client, url: &str, hash: &str) -> Option<StatusCode> {
    let response = http
        .post(url)
        .header("content-type", CONTENT_TYPE)
        .header("x-ccai-signature", signature(hash))
        .body(body(hash))
        .send()
        .await
        .ok()?;
    Some(response.status())
}

fn signature(hash: &str) -> String {
    ccai::webhook::sign(CLIENT_ID, hash, SECRET)
}

fn open_store(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::new().destinations(["forward"])).expect("open store")
}

async fn event(store: &SqliteStore, hash: &str) -> EventDetail {
    store
        .get(hash)
        .await
        .expect("read store")
        .unwrap_or_else(|| panic!("{hash} is not stored"))
}

/// Waits until `done` holds, polling; panics with `what` after `deadline`.
async fn wait_until(deadline: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first `--json` line of `listen` after the `received` ones: the first forward outcome.
fn first_outcome(listen: &Listening) -> serde_json::Value {
    loop {
        let line: serde_json::Value =
            serde_json::from_str(&listen.next_line()).expect("a JSON line");
        if line["status"] != "received" {
            return line;
        }
    }
}

/// What the target got for one request: body, signature, content type.
type Copy = (Vec<u8>, Option<String>, Option<String>);

/// The target's requests by eventHash.
fn received(target: &Recorder) -> HashMap<String, Vec<Copy>> {
    let mut by_hash: HashMap<_, Vec<_>> = HashMap::new();
    for request in target.requests.lock().expect("lock").iter() {
        let hash = request.json()["eventHash"]
            .as_str()
            .expect("eventHash")
            .to_owned();
        by_hash.entry(hash).or_default().push((
            request.body.to_vec(),
            request.header("x-ccai-signature"),
            request.header("content-type"),
        ));
    }
    by_hash
}

/// Asserts the target got each of `hashes` byte for byte with its signature and content type.
fn assert_forwarded_exactly(target: &Recorder, hashes: &HashSet<String>) {
    let by_hash = received(target);
    for hash in hashes {
        let copies = by_hash
            .get(hash)
            .unwrap_or_else(|| panic!("{hash} never reached the target"));
        for (bytes, sig, content_type) in copies {
            assert_eq!(bytes, body(hash).as_bytes(), "{hash}");
            assert_eq!(sig.as_deref(), Some(signature(hash).as_str()), "{hash}");
            assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE), "{hash}");
        }
    }
}

/// A schedule of `n` retries `delay` apart.
fn schedule(delay: &str, n: usize) -> String {
    vec![delay; n].join(",")
}

/// Asserts that `listen` announced it stores deliveries in `file`.
fn assert_stores_in(listen: &Listening, file: &Path) {
    let banner = listen.banner.join("\n");
    assert!(
        banner.contains(&format!(
            "Storing verified deliveries in {}",
            file.display()
        )),
        "{banner}"
    );
}

#[tokio::test]
async fn stored_by_default_in_the_data_dir() {
    let sandbox = Sandbox::new();
    let listen = listen(&sandbox, &["--port", "0"]);
    let file = sandbox.data_dir().join("ccai").join("inbox.db");
    assert_stores_in(&listen, &file);

    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listen.url, "stored-1").await,
        Some(StatusCode::OK)
    );
    let line = listen.next_line();
    assert!(
        line.contains("message.sent") && line.contains("#stored-1"),
        "{line}"
    );
    // A repeat is acknowledged and said to be one.
    assert_eq!(
        deliver(&http, &listen.url, "stored-1").await,
        Some(StatusCode::OK)
    );
    assert!(listen.next_line().contains("duplicate"));

    assert!(file.is_file(), "{} missing", file.display());
    let store = open_store(&file);
    let stored = event(&store, "stored-1").await;
    assert_eq!(stored.body.as_deref(), Some(body("stored-1").as_bytes()));
    assert_eq!(stored.signature, Some(signature("stored-1")));
    assert_eq!(stored.content_type.as_deref(), Some(CONTENT_TYPE));
    assert_eq!(stored.summary.duplicates, 1);
    // Without --forward-to the event waits for a later start that forwards.
    assert_eq!(stored.summary.deliveries.len(), 1);
    assert_eq!(stored.summary.deliveries[0].status, DeliveryStatus::Pending);
}

/// The inbox holds webhook bodies (phone numbers, messages): under the usual umask 022 it was
/// readable by every user of the machine.
#[cfg(unix)]
#[tokio::test]
async fn the_default_store_and_its_folders_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir();
    assert!(!data.exists());
    let listen = listen(&sandbox, &["--port", "0"]);
    let file = data.join("ccai").join("inbox.db");
    assert_stores_in(&listen, &file);
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listen.url, "private-1").await,
        Some(StatusCode::OK)
    );
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("ccai")), 0o700);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&data.join("ccai").join("inbox.db-wal")), 0o600);
    drop(listen);

    // `ccai events` reads it as before, and changes no mode.
    let mut cmd = ccai(&sandbox);
    cmd.args(["events", "stats", "--json"]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&data.join("ccai")), 0o700);

    // A `file:` URI names the file after `file:`: the private creation left an empty file
    // named `file:uri.db?mode=rwc` beside it.
    let listen = Listening::announced(Listening::launch(
        ccai(&sandbox),
        &["--port", "0", "--store", "file:uri.db?mode=rwc"],
    ));
    assert_eq!(
        deliver(&http, &listen.url, "private-2").await,
        Some(StatusCode::OK)
    );
    drop(listen);
    assert!(sandbox.path().join("uri.db").is_file());
    assert!(!sandbox.path().join("file:uri.db?mode=rwc").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_forward_survives_a_target_that_is_down() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("inbox.db");
    let file_arg = file.to_str().expect("utf-8 path");
    let http = reqwest::Client::new();

    // Stored without --forward-to first: a later start with --forward-to forwards it.
    let early = listen(&sandbox, &["--port", "0", "--store", file_arg]);
    assert_eq!(
        deliver(&http, &early.url, "saf-early").await,
        Some(StatusCode::OK)
    );
    drop(early);

    let port = closed_port();
    // A token in the query: forwarded with, never shown.
    let target_url = format!("http://127.0.0.1:{port}/hook?token=t0ken-s3cret");
    let retries = schedule("200ms", 100);
    let mut listen = listen(
        &sandbox,
        &[
            "--port",
            "0",
            "--store",
            file_arg,
            "--forward-to",
            &target_url,
            "--retry-schedule",
            &retries,
        ],
    );
    let banner = listen.banner.join("\n");
    assert!(
        banner.contains(&format!(
            "Forwarding stored deliveries to http://127.0.0.1:{port}/hook?… "
        )),
        "{banner}"
    );
    assert!(!banner.contains("t0ken-s3cret"), "{banner}");
    assert!(
        banner.contains("1 stored event not forwarded yet: forwarding it"),
        "{banner}"
    );

    let mut hashes: HashSet<String> = HashSet::from(["saf-early".to_owned()]);
    for i in 0..5 {
        let hash = format!("saf-{i}");
        // The target is down: still answered 200, once stored.
        assert_eq!(
            deliver(&http, &listen.url, &hash).await,
            Some(StatusCode::OK)
        );
        hashes.insert(hash);
    }
    let target = recorder_on(SocketAddr::from(([127, 0, 0, 1], port)), |_| {
        (StatusCode::OK, "{}".into())
    })
    .await;
    wait_until(WAIT, "the target has every event", || {
        hashes.iter().all(|h| received(&target).contains_key(h))
    })
    .await;
    assert_forwarded_exactly(&target, &hashes);
    let request = target.requests.lock().expect("lock")[0].clone();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hook")
    );

    // SIGTERM stops cleanly.
    let pid = listen.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    assert_eq!(listen.child.wait().unwrap().code(), Some(0));
    let store = open_store(&file);
    for hash in &hashes {
        let stored = event(&store, hash).await;
        assert_eq!(
            stored.summary.deliveries[0].status,
            DeliveryStatus::Delivered
        );
    }
}

// Multi-threaded: the target runs on this runtime while the test blocks reading the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_after_the_last_attempt() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("dead.db");
    // The target's answer is untrusted text: its escape sequences must come out inert.
    let target = recorder(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "\u{1b}]0;owned\u{7}\u{1b}[2J boom".into(),
        )
    })
    .await;
    let listen = listen(
        &sandbox,
        &[
            "--port",
            "0",
            "--store",
            file.to_str().unwrap(),
            "--forward-to",
            &target.url,
            "--retry-schedule",
            "100ms,100ms",
        ],
    );
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listen.url, "dead-1").await,
        Some(StatusCode::OK)
    );
    let mut said = Vec::new();
    loop {
        let line = listen.err.recv_timeout(WAIT).expect("a dead line");
        said.push(line.clone());
        if line.contains("DEAD") {
            assert!(
                line.contains("after 3 attempt") && line.contains("#dead-1"),
                "{line}"
            );
            break;
        }
    }
    let outcomes: Vec<String> = std::iter::from_fn(|| listen.out.try_recv().ok()).collect();
    assert!(
        outcomes.iter().filter(|l| l.contains("will retry")).count() == 2,
        "{outcomes:?}"
    );
    assert_eq!(target.requests.lock().unwrap().len(), 3);
    for line in said.iter().chain(&outcomes) {
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{7}'),
            "{line:?}"
        );
    }
    assert!(said.iter().any(|l| l.contains("boom")), "{said:?}");
    // The line is printed as the attempt ends, just before the store records it.
    let store = open_store(&file);
    let start = Instant::now();
    let dead = loop {
        let delivery = event(&store, "dead-1").await.summary.deliveries[0].clone();
        if delivery.status == DeliveryStatus::Dead || start.elapsed() > WAIT {
            break delivery;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead.status, DeliveryStatus::Dead);
    assert_eq!(dead.attempts, 3);
}

/// `CCAI_STORE` picks the file as `--store` does; the flag wins over it.
#[tokio::test]
async fn ccai_store_picks_the_file_and_the_flag_wins() {
    let sandbox = Sandbox::new();
    let picked = sandbox.path().join("picked.db");
    let flagged = sandbox.path().join("flagged.db");
    let http = reqwest::Client::new();
    for (flag, file) in [(None, &picked), (Some(&flagged), &flagged)] {
        let mut cmd = ccai(&sandbox);
        cmd.env("CCAI_STORE", &picked);
        let mut args = vec!["--port", "0"];
        if let Some(flag) = flag {
            args.extend(["--store", flag.to_str().expect("utf-8 path")]);
        }
        let listen = Listening::announced(Listening::launch(cmd, &args));
        assert_stores_in(&listen, file);
        let hash = format!("env-{}", file.display());
        assert_eq!(
            deliver(&http, &listen.url, &hash).await,
            Some(StatusCode::OK)
        );
        drop(listen);
        let stored = event(&open_store(file), &hash).await;
        assert_eq!(stored.body.as_deref(), Some(body(&hash).as_bytes()));
    }
    assert!(!sandbox.data_dir().join("ccai").join("inbox.db").exists());
}

#[tokio::test]
async fn a_store_from_a_newer_ccai_is_refused_untouched() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("newer.db");
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 9999;")
            .unwrap();
    }
    let before = std::fs::read(&file).unwrap();
    // The library's advice ("open another store") and the command line's own flag.
    let err = refused(
        &sandbox,
        &["--store", file.to_str().unwrap()],
        "upgrade ccai or open another store (--store or CCAI_STORE names another store)",
    )
    .await;
    assert!(
        err.contains("written by a newer ccai (schema 9999"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

/// Without a configured account, a config folder the development secret cannot be written to
/// refuses the start before the store is opened, naming `CCAI_CONFIG_DIR` and what to do: it was
/// found only once the store was open, which left a new, empty store file behind. A store refused
/// after the config folder was made leaves no folder either, and no secret.
#[tokio::test]
async fn a_refused_config_folder_or_store_leaves_neither_behind() {
    let sandbox = Sandbox::new();
    let a_file = sandbox.path().join("a-file");
    std::fs::write(&a_file, "not a folder").unwrap();
    let mut configs = vec![(a_file.clone(), "is not a folder")];
    // procfs refuses a new folder to every user, root included.
    if Path::new("/proc/self").is_dir() {
        configs.push((
            Path::new("/proc/nope").to_path_buf(),
            "cannot create the config folder /proc/nope (CCAI_CONFIG_DIR)",
        ));
    }
    let fresh = sandbox.path().join("fresh").join("inbox.db");
    for (config, expected) in &configs {
        let mut cmd = sandbox.ccai();
        cmd.env("CCAI_CONFIG_DIR", config)
            .args(["listen", "--port", "0", "--store"])
            .arg(&fresh);
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "{err}");
        assert!(
            err.contains("CCAI_CONFIG_DIR")
                && err.contains("set CCAI_CONFIG_DIR to a folder ccai may write to"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!fresh.exists(), "{config:?}: the store was created");
        assert!(!fresh.parent().expect("folder").exists(), "{config:?}");
    }
    assert_eq!(std::fs::read(&a_file).unwrap(), b"not a folder");

    // The config folder is made before the store opens; a store refused then takes it away again.
    let newer = sandbox.path().join("newer.db");
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 9999;")
            .unwrap();
    }
    let config = sandbox.path().join("new-config").join("ccai");
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CONFIG_DIR", &config)
        .args(["listen", "--port", "0", "--store"])
        .arg(&newer);
    let out = run(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("written by a newer ccai"), "{err}");
    assert!(!sandbox.path().join("new-config").exists(), "{err}");
    assert!(!err.contains("Development secret"), "{err}");

    // A config folder that can be written to: the start goes through, the secret is made.
    let listen = Listening::announced(Listening::launch(
        {
            let mut cmd = sandbox.ccai();
            cmd.env("CCAI_CONFIG_DIR", &config);
            cmd
        },
        &[
            "--port",
            "0",
            "--store",
            fresh.to_str().expect("utf-8 path"),
        ],
    ));
    drop(listen);
    assert!(config.join("dev-credentials.json").is_file());
    assert!(fresh.is_file());
}

#[tokio::test]
async fn one_http_worker_serves_and_zero_is_refused() {
    let sandbox = Sandbox::new();
    refused(&sandbox, &["--http-workers", "0"], "0 is not in 1..=1024").await;

    let listen = listen(&sandbox, &["--port", "0", "--http-workers", "1"]);
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listen.url, "one-worker").await,
        Some(StatusCode::OK)
    );
    let file = sandbox.data_dir().join("ccai").join("inbox.db");
    let stored = event(&open_store(&file), "one-worker").await;
    assert_eq!(stored.body.as_deref(), Some(body("one-worker").as_bytes()));
}

#[tokio::test]
async fn store_errors_are_clear() {
    let sandbox = Sandbox::new();
    let cases: [(Vec<String>, &str); 5] = [
        (
            vec!["--grace".into(), "soon".into()],
            "invalid --grace \"soon\": not a duration; give a number and a unit",
        ),
        (
            vec!["--store".into(), "x.db".into(), "--no-store".into()],
            "cannot be used with",
        ),
        (
            {
                std::fs::write(sandbox.path().join("a-file"), "x").unwrap();
                vec!["--store".into(), "a-file/inbox.db".into()]
            },
            "cannot create the folder",
        ),
        (
            {
                std::fs::write(sandbox.path().join("junk.db"), vec![7u8; 4096]).unwrap();
                vec!["--store".into(), "junk.db".into()]
            },
            "corrupt or not an inbox store",
        ),
        (vec!["--retry-schedule".into(), "1s".into()], "--forward-to"),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&sandbox, &args, expected).await;
    }
    // A folder that does not exist yet: SQLite made a file "inbox" of "inbox/", which
    // `ccai events --store inbox/` then could not find.
    let err = refused(&sandbox, &["--store", "inbox/"], "is a folder").await;
    assert!(err.contains("inbox/inbox.db"), "{err}");
    assert!(!sandbox.path().join("inbox").exists(), "{err}");
}

/// A store whose folder cannot be made because a file holds its place said "cannot create the
/// folder … : pass another --store, or --no-store: File exists (os error 17)": the store named by
/// `CCAI_STORE` (or the default one) was told to be passed as another `--store`, and "File
/// exists" did not say that a file stood where the folder must be.
#[tokio::test]
async fn a_file_where_the_store_folder_goes_is_named_with_where_the_store_came_from() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path().join("a-file"), "x").unwrap();
    let cases = [
        (Some("--store"), "a-file/inbox.db", "pass another --store"),
        (None, "a-file/inbox.db", "set CCAI_STORE to another path"),
        (
            None,
            "a-file/sub/inbox.db",
            "set CCAI_STORE to another path",
        ),
    ];
    for (flag, store, advice) in cases {
        let mut cmd = ccai(&sandbox);
        cmd.args(["listen", "--port", "0"]);
        let name = match flag {
            Some(flag) => {
                cmd.args([flag, store]);
                flag
            }
            None => {
                cmd.env("CCAI_STORE", store);
                "CCAI_STORE"
            }
        };
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{store}: {err}");
        assert!(
            err.starts_with(&format!("error: {name} {store}: ")),
            "{err}"
        );
        assert!(err.contains("a-file is a file, not a folder"), "{err}");
        assert!(err.contains(advice), "{err}");
        assert!(!err.contains("os error"), "{err}");
    }
    // The default store, under a CCAI_DATA_DIR that is a file.
    let mut cmd = ccai(&sandbox);
    cmd.args(["listen", "--port", "0"])
        .env("CCAI_DATA_DIR", sandbox.path().join("a-file"));
    let out = run(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: the default store "), "{err}");
    assert!(err.contains("a-file is a file, not a folder"), "{err}");
    assert!(err.contains("CCAI_DATA_DIR"), "{err}");
}

/// Runs `ccai listen --port 0 ARGS`, which must exit 2 with an error containing `expected`;
/// returns stderr.
async fn refused(sandbox: &Sandbox, args: &[&str], expected: &str) -> String {
    let mut cmd = ccai(sandbox);
    cmd.args(["listen", "--port", "0"]).args(args);
    let out = run(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(expected), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

/// A pseudo-random number below `n` (no dependency: the clock's nanoseconds).
fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(nanos) % n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_delivery_is_forwarded_across_kill_9() {
    const SENDERS: usize = 8;
    /// Each sender sends until the kills are over, at most this many events.
    const PER_SENDER: usize = 100;
    const KILLS: usize = 3;
    /// The dispatcher's concurrency: at most this many forwards are in flight at a kill.
    const IN_FLIGHT: usize = 4;

    let sandbox = Sandbox::new();
    let file = sandbox.path().join("crash.db");
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let port = closed_port().to_string();
    let retries = schedule("100ms", 50);
    let args: Vec<String> = [
        "--port",
        &port,
        "--store",
        file.to_str().unwrap(),
        "--forward-to",
        &format!("{}/hook", target.url),
        "--retry-schedule",
        &retries,
        "--forward-concurrency",
        "4",
        "--quiet",
    ]
    .map(str::to_owned)
    .to_vec();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut listen = self::listen(&sandbox, &arg_refs);
    let url = listen.url.clone();

    // Senders behave like CloudContactAI: an event not answered 200 is sent again.
    let acknowledged = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let kills_over = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (url, acknowledged) = (url.clone(), Arc::clone(&acknowledged));
        let kills_over = Arc::clone(&kills_over);
        senders.spawn(async move {
            let http = common::sender_client();
            for i in 0..PER_SENDER {
                if kills_over.load(Ordering::SeqCst) {
                    break;
                }
                // Paced, so that the load lasts through the kills with a few hundred events.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let hash = format!("crash-{sender}-{i}");
                let start = Instant::now();
                while deliver(&http, &url, &hash).await != Some(StatusCode::OK) {
                    assert!(start.elapsed() < WAIT, "{hash} was never acknowledged");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                acknowledged.lock().unwrap().insert(hash);
            }
        });
    }

    // How many requests the target had received when each killed process was gone.
    let mut boundaries = Vec::new();
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(150 + random_below(350))).await;
        let before = acknowledged.lock().unwrap().len();
        assert!(
            before < SENDERS * PER_SENDER,
            "the load ended before kill {round}"
        );
        listen.child.kill().expect("SIGKILL");
        listen.child.wait().expect("reap");
        // A forward of the dead process may still be landing at the target: let it, then mark
        // where the next process's forwards begin.
        tokio::time::sleep(Duration::from_millis(100)).await;
        boundaries.push(target.requests.lock().unwrap().len());
        eprintln!("kill {round}: {before} events acknowledged so far");
        listen = self::listen(&sandbox, &arg_refs);
    }
    kills_over.store(true, Ordering::SeqCst);
    while let Some(done) = senders.join_next().await {
        done.expect("sender");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    // Forwards in flight at a kill come back when their lease lapses (10 s): count the duplicates
    // only once nothing is pending or leased, so that late re-forwards are counted too.
    let store = file.to_str().unwrap().to_owned();
    wait_until(
        Duration::from_secs(60),
        "every acknowledged event reached the target and nothing is left to forward",
        || {
            let got = received(&target);
            acknowledged.iter().all(|h| got.contains_key(h)) && sandbox.nothing_pending(&store)
        },
    )
    .await;
    assert_forwarded_exactly(&target, &acknowledged);
    let total = target.requests.lock().unwrap().len();
    let duplicates = total - acknowledged.len();
    eprintln!(
        "{} events acknowledged, {total} requests at the target, {duplicates} duplicates after {KILLS} kills",
        acknowledged.len()
    );
    assert!(
        duplicates <= IN_FLIGHT * KILLS,
        "{duplicates} duplicates: more than the forwards that can be in flight at {KILLS} kills"
    );
    // Event by event: a copy comes again only across a kill (its forward was in flight when the
    // process died), and each kill explains at most the forwards that can be in flight.
    let mut positions: HashMap<String, Vec<usize>> = HashMap::new();
    for (at, request) in target.requests.lock().unwrap().iter().enumerate() {
        let hash = request.json()["eventHash"]
            .as_str()
            .expect("eventHash")
            .to_owned();
        positions.entry(hash).or_default().push(at);
    }
    let mut per_kill = [0usize; KILLS];
    for (hash, at) in &positions {
        for pair in at.windows(2) {
            let kill = boundaries
                .iter()
                .position(|&boundary| boundary > pair[0])
                .filter(|&kill| boundaries[kill] <= pair[1])
                .unwrap_or_else(|| {
                    panic!("{hash} was forwarded again with no kill in between (requests {pair:?}, kills after {boundaries:?})")
                });
            per_kill[kill] += 1;
        }
    }
    assert!(
        per_kill.iter().all(|&n| n <= IN_FLIGHT),
        "forwarded again per kill: {per_kill:?}, more than {IN_FLIGHT} in flight"
    );
    drop(listen);
}

/// Stops a listener with SIGTERM and returns its exit code and everything it printed after the
/// banner (stdout, stderr).
fn stop(mut listen: Listening) -> (Option<i32>, Vec<String>, Vec<String>) {
    let pid = listen.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let code = listen.child.wait().unwrap().code();
    let out = listen.out.iter().collect();
    let err = listen.err.iter().collect();
    (code, out, err)
}

/// `--quiet` prints no line per forward attempt, but a target that is down is an error: told once
/// on stderr when forwards start failing, and once when they work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_tells_once_that_forwarding_fails_and_once_that_it_works_again() {
    let sandbox = Sandbox::new();
    let http = reqwest::Client::new();
    let port = closed_port();
    let target_url = format!("http://127.0.0.1:{port}/hook");
    let retries = schedule("100ms", 200);
    let listen = listen(
        &sandbox,
        &[
            "--port",
            "0",
            "--quiet",
            "--forward-to",
            &target_url,
            "--retry-schedule",
            &retries,
        ],
    );
    let hashes: HashSet<String> = (0..3).map(|i| format!("quiet-down-{i}")).collect();
    for hash in &hashes {
        assert_eq!(
            deliver(&http, &listen.url, hash).await,
            Some(StatusCode::OK)
        );
    }
    // Several failed attempts each (100 ms apart) before the target comes up.
    let failing = loop {
        let line = listen
            .err
            .recv_timeout(WAIT)
            .expect("a line saying forwarding fails");
        if line.contains("forwarding") {
            break line;
        }
    };
    assert!(
        failing.contains("forwarding is failing:") && failing.contains("kept and retried"),
        "{failing}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let target = recorder_on(SocketAddr::from(([127, 0, 0, 1], port)), |_| {
        (StatusCode::OK, "{}".into())
    })
    .await;
    wait_until(WAIT, "the target has every event", || {
        hashes.iter().all(|h| received(&target).contains_key(h))
    })
    .await;
    let (code, out, err) = stop(listen);
    assert_eq!(code, Some(0));
    assert!(out.is_empty(), "--quiet printed {out:?}");
    let told: Vec<&String> = err.iter().filter(|l| l.contains("forwarding")).collect();
    assert_eq!(told.len(), 1, "{err:?}");
    assert!(told[0].ends_with("forwarding works again"), "{err:?}");
}

#[tokio::test]
async fn json_quiet_and_a_conflicting_repeat() {
    let sandbox = Sandbox::new();
    let http = reqwest::Client::new();
    let json = listen(&sandbox, &["--port", "0", "--json"]);
    assert_eq!(
        deliver(&http, &json.url, "json-1").await,
        Some(StatusCode::OK)
    );
    let line: serde_json::Value = serde_json::from_str(&json.next_line()).expect("JSON");
    assert_eq!(line["status"], "received");
    assert_eq!(line["eventHash"], "json-1");
    drop(json);

    let quiet = listen(&sandbox, &["--port", "0", "--quiet"]);
    assert_eq!(
        deliver(&http, &quiet.url, "quiet-1").await,
        Some(StatusCode::OK)
    );
    // The same eventHash with another body (the signature covers the hash only).
    let response = http
        .post(&quiet.url)
        .header("x-ccai-signature", signature("quiet-1"))
        .body(body("quiet-1").replace("0.0070", "0.0071"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A rejection is still told, on stderr.
    let forged = http
        .post(&quiet.url)
        .header("x-ccai-signature", "Zm9yZ2Vk")
        .body(body("forged-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let (code, out, err) = stop(quiet);
    assert_eq!(code, Some(0));
    assert!(out.is_empty(), "--quiet printed {out:?}");
    assert!(err.iter().any(|l| l.contains("REJECTED 401")), "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.starts_with("warning:") && l.contains("different body")),
        "{err:?}"
    );
    let store = open_store(&sandbox.data_dir().join("ccai").join("inbox.db"));
    let stored = event(&store, "quiet-1").await;
    assert_eq!(stored.body.as_deref(), Some(body("quiet-1").as_bytes()));
    assert_eq!(stored.summary.conflicts, 1);
}

#[tokio::test]
async fn a_store_locked_by_another_process_is_reported() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("locked.db");
    open_store(&file).close().await;
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = refused(
        &sandbox,
        &["--store", file.to_str().unwrap()],
        "is locked by another process",
    )
    .await;
    assert!(
        err.contains("open another store (--store or CCAI_STORE names another store)"),
        "{err}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
}

/// `ccai events` (another process) reads the store while `ccai listen` keeps writing to it.
#[tokio::test]
async fn events_read_the_store_while_listen_writes() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("shared.db");
    let file_arg = file.to_string_lossy().into_owned();
    let listen = listen(&sandbox, &["--port", "0", "--quiet", "--store", &file_arg]);

    let writing = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (writing, sent, url) = (writing.clone(), sent.clone(), listen.url.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = 0;
            while writing.load(Ordering::SeqCst) {
                let status = deliver(&http, &url, &format!("rw-{i}")).await;
                assert_eq!(status, Some(StatusCode::OK));
                sent.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        })
    };

    let mut seen = 0;
    for _ in 0..8 {
        let mut cmd = sandbox.ccai();
        cmd.args([
            "events", "list", "--json", "--limit", "100000", "--store", &file_arg,
        ]);
        let out = run(cmd).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        // Every read sees a consistent, growing history (never fewer than before).
        assert!(lines >= seen, "{lines} < {seen}");
        seen = lines;
        let mut stats = sandbox.ccai();
        stats.args(["events", "stats", "--store", &file_arg]);
        let out = run(stats).await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    writing.store(false, Ordering::SeqCst);
    writer.await.expect("writer");
    assert!(sent.load(Ordering::SeqCst) > 0);
    // After the writes stop, the reader sees every acknowledged delivery.
    let sent = sent.load(Ordering::SeqCst);
    let listed = listed_hashes(&sandbox, &file_arg).await;
    let missing: Vec<String> = (0..sent)
        .map(|i| format!("rw-{i}"))
        .filter(|hash| !listed.contains(hash))
        .collect();
    if !missing.is_empty() {
        // This failed once in CI (142 listed of 149 acknowledged) and never again in hundreds
        // of runs: say whether the events are late (a second look finds them) or gone, and
        // whether the listener writes to files no longer at the path.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let again = listed_hashes(&sandbox, &file_arg).await;
        let found_later: Vec<&String> = missing.iter().filter(|h| again.contains(*h)).collect();
        panic!(
            "{} of {sent} acknowledged deliveries not listed: {missing:?}; found 2 s later: {found_later:?}; \
             files the listener has open that are no longer at their path: {:?}",
            missing.len(),
            deleted_files_open(listen.child.id()),
        );
    }
    assert_eq!(
        listed.len(),
        sent,
        "every listed event was acknowledged once"
    );
}

/// The `eventHash` of every event `ccai events list` shows in the store at `file`.
async fn listed_hashes(sandbox: &Sandbox, file: &str) -> HashSet<String> {
    let mut cmd = sandbox.ccai();
    cmd.args([
        "events", "list", "--json", "--limit", "100000", "--store", file,
    ]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            event["eventHash"].as_str().expect("eventHash").to_owned()
        })
        .collect()
}

/// The files process `pid` has open that were deleted or replaced (Linux's `/proc`; empty
/// elsewhere).
fn deleted_files_open(pid: u32) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.ends_with(" (deleted)"))
        .collect()
}

/// A clean stop leaves the one file: the store is closed before the process exits, so its
/// writer folds the WAL back into the database (`-wal` and `-shm` stayed beside it, the writer
/// thread cut short by the exit). So does a command that writes, `ccai events purge`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_only_the_database_file() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("one-file");
    std::fs::create_dir(&dir).expect("mkdir");
    let file = dir.join("inbox.db");
    let file_arg = file.to_string_lossy().into_owned();
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let listening = listen(&sandbox, &["--port", "0", "--quiet", "--store", &file_arg]);
    let http = reqwest::Client::new();
    for i in 0..50 {
        let status = deliver(&http, &listening.url, &format!("one-file-{i}")).await;
        assert_eq!(status, Some(StatusCode::OK));
    }
    assert!(
        files().len() > 1,
        "a running store has its WAL: {:?}",
        files()
    );
    let (code, _, err) = stop(listening);
    assert_eq!(code, Some(0), "{err:?}");
    assert_eq!(files(), ["inbox.db"]);
    let store = open_store(&file);
    assert_eq!(
        store.stats(SystemTime::now()).await.expect("stats").events,
        50
    );
    store.close().await;
    assert_eq!(files(), ["inbox.db"]);

    let mut purge = sandbox.ccai();
    purge.args([
        "events",
        "purge",
        "--older-than",
        "0s",
        "--store",
        &file_arg,
    ]);
    let out = run(purge).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files(), ["inbox.db"]);
}

/// `ccai listen` serves through the library's hardened server: a client that never finishes its
/// headers is cut off after `--header-timeout`, and the listener keeps serving others.
#[tokio::test]
async fn a_slow_client_is_cut_off_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sandbox = Sandbox::new();
    let listen = listen(
        &sandbox,
        &["--port", "0", "--no-store", "--header-timeout", "300ms"],
    );
    let addr = listen.address();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("partial head");
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(WAIT, slow.read(&mut buf))
        .await
        .expect("the server closes the connection well before the test's deadline");
    // Closed (0 bytes, a reset, or hyper's 408 before the close): no request was served.
    if let Ok(n) = closed {
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    // Others are still served.
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listen.url, "after-slow").await,
        Some(StatusCode::OK)
    );
}

/// A store file this process may not write is refused at start with a clear error, not opened
/// read-only to answer every delivery 503 (SQLite falls back to read-only silently). As root,
/// which may write any file, the listener runs as `nobody` through `setpriv`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_file_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("read-only.db");
    // Closing checkpoints the WAL and removes it.
    SqliteStore::open(&file, SqliteOptions::default())
        .expect("create store")
        .close()
        .await;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    // The folder stays writable to all: only the file is read-only.
    std::fs::set_permissions(sandbox.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // With NORMAL, no WAL sync thread opens the file for writing first.
    for sync in ["full", "normal"] {
        let mut cmd = ccai(&sandbox);
        cmd.args([
            "listen",
            "--port",
            "0",
            "--store",
            "read-only.db",
            "--sync",
            sync,
        ]);
        let Some(cmd) = unprivileged(cmd) else { return };
        let out = run(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{sync}: {err}");
        assert!(err.contains("read-only for this process"), "{sync}: {err}");
        assert!(err.contains("read-only.db"), "{sync}: {err}");
        assert!(!err.contains("panicked"), "{sync}: {err}");
    }
}

/// A store in a folder this process may not write to is refused at start saying so and what to
/// do, not with SQLite's bare "unable to open database file". As root, the listener runs as
/// `nobody` through `setpriv`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_in_an_unwritable_folder_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let folder = sandbox.path().join("locked");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(sandbox.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = ccai(&sandbox);
    cmd.args(["listen", "--port", "0", "--store", "locked/inbox.db"]);
    let Some(cmd) = unprivileged(cmd) else { return };
    let out = run(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("locked/inbox.db"), "{err}");
    assert!(
        err.contains("cannot open or create the file") && err.contains("--store"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!folder.join("inbox.db").exists());
}

/// A full disk: `ccai listen` with its store on a 2 MiB tmpfs of its own (a private mount
/// namespace through `unshare`), loaded until the disk fills. A delivery that cannot be stored is
/// answered 503 with `Retry-After` (the sender retries), every delivery answered 200 stays
/// readable, and the view keeps serving reads. Skipped, saying why, where `unshare` cannot make
/// the namespaces (some containers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_keeps_serving_reads() {
    let sandbox = Sandbox::new();
    let Some((cmd, small)) = common::on_small_disk(&sandbox, &ccai(&sandbox)) else {
        return;
    };
    let store = format!("{small}/inbox.db");
    let listen = Listening::announced(Listening::launch(
        cmd,
        &["--port", "0", "--store", &store, "--ui", "--ui-port", "0"],
    ));
    let ui = listen
        .banner
        .iter()
        .find_map(|line| line.strip_prefix("UI on "))
        .unwrap_or_else(|| panic!("no UI address in {:?}", listen.banner))
        .trim()
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    let mut refused = None;
    // About 1 KiB per event: the disk is full long before this many.
    for i in 0..20_000 {
        let hash = format!("full-{i}");
        let response = http
            .post(&listen.url)
            .header("content-type", CONTENT_TYPE)
            .header("x-ccai-signature", signature(&hash))
            .body(body(&hash))
            .send()
            .await
            .expect("the listener answers");
        match response.status() {
            StatusCode::OK => acknowledged.push(hash),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some((hash, response.headers().clone()));
                break;
            }
            other => panic!("{hash}: answered {other}"),
        }
    }
    let (refused, headers) = refused.expect("the disk never filled: no 503 after 20,000 events");
    assert!(
        headers.contains_key("retry-after"),
        "503 without Retry-After: {headers:?}"
    );
    assert!(
        !acknowledged.is_empty(),
        "the very first delivery was refused"
    );
    // The operator is told why, in one line.
    let deadline = Instant::now() + WAIT;
    let mut said = Vec::new();
    while !said
        .iter()
        .any(|line: &String| line.contains("the disk is full: free space"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match listen.err.recv_timeout(left) {
            Ok(line) => said.push(line),
            Err(_) => panic!("no disk-full error on stderr: {said:?}"),
        }
    }
    // Still full: refused again. A failed commit or a checkpoint can free a few pages, so a
    // delivery or two may fit first; each one answered 200 must then be stored like the rest.
    let mut refused_again = None;
    for i in 0..1_000 {
        let hash = format!("full-after-{i}");
        match deliver(&http, &listen.url, &hash).await {
            Some(StatusCode::OK) => acknowledged.push(hash),
            Some(StatusCode::SERVICE_UNAVAILABLE) => {
                refused_again = Some(hash);
                break;
            }
            other => panic!("{hash}: answered {other:?}"),
        }
    }
    let refused_again = refused_again.expect("the full disk took 1,000 more deliveries");
    let get = |path: String| {
        let http = http.clone();
        async move { http.get(path).send().await.expect("the view answers") }
    };
    // The refused deliveries were not stored.
    for hash in [&refused, &refused_again] {
        assert_eq!(
            get(format!("{ui}/api/events/{hash}")).await.status(),
            StatusCode::NOT_FOUND,
            "{hash}"
        );
    }
    // Reads keep working, and every acknowledged delivery is there, byte for byte.
    for hash in &acknowledged {
        let response = get(format!("{ui}/api/events/{hash}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{hash}");
        let detail: serde_json::Value = response.json().await.expect("json");
        assert_eq!(detail["body"].as_str(), Some(body(hash).as_str()), "{hash}");
    }
    let stats: serde_json::Value = get(format!("{ui}/api/stats"))
        .await
        .json()
        .await
        .expect("stats");
    assert_eq!(
        stats["received"].as_u64(),
        Some(acknowledged.len() as u64),
        "{stats}"
    );
}

/// A store file deleted, or replaced by another file, under a running `ccai listen`: SQLite goes
/// on writing to the old file, which the next start will not find, so nothing more is
/// acknowledged (503, the sender retries) and the operator is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_file_deleted_or_replaced_while_listening_acknowledges_nothing_more() {
    for replaced in [false, true] {
        let sandbox = Sandbox::new();
        let file = sandbox.path().join("inbox.db");
        let store = file.to_str().expect("utf-8 path").to_owned();
        let listen = listen(&sandbox, &["--port", "0", "--store", &store]);
        let http = reqwest::Client::new();
        assert_eq!(
            deliver(&http, &listen.url, "before").await,
            Some(StatusCode::OK)
        );
        if replaced {
            let other = sandbox.path().join("other.db");
            open_store(&other).close().await;
            std::fs::rename(&other, &file).expect("rename over the store");
        } else {
            std::fs::remove_file(&file).expect("delete the store");
        }
        let response = http
            .post(&listen.url)
            .header("content-type", CONTENT_TYPE)
            .header("x-ccai-signature", signature("after"))
            .body(body("after"))
            .send()
            .await
            .expect("the listener answers");
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "replaced: {replaced}"
        );
        assert!(response.headers().contains_key("retry-after"));
        let (_, out, err) = stop(listen);
        assert!(
            err.iter().any(|line| line.contains("deleted or replaced")),
            "replaced: {replaced}: {err:?}"
        );
        // The REJECTED line names the store's error (the rejection's cause), once.
        let rejected = out
            .iter()
            .find(|line| line.contains("REJECTED 503"))
            .unwrap_or_else(|| panic!("replaced: {replaced}: no REJECTED 503 line: {out:?}"));
        assert!(
            rejected.contains("the delivery could not be stored: ")
                && rejected.matches("deleted or replaced").count() == 1,
            "replaced: {replaced}: {rejected}"
        );
        if replaced {
            // The file now at the path was left as it was.
            let store = open_store(&file);
            assert!(store.get("after").await.expect("read").is_none());
        }
    }
}

/// A store file replaced (or deleted) under an idle `ccai listen`, which is then killed (SIGKILL,
/// no clean close): the old file's write-ahead log stays at `<path>-wal`, and SQLite replays a WAL
/// into whatever database file it finds beside it at the next open (the replacement, or a backup
/// copied to the path later). The listener notices without another delivery and empties its WAL,
/// so that file is found as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_file_replaced_or_deleted_under_an_idle_listener_survives_its_kill() {
    for replaced in [true, false] {
        let sandbox = Sandbox::new();
        let file = sandbox.path().join("inbox.db");
        let wal = sandbox.path().join("inbox.db-wal");
        let store = file.to_str().expect("utf-8 path").to_owned();
        let mut listen = listen(&sandbox, &["--port", "0", "--store", &store]);
        let http = reqwest::Client::new();
        for i in 0..20 {
            let hash = format!("old-{i}");
            assert_eq!(
                deliver(&http, &listen.url, &hash).await,
                Some(StatusCode::OK)
            );
        }
        assert!(
            std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
            "no WAL to replay: the test would show nothing"
        );
        // The file found at the path after the kill, with events of its own; closed before it
        // is moved (7a9fbe5): a dropped store closes later.
        let other = sandbox.path().join("other.db");
        let replacement = open_store(&other);
        let mut expected = HashSet::new();
        for i in 0..3 {
            let hash = format!("new-{i}");
            let delivery =
                ccai::inbox::NewDelivery::new(CLIENT_ID, &hash, "message.sent", body(&hash));
            replacement.insert(delivery).await.expect("insert");
            expected.insert(hash);
        }
        replacement.close().await;
        if replaced {
            std::fs::rename(&other, &file).expect("rename over the store");
        } else {
            std::fs::remove_file(&file).expect("delete the store");
        }

        // No delivery now: the listener notices on its own.
        let deadline = Instant::now() + WAIT;
        let mut said = Vec::new();
        while !said.iter().any(|line: &String| line.contains("emptied")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match listen.err.recv_timeout(left) {
                Ok(line) => said.push(line),
                Err(_) => {
                    panic!("replaced: {replaced}: the idle listener did not notice: {said:?}")
                }
            }
        }
        assert!(
            said.iter().any(|line| line.contains("deleted or replaced")),
            "{said:?}"
        );
        assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).ok(), Some(0));
        listen.child.kill().expect("SIGKILL");
        listen.child.wait().expect("wait");

        if !replaced {
            // A backup put back at the path (an empty new file would be safe: SQLite drops a WAL
            // found beside an empty database file).
            std::fs::copy(&other, &file).expect("copy a store to the path");
        }
        assert_eq!(
            listed_hashes(&sandbox, &store).await,
            expected,
            "replaced: {replaced}"
        );
        let conn = rusqlite::Connection::open(&file).expect("open");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok", "replaced: {replaced}");
    }
}

/// A forward target that answers 200 after `delay`, counting the requests it started and
/// answered.
async fn slow_target(delay: Duration) -> (String, Arc<[std::sync::atomic::AtomicUsize; 2]>) {
    use std::sync::atomic::AtomicUsize;
    let counts: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let seen = Arc::clone(&counts);
    let app = axum::Router::new().fallback(move || {
        let seen = Arc::clone(&seen);
        async move {
            seen[0].fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            seen[1].fetch_add(1, Ordering::SeqCst);
            (StatusCode::OK, "{}")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, counts)
}

/// Sends SIGTERM to `listen` and waits (at most [`WAIT`]) for it to exit; its exit code.
async fn terminate(listen: &mut Listening) -> Option<i32> {
    let pid = listen.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = listen.child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "listen did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `ccai listen` on `store` forwarding to `url` with `--grace`, sends `hash`, waits until
/// the target has `started` the forward, then sends SIGTERM; the exit code.
async fn forward_then_sigterm(
    sandbox: &Sandbox,
    store: &str,
    url: &str,
    grace: &str,
    hash: &str,
    started: &std::sync::atomic::AtomicUsize,
) -> Option<i32> {
    let mut listener = listen(
        sandbox,
        &[
            "--port",
            "0",
            "--store",
            store,
            "--forward-to",
            url,
            "--grace",
            grace,
        ],
    );
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listener.url, hash).await,
        Some(StatusCode::OK)
    );
    wait_until(WAIT, "the forward is in flight", || {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    terminate(&mut listener).await
}

/// SIGTERM while a forward is in flight: the forward finishes within `--grace` and is recorded
/// delivered before `ccai listen` exits 0. One that outlasts the grace period is released, not
/// lost: the next start forwards it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_forwards_within_the_grace_period() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("inbox.db");
    let file_arg = file.to_str().expect("utf-8 path");

    // Finishes within the grace period.
    let (url, counts) = slow_target(Duration::from_millis(1500)).await;
    let code = forward_then_sigterm(&sandbox, file_arg, &url, "20s", "grace-1", &counts[0]).await;
    assert_eq!(code, Some(0));
    assert_eq!(
        counts[1].load(Ordering::SeqCst),
        1,
        "exited before the answer"
    );
    let stored = event(&open_store(&file), "grace-1").await;
    assert_eq!(
        stored.summary.deliveries[0].status,
        DeliveryStatus::Delivered
    );

    // Outlasts the grace period: released, then forwarded by the next start.
    let (hung, hung_counts) = slow_target(Duration::from_secs(3600)).await;
    let code =
        forward_then_sigterm(&sandbox, file_arg, &hung, "1s", "grace-2", &hung_counts[0]).await;
    assert_eq!(code, Some(0));
    let released = event(&open_store(&file), "grace-2").await;
    let delivery = &released.summary.deliveries[0];
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    let (url, counts) = slow_target(Duration::ZERO).await;
    let _again = listen(
        &sandbox,
        &["--port", "0", "--store", file_arg, "--forward-to", &url],
    );
    wait_until(WAIT, "the released event is forwarded", || {
        counts[1].load(Ordering::SeqCst) == 1
    })
    .await;
}

/// With `synchronous=FULL` (the default), no delivery is answered 200 before the write-ahead log
/// holding it was synced to disk: `strace` watches the real process, and before each 200 that
/// goes out there must be an `fdatasync` (or `fsync`) of the WAL that returned since the previous
/// one. A power loss cannot be staged in a test; the order of the system calls can be checked.
/// Skipped, saying why, without a working `strace` (some containers forbid ptrace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_200_follows_a_sync_of_the_write_ahead_log() {
    if !common::runs("strace", &["-f", "-o", "/dev/null", "true"]) {
        eprintln!("skipped: strace is not installed or may not trace here, so the order of syncs and answers cannot be watched");
        return;
    }
    let sandbox = Sandbox::new();
    let trace = sandbox.path().join("trace.txt");
    let store = sandbox.path().join("synced.db");
    let cmd = wrapped(
        &ccai(&sandbox),
        "strace",
        &[
            "-f",
            "-qq",
            "-y",
            "-s",
            "16",
            "-e",
            "trace=fdatasync,fsync,write,writev,sendto,sendmsg",
            "-o",
            trace.to_str().expect("utf-8 path"),
        ],
    );
    let listener = Listening::announced(Listening::launch(
        cmd,
        &[
            "--port",
            "0",
            "--quiet",
            "--store",
            store.to_str().expect("utf-8 path"),
        ],
    ));
    let http = reqwest::Client::new();
    const DELIVERIES: usize = 5;
    for i in 0..DELIVERIES {
        assert_eq!(
            deliver(&http, &listener.url, &format!("synced-{i}")).await,
            Some(StatusCode::OK)
        );
    }
    // Killing strace would leave the traced `ccai listen` running, detached: end that first (strace
    // then exits with it).
    let strace = listener.child.id();
    let children = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
        .unwrap_or_default();
    for pid in children.split_whitespace() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    drop(listener);
    let trace = std::fs::read_to_string(&trace).expect("trace");
    let answers = answers_after_wal_syncs(&trace).unwrap_or_else(|e| panic!("{e}\n{trace}"));
    assert_eq!(
        answers, DELIVERIES,
        "the trace shows every answer:\n{trace}"
    );
}

/// How many `200` answers an `strace -f -y` trace shows, or the first one that went out with no
/// `fdatasync`/`fsync` of the WAL returned since the previous answer. Lines come in the order the
/// calls happened, each after its thread id (padded with spaces when short). A call that another
/// thread's interrupted is split into `… <unfinished ...>` and `<... fdatasync resumed>) = 0`: a
/// sync counts once it has returned, and only if it was of the WAL.
fn answers_after_wal_syncs(trace: &str) -> Result<usize, String> {
    let mut wal_sync_pending: HashSet<&str> = HashSet::new();
    let mut synced_since_last_answer = false;
    let mut answers = 0;
    for line in trace.lines() {
        let (thread, call) = line.split_once(' ').unwrap_or(("", line));
        let call = call.trim_start();
        let returned_ok = call.trim_end().ends_with("= 0");
        let of_wal = call.contains("-wal>");
        if call.starts_with("fdatasync(") || call.starts_with("fsync(") {
            if call.contains("<unfinished ...>") {
                if of_wal {
                    wal_sync_pending.insert(thread);
                }
            } else if of_wal && returned_ok {
                synced_since_last_answer = true;
            }
        } else if call.starts_with("<... fdatasync resumed>")
            || call.starts_with("<... fsync resumed>")
        {
            if wal_sync_pending.remove(thread) && returned_ok {
                synced_since_last_answer = true;
            }
        } else if call.contains("HTTP/1.1 200") {
            if !synced_since_last_answer {
                return Err(format!(
                    "a 200 went out with no sync of the WAL since the previous one: {line}"
                ));
            }
            synced_since_last_answer = false;
            answers += 1;
        }
    }
    Ok(answers)
}

/// The trace reading itself, on traces as strace writes them (thread ids of four and five
/// digits, interrupted calls, syncs of other files).
#[test]
fn wal_syncs_before_answers_are_read_from_a_trace() {
    let answer =
        r#"writev(20<socket:[1]>, [{iov_base="HTTP/1.1 200 OK\r"..., iov_len=108}], 1) = 108"#;
    let synced = format!(
        "6151  fdatasync(16</t/s.db-wal>) = 0\n6148  {answer}\n\
         6151  fdatasync(16</t/s.db-wal> <unfinished ...>\n6150  fsync(13</t/s.db>) = 0\n\
         6151  <... fdatasync resumed>)          = 0\n16148 {answer}\n"
    );
    assert_eq!(answers_after_wal_syncs(&synced), Ok(2));
    // A sync of the database file, or one that failed, does not count.
    for unsynced in [
        format!("6150  fsync(13</t/s.db>) = 0\n6148  {answer}\n"),
        format!("6151  fdatasync(16</t/s.db-wal>) = -1 EIO (Input/output error)\n6148  {answer}\n"),
        format!("6151  fdatasync(16</t/s.db-wal>) = 0\n6148  {answer}\n6148  {answer}\n"),
    ] {
        assert!(answers_after_wal_syncs(&unsynced).is_err(), "{unsynced}");
    }
}

/// A delivery that came as PUT (an integration registered with `--method PUT`) is stored with
/// its method and forwarded as PUT, as `--no-store` forwards it; and `events replay --to` too.
#[tokio::test(flavor = "multi_thread")]
async fn a_put_delivery_is_forwarded_as_put() {
    let sandbox = Sandbox::new();
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let file = sandbox.path().join("put.db");
    let listen = listen(
        &sandbox,
        &[
            "--port",
            "0",
            "--quiet",
            "--accept-put",
            "--store",
            file.to_str().expect("utf-8 path"),
            "--forward-to",
            &target.url,
        ],
    );
    let http = reqwest::Client::new();
    let answer = http
        .put(&listen.url)
        .header("content-type", CONTENT_TYPE)
        .header("x-ccai-signature", signature("put-1"))
        .body(body("put-1"))
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        deliver(&http, &listen.url, "post-1").await,
        Some(StatusCode::OK)
    );
    wait_until(WAIT, "both forwarded", || {
        target.requests.lock().unwrap().len() == 2
    })
    .await;
    drop(listen);
    let methods = |target: &Recorder| -> HashMap<String, String> {
        target
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                let event: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
                (
                    event["eventHash"].as_str().unwrap_or("").to_owned(),
                    r.method.clone(),
                )
            })
            .collect()
    };
    let forwarded = methods(&target);
    assert_eq!(forwarded["put-1"], "PUT");
    assert_eq!(forwarded["post-1"], "POST");

    let replayed = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let mut cmd = ccai(&sandbox);
    cmd.args([
        "events",
        "replay",
        "put-1",
        "post-1",
        "--to",
        &replayed.url,
        "--store",
    ])
    .arg(&file);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let replayed = methods(&replayed);
    assert_eq!(replayed["put-1"], "PUT");
    assert_eq!(replayed["post-1"], "POST");
}

/// `ccai events replay` said "the next `ccai listen --forward-to URL` on this store delivers it",
/// sending users to restart a receiver that was running: a running one picks a replayed event up
/// by itself, and the message says so.
#[tokio::test]
async fn a_running_listen_forwards_what_is_replayed() {
    let sandbox = Sandbox::new();
    // 410 Gone makes the event dead at once; then the target accepts.
    let gone = Arc::new(AtomicBool::new(true));
    let target = {
        let gone = Arc::clone(&gone);
        recorder(move |_| {
            if gone.load(Ordering::SeqCst) {
                (StatusCode::GONE, "{}".into())
            } else {
                (StatusCode::OK, "{}".into())
            }
        })
        .await
    };
    let file = sandbox.path().join("replay.db");
    let file_arg = file.to_str().expect("utf-8 path");
    let listen = listen(
        &sandbox,
        &[
            "--port",
            "0",
            "--quiet",
            "--store",
            file_arg,
            "--forward-to",
            &target.url,
        ],
    );
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listen.url, "replay-1").await,
        Some(StatusCode::OK)
    );
    let store = open_store(&file);
    let mut dead = false;
    let start = Instant::now();
    while !dead {
        assert!(start.elapsed() < WAIT, "timed out waiting until dead");
        dead = event(&store, "replay-1").await.summary.deliveries[0].status == DeliveryStatus::Dead;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gone.store(false, Ordering::SeqCst);

    let mut cmd = ccai(&sandbox);
    cmd.args(["events", "replay", "replay-1", "--store", file_arg]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("one running now, or the next started"),
        "{said}"
    );
    assert!(!said.contains("the next `ccai listen"), "{said}");

    // The receiver still running delivers it: no restart.
    wait_until(WAIT, "the replayed event forwarded", || {
        target.requests.lock().unwrap().len() == 2
    })
    .await;
    drop(listen);
}

/// A `--forward-to` naming the receiver itself is refused at start, before the store is
/// created: stored events went to their own inbox, which answered 200 as a duplicate, so they
/// showed as delivered while no application got them (and with --no-store each delivery hung on
/// a forward to itself).
#[tokio::test]
async fn forwarding_to_itself_is_refused() {
    let sandbox = Sandbox::new();
    let port = closed_port().to_string();
    let file = sandbox.path().join("self.db");
    for (host, target, store) in [
        (
            "127.0.0.1",
            format!("http://127.0.0.1:{port}/webhook?token=sekrit"),
            Some(file.to_str().unwrap()),
        ),
        ("0.0.0.0", format!("http://localhost:{port}/webhook"), None),
        ("::1", format!("http://[::1]:{port}/webhook"), None),
    ] {
        let mut cmd = ccai(&sandbox);
        cmd.args([
            "listen",
            "--host",
            host,
            "--port",
            &port,
            "--forward-to",
            &target,
        ]);
        match store {
            Some(store) => cmd.args(["--store", store]),
            None => cmd.arg("--no-store"),
        };
        let out = common::exits(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {err}");
        assert!(
            err.contains("is this receiver's own address") && err.lines().count() == 1,
            "{target}: {err}"
        );
        assert!(!err.contains("sekrit"), "{err}");
    }
    assert!(!file.exists(), "the store was created");
}

/// What a stored forward's failure says: a bare `410` is "HTTP 410 Gone", not "HTTP 410 Gone: "
/// with nothing after the colon, and a redirect says it is not followed and what to do (it was
/// retried until dead with nothing saying why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_failure_says_what_the_target_answered() {
    for (status, expected) in [
        (StatusCode::GONE, "HTTP 410 Gone".to_owned()),
        (
            StatusCode::TEMPORARY_REDIRECT,
            "HTTP 307 Temporary Redirect (a redirect: not followed, since it would send the signed delivery elsewhere; forward to the final URL)".to_owned(),
        ),
    ] {
        let sandbox = Sandbox::new();
        let file = sandbox.path().join("answers.db");
        let target = recorder(move |_| (status, String::new())).await;
        let listen = listen(
            &sandbox,
            &[
                "--port",
                "0",
                "--store",
                file.to_str().unwrap(),
                "--forward-to",
                &target.url,
                "--retry-schedule",
                "1h",
                "--json",
            ],
        );
        let http = reqwest::Client::new();
        assert_eq!(
            deliver(&http, &listen.url, "answer-1").await,
            Some(StatusCode::OK)
        );
        let outcome = first_outcome(&listen);
        assert_eq!(outcome["error"], expected.as_str(), "{outcome}");
        // 410 is dead at once: one attempt, in the singular (it said "1 attempt(s)").
        if status == StatusCode::GONE {
            let dead = loop {
                let line = listen.err.recv_timeout(WAIT).expect("a DEAD line");
                if line.contains("DEAD") {
                    break line;
                }
            };
            assert!(
                dead.contains("#answer-1  -> DEAD after 1 attempt: HTTP 410 Gone (kept in the store)"),
                "{dead}"
            );
        }
    }
}

/// The wait a retry line announces is the one the next attempt waits, rounded: a target's
/// `Retry-After: 120` reads "2m" (it read "119s", the wait measured a moment after it was set
/// and cut to whole seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_line_announces_the_retry_after_wait() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("retry-after.db");
    let app = axum::Router::new().fallback(|| async {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "120")],
            "slow down",
        )
    });
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", server.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(server, app).await;
    });
    let listen = listen(
        &sandbox,
        &[
            "--port",
            "0",
            "--store",
            file.to_str().unwrap(),
            "--sync",
            "normal",
            "--forward-to",
            &target,
            "--retry-schedule",
            "1s",
            "--json",
        ],
    );
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listen.url, "retry-after-1").await,
        Some(StatusCode::OK)
    );
    let outcome = first_outcome(&listen);
    assert_eq!(outcome["status"], "retrying", "{outcome}");
    assert_eq!(outcome["retryIn"], "2m", "{outcome}");
}

/// A stop by SIGTERM (what systemd and Docker send) says how to stop at once in its own terms,
/// not "Ctrl-C again", which no one under a service manager can press (and in parentheses of its
/// own: it said "(SIGTERM again (or Ctrl-C) to stop at once)").
#[tokio::test]
async fn a_sigterm_stop_names_sigterm_as_the_way_to_stop_at_once() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("term.db");
    let mut listen = listen(
        &sandbox,
        &["--port", "0", "--store", file.to_str().unwrap()],
    );
    assert_eq!(terminate(&mut listen).await, Some(0));
    // Everything it said: it has exited, so the stream ends.
    let said: Vec<String> = listen.err.iter().collect();
    let stopping = said
        .iter()
        .find(|l| l.starts_with("Stopping…"))
        .unwrap_or_else(|| panic!("{said:?}"));
    assert_eq!(
        stopping, "Stopping… (SIGTERM or Ctrl-C again to stop at once)",
        "{said:?}"
    );
}

/// A start that fails once the store is open (the view's or the admin listener's port is taken,
/// say by a `ccai ui` on 8081) forwards nothing and leaves every stored event due: forwarding
/// starts only once everything is bound. It once started first: the failed start claimed the
/// events it found, could not put them back in the store it had just closed, and left them
/// leased (a warning per event above the error) while another receiver waited out the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_fails_on_a_taken_port_forwards_nothing() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("inbox.db");
    let store = file.to_str().expect("utf-8 path").to_owned();
    let http = reqwest::Client::new();
    // Stored without --forward-to: due for the next start that forwards.
    let hashes: Vec<String> = (0..20).map(|i| format!("taken-port-{i}")).collect();
    let stored = listen(&sandbox, &["--port", "0", "--store", &store]);
    for hash in &hashes {
        assert_eq!(
            deliver(&http, &stored.url, hash).await,
            Some(StatusCode::OK)
        );
    }
    assert_eq!(stop(stored).0, Some(0));

    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    for flags in [&["--admin-port", &port][..], &["--ui", "--ui-port", &port]] {
        let mut cmd = ccai(&sandbox);
        cmd.args(["listen", "--port", "0", "--store", &store])
            .args(["--forward-to", &target.url])
            .args(flags);
        let out = common::exits(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains("the port is in use"), "{flags:?}: {err}");
        assert!(!err.contains("lease"), "{flags:?}: {err}");

        let inbox = open_store(&file);
        let stats = inbox.stats(SystemTime::now()).await.expect("stats");
        inbox.close().await;
        assert_eq!(
            stats.count(DeliveryStatus::Pending),
            hashes.len() as u64,
            "{flags:?}: {err}"
        );
        assert_eq!(stats.count(DeliveryStatus::InProgress), 0, "{flags:?}");
    }
    assert!(
        target.requests.lock().expect("lock").is_empty(),
        "a failed start forwarded"
    );
}

/// A start refused for a port in use (the receiver's, the view's or the admin listener's) creates
/// nothing: no store file or folder, no development secret. It once bound only after opening the
/// store, and left a new, empty store file behind. A store or a development secret that was there
/// is left byte for byte as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_refused_for_a_taken_port_creates_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let taken_flags = [
        &["--port", &port][..],
        &["--port", "0", "--admin-port", &port],
        &["--port", "0", "--ui", "--ui-port", &port],
    ];
    let fresh = sandbox.path().join("fresh").join("inbox.db");
    for flags in taken_flags {
        // No configured account: the development secret is not made either.
        let mut cmd = sandbox.ccai();
        cmd.arg("listen").args(flags).arg("--store").arg(&fresh);
        let out = common::exits(cmd).await;
        let text = format!("{}{}", common::stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {text}");
        assert!(
            text.starts_with("error: ")
                && text.contains("the port is in use")
                && text.lines().count() == 1,
            "{flags:?}: {text}"
        );
        assert!(!fresh.exists(), "{flags:?}: the store was created");
        assert!(!fresh.parent().expect("folder").exists(), "{flags:?}");
        assert!(
            !sandbox.config_dir().exists(),
            "{flags:?}: credentials made"
        );
    }
    // A development secret that was there is left as it was (not rewritten with this start's
    // URL), and nothing is added beside it.
    let config = sandbox.config_dir();
    std::fs::create_dir_all(&config).expect("config folder");
    let secret_file = config.join("dev-credentials.json");
    let kept = r#"{"client_id":"ccai-dev","secret":"whsec_dev_kept","listen_url":null}"#;
    std::fs::write(&secret_file, kept).expect("write the secret");
    let written = std::fs::metadata(&secret_file)
        .expect("stat")
        .modified()
        .expect("mtime");
    for flags in taken_flags {
        let mut cmd = sandbox.ccai();
        cmd.arg("listen").args(flags).arg("--store").arg(&fresh);
        let out = common::exits(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(!err.contains("whsec_dev_kept"), "{flags:?}: {err}");
        assert_eq!(std::fs::read_to_string(&secret_file).expect("read"), kept);
        assert_eq!(
            std::fs::metadata(&secret_file)
                .expect("stat")
                .modified()
                .expect("mtime"),
            written,
            "{flags:?}"
        );
        let names: Vec<_> = std::fs::read_dir(&config)
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["dev-credentials.json"], "{flags:?}");
        assert!(!fresh.exists(), "{flags:?}: the store was created");
    }

    let file = sandbox.path().join("inbox.db");
    let store = file.to_str().expect("utf-8 path").to_owned();
    let http = reqwest::Client::new();
    let stored = listen(&sandbox, &["--port", "0", "--store", &store]);
    for hash in ["kept-1", "kept-2", "kept-3"] {
        assert_eq!(
            deliver(&http, &stored.url, hash).await,
            Some(StatusCode::OK)
        );
    }
    assert_eq!(stop(stored).0, Some(0));
    let before = std::fs::read(&file).expect("read the store");
    for flags in taken_flags {
        let mut cmd = ccai(&sandbox);
        cmd.arg("listen").args(flags).args(["--store", &store]);
        let out = common::exits(cmd).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains("the port is in use"), "{flags:?}: {err}");
        assert!(
            std::fs::read(&file).expect("read the store") == before,
            "{flags:?}: the store changed"
        );
        // Not even opened: a SQLite file opened in WAL mode gets its -wal and -shm files.
        for suffix in ["-wal", "-shm"] {
            let mut side = file.clone().into_os_string();
            side.push(suffix);
            assert!(!Path::new(&side).exists(), "{flags:?}: {suffix}");
        }
    }
    let inbox = open_store(&file);
    let stats = inbox.stats(SystemTime::now()).await.expect("stats");
    inbox.close().await;
    assert_eq!(stats.count(DeliveryStatus::Pending), 3);
}

/// `--sync` is read in any case, as `--log-format` and `--method` are.
#[tokio::test]
async fn sync_is_read_in_any_case() {
    let sandbox = Sandbox::new();
    for (given, shown) in [("NORMAL", "normal"), ("Full", "full")] {
        let listen = listen(&sandbox, &["--port", "0", "--sync", given]);
        let banner = listen.banner.join("\n");
        assert!(
            banner.contains(&format!("(sync {shown})")),
            "{given}: {banner}"
        );
        assert_eq!(stop(listen).0, Some(0), "{given}");
    }
}

/// A `CCAI_STORE` that is not UTF-8 (a file name in another encoding) names the store, as it does
/// for `ccai events`: `listen` read it as unset and stored in the default file, where `ccai
/// events` with the same environment did not look.
#[cfg(unix)]
#[tokio::test]
async fn a_ccai_store_that_is_not_utf8_is_the_store_listen_and_events_use() {
    use std::os::unix::ffi::OsStrExt;
    let sandbox = Sandbox::new();
    let file = sandbox
        .path()
        .join(std::ffi::OsStr::from_bytes(b"inbox-\xe9.db"));
    let mut cmd = ccai(&sandbox);
    cmd.env("CCAI_STORE", &file);
    let listen = Listening::announced(Listening::launch(cmd, &["--port", "0"]));
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listen.url, "latin-1").await,
        Some(StatusCode::OK)
    );
    assert_eq!(stop(listen).0, Some(0));
    assert!(
        !sandbox.data_dir().join("ccai").join("inbox.db").exists(),
        "stored in the default file"
    );
    let stored = event(&open_store(&file), "latin-1").await;
    assert_eq!(stored.body.as_deref(), Some(body("latin-1").as_bytes()));

    let mut events = ccai(&sandbox);
    events
        .env("CCAI_STORE", &file)
        .args(["events", "list", "--json"]);
    let out = run(events).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("latin-1"),
        "{}",
        stderr(&out)
    );
}

/// `--grace` bounds the whole stop: requests in progress and forwards in flight share it. The
/// forwards' wait once began when the requests' wait ended, so a client holding a request and a
/// slow target made a stop take twice `--grace` (past a `docker stop`'s 10 s, a SIGKILL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_requests_and_forwards_together() {
    use std::io::Write;
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("inbox.db");
    let store = file.to_str().expect("utf-8 path");
    let (hung, started) = slow_target(Duration::from_secs(3600)).await;
    let grace = Duration::from_secs(8);
    let mut listener = listen(
        &sandbox,
        &[
            "--port",
            "0",
            "--store",
            store,
            "--forward-to",
            &hung,
            "--grace",
            "8s",
        ],
    );
    let http = reqwest::Client::new();
    assert_eq!(
        deliver(&http, &listener.url, "shared-grace").await,
        Some(StatusCode::OK)
    );
    wait_until(WAIT, "the forward is in flight", || {
        started[0].load(Ordering::SeqCst) == 1
    })
    .await;
    // Half a request: it holds the receiver's stop for the whole grace period.
    let address = listener.address();
    let mut half = std::net::TcpStream::connect(&address).expect("connect");
    half.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .expect("write");
    std::thread::sleep(Duration::from_millis(200));

    let began = Instant::now();
    assert_eq!(terminate(&mut listener).await, Some(0));
    let took = began.elapsed();
    // Well under twice the grace period (what it took), whatever the machine's load.
    assert!(
        took < grace + grace / 2,
        "the stop took {took:?} with --grace {grace:?}"
    );
    let released = event(&open_store(&file), "shared-grace").await;
    assert_eq!(
        released.summary.deliveries[0].status,
        DeliveryStatus::Pending
    );
    drop(half);
}
