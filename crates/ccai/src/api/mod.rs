//! The management API (feature `client`): register, list, update and delete the endpoints
//! CloudContactAI delivers webhooks to.
//!
//! | Need | Use |
//! |---|---|
//! | A client for an account | [`Config`] → [`Client::new`] |
//! | The webhook operations | [`Client::webhook`] → [`Webhooks`] |
//! | What to register, what comes back | [`WebhookConfig`] → [`WebhookResponse`] ([`IntegrationMethod`]) |
//! | A list with entries the client cannot read | [`Webhooks::list_with_unreadable`] → [`WebhookList`] ([`UnreadableWebhook`]) |
//! | A custom transport | implement [`HttpClient`], then [`Webhooks::new`] |
//! | The older `/webhooks` REST shape | [`LegacyClient`] |
//! | What went wrong | [`ClientError`] (one-line messages, never the API key) |
//! | What is retried | [`RetryPolicy`] |
//!
//! Requests carry `Authorization: Bearer <api key>`, `Content-Type: application/json` and
//! `Accept: */*`; any 2xx answer is success.

mod answer;
mod client;
mod config;
mod delete_outcome;
mod error;
mod http_client;
mod integration_method;
mod integrations;
mod legacy_client;
mod path;
mod retry;
pub(crate) mod scrub;
mod transport;
mod types;
mod webhook_list;

pub use client::Client;
pub use config::{Config, BASE_URL_ENV, DEFAULT_TIMEOUT, PRODUCTION_BASE_URL, TEST_BASE_URL};
pub use error::{ApiError, ClientError};
pub use http::Method;
pub use http_client::{BoxFuture, HttpClient};
pub use integration_method::IntegrationMethod;
pub use integrations::Webhooks;
pub use legacy_client::LegacyClient;
pub use retry::RetryPolicy;
pub use types::{WebhookConfig, WebhookDeleteResponse, WebhookId, WebhookResponse};
pub use webhook_list::{UnreadableWebhook, WebhookList};
