//! Which name an error gives a setting that has both a flag and an environment variable: the
//! variable when the refused value came from the environment (or `.env`), so that the user
//! looks there rather than for a flag they never typed; the flag otherwise.

use std::sync::OnceLock;

use clap::parser::ValueSource;

/// A setting's flag and environment variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Setting {
    pub flag: &'static str,
    pub env: &'static str,
}

/// `--store` (every command with a store).
pub(crate) const STORE: Setting = Setting {
    flag: "--store",
    env: "CCAI_STORE",
};

/// `ccai ui --token`.
pub(crate) const UI_TOKEN: Setting = Setting {
    flag: "--token",
    env: "CCAI_UI_TOKEN",
};

/// `ccai listen --ui-token`.
pub(crate) const LISTEN_UI_TOKEN: Setting = Setting {
    flag: "--ui-token",
    env: "CCAI_UI_TOKEN",
};

/// `ccai listen --admin-token`.
pub(crate) const ADMIN_TOKEN: Setting = Setting {
    flag: "--admin-token",
    env: "CCAI_ADMIN_TOKEN",
};

/// `--client-id`.
pub(crate) const CLIENT_ID: Setting = Setting {
    flag: "--client-id",
    env: "CCAI_CLIENT_ID",
};

/// `--secret` (the webhook secret of `sign`, `verify`, `trigger` and `listen`).
pub(crate) const WEBHOOK_SECRET: Setting = Setting {
    flag: "--secret",
    env: "CCAI_WEBHOOK_SECRET",
};

/// `--api-key`.
pub(crate) const API_KEY: Setting = Setting {
    flag: "--api-key",
    env: "CCAI_API_KEY",
};

/// `--base-url`.
pub(crate) const BASE_URL: Setting = Setting {
    flag: "--base-url",
    env: "CCAI_BASE_URL",
};

/// The variables `./.env` set (the environment did not).
static FROM_DOTENV: OnceLock<Vec<String>> = OnceLock::new();

/// Records the variables `./.env` set, once, before the command line is read.
pub(crate) fn record_dotenv(names: Vec<String>) {
    let _ = FROM_DOTENV.set(names);
}

/// Whether `./.env` set the variable `name`.
fn from_dotenv(name: &str) -> bool {
    FROM_DOTENV
        .get()
        .is_some_and(|names| names.iter().any(|n| n == name))
}

impl Setting {
    /// Where a value from `source` came from, as an error names it after the setting ("the API
    /// key given with --api-key"): "given with --api-key", "from CCAI_API_KEY", or "from
    /// CCAI_API_KEY in .env". Never the value.
    pub(crate) fn given(self, source: Option<ValueSource>) -> String {
        match source {
            Some(ValueSource::EnvVariable) if from_dotenv(self.env) => {
                format!("from {} in .env", self.env)
            }
            Some(ValueSource::EnvVariable) => format!("from {}", self.env),
            _ => format!("given with {}", self.flag),
        }
    }

    /// How to give `what` instead of the value from `source`, where it came from: "pass WHAT
    /// with --api-key", "set CCAI_API_KEY to WHAT (or pass it with --api-key)", or the same
    /// for `.env`.
    pub(crate) fn give(self, source: Option<ValueSource>, what: &str) -> String {
        let flag = self.flag;
        match source {
            Some(ValueSource::EnvVariable) if from_dotenv(self.env) => {
                format!(
                    "set {} in .env to {what} (or pass it with {flag})",
                    self.env
                )
            }
            Some(ValueSource::EnvVariable) => {
                format!("set {} to {what} (or pass it with {flag})", self.env)
            }
            _ => format!("pass {what} with {flag}"),
        }
    }

    /// The name to show for a value that came from `source` (clap's
    /// [`ArgMatches::value_source`](clap::ArgMatches::value_source), or the equivalent for a
    /// variable the command reads itself).
    pub(crate) fn shown(self, source: Option<ValueSource>) -> &'static str {
        match source {
            Some(ValueSource::EnvVariable) => self.env,
            _ => self.flag,
        }
    }

    /// How to stop giving a value from `source`: "leave --token out", or "unset CCAI_UI_TOKEN".
    pub(crate) fn leave_out(self, source: Option<ValueSource>) -> String {
        match source {
            Some(ValueSource::EnvVariable) => format!("unset {}", self.env),
            _ => format!("leave {} out", self.flag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_is_named_only_for_a_value_from_the_environment() {
        assert_eq!(STORE.shown(Some(ValueSource::EnvVariable)), "CCAI_STORE");
        assert_eq!(STORE.shown(Some(ValueSource::CommandLine)), "--store");
        assert_eq!(STORE.shown(None), "--store");
        assert_eq!(
            UI_TOKEN.leave_out(Some(ValueSource::EnvVariable)),
            "unset CCAI_UI_TOKEN"
        );
        assert_eq!(
            UI_TOKEN.leave_out(Some(ValueSource::CommandLine)),
            "leave --token out"
        );
        assert_eq!(
            API_KEY.given(Some(ValueSource::CommandLine)),
            "given with --api-key"
        );
        assert_eq!(
            API_KEY.given(Some(ValueSource::EnvVariable)),
            "from CCAI_API_KEY"
        );
        assert_eq!(
            API_KEY.give(Some(ValueSource::EnvVariable), "a key"),
            "set CCAI_API_KEY to a key (or pass it with --api-key)"
        );
    }
}
