//! The handler's metrics in inbox mode (feature `metrics`): what the store made of each delivery
//! (`Inserted::New`, `Duplicate`, `Conflict`) is the `outcome` label. A local `DebuggingRecorder`
//! sees what the handler records on this thread (a current-thread runtime).
#![cfg(feature = "metrics")]

use std::sync::Arc;

use ccai::inbox::{SqliteOptions, SqliteStore};
use ccai::server::{create_handler, HandlerOptions};
use ccai::signature::SignedDelivery;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::Service;

use crate::receiver::{delivery, CLIENT_ID, SECRET};

fn request(delivery: &SignedDelivery) -> http::Request<String> {
    http::Request::post("/webhook")
        .header("content-type", "application/json")
        .header("X-CCAI-Signature", delivery.signature())
        .body(String::from_utf8_lossy(delivery.body()).into_owned())
        .expect("request")
}

#[test]
fn stored_duplicate_and_conflicting_deliveries_are_counted_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default()).expect("store"),
    );
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let statuses = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let mut handler =
                create_handler(HandlerOptions::inbox(CLIENT_ID, store).secret(SECRET))
                    .expect("handler");
            let first = delivery("inbox-m-1", "+14155550100");
            let conflicting = delivery("inbox-m-1", "+14155550199");
            let mut statuses = Vec::new();
            for request in [request(&first), request(&first), request(&conflicting)] {
                let response = handler.call(request).await.expect("infallible");
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    });
    assert_eq!(statuses, [200, 200, 200]);
    let mut counted = Vec::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let key = key.key();
        if key.name() != "ccai_deliveries_received_total" {
            continue;
        }
        let outcome = key
            .labels()
            .find(|l| l.key() == "outcome")
            .map(|l| l.value().to_owned())
            .unwrap_or_default();
        if let DebugValue::Counter(n) = value {
            counted.push((outcome, n));
        }
    }
    counted.sort();
    assert_eq!(
        counted,
        [
            ("accepted".to_owned(), 1),
            ("conflict".to_owned(), 1),
            ("duplicate".to_owned(), 1)
        ]
    );
}
