//! `ccai ui`'s JSON API over real HTTP: the real binary serving a real SQLite inbox filled
//! through the library.

mod common;
mod ui_support;

use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, NewDelivery, Retention,
    SqliteOptions, SqliteStore, Store, Synchronous, DEFAULT_DESTINATION,
};
use common::{run, stderr, Sandbox, WAIT};
use serde_json::Value;
use ui_support::{
    add, fill, get, inbox_path, post, start_ui, wait_for, CLIENT, CUSTOM_NEW, EXCLUDED_DUP,
    INCOMING_DEAD, MINUTE, SENT_OLD, SENT_PENDING,
};

/// The status of a GET, with `Authorization: Bearer` when `bearer` is given.
async fn status_of(url: &str, bearer: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET").status().as_u16()
}

fn hashes(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["eventHash"].as_str().expect("hash").to_owned())
        .collect()
}

#[tokio::test]
async fn ui_api_lists_newest_first_with_a_stable_cursor_and_filters() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    assert!(
        ui.token.is_none(),
        "no token on the loopback: {:?}",
        ui.banner
    );

    let (status, all) = get(&ui, "/api/events").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        hashes(&all),
        [
            CUSTOM_NEW,
            SENT_PENDING,
            EXCLUDED_DUP,
            INCOMING_DEAD,
            SENT_OLD
        ]
    );
    let row = &all["events"][2];
    assert_eq!(row["shortHash"], "c3c3c3c3c3c3");
    assert_eq!(row["status"], "pending");
    assert_eq!(row["duplicates"], 2);
    assert_eq!(row["conflicts"], 1);
    assert_eq!(all["events"][3]["status"], "dead");
    assert_eq!(all["events"][3]["attempts"], 1);
    assert_eq!(all["events"][4]["status"], "delivered");
    assert_eq!(all["events"][0]["status"], "retrying");
    assert_eq!(all["events"][0]["attempts"], 1);

    // Pages of two; a new event does not shift the older pages.
    let (_, first) = get(&ui, "/api/events?limit=2").await;
    assert_eq!(hashes(&first), [CUSTOM_NEW, SENT_PENDING]);
    let cursor = first["next"].as_str().expect("a next page").to_owned();
    add(&store, "f6f6f6f6f6f6f6f6-newer", "message.sent").await;
    let (_, second) = get(&ui, &format!("/api/events?limit=2&cursor={cursor}")).await;
    assert_eq!(hashes(&second), [EXCLUDED_DUP, INCOMING_DEAD]);
    let (_, top) = get(&ui, "/api/events?limit=1").await;
    assert_eq!(hashes(&top), ["f6f6f6f6f6f6f6f6-newer"]);

    // Filters: status, type, time, text (case-sensitive, in the body).
    let (_, dead) = get(&ui, "/api/events?status=dead").await;
    assert_eq!(hashes(&dead), [INCOMING_DEAD]);
    let (_, dead) = get(&ui, "/api/events?status=DEAD").await;
    assert_eq!(hashes(&dead), [INCOMING_DEAD]);
    let (_, sent) = get(&ui, "/api/events?type=message.sent").await;
    assert_eq!(
        hashes(&sent),
        ["f6f6f6f6f6f6f6f6-newer", SENT_PENDING, SENT_OLD]
    );
    let (_, recent) = get(&ui, "/api/events?since=10m").await;
    assert_eq!(
        hashes(&recent),
        ["f6f6f6f6f6f6f6f6-newer", CUSTOM_NEW, SENT_PENDING]
    );
    // Before 1970 is everything; the latest time there is, nothing.
    let (status, early) = get(&ui, "/api/events?since=1969-12-31").await;
    assert_eq!(status, 200, "{early}");
    assert_eq!(hashes(&early), hashes(&get(&ui, "/api/events").await.1));
    let (status, late) = get(&ui, "/api/events?since=9999-12-31T23:59:59.999Z").await;
    assert_eq!((status, hashes(&late)), (200, Vec::<String>::new()));
    let (_, text) = get(&ui, "/api/events?q=%2B14155550133").await;
    assert_eq!(hashes(&text), [INCOMING_DEAD]);
    let (_, both) = get(&ui, "/api/events?type=message.sent&since=2h&status=pending").await;
    assert_eq!(hashes(&both), ["f6f6f6f6f6f6f6f6-newer", SENT_PENDING]);
    let (_, none) = get(&ui, "/api/events?q=opted%20OUT").await;
    assert_eq!(hashes(&none), Vec::<String>::new());

    for bad in [
        "/api/events?status=gone",
        "/api/events?since=yesterday",
        "/api/events?cursor=abc",
        "/api/events?limit=0",
        "/api/events?limit=100000",
    ] {
        let (status, answer) = get(&ui, bad).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["error"].is_string(), "{bad}: {answer}");
    }
    // A search text past the store's limit (1,024 bytes) is the request's fault, as a bad
    // status is: a 400 that says why, for the list and its download alike.
    let long = "a".repeat(1025);
    for path in ["/api/events", "/api/events.ndjson"] {
        let (status, answer) = get(&ui, &format!("{path}?q={long}")).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("1025 bytes") && error.contains("at most 1024"),
            "{path}: {answer}"
        );
    }
    let (status, _) = get(&ui, &format!("/api/events?q={}", &long[1..])).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn ui_api_details_show_the_exact_body_typed_fields_attempts_and_no_full_signature() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let _store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);

    let (status, event) = get(&ui, &format!("/api/events/{INCOMING_DEAD}")).await;
    assert_eq!(status, 200, "{event}");
    let raw = String::from_utf8(ui_support::body(
        "message.incoming",
        INCOMING_DEAD,
        r#"{"From":"+14155550133","Message":"see you <b>soon</b>"}"#,
    ))
    .expect("utf-8");
    assert_eq!(event["body"], raw.as_str(), "exactly as received");
    let pretty = event["bodyPretty"].as_str().expect("pretty");
    assert!(pretty.contains("\n  \"eventHash\": "), "{pretty}");
    assert_eq!(event["typed"]["kind"], "Incoming");
    let fields = event["typed"]["fields"].as_array().expect("fields");
    assert!(
        fields.contains(&serde_json::json!({"name": "from", "value": "+14155550133"})),
        "{fields:?}"
    );
    let attempts = event["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["httpStatus"], 500);
    assert_eq!(attempts[0]["durationMs"], 42);
    assert_eq!(attempts[0]["error"], "HTTP 500 from the target: boom");
    assert_eq!(event["status"], "dead");
    assert_eq!(event["contentType"], "application/json; charset=utf-8");

    // The signature: its first 6 characters and an ellipsis, never the whole of it.
    let full = ui_support::signature_of(INCOMING_DEAD);
    let hint = event["signature"].as_str().expect("hint");
    assert_eq!(hint, format!("{}…", &full[..6]));
    assert!(!event.to_string().contains(&full));

    let (_, pending) = get(&ui, &format!("/api/events/{SENT_PENDING}")).await;
    assert!(pending["nextAttemptAt"].is_string(), "{pending}");
    assert_eq!(pending["attempts"].as_array().map(Vec::len), Some(0));

    let (status, missing) = get(&ui, "/api/events/nope").await;
    assert_eq!(status, 404, "{missing}");
    // A hash with a bidirectional override is named escaped once (`{:?}` on the escaped text
    // doubled the backslash).
    let (status, missing) = get(&ui, "/api/events/%E2%80%AE%C3%A9").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"], "no event with hash \"\\u{202e}é\"");
    let (status, missing) = get(&ui, "/api/events/%E2%80%AE%C3%A9?clientId=1231").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(
        missing["error"],
        "no event with hash \"\\u{202e}é\" for client id \"1231\""
    );

    // A hash that is not UTF-8 is a 400 with the API's `{"error"}`, as every error is.
    for (status, answer) in [
        get(&ui, "/api/events/%FF").await,
        post(&ui, "/api/events/%FF/replay").await,
        post(&ui, "/api/events/%C3%28/retry").await,
    ] {
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
}

/// After a replay the list's `attempts` counts every attempt recorded, as the details list them
/// (it counted the current schedule's, back to 0 after the replay); each delivery has both.
#[tokio::test]
async fn ui_api_after_a_replay_the_list_counts_the_attempts_the_details_list() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let _store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let (status, answer) = post(&ui, &format!("/api/events/{INCOMING_DEAD}/replay")).await;
    assert_eq!(status, 200, "{answer}");

    let (status, page) = get(&ui, "/api/events").await;
    assert_eq!(status, 200, "{page}");
    let row = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["eventHash"] == INCOMING_DEAD)
        .expect("listed");
    assert_eq!(row["status"], "pending", "{row}");
    assert_eq!(row["attempts"], 1, "{row}");
    assert_eq!(row["deliveries"][0]["attempts"], 0, "{row}");
    assert_eq!(row["deliveries"][0]["totalAttempts"], 1, "{row}");

    let (status, event) = get(&ui, &format!("/api/events/{INCOMING_DEAD}")).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(event["attemptCount"], 1, "{event}");
    assert_eq!(event["deliveries"], row["deliveries"]);
}

/// The API finds an event by what `ccai events show` takes (through the same code): the hash
/// whole, `#` first or not, or the start of exactly one stored hash; a start several hashes
/// share is a 409 that says so. It took whole hashes only.
#[tokio::test]
async fn ui_api_finds_an_event_by_the_start_of_its_hash_as_the_cli_does() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill(&path).await;
    add(&store, "abcdef0001-one", "message.sent").await;
    add(&store, "abcdef0002-two", "message.sent").await;
    let ui = start_ui(&sandbox, &path, &[]);

    for asked in [
        "/api/events/b2b2b2b2b2b2".to_owned(),
        "/api/events/%23b2b2b2b2b2b2".to_owned(),
        "/api/event?hash=b2b2b2".to_owned(),
        format!("/api/events/b2b2b2b2b2b2?clientId={CLIENT}"),
    ] {
        let (status, event) = get(&ui, &asked).await;
        assert_eq!(status, 200, "{asked}: {event}");
        assert_eq!(event["eventHash"], INCOMING_DEAD, "{asked}");
    }
    let (status, event) = get(&ui, "/api/events/abcdef0002").await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["eventHash"], "abcdef0002-two");

    // Two stored hashes start so: which one is the caller's to say.
    let (status, answer) = get(&ui, "/api/events/abcdef").await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        answer["error"],
        "event hash \"abcdef\" is ambiguous: more than one stored hash starts with it; give more of it"
    );
    let (status, answer) = post(&ui, "/api/events/abcdef/replay").await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]
        .as_str()
        .is_some_and(|e| e.contains("ambiguous")));

    // Too short to look up by its start, or another account's: not found.
    let (status, answer) = get(&ui, "/api/events/b2b2").await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = get(&ui, "/api/events/b2b2b2b2b2b2?clientId=9999").await;
    assert_eq!(status, 404, "{answer}");

    // The actions too: Replay by the start of the hash reaches that event.
    let (status, answer) = post(&ui, "/api/events/b2b2b2b2b2b2/replay").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["replayed"], 1);
    let event = store
        .get(INCOMING_DEAD)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(event.summary.deliveries[0].status, DeliveryStatus::Pending);
}

/// Events whose hash is `.` or `..` (an eventHash is whatever the sender signed): a client removes
/// such a path segment, percent-encoded too (`/api/events/%2E%2E` is sent as `/api/`), so the
/// path routes cannot name them; `?hash=` does, for the details, Replay and Retry now.
#[tokio::test]
async fn ui_api_events_hashed_dot_and_dot_dot_are_named_by_query() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill(&path).await;
    let bodies: Vec<(&str, Vec<u8>)> = [".", ".."]
        .into_iter()
        .map(|hash| {
            let body = ui_support::body("message.sent", hash, r#"{"To":"+14155550100"}"#);
            (hash, body)
        })
        .collect();
    for (hash, body) in &bodies {
        let delivery = NewDelivery::new(CLIENT, *hash, "message.sent", body.clone())
            .signature(ui_support::signature_of(hash));
        store.insert(delivery).await.expect("insert");
    }
    // `..` dead after an attempt; the others due as they were.
    let now = SystemTime::now();
    let claimed = store
        .claim(
            DEFAULT_DESTINATION,
            LeaseRequest::new("test", MINUTE),
            100,
            now,
        )
        .await
        .expect("claim");
    for delivery in claimed {
        let done = if delivery.event_hash == ".." {
            let attempt =
                AttemptRecord::new(now, Duration::from_millis(3), AttemptOutcome::Failure)
                    .http_status(500);
            store.finish(&delivery.lease, Finish::Dead, attempt).await
        } else {
            store.release(&delivery.lease).await
        };
        assert!(done.expect("finish"), "lease held");
    }
    let ui = start_ui(&sandbox, &path, &[]);

    // The path cannot name them: the client sends `/api/` instead.
    let (status, answer) = get(&ui, "/api/events/%2E%2E").await;
    assert_eq!(status, 404, "{answer}");

    for (hash, body) in &bodies {
        let (status, event) = get(&ui, &format!("/api/event?hash={hash}")).await;
        assert_eq!(status, 200, "{hash}: {event}");
        assert_eq!(event["eventHash"], *hash);
        assert_eq!(
            event["body"].as_str().map(str::as_bytes),
            Some(body.as_slice())
        );
        let (status, event) = get(&ui, &format!("/api/event?hash={hash}&clientId={CLIENT}")).await;
        assert_eq!(
            (status, &event["eventHash"]),
            (200, &Value::from(*hash)),
            "{event}"
        );
        let (status, answer) = get(&ui, &format!("/api/event?hash={hash}&clientId=9999")).await;
        assert_eq!(status, 404, "{hash}: {answer}");
    }
    let (status, answer) = post(&ui, "/api/event/replay?hash=.").await;
    assert_eq!(
        (status, &answer["replayed"]),
        (200, &Value::from(1)),
        "{answer}"
    );
    let (status, answer) = post(&ui, "/api/event/retry?hash=.").await;
    assert_eq!(status, 409, "not dead: {answer}");
    let (status, answer) = post(&ui, &format!("/api/event/retry?hash=..&clientId={CLIENT}")).await;
    assert_eq!(
        (status, &answer["requeued"]),
        (200, &Value::from(1)),
        "{answer}"
    );
    let event = store.get("..").await.expect("get").expect("stored");
    let delivery = &event.summary.deliveries[0];
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Pending, 0)
    );

    // The hash is required, and an action still needs the UI's header.
    for (status, answer) in [
        get(&ui, "/api/event").await,
        get(&ui, "/api/event?hash=").await,
        post(&ui, "/api/event/replay").await,
        post(&ui, "/api/event/retry?clientId=1231").await,
    ] {
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("?hash=")),
            "{answer}"
        );
    }
    let response = reqwest::Client::new()
        .post(format!("{}/api/event/replay?hash=.", ui.base))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test]
async fn ui_api_replays_retries_counts_and_downloads() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);

    // Counters and the per-minute chart (four events in the last hour).
    let (status, stats) = get(&ui, "/api/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["received"], 5);
    assert_eq!(stats["duplicates"], 2);
    assert_eq!(stats["conflicts"], 1);
    assert_eq!(stats["delivered"], 1);
    assert_eq!(stats["dead"], 1);
    assert_eq!(stats["pending"], 3);
    assert!(stats["oldestPendingAgeSecs"].as_u64().expect("age") >= 20 * 60);
    let per_minute: Vec<u64> = serde_json::from_value(stats["perMinute"].clone()).expect("60");
    assert_eq!(per_minute.len(), 60);
    assert_eq!(per_minute.iter().sum::<u64>(), 4, "{per_minute:?}");
    assert_eq!(per_minute[59 - 50], 1, "50 minutes ago: {per_minute:?}");

    // Replay: a delivered event is due again, its history kept.
    let (status, answer) = post(&ui, &format!("/api/events/{SENT_OLD}/replay")).await;
    assert_eq!(
        (status, &answer["replayed"]),
        (200, &Value::from(1)),
        "{answer}"
    );
    let event = store.get(SENT_OLD).await.expect("get").expect("stored");
    assert_eq!(event.summary.deliveries[0].status, DeliveryStatus::Pending);
    assert_eq!(event.attempts.len(), 1, "history kept");
    // Another account's event under the same hash: a replay must say whose (without it, a 409
    // naming both), and touches that event alone.
    store
        .insert(NewDelivery::new(
            "9999",
            SENT_OLD,
            "other.account",
            &b"{}"[..],
        ))
        .await
        .expect("insert");
    let (status, answer) = post(&ui, &format!("/api/events/{SENT_OLD}/replay")).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["clientIds"], serde_json::json!(["1231", "9999"]));
    let (status, answer) = post(&ui, &format!("/api/events/{SENT_OLD}/replay?clientId=9999")).await;
    assert_eq!(
        (status, &answer["replayed"]),
        (200, &Value::from(1)),
        "{answer}"
    );

    // Retry now: dead → pending, its schedule started over; only for dead events.
    let (status, answer) = post(&ui, &format!("/api/events/{INCOMING_DEAD}/retry")).await;
    assert_eq!(
        (status, &answer["requeued"]),
        (200, &Value::from(1)),
        "{answer}"
    );
    let event = store
        .get(INCOMING_DEAD)
        .await
        .expect("get")
        .expect("stored");
    let delivery = &event.summary.deliveries[0];
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Pending, 0)
    );
    let (status, answer) = post(&ui, &format!("/api/events/{SENT_PENDING}/retry")).await;
    assert_eq!(status, 409, "{answer}");
    let (status, _) = post(&ui, "/api/events/nope/replay").await;
    assert_eq!(status, 404);

    // An action without the UI's header (a cross-site form) is refused.
    let response = reqwest::Client::new()
        .post(format!("{}/api/events/{SENT_OLD}/replay", ui.base))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 403);

    // NDJSON: the filtered list, one object per line.
    let response = reqwest::get(format!("{}/api/events.ndjson?type=message.sent", ui.base))
        .await
        .expect("download");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("application/x-ndjson")
    );
    let text = response.text().await.expect("text");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let listed: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["eventHash"].as_str())
        .collect();
    assert_eq!(listed, [SENT_PENDING, SENT_OLD]);
}

/// Replaying or retrying an event whose body was purged is a 409 saying so: there is nothing
/// to send. A replay answered 200 `{"replayed":0}` with no reason, and a retry
/// `{"requeued":0}`; the view then said "Replayed: 0 deliveries are due now".
#[tokio::test]
async fn ui_api_a_purged_event_is_not_replayed_and_says_why() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill(&path).await;
    // Every finished event's body (the delivered and the dead one), no row.
    let day = Duration::from_secs(86_400);
    let report = store
        .purge(
            Retention::new(Duration::ZERO, 1000 * day),
            std::time::SystemTime::now(),
        )
        .await
        .expect("purge");
    assert_eq!(report.bodies_purged, 2);
    let ui = start_ui(&sandbox, &path, &[]);
    for (hash, action, status) in [
        (SENT_OLD, "replay", DeliveryStatus::Delivered),
        (INCOMING_DEAD, "replay", DeliveryStatus::Dead),
        (INCOMING_DEAD, "retry", DeliveryStatus::Dead),
    ] {
        let (code, answer) = post(&ui, &format!("/api/events/{hash}/{action}")).await;
        assert_eq!(code, 409, "{action} {hash}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("body was purged") && error.contains("nothing to send"),
            "{action} {hash}: {answer}"
        );
        let event = store.get(hash).await.expect("get").expect("stored");
        assert_eq!(
            event.summary.deliveries[0].status, status,
            "{action} {hash}"
        );
    }
    // An event with its body still replays.
    let (code, answer) = post(&ui, &format!("/api/events/{SENT_PENDING}/replay")).await;
    assert_eq!(
        (code, &answer["replayed"]),
        (200, &Value::from(1)),
        "{answer}"
    );
}

/// `POST /api/replay`: every event the filters match is due again, as `ccai events replay
/// --status/--type` makes them; a status or a type is required, as there; events whose body was
/// purged are counted, not replayed; `ccai ui --client-id` replays that account's alone.
#[tokio::test]
async fn ui_api_bulk_replay_needs_a_filter_and_counts_purged_bodies() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);

    // No status or type: refused, as `ccai events replay` without a filter is; a time or a text
    // alone does not make a bulk replay either.
    for query in ["", "?since=1h", "?q=%2B1415", "?status=&type="] {
        let (status, answer) = post(&ui, &format!("/api/replay{query}")).await;
        assert_eq!(status, 400, "{query}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains("status= and/or type="), "{query}: {answer}");
    }
    let (status, answer) = post(&ui, "/api/replay?status=gone").await;
    assert_eq!(status, 400, "{answer}");
    let long = "a".repeat(1025);
    let (status, answer) = post(&ui, &format!("/api/replay?status=dead&q={long}")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 1024")),
        "{answer}"
    );
    // An action: without the UI's header (a cross-site form), refused and nothing replayed.
    let response = reqwest::Client::new()
        .post(format!("{}/api/replay?status=dead", ui.base))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 403);
    let event = store
        .get(INCOMING_DEAD)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(event.summary.deliveries[0].status, DeliveryStatus::Dead);

    // The dead: pending again, their retry schedule started over.
    let (status, answer) = post(&ui, "/api/replay?status=dead").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({"replayed": 1, "bodyPurgedEvents": 0})
    );
    let event = store
        .get(INCOMING_DEAD)
        .await
        .expect("get")
        .expect("stored");
    let delivery = &event.summary.deliveries[0];
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Pending, 0)
    );
    assert_eq!(event.attempts.len(), 1, "history kept");

    // A type, narrowed by time: the recent message.sent alone, not the one delivered 3 hours ago.
    let (status, answer) = post(&ui, "/api/replay?type=message.sent&since=1h").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["replayed"], 1, "{answer}");
    let old = store.get(SENT_OLD).await.expect("get").expect("stored");
    assert_eq!(old.summary.deliveries[0].status, DeliveryStatus::Delivered);

    // The delivered one's body purged: it matched, and is counted as skipped.
    let day = Duration::from_secs(86_400);
    let report = store
        .purge(
            Retention::new(Duration::ZERO, 1000 * day),
            SystemTime::now(),
        )
        .await
        .expect("purge");
    assert_eq!(report.bodies_purged, 1);
    let (status, answer) = post(&ui, "/api/replay?type=message.sent").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({"replayed": 1, "bodyPurgedEvents": 1})
    );
    let old = store.get(SENT_OLD).await.expect("get").expect("stored");
    assert_eq!(old.summary.deliveries[0].status, DeliveryStatus::Delivered);

    // A view of one account replays that account's events alone.
    store
        .insert(NewDelivery::new(
            "9999",
            "9a9a9a9a9a9a9a9a-other",
            "message.sent",
            &b"{}"[..],
        ))
        .await
        .expect("insert");
    let narrowed = start_ui(&sandbox, &path, &["--client-id", "9999"]);
    let (status, answer) = post(&narrowed, "/api/replay?type=message.sent").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({"replayed": 1, "bodyPurgedEvents": 0})
    );
}

/// A bulk replay by text of more events than the store updates in one write, whose second
/// write fails for real (a trigger added to the file aborts the update of one of its events):
/// the view's answer says how many the first write made due, which stay due, and what running
/// it again would do, not just that it failed.
#[tokio::test]
async fn ui_api_bulk_replay_that_fails_part_way_says_what_it_had_done() {
    // The SQLite store's events a write (`CHUNK` in `search_first.rs`).
    const CHUNK: usize = 500;
    let found = 2 * CHUNK + 10;
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let options = SqliteOptions::new().synchronous(Synchronous::Normal);
    let store = SqliteStore::open(&path, options).expect("open");
    for i in 0..found {
        let hash = format!("{i:016x}-needle");
        let body = format!(r#"{{"eventHash":"{hash}","data":{{"Message":"a needle"}}}}"#);
        let delivery = NewDelivery::new(CLIENT, hash.as_str(), "message.incoming", body);
        store.insert(delivery).await.expect("insert");
    }
    let now = SystemTime::now();
    let lease = LeaseRequest::new("fixture", MINUTE);
    loop {
        let claimed = store
            .claim(DEFAULT_DESTINATION, lease.clone(), 200, now)
            .await
            .expect("claim");
        if claimed.is_empty() {
            break;
        }
        for delivery in claimed {
            let attempt = AttemptRecord::new(now, Duration::ZERO, AttemptOutcome::Failure);
            let done = store.finish(&delivery.lease, Finish::Dead, attempt).await;
            assert!(done.expect("finish"), "lease held");
        }
    }
    store.close().await;
    let pending = |conn: &rusqlite::Connection| -> usize {
        conn.query_row(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'",
            [],
            |row| row.get(0),
        )
        .expect("count")
    };
    let conn = rusqlite::Connection::open(&path).expect("open the file");
    // An event of the second write (they go oldest first).
    let second: i64 = conn
        .query_row(
            "SELECT id FROM events ORDER BY id LIMIT 1 OFFSET ?1",
            [CHUNK + CHUNK / 2],
            |row| row.get(0),
        )
        .expect("an event of the second write");
    conn.execute_batch(&format!(
        "CREATE TRIGGER refuse BEFORE UPDATE ON deliveries WHEN NEW.event_id = {second}
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    ))
    .expect("trigger");
    let ui = start_ui(&sandbox, &path, &[]);

    let (status, answer) = post(&ui, "/api/replay?status=dead&q=needle").await;
    // The write's own failure, as transient as it was.
    assert_eq!(status, 503, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("refused by the test"), "{answer}");
    assert!(
        error.contains(&format!(
            "{CHUNK} of the {found} events found were written before this error, which does not \
             undo them: {CHUNK} deliveries made due; running it again makes due only deliveries \
             still dead"
        )),
        "{answer}"
    );
    assert_eq!(pending(&conn), CHUNK);
}

#[tokio::test]
async fn ui_api_stream_announces_changes() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let mut response = reqwest::get(format!("{}/api/stream", ui.base))
        .await
        .expect("stream");
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    let mut seen = String::new();
    let read_until = async |seen: &mut String, response: &mut reqwest::Response, what: &str| {
        tokio::time::timeout(WAIT, async {
            while !seen.contains(what) {
                let chunk = response.chunk().await.expect("chunk").expect("open");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what:?} in {seen:?}"));
    };
    read_until(&mut seen, &mut response, "event: ready").await;
    // Give the watcher time to see the store as it was, then change it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    add(&store, "f7f7f7f7f7f7f7f7-live", "message.sent").await;
    read_until(&mut seen, &mut response, "event: change").await;
}

#[tokio::test]
async fn ui_api_requires_the_token_off_the_loopback() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill(&path).await;

    // An empty or weak token is refused before anything is served.
    for token in ["", "short"] {
        let mut cmd = sandbox.ccai();
        cmd.args(["ui", "--port", "0", "--host", "0.0.0.0", "--token", token])
            .arg("--store")
            .arg(&path);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2), "{token:?}");
        assert!(stderr(&out).contains("token must be"), "{}", stderr(&out));
    }

    // Off the loopback without --token: one is generated, printed and required.
    let ui = start_ui(&sandbox, &path, &["--host", "0.0.0.0"]);
    let token = ui
        .token
        .clone()
        .unwrap_or_else(|| panic!("no token: {:?}", ui.banner));
    assert_eq!(token.len(), 64);
    let stats = format!("{}/api/stats", ui.base);
    assert_eq!(status_of(&stats, None).await, 401);
    assert_eq!(status_of(&stats, Some("wrong-token-0123456789")).await, 401);
    assert_eq!(status_of(&stats, Some(&token)).await, 200);
    assert_eq!(
        status_of(&format!("{stats}?token={token}"), None).await,
        200
    );
    for action in [
        format!("/api/events/{SENT_OLD}/replay"),
        format!("/api/event/replay?hash={SENT_OLD}"),
        "/api/replay?status=dead".to_owned(),
    ] {
        let replay = reqwest::Client::new()
            .post(format!("{}{action}", ui.base))
            .header("x-ccai-ui", "1")
            .send()
            .await
            .expect("POST");
        assert_eq!(replay.status().as_u16(), 401, "{action}");
    }
    assert_eq!(
        status_of(&format!("{}/api/event?hash={SENT_OLD}", ui.base), None).await,
        401
    );
    let dead = store
        .get(INCOMING_DEAD)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(dead.summary.deliveries[0].status, DeliveryStatus::Dead);
    drop(ui);

    // A chosen token.
    let chosen = "a-chosen-token-for-the-view";
    let ui = start_ui(&sandbox, &path, &["--host", "0.0.0.0", "--token", chosen]);
    // Never printed: the banner shows where it goes, not the token itself.
    assert_eq!(ui.token.as_deref(), Some("TOKEN"), "{:?}", ui.banner);
    assert!(!ui.banner.concat().contains(chosen), "{:?}", ui.banner);
    let stats = format!("{}/api/stats", ui.base);
    assert_eq!(status_of(&stats, None).await, 401);
    assert_eq!(status_of(&stats, Some(chosen)).await, 200);
    drop(ui);

    // On the loopback, only loopback names are answered (no DNS rebinding onto the API).
    let ui = start_ui(&sandbox, &path, &[]);
    let (status_code, _) = get(&ui, "/api/stats").await;
    assert_eq!(status_code, 200);
    let http = reqwest::Client::new();
    let rebound = http
        .get(format!("{}/api/stats", ui.base))
        .header("host", "attacker.example:8081")
        .send()
        .await
        .expect("GET");
    assert_eq!(rebound.status().as_u16(), 403);
    let page = wait_for("the page", async || {
        let response = http.get(format!("{}/", ui.base)).send().await.ok()?;
        response.text().await.ok()
    })
    .await;
    assert!(page.contains("<title>ccai inbox</title>"));
}

#[tokio::test]
async fn ui_api_listen_serves_the_view_beside_the_receiver() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let (listening, ui_url) = ui_support::listen_with_ui(&sandbox, &path, &[]);
    let ui_url = ui_url.trim_end_matches('/');
    assert!(ui_url.starts_with("http://127.0.0.1:"), "{ui_url}");

    let hash = "0b0b0b0b0b0b0b0b-listened";
    let response = reqwest::Client::new()
        .post(&listening.url)
        .header("content-type", "application/json")
        .header("x-ccai-signature", ui_support::signature_of(hash))
        .body(ui_support::body("message.sent", hash, r#"{"To":"+1"}"#))
        .send()
        .await
        .expect("deliver");
    assert_eq!(response.status().as_u16(), 200);
    let page = reqwest::get(format!("{ui_url}/api/events"))
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    let page: Value = serde_json::from_str(&page).expect("JSON");
    assert_eq!(hashes(&page), [hash]);

    // --ui needs the store, and a weak --ui-token is refused before anything starts.
    let out = run({
        let mut cmd = sandbox.ccai();
        cmd.args(["listen", "--no-store", "--ui"]);
        cmd
    })
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run({
        let mut cmd = sandbox.ccai();
        cmd.args([
            "listen",
            "--port",
            "0",
            "--ui",
            "--ui-host",
            "0.0.0.0",
            "--ui-token",
            "x",
        ])
        .arg("--store")
        .arg(&path);
        cmd
    })
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("token must be"), "{}", stderr(&out));
    // The flag `ccai listen` has: it has no --token.
    assert!(
        stderr(&out).contains("leave --ui-token out"),
        "{}",
        stderr(&out)
    );
}

/// The download holds every matching event, newest first, sent a page at a time: more than the
/// 100,000 it once stopped at without saying so.
#[tokio::test(flavor = "multi_thread")]
async fn ui_api_download_holds_every_event() {
    const EVENTS: usize = 100_001;
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    {
        let store = ccai::inbox::SqliteStore::open(
            &path,
            ccai::inbox::SqliteOptions::default().synchronous(ccai::inbox::Synchronous::Normal),
        )
        .expect("open store");
        for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1000) {
            let inserts = chunk.iter().map(|i| {
                let hash = format!("bulk-{i:06}");
                store.insert(NewDelivery::new("1231", hash, "message.sent", &b"{}"[..]))
            });
            for inserted in futures_util::future::join_all(inserts).await {
                inserted.expect("insert");
            }
        }
    }
    let ui = start_ui(&sandbox, &path, &[]);
    let mut response = reqwest::get(format!("{}/api/events.ndjson", ui.base))
        .await
        .expect("download");
    assert_eq!(response.status().as_u16(), 200);
    let (mut lines, mut first, mut last) = (0usize, String::new(), String::new());
    let mut partial = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("a complete download") {
        partial.extend_from_slice(&chunk);
        while let Some(end) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).expect("a JSON line");
            let hash = event["eventHash"].as_str().expect("hash").to_owned();
            if lines == 0 {
                first = hash.clone();
            }
            last = hash;
            lines += 1;
        }
    }
    assert!(partial.is_empty(), "ends with a whole line");
    assert_eq!(lines, EVENTS);
    assert_eq!(
        (first.as_str(), last.as_str()),
        ("bulk-100000", "bulk-000000")
    );
}

#[tokio::test]
async fn ui_api_errors_axum_answers_itself_are_json_too() {
    // The README: errors are {"error": "..."}; a wrong method and a path that is not UTF-8
    // came back as an empty 405 and a plain-text 400.
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let _store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);

    let response = reqwest::Client::new()
        .delete(format!("{}/api/events/{SENT_OLD}", ui.base))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status().as_u16(), 405);
    let allow = response.headers().get("allow").cloned();
    assert!(allow.is_some_and(|a| a.to_str().unwrap_or("").contains("GET")));
    let text = response.text().await.expect("body");
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text:?}"));
    assert!(value["error"].is_string(), "{value}");

    let (status, value) = get(&ui, "/api/events/%FF%FE").await;
    assert_eq!(status, 400, "{value}");
    assert!(value["error"].is_string(), "{value}");
}

/// `ccai ui` on a SQLite store this user may read but not write (root's, 0644, in a folder only
/// root may write; as root the view runs as `nobody`): it says so at start, shows the events,
/// and answers a replay 403 saying why, the store unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn ui_api_a_store_this_user_may_not_write_is_shown_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let sandbox = Sandbox::new();
    let folder = sandbox.path().join("shared");
    std::fs::create_dir(&folder).expect("mkdir");
    let path = folder.join("inbox.db");
    fill(&path).await.close().await;
    let root = common::is_root();
    mode(&path, if root { 0o644 } else { 0o444 });
    mode(&folder, if root { 0o755 } else { 0o555 });
    // The sandbox is 0700: nobody could not reach the store.
    mode(sandbox.path(), 0o755);
    let mut cmd = sandbox.ccai();
    cmd.arg("ui")
        .arg("--store")
        .arg(&path)
        .args(["--port", "0"]);
    let Some(mut cmd) = common::unprivileged(cmd) else {
        return;
    };
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let ui = ui_support::announced(cmd.spawn().expect("spawn ccai ui"));
    assert!(
        ui.banner.iter().any(|line| line
            .starts_with("Opened the store read-only, so replays are refused")
            && line.contains("read-only for this process")
            && !line.contains("unavailable")),
        "{:?}",
        ui.banner
    );

    let (status, stats) = get(&ui, "/api/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        (&stats["received"], &stats["dead"]),
        (&Value::from(5), &Value::from(1))
    );
    let (status, page) = get(&ui, "/api/events").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(hashes(&page).len(), 5, "{page}");
    let (status, detail) = get(&ui, &format!("/api/events/{INCOMING_DEAD}")).await;
    assert_eq!(
        (status, &detail["eventHash"]),
        (200, &Value::from(INCOMING_DEAD)),
        "{detail}"
    );

    let (status, answer) = post(&ui, &format!("/api/events/{INCOMING_DEAD}/replay")).await;
    assert_eq!(status, 403, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("was opened read-only"), "{answer}");
    drop(ui);

    mode(&folder, 0o755);
    let store =
        ccai::inbox::SqliteStore::open(&path, ccai::inbox::SqliteOptions::new().read_only(true))
            .expect("open read-only");
    let event = store.get(INCOMING_DEAD).await.expect("get").expect("kept");
    assert_eq!(event.summary.deliveries[0].status, DeliveryStatus::Dead);
    store.close().await;
}

/// The answers the guard refuses with (a host not the loopback's, no token, an action without its
/// header) carry the headers every other answer does: `nosniff`, the page's CSP, and `no-store`
/// for the API. They went out with none of them.
#[tokio::test]
async fn ui_api_refusals_carry_the_same_headers_as_answers() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let _store = fill(&path).await;
    let http = reqwest::Client::new();
    let check = |what: &str, response: &reqwest::Response, status: u16| {
        assert_eq!(response.status().as_u16(), status, "{what}");
        let headers = response.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert!(
            header("content-security-policy").contains("default-src 'none'"),
            "{what}"
        );
        assert_eq!(header("cache-control"), "no-store", "{what}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    };

    let ui = start_ui(&sandbox, &path, &[]);
    let rebound = http
        .get(format!("{}/api/stats", ui.base))
        .header("host", "attacker.example")
        .send()
        .await
        .expect("GET");
    check("a host not the loopback's", &rebound, 403);
    let action = http
        .post(format!("{}/api/replay?status=dead", ui.base))
        .send()
        .await
        .expect("POST");
    check("an action without its header", &action, 403);
    drop(ui);

    let ui = start_ui(&sandbox, &path, &["--host", "0.0.0.0"]);
    let no_token = http
        .get(format!("{}/api/stats", ui.base))
        .send()
        .await
        .expect("GET");
    check("no token", &no_token, 401);
}

/// The download's address, asked for without the view's token (a link copied into another tab,
/// the context menu's "open in new tab" or "save link as", a script): a 401 whose body a person
/// reads in the tab says what is needed and where to click, not the API's `{"error"}` JSON. It
/// keeps the headers every answer carries, and never shows the token, right or wrong.
#[tokio::test]
async fn ui_api_a_download_without_the_token_says_to_use_the_view_s_button() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let _store = fill(&path).await;
    let token = "the-view-s-own-download-token";
    let ui = start_ui(&sandbox, &path, &["--host", "0.0.0.0", "--token", token]);
    let http = reqwest::Client::new();
    let wrong = "a-wrong-token-given-to-it";
    for (what, request) in [
        (
            "no token",
            http.get(format!("{}/api/events.ndjson?type=message.sent", ui.base)),
        ),
        (
            "a wrong token",
            http.get(format!("{}/api/events.ndjson", ui.base))
                .bearer_auth(wrong),
        ),
        (
            "a wrong ?token=",
            http.get(format!("{}/api/events.ndjson?token={wrong}", ui.base)),
        ),
    ] {
        let response = request.send().await.expect("GET");
        assert_eq!(response.status().as_u16(), 401, "{what}");
        let headers = response.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            header("content-type"),
            "text/plain; charset=utf-8",
            "{what}"
        );
        assert_eq!(header("www-authenticate"), "Bearer", "{what}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert!(
            header("content-security-policy").contains("default-src 'none'"),
            "{what}"
        );
        assert_eq!(header("cache-control"), "no-store", "{what}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
        assert!(header("content-disposition").is_empty(), "{what}");
        let text = response.text().await.expect("body");
        assert!(
            text.starts_with("401 Unauthorized: this download needs the ccai view's token.\n"),
            "{what}: {text}"
        );
        for part in [
            "Use the \"Download NDJSON\" button in the view",
            "the view sends its token with the request",
            "Authorization: Bearer TOKEN",
        ] {
            assert!(text.contains(part), "{what}: {part:?} in {text}");
        }
        assert!(
            !text.contains(token) && !text.contains(wrong),
            "{what}: {text}"
        );
    }

    // The token still downloads; the API's other refusals stay JSON.
    assert_eq!(
        status_of(&format!("{}/api/events.ndjson", ui.base), Some(token)).await,
        200
    );
    let stats = http
        .get(format!("{}/api/stats", ui.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(stats.status().as_u16(), 401);
    let answer: Value = stats.json().await.expect("JSON");
    assert!(answer["error"].is_string(), "{answer}");
}
