//! Where the durable inbox lives by default: `<data dir>/ccai/inbox.db`, the data dir being
//! `CCAI_DATA_DIR` when set, else the platform's (`dirs::data_dir`). `ccai listen` and
//! `ccai events` use the same rule.

use std::path::PathBuf;

use anyhow::{Context, Result};

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
    Ok(data_dir.join("ccai").join("inbox.db"))
}

/// `--store` when given, else [`default_store_path`].
pub(crate) fn store_path(flag: Option<PathBuf>) -> Result<PathBuf> {
    match flag {
        Some(path) => Ok(path),
        None => default_store_path(),
    }
}
