//! [`Client`]: the management API client for one CloudContactAI account.

use std::fmt;
use std::sync::Arc;

use super::config::Config;
use super::error::ClientError;
use super::http_client::{BoxFuture, HttpClient};
use super::integrations::Webhooks;
use super::transport::Transport;
use http::Method;

/// The CloudContactAI management API client for one account.
///
/// It talks to the integrations API (`{base}/v1/client/{clientId}/integration`), the one the
/// official SDKs' `webhook.Service` and `ccai webhooks` use: use it unless your account only has
/// the older `/webhooks` API. Not to be confused with
/// [`ccai::webhook::Client`](crate::webhook::Client), a different type: the Go SDK's name for
/// [`LegacyClient`](super::LegacyClient), which talks to that older `/webhooks` API and is built
/// from a base URL and an API key (no client id, no [`Config`]).
///
/// One client holds one connection pool: create it once and clone it (clones share the pool).
/// Requests time out after [`Config::timeout`] and are retried as [`Config::retry`] says (see
/// [`RetryPolicy`](super::RetryPolicy) for what is retried).
///
/// ```no_run
/// use ccai::webhook::WebhookConfig;
/// use ccai::{Client, Config};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), ccai::ClientError> {
/// let client = Client::new(Config::new("1231", "your-api-key"))?;
/// let hook = client
///     .webhook()
///     .register(WebhookConfig::new("https://example.com/webhook/ccai").secret("my-secret"))
///     .await?;
/// println!("registered integration {}", hook.id);
/// for hook in client.webhook().list().await? {
///     println!("{} {} {}", hook.id, hook.method, hook.url);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    api: Arc<AccountTransport>,
    webhook: Webhooks,
}

/// The transport plus the account it works for: what the webhook service talks through.
#[derive(Debug)]
struct AccountTransport {
    client_id: String,
    transport: Transport,
}

impl HttpClient for AccountTransport {
    fn request<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<Box<serde_json::value::RawValue>>,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, ClientError>> {
        Box::pin(self.transport.send(method, path, body))
    }

    fn client_id(&self) -> &str {
        &self.client_id
    }
}

impl Client {
    /// A client for `config`'s account.
    ///
    /// Fails with [`ClientError::MissingClientId`] or [`ClientError::MissingApiKey`] when either is
    /// empty, [`ClientError::InvalidBaseUrl`] when the resolved base URL (see [`Config`]) is not an
    /// absolute `http(s)` URL, and [`ClientError::InvalidApiKey`] when the key cannot be sent in a
    /// header.
    ///
    /// ```
    /// use ccai::{Client, ClientError, Config};
    ///
    /// let client = Client::new(Config::new("1231", "sk-123").base_url("http://127.0.0.1:8080/api/"))?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:8080/api");
    /// assert_eq!(client.client_id(), "1231");
    ///
    /// let err = Client::new(Config::new("1231", "")).unwrap_err();
    /// assert!(matches!(err, ClientError::MissingApiKey));
    /// # Ok::<(), ClientError>(())
    /// ```
    pub fn new(config: Config) -> Result<Self, ClientError> {
        let client_id = config.client_id.trim();
        if client_id.is_empty() {
            return Err(ClientError::MissingClientId);
        }
        if client_id == "." || client_id == ".." {
            return Err(ClientError::InvalidClientId(client_id.to_owned()));
        }
        if config.api_key.expose_secret().trim().is_empty() {
            return Err(ClientError::MissingApiKey);
        }
        let transport = Transport::new(
            &config.resolved_base_url(),
            &config.api_key,
            config.timeout,
            config.retry.clone(),
        )?;
        let api = Arc::new(AccountTransport {
            client_id: client_id.to_owned(),
            transport,
        });
        let webhook = Webhooks::from_arc(api.clone());
        Ok(Self { api, webhook })
    }

    /// The webhook (integration) operations: register, list, get, update, delete.
    pub fn webhook(&self) -> &Webhooks {
        &self.webhook
    }

    /// The account's client id.
    pub fn client_id(&self) -> &str {
        &self.api.client_id
    }

    /// The base URL requests go to, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        self.api.transport.base_url()
    }
}

impl HttpClient for Client {
    fn request<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<Box<serde_json::value::RawValue>>,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, ClientError>> {
        self.api.request(method, path, body)
    }

    fn client_id(&self) -> &str {
        &self.api.client_id
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.api.client_id)
            .field("transport", &self.api.transport)
            .finish()
    }
}
