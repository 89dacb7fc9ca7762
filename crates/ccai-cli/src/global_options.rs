//! Where the global options some commands ignore are listed. `--api-key`, `--base-url` and
//! `--test-env` matter to `ccai webhooks` only, and `--client-id` to every command but
//! `completions`, `events purge` and `events stats` (which refuse it). Being global, clap lists
//! each in every command's help and completions, where it reads as if it mattered there.
//!
//! They stay accepted everywhere (`ccai sign --api-key K …` worked, and keeps working): where
//! unused they are hidden from the help, and left out of the completion scripts, which offer
//! hidden options too.

use clap::{Arg, Command};

/// The global options listed only where they are used.
const SCOPED: [&str; 4] = ["client_id", "api_key", "base_url", "test_env"];

/// Whether the global option `id` is listed for the command at `path` (its names below `ccai`:
/// `["events", "purge"]`; empty for `ccai` itself, which lists every option).
fn listed(id: &str, path: &[&str]) -> bool {
    match id {
        "api_key" | "base_url" | "test_env" => path.first().is_none_or(|name| *name == "webhooks"),
        "client_id" => !matches!(path, ["completions"] | ["events", "purge" | "stats"]),
        _ => true,
    }
}

/// For parsing and `--help`: each subcommand gets its own copy of the scoped options, hidden
/// where unused. clap propagates a global option only to a subcommand without one of that id,
/// so these copies are what it keeps; still global, their values reach `ccai`'s matches as the
/// propagated ones did.
pub(crate) fn hidden_where_unused(command: Command) -> Command {
    let scoped = scoped(&command);
    command.mut_subcommands(|sub| place(sub, &scoped, &[], Placement::Hidden))
}

/// For the completion scripts: the scoped options only where listed, as options of that
/// command alone (nothing global is left to propagate them elsewhere).
pub(crate) fn only_where_used(command: Command) -> Command {
    let scoped = scoped(&command);
    let command = SCOPED.iter().fold(command, |command, id| {
        command.mut_arg(id, |arg| arg.global(false))
    });
    command.mut_subcommands(|sub| place(sub, &scoped, &[], Placement::Dropped))
}

/// The commands that read `--client-id` as a flag only, not from `CCAI_CLIENT_ID` (and `ccai
/// events`, which passes it to them): the inbox may hold other accounts' events than the one
/// configured for signing and the API.
fn client_id_is_flag_only(path: &[&str]) -> bool {
    matches!(
        path,
        ["ui"] | ["events"] | ["events", "list" | "show" | "replay"]
    )
}

/// `--client-id` as those commands read it: clap's `[env: CCAI_CLIENT_ID]` tag (the only word on
/// it in `-h`) said the variable narrowed them.
fn flag_only_client_id(arg: Arg) -> Arg {
    const HELP: &str = "The account whose events these are, where several accounts share the \
                        inbox (a flag only: CCAI_CLIENT_ID does not narrow it)";
    arg.hide_env(true).help(HELP).long_help(HELP)
}

/// The commands that sign or verify with `--client-id` (it falls back to the development one).
fn client_id_signs(path: &[&str]) -> bool {
    matches!(path, ["sign" | "verify" | "trigger" | "listen"])
}

/// `--client-id` as the signing commands read it: `ccai`'s long help spoke of `ccai events` and
/// `ccai ui` there, and not of the default, as `--secret`'s help does.
fn signing_client_id(arg: Arg) -> Arg {
    arg.long_help(
        "Your CloudContactAI account (client) id: the signature covers clientId:eventHash \
         (default: the development client id that `ccai listen` created)",
    )
}

/// `--client-id` for `ccai webhooks`: the account whose endpoints these are.
fn api_client_id(arg: Arg) -> Arg {
    arg.long_help("Your CloudContactAI account (client) id: the account whose endpoints these are")
}

#[derive(Clone, Copy)]
enum Placement {
    Hidden,
    Dropped,
}

/// `ccai`'s own definitions of the scoped options.
fn scoped(command: &Command) -> Vec<Arg> {
    command
        .get_arguments()
        .filter(|arg| SCOPED.contains(&arg.get_id().as_str()))
        .cloned()
        .collect()
}

/// `sub`, below the commands named by `parent`, with its copies of `scoped`, and its own
/// subcommands likewise.
fn place(sub: Command, scoped: &[Arg], parent: &[&str], placement: Placement) -> Command {
    let name = sub.get_name().to_owned();
    let path: Vec<&str> = parent.iter().copied().chain([name.as_str()]).collect();
    let mut sub = sub;
    for arg in scoped {
        let listed = listed(arg.get_id().as_str(), &path);
        match placement {
            Placement::Hidden => {
                let mut arg = arg.clone().hide(!listed);
                if arg.get_id() == "client_id" {
                    if client_id_is_flag_only(&path) {
                        arg = flag_only_client_id(arg);
                    } else if client_id_signs(&path) {
                        arg = signing_client_id(arg);
                    } else if path.first() == Some(&"webhooks") {
                        arg = api_client_id(arg);
                    }
                }
                sub = sub.arg(arg);
            }
            Placement::Dropped if listed => sub = sub.arg(arg.clone().global(false)),
            Placement::Dropped => {}
        }
    }
    sub.mut_subcommands(|nested| place(nested, scoped, &path, placement))
}

#[cfg(test)]
mod tests {
    use super::listed;

    #[test]
    fn the_api_options_are_listed_for_webhooks_only() {
        for id in ["api_key", "base_url", "test_env"] {
            assert!(listed(id, &[]));
            assert!(listed(id, &["webhooks"]));
            assert!(listed(id, &["webhooks", "list"]));
            assert!(!listed(id, &["sign"]));
            assert!(!listed(id, &["events", "list"]));
        }
        assert!(listed("client_id", &["events", "list"]));
        assert!(listed("client_id", &["listen"]));
        assert!(!listed("client_id", &["events", "purge"]));
        assert!(!listed("client_id", &["completions"]));
        assert!(listed("log_format", &["completions"]));
    }
}
