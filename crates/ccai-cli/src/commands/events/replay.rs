//! `ccai events replay`: make stored events due again, or send them now to a URL.

use crate::stdout::{errln, outln};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Result};
use ccai::inbox::{
    DeliveryStatus, EventDetail, ListFilter, ListRequest, ReplayReport, ReplayTarget, Store,
    StoreError,
};
use serde_json::json;

use super::format::escape_line;
use super::{filter_of, get_event, only, open_store, Access};
use crate::cli::EventsReplayArgs;
use crate::http;
use crate::output::{event_type_text, short_hash};

/// Replays the events named, or those matching the filter; `client_id` picks the account whose
/// events (a hash may be stored for several accounts) and narrows a bulk replay to it.
pub(crate) async fn run(args: EventsReplayArgs, client_id: Option<&str>) -> Result<ExitCode> {
    let mut filter = filter_of(&args.filter)?;
    // Checked before the client id joins the filter: an account's every event is no bulk
    // replay anyone means by naming the account alone.
    if args.hashes.is_empty() && !names_a_bulk(&filter) {
        bail!(
            "nothing to replay: give event hashes, or a filter for a bulk replay (--status and/or --type, e.g. `ccai events replay --status dead`)"
        );
    }
    if let Some(client_id) = client_id {
        filter = filter.client_id(client_id);
    }
    let to = match &args.to {
        Some(url) => Some(http::url_flag(
            "--to",
            url,
            "http://localhost:3000/webhook/ccai",
        )?),
        None => None,
    };
    let store = open_store(args.store, Access::Write).await?;
    // Every hash must be known before anything changes or is sent.
    let mut events: Vec<EventDetail> = Vec::new();
    for hash in &args.hashes {
        let event = get_event(store.as_ref(), hash, client_id).await?;
        // Once each: an event named twice (whole and as the lists show it, say) would be sent
        // twice with --to, and counted twice either way.
        let named = |e: &EventDetail| {
            e.summary.client_id == event.summary.client_id
                && e.summary.event_hash == event.summary.event_hash
        };
        if !events.iter().any(named) {
            events.push(event);
        }
    }
    match to {
        Some(url) => {
            let mut sender = Sender::new(url, args.json)?;
            let bulk = args.hashes.is_empty();
            if bulk {
                send_matching(store.as_ref(), filter, &mut sender).await?;
            } else {
                for (i, event) in events.iter().enumerate() {
                    sender.send(event).await;
                    if sender.gave_up() {
                        sender.not_tried = events.len() - i - 1;
                        break;
                    }
                }
            }
            sender.finish(bulk)
        }
        None => mark_due(store.as_ref(), &events, filter, args.json).await,
    }
}

/// Whether `filter` says which events a bulk replay is for: a status or a type (the account,
/// a time or a text only narrow it). `ccai events replay` and the view's bulk replay require one.
pub(crate) fn names_a_bulk(filter: &ListFilter) -> bool {
    filter.status.is_some() || filter.event_type.is_some()
}

/// Makes every event matching `filter` due again, as `ccai events replay --status/--type` and the
/// view's bulk replay do; how many deliveries were made due, and how many events matched but
/// were left as they were for their purged body.
pub(crate) async fn replay_matching(
    store: &dyn Store,
    filter: ListFilter,
) -> Result<ReplayReport, StoreError> {
    // Dead deliveries get their retry schedule started over (a plain replay keeps the attempt
    // count, so a dead delivery would be dead again after one failure).
    if filter.status == Some(DeliveryStatus::Dead) {
        store.requeue_dead(filter).await
    } else {
        store.replay(ReplayTarget::Filter(filter)).await
    }
}

/// Sends every event matching `filter` when the replay began, in the order they were received,
/// a page at a time (a replay of a million events holds one page, not a million bodies). Once
/// the sender gives up on the target, the rest are only counted.
async fn send_matching(
    store: &dyn Store,
    mut filter: ListFilter,
    sender: &mut Sender,
) -> Result<()> {
    // Events received from now on are not part of this replay: with them, a receiver storing
    // faster than the replay sends would keep it going for ever.
    let began = SystemTime::now();
    if filter.until.is_none_or(|until| until > began) {
        filter.until = Some(began);
    }
    let mut after = None;
    let mut gave_up = false;
    loop {
        let request = ListRequest::new(filter.clone(), ListRequest::MAX_LIMIT)
            .oldest_first()
            .after(after);
        let page = store.list(request).await?;
        for summary in &page.events {
            if gave_up {
                // Counted from the list, as the summary says whether the body is there: the
                // message says how many a run once the target is back would send.
                if summary.body_len.is_some() {
                    sender.not_tried += 1;
                } else {
                    sender.body_purged += 1;
                }
                continue;
            }
            // The account's own event: another account may have used the same hash.
            let Some(event) = store
                .get_for(&summary.client_id, &summary.event_hash)
                .await?
            else {
                continue;
            };
            // Counted, not failed, as a bulk replay without --to does: a purge keeps finished
            // events' rows long after their bodies, and a scheduled replay must not fail over
            // events no one can replay.
            if event.body.is_none() {
                sender.body_purged += 1;
            } else {
                sender.send(&event).await;
                gave_up = sender.gave_up();
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// Makes the events due again in the store. An event whose body was purged has nothing to
/// send and is not replayed: named, that is an error (exit 2); matched by a filter, it is
/// counted and told, an error only when nothing else was made due.
async fn mark_due(
    store: &dyn Store,
    events: &[EventDetail],
    filter: ListFilter,
    json_output: bool,
) -> Result<ExitCode> {
    let mut total = 0;
    let mut purged = 0;
    if events.is_empty() {
        let report = replay_matching(store, filter).await?;
        total = report.due;
        purged = report.purged;
    } else {
        for event in events {
            // The full hash, as a prefix was resolved to.
            let hash = &event.summary.event_hash;
            let report = store
                .replay(ReplayTarget::Filter(only(&event.summary)))
                .await?;
            let n = report.due;
            total += n;
            // Nothing is sent without its body: a purged event cannot be replayed.
            let body_purged = n == 0 && (report.purged > 0 || event.body.is_none());
            purged += u64::from(body_purged);
            if json_output {
                outln!(
                    "{}",
                    json!({
                        "eventHash": hash,
                        "clientId": event.summary.client_id,
                        "deliveriesDue": n,
                        "bodyPurged": body_purged,
                    })
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
                outln!("{}: nothing made due{why}", short_hash(hash));
            } else {
                outln!("{}: {} due again", short_hash(hash), deliveries(n));
            }
        }
    }
    if json_output {
        if events.is_empty() {
            outln!(
                "{}",
                json!({"deliveriesDue": total, "bodyPurgedEvents": purged})
            );
        }
    } else if total > 0 || (purged == 0 && events.is_empty()) {
        // Not "0 deliveries due again: … delivers them" beside the error that says none can be,
        // nor beside named events' lines that each said "nothing made due".
        // A receiver running now picks them up too: "the next" sent users to restart it.
        let delivers = format!(
            "a `ccai listen --forward-to URL` on this store delivers {}: one running now, or the next started",
            if total == 1 { "it" } else { "them" }
        );
        // One event named: its line said how many are due, with its hash; a total would say
        // it again.
        if events.len() == 1 {
            outln!("{delivers}");
        } else {
            outln!("{} due again: {delivers}", deliveries(total));
        }
    }
    if purged == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let events_text = crate::output::count(purged, "event", "events");
    if !events.is_empty() {
        let which = if events.len() == 1 {
            "the event named".to_owned()
        } else {
            format!("{events_text} of those named")
        };
        errln!(
            "error: {which} could not be replayed: {} purged, so there is nothing to send",
            if purged == 1 {
                "its body was"
            } else {
                "their bodies were"
            }
        );
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    let bodies = if purged == 1 {
        "its body was"
    } else {
        "their bodies were"
    };
    // A note, not a failure, even when nothing else matched: a purge keeps the rows of finished
    // events (for deduplication) long after their bodies, and a scheduled `replay --status dead`
    // would otherwise fail for weeks over events no one can replay.
    errln!(
        "note: {events_text} matched but could not be replayed: {bodies} purged, so there is nothing to send"
    );
    Ok(ExitCode::SUCCESS)
}

/// How many sends in a row may fail to reach the target (refused, no such host, TLS, timeout)
/// before the replay gives up on it. Three: one failure may be a blip and a second a restart
/// still under way, but a third in a row says the target is down, and every further event would
/// only take its own failure, up to the 30 s timeout each against a target that hangs (hours
/// for a thousand dead events). An answer, even a 500, is a target reached.
const UNREACHABLE_IN_A_ROW: usize = 3;

/// Sends events now, as they were received, and counts the outcomes; records nothing in the
/// store.
struct Sender {
    client: reqwest::Client,
    url: reqwest::Url,
    json_output: bool,
    sent: usize,
    failed: usize,
    /// The sends since the last answer that could not reach the target.
    unreachable_in_a_row: usize,
    /// Events left unsent once the sender gave up on the target.
    not_tried: usize,
    /// Events a bulk replay matched but left for their purged body (not sent, not failed).
    body_purged: u64,
}

impl Sender {
    fn new(url: reqwest::Url, json_output: bool) -> Result<Self> {
        Ok(Self {
            client: http::client()?,
            url,
            json_output,
            sent: 0,
            failed: 0,
            unreachable_in_a_row: 0,
            not_tried: 0,
            body_purged: 0,
        })
    }

    /// Sends one event and prints its outcome.
    async fn send(&mut self, event: &EventDetail) {
        let hash = &event.summary.event_hash;
        let outcome = send(&self.client, &self.url, event).await;
        let ok = matches!(outcome, Ok(status) if (200..300).contains(&status));
        self.sent += 1;
        if !ok {
            self.failed += 1;
        }
        match &outcome {
            // The target is there: it answered, or took the connection before it failed.
            Ok(_) | Err(NotSent::NoAnswer(_)) => self.unreachable_in_a_row = 0,
            Err(NotSent::Unreachable(_)) => self.unreachable_in_a_row += 1,
            // Nothing was sent: the target was neither reached nor missed.
            Err(NotSent::BodyPurged) => {}
        }
        if self.json_output {
            let (status, error) = match &outcome {
                Ok(status) => (Some(*status), None),
                Err(e) => (None, Some(e.text())),
            };
            outln!(
                "{}",
                json!({
                    "eventHash": hash,
                    "clientId": event.summary.client_id,
                    "ok": ok,
                    "httpStatus": status,
                    "error": error,
                })
            );
        } else {
            let shown = match &outcome {
                // A redirect is not followed: say so, and what to do.
                Ok(status) => match reqwest::StatusCode::from_u16(*status) {
                    Ok(code) if code.is_redirection() => {
                        format!("failed: {}", crate::http::refused(code))
                    }
                    _ => format!("HTTP {status}"),
                },
                Err(e) => format!("failed: {}", e.text()),
            };
            outln!(
                "{}  {}  {shown}",
                short_hash(hash),
                event_type_text(&event.summary.event_type)
            );
        }
    }

    /// Whether the last [`UNREACHABLE_IN_A_ROW`] sends all failed to reach the target: the
    /// replay then stops, and counts the events left in [`Sender::not_tried`].
    fn gave_up(&self) -> bool {
        self.unreachable_in_a_row >= UNREACHABLE_IN_A_ROW
    }

    /// The summary (for a `bulk` replay: with `--json` a last line with the counts, and a note
    /// of the events left for their purged body), and an error if any send failed.
    fn finish(self, bulk: bool) -> Result<ExitCode> {
        if bulk && self.json_output {
            outln!(
                "{}",
                json!({
                    "sent": self.sent,
                    "failed": self.failed,
                    "notTried": self.not_tried,
                    "bodyPurgedEvents": self.body_purged,
                })
            );
        }
        if self.body_purged > 0 {
            let (events, bodies) = if self.body_purged == 1 {
                ("1 event".to_owned(), "its body was")
            } else {
                (format!("{} events", self.body_purged), "their bodies were")
            };
            errln!(
                "note: {events} matched but could not be replayed: {bodies} purged, so there is nothing to send"
            );
        }
        if self.not_tried > 0 {
            bail!(
                "stopped after {UNREACHABLE_IN_A_ROW} sends in a row could not reach {}: {} sent, {} of them failed, {} not tried; run the command again once it answers (it sends every event again, those sent too)",
                http::shown(&self.url),
                self.sent,
                self.failed,
                self.not_tried
            );
        }
        if self.failed > 0 {
            // What to do next, as the stop above says it: the reasons are on the events' lines,
            // and a second run sends the ones that worked again too.
            let again = if self.failed < self.sent {
                " (it sends every event again, those that worked too)"
            } else {
                ""
            };
            bail!(
                "{} of {} replays to {} failed (each event's line says why): fix the target, then run the command again{again}",
                self.failed,
                self.sent,
                http::shown(&self.url)
            );
        }
        if !self.json_output {
            let events = if self.sent == 1 { "event" } else { "events" };
            outln!("sent {} {events} to {}", self.sent, http::shown(&self.url));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Why an event got no answer from the target.
enum NotSent {
    /// The target could not be reached (refused, no such host, TLS) or gave no answer in time:
    /// what is said of it, one line, without the URL.
    Unreachable(String),
    /// The target took the connection, then closed or reset it before an answer could be read
    /// (one that answers a large body before reading it, a 413 say, and closes: its answer is
    /// lost with the connection). It is there: this does not count towards giving up on it.
    NoAnswer(String),
    /// Nothing to send (an event named by its hash: a bulk replay leaves these out).
    BodyPurged,
}

impl NotSent {
    /// What the outcome line says after `failed: `.
    fn text(&self) -> String {
        match self {
            Self::Unreachable(why) | Self::NoAnswer(why) => why.clone(),
            Self::BodyPurged => "its body was purged".into(),
        }
    }
}

/// One POST (or PUT, as it was received) of the stored body with its original signature and
/// content type (`application/json` if it came without one, as the forward sends it): the
/// status answered.
async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    event: &EventDetail,
) -> Result<u16, NotSent> {
    let Some(body) = &event.body else {
        return Err(NotSent::BodyPurged);
    };
    // The content type the forward sends an event received without one with: a target's
    // JSON parser reads no body that does not say it is JSON.
    let content_type = event.content_type.as_deref().unwrap_or("application/json");
    let mut request = client
        .request(http::request_method(event.method), url.clone())
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body.clone());
    if let Some(signature) = &event.signature {
        request = request.header("X-CCAI-Signature", signature);
    }
    match request.send().await {
        Ok(response) => Ok(response.status().as_u16()),
        // What went wrong in a TLS handshake (use http://? a refused certificate?), else the
        // error without its URL, whose query may carry a token.
        Err(e) => {
            // A failed TLS handshake is a connect error too.
            let unreachable = e.is_connect() || e.is_timeout();
            let why = escape_line(
                &crate::http::tls_failure(&e).unwrap_or_else(|| crate::http::failure(e)),
            );
            Err(if unreachable {
                NotSent::Unreachable(why)
            } else {
                NotSent::NoAnswer(why)
            })
        }
    }
}

/// `1 delivery`, `2 deliveries`.
fn deliveries(n: u64) -> String {
    crate::output::count(n, "delivery", "deliveries")
}
