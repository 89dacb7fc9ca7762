//! The server's time limit of one read (list, get, stats, destinations): each runs in a transaction
//! whose `statement_timeout` ends a little before the operation timeout, so that the
//! server stops a slow read and says so ([`StoreError::ReadStopped`]) before the client gives up
//! on a silent database ([`StoreError::Unavailable`], the connection closed).

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::connect::pg_error;
use crate::inbox::sqlite::read_deadline::{seconds, Read, NARROW_THE_FILTER};
use crate::inbox::StoreError;

/// How long the server lets each statement of a read run, for an `operation_timeout`: a tenth
/// less, at most 1 s less (the time for the server's error to come back before the client gives
/// up), and at least 1 ms (0 would be no limit).
pub(crate) fn statement_timeout(operation_timeout: Duration) -> Duration {
    let margin = (operation_timeout / 10).min(Duration::from_secs(1));
    let whole_ms = operation_timeout.saturating_sub(margin).as_millis();
    Duration::from_millis(u64::try_from(whole_ms).unwrap_or(u64::MAX).max(1))
}

/// The statement that opens a read's transaction with the server's time limit: `SET LOCAL` ends
/// with the transaction, so the pooled session (and a pgbouncer-style pooler's) is left as it
/// was for the writes that use it next.
pub(crate) fn begin(timeout: Duration) -> String {
    format!(
        "BEGIN; SET LOCAL statement_timeout = {}",
        timeout.as_millis().max(1)
    )
}

/// One read under way, for the mapping of its errors.
pub(crate) struct ReadLimit<'a> {
    shown: &'a str,
    timeout: Duration,
    read: Read,
    started: Instant,
}

impl<'a> ReadLimit<'a> {
    /// A `read` of the store `shown`, limited to `timeout` a statement, starting now.
    pub(crate) fn start(shown: &'a str, timeout: Duration, read: Read) -> Self {
        Self {
            shown,
            timeout,
            read,
            started: Instant::now(),
        }
    }

    /// Maps an error of the read: a statement cancelled (SQLSTATE 57014) once the time limit has
    /// passed is [`StoreError::ReadStopped`] with what to do; one cancelled sooner (an
    /// administrator's `pg_cancel_backend`) and any other as [`pg_error`].
    pub(crate) fn error(&self, error: &tokio_postgres::Error) -> StoreError {
        if error.code() == Some(&SqlState::QUERY_CANCELED) && self.started.elapsed() >= self.timeout
        {
            return stopped(self.shown, self.timeout, self.read);
        }
        pg_error(self.shown, error)
    }
}

/// Why the server stopped a `read` of the store `shown`: it ran longer than `timeout`, and what
/// to do about it.
pub(crate) fn stopped(shown: &str, timeout: Duration, read: Read) -> StoreError {
    let advice = match read {
        Read::Filtered => NARROW_THE_FILTER,
        Read::Unfiltered => {
            "this read takes no filter, so try again later, and if it keeps failing, check the \
             database server's load"
        }
    };
    StoreError::ReadStopped(format!(
        "{shown}: the read took longer than {} s and was stopped by the server: {advice}",
        seconds(timeout)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_stops_a_read_a_little_before_the_client_gives_up() {
        let limit = |ms| statement_timeout(Duration::from_millis(ms)).as_millis();
        assert_eq!(limit(10_000), 9_000);
        assert_eq!(limit(1_000), 900);
        assert_eq!(limit(600_000), 599_000);
        assert_eq!(limit(86_400_000), 86_399_000);
        assert_eq!(limit(5), 4);
        assert_eq!(limit(1), 1, "never 0, which is no limit");
        assert_eq!(
            begin(Duration::from_millis(900)),
            "BEGIN; SET LOCAL statement_timeout = 900"
        );
    }
}
