//! Runtime loop detection: a `--forward-to` URL that reaches this receiver by a way the start
//! check cannot see (another address of this machine when listening on 0.0.0.0, a host name
//! that resolves here, a port forward or a reverse proxy in front).
//!
//! Each `ccai listen` picks a random instance id at start and names itself with it in every
//! forward it sends ([`FORWARDED_BY`]); a delivery that arrives carrying its own id is one of its
//! forwards come back, answered 508 Loop Detected before it is verified or stored. Without this,
//! with the store each event was forwarded to the inbox it came from, which answered 200 as a
//! duplicate, so it showed as delivered while no application got it; with `--no-store` each
//! delivery waited on a forward to itself until it timed out. Another receiver's id passes: a
//! chain of two listeners (A forwards to B, which forwards to the application) still works.

use crate::stdout::errln;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The header naming the `ccai listen` that forwarded a delivery: its instance id.
pub(crate) const FORWARDED_BY: &str = "X-CCAI-Forwarded-By";

/// What a forward that reached its own receiver is told (the body of the 508, which the store's
/// forward records as the attempt's error).
pub(super) const LOOP_ANSWER: &str = "ccai listen received its own forward: the --forward-to URL reaches this receiver itself (another address of this machine, a host name, a port forward or a proxy); give your application's URL";

/// This receiver's instance id, and whether a loop was told already.
#[derive(Debug)]
pub(super) struct OwnForwards {
    id: String,
    /// `--forward-to` as shown (no credentials, no query), for the error line.
    forward_shown: Option<String>,
    told: AtomicBool,
}

impl OwnForwards {
    /// A new random instance id.
    pub(super) fn new(forward_shown: Option<String>) -> Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| anyhow::anyhow!("cannot get random bytes for an instance id: {e}"))?;
        let id = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            id,
            forward_shown,
            told: AtomicBool::new(false),
        })
    }

    /// The value of [`FORWARDED_BY`] on this receiver's forwards.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Whether an answer to one of this receiver's forwards is its own refusal of it (the 508
    /// echoes the id).
    pub(super) fn refused_by_itself(&self, response: &reqwest::Response) -> bool {
        response.status() == reqwest::StatusCode::LOOP_DETECTED
            && response
                .headers()
                .get(FORWARDED_BY)
                .is_some_and(|value| value.as_bytes() == self.id.as_bytes())
    }

    /// Tells once, as an error, that `--forward-to` reaches this receiver.
    fn tell(&self) {
        if self.told.swap(true, Ordering::Relaxed) {
            return;
        }
        let url = self.forward_shown.as_deref().unwrap_or("URL");
        errln!(
            "error: --forward-to {url} reaches this receiver itself (another address of this machine, a host name, a port forward or a proxy): its forwards come back to it, answered 508 Loop Detected, so no event reaches your application and every forward fails. Stop, give your application's URL and start again"
        );
    }
}

/// Answers 508 to a delivery carrying this receiver's own id, before the handler verifies or
/// stores it; passes anything else on.
pub(super) async fn refuse_own(
    State(own): State<Arc<OwnForwards>>,
    request: Request,
    next: Next,
) -> Response {
    let own_id = request
        .headers()
        .get_all(FORWARDED_BY)
        .iter()
        .any(|value| value.as_bytes() == own.id.as_bytes());
    if !own_id {
        return next.run(request).await;
    }
    own.tell();
    let mut response = (StatusCode::LOOP_DETECTED, LOOP_ANSWER).into_response();
    // The id only goes back to whoever sent it: the forward tells its own refusal by it.
    if let Ok(id) = HeaderValue::from_str(&own.id) {
        response.headers_mut().insert(FORWARDED_BY, id);
    }
    response
}
