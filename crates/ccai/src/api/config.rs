//! What a [`Client`](crate::Client) needs: the account, the API key, where the API is.

use std::fmt;
use std::time::Duration;

use super::retry::RetryPolicy;
use crate::signature::Secret;

/// The production API.
pub const PRODUCTION_BASE_URL: &str = "https://core.cloudcontactai.com/api";
/// The test environment's API.
pub const TEST_BASE_URL: &str = "https://core-test-cloudcontactai.allcode.com/api";
/// The environment variable that overrides the default base URL.
pub const BASE_URL_ENV: &str = "CCAI_BASE_URL";
/// The default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings for a [`Client`](crate::Client).
///
/// The base URL is chosen in this order: [`base_url`](Self::base_url) if set, then the environment
/// variable `CCAI_BASE_URL`, then [`TEST_BASE_URL`] when
/// [`use_test_environment`](Self::use_test_environment) is set, else [`PRODUCTION_BASE_URL`].
///
/// `Debug` never shows the API key:
///
/// ```
/// use std::time::Duration;
/// use ccai::Config;
///
/// let config = Config::new("1231", "sk-live-123")
///     .use_test_environment(true)
///     .timeout(Duration::from_secs(10));
/// assert!(!format!("{config:?}").contains("sk-live-123"));
///
/// // Or field by field:
/// let mut config = Config::default();
/// config.client_id = "1231".into();
/// config.api_key = "sk-live-123".into();
/// config.base_url = Some("http://127.0.0.1:8080/api".into());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The CloudContactAI account (client) id; it goes in request paths.
    pub client_id: String,
    /// The API key, sent as `Authorization: Bearer <key>`.
    pub api_key: Secret,
    /// Use the test environment's API instead of production (when no base URL is set).
    pub use_test_environment: bool,
    /// An explicit base URL (e.g. `https://core.cloudcontactai.com/api`), overriding everything.
    pub base_url: Option<String>,
    /// How long one attempt may take, from sending to the end of the answer (default 30 s).
    pub timeout: Duration,
    /// How failed requests are retried (default: twice, see [`RetryPolicy`]).
    pub retry: RetryPolicy,
}

/// Without the API key, and the base URL without what it may carry (user name, password, query,
/// fragment), as [`Client`](crate::Client)'s `Debug` and errors show it.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("client_id", &self.client_id)
            .field("api_key", &self.api_key)
            .field("use_test_environment", &self.use_test_environment)
            .field(
                "base_url",
                &self
                    .base_url
                    .as_deref()
                    .map(super::transport::without_secrets),
            )
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            api_key: Secret::new(""),
            use_test_environment: false,
            base_url: None,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}

impl Config {
    /// Settings for `client_id` with `api_key`, everything else default.
    pub fn new(client_id: impl Into<String>, api_key: impl Into<Secret>) -> Self {
        Self {
            client_id: client_id.into(),
            api_key: api_key.into(),
            ..Self::default()
        }
    }

    /// Uses the test environment (when no base URL is set explicitly or in `CCAI_BASE_URL`).
    pub fn use_test_environment(mut self, yes: bool) -> Self {
        self.use_test_environment = yes;
        self
    }

    /// Sets an explicit base URL.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sets the timeout of one attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The base URL this configuration resolves to now (explicit, then `CCAI_BASE_URL`, then the
    /// default for the environment), without a trailing `/`.
    pub fn resolved_base_url(&self) -> String {
        let from_env = std::env::var(BASE_URL_ENV).ok();
        resolve_base_url(
            self.base_url.as_deref(),
            from_env.as_deref(),
            self.use_test_environment,
        )
    }
}

/// Explicit (if non-blank), then the environment value (if non-blank), then the default.
pub(crate) fn resolve_base_url(
    explicit: Option<&str>,
    from_env: Option<&str>,
    use_test_environment: bool,
) -> String {
    let chosen = [explicit, from_env]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|url| !url.is_empty())
        .unwrap_or(if use_test_environment {
            TEST_BASE_URL
        } else {
            PRODUCTION_BASE_URL
        });
    chosen.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_then_env_then_default() {
        assert_eq!(
            resolve_base_url(Some("http://a/api/"), Some("http://b"), true),
            "http://a/api"
        );
        assert_eq!(resolve_base_url(None, Some("http://b"), true), "http://b");
        assert_eq!(
            resolve_base_url(Some("  "), Some("http://b"), false),
            "http://b"
        );
        assert_eq!(resolve_base_url(None, Some(""), true), TEST_BASE_URL);
        assert_eq!(resolve_base_url(None, None, false), PRODUCTION_BASE_URL);
    }

    #[test]
    fn defaults() {
        let config = Config::default();
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.retry.max_retries, 2);
        assert!(!config.use_test_environment);
        assert!(config.base_url.is_none());
    }
}
