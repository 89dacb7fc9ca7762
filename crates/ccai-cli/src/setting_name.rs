//! Which name an error gives a setting that has both a flag and an environment variable: the
//! variable when the refused value came from the environment (or `.env`), so that the user
//! looks there rather than for a flag they never typed; the flag otherwise.

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

impl Setting {
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
    }
}
