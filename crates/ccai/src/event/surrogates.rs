//! Lone UTF-16 surrogates in `\u` escapes: valid JSON that a Rust string cannot hold.
//!
//! JSON allows `"\ud83d"` (half of an emoji), and it happens in real text: an SMS cut into segments
//! can split a surrogate pair. JavaScript and Python keep such a string, Java holds it, Go's
//! `encoding/json` reads it as U+FFFD; `serde_json` refuses the whole document. So a delivery that
//! does not parse is read again with each such escape in a string value rewritten as `\ufffd`, the
//! replacement character, as Go reads it. Object keys are left alone: they are field names, not
//! text, and `Deserialize` reads them through serde, which cannot be asked to be lenient.

/// `text` with every `\u` escape of a lone surrogate (a high one not followed by the escape of a
/// low one, or a low one not preceded by a high one) in a string value replaced by `\ufffd`;
/// `None` if there is none.
///
/// The replacement has the same length, so positions in error messages still point into `text`.
/// The structure is followed only as far as telling keys from values: in text that is not valid
/// JSON, the rewrite changes nothing about its validity but those escapes.
pub(crate) fn replace_lone_surrogates(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut replaced: Option<Vec<u8>> = None;
    // Per open container, innermost last: whether it is an object.
    let mut objects: Vec<bool> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        i += 1;
        match byte {
            b'"' => {
                let key = std::mem::take(&mut expect_key);
                // To the closing quote, escape by escape.
                loop {
                    match bytes.get(i) {
                        None => return finish(replaced),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            i = match unicode_escape(bytes, i) {
                                // Another escape (`\\`, `\"`, `\n`, …) or a malformed one.
                                None => i + 2,
                                Some(unit)
                                    if is_high(unit)
                                        && unicode_escape(bytes, i + 6).is_some_and(is_low) =>
                                {
                                    i + 12
                                }
                                Some(unit) if !key && (is_high(unit) || is_low(unit)) => {
                                    let out = replaced.get_or_insert_with(|| bytes.to_vec());
                                    out[i + 2..i + 6].copy_from_slice(b"fffd");
                                    i + 6
                                }
                                Some(_) => i + 6,
                            };
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'{' => {
                objects.push(true);
                expect_key = true;
            }
            b'[' => {
                objects.push(false);
                expect_key = false;
            }
            b'}' | b']' => {
                objects.pop();
                expect_key = false;
            }
            b',' => expect_key = objects.last() == Some(&true),
            b':' => expect_key = false,
            _ => {}
        }
    }
    finish(replaced)
}

/// Only ASCII was replaced by ASCII: still UTF-8.
fn finish(replaced: Option<Vec<u8>>) -> Option<String> {
    replaced.and_then(|bytes| String::from_utf8(bytes).ok())
}

/// The code unit of the escape `\uXXXX` starting at `at`, if there is one.
fn unicode_escape(bytes: &[u8], at: usize) -> Option<u16> {
    let escape = bytes.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    escape[2..].iter().try_fold(0u16, |unit, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some(unit << 4 | digit as u16)
    })
}

fn is_high(unit: u16) -> bool {
    (0xd800..0xdc00).contains(&unit)
}

fn is_low(unit: u16) -> bool {
    (0xdc00..0xe000).contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::replace_lone_surrogates as replace;

    #[test]
    fn only_lone_surrogates_in_values_are_replaced() {
        for (text, expected) in [
            (r#""\ud83d""#, Some(r#""\ufffd""#)),
            (r#""\udE00x""#, Some(r#""\ufffdx""#)),
            (r#""\ud83d\ud83d\ude00""#, Some(r#""\ufffd\ud83d\ude00""#)),
            (r#""\ude00\ud83d""#, Some(r#""\ufffd\ufffd""#)),
            (r#""\ud83d\n\ude00""#, Some(r#""\ufffd\n\ufffd""#)),
            (
                r#"{"a":"\ud83d","b":"\\ud83d"}"#,
                Some(r#"{"a":"\ufffd","b":"\\ud83d"}"#),
            ),
            (
                r#"{"a":["\ud83d",{"\ud83d":"\ude00"}],"\udc00":1,"c":"\udc00"}"#,
                Some(r#"{"a":["\ufffd",{"\ud83d":"\ufffd"}],"\udc00":1,"c":"\ufffd"}"#),
            ),
            // Keys are left alone, values with a quote or a brace in them are still values.
            (r#"{"\ud83d":1}"#, None),
            (
                r#"{"k\"{":"\ud83d,","x":"}"}"#,
                Some(r#"{"k\"{":"\ufffd,","x":"}"}"#),
            ),
            (r#""\ud83d\ude00""#, None),
            (r#""\\ud83d""#, None),
            (r#""\\\\""#, None),
            (r#""\u00e9 \"x\" \/""#, None),
            ("no escapes", None),
            // Cut short or malformed: left for the parser to refuse.
            (r#""\ud8"#, None),
            (r#"\"#, None),
            (r#""\ud83g""#, None),
        ] {
            assert_eq!(replace(text).as_deref(), expected, "{text}");
        }
        // The length never changes.
        let text = r#"{"m":"\ud83d\\\ude00 é"}"#;
        assert_eq!(replace(text).map(|t| t.len()), Some(text.len()));
    }
}
