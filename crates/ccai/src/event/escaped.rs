//! [`Escaped`]: a field from a delivery, fit for a log line.

use std::fmt;

/// At most this many characters of a field go into a log line.
const MAX_CHARS: usize = 80;

/// Displays a field from a delivery (`eventType`, `eventHash`) for a log line: control characters
/// (C0, DEL, C1), line separators, bidirectional overrides, quotes and backslashes escaped as Rust
/// writes them (`\u{1b}]0;…`), and cut to 80 characters (`…` when cut). Unquoted, so that a
/// structured (JSON) log keeps the plain value. Whoever sends a delivery chooses these fields, and
/// a log is often read in a terminal.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, cut) = match self.0.char_indices().nth(MAX_CHARS) {
            None => (self.0, false),
            Some((at, _)) => (&self.0[..at], true),
        };
        for c in shown.chars() {
            write!(f, "{}", c.escape_debug())?;
        }
        if cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn escapes_controls_and_bidi_and_cuts() {
        let shown = Escaped("\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}\u{202e}\u{2066}x").to_string();
        assert_eq!(
            shown,
            r#"\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}\u{202e}\u{2066}x"#
        );
        assert!(!shown.chars().any(|c| c.is_control()));
        assert_eq!(Escaped("message.sent").to_string(), "message.sent");
        let long = "é".repeat(100);
        assert_eq!(Escaped(&long).to_string(), format!("{}…", "é".repeat(80)));
    }
}
