//! [`RetrySchedule`]: how long to wait after each failed attempt, and when to give up.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The delays between attempts; after the last one fails, the delivery is dead. A
/// [`permanent`](crate::inbox::Failure::permanent()) failure (`410 Gone` from
/// [`HttpForward`](crate::inbox::HttpForward)) is dead at once, whatever attempts are left.
///
/// The default is CloudContactAI's and Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (eight
/// attempts over about 27.6 hours), each delay with ±20 % random jitter so that a burst of
/// failures does not retry in lockstep.
///
/// ```
/// use std::time::Duration;
/// use ccai::inbox::RetrySchedule;
///
/// let schedule: RetrySchedule = "1s,10s,1m".parse()?;
/// assert_eq!(schedule.delays(), &[Duration::from_secs(1), Duration::from_secs(10), Duration::from_secs(60)]);
/// assert_eq!(schedule.max_attempts(), 4);
/// assert_eq!(schedule.to_string(), "1s,10s,1m");
/// # Ok::<(), ccai::inbox::ParseScheduleError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
}

impl RetrySchedule {
    /// The default jitter: ±20 %.
    pub const DEFAULT_JITTER: f64 = 0.2;

    /// The longest delay [`FromStr`] accepts: 30 days. A longer one is a typo, not a plan
    /// (`100000000000d` once read as "never retry").
    pub const MAX_PARSED_DELAY: Duration = Duration::from_secs(30 * 86_400);

    /// The shortest delay: a delay of zero would retry a target that is down at once, attempt
    /// after attempt. [`FromStr`] refuses a zero delay; [`new`](Self::new) raises one to this.
    pub const MIN_DELAY: Duration = Duration::from_millis(1);

    /// A schedule with these delays and the default jitter. An empty list means one attempt.
    /// A delay shorter than [`MIN_DELAY`](Self::MIN_DELAY) (zero) is raised to it.
    pub fn new(delays: impl Into<Vec<Duration>>) -> Self {
        let mut delays = delays.into();
        for delay in &mut delays {
            *delay = (*delay).max(Self::MIN_DELAY);
        }
        Self {
            delays,
            jitter: Self::DEFAULT_JITTER,
        }
    }

    /// The jitter as a fraction of each delay (0.0 = none; clamped to 0.0–1.0).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The delays, without jitter.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// Attempts in all: the first plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// How long to wait after attempt number `attempt` (1-based) failed, with jitter; `None`
    /// when it was the last. A delay too large for jitter to add to saturates at `Duration::MAX`;
    /// jitter never takes one below [`MIN_DELAY`](Self::MIN_DELAY).
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        let base = *self.delays.get(index)?;
        let factor = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        // `Duration::mul_f64` panics on overflow; a caller's `Duration::MAX` must not.
        Some(
            Duration::try_from_secs_f64(base.as_secs_f64() * factor.max(0.0))
                .unwrap_or(Duration::MAX)
                .max(Self::MIN_DELAY),
        )
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 3600;
        Self::new(
            [
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .map(Duration::from_secs)
            .to_vec(),
        )
    }
}

/// A retry schedule that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry schedule item {item:?}: {}", if *.too_long {
    "a retry delay can be at most 30d"
} else if *.zero {
    "a retry delay must be longer than 0 (0 would retry a target that is down at once)"
} else {
    "expected comma-separated durations like 50ms,5s,5m,2h,1d"
})]
#[non_exhaustive]
pub struct ParseScheduleError {
    /// The item that could not be read (cut to 40 characters).
    pub item: String,
    /// Whether the item is a duration, but longer than [`RetrySchedule::MAX_PARSED_DELAY`].
    pub too_long: bool,
    /// Whether the item is a duration of zero (`0s`, `0ms`, …).
    pub zero: bool,
}

/// One duration as a retry schedule writes it: a whole number and a unit (`ms`, `s`, `m`, `h`,
/// `d`), with no space. `None` for anything else, or past `u64::MAX` milliseconds. Unlike a
/// schedule's delays, it has no upper bound (a retention of 90 days is fine).
///
/// ```
/// use std::time::Duration;
/// use ccai::inbox::parse_duration;
///
/// assert_eq!(parse_duration("90d"), Some(Duration::from_secs(90 * 86_400)));
/// assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_duration("5 s"), None);
/// ```
pub fn parse_duration(item: &str) -> Option<Duration> {
    let split = item.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = item.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(millis).map(Duration::from_millis)
}

/// Whether `item` is written as a delay (digits, then a unit), whatever its size.
fn well_formed(item: &str) -> bool {
    let digits = item.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(&item[digits..], "ms" | "s" | "m" | "h" | "d")
}

impl FromStr for RetrySchedule {
    type Err = ParseScheduleError;

    /// Reads `"1s,10s,1m"`: comma-separated whole numbers with a unit (`ms`, `s`, `m`, `h`,
    /// `d`). An empty string is a schedule with no retry. A delay of zero is refused (see
    /// [`RetrySchedule::MIN_DELAY`]), as is one past [`RetrySchedule::MAX_PARSED_DELAY`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(Self::new(Vec::new()));
        }
        s.split(',')
            .map(|item| {
                let item = item.trim();
                let error = |too_long, zero| ParseScheduleError {
                    item: item.chars().take(40).collect(),
                    too_long,
                    zero,
                };
                match parse_duration(item) {
                    Some(delay) if delay.is_zero() => Err(error(false, true)),
                    Some(delay) if delay <= Self::MAX_PARSED_DELAY => Ok(delay),
                    Some(_) => Err(error(true, false)),
                    // Digits and a unit, too many for a number: a delay far past the limit.
                    None if well_formed(item) => Err(error(true, false)),
                    None => Err(error(false, false)),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, delay) in self.delays.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            // Whole milliseconds, rounded up: a delay of 1.5 ms or 1 ns must not read back as
            // less than it is (`0ms` would mean "at once", and is refused).
            let ms = delay.as_nanos().div_ceil(1_000_000);
            let (n, unit) = [
                (86_400_000, "d"),
                (3_600_000, "h"),
                (60_000, "m"),
                (1000, "s"),
            ]
            .into_iter()
            .find(|(size, _)| ms >= *size && ms % size == 0)
            .map(|(size, unit)| (ms / size, unit))
            .unwrap_or((ms, "ms"));
            write!(f, "{n}{unit}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_rounds_a_fraction_of_a_millisecond_up() {
        let schedule = RetrySchedule::new(vec![
            Duration::from_micros(1500),
            Duration::from_nanos(1),
            Duration::from_millis(2000),
        ]);
        assert_eq!(schedule.to_string(), "2ms,1ms,2s");
        let back: RetrySchedule = schedule.to_string().parse().expect("reads back");
        for (shown, exact) in back.delays().iter().zip(schedule.delays()) {
            assert!(shown >= exact, "{shown:?} < {exact:?}");
        }
    }

    #[test]
    fn a_huge_delay_saturates_instead_of_panicking() {
        let schedule = RetrySchedule::new(vec![Duration::MAX, Duration::from_secs(u64::MAX / 2)]);
        for _ in 0..50 {
            let first = schedule.delay_after(1).expect("a delay");
            assert!(first >= Duration::MAX.mul_f64(0.5), "{first:?}");
            assert!(schedule.delay_after(2).is_some());
        }
    }

    #[test]
    fn parsing_refuses_a_delay_past_thirty_days() {
        let schedule: RetrySchedule = "1s,30d".parse().expect("30 days is the limit");
        assert_eq!(schedule.delays()[1], RetrySchedule::MAX_PARSED_DELAY);
        // Numbers past u64, or whose milliseconds are: too long as well, not malformed.
        for text in [
            "1s,31d",
            "720h1",
            "100000000000d",
            "2592000001ms",
            "99999999999999999999s",
            "18446744073709551615d",
        ] {
            let error = text.parse::<RetrySchedule>().expect_err(text);
            if text == "720h1" {
                assert!(!error.too_long, "{text}: {error}");
                continue;
            }
            assert!(error.too_long, "{text}");
            assert!(error.to_string().contains("at most 30d"), "{error}");
        }
    }

    #[test]
    fn default_schedule_has_eight_attempts_and_bounded_jitter() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 8);
        for _ in 0..100 {
            let d = schedule.delay_after(1).expect("attempt 1 has a delay");
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
        assert_eq!(schedule.delay_after(8), None);
        assert_eq!(schedule.delay_after(0), None);
        // The issue's schedule, each delay within ±20 %.
        let (min, hour) = (60, 3600);
        let expected = [
            5,
            5 * min,
            30 * min,
            2 * hour,
            5 * hour,
            10 * hour,
            10 * hour,
        ];
        assert_eq!(
            schedule.delays(),
            expected.map(Duration::from_secs).as_slice()
        );
        for (attempt, base) in (1..).zip(expected) {
            let base = Duration::from_secs(base);
            for _ in 0..50 {
                let d = schedule.delay_after(attempt).expect("a delay");
                assert!(
                    d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2),
                    "attempt {attempt}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn a_zero_delay_is_refused_when_read_and_raised_when_given() {
        for text in ["0s", "1s,0ms", "5s, 00m ,1h", "0d"] {
            let error = text.parse::<RetrySchedule>().expect_err(text);
            assert!(error.zero && !error.too_long, "{text}: {error:?}");
            assert!(error.to_string().contains("longer than 0"), "{error}");
        }
        let schedule = RetrySchedule::new(vec![Duration::ZERO, Duration::from_secs(1)]).jitter(1.0);
        assert_eq!(
            schedule.delays(),
            &[RetrySchedule::MIN_DELAY, Duration::from_secs(1)]
        );
        // What it prints reads back.
        assert_eq!(schedule.to_string(), "1ms,1s");
        assert!(schedule.to_string().parse::<RetrySchedule>().is_ok());
        for _ in 0..50 {
            let wait = schedule.delay_after(1).expect("a delay");
            assert!(wait >= RetrySchedule::MIN_DELAY, "{wait:?}");
        }
    }

    #[test]
    fn parse_rejects_bad_items_and_round_trips() {
        assert!("1s,,2s".parse::<RetrySchedule>().is_err());
        assert!("5x".parse::<RetrySchedule>().is_err());
        assert!("s".parse::<RetrySchedule>().is_err());
        let s: RetrySchedule = "50ms, 2s,90s,1d".parse().expect("valid");
        assert_eq!(s.to_string(), "50ms,2s,90s,1d");
        assert_eq!("".parse::<RetrySchedule>().map(|s| s.max_attempts()), Ok(1));
    }
}
