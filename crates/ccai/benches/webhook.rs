//! Criterion benchmarks of the webhook core: signature verification and event parsing.
//!
//! Run: `cargo bench -p ccai --bench webhook`

use std::hint::black_box;

use ccai::webhook::{parse_event, sign, verify_signature, Verifier};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;

const CLIENT_ID: &str = "1231";
const SECRET: &str = "whsec-test-fixture-secret";

fn message_sent_body() -> Vec<u8> {
    let fixtures: Value =
        serde_json::from_str(include_str!("../tests/fixtures/events.json")).expect("fixture");
    serde_json::to_vec(&fixtures["events"]["message.sent"]).expect("serialises")
}

fn signatures(c: &mut Criterion) {
    let hash = "042896dc1966b8a6214e5383aba5b8b9";
    let signature = sign(CLIENT_ID, hash, SECRET);
    let verifier = Verifier::new(CLIENT_ID, SECRET).expect("config");
    let rotating = Verifier::with_secrets(CLIENT_ID, ["older-secret", SECRET]).expect("config");

    let mut group = c.benchmark_group("signature");
    group.bench_function("sign", |b| {
        b.iter(|| sign(black_box(CLIENT_ID), black_box(hash), black_box(SECRET)))
    });
    group.bench_function("verify_signature (keyed per call)", |b| {
        b.iter(|| {
            verify_signature(
                black_box(&signature),
                black_box(CLIENT_ID),
                black_box(hash),
                black_box(SECRET),
            )
        })
    });
    group.bench_function("Verifier::verify (keyed once)", |b| {
        b.iter(|| verifier.verify(black_box(&signature), black_box(hash)))
    });
    group.bench_function("Verifier::verify (2 secrets, rotation)", |b| {
        b.iter(|| rotating.verify(black_box(&signature), black_box(hash)))
    });
    group.bench_function("Verifier::verify (malformed, rejected early)", |b| {
        b.iter(|| verifier.verify(black_box("not-a-signature"), black_box(hash)))
    });
    group.finish();
}

fn parsing(c: &mut Criterion) {
    let body = message_sent_body();
    let hash = "042896dc1966b8a6214e5383aba5b8b9";
    let signature = sign(CLIENT_ID, hash, SECRET);
    let verifier = Verifier::new(CLIENT_ID, SECRET).expect("config");

    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(
        format!("parse_event message.sent ({} B)", body.len()),
        |b| b.iter(|| parse_event(black_box(&body))),
    );
    group.bench_function("serde_json::from_slice::<Value> (reference)", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&body)))
    });
    // `data` is built on first use: what reading it costs on top of the parse.
    group.bench_function("parse_event + data.as_map()", |b| {
        b.iter(|| {
            let event = parse_event(black_box(&body)).expect("parses");
            black_box(event.data.as_map().len())
        })
    });
    group.bench_function("parse_event + typed_data() (message.sent)", |b| {
        b.iter(|| {
            let event = parse_event(black_box(&body)).expect("parses");
            black_box(event.typed_data().is_ok())
        })
    });
    group.bench_function("Verifier::verify_event (parse + verify)", |b| {
        b.iter(|| verifier.verify_event(Some(black_box(&signature)), black_box(&body)))
    });
    group.finish();
}

criterion_group!(benches, signatures, parsing);
criterion_main!(benches);
