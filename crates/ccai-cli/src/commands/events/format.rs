//! Times, ages and bodies as `ccai events` shows them, and the time flags it reads.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use crate::clock::civil_from_days;
use crate::output;

/// `time` as RFC 3339 in UTC with milliseconds: `2026-11-30T14:55:48.123Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        since.subsec_millis()
    )
}

/// `time` for a table: `2026-11-30 14:55:48` (UTC, whole seconds).
pub(crate) fn short_time(time: SystemTime) -> String {
    let full = rfc3339(time);
    format!("{} {}", &full[..10], &full[11..19])
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A length of time written as one item of a retry schedule (the same units as
/// `--retry`-style schedules: `50ms`, `45s`, `30m`, `1h`, `2d`).
pub(crate) fn parse_age(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() || text.contains(',') {
        return None;
    }
    ccai::inbox::parse_duration(text)
}

/// The value of `--since`: an age (`1h`: received in the last hour) or an RFC 3339 time.
pub(crate) fn since_flag(value: &str, now: SystemTime) -> Result<SystemTime> {
    if let Some(age) = parse_age(value) {
        return Ok(now.checked_sub(age).unwrap_or(UNIX_EPOCH));
    }
    match parse_rfc3339(value) {
        Some(time) => Ok(time),
        None => bail!(
            "invalid --since {}: give an age like 30m, 1h or 2d, or a time like 2026-11-30T14:00:00Z",
            crate::duration_flag::quoted(value)
        ),
    }
}

/// An RFC 3339 time (`2026-11-30T14:00:00Z`, `…T14:00:00.5+02:00`) or a date (`2026-11-30`,
/// midnight UTC); a time before 1970 is the epoch.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (month, day) = (u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None; // 2026-02-30 and the like
    }
    let mut secs = days * 86_400;
    let mut millis = 0u64;
    if bytes.len() > 10 {
        if !matches!(bytes[10], b'T' | b't' | b' ') || bytes.len() < 20 {
            return None;
        }
        if bytes[13] != b':' || bytes[16] != b':' {
            return None;
        }
        let (h, m, s) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        if h > 23 || m > 59 || s > 59 {
            return None;
        }
        secs += h * 3600 + m * 60 + s;
        let mut rest = &text[19..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let end = fraction
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(fraction.len());
            if end == 0 {
                return None;
            }
            let mut ms: String = fraction[..end].chars().take(3).collect();
            while ms.len() < 3 {
                ms.push('0');
            }
            millis = ms.parse().ok()?;
            rest = &fraction[end..];
        }
        match rest {
            "Z" | "z" => {}
            offset if offset.len() == 6 && offset.as_bytes()[3] == b':' => {
                let sign = match offset.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                // Digits only: `parse` alone takes "+1" and "-1", so "++1:00" read as +01:00
                // and "+-1:00" as -01:00 turned back to front.
                let number = |part: &str| -> Option<i64> {
                    if !part.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    part.parse().ok()
                };
                let oh = number(offset.get(1..3)?)?;
                let om = number(offset.get(4..6)?)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                secs -= sign * (oh * 3600 + om * 60);
            }
            _ => return None,
        }
    }
    // Nothing is received before 1970: an earlier time (valid RFC 3339) means "everything",
    // as 1970-01-01 does. Four-digit years keep `secs` far from any overflow.
    let Ok(secs) = u64::try_from(secs) else {
        return Some(UNIX_EPOCH);
    };
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
}

/// An age for people: `3d 4h`, `5m 2s`, `800ms`.
pub(crate) fn human_age(age: Duration) -> String {
    let secs = age.as_secs();
    if secs == 0 {
        return format!("{}ms", age.as_millis());
    }
    let units = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |left, (name, size)| {
            let n = *left / size;
            *left %= size;
            Some((n, name))
        })
        .filter(|(n, _)| *n > 0)
        .take(2)
        .map(|(n, name)| format!("{n}{name}"))
        .collect();
    parts.join(" ")
}

/// Text from the store made safe for a terminal line: every control character (newlines
/// included) and bidirectional override written as `\u{…}`, `\n`, `\r` or `\t`
/// ([`output::escape`]).
pub(crate) fn escape_line(text: &str) -> String {
    output::escape(text)
}

/// Like [`escape_line`], but keeps newlines and tabs (for a multi-line body).
pub(crate) fn escape_block(text: &str) -> String {
    output::escape_keeping(text, true)
}

/// A body for people: JSON re-indented (keys in their original order, values exactly as
/// written), anything else as text with control characters escaped.
pub(crate) fn body_for_display(body: &[u8]) -> String {
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        if let Ok(text) = std::str::from_utf8(body) {
            // JSON strings may hold C1 controls and bidirectional overrides unescaped.
            return escape_block(&reindent_json(text));
        }
    }
    escape_block(&String::from_utf8_lossy(body))
}

/// Re-indents valid JSON text with two spaces, keeping every token as written.
fn reindent_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                let mut escaped = false;
                for s in chars.by_ref() {
                    out.push(s);
                    if escaped {
                        escaped = false;
                    } else if s == '\\' {
                        escaped = true;
                    } else if s == '"' {
                        break;
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().unwrap_or(']'));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_age("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_age(" 50ms "), Some(Duration::from_millis(50)));
        for bad in ["", "h", "10", "1.5h", "-1h", "1y", "1 h", "1m,2m"] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
        assert_eq!(
            human_age(Duration::from_secs(3 * 86_400 + 4 * 3600 + 5)),
            "3d 4h"
        );
        assert_eq!(human_age(Duration::from_secs(302)), "5m 2s");
        assert_eq!(human_age(Duration::from_millis(800)), "800ms");
    }

    #[test]
    fn times_round_trip() {
        let t = parse_rfc3339("2026-11-30T14:55:48.123Z").unwrap();
        assert_eq!(rfc3339(t), "2026-11-30T14:55:48.123Z");
        assert_eq!(short_time(t), "2026-11-30 14:55:48");
        assert_eq!(
            parse_rfc3339("2026-11-30T16:55:48.123+02:00"),
            Some(t),
            "offsets"
        );
        assert_eq!(
            parse_rfc3339("2024-02-29"),
            parse_rfc3339("2024-02-29T00:00:00Z")
        );
        // Before 1970 (years 0000 to 1969, or a negative offset's worth): the epoch.
        for early in [
            "1969-12-31",
            "1969-12-31T23:59:59.999Z",
            "1970-01-01T00:30:00+01:00",
            "0000-01-01T00:00:00Z",
            "1970-01-01",
        ] {
            assert_eq!(parse_rfc3339(early), Some(UNIX_EPOCH), "{early}");
        }
        // The latest time there is to write: no overflow.
        let last = parse_rfc3339("9999-12-31T23:59:59.999-23:59").expect("valid");
        assert_eq!(rfc3339(last), "10000-01-01T23:58:59.999Z");
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T14:55:48",
            "yesterday",
            "2026-1-30",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn bodies() {
        assert_eq!(
            body_for_display(br#"{"b":1,"a":[],"c":{"d":"x, y: {z}"},"e":[1, 2]}"#),
            "{\n  \"b\": 1,\n  \"a\": [],\n  \"c\": {\n    \"d\": \"x, y: {z}\"\n  },\n  \"e\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(
            body_for_display(b"plain\x1b[31m red\n"),
            "plain\\u{1b}[31m red\n"
        );
        assert_eq!(escape_line("a\nb\u{7}"), "a\\nb\\u{7}");
        assert_eq!(escape_line("\u{202e}gnp.exe"), "\\u{202e}gnp.exe");
    }
}
