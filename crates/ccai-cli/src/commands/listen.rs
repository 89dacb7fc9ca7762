//! `ccai listen`: a local receiver on the library's handler that verifies, stores, prints and
//! forwards. By default each verified delivery is stored durably before the 200 ([`store`]);
//! `--no-store` keeps nothing on disk and forwards before answering.

pub(crate) mod admin;
pub(crate) mod flags_needing_another;
mod own_forwards;
mod shared_probe;
mod store;

use crate::stdout::errln;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ccai::webhook::{
    create_handler, DeliveryMethod, HandlerOptions, Rejection, WebhookDelivery, WebhookEvent,
    WebhookEventType, SIGNATURE_HEADER,
};
use serde_json::{json, Value};

use crate::cli::{AccountArgs, ListenArgs};
use crate::{clock, dev_credentials, http, output, settings};
use own_forwards::{OwnForwards, FORWARDED_BY};

/// What the receiver needs per delivery (without the store).
struct Listener {
    printer: Arc<Printer>,
    forward: Option<Forward>,
}

/// How events are printed: `--json`, `--quiet`, `--events`.
#[derive(Debug)]
struct Printer {
    json: bool,
    quiet: bool,
    events: Option<HashSet<WebhookEventType>>,
    /// With `--quiet`, whether forwarding is failing: told once when it starts failing and once
    /// when it works again, instead of a line per failed attempt.
    forward_failing: std::sync::atomic::AtomicBool,
}

struct Forward {
    url: reqwest::Url,
    http: reqwest::Client,
    /// Names this receiver in each forward, and tells its own refusal of one.
    own: Arc<OwnForwards>,
}

pub(crate) async fn run(account: &AccountArgs, args: ListenArgs) -> Result<ExitCode> {
    // Output nobody reads must not stop the receiver (main waits for the last lines).
    crate::line_writer::start();
    flags_needing_another::check(&args)?;
    check_path(&args.path)?;
    let forward_url = match &args.forward_to {
        None => None,
        Some(target) => Some(http::url_flag(
            "--forward-to",
            target,
            "http://localhost:3000/webhook",
        )?),
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
                // As `ccai events list --type` says it: which types are known, to fix a typo.
                let known: Vec<&str> = WebhookEventType::KNOWN
                    .iter()
                    .map(WebhookEventType::as_str)
                    .collect();
                errln!(
                    "note: --events {name:?} is not a known event type ({}); it will still be matched",
                    known.join(", ")
                );
            }
            set.insert(t);
        }
        // An empty filter would drop every event while answering 200.
        if set.is_empty() {
            bail!("--events names no event type: give types like message.sent,message.incoming, or leave it out for all");
        }
        Some(set)
    };
    let printer = Arc::new(Printer {
        json: args.json,
        quiet: args.quiet,
        events,
        forward_failing: Default::default(),
    });
    // Checked before anything is created or changed (the store, the development secret): a
    // bad flag is a usage error that leaves nothing behind.
    let ui_access = if args.ui {
        Some(super::ui::access(
            &args.ui_host,
            args.ui_token(),
            args.ui_token_source(),
        )?)
    } else {
        None
    };
    let admin = admin::check(&args.admin)?;
    let ip = http::ip_flag("--host", &args.host)?;
    if let Some(url) = &forward_url {
        refuse_forwarding_to_itself(url, ip, args.port, &args.path)?;
    }
    // What the check above cannot see (another address, a host name, a proxy) is caught as it
    // happens: this receiver's forwards carry its id, and it refuses them when they come back.
    let own = Arc::new(OwnForwards::new(forward_url.as_ref().map(http::shown))?);
    // Zero would close connections as they open or cut every request off.
    let timeout = crate::duration_flag::timeout;
    let header_timeout = timeout("--header-timeout", &args.header_timeout)?;
    let idle_timeout = timeout("--idle-timeout", &args.idle_timeout)?;
    let body_timeout = timeout("--body-timeout", &args.body_timeout)?;
    // Requests in progress at Ctrl-C get the same grace as forwards in flight (with --no-store,
    // a request is its forward).
    let grace = grace(&args)?;
    // The configured client id and secret are checked now, their development stand-ins made only
    // once the store is open.
    let configured = settings::configured(account, &args.secret)?;
    let http_forward = match &forward_url {
        None => None,
        Some(url) => Some(forward_checked(url, own.id())?),
    };
    let store_checked = if args.no_store {
        None
    } else {
        check_storable_client_id(configured.client_id())?;
        Some(store::Inbox::check(&args, http_forward)?)
    };

    // Every port is bound before the store is opened: a port in use (the most common way a
    // start fails once the flags are right) must not leave a new, empty store file behind.
    // Binding first rather than removing the file afterwards: by then another process may have
    // opened the new store, and removing a SQLite file from under it loses what it writes.
    let listener = http::bind(
        SocketAddr::new(ip, args.port),
        "listen on",
        "--host",
        "--port",
        "another `ccai listen`",
    )
    .await?;
    let mut bound = vec![("--port", listener.local_addr()?)];
    let ui_bound = match ui_access {
        // The view shows the store: without one (--no-store) there is nothing to serve.
        Some(access) if !args.no_store => {
            let addr = SocketAddr::new(access.ip(), args.ui_port);
            http::not_bound_here("--ui-port", addr, &bound)?;
            let view = super::ui::bind(access, args.ui_port).await?;
            bound.push(("--ui-port", view.local_addr()?));
            Some(view)
        }
        _ => None,
    };
    if let Some(checked) = &admin {
        http::not_bound_here("--admin-port", checked.addr(), &bound)?;
    }
    let admin = admin::bind(admin).await?;
    // The config folder is checked (made, written to) before the store is opened, the secret
    // written only after: a config folder that refuses the start leaves no new store file, a
    // store that refuses it no secret (nor the folder made for it).
    let config_prepared = if configured.needs_development() {
        Some(dev_credentials::prepare()?)
    } else {
        None
    };

    let mut inbox = match store_checked {
        None => None,
        Some(checked) => {
            let inbox = store::Inbox::open(&args, forward_url.as_ref(), checked).await?;
            inbox.check_writable().await?;
            Some(inbox)
        }
    };

    let (signing, created) = configured.complete(true)?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    // SocketAddr's Display brackets IPv6 addresses, as URLs need.
    let url = format!("http://{}{}", http::reachable(addr), args.path);

    let forward_shown = forward_url.as_ref().map(http::shown);
    let readiness = admin::Readiness::default();
    let options = match &mut inbox {
        Some(inbox) => inbox.handler(signing.client_id.clone(), &printer, &readiness),
        None => {
            let forward = match forward_url {
                None => None,
                Some(url) => Some(Forward {
                    url,
                    http: http::client()?,
                    own: Arc::clone(&own),
                }),
            };
            let receiver = Arc::new(Listener {
                printer: Arc::clone(&printer),
                forward,
            });
            let duplicates = Arc::clone(&printer);
            HandlerOptions::for_deliveries(signing.client_id.clone(), move |delivery| {
                let receiver = Arc::clone(&receiver);
                async move { receiver.deliver(delivery).await }
            })
            // As with the store, a repeat gets a line: without one, `trigger --repeat 3` showed
            // one event and nothing of the other two answers.
            .on_duplicate(move |event| duplicates.duplicate(event, "received"))
        }
    };
    let on_reject = {
        let printer = Arc::clone(&printer);
        let readiness = readiness.clone();
        move |rejection: &Rejection| {
            if let Rejection::Unavailable(error) = rejection {
                if let Some(error) = error.downcast_ref::<ccai::inbox::StoreError>() {
                    readiness.store_refused(error);
                }
            }
            printer.rejected(rejection)
        }
    };
    let mut methods = vec![DeliveryMethod::Post];
    if args.accept_put {
        methods.push(DeliveryMethod::Put);
    }
    let options = options
        .secret(signing.secret.clone())
        .methods(methods)
        .body_timeout(Some(body_timeout))
        .on_reject(on_reject);
    let handler = create_handler(options)?;
    let app = axum::Router::new()
        .route_service(&args.path, handler)
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&own),
            own_forwards::refuse_own,
        ));
    // Installed before announcing, so a Ctrl-C right after the banner still stops cleanly.
    // Not ready from the moment the stop begins, before it is said: `/readyz` answers 503 at once.
    let shutdown = shutdown_signal(
        "Stopped at once: a delivery not answered yet is sent again by its sender, a stored forward cut off once its lease expires.",
        {
            let readiness = readiness.clone();
            move || readiness.set_accepting(false)
        },
    )?;
    // When the stop began: the forwards in flight get what is left of `--grace` once the requests
    // in progress are done, not a grace period of their own after it.
    let stop_began = Arc::new(std::sync::OnceLock::new());
    let shutdown = {
        let stop_began = Arc::clone(&stop_began);
        async move {
            shutdown.await;
            let _ = stop_began.set(std::time::Instant::now());
        }
    };
    // `--ui`: the browser view of the same store, beside the receiver.
    let (stop_ui, ui_stopped) = tokio::sync::watch::channel(false);
    let ui = match (&inbox, ui_bound) {
        // Every account's events: the inbox may be shared with receivers of other accounts.
        (Some(inbox), Some(bound)) => Some(super::ui::serve(
            bound,
            inbox.store().as_dyn(),
            None,
            ui_stopped,
        )?),
        _ => None,
    };

    // Before the development credentials are saved: `ccai trigger` must not be pointed at a
    // receiver that failed to start.
    admin::start(
        admin,
        inbox.as_ref().map(|i| i.store()),
        inbox.as_ref().and_then(|i| i.sqlite_file()),
        &readiness,
        ui.as_ref(),
    )?;

    if let Some(mut dev) = signing.dev.clone() {
        let path = dev_credentials::path()?;
        if created {
            errln!(
                "Created a development secret in {} (mode 0600).",
                path.display()
            );
        }
        // Only values that came from the development file are printed, never a configured secret.
        if signing.dev_client_id {
            errln!("Development client id: {}", signing.client_id);
        }
        if signing.dev_secret {
            errln!("Development secret:    {}", signing.secret);
        }
        if signing.dev_client_id != signing.dev_secret {
            let (configured, development) = if signing.dev_client_id {
                ("secret", "client id")
            } else {
                ("client id", "secret")
            };
            errln!(
                "note: using your configured {configured} with the development {development}; set both CCAI_CLIENT_ID and CCAI_WEBHOOK_SECRET to verify real deliveries"
            );
        }
        dev.listen_url = Some(url.clone());
        dev_credentials::save(&dev)?;
    }
    if let Some(prepared) = config_prepared {
        prepared.keep();
    }
    // `ccai trigger` sends here by default, whatever the credentials.
    let saved_url = crate::listen_url::save(&url);

    if let Some(inbox) = &inbox {
        inbox.announce().await;
    }
    if let Some(ui) = &ui {
        ui.announce();
    }
    errln!("Listening on {url}");
    if let (None, Some(forward)) = (&inbox, &forward_shown) {
        errln!("Forwarding verified deliveries to {forward}");
    }
    if signing.dev_client_id && signing.dev_secret {
        errln!("Try it: ccai trigger message.sent    (Ctrl-C to stop)");
    } else {
        // A bare `ccai trigger` signs with the development credentials (or finds none): it
        // would be answered 401. Which ones to pass, never their values.
        errln!(
            "Try it: ccai trigger message.sent with the same client id and secret (--client-id and --secret, or CCAI_CLIENT_ID and CCAI_WEBHOOK_SECRET)    (Ctrl-C to stop)"
        );
    }

    // Only now: nothing can fail the start any more (see `start_forwarding`).
    if let Some(inbox) = &mut inbox {
        inbox.start_forwarding();
    }
    readiness.set_accepting(true);
    // The library's hardened server: header-read, idle and connection limits (`--help`).
    ccai::server::Server::new()
        .header_read_timeout(header_timeout)
        .keep_alive_timeout(Some(idle_timeout))
        .max_connections(usize::try_from(args.max_connections).unwrap_or(usize::MAX))
        .shutdown_grace(grace)
        .serve_with_shutdown(listener, app, shutdown)
        .await;
    let left = stop_began
        .get()
        .map_or(grace, |began| grace.saturating_sub(began.elapsed()));
    let _ = stop_ui.send(true);
    let ui_stopped = async {
        if let Some(ui) = ui {
            ui.stopped().await;
        }
    };
    let forwards_stopped = async {
        if let Some(inbox) = inbox {
            inbox.shutdown(left).await;
        }
    };
    tokio::join!(ui_stopped, forwards_stopped);
    // Before saying so: the store's writer finishes and folds the WAL back into the file.
    crate::store_open::close_opened().await;
    saved_url.restore().await;
    errln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

impl Listener {
    async fn deliver(&self, delivery: WebhookDelivery) -> Result<(), anyhow::Error> {
        let event = &delivery.event;
        if !self.printer.shows(event) {
            return Ok(());
        }
        let forwarded = match &self.forward {
            None => None,
            Some(forward) => Some(forward.send(&delivery).await),
        };
        if !self.printer.quiet {
            emit(&self.printer.event_line(event, forwarded.as_ref()));
        }
        match forwarded {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Printer {
    /// Whether `--events` lets this event be printed.
    fn shows(&self, event: &WebhookEvent) -> bool {
        self.shows_type(&event.event_type)
    }

    fn shows_type(&self, event_type: &WebhookEventType) -> bool {
        self.events
            .as_ref()
            .is_none_or(|events| events.contains(event_type))
    }

    /// The line for a repeat answered 200 without new work (`--events` and `--quiet` apply), and
    /// why it needed none: `already` ("stored", "received").
    fn duplicate(&self, event: &WebhookEvent, already: &str) {
        if self.quiet || !self.shows(event) {
            return;
        }
        let (clock, timestamp) = clock::now();
        if self.json {
            emit(
                &json!({"time": timestamp, "status": "duplicate", "eventType": event.event_type.as_str(), "eventHash": event.event_hash})
                    .to_string(),
            );
        } else {
            emit(&format!(
                "{clock}  {:<26}  duplicate of #{} (already {already})",
                output::event_type(event),
                output::short_hash(&event.event_hash)
            ));
        }
    }

    /// The line for a received event, with the outcome of a forward done before answering.
    fn event_line(&self, event: &WebhookEvent, forwarded: Option<&Result<u16>>) -> String {
        let (clock, timestamp) = clock::now();
        if self.json {
            // `data` exactly as it arrived (`DataObject::json`): through a `Value`, integers past
            // 64 bits would turn into floats and the keys would be sorted.
            #[derive(serde::Serialize)]
            struct Line<'a> {
                time: &'a str,
                status: &'static str,
                #[serde(rename = "eventType")]
                event_type: &'a str,
                #[serde(rename = "eventHash")]
                event_hash: &'a str,
                data: &'a serde_json::value::RawValue,
                #[serde(skip_serializing_if = "Option::is_none")]
                forward: Option<Value>,
            }
            let forward = forwarded.map(|result| match result {
                Ok(status) => json!({"status": status}),
                Err(e) => json!({"error": e.to_string()}),
            });
            // The text as it arrived, on one line; the parsed value only if that text does not
            // read back, which the checks at parse time rule out.
            let data = serde_json::value::RawValue::from_string(crate::json_text::compact(
                event.data.json(),
            ))
            .or_else(|_| serde_json::value::to_raw_value(&event.data));
            data.and_then(|data| {
                serde_json::to_string(&Line {
                    time: &timestamp,
                    status: "received",
                    event_type: event.event_type.as_str(),
                    event_hash: &event.event_hash,
                    data: &data,
                    forward,
                })
            })
            .unwrap_or_default()
        } else {
            let mut line = format!(
                "{clock}  {:<26}  {}  #{}",
                output::event_type(event),
                output::event_summary(event),
                output::short_hash(&event.event_hash)
            );
            match forwarded {
                Some(Ok(status)) => line.push_str(&format!("  -> forwarded {status}")),
                Some(Err(e)) => line.push_str(&format!(
                    "  -> forward FAILED: {e} (answered 500 so the sender retries)"
                )),
                None => {}
            }
            line
        }
    }
}

impl Forward {
    /// Sends the exact received bytes and signature on; a non-2xx answer is a failure.
    async fn send(&self, delivery: &WebhookDelivery) -> Result<u16, anyhow::Error> {
        let mut request = self
            .http
            .request(http::request_method(delivery.method), self.url.clone())
            // The original content type, as the stored path forwards it.
            .header(
                "Content-Type",
                delivery
                    .content_type
                    .as_deref()
                    .unwrap_or("application/json"),
            )
            .header(FORWARDED_BY, self.own.id())
            .body(delivery.body.clone());
        if let Some(signature) = &delivery.signature {
            request = request.header(SIGNATURE_HEADER, signature.as_str());
        }
        let url = || http::shown(&self.url);
        let response = request.send().await.map_err(|e| {
            // Before `is_connect`: a failed handshake is a connect error too.
            if let Some(tls) = http::tls_failure(&e) {
                anyhow::anyhow!("{}: {tls}", url())
            } else if e.is_connect() {
                anyhow::anyhow!("cannot connect to {}: {}", url(), http::failure(e))
            } else if e.is_timeout() {
                anyhow::anyhow!(
                    "{} did not answer within {} s",
                    url(),
                    http::TIMEOUT.as_secs()
                )
            } else {
                anyhow::anyhow!("{}: {}", url(), http::failure(e))
            }
        })?;
        if response.status().is_success() {
            Ok(response.status().as_u16())
        } else if self.own.refused_by_itself(&response) {
            Err(anyhow::anyhow!(
                "{} answered 508: {}",
                url(),
                own_forwards::LOOP_ANSWER
            ))
        } else {
            Err(anyhow::anyhow!(
                "{} {}",
                url(),
                http::refused(response.status())
            ))
        }
    }
}

impl Printer {
    fn rejected(&self, rejection: &Rejection) {
        let (clock, timestamp) = clock::now();
        let status = rejection.status().as_u16();
        // With its cause: a 503's message says only that the delivery could not be stored.
        let reason = rejection.with_causes();
        if self.quiet {
            // No per-event lines: a rejection (or a failed forward) is an error, on stderr.
            errln!("{clock}  REJECTED {status}  {reason}");
            return;
        }
        if matches!(rejection, Rejection::Callback(_)) {
            // `deliver` already printed the event with its failed forward.
            return;
        }
        if self.json {
            emit(
                &json!({"time": timestamp, "status": "rejected", "code": status, "reason": reason.to_string()})
                    .to_string(),
            );
        } else {
            emit(&format!("{clock}  REJECTED {status}  {reason}"));
        }
    }
}

/// Resolves on Ctrl-C (or SIGTERM), having called `stopping` before saying so. The handlers are
/// installed when this is called, not when the future is first polled.
///
/// A second Ctrl-C (or SIGTERM) during the graceful stop exits at once, with 130 (143 for
/// SIGTERM), the shell's code for a process killed by that signal. Nothing acknowledged is lost:
/// stored events whose forward was cut off are forwarded again when their lease expires, and a
/// delivery not yet answered is retried by its sender.
pub(crate) fn shutdown_signal(
    at_once: &'static str,
    stopping: impl FnOnce() + Send + 'static,
) -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install the Ctrl-C handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        Ok(async move {
            // Said as it came: under a service manager (systemd, Docker) a stop is a SIGTERM,
            // and no one there can press Ctrl-C. At a terminal, SIGTERM would be noise.
            let again = tokio::select! {
                _ = interrupt.recv() => "Ctrl-C again",
                _ = terminate.recv() => "SIGTERM or Ctrl-C again",
            };
            stopping();
            errln!("Stopping… ({again} to stop at once)");
            tokio::spawn(async move {
                let code = tokio::select! {
                    _ = interrupt.recv() => 130,
                    _ = terminate.recv() => 143,
                };
                errln!("{at_once}");
                // Briefly: standard error may not be read at all.
                crate::line_writer::finish(std::time::Duration::from_secs(1));
                std::process::exit(code);
            });
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            stopping();
            errln!("Stopping… (Ctrl-C again to stop at once)");
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    errln!("{at_once}");
                    crate::line_writer::finish(std::time::Duration::from_secs(1));
                    std::process::exit(130);
                }
            });
        })
    }
}

/// A `--forward-to` naming this receiver's own address and path (a mistyped port, say) is
/// refused: with the store, each event was forwarded to the inbox it came from, which answered
/// 200 as a duplicate, so it showed as delivered while no application ever got it; with
/// `--no-store`, each delivery waited on a forward to itself until the forward timed out. Other
/// ways of reaching it (another address, a host name, a proxy) are caught as they happen
/// ([`own_forwards`]).
fn refuse_forwarding_to_itself(
    url: &reqwest::Url,
    ip: std::net::IpAddr,
    port: u16,
    path: &str,
) -> Result<()> {
    use std::net::IpAddr;
    // Port 0 is chosen at bind time: no URL can name it beforehand. The receiver speaks plain
    // HTTP: an https:// URL to its port fails its handshake, visibly.
    if port == 0
        || url.scheme() != "http"
        || url.port_or_known_default() != Some(port)
        || url.path() != path
    {
        return Ok(());
    }
    // 0.0.0.0 takes IPv4 connections to any local address; [::] takes both families.
    let reaches_listener = |target: IpAddr| {
        target == ip
            || (ip.is_unspecified()
                && (target.is_loopback() || target.is_unspecified())
                && (ip.is_ipv6() || target.is_ipv4()))
    };
    let host = url.host_str().unwrap_or_default();
    // An IPv6 host comes bracketed.
    let itself = match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(target) => reaches_listener(target),
        Err(_) => {
            host.eq_ignore_ascii_case("localhost") && (ip.is_loopback() || ip.is_unspecified())
        }
    };
    if itself {
        bail!(
            "--forward-to {} is this receiver's own address: every event would be forwarded back to itself and never reach your application; give your application's URL (another port or path)",
            http::shown(url)
        );
    }
    Ok(())
}

/// `--forward-to` as the store's dispatcher forwards to it, checked the same way with
/// `--no-store` (which sends with its own client and drops it): a user name or password that is
/// not UTF-8 once percent-decoded was accepted there, and reqwest then sent no `Authorization`.
/// Each forward names this receiver (`own_id`, [`FORWARDED_BY`]).
fn forward_checked(url: &reqwest::Url, own_id: &str) -> Result<ccai::inbox::HttpForward> {
    // The error says why, never the URL (it carries the credentials).
    ccai::inbox::HttpForward::new(url.as_str())
        .and_then(|forward| forward.header(FORWARDED_BY, own_id))
        .map_err(|e| anyhow::anyhow!("--forward-to: {e}"))
}

/// A configured client id the store cannot keep is refused before the store is opened: the
/// handler refuses it too (`HandlerConfigError::UnstorableClientId`), but only once the store
/// was created and the port bound.
fn check_storable_client_id(client_id: Option<&str>) -> Result<()> {
    match client_id {
        Some(id) if !ccai::event::fits_a_store_key(id) => bail!(
            "the client id (--client-id, CCAI_CLIENT_ID) is longer than {} bytes or holds a NUL character, which no store can keep: give your CloudContactAI account id",
            ccai::event::MAX_FIELD_LEN
        ),
        _ => Ok(()),
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
    // Clients (curl, browsers, `ccai trigger`, the url crate) resolve `.` and `..` segments
    // before sending: a route holding one would be announced but never reached.
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        bail!(
            "--path {path:?} has a `.` or `..` segment, which clients resolve away before sending (no delivery would reach it): write the path without them, like /webhook"
        );
    }
    Ok(())
}

/// Writes one line to stdout, inert for a terminal (`--json` lines too), without ever blocking
/// the receiver ([`line_writer`](crate::line_writer)).
fn emit(line: &str) {
    crate::line_writer::out_line(line);
}

/// `--grace`, written as one delay of a retry schedule (`ccai::inbox::parse_duration`). By
/// default 10 s, or with `--no-store` the forward timeout: there a request in progress is its
/// forward, and cutting it off would make the sender retry one the target may have received.
pub(crate) fn grace(args: &ListenArgs) -> Result<std::time::Duration> {
    let Some(text) = &args.grace else {
        return Ok(if args.no_store {
            http::TIMEOUT
        } else {
            std::time::Duration::from_secs(10)
        });
    };
    crate::duration_flag::value("--grace", text)
}
