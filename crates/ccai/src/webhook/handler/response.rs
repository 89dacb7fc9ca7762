//! The handler's HTTP answers.

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

use super::Rejection;

/// The response type of [`WebhookHandler`](super::WebhookHandler).
pub type HandlerResponse = Response<Full<Bytes>>;

const SUCCESS_BODY: &[u8] = br#"{"success":true}"#;

fn json(status: StatusCode, body: Bytes) -> HandlerResponse {
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// 200, `{"success":true}`.
pub(crate) fn success() -> HandlerResponse {
    json(StatusCode::OK, Bytes::from_static(SUCCESS_BODY))
}

/// The rejection's status, `{"success":false,"error":…}`, and `Allow` for a 405.
pub(crate) fn rejection(rejection: &Rejection) -> HandlerResponse {
    // A JSON string of the message (serialising a `str` cannot fail; fall back to no message).
    let message = serde_json::to_string(rejection.public_message().as_ref())
        .unwrap_or_else(|_| String::from("null"));
    let body = format!(r#"{{"success":false,"error":{message}}}"#);
    let mut response = json(rejection.status(), Bytes::from(body));
    if let Rejection::MethodNotAllowed { allow, .. } = rejection {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}
