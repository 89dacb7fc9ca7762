//! `ccai verify`: does a signature verify? Exit 0 yes, 1 no (with the reason), 2 when it cannot
//! tell (a body file that cannot be read or is not a delivery).

use crate::stdout::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use ccai::webhook::{parse_event, ParseError, Verifier};

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
            let bytes = crate::file_flag::read(
                "body file",
                &path,
                "pass --body the path of a file holding the delivery's raw body, exactly as received",
            )?;
            // A body that is not a delivery is a wrong input (exit 2), not a "does not verify"
            // (exit 1): checked before the signature, which the library checks first. A legacy
            // shape is a delivery, unsigned: that one is a "no".
            match parse_event(&bytes) {
                Err(ParseError::Legacy(_)) | Ok(_) => {}
                Err(problem) => bail!(
                    "body file {} is not a CCAI delivery: {problem}; pass the raw body of one, \
                     a JSON object with eventType, eventHash and data",
                    crate::file_flag::name(&path)
                ),
            }
            verifier
                .verify_event(Some(signature), &bytes)
                .map(|event| format!("{} {}", event.event_type, event.event_hash))
        }
        (Some(hash), None) => verifier.verify(signature, &hash).map(|()| hash),
        (None, None) => bail!("pass --event-hash or --body"),
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
