//! What went wrong in a request's TLS handshake, said so that the user knows what to change: an
//! `https://` URL aimed at a plain HTTP server is the usual mistake with a local target.

/// What went wrong, for a request that failed in its TLS handshake (`error` is reqwest's, or any
/// error whose chain holds rustls's); `None` for any other failure. Only a server that does not
/// speak TLS (it answered the handshake with something that is no TLS record: a plain HTTP
/// server such as `ccai listen` answering `400`) gets the advice to use `http://`; a refused
/// certificate is a real TLS server, told as such.
///
/// ```
/// # async fn demo() {
/// // A plain HTTP server on a closed port: a connection error, not a TLS one.
/// let error = reqwest::get("https://127.0.0.1:9/").await.unwrap_err();
/// assert_eq!(ccai::inbox::tls_failure(&error), None);
/// # }
/// ```
pub fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls_text(tls));
        }
        // The TLS error sits inside `io::Error`s in reqwest's chain (one in another), whose
        // `source()` skips the error they wrap: an `io::Error` is looked into instead.
        next = match current.downcast_ref::<std::io::Error>() {
            // tokio-rustls's word for a peer that closed the connection mid-handshake: a plain
            // server may do that, and so may a TLS one refusing this client, so no advice.
            Some(io)
                if io.kind() == std::io::ErrorKind::UnexpectedEof
                    && io.to_string() == "tls handshake eof" =>
            {
                return Some(
                    "the TLS handshake failed: the server closed the connection during it".into(),
                );
            }
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => None,
            },
            None => current.source(),
        };
    }
    None
}

fn tls_text(error: &rustls::Error) -> String {
    match error {
        // The first byte back was no TLS record type: `H` of `HTTP/1.1 400`, say.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the TLS handshake failed: the server does not speak TLS there (a plain HTTP \
             server, such as `ccai listen`?): use http:// instead of https://"
                .into()
        }
        rustls::Error::InvalidCertificate(_) => format!(
            "the TLS handshake failed: its certificate was refused ({error}): the server must \
             present a certificate for the URL's host name signed by a public certificate \
             authority"
        ),
        other => format!("the TLS handshake failed: {other}"),
    }
}
