//! The one rule for reading `X-CCAI-Signature` off a request, shared by the handler and the
//! extractor: the first value counts, and a second one makes the delivery's signature invalid
//! (refuse rather than pick one), saying it was repeated.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use super::Rejection;
use crate::event::WebhookEvent;
use crate::signature::{Verifier, VerifyError};

static SIGNATURE: HeaderName = HeaderName::from_static("x-ccai-signature");

/// What a request's head says about its signature.
pub(crate) struct SignatureHeader {
    value: Option<HeaderValue>,
    repeated: bool,
}

impl SignatureHeader {
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(&SIGNATURE).iter();
        Self {
            value: values.next().cloned(),
            repeated: values.next().is_some(),
        }
    }

    /// Verifies `body` against the header: the rejection says why it does not verify.
    pub(crate) fn verify(
        &self,
        verifier: &Verifier,
        body: &[u8],
    ) -> Result<WebhookEvent, Rejection> {
        if self.repeated {
            return Err(Rejection::InvalidSignature(VerifyError::RepeatedSignature));
        }
        Ok(verifier.verify_event_bytes(self.value.as_ref().map(HeaderValue::as_bytes), body)?)
    }

    /// The (first) header value.
    pub(crate) fn value(&self) -> Option<&HeaderValue> {
        self.value.as_ref()
    }
}
