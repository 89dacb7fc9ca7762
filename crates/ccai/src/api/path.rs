//! Building request paths from user-given pieces.

use std::fmt::Write;

use super::error::ClientError;

/// An integration id as a path segment. Empty ids and `.`/`..` (which URL parsers treat as
/// "this"/"parent" even when percent-encoded) are refused before any request is made.
pub(crate) fn id_segment(id: &str) -> Result<String, ClientError> {
    let reason = if id.trim().is_empty() {
        "the id is empty: use the id shown by `list`"
    } else if id == "." || id == ".." {
        "not an integration id: use the id shown by `list`"
    } else {
        return Ok(segment(id));
    };
    Err(ClientError::InvalidId {
        id: id.to_owned(),
        reason,
    })
}

/// `value` percent-encoded for use as one path segment: only RFC 3986 unreserved characters are
/// kept, so an id such as `../x` or `1?a=b` cannot change which resource is addressed.
pub(crate) fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unreserved_and_encodes_the_rest() {
        assert_eq!(segment("1231"), "1231");
        assert_eq!(segment("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(segment("../x"), "..%2Fx");
        assert_eq!(segment("1?a=b#c"), "1%3Fa%3Db%23c");
        assert_eq!(segment("é"), "%C3%A9");
        assert_eq!(segment("a b"), "a%20b");
    }

    #[test]
    fn refuses_ids_that_are_not_ids() {
        assert_eq!(id_segment("42").ok().as_deref(), Some("42"));
        for bad in ["", "  ", ".", ".."] {
            assert!(
                matches!(id_segment(bad), Err(ClientError::InvalidId { .. })),
                "{bad:?}"
            );
        }
    }
}
