//! Turns a [`ListFilter`] into a SQL condition on `events e` with numbered parameters.

use tokio_postgres::types::ToSql;

use crate::inbox::sqlite::convert::to_ms_ceil;
use crate::inbox::ListFilter;

/// A parameter of a statement built at run time.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// A `WHERE` condition (always valid SQL, `TRUE` when empty) and its parameters.
pub(crate) struct Condition {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
}

impl Condition {
    /// The condition selecting the events (alias `e`) that `filter` matches, its parameters
    /// numbered after `params_before`; `ident` is the quoted schema.
    pub(crate) fn events(filter: &ListFilter, ident: &str, params_before: usize) -> Self {
        let mut parts: Vec<String> = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let next = |params: &mut Vec<Param>, value: Param| {
            params.push(value);
            format!("${}", params_before + params.len())
        };
        if let Some(status) = filter.status {
            let p = next(&mut params, Box::new(status.as_str().to_owned()));
            parts.push(format!(
                "EXISTS (SELECT 1 FROM {ident}.deliveries fd WHERE fd.event_id = e.id AND fd.status = {p})"
            ));
        }
        // No stored text holds a NUL (PostgreSQL text cannot), and PostgreSQL refuses one as a
        // parameter: an error that would read as the database being unavailable. So a NUL
        // matches nothing.
        let mut text_equals = |parts: &mut Vec<String>, column: &str, value: &str| {
            if value.contains('\0') {
                parts.push("FALSE".to_owned());
            } else {
                let p = next(&mut params, Box::new(value.to_owned()));
                parts.push(format!("e.{column} = {p}"));
            }
        };
        if let Some(event_type) = &filter.event_type {
            text_equals(&mut parts, "event_type", event_type);
        }
        if let Some(hash) = &filter.event_hash {
            text_equals(&mut parts, "event_hash", hash);
        }
        if let Some(client_id) = &filter.client_id {
            text_equals(&mut parts, "client_id", client_id);
        }
        // Empty, it matches every hash, so it is no condition (`ListFilter::is_empty`).
        if let Some(prefix) = filter.hash_prefix.as_deref().filter(|p| !p.is_empty()) {
            if prefix.contains('\0') {
                // As in `text_equals`: no stored hash holds a NUL.
                parts.push("FALSE".to_owned());
            } else {
                // Bytes on both sides: byte for byte whatever the collation, and no character
                // of the prefix is a wildcard as in LIKE.
                let p = next(&mut params, Box::new(prefix.as_bytes().to_vec()));
                parts.push(format!(
                    "substring(convert_to(e.event_hash, 'UTF8') from 1 for length({p}::bytea)) = {p}::bytea"
                ));
            }
        }
        if let Some(since) = filter.since {
            let p = next(&mut params, Box::new(to_ms_ceil(since)));
            parts.push(format!("e.received_at >= {p}"));
        }
        if let Some(until) = filter.until {
            let p = next(&mut params, Box::new(to_ms_ceil(until)));
            parts.push(format!("e.received_at < {p}"));
        }
        // An empty text matches every body, so it is no condition (`ListFilter::is_empty`).
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            // A byte search in the body; NULL (purged) never matches.
            let p = next(&mut params, Box::new(text.as_bytes().to_vec()));
            parts.push(format!("position({p}::bytea in e.body) > 0"));
        }
        let sql = if parts.is_empty() {
            "TRUE".to_owned()
        } else {
            parts.join(" AND ")
        };
        Self { sql, params }
    }
}

/// The parameters as tokio-postgres takes them.
pub(crate) fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}
