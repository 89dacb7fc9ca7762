//! When a failed request is sent again, and how long to wait first.

use std::time::{Duration, SystemTime};

use http::Method;

/// How failed requests are retried: how often, and how long to wait in between.
///
/// What is retried (each at most [`max_retries`](Self::max_retries) times):
///
/// | Failure | `GET`, `PUT`, `DELETE` | `POST` |
/// |---|---|---|
/// | `429 Too Many Requests`, `503 Service Unavailable` | retried | retried |
/// | `500`, `502`, `504` | retried | **not** retried (it may have taken effect) |
/// | connection could not be opened (the request was never sent) | retried | retried |
/// | timeout, connection lost after sending | retried | **not** retried |
/// | any other status (`4xx`) | not retried | not retried |
///
/// The wait before retry *n* (counting from 0) is `initial_backoff · 2ⁿ`, capped at `max_backoff`,
/// with jitter (a random wait between half of it and all of it). When a `429`/`503` carries a
/// `Retry-After` header (seconds or an HTTP date), that wait is used instead; when it asks for
/// longer than `max_retry_after`, there is no retry (one sooner than asked would be refused too):
/// the error is returned at once, with the wait the API asked for. A `Retry-After` on any other
/// status (a `500` with one, say) is ignored: the backoff applies, and the retries go on.
///
/// ```
/// use std::time::Duration;
/// use ccai::api::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .max_retries(3)
///     .backoff(Duration::from_millis(200), Duration::from_secs(2))
///     .max_retry_after(Duration::from_secs(10));
/// assert_eq!(policy.max_retries, 3);
/// assert_eq!(RetryPolicy::none().max_retries, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 2; 0 disables retries).
    pub max_retries: u32,
    /// The wait before the first retry (default 500 ms), doubled for each further one.
    pub initial_backoff: Duration,
    /// The longest computed wait between attempts (default 8 s).
    pub max_backoff: Duration,
    /// The longest wait a `Retry-After` header can ask for and still be retried (default 30 s); a
    /// longer ask ends the retries, and the error says how long the API asked to wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Sets the number of retries after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the first wait and the longest computed wait.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets the longest wait a `Retry-After` header can ask for and still be retried.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The wait before retry number `retry` (0 for the first), honouring `retry_after` when the
    /// server sent one.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_retry_after);
        }
        let factor = 2u32.saturating_pow(retry);
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_nanos = fastrand::u64(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX));
        half + Duration::from_nanos(jitter_nanos)
    }
}

/// Why one attempt failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server answered with this status.
    Status(u16),
    /// The connection could not be opened: nothing was sent.
    NotSent,
    /// No answer within the timeout.
    Timeout,
    /// The request may have reached the server, but the exchange broke.
    Broken,
}

/// Whether an attempt that failed this way may be sent again.
pub(crate) fn is_retryable(method: &Method, failure: Failure) -> bool {
    match failure {
        Failure::Status(429 | 503) | Failure::NotSent => true,
        _ if outcome_unknown(failure) => method.is_idempotent(),
        Failure::Status(_) | Failure::Timeout | Failure::Broken => false,
    }
}

/// Whether an attempt that failed this way may still have taken effect on the server: no answer
/// (a timeout, a connection lost after sending) or a server failure (`500`, `502`, `504`). A
/// `429` or `503` is a refusal to start, and a connection never opened sent nothing.
pub(crate) fn outcome_unknown(failure: Failure) -> bool {
    matches!(
        failure,
        Failure::Status(500 | 502 | 504) | Failure::Timeout | Failure::Broken
    )
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (a date in the past means now).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 still means "a very long time" (capped by the policy).
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_retry_after_is_a_long_wait_not_a_parse_failure() {
        assert_eq!(
            parse_retry_after("99999999999999999999999", SystemTime::UNIX_EPOCH),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn what_is_retried() {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::POST] {
            assert!(is_retryable(&method, Failure::Status(429)));
            assert!(is_retryable(&method, Failure::Status(503)));
            assert!(is_retryable(&method, Failure::NotSent));
            for status in [400, 401, 403, 404, 409, 422] {
                assert!(!is_retryable(&method, Failure::Status(status)));
            }
        }
        for failure in [
            Failure::Status(500),
            Failure::Status(502),
            Failure::Status(504),
            Failure::Timeout,
            Failure::Broken,
        ] {
            assert!(is_retryable(&Method::GET, failure));
            assert!(is_retryable(&Method::DELETE, failure));
            assert!(!is_retryable(&Method::POST, failure), "{failure:?}");
            assert!(outcome_unknown(failure), "{failure:?}");
        }
        for known in [
            Failure::Status(429),
            Failure::Status(503),
            Failure::Status(404),
            Failure::NotSent,
        ] {
            assert!(!outcome_unknown(known), "{known:?}");
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy =
            RetryPolicy::default().backoff(Duration::from_millis(100), Duration::from_millis(300));
        for _ in 0..50 {
            let first = policy.delay(0, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let second = policy.delay(1, None);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
            let capped = policy.delay(10, None);
            assert!(capped >= Duration::from_millis(150) && capped <= Duration::from_millis(300));
            assert!(policy.delay(u32::MAX, None) <= Duration::from_millis(300));
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let policy = RetryPolicy::default().max_retry_after(Duration::from_secs(5));
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.delay(3, Some(Duration::from_secs(3600))),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn none_never_retries() {
        assert_eq!(RetryPolicy::none().max_retries, 0);
        assert_eq!(RetryPolicy::default().max_retries, 2);
    }
}
