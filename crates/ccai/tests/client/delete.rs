//! A delete's answers: any 2xx is a delete done, whatever its body.

use ccai::api::WebhookDeleteResponse;
use ccai::ClientError;
use serde_json::json;

use crate::fake_api::{FakeApi, Reply};
use crate::{client_for, API_KEY, INTEGRATIONS};

/// Every request was the same DELETE.
fn assert_all_deletes_of_42(api: &FakeApi, count: usize) {
    let requests = api.requests();
    assert_eq!(requests.len(), count, "{requests:?}");
    for request in requests {
        assert_eq!(request.method, "DELETE");
        assert_eq!(request.path, format!("{INTEGRATIONS}/42"));
    }
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
async fn a_2xx_that_is_not_json_elsewhere_is_still_a_decode_error() {
    // Only a delete's answer is a mere message: a list must be the list.
    let api = FakeApi::start(vec![Reply::text(200, "OK")]).await;
    let err = client_for(&api).webhook().list().await.unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
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
