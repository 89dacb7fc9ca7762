//! Integrations whose `method` or `integrationType` this crate does not know: read, kept as they
//! came, and sent back verbatim by an update.

use ccai::webhook::{DeliveryMethod, IntegrationMethod, WebhookConfig};
use serde_json::json;

use crate::fake_api::{FakeApi, Reply};
use crate::{client_for, INTEGRATIONS};

/// One odd integration does not hide the others: the list reads whole, the odd values kept.
#[tokio::test]
async fn a_list_with_an_unknown_method_or_type_reads_whole() {
    let api = FakeApi::start(vec![Reply::json(
        200,
        json!([
            {"id": 1, "url": "https://a.example/h", "method": "POST", "integrationType": "ALL"},
            {"id": 2, "url": "https://b.example/h", "method": "PATCH", "integrationType": "SMS"},
            {"id": "3", "url": "https://c.example/h", "method": "put", "integrationType": "ALL"}
        ]),
    )])
    .await;

    let hooks = client_for(&api).webhook().list().await.unwrap();

    assert_eq!(hooks.len(), 3);
    assert_eq!(hooks[0].method, DeliveryMethod::Post);
    assert_eq!(hooks[1].method, IntegrationMethod::Other("PATCH".into()));
    assert_eq!(hooks[1].method.delivery_method(), None);
    assert_eq!(hooks[1].integration_type, "SMS");
    assert_eq!(hooks[2].method, DeliveryMethod::Put);
    // Serialised as received (what `ccai webhooks list --json` prints).
    let shown = serde_json::to_value(&hooks[1]).unwrap();
    assert_eq!(shown["method"], "PATCH");
    assert_eq!(shown["integrationType"], "SMS");
}

/// Without a method in the configuration, an update sends the integration's current method and
/// type back byte for byte, however unfamiliar.
#[tokio::test]
async fn an_update_sends_unknown_values_back_verbatim() {
    let api = FakeApi::start(vec![
        Reply::json(
            200,
            json!({"id": 7, "url": "https://example.com/v1", "method": "PATCH",
                   "integrationType": "SMS"}),
        ),
        Reply::json(
            200,
            json!([{"id": 7, "url": "https://example.com/v2", "method": "PATCH",
                    "integrationType": "SMS"}]),
        ),
    ])
    .await;

    let hook = client_for(&api)
        .webhook()
        .update("7", WebhookConfig::new("https://example.com/v2"))
        .await
        .unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", format!("{INTEGRATIONS}/7").as_str())
    );
    assert_eq!(
        std::str::from_utf8(&requests[1].body).unwrap(),
        r#"[{"id":7,"url":"https://example.com/v2","method":"PATCH","integrationType":"SMS"}]"#
    );
    assert_eq!(hook.method, "PATCH");
}

/// A method given replaces the current one; the integration type is still kept (the API replaces
/// the whole integration, so sending `ALL` would change what it subscribes to).
#[tokio::test]
async fn an_update_with_a_method_keeps_an_unknown_type() {
    let api = FakeApi::start(vec![
        Reply::json(
            200,
            json!({"id": 7, "url": "https://example.com/v1", "method": "PATCH",
                   "integrationType": "SMS"}),
        ),
        Reply::json(
            200,
            json!([{"id": 7, "method": "PUT", "integrationType": "SMS"}]),
        ),
    ])
    .await;

    client_for(&api)
        .webhook()
        .update(
            "7",
            WebhookConfig::new("https://example.com/v2").method(DeliveryMethod::Put),
        )
        .await
        .unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[1].json(),
        json!([{"id": 7, "url": "https://example.com/v2", "method": "PUT", "integrationType": "SMS"}])
    );
}

/// An integration read without a type (absent or `null`) is updated with the default, `ALL`,
/// rather than an empty type.
#[tokio::test]
async fn an_update_of_an_integration_without_a_type_sends_all() {
    for current in [
        json!({"id": 7, "method": "PUT"}),
        json!({"id": 7, "method": "PUT", "integrationType": null}),
    ] {
        let api = FakeApi::start(vec![
            Reply::json(200, current.clone()),
            Reply::json(200, json!([{"id": 7}])),
        ])
        .await;
        client_for(&api)
            .webhook()
            .update("7", WebhookConfig::new("https://example.com/v2"))
            .await
            .unwrap();
        assert_eq!(
            api.requests()[1].json()[0]["integrationType"],
            "ALL",
            "{current}"
        );
    }
}
