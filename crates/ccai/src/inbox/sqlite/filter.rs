//! Turns a [`ListFilter`] into a SQL condition on `events e` and its parameters.

use rusqlite::types::Value;

use super::convert::to_ms_ceil;
use crate::inbox::ListFilter;

/// A `WHERE` condition (always valid SQL, `1` when empty) and its positional parameters.
pub(crate) struct Condition {
    pub(crate) sql: String,
    pub(crate) params: Vec<Value>,
}

impl Condition {
    /// The condition selecting the events (alias `e`) with these ids: first in a conjunction, so
    /// that SQLite finds them by id rather than by scanning.
    pub(crate) fn ids(ids: &[i64]) -> Self {
        let marks = vec!["?"; ids.len()].join(", ");
        Self {
            sql: format!("e.id IN ({marks})"),
            params: ids.iter().map(|id| Value::Integer(*id)).collect(),
        }
    }

    /// Both conditions.
    pub(crate) fn and(mut self, other: Self) -> Self {
        self.sql = format!("{} AND ({})", self.sql, other.sql);
        self.params.extend(other.params);
        self
    }

    /// The condition selecting the events (alias `e`) that `filter` matches.
    pub(crate) fn events(filter: &ListFilter) -> Self {
        let mut parts: Vec<&str> = Vec::new();
        let mut params = Vec::new();
        if let Some(status) = filter.status {
            parts.push(
                "EXISTS (SELECT 1 FROM deliveries fd WHERE fd.event_id = e.id AND fd.status = ?)",
            );
            params.push(Value::Text(status.as_str().to_owned()));
        }
        if let Some(event_type) = &filter.event_type {
            parts.push("e.event_type = ?");
            params.push(Value::Text(event_type.clone()));
        }
        if let Some(since) = filter.since {
            parts.push("e.received_at >= ?");
            params.push(Value::Integer(to_ms_ceil(since)));
        }
        if let Some(until) = filter.until {
            parts.push("e.received_at < ?");
            params.push(Value::Integer(to_ms_ceil(until)));
        }
        // An empty text matches every body, so it is no condition (`ListFilter::is_empty`).
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            // Both operands blobs: a byte search in the body (NULL, i.e. purged, never matches).
            parts.push("instr(e.body, ?) > 0");
            params.push(Value::Blob(text.as_bytes().to_vec()));
        }
        if let Some(hash) = &filter.event_hash {
            // Through the eventHash index, as `get` finds an event.
            parts.push(super::keys::BY_HASH_SQL);
            params.extend(super::keys::by_hash_params(hash));
        }
        // Empty, it matches every hash, so it is no condition (`ListFilter::is_empty`).
        if let Some(prefix) = filter.hash_prefix.as_deref().filter(|p| !p.is_empty()) {
            // Blobs on both sides: `substr` and `length` count bytes, and no character of the
            // prefix is a wildcard as in LIKE. No index serves it: a scan, stopping at the page's
            // limit.
            parts.push("substr(CAST(e.event_hash AS BLOB), 1, length(?)) = ?");
            let bytes = prefix.as_bytes().to_vec();
            params.push(Value::Blob(bytes.clone()));
            params.push(Value::Blob(bytes));
        }
        if let Some(client_id) = &filter.client_id {
            parts.push("e.client_id = ?");
            params.push(Value::Text(client_id.clone()));
        }
        let sql = if parts.is_empty() {
            "1".to_owned()
        } else {
            parts.join(" AND ")
        };
        Self { sql, params }
    }
}
