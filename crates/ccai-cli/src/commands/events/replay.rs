//! `ccai events replay`: make stored events due again, or send them now to a URL.

use std::process::ExitCode;

use anyhow::{bail, Result};
use ccai::inbox::{DeliveryStatus, EventDetail, ListFilter, ReplayTarget, Store};
use serde_json::json;

use super::format::escape_line;
use super::{collect, filter_of, get_event, open_store};
use crate::cli::EventsReplayArgs;
use crate::http;
use crate::output::short_hash;

/// The most events one bulk `--to` replay sends.
const BULK_TO_LIMIT: usize = 10_000;

pub(crate) async fn run(args: EventsReplayArgs) -> Result<ExitCode> {
    let filter = filter_of(&args.filter)?;
    if args.hashes.is_empty() && filter.is_empty() {
        bail!(
            "nothing to replay: give event hashes, or a filter for a bulk replay (--status and/or --type, e.g. `ccai events replay --status dead`)"
        );
    }
    let to = match &args.to {
        Some(url) => Some(http::url_flag(
            "--to",
            url,
            "http://localhost:3000/webhook/ccai",
        )?),
        None => None,
    };
    let store = open_store(args.store).await?;
    // Every hash must be known before anything changes or is sent.
    let mut events: Vec<EventDetail> = Vec::new();
    for hash in &args.hashes {
        events.push(get_event(store.as_ref(), hash).await?);
    }
    match to {
        Some(url) => {
            if args.hashes.is_empty() {
                for summary in collect(store.as_ref(), filter, BULK_TO_LIMIT).await? {
                    if let Some(event) = store.get(&summary.event_hash).await? {
                        events.push(event);
                    }
                }
            }
            send_all(&events, url, args.json).await
        }
        None => mark_due(store.as_ref(), &events, filter, args.json).await,
    }
}

/// Makes the events due again in the store.
async fn mark_due(
    store: &dyn Store,
    events: &[EventDetail],
    filter: ListFilter,
    json_output: bool,
) -> Result<ExitCode> {
    let mut total = 0;
    let mut purged = 0;
    if events.is_empty() {
        // Dead deliveries get their retry schedule started over (a plain replay keeps the attempt
        // count, so a dead delivery would be dead again after one failure).
        total = if filter.status == Some(DeliveryStatus::Dead) {
            store.requeue_dead(filter).await?
        } else {
            store.replay(ReplayTarget::Filter(filter)).await?
        };
    } else {
        for event in events {
            // The full hash, as a prefix was resolved to.
            let hash = &event.summary.event_hash;
            let n = store.replay(ReplayTarget::Hash(hash.clone())).await?;
            total += n;
            // Nothing is sent without its body: a purged event cannot be replayed.
            let body_purged = n == 0 && event.body.is_none();
            purged += usize::from(body_purged);
            if json_output {
                println!(
                    "{}",
                    json!({"eventHash": hash, "deliveriesDue": n, "bodyPurged": body_purged})
                );
            } else if n == 0 {
                let in_progress = event
                    .summary
                    .deliveries
                    .iter()
                    .any(|d| d.status == DeliveryStatus::InProgress);
                let why = if body_purged {
                    " (its body was purged, so there is nothing to send)"
                } else if in_progress {
                    " (its delivery is in progress)"
                } else {
                    ""
                };
                println!("{}: nothing made due{why}", short_hash(&escape_line(hash)));
            } else {
                println!(
                    "{}: {} due again",
                    short_hash(&escape_line(hash)),
                    deliveries(n)
                );
            }
        }
    }
    if json_output {
        if events.is_empty() {
            println!("{}", json!({"deliveriesDue": total}));
        }
    } else {
        println!(
            "{} due again: the next `ccai listen --forward-to URL` on this store delivers {}",
            deliveries(total),
            if total == 1 { "it" } else { "them" }
        );
    }
    if purged > 0 {
        eprintln!(
            "error: {purged} of the events named could not be replayed: their bodies were purged"
        );
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends each event now, as it was received; records nothing in the store.
async fn send_all(
    events: &[EventDetail],
    url: reqwest::Url,
    json_output: bool,
) -> Result<ExitCode> {
    let client = http::client()?;
    let mut failed = 0usize;
    for event in events {
        let hash = &event.summary.event_hash;
        let outcome = send(&client, &url, event).await;
        let ok = matches!(outcome, Ok(status) if (200..300).contains(&status));
        if !ok {
            failed += 1;
        }
        if json_output {
            let (status, error) = match &outcome {
                Ok(status) => (Some(*status), None),
                Err(e) => (None, Some(e.clone())),
            };
            println!(
                "{}",
                json!({"eventHash": hash, "ok": ok, "httpStatus": status, "error": error})
            );
        } else {
            let shown = match &outcome {
                Ok(status) => format!("HTTP {status}"),
                Err(e) => format!("failed: {e}"),
            };
            println!(
                "{}  {}  {shown}",
                short_hash(&escape_line(hash)),
                escape_line(&event.summary.event_type)
            );
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} replays to {} failed",
            events.len(),
            http::shown(&url)
        );
    }
    if !json_output {
        println!("sent {} events to {}", events.len(), http::shown(&url));
    }
    Ok(ExitCode::SUCCESS)
}

/// One POST of the stored body with its original signature and content type.
async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    event: &EventDetail,
) -> Result<u16, String> {
    let Some(body) = &event.body else {
        return Err("its body was purged".into());
    };
    let mut request = client.post(url.clone()).body(body.clone());
    if let Some(signature) = &event.signature {
        request = request.header("X-CCAI-Signature", signature);
    }
    if let Some(content_type) = &event.content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    match request.send().await {
        Ok(response) => Ok(response.status().as_u16()),
        // The error without its URL, whose query may carry a token.
        Err(e) => Err(escape_line(&crate::http::failure(e))),
    }
}

/// `1 delivery`, `2 deliveries`.
fn deliveries(n: u64) -> String {
    if n == 1 {
        "1 delivery".into()
    } else {
        format!("{n} deliveries")
    }
}
