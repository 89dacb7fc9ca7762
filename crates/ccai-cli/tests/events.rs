//! `ccai events …` on real SQLite inbox files, filled through the library; replay --to against
//! a real HTTP server on 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use ccai::inbox::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, NewDelivery,
    SqliteOptions, SqliteStore, Store, DEFAULT_DESTINATION,
};
use common::{closed_port, recorder, run, stderr, stdout, Sandbox};
use serde_json::Value;

const CLIENT: &str = "1231";
const SECRET: &str = "events-test-secret";
const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// One stored event of the fixture.
struct Fixture {
    hash: &'static str,
    event_type: &'static str,
    age: Duration,
    body: Vec<u8>,
}

// Inserted in this order (oldest first), so the newest first order is the reverse.
const OLD_RAW: &str = "e0e0e0e0e0e0e0e0-old-raw";
const MONTH_SENT: &str = "f0f0f0f0f0f0f0f0-month";
const SENT_DELIVERED: &str = "a1a1a1a1a1a1a1a1-sent";
const INCOMING_DEAD: &str = "b2b2b2b2b2b2b2b2-dead";
const EXCLUDED_PENDING: &str = "c3c3c3c3c3c3c3c3-dup";
const SENT_PENDING: &str = "d4d4d4d4d4d4d4d4-new";

fn json_body(event_type: &str, hash: &str, data: &str) -> Vec<u8> {
    format!(r#"{{"eventType":"{event_type}","data":{data},"eventHash":"{hash}"}}"#).into_bytes()
}

fn fixtures() -> Vec<Fixture> {
    vec![
        Fixture {
            hash: OLD_RAW,
            event_type: "custom.raw",
            age: 40 * DAY,
            body: b"plain \x1b[31mred\x07 text".to_vec(),
        },
        Fixture {
            hash: MONTH_SENT,
            event_type: "message.sent",
            age: 32 * DAY,
            body: json_body("message.sent", MONTH_SENT, r#"{"To":"+14155550111"}"#),
        },
        Fixture {
            hash: SENT_DELIVERED,
            event_type: "message.sent",
            age: 180 * MINUTE,
            body: json_body(
                "message.sent",
                SENT_DELIVERED,
                r#"{"To":"+14155550122","Segments":2}"#,
            ),
        },
        Fixture {
            hash: INCOMING_DEAD,
            event_type: "message.incoming",
            age: 120 * MINUTE,
            body: json_body(
                "message.incoming",
                INCOMING_DEAD,
                r#"{"From":"+14155550133","Message":"see you"}"#,
            ),
        },
        Fixture {
            hash: EXCLUDED_PENDING,
            event_type: "message.excluded",
            age: 10 * MINUTE,
            body: json_body(
                "message.excluded",
                EXCLUDED_PENDING,
                r#"{"To":"+14155550100","ExcludedReason":"Contact opted out"}"#,
            ),
        },
        Fixture {
            hash: SENT_PENDING,
            event_type: "message.sent",
            age: MINUTE,
            body: json_body("message.sent", SENT_PENDING, r#"{"To":"+14155550144"}"#),
        },
    ]
}

fn body_of(hash: &str) -> Vec<u8> {
    fixtures()
        .into_iter()
        .find(|f| f.hash == hash)
        .expect("fixture")
        .body
}

fn signature_of(hash: &str) -> String {
    ccai::signature::sign(CLIENT, hash, SECRET)
}

/// A sandbox with an inbox file holding the fixtures: two old delivered, one delivered, one
/// dead (after an HTTP 500), two pending (one repeated twice and once with another body).
struct Inbox {
    sandbox: Sandbox,
    path: PathBuf,
    store: SqliteStore,
}

impl Inbox {
    async fn new() -> Self {
        let sandbox = Sandbox::new();
        let path = sandbox.path().join("inbox.db");
        let store = fill(&path).await;
        Self {
            sandbox,
            path,
            store,
        }
    }

    async fn ccai(&self, args: &[&str]) -> Output {
        let mut cmd = self.sandbox.ccai();
        cmd.arg("events").args(args).arg("--store").arg(&self.path);
        run(cmd).await
    }

    async fn status(&self, hash: &str) -> (DeliveryStatus, u32, Option<SystemTime>) {
        let event = self.store.get(hash).await.expect("get").expect("stored");
        let d = &event.summary.deliveries[0];
        (d.status, d.attempts, d.next_attempt_at)
    }
}

async fn fill(path: &Path) -> SqliteStore {
    let store = SqliteStore::open(path, SqliteOptions::default()).expect("open store");
    let now = SystemTime::now();
    for f in fixtures() {
        let delivery = NewDelivery::new(CLIENT, f.hash, f.event_type, f.body.clone())
            .signature(signature_of(f.hash))
            .content_type("application/json; charset=utf-8")
            .received_at(now - f.age);
        store.insert(delivery).await.expect("insert");
    }
    // Two repeats with the same body, one with another.
    for _ in 0..2 {
        let repeat = NewDelivery::new(
            CLIENT,
            EXCLUDED_PENDING,
            "message.excluded",
            body_of(EXCLUDED_PENDING),
        );
        store.insert(repeat).await.expect("duplicate");
    }
    let other = NewDelivery::new(CLIENT, EXCLUDED_PENDING, "message.excluded", &b"{}"[..]);
    store.insert(other).await.expect("conflict");

    let claimed = store
        .claim(
            DEFAULT_DESTINATION,
            LeaseRequest::new("fixture", Duration::from_secs(60)),
            100,
            now,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 6);
    for delivery in claimed {
        let lease = &delivery.lease;
        let started = now - Duration::from_secs(5);
        let finished = match delivery.event_hash.as_str() {
            INCOMING_DEAD => {
                let attempt =
                    AttemptRecord::new(started, Duration::from_millis(42), AttemptOutcome::Failure)
                        .http_status(500)
                        .error("HTTP 500 from the target: boom");
                store.finish(lease, Finish::Dead, attempt).await
            }
            EXCLUDED_PENDING | SENT_PENDING => store.release(lease).await,
            _ => {
                let attempt =
                    AttemptRecord::new(started, Duration::from_millis(7), AttemptOutcome::Success)
                        .http_status(200);
                store.finish(lease, Finish::Delivered, attempt).await
            }
        };
        assert!(finished.expect("finish"), "lease held");
    }
    store
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

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stdout: {}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// The full hashes `list --json` prints, every line parsed.
fn hashes(out: &Output) -> Vec<String> {
    ok(out)
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON object per line");
            value["eventHash"].as_str().expect("eventHash").to_owned()
        })
        .collect()
}

/// The reception time `show --json` prints (RFC 3339, milliseconds).
async fn received_at(inbox: &Inbox, hash: &str) -> String {
    let out = ok(&inbox.ccai(&["show", hash, "--json"]).await);
    let value: Value = serde_json::from_str(&out).unwrap();
    let time = value["receivedAt"].as_str().unwrap().to_owned();
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    time
}

fn short(hash: &str) -> &str {
    &hash[..12]
}

#[tokio::test(flavor = "multi_thread")]
async fn list_is_newest_first_with_marks() {
    let inbox = Inbox::new().await;
    let table = ok(&inbox.ccai(&["list"]).await);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("RECEIVED (UTC)"), "{table}");
    assert_eq!(lines.len(), 7, "{table}");
    let order = [
        SENT_PENDING,
        EXCLUDED_PENDING,
        INCOMING_DEAD,
        SENT_DELIVERED,
        MONTH_SENT,
        OLD_RAW,
    ];
    for (line, hash) in lines[1..].iter().zip(order) {
        assert!(line.contains(short(hash)), "{hash} in {line}");
        assert!(!line.contains(hash), "short hashes only: {line}");
    }
    let dup = lines[2];
    assert!(
        dup.contains("pending") && dup.contains("×2") && dup.contains("! 1"),
        "{dup}"
    );
    let dead = lines[3];
    assert!(
        dead.contains("dead") && dead.contains("message.incoming"),
        "{dead}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_filters_and_json_lines() {
    let inbox = Inbox::new().await;
    let all = inbox.ccai(&["list", "--json"]).await;
    assert_eq!(
        hashes(&all),
        [
            SENT_PENDING,
            EXCLUDED_PENDING,
            INCOMING_DEAD,
            SENT_DELIVERED,
            MONTH_SENT,
            OLD_RAW
        ]
    );
    let first: Value = serde_json::from_str(ok(&all).lines().nth(1).unwrap()).unwrap();
    assert_eq!(first["eventType"], "message.excluded");
    assert_eq!(first["duplicates"], 2);
    assert_eq!(first["conflicts"], 1);
    assert_eq!(first["deliveries"][0]["status"], "pending");

    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (vec!["--status".into(), "dead".into()], vec![INCOMING_DEAD]),
        // Status names in any case, as --sync and --log-format take theirs.
        (vec!["--status".into(), "DEAD".into()], vec![INCOMING_DEAD]),
        (
            vec!["--status".into(), "Delivered".into()],
            vec![SENT_DELIVERED, MONTH_SENT, OLD_RAW],
        ),
        (
            vec!["--status".into(), "delivered".into()],
            vec![SENT_DELIVERED, MONTH_SENT, OLD_RAW],
        ),
        (
            vec!["--type".into(), "message.sent".into()],
            vec![SENT_PENDING, SENT_DELIVERED, MONTH_SENT],
        ),
        (
            vec!["--since".into(), "1h".into()],
            vec![SENT_PENDING, EXCLUDED_PENDING],
        ),
        (
            // An RFC 3339 time: at or after the dead event's reception.
            vec!["--since".into(), received_at(&inbox, INCOMING_DEAD).await],
            vec![SENT_PENDING, EXCLUDED_PENDING, INCOMING_DEAD],
        ),
        (
            // Before 1970, valid RFC 3339: everything, as 1970-01-01 is.
            vec!["--since".into(), "1969-12-31".into()],
            vec![
                SENT_PENDING,
                EXCLUDED_PENDING,
                INCOMING_DEAD,
                SENT_DELIVERED,
                MONTH_SENT,
                OLD_RAW,
            ],
        ),
        (
            vec!["--since".into(), "0000-01-01T00:00:00.5+23:59".into()],
            vec![
                SENT_PENDING,
                EXCLUDED_PENDING,
                INCOMING_DEAD,
                SENT_DELIVERED,
                MONTH_SENT,
                OLD_RAW,
            ],
        ),
        // The latest time there is to write, and the longest age: nothing, everything.
        (
            vec!["--since".into(), "9999-12-31T23:59:59.999-23:59".into()],
            vec![],
        ),
        (
            vec!["--since".into(), "213503982334d".into()],
            vec![
                SENT_PENDING,
                EXCLUDED_PENDING,
                INCOMING_DEAD,
                SENT_DELIVERED,
                MONTH_SENT,
                OLD_RAW,
            ],
        ),
        (
            vec!["--contains".into(), "+14155550100".into()],
            vec![EXCLUDED_PENDING],
        ),
        (
            vec![
                "--status".into(),
                "delivered".into(),
                "--type".into(),
                "message.sent".into(),
                "--since".into(),
                "2d".into(),
            ],
            vec![SENT_DELIVERED],
        ),
        (
            vec!["--limit".into(), "2".into()],
            vec![SENT_PENDING, EXCLUDED_PENDING],
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["list", "--json"];
        args.extend(flags.iter().map(String::as_str));
        assert_eq!(hashes(&inbox.ccai(&args).await), expected, "{flags:?}");
    }
    // The same through CCAI_STORE instead of --store.
    let mut cmd = inbox.sandbox.ccai();
    cmd.args(["events", "list", "--json", "--status", "dead"])
        .env("CCAI_STORE", &inbox.path);
    assert_eq!(hashes(&run(cmd).await), [INCOMING_DEAD]);
}

/// A list cut at `--limit` (50 by default) said nothing of the events left out; it now says so
/// on stderr, after the list (stdout keeps the table or the JSON lines only).
#[tokio::test(flavor = "multi_thread")]
async fn a_list_cut_at_the_limit_says_more_match() {
    let inbox = Inbox::new().await;
    for json in [false, true] {
        let mut args = vec!["list", "--limit", "2"];
        if json {
            args.push("--json");
        }
        let out = inbox.ccai(&args).await;
        let listed = ok(&out);
        let rows = if json { 2 } else { 3 };
        assert_eq!(listed.lines().count(), rows, "{listed}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("note: the newest 2 shown; more events match: raise --limit"),
            "{err}"
        );
    }
    // All six fit: nothing to say, at the limit or under the default.
    for args in [
        &["list", "--limit", "6"][..],
        &["list"],
        &["list", "--json"],
    ] {
        let out = inbox.ccai(args).await;
        ok(&out);
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_flags_are_one_line_errors() {
    let inbox = Inbox::new().await;
    let err = failed(&inbox.ccai(&["list", "--since", "yesterday"]).await);
    assert!(err.contains("invalid --since \"yesterday\""), "{err}");
    // A sign where the offset's digits go: refused, not read as an offset.
    for since in ["2026-11-30T14:00:00++1:00", "2026-11-30T14:00:00+-1:00"] {
        let err = failed(&inbox.ccai(&["list", "--since", since]).await);
        assert!(
            err.contains(&format!("invalid --since \"{since}\"")),
            "{err}"
        );
    }
    let err = failed(&inbox.ccai(&["list", "--status", "lost"]).await);
    assert!(err.contains("invalid --status \"lost\""), "{err}");
    // A search text past the store's limit: refused before the inbox is searched, and not
    // echoed back (a kilobyte of it would bury the message).
    let long = "a".repeat(1025);
    let err = failed(&inbox.ccai(&["list", "--contains", &long]).await);
    assert!(
        err.contains("invalid --contains: ")
            && err.contains("1025 bytes")
            && err.contains("at most 1024"),
        "{err}"
    );
    assert!(!err.contains(&long[..100]), "{err}");
    ok(&inbox.ccai(&["list", "--contains", &long[1..]]).await);
    let err = failed(&inbox.ccai(&["purge", "--older-than", "30 days"]).await);
    assert!(
        err.contains("invalid --older-than \"30 days\": unknown unit \"days\""),
        "{err}"
    );
    let err = failed(&inbox.ccai(&["show", "d5d5d5d5d5d5"]).await);
    assert!(err.contains("unknown event hash \"d5d5d5d5d5d5\""), "{err}");
}

/// A `--type` that is no known event type (a typo) still filters as given, but says so on
/// stderr rather than leaving "no events match" unexplained; a known one says nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_type_filter_is_noted() {
    let inbox = Inbox::new().await;
    let out = inbox.ccai(&["list", "--type", "message.snet"]).await;
    assert!(ok(&out).contains("no events match"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--type \"message.snet\" is not a known event type")
            && err.contains("message.sent"),
        "{err}"
    );
    // Stored events of a type the library does not know are still found.
    let out = inbox
        .ccai(&["list", "--json", "--type", "custom.raw"])
        .await;
    assert_eq!(hashes(&out), [OLD_RAW]);
    assert!(stderr(&out).contains("not a known event type"));
    let out = inbox
        .ccai(&["replay", "--status", "dead", "--type", "message.incomng"])
        .await;
    ok(&out);
    assert!(stderr(&out).contains("not a known event type"));
    let out = inbox.ccai(&["list", "--type", "message.sent"]).await;
    ok(&out);
    assert_eq!(stderr(&out), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_the_event_without_the_signature() {
    let inbox = Inbox::new().await;
    let out = ok(&inbox.ccai(&["show", INCOMING_DEAD]).await);
    let signature = signature_of(INCOMING_DEAD);
    assert!(!out.contains(&signature), "{out}");
    assert!(
        !out.contains(&signature[..7]),
        "at most 6 characters: {out}"
    );
    assert!(out.contains(&format!("{}…", &signature[..6])), "{out}");
    assert!(out.contains("message.incoming"), "{out}");
    assert!(
        out.contains(&format!("hash          {INCOMING_DEAD}")),
        "{out}"
    );
    assert!(out.contains("application/json; charset=utf-8"), "{out}");
    // The body re-indented with its keys in their original order.
    let body = "{\n  \"eventType\": \"message.incoming\",\n  \"data\": {\n    \"From\": \"+14155550133\",\n    \"Message\": \"see you\"\n  },\n  \"eventHash\": \"b2b2b2b2b2b2b2b2-dead\"\n}\n";
    assert!(out.ends_with(body), "{out}");
    // The attempt and the dead delivery.
    let attempt = out
        .lines()
        .find(|l| l.contains("failure"))
        .unwrap_or_else(|| panic!("an attempt line: {out}"));
    assert!(
        attempt.contains("42ms") && attempt.contains("500") && attempt.contains("boom"),
        "{attempt}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("default") && l.contains("dead")),
        "{out}"
    );

    // JSON: the exact body, the signature shortened.
    let json: Value =
        serde_json::from_str(&ok(&inbox.ccai(&["show", INCOMING_DEAD, "--json"]).await)).unwrap();
    assert_eq!(
        json["body"].as_str().unwrap().as_bytes(),
        body_of(INCOMING_DEAD)
    );
    assert_eq!(json["signature"], format!("{}…", &signature[..6]));
    assert_eq!(json["attempts"][0]["httpStatus"], 500);
    assert_eq!(json["attempts"][0]["outcome"], "failure");
    assert_eq!(json["deliveries"][0]["status"], "dead");

    // A pending event: next attempt; a repeated one: duplicates and the conflict digest.
    let out = ok(&inbox.ccai(&["show", EXCLUDED_PENDING]).await);
    assert!(out.contains("next attempt"), "{out}");
    assert!(out.contains("duplicates    2"), "{out}");
    assert!(out.contains("conflicts     1 ("), "{out}");
    assert!(out.contains("none yet"), "{out}");

    // A body that is not JSON: control characters escaped, never sent raw to the terminal.
    let raw = inbox.ccai(&["show", OLD_RAW]).await;
    let out = ok(&raw);
    assert!(out.contains("plain \\u{1b}[31mred\\u{7} text"), "{out}");
    assert!(!raw.stdout.contains(&0x1b) && !raw.stdout.contains(&0x07));
}

/// The hash as the lists show it (12 characters) finds the event, for `show` and `replay`;
/// a prefix two hashes share, or one too short, is a one-line error that changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_hash_as_the_lists_show_it_finds_the_event() {
    let inbox = Inbox::new().await;
    let listed = ok(&inbox.ccai(&["list"]).await);
    let short = &INCOMING_DEAD[..12];
    assert!(listed.contains(short), "{listed}");
    let out = ok(&inbox.ccai(&["show", short]).await);
    assert!(
        out.contains(&format!("hash          {INCOMING_DEAD}")),
        "{out}"
    );

    inbox
        .store
        .insert(
            NewDelivery::new(CLIENT, "b2b2b2b2-other", "message.sent", b"{}".to_vec())
                .received_at(SystemTime::now()),
        )
        .await
        .unwrap();
    let err = failed(&inbox.ccai(&["show", "b2b2b2b2"]).await);
    assert!(err.contains("is ambiguous"), "{err}");
    let err = failed(&inbox.ccai(&["replay", "b2b2b2b2"]).await);
    assert!(err.contains("is ambiguous"), "{err}");
    let err = failed(&inbox.ccai(&["show", "b2b2"]).await);
    assert!(err.contains("unknown event hash"), "{err}");
    assert!(err.contains("at least 6 characters"), "{err}");
    assert_eq!(inbox.status(INCOMING_DEAD).await.0, DeliveryStatus::Dead);

    // Said once, on the event's line: the summary said "1 delivery due again" too.
    let out = ok(&inbox.ccai(&["replay", short]).await);
    assert_eq!(
        out,
        format!(
            "{}: 1 delivery due again\na `ccai listen --forward-to URL` on this store delivers it: one running now, or the next started\n",
            &INCOMING_DEAD[..12]
        )
    );
    assert_eq!(inbox.status(INCOMING_DEAD).await.0, DeliveryStatus::Pending);
}

/// The hash as `ccai listen` shows it, `#` first (its event lines and the DEAD line), finds
/// the event too, whole or as its first characters, for `show` and `replay`.
#[tokio::test(flavor = "multi_thread")]
async fn a_hash_as_listen_shows_it_finds_the_event() {
    let inbox = Inbox::new().await;
    let shown = format!("#{}", &INCOMING_DEAD[..12]);
    let out = ok(&inbox.ccai(&["show", &shown]).await);
    assert!(
        out.contains(&format!("hash          {INCOMING_DEAD}")),
        "{out}"
    );
    let out = ok(&inbox
        .ccai(&["show", &format!("#{INCOMING_DEAD}"), "--json"])
        .await);
    let value: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["eventHash"], INCOMING_DEAD);
    let out = ok(&inbox.ccai(&["replay", &shown]).await);
    assert!(out.contains("1 delivery due again"), "{out}");
    assert_eq!(inbox.status(INCOMING_DEAD).await.0, DeliveryStatus::Pending);
    // A `#` alone is no hash.
    let err = failed(&inbox.ccai(&["show", "#"]).await);
    assert!(err.contains("unknown event hash"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_by_hash_makes_the_event_due() {
    let inbox = Inbox::new().await;
    let before = SystemTime::now();
    let out = ok(&inbox.ccai(&["replay", INCOMING_DEAD, SENT_DELIVERED]).await);
    // Several named: each line, and the total.
    for hash in [INCOMING_DEAD, SENT_DELIVERED] {
        assert!(
            out.contains(&format!("{}: 1 delivery due again\n", &hash[..12])),
            "{out}"
        );
    }
    assert!(out.contains("\n2 deliveries due again: "), "{out}");
    assert!(out.contains("ccai listen --forward-to"), "{out}");
    for hash in [INCOMING_DEAD, SENT_DELIVERED] {
        let (status, attempts, next) = inbox.status(hash).await;
        assert_eq!(status, DeliveryStatus::Pending, "{hash}");
        // A finished delivery, dead or delivered, starts its schedule over (its attempt
        // records stay in the history).
        assert_eq!(attempts, 0, "{hash}");
        let next = next.expect("due");
        assert!(next <= SystemTime::now() && next + Duration::from_secs(1) >= before);
    }
    // Due now: the next claim (what `ccai listen --forward-to` does) gets them.
    let claimed = inbox
        .store
        .claim(
            DEFAULT_DESTINATION,
            LeaseRequest::new("t", MINUTE),
            10,
            SystemTime::now(),
        )
        .await
        .unwrap();
    let mut claimed: Vec<&str> = claimed.iter().map(|c| c.event_hash.as_str()).collect();
    claimed.sort();
    let mut expected = [
        SENT_DELIVERED,
        INCOMING_DEAD,
        EXCLUDED_PENDING,
        SENT_PENDING,
    ];
    expected.sort();
    assert_eq!(claimed, expected);

    // An unknown hash changes nothing, even next to a known one.
    let err = failed(&inbox.ccai(&["replay", MONTH_SENT, "nope"]).await);
    assert!(err.contains("unknown event hash \"nope\""), "{err}");
    assert_eq!(inbox.status(MONTH_SENT).await.0, DeliveryStatus::Delivered);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_dead_in_bulk_starts_the_schedule_over() {
    let inbox = Inbox::new().await;
    // The status in any case.
    let out = ok(&inbox.ccai(&["replay", "--status", "DEAD"]).await);
    assert!(out.contains("1 delivery due again"), "{out}");
    let (status, attempts, next) = inbox.status(INCOMING_DEAD).await;
    assert_eq!(status, DeliveryStatus::Pending);
    assert_eq!(attempts, 0);
    assert!(next.expect("due") <= SystemTime::now());
    assert_eq!(
        inbox.status(SENT_DELIVERED).await.0,
        DeliveryStatus::Delivered
    );
    let listed = hashes(&inbox.ccai(&["list", "--json", "--status", "dead"]).await);
    assert!(listed.is_empty(), "{listed:?}");

    // By type: the delivered ones of that type too.
    let out = ok(&inbox
        .ccai(&["replay", "--type", "message.sent", "--json"])
        .await);
    let value: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["deliveriesDue"], 3);
    assert_eq!(inbox.status(MONTH_SENT).await.0, DeliveryStatus::Pending);
}

/// The value under `header` in `table`'s row holding `hash`'s short form.
fn column(table: &str, header: &str, hash: &str) -> String {
    let mut lines = table.lines();
    let head = lines.next().expect("a header");
    let at = head.find(header).expect("the column");
    let row = lines
        .find(|l| l.contains(short(hash)))
        .expect("the event's row");
    row[at..].split_whitespace().next().unwrap_or("").to_owned()
}

/// After a replay, `list` counts every attempt recorded, as `show` lists them (it counted the
/// current schedule's, back to 0, as if the earlier attempts had vanished); `--json` has both.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_replay_list_counts_the_attempts_show_lists() {
    let inbox = Inbox::new().await;
    ok(&inbox.ccai(&["replay", INCOMING_DEAD]).await);
    // A second round: one more failed attempt, retried later.
    let claimed = inbox
        .store
        .claim(
            DEFAULT_DESTINATION,
            LeaseRequest::new("t", MINUTE),
            10,
            SystemTime::now(),
        )
        .await
        .expect("claim");
    for c in claimed {
        if c.event_hash == INCOMING_DEAD {
            assert_eq!(c.attempt, 1, "the schedule starts over");
            let attempt =
                AttemptRecord::new(SystemTime::now(), MINUTE, AttemptOutcome::Failure).error("x");
            let later = Finish::RetryAt(SystemTime::now() + DAY);
            assert!(inbox.store.finish(&c.lease, later, attempt).await.unwrap());
        } else {
            inbox.store.release(&c.lease).await.expect("release");
        }
    }

    let table = ok(&inbox.ccai(&["list"]).await);
    assert_eq!(column(&table, "ATTEMPTS", INCOMING_DEAD), "2", "{table}");
    let listed = ok(&inbox.ccai(&["list", "--json"]).await);
    let row: Value = listed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .find(|v| v["eventHash"] == INCOMING_DEAD)
        .expect("listed");
    assert_eq!(row["deliveries"][0]["attempts"], 1, "{row}");
    assert_eq!(row["deliveries"][0]["totalAttempts"], 2, "{row}");

    let shown: Value =
        serde_json::from_str(&ok(&inbox.ccai(&["show", INCOMING_DEAD, "--json"]).await))
            .expect("JSON");
    assert_eq!(shown["attempts"].as_array().map(Vec::len), Some(2));
    assert_eq!(shown["deliveries"], row["deliveries"]);
    let text = ok(&inbox.ccai(&["show", INCOMING_DEAD]).await);
    assert!(text.contains(" 2 (1 since replayed) "), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_without_hash_or_filter_is_refused() {
    let inbox = Inbox::new().await;
    let err = failed(&inbox.ccai(&["replay"]).await);
    assert!(err.contains("nothing to replay"), "{err}");
    assert!(err.contains("--status"), "{err}");
    let err = failed(
        &inbox
            .ccai(&["replay", "--to", "http://127.0.0.1:9/x"])
            .await,
    );
    assert!(err.contains("nothing to replay"), "{err}");
    assert_eq!(inbox.status(INCOMING_DEAD).await.0, DeliveryStatus::Dead);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_to_sends_the_exact_delivery() {
    let inbox = Inbox::new().await;
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let url = format!("{}/webhook/ccai", target.url);
    let out = ok(&inbox
        .ccai(&["replay", SENT_DELIVERED, OLD_RAW, "--to", &url])
        .await);
    assert!(out.contains("HTTP 200"), "{out}");
    assert!(out.contains("sent 2 events"), "{out}");
    {
        let got = target.requests.lock().unwrap();
        assert_eq!(got.len(), 2);
        for (request, hash) in got.iter().zip([SENT_DELIVERED, OLD_RAW]) {
            assert_eq!(request.method, "POST");
            assert_eq!(request.path, "/webhook/ccai");
            assert_eq!(
                &request.body[..],
                &body_of(hash)[..],
                "exact bytes of {hash}"
            );
            assert_eq!(request.header("x-ccai-signature"), Some(signature_of(hash)));
            assert_eq!(
                request.header("content-type").as_deref(),
                Some("application/json; charset=utf-8")
            );
        }
    }
    let out = ok(&inbox.ccai(&["replay", OLD_RAW, "--to", &url]).await);
    assert!(out.contains("sent 1 event to"), "{out}");
    // One event named twice (whole and as the lists show it) is sent once.
    let out = ok(&inbox
        .ccai(&["replay", OLD_RAW, short(OLD_RAW), "--to", &url])
        .await);
    assert!(out.contains("sent 1 event to"), "{out}");
    assert_eq!(target.requests.lock().unwrap().len(), 4);
    // Bulk, and the store is left as it was.
    let out = ok(&inbox
        .ccai(&["replay", "--status", "dead", "--to", &url, "--json"])
        .await);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["eventHash"], INCOMING_DEAD);
    assert_eq!(lines[0]["httpStatus"], 200);
    // Then the counts.
    assert_eq!(lines[1]["sent"], 1);
    assert_eq!(lines[1]["failed"], 0);
    assert_eq!(lines[1]["bodyPurgedEvents"], 0);
    assert_eq!(target.requests.lock().unwrap().len(), 5);
    assert_eq!(inbox.status(INCOMING_DEAD).await.0, DeliveryStatus::Dead);
    assert_eq!(
        inbox.status(SENT_DELIVERED).await.0,
        DeliveryStatus::Delivered
    );

    // A target that refuses: the status per event, then exit 2.
    let refusing = recorder(|_| (StatusCode::SERVICE_UNAVAILABLE, "{}".into())).await;
    let out = inbox
        .ccai(&["replay", SENT_PENDING, "--to", &refusing.url])
        .await;
    assert!(stdout(&out).contains("HTTP 503"), "{}", stdout(&out));
    let err = failed(&out);
    assert_eq!(
        err,
        format!(
            "error: 1 of 1 replays to {}/ failed (each event's line says why): fix the target, \
             then run the command again\n",
            refusing.url
        )
    );

    // A redirect: not followed, and the line says to give the final URL.
    let moving = recorder(|_| (StatusCode::MOVED_PERMANENTLY, "".into())).await;
    let out = inbox
        .ccai(&["replay", SENT_PENDING, "--to", &moving.url])
        .await;
    assert!(
        stdout(&out).contains("failed: answered 301 (a redirect: not followed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(moving.requests.lock().unwrap().len(), 1);

    // A target that is down: the failure says why.
    let down = format!("http://127.0.0.1:{}/x", closed_port());
    let out = inbox.ccai(&["replay", SENT_PENDING, "--to", &down]).await;
    let said = format!("{}{}", stdout(&out), stderr(&out)).to_lowercase();
    assert!(said.contains("connection refused"), "{said}");
    // Said without reqwest's and hyper's wrapper texts.
    assert!(
        !said.contains("error sending request") && !said.contains("client error"),
        "{said}"
    );

    // An https:// URL on a plain HTTP server: the handshake failed, use http://.
    let plain = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let https = plain.url.replacen("http://", "https://", 1);
    let out = inbox.ccai(&["replay", SENT_PENDING, "--to", &https]).await;
    let said = stdout(&out);
    assert!(
        said.contains("failed: the TLS handshake failed")
            && said.contains("use http:// instead of https://"),
        "{said}"
    );
    assert!(failed(&out).contains("1 of 1 replays"));
    assert!(plain.requests.lock().unwrap().is_empty());
}

/// An event received without a `Content-Type` (the receiver keeps none) is replayed with the
/// `application/json` the forward sends it with: a target's JSON parser reads no body without it.
#[tokio::test(flavor = "multi_thread")]
async fn replay_to_sends_an_event_received_without_content_type_as_the_forward_does() {
    let inbox = Inbox::new().await;
    let hash = "a9a9a9a9a9a9a9a9-untyped";
    let body = json_body("message.sent", hash, r#"{"To":"+14155550155"}"#);
    let delivery =
        NewDelivery::new(CLIENT, hash, "message.sent", body.clone()).signature(signature_of(hash));
    inbox.store.insert(delivery).await.expect("insert");
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    ok(&inbox.ccai(&["replay", hash, "--to", &target.url]).await);
    let got = target.requests.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], &body[..]);
    assert_eq!(
        got[0].header("content-type").as_deref(),
        Some("application/json")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_nulls_old_bodies_and_deletes_older_rows() {
    let inbox = Inbox::new().await;
    let out = ok(&inbox
        .ccai(&["purge", "--older-than", "30d", "--keep-hashes-for", "35d"])
        .await);
    assert!(out.contains("purged 2 bodies"), "{out}");
    assert!(out.contains("deleted 1 events"), "{out}");
    assert!(inbox.store.get(OLD_RAW).await.unwrap().is_none());
    let month = inbox
        .store
        .get(MONTH_SENT)
        .await
        .unwrap()
        .expect("row kept");
    assert!(month.body.is_none());
    assert!(inbox
        .store
        .get(SENT_DELIVERED)
        .await
        .unwrap()
        .unwrap()
        .body
        .is_some());
    let shown = ok(&inbox.ccai(&["show", MONTH_SENT]).await);
    assert!(shown.contains("body: purged"), "{shown}");
    // Again: nothing left to do.
    let out = ok(&inbox
        .ccai(&[
            "purge",
            "--older-than",
            "30d",
            "--keep-hashes-for",
            "35d",
            "--json",
        ])
        .await);
    let value: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(value["bodiesPurged"], 0);
    assert_eq!(value["eventsDeleted"], 0);
}

/// Replaying an event whose body was purged says so (not "in progress"), makes nothing due, and
/// fails: there is nothing left to send. It also printed "0 deliveries due again: the next
/// `ccai listen --forward-to URL` … delivers them" beside the error. A bulk replay says how many
/// events matching were left for their purged body (it said "0 deliveries due again" and exit 0
/// without a word of them): an error when nothing else was made due, a note otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn replaying_an_event_whose_body_was_purged_says_so() {
    let inbox = Inbox::new().await;
    ok(&inbox
        .ccai(&["purge", "--older-than", "30d", "--keep-hashes-for", "90d"])
        .await);
    assert_eq!(inbox.status(MONTH_SENT).await.0, DeliveryStatus::Delivered);
    let out = inbox.ccai(&["replay", MONTH_SENT]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let said = stdout(&out);
    assert!(said.contains("its body was purged"), "{said}");
    assert!(!said.contains("in progress"), "{said}");
    assert!(!said.contains("due again"), "{said}");
    let err = stderr(&out);
    assert!(
        err.contains("error: the event named could not be replayed: its body was purged"),
        "{err}"
    );
    assert_eq!(inbox.status(MONTH_SENT).await.0, DeliveryStatus::Delivered);

    // By filter, with a delivered event whose body is kept: made due, the two purged told.
    let out = inbox.ccai(&["replay", "--status", "delivered"]).await;
    let (said, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}{err}");
    assert!(said.contains("1 delivery due again"), "{said}");
    assert!(
        err.contains("note: 2 events matched but could not be replayed: their bodies were purged"),
        "{err}"
    );
    assert_eq!(
        inbox.status(SENT_DELIVERED).await.0,
        DeliveryStatus::Pending
    );
    assert_eq!(inbox.status(MONTH_SENT).await.0, DeliveryStatus::Delivered);
    // Nothing else matching: still a note and exit 0 (a scheduled bulk replay must not fail for
    // weeks over rows a purge keeps), and no "0 deliveries due again".
    let out = inbox.ccai(&["replay", "--status", "delivered"]).await;
    let (said, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}{err}");
    assert!(!said.contains("due again"), "{said}");
    assert!(
        err.contains("note: 2 events matched but could not be replayed: their bodies were purged"),
        "{err}"
    );
    let out = inbox
        .ccai(&["replay", "--status", "delivered", "--json"])
        .await;
    let value: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(value["deliveriesDue"], 0);
    assert_eq!(value["bodyPurgedEvents"], 2);
    assert_eq!(inbox.status(MONTH_SENT).await.0, DeliveryStatus::Delivered);
}

/// A bulk `replay --to` leaves the events matching whose body was purged as a bulk replay
/// without `--to` does: counted in a note (`bodyPurgedEvents` with `--json`), exit 0 unless a
/// send failed. It printed "failed: its body was purged" per event and exited 2 ("2 of 3
/// replays … failed"), so a scheduled replay failed for weeks over rows a purge keeps. Named by
/// hash, such an event stays an error.
#[tokio::test(flavor = "multi_thread")]
async fn bulk_replay_to_counts_purged_events_and_succeeds() {
    let inbox = Inbox::new().await;
    ok(&inbox
        .ccai(&["purge", "--older-than", "30d", "--keep-hashes-for", "90d"])
        .await);
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    // message.sent: MONTH_SENT purged; SENT_DELIVERED and SENT_PENDING kept.
    let out = inbox
        .ccai(&["replay", "--type", "message.sent", "--to", &target.url])
        .await;
    let (said, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}{err}");
    assert!(!said.contains("failed"), "{said}");
    assert!(said.contains("sent 2 events to"), "{said}");
    assert!(
        err.contains("note: 1 event matched but could not be replayed: its body was purged"),
        "{err}"
    );
    assert!(!err.contains("error"), "{err}");
    assert_eq!(target.requests.lock().unwrap().len(), 2);

    let out = inbox
        .ccai(&[
            "replay",
            "--type",
            "message.sent",
            "--to",
            &target.url,
            "--json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[..2].iter().all(|l| l["ok"] == true), "{lines:?}");
    assert_eq!(lines[2]["sent"], 2);
    assert_eq!(lines[2]["failed"], 0);
    assert_eq!(lines[2]["bodyPurgedEvents"], 1);

    // Only purged events matching: nothing sent, still exit 0.
    let out = inbox
        .ccai(&["replay", "--type", "custom.raw", "--to", &target.url])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: 1 event matched"),
        "{}",
        stderr(&out)
    );
    assert_eq!(target.requests.lock().unwrap().len(), 4);

    // A real failure beside a purged event still fails, and the note still counts it.
    let refusing = recorder(|_| (StatusCode::SERVICE_UNAVAILABLE, "{}".into())).await;
    let out = inbox
        .ccai(&["replay", "--type", "message.sent", "--to", &refusing.url])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("note: 1 event matched"), "{err}");
    assert!(err.contains("error: 2 of 2 replays"), "{err}");

    // Named by hash: an error, as without --to.
    let out = inbox
        .ccai(&["replay", MONTH_SENT, "--to", &target.url])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("its body was purged"),
        "{}",
        stdout(&out)
    );
    assert_eq!(target.requests.lock().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_counts() {
    let inbox = Inbox::new().await;
    let value: Value = serde_json::from_str(&ok(&inbox.ccai(&["stats", "--json"]).await)).unwrap();
    assert_eq!(value["events"], 6);
    assert_eq!(value["deliveries"]["pending"], 2);
    assert_eq!(value["deliveries"]["in_progress"], 0);
    assert_eq!(value["deliveries"]["delivered"], 3);
    assert_eq!(value["deliveries"]["dead"], 1);
    assert_eq!(value["duplicates"], 2);
    assert_eq!(value["conflicts"], 1);
    let age = value["oldestPendingAgeSecs"].as_u64().unwrap();
    assert!((600..900).contains(&age), "{age}");
    let text = ok(&inbox.ccai(&["stats"]).await);
    assert!(text.contains("dead            1"), "{text}");
    assert!(text.contains("oldest pending  10m"), "{text}");
}

/// `--store` naming a folder (the data dir, where the inbox file lies) said "no inbox at DIR: run
/// `ccai listen` first"; it now says it is a folder and which file to name, as `ccai listen`
/// does, for `ccai events` and `ccai ui` alike, from the flag or from CCAI_STORE.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_is_a_folder_is_said_to_be_one() {
    let inbox = Inbox::new().await;
    let folder = inbox.path.parent().expect("the sandbox").to_path_buf();
    let expected = format!(
        "is a folder: give the inbox file, such as {}",
        folder.join("inbox.db").display()
    );
    let runs: [(&[&str], bool); 4] = [
        (&["events", "list", "--store"], false),
        (&["events", "stats", "--store"], false),
        (&["ui", "--port", "0", "--store"], false),
        (&["events", "list"], true),
    ];
    for (args, from_env) in runs {
        let mut cmd = inbox.sandbox.ccai();
        cmd.args(args);
        if from_env {
            cmd.env("CCAI_STORE", &folder);
        } else {
            cmd.arg(&folder);
        }
        let out = common::exits(cmd).await;
        let err = failed(&out);
        let flag = if from_env { "CCAI_STORE" } else { "--store" };
        assert!(
            err.starts_with(&format!("error: {flag} {}", folder.display())),
            "{args:?}: {err}"
        );
        assert!(err.contains(&expected), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_corrupt_and_newer_stores_are_one_line_errors() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("nowhere.db");
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "list", "--store"]).arg(&missing);
    let err = failed(&run(cmd).await);
    assert_eq!(
        err.trim(),
        format!(
            "error: no inbox at {}: run `ccai listen` first or pass --store",
            missing.display()
        )
    );
    assert!(!missing.exists(), "not created");

    // An empty file is no inbox either, and stays empty.
    let empty = sandbox.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "stats", "--store"]).arg(&empty);
    let err = failed(&run(cmd).await);
    assert!(err.contains("no inbox at"), "{err}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);

    // Nor is another SQLite database, even one with no tables: it gets no inbox tables.
    let bare = sandbox.path().join("bare.db");
    rusqlite::Connection::open(&bare)
        .and_then(|conn| conn.execute_batch("CREATE TABLE t (x); DROP TABLE t;"))
        .unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "list", "--store"]).arg(&bare);
    let err = failed(&run(cmd).await);
    assert!(err.contains("holds no inbox"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let tables: i64 = rusqlite::Connection::open(&bare)
        .and_then(|conn| conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(tables, 0, "no inbox tables were written");

    // The default: <CCAI_DATA_DIR>/ccai/inbox.db.
    let data = sandbox.path().join("data");
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "stats"]).env("CCAI_DATA_DIR", &data);
    let err = failed(&run(cmd).await);
    assert!(
        err.contains(&format!(
            "no inbox at {}",
            data.join("ccai").join("inbox.db").display()
        )),
        "{err}"
    );

    let corrupt = sandbox.path().join("corrupt.db");
    std::fs::write(&corrupt, "this is not a database, only text ".repeat(20)).unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "list", "--store"]).arg(&corrupt);
    let err = failed(&run(cmd).await);
    assert!(err.contains("corrupt or not an inbox store"), "{err}");
    // The library says "open another store"; the command line names its flag.
    assert!(
        err.contains("(--store or CCAI_STORE names another store)"),
        "{err}"
    );

    // A file from a newer ccai: user_version (bytes 60..64 of the header) past this build's.
    let newer = sandbox.path().join("newer.db");
    drop(SqliteStore::open(&newer, SqliteOptions::default()).unwrap());
    // The last connection's close checkpoints the WAL into the file and removes it.
    let wal = sandbox.path().join("newer.db-wal");
    for _ in 0..200 {
        if !wal.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!wal.exists(), "the WAL was checkpointed");
    let mut bytes = std::fs::read(&newer).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&newer, &bytes).unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "stats", "--store"]).arg(&newer);
    let err = failed(&run(cmd).await);
    assert!(err.contains("written by a newer ccai"), "{err}");
}

/// A store whose table lost a column outside ccai: one line naming the table and the column,
/// not SQLite's "no such column" from the first query that reads it.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_missing_a_column_is_a_one_line_error_naming_it() {
    let sandbox = Sandbox::new();
    let path = sandbox.path().join("edited.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    store
        .insert(NewDelivery::new(CLIENT, "h1", "message.sent", &b"{}"[..]))
        .await
        .unwrap();
    store.close().await;
    rusqlite::Connection::open(&path)
        .and_then(|conn| conn.execute_batch("ALTER TABLE events DROP COLUMN method"))
        .unwrap();
    let mut cmd = sandbox.ccai();
    cmd.args(["events", "list", "--store"]).arg(&path);
    let err = failed(&run(cmd).await);
    assert_eq!(
        err.trim(),
        format!(
            "error: the store {} was changed outside ccai: its events table lacks the column \
             method: restore it from a backup or open another store (--store or CCAI_STORE \
             names another store)",
            path.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_while_another_process_writes() {
    let inbox = Inbox::new().await;
    let writer = inbox.store.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_writer = stop.clone();
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        while !stop_writer.load(std::sync::atomic::Ordering::Relaxed) {
            let hash = format!("writer-{n:08}");
            let body = json_body("message.sent", &hash, "{}");
            writer
                .insert(NewDelivery::new(CLIENT, hash, "message.sent", body))
                .await
                .expect("insert while listing");
            n += 1;
        }
        n
    });
    for round in 0..8 {
        let out = inbox.ccai(&["list", "--json", "--limit", "20"]).await;
        let listed = hashes(&out);
        assert!(!listed.is_empty(), "round {round}");
        ok(&inbox.ccai(&["stats"]).await);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = task.await.unwrap();
    assert!(written > 0, "the writer wrote while the lists ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_locked_by_another_process_is_a_one_line_error() {
    let inbox = Inbox::new().await;
    // Another connection holds the write lock for longer than the busy timeout (5 s).
    let holder = rusqlite::Connection::open(&inbox.path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = failed(&inbox.ccai(&["replay", "--status", "dead"]).await);
    assert!(err.contains("is locked by another process"), "{err}");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    ok(&inbox.ccai(&["replay", "--status", "dead"]).await);
    assert_eq!(inbox.status(INCOMING_DEAD).await.0, DeliveryStatus::Pending);
}

/// A bulk `replay --to` sends every match, more than one page of them, in the order received,
/// each account's own event where two accounts used one hash, and nothing received after it
/// began.
#[tokio::test(flavor = "multi_thread")]
async fn bulk_replay_to_sends_every_match_in_received_order() {
    let sandbox = Sandbox::new();
    let path = sandbox.path().join("bulk.db");
    let store = SqliteStore::open(
        &path,
        SqliteOptions::default().synchronous(ccai::inbox::Synchronous::Normal),
    )
    .expect("open store");
    let start = SystemTime::now() - DAY;
    let mut expected: Vec<Vec<u8>> = Vec::new();
    // More than one page (1,000) of events, received a millisecond apart.
    let inserts = (0..1_205u64).map(|i| {
        let hash = format!("bulk-{i:05}");
        let body = json_body("message.sent", &hash, "{}");
        expected.push(body.clone());
        NewDelivery::new(CLIENT, hash.clone(), "message.sent", body)
            .signature(signature_of(&hash))
            .received_at(start + Duration::from_millis(i))
    });
    let inserts: Vec<_> = inserts.collect();
    for chunk in inserts.chunks(100) {
        let stored = futures_util::future::join_all(chunk.iter().map(|d| store.insert(d.clone())));
        for result in stored.await {
            result.expect("insert");
        }
    }
    // Another account's event under a hash the first account used, received last.
    let other = json_body("message.sent", "bulk-00003", r#"{"account":"other"}"#);
    store
        .insert(
            NewDelivery::new("9999", "bulk-00003", "message.sent", other.clone())
                .received_at(start + Duration::from_secs(60)),
        )
        .await
        .expect("insert");
    expected.push(other);
    // Received after the replay began (a clock ahead): not part of it.
    store
        .insert(
            NewDelivery::new(CLIENT, "future", "message.sent", &b"{}"[..])
                .received_at(SystemTime::now() + DAY),
        )
        .await
        .expect("insert");

    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let mut cmd = sandbox.ccai();
    cmd.args([
        "events",
        "replay",
        "--type",
        "message.sent",
        "--to",
        &target.url,
        "--json",
    ])
    .arg("--store")
    .arg(&path);
    let out = ok(&run(cmd).await);
    assert_eq!(
        out.lines().count(),
        expected.len() + 1,
        "one line per event, then the counts"
    );
    let counts: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(counts["sent"], expected.len());
    let got = target.requests.lock().unwrap();
    let bodies: Vec<Vec<u8>> = got.iter().map(|r| r.body.to_vec()).collect();
    assert_eq!(bodies.len(), expected.len());
    assert!(bodies == expected, "every body once, in the order received");
    assert_eq!(
        got[3].header("x-ccai-signature"),
        Some(signature_of("bulk-00003"))
    );
}

/// Output to a closed pipe (`… | head -1`) stops the output, not the work: every event is
/// sent, nothing panics, and the exit code is the command's own.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_output_pipe_stops_the_output_not_the_replay() {
    let inbox = Inbox::new().await;
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let closed_early = |args: &[&str]| {
        let mut cmd = inbox.sandbox.ccai();
        cmd.arg("events")
            .args(args)
            .arg("--store")
            .arg(&inbox.path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().expect("runs ccai");
            // The reader is gone before the first line.
            drop(child.stdout.take());
            child.wait_with_output().expect("waits")
        })
    };
    let out = closed_early(&["replay", "--status", "pending", "--to", &target.url])
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(
        target.requests.lock().unwrap().len(),
        2,
        "both pending events sent"
    );
    for args in [&["list", "--json"][..], &["show", SENT_PENDING], &["stats"]] {
        let out = closed_early(args).await.expect("join");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out));
    }
    // Any other write error is a failure: a full disk (`/dev/full`) loses the output.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let mut cmd = inbox.sandbox.ccai();
        cmd.args(["events", "list"])
            .arg("--store")
            .arg(&inbox.path)
            .stdout(full);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot write the output"),
            "{}",
            stderr(&out)
        );
    }
}

/// `--json` lines carry no character a terminal acts on (C1 controls, bidirectional overrides):
/// they are written as JSON escapes, and the line still decodes to the exact stored text.
#[tokio::test(flavor = "multi_thread")]
async fn json_output_is_inert_for_a_terminal_and_exact() {
    let inbox = Inbox::new().await;
    let odd_type = "c1\u{9b}31mred\u{202e}evil\u{7f}";
    inbox
        .store
        .insert(NewDelivery::new(CLIENT, "odd-type", odd_type, &b"{}"[..]))
        .await
        .expect("insert");
    for args in [&["list", "--json"][..], &["show", "odd-type", "--json"]] {
        let out = ok(&inbox.ccai(args).await);
        assert!(
            !out.contains(['\u{9b}', '\u{202e}', '\u{7f}']),
            "{args:?}: {out:?}"
        );
        let types: Vec<String> = out
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|v| {
                v.get("eventType")
                    .or_else(|| v.get("summary").and_then(|s| s.get("eventType")))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        assert!(types.iter().any(|t| t == odd_type), "{args:?}: {out}");
    }
}

/// `replay` shows a hash as `list` does: its first 12 characters, escaped once. Escaping before
/// cutting (as it did) cut the escape itself: `nl\nhash\u{1`.
#[tokio::test(flavor = "multi_thread")]
async fn replay_shows_a_hash_with_control_characters_as_list_does() {
    let inbox = Inbox::new().await;
    let odd = "nl\nhash\u{1b}[31m-and-more";
    inbox
        .store
        .insert(NewDelivery::new(CLIENT, odd, "message.sent", &b"{}"[..]))
        .await
        .expect("insert");
    let shown = "nl\\nhash\\u{1b}[31m";
    let listed = ok(&inbox.ccai(&["list"]).await);
    assert!(listed.contains(shown), "{listed}");
    let replayed = ok(&inbox.ccai(&["replay", odd]).await);
    assert!(replayed.contains(&format!("{shown}: ")), "{replayed}");
    assert!(!replayed.contains('\u{1b}'), "{replayed:?}");
}

/// One delivery with a long `eventType` does not widen every row of `list`: the TYPE column
/// shows at most 40 characters of it, as `listen` does; `--json` keeps the exact type.
#[tokio::test(flavor = "multi_thread")]
async fn list_shortens_a_long_type_and_json_keeps_it() {
    let inbox = Inbox::new().await;
    let long = format!("custom.{}", "y".repeat(293));
    inbox
        .store
        .insert(NewDelivery::new(CLIENT, "long-type", &long, &b"{}"[..]))
        .await
        .expect("insert");
    let listed = ok(&inbox.ccai(&["list"]).await);
    let widest = listed.lines().map(|l| l.chars().count()).max();
    assert!(widest < Some(150), "{widest:?}: {listed}");
    assert!(listed.contains(&format!("{}…", &long[..40])), "{listed}");
    let json = ok(&inbox.ccai(&["list", "--json"]).await);
    let types: Vec<String> = json
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON")["eventType"].to_string())
        .collect();
    assert!(types.contains(&format!("{long:?}")), "{json}");
}

/// An inbox of `n` dead events (`dead-00` …), received a second apart, oldest first, each after
/// an HTTP 500.
async fn dead_inbox(n: usize) -> (Inbox, Vec<String>) {
    let sandbox = Sandbox::new();
    let path = sandbox.path().join("dead.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open store");
    let start = SystemTime::now() - DAY;
    let hashes: Vec<String> = (0..n).map(|i| format!("dead-{i:02}")).collect();
    for (i, hash) in hashes.iter().enumerate() {
        let delivery = NewDelivery::new(
            CLIENT,
            hash.clone(),
            "message.sent",
            json_body("message.sent", hash, "{}"),
        )
        .signature(signature_of(hash))
        .received_at(start + Duration::from_secs(i as u64));
        store.insert(delivery).await.expect("insert");
    }
    let now = SystemTime::now();
    let claimed = store
        .claim(
            DEFAULT_DESTINATION,
            LeaseRequest::new("fixture", MINUTE),
            100,
            now,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), n);
    for delivery in claimed {
        let attempt = AttemptRecord::new(now, Duration::from_millis(9), AttemptOutcome::Failure)
            .http_status(500);
        let finished = store.finish(&delivery.lease, Finish::Dead, attempt).await;
        assert!(finished.expect("finish"), "lease held");
    }
    let inbox = Inbox {
        sandbox,
        path,
        store,
    };
    (inbox, hashes)
}

/// A `replay --to` a target that cannot be reached stops after 3 sends in a row fail to reach
/// it, says how many were sent, failed and not tried, and exits 2: it went on through every
/// event, 30 s each against a target that hangs. Bulk or by hash, and with `--json`. The store
/// is left as it was.
#[tokio::test(flavor = "multi_thread")]
async fn replay_to_a_target_that_cannot_be_reached_stops_after_three_failures_in_a_row() {
    let (inbox, dead) = dead_inbox(10).await;
    let shown_before = ok(&inbox.ccai(&["show", &dead[9], "--json"]).await);
    let down = format!("http://127.0.0.1:{}/x", closed_port());
    let named: Vec<&str> = dead.iter().map(String::as_str).collect();
    let by_hash = [&["replay"][..], &named, &["--to", &down]].concat();
    for args in [&["replay", "--status", "dead", "--to", &down][..], &by_hash] {
        let out = inbox.ccai(args).await;
        let said = stdout(&out);
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(lines.len(), 3, "three tried: {said}");
        for (line, hash) in lines.iter().zip(&dead) {
            assert!(line.starts_with(&format!("{hash}  ")), "{line}");
            assert!(
                line.contains("failed: ") && line.contains("refused"),
                "{line}"
            );
        }
        let err = failed(&out);
        assert!(
            err.starts_with(
                "error: stopped after 3 sends in a row could not reach http://127.0.0.1:"
            ),
            "{err}"
        );
        assert!(
            err.contains(": 3 sent, 3 of them failed, 7 not tried; "),
            "{err}"
        );
        assert!(err.contains("run the command again"), "{err}");
    }

    let out = inbox
        .ccai(&["replay", "--status", "dead", "--to", &down, "--json"])
        .await;
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[..3].iter().all(|l| l["ok"] == false), "{lines:?}");
    assert_eq!(lines[3]["sent"], 3);
    assert_eq!(lines[3]["failed"], 3);
    assert_eq!(lines[3]["notTried"], 7);
    assert!(failed(&out).contains("7 not tried"));

    // The events not tried are as they were: dead, with their one attempt.
    assert_eq!(
        ok(&inbox.ccai(&["show", &dead[9], "--json"]).await),
        shown_before
    );
    let listed = hashes(&inbox.ccai(&["list", "--json", "--status", "dead"]).await);
    assert_eq!(listed.len(), 10, "{listed:?}");
}

/// A target that answers, even 500 to every request, is reached: every event is sent, and the
/// replay fails only at its end, as before.
#[tokio::test(flavor = "multi_thread")]
async fn replay_to_a_target_answering_errors_sends_every_event() {
    let (inbox, dead) = dead_inbox(10).await;
    let failing = recorder(|_| (StatusCode::INTERNAL_SERVER_ERROR, "{}".into())).await;
    let out = inbox
        .ccai(&["replay", "--status", "dead", "--to", &failing.url])
        .await;
    let said = stdout(&out);
    assert_eq!(said.matches("HTTP 500").count(), 10, "{said}");
    let err = failed(&out);
    assert!(err.contains("10 of 10 replays"), "{err}");
    assert!(!err.contains("not tried"), "{err}");
    let got = failing.requests.lock().unwrap();
    let bodies: Vec<Vec<u8>> = got.iter().map(|r| r.body.to_vec()).collect();
    let expected: Vec<Vec<u8>> = dead
        .iter()
        .map(|h| json_body("message.sent", h, "{}"))
        .collect();
    assert!(bodies == expected, "every event, in the order received");
}

/// Failures to reach the target stop a replay only in a row: a target that drops two
/// connections of every three without an answer, and answers the third, gets every event tried.
#[tokio::test(flavor = "multi_thread")]
async fn replay_to_goes_on_while_the_target_answers_between_failures() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (inbox, dead) = dead_inbox(10).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/x", listener.local_addr().expect("addr"));
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n % 3 != 2 {
                // Closed without an answer: the request fails, as a target going down does.
                drop(stream);
                continue;
            }
            tokio::spawn(async move {
                // The request's head and its small body, then the answer.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.ends_with(b"}") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buf[..read]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = stream.write_all(answer).await;
            });
        }
    });
    let out = inbox
        .ccai(&["replay", "--status", "dead", "--to", &url, "--json"])
        .await;
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 11, "{lines:?}");
    for (i, (line, hash)) in lines.iter().zip(&dead).enumerate() {
        assert_eq!(line["eventHash"], hash.as_str());
        assert_eq!(line["ok"], i % 3 == 2, "{line}");
    }
    assert_eq!(lines[10]["sent"], 10);
    assert_eq!(lines[10]["failed"], 7);
    assert_eq!(lines[10]["notTried"], 0);
    let err = failed(&out);
    // Some worked: running it again sends those too, and the error says so.
    assert_eq!(
        err,
        format!(
            "error: 7 of 10 replays to {url} failed (each event's line says why): fix the \
             target, then run the command again (it sends every event again, those that worked \
             too)\n"
        )
    );
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        10,
        "one connection per event"
    );
}

/// A target that takes the connection and then resets it is there: the replay goes on through
/// every event. So is an answer lost: a target answering a large body before reading it (a 413,
/// say) and closing resets the connection, and the answer may go with it. Counted as unreachable,
/// three such events in a row stopped the replay, saying the target could not be reached, with
/// the events after them not tried.
#[tokio::test(flavor = "multi_thread")]
async fn replay_to_a_target_resetting_the_connection_sends_every_event() {
    use tokio::io::AsyncReadExt;

    let (inbox, dead) = dead_inbox(5).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/x", listener.local_addr().expect("addr"));
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                // The request's head, then a reset (a close with a zero linger).
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => head.push(byte[0]),
                    }
                }
                stream.set_zero_linger().expect("linger");
            });
        }
    });
    let out = inbox
        .ccai(&["replay", "--status", "dead", "--to", &url, "--json"])
        .await;
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for (line, hash) in lines.iter().zip(&dead) {
        assert_eq!(line["eventHash"], hash.as_str());
        assert_eq!(line["ok"], false, "{line}");
    }
    assert_eq!(lines[5]["sent"], 5, "{lines:?}");
    assert_eq!(lines[5]["failed"], 5, "{lines:?}");
    assert_eq!(lines[5]["notTried"], 0, "{lines:?}");
    let err = failed(&out);
    assert!(err.contains("5 of 5 replays"), "{err}");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        5,
        "one connection per event"
    );
}
