//! [`Client`]: the standalone client for the older `/webhooks` REST shape.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use super::answer::{self, Request};
use super::service::check_url;
use super::types::{WebhookConfig, WebhookDeleteResponse, WebhookResponse};
use super::Secret;
use crate::client::path::id_segment;
use crate::client::transport::Transport;
use crate::client::{ClientError, Method, RetryPolicy, DEFAULT_TIMEOUT};

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
/// New code talks to the integrations API through [`crate::Client`] instead. Same headers,
/// timeout (30 s) and retries ([`RetryPolicy::default`]) as [`crate::Client`].
///
/// ```no_run
/// use ccai::webhook::{self, WebhookConfig, WebhookEventType};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), ccai::ClientError> {
/// let client = webhook::Client::new("https://core.cloudcontactai.com/api", "your-api-key")?;
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
pub struct Client {
    transport: Arc<Transport>,
}

impl Client {
    /// A client for `base_url` (absolute `http(s)`) authenticated with `api_key`.
    ///
    /// Fails with [`ClientError::MissingApiKey`], [`ClientError::InvalidApiKey`] or
    /// [`ClientError::InvalidBaseUrl`].
    pub fn new(base_url: &str, api_key: impl Into<Secret>) -> Result<Self, ClientError> {
        Self::with_options(base_url, api_key, DEFAULT_TIMEOUT, RetryPolicy::default())
    }

    /// Like [`Client::new`], with a request timeout and a retry policy.
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
        let body = webhook_body(Method::Post, &path, &config)?;
        self.one(Method::Post, &path, Some(body)).await
    }

    /// Updates webhook `id` (`PUT {base}/webhooks/{id}`).
    pub async fn update(
        &self,
        id: &str,
        config: WebhookConfig,
    ) -> Result<WebhookResponse, ClientError> {
        let path = item_path(id)?;
        check_url(&config)?;
        let body = webhook_body(Method::Put, &path, &config)?;
        self.one(Method::Put, &path, Some(body)).await
    }

    /// Lists the webhooks (`GET {base}/webhooks`).
    pub async fn list(&self) -> Result<Vec<WebhookResponse>, ClientError> {
        let path = "/webhooks";
        let answer = self.transport.send(Method::Get, path, None).await?;
        answer::integrations(
            Request {
                method: Method::Get,
                path,
            },
            answer,
        )
    }

    /// Gets one webhook (`GET {base}/webhooks/{id}`).
    pub async fn get(&self, id: &str) -> Result<WebhookResponse, ClientError> {
        let path = item_path(id)?;
        self.one(Method::Get, &path, None).await
    }

    /// Deletes one webhook (`DELETE {base}/webhooks/{id}`); answers as for
    /// [`Service::delete`](super::Service::delete).
    pub async fn delete(&self, id: &str) -> Result<WebhookDeleteResponse, ClientError> {
        let path = item_path(id)?;
        let answer = self.transport.send(Method::Delete, &path, None).await?;
        answer::deleted(
            Request {
                method: Method::Delete,
                path: &path,
            },
            id,
            answer,
        )
    }

    /// Checks an `X-CCAI-Signature` value: the same as the free function
    /// [`verify_signature`](super::verify_signature).
    pub fn verify_signature(
        &self,
        signature: &str,
        client_id: &str,
        event_hash: &str,
        secret: &str,
    ) -> bool {
        super::verify_signature(signature, client_id, event_hash, secret)
    }

    async fn one(
        &self,
        method: Method,
        path: &str,
        body: Option<Box<RawValue>>,
    ) -> Result<WebhookResponse, ClientError> {
        let answer = self.transport.send(method, path, body).await?;
        answer::one_integration(Request { method, path }, answer)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.transport)
            .finish()
    }
}

fn item_path(id: &str) -> Result<String, ClientError> {
    Ok(format!("/webhooks/{}", id_segment(id)?))
}

/// `{"url", "events": [...], "secretKey"?}`.
/// The older REST shape's body: `url`, `events`, `secretKey` (omitted when not given), in that order.
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
        secret_key: config.secret.as_ref().map(|s| s.expose_secret()),
    };
    super::service::to_raw(method, path, &body)
}
