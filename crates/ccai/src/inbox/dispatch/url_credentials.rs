//! A forward URL's user name and password (`http://user:password@host/hook`): taken out of the
//! URL when the [`HttpForward`](super::HttpForward) is built, sent as `Authorization: Basic` (as
//! reqwest does with a URL's credentials), and listed in each form a target may echo them, for
//! the attempt's error excerpt to redact.

use base64::Engine as _;
use reqwest::header::HeaderValue;
use reqwest::Url;

/// The credentials a forward URL carried. Not `Debug`: nothing about them is ever shown.
#[derive(Clone)]
pub(super) struct UrlCredentials {
    /// The `Authorization` value, marked sensitive (left out of hyper's and reqwest's logs).
    header: HeaderValue,
    /// What an echo of them may hold: the base64 of the header, `user:password` and the
    /// password (or the user name when there is no password: a token passed as the user name),
    /// decoded and as the URL wrote them.
    secrets: Vec<String>,
}

impl UrlCredentials {
    /// Takes the user name and password out of `url`: `Ok(None)` when it has neither; an error
    /// (saying why, never what) when either is not UTF-8 once percent-decoded, which reqwest sent
    /// without any `Authorization` at all.
    pub(super) fn take(url: &mut Url) -> Result<Option<Self>, &'static str> {
        let (raw_user, raw_password) =
            (url.username().to_owned(), url.password().map(str::to_owned));
        if raw_user.is_empty() && raw_password.is_none() {
            return Ok(None);
        }
        let not_utf8 = "its user name or password is not UTF-8 once percent-decoded";
        let user = percent_decoded(&raw_user).ok_or(not_utf8)?;
        let password = match &raw_password {
            Some(raw) => Some(percent_decoded(raw).ok_or(not_utf8)?),
            None => None,
        };
        // Both fail only on URLs that cannot have credentials, which these URLs do.
        let _ = url.set_username("");
        let _ = url.set_password(None);

        let userinfo = format!("{user}:{}", password.as_deref().unwrap_or(""));
        let token = base64::engine::general_purpose::STANDARD.encode(&userinfo);
        let mut header = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| "its credentials do not make an Authorization header")?;
        header.set_sensitive(true);
        let mut secrets = vec![token, userinfo];
        match (password, raw_password) {
            (Some(password), Some(raw)) if !password.is_empty() => secrets.extend([password, raw]),
            _ => secrets.extend([user, raw_user]),
        }
        secrets.retain(|s| !s.is_empty());
        secrets.sort();
        secrets.dedup();
        Ok(Some(Self { header, secrets }))
    }

    /// The `Authorization` header value to send.
    pub(super) fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// The texts an echo of the credentials may hold (see [`excerpt`](super::excerpt)).
    pub(super) fn secrets(&self) -> impl Iterator<Item = &str> {
        self.secrets.iter().map(String::as_str)
    }
}

/// `text` with its `%XX` escapes decoded, as reqwest decodes a URL's credentials; `None` if the
/// result is not UTF-8. Also decodes a URL's path segments ([`path_tokens`](super::path_tokens)).
pub(super) fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|hex| bytes[i] == b'%' && hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(text: &str) -> (Url, Option<UrlCredentials>) {
        let mut url = Url::parse(text).expect("a URL");
        let credentials = UrlCredentials::take(&mut url).expect("credentials");
        (url, credentials)
    }

    #[test]
    fn credentials_leave_the_url_and_become_basic_auth() {
        let (url, credentials) = take("http://user:p%40ss@127.0.0.1:8080/hook?x=1");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/hook?x=1");
        let credentials = credentials.expect("some");
        // base64("user:p@ss"), what reqwest sent for this URL.
        assert_eq!(credentials.header(), "Basic dXNlcjpwQHNz");
        assert!(credentials.header().is_sensitive());
        let mut secrets: Vec<&str> = credentials.secrets().collect();
        secrets.sort_unstable();
        assert_eq!(secrets, ["dXNlcjpwQHNz", "p%40ss", "p@ss", "user:p@ss"]);
    }

    #[test]
    fn a_user_name_alone_is_the_secret() {
        let (url, credentials) = take("https://t0ken@example.com/");
        assert_eq!(url.as_str(), "https://example.com/");
        let credentials = credentials.expect("some");
        assert_eq!(credentials.header(), "Basic dDBrZW46");
        let mut secrets: Vec<&str> = credentials.secrets().collect();
        secrets.sort_unstable();
        assert_eq!(secrets, ["dDBrZW46", "t0ken", "t0ken:"]);
    }

    #[test]
    fn no_credentials_no_header_and_bad_ones_are_refused() {
        let (url, credentials) = take("http://127.0.0.1/hook");
        assert!(credentials.is_none());
        assert_eq!(url.as_str(), "http://127.0.0.1/hook");
        let mut url = Url::parse("http://u:%ff%fe@127.0.0.1/").expect("a URL");
        assert!(UrlCredentials::take(&mut url).is_err());
        assert_eq!(percent_decoded("%+1%4"), Some("%+1%4".into()));
        assert_eq!(percent_decoded("a%2Fb%2f"), Some("a/b/".into()));
    }
}
