//! Where the durable inbox lives by default: `<data dir>/ccai/inbox.db`, the data dir being
//! `CCAI_DATA_DIR` when set, else the platform's (`dirs::data_dir`). `ccai listen` and
//! `ccai events` use the same rule.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The environment variable that replaces the platform's data directory.
pub(crate) const DATA_DIR_ENV: &str = "CCAI_DATA_DIR";

/// The default inbox file: `<data dir>/ccai/inbox.db`.
pub(crate) fn default_store_path() -> Result<PathBuf> {
    let data_dir = std::env::var_os(DATA_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(dirs::data_dir)
        .context(
            "cannot find your data directory: set CCAI_DATA_DIR, pass --store PATH (or --no-store to listen)",
        )?;
    refuse_unexpanded_home(DATA_DIR_ENV, &data_dir)?;
    Ok(data_dir.join("ccai").join("inbox.db"))
}

/// A path starting with `~` that reached us unexpanded (quoted, or from `.env` or a service
/// file, where no shell expands it) names a folder called `~` in the current directory, not
/// the home directory: the store would land there while the banner showed `~/…`, and a
/// command run from elsewhere would not find it.
pub(crate) fn refuse_unexpanded_home(what: &str, path: &Path) -> Result<()> {
    let from_home = path
        .components()
        .next()
        .is_some_and(|first| first.as_os_str().to_string_lossy().starts_with('~'));
    if from_home {
        bail!(
            "{what} {} starts with ~, which no shell expanded here (quoted, or from .env): \
             give the full path, e.g. $HOME/…",
            path.display()
        );
    }
    Ok(())
}

/// `--store` when given, else [`default_store_path`]. A `postgres://` URL never gets here.
/// `name` is how errors name it: `--store`, or `CCAI_STORE` when it came from there.
pub(crate) fn store_path(flag: Option<PathBuf>, name: &str) -> Result<PathBuf> {
    match flag {
        Some(path) => {
            refuse_other_urls(&path, name)?;
            refuse_unexpanded_home(name, &path)?;
            Ok(path)
        }
        None => default_store_path(),
    }
}

/// A `--store` that reads as a URL of another scheme (`Postgres://…`, `postgress://…`,
/// `pg://…`) is a mistyped database URL: taken as a path, it made folders named after the
/// user, password and host, and a SQLite file under them, while the banner showed the URL (and
/// its password) as if it were the database. Only the scheme is shown: the rest may hold a
/// password.
fn refuse_other_urls(path: &Path, name: &str) -> Result<()> {
    let text = path.to_string_lossy();
    let Some((scheme, _)) = text.split_once("://") else {
        return Ok(());
    };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if is_scheme {
        bail!(
            "{name} {scheme}://…: a database URL must start with postgres:// or postgresql:// \
             (lowercase); a SQLite store is a file path"
        );
    }
    Ok(())
}
