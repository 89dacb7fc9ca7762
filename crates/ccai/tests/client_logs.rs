//! The client's log lines (through `tracing`) never contain the API key.
//!
//! A test binary of its own: it installs a global subscriber that records every event.

use std::fmt::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use ccai::api::RetryPolicy;
use ccai::{Client, Config};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const API_KEY: &str = "sk-log-test-0f9e8d7c";

/// Writes every event's and span's fields into one string.
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut out = self.0.lock().unwrap();
        span.record(&mut Fields(&mut out));
        out.push('\n');
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut out = self.0.lock().unwrap();
        values.record(&mut Fields(&mut out));
        out.push('\n');
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut out = self.0.lock().unwrap();
        let _ = write!(out, "{} ", event.metadata().level());
        event.record(&mut Fields(&mut out));
        out.push('\n');
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn log_lines_never_contain_the_api_key() {
    let logs = Arc::new(Mutex::new(String::new()));
    tracing::subscriber::set_global_default(Capture(logs.clone())).unwrap();

    // An API that fails (echoing the key), then answers.
    let calls = Arc::new(Mutex::new(0u32));
    let app = axum::Router::new().fallback({
        let calls = calls.clone();
        move || {
            let calls = calls.clone();
            async move {
                let mut calls = calls.lock().unwrap();
                *calls += 1;
                if *calls == 1 {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("bad token {API_KEY}"),
                    )
                } else {
                    (StatusCode::UNAUTHORIZED, format!("bad token {API_KEY}"))
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = Client::new(
        Config::new("1231", API_KEY)
            .base_url(format!("http://{address}/api"))
            .retry(
                RetryPolicy::default().backoff(Duration::from_millis(1), Duration::from_millis(5)),
            ),
    )
    .unwrap();
    let err = client.webhook().list().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(*calls.lock().unwrap(), 2, "the 503 was retried");

    let logs = logs.lock().unwrap().clone();
    // The capture works: the retry and the failure were logged.
    assert!(logs.contains("retrying"), "{logs}");
    assert!(logs.contains("401"), "{logs}");
    assert!(
        !logs.contains(API_KEY),
        "the API key leaked into the logs:\n{logs}"
    );
}

/// `list` leaves out an integration it cannot read, but says so in the log: where it was, its id
/// and why, never its secret.
#[tokio::test]
async fn a_list_logs_each_integration_it_leaves_out() {
    let logs = Arc::new(Mutex::new(String::new()));
    // This thread's only (the runtime of a `#[tokio::test]` runs on it): the other test's global
    // subscriber does not see these lines, nor this one the other's.
    let _guard = tracing::subscriber::set_default(Capture(logs.clone()));
    let answer = serde_json::json!([
        {"id": 1, "url": "https://a.example/h", "method": "POST"},
        {"id": 2, "url": "https://b.example/h", "method": 5, "secretKey": "whsec-logged-never"}
    ]);
    let app = axum::Router::new().fallback(move || {
        let answer = answer.clone();
        async move { axum::Json(answer) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client =
        Client::new(Config::new("1231", API_KEY).base_url(format!("http://{address}/api")))
            .unwrap();

    let hooks = client.webhook().list().await.unwrap();

    assert_eq!(hooks.len(), 1);
    let logs = logs.lock().unwrap().clone();
    let line = logs
        .lines()
        .find(|l| l.contains("cannot read"))
        .unwrap_or_else(|| panic!("no line about the integration left out:\n{logs}"));
    assert!(line.starts_with("WARN"), "{line}");
    assert!(line.contains("index=1") && line.contains("\"2\""), "{line}");
    assert!(line.contains("`method` is a number"), "{line}");
    assert!(!logs.contains("whsec-logged-never"), "{logs}");
    assert!(!logs.contains(API_KEY), "{logs}");
}
