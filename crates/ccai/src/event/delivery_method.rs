//! [`DeliveryMethod`]: the HTTP method CloudContactAI delivers with (an integration's `method`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// How CloudContactAI delivers to an endpoint (the integration's `method`).
///
/// Serialised as `"POST"`/`"PUT"`; read case-insensitively.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum DeliveryMethod {
    /// `POST` (the default).
    #[default]
    #[serde(rename = "POST")]
    Post,
    /// `PUT`.
    #[serde(rename = "PUT")]
    Put,
}

impl<'de> Deserialize<'de> for DeliveryMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl DeliveryMethod {
    /// `"POST"` or `"PUT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
        }
    }
}

impl fmt::Display for DeliveryMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeliveryMethod {
    type Err = UnknownDeliveryMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("POST") {
            Ok(Self::Post)
        } else if s.eq_ignore_ascii_case("PUT") {
            Ok(Self::Put)
        } else {
            Err(UnknownDeliveryMethod)
        }
    }
}

/// Compares with the method's name, as the API spells it (`"POST"`, `"PUT"`).
impl PartialEq<str> for DeliveryMethod {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DeliveryMethod {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A delivery method other than `POST` or `PUT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery method must be POST or PUT")]
#[non_exhaustive]
pub struct UnknownDeliveryMethod;
