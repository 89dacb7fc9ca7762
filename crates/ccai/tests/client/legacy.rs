//! The standalone client for the older `/webhooks` REST shape.

use std::time::Duration;

use ccai::api::RetryPolicy;
use ccai::webhook::{self, DeliveryMethod, WebhookConfig, WebhookEventType};
use ccai::ClientError;
use serde_json::json;

use crate::assert_standard_headers;
use crate::fake_api::{FakeApi, Reply};
use crate::{client_for, fast_retry, API_KEY};

fn legacy_client(api: &FakeApi) -> webhook::Client {
    webhook::Client::with_options(
        &api.base_url,
        API_KEY,
        Duration::from_secs(30),
        fast_retry(),
    )
    .unwrap()
}

#[tokio::test]
async fn register_posts_url_events_and_secret() {
    let api = FakeApi::start(vec![Reply::json(
        201,
        json!({"id": 11, "url": "https://example.com/hook", "method": "POST",
               "integrationType": "ALL", "secretKey": "s3"}),
    )])
    .await;

    let hook = legacy_client(&api)
        .register(
            WebhookConfig::new("https://example.com/hook")
                .events([
                    WebhookEventType::MessageSent,
                    WebhookEventType::MessageIncoming,
                ])
                .secret("s3"),
        )
        .await
        .unwrap();

    let request = api.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/webhooks");
    assert_standard_headers(&request);
    assert_eq!(
        request.json(),
        json!({"url": "https://example.com/hook",
               "events": ["message.sent", "message.incoming"],
               "secretKey": "s3"})
    );
    assert_eq!(hook.id.as_str(), "11");
}

/// As documented on `WebhookConfig::method` and `WebhookConfig::events`: each client sends the
/// fields its API has, and leaves the other one out.
#[tokio::test]
async fn each_client_sends_only_the_field_its_api_has() {
    let config = WebhookConfig::new("https://example.com/hook")
        .events([WebhookEventType::MessageSent])
        .method(DeliveryMethod::Put);

    let api = FakeApi::start(vec![Reply::json(201, json!({"id": 11, "url": "u"}))]).await;
    legacy_client(&api).register(config.clone()).await.unwrap();
    assert_eq!(
        api.only_request().json(),
        json!({"url": "https://example.com/hook", "events": ["message.sent"]}),
        "the legacy API's body has no method"
    );

    let api = FakeApi::start(vec![Reply::json(200, json!([{"id": 12, "url": "u"}]))]).await;
    client_for(&api).webhook().register(config).await.unwrap();
    assert_eq!(
        api.only_request().json(),
        json!([{"url": "https://example.com/hook", "method": "PUT", "integrationType": "ALL"}]),
        "the integrations API's body has no event list"
    );
}

#[tokio::test]
async fn update_puts_to_the_item_without_a_secret_key() {
    let api = FakeApi::start(vec![Reply::json(
        200,
        json!({"id": "11", "url": "https://example.com/v2"}),
    )])
    .await;

    let hook = legacy_client(&api)
        .update("11", WebhookConfig::new("https://example.com/v2"))
        .await
        .unwrap();

    let request = api.only_request();
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, "/api/webhooks/11");
    assert_standard_headers(&request);
    assert_eq!(
        request.json(),
        json!({"url": "https://example.com/v2", "events": []})
    );
    assert_eq!(hook.url, "https://example.com/v2");
}

#[tokio::test]
async fn list_get_and_delete() {
    let api = FakeApi::start(vec![
        Reply::json(
            200,
            json!([{"id": 1, "url": "https://a"}, {"id": "2", "url": "https://b"}]),
        ),
        Reply::json(200, json!({"id": 2, "url": "https://b"})),
        Reply::json(200, json!({"success": true, "message": "Webhook deleted"})),
    ])
    .await;
    let client = legacy_client(&api);

    let hooks = client.list().await.unwrap();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[1].id.as_i64(), Some(2));
    let hook = client.get("2").await.unwrap();
    assert_eq!(hook.url, "https://b");
    let deleted = client.delete("2").await.unwrap();
    assert!(deleted.success);
    assert_eq!(deleted.message, "Webhook deleted");

    let requests = api.requests();
    let seen: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/api/webhooks"),
            ("GET", "/api/webhooks/2"),
            ("DELETE", "/api/webhooks/2")
        ]
    );
    for request in &requests {
        assert_standard_headers(request);
        assert!(request.body.is_empty());
    }
}

#[tokio::test]
async fn errors_and_retries_work_as_for_the_main_client() {
    let api = FakeApi::start(vec![Reply::text(500, "boom")]).await;
    let client = legacy_client(&api);
    let err = client
        .register(WebhookConfig::new("https://example.com/h"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(api.requests().len(), 1, "a POST is not retried after a 500");

    let err = client.list().await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(api.requests().len(), 4, "a GET is tried three times");
}

#[test]
fn construction_errors() {
    assert!(matches!(
        webhook::Client::new("https://x/api", ""),
        Err(ClientError::MissingApiKey)
    ));
    assert!(matches!(
        webhook::Client::new("not a url", API_KEY),
        Err(ClientError::InvalidBaseUrl { .. })
    ));
    let client = webhook::Client::with_options(
        "https://x/api/",
        API_KEY,
        Duration::from_secs(1),
        RetryPolicy::none(),
    )
    .unwrap();
    assert_eq!(client.base_url(), "https://x/api");
}

/// An empty secret is no secret: `secretKey` is left out rather than sent as `""`.
#[tokio::test]
async fn an_empty_secret_is_left_out() {
    let api = FakeApi::start(vec![Reply::json(200, json!({"id": "11"}))]).await;
    let client = legacy_client(&api);
    client
        .register(WebhookConfig::new("https://example.com/v1").secret(""))
        .await
        .unwrap();
    client
        .update(
            "11",
            WebhookConfig::new("https://example.com/v2").secret(""),
        )
        .await
        .unwrap();
    for request in api.requests() {
        assert_eq!(request.json().get("secretKey"), None, "{request:?}");
    }
}
