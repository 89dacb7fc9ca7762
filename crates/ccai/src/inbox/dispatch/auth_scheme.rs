//! A header value of the form `<scheme> <credential>` (`Bearer eyJ…`, `Basic dXNl…`): for
//! redaction, the credential is the secret and the scheme word is not. Taken with the whole
//! value as the secret, the value's start (`Bearer e`, as many characters as a run cut short
//! needs) was redacted from every answer that said "Bearer " and that one letter.

/// HTTP authentication schemes, as IANA registers them and a few in wide use unregistered
/// (`Token`, `ApiKey`, `NTLM`, `AWS4-HMAC-SHA256`), compared without regard to case as RFC 9110
/// says. A list rather than any word: the first word of a value such as a pass phrase is part
/// of the secret.
const SCHEMES: [&str; 18] = [
    "Basic",
    "Bearer",
    "Concealed",
    "Digest",
    "DPoP",
    "GNAP",
    "HOBA",
    "Mutual",
    "Negotiate",
    "OAuth",
    "PrivateToken",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "vapid",
    "Token",
    "ApiKey",
    "NTLM",
    "AWS4-HMAC-SHA256",
];

/// The credential of `value` when it is an HTTP authentication scheme of [`SCHEMES`], one space
/// and a credential (what follows, unless it is empty or starts with another space); `None`
/// for any other value.
pub(super) fn credential(value: &str) -> Option<&str> {
    let (scheme, credential) = value.split_once(' ')?;
    let known = SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme));
    (known && !credential.is_empty() && !credential.starts_with(' ')).then_some(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_scheme_and_one_space_make_the_rest_the_credential() {
        assert_eq!(credential("Bearer eyJhbGci.e30.x"), Some("eyJhbGci.e30.x"));
        assert_eq!(credential("basic dXNlcjpw"), Some("dXNlcjpw"));
        assert_eq!(credential("TOKEN ghp_123 456"), Some("ghp_123 456"));
        assert_eq!(
            credential(r#"Digest username="u", response="5f2c""#),
            Some(r#"username="u", response="5f2c""#)
        );
        for value in [
            "sk_live_4f9Qz",
            "my secret phrase", // not a scheme: the first word is part of the secret
            "Bearer",
            "Bearer ",
            "Bearer  two-spaces",
            "Bearer\teyJ",
            " Bearer eyJ",
        ] {
            assert_eq!(credential(value), None, "{value:?}");
        }
    }
}
