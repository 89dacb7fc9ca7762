//! `ccai ui`'s JSON API on an inbox two accounts share, where both stored an event under the same
//! hash: each is an event of its own, listed, shown and acted on by `?clientId=`; without it such
//! a hash is a 409 naming both accounts, never the newest's event. And `ccai ui --client-id`,
//! which narrows the view to one account. The real binary over a real SQLite inbox.

mod common;
mod ui_support;

use std::process::Stdio;

use ccai::inbox::{DeliveryStatus, SqliteStore, Store};
use common::{run, stderr, Sandbox};
use serde_json::{json, Value};
use ui_support::{
    announced, fill_two_accounts, get, inbox_path, post, shared_body, start_ui, CLIENT,
    CLIENT_ONLY, OTHER_CLIENT, SHARED,
};

/// The (status, attempts) of `client`'s only delivery of `hash`.
async fn state_of(store: &SqliteStore, client: &str, hash: &str) -> (DeliveryStatus, u32) {
    let event = store
        .get_for(client, hash)
        .await
        .expect("get")
        .expect("stored");
    let delivery = &event.summary.deliveries[0];
    (delivery.status, delivery.attempts)
}

/// The (clientId, eventHash) of each event of a list.
fn listed(page: &Value) -> Vec<(String, String)> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["clientId"].as_str().expect("clientId").to_owned(),
                e["eventHash"].as_str().expect("eventHash").to_owned(),
            )
        })
        .collect()
}

fn pair(client: &str, hash: &str) -> (String, String) {
    (client.to_owned(), hash.to_owned())
}

#[tokio::test]
async fn ui_api_two_accounts_under_one_hash_are_two_events_picked_by_client_id() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill_two_accounts(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);

    // Both accounts' events are listed, newest first.
    let (status, page) = get(&ui, "/api/events").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        listed(&page),
        [
            pair(OTHER_CLIENT, SHARED),
            pair(CLIENT, SHARED),
            pair(CLIENT, CLIENT_ONLY)
        ]
    );

    // The details of each account's own event: its body, its status.
    for (client, status) in [(CLIENT, "delivered"), (OTHER_CLIENT, "dead")] {
        let (code, event) = get(&ui, &format!("/api/events/{SHARED}?clientId={client}")).await;
        assert_eq!(code, 200, "{event}");
        assert_eq!(event["clientId"], client);
        assert_eq!(event["status"], status, "{event}");
        let body = String::from_utf8(shared_body(client)).expect("UTF-8");
        assert_eq!(event["body"], body.as_str());
    }
    // Without the account, the hash is ambiguous: a 409 naming both, for a page to pick from.
    let (status, answer) = get(&ui, &format!("/api/events/{SHARED}")).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["clientIds"], json!([CLIENT, OTHER_CLIENT]));
    let error = answer["error"].as_str().expect("error");
    assert!(
        error.contains(CLIENT) && error.contains(OTHER_CLIENT) && error.contains("clientId"),
        "{error}"
    );
    // An account that holds no such event: a 404 saying which do.
    let (status, answer) = get(&ui, &format!("/api/events/{SHARED}?clientId=9999")).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["clientIds"], json!([CLIENT, OTHER_CLIENT]));
    let (status, answer) = get(
        &ui,
        &format!("/api/events/{CLIENT_ONLY}?clientId={OTHER_CLIENT}"),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["clientIds"], json!([CLIENT]));
    // A hash one account holds needs no account (the links of before keep working).
    let (status, event) = get(&ui, &format!("/api/events/{CLIENT_ONLY}")).await;
    assert_eq!(
        (status, &event["clientId"]),
        (200, &json!(CLIENT)),
        "{event}"
    );
    let (status, _) = get(&ui, "/api/events/nope?clientId=1231").await;
    assert_eq!(status, 404);

    // Actions without the account are refused, and change nothing.
    for action in ["replay", "retry"] {
        let (status, answer) = post(&ui, &format!("/api/events/{SHARED}/{action}")).await;
        assert_eq!(status, 409, "{action}: {answer}");
        assert_eq!(
            answer["clientIds"],
            json!([CLIENT, OTHER_CLIENT]),
            "{action}"
        );
    }
    assert_eq!(
        state_of(&store, CLIENT, SHARED).await,
        (DeliveryStatus::Delivered, 1)
    );
    assert_eq!(
        state_of(&store, OTHER_CLIENT, SHARED).await,
        (DeliveryStatus::Dead, 1)
    );

    // A replay of one account's event leaves the other's as it was (dead: a replay of it would
    // have made it pending).
    let (status, answer) = post(
        &ui,
        &format!("/api/events/{SHARED}/replay?clientId={CLIENT}"),
    )
    .await;
    assert_eq!((status, &answer["replayed"]), (200, &json!(1)), "{answer}");
    assert_eq!(
        state_of(&store, CLIENT, SHARED).await,
        (DeliveryStatus::Pending, 0),
        "due again, its retries started over"
    );
    assert_eq!(
        state_of(&store, OTHER_CLIENT, SHARED).await,
        (DeliveryStatus::Dead, 1)
    );

    // Retry now looks at the account's own event: not dead for one, dead for the other.
    let (status, answer) = post(
        &ui,
        &format!("/api/events/{SHARED}/retry?clientId={CLIENT}"),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("not dead")),
        "{answer}"
    );
    assert_eq!(
        state_of(&store, OTHER_CLIENT, SHARED).await,
        (DeliveryStatus::Dead, 1)
    );
    let (status, answer) = post(
        &ui,
        &format!("/api/events/{SHARED}/retry?clientId={OTHER_CLIENT}"),
    )
    .await;
    assert_eq!((status, &answer["requeued"]), (200, &json!(1)), "{answer}");
    assert_eq!(
        state_of(&store, OTHER_CLIENT, SHARED).await,
        (DeliveryStatus::Pending, 0),
        "its schedule started over"
    );
    assert_eq!(
        state_of(&store, CLIENT, SHARED).await,
        (DeliveryStatus::Pending, 0)
    );

    // The view of every account says so to the page.
    let (_, stats) = get(&ui, "/api/stats").await;
    assert_eq!(stats["clientId"], Value::Null, "{stats}");
}

#[tokio::test]
async fn ui_client_id_narrows_the_view_to_one_account() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let store = fill_two_accounts(&path).await;
    let ui = start_ui(&sandbox, &path, &["--client-id", OTHER_CLIENT]);
    assert!(
        ui.banner
            .iter()
            .any(|line| line.contains("Showing client id 4567's events only")),
        "{:?}",
        ui.banner
    );

    // The list and the download: that account's events only.
    let (_, page) = get(&ui, "/api/events").await;
    assert_eq!(listed(&page), [pair(OTHER_CLIENT, SHARED)]);
    let text = reqwest::get(format!("{}/api/events.ndjson", ui.base))
        .await
        .expect("download")
        .text()
        .await
        .expect("text");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["clientId"], OTHER_CLIENT);

    // A hash is that account's without `?clientId=`, though another account holds it too; the
    // other account's events are not shown.
    let (status, event) = get(&ui, &format!("/api/events/{SHARED}")).await;
    assert_eq!(
        (status, &event["clientId"]),
        (200, &json!(OTHER_CLIENT)),
        "{event}"
    );
    let (status, answer) = get(&ui, &format!("/api/events/{SHARED}?clientId={CLIENT}")).await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = get(&ui, &format!("/api/events/{CLIENT_ONLY}")).await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = post(&ui, &format!("/api/events/{CLIENT_ONLY}/replay")).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        state_of(&store, CLIENT, CLIENT_ONLY).await,
        (DeliveryStatus::Pending, 0)
    );

    // Actions: that account's event alone.
    let (status, answer) = post(&ui, &format!("/api/events/{SHARED}/retry")).await;
    assert_eq!((status, &answer["requeued"]), (200, &json!(1)), "{answer}");
    assert_eq!(
        state_of(&store, OTHER_CLIENT, SHARED).await,
        (DeliveryStatus::Pending, 0)
    );
    assert_eq!(
        state_of(&store, CLIENT, SHARED).await,
        (DeliveryStatus::Delivered, 1)
    );

    // The page is told whose view it is; the counters are every account's.
    let (_, stats) = get(&ui, "/api/stats").await;
    assert_eq!(stats["clientId"], OTHER_CLIENT);
    assert_eq!(stats["received"], 3);
}

#[tokio::test]
async fn ui_client_id_comes_from_the_flag_and_an_unknown_one_is_told() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let _store = fill_two_accounts(&path).await;

    // CCAI_CLIENT_ID (the account that signs) does not narrow the view, as for `ccai events`.
    let mut cmd = sandbox.ccai();
    cmd.env("CCAI_CLIENT_ID", OTHER_CLIENT)
        .arg("ui")
        .arg("--store")
        .arg(&path)
        .args(["--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let ui = announced(cmd.spawn().expect("spawn ccai ui"));
    let (_, page) = get(&ui, "/api/events").await;
    assert_eq!(listed(&page).len(), 3, "{page}");
    drop(ui);

    // A client id no event is stored for: served (events may yet arrive), and said.
    let ui = start_ui(&sandbox, &path, &["--client-id", "9999"]);
    assert!(
        ui.banner
            .iter()
            .any(|line| line.contains("No event is stored for client id 9999 yet")),
        "{:?}",
        ui.banner
    );
    drop(ui);

    let mut cmd = sandbox.ccai();
    cmd.arg("ui")
        .arg("--store")
        .arg(&path)
        .args(["--port", "0", "--client-id", ""]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--client-id is empty"),
        "{}",
        stderr(&out)
    );
}
