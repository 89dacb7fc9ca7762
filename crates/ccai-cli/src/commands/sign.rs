//! `ccai sign`: the signature CloudContactAI would send for an event hash.

use crate::stdout::{errln, outln};
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cli::{AccountArgs, SecretArgs};
use crate::settings;

pub(crate) fn run(
    account: &AccountArgs,
    secret: &SecretArgs,
    event_hash: &str,
) -> Result<ExitCode> {
    if event_hash.is_empty() {
        bail!("--event-hash is empty: pass the delivery's eventHash");
    }
    let (settings, _) = settings::signing(account, secret, false)?;
    if let Some(note) = settings.mixed_note() {
        errln!("{note}");
    }
    outln!(
        "{}",
        ccai::webhook::sign(&settings.client_id, event_hash, &settings.secret)
    );
    Ok(ExitCode::SUCCESS)
}
