//! The management API's errors in the command line's words: the library's name the `Config`
//! fields a program sets, where a `ccai` user set a flag, a variable or a line of `.env`. Each
//! error the user can correct names the setting where its value came from, and how to give
//! another; never the value of the API key.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use ccai::api::Method;
use ccai::ClientError;
use clap::parser::ValueSource;

use crate::cli::AccountArgs;
use crate::setting_name::{API_KEY, BASE_URL, CLIENT_ID};

/// Where the API settings came from (clap's value sources; `None` when not given at all).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sources {
    pub client_id: Option<ValueSource>,
    pub api_key: Option<ValueSource>,
    pub base_url: Option<ValueSource>,
}

/// What the errors of one `ccai webhooks` command name.
pub(crate) struct Wording {
    sources: Sources,
    test_env: bool,
    timeout: Duration,
}

/// An error in the command line's words; a cause that matters (a connect error's "connection
/// refused") is written into it.
#[derive(Debug)]
struct Worded {
    message: String,
}

impl fmt::Display for Worded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Worded {}

fn worded(message: String) -> anyhow::Error {
    anyhow::Error::new(Worded { message })
}

impl Wording {
    /// The wording for the settings in `account`, each attempt given `timeout`.
    pub(crate) fn new(account: &AccountArgs, timeout: Duration) -> Self {
        Self {
            sources: account.sources,
            test_env: account.test_env,
            timeout,
        }
    }

    fn client_id(&self) -> String {
        format!("the client id {}", CLIENT_ID.given(self.sources.client_id))
    }

    fn api_key(&self) -> String {
        format!("the API key {}", API_KEY.given(self.sources.api_key))
    }

    fn base_url(&self) -> String {
        if self.test_env {
            return "the test environment's base URL (--test-env)".to_owned();
        }
        match self.sources.base_url {
            None => "the base URL (the default, production; --base-url or CCAI_BASE_URL \
                     chooses another)"
                .to_owned(),
            source => format!("the base URL {}", BASE_URL.given(source)),
        }
    }

    /// How to give another base URL, where the one used came from.
    fn give_base_url(&self) -> String {
        let what = format!("the API's URL (e.g. {})", ccai::api::PRODUCTION_BASE_URL);
        match self.sources.base_url {
            None => format!("pass {what} with --base-url"),
            source => BASE_URL.give(source, &what),
        }
    }

    /// `error` in the command line's words. An error naming no setting keeps the library's.
    pub(crate) fn error(&self, error: ClientError) -> anyhow::Error {
        match error {
            ClientError::MissingClientId => worded(
                "missing client id: pass --client-id or set CCAI_CLIENT_ID (your CloudContactAI \
                 account id)"
                    .to_owned(),
            ),
            ClientError::InvalidClientId(id) => worded(format!(
                "{}, {id:?}, cannot name an account: {}",
                self.client_id(),
                CLIENT_ID.give(self.sources.client_id, "your CloudContactAI account id")
            )),
            ClientError::MissingApiKey => worded(
                "missing API key: pass --api-key or set CCAI_API_KEY (from your CloudContactAI \
                 settings)"
                    .to_owned(),
            ),
            ClientError::InvalidApiKey => worded(format!(
                "{} holds characters that cannot be sent in an HTTP header or are not ASCII \
                 (mangled in copying?): {}",
                self.api_key(),
                API_KEY.give(
                    self.sources.api_key,
                    "the key as your CloudContactAI settings show it"
                )
            )),
            ClientError::InvalidBaseUrl { url, reason } => worded(format!(
                "invalid base URL {url:?} {}: {reason}: {}",
                BASE_URL.given(self.sources.base_url),
                self.give_base_url()
            )),
            ClientError::Timeout { method, path } => {
                let advice = if method == Method::POST {
                    "it may have taken effect: check with `ccai webhooks list` before trying \
                     again (with a longer --timeout)"
                        .to_owned()
                } else {
                    "check the network or raise --timeout".to_owned()
                };
                worded(format!(
                    "{method} {path} timed out: the API did not answer within {:?}; {advice}",
                    self.timeout
                ))
            }
            ClientError::Connect {
                method,
                path,
                source,
            } => worded(format!(
                // The cause without reqwest's and hyper's wrapper texts ("error sending
                // request: client error (Connect)"), as a forward's failure is told.
                "could not connect to the API for {method} {path}: check {} and the network: {}",
                self.base_url(),
                ccai::inbox::request_failure(&*source)
            )),
            ClientError::NotJson {
                method,
                path,
                status,
                detail,
            } => worded(format!(
                "the {status} response to {method} {path} is not JSON ({detail}): is {} the \
                 API's? If not, {}",
                self.base_url(),
                self.give_base_url()
            )),
            ClientError::Api(api) => {
                let (what, advice) = match api.status {
                    401 => (
                        format!("the API rejected {} (401 Unauthorized)", self.api_key()),
                        API_KEY.give(
                            self.sources.api_key,
                            "a current API key from your CloudContactAI settings",
                        ),
                    ),
                    403 => (
                        "the API refused access (403 Forbidden)".to_owned(),
                        format!(
                            "check {} and that {} belongs to that account",
                            self.client_id(),
                            self.api_key()
                        ),
                    ),
                    404 => (
                        "not found (404 Not Found)".to_owned(),
                        format!(
                            "check the webhook id, {} and {}",
                            self.client_id(),
                            self.base_url()
                        ),
                    ),
                    300..=399 => (
                        "the API answered a redirect".to_owned(),
                        format!(
                            "redirects are not followed; check {}, e.g. https:// rather than \
                             http://",
                            self.base_url()
                        ),
                    ),
                    // Their advice names no setting.
                    _ => return anyhow::Error::new(ClientError::Api(api)),
                };
                let message = api.worded(&what, &advice).to_string();
                worded(message)
            }
            other => anyhow::Error::new(other),
        }
    }
}
