//! [`HttpForward`]: a [`Consumer`] that POSTs each event, byte for byte, to another endpoint.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use super::consumer::{Accepted, Consumer, ConsumerFuture, Failure, InboxEvent};
use crate::signature::SIGNATURE_HEADER;

/// An [`HttpForward`] that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardConfigError {
    /// The URL is not an absolute `http` or `https` URL; says why, never showing the URL (it
    /// may carry a password or a token).
    #[error("invalid forward URL: {0}; expected an absolute http:// or https:// URL")]
    InvalidUrl(String),
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client for forwarding: {0}")]
    Client(String),
}

/// Forwards each event to `url` as CloudContactAI would deliver it: a `POST` of the exact body,
/// with the original `X-CCAI-Signature` and `Content-Type` (so the target can verify it as
/// usual).
///
/// - `2xx` → delivered. Redirects are not followed: a `3xx` is a failure.
/// - `429` and `503` with `Retry-After` (seconds or an HTTP date): the next attempt waits at
///   least that long (within the dispatcher's cap).
/// - `410 Gone`: the target wants no more: dead at once.
/// - Any other status, a timeout (default 30 s) or a connection error: a failure, retried on the
///   schedule.
#[derive(Clone)]
pub struct HttpForward {
    url: reqwest::Url,
    client: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for HttpForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only scheme, host and port: a path or query may carry a token.
        f.debug_struct("HttpForward")
            .field("scheme", &self.url.scheme())
            .field("host", &self.url.host_str())
            .field("port", &self.url.port_or_known_default())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpForward {
    /// The default request timeout: 30 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Forwards to `url`.
    pub fn new(url: &str) -> Result<Self, ForwardConfigError> {
        let invalid = |why: &str| ForwardConfigError::InvalidUrl(why.into());
        let url = reqwest::Url::parse(url).map_err(|_| invalid("it does not parse as a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            // The scheme is not named either: `user:password@host` parses with `user` as the
            // scheme and the password in the path.
            return Err(invalid("its scheme is not http or https"));
        }
        if !url.has_host() {
            return Err(invalid("it names no host"));
        }
        let mut forward = Self {
            url,
            client: reqwest::Client::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        };
        forward.client = forward.build_client()?;
        Ok(forward)
    }

    /// The request timeout (connecting, sending and reading the answer).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ForwardConfigError> {
        self.timeout = timeout;
        self.client = self.build_client()?;
        Ok(self)
    }

    fn build_client(&self) -> Result<reqwest::Client, ForwardConfigError> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .build()
            .map_err(|e| ForwardConfigError::Client(e.without_url().to_string()))
    }

    async fn forward(&self, event: &InboxEvent) -> Result<Accepted, Failure> {
        // The method it was delivered with: an integration registered with PUT gets PUT.
        let method = match event.method {
            crate::event::DeliveryMethod::Put => reqwest::Method::PUT,
            _ => reqwest::Method::POST,
        };
        let mut request = self
            .client
            .request(method, self.url.clone())
            .header(
                CONTENT_TYPE,
                event.content_type.as_deref().unwrap_or("application/json"),
            )
            .body(event.body.clone());
        if let Some(signature) = &event.signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let mut response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            Failure::new(format!("{kind}: {}", with_causes(&e.without_url())))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(Accepted::with_status(status.as_u16()));
        }
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                retry_after(response.headers())
            }
            _ => None,
        };
        // A short excerpt of the answer helps whoever reads the attempt history. Read an
        // encoded signature's length past it, so that an echo the cut would split is found.
        let signature = event.signature.as_deref();
        let read = EXCERPT + signature.map_or(0, |s| s.len() * LONGEST_ENCODING);
        let mut answer = Vec::new();
        while answer.len() < read {
            match response.chunk().await {
                Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text = excerpt_without_signature(&answer, signature);
        let mut error = format!("HTTP {status}");
        if status.is_redirection() {
            // Otherwise retried until dead with nothing saying why a redirect "fails".
            error.push_str(
                " (a redirect: not followed, since it would send the signed delivery elsewhere; \
                 forward to the final URL)",
            );
        }
        // No dangling ": " when the answer has no text (a bare 410 or 307).
        if !text.trim().is_empty() {
            error.push_str(": ");
            error.push_str(text.trim());
        }
        let mut failure = Failure::new(error).http_status(status.as_u16());
        if let Some(wait) = retry_after {
            failure = failure.retry_after(wait);
        }
        if status == StatusCode::GONE {
            failure = failure.permanent();
        }
        Err(failure)
    }
}

/// The wait a `Retry-After` header asks for: whole seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many seconds for a u64 is still "a very long time": the dispatcher's cap applies,
        // rather than no wait at all.
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The most bytes of a target's answer excerpted into an attempt's error.
const EXCERPT: usize = 512;

/// The longest way an answer may write one character of a signature (`&#x2B;`).
const LONGEST_ENCODING: usize = 6;

/// The ways an answer may write a character of a signature besides itself: a JSON escape
/// (`\/` is PHP's `json_encode`, `\u002B` System.Text.Json's default), percent-encoding (an
/// echoed query string or form), an HTML character reference. Hex digits in either case.
fn encodings(c: u8) -> &'static [&'static str] {
    match c {
        b'+' => &["\\u002b", "%2b", "&#43;", "&#x2b;"],
        b'/' => &["\\/", "\\u002f", "%2f", "&#47;", "&#x2f;"],
        b'=' => &["\\u003d", "%3d", "&#61;", "&#x3d;"],
        _ => &[],
    }
}

/// The end of an echo of `signature` starting at `at` in `answer`, in any of the encodings.
fn echo_at(answer: &[u8], at: usize, signature: &[u8]) -> Option<usize> {
    let mut i = at;
    for &c in signature {
        if answer.get(i) == Some(&c) {
            i += 1;
            continue;
        }
        let encoded = encodings(c).iter().find(|e| {
            answer
                .get(i..i + e.len())
                .is_some_and(|got| got.eq_ignore_ascii_case(e.as_bytes()))
        })?;
        i += encoded.len();
    }
    Some(i)
}

/// The first [`EXCERPT`] bytes of `answer` (a target's answer, as read), with each echo of the
/// forwarded `signature` replaced with `[REDACTED]`, verbatim or encoded ([`encodings`]): the
/// excerpt is stored as the attempt's error, shown and logged, and a signature verifies its
/// event for ever. An echo that the cut would split is taken whole (the answer is read that much
/// further): cut first, its first 43 characters were kept, which is the whole signature (the
/// 44th is always the `=` padding).
fn excerpt_without_signature(answer: &[u8], signature: Option<&str>) -> String {
    let signature = signature.filter(|s| !s.is_empty()).map(str::as_bytes);
    let mut kept = Vec::with_capacity(EXCERPT);
    let mut i = 0;
    while i < answer.len().min(EXCERPT) {
        match signature.and_then(|s| echo_at(answer, i, s)) {
            Some(end) => {
                kept.extend_from_slice(b"[REDACTED]");
                i = end;
            }
            None => {
                kept.push(answer[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

impl Consumer for HttpForward {
    fn deliver<'a>(&'a self, event: &'a InboxEvent) -> ConsumerFuture<'a> {
        Box::pin(self.forward(event))
    }
}

/// `error` and the errors under it, `: `-separated: reqwest's own text alone ("error sending
/// request") does not say whether the name did not resolve or the connection was refused.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some layers repeat the text of the one below.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(retry_after(&with("120")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&with(" 7 ")), Some(Duration::from_secs(7)));
        let far = retry_after(&with("Fri, 01 Jan 2100 00:00:00 GMT")).expect("a date");
        assert!(far > Duration::from_secs(365 * 24 * 3600));
        // A date in the past means now.
        assert_eq!(
            retry_after(&with("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        // Beyond u64 seconds: the longest wait, which the dispatcher then caps.
        assert_eq!(
            retry_after(&with("99999999999999999999")),
            Some(Duration::MAX)
        );
        assert_eq!(retry_after(&with("soon")), None);
        assert_eq!(retry_after(&with("-5")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
