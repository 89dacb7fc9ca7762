//! HTML character references: how an HTML page (an echoing framework's error page, PHP's
//! `htmlspecialchars`/`htmlentities`) writes a character of a secret.
//!
//! Followed: numeric references, decimal or hex (`&#39;`, `&#x27;`, `&#X27;`), zero-padded
//! (`&#039;`, `&#x000F6;`) up to [`MAX_DIGITS`] digits, the `;` optional as browsers read it;
//! and the named references of HTML 4 (Latin-1, symbols and Greek, `&ouml;`, `&eacute;`,
//! `&euro;`) and HTML5's names for ASCII punctuation (`&apos;`, `&lowbar;`, `&colon;`, `&sol;`…),
//! which PHP's `htmlentities(…, ENT_HTML5)` writes; see [`super::html_names`]. Not followed: the
//! rest of HTML5's 2,000-odd names (Latin Extended letters such as `&amacr;`, long aliases such
//! as `&VerticalLine;`) and named references without their `;`.

use super::html_names::{HTML5_MEANINGS, NAMES};

/// The most digits a numeric reference is read with, leading zeros included: enough for any
/// code point zero-padded to 8 (`&#x0010FFFF;`), and a bound on how far an echo can spread.
pub(crate) const MAX_DIGITS: usize = 8;

/// The longest reference read, in bytes: `&#x` and [`MAX_DIGITS`] hex digits and `;`.
pub(crate) const LONGEST: usize = 3 + MAX_DIGITS + 1;

/// The character the reference starting at `at` in `text` stands for, and the position right
/// after it; `None` if no reference this module reads starts there.
pub(crate) fn reference_at(text: &[u8], at: usize) -> Option<(char, usize)> {
    if text.get(at) != Some(&b'&') {
        return None;
    }
    if text.get(at + 1) == Some(&b'#') {
        numeric(text, at + 2)
    } else {
        named(text, at + 1)
    }
}

/// Each character the reference starting at `at` in `text` may stand for, and the position
/// right after it: [`reference_at`]'s, and HTML5's where it names another (`&lang;`, `&rang;`).
pub(crate) fn references_at(text: &[u8], at: usize) -> [Option<(char, usize)>; 2] {
    let read = reference_at(text, at);
    let html5 = read.and_then(|(_, end)| {
        let name = text.get(at + 1..end - 1)?;
        let found = HTML5_MEANINGS.iter().find(|(n, _)| n.as_bytes() == name)?;
        Some((found.1, end))
    });
    [read, html5]
}

/// `c` as [`unescape`] reads it: HTML5's angle brackets (U+27E8/U+27E9) as HTML 4's
/// (U+2329/U+232A), which `&lang;`/`&rang;` are read as, so that a text compared with a secret
/// after both are folded finds either meaning.
#[cfg_attr(not(feature = "client"), allow(dead_code))] // the API client's view of a body
pub(crate) fn fold_html5(c: char) -> char {
    HTML5_MEANINGS
        .iter()
        .find(|(_, html5)| *html5 == c)
        .and_then(|(name, _)| NAMES.iter().find(|(n, _)| n == name))
        .map_or(c, |(_, html4)| *html4)
}

/// A numeric reference's digits from `at` (right after `&#`).
fn numeric(text: &[u8], at: usize) -> Option<(char, usize)> {
    let (radix, start) = match text.get(at) {
        Some(b'x' | b'X') => (16, at + 1),
        _ => (10, at),
    };
    let digits = text
        .get(start..)?
        .iter()
        .take(MAX_DIGITS + 1)
        .take_while(|b| char::from(**b).is_digit(radix))
        .count();
    if digits == 0 || digits > MAX_DIGITS {
        return None;
    }
    let end = start + digits;
    let code = std::str::from_utf8(&text[start..end])
        .ok()
        .and_then(|d| u32::from_str_radix(d, radix).ok())?;
    let c = char::from_u32(code)?;
    let end = if text.get(end) == Some(&b';') {
        end + 1
    } else {
        end
    };
    Some((c, end))
}

/// A named reference's name and `;` from `at` (right after `&`).
fn named(text: &[u8], at: usize) -> Option<(char, usize)> {
    let rest = text.get(at..)?;
    let len = rest
        .iter()
        .take(LONGEST)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if rest.get(len) != Some(&b';') {
        return None;
    }
    let name = &rest[..len];
    let found = NAMES.iter().find(|(n, _)| n.as_bytes() == name)?;
    Some((found.1, at + len + 1))
}

/// `text` with every reference [`reference_at`] reads replaced with its character; `None` if
/// there is none.
#[cfg_attr(not(feature = "client"), allow(dead_code))] // the API client's view of a body
pub(crate) fn unescape(text: &str) -> Option<String> {
    if !text.contains('&') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut found = false;
    let mut i = 0;
    while i < bytes.len() {
        match reference_at(bytes, i) {
            Some((c, end)) => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                found = true;
                i = end;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    found.then(|| String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_and_named_references_are_read() {
        let read = |text: &str| reference_at(text.as_bytes(), 0);
        assert_eq!(read("&#39;x"), Some(('\'', 5)));
        assert_eq!(read("&#039;"), Some(('\'', 6)));
        assert_eq!(read("&#x27;"), Some(('\'', 6)));
        assert_eq!(read("&#X000F6;"), Some(('\u{f6}', 9)));
        assert_eq!(read("&#0246;"), Some(('\u{f6}', 7)));
        assert_eq!(read("&#39x"), Some(('\'', 4)), "the `;` is optional");
        assert_eq!(read("&ouml;"), Some(('\u{f6}', 6)));
        assert_eq!(read("&Ouml;"), Some(('\u{d6}', 6)));
        assert_eq!(read("&apos;"), Some(('\'', 6)));
        assert_eq!(read("&lowbar;"), Some(('_', 8)));
        assert_eq!(read("&euro;"), Some(('\u{20ac}', 6)));
        assert_eq!(read("&QUOT;"), Some(('"', 6)));
        // Not references (or not ones read here).
        for text in [
            "&ouml",
            "&nosuch;",
            "&#;",
            "&#x;",
            "&#000000039;",
            "&#xD800;",
            "&",
            "x",
        ] {
            assert_eq!(read(text), None, "{text}");
        }
        assert_eq!(
            unescape("&lt;p&#64;ss&quot;&gt; &amp;amp; & &x;").as_deref(),
            Some("<p@ss\"> &amp; & &x;")
        );
        assert_eq!(unescape("a & b"), None);
    }

    #[test]
    fn lang_and_rang_are_read_as_html_4_and_html5_name_them() {
        let read = |text: &str| references_at(text.as_bytes(), 0);
        assert_eq!(
            read("&lang;"),
            [Some(('\u{2329}', 6)), Some(('\u{27e8}', 6))]
        );
        assert_eq!(
            read("&rang;x"),
            [Some(('\u{232a}', 6)), Some(('\u{27e9}', 6))]
        );
        assert_eq!(read("&#x27e8;"), [Some(('\u{27e8}', 8)), None]);
        assert_eq!(read("&lt;"), [Some(('<', 4)), None]);
        assert_eq!(fold_html5('\u{27e8}'), '\u{2329}');
        assert_eq!(fold_html5('\u{27e9}'), '\u{232a}');
        assert_eq!(fold_html5('x'), 'x');
    }
}
