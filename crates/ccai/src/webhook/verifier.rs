//! [`Verifier`]: a client id and one or more secrets, keyed once, answering with a reason.

use std::fmt;

use hmac::Mac;

use super::event::{parse_event, ParseError, WebhookEvent};
use super::signature::{is_well_formed, keyed, matches_mac, HmacSha256};

/// Why a [`Verifier`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The client id is empty. It is the account id CloudContactAI signs with.
    #[error("client id is empty: set it to your CloudContactAI account id")]
    EmptyClientId,
    /// No secret was given.
    #[error("no webhook secret configured: set the secret the integration was registered with")]
    NoSecret,
    /// One of the secrets is empty.
    #[error("a webhook secret is empty: an empty secret would accept forged signatures")]
    EmptySecret,
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
    /// Well-formed, but no configured secret produces it.
    #[error("signature does not match")]
    Mismatch,
    /// The event hash to verify is empty.
    #[error("event hash is empty")]
    EmptyEventHash,
    /// The body is not a valid delivery (from [`Verifier::verify_event`]).
    #[error("invalid delivery: {0}")]
    Parse(#[from] ParseError),
}

/// Verifies deliveries for one CloudContactAI account.
///
/// Holds the client id and one or more secrets. Any one secret may match, which allows rotating a
/// secret without downtime: configure old and new, update the integration, drop the old one. Each
/// secret's HMAC key schedule, and the `clientId:` prefix, are computed once at construction.
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
    client_id: String,
    /// Per secret: HMAC keyed with it, already fed `clientId:`.
    prefixed: Vec<HmacSha256>,
}

impl Verifier {
    /// A verifier for `client_id` with one secret. Errors on an empty client id or secret.
    pub fn new(client_id: impl Into<String>, secret: impl AsRef<str>) -> Result<Self, ConfigError> {
        let client_id = client_id.into();
        if client_id.is_empty() {
            return Err(ConfigError::EmptyClientId);
        }
        Self {
            client_id,
            prefixed: Vec::with_capacity(1),
        }
        .with_secret(secret)
    }

    /// A verifier for `client_id` accepting any of `secrets` (at least one, none empty).
    pub fn with_secrets<I, S>(client_id: impl Into<String>, secrets: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let client_id = client_id.into();
        if client_id.is_empty() {
            return Err(ConfigError::EmptyClientId);
        }
        let mut verifier = Self {
            client_id,
            prefixed: Vec::new(),
        };
        for secret in secrets {
            verifier = verifier.with_secret(secret)?;
        }
        if verifier.prefixed.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        Ok(verifier)
    }

    /// Adds another accepted secret (for rotation).
    pub fn with_secret(mut self, secret: impl AsRef<str>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        let mut mac = keyed(secret);
        mac.update(self.client_id.as_bytes());
        mac.update(b":");
        self.prefixed.push(mac);
        Ok(self)
    }

    /// The account id signatures are checked for.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How many secrets are accepted.
    pub fn secret_count(&self) -> usize {
        self.prefixed.len()
    }

    /// Checks a signature header value against `event_hash`.
    ///
    /// Every secret is tried (no early exit), so timing does not reveal which one matched.
    pub fn verify(&self, signature: &str, event_hash: &str) -> Result<(), VerifyError> {
        self.verify_bytes(signature.as_bytes(), event_hash)
    }

    /// [`verify`](Self::verify) for a raw header value, which HTTP allows to be non-UTF-8 (such a
    /// value is malformed, not an error of the server).
    pub fn verify_bytes(&self, signature: &[u8], event_hash: &str) -> Result<(), VerifyError> {
        if event_hash.is_empty() {
            return Err(VerifyError::EmptyEventHash);
        }
        if !is_well_formed(signature) {
            return Err(VerifyError::MalformedSignature);
        }
        let mut matched = false;
        for prefixed in &self.prefixed {
            let mut mac = prefixed.clone();
            mac.update(event_hash.as_bytes());
            matched |= matches_mac(signature, mac);
        }
        if matched {
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        }
    }

    /// Parses `body` and verifies `signature` against its `eventHash`, in one call.
    ///
    /// The event is returned only if it verifies. The body is parsed once, as received (never
    /// re-serialised). A missing signature is reported before the body is parsed.
    pub fn verify_event(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookEvent, VerifyError> {
        self.verify_event_bytes(signature.map(str::as_bytes), body)
    }

    /// [`verify_event`](Self::verify_event) with a raw header value.
    pub fn verify_event_bytes(
        &self,
        signature: Option<&[u8]>,
        body: &[u8],
    ) -> Result<WebhookEvent, VerifyError> {
        let signature = signature.ok_or(VerifyError::MissingSignature)?;
        let event = parse_event(body)?;
        self.verify_bytes(signature, &event.event_hash)?;
        Ok(event)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("client_id", &self.client_id)
            .field(
                "secrets",
                &format_args!("[REDACTED; {}]", self.prefixed.len()),
            )
            .finish()
    }
}
