//! The handler's metrics (feature `metrics`): each answered delivery is counted by outcome and
//! rejection reason, and timed. A local `DebuggingRecorder` sees what the handler records on this
//! thread (a current-thread runtime), so the test does not depend on a global recorder.
#![cfg(feature = "metrics")]

use std::collections::HashMap;

use ccai::webhook::create_handler;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use tower::Service;

use crate::support::{delivery, recording_options, PATH};

fn request(body: String, signature: Option<&str>) -> http::Request<String> {
    let mut builder = http::Request::post(PATH).header("content-type", "application/json");
    if let Some(signature) = signature {
        builder = builder.header("X-CCAI-Signature", signature);
    }
    builder.body(body).expect("request")
}

/// Counter values by (name, sorted labels), and histogram sample counts by the same key.
type Recorded = HashMap<(String, Vec<(String, String)>), u64>;

fn snapshot(recorder: &DebuggingRecorder) -> (Recorded, Recorded) {
    let (mut counters, mut histograms) = (Recorded::new(), Recorded::new());
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let kind = key.kind();
        let key = key.key();
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        labels.sort();
        let id = (key.name().to_owned(), labels);
        match (kind, value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => {
                counters.insert(id, n);
            }
            (MetricKind::Histogram, DebugValue::Histogram(samples)) => {
                histograms.insert(id, samples.len() as u64);
            }
            _ => {}
        }
    }
    (counters, histograms)
}

fn id(name: &str, labels: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

#[test]
fn the_handler_counts_deliveries_by_outcome_and_reason() {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let statuses = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let (options, seen) = recording_options();
            let mut handler = create_handler(options).expect("handler");
            let (body, signature) = delivery("metrics-1");
            let (other, other_signature) = delivery("metrics-2");
            let mut statuses = Vec::new();
            for request in [
                request(body.clone(), Some(&signature)),
                request(body.clone(), Some(&signature)),
                request(other.clone(), Some(&other_signature)),
                request(body.clone(), Some(&other_signature)),
                request(body.clone(), None),
            ] {
                let response = handler.call(request).await.expect("infallible");
                statuses.push(response.status().as_u16());
            }
            assert_eq!(seen.lock().expect("lock").len(), 2);
            statuses
        })
    });
    assert_eq!(statuses, [200, 200, 200, 401, 400]);

    let (counters, histograms) = snapshot(&recorder);
    let received = "ccai_deliveries_received_total";
    let count = |labels: &[(&str, &str)]| counters.get(&id(received, labels)).copied();
    assert_eq!(count(&[("outcome", "accepted"), ("reason", "")]), Some(2));
    assert_eq!(count(&[("outcome", "duplicate"), ("reason", "")]), Some(1));
    assert_eq!(
        count(&[("outcome", "rejected"), ("reason", "invalid_signature")]),
        Some(1)
    );
    assert_eq!(
        count(&[("outcome", "rejected"), ("reason", "missing_signature")]),
        Some(1)
    );
    let total: u64 = counters
        .iter()
        .filter(|((name, _), _)| name == received)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total, 5, "{counters:?}");
    // Every label is one of the low-cardinality ones: no hash, no client id.
    for ((_, labels), _) in counters.iter().chain(histograms.iter()) {
        for (key, value) in labels {
            assert!(matches!(key.as_str(), "outcome" | "reason"), "{key}");
            assert!(!value.contains("metrics-"), "{value}");
        }
    }
    let timed: u64 = histograms
        .iter()
        .filter(|((name, _), _)| name == "ccai_request_duration_seconds")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(timed, 5, "{histograms:?}");
}
