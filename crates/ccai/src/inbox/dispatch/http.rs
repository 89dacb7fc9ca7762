//! [`HttpForward`]: a [`Consumer`] that POSTs each event, byte for byte, to another endpoint.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::StatusCode;

use super::auth_scheme;
use super::consumer::{Accepted, Consumer, ConsumerFuture, Failure, InboxEvent};
use super::excerpt::{self, Secret};
use super::path_tokens::path_tokens;
use super::query_tokens::{query_tokens, SHORTEST_TOKEN};
use super::url_credentials::UrlCredentials;
use crate::redact::spelled;
use crate::signature::SIGNATURE_HEADER;

/// The headers that frame a request or its connection, which the HTTP client sets: not
/// [`HttpForward::header`]'s to give (as `HeaderName`s spell them, in lowercase).
const FRAMING: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

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
    /// A header given to [`HttpForward::header`] cannot be sent: says why, never showing the
    /// value, nor a name that is not one (either may be a token).
    #[error("invalid forward header: {0}")]
    InvalidHeader(String),
}

/// Forwards each event to `url` as CloudContactAI would deliver it: the exact body, with the
/// method it came with (`POST`, or `PUT` for an integration registered with it) and the original
/// `X-CCAI-Signature` and `Content-Type` (so the target can verify it as usual).
///
/// - `2xx` → delivered. Redirects are not followed: a `3xx` is a failure.
/// - `429` and `503` with `Retry-After` (seconds or an HTTP date): the next attempt waits at
///   least that long (within the dispatcher's cap).
/// - `410 Gone`: the target wants no more: dead at once.
/// - Any other status, a timeout (default 30 s) or a connection error: a failure, retried on the
///   schedule.
///
/// A user name and password in the URL (`https://user:password@host/hook`) are sent as
/// `Authorization: Basic`. A failure's error holds an excerpt of the target's answer, with any
/// echo of the signature, of those credentials, of the query's values (of 8 characters or
/// more: they often carry a token) or of the path's segments that may be tokens redacted,
/// verbatim or escaped (percent, JSON, HTML). A path segment is taken for a token (as Slack-style
/// hook URLs carry theirs: `/services/T000/B000/XsEcReTt0kEn1234567890`) when, percent-decoded,
/// it has 8 characters or more with an ASCII digit or capital letter among them, or 20
/// characters or more whatever they are; ordinary words (`webhooks`, `services`) are left, so
/// that the error still says which endpoint answered. [`redact_path_tokens`] applies the same
/// rule to a URL shown elsewhere.
///
/// [`redact_path_tokens`]: crate::inbox::redact_path_tokens
///
/// [`header`](Self::header) adds headers of your own to every forward (one naming the
/// forwarder, say, so that a receiver can tell its own forwards coming back to it); the body,
/// signature and content type go out unchanged.
#[derive(Clone)]
pub struct HttpForward {
    /// Without its credentials: they are in `credentials`, which nothing shows.
    url: reqwest::Url,
    credentials: Option<UrlCredentials>,
    /// The URL's query values that may be tokens, redacted like the credentials.
    query_tokens: Vec<String>,
    /// The URL's path segments that may be tokens, redacted likewise.
    path_tokens: Vec<String>,
    /// Sent with every forward ([`HttpForward::header`]).
    headers: HeaderMap,
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
            .field("basic_auth", &self.credentials.is_some())
            // Names only: a value may be a token.
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
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
        let mut url =
            reqwest::Url::parse(url).map_err(|_| invalid("it does not parse as a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            // The scheme is not named either: `user:password@host` parses with `user` as the
            // scheme and the password in the path.
            return Err(invalid("its scheme is not http or https"));
        }
        if !url.has_host() {
            return Err(invalid("it names no host"));
        }
        // Kept apart from the URL, so that no error or log that shows the URL can show them.
        let credentials = UrlCredentials::take(&mut url).map_err(invalid)?;
        let mut forward = Self {
            query_tokens: query_tokens(&url),
            path_tokens: path_tokens(&url),
            url,
            credentials,
            headers: HeaderMap::new(),
            client: reqwest::Client::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        };
        forward.client = forward.build_client()?;
        Ok(forward)
    }

    /// What authenticates a request of this forward, for redaction: the signature, the URL's
    /// credentials, query values and path tokens, and the values of [`header`](Self::header)s.
    /// Of a header value `<scheme> <credential>` ([`auth_scheme`]), the whole value and the
    /// credential, and runs of the credential's start only: the value's start is the scheme
    /// word, which an answer says without echoing anything.
    fn secrets<'a>(&'a self, signature: Option<&'a str>) -> Vec<Secret<'a>> {
        let mut secrets: Vec<&str> = signature.into_iter().collect();
        if let Some(credentials) = &self.credentials {
            secrets.extend(credentials.secrets());
        }
        secrets.extend(self.query_tokens.iter().map(String::as_str));
        secrets.extend(self.path_tokens.iter().map(String::as_str));
        let mut secrets: Vec<Secret<'_>> = secrets.into_iter().map(Secret::new).collect();
        let values = self
            .headers
            .values()
            .filter_map(|value| value.to_str().ok())
            .filter(|value| value.chars().count() >= SHORTEST_TOKEN);
        for value in values {
            match auth_scheme::credential(value) {
                Some(credential) => {
                    secrets.push(Secret::whole_only(value));
                    let chars = credential.chars().count();
                    if chars >= SHORTEST_TOKEN {
                        secrets.push(Secret::new(credential));
                    } else if chars >= spelled::partial_min(value.chars().count()) {
                        // As long as a run of the whole value's end ("Token s3cr3t7"): it was
                        // redacted echoed alone as that, and still is, whole only.
                        secrets.push(Secret::whole_only(credential));
                    }
                    // A shorter one alone, like any short value, is left: "Bearer abc" is
                    // redacted whole, not every "abc".
                }
                None => secrets.push(Secret::new(value)),
            }
        }
        secrets
    }

    /// The start of `answer` (an answer to a request sent to this forward's URL with
    /// `signature`) as a recorded error shows it: its first 512 bytes, with every echo of what
    /// authenticates the request replaced with `[REDACTED]`, verbatim or encoded (the
    /// signature, the URL's credentials, query values and path tokens, the headers' values).
    /// For a program that sends to the same URL itself and shows what came back (`ccai
    /// trigger`).
    ///
    /// ```
    /// use ccai::inbox::HttpForward;
    ///
    /// let forward = HttpForward::new("https://hooks.example.com/services/T000/B000/XsEcReTt0kEn1234567890")?;
    /// let answer = b"404: no route for POST /services/T000/B000/XsEcReTt0kEn1234567890";
    /// assert_eq!(
    ///     forward.redact_echoes(answer, None),
    ///     "404: no route for POST /services/T000/B000/[REDACTED]"
    /// );
    /// # Ok::<(), ccai::inbox::ForwardConfigError>(())
    /// ```
    pub fn redact_echoes(&self, answer: &[u8], signature: Option<&str>) -> String {
        excerpt::without_secrets(answer, &self.secrets(signature))
    }

    /// The request timeout (connecting, sending and reading the answer).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ForwardConfigError> {
        self.timeout = timeout;
        self.client = self.build_client()?;
        Ok(self)
    }

    /// Sends the header `name: value` with every forward; a second call with the same name
    /// replaces the value. Refused, so that the target gets the delivery as CloudContactAI sent
    /// it: the headers the forward sets itself (`Content-Type`, `X-CCAI-Signature`,
    /// `Authorization`), those that say how to decode the body (`Content-Encoding`: a target
    /// would decompress the exact bytes, and fail or verify something else), and those that
    /// frame the request or the connection, which the HTTP client sets (`Host`,
    /// `Content-Length`, `Transfer-Encoding`, `Connection`, `Keep-Alive`, `Proxy-Connection`,
    /// `TE`, `Trailer`, `Upgrade`, `Expect`). A value of 8 characters or more is redacted from
    /// the excerpt of an answer that echoes it, like the URL's credentials. Of a value that is
    /// an HTTP authentication scheme, one space and a credential (`Bearer eyJ…`, `Basic dXNl…`,
    /// `Token …`), the credential is redacted too, alone or cut short; the scheme word is not
    /// (an answer saying "Bearer expired" is left as it is).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ForwardConfigError> {
        let invalid = |why: String| ForwardConfigError::InvalidHeader(why);
        // Not shown: a name that is not one may be a token in the wrong place (a whole
        // `Authorization: Bearer …` line, or the arguments swapped).
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            invalid(
                "the name given is not a header name (an HTTP token: no space, colon or \
                 control character)"
                    .to_owned(),
            )
        })?;
        if name == CONTENT_TYPE
            || name == AUTHORIZATION
            || name.as_str().eq_ignore_ascii_case(SIGNATURE_HEADER)
        {
            return Err(invalid(format!(
                "{name} is set by the forward itself and cannot be replaced"
            )));
        }
        if name == CONTENT_ENCODING {
            return Err(invalid(format!(
                "{name} would make the target decode the body, which is forwarded byte for byte \
                 as it arrived"
            )));
        }
        if FRAMING.contains(&name.as_str()) {
            return Err(invalid(format!(
                "{name} frames the request or its connection, which the HTTP client does itself"
            )));
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            invalid(format!(
                "the value of {name} holds a character a header cannot carry"
            ))
        })?;
        self.headers.insert(name, value);
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
            .headers(self.headers.clone())
            .body(event.body.clone());
        if let Some(signature) = &event.signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        if let Some(credentials) = &self.credentials {
            request = request.header(AUTHORIZATION, credentials.header().clone());
        }
        let mut response = request.send().await.map_err(|e| {
            // An https:// URL on a plain HTTP server: said so, with what to change.
            if let Some(tls) = super::tls_failure(&e) {
                return Failure::new(format!("connection failed: {tls}"));
            }
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            Failure::new(format!(
                "{kind}: {}",
                super::request_failure(&e.without_url())
            ))
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
        // A short excerpt of the answer helps whoever reads the attempt history; a target that
        // echoes the request (a debugging endpoint, a framework's error page) must not put what
        // authenticates it there: the signature verifies its event for ever.
        let secrets = self.secrets(event.signature.as_deref());
        let read = excerpt::read_limit(&secrets);
        let mut answer = Vec::new();
        while answer.len() < read {
            match response.chunk().await {
                Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text = excerpt::without_secrets(&answer, &secrets);
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

impl Consumer for HttpForward {
    fn deliver<'a>(&'a self, event: &'a InboxEvent) -> ConsumerFuture<'a> {
        Box::pin(self.forward(event))
    }
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
    fn a_short_credential_echoed_alone_is_redacted_as_it_was_before_the_scheme_was_read() {
        // 13 and 12 characters: the whole value's end runs were 7 and 6 characters, so the
        // credential echoed alone was one and was redacted; it is under the 8 a credential
        // needs to be a secret of its own.
        for (value, credential) in [("Token s3cr3t7", "s3cr3t7"), ("DPoP s3cr3t", "s3cr3t")] {
            let forward = HttpForward::new("https://hooks.example.com/in")
                .and_then(|forward| forward.header("Proxy-Authorization", value))
                .expect("a forward");
            let answer = format!("unknown token {credential}; send {value} again");
            assert_eq!(
                forward.redact_echoes(answer.as_bytes(), None),
                "unknown token [REDACTED]; send [REDACTED] again",
                "{value}"
            );
        }
        // Shorter than a run of the whole value was: left alone, as before.
        let forward = HttpForward::new("https://hooks.example.com/in")
            .and_then(|forward| forward.header("Proxy-Authorization", "Bearer abc12"))
            .expect("a forward");
        assert_eq!(
            forward.redact_echoes(b"abc12: Bearer abc12", None),
            "abc12: [REDACTED]"
        );
    }

    #[test]
    fn an_auth_headers_scheme_word_is_not_taken_for_part_of_its_secret() {
        const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo";
        let value = format!("Bearer {JWT}");
        let forward = HttpForward::new("https://hooks.example.com/in")
            .and_then(|forward| forward.header("Proxy-Authorization", &value))
            .expect("a forward");
        // "Bearer e…" starts the value as a JWT's does: it was redacted as the value's start.
        let answer = format!(
            "401: Bearer expired, send another. got {value}, {JWT}, \
             Bearer eyJhbGciOiJI\u{2026} and \u{2026}a9IV7pAx_Zmeo"
        );
        assert_eq!(
            forward.redact_echoes(answer.as_bytes(), None),
            "401: Bearer expired, send another. got [REDACTED], [REDACTED], \
             Bearer [REDACTED]\u{2026} and \u{2026}[REDACTED]"
        );
        // Encoded whole, the scheme's space too.
        let answer = format!("?auth=Bearer%20{JWT}&x=1");
        assert_eq!(
            forward.redact_echoes(answer.as_bytes(), None),
            "?auth=[REDACTED]&x=1"
        );
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
