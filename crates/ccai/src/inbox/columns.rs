//! The columns each table of the current schema has, and the check that a store still has them:
//! a column dropped outside ccai (`ALTER TABLE … DROP COLUMN`, an old or hand-edited file) is
//! refused on open, naming it, rather than failing every later command with SQL's "no such
//! column".

use super::StoreError;

/// The tables both backends have, with every column the code reads or writes.
pub(crate) const SHARED_TABLES: &[(&str, &[&str])] = &[
    (
        "events",
        &[
            "id",
            "client_id",
            "event_hash",
            "event_type",
            "body",
            "body_len",
            "body_sha256",
            "signature",
            "content_type",
            "received_at",
            "duplicates",
            "conflicts",
            "last_conflict_sha256",
            "method",
        ],
    ),
    (
        "deliveries",
        &[
            "id",
            "event_id",
            "destination",
            "status",
            "attempts",
            "next_attempt_at",
            "lease_owner",
            "lease_token",
            "lease_until",
            "last_error",
            "delivered_at",
        ],
    ),
    (
        "attempts",
        &[
            "id",
            "delivery_id",
            "started_at",
            "duration_ms",
            "outcome",
            "http_status",
            "error",
        ],
    ),
];

/// Fails with [`StoreError::MissingColumns`] if `found`, the columns `table` has, lacks any of
/// `expected`, and with [`StoreError::MissingTable`] if it has none (the table is not there).
pub(crate) fn check_table(
    location: &str,
    table: &str,
    expected: &[&str],
    found: &[String],
) -> Result<(), StoreError> {
    let missing: Vec<String> = expected
        .iter()
        .filter(|column| !found.iter().any(|f| f == *column))
        .map(|column| (*column).to_owned())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if found.is_empty() {
        return Err(StoreError::MissingTable {
            path: location.to_owned(),
            table: table.to_owned(),
        });
    }
    Err(StoreError::MissingColumns {
        path: location.to_owned(),
        table: table.to_owned(),
        columns: missing,
    })
}
