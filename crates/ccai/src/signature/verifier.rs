//! [`Verifier`]: a client id and one or more secrets, keyed once, answering with a reason.

use std::fmt;
use std::sync::Arc;

use hmac::Mac;

use crate::event::{Envelope, ParseError, WebhookEvent};

use super::scheme::{is_well_formed, keyed, matches_mac, HmacSha256};

/// Why a [`Verifier`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierConfigError {
    /// The client id is empty. It is the account id CloudContactAI signs with.
    #[error("client id is empty: set it to your CloudContactAI account id")]
    EmptyClientId,
    /// No secret was given.
    #[error("no webhook secret configured: set the secret the integration was registered with")]
    NoSecret,
    /// One of the secrets is empty.
    #[error("a webhook secret is empty: an empty secret would accept forged signatures")]
    EmptySecret,
    /// The client id or a secret starts or ends with whitespace (a copy-paste or file newline):
    /// nothing CloudContactAI signs would verify.
    #[error(
        "the {0} starts or ends with whitespace: remove it (often a trailing newline from a file)"
    )]
    Whitespace(&'static str),
}

/// Why a delivery did not verify. Messages never contain the signature, a secret or the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `X-CCAI-Signature` header.
    #[error("missing X-CCAI-Signature header")]
    MissingSignature,
    /// The header is not a 44-character standard padded base64 string (empty, hex, url-safe,
    /// prefixed, non-ASCII, …).
    #[error("malformed X-CCAI-Signature: expected 44 characters of standard padded base64")]
    MalformedSignature,
    /// The request carries `X-CCAI-Signature` more than once (whatever the values): which one
    /// counts is not for the receiver to pick.
    #[error("X-CCAI-Signature was sent more than once: send it once")]
    RepeatedSignature,
    /// Well-formed, but no configured secret produces it.
    #[error("signature does not match")]
    Mismatch,
    /// The event hash to verify is empty.
    #[error("event hash is empty")]
    EmptyEventHash,
    /// The body is not a valid delivery (from [`Verifier::verify_event`]). The message names the
    /// [`ParseError`]'s problem, so the problem is not also its `source()` (a reporter that walks
    /// the chain would show it twice).
    #[error("invalid delivery: {0}")]
    Parse(ParseError),
}

impl From<ParseError> for VerifyError {
    fn from(error: ParseError) -> Self {
        Self::Parse(error)
    }
}

/// Verifies deliveries for one CloudContactAI account.
///
/// Holds the client id and one or more secrets. Any one secret may match, which allows rotating a
/// secret without downtime: configure old and new, update the integration, drop the old one. Each
/// secret's HMAC key schedule, and the `clientId:` prefix, are computed once at construction.
/// Cloning is cheap (one reference count): clones share the keyed state.
///
/// ```
/// use ccai::webhook::{sign, Verifier, VerifyError};
///
/// let verifier = Verifier::new("1231", "new-secret")?.with_secret("old-secret")?;
///
/// let body = br#"{"eventType":"message.sent","data":{"To":"+14155550100"},"eventHash":"h1"}"#;
/// let signature = sign("1231", "h1", "old-secret");
/// let event = verifier.verify_event(Some(&signature), body)?;
/// assert_eq!(event.event_hash, "h1");
///
/// assert_eq!(verifier.verify_event(None, body), Err(VerifyError::MissingSignature));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    /// Shared between clones: the axum extractor clones the verifier out of the router state for
    /// every request.
    keys: Arc<Keys>,
}

#[derive(Clone)]
struct Keys {
    client_id: String,
    /// Per secret: HMAC keyed with it, already fed `clientId:`.
    prefixed: Vec<HmacSha256>,
}

impl Verifier {
    /// A verifier for `client_id` with one secret. Errors on an empty client id or secret.
    pub fn new(
        client_id: impl Into<String>,
        secret: impl AsRef<str>,
    ) -> Result<Self, VerifierConfigError> {
        let client_id = checked_client_id(client_id.into())?;
        Self::unkeyed(client_id, 1).with_secret(secret)
    }

    fn unkeyed(client_id: String, secrets: usize) -> Self {
        Self {
            keys: Arc::new(Keys {
                client_id,
                prefixed: Vec::with_capacity(secrets),
            }),
        }
    }

    /// A verifier for `client_id` accepting any of `secrets` (at least one, none empty): a
    /// constructor, like [`new`](Self::new) with several secrets (unlike
    /// [`with_secret`](Self::with_secret), which adds one to a verifier).
    ///
    /// ```
    /// use ccai::signature::{sign, Verifier, VerifierConfigError};
    ///
    /// // While rotating: the new secret and the old one, e.g. from a comma-separated setting.
    /// let verifier = Verifier::with_secrets("1231", "new-secret,old-secret".split(','))?;
    /// assert_eq!(verifier.secret_count(), 2);
    /// assert_eq!(verifier.verify(sign("1231", "h", "old-secret"), "h"), Ok(()));
    ///
    /// let none: [&str; 0] = [];
    /// assert_eq!(Verifier::with_secrets("1231", none).unwrap_err(), VerifierConfigError::NoSecret);
    /// # Ok::<(), VerifierConfigError>(())
    /// ```
    pub fn with_secrets<I, S>(
        client_id: impl Into<String>,
        secrets: I,
    ) -> Result<Self, VerifierConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let client_id = checked_client_id(client_id.into())?;
        let mut verifier = Self::unkeyed(client_id, 0);
        for secret in secrets {
            verifier = verifier.with_secret(secret)?;
        }
        if verifier.keys.prefixed.is_empty() {
            return Err(VerifierConfigError::NoSecret);
        }
        Ok(verifier)
    }

    /// Adds another accepted secret (for rotation) to this verifier, refusing an empty one or one
    /// with surrounding whitespace. Clones made before are not affected. To build a verifier from
    /// a list of secrets, see [`with_secrets`](Self::with_secrets).
    pub fn with_secret(mut self, secret: impl AsRef<str>) -> Result<Self, VerifierConfigError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(VerifierConfigError::EmptySecret);
        }
        if secret.trim() != secret {
            return Err(VerifierConfigError::Whitespace("webhook secret"));
        }
        // Copies the keys only if a clone shares them.
        let keys = Arc::make_mut(&mut self.keys);
        let mut mac = keyed(secret);
        mac.update(keys.client_id.as_bytes());
        mac.update(b":");
        keys.prefixed.push(mac);
        Ok(self)
    }

    /// The account id signatures are checked for.
    pub fn client_id(&self) -> &str {
        &self.keys.client_id
    }

    /// How many secrets are accepted.
    pub fn secret_count(&self) -> usize {
        self.keys.prefixed.len()
    }

    /// Checks a signature header value against `event_hash`.
    ///
    /// Takes the header as text or as raw bytes (HTTP allows a non-UTF-8 header value: such a
    /// value is malformed, not an error of the server). Every secret is tried (no early exit), so
    /// timing does not reveal which one matched.
    ///
    /// ```
    /// use ccai::signature::{sign, Verifier, VerifyError};
    ///
    /// let verifier = Verifier::new("1231", "secret")?;
    /// assert_eq!(verifier.verify(sign("1231", "h", "secret"), "h"), Ok(()));
    /// assert_eq!(verifier.verify(b"\xff", "h"), Err(VerifyError::MalformedSignature));
    /// # Ok::<(), ccai::signature::VerifierConfigError>(())
    /// ```
    pub fn verify(&self, signature: impl AsRef<[u8]>, event_hash: &str) -> Result<(), VerifyError> {
        let signature = signature.as_ref();
        if event_hash.is_empty() {
            return Err(VerifyError::EmptyEventHash);
        }
        if !is_well_formed(signature) {
            return Err(VerifyError::MalformedSignature);
        }
        self.verify_well_formed(signature, event_hash)
    }

    /// The HMAC comparison, for a signature already checked with `is_well_formed` and a
    /// non-empty hash.
    fn verify_well_formed(&self, signature: &[u8], event_hash: &str) -> Result<(), VerifyError> {
        let mut matched = subtle::Choice::from(0);
        for prefixed in &self.keys.prefixed {
            let mut mac = prefixed.clone();
            mac.update(event_hash.as_bytes());
            matched |= matches_mac(signature, mac);
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        }
    }

    /// Parses `body` and verifies `signature` against its `eventHash`, in one call.
    ///
    /// The event is returned only if it verifies. The body is parsed once, as received (never
    /// re-serialised).
    ///
    /// Checks run cheapest first, so that an unauthenticated request cannot make the body be
    /// parsed with a signature that could never verify:
    ///
    /// 1. no signature → [`VerifyError::MissingSignature`];
    /// 2. a signature that is not 44 characters of standard padded base64 →
    ///    [`VerifyError::MalformedSignature`];
    /// 3. a body that is not a valid delivery, one with an empty `eventHash` included →
    ///    [`VerifyError::Parse`] ([`ParseError::EmptyField`](crate::webhook::ParseError::EmptyField));
    /// 4. no secret produces the signature for the body's `eventHash` → [`VerifyError::Mismatch`].
    ///
    /// With a header value that may not be text (`http::HeaderValue`), use
    /// [`verify_event_bytes`](Self::verify_event_bytes): a non-UTF-8 value is then reported as
    /// malformed, not missing.
    pub fn verify_event(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookEvent, VerifyError> {
        self.verify_event_bytes(signature.map(str::as_bytes), body)
    }

    /// [`verify_event`](Self::verify_event) with the header value as raw bytes, checked in the
    /// same order: for frameworks whose header values are bytes (`http::HeaderValue::as_bytes`).
    ///
    /// HTTP allows a header value that is not UTF-8. Turning it into text first (and `None` when
    /// it is not) would report such a signature as missing; here it is what it is,
    /// [`VerifyError::MalformedSignature`]. `None` is still
    /// [`VerifyError::MissingSignature`].
    ///
    /// ```
    /// use ccai::signature::{sign, Verifier, VerifyError};
    ///
    /// let verifier = Verifier::new("1231", "my-webhook-secret")?;
    /// let body = br#"{"eventType":"message.sent","data":{},"eventHash":"h1"}"#;
    ///
    /// // What the framework hands over: the X-CCAI-Signature header's bytes, if it was sent.
    /// let signature = sign("1231", "h1", "my-webhook-secret");
    /// let header: Option<&[u8]> = Some(signature.as_bytes());
    /// assert_eq!(verifier.verify_event_bytes(header, body)?.event_hash, "h1");
    ///
    /// // A header value that is not UTF-8 is malformed, not missing.
    /// let header: Option<&[u8]> = Some(b"\xff\xfe");
    /// assert_eq!(verifier.verify_event_bytes(header, body), Err(VerifyError::MalformedSignature));
    /// assert_eq!(verifier.verify_event_bytes(None, body), Err(VerifyError::MissingSignature));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_event_bytes(
        &self,
        signature: Option<&[u8]>,
        body: &[u8],
    ) -> Result<WebhookEvent, VerifyError> {
        let signature = signature.ok_or(VerifyError::MissingSignature)?;
        if !is_well_formed(signature) {
            return Err(VerifyError::MalformedSignature);
        }
        // Verify on the borrowed envelope: a forged body costs no allocation.
        let envelope = Envelope::parse(body)?;
        if envelope.event_hash.is_empty() {
            return Err(VerifyError::EmptyEventHash);
        }
        self.verify_well_formed(signature, &envelope.event_hash)?;
        Ok(envelope.into_event())
    }
}

fn checked_client_id(client_id: String) -> Result<String, VerifierConfigError> {
    if client_id.is_empty() {
        Err(VerifierConfigError::EmptyClientId)
    } else if client_id.trim() != client_id {
        Err(VerifierConfigError::Whitespace("client id"))
    } else {
        Ok(client_id)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("client_id", &self.keys.client_id)
            .field(
                "secrets",
                &format_args!("[REDACTED; {}]", self.keys.prefixed.len()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::sign;

    const BODY: &[u8] = br#"{"eventType":"message.sent","data":{},"eventHash":"h1"}"#;

    #[test]
    fn clones_share_the_keys_and_adding_a_secret_does_not_affect_them() {
        let verifier = Verifier::new("1231", "s1").expect("verifier");
        let clone = verifier.clone();
        assert!(Arc::ptr_eq(&verifier.keys, &clone.keys));
        let rotated = clone.with_secret("s2").expect("rotated");
        assert!(!Arc::ptr_eq(&verifier.keys, &rotated.keys));
        assert_eq!((verifier.secret_count(), rotated.secret_count()), (1, 2));
        let old = sign("1231", "h1", "s2");
        assert_eq!(verifier.verify(&old, "h1"), Err(VerifyError::Mismatch));
        assert_eq!(rotated.verify(&old, "h1"), Ok(()));
        let shown = format!("{rotated:?}");
        assert!(
            shown.contains("REDACTED; 2") && !shown.contains("s2"),
            "{shown}"
        );
    }

    /// A signature that can never verify is refused before the body is parsed.
    #[test]
    fn checks_missing_then_malformed_then_body_then_mismatch() {
        let verifier = Verifier::new("1231", "s1").expect("verifier");
        let good = sign("1231", "h1", "s1");
        let wrong = sign("1231", "h1", "s2");
        assert_eq!(
            verifier.verify_event(None, b"not json"),
            Err(VerifyError::MissingSignature)
        );
        assert_eq!(
            verifier.verify_event(Some("garbage"), b"not json"),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(
            verifier.verify_event_bytes(Some(b"\xff"), b"not json"),
            Err(VerifyError::MalformedSignature)
        );
        assert!(matches!(
            verifier.verify_event(Some(&wrong), b"not json"),
            Err(VerifyError::Parse(_))
        ));
        assert_eq!(
            verifier.verify_event(Some(&wrong), BODY),
            Err(VerifyError::Mismatch)
        );
        let event = verifier.verify_event(Some(&good), BODY).expect("verifies");
        assert_eq!(event.event_hash, "h1");
    }
}
