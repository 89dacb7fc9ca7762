//! The excerpt of a forward target's answer that is recorded as an attempt's error, with every
//! echo of a secret the request carried (the signature, the URL's credentials, the tokens of its
//! query and path, the caller's header values) redacted: the excerpt is stored, shown
//! (`ccai events show`, `ccai listen`'s retry lines) and logged. The spellings followed are
//! [`crate::redact`]'s, which the management API client's redaction follows too.

use crate::redact::html;
use crate::redact::spelled::{self, Text};

/// The most bytes of a target's answer excerpted into an attempt's error.
pub(super) const EXCERPT: usize = 512;

/// The longest way an answer may write one byte of a secret: an HTML reference's, the longest
/// of its spellings (`&#x0000002B;`, zero-padded to the digits read; `\u0022` and `&quot;` are
/// shorter).
const LONGEST_ENCODING: usize = html::LONGEST;

/// How many characters of a secret past the excerpt's cut are read to tell that what the
/// excerpt shows before it is part of a run cut short (the start or the end of the secret):
/// more than any signature, URL token or API key, though not every header value.
const ACROSS: usize = 256;

/// What an echo is replaced with.
const REDACTED: &[u8] = b"[REDACTED]";

/// A text that authenticates a forward's request, as the excerpt redacts it: wherever an answer
/// echoes it whole, and, unless it is [`whole_only`](Self::whole_only), wherever an answer shows
/// a run of its start or end.
#[derive(Clone, Copy)]
pub(crate) struct Secret<'a> {
    text: &'a str,
    runs: bool,
}

impl<'a> Secret<'a> {
    /// `text`, redacted whole and in runs of its start or end.
    pub(crate) fn new(text: &'a str) -> Self {
        Secret { text, runs: true }
    }

    /// `text`, redacted whole only: a header value `Bearer eyJ…` whose credential is listed
    /// apart, which starts with the scheme word and a space every answer about it may show.
    pub(crate) fn whole_only(text: &'a str) -> Self {
        Secret { text, runs: false }
    }
}

/// How many bytes of an answer to read: the excerpt, and past it the longest encoded secret,
/// so that an echo the cut would split is read whole and found.
pub(super) fn read_limit(secrets: &[Secret<'_>]) -> usize {
    let longest = secrets.iter().map(|s| s.text.len()).max().unwrap_or(0);
    EXCERPT.saturating_add(longest.saturating_mul(LONGEST_ENCODING))
}

/// The first [`EXCERPT`] bytes of `answer` (a target's answer, as read, up to [`read_limit`]),
/// with each echo of any of `secrets` replaced with `[REDACTED]`, verbatim or encoded
/// ([`spelled`]), and each run that is the start or the end of one (but a
/// [`Secret::whole_only`]), at least
/// [`spelled::partial_min`] characters of it, as written or encoded (an API shows a key cut
/// short: `sk_live_4f9Q…`, `sk\u005flive\u005f4f9Q…`). At each position the furthest echo is taken, so that `user:password` goes
/// whole rather than leaving `user:` before a redacted password; and an echo that starts inside
/// another extends it, so that secrets that overlap in the answer (a header value ending where a
/// path token begins, both echoed: `…abcdefgh12345678…` for `abcdefgh12` and `gh12345678`) leave
/// no part of either behind. An echo that the cut would split is taken whole (the answer is read
/// that much further): cut first, its first 43 characters were kept, which is the whole signature
/// (the 44th is always the `=` padding). So is a run cut short that the cut splits, even where
/// what is shown of it is a piece from the secret's middle, or too short to count alone, when
/// the answer past the cut ends the run within [`ACROSS`] characters.
pub(crate) fn without_secrets(answer: &[u8], secrets: &[Secret<'_>]) -> String {
    redacted(answer, secrets).0
}

/// [`without_secrets`], and at how many positions of `answer` an echo was looked for (all of
/// them at once, each character of a secret followed from every position still on the way:
/// [`spelled`]).
fn redacted(answer: &[u8], secrets: &[Secret<'_>]) -> (String, usize) {
    let shown = answer.len().min(EXCERPT);
    let text = Text::new(answer);
    // An excerpt that shows part of an echo cut short by the excerpt's end: followed in the
    // excerpt as cut, where the start of a secret is looked for.
    let excerpt = Text::new(&answer[..shown]);
    // The answer a little past the cut, where a run the cut splits is followed to its end: not
    // all of what was read, since following every run of a long secret through it all costs
    // the square of its length (seconds for a periodic 4,000-character secret).
    let across = (answer.len() > shown)
        .then(|| Text::new(&answer[..answer.len().min(shown + ACROSS * LONGEST_ENCODING)]));
    // The furthest end of an echo starting at each position shown.
    let mut furthest: Vec<Option<usize>> = vec![None; shown];
    for secret in secrets.iter().filter(|s| !s.text.is_empty()) {
        let units = spelled::units(secret.text);
        let mut echoes = text.echoes(&units, 0..shown);
        // A run that is the start or the end of a secret, as an API shows a key cut short.
        let min = spelled::partial_min(units.len());
        if secret.runs && units.len() >= min {
            echoes.extend(excerpt.partial_echoes(&units, min));
            // A run the cut splits: what is shown of it may be too short to count alone, or a
            // piece from the secret's middle; the answer read past the cut says what it is.
            if let Some(across) = &across {
                let runs = across.partial_echoes(&units, min).into_iter();
                echoes.extend(runs.filter(|&(start, end)| start < shown && end > shown));
            }
        }
        for (start, end) in echoes {
            if let Some(slot) = furthest.get_mut(start) {
                *slot = (*slot).max(Some(end));
            }
        }
    }
    let mut kept = Vec::with_capacity(EXCERPT);
    let mut i = 0;
    while i < shown {
        let Some(mut end) = furthest[i] else {
            kept.push(answer[i]);
            i += 1;
            continue;
        };
        // An echo that starts inside another extends it. Once the redaction reaches the
        // excerpt's end, echoes starting further in change nothing shown.
        let mut inside = i + 1;
        while inside < end && end < shown {
            end = end.max(furthest[inside].unwrap_or(end));
            inside += 1;
        }
        kept.extend_from_slice(REDACTED);
        i = end;
    }
    (String::from_utf8_lossy(&kept).into_owned(), shown)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// [`without_secrets`] with each of `secrets` redacted whole and in runs ([`Secret::new`]).
    pub(crate) fn without(answer: &[u8], secrets: &[&str]) -> String {
        let secrets: Vec<Secret<'_>> = secrets.iter().map(|s| Secret::new(s)).collect();
        without_secrets(answer, &secrets)
    }

    #[test]
    fn a_whole_only_secret_is_redacted_whole_and_not_in_runs() {
        let value = "Bearer 5f2c9a7e1b3d";
        let secrets = [Secret::whole_only(value), Secret::new("5f2c9a7e1b3d")];
        assert_eq!(
            without_secrets(b"got Bearer 5f2c9a7e1b3d; Bearer 5 left", &secrets),
            "got [REDACTED]; Bearer 5 left"
        );
        // Encoded whole, as a form writes it.
        assert_eq!(
            without_secrets(b"a=Bearer+5f2c9a7e1b3d", &[Secret::whole_only(value)]),
            "a=[REDACTED]"
        );
        // Its runs, left: the credential's are its own secret's.
        assert_eq!(
            without_secrets(br"Bearer 5f2c9a7e\u2026", &[Secret::whole_only(value)]),
            r"Bearer 5f2c9a7e\u2026"
        );
        assert_eq!(
            without_secrets(br"Bearer 5f2c9a7e\u2026", &secrets),
            r"Bearer [REDACTED]\u2026"
        );
    }

    #[test]
    fn a_non_ascii_secret_goes_verbatim_percent_encoded_or_escaped_whole() {
        let secret = "t\u{f6}ken-\u{e9}t\u{e9}";
        let answer = format!("a {secret} b t%c3%b6ken-%C3%A9t%c3%a9 c");
        assert_eq!(
            without(answer.as_bytes(), &[secret]),
            "a [REDACTED] b [REDACTED] c"
        );
        // As Python's `json.dumps` (ensure_ascii) and an HTML page write it.
        let answer = br#"{"token": "t\u00f6ken-\u00E9t\u00e9"} <p>t&#246;ken-&#xE9;t&#233;</p>"#;
        assert_eq!(
            without(answer, &[secret]),
            r#"{"token": "[REDACTED]"} <p>[REDACTED]</p>"#
        );
        // Past the Basic Multilingual Plane, JSON writes a surrogate pair.
        let answer = br#"{"token": "k\ud83d\ude00y"} k&#128512;y k%F0%9F%98%80y"#;
        assert_eq!(
            without(answer, &["k\u{1f600}y"]),
            r#"{"token": "[REDACTED]"} [REDACTED] [REDACTED]"#
        );
        // Half a character escaped is not an echo of it.
        assert_eq!(
            without(br"t\u00c3\u00b6ken", &["t\u{f6}ken"]),
            r"t\u00c3\u00b6ken"
        );
    }

    #[test]
    fn each_secret_goes_verbatim_or_encoded() {
        let secrets = ["dXNlcjpwQHNzIg==", "user:p@ss\"", "p@ss\""];
        let answer = br#"auth=Basic dXNlcjpwQHNzIg%3D%3D u=user%3Ap%40ss%22 {"pw":"p@ss\""} &lt;p&#64;ss&quot;&gt; user"#;
        assert_eq!(
            without(answer, &secrets),
            r#"auth=Basic [REDACTED] u=[REDACTED] {"pw":"[REDACTED]"} &lt;[REDACTED]&gt; user"#
        );
    }

    #[test]
    fn a_secret_shown_cut_short_is_redacted_as_written_or_encoded() {
        let key = "sk_live_4f9Qz/Xy2Kp8mW";
        for (shown, excerpt) in [
            ("key sk_live_4f9Q\u{2026}", "key [REDACTED]\u{2026}"),
            (r"key sk\u005flive\u005f4f9Q...", "key [REDACTED]..."),
            (r"key ***Qz\/Xy2Kp8mW.", "key ***[REDACTED]."),
            ("?key=sk%5Flive_4f9Qz%2FX&x=1", "?key=[REDACTED]&x=1"),
            ("?key=***Qz%2fXy2Kp8mW", "?key=***[REDACTED]"),
            ("sk&lowbar;live&#95;4f9Q&hellip;", "[REDACTED]&hellip;"),
            ("&hellip;Qz&sol;Xy2Kp8mW", "&hellip;[REDACTED]"),
            // Shorter than 8 characters, encoded or not: left alone.
            ("sk&lowbar;live or sk%5ftest", "sk&lowbar;live or sk%5ftest"),
            (
                r"ends &hellip;Kp8mW or \u004bp8mW",
                r"ends &hellip;Kp8mW or \u004bp8mW",
            ),
        ] {
            assert_eq!(without(shown.as_bytes(), &[key]), excerpt, "{shown}");
        }
    }

    #[test]
    fn a_zero_padded_reference_is_followed() {
        // PHP's htmlspecialchars (ENT_QUOTES, the default since 8.1).
        assert_eq!(
            without(b"<b>it&#039;s-a-s3cret</b>", &["it's-a-s3cret"]),
            "<b>[REDACTED]</b>"
        );
    }

    #[test]
    fn an_encoding_that_starts_with_the_character_itself_is_followed() {
        assert_eq!(
            without(b"<i>a&amp;b%25c</i> a&b%c", &["a&b%c"]),
            "<i>[REDACTED]</i> [REDACTED]"
        );
        // A verbatim `&` followed by text that reads on as the secret: the longer echo goes.
        assert_eq!(without(b"x&amp;", &["x&"]), "[REDACTED]");
    }

    #[test]
    fn the_longest_secret_goes_first_and_empty_ones_are_ignored() {
        assert_eq!(
            without(b"user:hunter2 hunter2", &["", "hunter2", "user:hunter2"]),
            "[REDACTED] [REDACTED]"
        );
        assert_eq!(without(b"plain", &[""]), "plain");
    }

    #[test]
    fn secrets_that_overlap_or_contain_one_another_leave_no_part_behind() {
        // Overlapping: the first found ends inside the second.
        assert_eq!(
            without(b"x abcdefgh12345678 y", &["abcdefgh12", "gh12345678"]),
            "x [REDACTED] y"
        );
        // A chain: each starts inside the one before, the last encoded.
        assert_eq!(
            without(
                br"<a1b2c3d4e5f6\/g7h8>",
                &["a1b2c3d4", "c3d4e5f6", "e5f6/g7h8"]
            ),
            "<[REDACTED]>"
        );
        // Contained: the path token inside the header value, and alone.
        assert_eq!(
            without(
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
        assert!(answer.len() <= read_limit(&[Secret::new(secret)]));
        let excerpt = without(&answer, &[secret]);
        assert!(excerpt.ends_with("x[REDACTED]"), "{excerpt}");
        assert!(!excerpt.contains("s3c"), "{excerpt}");
    }

    #[test]
    fn a_secret_shown_cut_short_across_the_cut_is_redacted() {
        let key = "sk_live_4f9Qz/Xy2Kp8mW";
        // The answer shows the key's end ("…Qz/Xy2Kp8mW"), and the excerpt's cut splits it:
        // what is shown is a piece from the key's middle, which alone is neither its start nor
        // its end.
        let mut answer = vec![b'x'; EXCERPT - 6];
        answer.extend_from_slice(b"***Qz\\/Xy2Kp8mW. tail");
        let excerpt = without(&answer, &[key]);
        assert!(excerpt.ends_with("x***[REDACTED]"), "{excerpt}");
        assert!(!excerpt.contains("Qz"), "{excerpt}");
        // The key's start, cut short by the answer, with fewer characters shown than a run
        // needs on its own: the answer read past the cut shows it is one.
        let mut answer = vec![b'x'; EXCERPT - 4];
        answer.extend_from_slice("sk_live_4f9Q\u{2026} tail".as_bytes());
        let excerpt = without(&answer, &[key]);
        assert!(excerpt.ends_with("x[REDACTED]"), "{excerpt}");
        assert!(!excerpt.contains("sk_"), "{excerpt}");
        // An ordinary word across the cut is left alone.
        let mut answer = vec![b'x'; EXCERPT - 3];
        answer.extend_from_slice(b" skipped");
        assert!(without(&answer, &[key]).ends_with("x sk"));
    }

    #[test]
    fn a_long_periodic_secret_is_looked_for_at_the_excerpts_positions_only() {
        let secret = "ab".repeat(2000);
        let answer = "ab".repeat(read_limit(&[Secret::new(&secret)]) / 2);
        let (excerpt, looks) = redacted(answer.as_bytes(), &[Secret::new(&secret)]);
        assert_eq!(excerpt, "[REDACTED]");
        // Each echo inside the first used to be followed to the answer's end (24,000 looks,
        // each as long as the secret: seconds).
        assert!(looks <= EXCERPT, "{looks} looks");
        // An echo that ends before the excerpt's end is still extended by those inside it.
        let (excerpt, _) = redacted(b"x abababab y", &[Secret::new("ababab")]);
        assert_eq!(excerpt, "x [REDACTED] y");
    }
    #[test]
    fn named_and_zero_padded_html_references_are_followed() {
        // PHP's htmlentities: Latin-1 letters and ASCII punctuation by name.
        let secret = "t\u{f6}k\u{e9}n's<&>\"_x";
        let answer = b"<p>t&ouml;k&eacute;n&apos;s&lt;&amp;&gt;&quot;&lowbar;x</p>";
        assert_eq!(without(answer, &[secret]), "<p>[REDACTED]</p>");
        // Zero-padded numeric references, a non-ASCII character's too.
        let answer = b"<p>t&#0246;k&#x000E9;n&#X27;s&#060;&#x0026;&gt;&#00034;_x</p>";
        assert_eq!(without(answer, &[secret]), "<p>[REDACTED]</p>");
        // A reference to another character is no echo.
        assert_eq!(without(b"t&Ouml;ken", &["t\u{f6}ken"]), "t&Ouml;ken");
    }
}
