//! Reading the file a flag names (`verify --body`, `trigger --data-file`), or standard input
//! for `-`: an error that says what to pass instead, not the bare "No such file or directory".

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use crate::stdout::errln;

/// The name that stands for standard input, as for most command lines.
pub(crate) const STDIN: &str = "-";

/// The most a flag's file (or standard input) may hold: far more than any delivery (a receiver
/// takes 256 KiB by default), and a bound on what `--body /dev/zero` or an endless pipe uses.
pub(crate) const LIMIT: u64 = 16 << 20;

/// Whether `path` stands for standard input.
pub(crate) fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// What `path` names, for a message: the path, `-` saying that it is standard input.
pub(crate) fn name(path: &Path) -> String {
    if is_stdin(path) {
        "- (standard input)".to_owned()
    } else {
        path.display().to_string()
    }
}

/// The bytes of `path` (of standard input for `-`), at most [`LIMIT`]; else "cannot read
/// {what} {path}: {reason}; {next_step}".
pub(crate) fn read(what: &str, path: &Path, next_step: &str) -> Result<Vec<u8>> {
    let read = if is_stdin(path) {
        let stdin = std::io::stdin();
        // Said where someone types: a command waiting for input it does not ask for looks hung.
        if stdin.is_terminal() {
            errln!("Reading standard input; end it with {EOF_KEY}.");
        }
        read_limited(stdin.lock())
    } else {
        std::fs::File::open(path).and_then(read_limited)
    };
    match read {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => bail!(
            "cannot read {what} {}: it is larger than {} MiB; {next_step}",
            name(path),
            LIMIT >> 20
        ),
        Err(e) => Err(anyhow!(
            "cannot read {what} {}: {}; {next_step}",
            name(path),
            reason(&e)
        )),
    }
}

/// The key that ends typed input.
#[cfg(windows)]
const EOF_KEY: &str = "Ctrl-Z then Enter";
#[cfg(not(windows))]
const EOF_KEY: &str = "Ctrl-D";

/// All of `source`, or `None` past [`LIMIT`] bytes (reading no more than one byte past it).
fn read_limited(source: impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    source.take(LIMIT + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= LIMIT).then_some(bytes))
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

    #[test]
    fn a_file_past_the_limit_is_refused_and_one_at_it_read() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("big.json");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(LIMIT).expect("grow");
        assert_eq!(
            read("body file", &path, "x").expect("at the limit").len() as u64,
            LIMIT
        );
        file.set_len(LIMIT + 1).expect("grow");
        let text = read("body file", &path, "pass another")
            .expect_err("past the limit")
            .to_string();
        assert_eq!(
            text,
            format!(
                "cannot read body file {}: it is larger than 16 MiB; pass another",
                path.display()
            )
        );
    }

    #[test]
    fn only_a_lone_dash_is_standard_input() {
        assert!(is_stdin(Path::new("-")));
        assert!(!is_stdin(Path::new("./-")));
        assert!(!is_stdin(Path::new("--")));
        assert_eq!(name(Path::new("-")), "- (standard input)");
        assert_eq!(name(Path::new("./-")), "./-");
    }
}
