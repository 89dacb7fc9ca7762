//! `ccai webhooks …`: the management API from the command line.

use crate::stdout::{errln, outln};
use std::process::ExitCode;

use anyhow::Result;
use ccai::webhook::{UnreadableWebhook, WebhookConfig};
use serde_json::json;

use crate::cli::{AccountArgs, EndpointArgs, WebhooksArgs, WebhooksCommand};
use crate::{http, output, settings};

pub(crate) async fn run(account: &AccountArgs, args: WebhooksArgs) -> Result<ExitCode> {
    let WebhooksArgs { timeout, command } = args;
    // Zero would time every request out before it is sent.
    let timeout = crate::duration_flag::timeout("--timeout", &timeout)?;
    let (client, wording) = settings::api_client(account, timeout)?;
    // The API's errors name the flag or variable each setting came from.
    let api = |error| wording.error(error);
    let service = client.webhook();
    match command {
        WebhooksCommand::List(out) => {
            let listed = service.list_with_unreadable().await.map_err(api)?;
            let total = listed.webhooks.len() + listed.unreadable.len();
            let unread = listed.unreadable.len();
            for entry in &listed.unreadable {
                errln!("warning: {}", unreadable(entry, total));
            }
            // None read: "no webhooks" would be untrue, so nothing is printed.
            if unread > 0 && listed.webhooks.is_empty() {
                let which = match total {
                    1 => "the one webhook the API listed could not be read".to_owned(),
                    _ => format!("none of the {total} webhooks the API listed could be read"),
                };
                anyhow::bail!(
                    "{which} (see above): look in the CloudContactAI dashboard, or try a \
                     newer ccai"
                );
            }
            let list = listed.webhooks;
            if out.json {
                let items: Vec<_> = list.iter().map(output::integration_json).collect();
                outln!("{}", serde_json::to_string_pretty(&items)?);
            } else if list.is_empty() {
                outln!("No webhooks registered. Add one with: ccai webhooks register --url URL");
            } else {
                outln!("{}", output::integrations(&list));
            }
            // Some read: printed, and still a failure. A script that takes the exit code for a
            // complete list would act on one that misses an integration (and never tell).
            if unread > 0 {
                anyhow::bail!(
                    "the list printed misses {unread} of the {total} webhooks the API listed, \
                     which could not be read (see above): look in the CloudContactAI \
                     dashboard, or try a newer ccai"
                );
            }
        }
        WebhooksCommand::Get { id, output: out } => {
            print_one(&service.get(&id).await.map_err(api)?, out.json)?;
        }
        WebhooksCommand::Register {
            endpoint,
            print_secret,
            output: out,
        } => {
            let generated = endpoint.secret.is_none();
            // What the user chose is the secret registered when the API does not echo it.
            let chosen = endpoint.secret.clone();
            let created = service.register(config(endpoint)?).await.map_err(api)?;
            // An empty secret is none: `export CCAI_WEBHOOK_SECRET=$(…)` would set "" silently.
            let secret = created
                .secret_key
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .filter(|s| !s.is_empty());
            // The API's text, not ours: what a text line shows of it is escaped (a real secret
            // or id has nothing to escape, so it is shown as is).
            let id = output::escape(&created.id.to_string());
            if print_secret {
                match secret.or(chosen) {
                    // Printed for a script to store: an escaped form would never verify.
                    Some(secret) if output::escape(&secret) != secret => anyhow::bail!(
                        "the API returned a secret for integration {id} with control characters, which cannot be printed as is: set one with `ccai webhooks update {id} --url … --secret …`"
                    ),
                    Some(secret) => outln!("{secret}"),
                    None => anyhow::bail!(
                        "the API did not return a secret for integration {id}: set one with `ccai webhooks update {id} --url … --secret …`"
                    ),
                }
            } else if out.json && generated {
                // A server-generated secret is part of the answer (shown once): keep it.
                outln!("{}", serde_json::to_string_pretty(&created)?);
            } else if out.json {
                // A secret the user chose is not echoed (`print_one` leaves it out).
                print_one(&created, true)?;
            } else {
                print_one(&created, false)?;
                match (generated, secret) {
                    (true, Some(secret)) if output::escape(&secret) != secret => outln!(
                        "\nThe API returned a secret with control characters, which cannot be shown as is; set one with --secret on update."
                    ),
                    (true, Some(secret)) => {
                        outln!();
                        outln!("Webhook secret (shown once, store it now, e.g. as CCAI_WEBHOOK_SECRET):");
                        outln!("{}", output::escape(&secret));
                    }
                    (true, None) => {
                        outln!("\nThe API returned no secret; set one with --secret on update.")
                    }
                    (false, _) => {}
                }
            }
        }
        WebhooksCommand::Update {
            id,
            endpoint,
            output: out,
        } => {
            print_one(
                &service.update(&id, config(endpoint)?).await.map_err(api)?,
                out.json,
            )?;
        }
        WebhooksCommand::Delete { id, output: out } => {
            let deleted = service.delete(&id).await.map_err(api)?;
            if out.json {
                // The id as list, get, register and update print it: a JSON number when it is one.
                let shown = ccai::webhook::WebhookId::new(id.as_str());
                outln!(
                    "{}",
                    json!({
                        "id": shown,
                        "success": deleted.success,
                        "message": deleted.message,
                        "notFoundOnRetry": deleted.not_found_on_retry,
                    })
                );
            } else if deleted.not_found_on_retry {
                // Gone is what was asked: a success, said as plainly as it is known.
                outln!(
                    "Webhook {id} is gone: an earlier attempt got no clear answer and the retry \
                     found no such webhook (404), so that attempt most likely deleted it."
                );
            } else if deleted.success {
                outln!("Deleted webhook {id}.");
            } else {
                // The API's text, not ours: no escape sequence reaches the terminal.
                outln!(
                    "The API did not delete webhook {id}: {}",
                    output::escape(&deleted.message)
                );
            }
            // Refused is a failure in either form: scripts read the exit code.
            if !deleted.success {
                return Ok(ExitCode::from(crate::EXIT_ERROR));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a warning says of an entry of the list that could not be read: where it is, its id when
/// it has one, and the library's reason (which names the field, never a value: no secret).
fn unreadable(entry: &UnreadableWebhook, total: usize) -> String {
    let position = format!("entry {} of {total}", entry.index + 1);
    let which = match &entry.id {
        Some(id) => format!("webhook {} ({position})", output::escape(id.as_str())),
        None => format!("the webhook at {position}"),
    };
    format!("{which} could not be read: {}", entry.reason)
}

/// One integration as a one-row table, or as JSON without its secret.
fn print_one(item: &ccai::webhook::WebhookResponse, json: bool) -> Result<()> {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&output::integration_json(item))?
        );
    } else {
        outln!("{}", output::integrations(std::slice::from_ref(item)));
    }
    Ok(())
}

/// The request from the flags. Without `--method` the library decides: `POST` on register, the
/// integration's current method on update.
fn config(endpoint: EndpointArgs) -> Result<WebhookConfig> {
    let method = endpoint
        .method
        .as_deref()
        .map(http::method_flag)
        .transpose()?;
    http::url_flag("--url", &endpoint.url, "https://example.com/webhook")?;
    // The URL parser strips surrounding whitespace and drops tabs and line breaks, but the API
    // gets the text as typed: refuse what would register a URL other than the one checked.
    if endpoint.url.trim() != endpoint.url || endpoint.url.chars().any(char::is_control) {
        anyhow::bail!(
            "invalid --url: it starts or ends with whitespace or holds a control character \
             (often a trailing newline): remove it"
        );
    }
    let mut config = WebhookConfig::new(endpoint.url);
    if let Some(method) = method {
        config = config.method(method);
    }
    if let Some(secret) = endpoint.secret {
        config = config.secret(settings::new_webhook_secret(secret)?);
    }
    Ok(config)
}
