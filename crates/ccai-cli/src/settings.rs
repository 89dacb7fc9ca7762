//! Resolving what a command needs from flags, the environment, `.env` and the dev credentials.

use anyhow::{bail, Result};
use clap::parser::ValueSource;

use crate::cli::{AccountArgs, SecretArgs};
use crate::dev_credentials::{self, DevCredentials};
use crate::setting_name;

/// The client id and secret a signing or verifying command uses.
pub(crate) struct SigningSettings {
    pub client_id: String,
    pub secret: String,
    /// The development credentials, when any value came from them.
    pub dev: Option<DevCredentials>,
    /// Whether the client id came from the development credentials.
    pub dev_client_id: bool,
    /// Whether the secret came from the development credentials (only then may it be printed).
    pub dev_secret: bool,
}

impl SigningSettings {
    /// A note for when one of the two came from the development credentials and the other was
    /// configured: a real delivery never verifies with such a pair, and nothing else would say
    /// why (`ccai listen` prints the same note).
    pub(crate) fn mixed_note(&self) -> Option<String> {
        if self.dev.is_none() || self.dev_client_id == self.dev_secret {
            return None;
        }
        let (configured, development) = if self.dev_client_id {
            ("secret", "client id")
        } else {
            ("client id", "secret")
        };
        Some(format!(
            "note: using your configured {configured} with the development {development}; set both \
             CCAI_CLIENT_ID and CCAI_WEBHOOK_SECRET (or --client-id and --secret) for real deliveries"
        ))
    }
}

/// Flags and environment first; the development credentials fill what is missing (and are
/// created when `create` is set, as `listen` does).
pub(crate) fn signing(
    account: &AccountArgs,
    secret: &SecretArgs,
    create: bool,
) -> Result<(SigningSettings, bool)> {
    configured(account, secret)?.complete(create)
}

/// The client id and secret as configured (flags, environment), checked, before the development
/// credentials fill what is missing: `ccai listen` checks them before it creates anything.
pub(crate) struct Configured {
    client_id: Option<String>,
    secret: Option<String>,
}

/// The configured client id and secret, refused if either has whitespace around it, or is
/// given as an empty flag: `--secret ''` (a blank shell variable, say) silently signed with the
/// development secret. An empty environment variable counts as unset.
pub(crate) fn configured(account: &AccountArgs, secret: &SecretArgs) -> Result<Configured> {
    if account.client_id_flag && account.client_id.as_deref() == Some("") {
        bail!("--client-id is empty: give your CloudContactAI client id, or leave --client-id out to use CCAI_CLIENT_ID or the development one");
    }
    if secret.secret_flag && secret.secret.as_deref() == Some("") {
        bail!("--secret is empty: give the secret, or leave --secret out to use CCAI_WEBHOOK_SECRET or the development secret");
    }
    // Where each value came from, for the error to send the user to the flag or the variable.
    let secret_source = if secret.secret_flag {
        ValueSource::CommandLine
    } else {
        ValueSource::EnvVariable
    };
    Ok(Configured {
        client_id: exact(
            "client id",
            setting_name::CLIENT_ID.given(account.sources.client_id),
            account.client_id.as_deref(),
        )?,
        secret: exact(
            "webhook secret",
            setting_name::WEBHOOK_SECRET.given(Some(secret_source)),
            secret.secret.as_deref(),
        )?,
    })
}

impl Configured {
    /// The configured client id, if one is (else the development one will be used).
    pub(crate) fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// Whether the development credentials fill a part (both are not configured).
    pub(crate) fn needs_development(&self) -> bool {
        self.client_id.is_none() || self.secret.is_none()
    }

    /// The settings, with the development credentials filling what is not configured (created
    /// when `create` is set); whether they were created.
    pub(crate) fn complete(self, create: bool) -> Result<(SigningSettings, bool)> {
        let Self { client_id, secret } = self;
        if let (Some(client_id), Some(secret)) = (&client_id, &secret) {
            return Ok((
                SigningSettings {
                    client_id: client_id.clone(),
                    secret: secret.clone(),
                    dev: None,
                    dev_client_id: false,
                    dev_secret: false,
                },
                false,
            ));
        }
        let (dev, created) = if create {
            dev_credentials::load_or_create()?
        } else {
            match dev_credentials::load()? {
                Some(dev) => (dev, false),
                // Say what is missing: a set secret with no client id is not "no secret".
                None if secret.is_some() => bail!(
                    "no client id: pass --client-id or set CCAI_CLIENT_ID (or run `ccai listen` once to create development credentials)"
                ),
                None => bail!(
                    "no webhook secret: pass --secret or set CCAI_WEBHOOK_SECRET (or run `ccai listen` once to create a development secret)"
                ),
            }
        };
        Ok((
            SigningSettings {
                dev_client_id: client_id.is_none(),
                dev_secret: secret.is_none(),
                client_id: client_id.unwrap_or_else(|| dev.client_id.clone()),
                secret: secret.unwrap_or_else(|| dev.secret.clone()),
                dev: Some(dev),
            },
            created,
        ))
    }
}

/// A configured value used exactly as given: unset or empty is `None`; surrounding whitespace is
/// an error rather than silently trimmed (the signature would then be over a different value).
/// `given` says where it came from ("from CCAI_WEBHOOK_SECRET"), never what it is.
fn exact(what: &str, given: String, value: Option<&str>) -> Result<Option<String>> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if v.trim() != v => {
            bail!("the {what} {given} starts or ends with whitespace: remove it (often a trailing newline)")
        }
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// A `--secret` for `webhooks register`/`update`, used exactly as given. Empty or with whitespace
/// around it is refused (never echoed): `ccai listen` and the library's `Verifier` refuse such a
/// secret, so the endpoint could never verify a delivery.
pub(crate) fn new_webhook_secret(secret: String) -> Result<String> {
    if secret.is_empty() {
        bail!("the --secret is empty: give the secret, or leave --secret out to have CloudContactAI generate one");
    }
    if secret.trim() != secret {
        bail!("the --secret starts or ends with whitespace: remove it (often a trailing newline)");
    }
    Ok(secret)
}

/// The management API client from flags and environment, each attempt given `timeout`, and the
/// wording of its errors.
pub(crate) fn api_client(
    account: &AccountArgs,
    timeout: std::time::Duration,
) -> Result<(ccai::Client, crate::api_error::Wording)> {
    let Some(client_id) = non_empty(account.client_id.as_deref()) else {
        bail!("missing client id: pass --client-id or set CCAI_CLIENT_ID (your CloudContactAI account id)");
    };
    let Some(api_key) = non_empty(account.api_key.as_deref()) else {
        bail!("missing API key: pass --api-key or set CCAI_API_KEY (from your CloudContactAI settings)");
    };
    let mut config = ccai::Config::new(client_id, api_key).timeout(timeout);
    let base_url = non_empty(account.base_url.as_deref());
    if account.test_env {
        if account.base_url_flag && base_url.is_some() {
            bail!("--test-env and --base-url both choose the API: pass only one");
        }
        // The flag wins over CCAI_BASE_URL (the environment or .env), which the library would
        // otherwise prefer: set the test environment's URL explicitly.
        config = config
            .use_test_environment(true)
            .base_url(ccai::api::TEST_BASE_URL);
    } else if let Some(url) = base_url {
        config = config.base_url(url);
    }
    let wording = crate::api_error::Wording::new(account, timeout);
    match ccai::Client::new(config) {
        Ok(client) => Ok((client, wording)),
        Err(e) => Err(wording.error(e)),
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
