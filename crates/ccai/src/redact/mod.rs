//! Spellings of a secret's characters that the redactors follow: the management API client's
//! (`api::scrub`, which withholds an error body that still spells a secret) and the forwarding
//! dispatcher's (`inbox::dispatch::excerpt`, which replaces each echo in a stored excerpt). A
//! spelling read here is followed by both.

pub(crate) mod html;
mod html_names;
pub(crate) mod json;
pub(crate) mod percent;
pub(crate) mod spelled;

#[cfg(all(test, feature = "client", feature = "inbox"))]
mod tests {
    use crate::api::scrub::{scrub, WITHHELD_BODY};
    use crate::inbox::dispatch::excerpt::tests::without;

    #[test]
    fn a_spelling_one_redactor_follows_the_other_follows_too() {
        let secret = "s3cr\u{e9}t/k y_1";
        for echo in [
            r"<s3cr\u00e9t\/k y\u005f1>",          // JSON
            r"<\u0073\u0033cr\u00E9t/k y_1>",      // JSON, letters too
            "<s3cr%C3%A9t%2Fk+y%5f1>",             // a form
            "<s3cr&eacute;t&sol;k y&lowbar;1>",    // HTML, named
            "<s3cr&#0233;t&#x002F;k&#32;y&#95;1>", // HTML, zero-padded
            "<&#115;3cr&#xe9;t/k%20y&#95;1>",      // mixed
        ] {
            assert_eq!(scrub(echo, &[secret]), WITHHELD_BODY, "{echo}");
            assert_eq!(
                without(echo.as_bytes(), &[secret]),
                "<[REDACTED]>",
                "{echo}"
            );
        }
    }

    #[test]
    fn a_long_run_of_backslashes_is_followed_in_every_spelling() {
        // `\\` reads as one `\` and as two `\`: followed from each start and each way on its
        // own, 4,000 of them took minutes (1,000 here, past the excerpt's end, keep it quick).
        let secret = "\\".repeat(1000);
        let json = "\\\\".repeat(1000);
        let mixed: String = (0..1000)
            .map(|i| if i % 3 == 0 { "\\\\" } else { "\\" })
            .collect();
        let html = "&bsol;&#92;%5C".repeat(334);
        for echo in [&secret, &json, &mixed, &html] {
            let answer = format!("<{echo}>");
            let scrubbed = scrub(&answer, &[&secret]);
            let start: String = answer.chars().take(20).collect();
            assert!(
                !scrubbed.contains(['\\', '&', '%']),
                "{start}: {scrubbed:.40}"
            );
            let excerpt = without(answer.as_bytes(), &[&secret]);
            assert_eq!(excerpt, "<[REDACTED]", "{start}");
        }
        // One short of the secret, every start is followed and none is an echo.
        let answer = format!("{}>", "\\".repeat(999));
        let excerpt = without(answer.as_bytes(), &[&secret]);
        assert_eq!(excerpt, "[REDACTED]", "a start of it, cut short");
    }

    #[test]
    fn lang_and_rang_are_followed_as_html5_and_html_4_read_them() {
        for secret in ["k\u{27e8}ey-\u{27e9}s3cret", "k\u{2329}ey-\u{232a}s3cret"] {
            let echo = "<k&lang;ey-&rang;s3cret>";
            assert_eq!(scrub(echo, &[secret]), WITHHELD_BODY, "{secret}");
            assert_eq!(
                without(echo.as_bytes(), &[secret]),
                "<[REDACTED]>",
                "{secret}"
            );
        }
    }
}
