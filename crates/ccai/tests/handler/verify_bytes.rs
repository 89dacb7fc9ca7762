//! `Verifier::verify_event_bytes` in an axum route of the user's own, over real HTTP: the header
//! is taken as the bytes the framework gives, so a value that is not UTF-8 is reported as
//! malformed, not missing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use ccai::signature::{Verifier, SIGNATURE_HEADER};

use crate::support::{answer_of, delivery, serve_router, CLIENT_ID, PATH, SECRET};

/// The route: 200 with the event's hash, or 401 with the reason.
async fn receive(
    State(verifier): State<Verifier>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let signature = headers.get(SIGNATURE_HEADER).map(|value| value.as_bytes());
    match verifier.verify_event_bytes(signature, &body) {
        Ok(event) => (StatusCode::OK, event.event_hash),
        Err(e) => (StatusCode::UNAUTHORIZED, e.to_string()),
    }
}

#[tokio::test]
async fn a_non_utf8_header_is_malformed_not_missing() {
    let verifier = Verifier::new(CLIENT_ID, SECRET).expect("verifier");
    let app = Router::new()
        .route(PATH, post(receive))
        .with_state(verifier);
    let addr = serve_router(app).await;
    let url = format!("http://{addr}{PATH}");
    let (body, signature) = delivery("bytes-1");
    let send = |value: Option<reqwest::header::HeaderValue>| {
        let mut request = reqwest::Client::new().post(&url).body(body.clone());
        if let Some(value) = value {
            request = request.header(SIGNATURE_HEADER, value);
        }
        answer_of(request)
    };

    let good = reqwest::header::HeaderValue::from_str(&signature).expect("ascii");
    let answer = send(Some(good)).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "bytes-1"));

    let not_utf8 = reqwest::header::HeaderValue::from_bytes(b"\xff\xfe\xfd").expect("obs-text");
    let answer = send(Some(not_utf8)).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer.body.starts_with("malformed X-CCAI-Signature"),
        "{}",
        answer.body
    );

    let answer = send(None).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer.body.starts_with("missing X-CCAI-Signature"),
        "{}",
        answer.body
    );
}
