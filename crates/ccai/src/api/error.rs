//! What can go wrong when talking to the management API.

use std::fmt;
use std::time::Duration;

use http::Method;

use super::config::PRODUCTION_BASE_URL;
use crate::BoxError;

/// Everything [`Client`](super::Client), [`Webhooks`](super::Webhooks) and
/// [`LegacyClient`](super::LegacyClient) can fail with.
///
/// Each message is one line that says what happened and what to do about it. No message, and no
/// `Debug` output, ever contains the API key.
///
/// ```
/// use ccai::{ClientError, Config};
///
/// let err = ccai::Client::new(Config::new("", "key")).unwrap_err();
/// assert!(matches!(err, ClientError::MissingClientId));
/// assert!(err.to_string().contains("CCAI_CLIENT_ID"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration has no client id.
    #[error("no client id configured: set Config::client_id (CCAI_CLIENT_ID)")]
    MissingClientId,

    /// The client id cannot name an account in a request path (`.` or `..`, which URL
    /// normalisation would turn into "this" or "parent" and so send the request elsewhere).
    #[error(
        "invalid client id {0:?}: set Config::client_id (CCAI_CLIENT_ID) to your account's id"
    )]
    InvalidClientId(String),

    /// The configuration has no API key.
    #[error("no API key configured: set Config::api_key (CCAI_API_KEY)")]
    MissingApiKey,

    /// The API key cannot be sent in an HTTP header (control characters, newlines), or is not
    /// ASCII (an API key is: a key that is not was mangled in copying).
    #[error(
        "the API key contains characters that cannot be sent in an HTTP header or are not ASCII: check CCAI_API_KEY"
    )]
    InvalidApiKey,

    /// The base URL is not an absolute `http` or `https` URL.
    #[error("invalid base URL {url:?}: {reason}: check Config::base_url or CCAI_BASE_URL")]
    InvalidBaseUrl {
        /// The URL as given, without user name, password, query or fragment (they may hold a
        /// secret).
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The webhook configuration has no URL. Nothing was sent.
    #[error(
        "the webhook URL is empty: give the https URL CloudContactAI should deliver events to"
    )]
    MissingWebhookUrl,

    /// An id that cannot be used: empty, or (for an update through the integrations API) not an
    /// integer. Nothing was sent.
    #[error("invalid webhook id {id:?}: {reason}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// The HTTP client could not be built (TLS set-up).
    #[error("could not set up the HTTP client")]
    Setup(#[source] BoxError),

    /// The API answered with a status other than 2xx.
    #[error(transparent)]
    Api(#[from] ApiError),

    /// No answer arrived within the configured timeout.
    #[error(
        "{method} {path} timed out: the API did not answer in time; {}",
        unknown_outcome(.method, "check the network or raise Config::timeout")
    )]
    Timeout {
        /// The request's method.
        method: Method,
        /// The request's path (relative to the base URL).
        path: String,
    },

    /// The connection to the API could not be opened: the request was never sent.
    #[error("could not connect to the API for {method} {path}: check the base URL (Config::base_url or CCAI_BASE_URL) and the network")]
    Connect {
        /// The request's method.
        method: Method,
        /// The request's path (relative to the base URL).
        path: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// The request failed on the way (connection reset, TLS, body read, or a custom transport's
    /// failure).
    #[error(
        "{method} {path} failed before a complete answer arrived: {}",
        unknown_outcome(.method, "check the network and retry")
    )]
    Transport {
        /// The request's method.
        method: Method,
        /// The request's path (relative to the base URL).
        path: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// The API answered 2xx but the body is not what the protocol says.
    #[error("could not read the API's answer to {method} {path}: {reason}")]
    Decode {
        /// The request's method.
        method: Method,
        /// The request's path (relative to the base URL).
        path: String,
        /// What was wrong with it.
        reason: String,
    },

    /// The API answered 2xx with a body that is not JSON: mostly a base URL that is a web site
    /// rather than the API (an HTML page answered `200`).
    #[error(
        "the {status} response to {method} {path} is not JSON ({detail}): is the base URL the \
         API's (e.g. {PRODUCTION_BASE_URL})? Check Config::base_url or CCAI_BASE_URL"
    )]
    NotJson {
        /// The request's method.
        method: Method,
        /// The request's path (relative to the base URL).
        path: String,
        /// The HTTP status code.
        status: u16,
        /// What the JSON parser said.
        detail: String,
    },
}

impl ClientError {
    /// The HTTP status, for [`ClientError::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            _ => None,
        }
    }
}

/// The advice after a request whose outcome is unknown (no answer, or a 5xx): a `POST` (register,
/// update) is not retried because it may have taken effect, and a blind retry could register a
/// second integration, so the advice is to look first.
fn unknown_outcome(method: &Method, otherwise: &'static str) -> &'static str {
    if *method == Method::POST {
        "it may have taken effect: check the integrations (list) before trying again"
    } else {
        otherwise
    }
}

/// How much of a response body an [`ApiError`] keeps.
pub(crate) const MAX_ERROR_BODY_CHARS: usize = 512;

/// A non-2xx answer from the API: the request, the status and the (truncated) response body.
///
/// Its `Display` is one line with advice for the common statuses:
///
/// ```
/// use ccai::api::ApiError;
/// use ccai::api::Method;
///
/// let err = ApiError::new(Method::GET, "/v1/client/1/integration", 401, r#"{"error":"bad key"}"#);
/// assert_eq!(
///     err.to_string(),
///     r#"the API rejected the API key (401 Unauthorized) on GET /v1/client/1/integration: check CCAI_API_KEY; response: {"error":"bad key"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ApiError {
    /// The request's method.
    pub method: Method,
    /// The request's path (relative to the base URL).
    pub path: String,
    /// The HTTP status code.
    pub status: u16,
    /// The response body, cut to 512 characters (with `…` when cut).
    pub body: String,
    /// How long the API asked to wait before trying again (its `Retry-After` header), if it did,
    /// on a `429` or `503`: the header is not read on other statuses (see [`RetryPolicy`]).
    ///
    /// [`RetryPolicy`]: super::RetryPolicy
    pub retry_after: Option<Duration>,
    /// This answer came to a retry, after an earlier attempt of the same request whose outcome is
    /// unknown (it timed out, lost its connection, or was answered `500`, `502` or `504`): what
    /// it describes may be that attempt's doing. A `404` to a retried `DELETE` means the
    /// integration is gone, most likely deleted by the earlier attempt, and
    /// [`Webhooks::delete`](super::Webhooks::delete) reports it so.
    pub after_unknown_outcome: bool,
}

impl ApiError {
    /// An error for `status` on `method path`, keeping at most 512 characters of `body`.
    pub fn new(method: Method, path: impl Into<String>, status: u16, body: &str) -> Self {
        Self {
            method,
            path: path.into(),
            status,
            body: truncate(body.trim(), MAX_ERROR_BODY_CHARS),
            retry_after: None,
            after_unknown_outcome: false,
        }
    }

    /// The error with the wait the API asked for in its `Retry-After` header.
    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    fn summary(&self) -> (&'static str, &'static str) {
        match self.status {
            400 => (
                "the API rejected the request (400 Bad Request)",
                "check the webhook URL and settings",
            ),
            401 => (
                "the API rejected the API key (401 Unauthorized)",
                "check CCAI_API_KEY",
            ),
            403 => (
                "the API refused access (403 Forbidden)",
                "check CCAI_CLIENT_ID and that the API key belongs to that account",
            ),
            404 => (
                "not found (404 Not Found)",
                "check the webhook id, CCAI_CLIENT_ID and the base URL",
            ),
            429 => (
                "rate limited by the API (429 Too Many Requests)",
                "wait a moment and try again",
            ),
            500 | 502 | 504 => (
                "the API failed",
                unknown_outcome(
                    &self.method,
                    "try again later; if it persists, contact CloudContactAI support",
                ),
            ),
            500..=599 => (
                "the API failed",
                "try again later; if it persists, contact CloudContactAI support",
            ),
            // The client follows no redirect (a redirected POST would become a GET): the base
            // URL is almost always the cause, e.g. http:// where the API wants https://.
            300..=399 => (
                "the API answered a redirect",
                "redirects are not followed; check the base URL (Config::base_url or CCAI_BASE_URL), e.g. https:// rather than http://",
            ),
            _ if self.body.is_empty() => (
                "the API answered an unexpected status",
                "its answer had no body; check the base URL and try again",
            ),
            _ => ("the API answered an unexpected status", "see the response"),
        }
    }
}

impl ApiError {
    /// The one-line message with `what` (what happened, e.g. "the API rejected the API key (401
    /// Unauthorized)") and `advice` (what to do) in the place of this type's own, for a program
    /// that names its settings its own way (the `ccai` command line names its flags). The rest is
    /// as `Display` shows it: the request, the status where `what` is not one of the common
    /// ones', the wait the API asked for (which replaces `advice` on a `429` or `503`), the note
    /// on a retry's answer and the response body.
    ///
    /// ```
    /// use ccai::api::{ApiError, Method};
    ///
    /// let err = ApiError::new(Method::GET, "/v1/client/1/integration", 401, "");
    /// assert_eq!(
    ///     err.worded("the API rejected the key in key.txt (401 Unauthorized)", "replace it").to_string(),
    ///     "the API rejected the key in key.txt (401 Unauthorized) on GET /v1/client/1/integration: replace it"
    /// );
    /// ```
    pub fn worded<'a>(&'a self, what: &'a str, advice: &'a str) -> impl fmt::Display + 'a {
        Worded {
            error: self,
            what,
            advice,
        }
    }
}

/// An [`ApiError`] with its caller's words (see [`ApiError::worded`]).
struct Worded<'a> {
    error: &'a ApiError,
    what: &'a str,
    advice: &'a str,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, advice) = self.summary();
        Worded {
            error: self,
            what,
            advice,
        }
        .fmt(f)
    }
}

impl fmt::Display for Worded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            error: this,
            what,
            advice,
        } = *self;
        // The API said how long to wait: that, not "a moment" or "later", is the next step.
        let asked;
        let wait = match this.status {
            429 | 503 => this.retry_after.filter(|wait| !wait.is_zero()),
            _ => None,
        };
        let advice = match wait {
            Some(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                asked = format!("the API asks to wait {secs} s, then try again");
                asked.as_str()
            }
            None => advice,
        };
        if matches!(this.status, 400 | 401 | 403 | 404 | 429) {
            write!(f, "{what} on {} {}: {advice}", this.method, this.path)?;
        } else {
            write!(
                f,
                "{what} ({}) on {} {}: {advice}",
                this.status, this.method, this.path
            )?;
        }
        // What the answer describes (a 409, say) may be that earlier attempt's doing; a read
        // changes nothing, and a POST's 5xx advice says so already.
        let changes = !matches!(this.method, Method::GET | Method::HEAD);
        if this.after_unknown_outcome && changes && !advice.contains("may have taken effect") {
            f.write_str(
                " (a retry's answer: an earlier attempt got no clear answer and may have taken effect)",
            )?;
        }
        if !this.body.is_empty() {
            // One line: the body's own line breaks become spaces.
            let body: String = this
                .body
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            write!(f, "; response: {body}")?;
        }
        Ok(())
    }
}

/// `text` cut to at most `max` characters, with `…` appended when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("", 3), "");
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(MAX_ERROR_BODY_CHARS + 100);
        let err = ApiError::new(Method::GET, "/p", 500, &body);
        assert_eq!(err.body.chars().count(), MAX_ERROR_BODY_CHARS + 1);
        assert!(err.body.ends_with('…'));
    }

    #[test]
    fn the_wait_a_rate_limit_asks_for_is_the_advice() {
        let limited = ApiError::new(Method::GET, "/p", 429, "")
            .with_retry_after(Some(Duration::from_millis(1500)));
        assert_eq!(
            limited.to_string(),
            "rate limited by the API (429 Too Many Requests) on GET /p: the API asks to wait 2 s, then try again"
        );
        // Only where `Retry-After` means "come back later": a 400 keeps its own advice.
        let bad = ApiError::new(Method::POST, "/p", 400, "")
            .with_retry_after(Some(Duration::from_secs(5)));
        assert!(bad.to_string().contains("check the webhook URL"), "{bad}");
    }

    #[test]
    fn an_answer_to_a_retry_after_an_unknown_outcome_says_so() {
        let mut err = ApiError::new(Method::DELETE, "/v1/client/1/integration/42", 409, "in use");
        assert!(!err.to_string().contains("earlier attempt"), "{err}");
        err.after_unknown_outcome = true;
        let mut read = err.clone();
        read.method = Method::GET;
        assert!(!read.to_string().contains("earlier attempt"), "{read}");
        assert_eq!(
            err.to_string(),
            "the API answered an unexpected status (409) on DELETE /v1/client/1/integration/42: see the response (a retry's answer: an earlier attempt got no clear answer and may have taken effect); response: in use"
        );
    }

    #[test]
    fn display_is_one_line_with_status_and_advice() {
        let err = ApiError::new(Method::POST, "/p", 502, "bad\ngateway");
        let text = err.to_string();
        assert!(!text.contains('\n'));
        assert!(text.contains("502"));
        assert!(text.contains("POST /p"));
        assert!(text.contains("bad gateway"));

        let redirect = ApiError::new(Method::GET, "/p", 302, "").to_string();
        assert!(!redirect.contains("see the response"), "{redirect}");
        assert!(
            redirect.contains("302") && redirect.contains("redirect"),
            "{redirect}"
        );
        assert!(redirect.contains("CCAI_BASE_URL") && redirect.contains("https://"));

        let not_found = ApiError::new(Method::DELETE, "/x/7", 404, "");
        assert_eq!(
            not_found.to_string(),
            "not found (404 Not Found) on DELETE /x/7: check the webhook id, CCAI_CLIENT_ID and the base URL"
        );
    }
}
