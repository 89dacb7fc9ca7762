//! An API that echoes the API key (or a webhook secret the request carried) back in an error
//! body, in any spelling: the key never reaches the error's message or `Debug`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ccai::webhook::WebhookConfig;
use ccai::{Client, ClientError, Config};
use serde_json::json;

use crate::fake_api::{FakeApi, Reply};
use crate::{fast_retry, CLIENT_ID};

/// A key with the characters echoes spell differently: `_` (`\u005f`) and `/` (`\/`).
const KEY: &str = "sk_live_4f9Qz/Xy2Kp8mW";

fn client(api: &FakeApi, key: &str) -> Client {
    Client::new(
        Config::new(CLIENT_ID, key)
            .base_url(&api.base_url)
            .retry(fast_retry()),
    )
    .expect("valid config")
}

/// The ways an echoing server has been seen to spell a key back.
fn spellings(key: &str) -> Vec<(&'static str, String)> {
    let escaped_all: String = key
        .chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect();
    vec![
        ("verbatim", format!("token {key} is not allowed")),
        (
            "JSON with \\u005f",
            format!(r#"{{"error":"bad token","token":"{}"}}"#, key.replace('_', "\\u005f")),
        ),
        ("JSON, every char escaped", format!(r#"{{"token":"{escaped_all}"}}"#)),
        ("JSON with \\/", format!(r#"{{"token":"{}"}}"#, key.replace('/', "\\/"))),
        ("upper-cased", format!("TOKEN {} REJECTED", key.to_uppercase())),
        ("lower-cased", format!("token {} rejected", key.to_lowercase())),
        (
            "base64 header echo",
            json!({"error": "unauthorized", "echo": {"authorization": STANDARD.encode(format!("Bearer {key}"))}})
                .to_string(),
        ),
        (
            "base64 header echo, JSON-escaped slashes",
            format!(
                r#"{{"echo":"{}"}}"#,
                STANDARD.encode(format!("Authorization: Bearer {key}")).replace('/', "\\/")
            ),
        ),
        ("base64url", format!("trace={}", URL_SAFE_NO_PAD.encode(format!("key={key};")))),
        ("percent-encoded", format!("request=token%3D{}", key.replace('/', "%2F").replace('_', "%5F"))),
        (
            "base64 of JSON with escapes",
            STANDARD.encode(format!(r#"{{"token":"{}"}}"#, key.replace('_', "\\u005f").replace('/', "\\/"))),
        ),
    ]
}

fn assert_not_shown(err: &ClientError, key: &str, spelling: &str) {
    assert_text_hides(&format!("{err} {err:?}"), key, spelling);
}

fn assert_text_hides(shown: &str, key: &str, spelling: &str) {
    let lower = shown.to_lowercase();
    assert!(
        !lower.contains(&key.to_lowercase()),
        "{spelling}: the key leaked: {shown}"
    );
    for (_, echo) in spellings(key) {
        for token in echo.split(|c: char| c.is_whitespace() || c == '"' || c == '=') {
            if token.len() >= 16 && token.contains(&key[..6]) {
                assert!(!shown.contains(token), "{spelling}: {token} shown: {shown}");
            }
        }
    }
    assert!(shown.contains("[REDACTED]"), "{spelling}: {shown}");
}

#[tokio::test]
async fn the_api_key_is_not_in_an_error_in_any_spelling() {
    let spellings = spellings(KEY);
    let replies = spellings
        .iter()
        .map(|(_, body)| Reply::text(401, body))
        .collect();
    let api = FakeApi::start(replies).await;
    let client = client(&api, KEY);
    for (spelling, _) in &spellings {
        let err = client.webhook().list().await.unwrap_err();
        assert_eq!(err.status(), Some(401), "{spelling}");
        assert!(
            err.to_string().contains("check CCAI_API_KEY"),
            "{spelling}: {err}"
        );
        assert_not_shown(&err, KEY, spelling);
    }
}

#[tokio::test]
async fn a_webhook_secret_is_not_in_an_error_in_any_spelling() {
    let secret = "whsec_9Kq/Zt4mPx7Lw2";
    let spellings = spellings(secret);
    let replies = spellings
        .iter()
        .map(|(_, body)| Reply::text(400, body))
        .collect();
    let api = FakeApi::start(replies).await;
    let client = client(&api, KEY);
    for (spelling, _) in &spellings {
        let err = client
            .webhook()
            .register(WebhookConfig::new("https://example.com/hook").secret(secret))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "{spelling}");
        assert_not_shown(&err, secret, spelling);
    }
}

#[tokio::test]
async fn a_body_without_the_key_is_still_shown() {
    let body = json!({"error": "Unauthorized", "message": "Invalid token", "trace": STANDARD.encode("nothing secret here at all")});
    let api = FakeApi::start(vec![Reply::text(401, &body.to_string())]).await;
    let err = client(&api, KEY).webhook().list().await.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("Invalid token"), "{shown}");
    assert!(!shown.contains("withheld"), "{shown}");
}

/// A `secretKey` of the wrong type (a number, say) makes the answer unreadable, but the error
/// names the problem without repeating the value: serde's own message quoted it.
#[tokio::test]
async fn a_mistyped_secret_key_in_an_answer_is_not_quoted_in_the_error() {
    let api = FakeApi::start(vec![Reply::json(
        200,
        json!([{"id": 9, "url": "https://example.com/hook", "secretKey": 918273645546372819_u64}]),
    )])
    .await;
    let error = crate::client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/hook"))
        .await
        .expect_err("a numeric secretKey is not a secret");
    assert!(matches!(error, ClientError::Decode { .. }), "{error:?}");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains("918273645546372819"), "{shown}");
        assert!(shown.contains("secret"), "{shown}");
    }
}

/// A delete's 2xx answer is its message, shown as freely as an error: the key is scrubbed from it
/// in every spelling, whether the answer is text or the message of a JSON object.
#[tokio::test]
async fn the_api_key_is_not_in_a_delete_message_in_any_spelling() {
    let spellings = spellings(KEY);
    let replies = spellings
        .iter()
        .flat_map(|(_, body)| {
            [
                // Text before it: the answer is text, never JSON without a message.
                Reply::text(200, &format!("deleted: {body}")),
                Reply::json(200, json!({"success": true, "message": body})),
            ]
        })
        .collect();
    let api = FakeApi::start(replies).await;
    let client = client(&api, KEY);
    for (spelling, _) in &spellings {
        for form in ["text", "JSON message"] {
            let deleted = client.webhook().delete("5").await.unwrap();
            assert!(deleted.success, "{spelling} as {form}: {deleted:?}");
            assert_text_hides(
                &format!("{} {deleted:?}", deleted.message),
                KEY,
                &format!("{spelling} as {form}"),
            );
        }
    }
}
