//! For the `ccai ui` tests: an inbox filled through the library, the real `ccai ui` process, and
//! a small WebDriver client for headless Chromium (through `chromedriver`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, Finish, LeaseRequest, NewDelivery, SqliteOptions, SqliteStore,
    Store, DEFAULT_DESTINATION,
};
use serde_json::{json, Value};

use crate::common::{Listening, Sandbox, WAIT};

pub(crate) const CLIENT: &str = "1231";
pub(crate) const SECRET: &str = "ui-test-secret";
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

// Oldest first: the view lists them in the reverse order.
pub(crate) const SENT_OLD: &str = "a1a1a1a1a1a1a1a1-sent-old";
pub(crate) const INCOMING_DEAD: &str = "b2b2b2b2b2b2b2b2-dead";
pub(crate) const EXCLUDED_DUP: &str = "c3c3c3c3c3c3c3c3-dup";
pub(crate) const SENT_PENDING: &str = "d4d4d4d4d4d4d4d4-pending";
pub(crate) const CUSTOM_NEW: &str = "e5e5e5e5e5e5e5e5-custom";

pub(crate) fn body(event_type: &str, hash: &str, data: &str) -> Vec<u8> {
    // Unusual spacing: the view must show the body exactly as received.
    format!("{{\"eventType\":\"{event_type}\",  \"eventHash\":\"{hash}\",\"data\":{data}}}")
        .into_bytes()
}

/// (hash, type, age, data) of each fixture, oldest first.
pub(crate) fn fixtures() -> Vec<(&'static str, &'static str, Duration, &'static str)> {
    vec![
        (
            SENT_OLD,
            "message.sent",
            180 * MINUTE,
            r#"{"To":"+14155550122","Segments":2,"TotalPrice":0.0079}"#,
        ),
        (
            INCOMING_DEAD,
            "message.incoming",
            50 * MINUTE,
            r#"{"From":"+14155550133","Message":"see you <b>soon</b>"}"#,
        ),
        (
            EXCLUDED_DUP,
            "message.excluded",
            20 * MINUTE,
            r#"{"To":"+14155550100","ExcludedReason":"Contact opted out"}"#,
        ),
        (
            SENT_PENDING,
            "message.sent",
            5 * MINUTE,
            r#"{"To":"+14155550144"}"#,
        ),
        (
            CUSTOM_NEW,
            "custom.thing",
            MINUTE,
            r#"{"Phone":"+14155550155"}"#,
        ),
    ]
}

pub(crate) fn signature_of(hash: &str) -> String {
    ccai::signature::sign(CLIENT, hash, SECRET)
}

/// A search that matches no body and is compared in full at every position of every body
/// (SQLite's `instr`, PostgreSQL's `position`), as long as a search may be: against the bodies of
/// [`fill_slow`], the crafted search the stores' read timeouts are for.
pub(crate) fn slow_search() -> String {
    format!("{}b", "a".repeat(ccai::inbox::ListFilter::MAX_TEXT_LEN - 1))
}

/// An inbox at `path` of `events` signed events `h0`, `h1`, … whose bodies hold a run of `text`
/// `a`s, over which [`slow_search`] takes about 3 ms a 250 KiB body.
pub(crate) async fn fill_slow(path: &Path, events: usize, text: usize) {
    let store = SqliteStore::open(path, SqliteOptions::default()).expect("open");
    let text = "a".repeat(text);
    for i in 0..events {
        let hash = format!("h{i}");
        let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"{text}"}}}}"#);
        let delivery = NewDelivery::new(CLIENT, hash.as_str(), "message.incoming", body)
            .signature(signature_of(&hash));
        store.insert(delivery).await.expect("insert");
    }
    store.close().await;
}

pub(crate) fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).expect("open store")
}

/// An inbox file with the fixtures: SENT_OLD delivered, INCOMING_DEAD dead after an HTTP 500,
/// EXCLUDED_DUP pending with two duplicates and a conflict, CUSTOM_NEW retrying after a failed
/// attempt, SENT_PENDING pending.
pub(crate) async fn fill(path: &Path) -> SqliteStore {
    let store = open(path);
    let now = SystemTime::now();
    for (hash, event_type, age, data) in fixtures() {
        let delivery = NewDelivery::new(CLIENT, hash, event_type, body(event_type, hash, data))
            .signature(signature_of(hash))
            .content_type("application/json; charset=utf-8")
            .received_at(now - age);
        store.insert(delivery).await.expect("insert");
    }
    let (_, _, _, data) = fixtures()[2];
    for _ in 0..2 {
        let repeat = NewDelivery::new(
            CLIENT,
            EXCLUDED_DUP,
            "message.excluded",
            body("message.excluded", EXCLUDED_DUP, data),
        );
        store.insert(repeat).await.expect("duplicate");
    }
    let other = NewDelivery::new(CLIENT, EXCLUDED_DUP, "message.excluded", &b"{}"[..]);
    store.insert(other).await.expect("conflict");
    let claimed = store
        .claim(
            DEFAULT_DESTINATION,
            LeaseRequest::new("fixture", MINUTE),
            100,
            now,
        )
        .await
        .expect("claim");
    for delivery in claimed {
        let started = now - Duration::from_secs(5);
        let lease = &delivery.lease;
        let done = match delivery.event_hash.as_str() {
            SENT_OLD => {
                let attempt =
                    AttemptRecord::new(started, Duration::from_millis(7), AttemptOutcome::Success)
                        .http_status(200);
                store.finish(lease, Finish::Delivered, attempt).await
            }
            INCOMING_DEAD => {
                let attempt =
                    AttemptRecord::new(started, Duration::from_millis(42), AttemptOutcome::Failure)
                        .http_status(500)
                        .error("HTTP 500 from the target: boom");
                store.finish(lease, Finish::Dead, attempt).await
            }
            CUSTOM_NEW => {
                let attempt =
                    AttemptRecord::new(started, Duration::from_millis(9), AttemptOutcome::Failure)
                        .error("cannot connect");
                store
                    .finish(lease, Finish::RetryAt(now + 60 * MINUTE), attempt)
                    .await
            }
            _ => store.release(lease).await,
        };
        assert!(done.expect("finish"), "lease held");
    }
    store
}

/// The second account of [`fill_two_accounts`]'s inbox.
pub(crate) const OTHER_CLIENT: &str = "4567";
/// Stored by both accounts of [`fill_two_accounts`]'s inbox, each with a body of its own.
pub(crate) const SHARED: &str = "5a5a5a5a5a5a5a5a-shared";
/// In [`fill_two_accounts`]'s inbox, [`CLIENT`]'s alone.
pub(crate) const CLIENT_ONLY: &str = "6b6b6b6b6b6b6b6b-client-only";

/// The body each account stored under [`SHARED`]: the same event type, its own recipient.
pub(crate) fn shared_body(client: &str) -> Vec<u8> {
    let to = if client == CLIENT {
        "+14155550101"
    } else {
        "+14155550202"
    };
    body("message.sent", SHARED, &format!(r#"{{"To":"{to}"}}"#))
}

/// An inbox two accounts share: [`CLIENT_ONLY`] (10 minutes ago, pending), [`SHARED`] for
/// [`CLIENT`] (5 minutes ago, delivered) and for [`OTHER_CLIENT`] (a minute ago, so the newest:
/// dead after an HTTP 500).
pub(crate) async fn fill_two_accounts(path: &Path) -> SqliteStore {
    let store = open(path);
    let now = SystemTime::now();
    let deliveries = [
        (
            CLIENT,
            CLIENT_ONLY,
            10 * MINUTE,
            body("message.sent", CLIENT_ONLY, r#"{"To":"+14155550303"}"#),
        ),
        (CLIENT, SHARED, 5 * MINUTE, shared_body(CLIENT)),
        (OTHER_CLIENT, SHARED, MINUTE, shared_body(OTHER_CLIENT)),
    ];
    for (client, hash, age, body) in deliveries {
        let delivery = NewDelivery::new(client, hash, "message.sent", body)
            .signature(ccai::signature::sign(client, hash, SECRET))
            .received_at(now - age);
        store.insert(delivery).await.expect("insert");
    }
    let claimed = store
        .claim(
            DEFAULT_DESTINATION,
            LeaseRequest::new("fixture", MINUTE),
            100,
            now,
        )
        .await
        .expect("claim");
    for delivery in claimed {
        let started = now - Duration::from_secs(5);
        let lease = &delivery.lease;
        let done = match (delivery.client_id.as_str(), delivery.event_hash.as_str()) {
            (CLIENT, SHARED) => {
                let attempt =
                    AttemptRecord::new(started, Duration::from_millis(7), AttemptOutcome::Success)
                        .http_status(200);
                store.finish(lease, Finish::Delivered, attempt).await
            }
            (OTHER_CLIENT, SHARED) => {
                let attempt =
                    AttemptRecord::new(started, Duration::from_millis(42), AttemptOutcome::Failure)
                        .http_status(500)
                        .error("HTTP 500 from the target: boom");
                store.finish(lease, Finish::Dead, attempt).await
            }
            _ => store.release(lease).await,
        };
        assert!(done.expect("finish"), "lease held");
    }
    store
}

/// Stores one more event, received now.
pub(crate) async fn add(store: &SqliteStore, hash: &str, event_type: &str) {
    let delivery = NewDelivery::new(
        CLIENT,
        hash,
        event_type,
        body(event_type, hash, r#"{"To":"+14155550199"}"#),
    );
    store.insert(delivery).await.expect("insert");
}

/// Sends `ccai listen` at `url` a delivery of `event_type` under `hash`, signed with the
/// fixtures' account, and checks it is answered 200; its body.
pub(crate) async fn deliver(url: &str, hash: &str, event_type: &str) -> Vec<u8> {
    let body = body(event_type, hash, r#"{"To":"+14155550100"}"#);
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-ccai-signature", signature_of(hash))
        .body(body.clone())
        .send()
        .await
        .expect("deliver");
    assert_eq!(response.status().as_u16(), 200, "delivering {hash:?}");
    body
}

/// A running `ccai ui`, killed on drop.
pub(crate) struct Ui {
    pub child: Child,
    /// The URL it printed (with `?token=` when it requires one).
    pub url: String,
    /// The URL without the token or trailing slash: `http://127.0.0.1:PORT`.
    pub base: String,
    pub token: Option<String>,
    pub banner: Vec<String>,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads a process's stderr until it prints `UI on URL`.
pub(crate) fn announced(mut child: Child) -> Ui {
    let err = lines(child.stderr.take().expect("stderr"));
    let mut banner = Vec::new();
    let url = loop {
        let Ok(line) = err.recv_timeout(WAIT) else {
            let _ = child.kill();
            panic!("no `UI on` line; it said: {banner:?}");
        };
        banner.push(line.clone());
        if let Some(url) = line.strip_prefix("UI on ") {
            break url.trim().to_owned();
        }
    };
    // Keep draining stderr so the process never blocks on a full pipe.
    std::thread::spawn(move || while err.recv().is_ok() {});
    let (base, token) = match url.split_once("/?token=") {
        Some((base, token)) => (base.to_owned(), Some(token.to_owned())),
        None => (url.trim_end_matches('/').to_owned(), None),
    };
    Ui {
        child,
        url,
        base,
        token,
        banner,
    }
}

/// Starts `ccai ui --store PATH --port 0` with `extra` arguments.
pub(crate) fn start_ui(sandbox: &Sandbox, store: &Path, extra: &[&str]) -> Ui {
    start_ui_on(sandbox, store, 0, extra)
}

impl Ui {
    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.base))
    }
}

/// Starts `ccai ui --store PATH` on `port` (where one that stopped listened: an open page
/// reconnects to it) with `extra` arguments.
pub(crate) fn start_ui_on(sandbox: &Sandbox, store: &Path, port: u16, extra: &[&str]) -> Ui {
    let mut cmd = sandbox.ccai();
    cmd.arg("ui")
        .arg("--store")
        .arg(store)
        .args(["--port", &port.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    announced(cmd.spawn().expect("spawn ccai ui"))
}

/// `ccai listen --store PATH --port 0 --ui --ui-port 0` with `extra` arguments, signing with the
/// fixtures' account; the listener and the view's URL (as printed, ending in `/`).
pub(crate) fn listen_with_ui(
    sandbox: &Sandbox,
    store: &Path,
    extra: &[&str],
) -> (Listening, String) {
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", CLIENT)
        .env("CCAI_WEBHOOK_SECRET", SECRET);
    let store = store.to_string_lossy().into_owned();
    let mut args = vec!["--store", &store, "--port", "0", "--ui", "--ui-port", "0"];
    args.extend_from_slice(extra);
    let listening = Listening::announced(Listening::launch(cmd, &args));
    let url = listening
        .banner
        .iter()
        .find_map(|line| line.strip_prefix("UI on "))
        .unwrap_or_else(|| panic!("no `UI on` line: {:?}", listening.banner))
        .to_owned();
    (listening, url)
}

/// GET `path` from the view (with its token, if it has one); the status and the JSON answer
/// (Null when the body is not JSON).
pub(crate) async fn get(ui: &Ui, path: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", ui.base));
    if let Some(token) = &ui.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// POST an action to the view, with the header actions must carry.
pub(crate) async fn post(ui: &Ui, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", ui.base))
        .header("x-ccai-ui", "1")
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The path of a sandbox's inbox file.
pub(crate) fn inbox_path(sandbox: &Sandbox) -> PathBuf {
    sandbox.path().join("inbox.db")
}

pub(crate) async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes every read of the inbox at `path` fail (`false`), or work again (`true`): its events
/// table under another name, as another program could leave it, and in its place a view with
/// the same columns whose every read fails ("integer overflow"). (`chmod` would not do: tests
/// may run as root, whom file modes do not stop, and the view keeps its files open. A missing
/// table would not do either: a store lacking a table's columns is refused at open.)
pub(crate) fn set_events_readable(path: &Path, readable: bool) {
    let conn = rusqlite::Connection::open(path).expect("open the inbox");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    let sql = if readable {
        "DROP VIEW events; ALTER TABLE events_away RENAME TO events;"
    } else {
        "ALTER TABLE events RENAME TO events_away;
         CREATE VIEW events AS SELECT * FROM events_away WHERE abs(-9223372036854775808) > 0;"
    };
    conn.execute_batch(sql).expect("change the events table");
}

// ---- WebDriver ---------------------------------------------------------------------------------

/// Where Debian's Chromium and its driver are.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser tests can run; prints why not when they cannot.
pub(crate) fn chromium_available() -> bool {
    let found = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !found {
        println!("skipped: chromium not installed");
    }
    found
}

/// A running chromedriver, killed on drop, after closing the browsers a failed test left open.
pub(crate) struct Driver {
    child: Child,
    port: u16,
    pub url: String,
    http: reqwest::Client,
    sessions: Arc<Mutex<Vec<String>>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let open = std::mem::take(&mut *self.sessions.lock().unwrap_or_else(|e| e.into_inner()));
        for id in open {
            // Blocking and minimal: drop may run while a test panics, inside the runtime.
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let request = format!(
                    "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.port
                );
                let _ = stream.write_all(request.as_bytes());
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl Driver {
    pub(crate) async fn start() -> Self {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let driver = Driver {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            sessions: Arc::default(),
        };
        let status_url = format!("{}/status", driver.url);
        let http = driver.http.clone();
        wait_for("chromedriver", async || {
            let response = http.get(&status_url).send().await.ok()?;
            let value: Value = serde_json::from_str(&response.text().await.ok()?).ok()?;
            value["value"]["ready"].as_bool().filter(|ready| *ready)
        })
        .await;
        driver
    }

    /// A new headless Chromium session with its own profile folder.
    pub(crate) async fn session(&self, profile: &Path, width: u32, height: u32) -> Session {
        self.session_with_prefs(profile, width, height, json!({}))
            .await
    }

    /// A new headless Chromium session, as [`Self::session`], that saves downloads in
    /// `downloads` without asking.
    pub(crate) async fn session_downloading_to(
        &self,
        profile: &Path,
        downloads: &Path,
        width: u32,
        height: u32,
    ) -> Session {
        let prefs = json!({
            "download.default_directory": downloads,
            "download.prompt_for_download": false,
        });
        self.session_with_prefs(profile, width, height, prefs).await
    }

    /// A new headless Chromium session with its own profile folder and these profile `prefs`.
    async fn session_with_prefs(
        &self,
        profile: &Path,
        width: u32,
        height: u32,
        prefs: Value,
    ) -> Session {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "prefs": prefs,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            format!("--window-size={width},{height}"),
                            format!("--user-data-dir={}", profile.display()),
                        ]
                    }
                }
            }
        });
        let value = call(
            &self.http,
            "POST",
            &format!("{}/session", self.url),
            Some(capabilities),
        )
        .await;
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {value}"))
            .to_owned();
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.clone());
        Session {
            base: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
            id,
            sessions: Arc::clone(&self.sessions),
        }
    }
}

/// One WebDriver command; the whole answer (`value`, or `value.error`).
async fn send(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Value {
    let request = match method {
        "POST" => http
            .post(url)
            .header("content-type", "application/json")
            .body(body.unwrap_or_else(|| json!({})).to_string()),
        "DELETE" => http.delete(url),
        _ => http.get(url),
    };
    let response = request.send().await.expect("webdriver request");
    let text = response.text().await.expect("webdriver answer");
    serde_json::from_str(&text).expect("webdriver JSON")
}

/// One WebDriver command; the answer's `value`. Panics on a WebDriver error.
async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Value {
    let value = send(http, method, url, body).await;
    if value["value"]["error"].is_string() {
        panic!("webdriver {method} {url}: {}", value["value"]);
    }
    value["value"].clone()
}

/// The W3C element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session, closed on [`Session::quit`].
pub(crate) struct Session {
    base: String,
    http: reqwest::Client,
    id: String,
    sessions: Arc<Mutex<Vec<String>>>,
}

impl Session {
    pub(crate) async fn goto(&self, url: &str) {
        call(
            &self.http,
            "POST",
            &format!("{}/url", self.base),
            Some(json!({ "url": url })),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub(crate) async fn js(&self, script: &str, args: Value) -> Value {
        call(
            &self.http,
            "POST",
            &format!("{}/execute/sync", self.base),
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits until `script` returns something truthy; returns it.
    /// Waits until the page says its live updates are connected.
    pub(crate) async fn wait_live(&self) {
        self.wait_js(
            "live",
            "return document.getElementById('live').textContent === 'live'",
        )
        .await;
    }

    pub(crate) async fn wait_js(&self, what: &str, script: &str) -> Value {
        wait_for(what, async || {
            let value = self.js(script, json!([])).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            truthy.then_some(value)
        })
        .await
    }

    pub(crate) async fn find(&self, css: &str) -> String {
        let value = call(
            &self.http,
            "POST",
            &format!("{}/element", self.base),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .await;
        value[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {value}"))
            .to_owned()
    }

    /// Clicks the element `css` finds, as a person would. The live page may replace the element
    /// between finding and clicking it: then it is found again.
    pub(crate) async fn click(&self, css: &str) {
        for _ in 0..20 {
            let id = self.find(css).await;
            let url = format!("{}/element/{id}/click", self.base);
            let answer = send(&self.http, "POST", &url, Some(json!({}))).await;
            match answer["value"]["error"].as_str() {
                None => return,
                Some("stale element reference") => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some(_) => panic!("webdriver POST {url}: {answer}"),
            }
        }
        panic!("{css} kept being replaced");
    }

    /// Clicks the element `css` finds with the mouse's `button` (0 the left one, 1 the middle
    /// one) while holding `keys` (WebDriver key codes such as `\u{E009}`, Control), as a person
    /// would: WebDriver's actions, which the browser takes as real input.
    pub(crate) async fn click_as(&self, css: &str, button: u8, keys: &[&str]) {
        let id = self.find(css).await;
        let mut key_actions: Vec<Value> = keys
            .iter()
            .map(|key| json!({ "type": "keyDown", "value": key }))
            .collect();
        let mut pointer_actions: Vec<Value> =
            keys.iter().map(|_| json!({ "type": "pause" })).collect();
        pointer_actions.extend([
            json!({ "type": "pointerMove", "origin": { ELEMENT: id }, "x": 0, "y": 0 }),
            json!({ "type": "pointerDown", "button": button }),
            json!({ "type": "pointerUp", "button": button }),
        ]);
        key_actions.extend((0..3).map(|_| json!({ "type": "pause" })));
        key_actions.extend(
            keys.iter()
                .map(|key| json!({ "type": "keyUp", "value": key })),
        );
        let actions = json!({ "actions": [
            { "type": "key", "id": "keyboard", "actions": key_actions },
            { "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" }, "actions": pointer_actions },
        ] });
        let url = format!("{}/actions", self.base);
        call(&self.http, "POST", &url, Some(actions)).await;
        call(&self.http, "DELETE", &url, None).await;
    }

    /// How many tabs and windows the browser has open.
    pub(crate) async fn windows(&self) -> usize {
        let handles = call(
            &self.http,
            "GET",
            &format!("{}/window/handles", self.base),
            None,
        )
        .await;
        handles.as_array().map_or(0, Vec::len)
    }

    /// Types `text` into the element `css` finds.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        call(
            &self.http,
            "POST",
            &format!("{}/element/{id}/value", self.base),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Sends a key (a WebDriver key code such as `\u{E007}`, Enter) to the element `css` finds.
    pub(crate) async fn press(&self, css: &str, key: &str) {
        self.type_into(css, key).await;
    }

    /// The page as a PNG.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let value = call(
            &self.http,
            "GET",
            &format!("{}/screenshot", self.base),
            None,
        )
        .await;
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64"))
            .expect("PNG")
    }

    pub(crate) async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id| *id != self.id);
    }
}
