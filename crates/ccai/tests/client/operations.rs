//! Each operation: the exact request, and every response shape the API is known to send.

use std::sync::Arc;

use ccai::webhook::{DeliveryMethod, Service, WebhookConfig, WebhookDeleteResponse};
use ccai::{ClientError, HttpClient};
use serde_json::{json, Value};

use crate::assert_standard_headers;
use crate::fake_api::{FakeApi, Recorded, Reply};
use crate::{client_for, INTEGRATIONS};

/// Checks that `request` is `method path`, with the standard headers.
#[track_caller]
fn assert_request(request: &Recorded, method: &str, path: &str) {
    assert_eq!(request.method, method);
    assert_eq!(request.path, path);
    assert_standard_headers(request);
}

#[tokio::test]
async fn register_posts_a_one_element_array_without_secret_key() {
    let api = FakeApi::start(vec![Reply::json(
        200,
        json!([{"id": 77, "url": "https://example.com/hook", "method": "POST",
                "integrationType": "ALL", "secretKey": "generated-by-server"}]),
    )])
    .await;

    let hook = client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/hook"))
        .await
        .unwrap();

    let request = api.only_request();
    assert_request(&request, "POST", INTEGRATIONS);
    assert_eq!(
        request.json(),
        json!([{"url": "https://example.com/hook", "method": "POST", "integrationType": "ALL"}])
    );
    assert_eq!(request.json()[0].get("secretKey"), None);
    assert_eq!(request.json()[0].get("id"), None);

    assert_eq!(hook.id.as_str(), "77");
    assert_eq!(hook.url, "https://example.com/hook");
    assert_eq!(hook.method, "POST");
    assert_eq!(hook.integration_type, "ALL");
    assert_eq!(
        hook.secret_key.as_ref().map(|s| s.expose_secret()),
        Some("generated-by-server")
    );
}

#[tokio::test]
async fn register_with_a_secret_and_a_bare_object_answer() {
    let api = FakeApi::start(vec![Reply::json(
        201,
        json!({"id": "78", "url": "https://example.com/put", "method": "PUT",
               "integrationType": "ALL", "secretKey": "mine"}),
    )])
    .await;

    let hook = client_for(&api)
        .webhook()
        .register(
            WebhookConfig::new("https://example.com/put")
                .secret("mine")
                .method(DeliveryMethod::Put),
        )
        .await
        .unwrap();

    let request = api.only_request();
    assert_eq!(
        request.json(),
        json!([{"url": "https://example.com/put", "method": "PUT",
                "integrationType": "ALL", "secretKey": "mine"}])
    );
    assert_eq!(hook.id.as_str(), "78");
    assert_eq!(hook.id.as_i64(), Some(78));
    assert_eq!(hook.method, "PUT");
}

/// The API replaces the whole integration: an update reads it first, even with a method given,
/// so that what the configuration does not set (the integration type) is kept.
#[tokio::test]
async fn update_posts_the_id_as_an_integer() {
    let api = FakeApi::start(vec![
        Reply::json(
            200,
            json!({"id": 42, "url": "https://example.com/v1", "method": "PUT",
                   "integrationType": "ALL"}),
        ),
        Reply::json(
            200,
            json!([{"id": "42", "url": "https://example.com/v2", "method": "POST",
                    "integrationType": "ALL", "secretKey": null}]),
        ),
    ])
    .await;

    let hook = client_for(&api)
        .webhook()
        .update(
            "42",
            WebhookConfig::new("https://example.com/v2").method(DeliveryMethod::Post),
        )
        .await
        .unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_request(&requests[0], "GET", &format!("{INTEGRATIONS}/42"));
    assert_request(&requests[1], "POST", INTEGRATIONS);
    let body = requests[1].json();
    assert_eq!(
        body,
        json!([{"id": 42, "url": "https://example.com/v2", "method": "POST", "integrationType": "ALL"}])
    );
    assert!(body[0]["id"].is_i64(), "id must be a JSON integer: {body}");
    assert_eq!(hook.id.as_str(), "42");
    assert_eq!(hook.secret_key, None);
}

#[tokio::test]
async fn update_without_a_method_keeps_the_integrations_current_one() {
    let api = FakeApi::start(vec![
        Reply::json(
            200,
            json!({"id": 42, "url": "https://example.com/v1", "method": "PUT"}),
        ),
        Reply::json(
            200,
            json!([{"id": 42, "url": "https://example.com/v2", "method": "PUT"}]),
        ),
    ])
    .await;

    let hook = client_for(&api)
        .webhook()
        .update("42", WebhookConfig::new("https://example.com/v2"))
        .await
        .unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, format!("{INTEGRATIONS}/42"));
    assert_eq!(requests[1].method, "POST");
    assert_eq!(
        requests[1].json(),
        json!([{"id": 42, "url": "https://example.com/v2", "method": "PUT", "integrationType": "ALL"}])
    );
    assert_eq!(hook.method, DeliveryMethod::Put);
}

#[tokio::test]
async fn register_without_a_method_delivers_by_post() {
    let api = FakeApi::start(vec![Reply::json(200, json!([{"id": 1}]))]).await;
    client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/hook"))
        .await
        .unwrap();
    assert_eq!(api.only_request().json()[0]["method"], "POST");
}

#[tokio::test]
async fn update_with_an_id_that_is_not_an_integer_sends_nothing() {
    let api = FakeApi::start(vec![Reply::json(200, json!([{"id": 1}]))]).await;
    let client = client_for(&api);

    for bad in ["abc", "", "0", "-3", "4.5", "12abc"] {
        let err = client
            .webhook()
            .update(bad, WebhookConfig::new("https://example.com/hook"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::InvalidId { id, .. } if id == bad),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("numeric id"), "{err}");
    }
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn an_empty_url_sends_nothing() {
    let api = FakeApi::start(vec![Reply::json(200, json!([{"id": 1}]))]).await;
    let err = client_for(&api)
        .webhook()
        .register(WebhookConfig::new("  "))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::MissingWebhookUrl), "{err:?}");
    assert!(api.requests().is_empty());
}

/// An update without a method reads the integration's current one first: an empty URL is refused
/// before that read too ("nothing was sent").
#[tokio::test]
async fn an_update_with_an_empty_url_sends_nothing() {
    let api = FakeApi::start(vec![Reply::json(200, json!({"id": 5, "method": "PUT"}))]).await;
    let err = client_for(&api)
        .webhook()
        .update("5", WebhookConfig::new(""))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::MissingWebhookUrl), "{err:?}");
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}

#[tokio::test]
async fn list_gets_integrations_with_numeric_and_string_ids() {
    let api = FakeApi::start(vec![Reply::json(
        200,
        json!([
            {"id": 1, "url": "https://a.example/h", "method": "POST", "integrationType": "ALL",
             "secretKey": "s1"},
            {"id": "2", "url": "https://b.example/h", "method": "PUT", "integrationType": "ALL",
             "secretKey": null},
            {"id": 3, "url": "https://c.example/h", "method": "POST", "integrationType": "ALL"},
            {"id": 4, "url": null, "method": null, "integrationType": null}
        ]),
    )])
    .await;

    let hooks = client_for(&api).webhook().list().await.unwrap();

    let request = api.only_request();
    assert_request(&request, "GET", INTEGRATIONS);
    assert!(request.body.is_empty());

    let ids: Vec<_> = hooks.iter().map(|h| h.id.as_i64()).collect();
    assert_eq!(ids, [Some(1), Some(2), Some(3), Some(4)]);
    // Nulls read as empty or default rather than failing the whole list.
    assert_eq!(
        (hooks[3].url.as_str(), hooks[3].method.as_str()),
        ("", "POST")
    );
    assert_eq!(hooks[1].method, "PUT");
    assert_eq!(
        hooks[0].secret_key.as_ref().map(|s| s.expose_secret()),
        Some("s1")
    );
    assert_eq!(hooks[1].secret_key, None);
    assert_eq!(hooks[2].secret_key, None);
}

#[tokio::test]
async fn list_of_none() {
    let api = FakeApi::start(vec![Reply::json(200, json!([]))]).await;
    assert!(client_for(&api).webhook().list().await.unwrap().is_empty());
}

#[tokio::test]
async fn get_one() {
    let api = FakeApi::start(vec![Reply::json(
        200,
        json!({"id": 42, "url": "https://example.com/hook", "method": "POST", "integrationType": "ALL"}),
    )])
    .await;

    let hook = client_for(&api).webhook().get("42").await.unwrap();

    let request = api.only_request();
    assert_request(&request, "GET", &format!("{INTEGRATIONS}/42"));
    assert_eq!(hook.id.as_str(), "42");
    assert_eq!(hook.url, "https://example.com/hook");
}

#[tokio::test]
async fn ids_cannot_escape_their_path_segment() {
    let api = FakeApi::start(vec![Reply::json(200, json!({"id": 1}))]).await;
    client_for(&api).webhook().get("1/../../x?y").await.unwrap();
    assert_eq!(
        api.only_request().path,
        format!("{INTEGRATIONS}/1%2F..%2F..%2Fx%3Fy")
    );
}

async fn delete_answered_with(reply: Reply) -> (WebhookDeleteResponse, Recorded) {
    let api = FakeApi::start(vec![reply]).await;
    let deleted = client_for(&api).webhook().delete("42").await.unwrap();
    (deleted, api.only_request())
}

#[tokio::test]
async fn delete_answered_with_success_and_message() {
    let (deleted, request) = delete_answered_with(Reply::json(
        200,
        json!({"success": true, "message": "Integration deleted"}),
    ))
    .await;
    assert_request(&request, "DELETE", &format!("{INTEGRATIONS}/42"));
    assert!(request.body.is_empty());
    assert!(deleted.success);
    assert_eq!(deleted.message, "Integration deleted");
}

#[tokio::test]
async fn delete_answered_with_failure_is_returned_as_is() {
    let (deleted, _) = delete_answered_with(Reply::json(
        200,
        json!({"success": false, "message": "still in use"}),
    ))
    .await;
    assert!(!deleted.success);
    assert_eq!(deleted.message, "still in use");
}

#[tokio::test]
async fn delete_answered_with_the_deleted_object() {
    let (deleted, _) = delete_answered_with(Reply::json(
        200,
        json!({"id": 42, "url": "https://example.com/hook", "method": "POST"}),
    ))
    .await;
    assert!(deleted.success);
    assert!(deleted.message.contains("42"), "{deleted:?}");
}

#[tokio::test]
async fn delete_answered_with_204_and_no_body() {
    let (deleted, request) = delete_answered_with(Reply::empty(204)).await;
    assert_eq!(request.method, "DELETE");
    assert!(deleted.success);
}

/// Records requests and answers one canned value: a custom transport.
struct Recorder {
    answer: Value,
    seen: std::sync::Mutex<Vec<(ccai::api::Method, String, Option<Value>)>>,
}

impl HttpClient for Recorder {
    fn request<'a>(
        &'a self,
        method: ccai::api::Method,
        path: &'a str,
        body: Option<Box<serde_json::value::RawValue>>,
    ) -> ccai::api::BoxFuture<'a, Result<Option<Value>, ClientError>> {
        let body = body.map(|raw| serde_json::from_str(raw.get()).expect("JSON body"));
        self.seen
            .lock()
            .unwrap()
            .push((method, path.to_owned(), body));
        let answer = self.answer.clone();
        Box::pin(async move { Ok(Some(answer)) })
    }

    fn client_id(&self) -> &str {
        "acct/9"
    }
}

#[tokio::test]
async fn the_service_works_over_any_transport() {
    let recorder = Arc::new(Recorder {
        answer: json!([{"id": 5, "url": "https://example.com/hook"}]),
        seen: Default::default(),
    });
    let service = Service::from_arc(recorder.clone());
    assert_eq!(service.client_id(), "acct/9");

    let hook = service
        .register(WebhookConfig::new("https://example.com/hook").secret("s"))
        .await
        .unwrap();
    assert_eq!(hook.id.as_i64(), Some(5));

    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, ccai::api::Method::POST);
    // The client id is encoded as one path segment.
    assert_eq!(seen[0].1, "/v1/client/acct%2F9/integration");
    assert_eq!(
        seen[0].2,
        Some(json!([{"url": "https://example.com/hook", "method": "POST",
                     "integrationType": "ALL", "secretKey": "s"}]))
    );
}

#[tokio::test]
async fn a_client_is_a_transport_and_its_futures_are_send() {
    let api = FakeApi::start(vec![Reply::json(200, json!([{"id": 1}]))]).await;
    let client = client_for(&api);

    // `Client` implements `HttpClient`, so it can back a service of its own, also as a trait object.
    let shared: Arc<dyn HttpClient> = Arc::new(client.clone());
    assert_eq!(shared.client_id(), "1231");
    let service = Service::new(shared);

    let listed = tokio::spawn(async move { service.list().await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(api.only_request().path, INTEGRATIONS);
}

#[test]
fn the_public_types_can_cross_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<ccai::Client>();
    shareable::<ccai::Config>();
    shareable::<Service>();
    shareable::<ccai::webhook::Client>();
    shareable::<ClientError>();
    shareable::<Arc<dyn HttpClient>>();
    // Errors work with `?` into boxed errors (and so anyhow and friends).
    let boxed: Box<dyn std::error::Error + Send + Sync> = ClientError::MissingApiKey.into();
    assert!(boxed.to_string().contains("CCAI_API_KEY"));
}

#[tokio::test]
async fn request_bodies_keep_the_sdks_field_order() {
    // docs/protocol.md §1: id, url, method, integrationType, secretKey, in this order, byte for byte.
    let api = FakeApi::start(vec![Reply::json(200, json!([{"id": 5, "url": "u"}]))]).await;
    client_for(&api)
        .webhook()
        .update(
            "5",
            WebhookConfig::new("https://example.com/hook")
                .secret("s")
                .method(DeliveryMethod::Post),
        )
        .await
        .unwrap();
    let requests = api.requests();
    assert_eq!(requests.len(), 2, "the read, then the update: {requests:?}");
    assert_eq!(
        std::str::from_utf8(&requests[1].body).unwrap(),
        r#"[{"id":5,"url":"https://example.com/hook","method":"POST","integrationType":"ALL","secretKey":"s"}]"#
    );
}

/// An empty secret is no secret (as in the official SDKs): `secretKey` is left out, so that the
/// server generates one on register and keeps the current one on update, rather than being sent
/// `""`, a secret no verifier accepts.
#[tokio::test]
async fn an_empty_secret_is_left_out_of_register_and_update() {
    let api = FakeApi::start(vec![Reply::json(200, json!([{"id": 5}]))]).await;
    let webhooks = client_for(&api).webhook().clone();
    webhooks
        .register(WebhookConfig::new("https://example.com/hook").secret(""))
        .await
        .unwrap();
    webhooks
        .update(
            "5",
            WebhookConfig::new("https://example.com/hook")
                .secret("")
                .method(DeliveryMethod::Post),
        )
        .await
        .unwrap();
    // Register, then the update's read of the integration and the update itself.
    let requests: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|request| request.method == "POST")
        .collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in &requests {
        assert_eq!(
            request.json()[0].get("secretKey"),
            None,
            "{}",
            String::from_utf8_lossy(&request.body)
        );
    }
}
