//! JSON string escapes: how a JSON encoder writes a character of a secret (`\u005f`, PHP's
//! `\/`, a surrogate pair past the Basic Multilingual Plane as Python's `json.dumps` writes it).

/// The character the escape starting at `at` in `text` stands for, and the position right after
/// it; `None` if none starts there. Read: `\uXXXX` (hex digits in either case; a high surrogate
/// joined with the low one after it, a lone one read as U+FFFD, no character of a secret) and
/// the short escapes (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`).
pub(crate) fn escape_at(text: &[u8], at: usize) -> Option<(char, usize)> {
    if text.get(at) != Some(&b'\\') {
        return None;
    }
    let short = match text.get(at + 1)? {
        b'u' => return unicode(text, at + 2),
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return None,
    };
    Some((short, at + 2))
}

/// A `\u` escape's four hex digits from `at`, and a low surrogate's escape after a high one.
fn unicode(text: &[u8], at: usize) -> Option<(char, usize)> {
    let unit = hex4(text, at)?;
    let end = at + 4;
    if !(0xD800..0xE000).contains(&unit) {
        return Some((char::from_u32(unit)?, end));
    }
    let low = (unit < 0xDC00 && text.get(end..end + 2) == Some(b"\\u"))
        .then(|| hex4(text, end + 2))
        .flatten()
        .filter(|low| (0xDC00..0xE000).contains(low));
    match low.and_then(|low| char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))) {
        Some(joined) => Some((joined, end + 6)),
        None => Some(('\u{fffd}', end)),
    }
}

fn hex4(text: &[u8], at: usize) -> Option<u32> {
    let digits = text.get(at..at + 4)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_and_short_escapes_are_read() {
        let read = |text: &str| escape_at(text.as_bytes(), 0);
        assert_eq!(read(r"\u005fx"), Some(('_', 6)));
        assert_eq!(read(r"\u00E9"), Some(('\u{e9}', 6)));
        assert_eq!(read(r"\ud83d\ude00"), Some(('\u{1f600}', 12)));
        assert_eq!(read(r"\ud83dx"), Some(('\u{fffd}', 6)), "a lone surrogate");
        assert_eq!(read(r"\/"), Some(('/', 2)));
        assert_eq!(read(r"\n"), Some(('\n', 2)));
        for text in [r"\x", r"\u00g1", r"\u+0ab", r"\u00", "\\", "u0041"] {
            assert_eq!(read(text), None, "{text}");
        }
    }
}
