//! `ccai events …`: list, show, replay, purge and count what the durable inbox holds.

pub(crate) mod format;
pub(crate) mod lookup;
pub(crate) mod replay;

use crate::stdout::{errln, out, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context, Result};
use ccai::inbox::{
    AttemptInfo, DeliveryState, DeliveryStatus, EventDetail, EventSummary, ListFilter,
    PostgresOptions, Retention, SqliteOptions, SqliteStore, Store, StoreError,
};
use ccai::webhook::WebhookEventType;
use serde_json::{json, Value};

use self::format::{body_for_display, escape_line, human_age, rfc3339, short_time, since_flag};
use self::lookup::get_event;
use crate::cli::{EventFilterArgs, EventsCommand, EventsListArgs, EventsPurgeArgs, StoreArgs};
use crate::output::{event_type_text, short_hash, table};
use crate::store_path::store_path;

/// Runs an events command; `client_id` is `--client-id` as given on the command line (the
/// account whose events to list, show or replay), if it was.
pub(crate) async fn run(command: EventsCommand, client_id: Option<String>) -> Result<ExitCode> {
    if client_id.as_deref() == Some("") {
        bail!("--client-id is empty: give an account's client id (`ccai events list --json` shows each event's clientId)");
    }
    let client_id = client_id.as_deref();
    match command {
        EventsCommand::List(args) => list(args, client_id).await,
        EventsCommand::Show {
            hash,
            store,
            output,
        } => show(store, &hash, client_id, output.json).await,
        EventsCommand::Replay(args) => replay::run(args, client_id).await,
        // Both work on the whole inbox: a --client-id silently ignored would purge, or count,
        // other accounts' events too.
        EventsCommand::Purge(args) => {
            whole_inbox("purge", "purges", client_id)?;
            purge(args).await
        }
        EventsCommand::Stats { store, output } => {
            whole_inbox("stats", "counts", client_id)?;
            stats(store, output.json).await
        }
    }
}

/// Refuses `--client-id` for a command that cannot narrow its work to one account.
fn whole_inbox(command: &str, does: &str, client_id: Option<&str>) -> Result<()> {
    if client_id.is_some() {
        bail!(
            "`ccai events {command}` {does} every account's events in the inbox and takes no --client-id: leave it out"
        );
    }
    Ok(())
}

/// What a command does with the inbox it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reads only (`list`, `show`, `stats`): a SQLite file this process may read but not
    /// write, or a PostgreSQL schema its role may not write, is opened read-only.
    Read,
    /// Changes it (`replay`, `purge`): a SQLite file this process may not write, or a
    /// PostgreSQL schema its role may not write, is refused, saying so.
    Write,
}

/// Opens an existing inbox: the SQLite file, or the PostgreSQL database `--store` names (a
/// missing file is an error: opening would create an empty one).
pub(crate) async fn open_store(args: StoreArgs, access: Access) -> Result<Arc<dyn Store>> {
    Ok(open_store_noting(args, access).await?.0)
}

/// [`open_store`], and for [`Access::Read`] on a store opened read-only, why it could not be
/// opened writable.
pub(crate) async fn open_store_noting(
    args: StoreArgs,
    access: Access,
) -> Result<(Arc<dyn Store>, Option<ccai::inbox::StoreError>)> {
    if let Some(url) = crate::store_open::postgres_url(args.store.as_deref()) {
        // A command only reads and updates: no LISTEN connection, few connections.
        // Nor does it create one: a mistyped schema is an error, not a new empty inbox.
        let options = PostgresOptions::new()
            .destinations([crate::store_open::DESTINATION])
            .pool_size(2)
            .listen(false)
            .create(false);
        return Ok(match access {
            Access::Read => {
                let (store, refused) =
                    crate::store_open::connect_postgres_for_reading(url, options).await?;
                (Arc::new(store), refused)
            }
            Access::Write => (
                Arc::new(crate::store_open::connect_postgres_for_writing(url, options).await?),
                None,
            ),
        });
    }
    let name = args.name();
    let from_env = args.source == Some(clap::parser::ValueSource::EnvVariable);
    let path: PathBuf = store_path(args.store, name)?;
    // Said as `ccai listen` says it: "no inbox there, run `ccai listen` first" sent users to
    // start a receiver when the fix was to name the file in the folder.
    if path.is_dir() {
        bail!(
            "{name} {} is a folder: give the inbox file, such as {}",
            path.display(),
            path.join("inbox.db").display()
        );
    }
    // An empty file is no inbox either: opening it would write a schema into it.
    if !path.metadata().is_ok_and(|m| m.is_file() && m.len() > 0) {
        if from_env {
            bail!(
                "no inbox at {} (from {name}): run `ccai listen` first, or set {name} to the inbox or pass --store",
                path.display()
            );
        }
        bail!(
            "no inbox at {}: run `ccai listen` first or pass --store",
            path.display()
        );
    }
    let (store, read_only) = tokio::task::spawn_blocking(move || open_existing(&path, access))
        .await
        .map_err(|e| anyhow!("cannot open the inbox: {e}"))??;
    Ok((Arc::new(store), read_only))
}

fn open_existing(
    path: &Path,
    access: Access,
) -> Result<(SqliteStore, Option<ccai::inbox::StoreError>)> {
    // One idle reader is plenty for a command. Nor is a SQLite database without an inbox one:
    // it gets no inbox tables.
    let options = SqliteOptions::new().readers(1).create(false);
    match access {
        Access::Read => crate::store_open::open_sqlite_for_reading(path, options),
        Access::Write => Ok((crate::store_open::open_sqlite(path, options)?, None)),
    }
}

/// The filter `--status` and `--type` describe.
pub(crate) fn filter_of(args: &EventFilterArgs) -> Result<ListFilter> {
    let mut filter = ListFilter::new();
    if let Some(status) = &args.status {
        let status: DeliveryStatus = status.parse().map_err(|_| {
            anyhow!("invalid --status {status:?}: use pending, in_progress, delivered or dead")
        })?;
        filter = filter.status(status);
    }
    if let Some(event_type) = &args.event_type {
        // As `ccai listen --events` does: a typo would otherwise just match nothing.
        if !WebhookEventType::from(event_type.as_str()).is_known() {
            let known: Vec<&str> = WebhookEventType::KNOWN
                .iter()
                .map(WebhookEventType::as_str)
                .collect();
            errln!(
                "note: --type {event_type:?} is not a known event type ({}); it will still be matched",
                known.join(", ")
            );
        }
        filter = filter.event_type(event_type.clone());
    }
    Ok(filter)
}

/// Why the store refuses a request, without the "invalid request to the inbox store" every
/// refusal starts with: for a message that names the flag at fault instead.
pub(crate) fn refusal(error: StoreError) -> String {
    match error {
        StoreError::InvalidRequest(why) => why,
        other => other.to_string(),
    }
}

async fn list(args: EventsListArgs, client_id: Option<&str>) -> Result<ExitCode> {
    let mut filter = filter_of(&args.filter)?;
    if let Some(client_id) = client_id {
        filter = filter.client_id(client_id);
    }
    if let Some(since) = &args.since {
        filter = filter.since(since_flag(since, SystemTime::now())?);
    }
    if let Some(text) = args.contains {
        filter = filter.text(text);
        // Said before the inbox is opened, in terms of the flag.
        if let Err(refused) = filter.validate() {
            bail!("invalid --contains: {}", refusal(refused));
        }
    }
    let store = open_store(args.store, Access::Read).await?;
    let (events, more) =
        crate::store_list::newest(store.as_ref(), filter, args.limit as usize).await?;
    // Cut at --limit (50 by default) without a word, a list passed for all there is. After
    // the list, where a reader of the table looks last.
    let note_more = || {
        if more {
            errln!(
                "note: the newest {} shown; more events match: raise --limit, or narrow with --status, --type, --since or --contains",
                args.limit
            );
        }
    };
    if args.json {
        let mut out = String::new();
        for event in &events {
            out.push_str(&summary_json(event).to_string());
            out.push('\n');
        }
        out!("{out}");
        note_more();
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        outln!("no events match");
        return Ok(ExitCode::SUCCESS);
    }
    // Where several accounts share the inbox, the same hash may be listed once per account:
    // the client id tells them apart (and is what `show` and `replay` then need).
    let accounts = events
        .iter()
        .zip(events.iter().skip(1))
        .any(|(a, b)| a.client_id != b.client_id);
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let mut row = vec![
                short_time(e.received_at),
                statuses(&e.deliveries),
                // One odd, long type would otherwise widen every row of the table.
                event_type_text(&e.event_type),
                short_hash(&e.event_hash),
            ];
            if accounts {
                row.push(escape_line(&e.client_id));
            }
            row.extend([
                // Every attempt recorded, as `show` lists them: a replay starts the schedule's
                // count over but keeps the earlier attempts.
                total_attempts(&e.deliveries).to_string(),
                if e.duplicates > 0 {
                    format!("×{}", e.duplicates)
                } else {
                    "-".into()
                },
                if e.conflicts > 0 {
                    format!("! {}", e.conflicts)
                } else {
                    "-".into()
                },
            ]);
            row
        })
        .collect();
    let mut headers = vec!["RECEIVED (UTC)", "STATUS", "TYPE", "HASH"];
    if accounts {
        headers.push("CLIENT ID");
    }
    headers.extend(["ATTEMPTS", "DUPLICATES", "CONFLICTS"]);
    outln!("{}", table(&headers, &rows));
    note_more();
    Ok(ExitCode::SUCCESS)
}

/// The status column: the status alone with one destination, `dest=status,…` with several.
fn statuses(deliveries: &[DeliveryState]) -> String {
    match deliveries {
        [one] => one.status.to_string(),
        many => many
            .iter()
            .map(|d| format!("{}={}", escape_line(&d.destination), d.status))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Every attempt recorded for an event's deliveries (earlier schedules included).
pub(crate) fn total_attempts(deliveries: &[DeliveryState]) -> u32 {
    deliveries
        .iter()
        .map(|d| d.total_attempts)
        .fold(0, u32::saturating_add)
}

/// A delivery's attempts as a person reads them: every one recorded, and those of the current
/// schedule beside when a replay or a requeue started it over.
fn attempts_text(d: &DeliveryState) -> String {
    if d.attempts == d.total_attempts {
        d.total_attempts.to_string()
    } else {
        format!("{} ({} since replayed)", d.total_attempts, d.attempts)
    }
}

fn delivery_json(d: &DeliveryState) -> Value {
    json!({
        "destination": d.destination,
        "status": d.status.as_str(),
        // `attempts` counts the current schedule (a replay starts it at 0); `totalAttempts`
        // every attempt recorded, as `show` lists them.
        "attempts": d.attempts,
        "totalAttempts": d.total_attempts,
        "nextAttemptAt": d.next_attempt_at.map(rfc3339),
        "lastError": d.last_error,
        "deliveredAt": d.delivered_at.map(rfc3339),
    })
}

pub(crate) fn summary_json(e: &EventSummary) -> Value {
    json!({
        "eventHash": e.event_hash,
        "eventType": e.event_type,
        "clientId": e.client_id,
        "receivedAt": rfc3339(e.received_at),
        "bodyLen": e.body_len,
        "duplicates": e.duplicates,
        "conflicts": e.conflicts,
        "deliveries": e.deliveries.iter().map(delivery_json).collect::<Vec<_>>(),
    })
}

/// At most the first 6 characters of a signature (and never more than half of it), then "…".
fn signature_hint(signature: &str) -> String {
    let shown = (signature.chars().count() / 2).min(6);
    let head: String = signature.chars().take(shown).collect();
    format!("{}…", escape_line(&head))
}

fn attempt_json(a: &AttemptInfo) -> Value {
    json!({
        "destination": a.destination,
        "startedAt": rfc3339(a.started_at),
        "durationMs": u64::try_from(a.duration.as_millis()).unwrap_or(u64::MAX),
        "outcome": a.outcome.as_str(),
        "httpStatus": a.http_status,
        "error": a.error,
    })
}

/// A filter matching this event alone, even where another account stored the same hash.
pub(crate) fn only(summary: &EventSummary) -> ListFilter {
    ListFilter::new()
        .client_id(summary.client_id.clone())
        .event_hash(summary.event_hash.clone())
}

/// `ccai events show --json`'s object: the summary, the body as text and every attempt (the
/// signature only as a hint).
pub(crate) fn detail_json(event: &EventDetail) -> Value {
    let body = event
        .body
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let mut value = summary_json(&event.summary);
    if let Some(object) = value.as_object_mut() {
        object.insert("contentType".into(), json!(event.content_type));
        object.insert(
            "signature".into(),
            json!(event.signature.as_deref().map(signature_hint)),
        );
        object.insert("bodySha256".into(), json!(event.body_sha256));
        object.insert(
            "lastConflictSha256".into(),
            json!(event.last_conflict_sha256),
        );
        object.insert(
            "bodyUtf8".into(),
            json!(event.body.as_ref().map(|b| std::str::from_utf8(b).is_ok())),
        );
        object.insert("body".into(), json!(body));
        object.insert(
            "attempts".into(),
            Value::Array(event.attempts.iter().map(attempt_json).collect()),
        );
    }
    value
}

async fn show(
    store: StoreArgs,
    hash: &str,
    client_id: Option<&str>,
    json_output: bool,
) -> Result<ExitCode> {
    let store = open_store(store, Access::Read).await?;
    let event = get_event(store.as_ref(), hash, client_id).await?;
    let s = &event.summary;
    if json_output {
        outln!("{}", detail_json(&event));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let mut field = |label: &str, value: String| {
        out.push_str(&format!("{label:<13} {value}\n"));
    };
    field("type", escape_line(&s.event_type));
    field("hash", escape_line(&s.event_hash));
    field("client id", escape_line(&s.client_id));
    field("received", rfc3339(s.received_at));
    field(
        "content type",
        event
            .content_type
            .as_deref()
            .map_or("-".into(), escape_line),
    );
    field(
        "signature",
        event
            .signature
            .as_deref()
            .map_or("-".into(), signature_hint),
    );
    field("duplicates", s.duplicates.to_string());
    field(
        "conflicts",
        match (&event.last_conflict_sha256, s.conflicts) {
            (Some(digest), n) if n > 0 => format!(
                "{n} (different bodies with this hash; the first is kept; last one's sha256 {})",
                escape_line(digest)
            ),
            (_, n) => n.to_string(),
        },
    );
    field("body sha256", escape_line(&event.body_sha256));
    out.push_str("\ndeliveries:\n");
    let rows: Vec<Vec<String>> = s
        .deliveries
        .iter()
        .map(|d| {
            vec![
                escape_line(&d.destination),
                d.status.to_string(),
                attempts_text(d),
                match (d.next_attempt_at, d.delivered_at) {
                    (Some(next), _) => format!("next attempt {}", rfc3339(next)),
                    (None, Some(at)) => format!("delivered {}", rfc3339(at)),
                    _ => "-".into(),
                },
                d.last_error.as_deref().map_or("-".into(), escape_line),
            ]
        })
        .collect();
    out.push_str(&indent(&table(
        &["DESTINATION", "STATUS", "ATTEMPTS", "WHEN", "LAST ERROR"],
        &rows,
    )));
    out.push_str("\nattempts:\n");
    if event.attempts.is_empty() {
        out.push_str("  none yet\n");
    } else {
        let rows: Vec<Vec<String>> = event
            .attempts
            .iter()
            .map(|a| {
                vec![
                    rfc3339(a.started_at),
                    escape_line(&a.destination),
                    format!("{}ms", a.duration.as_millis()),
                    a.outcome.as_str().to_owned(),
                    a.http_status.map_or("-".into(), |s| s.to_string()),
                    a.error.as_deref().map_or("-".into(), escape_line),
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &[
                "STARTED (UTC)",
                "DESTINATION",
                "DURATION",
                "OUTCOME",
                "HTTP",
                "ERROR",
            ],
            &rows,
        )));
    }
    match &event.body {
        Some(body) => {
            out.push_str(&format!("\nbody ({} bytes):\n", body.len()));
            out.push_str(&body_for_display(body));
            out.push('\n');
        }
        None => out.push_str("\nbody: purged\n"),
    }
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn indent(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

async fn purge(args: EventsPurgeArgs) -> Result<ExitCode> {
    let bodies = crate::duration_flag::value("--older-than", &args.older_than)?;
    let rows = crate::duration_flag::value("--keep-hashes-for", &args.keep_hashes_for)?;
    // Deleting an event's row deletes its body too: a shorter row retention would delete what
    // --older-than says to keep.
    if rows < bodies {
        bail!(
            "--keep-hashes-for {} is shorter than --older-than {}: an event's row goes with its body, so keep hashes at least as long",
            args.keep_hashes_for.trim(),
            args.older_than.trim()
        );
    }
    let store = open_store(args.store, Access::Write).await?;
    let report = store
        .purge(Retention::new(bodies, rows), SystemTime::now())
        .await
        .context("purge failed")?;
    if args.json {
        outln!(
            "{}",
            json!({
                "bodiesPurged": report.bodies_purged,
                "eventsDeleted": report.events_deleted,
            })
        );
    } else {
        outln!(
            "purged {} bodies (finished events older than {}); deleted {} events (finished, older than {}); pending work is never purged",
            report.bodies_purged, args.older_than, report.events_deleted, args.keep_hashes_for
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn stats(store: StoreArgs, json_output: bool) -> Result<ExitCode> {
    let store = open_store(store, Access::Read).await?;
    let stats = store.stats(SystemTime::now()).await?;
    if json_output {
        let deliveries: serde_json::Map<String, Value> = DeliveryStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), json!(stats.count(*s))))
            .collect();
        outln!(
            "{}",
            json!({
                "events": stats.events,
                "deliveries": deliveries,
                "duplicates": stats.duplicates,
                "conflicts": stats.conflicts,
                "oldestPendingAgeSecs": stats.oldest_pending_age.map(|a| a.as_secs()),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<Vec<String>> = vec![vec!["events".into(), stats.events.to_string()]];
    for status in DeliveryStatus::ALL {
        rows.push(vec![status.to_string(), stats.count(status).to_string()]);
    }
    rows.push(vec!["duplicates".into(), stats.duplicates.to_string()]);
    rows.push(vec!["conflicts".into(), stats.conflicts.to_string()]);
    rows.push(vec![
        "oldest pending".into(),
        stats
            .oldest_pending_age
            .map_or("-".into(), |age| format!("{} ago", human_age(age))),
    ]);
    let mut out = String::new();
    for row in rows {
        out.push_str(&format!("{:<15} {}\n", row[0], row[1]));
    }
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::signature_hint;

    #[test]
    fn signatures_are_never_shown_whole() {
        assert_eq!(
            signature_hint("rHb5ofXl2Tk0V2Ssn4ZoJxlcQe3xY6l7h6oS8rY0uSQ="),
            "rHb5of…"
        );
        assert_eq!(signature_hint("abcd"), "ab…");
        assert_eq!(signature_hint("a"), "…");
    }
}
