//! A PostgreSQL read that runs past the server's time limit (a little below the URL's
//! `operation_timeout`), end to end: `ccai events list` exits 2 with one line, and the view
//! answers 503 with `"stopped": true` (the page does not run it again by itself), then 200 for
//! the next reads. One that waits for another session's lock is stopped the same way, saying so.
//!
//! The database is `CCAI_TEST_POSTGRES_URL` (CI: postgres://postgres@127.0.0.1:5432/test);
//! without it every test here passes after printing that it was skipped.

mod common;
mod ui_support;

use std::process::{Child, Command, Stdio};

use ccai::inbox::{NewDelivery, PostgresOptions, PostgresStore, Store};
use common::postgres::{database, Schema};
use common::{exits, stderr, stdout, Sandbox};
use serde_json::Value;
use ui_support::slow_search;

/// What every answer to the stopped read says: the server stops it at 0.75 s of the URL's 1 s.
const STOPPED: &str = "the read took longer than 0.75 s and was stopped by the server: narrow the \
                       filter";

/// An inbox in `schema` with the event `h1`, then 60 bodies of 4 MB of `a`s (made by the
/// server, they take little room): the slow search takes seconds over them. Its `--store` URL
/// gives up on an operation after 1 s.
async fn filled(schema: &Schema) -> String {
    let store = with_h1(schema).await;
    let s = &schema.name;
    let base = schema.base.split('?').next().unwrap_or(&schema.base);
    let out = Command::new("psql")
        .args([base, "-v", "ON_ERROR_STOP=1", "-qc"])
        .arg(format!(
            "INSERT INTO {s}.events (client_id, event_hash, event_type, body, body_len,
                                     body_sha256, received_at)
             SELECT '1231', 'big' || i, 'message.sent', convert_to(repeat('a', 4000000), 'UTF8'),
                    4000000, '', 0
               FROM generate_series(1, 60) i"
        ))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    store
}

/// An inbox in `schema` with the event `h1` only; its `--store` URL gives up on an operation
/// after 1 s.
async fn with_h1(schema: &Schema) -> String {
    let store = PostgresStore::connect(&schema.url(), PostgresOptions::new())
        .await
        .expect("connect");
    let body = r#"{"eventType":"message.sent","eventHash":"h1"}"#;
    let event = NewDelivery::new("1231", "h1", "message.sent", body.as_bytes().to_vec());
    store.insert(event).await.expect("insert");
    store.close().await;
    format!("{}&operation_timeout=1", schema.url())
}

/// That `error` is the one line of a read the server stopped, without the search text.
fn assert_stopped(error: &str) {
    assert!(error.contains(STOPPED), "{error:?}");
    assert!(!error.trim_end().contains('\n'), "one line: {error:?}");
    assert!(
        !error.contains(&"a".repeat(64)),
        "the search text: {error:?}"
    );
    assert!(!error.contains("SELECT"), "the statement: {error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_list_a_search_the_server_stopped_exits_2_saying_to_narrow_it() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    let store = filled(&schema).await;
    let sandbox = Sandbox::new();

    let mut cmd = sandbox.ccai();
    cmd.args([
        "events",
        "list",
        "--store",
        &store,
        "--contains",
        &slow_search(),
    ]);
    let out = exits(cmd).await;
    let error = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{error}");
    assert!(
        error.starts_with("error: the inbox store stopped a read: "),
        "{error:?}"
    );
    assert_stopped(&error);
    assert_eq!(stdout(&out), "", "nothing listed");
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_api_a_search_the_server_stopped_is_answered_503_stopped_then_reads_go_on() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    let store = filled(&schema).await;
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.args(["ui", "--port", "0", "--store", &store])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let ui = ui_support::announced(cmd.spawn().expect("spawn ccai ui"));

    let (status, answer) = ui_support::get(&ui, &format!("/api/events?q={}", slow_search())).await;
    assert_eq!(status, 503, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the store failed: the inbox store stopped a read: "),
        "{answer}"
    );
    assert_stopped(error);
    // Said so, for the page not to repeat it by itself, as it does a database that is down.
    assert_eq!(answer["stopped"], Value::Bool(true), "{answer}");

    let (status, page) = ui_support::get(&ui, "/api/events?limit=100").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"].as_array().map(Vec::len), Some(61), "{page}");
    let (status, detail) = ui_support::get(&ui, "/api/events/h1").await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["eventHash"], Value::from("h1"), "{detail}");
    let (status, stats) = ui_support::get(&ui, "/api/stats").await;
    assert_eq!(status, 200, "{stats}");
}

/// A `psql` session holding the tables `tables` in ACCESS EXCLUSIVE mode in a transaction left
/// open (an `ALTER TABLE` or a `VACUUM FULL` under way), until it is dropped: psql is killed and
/// the server rolls its transaction back.
struct LockHolder(Child);

impl LockHolder {
    fn lock(schema: &Schema, tables: &str) -> Self {
        use std::io::Write;
        let base = schema.base.split('?').next().unwrap_or(&schema.base);
        let mut holder = Self(
            Command::new("psql")
                .args([base, "-v", "ON_ERROR_STOP=1", "-qX"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("run psql"),
        );
        // Its input is left open: psql waits for more, its transaction open.
        let input = holder.0.stdin.as_mut().expect("psql's input");
        writeln!(
            input,
            "BEGIN; LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE;"
        )
        .expect("to psql");
        let held = format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = '{}' AND l.mode = 'AccessExclusiveLock' AND l.granted",
            schema.name
        );
        for _ in 0..500 {
            let out = Command::new("psql")
                .args([base, "-Atc", &held])
                .output()
                .expect("run psql");
            if String::from_utf8_lossy(&out.stdout).trim() != "0" {
                return holder;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("psql did not take the lock");
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_waiting_for_another_sessions_lock_says_so_and_reads_go_on_once_it_is_released() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    let store = with_h1(&schema).await;
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.ccai();
    cmd.args(["ui", "--port", "0", "--store", &store])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let ui = ui_support::announced(cmd.spawn().expect("spawn ccai ui"));
    let s = &schema.name;
    let holder = LockHolder::lock(&schema, &format!("{s}.events, {s}.deliveries"));
    let waited =
        "the read waited longer than 0.562 s for a lock that another session holds on the \
                  store's tables";
    let assert_waited = |error: &str| {
        assert!(error.contains(waited), "{error:?}");
        assert!(error.contains("pg_locks and pg_stat_activity"), "{error:?}");
        assert!(!error.contains("narrow the filter"), "{error:?}");
        assert!(!error.trim_end().contains('\n'), "one line: {error:?}");
    };

    let mut cmd = sandbox.ccai();
    cmd.args(["events", "list", "--store", &store, "--contains", "h1"]);
    let out = exits(cmd).await;
    let error = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{error}");
    assert!(
        error.starts_with("error: the inbox store stopped a read: "),
        "{error:?}"
    );
    assert_waited(&error);
    assert_eq!(stdout(&out), "", "nothing listed");

    let (status, answer) = ui_support::get(&ui, "/api/events?q=h1").await;
    assert_eq!(status, 503, "{answer}");
    assert_waited(answer["error"].as_str().unwrap_or_default());
    assert_eq!(answer["stopped"], Value::Bool(true), "{answer}");

    drop(holder);
    let (status, page) = ui_support::get(&ui, "/api/events?q=h1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"].as_array().map(Vec::len), Some(1), "{page}");
}
