//! `ccai listen`'s flags that only do something beside another one: `--admin-host` and
//! `--admin-token` with `--admin-port`; `--ui-host`, `--ui-port` and `--ui-token` with `--ui`.
//! Typed without it, such a flag is refused with a one-line error saying what to add: it would
//! do nothing. clap's `requires` could not say so: it takes `CCAI_ADMIN_TOKEN` for
//! `--admin-token` (and that variable alone must stay accepted, environment variables being set
//! for more than one run), and it let `--ui-port` pass beside `--no-store`, which `--ui`
//! conflicts with.

use anyhow::{bail, Result};
use clap::parser::ValueSource;
use clap::ArgMatches;

use crate::cli::ListenArgs;

/// Each flag (its clap id and its name) and the flag it needs.
const FLAGS: [(&str, &str, Needs); 5] = [
    ("admin_host", "--admin-host", Needs::AdminPort),
    ("admin_token", "--admin-token", Needs::AdminPort),
    ("ui_host", "--ui-host", Needs::Ui),
    ("ui_port", "--ui-port", Needs::Ui),
    ("ui_token", "--ui-token", Needs::Ui),
];

#[derive(Clone, Copy)]
enum Needs {
    AdminPort,
    Ui,
}

/// The flags among [`FLAGS`] typed on `ccai listen`'s command line (not a default, not the
/// environment), from the matches clap's derive drops.
pub(crate) fn typed(listen: &ArgMatches) -> Vec<&'static str> {
    FLAGS
        .iter()
        .filter(|(id, _, _)| listen.value_source(id) == Some(ValueSource::CommandLine))
        .map(|&(_, flag, _)| flag)
        .collect()
}

/// Refuses a flag typed without the one it needs.
pub(super) fn check(args: &ListenArgs) -> Result<()> {
    for &(_, flag, needs) in FLAGS.iter().filter(|(_, f, _)| args.typed.contains(f)) {
        match needs {
            Needs::AdminPort if args.admin.admin_port.is_none() => bail!(
                "{flag} applies to the admin listener, which --admin-port starts: add --admin-port N (or drop {flag})"
            ),
            // `--ui` conflicts with `--no-store`: adding it is no way out there.
            Needs::Ui if !args.ui && args.no_store => bail!(
                "{flag} applies to the browser view of the store, which --no-store does not keep: drop {flag}"
            ),
            Needs::Ui if !args.ui => bail!(
                "{flag} applies to the browser view, which --ui starts: add --ui (or drop {flag})"
            ),
            _ => {}
        }
    }
    Ok(())
}
