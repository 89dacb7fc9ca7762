//! The values of a forward URL's query (`https://host/hook?token=…`), which often carry a token:
//! a target that echoes its request line (`Cannot POST /hook?token=…`) must not get them into the
//! attempt's error, which is stored, shown and logged, no more than the URL's password.

use reqwest::Url;

/// Values shorter than this are not taken for tokens (`v=1`, `format=json`): redacting them
/// would cut words out of the rest of the answer and hide nothing.
pub(super) const SHORTEST_TOKEN: usize = 8;

/// The query values of `url` that may be tokens, as the URL writes them and decoded.
pub(super) fn query_tokens(url: &Url) -> Vec<String> {
    let Some(query) = url.query() else {
        return Vec::new();
    };
    let raw = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(_, value)| value.to_owned()));
    let decoded = url.query_pairs().map(|(_, value)| value.into_owned());
    let mut tokens: Vec<String> = raw
        .chain(decoded)
        .filter(|value| value.chars().count() >= SHORTEST_TOKEN)
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_query_values_raw_and_decoded() {
        let url =
            Url::parse("https://h.example/hook?token=ab%2Fcd%2Bef1&v=1&format=json&k").unwrap();
        assert_eq!(query_tokens(&url), ["ab%2Fcd%2Bef1", "ab/cd+ef1"]);
        assert!(query_tokens(&Url::parse("https://h.example/hook").unwrap()).is_empty());
    }
}
