//! What of a server's answer may go into an error: the secrets the request carried (the API key,
//! the webhook secrets it registers) replaced where they appear as written, and the whole body
//! withheld where they still appear in some other spelling.

use crate::redact::spelled;
use crate::redact::{html, json, percent};

/// What replaces a response body that still holds a secret after [`redact`].
pub(crate) const WITHHELD_BODY: &str =
    "[REDACTED] (response body withheld: it echoes a secret of the request in some encoding)";

/// A response body as it may go into an error: each of `secrets` (the API key, the webhook
/// secrets the request carried) replaced where it appears verbatim or JSON-escaped, and the whole
/// body withheld ([`WITHHELD_BODY`]) if any secret is still in it in another spelling: upper or
/// mixed case, other JSON escapes (`sk\u005f…`, `\/`), percent-encoded, HTML character
/// references (`&#x2F;`, `&lowbar;`; see [`html`]), base64 or base64url, or a combination (see
/// [`spells`]). A server that echoes a request can spell it back in ways no list of
/// replacements covers; a body that cannot be shown safely is not shown. Last, a run that is
/// the start or the end of a secret, as an API shows a key cut short, is replaced
/// ([`redact_partial`]).
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        out = redact(&out, secret);
    }
    if secrets.iter().any(|secret| spells(&out, secret)) {
        return WITHHELD_BODY.to_owned();
    }
    // After the look for other spellings: a start redacted first would hide an echo whose
    // rest is encoded (`sk_live_Abc%2F123xyz`), and show that rest.
    for secret in secrets {
        out = redact_partial(&out, secret);
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

/// `text` with each run that is the start or the end of `secret`, at least
/// [`spelled::partial_min`] characters of it, replaced, each character as written or encoded
/// (JSON escapes, percent-encoding, HTML references, mixed: [`spelled`]): an API that shows a
/// key cut short ("key sk_live_4f9Qz… is invalid", a body read up to a cap mid-key) shows that
/// much of it, and may encode it as it does the rest (`sk\u005flive\u005f4f9Qz…`). Linear in
/// the text's length for a secret of up to 63 characters, however periodic the secret
/// ([`spelled::covered`]).
fn redact_partial(text: &str, secret: &str) -> String {
    let units = spelled::units(secret);
    let min = spelled::partial_min(units.len());
    if units.len() < min || text.len() < min {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let covered = spelled::covered(bytes, &units, min);
    let mut out = Vec::with_capacity(bytes.len());
    let mut hiding = false;
    for (byte, &covered) in bytes.iter().zip(&covered) {
        if covered {
            if !hiding {
                out.extend_from_slice(b"[REDACTED]");
            }
            hiding = true;
        } else {
            out.push(*byte);
            hiding = false;
        }
    }
    // Runs start and end where a character does (a secret's first byte is never a UTF-8
    // continuation byte), so this is lossless.
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `text` holds `secret` (compared without regard to case) as is or once decoded: JSON
/// string escapes undone, percent-encoding undone, HTML character references read,
/// base64/base64url runs decoded, and those decodings of decodings up to three deep. Fails
/// closed: past its budget of views (enough for every view of a text that all four decodings
/// apply to, three deep: 1 + 4 + 16 + 64), it says yes.
fn spells(text: &str, secret: &str) -> bool {
    // `&lang;` is read as HTML 4's U+2329, and HTML5's U+27E8 in a secret folded to it.
    // An ASCII view (the usual JSON body) is left as lowercased: mapped char by char, each
    // of the many views cost several times the lowercasing.
    let fold = |text: &str| {
        let lower = text.to_lowercase();
        if lower.is_ascii() {
            return lower;
        }
        lower.chars().map(html::fold_html5).collect::<String>()
    };
    let needle = fold(secret.trim());
    if needle.is_empty() {
        return false;
    }
    let mut pending = vec![(text.to_owned(), 0u8)];
    let mut budget = 85;
    while let Some((view, depth)) = pending.pop() {
        if budget == 0 {
            return true;
        }
        budget -= 1;
        if fold(&view).contains(&needle) {
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
        if let Some(decoded) = html::unescape(&view) {
            pending.push((decoded, depth + 1));
        }
        if let Some(decoded) = base64_runs(&view, needle.len()) {
            pending.push((decoded, depth + 1));
        }
    }
    false
}

/// `text` with JSON string escapes undone wherever they appear ([`json::escape_at`]: `\u005f` →
/// `_`, `\/` → `/`, surrogate pairs joined), and any other character after a backslash taken
/// as itself; `None` if there is nothing to undo.
fn unescape_json_like(text: &str) -> Option<String> {
    if !text.contains('\\') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some((c, end)) = json::escape_at(bytes, i) {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            i = end;
            continue;
        }
        match (bytes[i], bytes.get(i + 1)) {
            // A `\u` without four hex digits stays as written.
            (b'\\', Some(b'u')) => {
                out.extend_from_slice(b"\\u");
                i += 2;
            }
            // `\x` as `x`; a last `\` as itself.
            (b'\\', Some(_)) => i += 1,
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// `text` with `%XX` sequences decoded (and `+` as a space: [`percent::byte_at`]); `None` if
/// there are none.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') && !text.contains('+') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match percent::byte_at(bytes, i) {
            Some((byte, end)) => {
                out.push(byte);
                i = end;
            }
            None => {
                out.push(bytes[i]);
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
    fn a_secret_shown_cut_short_is_redacted() {
        let key = "sk_live_4f9Qz/Xy2Kp8mW";
        for (shown, scrubbed) in [
            (
                "key sk_live_4f9Q\u{2026} is invalid",
                "key [REDACTED]\u{2026} is invalid",
            ),
            (
                "key sk_live_4f9Qz/Xy2Kp8*** is invalid",
                "key [REDACTED]*** is invalid",
            ),
            (
                "key ***Qz/Xy2Kp8mW is invalid",
                "key ***[REDACTED] is invalid",
            ),
            // A body read up to a cap that cut the key.
            ("{\"token\":\"sk_live_4f9", "{\"token\":\"[REDACTED]"),
            // Shorter than 8 characters: a fixed prefix, a customary last four (or five).
            (
                "keys start with sk_live, not sk_test",
                "keys start with sk_live, not sk_test",
            ),
            ("key \u{2026}Kp8mW", "key \u{2026}Kp8mW"),
        ] {
            assert_eq!(scrub(shown, &[key]), scrubbed, "{shown}");
        }
        // A short secret: more than half of it.
        assert_eq!(
            scrub("pw hunt is hunter", &["hunter2xyz"]),
            "pw hunt is [REDACTED]"
        );
        // A periodic secret's partial echoes, each position inside another's.
        let secret = "ab".repeat(2000);
        assert_eq!(
            scrub(&format!("<{}>", "ab".repeat(50)), &[&secret]),
            "<[REDACTED]>"
        );
    }

    #[test]
    fn a_long_secret_of_backslashes_is_redacted_whole_cut_short_or_escaped() {
        // Each backslash of an answer starts a run of its start, read as written or, two at a
        // time, as JSON's `\\`: followed a character at a time, a second a call.
        let secret = "\\".repeat(4000);
        for (answer, scrubbed) in [
            (format!("<{secret}>"), "<[REDACTED]>".to_owned()),
            (
                format!("<{}>", "\\".repeat(3999)),
                "<[REDACTED]>".to_owned(),
            ),
            // The secret as written, then the start of another.
            (
                format!("<{}>", "\\\\".repeat(3999)),
                "<[REDACTED][REDACTED]>".to_owned(),
            ),
            // Its end, after a letter it does not hold.
            (
                format!("<x{}>", "\\".repeat(100)),
                "<x[REDACTED]>".to_owned(),
            ),
            // Too short a run: left.
            (
                format!("<{}>", "\\".repeat(7)),
                format!("<{}>", "\\".repeat(7)),
            ),
        ] {
            let start: String = answer.chars().take(12).collect();
            assert_eq!(scrub(&answer, &[&secret]), scrubbed, "{start}");
        }
    }

    #[test]
    fn a_secret_shown_cut_short_and_encoded_is_redacted() {
        let key = "sk_live_4f9Qz/Xy2Kp8mW";
        for (shown, scrubbed) in [
            // JSON, as an encoder escapes `_` or `/`.
            (
                r#"{"error":"key sk\u005flive\u005f4f9Q\u2026 is invalid"}"#,
                r#"{"error":"key [REDACTED]\u2026 is invalid"}"#,
            ),
            (
                r#"{"error":"key ***Qz\/Xy2Kp8mW is invalid"}"#,
                r#"{"error":"key ***[REDACTED] is invalid"}"#,
            ),
            // Percent-encoded, as a URL's query.
            ("?key=sk%5Flive_4f9Qz%2FX&x=1", "?key=[REDACTED]&x=1"),
            ("?key=***Qz%2fXy2Kp8mW", "?key=***[REDACTED]"),
            // HTML references, named and numeric.
            (
                "<p>sk&lowbar;live&#95;4f9Q&hellip;</p>",
                "<p>[REDACTED]&hellip;</p>",
            ),
            (
                "<p>&hellip;Qz&sol;Xy2Kp8mW</p>",
                "<p>&hellip;[REDACTED]</p>",
            ),
            // Shorter than 8 characters, encoded or not: left alone.
            ("sk&lowbar;live or sk%5ftest", "sk&lowbar;live or sk%5ftest"),
            (
                r"ends &hellip;Kp8mW or \u004bp8mW",
                r"ends &hellip;Kp8mW or \u004bp8mW",
            ),
        ] {
            assert_eq!(scrub(shown, &[key]), scrubbed, "{shown}");
        }
    }

    #[test]
    fn a_body_echoing_a_secret_in_another_spelling_is_withheld() {
        let key = "sk_live_Abc/123xyz";
        for echo in [
            r#"{"t":"sk\u005flive\u005fAbc\/123xyz"}"#,
            "SK_LIVE_ABC/123XYZ",
            "c2tfbGl2ZV9BYmMvMTIzeHl6",           // base64
            "QmVhcmVyIHNrX2xpdmVfQWJjLzEyM3h5eg", // base64 of "Bearer …", unpadded
            "sk_live_Abc%2F123xyz",
            "<p>sk&lowbar;live&#95;Abc&sol;123xyz</p>", // HTML references, named and numeric
            "sk_live_Abc&amp;#x2F;123xyz",              // HTML-escaped twice
            r#""\ud83d\ude00 sk\u005Flive_Abc\/123xyz""#,
        ] {
            assert_eq!(scrub(echo, &[key]), WITHHELD_BODY, "{echo}");
        }
        assert_eq!(
            scrub("bad sk_live_Abc/123xyz here", &[key]),
            "bad [REDACTED] here"
        );
        assert_eq!(scrub("no secret", &[key, ""]), "no secret");
        assert_eq!(scrub("a &amp; b", &[key]), "a &amp; b");
        assert_eq!(
            unescape_json_like(r#"a\ud83d\ude00\/\u00e9\x"#).as_deref(),
            Some("a\u{1f600}/\u{e9}x")
        );
        assert_eq!(
            unescape_json_like(r#"\ud83d \u00zz \\\"#).as_deref(),
            Some("\u{fffd} \\u00zz \\\\")
        );
    }
}
