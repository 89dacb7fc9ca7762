//! [`VerifiedEvent`]: an axum extractor for writing your own handler function.

use axum::extract::{FromRef, FromRequest, Request};

use crate::event::WebhookEvent;
use crate::signature::Verifier;

use super::body::{declared_length, read_in_time};
use super::signature_header::SignatureHeader;
use super::{Rejection, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT};

/// An axum extractor yielding a verified, parsed [`WebhookEvent`].
///
/// The [`Verifier`] comes from the router state (the state is a `Verifier`, or implements
/// [`FromRef`] for one). The body is read up to [`DEFAULT_BODY_LIMIT`] (256 KiB), within
/// [`DEFAULT_BODY_TIMEOUT`] (30 s). On failure the request is answered with the same statuses and
/// bodies as [`create_handler`](super::create_handler): 413 over the limit, 408 past the deadline, 400 for an unreadable or invalid body or a missing signature, 401 for a
/// signature that does not verify. The HTTP method is left to the router (use
/// [`axum::routing::post`]), and there is no deduplication: call a [`Deduper`](crate::dedup::Deduper)
/// yourself if you need it.
///
/// ```
/// use axum::{routing::post, Json, Router};
/// use ccai::webhook::{VerifiedEvent, Verifier};
///
/// async fn receive(VerifiedEvent(event): VerifiedEvent) -> Json<serde_json::Value> {
///     println!("{} {}", event.event_type, event.event_hash);
///     Json(serde_json::json!({ "success": true }))
/// }
///
/// let verifier = Verifier::new("1231", "my-webhook-secret")?;
/// let app: Router = Router::new()
///     .route("/webhook/ccai", post(receive))
///     .with_state(verifier);
/// # let _ = app;
/// # Ok::<(), ccai::webhook::VerifierConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent(pub WebhookEvent);

impl<S> FromRequest<S> for VerifiedEvent
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let (parts, body) = request.into_parts();
        let body = read_in_time(
            body,
            declared_length(&parts.headers),
            DEFAULT_BODY_LIMIT,
            Some(DEFAULT_BODY_TIMEOUT),
        )
        .await?;
        let event = SignatureHeader::read(&parts.headers).verify(&verifier, &body)?;
        Ok(Self(event))
    }
}
