//! The seam between the webhook service and the network: one authenticated JSON request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::error::ClientError;
use http::Method;

/// A boxed, `Send` future, the return type of [`HttpClient::request`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`Webhooks`](super::Webhooks) needs from a transport: an authenticated JSON
/// request against the management API, and the account's client id.
///
/// [`Client`](crate::Client) implements it over HTTPS with retries; implement it yourself for a
/// custom transport (a proxy, a recorder, a test double). The trait is object safe, so a service
/// holds an `Arc<dyn HttpClient>`.
///
/// ```
/// use ccai::api::{BoxFuture, Method};
/// use ccai::{ClientError, HttpClient};
/// use serde_json::value::RawValue;
/// use serde_json::{json, Value};
///
/// /// Answers every request with one canned integration.
/// struct Canned;
///
/// impl HttpClient for Canned {
///     fn request<'a>(
///         &'a self,
///         method: Method,
///         path: &'a str,
///         _body: Option<Box<RawValue>>,
///     ) -> BoxFuture<'a, Result<Option<Value>, ClientError>> {
///         Box::pin(async move {
///             assert_eq!((method, path), (Method::GET, "/v1/client/1231/integration"));
///             Ok(Some(json!([{"id": 7, "url": "https://example.com/hook", "method": "POST"}])))
///         })
///     }
///
///     fn client_id(&self) -> &str {
///         "1231"
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ClientError> {
/// let service = ccai::api::Webhooks::new(Canned);
/// let hooks = service.list().await?;
/// assert_eq!(hooks[0].id.as_str(), "7");
/// # Ok(())
/// # }
/// ```
pub trait HttpClient: Send + Sync {
    /// Sends `method path` (relative to the API's base URL, starting with `/`) with `body`, JSON
    /// already serialised (so its field order is the SDKs' own), authenticated with the API key. Returns the parsed JSON answer of a 2xx response, or `None`
    /// when its body is empty (e.g. `204 No Content`). A non-2xx answer is
    /// [`ClientError::Api`]; a 2xx body that is not JSON is [`ClientError::Decode`], except
    /// for a `DELETE`, whose 2xx answer is only a message: its text comes back as a JSON string
    /// (`Client` does so; a `Decode` error is read as a delete done too).
    fn request<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<Box<serde_json::value::RawValue>>,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, ClientError>>;

    /// The CloudContactAI account id that goes in request paths.
    fn client_id(&self) -> &str;
}

impl<T: HttpClient + ?Sized> HttpClient for Arc<T> {
    fn request<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<Box<serde_json::value::RawValue>>,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, ClientError>> {
        (**self).request(method, path, body)
    }

    fn client_id(&self) -> &str {
        (**self).client_id()
    }
}
