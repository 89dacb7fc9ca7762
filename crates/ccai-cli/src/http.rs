//! The HTTP the commands do themselves (`trigger` sends, `listen` forwards): URL flags, the
//! delivery method and the client, each decided here once.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ccai::event::DeliveryMethod;
use reqwest::Url;

/// How long a request may take before it is given up.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// Binds a listener on `addr` for `what` ("listen on", "serve the view on"); the error says
/// what to change for the usual causes, naming the flags that set the address and port: an
/// address that is not this machine's is not fixed by picking another port. `rivals` names the
/// ccai commands that take such a port by default (`ccai ui` or `ccai listen --ui` for the
/// view's 8081), where a user looks first.
pub(crate) async fn bind(
    addr: std::net::SocketAddr,
    what: &str,
    host_flag: &str,
    port_flag: &str,
    rivals: &str,
) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrNotAvailable => format!(
                "{} is not an address of this machine: give one of its addresses with {host_flag} \
                 (127.0.0.1, or 0.0.0.0 for all)",
                addr.ip()
            ),
            std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
                format!("ports below 1024 need privileges: pick a higher one with {port_flag}")
            }
            std::io::ErrorKind::AddrInUse => format!(
                "the port is in use (by another program, or {rivals}): pick another with \
                 {port_flag}"
            ),
            _ => format!("{e}: check {host_flag} and {port_flag}"),
        };
        anyhow!("cannot {what} {addr}: {hint}")
    })
}

/// Refuses `addr` for the listener `flag` sets when one this process bound already holds its
/// port (`bound`: each flag and its address) on an address that overlaps it: the bind would fail
/// as "the port is in use", sending the user to look for another program.
pub(crate) fn not_bound_here(
    flag: &str,
    addr: std::net::SocketAddr,
    bound: &[(&str, std::net::SocketAddr)],
) -> Result<()> {
    // Port 0 picks a free port; different addresses, both named, do not collide. A wildcard
    // covers its own family's addresses, and `::` the IPv4 ones too (dual-stack sockets); an
    // IPv4 wildcard and an IPv6 address do not collide.
    let covers = |wide: std::net::IpAddr, other: std::net::IpAddr| {
        wide.is_unspecified() && (wide.is_ipv4() == other.is_ipv4() || wide.is_ipv6())
    };
    let overlaps = |other: &std::net::SocketAddr| {
        addr.port() != 0
            && other.port() == addr.port()
            && (other.ip() == addr.ip()
                || covers(other.ip(), addr.ip())
                || covers(addr.ip(), other.ip()))
    };
    match bound.iter().find(|(_, other)| overlaps(other)) {
        Some((other_flag, _)) => bail!(
            "{flag} {} is this receiver's {other_flag} too: give each listener its own port",
            addr.port()
        ),
        None => Ok(()),
    }
}

/// The value of an address flag (`--host`, `--ui-host`, `--admin-host`): an IP address, an IPv6
/// one with or without the brackets a URL puts around it (`::`, `[::]`).
pub(crate) fn ip_flag(flag: &str, value: &str) -> Result<std::net::IpAddr> {
    let text = value.trim();
    let parsed = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inside) => inside
            .parse::<std::net::Ipv6Addr>()
            .map(std::net::IpAddr::V6),
        None => text.parse(),
    };
    parsed.map_err(|_| anyhow!("{flag} {value:?} is not an IP address (e.g. 127.0.0.1 or ::1)"))
}

/// Where a client on this machine reaches a listener bound to `bound`, for the URL a command
/// announces: a bind to every address is reached on the loopback of its own family, 127.0.0.1
/// for 0.0.0.0 and `[::1]` for `::` (which takes no IPv4 where IPv6 sockets are IPv6-only: a
/// sysctl on Linux, the default elsewhere); any other address as it is.
pub(crate) fn reachable(bound: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    std::net::SocketAddr::new(ip, bound.port())
}

/// The value of a URL flag (`--to`, `--forward-to`, `--url`): an absolute http:// or https:// URL.
/// The error names the flag and shows `example`.
pub(crate) fn url_flag(flag: &str, value: &str, example: &str) -> Result<Url> {
    // The value is not echoed: a URL may carry a password or a token.
    let url = Url::parse(value)
        .with_context(|| format!("invalid {flag}: give a full URL like {example}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        // Not even shown without its credentials: `user:password@host` parses with `user` as
        // the scheme and the password in the path.
        bail!("invalid {flag}: use an http:// or https:// URL like {example}");
    }
    Ok(url)
}

/// What went wrong, without the URL (its query may carry a token): the causes under reqwest's
/// own "error sending request", which alone does not say whether the name did not resolve or the
/// connection was refused (the library's words, which the recorded errors of a stored forward use
/// too).
pub(crate) fn failure(error: reqwest::Error) -> String {
    ccai::inbox::request_failure(&error.without_url())
}

/// What went wrong, for a request that failed in its TLS handshake (`None` for any other
/// failure): the library's words, which the recorded errors of a stored forward use too.
pub(crate) fn tls_failure(error: &reqwest::Error) -> Option<String> {
    ccai::inbox::tls_failure(error)
}

/// `url` as messages and logs show it: no user name or password, no fragment, and its query
/// (which often carries a token) cut to `?…`. The path stays, so the user recognises the target,
/// but for its segments that may be tokens (`/services/T000/B000/[REDACTED]`), by the rule the
/// forward's recorded errors follow ([`ccai::inbox::redact_path_tokens`]).
pub(crate) fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_path(&ccai::inbox::redact_path_tokens(url.path()));
    // Both fail only on URLs that cannot have credentials, which then have none to hide.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_fragment(None);
    let had_query = shown.query().is_some_and(|q| !q.is_empty());
    shown.set_query(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?…");
    }
    text
}

/// The value of a `--method` flag: POST or PUT, in any case.
pub(crate) fn method_flag(value: &str) -> Result<DeliveryMethod> {
    value
        .parse()
        .map_err(|_| anyhow!("--method {value:?}: use POST or PUT"))
}

/// What a non-2xx answer to a delivery means, for messages: a redirect says why it was not
/// followed and what to do instead.
pub(crate) fn refused(status: reqwest::StatusCode) -> String {
    if status.is_redirection() {
        format!(
            "answered {} (a redirect: not followed, since it would send the signed delivery \
             elsewhere; give the final URL)",
            status.as_u16()
        )
    } else {
        format!("answered {}", status.as_u16())
    }
}

/// The HTTP method a delivery goes out with.
pub(crate) fn request_method(method: DeliveryMethod) -> reqwest::Method {
    // The library's method names are HTTP method tokens ("POST", "PUT").
    reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::POST)
}

/// The client for sending deliveries: rustls, [`TIMEOUT`] per request, no redirects followed.
pub(crate) fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(TIMEOUT)
        // What goes out is signed: a redirect would hand the delivery and its signature to
        // another address (or, for a 302, turn it into a GET without a body whose 200 looks like
        // a delivery). The redirect is the answer, a failure like any other non-2xx.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot set up the HTTP client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_bound_here_only_on_an_overlapping_address() {
        let at = |text: &str| text.parse::<std::net::SocketAddr>().expect("addr");
        let receiver = [("--port", at("0.0.0.0:9000"))];
        assert!(not_bound_here("--ui-port", at("127.0.0.1:9000"), &receiver).is_err());
        // An IPv4 wildcard and an IPv6 address bind side by side.
        assert!(not_bound_here("--ui-port", at("[::1]:9000"), &receiver).is_ok());
        assert!(not_bound_here("--ui-port", at("127.0.0.1:9001"), &receiver).is_ok());
        let receiver = [("--port", at("[::]:9000"))];
        assert!(not_bound_here("--ui-port", at("127.0.0.1:9000"), &receiver).is_err());
        let receiver = [("--port", at("127.0.0.1:9000"))];
        assert!(not_bound_here("--ui-port", at("127.0.0.2:9000"), &receiver).is_ok());
        assert!(not_bound_here("--ui-port", at("127.0.0.1:0"), &receiver).is_ok());
    }

    #[test]
    fn url_flags_must_be_absolute_http_urls() {
        assert!(url_flag("--to", "https://example.com/hook", "x").is_ok());
        assert!(url_flag("--to", "http://127.0.0.1:8080/webhook", "x").is_ok());
        for bad in [
            "nowhere",
            "localhost:3000/webhook",
            "ftp://example.com",
            "/webhook",
            "user:hunter2@example.com/hook",
        ] {
            let err = format!("{:#}", url_flag("--to", bad, "http://e.x/w").unwrap_err());
            assert!(err.starts_with("invalid --to: "), "{err}");
            assert!(err.contains("like http://e.x/w"), "{err}");
            // Never echoed: a URL may hold a password or a token.
            assert!(!err.contains(bad), "{err}");
        }
    }

    #[test]
    fn address_flags_take_ipv6_with_or_without_brackets() {
        for (value, ip) in [
            ("127.0.0.1", "127.0.0.1"),
            ("::", "::"),
            ("[::]", "::"),
            ("[::1]", "::1"),
            (" 0.0.0.0 ", "0.0.0.0"),
        ] {
            assert_eq!(
                ip_flag("--host", value).unwrap().to_string(),
                ip,
                "{value:?}"
            );
        }
        for bad in ["localhost", "[127.0.0.1]", "[::1", "::1]", "[]", ""] {
            let err = ip_flag("--host", bad).unwrap_err().to_string();
            assert!(
                err.starts_with("--host ") && err.contains("is not an IP address"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_bind_to_every_address_is_reached_on_its_familys_loopback() {
        for (bound, shown) in [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:8080", "[::1]:8080"),
            ("192.0.2.7:9", "192.0.2.7:9"),
            ("[::1]:9", "[::1]:9"),
            ("[fe80::1]:9", "[fe80::1]:9"),
        ] {
            let bound: std::net::SocketAddr = bound.parse().unwrap();
            assert_eq!(reachable(bound).to_string(), shown, "{bound}");
        }
    }

    #[test]
    fn methods_are_post_or_put() {
        assert_eq!(method_flag("put").unwrap(), DeliveryMethod::Put);
        assert_eq!(
            request_method(method_flag("POST").unwrap()),
            reqwest::Method::POST
        );
        assert_eq!(request_method(DeliveryMethod::Put), reqwest::Method::PUT);
        let err = format!("{:#}", method_flag("patch").unwrap_err());
        assert!(
            err.starts_with("--method \"patch\": use POST or PUT"),
            "{err}"
        );
    }

    #[test]
    fn shown_urls_hide_credentials_and_the_query() {
        let url = |text| Url::parse(text).unwrap();
        assert_eq!(
            shown(&url(
                "https://user:pa55@hooks.example.com:8443/in?token=s3cret#frag"
            )),
            "https://hooks.example.com:8443/in?…"
        );
        assert_eq!(
            shown(&url("http://127.0.0.1:3000/webhook")),
            "http://127.0.0.1:3000/webhook"
        );
        assert_eq!(shown(&url("http://localhost/?")), "http://localhost/");
        assert_eq!(
            shown(&url(
                "https://hooks.example.com/services/T000/B000/XsEcReTt0kEn1234567890?x=1"
            )),
            "https://hooks.example.com/services/T000/B000/[REDACTED]?…"
        );
    }
}
