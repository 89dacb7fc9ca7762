//! `ccai`: the CloudContactAI webhooks command line. Thin over the `ccai` library.

mod api_error;
mod cli;
mod clock;
mod commands;
mod dev_credentials;
mod duration_flag;
mod file_flag;
mod global_options;
mod http;
mod json_text;
mod line_writer;
mod listen_url;
mod logging;
mod output;
mod runtime;
mod sample_events;
mod setting_name;
mod settings;
mod stdout;
mod store_list;
mod store_open;
mod store_path;

use crate::stdout::errln;
use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Exit code for "ran fine, but the answer is no" (a signature that does not verify).
pub const EXIT_NO: u8 = 1;
/// Exit code for errors (bad input, unreachable server, API errors).
pub const EXIT_ERROR: u8 = 2;

/// What is wrong with `.env`, never quoting it: a line that does not parse may hold a secret.
fn dotenv_problem(error: &dotenvy::Error) -> String {
    match error {
        dotenvy::Error::LineParse(..) => "a line does not parse (not shown, as it may hold a \
             secret): check its quoting; nothing from the file was used"
            .to_owned(),
        dotenvy::Error::Io(e) => format!("cannot read it: {e}"),
        _ => "it could not be loaded; nothing from the file was used".to_owned(),
    }
}

/// Loads `.env` from the current directory, all of it or nothing: every line is read before any
/// is applied (dotenvy applies each line as it parses it, so a bad line would leave the ones
/// before it set while the warning says nothing was used). What is wrong, if something is.
///
/// A `CCAI_*` variable set to the empty string (`export CCAI_WEBHOOK_SECRET=` in a profile,
/// `CCAI_STORE=` in a service file) counts as unset everywhere else, so `.env` fills it too;
/// dotenvy alone would keep the empty value and the command would fall back to its default.
fn load_dotenv() -> Option<String> {
    let empty_ccai: Vec<std::ffi::OsString> = std::env::vars_os()
        .filter(|(name, value)| value.is_empty() && name.to_string_lossy().starts_with("CCAI_"))
        .map(|(name, _)| name)
        .collect();
    // What the environment sets before `.env` fills the rest: an error names a setting from
    // `.env` as such, so that the user looks there.
    let set_before: Vec<std::ffi::OsString> = std::env::vars_os()
        .filter(|(name, value)| !value.is_empty() || !name.to_string_lossy().starts_with("CCAI_"))
        .map(|(name, _)| name)
        .collect();
    let checked = dotenvy::from_path_iter(".env")
        .and_then(|lines| lines.collect::<Result<Vec<(String, String)>, _>>());
    let checked = match checked {
        Ok(lines) => lines,
        Err(e) if !e.not_found() => return Some(dotenv_problem(&e)),
        Err(_) => return None,
    };
    if let Some(problem) = unsettable(&checked) {
        return Some(problem);
    }
    let lines = match dotenvy::from_path(".env").map(|()| checked) {
        Ok(lines) => lines,
        Err(e) if !e.not_found() => return Some(dotenv_problem(&e)),
        Err(_) => return None,
    };
    for name in empty_ccai {
        // The first occurrence, as dotenvy applies; a byte order mark is no part of the name.
        let value = lines
            .iter()
            .find(|(key, _)| name.as_os_str() == key.trim_start_matches('\u{feff}'))
            .map(|(_, value)| value);
        if let Some(value) = value {
            std::env::set_var(&name, value);
        }
    }
    setting_name::record_dotenv(
        lines
            .iter()
            .map(|(key, _)| key.trim_start_matches('\u{feff}'))
            .filter(|key| !set_before.iter().any(|name| name.as_os_str() == *key))
            .map(str::to_owned)
            .collect(),
    );
    None
}

/// A `.env` line no process environment can hold (a NUL byte, an `=` in the name, an empty
/// name): setting it would panic, printing the value, which may be a secret. Names the variable
/// only when its name is printable as is.
fn unsettable(lines: &[(String, String)]) -> Option<String> {
    let (key, _) = lines
        .iter()
        .find(|(key, value)| key.is_empty() || key.contains(['\0', '=']) || value.contains('\0'))?;
    let which = if key.is_empty() || key.contains('\0') {
        "a variable".to_owned()
    } else {
        format!("{key:?}")
    };
    Some(format!(
        "{which} cannot be set: its name or value holds a NUL byte or its name an = (not shown, \
         as it may hold a secret); nothing from the file was used"
    ))
}

fn main() -> ExitCode {
    // `.env` fills only what the environment does not set (or sets empty, for `CCAI_*`), so
    // flags > environment > .env. Only the current directory's: a .env in a parent (say /tmp)
    // could point CCAI_BASE_URL elsewhere and receive the API key.
    let dotenv_problem = load_dotenv();
    let cli = Cli::parse_args();
    // A one-shot command's failure is its one error line; the receiver also warns as it runs.
    let level = match cli.command {
        Command::Listen(_) => "warn",
        _ => "error",
    };
    let log_format = match cli.log.format() {
        Ok(format) => format,
        Err(why) => {
            errln!("error: {why}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    logging::init(log_format, level);
    if let Some(problem) = dotenv_problem {
        errln!("warning: ignoring .env: {problem}");
    }
    let runtime = match runtime::build(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", one_line(&e));
            ExitCode::from(EXIT_ERROR)
        }
    };
    // Dropped, the runtime would wait for every blocking task: a SQLite read still running after
    // Ctrl-C (a slow search of the view) kept the process up to the read timeout, 30 s. What must
    // finish has finished inside `run` (the stores' close) or runs on threads of its own (the
    // stores' writers, `line_writer`); what is left is reads, whose answers no one awaits.
    runtime.shutdown_timeout(SHUTDOWN_LIMIT);
    // Output that could not be written is a failure, whatever the command made of its work.
    let code = match stdout::failure() {
        Some(why) => {
            errln!("error: cannot write the output: {why}");
            ExitCode::from(EXIT_ERROR)
        }
        None => code,
    };
    // `ccai listen`'s last lines, from its writer threads; bounded, as they may not be read.
    line_writer::finish(FINISH_OUTPUT_LIMIT);
    code
}

/// How long the exit waits for the runtime's blocking tasks (store reads) still running.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long the exit waits for `ccai listen`'s queued lines to be written.
const FINISH_OUTPUT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let code = run_command(cli).await;
    // Whatever the outcome: a store's writer finishes before the process exits.
    store_open::close_opened().await;
    code
}

async fn run_command(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Webhooks(args) => commands::webhooks::run(&cli.account, args).await,
        Command::Sign { event_hash, secret } => {
            commands::sign::run(&cli.account, &secret, &event_hash)
        }
        Command::Verify {
            signature,
            event_hash,
            body,
            secret,
        } => commands::verify::run(&cli.account, &secret, &signature, event_hash, body),
        Command::Trigger(args) => commands::trigger::run(&cli.account, args).await,
        Command::Listen(args) => commands::listen::run(&cli.account, *args).await,
        Command::Completions { shell } => commands::completions::run(shell),
        Command::Events(command) => {
            let client_id = cli.account.client_id.filter(|_| cli.account.client_id_flag);
            commands::events::run(command, client_id).await
        }
        // As for `ccai events`: the flag narrows the view, `CCAI_CLIENT_ID` (the account that
        // signs) does not.
        Command::Ui(args) => {
            let client_id = cli.account.client_id.filter(|_| cli.account.client_id_flag);
            commands::ui::run(args, client_id).await
        }
    }
}

/// The error and its causes on one line ("context: cause: cause").
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}
