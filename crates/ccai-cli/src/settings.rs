//! Resolving what a command needs from flags, the environment, `.env` and the dev credentials.

use anyhow::{bail, Result};

use crate::cli::{AccountArgs, SecretArgs};
use crate::dev_credentials::{self, DevCredentials};

/// The client id and secret a signing or verifying command uses.
pub struct SigningSettings {
    pub client_id: String,
    pub secret: String,
    /// Where they came from, for messages ("configured" or the dev file path).
    pub dev: Option<DevCredentials>,
}

/// Flags and environment first; the development credentials fill what is missing (and are
/// created when `create` is set, as `listen` does).
pub fn signing(
    account: &AccountArgs,
    secret: &SecretArgs,
    create: bool,
) -> Result<(SigningSettings, bool)> {
    let client_id = non_empty(account.client_id.as_deref());
    let secret = non_empty(secret.secret.as_deref());
    if let (Some(client_id), Some(secret)) = (&client_id, &secret) {
        return Ok((
            SigningSettings {
                client_id: client_id.clone(),
                secret: secret.clone(),
                dev: None,
            },
            false,
        ));
    }
    let (dev, created) = if create {
        dev_credentials::load_or_create()?
    } else {
        match dev_credentials::load()? {
            Some(dev) => (dev, false),
            None => bail!(
                "no webhook secret: pass --secret or set CCAI_WEBHOOK_SECRET (or run `ccai listen` once to create a development secret)"
            ),
        }
    };
    Ok((
        SigningSettings {
            client_id: client_id.unwrap_or_else(|| dev.client_id.clone()),
            secret: secret.unwrap_or_else(|| dev.secret.clone()),
            dev: Some(dev),
        },
        created,
    ))
}

/// The management API client from flags and environment.
pub fn api_client(account: &AccountArgs) -> Result<ccai::Client> {
    let Some(client_id) = non_empty(account.client_id.as_deref()) else {
        bail!("missing client id: pass --client-id or set CCAI_CLIENT_ID (your CloudContactAI account id)");
    };
    let Some(api_key) = non_empty(account.api_key.as_deref()) else {
        bail!("missing API key: pass --api-key or set CCAI_API_KEY (from your CloudContactAI settings)");
    };
    let mut config = ccai::Config::new(client_id, api_key).use_test_environment(account.test_env);
    if let Some(url) = non_empty(account.base_url.as_deref()) {
        config = config.base_url(url);
    }
    Ok(ccai::Client::new(config)?)
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
