//! `ccai completions SHELL`: the shell completion script, from the command line's own definition.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::stdout::out;

pub(crate) fn run(shell: Shell) -> Result<ExitCode> {
    // Each command's options, without the global ones it does not use.
    let mut command = crate::global_options::only_where_used(Cli::command());
    let name = command.get_name().to_owned();
    // Into memory first: clap_complete panics on a write error, such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}
