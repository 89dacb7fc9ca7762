//! A forward URL's user name and password (`http://user:password@host/hook`) are sent as
//! `Authorization: Basic`, and never recorded, reported, logged or shown in `Debug`, even when
//! the target echoes the request back (as debugging endpoints and error pages do); nor is a token
//! in its query (`?token=…`) or in its path (`/services/T000/B000/XsEc…`, Slack-style).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use ccai::inbox::{
    AttemptReport, DeliveryStatus, Dispatcher, EventDetail, HttpForward, NewDelivery,
    SqliteOptions, Store,
};

use crate::support::{serve_app, temp_store, wait_for};

const PATIENCE: Duration = Duration::from_secs(15);
const SIGNATURE: &str = "xsVK2WCReT+/qDcdybJWueN8wuNu8eI4eemZ7RZ/uFs=";

/// A target that answers 500 with what authenticated the request, in the ways echoing servers
/// write it: the header as JSON with `/` escaped (PHP's `json_encode`), the decoded `user:password`,
/// the password alone, and the password in HTML (`&` as `&amp;`). It keeps each `Authorization`.
async fn echoing_target() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let record = Arc::clone(&record);
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                record.lock().expect("lock").push(auth.clone());
                let decoded = auth
                    .strip_prefix("Basic ")
                    .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let password = decoded.split_once(':').map_or("", |(_, p)| p);
                let json = serde_json::json!({
                    "authorization": auth,
                    "credentials": decoded,
                    "password": password,
                })
                .to_string()
                .replace('/', "\\/");
                let html = password.replace('&', "&amp;");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{json} <b>{html}</b>"),
                )
            }
        }),
    );
    let addr = serve_app(app).await.0;
    (addr, seen)
}

/// Forwards one event to `url` with a single attempt; its detail once dead, the attempt's
/// report, and the `Debug` of the forward and of the dispatcher.
async fn forward_once(url: &str, hash: &str) -> (EventDetail, AttemptReport, String) {
    let t = temp_store(SqliteOptions::default());
    let store: Arc<dyn Store> = Arc::new(t.store.clone());
    let body = format!("{{\"eventHash\":\"{hash}\",\"eventType\":\"message.sent\",\"data\":{{}}}}");
    store
        .insert(
            NewDelivery::new("1231", hash, "message.sent", body.into_bytes()).signature(SIGNATURE),
        )
        .await
        .expect("insert");
    let forward = HttpForward::new(url).expect("a forward URL");
    let reports: Arc<Mutex<Vec<AttemptReport>>> = Arc::default();
    let record = Arc::clone(&reports);
    let dispatcher = Dispatcher::builder(Arc::clone(&store), forward.clone())
        .retry_schedule("".parse().expect("schedule"))
        .poll_interval(Duration::from_millis(20))
        .on_attempt(move |report| record.lock().expect("lock").push(report.clone()))
        .start();
    let debug = format!("{forward:?} {dispatcher:?}");
    let dead = wait_for(&format!("{hash} to be dead"), PATIENCE, || async {
        let d = store.get(hash).await.expect("get").expect("stored");
        (d.summary.deliveries[0].status == DeliveryStatus::Dead).then_some(d)
    })
    .await;
    dispatcher.shutdown(Duration::from_secs(5)).await;
    let report = wait_for("the attempt's report", PATIENCE, || async {
        reports.lock().expect("lock").first().cloned()
    })
    .await;
    (dead, report, debug)
}

/// The texts that must not hold any of `leaks`: the stored attempt's error, the delivery's last
/// error, the report's and `Debug`.
fn assert_nowhere(dead: &EventDetail, report: &AttemptReport, debug: &str, leaks: &[&str]) {
    let shown = [
        dead.attempts[0].error.as_deref().unwrap_or(""),
        dead.summary.deliveries[0]
            .last_error
            .as_deref()
            .unwrap_or(""),
        report.error.as_deref().unwrap_or(""),
        debug,
    ];
    for text in shown {
        for leak in leaks {
            assert!(!text.contains(leak), "{leak:?} in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_password_is_sent_but_never_recorded_reported_or_logged() {
    let logs = crate::logs::captured();
    let (addr, seen) = echoing_target().await;
    // `&` and `/` percent-encoded, as a URL must write them in a password.
    let url = format!("http://forwarder:Tr0ub4dor%263%2Fzz@{addr}/hook");
    let (dead, report, debug) = forward_once(&url, "basic-echo").await;

    let token = base64::engine::general_purpose::STANDARD.encode("forwarder:Tr0ub4dor&3/zz");
    // Sent as reqwest sends a URL's credentials.
    assert_eq!(*seen.lock().expect("lock"), [format!("Basic {token}")]);
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    assert_eq!(
        error,
        r#"HTTP 500 Internal Server Error: {"authorization":"Basic [REDACTED]","credentials":"[REDACTED]","password":"[REDACTED]"} <b>[REDACTED]</b>"#
    );
    let escaped_token = token.replace('/', "\\/");
    let leaks = [
        "Tr0ub4dor",
        token.as_str(),
        escaped_token.as_str(),
        &token[..token.len() - 2],
    ];
    assert_nowhere(&dead, &report, &debug, &leaks);
    assert!(debug.contains("basic_auth: true"), "{debug}");
    // The destination is the dispatcher's name for it, not the URL.
    assert_eq!(dead.summary.deliveries[0].destination, "default");
    // Nor in any log line, the library's or reqwest's and hyper's (debug level included).
    let text = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    assert!(
        text.contains("an attempt failed"),
        "nothing logged:\n{text}"
    );
    for leak in leaks {
        assert!(!text.contains(leak), "{leak:?} logged:\n{text}");
    }
}

/// A token given as the user name alone (`https://TOKEN@host/`, as some services take it) is the
/// credential: redacted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_as_the_user_name_is_not_recorded() {
    let (addr, seen) = echoing_target().await;
    let url = format!("http://tok-9f8e7d6c@{addr}/hook");
    let (dead, report, debug) = forward_once(&url, "user-token-echo").await;
    let token = base64::engine::general_purpose::STANDARD.encode("tok-9f8e7d6c:");
    assert_eq!(*seen.lock().expect("lock"), [format!("Basic {token}")]);
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    assert!(error.starts_with("HTTP 500"), "{error}");
    assert!(error.contains(r#""credentials":"[REDACTED]""#), "{error}");
    assert_nowhere(&dead, &report, &debug, &["tok-9f8e7d6c", token.as_str()]);
}

/// A target that echoes its request line and the query's values: the token in the query is
/// redacted, raw and decoded; a short value (`v=1`) is left, as is the rest of the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_token_echoed_by_the_target_is_not_recorded() {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            |uri: axum::http::Uri,
             axum::extract::Query(query): axum::extract::Query<
                std::collections::BTreeMap<String, String>,
            >| async move {
                let params = serde_json::to_string(&query)
                    .unwrap_or_default()
                    .replace('/', "\\/");
                (StatusCode::NOT_FOUND, format!("Cannot POST {uri} {params}"))
            },
        ),
    );
    let addr = serve_app(app).await.0;
    let url = format!("http://{addr}/hook?token=qt%2F5ecret%2Bvalue&v=1");
    let (dead, report, debug) = forward_once(&url, "query-token-echo").await;
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    assert_eq!(
        error,
        r#"HTTP 404 Not Found: Cannot POST /hook?token=[REDACTED]&v=1 {"token":"[REDACTED]","v":"1"}"#
    );
    assert_nowhere(&dead, &report, &debug, &["5ecret", "qt%2F"]);
}

/// A Slack-style hook URL carries its secret in the path. A target that echoes its request line
/// (`Cannot handle POST /services/…`), its decoded path as JSON (`/` as `\/`) and as HTML (`/` as
/// `&#47;`) gets each token segment redacted, written as in the URL or decoded; the words of the
/// path (`webhooks`, `services`, `T000`) stay, so the error still says which endpoint answered.
/// Nor is the token in the log line of the failed attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_token_echoed_by_the_target_is_not_recorded() {
    const TOKEN: &str = "XsEcReTt0kEn1234567890";
    let logs = crate::logs::captured();
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        let decoded = uri.path().replace("%2F", "/").replace("%2B", "+");
        let json = serde_json::json!({ "path": decoded })
            .to_string()
            .replace('/', "\\/");
        let html = decoded.replace('/', "&#47;");
        (
            StatusCode::NOT_FOUND,
            format!("Cannot handle POST {uri} HTTP/1.1 {json} <p>{html}</p>"),
        )
    });
    let addr = serve_app(app).await.0;
    let url = format!("http://{addr}/webhooks/services/T000/B000/{TOKEN}/pt%2F5ecret%2Bv");
    let (dead, report, debug) = forward_once(&url, "path-token-echo").await;
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    let path = "/webhooks/services/T000/B000/[REDACTED]/[REDACTED]";
    let escaped = path.replace('/', "\\/");
    let html = path.replace('/', "&#47;");
    assert_eq!(
        error,
        format!(
            r#"HTTP 404 Not Found: Cannot handle POST {path} HTTP/1.1 {{"path":"{escaped}"}} <p>{html}</p>"#
        )
    );
    let leaks = [TOKEN, "XsEcReTt", "1234567890", "5ecret", "pt%2F"];
    assert_nowhere(&dead, &report, &debug, &leaks);
    for text in [
        dead.summary.deliveries[0]
            .last_error
            .as_deref()
            .unwrap_or(""),
        report.error.as_deref().unwrap_or(""),
    ] {
        assert!(text.contains("/webhooks/services/T000/B000/"), "{text}");
    }
    let text = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    assert!(
        text.contains("Cannot handle POST /webhooks/services/T000/B000/[REDACTED]"),
        "the failed attempt not logged:\n{text}"
    );
    // Not the shorter leaks: the log is every test's.
    for leak in [TOKEN, "XsEcReTt", "5ecret"] {
        assert!(!text.contains(leak), "{leak:?} logged:\n{text}");
    }
}

/// Credentials that are not UTF-8 once decoded were dropped: the forward went out without any
/// `Authorization`, and the target's 401s were all that said so. Refused, without echoing them.
#[test]
fn credentials_that_are_not_utf8_are_refused() {
    let error = HttpForward::new("http://user:%FF%FEZq9w@127.0.0.1:9/hook")
        .expect_err("refused")
        .to_string();
    assert!(error.contains("not UTF-8"), "{error}");
    assert!(!error.contains("%FF") && !error.contains("Zq9w"), "{error}");
}

/// A password with characters beyond ASCII, echoed as an `ensure_ascii` JSON encoder writes it
/// (`\u00e4`; Python's `json.dumps` by default) and as HTML character references: redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_ascii_password_echoed_escaped_is_not_recorded() {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|headers: HeaderMap| async move {
            let decoded = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|auth| auth.strip_prefix("Basic "))
                .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let password = decoded.split_once(':').map_or("", |(_, p)| p);
            let ascii_json: String = password
                .encode_utf16()
                .map(|unit| match char::from_u32(u32::from(unit)) {
                    Some(c) if c.is_ascii() => c.to_string(),
                    _ => format!("\\u{unit:04x}"),
                })
                .collect();
            let html: String = password
                .chars()
                .map(|c| {
                    if c.is_ascii() {
                        c.to_string()
                    } else {
                        format!("&#{};", u32::from(c))
                    }
                })
                .collect();
            (
                StatusCode::UNAUTHORIZED,
                format!(r#"{{"password":"{ascii_json}"}} <b>{html}</b>"#),
            )
        }),
    );
    let addr = serve_app(app).await.0;
    // "pässwörd-😀", percent-encoded in the URL as it must be.
    let url = format!("http://u:p%C3%A4ssw%C3%B6rd-%F0%9F%98%80@{addr}/hook");
    let (dead, report, debug) = forward_once(&url, "non-ascii-echo").await;
    let error = dead.attempts[0].error.clone().unwrap_or_default();
    assert_eq!(
        error,
        r#"HTTP 401 Unauthorized: {"password":"[REDACTED]"} <b>[REDACTED]</b>"#
    );
    assert_nowhere(
        &dead,
        &report,
        &debug,
        &[r"p\u00e4ssw", "p&#228;ssw", "pässwörd"],
    );
}
