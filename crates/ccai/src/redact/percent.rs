//! Percent-encoding: how a URL's query or a form (`application/x-www-form-urlencoded`) writes a
//! byte of a secret.

/// The byte the percent-encoding starting at `at` in `text` stands for (`%2F`, hex digits in
/// either case; `+` for a space, as a form writes it), and the position right after it; `None`
/// if none starts there.
pub(crate) fn byte_at(text: &[u8], at: usize) -> Option<(u8, usize)> {
    match text.get(at)? {
        b'+' => Some((b' ', at + 1)),
        b'%' => {
            let hex = text.get(at + 1..at + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let byte = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            Some((byte, at + 3))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoded_bytes_and_plus_are_read() {
        assert_eq!(byte_at(b"%2f", 0), Some((b'/', 3)));
        assert_eq!(byte_at(b"a%C3%B6", 1), Some((0xC3, 4)));
        assert_eq!(byte_at(b"+", 0), Some((b' ', 1)));
        for text in [&b"%2"[..], b"%+1", b"%zz", b"a"] {
            assert_eq!(byte_at(text, 0), None, "{text:?}");
        }
    }
}
