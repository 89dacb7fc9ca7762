//! Duration flags (`--grace 10s`, `--older-than 30d`, `--retry-schedule 5s,5m`), read the same
//! way, and refused in one shape: `invalid --FLAG VALUE: what is wrong; give a number and a
//! unit, like 45s, 10m, 2h or 30d`.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{bail, Result};
use ccai::inbox::{parse_duration, RetrySchedule};

use crate::output::shorten;

/// How to write one duration (every flag takes `ms`, `s`, `m`, `h` and `d`).
const ADVICE: &str = "give a number and a unit, like 45s, 10m, 2h or 30d";

/// How to write a retry schedule.
const SCHEDULE_ADVICE: &str = "give a comma-separated list of durations, each a number and a \
     unit (at most 30d), like 5s,5m,30m";

/// `value` as a message quotes it: escaped, in quotes, cut to 40 characters (a pasted file
/// would otherwise fill the terminal).
pub(crate) fn quoted(value: &str) -> String {
    format!("{:?}", shorten(value, 40))
}

/// One duration: a whole number and a unit, no space, spaces around it ignored.
pub(crate) fn value(flag: &str, text: &str) -> Result<Duration> {
    let item = text.trim();
    match parse_duration(item) {
        Some(duration) => Ok(duration),
        None => bail!(
            "invalid {flag} {}: {}; {ADVICE}",
            quoted(text),
            problem(item)
        ),
    }
}

/// A duration longer than zero: a timeout of 0 would cut every request off.
pub(crate) fn timeout(flag: &str, text: &str) -> Result<Duration> {
    let duration = value(flag, text)?;
    if duration.is_zero() {
        bail!(
            "invalid {flag} {}: must be longer than 0; {ADVICE}",
            quoted(text)
        );
    }
    Ok(duration)
}

/// `--retry-schedule`: delays as [`RetrySchedule`] reads them, each longer than 0 and at most
/// [`RetrySchedule::MAX_PARSED_DELAY`]. An empty value is refused: a blank shell variable would
/// otherwise turn retries off unseen.
pub(crate) fn retry_schedule(text: &str) -> Result<RetrySchedule> {
    let flag = "--retry-schedule";
    if text.trim().is_empty() {
        bail!(
            "invalid {flag} {}: empty; {SCHEDULE_ADVICE} (or leave the flag out for the default schedule)",
            quoted(text)
        );
    }
    let error = match text.parse::<RetrySchedule>() {
        Ok(schedule) => return Ok(schedule),
        Err(error) => error,
    };
    // The error holds the item cut to 40 characters; the item whole is found again to say
    // what is wrong with it (and cut again, with "…", to quote it).
    let item = text
        .split(',')
        .map(str::trim)
        .find(|item| item.chars().take(40).eq(error.item.chars()))
        .unwrap_or(&error.item);
    let what = if error.too_long {
        "longer than 30d, the longest retry delay".to_owned()
    } else if error.zero {
        // A zero delay retries a target that is down at once, attempt after attempt.
        "must be longer than 0 (0 retries at once)".to_owned()
    } else {
        problem(item)
    };
    // The item is named when the value has more than one.
    let which = if item == text.trim() {
        String::new()
    } else {
        format!(" (item {})", quoted(item))
    };
    bail!(
        "invalid {flag} {}{which}: {what}; {SCHEDULE_ADVICE}",
        quoted(text)
    )
}

/// The duration flags (of every command).
const FLAGS: [&str; 9] = [
    "--since",
    "--older-than",
    "--keep-hashes-for",
    "--timeout",
    "--retry-schedule",
    "--grace",
    "--header-timeout",
    "--idle-timeout",
    "--body-timeout",
];

/// The command line with a negative value of a duration flag attached (`--grace -5s` as
/// `--grace=-5s`), so that it reaches the flag's parser, which says how to write one: clap takes
/// a separate `-5s` for an unknown flag. Letting the flags take any value starting with `-`
/// (`allow_hyphen_values`) also took the next flag where the value was forgotten (`--grace
/// --forward-to URL`), and clap then named only the URL, as an unexpected argument.
pub(crate) fn attach_negative_values(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        // After `--` every word is a value.
        if arg == "--" {
            out.push(arg);
            out.extend(args);
            break;
        }
        let negative = |next: &OsString| {
            next.to_str().is_some_and(|next| {
                next.strip_prefix('-')
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
        };
        match arg.to_str() {
            Some(flag) if FLAGS.contains(&flag) && args.peek().is_some_and(negative) => {
                let mut joined = OsString::from(format!("{flag}="));
                joined.extend(args.next());
                out.push(joined);
            }
            _ => out.push(arg),
        }
    }
    out
}

/// What is wrong with `item` (trimmed), which [`parse_duration`] did not read.
fn problem(item: &str) -> String {
    let digits = item.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &item[digits..];
    let unit = |text: &str| matches!(text, "ms" | "s" | "m" | "h" | "d");
    if item.is_empty() {
        "empty".to_owned()
    } else if digits == 0 {
        "not a duration".to_owned()
    } else if rest.is_empty() {
        "no unit".to_owned()
    } else if unit(rest) {
        // Well formed, but past u64::MAX milliseconds.
        "too long".to_owned()
    } else if rest.starts_with(['.', ',']) && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
        "not a whole number".to_owned()
    } else if rest.starts_with(char::is_whitespace) && unit(rest.trim_start()) {
        "a space before the unit".to_owned()
    } else if rest.contains(',') {
        "a list, where one duration goes".to_owned()
    } else {
        format!(
            "unknown unit {} (use ms, s, m, h or d)",
            quoted(rest.trim_start())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems() {
        for (item, said) in [
            ("", "empty"),
            ("junk", "not a duration"),
            ("-5s", "not a duration"),
            ("45", "no unit"),
            ("1.5h", "not a whole number"),
            ("5 s", "a space before the unit"),
            ("5s,10s", "a list, where one duration goes"),
            ("99999999999999999999d", "too long"),
            ("5sec", "unknown unit \"sec\" (use ms, s, m, h or d)"),
            ("30 days", "unknown unit \"days\" (use ms, s, m, h or d)"),
        ] {
            assert_eq!(problem(item), said, "{item}");
        }
    }

    #[test]
    fn negative_values_are_attached() {
        let attached = |args: &[&str]| -> Vec<String> {
            attach_negative_values(args.iter().map(OsString::from))
                .into_iter()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            attached(&["ccai", "listen", "--grace", "-5s", "--idle-timeout", "5s"]),
            ["ccai", "listen", "--grace=-5s", "--idle-timeout", "5s"]
        );
        // A flag where the value goes stays a flag, for clap to say the value is missing.
        assert_eq!(
            attached(&["ccai", "listen", "--grace", "--no-store"]),
            ["ccai", "listen", "--grace", "--no-store"]
        );
        assert_eq!(
            attached(&["ccai", "x", "--", "--grace", "-5s"]),
            ["ccai", "x", "--", "--grace", "-5s"]
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(100);
        let err = value("--grace", &long).unwrap_err().to_string();
        assert!(err.contains(&format!("\"{}…\"", "x".repeat(40))), "{err}");
        assert!(!err.contains(&"x".repeat(41)), "{err}");
    }
}
