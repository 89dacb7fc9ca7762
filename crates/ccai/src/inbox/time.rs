//! Time arithmetic that cannot panic: a lease or a delay of `Duration::MAX` (a caller's setting, a
//! server's `Retry-After`) saturates at the latest time the stores can hold.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The latest time a store keeps: `i64::MAX` milliseconds after the epoch.
fn latest() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(i64::MAX as u64)
}

/// `time + duration`, saturating at [`latest`] instead of panicking.
pub(crate) fn after(time: SystemTime, duration: Duration) -> SystemTime {
    time.checked_add(duration)
        .map_or_else(latest, |t| t.min(latest()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_durations_saturate() {
        let now = SystemTime::now();
        assert_eq!(after(now, Duration::MAX), latest());
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
