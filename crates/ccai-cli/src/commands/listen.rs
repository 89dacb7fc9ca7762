//! `ccai listen` (placeholder until the handler lands).
use crate::cli::{AccountArgs, ListenArgs};
use std::process::ExitCode;
pub async fn run(_account: &AccountArgs, _args: ListenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("listen: not yet")
}
