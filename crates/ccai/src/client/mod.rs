//! The management API client: register, list, update and delete the endpoints CloudContactAI
//! delivers webhooks to.
//!
//! | Need | Use |
//! |---|---|
//! | A client for an account | [`Config`] → [`Client::new`] |
//! | The webhook operations | [`Client::webhook`] → [`webhook::Service`](crate::webhook::Service) |
//! | A custom transport | implement [`HttpClient`], then [`webhook::Service::new`](crate::webhook::Service::new) |
//! | The older `/webhooks` REST shape | [`webhook::Client`](crate::webhook::Client) |
//! | What went wrong | [`ClientError`] (one-line messages, never the API key) |
//! | What is retried | [`RetryPolicy`] |
//!
//! Requests carry `Authorization: Bearer <api key>`, `Content-Type: application/json` and
//! `Accept: */*`; any 2xx answer is success.

mod api_client;
mod config;
mod error;
mod http_client;
mod method;
pub(crate) mod path;
mod retry;
pub(crate) mod transport;

pub use api_client::Client;
pub use config::{Config, BASE_URL_ENV, DEFAULT_TIMEOUT, PRODUCTION_BASE_URL, TEST_BASE_URL};
pub use error::{ApiError, BoxError, ClientError, MAX_ERROR_BODY_CHARS};
pub use http_client::{BoxFuture, HttpClient};
pub use method::Method;
pub use retry::RetryPolicy;
