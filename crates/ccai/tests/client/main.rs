//! The management API client against a real HTTP server on 127.0.0.1.

mod delete;
mod failures;
mod fake_api;
mod legacy;
mod memory;
mod operations;
mod redaction;
mod unknown_values;
mod unreadable;

use std::time::Duration;

use ccai::api::RetryPolicy;
use ccai::{Client, Config};

use fake_api::FakeApi;

/// The API key every test client uses; it must never show up in errors, logs or `Debug`.
pub const API_KEY: &str = "sk-test-5up3r-s3cr3t";
/// The account every test client uses.
pub const CLIENT_ID: &str = "1231";

/// Retries as in production, but with waits of a few milliseconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::default().backoff(Duration::from_millis(2), Duration::from_millis(10))
}

/// A client for the fake API's account.
pub fn client_for(api: &FakeApi) -> Client {
    Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&api.base_url)
            .retry(fast_retry()),
    )
    .expect("valid config")
}

/// The collection path the integrations API uses, under the fake API's `/api` base.
pub const INTEGRATIONS: &str = "/api/v1/client/1231/integration";

/// The headers every management API request carries.
pub fn assert_standard_headers(request: &fake_api::Recorded) {
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("*/*"));
}
