//! Reading JSON text as text, where going through a `Value` would change it: integers past 64
//! bits become floats with other digits, and keys are sorted.

/// Each character of JSON `text` with whether it lies in a string literal (its quotes included).
fn with_string_flags(text: &str) -> impl Iterator<Item = (char, bool)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.chars().map(move |c| {
        let inside = in_string || c == '"';
        if !in_string {
            in_string = c == '"';
        } else if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_string = false;
        }
        (c, inside)
    })
}

/// `text` (valid JSON) without the whitespace between tokens, so that a `--json` line stays one
/// line whatever spacing the sender used; strings, numbers and key order are kept exactly.
pub(crate) fn compact(text: &str) -> String {
    with_string_flags(text)
        .filter(|(c, inside)| *inside || !matches!(c, ' ' | '\t' | '\n' | '\r'))
        .map(|(c, _)| c)
        .collect()
}

/// Whether JSON `text` (already valid) holds an integer literal past 64 bits: `serde_json` reads
/// one as a float, so what is sent would carry other digits than the text.
pub(crate) fn has_lossy_integer(text: &str) -> bool {
    let lossy = |token: &str| {
        token.starts_with(|t: char| t == '-' || t.is_ascii_digit())
            && !token.contains(['.', 'e', 'E'])
            && token.parse::<i64>().is_err()
            && token.parse::<u64>().is_err()
    };
    let mut token = String::new();
    for (c, inside) in with_string_flags(text) {
        if !inside && (c == '-' || c == '+' || c == '.' || c.is_ascii_alphanumeric()) {
            token.push(c);
        } else if lossy(&token) {
            return true;
        } else {
            token.clear();
        }
    }
    lossy(&token)
}

#[cfg(test)]
mod tests {
    use super::{compact, has_lossy_integer};

    #[test]
    fn compact_json_drops_only_the_spacing_between_tokens() {
        let text =
            "{ \"b\" : [1, 2.50,\n 123456789012345678901234 ],\r\n\t\"a\":\"x y\\\" \\\\\" }";
        let compacted = compact(text);
        assert_eq!(
            compacted,
            "{\"b\":[1,2.50,123456789012345678901234],\"a\":\"x y\\\" \\\\\"}"
        );
        let a: serde_json::Value = serde_json::from_str(text).unwrap();
        let b: serde_json::Value = serde_json::from_str(&compacted).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn integers_past_64_bits_are_found_outside_strings_only() {
        assert!(has_lossy_integer(r#"{"a": 123456789012345678901234}"#));
        assert!(has_lossy_integer(r#"{"a":[1,-99999999999999999999]}"#));
        assert!(!has_lossy_integer(
            r#"{"a": 18446744073709551615, "b": -9223372036854775808}"#
        ));
        assert!(!has_lossy_integer(
            r#"{"a": 1e30, "b": 0.5, "c": true, "d": null}"#
        ));
        assert!(!has_lossy_integer(
            r#"{"a": "123456789012345678901234", "b\"": "x\\"}"#
        ));
    }
}
