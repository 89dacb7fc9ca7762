//! Each cause is reported once along an error's chain: an error says its cause in its message or
//! returns it from `source()`, never both (a reporter that walks the chain, as anyhow's `{:#}` or
//! a log line does, showed the store's error behind a 503 twice).

use std::error::Error;

use ccai::event::ParseError;
use ccai::webhook::{sign, DedupError, Rejection, Verifier, VerifyError};

/// The error and each of its sources, joined as a chain reporter joins them.
fn chain(error: &(dyn Error + 'static)) -> String {
    std::iter::successors(Some(error), |e| (*e).source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn assert_once(error: &(dyn Error + 'static), cause: &str) -> String {
    let shown = chain(error);
    assert_eq!(shown.matches(cause).count(), 1, "{shown}");
    shown
}

#[test]
fn a_503_shows_the_store_error_once() {
    let rejection = Rejection::Unavailable(Box::new(std::io::Error::other("disk-on-fire")));
    assert_eq!(
        assert_once(&rejection, "disk-on-fire"),
        "the delivery could not be stored: disk-on-fire"
    );
}

#[test]
fn a_deduplication_failure_shows_the_backend_error_once() {
    let failure = || DedupError::Backend("redis-down".into());
    assert_eq!(
        assert_once(&failure(), "redis-down"),
        "deduplication store failed: redis-down"
    );
    // The rejection shows the deduplication error as it is, and its cause stays reachable.
    assert_eq!(
        assert_once(&Rejection::Deduplication(failure()), "redis-down"),
        "deduplication store failed: redis-down"
    );
}

#[test]
fn an_invalid_delivery_shows_the_parse_problem_once() {
    let verifier = Verifier::new("1231", "secret").expect("verifier");
    let error = verifier
        .verify_event(Some(&sign("1231", "h", "secret")), b"[1]")
        .expect_err("not a delivery");
    assert!(
        matches!(error, VerifyError::Parse(ParseError::NotAnObject { .. })),
        "{error:?}"
    );
    assert_once(&error, "must be a JSON object");
    // And so as the handler's rejection.
    assert_once(&Rejection::from(error), "must be a JSON object");
}
