//! [`HttpForward::header`]: headers of the caller's own on every forward (`ccai listen` names
//! itself in one, to tell its own forwards coming back), with the delivery itself unchanged.

use std::sync::Arc;
use std::time::Duration;

use ccai::inbox::{
    DeliveryStatus, Dispatcher, ForwardConfigError, HttpForward, NewDelivery, SqliteOptions, Store,
};

use crate::support::{serve_app, start_target, temp_store, wait_for, Answer};

const PATIENCE: Duration = Duration::from_secs(15);
const SIGNATURE: &str = "c2lnLXZhbHVlLWZvci10ZXN0cy1vbmx5LWJhc2U2NA==";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

#[tokio::test]
async fn extra_headers_go_out_with_the_exact_body_signature_and_content_type() {
    let target = start_target(vec![Answer::status(200)]).await;
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    // Unusual spacing: the bytes must arrive as they are.
    let body = "{ \"eventHash\" : \"h-1\",\n  \"eventType\":\"message.sent\", \"data\":{} }";
    store
        .insert(
            NewDelivery::new("1231", "h-1", "message.sent", body.as_bytes().to_vec())
                .signature(SIGNATURE)
                .content_type(CONTENT_TYPE),
        )
        .await
        .expect("insert");
    let forward = HttpForward::new(&target.url())
        .expect("a forward URL")
        .header("X-Forwarded-By-Test", "first")
        .expect("a header")
        // The same name again replaces the value.
        .header("x-forwarded-by-test", "instance-0123456789")
        .expect("a header")
        .header("X-Other", "two")
        .expect("a header");
    assert!(
        format!("{forward:?}").contains("x-forwarded-by-test")
            && !format!("{forward:?}").contains("instance-0123456789"),
        "{forward:?}"
    );
    let dispatcher = Dispatcher::builder(Arc::clone(&store), forward)
        .poll_interval(Duration::from_millis(20))
        .start();
    wait_for("h-1 to be delivered", PATIENCE, || async {
        let d = store.get("h-1").await.expect("get").expect("stored");
        (d.summary.deliveries[0].status == DeliveryStatus::Delivered).then_some(())
    })
    .await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    let received = target.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(&request.body[..], body.as_bytes());
    let header = |name: &str| {
        let values: Vec<_> = request
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("text").to_owned())
            .collect();
        values
    };
    assert_eq!(header("x-forwarded-by-test"), ["instance-0123456789"]);
    assert_eq!(header("x-other"), ["two"]);
    assert_eq!(header("x-ccai-signature"), [SIGNATURE]);
    assert_eq!(header("content-type"), [CONTENT_TYPE]);
}

#[test]
fn headers_the_forward_sets_or_that_frame_the_request_are_refused() {
    let forward = || HttpForward::new("http://127.0.0.1:9/hook").expect("a forward URL");
    for (names, why) in [
        (
            &["Content-Type", "X-CCAI-Signature", "authorization"][..],
            "is set by the forward itself",
        ),
        // The target would decode the exact bytes (and fail, or verify something else).
        (
            &["Content-Encoding", "content-encoding"][..],
            "would make the target decode the body",
        ),
        (
            &[
                "Host",
                "Content-Length",
                "Transfer-Encoding",
                "Connection",
                "Keep-Alive",
                "Proxy-Connection",
                "TE",
                "Trailer",
                "Upgrade",
                "Expect",
            ][..],
            "frames the request or its connection",
        ),
    ] {
        for name in names {
            let error = forward().header(name, "gzip").expect_err(name);
            assert!(
                matches!(error, ForwardConfigError::InvalidHeader(_))
                    && error.to_string().contains(why)
                    && error.to_string().contains(&name.to_ascii_lowercase())
                    && !error.to_string().contains("gzip"),
                "{name}: {error}"
            );
        }
    }
    // Other content headers are the caller's: only those that change the bytes are refused.
    forward()
        .header("Content-Language", "en")
        .expect("a header that does not change the body");
    let error = forward().header("bad name", "v").expect_err("a space");
    assert!(
        error.to_string().contains("is not a header name"),
        "{error}"
    );
    // Nor is a name that is not one: it may be a token given in the wrong place (a whole
    // "Authorization: Bearer …" line, or the arguments swapped).
    for name in [
        "Authorization: Bearer sekrit-token",
        "sekrit/token+base64==",
    ] {
        let error = forward().header(name, "X-Api-Key").expect_err(name);
        assert!(
            error.to_string().contains("is not a header name")
                && !error.to_string().contains("sekrit"),
            "{error}"
        );
    }
    // The value is never shown: it may be a token.
    let error = forward()
        .header("X-Token", "sekrit-token\nvalue")
        .expect_err("a newline");
    assert!(
        error.to_string().contains("cannot carry") && !error.to_string().contains("sekrit"),
        "{error}"
    );
}

/// A header value of the caller's (a token, say) is redacted from the excerpt of an answer that
/// echoes it, raw, JSON-escaped or HTML-escaped, as the URL's credentials are; a short one (under
/// 8 characters) is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_header_value_is_not_recorded() {
    const TOKEN: &str = "tok/en&9f8e7d6c";
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|headers: reqwest::header::HeaderMap| async move {
            let value = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let json = serde_json::json!({"key": value("x-api-key"), "short": value("x-short")})
                .to_string()
                .replace('/', "\\/");
            let html = value("x-api-key").replace('&', "&amp;");
            (
                reqwest::StatusCode::INTERNAL_SERVER_ERROR,
                format!("{json} {} <b>{html}</b>", value("x-api-key")),
            )
        }),
    );
    let addr = serve_app(app).await.0;
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    store
        .insert(NewDelivery::new("1231", "h-echo", "message.sent", &b"{}"[..]).signature(SIGNATURE))
        .await
        .expect("insert");
    let forward = HttpForward::new(&format!("http://{addr}/hook"))
        .expect("a forward URL")
        .header("X-Api-Key", TOKEN)
        .expect("a header")
        .header("X-Short", "v-1")
        .expect("a header");
    let dispatcher = Dispatcher::builder(Arc::clone(&store), forward)
        .retry_schedule("".parse().expect("schedule"))
        .poll_interval(Duration::from_millis(20))
        .start();
    let dead = wait_for("h-echo to be dead", PATIENCE, || async {
        let d = store.get("h-echo").await.expect("get").expect("stored");
        (d.summary.deliveries[0].status == DeliveryStatus::Dead).then_some(d)
    })
    .await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    assert_eq!(
        error,
        r#"HTTP 500 Internal Server Error: {"key":"[REDACTED]","short":"v-1"} [REDACTED] <b>[REDACTED]</b>"#
    );
}
