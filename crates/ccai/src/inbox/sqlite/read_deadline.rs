//! The deadline of one read ([`SqliteOptions::read_timeout`](super::SqliteOptions::read_timeout)):
//! SQLite's progress handler stops the statement running past it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::inbox::StoreError;

/// SQLite virtual-machine instructions between two looks at the clock: a few rows of a scan,
/// about 25 of a text search (4 a body that does not match: column, `instr`, compare, next). A
/// look costs tens of nanoseconds, a hundred instructions a microsecond or more.
const CHECK_EVERY: std::ffi::c_int = 100;

/// What a read is, for the advice of the error that stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Events through a filter: a list, or the search of a replay or requeue by text. A narrower
    /// filter reads fewer of them.
    Filtered,
    /// A read no filter narrows: an event's details, the counts, the destinations. Quick on an
    /// index, unless the machine or its disk is overloaded.
    Unfiltered,
}

/// Runs `query` on `conn`, stopping it once `timeout` has passed: then it fails with
/// [`timed_out`] (with the advice for `read`), whatever error the stopped statement gave. The
/// handler is removed afterwards, so `conn` reads on as before.
pub(crate) fn within<T>(
    conn: &Connection,
    path: &str,
    timeout: Duration,
    read: Read,
    query: impl FnOnce(&Connection, &str) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // A deadline too far to represent is none.
    let Some(deadline) = Instant::now().checked_add(timeout) else {
        return query(conn, path);
    };
    let passed = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&passed);
    conn.progress_handler(
        CHECK_EVERY,
        Some(move || {
            let late = Instant::now() >= deadline;
            if late {
                seen.store(true, Ordering::Relaxed);
            }
            late
        }),
    );
    let result = query(conn, path);
    conn.progress_handler(0, None::<fn() -> bool>);
    if passed.load(Ordering::Relaxed) {
        return Err(timed_out(path, timeout, read));
    }
    result
}

/// What to do about a filtered read that was stopped (on SQLite or PostgreSQL).
pub(crate) const NARROW_THE_FILTER: &str = "narrow the filter (a shorter time range, an event \
     type or status, a more distinctive search text) and try again";

/// Why a `read` was stopped: it took longer than `timeout`, and what to do about it.
pub(crate) fn timed_out(path: &str, timeout: Duration, read: Read) -> StoreError {
    let advice = match read {
        Read::Filtered => NARROW_THE_FILTER,
        Read::Unfiltered => {
            "this read takes no filter, so try again later, and if it keeps failing, check the \
             machine's load and its disk"
        }
    };
    StoreError::ReadStopped(format!(
        "{path}: the read took longer than {} s and was stopped: {advice}",
        seconds(timeout)
    ))
}

/// `timeout` in seconds, as briefly as exact to the millisecond: `30`, `0.2`, `2.5`.
pub(crate) fn seconds(timeout: Duration) -> String {
    let millis = timeout.as_millis();
    let (whole, fraction) = (millis / 1000, millis % 1000);
    if fraction == 0 {
        whole.to_string()
    } else {
        let fraction = format!("{fraction:03}");
        format!("{whole}.{}", fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_shown_in_seconds_as_briefly_as_exact() {
        let shown = |ms| seconds(Duration::from_millis(ms));
        assert_eq!(shown(30_000), "30");
        assert_eq!(shown(200), "0.2");
        assert_eq!(shown(2_500), "2.5");
        assert_eq!(shown(1_001), "1.001");
        assert_eq!(shown(1), "0.001");
    }

    #[test]
    fn a_statement_past_the_deadline_is_stopped_and_the_connection_reads_on() {
        let conn = Connection::open_in_memory().expect("open");
        // Counts forever: only the deadline ends it.
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
                       SELECT count(*) FROM n";
        let timeout = Duration::from_millis(50);
        let stopped = within(&conn, "mem", timeout, Read::Filtered, |conn, _| {
            conn.query_row(endless, [], |row| row.get::<_, i64>(0))
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        });
        assert_eq!(stopped, Err(timed_out("mem", timeout, Read::Filtered)));
        assert!(conn.is_autocommit(), "no transaction left open");
        // The handler is gone: a read after the deadline runs to its end.
        std::thread::sleep(Duration::from_millis(60));
        let counted: i64 = conn
            .query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
                 SELECT count(*) FROM n",
                [],
                |row| row.get(0),
            )
            .expect("the next read");
        assert_eq!(counted, 100_000);
    }
}
