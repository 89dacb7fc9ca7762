//! A list with integrations the client cannot read (a `method` that is not a string, no `id`, a
//! field of another type): the others are returned, and the unreadable ones reported, never
//! with their secrets in a message or `Debug`.

use ccai::webhook::{self, WebhookList};
use ccai::ClientError;
use serde_json::{json, Value};

use crate::fake_api::{FakeApi, Reply};
use crate::{client_for, fast_retry, API_KEY};

/// Readable integrations around ones that are not, each unreadable one holding a secret.
fn mixed_answer() -> Value {
    json!([
        {"id": 1, "url": "https://a.example/h", "method": "POST", "integrationType": "ALL",
         "secretKey": "whsec-readable-1"},
        {"id": 2, "url": "https://b.example/h", "method": 5, "integrationType": "ALL",
         "secretKey": "whsec-method-number"},
        {"url": "https://c.example/h", "method": "POST", "secretKey": "whsec-no-id"},
        {"id": {"n": 4}, "url": "https://d.example/h", "secret": "whsec-id-object"},
        {"id": "5", "url": "https://e.example/h", "method": null},
        {"id": 6, "url": "https://f.example/h", "method": {"verb": "POST"}},
        {"id": 7, "url": ["https://g.example/h"], "method": "PUT"},
        {"id": 8, "url": "https://h.example/h", "secretKey": 918273645546372819_u64},
        "whsec-a-bare-string",
        {"id": 10, "url": "https://j.example/h", "method": "PATCH", "integrationType": "SMS"}
    ])
}

/// What every unreadable entry of [`mixed_answer`] must be reported as: its position, its id
/// when that could be read, and words the reason must hold.
const EXPECTED: [(usize, Option<&str>, &[&str]); 7] = [
    (1, Some("2"), &["`method`", "a number"]),
    (2, None, &["no `id`"]),
    (3, None, &["`id`", "an object"]),
    (5, Some("6"), &["`method`", "an object"]),
    (6, Some("7"), &["`url`", "an array"]),
    (7, Some("8"), &["`secretKey`", "a number"]),
    (8, None, &["a string", "not an integration"]),
];

const SECRETS: [&str; 5] = [
    "whsec-method-number",
    "whsec-no-id",
    "whsec-id-object",
    "918273645546372819",
    "whsec-a-bare-string",
];

fn assert_reported(list: &WebhookList, answer: &Value) {
    let read: Vec<&str> = list.webhooks.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(read, ["1", "5", "10"], "{list:?}");
    assert_eq!(list.webhooks[1].method, "POST", "a null method is POST");
    assert_eq!(
        list.webhooks[2].method, "PATCH",
        "an unknown method is kept"
    );
    assert!(!list.is_complete());
    assert_eq!(list.unreadable.len(), EXPECTED.len(), "{list:?}");
    for (entry, (index, id, words)) in list.unreadable.iter().zip(EXPECTED) {
        assert_eq!(entry.index, index, "{entry:?}");
        assert_eq!(entry.id.as_ref().map(|id| id.as_str()), id, "{entry:?}");
        for word in words {
            assert!(entry.reason.contains(word), "{index}: {:?}", entry.reason);
        }
        assert!(!entry.reason.contains('\n'), "{:?}", entry.reason);
        // The entry as the API sent it, for a caller that wants to read it its own way.
        assert_eq!(entry.raw(), &answer[index], "{index}");
    }
    // Neither the reasons nor `Debug` repeat a secret of an entry that could not be read.
    let shown = format!(
        "{list:?} {}",
        list.unreadable
            .iter()
            .map(|u| u.reason.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for secret in SECRETS.iter().chain(&["whsec-readable-1", API_KEY]) {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
}

/// One odd integration used to fail the whole list (`ClientError::Decode`): now every readable
/// one is returned, and each unreadable one says where it was and why.
#[tokio::test]
async fn a_list_returns_what_it_can_read_and_reports_the_rest() {
    let answer = mixed_answer();
    let api = FakeApi::start(vec![Reply::json(200, answer.clone())]).await;
    let webhooks = client_for(&api).webhook().clone();

    let list = webhooks.list_with_unreadable().await.unwrap();
    assert_reported(&list, &answer);

    // `list` keeps its signature: the readable ones (the others go to a warning in the log).
    let read = webhooks.list().await.unwrap();
    assert_eq!(read, list.webhooks);
    assert_eq!(api.requests().len(), 2);
}

/// The older `/webhooks` shape lists the same way.
#[tokio::test]
async fn the_legacy_client_lists_what_it_can_read() {
    let answer = mixed_answer();
    let api = FakeApi::start(vec![Reply::json(200, answer.clone())]).await;
    let client = webhook::Client::with_options(
        &api.base_url,
        API_KEY,
        std::time::Duration::from_secs(30),
        fast_retry(),
    )
    .unwrap();

    let list = client.list_with_unreadable().await.unwrap();
    assert_reported(&list, &answer);
    assert_eq!(client.list().await.unwrap(), list.webhooks);
}

/// A list of only unreadable integrations is not an error either: it reads as none read, all
/// reported. A bare object that is not an integration is still not a list of one: the API
/// answered something else (an error wrapper, say), which `list` does not turn into "none".
#[tokio::test]
async fn only_unreadable_entries_are_all_reported_but_a_stray_object_is_an_error() {
    let api = FakeApi::start(vec![
        Reply::json(
            200,
            json!([{"url": "https://a.example/h"}, {"id": 2, "method": 1}]),
        ),
        Reply::json(200, json!({"message": "something else", "secretKey": 5})),
    ])
    .await;
    let webhooks = client_for(&api).webhook().clone();

    let list = webhooks.list_with_unreadable().await.unwrap();
    assert!(list.webhooks.is_empty(), "{list:?}");
    assert_eq!(list.unreadable.len(), 2, "{list:?}");
    assert_eq!(list.unreadable[1].id.as_ref().unwrap().as_str(), "2");

    let err = webhooks.list_with_unreadable().await.unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("no `id`"), "{err}");
}
