//! The server's time limit of one read (list, get, stats, destinations): each runs in a transaction
//! whose `statement_timeout` ends a little before the operation timeout, so that the
//! server stops a slow read and says so ([`StoreError::ReadStopped`]) before the client gives up
//! on a silent database ([`StoreError::Unavailable`], the connection closed). Its `lock_timeout`
//! ends a little sooner still, so that a read held up by another session's lock says so instead
//! of telling to narrow a filter that is not the cause.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::connect::pg_error;
use crate::inbox::sqlite::read_deadline::{seconds, Read, NARROW_THE_FILTER};
use crate::inbox::StoreError;

/// The longest `statement_timeout` or `lock_timeout` PostgreSQL takes: 2^31 - 1 ms (24.8 days).
/// A longer one is refused (`SET` fails), which would fail every read.
const SERVER_MAX: Duration = Duration::from_millis(i32::MAX as u64);

/// How long the server lets each statement of a read run, for an `operation_timeout`: a quarter
/// less, at most 1 s less (the time for the server's error to come back before the client gives
/// up; a tenth of a short timeout, 100 ms of 1 s, was too little on a loaded machine, which then
/// reported a slow read as an unavailable database), at least 1 ms (0 would be no limit), and at
/// most what the server takes.
pub(crate) fn statement_timeout(operation_timeout: Duration) -> Duration {
    a_little_less(operation_timeout).min(SERVER_MAX)
}

/// How long each statement of a read may wait for a lock (another session's `ALTER TABLE`,
/// `VACUUM FULL`, `TRUNCATE`, `LOCK TABLE`), for its `statement_timeout`: a quarter less, at
/// most 1 s less, for the server to stop it as waiting for a lock rather than as slow (a
/// `lock_timeout` as long as the `statement_timeout` would never fire first).
fn lock_timeout(statement_timeout: Duration) -> Duration {
    a_little_less(statement_timeout)
}

/// `limit` less a quarter, at most 1 s less, in whole milliseconds, and at least 1 ms (0 would
/// be no limit).
fn a_little_less(limit: Duration) -> Duration {
    let margin = (limit / 4).min(Duration::from_secs(1));
    let whole_ms = limit.saturating_sub(margin).as_millis();
    Duration::from_millis(u64::try_from(whole_ms).unwrap_or(u64::MAX).max(1))
}

/// The statement that opens a read's transaction with the server's time limits: `SET LOCAL`
/// ends with the transaction, so the pooled session (and a pgbouncer-style pooler's) is left as
/// it was for the writes that use it next (a write waits for a lock as long as it must).
pub(crate) fn begin(timeout: Duration) -> String {
    format!(
        "BEGIN; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
        timeout.min(SERVER_MAX).as_millis().max(1),
        lock_timeout(timeout.min(SERVER_MAX)).as_millis()
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
    /// passed is [`StoreError::ReadStopped`] with what to do; one that waited for a lock past
    /// its `lock_timeout` (55P03: reads never ask for a lock with `NOWAIT`) is too, saying so;
    /// one cancelled sooner (an administrator's `pg_cancel_backend`) and any other as
    /// [`pg_error`].
    pub(crate) fn error(&self, error: &tokio_postgres::Error) -> StoreError {
        if error.code() == Some(&SqlState::QUERY_CANCELED) && self.started.elapsed() >= self.timeout
        {
            return stopped(self.shown, self.timeout, self.read);
        }
        if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            return waited_for_a_lock(self.shown, lock_timeout(self.timeout));
        }
        pg_error(self.shown, error)
    }
}

/// Why the server stopped a read of the store `shown`: it waited longer than `timeout` for a
/// lock another session holds, which no filter changes, and how to find that session.
fn waited_for_a_lock(shown: &str, timeout: Duration) -> StoreError {
    StoreError::ReadStopped(format!(
        "{shown}: the read waited longer than {} s for a lock that another session holds on the \
         store's tables (an ALTER TABLE, VACUUM FULL, TRUNCATE, REINDEX or LOCK TABLE in an open \
         transaction) and was stopped by the server: try again later, and if it keeps failing, \
         look for the session holding the lock in pg_locks and pg_stat_activity",
        seconds(timeout)
    ))
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
        assert_eq!(limit(1_000), 750);
        assert_eq!(limit(600_000), 599_000);
        assert_eq!(limit(86_400_000), 86_399_000);
        assert_eq!(limit(5), 3);
        assert_eq!(limit(1), 1, "never 0, which is no limit");
        let longest = u128::from(i32::MAX.unsigned_abs());
        assert_eq!(limit(30 * 86_400_000), longest, "the server's largest");
        assert_eq!(statement_timeout(Duration::MAX).as_millis(), longest);
        assert_eq!(
            begin(Duration::MAX),
            "BEGIN; SET LOCAL statement_timeout = 2147483647; SET LOCAL lock_timeout = 2147482647"
        );
        assert_eq!(
            begin(Duration::from_millis(750)),
            "BEGIN; SET LOCAL statement_timeout = 750; SET LOCAL lock_timeout = 562"
        );
        assert_eq!(
            begin(Duration::from_millis(9_000)),
            "BEGIN; SET LOCAL statement_timeout = 9000; SET LOCAL lock_timeout = 8000"
        );
        assert_eq!(
            begin(Duration::from_millis(599_000)),
            "BEGIN; SET LOCAL statement_timeout = 599000; SET LOCAL lock_timeout = 598000"
        );
        assert_eq!(
            begin(Duration::from_millis(1)),
            "BEGIN; SET LOCAL statement_timeout = 1; SET LOCAL lock_timeout = 1",
            "never 0, which is no limit"
        );
    }
}
