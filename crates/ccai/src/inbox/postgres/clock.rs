//! The database's clock against this machine's.
//!
//! Due times and leases are stored, and compared, on the database's clock. Receivers on several
//! machines share one inbox: on their own clocks, one running ahead would take over leases that
//! still hold (two forwards of one event at once), and one running behind would store events
//! that the others see as due only later. A caller's time `t` is stored as `t + offset`, where the
//! offset (the database's clock minus this machine's) is measured at connect and again each
//! minute. A caller that asks "as of a minute from now" still gets that: only the origin moves.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::inbox::sqlite::convert::{from_ms, to_ms};

/// How often the offset is measured again (clocks drift, and NTP steps them).
const REFRESH: Duration = Duration::from_secs(60);

/// The database's current time in ms since the epoch (not the transaction's start).
const NOW: &str = "SELECT (extract(epoch from clock_timestamp()) * 1000)::int8";

pub(crate) struct DbClock {
    /// The database's clock minus this machine's, in ms.
    offset_ms: AtomicI64,
    /// When the offset was last measured.
    measured: Mutex<Instant>,
}

impl DbClock {
    /// A clock with no offset yet: [`refresh`](Self::refresh) it before use.
    pub(crate) fn unmeasured() -> Self {
        Self {
            offset_ms: AtomicI64::new(0),
            measured: Mutex::new(Instant::now()),
        }
    }

    /// Whether the offset is due to be measured again.
    pub(crate) fn stale(&self) -> bool {
        self.measured
            .lock()
            .map_or(true, |at| at.elapsed() >= REFRESH)
    }

    /// Measures the offset again: the database's time against the middle of the round trip.
    pub(crate) async fn refresh(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        let sent = SystemTime::now();
        let started = Instant::now();
        let database: i64 = client.query_one(NOW, &[]).await?.try_get(0)?;
        let middle = crate::inbox::time::after(sent, started.elapsed() / 2);
        self.offset_ms
            .store(database.saturating_sub(to_ms(middle)), Ordering::Relaxed);
        if let Ok(mut at) = self.measured.lock() {
            *at = Instant::now();
        }
        Ok(())
    }

    /// The database's clock minus this machine's, in ms.
    pub(crate) fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// `time` of this machine's clock, on the database's, in ms since the epoch.
    pub(crate) fn to_db(&self, time: SystemTime) -> i64 {
        to_ms(time).saturating_add(self.offset_ms())
    }

    /// A time stored on the database's clock (ms since the epoch), on this machine's.
    pub(crate) fn local_time(&self, ms: i64) -> SystemTime {
        from_ms(ms.saturating_sub(self.offset_ms()))
    }
}
