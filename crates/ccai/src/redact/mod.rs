//! Spellings of a secret's characters that the redactors follow: the management API client's
//! (`api::scrub`, which withholds an error body that still spells a secret) and the forwarding
//! dispatcher's (`inbox::dispatch::excerpt`, which replaces each echo in a stored excerpt). A
//! spelling read here is followed by both.

pub(crate) mod html;
mod html_names;
pub(crate) mod json;
pub(crate) mod percent;

#[cfg(all(test, feature = "client", feature = "inbox"))]
mod tests {
    use crate::api::scrub::{scrub, WITHHELD_BODY};
    use crate::inbox::dispatch::excerpt::without_secrets;

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
                without_secrets(echo.as_bytes(), &[secret]),
                "<[REDACTED]>",
                "{echo}"
            );
        }
    }
}
