//! [`Webhooks`]: the webhook operations of the integrations API.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use super::answer::{self, Request};
use super::delete_outcome::delete_outcome;
use super::error::ClientError;
use super::http_client::HttpClient;
use super::integration_method::IntegrationMethod;
use super::path::{id_segment, segment};
use super::types::{WebhookConfig, WebhookDeleteResponse, WebhookResponse};
use super::webhook_list::WebhookList;
use http::Method;

/// Register, list, get, update and delete the endpoints CloudContactAI delivers to (its
/// "integrations"), through any [`HttpClient`].
///
/// Usually reached as [`Client::webhook`](crate::Client::webhook). Requests go to
/// `/v1/client/{clientId}/integration[/{id}]`; register and update both `POST` a one-element JSON
/// array (update's element carries the integer `id`).
///
/// ```no_run
/// use ccai::webhook::WebhookConfig;
/// use ccai::{Client, Config};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), ccai::ClientError> {
/// let client = Client::new(Config::new("1231", "your-api-key"))?;
/// let webhooks = client.webhook();
/// let hook = webhooks.register(WebhookConfig::new("https://example.com/hook")).await?;
/// // No secret given: the server generated one and returns it once.
/// let secret = hook.secret_key.as_ref().map(|s| s.expose_secret().to_owned());
/// webhooks
///     .update(hook.id.as_str(), WebhookConfig::new("https://example.com/hook/v2"))
///     .await?;
/// let deleted = webhooks.delete(hook.id.as_str()).await?;
/// assert!(deleted.success);
/// # let _ = secret;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Webhooks {
    transport: Arc<dyn HttpClient>,
}

impl Webhooks {
    /// A service over `transport` (a [`Client`](crate::Client), an `Arc<dyn HttpClient>`, or your
    /// own [`HttpClient`]).
    pub fn new(transport: impl HttpClient + 'static) -> Self {
        Self {
            transport: Arc::new(transport),
        }
    }

    /// A service over a shared transport.
    pub fn from_arc(transport: Arc<dyn HttpClient>) -> Self {
        Self { transport }
    }

    /// Registers `config.url`. Without [`WebhookConfig::secret`] the server generates a secret and
    /// returns it in [`WebhookResponse::secret_key`]; without [`WebhookConfig::method`] deliveries
    /// use `POST`.
    ///
    /// Sends `POST /v1/client/{clientId}/integration` with
    /// `[{"url", "method", "integrationType": "ALL", "secretKey"?}]`.
    pub async fn register(&self, config: WebhookConfig) -> Result<WebhookResponse, ClientError> {
        let method = config.method.unwrap_or_default();
        self.post_integration(None, &config, method.as_str(), DEFAULT_INTEGRATION_TYPE)
            .await
    }

    /// Updates integration `id` (which must be a positive integer: it is sent as a JSON number).
    /// Without [`WebhookConfig::secret`] the server keeps the current secret. The API replaces the
    /// whole integration, so the integration is read first (`GET …/integration/{id}`) and what the
    /// configuration does not set is kept as it is: the delivery method (without
    /// [`WebhookConfig::method`]) and the integration type, sent back verbatim even when this crate
    /// does not know them ([`IntegrationMethod::Other`]; a type other than `ALL`).
    ///
    /// Sends `POST /v1/client/{clientId}/integration` with
    /// `[{"id", "url", "method", "integrationType", "secretKey"?}]`. An id that is not a
    /// positive integer is [`ClientError::InvalidId`], before anything is sent (sending `0` would
    /// create a new integration).
    pub async fn update(
        &self,
        id: &str,
        config: WebhookConfig,
    ) -> Result<WebhookResponse, ClientError> {
        let numeric = match id.parse::<i64>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(ClientError::InvalidId {
                    id: id.to_owned(),
                    reason: "an update needs the integration's numeric id, as shown by `list`",
                })
            }
        };
        // Before the read below: an update refused for its URL sends nothing at all.
        check_url(&config)?;
        // The number, not the text: `+5` or `05` parse as 5, so read integration 5 (not `%2B5`),
        // the one the update then replaces.
        let current = self.get(&numeric.to_string()).await?;
        let method = config
            .method
            .map_or(current.method, IntegrationMethod::from);
        // An integration read without a type gets the default, as on register.
        let integration_type = match current.integration_type.as_str() {
            "" => DEFAULT_INTEGRATION_TYPE,
            kept => kept,
        };
        self.post_integration(Some(numeric), &config, method.as_str(), integration_type)
            .await
    }

    /// Lists the account's integrations (`GET /v1/client/{clientId}/integration`): every one
    /// this crate can read. One it cannot (a `method` that is not a string, no `id`, …) is left
    /// out with a warning in the log (`tracing`), rather than failing the list; use
    /// [`list_with_unreadable`](Self::list_with_unreadable) to have those too.
    pub async fn list(&self) -> Result<Vec<WebhookResponse>, ClientError> {
        Ok(skip_unreadable(self.list_with_unreadable().await?))
    }

    /// Lists the account's integrations, with the entries this crate cannot read reported
    /// (where, why, and as the API sent them) instead of failing the list. An error is an answer
    /// that is not a list at all.
    pub async fn list_with_unreadable(&self) -> Result<WebhookList, ClientError> {
        let path = self.collection_path();
        let answer = self.transport.request(Method::GET, &path, None).await?;
        answer::integrations(request(Method::GET, &path), answer)
    }

    /// Gets one integration (`GET /v1/client/{clientId}/integration/{id}`).
    pub async fn get(&self, id: &str) -> Result<WebhookResponse, ClientError> {
        let path = self.item_path(id)?;
        let answer = self.transport.request(Method::GET, &path, None).await?;
        answer::one_integration(request(Method::GET, &path), answer)
    }

    /// Deletes one integration (`DELETE /v1/client/{clientId}/integration/{id}`).
    ///
    /// Any 2xx answer is a delete done, with the API's message when it sent one: `{"success",
    /// "message"}` (`success` as a boolean, or `"true"`/`"false"`, `1`/`0`), the deleted
    /// object, `true`, plain text such as `OK` (the message), an HTML page, or nothing. Only an
    /// answer saying `success: false` (or `false`) is a refusal: `Ok` with `success == false`.
    /// The message is one line, and never holds the API key.
    ///
    /// **A retried delete answered `404`.** A delete that timed out, lost its connection or was
    /// answered `500`/`502`/`504` is retried (see [`RetryPolicy`](super::RetryPolicy)), but
    /// that first attempt may have deleted the integration: the retry then finds nothing. That
    /// `404` is a success, with [`WebhookDeleteResponse::not_found_on_retry`] set and a message
    /// that says so: the integration is gone, which is what was asked, and most likely by this
    /// call (a delete is idempotent in what it leaves behind, and a cleanup that fails on a
    /// delete that worked helps no one). A `404` to the first attempt, or to a retry after
    /// attempts that cannot have taken effect (`429`, `503`, no connection), is an error
    /// ([`ClientError::Api`]): the id names no integration.
    pub async fn delete(&self, id: &str) -> Result<WebhookDeleteResponse, ClientError> {
        let path = self.item_path(id)?;
        let sent = self.transport.request(Method::DELETE, &path, None).await;
        delete_outcome(id, sent)
    }

    /// The account id of the underlying transport.
    pub fn client_id(&self) -> &str {
        self.transport.client_id()
    }

    /// Register (no id) and update (id) are the same request: a one-element array POSTed to the
    /// collection, answered with the integration.
    async fn post_integration(
        &self,
        id: Option<i64>,
        config: &WebhookConfig,
        method: &str,
        integration_type: &str,
    ) -> Result<WebhookResponse, ClientError> {
        check_url(config)?;
        let path = self.collection_path();
        let body = integration_body(Method::POST, &path, id, config, method, integration_type)?;
        let answer = self
            .transport
            .request(Method::POST, &path, Some(body))
            .await?;
        answer::one_integration(request(Method::POST, &path), answer)
    }

    fn collection_path(&self) -> String {
        format!(
            "/v1/client/{}/integration",
            segment(self.transport.client_id())
        )
    }

    fn item_path(&self, id: &str) -> Result<String, ClientError> {
        Ok(format!("{}/{}", self.collection_path(), id_segment(id)?))
    }
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("client_id", &self.transport.client_id())
            .finish_non_exhaustive()
    }
}

/// The integrations read, each unreadable one logged (never whole: it may hold its secret).
pub(crate) fn skip_unreadable(list: WebhookList) -> Vec<WebhookResponse> {
    for entry in &list.unreadable {
        tracing::warn!(
            target: "ccai::api",
            index = entry.index,
            id = entry.id.as_ref().map(|id| id.as_str()),
            reason = %entry.reason,
            "left out an integration this client cannot read (list_with_unreadable returns it)"
        );
    }
    list.webhooks
}

fn request(method: Method, path: &str) -> Request<'_> {
    Request { method, path }
}

/// Refuses an empty webhook URL before anything is sent.
pub(crate) fn check_url(config: &WebhookConfig) -> Result<(), ClientError> {
    if config.url.trim().is_empty() {
        Err(ClientError::MissingWebhookUrl)
    } else {
        Ok(())
    }
}

/// The `integrationType` of a new integration: the only one the protocol documents.
const DEFAULT_INTEGRATION_TYPE: &str = "ALL";

/// One integration as the API takes it, fields in the SDKs' order: `id` (update only), `url`,
/// `method`, `integrationType`, `secretKey` (omitted when the server should generate or keep it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IntegrationBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    url: &'a str,
    method: &'a str,
    integration_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<&'a str>,
}

/// The register/update body: a one-element JSON array.
fn integration_body(
    method: Method,
    path: &str,
    id: Option<i64>,
    config: &WebhookConfig,
    delivery_method: &str,
    integration_type: &str,
) -> Result<Box<RawValue>, ClientError> {
    let body = [IntegrationBody {
        id,
        url: &config.url,
        method: delivery_method,
        integration_type,
        secret_key: config.secret_to_send(),
    }];
    to_raw(method, path, &body)
}

/// Serialises a request body (cannot fail for these plain structs; mapped to an error anyway).
pub(crate) fn to_raw(
    method: Method,
    path: &str,
    body: &impl Serialize,
) -> Result<Box<RawValue>, ClientError> {
    serde_json::value::to_raw_value(body).map_err(|e| ClientError::Transport {
        method,
        path: path.to_owned(),
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_in_the_sdks_field_order() {
        let plain = integration_body(
            Method::POST,
            "/p",
            None,
            &WebhookConfig::new("https://x/h"),
            "POST",
            DEFAULT_INTEGRATION_TYPE,
        )
        .unwrap();
        assert_eq!(
            plain.get(),
            r#"[{"url":"https://x/h","method":"POST","integrationType":"ALL"}]"#
        );
        let full = integration_body(
            Method::POST,
            "/p",
            Some(42),
            &WebhookConfig::new("https://x/h").secret("s"),
            "PUT",
            DEFAULT_INTEGRATION_TYPE,
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(full.get()).unwrap(),
            json!([{"id": 42, "url": "https://x/h", "method": "PUT", "integrationType": "ALL", "secretKey": "s"}])
        );
        assert_eq!(
            full.get(),
            r#"[{"id":42,"url":"https://x/h","method":"PUT","integrationType":"ALL","secretKey":"s"}]"#
        );
    }
}
