//! `ccai ui` and `ccai listen --ui`: a browser view of the durable inbox. One page (HTML, CSS
//! and JavaScript embedded in the binary: no build step, no CDN, works offline) over a small JSON
//! API under `/api/` ([`api`]), with server-sent events for live updates ([`live`]).
//!
//! Bound to the loopback by default. Any other address requires a token
//! ([`access`](mod@access)): given with `--token`, or generated and printed.

pub(crate) mod access;
mod api;
mod live;
mod reads;

use crate::stdout::errln;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ccai::inbox::{ListFilter, ListRequest, Store};
use tokio::sync::watch;

use self::access::{Access, Flags};
use super::events::format::escape_line;

/// Connections the view serves at once; more wait to be accepted. A few browser tabs, each with
/// its live-update stream, need a handful.
const MAX_CONNECTIONS: usize = 128;
/// Connections one client (an address; an IPv6 /64) is served at once; past it, its further
/// connections are closed at once. A quarter of [`MAX_CONNECTIONS`], as on the admin listener:
/// without it, one client opening connections and trickling their heads held every slot until
/// the header timeout, and every other page waited; now that takes four addresses. Still room
/// for a browser (6 connections a host) or several, or the [`live::MAX_STREAMS_PER_CLIENT`]
/// streams one client may hold with requests beside them.
const MAX_CONNECTIONS_PER_CLIENT: usize = 32;
use crate::cli::UiArgs;

/// `ccai ui`: serves the view of an existing inbox until Ctrl-C; with `client_id`
/// (`--client-id` on the command line), of that account's events only.
pub(crate) async fn run(args: UiArgs, client_id: Option<String>) -> Result<ExitCode> {
    if client_id.as_deref() == Some("") {
        bail!("--client-id is empty: give the account's client id, or leave it out to see every account's events");
    }
    // Checked before the store is opened: a refused token is a usage error whatever the store.
    let flags = Flags {
        host: "--host",
        port: "--port",
        token: crate::setting_name::UI_TOKEN,
    };
    let access = Access::new(&args.host, args.token, args.token_source, flags)?;
    // The view reads; its replay buttons write, and answer a store opened read-only with why.
    let (store, read_only) =
        super::events::open_store_noting(args.store, super::events::Access::Read).await?;
    if let Some(why) = read_only {
        // The reason alone: "the inbox store is unavailable" would contradict a view that shows it.
        let why = match why {
            ccai::inbox::StoreError::Unavailable(reason) => reason,
            other => other.to_string(),
        };
        errln!("Opened the store read-only, so replays are refused: {why}");
    }
    let (stop, stopped) = watch::channel(false);
    let signal = super::listen::shutdown_signal("Stopped at once.", || ())?;
    let bound = bind(access, args.port).await?;
    let serving = serve(bound, Arc::clone(&store), client_id.clone(), stopped)?;
    // Before the address: what the view shows is part of what is announced.
    if let Some(client_id) = &client_id {
        errln!(
            "Showing client id {}'s events only (the counters and the chart count every account's).",
            escape_line(client_id)
        );
        // A mistyped id shows an empty list that looks like a quiet inbox: said once here.
        let one = ListRequest::new(ListFilter::new().client_id(client_id.as_str()), 1);
        if store
            .list(one)
            .await
            .is_ok_and(|page| page.events.is_empty())
        {
            errln!(
                "No event is stored for client id {} yet (`ccai events list --json` shows each event's clientId).",
                escape_line(client_id)
            );
        }
    }
    serving.announce();
    errln!("Ctrl-C to stop.");
    signal.await;
    let _ = stop.send(true);
    serving.stopped().await;
    errln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// The view's server, running.
#[derive(Debug)]
pub(crate) struct Serving {
    /// Where to open it (without the token).
    url: String,
    access: Arc<Access>,
    task: tokio::task::JoinHandle<()>,
    /// The view's routes, to be served on `ccai listen --admin-port` too ([`Self::router_for`]).
    router: axum::Router,
}

/// Checks `--ui-host`/`--ui-token` as [`Access::new`] does (for `ccai listen --ui`, before
/// anything else starts).
pub(crate) fn access(
    host: &str,
    token: Option<String>,
    token_source: Option<clap::parser::ValueSource>,
) -> Result<Access> {
    let flags = Flags {
        host: "--ui-host",
        port: "--ui-port",
        token: crate::setting_name::LISTEN_UI_TOKEN,
    };
    Access::new(host, token, token_source, flags)
}

/// The view's listener, bound but not served yet ([`serve`]).
pub(crate) struct BoundView {
    listener: tokio::net::TcpListener,
    access: Access,
}

impl BoundView {
    /// The address the view is bound to.
    pub(crate) fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds the view on `access`'s address and `port`. Apart from [`serve`] so that `ccai listen
/// --ui` finds a taken port before it creates a store.
pub(crate) async fn bind(access: Access, port: u16) -> Result<BoundView> {
    let flags = access.flags();
    let listener = crate::http::bind(
        SocketAddr::new(access.ip(), port),
        "serve the view on",
        flags.host,
        flags.port,
        "another `ccai ui` or `ccai listen --ui`",
    )
    .await?;
    Ok(BoundView { listener, access })
}

/// Serves `store` on the `bound` listener (`account`'s events only, if given) until `stop`
/// turns true.
pub(crate) fn serve(
    bound: BoundView,
    store: Arc<dyn Store>,
    account: Option<String>,
    stop: watch::Receiver<bool>,
) -> Result<Serving> {
    let BoundView { listener, access } = bound;
    let addr = listener
        .local_addr()
        .context("cannot read the view's bound address")?;
    let url = format!("http://{}/", crate::http::reachable(addr));
    let access = Arc::new(access);
    let changes = live::watch_store(Arc::clone(&store), stop.clone());
    let app = api::router(store, changes, Arc::clone(&access), account);
    let router = app.clone();
    let mut stop_serving = stop;
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop_serving.wait_for(|stop| *stop).await;
        };
        // The hardened server: a client that opens connections and sends nothing is cut off
        // instead of holding file descriptors.
        ccai::server::Server::new()
            .max_connections(MAX_CONNECTIONS)
            .max_connections_per_client(MAX_CONNECTIONS_PER_CLIENT)
            .shutdown_grace(std::time::Duration::from_secs(2))
            .serve_with_shutdown(listener, app, shutdown)
            .await;
    });
    Ok(Serving {
        url,
        access,
        task,
        router,
    })
}

impl Serving {
    /// The URL to open: with `?token=` when a token was generated for this run (the page keeps
    /// it and takes it out of the address bar). A token the user gave is theirs to add: it is
    /// never printed.
    pub(crate) fn open_url(&self) -> String {
        match self.access.token() {
            Some(token) if self.access.token_generated() => format!("{}?token={token}", self.url),
            Some(_) => format!("{}?token=TOKEN", self.url),
            None => self.url.clone(),
        }
    }

    /// Prints where the view is (and, off the loopback, that it needs the token).
    pub(crate) fn announce(&self) {
        errln!("UI on {}", self.open_url());
        if self.access.token().is_some() {
            errln!(
                "The view requires its token (Authorization: Bearer TOKEN, or ?token=TOKEN as above){}",
                if self.access.token_generated() {
                    format!(
                        "; it was generated for this run (pass {} to choose one)",
                        self.access.token_flag()
                    )
                } else {
                    format!(": the one {} (not printed)", self.access.token_given())
                }
            );
        }
    }

    /// The view's routes for another listener bound to `ip` (`ccai listen --admin-port`), where
    /// its own rules still protect it: on the loopback (its `Host` check), or anywhere with its
    /// token. A view without a token on a socket other hosts reach would be open to them: their
    /// clients write `Host` themselves.
    pub(crate) fn router_for(&self, ip: IpAddr) -> Option<axum::Router> {
        (ip.is_loopback() || self.access.token().is_some()).then(|| self.router.clone())
    }

    /// Waits until the server has stopped (after the stop signal).
    pub(crate) async fn stopped(self) {
        let _ = self.task.await;
    }
}
