//! [`PostgresStore::check_writable`](super::PostgresStore::check_writable)'s probe: one statement
//! that reads and writes, changing nothing and locking no row, every table the store's writes
//! do, with every privilege they need, and reads the schema version; sent as a simple query,
//! one round trip.

use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

use super::connect::write_error;
use super::{schema, Shared};
use crate::inbox::StoreError;

/// How a table is written.
#[derive(Clone, Copy)]
enum Privilege {
    /// Read by the writes (their conditions, `RETURNING`, a claim's rows).
    Select,
    Insert,
    Update,
    Delete,
}

impl Privilege {
    fn name(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }
}

/// Each privilege the store's writes need, on the columns they read or write: the inserts
/// (events and their deliveries, a duplicate's counters), the dispatcher's claims (`FOR
/// UPDATE`, a lapsed lease's attempt) and outcomes, replays and requeues, and purges (bodies,
/// then events: their deliveries and attempts go by `ON DELETE CASCADE`, which runs as the
/// tables' owner). The version table is only read, as migrations alone write it; the attempts
/// are never read by a write; sequences need no grant, the ids being identity columns.
const NEEDED: &[(Privilege, &str, &[&str])] = &[
    (
        Privilege::Select,
        "events",
        &[
            "id",
            "client_id",
            "event_hash",
            "event_type",
            "body",
            "body_sha256",
            "signature",
            "content_type",
            "received_at",
            "duplicates",
            "conflicts",
            "last_conflict_sha256",
            "method",
            // A system column: an insert tells a new row from a duplicate by it.
            "xmax",
        ],
    ),
    (
        Privilege::Insert,
        "events",
        &[
            "client_id",
            "event_hash",
            "event_type",
            "body",
            "body_len",
            "body_sha256",
            "signature",
            "content_type",
            "received_at",
            "method",
        ],
    ),
    (
        Privilege::Update,
        "events",
        &["duplicates", "conflicts", "last_conflict_sha256", "body"],
    ),
    (Privilege::Delete, "events", &[]),
    (
        Privilege::Select,
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
        ],
    ),
    (
        Privilege::Insert,
        "deliveries",
        &[
            "event_id",
            "destination",
            "status",
            "attempts",
            "next_attempt_at",
        ],
    ),
    (
        Privilege::Update,
        "deliveries",
        &[
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
        Privilege::Insert,
        "attempts",
        &[
            "delivery_id",
            "started_at",
            "duration_ms",
            "outcome",
            "http_status",
            "error",
        ],
    ),
];

/// The probe on the schema `ident` (quoted): a CTE per entry of [`NEEDED`], each matching no
/// row (`WHERE false`: the plan is a one-time filter, nothing is scanned or locked; each table
/// takes the lock any insert takes), and the schema's version. PostgreSQL checks the privileges
/// of every CTE before it runs any, and of a data-modifying one whether the query reads it or
/// not (a reading one is read, so that it is checked). A write reads nothing: an insert of
/// `NULL`s, an update to `DEFAULT` (a column's own value would need `SELECT` on it, which the
/// attempts, never read by a write, need not grant).
pub(super) fn statement(ident: &str) -> String {
    let mut reads: Vec<String> = Vec::new();
    let ctes: Vec<String> = NEEDED
        .iter()
        .enumerate()
        .map(|(i, (privilege, table, columns))| {
            let table = format!("{ident}.{table}");
            let cte = match privilege {
                Privilege::Select => {
                    reads.push(format!("NOT EXISTS (SELECT FROM w{i})"));
                    format!("SELECT {} FROM {table} WHERE false", columns.join(", "))
                }
                Privilege::Insert => {
                    let nulls = vec!["NULL"; columns.len()].join(", ");
                    format!(
                        "INSERT INTO {table} ({}) SELECT {nulls} WHERE false",
                        columns.join(", ")
                    )
                }
                Privilege::Update => {
                    let set: Vec<String> =
                        columns.iter().map(|c| format!("{c} = DEFAULT")).collect();
                    format!("UPDATE {table} SET {} WHERE false", set.join(", "))
                }
                Privilege::Delete => format!("DELETE FROM {table} WHERE false"),
            };
            format!("w{i} AS ({cte})")
        })
        .collect();
    format!(
        "WITH {} SELECT max(version) FROM {ident}.inbox_schema WHERE {}",
        ctes.join(", "),
        reads.join(" AND ")
    )
}

/// Runs the probe: [`StoreError::NotWritable`] where the server refuses it, naming what the role
/// lacks; an error too if the schema is no longer at this build's version.
pub(super) async fn check_writable(
    client: &tokio_postgres::Client,
    shared: &Shared,
) -> Result<(), StoreError> {
    let messages = match client.simple_query(&shared.writable_probe).await {
        Ok(messages) => messages,
        Err(e) => return Err(refused(client, shared, &e).await),
    };
    let version = messages.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => Some(row.get(0)),
        _ => None,
    });
    let found = match version {
        Some(Some(text)) => Some(text.parse::<i64>().map_err(|_| {
            StoreError::Corrupt(format!(
                "{}: the schema version is not a number",
                shared.shown
            ))
        })?),
        _ => None,
    };
    schema::current(found, &shared.shown)
}

/// The error for a refused probe: for want of a privilege, the server names the first table
/// only, so what the role lacks is read from the catalog and added (every privilege missing).
/// Refused otherwise by a schema no longer at this build's version, that is what it says.
async fn refused(
    client: &tokio_postgres::Client,
    shared: &Shared,
    error: &tokio_postgres::Error,
) -> StoreError {
    let mut refused = write_error(&shared.shown, error);
    if error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
        if let StoreError::NotWritable { reason, .. } = &mut refused {
            if let Some(missing) = missing(client, shared).await {
                reason.push_str(&format!("; this role lacks {missing}"));
            }
        }
    } else if error.as_db_error().is_some() && !matches!(refused, StoreError::NotWritable { .. }) {
        // A newer ccai's migration may have renamed or dropped a column the probe names: "a
        // newer ccai migrated the store", not "column … does not exist", as the probe said
        // when it named no column.
        let sql = format!("SELECT max(version) FROM {}.inbox_schema", shared.ident);
        if let Ok(found) = client
            .query_one(&sql, &[])
            .await
            .and_then(|row| row.try_get::<_, Option<i64>>(0))
        {
            if let Err(changed) = schema::current(found, &shared.shown) {
                return changed;
            }
        }
    }
    refused
}

/// What the role lacks of `USAGE` on the schema and the privileges of [`NEEDED`], as
/// `DELETE on events, INSERT on attempts (http_status)` (the columns named where the role may
/// use some of them); `None` where the catalog cannot be read, or shows every one granted.
async fn missing(client: &tokio_postgres::Client, shared: &Shared) -> Option<String> {
    let rows: Vec<String> = NEEDED
        .iter()
        .enumerate()
        .map(|(i, (privilege, table, columns))| {
            let columns: Vec<String> = columns.iter().map(|c| format!("'{c}'")).collect();
            format!(
                "({i}, '{table}', '{}', ARRAY[{}]::text[])",
                privilege.name(),
                columns.join(", ")
            )
        })
        .collect();
    // By the tables' oids: a name would need `USAGE` on the schema to be looked up. A column
    // privilege is also granted by the table's.
    let sql = format!(
        "SELECT CASE WHEN NOT pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                     THEN 'USAGE on schema ' || n.nspname
                     ELSE (SELECT string_agg(p.privilege || ' on ' || c.relname
                                 || CASE WHEN cardinality(l.columns) < cardinality(p.columns)
                                         THEN ' (' || array_to_string(l.columns, ', ') || ')'
                                         ELSE '' END,
                                 ', ' ORDER BY p.i)
                             FROM (VALUES {}) AS p (i, tab, privilege, columns)
                             JOIN pg_catalog.pg_class c
                               ON c.relnamespace = n.oid AND c.relname = p.tab
                             CROSS JOIN LATERAL (
                                 SELECT coalesce(array_agg(col ORDER BY k), '{{}}') AS columns
                                   FROM unnest(p.columns) WITH ORDINALITY AS u (col, k)
                                  WHERE NOT pg_catalog.has_column_privilege(c.oid, col, p.privilege)
                             ) l
                            WHERE CASE WHEN cardinality(p.columns) = 0
                                       THEN NOT pg_catalog.has_table_privilege(c.oid, p.privilege)
                                       ELSE cardinality(l.columns) > 0 END)
                END
           FROM pg_catalog.pg_namespace n WHERE n.nspname = $1",
        rows.join(", ")
    );
    // A checked plain identifier between double quotes: its name without them.
    let name = shared.ident.trim_matches('"');
    let row = client.query_opt(&sql, &[&name]).await.ok()??;
    row.try_get::<_, Option<String>>(0).ok()?
}
