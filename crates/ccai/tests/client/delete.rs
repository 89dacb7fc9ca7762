//! A delete's answers: any 2xx is a delete done, whatever its body, and a retry answered 404
//! after an attempt with an unknown outcome is a delete most likely done by that attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ccai::api::{Method, RetryPolicy, WebhookDeleteResponse};
use ccai::{webhook, Client, ClientError, Config};
use serde_json::json;

use crate::fake_api::{FakeApi, Reply};
use crate::{client_for, fast_retry, API_KEY, CLIENT_ID, INTEGRATIONS};

/// A client whose attempts time out after 200 ms.
fn impatient_client(base_url: &str) -> Client {
    Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(base_url)
            .timeout(Duration::from_millis(200))
            .retry(fast_retry()),
    )
    .expect("valid config")
}

fn assert_gone_on_retry(deleted: &WebhookDeleteResponse) {
    assert!(deleted.success, "{deleted:?}");
    assert!(deleted.not_found_on_retry, "{deleted:?}");
    assert!(
        deleted
            .message
            .contains("integration 42 not found when the delete was retried"),
        "{deleted:?}"
    );
    assert!(deleted.message.contains("most likely"), "{deleted:?}");
}

/// Every request was the same DELETE.
fn assert_all_deletes_of_42(api: &FakeApi, count: usize) {
    let requests = api.requests();
    assert_eq!(requests.len(), count, "{requests:?}");
    for request in requests {
        assert_eq!(request.method, "DELETE");
        assert_eq!(request.path, format!("{INTEGRATIONS}/42"));
    }
}

#[tokio::test]
async fn a_retry_answered_404_after_a_timeout_is_gone() {
    let api = FakeApi::start(vec![
        Reply::Hang,
        Reply::json(404, json!({"message": "Not Found"})),
    ])
    .await;
    let deleted = impatient_client(&api.base_url)
        .webhook()
        .delete("42")
        .await
        .expect("gone after the timed-out attempt");
    assert_gone_on_retry(&deleted);
    assert_all_deletes_of_42(&api, 2);
}

#[tokio::test]
async fn a_retry_answered_404_after_server_errors_is_gone() {
    // Two retries: the 404 answers the third attempt, after a 502 and a 504.
    let api = FakeApi::start(vec![
        Reply::text(502, "bad gateway"),
        Reply::text(504, "gateway timeout"),
        Reply::empty(404),
    ])
    .await;
    let deleted = client_for(&api).webhook().delete("42").await.unwrap();
    assert_gone_on_retry(&deleted);
    assert_all_deletes_of_42(&api, 3);
}

/// The first attempt's connection is reset once the request is in; later connections reach the
/// fake API, which answers 404.
#[tokio::test]
async fn a_retry_answered_404_after_a_reset_connection_is_gone() {
    let api = FakeApi::start(vec![Reply::empty(404)]).await;
    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_url = format!("http://{}/api", front.local_addr().unwrap());
    let behind = api
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches("/api")
        .to_owned();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = front.accept().await {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                // Wait for the request, then reset (RST): the client cannot know what happened.
                let mut request = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut request).await;
                let _ = stream.set_zero_linger();
                drop(stream);
                continue;
            }
            let behind = behind.clone();
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(behind).await {
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
                }
            });
        }
    });

    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&front_url)
            .retry(fast_retry()),
    )
    .unwrap();
    let deleted = client.webhook().delete("42").await.unwrap();

    assert_gone_on_retry(&deleted);
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "reset, then retried");
    assert_all_deletes_of_42(&api, 1);
}

#[tokio::test]
async fn a_404_to_the_first_attempt_is_an_error() {
    let api = FakeApi::start(vec![Reply::json(404, json!({"message": "Not Found"}))]).await;
    let err = client_for(&api).webhook().delete("42").await.unwrap_err();
    let ClientError::Api(api_error) = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(api_error.status, 404);
    assert_eq!(api_error.method, Method::DELETE);
    assert!(!api_error.after_unknown_outcome);
    assert!(err.to_string().contains("check the webhook id"), "{err}");
    assert_all_deletes_of_42(&api, 1);
}

/// A `503` or `429` is a refusal to start (the reason a `POST` is retried after one): the `404`
/// that follows is the answer about the id, an error.
#[tokio::test]
async fn a_404_after_attempts_that_cannot_have_taken_effect_is_an_error() {
    for refusal in [Reply::text(503, "busy"), Reply::text(429, "slow down")] {
        let api = FakeApi::start(vec![refusal, Reply::empty(404)]).await;
        let err = client_for(&api).webhook().delete("42").await.unwrap_err();
        let ClientError::Api(api_error) = &err else {
            panic!("expected an API error, got {err:?}")
        };
        assert_eq!(api_error.status, 404);
        assert!(!api_error.after_unknown_outcome, "{api_error:?}");
        assert_all_deletes_of_42(&api, 2);
    }
}

/// Another refusal (a `409`) to a retry after a `502`: an error, whose message says the earlier
/// attempt may have done what the answer describes.
#[tokio::test]
async fn another_refusal_after_an_unknown_outcome_names_the_earlier_attempt() {
    let api = FakeApi::start(vec![
        Reply::text(502, "bad gateway"),
        Reply::text(409, "in use"),
    ])
    .await;
    let err = client_for(&api).webhook().delete("42").await.unwrap_err();
    let ClientError::Api(api_error) = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(api_error.status, 409);
    assert!(api_error.after_unknown_outcome, "{api_error:?}");
    assert!(
        err.to_string()
            .contains("an earlier attempt got no clear answer and may have taken effect"),
        "{err}"
    );
    assert_all_deletes_of_42(&api, 2);
}

#[tokio::test]
async fn without_retries_a_timed_out_delete_stays_a_timeout() {
    let api = FakeApi::start(vec![Reply::Hang]).await;
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&api.base_url)
            .timeout(Duration::from_millis(200))
            .retry(RetryPolicy::none()),
    )
    .unwrap();
    let err = client.webhook().delete("42").await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert_all_deletes_of_42(&api, 1);
}

#[tokio::test]
async fn the_legacy_client_reads_a_retried_404_the_same_way() {
    let api = FakeApi::start(vec![Reply::text(500, "oops"), Reply::empty(404)]).await;
    let client = webhook::Client::with_options(
        &api.base_url,
        API_KEY,
        Duration::from_secs(30),
        fast_retry(),
    )
    .unwrap();
    let deleted = client.delete("7").await.unwrap();
    assert!(deleted.success && deleted.not_found_on_retry, "{deleted:?}");
    assert!(deleted.message.contains("integration 7"), "{deleted:?}");
    assert_eq!(api.requests().len(), 2);
}

async fn delete_answered(status: u16, body: &str) -> WebhookDeleteResponse {
    let api = FakeApi::start(vec![Reply::text(status, body)]).await;
    let deleted = client_for(&api)
        .webhook()
        .delete("42")
        .await
        .unwrap_or_else(|e| panic!("{status} {body:?} is a delete done: {e}"));
    assert_all_deletes_of_42(&api, 1);
    deleted
}

#[tokio::test]
async fn a_2xx_in_plain_text_is_a_delete_with_its_text_as_the_message() {
    let ok = delete_answered(200, "OK").await;
    assert_eq!(ok, WebhookDeleteResponse::new(true, "OK"));
    let lines = delete_answered(202, "Deleted\r\nintegration 42\n").await;
    assert!(lines.success);
    assert_eq!(lines.message, "Deleted  integration 42");
    let quoted = delete_answered(200, r#""removed""#).await;
    assert_eq!(quoted.message, "removed");
}

#[tokio::test]
async fn a_2xx_success_flag_written_as_a_string_is_read() {
    let yes = delete_answered(200, r#"{"success":"true","message":"Integration deleted"}"#).await;
    assert_eq!(yes, WebhookDeleteResponse::new(true, "Integration deleted"));
    let bare = delete_answered(200, r#"{"success":"true"}"#).await;
    assert_eq!(
        bare,
        WebhookDeleteResponse::new(true, "integration 42 deleted")
    );
    let no = delete_answered(200, r#"{"success":"false","message":"in use"}"#).await;
    assert_eq!(no, WebhookDeleteResponse::new(false, "in use"));
}

#[tokio::test]
async fn a_2xx_html_page_is_a_delete_that_says_what_came_back() {
    let page = "<!DOCTYPE html>\n<html><head><title>Deleted</title></head><body>ok</body></html>";
    let deleted = delete_answered(200, page).await;
    assert!(deleted.success);
    assert!(deleted.message.contains("HTML page"), "{deleted:?}");
    assert!(deleted.message.contains("base URL"), "{deleted:?}");
    assert!(!deleted.message.contains("<html>"), "{deleted:?}");
}

#[tokio::test]
async fn a_2xx_that_is_not_json_elsewhere_is_still_an_error() {
    // Only a delete's answer is a mere message: a list must be the list.
    let api = FakeApi::start(vec![Reply::text(200, "OK")]).await;
    let err = client_for(&api).webhook().list().await.unwrap_err();
    assert!(matches!(err, ClientError::NotJson { .. }), "{err:?}");
}

#[tokio::test]
async fn the_api_key_is_not_in_a_delete_message() {
    let text = delete_answered(200, &format!("OK, deleted with token {API_KEY}")).await;
    assert_eq!(text.message, "OK, deleted with token [REDACTED]");
    let json = delete_answered(
        200,
        &json!({"success": true, "message": format!("done for {API_KEY}")}).to_string(),
    )
    .await;
    assert_eq!(json.message, "done for [REDACTED]");
    let refused = delete_answered(
        200,
        &json!({"success": false, "message": format!("{} may not", API_KEY.to_uppercase())})
            .to_string(),
    )
    .await;
    assert!(!refused.success);
    assert!(
        !refused
            .message
            .to_lowercase()
            .contains(&API_KEY.to_lowercase()),
        "{refused:?}"
    );
    assert!(refused.message.contains("withheld"), "{refused:?}");
}
