//! A CloudContactAI webhook receiver: `POST /webhook/ccai` on port 8080, printing the key fields of
//! each event.
//!
//! Configured from the environment:
//! - `CCAI_CLIENT_ID`: your CloudContactAI account id (required);
//! - `CCAI_WEBHOOK_SECRET`: the integration's secret (required); several, comma-separated, while
//!   rotating;
//! - `PORT`: the port to listen on (default 8080);
//! - `CCAI_WEBHOOK_METHOD`: `POST` (default) or `PUT`, the integration's delivery method.
//!
//! ```sh
//! CCAI_CLIENT_ID=1231 CCAI_WEBHOOK_SECRET=my-secret cargo run --example webhook_server
//! ```

use std::error::Error;

use axum::Router;
use ccai::server::Server;
use ccai::webhook::{
    create_handler, DeliveryMethod, EventData, HandlerOptions, MessageError, WebhookEvent,
};

fn required(name: &str) -> Result<String, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!("set {name} (see the example's documentation)").into()),
    }
}

async fn on_event(event: WebhookEvent) -> Result<(), Box<dyn Error + Send + Sync>> {
    println!("event {} ({})", event.event_type, event.event_hash);
    let data = match event.typed_data() {
        Ok(data) => data,
        Err(e) => {
            // Retrying would not fix a field of the wrong type: acknowledge, do not fail.
            println!("  unusable data: {e}");
            return Ok(());
        }
    };
    match data {
        EventData::Sent(sent) => println!(
            "  sent to {:?}: {:?} ({:?} segments, price {:?}, campaign {:?})",
            sent.to, sent.message, sent.segments, sent.total_price, sent.campaign_title
        ),
        EventData::Incoming(incoming) => println!(
            "  reply from {:?} to {:?}: {:?} (campaign {:?})",
            incoming.from, incoming.to, incoming.message, incoming.campaign_title
        ),
        EventData::Excluded(excluded) => println!(
            "  excluded {:?}: {:?}",
            excluded.to, excluded.excluded_reason
        ),
        EventData::ErrorCarrier(error) => print_error("carrier", &error),
        EventData::ErrorCloudcontact(error) => print_error("CloudContactAI", &error),
        other => println!("  unhandled event: {other:?}"),
    }
    Ok(())
}

fn print_error(kind: &str, error: &MessageError) {
    println!(
        "  {kind} error for {:?}: {:?} {:?} ({:?})",
        error.to, error.error_code, error.error_message, error.error_type
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().init();

    let client_id = required("CCAI_CLIENT_ID")?;
    let secrets = required("CCAI_WEBHOOK_SECRET")?;
    let method: DeliveryMethod = std::env::var("CCAI_WEBHOOK_METHOD")
        .unwrap_or_else(|_| "POST".to_owned())
        .parse()?;
    let port: u16 = std::env::var("PORT")
        .unwrap_or_else(|_| "8080".to_owned())
        .parse()?;

    let handler = create_handler(
        HandlerOptions::new(client_id, on_event)
            // Comma-separated during a rotation; not trimmed: a secret with whitespace around it is
            // refused, naming the problem, as the CLI refuses it.
            .secrets(secrets.split(',').map(str::to_owned))
            .method(method)
            .log_events(true)
            .on_reject(|rejection| {
                // With its causes: a 503's store error is beneath its message.
                eprintln!(
                    "rejected ({}): {}",
                    rejection.status(),
                    rejection.with_causes()
                )
            }),
    )?;
    let app = Router::new().route_service("/webhook/ccai", handler);

    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!(
        "listening on http://{}/webhook/ccai",
        listener.local_addr()?
    );
    // Timeouts for slow and idle clients, a connection cap and a graceful shutdown on Ctrl-C
    // (`axum::serve` has none of the limits): see `ccai::server::Server` for each default.
    Server::new()
        .serve_with_shutdown(listener, app, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
