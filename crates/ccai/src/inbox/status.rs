//! [`DeliveryStatus`]: where one delivery of an event to one destination stands.

use std::fmt;
use std::str::FromStr;

/// Where the delivery of an event to one destination stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (due now or at `next_attempt_at`).
    Pending,
    /// Claimed by a worker under a lease.
    InProgress,
    /// Handed on successfully.
    Delivered,
    /// Every attempt of the retry schedule failed (or the target refused it for good): waits for
    /// a manual replay.
    Dead,
}

impl DeliveryStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::InProgress,
        DeliveryStatus::Delivered,
        DeliveryStatus::Dead,
    ];

    /// The name stored and shown: `pending`, `in_progress`, `delivered` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InProgress => "in_progress",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of `pending`, `in_progress`, `delivered`, `dead`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery status {0:?}: expected pending, in_progress, delivered or dead")]
pub struct UnknownStatus(pub String);

/// Reads a status name in any ASCII case (`dead`, `DEAD`).
impl FromStr for DeliveryStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::ALL
            .into_iter()
            // In any case, as `DeliveryMethod` reads its names: a user may type `DEAD`.
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_any_case_and_unknown_ones_are_refused() {
        for status in DeliveryStatus::ALL {
            assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(status));
            assert_eq!(status.to_string(), status.as_str());
        }
        for (name, status) in [
            ("Pending", DeliveryStatus::Pending),
            ("IN_PROGRESS", DeliveryStatus::InProgress),
            ("DEAD", DeliveryStatus::Dead),
        ] {
            assert_eq!(name.parse::<DeliveryStatus>(), Ok(status), "{name}");
        }
        let error = "in-progress"
            .parse::<DeliveryStatus>()
            .expect_err("not a name");
        assert!(error.to_string().contains("expected pending"), "{error}");
    }
}
