//! The HTTPS transport: one connection pool, authenticated JSON requests, timeouts and retries.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};

use super::error::{ApiError, ClientError};
use super::retry::{is_retryable, parse_retry_after, Failure, RetryPolicy};
use crate::signature::Secret;
use http::Method;

/// Sends authenticated JSON requests to one base URL. Shared by [`crate::Client`] and the legacy
/// [`LegacyClient`](super::LegacyClient).
pub(crate) struct Transport {
    http: reqwest::Client,
    base_url: String,
    authorization: HeaderValue,
    api_key: Secret,
    timeout: Duration,
    retry: RetryPolicy,
}

/// One failed attempt: the error to report, how it failed, and the server's `Retry-After`.
struct AttemptError {
    error: ClientError,
    failure: Failure,
    retry_after: Option<Duration>,
}

impl Transport {
    /// A transport for `base_url` (absolute `http`/`https`; a trailing `/` is dropped).
    pub(crate) fn new(
        base_url: &str,
        api_key: &Secret,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        if api_key.expose_secret().trim().is_empty() {
            return Err(ClientError::MissingApiKey);
        }
        let base_url = validate_base_url(base_url)?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", api_key.expose_secret()))
                .map_err(|_| ClientError::InvalidApiKey)?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirected POST becomes a GET of the list, whose first element would be mistaken
            // for the result: a 3xx is an error instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Setup(Box::new(e)))?;
        Ok(Self {
            http,
            base_url,
            authorization,
            api_key: api_key.clone(),
            timeout,
            retry,
        })
    }

    /// The base URL, without a trailing `/`.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method path` with `body`, retrying as the [`RetryPolicy`] says.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Box<serde_json::value::RawValue>>,
    ) -> Result<Option<serde_json::Value>, ClientError> {
        let url = format!("{}{}", self.base_url, path);
        // Secrets the request carries: an API that echoes the request must not put them in errors.
        let sent_secrets = body
            .as_deref()
            .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
            .map(|value| secrets_in(&value))
            .unwrap_or_default();
        let body = body.map(|raw| raw.get().as_bytes().to_vec());
        let mut retry = 0;
        loop {
            tracing::debug!(%method, path, attempt = retry + 1, "sending management API request");
            let failed = match self
                .attempt(&method, &url, path, body.clone(), &sent_secrets)
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(failed) => failed,
            };
            if retry >= self.retry.max_retries || !is_retryable(&method, failed.failure) {
                tracing::debug!(%method, path, error = %failed.error, "management API request failed");
                return Err(failed.error);
            }
            let wait = self.retry.delay(retry, failed.retry_after);
            tracing::warn!(
                %method,
                path,
                failure = ?failed.failure,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "management API request failed; retrying"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        path: &str,
        body: Option<Vec<u8>>,
        sent_secrets: &[String],
    ) -> Result<Option<serde_json::Value>, AttemptError> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "*/*");
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.network_error(method, path, e))?;
        let status = response.status();
        if status.is_success() {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| self.network_error(method, path, e))?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AttemptError {
                    error: ClientError::Decode {
                        method: method.clone(),
                        path: path.to_owned(),
                        reason: format!("the {status} response is not JSON ({e})"),
                    },
                    failure: Failure::Status(status.as_u16()),
                    retry_after: None,
                });
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        // The status is what matters; a body that cannot be read is reported as empty.
        let bytes = response.bytes().await.unwrap_or_default();
        let mut text = self.redact(&String::from_utf8_lossy(&bytes));
        for secret in sent_secrets {
            text = redact(&text, secret);
        }
        Err(AttemptError {
            error: ApiError::new(method.clone(), path, status.as_u16(), &text).into(),
            failure: Failure::Status(status.as_u16()),
            retry_after,
        })
    }

    fn network_error(&self, method: &Method, path: &str, error: reqwest::Error) -> AttemptError {
        let path = path.to_owned();
        let method = method.clone();
        // A connect error means nothing was sent, even when it was the connect that timed out.
        let failure = if error.is_connect() {
            Failure::NotSent
        } else if error.is_timeout() {
            Failure::Timeout
        } else {
            Failure::Broken
        };
        let error = if error.is_timeout() {
            ClientError::Timeout { method, path }
        } else if error.is_connect() {
            ClientError::Connect {
                method,
                path,
                source: Box::new(error.without_url()),
            }
        } else {
            ClientError::Transport {
                method,
                path,
                source: Box::new(error.without_url()),
            }
        };
        AttemptError {
            error,
            failure,
            retry_after: None,
        }
    }

    /// `text` with every occurrence of the API key replaced, in case a server echoes it.
    fn redact(&self, text: &str) -> String {
        redact(text, self.api_key.expose_secret())
    }
}

/// `text` with `secret` replaced, both verbatim and JSON-escaped (as an echoing API would show it).
fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    let mut out = text.replace(secret, "[REDACTED]");
    if let Ok(quoted) = serde_json::to_string(secret) {
        let escaped = &quoted[1..quoted.len() - 1];
        if escaped != secret {
            out = out.replace(escaped, "[REDACTED]");
        }
    }
    out
}

/// The `secretKey` values in a request body (an object or an array of objects).
fn secrets_in(body: &serde_json::Value) -> Vec<String> {
    let objects: Vec<&serde_json::Value> = match body {
        serde_json::Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    objects
        .into_iter()
        .filter_map(|o| o.get("secretKey")?.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Checks that `url` is an absolute `http(s)` URL with a host; returns it without a trailing `/`.
fn validate_base_url(url: &str) -> Result<String, ClientError> {
    let trimmed = url.trim().trim_end_matches('/');
    let invalid = |reason: &str| ClientError::InvalidBaseUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("there is no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            validate_base_url("https://core.cloudcontactai.com/api/").ok(),
            Some("https://core.cloudcontactai.com/api".to_owned())
        );
        assert!(validate_base_url("http://127.0.0.1:9/api").is_ok());
        for bad in [
            "",
            "core.cloudcontactai.com/api",
            "ftp://x/api",
            "https://x/api?a=b",
        ] {
            assert!(
                matches!(
                    validate_base_url(bad),
                    Err(ClientError::InvalidBaseUrl { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn api_key_problems_do_not_show_the_key() {
        let timeout = Duration::from_secs(1);
        let empty = Transport::new("http://x", &Secret::new(" "), timeout, RetryPolicy::none());
        assert!(matches!(empty, Err(ClientError::MissingApiKey)));
        let bad = Transport::new(
            "http://x",
            &Secret::new("sk-line\nbreak"),
            timeout,
            RetryPolicy::none(),
        );
        let Err(err) = bad else {
            panic!("a key with a line break must be refused")
        };
        assert!(matches!(err, ClientError::InvalidApiKey));
        assert!(!err.to_string().contains("sk-line"));
        assert!(!format!("{err:?}").contains("sk-line"));
    }

    #[test]
    fn redacts_an_echoed_key_and_hides_it_from_debug() {
        let transport = Transport::new(
            "http://x",
            &Secret::new("sk-abc"),
            Duration::from_secs(1),
            RetryPolicy::none(),
        )
        .unwrap();
        assert_eq!(transport.redact("bad key sk-abc"), "bad key [REDACTED]");
        assert!(!format!("{transport:?}").contains("sk-abc"));
    }
}
