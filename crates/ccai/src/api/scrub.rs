//! What of a server's answer may go into an error: the secrets the request carried (the API key,
//! the webhook secrets it registers) replaced where they appear as written, and the whole body
//! withheld where they still appear in some other spelling.

/// What replaces a response body that still holds a secret after [`redact`].
pub(crate) const WITHHELD_BODY: &str =
    "[REDACTED] (response body withheld: it echoes a secret of the request in some encoding)";

/// A response body as it may go into an error: each of `secrets` (the API key, the webhook
/// secrets the request carried) replaced where it appears verbatim or JSON-escaped, and the whole
/// body withheld ([`WITHHELD_BODY`]) if any secret is still in it in another spelling: upper or
/// mixed case, other JSON escapes (`sk\u005f…`, `\/`), percent-encoded, base64 or base64url, or
/// a combination (see [`spells`]). A server that echoes a request can spell it back in ways no
/// list of replacements covers; a body that cannot be shown safely is not shown.
pub(super) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        out = redact(&out, secret);
    }
    if secrets.iter().any(|secret| spells(&out, secret)) {
        return WITHHELD_BODY.to_owned();
    }
    out
}

/// `value` with [`scrub`] applied to each of its strings, object keys included.
pub(super) fn scrub_strings(value: serde_json::Value, secrets: &[&str]) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(scrub(&text, secrets)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| scrub_strings(item, secrets))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, item)| (scrub(&key, secrets), scrub_strings(item, secrets)))
                .collect(),
        ),
        other => other,
    }
}

/// `text` with `secret` replaced, both verbatim and JSON-escaped (as an echoing API would show it).
fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    let mut out = text.replace(secret, "[REDACTED]");
    if let Ok(quoted) = serde_json::to_string(secret) {
        let escaped = &quoted[1..quoted.len() - 1];
        if escaped != secret {
            out = out.replace(escaped, "[REDACTED]");
        }
    }
    out
}

/// Whether `text` holds `secret` (compared without regard to case) as is or once decoded: JSON
/// string escapes undone, percent-encoding undone, base64/base64url runs decoded, and those
/// decodings of decodings up to three deep. Fails closed: past its budget of views, it says yes.
fn spells(text: &str, secret: &str) -> bool {
    let needle = secret.trim().to_lowercase();
    if needle.is_empty() {
        return false;
    }
    let mut pending = vec![(text.to_owned(), 0u8)];
    let mut budget = 64;
    while let Some((view, depth)) = pending.pop() {
        if budget == 0 {
            return true;
        }
        budget -= 1;
        if view.to_lowercase().contains(&needle) {
            return true;
        }
        if depth >= 3 {
            continue;
        }
        if let Some(unescaped) = unescape_json_like(&view) {
            pending.push((unescaped, depth + 1));
        }
        if let Some(decoded) = percent_decode(&view) {
            pending.push((decoded, depth + 1));
        }
        if let Some(decoded) = base64_runs(&view, needle.len()) {
            pending.push((decoded, depth + 1));
        }
    }
    false
}

/// `text` with JSON string escapes undone wherever they appear (`\u005f` → `_`, `\/` → `/`,
/// surrogate pairs joined); `None` if there is nothing to undo.
fn unescape_json_like(text: &str) -> Option<String> {
    if !text.contains('\\') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let Ok(unit) = u32::from_str_radix(&hex, 16) else {
                    out.push_str("\\u");
                    out.push_str(&hex);
                    continue;
                };
                let unit = if (0xD800..0xDC00).contains(&unit) {
                    // A high surrogate: join with the low one that should follow.
                    let mut lookahead = chars.clone();
                    let low = (lookahead.next() == Some('\\') && lookahead.next() == Some('u'))
                        .then(|| lookahead.by_ref().take(4).collect::<String>())
                        .and_then(|hex| u32::from_str_radix(&hex, 16).ok())
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    match low {
                        Some(low) => {
                            chars = lookahead;
                            0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        }
                        None => unit,
                    }
                } else {
                    unit
                };
                out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other), // `\/`, `\\`, `\"`, and anything else as itself
            None => out.push('\\'),
        }
    }
    Some(out)
}

/// `text` with `%XX` sequences decoded (and `+` as a space); `None` if there are none.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') && !text.contains('+') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Every run of base64 or base64url characters long enough to hold `secret_len` bytes, decoded
/// from each of its four possible alignments, joined by newlines; `None` if there is none.
fn base64_runs(text: &str, secret_len: usize) -> Option<String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine};

    // Unpadded, and a last partial character's spare bits ignored: a run cut anywhere decodes.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );

    let is_base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_');
    let min_chars = (secret_len * 4).div_ceil(3).max(8);
    let mut decoded = String::new();
    for run in text.split(|c: char| !is_base64(c)) {
        if run.len() < min_chars {
            continue;
        }
        // base64url is base64 with two letters changed.
        let run: String = run
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        for start in 0..4 {
            let Some(part) = run.get(start..) else { break };
            // One character alone cannot be decoded; drop it.
            let part = &part[..part.len() - usize::from(part.len() % 4 == 1)];
            if let Ok(bytes) = LENIENT.decode(part) {
                decoded.push_str(&String::from_utf8_lossy(&bytes));
                decoded.push('\n');
            }
        }
    }
    (!decoded.is_empty()).then_some(decoded)
}

/// The `secretKey` values in a request body (an object or an array of objects).
pub(super) fn secrets_in(body: &serde_json::Value) -> Vec<String> {
    let objects: Vec<&serde_json::Value> = match body {
        serde_json::Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    objects
        .into_iter()
        .filter_map(|o| o.get("secretKey")?.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_echoing_a_secret_in_another_spelling_is_withheld() {
        let key = "sk_live_Abc/123xyz";
        for echo in [
            r#"{"t":"sk\u005flive\u005fAbc\/123xyz"}"#,
            "SK_LIVE_ABC/123XYZ",
            "c2tfbGl2ZV9BYmMvMTIzeHl6",           // base64
            "QmVhcmVyIHNrX2xpdmVfQWJjLzEyM3h5eg", // base64 of "Bearer …", unpadded
            "sk_live_Abc%2F123xyz",
            r#""\ud83d\ude00 sk\u005Flive_Abc\/123xyz""#,
        ] {
            assert_eq!(scrub(echo, &[key]), WITHHELD_BODY, "{echo}");
        }
        assert_eq!(
            scrub("bad sk_live_Abc/123xyz here", &[key]),
            "bad [REDACTED] here"
        );
        assert_eq!(scrub("no secret", &[key, ""]), "no secret");
        assert_eq!(
            unescape_json_like(r#"a\ud83d\ude00\/\u00e9\x"#).as_deref(),
            Some("a\u{1f600}/\u{e9}x")
        );
    }
}
