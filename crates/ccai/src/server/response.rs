//! The handler's HTTP answers, and [`ResponseBody`], the body type they carry.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

use super::Rejection;

/// The response type of [`WebhookHandler`](super::WebhookHandler).
pub type HandlerResponse = Response<ResponseBody>;

/// The body of the handler's answers: a short JSON document, in one frame.
///
/// Opaque on purpose (so that the public API does not expose a pre-1.0 body crate); it implements
/// [`http_body::Body`], so axum, hyper and `http-body-util` read it like any other body.
pub struct ResponseBody {
    data: Option<Bytes>,
}

impl ResponseBody {
    fn new(data: Bytes) -> Self {
        Self { data: Some(data) }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().data.take().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("len", &self.data.as_ref().map_or(0, Bytes::len))
            .finish()
    }
}

const SUCCESS_BODY: &[u8] = br#"{"success":true}"#;

fn json(status: StatusCode, body: Bytes) -> HandlerResponse {
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = Response::new(ResponseBody::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// How long a sender is asked to wait after a 503 (seconds): long enough for a full queue to drain
/// or a database to restart, short enough not to delay deliveries much.
const RETRY_AFTER_SECS: &str = "5";

/// 200, `{"success":true}`.
pub(crate) fn success() -> HandlerResponse {
    json(StatusCode::OK, Bytes::from_static(SUCCESS_BODY))
}

/// The rejection's status, `{"success":false,"error":…}`, `Allow` for a 405 and `Retry-After` for
/// a 503.
pub(crate) fn rejection(rejection: &Rejection) -> HandlerResponse {
    // A JSON string of the message (serialising a `str` cannot fail; fall back to no message).
    let message = serde_json::to_string(rejection.public_message().as_ref())
        .unwrap_or_else(|_| String::from("null"));
    let body = format!(r#"{{"success":false,"error":{message}}}"#);
    let mut response = json(rejection.status(), Bytes::from(body));
    match rejection {
        Rejection::MethodNotAllowed { allow, .. } => {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        Rejection::Unavailable(_) => {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        _ => {}
    }
    response
}
