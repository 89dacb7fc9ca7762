//! A string that never shows itself in `Debug` output.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A webhook secret (or any other credential) whose value is hidden from `Debug`.
///
/// The value is only reachable through [`Secret::expose_secret`], so it cannot end up in a log line
/// by accident. It serialises as the plain string because the management API needs the value on the
/// wire; deserialising accepts a plain string.
///
/// ```
/// use ccai::webhook::Secret;
///
/// let secret = Secret::new("whsec-123");
/// assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
/// assert_eq!(secret.expose_secret(), "whsec-123");
/// ```
#[derive(Clone)]
pub struct Secret(String);

/// Constant-time, so comparing a presented value with a secret reveals nothing through timing.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value. Call this only where the value is really needed.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string (which never verifies anything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// An error never quotes the value: serde's own message for a value of the wrong type does
/// (``invalid type: integer `123…` ``), and it would reach error messages and logs.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)
            .map(Secret)
            .map_err(|_| serde::de::Error::custom("a secret must be a string"))
    }
}
