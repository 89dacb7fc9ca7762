//! The segments of a forward URL's path that look like tokens: Slack-style hook URLs
//! (`/services/T000/B000/XsEcReTt0kEn1234567890`) carry their secret in the path, and a target
//! that echoes its request line (`Cannot handle POST /services/…`) must not get it into the
//! attempt's error (stored, shown and logged), nor may a message that shows the URL.
//!
//! The rule: a segment, percent-decoded, is a token when it has at least
//! [`SHORTEST_TOKEN`] characters and an ASCII digit or capital letter among them
//! (`XsEcReTt0kEn…`, `a1b2c3d4`), or at least [`LONG_SEGMENT`] characters whatever they are.
//! Ordinary words (`webhooks`, `services`, `ccai`, `T000`) stay, so that an error still says
//! which endpoint answered.

use reqwest::Url;

use super::query_tokens::SHORTEST_TOKEN;
use super::url_credentials::percent_decoded;

/// A segment this long is taken for a token even in lower case letters only (a hex or base32
/// secret): no route names a word that long.
pub(super) const LONG_SEGMENT: usize = 20;

/// What a token segment is shown as.
const REDACTED: &str = "[REDACTED]";

/// Whether a path segment, as the URL writes it, is a token by the rule above. It is judged
/// decoded (`%2F` is one character, and no capital letter); one that does not decode to UTF-8 is
/// judged as written.
fn is_token(raw: &str) -> bool {
    let segment = percent_decoded(raw).unwrap_or_else(|| raw.to_owned());
    let length = segment.chars().count();
    length >= LONG_SEGMENT
        || (length >= SHORTEST_TOKEN
            && segment
                .chars()
                .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase()))
}

/// The segments of `url`'s path that are tokens, as the URL writes them and decoded, for the
/// excerpt to redact.
pub(super) fn path_tokens(url: &Url) -> Vec<String> {
    let mut tokens = Vec::new();
    for raw in url.path().split('/').filter(|raw| is_token(raw)) {
        tokens.push(raw.to_owned());
        tokens.extend(percent_decoded(raw));
    }
    tokens.sort();
    tokens.dedup();
    tokens
}

/// `path` (a URL's path, as the URL writes it) with each segment that may be a token replaced
/// with `[REDACTED]`: `/services/T000/B000/XsEcReTt0kEn1234567890` is shown as
/// `/services/T000/B000/[REDACTED]`. A segment is taken for a token when, percent-decoded, it has
/// 8 characters or more with an ASCII digit or capital letter among them, or 20 characters or
/// more whatever they are; ordinary words (`webhooks`, `ccai`) stay. The rule by which
/// [`HttpForward`](super::HttpForward) redacts its URL's path from the answers it records, for
/// whatever else shows a forward URL (`ccai` cuts the query and shows the path this way).
pub fn redact_path_tokens(path: &str) -> String {
    path.split('/')
        .map(|segment| if is_token(segment) { REDACTED } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_segments_or_ones_with_a_digit_or_capital() {
        for token in [
            "XsEcReTt0kEn1234567890",
            "a1b2c3d4",
            "abcdefgH",
            "abcdefghijklmnopqrst",
            // Decoded: `/` and `+` in a token.
            "ab%2Fcd%2Bef1",
        ] {
            assert!(is_token(token), "{token}");
        }
        for word in [
            "",
            "webhooks",
            "services",
            "T000",
            "B000",
            "v1",
            "ab1",
            "webhook-receiver",
            // Judged decoded: the escapes' digits and capitals are not the segment's.
            "my%20hook",
            "abcdefghijklmnopqrs",
        ] {
            assert!(!is_token(word), "{word}");
        }
    }

    #[test]
    fn a_path_shows_its_words_and_hides_its_tokens() {
        assert_eq!(
            redact_path_tokens("/services/T000/B000/XsEcReTt0kEn1234567890"),
            "/services/T000/B000/[REDACTED]"
        );
        assert_eq!(redact_path_tokens("/webhooks/ccai/"), "/webhooks/ccai/");
        assert_eq!(redact_path_tokens("/"), "/");
        assert_eq!(
            redact_path_tokens("/hook/ab%2Fcd%2Bef1/in"),
            "/hook/[REDACTED]/in"
        );
    }

    #[test]
    fn the_excerpt_gets_token_segments_raw_and_decoded() {
        let url = Url::parse(
            "https://h.example/services/T000/B000/XsEcReTt0kEn1234567890/ab%2Fcd%2Bef1?x=1",
        )
        .unwrap();
        assert_eq!(
            path_tokens(&url),
            ["XsEcReTt0kEn1234567890", "ab%2Fcd%2Bef1", "ab/cd+ef1"]
        );
        assert!(path_tokens(&Url::parse("https://h.example/webhooks/ccai").unwrap()).is_empty());
    }
}
