//! Reading a request body within a size limit.

use bytes::{Buf, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::HeaderMap;
use http_body::Body;
use http_body_util::BodyExt;

use super::options::BoxError;
use super::Rejection;

/// Reads `body` whole, refusing more than `limit` bytes: first by the declared `Content-Length`
/// (without reading anything), then while reading.
///
/// A body that arrives in one frame (the usual case for a small delivery) is returned without
/// copying; several frames are joined.
pub(crate) async fn read_limited<B>(
    body: B,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
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
