//! Reading a request body within a size limit.

use bytes::{Buf, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::HeaderMap;
use http_body::Body;
use http_body_util::BodyExt;

use super::Rejection;
use crate::BoxError;

/// The request's `Content-Length`, if it has a readable one.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// [`read_limited`] within `timeout` (408 past it). Outside a tokio runtime (a handler polled by
/// hand) there is no timer to set, so no deadline.
pub(crate) async fn read_in_time<B>(
    body: B,
    declared: Option<u64>,
    limit: usize,
    timeout: Option<std::time::Duration>,
) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let read = read_limited(body, declared, limit);
    match timeout.filter(|_| tokio::runtime::Handle::try_current().is_ok()) {
        None => read.await,
        Some(timeout) => tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| Rejection::BodyTimeout { timeout })?,
    }
}

/// Reads `body` whole, refusing more than `limit` bytes: first by the `declared` length (see
/// [`declared_length`]; without reading anything), then while reading.
///
/// A body that arrives in one frame (the usual case for a small delivery) is returned without
/// copying; several frames are joined.
pub(crate) async fn read_limited<B>(
    body: B,
    declared: Option<u64>,
    limit: usize,
) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Rejection::PayloadTooLarge { limit });
    }
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Rejection::BodyRead(e.into()))?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers
        };
        let len = data.remaining();
        total = total.saturating_add(len);
        if total > limit {
            return Err(Rejection::PayloadTooLarge { limit });
        }
        if len == 0 {
            continue;
        }
        let chunk = data.copy_to_bytes(len);
        match (&mut first, &mut joined) {
            (None, None) => first = Some(chunk),
            (Some(previous), None) => {
                let mut buffer = BytesMut::with_capacity(previous.len() + chunk.len());
                buffer.extend_from_slice(previous);
                buffer.extend_from_slice(&chunk);
                first = None;
                joined = Some(buffer);
            }
            (_, Some(buffer)) => buffer.extend_from_slice(&chunk),
        }
    }
    Ok(match (first, joined) {
        (_, Some(buffer)) => buffer.freeze(),
        (Some(bytes), None) => bytes,
        (None, None) => Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use http_body::Frame;

    use super::*;

    /// A body delivering the given chunks as separate frames.
    struct Frames(VecDeque<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn frames(chunks: &[&'static str]) -> Frames {
        Frames(
            chunks
                .iter()
                .map(|c| Bytes::from_static(c.as_bytes()))
                .collect(),
        )
    }

    fn read(chunks: &[&'static str], limit: usize) -> Result<Bytes, Rejection> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| Rejection::BodyRead(e.into()))?;
        runtime.block_on(read_limited(frames(chunks), None, limit))
    }

    #[test]
    fn frames_are_joined_in_order() {
        let body = read(&["ab", "", "cd", "e"], 10).ok();
        assert_eq!(body.as_deref(), Some(&b"abcde"[..]));
        assert_eq!(read(&["abc"], 3).ok().as_deref(), Some(&b"abc"[..]));
        assert_eq!(read(&[], 3).ok().as_deref(), Some(&b""[..]));
    }

    #[test]
    fn the_limit_counts_all_frames() {
        assert!(matches!(
            read(&["ab", "cd"], 3),
            Err(Rejection::PayloadTooLarge { limit: 3 })
        ));
        assert_eq!(read(&["ab", "cd"], 4).ok().as_deref(), Some(&b"abcd"[..]));
    }

    #[test]
    fn declared_length_over_the_limit_is_refused_unread() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, http::HeaderValue::from_static("5"));
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        let result = runtime
            .map(|rt| rt.block_on(read_limited(frames(&["ab"]), declared_length(&headers), 4)))
            .ok();
        assert!(matches!(
            result,
            Some(Err(Rejection::PayloadTooLarge { limit: 4 }))
        ));
    }
}
