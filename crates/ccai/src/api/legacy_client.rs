//! [`LegacyClient`]: the standalone client for the older `/webhooks` REST shape.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use super::answer::{self, Request};
use super::config::DEFAULT_TIMEOUT;
use super::delete_outcome::delete_outcome;
use super::error::ClientError;
use super::integrations::{check_url, skip_unreadable};
use super::path::id_segment;
use super::retry::RetryPolicy;
use super::transport::Transport;
use super::types::{WebhookConfig, WebhookDeleteResponse, WebhookResponse};
use super::webhook_list::WebhookList;
use crate::signature::Secret;
use http::Method;

/// A standalone webhook client for the older REST shape (no client id in paths):
///
/// | Operation | Request | Body sent |
/// |---|---|---|
/// | register | `POST {base}/webhooks` | `{"url", "events": [...], "secretKey"?}` |
/// | update | `PUT {base}/webhooks/{id}` | the same |
/// | list | `GET {base}/webhooks` | none |
/// | get | `GET {base}/webhooks/{id}` | none |
/// | delete | `DELETE {base}/webhooks/{id}` | none |
///
/// [`WebhookConfig::method`] is not sent (the body has no such field) and
/// [`WebhookConfig::events`] is; [`crate::Client`] does the opposite.
///
/// Also exported as [`ccai::webhook::Client`](crate::webhook::Client), the name the Go SDK
/// gives it, which is **not** [`ccai::Client`](crate::Client): that one talks to the integrations
/// API (`{base}/v1/client/{clientId}/integration`) and is built from a [`Config`](super::Config)
/// with a client id. Use this client only for an API that serves the older `/webhooks` paths;
/// new code talks to the integrations API through [`crate::Client`]. Same headers, timeout
/// (30 s) and retries ([`RetryPolicy::default`]) as [`crate::Client`].
///
/// ```no_run
/// use ccai::api::{LegacyClient, WebhookConfig};
/// use ccai::event::WebhookEventType;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), ccai::ClientError> {
/// let client = LegacyClient::new("https://core.cloudcontactai.com/api", "your-api-key")?;
/// let hook = client
///     .register(
///         WebhookConfig::new("https://example.com/hook")
///             .events([WebhookEventType::MessageSent])
///             .secret("my-secret"),
///     )
///     .await?;
/// client.delete(hook.id.as_str()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LegacyClient {
    transport: Arc<Transport>,
}

impl LegacyClient {
    /// A client for `base_url` (absolute `http(s)`) authenticated with `api_key`.
    ///
    /// Fails with [`ClientError::MissingApiKey`], [`ClientError::InvalidApiKey`] or
    /// [`ClientError::InvalidBaseUrl`].
    pub fn new(base_url: &str, api_key: impl Into<Secret>) -> Result<Self, ClientError> {
        Self::with_options(base_url, api_key, DEFAULT_TIMEOUT, RetryPolicy::default())
    }

    /// Like [`LegacyClient::new`], with a request timeout and a retry policy.
    pub fn with_options(
        base_url: &str,
        api_key: impl Into<Secret>,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        let transport = Transport::new(base_url, &api_key.into(), timeout, retry)?;
        Ok(Self {
            transport: Arc::new(transport),
        })
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    /// Registers a webhook (`POST {base}/webhooks`).
    pub async fn register(&self, config: WebhookConfig) -> Result<WebhookResponse, ClientError> {
        check_url(&config)?;
        let path = "/webhooks".to_owned();
        let body = webhook_body(Method::POST, &path, &config)?;
        self.one(Method::POST, &path, Some(body)).await
    }

    /// Updates webhook `id` (`PUT {base}/webhooks/{id}`).
    pub async fn update(
        &self,
        id: &str,
        config: WebhookConfig,
    ) -> Result<WebhookResponse, ClientError> {
        let path = item_path(id)?;
        check_url(&config)?;
        let body = webhook_body(Method::PUT, &path, &config)?;
        self.one(Method::PUT, &path, Some(body)).await
    }

    /// Lists the webhooks (`GET {base}/webhooks`) this crate can read; one it cannot is left out
    /// with a warning in the log, as for [`Webhooks::list`](super::Webhooks::list).
    pub async fn list(&self) -> Result<Vec<WebhookResponse>, ClientError> {
        Ok(skip_unreadable(self.list_with_unreadable().await?))
    }

    /// Lists the webhooks with the entries this crate cannot read reported, as for
    /// [`Webhooks::list_with_unreadable`](super::Webhooks::list_with_unreadable).
    pub async fn list_with_unreadable(&self) -> Result<WebhookList, ClientError> {
        let path = "/webhooks";
        let answer = self.transport.send(Method::GET, path, None).await?;
        answer::integrations(
            Request {
                method: Method::GET,
                path,
            },
            answer,
        )
    }

    /// Gets one webhook (`GET {base}/webhooks/{id}`).
    pub async fn get(&self, id: &str) -> Result<WebhookResponse, ClientError> {
        let path = item_path(id)?;
        self.one(Method::GET, &path, None).await
    }

    /// Deletes one webhook (`DELETE {base}/webhooks/{id}`); answers, and a retry answered `404`,
    /// as for [`Webhooks::delete`](super::Webhooks::delete).
    pub async fn delete(&self, id: &str) -> Result<WebhookDeleteResponse, ClientError> {
        let path = item_path(id)?;
        let sent = self.transport.send(Method::DELETE, &path, None).await;
        delete_outcome(id, sent)
    }

    async fn one(
        &self,
        method: Method,
        path: &str,
        body: Option<Box<RawValue>>,
    ) -> Result<WebhookResponse, ClientError> {
        let answer = self.transport.send(method.clone(), path, body).await?;
        answer::one_integration(Request { method, path }, answer)
    }
}

impl fmt::Debug for LegacyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyClient")
            .field("transport", &self.transport)
            .finish()
    }
}

fn item_path(id: &str) -> Result<String, ClientError> {
    Ok(format!("/webhooks/{}", id_segment(id)?))
}

/// The older REST shape's body: `url`, `events`, `secretKey` (omitted when not given), in that order.
/// No `method`: the shape (and the Go SDK's legacy client) has none; `WebhookConfig::method` is
/// documented as ignored here.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookBody<'a> {
    url: &'a str,
    events: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<&'a str>,
}

fn webhook_body(
    method: Method,
    path: &str,
    config: &WebhookConfig,
) -> Result<Box<RawValue>, ClientError> {
    let body = WebhookBody {
        url: &config.url,
        events: config.events.iter().map(|e| e.as_str()).collect(),
        secret_key: config.secret_to_send(),
    };
    super::integrations::to_raw(method, path, &body)
}
