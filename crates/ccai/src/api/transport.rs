//! The HTTPS transport: one connection pool, authenticated JSON requests, timeouts and retries.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};

use super::error::{ApiError, ClientError};
use super::retry::{is_retryable, outcome_unknown, parse_retry_after, Failure, RetryPolicy};
use super::scrub::{scrub, scrub_strings, secrets_in};
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
        // HTTP would carry other bytes, but an API key is ASCII: one that is not was mangled in
        // copying, and a server echoing it in another encoding would slip past the redaction.
        if !api_key.expose_secret().is_ascii() {
            return Err(ClientError::InvalidApiKey);
        }
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
        // Whether an attempt so far may have taken effect without saying so: a later answer may
        // then describe its doing (a retried DELETE answered 404).
        let mut outcome_unknown_so_far = false;
        loop {
            tracing::debug!(target: "ccai::api", %method, path, attempt = retry + 1, "sending management API request");
            let mut failed = match self
                .attempt(&method, &url, path, body.clone(), &sent_secrets)
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(failed) => failed,
            };
            if let ClientError::Api(error) = &mut failed.error {
                error.after_unknown_outcome = outcome_unknown_so_far;
            }
            outcome_unknown_so_far |= outcome_unknown(failed.failure);
            // A `Retry-After` longer than the policy waits: a retry sooner than the server asked
            // would only meet the same refusal, so the answer is the error.
            let asks_too_long = failed
                .retry_after
                .is_some_and(|asked| asked > self.retry.max_retry_after);
            if retry >= self.retry.max_retries
                || !is_retryable(&method, failed.failure)
                || asks_too_long
            {
                tracing::debug!(target: "ccai::api", %method, path, error = %failed.error, "management API request failed");
                return Err(failed.error);
            }
            let wait = self.retry.delay(retry, failed.retry_after);
            tracing::warn!(
                target: "ccai::api",
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
            let (bytes, complete) = read_capped(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| self.network_error(method, path, e))?;
            if !complete {
                return Err(AttemptError {
                    error: ClientError::Decode {
                        method: method.clone(),
                        path: path.to_owned(),
                        reason: format!(
                            "the {status} response is larger than {} MiB",
                            MAX_RESPONSE_BYTES >> 20
                        ),
                    },
                    failure: Failure::Status(status.as_u16()),
                    retry_after: None,
                });
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            if *method == Method::DELETE {
                return Ok(Some(self.delete_answer(&bytes)));
            }
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AttemptError {
                    // Mostly a base URL that is the web site rather than the API (an HTML page
                    // answered 200): the error says where to look.
                    error: ClientError::NotJson {
                        method: method.clone(),
                        path: path.to_owned(),
                        status: status.as_u16(),
                        detail: e.to_string(),
                    },
                    failure: Failure::Status(status.as_u16()),
                    retry_after: None,
                });
        }
        // `Retry-After` is read where it means "come back then" (`429`, `503`), as `RetryPolicy`
        // documents; other retryable statuses (`500`, `502`, `504`) keep the backoff, and a long
        // ask on them does not end the retries.
        let retry_after = matches!(status.as_u16(), 429 | 503)
            .then(|| response.headers().get(RETRY_AFTER))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        // The status is what matters; a body that cannot be read is reported as empty. Only a
        // prefix is ever shown, so no more is read.
        let (shown, _) = read_capped(response, SCRUBBED_BODY_BYTES)
            .await
            .unwrap_or_default();
        let mut secrets = vec![self.api_key.expose_secret()];
        secrets.extend(sent_secrets.iter().map(String::as_str));
        let text = scrub(&String::from_utf8_lossy(&shown), &secrets);
        Err(AttemptError {
            error: ApiError::new(method.clone(), path, status.as_u16(), &text)
                .with_retry_after(retry_after)
                .into(),
            failure: Failure::Status(status.as_u16()),
            retry_after,
        })
    }

    /// A 2xx answer to a DELETE, as the caller gets it. The status says the delete happened, and
    /// the body is only its message: JSON as sent, any other text (`OK`, an HTML page) as a JSON
    /// string. Either way with the API key scrubbed from its text, as from an error's (a message
    /// is shown as freely as an error is).
    fn delete_answer(&self, bytes: &[u8]) -> serde_json::Value {
        let secrets = [self.api_key.expose_secret()];
        match serde_json::from_slice(bytes) {
            Ok(value) => scrub_strings(value, &secrets),
            Err(_) => serde_json::Value::String(scrub(&String::from_utf8_lossy(bytes), &secrets)),
        }
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

    /// `text` as it may go into an error: see [`scrub`].
    #[cfg(test)]
    fn redact(&self, text: &str) -> String {
        scrub(text, &[self.api_key.expose_secret()])
    }
}

/// How much of an error body is examined and kept (the error shows at most
/// [`MAX_ERROR_BODY_CHARS`](super::error::MAX_ERROR_BODY_CHARS) characters of it).
const SCRUBBED_BODY_BYTES: usize = 16 * 1024;
/// The largest successful answer read: the API's answers are a few KiB, and a server (or
/// something posing as it) must not make the client buffer without bound.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Up to `cap` bytes of `response`'s body, and whether that was all of it. Stops reading at the
/// cap (the connection is then dropped, not drained).
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base_url", &without_secrets(&self.base_url))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Checks that `url` is an absolute `http(s)` URL with a host; returns it without a trailing `/`.
fn validate_base_url(url: &str) -> Result<String, ClientError> {
    let trimmed = url.trim().trim_end_matches('/');
    let invalid = |reason: &str| ClientError::InvalidBaseUrl {
        url: without_secrets(url),
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
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // reqwest would send them as a second `Authorization` header beside the API key's.
        return Err(invalid(
            "a base URL has no user name or password (the API key authenticates)",
        ));
    }
    Ok(trimmed.to_owned())
}

/// `url` as an error may show it: no user name or password, and its query and fragment (which
/// often carry a token) cut to `?…`. Works on text that does not parse as a URL too.
pub(crate) fn without_secrets(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let cut = tail.find(['?', '#']);
    let mut shown = String::new();
    if let Some(scheme) = scheme {
        shown.push_str(scheme);
        shown.push_str("://");
    }
    shown.push_str(host);
    shown.push_str(&tail[..cut.unwrap_or(tail.len())]);
    if cut.is_some() {
        shown.push_str("?…");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_base_url_is_shown_without_credentials_or_query() {
        for (given, shown) in [
            ("ftp://u:hunter2@h/api?k=tok", "ftp://h/api?…"),
            (
                "http://u:hunter2@127.0.0.1:1/?k=tok",
                "http://127.0.0.1:1/?…",
            ),
            ("u:hunter2@host/api", "host/api"),
            ("https://x/api#tok", "https://x/api?…"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(without_secrets(given), shown, "{given}");
        }
        let err = validate_base_url("ftp://user:hunter2@x/api?key=tok").expect_err("refused");
        let text = err.to_string();
        assert!(!text.contains("hunter2") && !text.contains("tok"), "{text}");
    }

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
        let accented = Transport::new(
            "http://x",
            &Secret::new("sk-caf\u{e9}"),
            timeout,
            RetryPolicy::none(),
        );
        assert!(matches!(accented, Err(ClientError::InvalidApiKey)));
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
