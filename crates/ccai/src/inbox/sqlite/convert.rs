//! Conversions between Rust values and what the SQLite schema stores: times as integer
//! milliseconds since the epoch, digests as hex, rusqlite errors as [`StoreError`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::ErrorCode;
use sha2::{Digest, Sha256};

use crate::inbox::StoreError;

/// Milliseconds since the epoch (times before it are stored as 0).
pub(crate) fn to_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `time` in milliseconds since the epoch, rounded up: the first stored millisecond at or after
/// `time`. Stored times are whole milliseconds, so a bound with a fraction (`since` or `until`
/// computed from `now()`) compares right only once rounded up: `m >= t` exactly when
/// `m >= ceil(t)`, and `m < t` exactly when `m < ceil(t)`.
pub(crate) fn to_ms_ceil(time: SystemTime) -> i64 {
    let fraction = time
        .duration_since(UNIX_EPOCH)
        .is_ok_and(|d| d.subsec_nanos() % 1_000_000 != 0);
    to_ms(time).saturating_add(i64::from(fraction))
}

/// The time `ms` milliseconds after the epoch (negative values read as the epoch).
pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Whole milliseconds of `duration`, saturating.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

/// A fresh random fencing token (128 bits, hex).
pub(crate) fn new_token() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// Maps a rusqlite error to a [`StoreError`]; `path` names the store in the message.
pub(crate) fn store_error(path: &str, error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StoreError::Locked(path.to_owned())
            }
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                StoreError::Corrupt(format!("{path}: {error}"))
            }
            ErrorCode::DiskFull => {
                StoreError::Unavailable(format!("{path}: the disk is full: free space"))
            }
            // SQLite's own text ("unable to open database file") says neither why nor what to do:
            // most often the folder does not let this process create the file.
            ErrorCode::CannotOpen => StoreError::Unavailable(format!(
                "{path}: cannot open or create the file: check that its folder exists and this process may write there, or pass another path"
            )),
            // Not SQLITE_READONLY_DBMOVED (the file was moved or deleted while open).
            ErrorCode::ReadOnly if failure.extended_code != READONLY_DBMOVED => not_writable(path),
            _ => StoreError::Unavailable(format!("{path}: {error}")),
        },
        _ => StoreError::Unavailable(format!("{path}: {error}")),
    }
}

/// `SQLITE_READONLY_DBMOVED`: the database file was moved or deleted while open.
const READONLY_DBMOVED: std::ffi::c_int = 8 | (4 << 8);

/// The store's file (or its directory, or its `-wal`/`-shm` companions) cannot be written by
/// this process.
pub(crate) fn not_writable(path: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "{path} is read-only for this process (file, directory or filesystem permissions): run as a user who may write the file and its folder (its owner), make them writable, or pass another path"
    ))
}

/// What a write to a store opened read-only answers.
pub(crate) fn opened_read_only(path: &str) -> StoreError {
    StoreError::ReadOnly {
        path: path.to_owned(),
        refused: "it takes no writes".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library user has no `--store`: the advice is the library's own ("another path",
    /// "another store"); `ccai` adds its flag itself.
    #[test]
    fn store_errors_name_no_command_line_flag() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        let path = "/srv/inbox.db";
        let errors = [
            store_error(path, failure(rusqlite::ffi::SQLITE_CANTOPEN)),
            store_error(path, failure(rusqlite::ffi::SQLITE_BUSY)),
            store_error(path, failure(rusqlite::ffi::SQLITE_NOTADB)),
            store_error(path, failure(rusqlite::ffi::SQLITE_FULL)),
            not_writable(path),
            StoreError::NewerSchema {
                path: path.to_owned(),
                found: 99,
                known: 1,
            },
            StoreError::Overloaded,
        ];
        for error in errors {
            let text = error.to_string();
            assert!(!text.contains("--"), "{text}");
            assert!(text.contains(path) || text.contains("overloaded"), "{text}");
        }
        assert!(store_error(path, failure(rusqlite::ffi::SQLITE_CANTOPEN))
            .to_string()
            .ends_with("or pass another path"));
        assert!(StoreError::Locked(path.to_owned())
            .to_string()
            .ends_with("stop it, wait, or open another store"));
    }
}
