//! A CloudContactAI webhook receiver with the durable inbox: `POST /webhook/ccai` stores each
//! verified delivery in a SQLite file before answering 200, and a dispatcher hands each stored
//! event to `process` with retries (a dead letter after the last attempt). `GET /events` lists
//! the newest stored events with where their delivery stands, beside the webhook in one axum app.
//!
//! Configured from the environment:
//! - `CCAI_CLIENT_ID`: your CloudContactAI account id (required);
//! - `CCAI_WEBHOOK_SECRET`: the integration's secret (required); several, comma-separated, while
//!   rotating;
//! - `CCAI_INBOX`: the SQLite file (default `inbox.db`);
//! - `PORT`: the port to listen on (default 8080).
//!
//! ```sh
//! CCAI_CLIENT_ID=1231 CCAI_WEBHOOK_SECRET=my-secret cargo run -p ccai --features inbox --example inbox_server
//! # in another terminal:
//! cargo run -p ccai-cli -- trigger message.sent --to http://127.0.0.1:8080/webhook/ccai --client-id 1231 --secret my-secret
//! curl http://127.0.0.1:8080/events
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use ccai::event::{parse_event, EventData};
use ccai::inbox::{
    CallbackConsumer, Dispatcher, InboxEvent, ListFilter, ListRequest, SqliteOptions, SqliteStore,
    Store,
};
use ccai::server::{create_handler, HandlerOptions, Server};
use ccai::BoxError;

fn required(name: &str) -> Result<String, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!("set {name} (see the example's documentation)").into()),
    }
}

/// Your processing. Delivery is at least once: be idempotent on the event hash. An `Err` is
/// retried on the dispatcher's schedule.
async fn process(stored: InboxEvent) -> Result<(), BoxError> {
    let event = parse_event(&stored.body)?;
    println!(
        "event {} ({}), attempt {}",
        event.event_type, event.event_hash, stored.attempt
    );
    if let Ok(EventData::Sent(sent)) = event.typed_data() {
        println!("  sent to {:?}, price {:?}", sent.to, sent.total_price);
    }
    Ok(())
}

/// The admin API beside the webhook: the newest stored events, one line each.
async fn events(State(store): State<Arc<SqliteStore>>) -> String {
    let page = match store.list(ListRequest::new(ListFilter::new(), 20)).await {
        Ok(page) => page,
        Err(e) => return format!("error: {e}\n"),
    };
    page.events
        .iter()
        .map(|event| {
            let statuses: Vec<&str> = event.deliveries.iter().map(|d| d.status.as_str()).collect();
            format!(
                "{} {} {}\n",
                event.event_hash,
                event.event_type,
                statuses.join(",")
            )
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().init();

    let client_id = required("CCAI_CLIENT_ID")?;
    let secrets = required("CCAI_WEBHOOK_SECRET")?;
    let path = std::env::var("CCAI_INBOX").unwrap_or_else(|_| "inbox.db".to_owned());
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "8080".to_owned())
        .parse()?;

    let store = Arc::new(SqliteStore::open(&path, SqliteOptions::default())?);
    let dispatcher = Dispatcher::builder(store.clone(), CallbackConsumer::new(process)).start();
    let handler = create_handler(
        HandlerOptions::inbox(client_id, store.clone())
            // Comma-separated during a rotation; not trimmed: a secret with whitespace around it is
            // refused, naming the problem, as the CLI refuses it.
            .secrets(secrets.split(',').map(str::to_owned))
            .wake_on(dispatcher.waker())
            .on_reject(|rejection| {
                // With its causes: a 503's store error is beneath its message.
                eprintln!(
                    "rejected ({}): {}",
                    rejection.status(),
                    rejection.with_causes()
                )
            }),
    )?;
    let app = Router::new()
        .route("/events", get(events))
        .with_state(store.clone())
        .route_service("/webhook/ccai", handler);

    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!(
        "listening on http://{}/webhook/ccai (inbox {path})",
        listener.local_addr()?
    );
    Server::new()
        .serve_with_shutdown(listener, app, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    // In this order: no more deliveries, then no more attempts (those in flight get 10 s), then
    // the store's queued writes committed and its files tidied.
    let report = dispatcher.shutdown(Duration::from_secs(10)).await;
    println!(
        "stopped: {} attempts finished, {} given back for the next start",
        report.finished, report.released
    );
    store.close().await;
    Ok(())
}
