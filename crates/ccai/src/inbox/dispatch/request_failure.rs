//! A failed request's causes, in words: reqwest's and hyper's wrapper texts ("error sending
//! request", "client error (Connect)") say nothing that the causes under them do not, and made
//! every refused forward read "error sending request: client error (Connect): tcp connect error:
//! Connection refused (os error 111)".

/// `error` and the errors under it, `: `-separated, without the layers that only wrap the next
/// one (reqwest's "error sending request", hyper's "client error (…)") and without a layer that
/// repeats the text of the one below. Give it reqwest's error
/// [`without_url`](reqwest::Error::without_url) when the URL may carry a token.
///
/// ```
/// # async fn demo() {
/// // Nothing listens on port 9 here.
/// let error = reqwest::get("http://127.0.0.1:9/").await.unwrap_err();
/// let text = ccai::inbox::request_failure(&error.without_url());
/// assert!(text.starts_with("tcp connect error: "), "{text}");
/// # }
/// ```
pub fn request_failure(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        next = current.source();
        let text = current.to_string();
        if next.is_some() && is_wrapper(&text) {
            continue;
        }
        // Some layers repeat the text of the one below: keep the longer, outer one.
        if parts.last().is_some_and(|outer| outer.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    if parts.is_empty() {
        return error.to_string();
    }
    parts.join(": ")
}

/// Whether `text` is a layer that only says a request failed, leaving why to its source.
fn is_wrapper(text: &str) -> bool {
    text == "error sending request" || text.starts_with("error sending request for url") || {
        // hyper-util's `client error (Connect)`, `client error (SendRequest)`, …
        text.starts_with("client error (") && text.ends_with(')')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    fn chain(texts: &[&'static str]) -> Layer {
        let mut layer = None;
        for text in texts.iter().rev() {
            layer = Some(Box::new(Layer(text, layer)));
        }
        *layer.expect("one layer")
    }

    #[test]
    fn wrappers_go_and_causes_stay() {
        let error = chain(&[
            "error sending request",
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ]);
        assert_eq!(
            request_failure(&error),
            "tcp connect error: Connection refused (os error 111)"
        );
        // A wrapper with nothing under it is all there is to say.
        assert_eq!(
            request_failure(&chain(&["error sending request"])),
            "error sending request"
        );
        // A layer that repeats the one below is said once.
        assert_eq!(
            request_failure(&chain(&["dns error: no such host", "no such host"])),
            "dns error: no such host"
        );
    }
}
