//! `ccai verify`: does a signature verify? Exit 0 yes, 1 no (with the reason).

use crate::stdout::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ccai::webhook::Verifier;

use crate::cli::{AccountArgs, SecretArgs};
use crate::{settings, EXIT_NO};

pub(crate) fn run(
    account: &AccountArgs,
    secret: &SecretArgs,
    signature: &str,
    event_hash: Option<String>,
    body: Option<PathBuf>,
) -> Result<ExitCode> {
    let (settings, _) = settings::signing(account, secret, false)?;
    if let Some(note) = settings.mixed_note() {
        errln!("{note}");
    }
    let verifier = Verifier::new(settings.client_id.as_str(), &settings.secret)?;
    let outcome = match (event_hash, body) {
        (_, Some(path)) => {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("cannot read body file {}", path.display()))?;
            verifier
                .verify_event(Some(signature), &bytes)
                .map(|event| format!("{} {}", event.event_type, event.event_hash))
        }
        (Some(hash), None) => verifier.verify(signature, &hash).map(|()| hash),
        (None, None) => anyhow::bail!("pass --event-hash or --body"),
    };
    match outcome {
        Ok(what) => {
            // The event's own text: no escape sequence reaches the terminal.
            outln!("verified: {}", crate::output::escape(&what));
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            outln!("not verified: {reason}");
            Ok(ExitCode::from(EXIT_NO))
        }
    }
}
