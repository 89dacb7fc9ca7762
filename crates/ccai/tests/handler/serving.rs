//! Other ways to serve: the axum `VerifiedEvent` extractor and the handler under plain hyper.

use axum::Router;
use ccai::webhook::{create_handler, sign, VerifiedEvent, Verifier};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::support::{
    answer_of, assert_no_leak, error_message, post, raw, recording_options, sent_delivery,
    serve_router, url, CLIENT_ID, PATH, SECRET,
};

async fn receive(VerifiedEvent(event): VerifiedEvent) -> axum::Json<Value> {
    axum::Json(serde_json::json!({"success": true, "eventHash": event.event_hash}))
}

#[tokio::test]
async fn extractor_verifies_with_the_verifier_in_state() {
    let verifier = Verifier::new(CLIENT_ID, SECRET).expect("verifier");
    let app = Router::new()
        .route(PATH, axum::routing::post(receive))
        .with_state(verifier);
    let addr = serve_router(app).await;
    let (body, signature) = sent_delivery();

    let ok = post(addr, &body, Some(&signature)).await;
    assert_eq!(ok.status, 200);
    let json: Value = serde_json::from_str(&ok.body).expect("json");
    assert_eq!(json["eventHash"], "042896dc1966b8a6214e5383aba5b8b9");

    let missing = post(addr, &body, None).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.content_type.as_deref(), Some("application/json"));
    assert!(error_message(&missing).contains("X-CCAI-Signature"));

    let wrong = sign(CLIENT_ID, "other", SECRET);
    let bad = post(addr, &body, Some(&wrong)).await;
    assert_eq!(bad.status, 401);
    assert_no_leak(&bad, &wrong);

    let invalid = post(addr, "{payload-marker-text", Some(&signature)).await;
    assert_eq!(invalid.status, 400);
    assert_no_leak(&invalid, &signature);

    let request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-CCAI-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        ccai::webhook::DEFAULT_BODY_LIMIT + 1
    );
    let (status, text) = raw(addr, request.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
}

#[tokio::test]
async fn serves_under_plain_hyper() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use tower::Service;

    let (options, seen) = recording_options();
    let handler = create_handler(options).expect("handler");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let mut handler = handler.clone();
                    handler.call(request)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    // Any path: the handler is the whole server.
    let (body, signature) = sent_delivery();
    let answer = post(addr, &body, Some(&signature)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, r#"{"success":true}"#);
    let get = answer_of(reqwest::Client::new().get(url(addr))).await;
    assert_eq!(get.status, 405);
    assert_eq!(post(addr, &body, None).await.status, 400);
    assert_eq!(seen.lock().expect("lock").len(), 1);
}
