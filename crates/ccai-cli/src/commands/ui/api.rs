//! The view's routes: the page and its assets, and the JSON API under `/api/` (documented in the
//! README). Summaries have the shape of `ccai events list --json`, with a few fields for the page.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ccai::inbox::{
    Cursor, DeliveryState, DeliveryStatus, EventDetail, EventSummary, ListFilter, ListRequest,
    Page, ReplayTarget, Store, StoreError,
};

use serde_json::{json, Map, Value};

use super::access::{guard, Access, DOWNLOAD_PATH};
use super::live;
use super::reads::{self, Reads};
use crate::commands::events::format::{
    body_for_display, human_age, parse_age, parse_rfc3339, rfc3339,
};
use crate::commands::events::lookup::{self, NotFound};
use crate::commands::events::replay::{names_a_bulk, replay_matching};
use crate::commands::events::{detail_json, only, summary_json, total_attempts};
use crate::output::short_hash;

const INDEX_HTML: &str = include_str!("../../../assets/ui/index.html");
const UI_CSS: &str = include_str!("../../../assets/ui/ui.css");
const UI_JS: &str = include_str!("../../../assets/ui/ui.js");

/// A page of `/api/events` holds this many events unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// The largest page of `/api/events`.
const MAX_LIMIT: usize = 200;
/// The most events counted for the per-minute chart.
const CHART_LIMIT: usize = 20_000;

#[derive(Clone, Debug)]
struct AppState {
    store: Arc<dyn Store>,
    changes: live::Changes,
    /// The one account whose events the view shows (`ccai ui --client-id`), or every account's.
    account: Option<Arc<str>>,
    /// The turns to read the store ([`reads::in_turn`]); a download's later pages take theirs
    /// one by one ([`Reads::run`]).
    reads: Reads,
}

/// The view's router; `access` guards every route. With `account`, the list, the download and
/// the events shown and acted on are that account's only.
pub(crate) fn router(
    store: Arc<dyn Store>,
    changes: live::Changes,
    access: Arc<Access>,
    account: Option<String>,
) -> Router {
    let reads = Reads::new();
    Router::new()
        .route("/api/events", get(list))
        .route(DOWNLOAD_PATH, get(download))
        .route("/api/events/{hash}", get(detail))
        .route("/api/events/{hash}/replay", post(replay))
        .route("/api/events/{hash}/retry", post(retry))
        // The same three with the hash as `?hash=`: a path segment `.` or `..` (an eventHash is
        // whatever the sender signed) is removed by browsers and URL parsers before it is sent,
        // percent-encoded or not, so the path cannot name such an event.
        .route("/api/event", get(detail_by_query))
        .route("/api/event/replay", post(replay_by_query))
        .route("/api/event/retry", post(retry_by_query))
        .route("/api/replay", post(replay_all))
        .route("/api/stats", get(stats))
        // The routes above read the store, a few at a time; those below do not (the live
        // streams wait for the watcher, whose one read serves them all).
        .route_layer(axum::middleware::from_fn_with_state(
            reads.clone(),
            reads::in_turn,
        ))
        .route("/", get(index))
        .route("/ui.css", get(css))
        .route("/ui.js", get(js))
        .route("/api/stream", get(stream))
        .fallback(not_found)
        .with_state(AppState {
            store,
            changes,
            account: account.map(Arc::from),
            reads,
        })
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn_with_state(access, guard))
}

/// The errors axum answers by itself (a method a route does not take: an empty 405; a path
/// segment that is not UTF-8: a plain-text 400) as `{"error": "..."}` like every other error
/// of the API, keeping their headers (`Allow`).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // axum's own texts are short; a longer one is not shown rather than cut mid-character.
    let text = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .filter(|text| !text.is_empty());
    let message = text.unwrap_or_else(|| match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed here".to_owned(),
        other => other
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json!({ "error": message }).to_string()))
}

async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], UI_CSS).into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        UI_JS,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page".into())
}

/// An error answered as `{"error": "..."}`, with `"clientIds"` when it is about which accounts
/// hold an event, and `"stopped": true` for a read the store stopped at its time limit.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    client_ids: Option<BTreeSet<String>>,
    stopped: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: String) -> Self {
        Self {
            status,
            message,
            client_ids: None,
            stopped: false,
        }
    }

    /// The client ids of the accounts the error is about, for a page or script to pick from.
    fn client_ids(mut self, client_ids: BTreeSet<String>) -> Self {
        self.client_ids = Some(client_ids);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(client_ids) = self.client_ids {
            body["clientIds"] = json!(client_ids);
        }
        if self.stopped {
            // The page does not repeat such a read by itself: it would be stopped again.
            body["stopped"] = json!(true);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = if error.is_transient() {
            StatusCode::SERVICE_UNAVAILABLE
        } else if matches!(error, StoreError::ReadOnly { .. }) {
            // `ccai ui` on a store this user may read but not write: no retry will help.
            StatusCode::FORBIDDEN
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let mut api_error = ApiError::new(status, format!("the store failed: {error}"));
        api_error.stopped = matches!(error, StoreError::ReadStopped(_));
        api_error
    }
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// The filter of `status`, `type`, `since` and `q` (empty values are no condition), within the
/// view's account if it has one.
fn filter_of(
    query: &HashMap<String, String>,
    account: Option<&str>,
    now: SystemTime,
) -> Result<ListFilter, ApiError> {
    let given = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut filter = ListFilter::new();
    if let Some(account) = account {
        filter = filter.client_id(account);
    }
    if let Some(status) = given("status") {
        let status: DeliveryStatus = status.parse().map_err(|_| {
            bad_request("status must be pending, in_progress, delivered or dead".into())
        })?;
        filter = filter.status(status);
    }
    if let Some(event_type) = given("type") {
        filter = filter.event_type(event_type);
    }
    if let Some(since) = given("since") {
        let time = match parse_age(since) {
            Some(age) => now.checked_sub(age).unwrap_or(UNIX_EPOCH),
            None => parse_rfc3339(since).ok_or_else(|| {
                bad_request(
                    "since must be an age (15m, 1h, 2d) or an RFC 3339 time (2026-11-30T14:00:00Z)"
                        .into(),
                )
            })?,
        };
        filter = filter.since(time);
    }
    // The text is matched as given (case-sensitive), spaces included.
    if let Some(text) = query.get("q").filter(|q| !q.is_empty()) {
        filter = filter.text(text.clone());
    }
    // The request's fault (a text past the store's limit): a 400, where the store's refusal
    // would read as its failure.
    filter
        .validate()
        .map_err(|refused| bad_request(crate::commands::events::refusal(refused)))?;
    Ok(filter)
}

/// The page's status for an event: dead, in progress, retrying (pending after a failed attempt),
/// pending or delivered — the least advanced of its deliveries.
fn overall_status(deliveries: &[DeliveryState]) -> &'static str {
    let any = |status: DeliveryStatus| deliveries.iter().any(|d| d.status == status);
    if deliveries.is_empty() {
        "stored"
    } else if any(DeliveryStatus::Dead) {
        "dead"
    } else if any(DeliveryStatus::InProgress) {
        "in_progress"
    } else if deliveries
        .iter()
        .any(|d| d.status == DeliveryStatus::Pending && d.attempts > 0)
    {
        "retrying"
    } else if any(DeliveryStatus::Pending) {
        "pending"
    } else {
        "delivered"
    }
}

/// What the page shows of an event beside `ccai events … --json`'s fields: the short hash, one
/// status, when the next attempt is due, and (as `count_key`) every attempt recorded, earlier
/// schedules included (as many as the details list, and as `ccai events list` counts).
fn add_page_fields(value: &mut Value, event: &EventSummary, count_key: &str) {
    if let Some(object) = value.as_object_mut() {
        object.insert("shortHash".into(), json!(short_hash(&event.event_hash)));
        object.insert("status".into(), json!(overall_status(&event.deliveries)));
        object.insert(count_key.into(), json!(total_attempts(&event.deliveries)));
        object.insert(
            "nextAttemptAt".into(),
            json!(event
                .deliveries
                .iter()
                .filter_map(|d| d.next_attempt_at)
                .min()
                .map(rfc3339)),
        );
    }
}

/// `ccai events list --json`'s object, plus what the page shows in a row.
fn row_json(event: &EventSummary) -> Value {
    let mut value = summary_json(event);
    add_page_fields(&mut value, event, "attempts");
    value
}

/// `GET /api/events`: one page, newest first; `next` is the cursor of the older page.
async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = filter_of(&query, state.account.as_deref(), SystemTime::now())?;
    let limit = match query.get("limit").filter(|l| !l.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(limit) => limit
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad_request(format!("limit must be 1 to {MAX_LIMIT}")))?,
    };
    let after = match query.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => Some(
            Cursor::decode(cursor)
                .ok_or_else(|| bad_request("cursor is not one this API gave".into()))?,
        ),
    };
    let page = state
        .store
        .list(ListRequest::new(filter, limit).after(after))
        .await?;
    Ok(Json(json!({
        "events": page.events.iter().map(row_json).collect::<Vec<_>>(),
        "next": page.next.map(|c| c.encode()),
    })))
}

/// `GET /api/events.ndjson`: every event matching the filters, one JSON object per line, sent a
/// page at a time as it is read (a download of a million events holds one page). A store error
/// after the first page cuts the response short, so it cannot pass for a complete download.
async fn download(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let filter = filter_of(&query, state.account.as_deref(), SystemTime::now())?;
    let store = Arc::clone(&state.store);
    // The first page before answering (in the request's turn): an error there is still an HTTP
    // error status.
    let first = store
        .list(ListRequest::new(filter.clone(), ListRequest::MAX_LIMIT))
        .await?;
    let pages = futures_util::stream::unfold(
        (store, filter, state.reads, NextPage::Read(first)),
        |(store, filter, reads, next)| async move {
            let page = match next {
                NextPage::Done => return None,
                NextPage::Read(page) => page,
                NextPage::After(cursor) => {
                    let request = ListRequest::new(filter.clone(), ListRequest::MAX_LIMIT)
                        .after(Some(cursor));
                    // Each later page in a turn of its own, waited for: the answer has started. A
                    // long download takes a turn a page, and others' requests get theirs between.
                    let reader = Arc::clone(&store);
                    match reads.run(async move { reader.list(request).await }).await {
                        Some(Ok(page)) => page,
                        failed => {
                            let why = match failed {
                                Some(Err(e)) => e.to_string(),
                                _ => "the store read failed".to_owned(),
                            };
                            let cut = std::io::Error::other(why);
                            return Some((Err(cut), (store, filter, reads, NextPage::Done)));
                        }
                    }
                }
            };
            let mut lines = String::new();
            for event in &page.events {
                lines.push_str(&summary_json(event).to_string());
                lines.push('\n');
            }
            let next = page.next.map_or(NextPage::Done, NextPage::After);
            Some((Ok(Bytes::from(lines)), (store, filter, reads, next)))
        },
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"ccai-events.ndjson\"",
            ),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}

/// Where a download stands between pages.
enum NextPage {
    /// A page read and not yet sent.
    Read(Page),
    /// The page after this cursor is to be read.
    After(Cursor),
    Done,
}

/// The `{hash}` of the path: one that does not decode to UTF-8 is a 400 with the API's
/// `{"error"}`, not axum's plain-text rejection.
fn hash_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(hash)| hash)
        .map_err(|rejection| bad_request(rejection.body_text()))
}

/// `?clientId=`: the account whose event the path's hash names (empty is not given).
fn client_id_of(query: &HashMap<String, String>) -> Option<&str> {
    query
        .get("clientId")
        .map(String::as_str)
        .filter(|c| !c.is_empty())
}

/// The event `hash` names (whole or its start, as `ccai events show` takes it): the account
/// `asked` (`?clientId=`) holds, or the view's account (`ccai ui --client-id`). Without either, a
/// hash one account holds is that account's, and one several hold is a 409 naming their client
/// ids: showing or replaying the newest's would be a silent pick of someone else's event.
async fn find(state: &AppState, hash: &str, asked: Option<&str>) -> Result<EventDetail, ApiError> {
    let store = state.store.as_ref();
    let unknown = |hash: &str| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            // Escaped once, by `short_hash`: `{:?}` would escape the escapes again.
            format!("no event with hash \"{}\"", short_hash(hash)),
        )
    };
    let client = match (state.account.as_deref(), asked) {
        (Some(view), Some(asked)) if view != asked => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("this view shows client id {view:?}'s events only (it was started with --client-id)"),
            ))
        }
        (Some(view), _) => Some(view),
        (None, asked) => asked,
    };
    let not_for = |hash: &str, client: &str| {
        format!(
            "no event with hash \"{}\" for client id {client:?}",
            short_hash(hash)
        )
    };
    // The hash whole, `#` first or not, or the start of one stored hash: as `ccai events show`
    // finds it, through the same code.
    let (client, full) = match lookup::find(store, hash, client).await {
        Ok(found) => found,
        Err(NotFound::Store(e)) => return Err(e.into()),
        Err(NotFound::Unknown { hash } | NotFound::TooShort { hash }) => {
            return Err(match client {
                Some(client) => ApiError::new(StatusCode::NOT_FOUND, not_for(&hash, client)),
                None => unknown(&hash),
            })
        }
        Err(NotFound::NotFor { hash, client_ids }) => {
            let client = client.unwrap_or_default();
            // A view of one account does not point at the others.
            if state.account.is_some() {
                return Err(ApiError::new(StatusCode::NOT_FOUND, not_for(&hash, client)));
            }
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "{}: it is stored for client ids {}",
                    not_for(&hash, client),
                    listed(&client_ids)
                ),
            )
            .client_ids(client_ids));
        }
        Err(NotFound::Ambiguous { hash }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "event hash \"{}\" is ambiguous: more than one stored hash starts with it; give more of it",
                    short_hash(&hash)
                ),
            ))
        }
        Err(NotFound::SeveralAccounts { hash, client_ids }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "event hash \"{}\" is stored for more than one account (client ids {}): add ?clientId= with the one you mean",
                    short_hash(&hash),
                    listed(&client_ids)
                ),
            )
            .client_ids(client_ids))
        }
    };
    // Gone since it was found (purged meanwhile): as unknown as if it never was.
    store
        .get_for(&client, &full)
        .await?
        .ok_or_else(|| unknown(hash))
}

/// `"1231", "4567"`: client ids as an error names them.
fn listed(client_ids: &BTreeSet<String>) -> String {
    client_ids
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The typed fields of a body, as `[{name, value}]` (values as text, absent ones left out).
fn typed_json(body: &[u8]) -> Value {
    let event = match ccai::event::parse_event(body) {
        Ok(event) => event,
        Err(e) => return json!({ "error": format!("not a valid event: {e}") }),
    };
    let data = match event.typed_data() {
        Ok(data) => data,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let (kind, fields) = match serde_json::to_value(&data) {
        Ok(Value::Object(variant)) => match variant.into_iter().next() {
            Some((kind, Value::Object(mut fields))) => {
                // `Unknown` carries the raw data beside the type.
                match fields.remove("data") {
                    Some(Value::Object(data)) => (kind, data),
                    _ => (kind, fields),
                }
            }
            _ => (String::new(), Map::new()),
        },
        _ => (String::new(), Map::new()),
    };
    let fields: Vec<Value> = fields
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| {
            let value = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            json!({ "name": name, "value": value })
        })
        .collect();
    json!({ "kind": kind, "fields": fields })
}

/// `?hash=` of the `/api/event` routes: the hash whole, or its start (as `ccai events show`).
fn hash_in(query: &HashMap<String, String>) -> Result<&str, ApiError> {
    query
        .get("hash")
        .map(String::as_str)
        .filter(|hash| !hash.is_empty())
        .ok_or_else(|| bad_request("give the event's hash whole as ?hash=".into()))
}

/// `GET /api/events/{hash}?clientId=`: everything about one event (the signature only as a hint).
async fn detail(
    State(state): State<AppState>,
    hash: Result<Path<String>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    show(&state, &hash_of(hash)?, client_id_of(&query)).await
}

/// `GET /api/event?hash=&clientId=`: as `GET /api/events/{hash}`, for any hash.
async fn detail_by_query(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    show(&state, hash_in(&query)?, client_id_of(&query)).await
}

/// One event's details, for either route.
async fn show(state: &AppState, hash: &str, asked: Option<&str>) -> Result<Json<Value>, ApiError> {
    let event = find(state, hash, asked).await?;
    // `ccai events show --json`'s object; `attempts` is the list, `attemptCount` their number.
    let mut value = detail_json(&event);
    add_page_fields(&mut value, &event.summary, "attemptCount");
    if let Some(object) = value.as_object_mut() {
        let pretty = event.body.as_ref().map(|body| body_for_display(body));
        object.insert("bodyPretty".into(), json!(pretty));
        let typed = event.body.as_ref().map(|body| typed_json(body));
        object.insert("typed".into(), typed.unwrap_or(Value::Null));
    }
    Ok(Json(value))
}

/// `POST /api/events/{hash}/replay?clientId=`: every delivery not in progress is due now (history
/// kept); 409 if its body was purged (nothing to send).
async fn replay(
    State(state): State<AppState>,
    hash: Result<Path<String>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    replay_one(&state, &hash_of(hash)?, client_id_of(&query)).await
}

/// `POST /api/event/replay?hash=&clientId=`: as `POST /api/events/{hash}/replay`, for any hash.
async fn replay_by_query(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    replay_one(&state, hash_in(&query)?, client_id_of(&query)).await
}

/// Replays one event, for either route.
async fn replay_one(
    state: &AppState,
    hash: &str,
    asked: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let event = find(state, hash, asked).await?;
    let report = state
        .store
        .replay(ReplayTarget::Filter(only(&event.summary)))
        .await?;
    if report.due == 0 && (report.purged > 0 || event.body.is_none()) {
        return Err(body_purged());
    }
    Ok(Json(json!({ "replayed": report.due })))
}

/// The answer to replaying or retrying an event whose body was purged.
fn body_purged() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "this event's body was purged: there is nothing to send, so it cannot be replayed".into(),
    )
}

/// `POST /api/events/{hash}/retry?clientId=`: a dead event's deliveries are pending and due now, their
/// retry schedule started over.
async fn retry(
    State(state): State<AppState>,
    hash: Result<Path<String>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    retry_one(&state, &hash_of(hash)?, client_id_of(&query)).await
}

/// `POST /api/event/retry?hash=&clientId=`: as `POST /api/events/{hash}/retry`, for any hash.
async fn retry_by_query(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    retry_one(&state, hash_in(&query)?, client_id_of(&query)).await
}

/// Retries one dead event now, for either route.
async fn retry_one(
    state: &AppState,
    hash: &str,
    asked: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let event = find(state, hash, asked).await?;
    let summary = &event.summary;
    if !summary
        .deliveries
        .iter()
        .any(|d| d.status == DeliveryStatus::Dead)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this event is not dead: use replay to deliver it again".into(),
        ));
    }
    if event.body.is_none() {
        return Err(body_purged());
    }
    let filter = only(summary).status(DeliveryStatus::Dead);
    let mut report = state.store.requeue_dead(filter).await?;
    if report.due == 0 && report.purged == 0 {
        // No dead delivery left (the event changed since it was read): due now, on the
        // schedule where it was.
        report = state
            .store
            .replay(ReplayTarget::Filter(only(summary)))
            .await?;
    }
    if report.due == 0 && report.purged > 0 {
        return Err(body_purged());
    }
    Ok(Json(json!({ "requeued": report.due })))
}

/// `POST /api/replay?status=&type=&since=&q=`: every event the filters match is due again, as
/// `ccai events replay --status/--type` makes them (dead deliveries start their retries over).
/// A status or a type is required, as there (a time or a text only narrows it). Events whose
/// body was purged are left as they were, and counted.
async fn replay_all(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = filter_of(&query, state.account.as_deref(), SystemTime::now())?;
    if !names_a_bulk(&filter) {
        return Err(bad_request(
            "a bulk replay needs a filter: give status= and/or type= (as `ccai events replay --status dead`)".into(),
        ));
    }
    let report = replay_matching(state.store.as_ref(), filter).await?;
    Ok(Json(json!({
        "replayed": report.due,
        "bodyPurgedEvents": report.purged,
    })))
}

/// `GET /api/stats`: the counters and events received per minute over the last hour.
async fn stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = SystemTime::now();
    let stats = state.store.stats(now).await?;
    let hour_ago = now
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or(UNIX_EPOCH);
    let (recent, capped) = crate::store_list::newest(
        state.store.as_ref(),
        ListFilter::new().since(hour_ago),
        CHART_LIMIT,
    )
    .await?;
    let mut per_minute = [0u64; 60];
    for event in &recent {
        let ago = now
            .duration_since(event.received_at)
            .unwrap_or_default()
            .as_secs()
            / 60;
        if let Some(slot) = usize::try_from(ago)
            .ok()
            .and_then(|ago| 59usize.checked_sub(ago))
        {
            per_minute[slot] += 1;
        }
    }
    let count = |status| stats.count(status);
    Ok(Json(json!({
        "received": stats.events,
        "duplicates": stats.duplicates,
        "conflicts": stats.conflicts,
        "delivered": count(DeliveryStatus::Delivered),
        "dead": count(DeliveryStatus::Dead),
        "pending": count(DeliveryStatus::Pending),
        "inProgress": count(DeliveryStatus::InProgress),
        "oldestPendingAgeSecs": stats.oldest_pending_age.map(|a| a.as_secs()),
        "oldestPendingAge": stats.oldest_pending_age.map(human_age),
        "perMinute": per_minute.to_vec(),
        "perMinuteCapped": capped,
        "now": rfc3339(now),
        // The counters and the chart are the whole inbox's even when the view shows one
        // account's events: the store counts every account's together.
        "clientId": state.account.as_deref(),
    })))
}

/// `GET /api/stream`: server-sent events when the store changes, counted against the client's
/// address (which `ccai::server::Server` gives every request).
async fn stream(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let client = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    live::stream(state.changes.clone(), client).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_of_a_known_and_an_unknown_type() {
        let typed = typed_json(
            br#"{"eventType":"message.sent","eventHash":"h","data":{"To":"+14155550100","Segments":2}}"#,
        );
        assert_eq!(typed["kind"], "Sent");
        let fields = typed["fields"].as_array().expect("fields");
        assert!(fields.contains(&json!({"name": "to", "value": "+14155550100"})));
        assert!(fields.contains(&json!({"name": "segments", "value": "2"})));
        let unknown = typed_json(
            br#"{"eventType":"contact.unsubscribed","eventHash":"h","data":{"Phone":"+1"}}"#,
        );
        assert_eq!(unknown["fields"], json!([{"name": "Phone", "value": "+1"}]));
        assert!(typed_json(b"not json")["error"].is_string());
    }
}
