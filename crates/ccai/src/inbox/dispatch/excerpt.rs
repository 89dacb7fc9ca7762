//! The excerpt of a forward target's answer that is recorded as an attempt's error, with every
//! echo of a secret the request carried (the signature, the URL's credentials, the tokens of its
//! query and path, the caller's header values) redacted: the excerpt is stored, shown
//! (`ccai events show`, `ccai listen`'s retry lines) and logged. The spellings followed are
//! [`crate::redact`]'s, which the management API client's redaction follows too.

use crate::redact::{html, json, percent};

/// The most bytes of a target's answer excerpted into an attempt's error.
pub(super) const EXCERPT: usize = 512;

/// The longest way an answer may write one byte of a secret: an HTML reference's, the longest
/// of its spellings (`&#x0000002B;`, zero-padded to the digits read; `\u0022` and `&quot;` are
/// shorter).
const LONGEST_ENCODING: usize = html::LONGEST;

/// What an echo is replaced with.
const REDACTED: &[u8] = b"[REDACTED]";

/// How many bytes of an answer to read: the excerpt, and past it the longest encoded secret,
/// so that an echo the cut would split is read whole and found.
pub(super) fn read_limit(secrets: &[&str]) -> usize {
    let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
    EXCERPT.saturating_add(longest.saturating_mul(LONGEST_ENCODING))
}

/// One character of a secret, worked out once per [`without_secrets`] call rather than at
/// every position of the answer (a long secret made that seconds of allocation).
struct Unit {
    /// The character, for the spellings that write it whole.
    c: char,
    /// Its UTF-8 bytes, for those that write it byte by byte.
    utf8: Vec<u8>,
}

fn units(secret: &str) -> Vec<Unit> {
    let mut utf8 = [0u8; 4];
    secret
        .chars()
        .map(|c| Unit {
            c,
            utf8: c.encode_utf8(&mut utf8).as_bytes().to_vec(),
        })
        .collect()
}

/// The positions right after the byte `byte` from any of `from`, into `next`: verbatim, or
/// percent-encoded ([`percent::byte_at`]: an echoed query string or form; `%C3%B6` for `ö`).
fn after_byte(answer: &[u8], from: &[usize], byte: u8, next: &mut Vec<usize>) {
    for &i in from {
        if answer.get(i) == Some(&byte) {
            next.push(i + 1);
        }
        if let Some((read, end)) = percent::byte_at(answer, i) {
            if read == byte {
                next.push(end);
            }
        }
    }
}

/// The positions right after the character `c` written whole from any of `from`: a JSON escape
/// ([`json::escape_at`]: `\u005f`, PHP's `\/`, a surrogate pair as `ensure_ascii` encoders such
/// as Python's `json.dumps` write every non-ASCII character) or an HTML character reference
/// ([`html::reference_at`]: `&#039;`, `&ouml;`).
fn after_whole<'a>(
    answer: &'a [u8],
    from: &'a [usize],
    c: char,
) -> impl Iterator<Item = usize> + 'a {
    from.iter()
        .flat_map(move |&i| [json::escape_at(answer, i), html::reference_at(answer, i)])
        .flatten()
        .filter_map(move |(read, end)| (read == c).then_some(end))
}

/// The end of an echo of the secret of `units` starting at `at` in `answer`, each character
/// verbatim or spelled as a URL, JSON or HTML would ([`after_byte`], [`after_whole`]); the
/// furthest, when there are several. Some spellings start with the character itself (`&amp;`
/// for `&`, `%25` for `%`), so every way is followed, not the first that fits: the answer
/// positions each prefix of the secret can reach, one character at a time (no recursion: a
/// URL's password may be long).
fn echo_at(answer: &[u8], at: usize, units: &[Unit]) -> Option<usize> {
    // Buffers reused from one character to the next: allocating them anew made a long secret
    // slow to look for at each of the excerpt's positions.
    let (mut reached, mut next, mut scratch) = (vec![at], Vec::new(), Vec::new());
    for unit in units {
        // Byte by byte, each verbatim or percent-encoded (`ö` as `%C3%B6`, or `%C3` and a raw
        // byte); or the whole character escaped. Half a character escaped (`\u00c3\u00b6`) is
        // not an echo of it.
        next.clear();
        next.extend_from_slice(&reached);
        for &byte in &unit.utf8 {
            scratch.clear();
            after_byte(answer, &next, byte, &mut scratch);
            std::mem::swap(&mut next, &mut scratch);
        }
        next.extend(after_whole(answer, &reached, unit.c));
        if next.is_empty() {
            return None;
        }
        next.sort_unstable();
        next.dedup();
        std::mem::swap(&mut reached, &mut next);
    }
    reached.last().copied()
}

/// The first [`EXCERPT`] bytes of `answer` (a target's answer, as read, up to [`read_limit`]),
/// with each echo of any of `secrets` replaced with `[REDACTED]`, verbatim or encoded
/// ([`echo_at`]). At each position the furthest echo is taken, so that `user:password` goes
/// whole rather than leaving `user:` before a redacted password; and an echo that starts inside
/// another extends it, so that secrets that overlap in the answer (a header value ending where a
/// path token begins, both echoed: `…abcdefgh12345678…` for `abcdefgh12` and `gh12345678`) leave
/// no part of either behind. An echo that the cut would split is taken whole (the answer is read
/// that much further): cut first, its first 43 characters were kept, which is the whole signature
/// (the 44th is always the `=` padding).
pub(crate) fn without_secrets(answer: &[u8], secrets: &[&str]) -> String {
    redacted(answer, secrets).0
}

/// [`without_secrets`], and at how many positions of `answer` an echo was looked for (each look
/// costs up to a secret's length).
fn redacted(answer: &[u8], secrets: &[&str]) -> (String, usize) {
    let secrets: Vec<Vec<Unit>> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| units(s))
        .collect();
    let mut looks = 0;
    let mut furthest_echo = |at: usize| {
        looks += 1;
        secrets.iter().filter_map(|s| echo_at(answer, at, s)).max()
    };
    let shown = answer.len().min(EXCERPT);
    let mut kept = Vec::with_capacity(EXCERPT);
    let mut i = 0;
    while i < shown {
        let Some(mut end) = furthest_echo(i) else {
            kept.push(answer[i]);
            i += 1;
            continue;
        };
        // Once the redaction reaches the excerpt's end, echoes starting further in change
        // nothing shown. Followed anyway, a long periodic secret (`abab…`) echoed in a long
        // answer cost seconds: every other position inside an echo starts another one, each
        // as long as the secret.
        let mut inside = i + 1;
        while inside < end && end < shown {
            end = end.max(furthest_echo(inside).unwrap_or(end));
            inside += 1;
        }
        kept.extend_from_slice(REDACTED);
        i = end;
    }
    (String::from_utf8_lossy(&kept).into_owned(), looks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_ascii_secret_goes_verbatim_percent_encoded_or_escaped_whole() {
        let secret = "t\u{f6}ken-\u{e9}t\u{e9}";
        let answer = format!("a {secret} b t%c3%b6ken-%C3%A9t%c3%a9 c");
        assert_eq!(
            without_secrets(answer.as_bytes(), &[secret]),
            "a [REDACTED] b [REDACTED] c"
        );
        // As Python's `json.dumps` (ensure_ascii) and an HTML page write it.
        let answer = br#"{"token": "t\u00f6ken-\u00E9t\u00e9"} <p>t&#246;ken-&#xE9;t&#233;</p>"#;
        assert_eq!(
            without_secrets(answer, &[secret]),
            r#"{"token": "[REDACTED]"} <p>[REDACTED]</p>"#
        );
        // Past the Basic Multilingual Plane, JSON writes a surrogate pair.
        let answer = br#"{"token": "k\ud83d\ude00y"} k&#128512;y k%F0%9F%98%80y"#;
        assert_eq!(
            without_secrets(answer, &["k\u{1f600}y"]),
            r#"{"token": "[REDACTED]"} [REDACTED] [REDACTED]"#
        );
        // Half a character escaped is not an echo of it.
        assert_eq!(
            without_secrets(br"t\u00c3\u00b6ken", &["t\u{f6}ken"]),
            r"t\u00c3\u00b6ken"
        );
    }

    #[test]
    fn each_secret_goes_verbatim_or_encoded() {
        let secrets = ["dXNlcjpwQHNzIg==", "user:p@ss\"", "p@ss\""];
        let answer = br#"auth=Basic dXNlcjpwQHNzIg%3D%3D u=user%3Ap%40ss%22 {"pw":"p@ss\""} &lt;p&#64;ss&quot;&gt; user"#;
        assert_eq!(
            without_secrets(answer, &secrets),
            r#"auth=Basic [REDACTED] u=[REDACTED] {"pw":"[REDACTED]"} &lt;[REDACTED]&gt; user"#
        );
    }

    #[test]
    fn a_zero_padded_reference_is_followed() {
        // PHP's htmlspecialchars (ENT_QUOTES, the default since 8.1).
        assert_eq!(
            without_secrets(b"<b>it&#039;s-a-s3cret</b>", &["it's-a-s3cret"]),
            "<b>[REDACTED]</b>"
        );
    }

    #[test]
    fn an_encoding_that_starts_with_the_character_itself_is_followed() {
        assert_eq!(
            without_secrets(b"<i>a&amp;b%25c</i> a&b%c", &["a&b%c"]),
            "<i>[REDACTED]</i> [REDACTED]"
        );
        // A verbatim `&` followed by text that reads on as the secret: the longer echo goes.
        assert_eq!(without_secrets(b"x&amp;", &["x&"]), "[REDACTED]");
    }

    #[test]
    fn the_longest_secret_goes_first_and_empty_ones_are_ignored() {
        assert_eq!(
            without_secrets(b"user:hunter2 hunter2", &["", "hunter2", "user:hunter2"]),
            "[REDACTED] [REDACTED]"
        );
        assert_eq!(without_secrets(b"plain", &[""]), "plain");
    }

    #[test]
    fn secrets_that_overlap_or_contain_one_another_leave_no_part_behind() {
        // Overlapping: the first found ends inside the second.
        assert_eq!(
            without_secrets(b"x abcdefgh12345678 y", &["abcdefgh12", "gh12345678"]),
            "x [REDACTED] y"
        );
        // A chain: each starts inside the one before, the last encoded.
        assert_eq!(
            without_secrets(
                br"<a1b2c3d4e5f6\/g7h8>",
                &["a1b2c3d4", "c3d4e5f6", "e5f6/g7h8"]
            ),
            "<[REDACTED]>"
        );
        // Contained: the path token inside the header value, and alone.
        assert_eq!(
            without_secrets(
                b"Bearer XsEcReTt0kEn1234567890 /B000/XsEcReTt0kEn1234567890",
                &["XsEcReTt0kEn1234567890", "Bearer XsEcReTt0kEn1234567890"]
            ),
            "[REDACTED] /B000/[REDACTED]"
        );
    }

    #[test]
    fn an_echo_across_the_cut_is_taken_whole() {
        let secret = "s3cr3t/p4ss";
        let mut answer = vec![b'x'; EXCERPT - 3];
        answer.extend_from_slice(b"s3cr3t\\/p4ss tail");
        assert!(answer.len() <= read_limit(&[secret]));
        let excerpt = without_secrets(&answer, &[secret]);
        assert!(excerpt.ends_with("x[REDACTED]"), "{excerpt}");
        assert!(!excerpt.contains("s3c"), "{excerpt}");
    }

    #[test]
    fn a_long_periodic_secret_is_looked_for_at_the_excerpts_positions_only() {
        let secret = "ab".repeat(2000);
        let answer = "ab".repeat(read_limit(&[&secret]) / 2);
        let (excerpt, looks) = redacted(answer.as_bytes(), &[&secret]);
        assert_eq!(excerpt, "[REDACTED]");
        // Each echo inside the first used to be followed to the answer's end (24,000 looks,
        // each as long as the secret: seconds).
        assert!(looks <= EXCERPT, "{looks} looks");
        // An echo that ends before the excerpt's end is still extended by those inside it.
        let (excerpt, _) = redacted(b"x abababab y", &["ababab"]);
        assert_eq!(excerpt, "x [REDACTED] y");
    }
    #[test]
    fn named_and_zero_padded_html_references_are_followed() {
        // PHP's htmlentities: Latin-1 letters and ASCII punctuation by name.
        let secret = "t\u{f6}k\u{e9}n's<&>\"_x";
        let answer = b"<p>t&ouml;k&eacute;n&apos;s&lt;&amp;&gt;&quot;&lowbar;x</p>";
        assert_eq!(without_secrets(answer, &[secret]), "<p>[REDACTED]</p>");
        // Zero-padded numeric references, a non-ASCII character's too.
        let answer = b"<p>t&#0246;k&#x000E9;n&#X27;s&#060;&#x0026;&gt;&#00034;_x</p>";
        assert_eq!(without_secrets(answer, &[secret]), "<p>[REDACTED]</p>");
        // A reference to another character is no echo.
        assert_eq!(
            without_secrets(b"t&Ouml;ken", &["t\u{f6}ken"]),
            "t&Ouml;ken"
        );
    }
}
