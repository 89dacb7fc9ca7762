//! [`IntegrationMethod`]: an integration's `method` as the API reports it, known or not.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::DeliveryMethod;

/// The `method` of an integration the API returned: `POST`, `PUT`, or a value this crate does not
/// know (`"PATCH"`, or whatever the API starts sending), kept exactly as received.
///
/// An unknown method is never a parse error: one odd integration must not make a whole list
/// unreadable. It is sent back verbatim when an update keeps the integration's method.
/// `POST` and `PUT` are read without regard to case; an absent, `null` or empty method is `POST`
/// (the protocol's default). Equality goes by the wire string, as for
/// [`WebhookEventType`](crate::event::WebhookEventType).
///
/// ```
/// use ccai::webhook::{DeliveryMethod, IntegrationMethod};
///
/// let put: IntegrationMethod = serde_json::from_str(r#""put""#).unwrap();
/// assert_eq!(put, DeliveryMethod::Put);
/// let odd: IntegrationMethod = serde_json::from_str(r#""PATCH""#).unwrap();
/// assert_eq!(odd, IntegrationMethod::Other("PATCH".into()));
/// assert_eq!(odd.delivery_method(), None);
/// assert_eq!(serde_json::to_string(&odd).unwrap(), r#""PATCH""#);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum IntegrationMethod {
    /// `POST` (the default).
    #[default]
    Post,
    /// `PUT`.
    Put,
    /// Any other value, kept exactly as received.
    Other(String),
}

impl IntegrationMethod {
    /// The wire string: `"POST"`, `"PUT"`, or the unknown value as received.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Post => DeliveryMethod::Post.as_str(),
            Self::Put => DeliveryMethod::Put.as_str(),
            Self::Other(other) => other,
        }
    }

    /// The method as one this crate delivers with, or `None` for [`IntegrationMethod::Other`].
    pub fn delivery_method(&self) -> Option<DeliveryMethod> {
        match self {
            Self::Post => Some(DeliveryMethod::Post),
            Self::Put => Some(DeliveryMethod::Put),
            Self::Other(_) => None,
        }
    }

    /// Whether this is `POST` or `PUT` (not [`IntegrationMethod::Other`]).
    pub fn is_known(&self) -> bool {
        self.delivery_method().is_some()
    }
}

impl From<DeliveryMethod> for IntegrationMethod {
    fn from(method: DeliveryMethod) -> Self {
        match method {
            DeliveryMethod::Put => Self::Put,
            // `DeliveryMethod` is non-exhaustive; `POST` is the protocol's default.
            _ => Self::Post,
        }
    }
}

impl From<&str> for IntegrationMethod {
    fn from(text: &str) -> Self {
        if text.is_empty() {
            // What the API sends when it has no value: the protocol's default, as for `null`.
            return Self::Post;
        }
        match text.parse::<DeliveryMethod>() {
            Ok(known) => known.into(),
            Err(_) => Self::Other(text.to_owned()),
        }
    }
}

impl From<String> for IntegrationMethod {
    fn from(text: String) -> Self {
        match Self::from(text.as_str()) {
            Self::Other(_) => Self::Other(text),
            known => known,
        }
    }
}

impl fmt::Display for IntegrationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for IntegrationMethod {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IntegrationMethod {}

impl Hash for IntegrationMethod {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<DeliveryMethod> for IntegrationMethod {
    fn eq(&self, other: &DeliveryMethod) -> bool {
        self.as_str() == other.as_str()
    }
}

/// Compares with the wire string (`"POST"`, `"PUT"`, or the unknown value).
impl PartialEq<str> for IntegrationMethod {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for IntegrationMethod {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for IntegrationMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IntegrationMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(text.map_or(Self::Post, |text| Self::from(text.into_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_in_any_case_and_unknown_ones_verbatim() {
        for (wire, read, sent) in [
            (r#""POST""#, IntegrationMethod::Post, "POST"),
            (r#""post""#, IntegrationMethod::Post, "POST"),
            (r#""Put""#, IntegrationMethod::Put, "PUT"),
            (r#""""#, IntegrationMethod::Post, "POST"),
            ("null", IntegrationMethod::Post, "POST"),
            (
                r#""PATCH""#,
                IntegrationMethod::Other("PATCH".into()),
                "PATCH",
            ),
            (
                r#"" put ""#,
                IntegrationMethod::Other(" put ".into()),
                " put ",
            ),
        ] {
            let method: IntegrationMethod = serde_json::from_str(wire).unwrap();
            assert_eq!(method, read, "{wire}");
            assert_eq!(method.as_str(), sent, "{wire}");
            assert_eq!(
                serde_json::to_value(&method).unwrap(),
                serde_json::Value::from(sent)
            );
        }
        assert!(serde_json::from_str::<IntegrationMethod>("5").is_err());
    }

    #[test]
    fn compares_with_delivery_methods_and_text() {
        assert_eq!(IntegrationMethod::Put, DeliveryMethod::Put);
        assert_ne!(IntegrationMethod::Post, DeliveryMethod::Put);
        assert_eq!(
            IntegrationMethod::Other("PUT".into()),
            IntegrationMethod::Put
        );
        assert_eq!(IntegrationMethod::from("patch"), "patch");
        assert_eq!(
            IntegrationMethod::Put.delivery_method(),
            Some(DeliveryMethod::Put)
        );
        assert!(!IntegrationMethod::from("PATCH").is_known());
    }
}
