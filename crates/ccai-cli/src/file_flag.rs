//! Reading the file a flag names (`verify --body`, `trigger --data-file`): an error that says
//! what to pass instead, not the bare "No such file or directory".

use std::path::Path;

use anyhow::{anyhow, Result};

/// The bytes of `path`, or "cannot read {what} {path}: {reason}; {next_step}".
pub(crate) fn read(what: &str, path: &Path, next_step: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        anyhow!(
            "cannot read {what} {}: {}; {next_step}",
            path.display(),
            reason(&e)
        )
    })
}

/// The error's text without its " (os error 2)" suffix, which says nothing more to a user.
fn reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_says_what_to_pass_without_the_os_error_number() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("nope.json");
        let error = read("body file", &missing, "pass another").expect_err("missing");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("cannot read body file {}: ", missing.display())),
            "{text}"
        );
        assert!(text.ends_with("; pass another"), "{text}");
        assert!(!text.contains("os error"), "{text}");
    }
}
