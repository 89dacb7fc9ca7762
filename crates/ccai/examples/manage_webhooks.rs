//! Register, list, update and delete a webhook through the CloudContactAI management API: the Go
//! SDK's webhook example, in Rust.
//!
//! Needs a real account. Set `CCAI_CLIENT_ID` and `CCAI_API_KEY` (and optionally `CCAI_BASE_URL`,
//! `CCAI_WEBHOOK_URL`) in the environment or in a `.env` file, then:
//!
//! ```text
//! cargo run -p ccai --example manage_webhooks
//! ```

use std::process::ExitCode;

use ccai::webhook::{WebhookConfig, WebhookEventType};
use ccai::{Client, Config};

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env file is fine: the variables may come from the environment.
    let _ = dotenvy::dotenv();

    let (Some(client_id), Some(api_key)) = (env("CCAI_CLIENT_ID"), env("CCAI_API_KEY")) else {
        eprintln!(
            "This example talks to the real CloudContactAI API.\n\
             Set CCAI_CLIENT_ID and CCAI_API_KEY (and optionally CCAI_BASE_URL) in the environment \
             or in a .env file, then run it again."
        );
        return ExitCode::from(2);
    };
    let webhook_url =
        env("CCAI_WEBHOOK_URL").unwrap_or_else(|| "https://example.com/webhook/ccai".to_owned());

    // The base URL comes from CCAI_BASE_URL when set, else production.
    let client = match Client::new(Config::new(client_id, api_key)) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };

    match run(&client, &webhook_url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(client: &Client, webhook_url: &str) -> Result<(), ccai::ClientError> {
    let webhooks = client.webhook();
    println!(
        "Using {} for account {}",
        client.base_url(),
        client.client_id()
    );

    // 1. Register: no secret given, so the server generates one and returns it once.
    let config = WebhookConfig::new(webhook_url).events([
        WebhookEventType::MessageSent,
        WebhookEventType::MessageIncoming,
    ]);
    let registered = webhooks.register(config).await?;
    println!("Registered webhook {} -> {}", registered.id, registered.url);
    if registered.secret_key.is_some() {
        println!("  The server generated a signing secret: store it to verify deliveries.");
    }

    // 2. List.
    let all = webhooks.list().await?;
    println!("{} webhook(s):", all.len());
    for hook in &all {
        println!(
            "  {} {} {} ({})",
            hook.id, hook.method, hook.url, hook.integration_type
        );
    }

    // 3. Update: a new URL and our own secret.
    let updated_url = format!("{}?v=2", webhook_url.trim_end_matches('/'));
    let updated = webhooks
        .update(
            registered.id.as_str(),
            WebhookConfig::new(updated_url).secret("my-own-webhook-secret"),
        )
        .await?;
    println!("Updated webhook {} -> {}", updated.id, updated.url);

    // 4. Delete.
    let deleted = webhooks.delete(registered.id.as_str()).await?;
    println!(
        "Deleted webhook {}: success={} {}",
        registered.id, deleted.success, deleted.message
    );
    Ok(())
}

/// An environment variable's value, when set and not blank.
fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}
