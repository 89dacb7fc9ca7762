//! `ccai listen`: a local receiver on the library's handler that verifies, prints and forwards.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ccai::webhook::{
    create_handler, DeliveryMethod, HandlerOptions, Rejection, WebhookDelivery, WebhookEventType,
    SIGNATURE_HEADER,
};
use serde_json::json;

use crate::cli::{AccountArgs, ListenArgs};
use crate::{clock, dev_credentials, http, output, settings};

/// What the receiver needs per delivery.
struct Listener {
    json: bool,
    events: Option<HashSet<WebhookEventType>>,
    forward: Option<Forward>,
}

struct Forward {
    url: reqwest::Url,
    http: reqwest::Client,
}

pub(crate) async fn run(account: &AccountArgs, args: ListenArgs) -> Result<ExitCode> {
    check_path(&args.path)?;
    let forward = match &args.forward_to {
        None => None,
        Some(target) => {
            let url = http::url_flag("--forward-to", target, "http://localhost:3000/webhook")?;
            let http = http::client()?;
            Some(Forward { url, http })
        }
    };
    let events = if args.events.is_empty() {
        None
    } else {
        let mut set = HashSet::new();
        for name in args
            .events
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
        {
            let t = WebhookEventType::from(name);
            if !t.is_known() {
                eprintln!(
                    "note: --events {name:?} is not a known event type; it will still be matched"
                );
            }
            set.insert(t);
        }
        Some(set)
    };

    let (signing, created) = settings::signing(account, &args.secret, true)?;
    let ip: std::net::IpAddr = args.host.parse().with_context(|| {
        format!(
            "--host {:?} is not an IP address (e.g. 127.0.0.1)",
            args.host
        )
    })?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, args.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{}: is the port in use? Pick another with --port",
                args.host, args.port
            )
        })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let shown_ip = if ip.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    // SocketAddr's Display brackets IPv6 addresses, as URLs need.
    let url = format!(
        "http://{}{}",
        SocketAddr::new(shown_ip, addr.port()),
        args.path
    );

    let receiver = Arc::new(Listener {
        json: args.json,
        events,
        forward,
    });
    let on_delivery = {
        let receiver = Arc::clone(&receiver);
        move |delivery: WebhookDelivery| {
            let receiver = Arc::clone(&receiver);
            async move { receiver.deliver(delivery).await }
        }
    };
    let on_reject = {
        let json = args.json;
        move |rejection: &Rejection| print_rejection(json, rejection)
    };
    let mut methods = vec![DeliveryMethod::Post];
    if args.accept_put {
        methods.push(DeliveryMethod::Put);
    }
    let options = HandlerOptions::for_deliveries(signing.client_id.clone(), on_delivery)
        .secret(signing.secret.clone())
        .methods(methods)
        .on_reject(on_reject);
    let handler = create_handler(options)?;
    let app = axum::Router::new().route_service(&args.path, handler);
    // Installed before announcing, so a Ctrl-C right after the banner still stops cleanly.
    let shutdown = shutdown_signal()?;

    if let Some(mut dev) = signing.dev.clone() {
        let path = dev_credentials::path()?;
        if created {
            eprintln!(
                "Created a development secret in {} (mode 0600).",
                path.display()
            );
        }
        // Only values that came from the development file are printed, never a configured secret.
        if signing.dev_client_id {
            eprintln!("Development client id: {}", signing.client_id);
        }
        if signing.dev_secret {
            eprintln!("Development secret:    {}", signing.secret);
        }
        if signing.dev_client_id != signing.dev_secret {
            let (configured, development) = if signing.dev_client_id {
                ("secret", "client id")
            } else {
                ("client id", "secret")
            };
            eprintln!(
                "note: using your configured {configured} with the development {development}; set both CCAI_CLIENT_ID and CCAI_WEBHOOK_SECRET to verify real deliveries"
            );
        }
        // `ccai trigger` sends here by default.
        dev.listen_url = Some(url.clone());
        dev_credentials::save(&dev)?;
    }

    eprintln!("Listening on {url}");
    if let Some(forward) = &receiver.forward {
        eprintln!("Forwarding verified deliveries to {}", forward.url);
    }
    eprintln!("Try it: ccai trigger message.sent    (Ctrl-C to stop)");

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the listener stopped with an error")?;
    eprintln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

impl Listener {
    async fn deliver(&self, delivery: WebhookDelivery) -> Result<(), anyhow::Error> {
        let event = &delivery.event;
        if let Some(events) = &self.events {
            if !events.contains(&event.event_type) {
                return Ok(());
            }
        }
        let forwarded = match &self.forward {
            None => None,
            Some(forward) => Some(forward.send(&delivery).await),
        };
        let (clock, timestamp) = clock::now();
        if self.json {
            let mut line = json!({
                "time": timestamp,
                "status": "received",
                "eventType": event.event_type.as_str(),
                "eventHash": event.event_hash,
                "data": event.data,
            });
            if let Some(result) = &forwarded {
                line["forward"] = match result {
                    Ok(status) => json!({"status": status}),
                    Err(e) => json!({"error": e.to_string()}),
                };
            }
            emit(&line.to_string());
        } else {
            let mut line = format!(
                "{clock}  {:<26}  {}  #{}",
                event.event_type.as_str(),
                output::event_summary(event),
                output::short_hash(&event.event_hash)
            );
            match &forwarded {
                Some(Ok(status)) => line.push_str(&format!("  -> forwarded {status}")),
                Some(Err(e)) => line.push_str(&format!(
                    "  -> forward FAILED: {e} (answered 500 so the sender retries)"
                )),
                None => {}
            }
            emit(&line);
        }
        match forwarded {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Forward {
    /// Sends the exact received bytes and signature on; a non-2xx answer is a failure.
    async fn send(&self, delivery: &WebhookDelivery) -> Result<u16, anyhow::Error> {
        let mut request = self
            .http
            .request(http::request_method(delivery.method), self.url.clone())
            .header("Content-Type", "application/json")
            .body(delivery.body.clone());
        if let Some(signature) = &delivery.signature {
            request = request.header(SIGNATURE_HEADER, signature.as_str());
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow::anyhow!("cannot connect to {}", self.url)
            } else if e.is_timeout() {
                anyhow::anyhow!(
                    "{} did not answer within {} s",
                    self.url,
                    http::TIMEOUT.as_secs()
                )
            } else {
                anyhow::anyhow!("{}: {}", self.url, e.without_url())
            }
        })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            Ok(status)
        } else {
            Err(anyhow::anyhow!("{} answered {status}", self.url))
        }
    }
}

fn print_rejection(json: bool, rejection: &Rejection) {
    if matches!(rejection, Rejection::Callback(_)) {
        // `deliver` already printed the event with its failed forward.
        return;
    }
    let (clock, timestamp) = clock::now();
    let status = rejection.status().as_u16();
    if json {
        emit(
            &json!({"time": timestamp, "status": "rejected", "code": status, "reason": rejection.to_string()})
                .to_string(),
        );
    } else {
        emit(&format!("{clock}  REJECTED {status}  {rejection}"));
    }
}

/// Resolves on Ctrl-C (or SIGTERM). The handlers are installed when this is called, not when the
/// future is first polled.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install the Ctrl-C handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// `--path` must be a plain path: axum reads `:x`, `{x}` and `*x` as route parameters.
fn check_path(path: &str) -> Result<()> {
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if !path.starts_with('/') || !plain || path.contains("//") {
        bail!("--path {path:?} must be a plain path like /webhook (letters, digits, / - . _ ~)");
    }
    Ok(())
}

/// Writes one line to stdout; a closed pipe (`ccai listen | head`) is not a reason to panic.
fn emit(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
