//! Where the last `ccai listen` listens, for `ccai trigger` to send to by default. A file of its
//! own in the config directory (`listen-url`), written whatever the credentials: it once lived
//! only in the development credentials, so with configured ones `trigger` went to port 8080.

use std::fs;
use std::path::PathBuf;

use anyhow::Result;

use crate::dev_credentials;

const FILE_NAME: &str = "listen-url";

fn path() -> Result<PathBuf> {
    Ok(dev_credentials::config_dir()?.join(FILE_NAME))
}

/// Records `url` (best effort: `trigger` then falls back to its default).
pub(crate) fn save(url: &str) {
    if let Ok(path) = path() {
        // Owner-only, like the development credentials that may later go in the same folder.
        if let Some(dir) = path.parent() {
            let _ = dev_credentials::create_private_dir(dir);
        }
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        if fs::write(&tmp, format!("{url}\n")).is_ok() {
            let _ = fs::rename(&tmp, &path);
        }
    }
}

/// The URL the last `ccai listen` recorded, if any, and the file it is in (for messages).
pub(crate) fn load() -> Option<(String, PathBuf)> {
    let path = path().ok()?;
    let text = fs::read_to_string(&path).ok()?;
    let url = text.trim();
    (!url.is_empty()).then(|| (url.to_owned(), path))
}
