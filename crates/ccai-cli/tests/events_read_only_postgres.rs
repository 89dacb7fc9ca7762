//! `ccai events` and `ccai ui` on a PostgreSQL store with a role that may only `SELECT` (a
//! reporting role: `USAGE` on the schema, `SELECT` on its tables): `list`, `show` and `stats`
//! read it, `ccai ui` shows it read-only and answers a replay 403; `replay`, `purge` and `ccai
//! listen` refuse it in one line that says what to do, and leave it as it was.
//!
//! The database is `CCAI_TEST_POSTGRES_URL` (CI: postgres://postgres@127.0.0.1:5432/test);
//! without it every test here passes after printing that it was skipped.

mod common;
mod ui_support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, Finish, LeaseRequest, NewDelivery, PostgresOptions,
    PostgresStore, Store,
};
use common::postgres::{database, Schema};
use common::{exits, run, stderr, stdout, Sandbox};
use serde_json::Value;

const CLIENT: &str = "1231";
/// The destination `ccai listen` forwards to, and `ccai events` counts.
const DESTINATION: &str = "forward";
const DELIVERED: &str = "a1a1a1a1a1a1a1a1-delivered";
const DEAD: &str = "b2b2b2b2b2b2b2b2-dead";
const PENDING: &str = "c3c3c3c3c3c3c3c3-pending";

fn delivery(hash: &str) -> NewDelivery {
    let body = format!(r#"{{"eventType":"message.sent","data":{{}},"eventHash":"{hash}"}}"#);
    NewDelivery::new(CLIENT, hash, "message.sent", body.into_bytes())
}

/// `sql` run by the test database's own role.
fn psql(database: &str, sql: &str) -> String {
    let base = database.split('?').next().unwrap_or(database);
    let out = Command::new("psql")
        .args([base, "-v", "ON_ERROR_STOP=1", "-tAqc", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A login role granted `USAGE` on a schema and `SELECT` on its tables; dropped (its sessions
/// ended, its grants revoked) when this goes out of scope. Declared after the [`Schema`], so
/// that it goes first.
struct ReportingRole {
    database: String,
    name: String,
}

impl ReportingRole {
    fn new(database: &str, schema: &Schema) -> Self {
        // The schema's random suffix: no other test's role has it.
        let name = format!("{}_reader", schema.name);
        let s = &schema.name;
        psql(
            database,
            &format!(
                "CREATE ROLE {name} LOGIN; GRANT USAGE ON SCHEMA {s} TO {name}; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {name};"
            ),
        );
        Self {
            database: database.to_owned(),
            name,
        }
    }

    /// The `--store` URL: the test database as this role, on `schema`.
    fn url(&self, schema: &Schema) -> String {
        let store = schema.url();
        let (scheme, rest) = store.split_once("://").expect("a URL");
        let host = rest.split_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{}@{host}", self.name)
    }
}

impl Drop for ReportingRole {
    fn drop(&mut self) {
        let base = self.database.split('?').next().unwrap_or(&self.database);
        let name = &self.name;
        let dropped = Command::new("psql")
            .args([base, "-q", "-c"])
            .arg(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'"
            ))
            .args(["-c", &format!("DROP OWNED BY {name}")])
            .args(["-c", &format!("DROP ROLE IF EXISTS {name}")])
            .output();
        if !matches!(&dropped, Ok(out) if out.status.success()) {
            eprintln!("warning: cannot drop the test role {name}: {dropped:?}");
        }
    }
}

/// An inbox in `schema` with one delivered, one dead and one pending event, written by the
/// test database's own role.
async fn filled(schema: &Schema) {
    let options = PostgresOptions::new().destinations([DESTINATION]);
    let store = PostgresStore::connect(&schema.url(), options)
        .await
        .expect("connect");
    for hash in [DELIVERED, DEAD, PENDING] {
        store.insert(delivery(hash)).await.expect("insert");
    }
    let lease = LeaseRequest::new("fixture", Duration::from_secs(60));
    let claimed = store
        .claim(DESTINATION, lease, 10, SystemTime::now())
        .await
        .expect("claim");
    for claim in claimed {
        let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Failure);
        let finished = match claim.event_hash.as_str() {
            DELIVERED => store.finish(&claim.lease, Finish::Delivered, record).await,
            DEAD => store.finish(&claim.lease, Finish::Dead, record).await,
            _ => store.release(&claim.lease).await,
        };
        assert_eq!(finished, Ok(true));
    }
    store.close().await;
}

/// Everything the schema's tables hold, as text: unchanged means nothing was written.
fn snapshot(database: &str, schema: &Schema) -> Vec<String> {
    ["inbox_schema", "events", "deliveries", "attempts"]
        .iter()
        .map(|table| {
            psql(
                database,
                &format!(
                    "SELECT coalesce(string_agg(t::text, ';' ORDER BY t::text), '') FROM {}.{table} t",
                    schema.name
                ),
            )
        })
        .collect()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

fn ccai(sandbox: &Sandbox, store: &str, args: &[&str]) -> Command {
    let mut cmd = sandbox.ccai();
    cmd.args(args).args(["--store", store]);
    cmd
}

/// Exit 2, one line: the store is read-only for this process (the role's privilege), and what
/// to do.
fn refused_as_read_only(out: &Output, args: &[&str], role: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line: {err}"
    );
    assert!(err.contains(role), "{args:?}: {err}");
    assert!(
        err.contains("is read-only for this process") && err.contains("SQLSTATE 42501"),
        "{args:?}: {err}"
    );
    assert!(
        err.contains("connect as a role that may write its schema"),
        "{args:?}: {err}"
    );
    assert!(err.contains("--store"), "{args:?}: {err}");
}

/// The reporting role lists, shows and counts; `replay`, `purge` and `ccai listen` refuse in one
/// line; nothing in the schema changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_may_only_select_reads_and_every_writing_command_refuses() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    filled(&schema).await;
    let role = ReportingRole::new(&database, &schema);
    let store = role.url(&schema);
    let before = snapshot(&database, &schema);
    let sandbox = Sandbox::new();

    let listed = ok(&run(ccai(&sandbox, &store, &["events", "list", "--json"])).await);
    let hashes: Vec<String> = listed
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON object per line");
            value["eventHash"].as_str().expect("eventHash").to_owned()
        })
        .collect();
    assert_eq!(hashes.len(), 3, "{listed}");
    for hash in [DELIVERED, DEAD, PENDING] {
        assert!(hashes.iter().any(|h| h == hash), "{hash} in {hashes:?}");
    }
    let shown = ok(&run(ccai(&sandbox, &store, &["events", "show", DEAD, "--json"])).await);
    let shown: Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(shown["eventHash"], DEAD);
    assert_eq!(shown["deliveries"][0]["status"], "dead");
    let counted = ok(&run(ccai(&sandbox, &store, &["events", "stats", "--json"])).await);
    let counted: Value = serde_json::from_str(&counted).expect("JSON");
    assert_eq!(counted["events"], 3);
    assert_eq!(counted["deliveries"]["dead"], 1);
    assert_eq!(counted["deliveries"]["pending"], 1);

    let commands: [&[&str]; 3] = [
        &["events", "replay", DEAD],
        &[
            "events",
            "purge",
            "--older-than",
            "0s",
            "--keep-hashes-for",
            "0s",
        ],
        &["listen", "--port", "0"],
    ];
    for args in commands {
        let mut cmd = ccai(&sandbox, &store, args);
        cmd.stdin(Stdio::null());
        refused_as_read_only(&run(cmd).await, args, &role.name);
    }
    assert_eq!(snapshot(&database, &schema), before, "nothing written");
}

/// A role that may write every table but the attempts (which forwarding adds to) is refused by
/// `ccai listen` at start, in one line naming what it lacks, instead of starting, reporting
/// ready and failing every forward; `ccai events list` reads the store read-only.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_may_not_insert_attempts_is_refused_by_listen_and_reads() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    filled(&schema).await;
    let role = ReportingRole::new(&database, &schema);
    let (s, r) = (&schema.name, &role.name);
    psql(
        &database,
        &format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA {s} TO {r}; REVOKE INSERT ON {s}.attempts FROM {r};"
        ),
    );
    let store = role.url(&schema);
    let before = snapshot(&database, &schema);
    let sandbox = Sandbox::new();

    let args = [
        "listen",
        "--port",
        "0",
        "--forward-to",
        "http://127.0.0.1:9/hook",
    ];
    let mut cmd = ccai(&sandbox, &store, &args);
    cmd.stdin(Stdio::null());
    let out = exits(cmd).await;
    refused_as_read_only(&out, &args, r);
    let err = stderr(&out);
    assert!(
        err.contains("permission denied for table attempts")
            && err.contains("this role lacks INSERT on attempts"),
        "{err}"
    );

    let listed = ok(&run(ccai(&sandbox, &store, &["events", "list", "--json"])).await);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert_eq!(snapshot(&database, &schema), before, "nothing written");
}

/// `ccai ui` with the reporting role says at start that it opened the store read-only and why,
/// shows the events, and answers a replay 403 saying why.
#[tokio::test(flavor = "multi_thread")]
async fn ui_with_a_role_that_may_only_select_is_read_only() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    filled(&schema).await;
    let role = ReportingRole::new(&database, &schema);
    let store = role.url(&schema);
    let before = snapshot(&database, &schema);
    let sandbox = Sandbox::new();

    let mut cmd = sandbox.ccai();
    cmd.args(["ui", "--port", "0", "--store", &store])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let ui = ui_support::announced(cmd.spawn().expect("spawn ccai ui"));
    assert!(
        ui.banner.iter().any(|line| line
            .starts_with("Opened the store read-only, so replays are refused")
            && line.contains("read-only for this process")
            && line.contains("SQLSTATE 42501")
            && !line.contains("unavailable")),
        "{:?}",
        ui.banner
    );
    let (status, stats) = ui_support::get(&ui, "/api/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["dead"], 1, "{stats}");
    let (status, detail) = ui_support::get(&ui, &format!("/api/events/{DEAD}")).await;
    assert_eq!((status, &detail["eventHash"]), (200, &Value::from(DEAD)));

    let (status, answer) = ui_support::post(&ui, &format!("/api/events/{DEAD}/replay")).await;
    assert_eq!(status, 403, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("was opened read-only")
            && error.contains("as a role that may write its schema"),
        "{answer}"
    );
    drop(ui);
    assert_eq!(snapshot(&database, &schema), before, "nothing written");
}

/// A schema of an older ccai cannot be upgraded by a role that may only read it: reading it
/// says that one writable open must upgrade it first, and leaves it as it was.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_schema_this_role_may_not_write_needs_one_writable_open_first() {
    let Some(database) = database() else { return };
    let schema = Schema::new(&database);
    filled(&schema).await;
    let role = ReportingRole::new(&database, &schema);
    let older = ccai::inbox::POSTGRES_SCHEMA_VERSION - 1;
    psql(
        &database,
        &format!("UPDATE {}.inbox_schema SET version = {older}", schema.name),
    );
    let before = snapshot(&database, &schema);
    let sandbox = Sandbox::new();

    let out = run(ccai(&sandbox, &role.url(&schema), &["events", "list"])).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("its schema {older}"))
            && err.contains("needs one writable open first")
            && err.contains("as a role that may write its schema"),
        "{err}"
    );
    assert_eq!(snapshot(&database, &schema), before, "not upgraded");
}
