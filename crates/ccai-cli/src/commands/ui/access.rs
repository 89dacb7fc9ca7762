//! Who may use the view: the loopback by default; any other address only with a token.
//!
//! - Off the loopback a token is required (`--token`, else one is generated). Every `/api/`
//!   request must carry it, as `Authorization: Bearer TOKEN` or `?token=TOKEN`. The page sends
//!   the header, except to the event stream (`EventSource` cannot set headers); the query form
//!   is taken on every route for scripts that use it.
//!   A request without it is refused 401 with the API's `{"error"}`, except the download: its
//!   address is the one a person opens in a tab, where a plain text says to use the view's button.
//! - Without a token (loopback only), requests must name a loopback host in `Host`: a web page
//!   elsewhere cannot reach the API through a DNS name that resolves to 127.0.0.1.
//! - Actions (`POST`) must carry `X-CCAI-UI: 1`, which a cross-site form cannot send.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{bail, Result};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::parser::ValueSource;
use serde_json::json;

use crate::setting_name::Setting;

/// The header every action must carry.
pub(crate) const ACTION_HEADER: &str = "x-ccai-ui";

/// Where the view listens and the token it requires, if any.
#[derive(Clone)]
pub(crate) struct Access {
    ip: IpAddr,
    token: Option<String>,
    generated: bool,
    /// The flags that set the host and the token: `--host`/`--token` for `ccai ui`,
    /// `--ui-host`/`--ui-token` for `ccai listen --ui` (messages name the one the user has).
    flags: Flags,
    /// Where a given token came from (the flag, the environment or `.env`), for the banner.
    token_source: Option<ValueSource>,
}

/// The names of the flags that set the view's host, port and token (with its variable).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flags {
    pub host: &'static str,
    pub port: &'static str,
    pub token: Setting,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("ip", &self.ip)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("generated", &self.generated)
            .field("flags", &self.flags)
            .finish()
    }
}

impl Access {
    /// Checks `--host` and `--token` (named as `flags` says, the token by its variable when
    /// `token_source` says it came from there); off the loopback, generates a token when none
    /// is given.
    pub(crate) fn new(
        host: &str,
        token: Option<String>,
        token_source: Option<ValueSource>,
        flags: Flags,
    ) -> Result<Self> {
        let ip = crate::http::ip_flag(flags.host, host)?;
        let (token, generated) = match token {
            Some(token) => {
                check_token(&token, flags.token, token_source)?;
                (Some(token), false)
            }
            None if ip.is_loopback() => (None, false),
            None => (Some(generate_token()?), true),
        };
        Ok(Self {
            ip,
            token,
            generated,
            flags,
            token_source,
        })
    }

    pub(crate) fn ip(&self) -> IpAddr {
        self.ip
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub(crate) fn token_generated(&self) -> bool {
        self.generated
    }

    /// The flag that sets the token (`--token`, or `--ui-token` for `ccai listen --ui`).
    pub(crate) fn token_flag(&self) -> &'static str {
        self.flags.token.flag
    }

    /// Where the token the user gave came from, as the banner names it: "given with --token",
    /// "from CCAI_UI_TOKEN" or "from CCAI_UI_TOKEN in .env". Never the token.
    pub(crate) fn token_given(&self) -> String {
        self.flags.token.given(self.token_source)
    }

    /// The names of the flags that set the view's host, port and token.
    pub(crate) fn flags(&self) -> Flags {
        self.flags
    }

    /// Whether `request` carries the token (always true when none is required).
    fn admits(&self, request: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = bearer_token(request.headers());
        let query = request.uri().query().and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("token="))
        });
        [bearer, query]
            .into_iter()
            .flatten()
            .any(|given| same(given.as_bytes(), token.as_bytes()))
    }
}

/// The token of an `Authorization: Bearer TOKEN` header, if there is one. The scheme's name is
/// case-insensitive (RFC 9110, 11.1): `bearer` and `BEARER` are `Bearer`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A token must be 16 to 256 characters a URL carries as they are (letters, digits, `-._~`).
/// The error names the flag, or the variable when `source` says the token came from there.
fn check_token(token: &str, setting: Setting, source: Option<ValueSource>) -> Result<()> {
    let plain = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if token.len() < 16 || token.len() > 256 || !plain {
        bail!(
            "{}: the view's token must be 16 to 256 letters, digits or - . _ ~ (no unauthenticated view off the loopback; {} to have one generated)",
            setting.shown(source),
            setting.leave_out(source)
        );
    }
    Ok(())
}

/// 32 random bytes as hex.
fn generate_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot generate a token for the view: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares in time independent of where the first difference is.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `Host` names the loopback: `localhost`, `127.0.0.1`, `[::1]`, with any port. Without a
/// token, this is what keeps a web page elsewhere from reaching a loopback server through a DNS
/// name that resolves to 127.0.0.1; it protects nothing on a socket other hosts can reach, whose
/// clients write the header themselves.
pub(crate) fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "error": message }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The NDJSON download's address (the page's "Download NDJSON" link).
pub(crate) const DOWNLOAD_PATH: &str = "/api/events.ndjson";

/// What a download without the token is told, as text a browser tab shows.
const DOWNLOAD_NEEDS_TOKEN: &str = "401 Unauthorized: this download needs the ccai view's token.

The link carries no token (an address would keep it in the browser's history and downloads list),
so opening it in a new tab, saving it from the context menu or pasting it elsewhere is refused.
Use the \"Download NDJSON\" button in the view instead (a click, a middle-click or Ctrl/Cmd+click):
the view sends its token with the request.
From a script, send the header Authorization: Bearer TOKEN.
";

/// The 401 of a download without the token: the text above, not the API's `{"error"}`.
fn unauthorized_download() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::WWW_AUTHENTICATE, "Bearer"),
        ],
        DOWNLOAD_NEEDS_TOKEN,
    )
        .into_response()
}

/// The middleware: token, host and action checks, then headers that keep the page to itself
/// (on refusals too).
pub(crate) async fn guard(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = match refusal(&access, &request, api) {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The answer refusing `request` (an `/api/` one when `api`), if it is refused.
fn refusal(access: &Access, request: &Request, api: bool) -> Option<Response> {
    if access.token.is_none() && !loopback_host(request.headers()) {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "this view answers only to localhost, 127.0.0.1 or [::1] (start it with --token to use another name)",
        ));
    }
    if api && !access.admits(request) {
        // The download is the one address a person follows as a link: its answer is read in a
        // browser tab (a copied link, the context menu's "open in new tab"), not by the page.
        if request.uri().path() == DOWNLOAD_PATH {
            return Some(unauthorized_download());
        }
        return Some(refuse(
            StatusCode::UNAUTHORIZED,
            "this view requires its token: open the URL `ccai ui` printed (with ?token=), or send Authorization: Bearer TOKEN",
        ));
    }
    if request.method() == Method::POST
        && request
            .headers()
            .get(ACTION_HEADER)
            .map(HeaderValue::as_bytes)
            != Some(b"1")
    {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "actions must carry the header X-CCAI-UI: 1",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: Flags = Flags {
        host: "--host",
        port: "--port",
        token: crate::setting_name::UI_TOKEN,
    };

    #[test]
    fn off_the_loopback_a_token_is_required() {
        let loopback = Access::new("127.0.0.1", None, None, FLAGS).expect("loopback");
        assert!(loopback.token().is_none());
        let open = Access::new("0.0.0.0", None, None, FLAGS).expect("generated");
        assert_eq!(open.token().map(str::len), Some(64));
        assert!(open.token_generated());
        assert!(Access::new("0.0.0.0", Some(String::new()), None, FLAGS).is_err());
        assert!(Access::new("0.0.0.0", Some("short".into()), None, FLAGS).is_err());
        assert!(Access::new("0.0.0.0", Some("has space in it, 16+".into()), None, FLAGS).is_err());
        let chosen =
            Access::new("::", Some("a-long-enough-token".into()), None, FLAGS).expect("chosen");
        assert_eq!(chosen.token(), Some("a-long-enough-token"));
        assert!(!format!("{chosen:?}").contains("a-long-enough-token"));
        assert!(
            Access::new("localhost", None, None, FLAGS).is_err(),
            "an IP address"
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
