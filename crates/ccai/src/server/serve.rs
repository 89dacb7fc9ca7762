//! [`Server`]: serving the handler (or any axum `Router`) over TCP with limits that hold against
//! slow or idle clients.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::BoxError;

/// Default [`Server::header_read_timeout`]: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Server::keep_alive_timeout`]: 5 s.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`Server::max_connections`]: 512.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The longest timeout or grace a [`Server`] takes: a year. Longer ones (`Duration::MAX`) are
/// clamped to it, since a deadline past what an `Instant` can hold would panic.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 86_400);
/// Default [`Server::shutdown_grace`]: 30 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Default [`Server::write_timeout`]: 30 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a [`Server`] serves: a cloneable tower service from hyper requests to HTTP responses (an
/// axum `Router`, a [`WebhookHandler`](super::WebhookHandler), …). Implemented for every such
/// service; not to be implemented by hand.
pub trait HttpService<B>:
    tower::Service<
        Request<Incoming>,
        Response = Response<B>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
where
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
}

impl<S, B> HttpService<B> for S
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
}

/// Serves `service` on `listener` with the [`Server`] defaults, until the process ends.
///
/// `Server::new().serve(listener, service)`; see [`Server`] for the limits and how to change them.
pub async fn serve<S, B>(listener: TcpListener, service: S)
where
    S: HttpService<B>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    Server::new().serve(listener, service).await;
}

/// An HTTP/1.1 server over a [`TcpListener`] with limits against slow, idle and too many
/// clients: what `axum::serve` leaves out.
///
/// A webhook endpoint is reachable by anyone who can reach the port, signed or not: the limits
/// below bound what a client that never finishes its request can hold. Every limit is on by
/// default; each can be changed.
///
/// | Limit | Default | Why |
/// |---|---|---|
/// | [`header_read_timeout`](Self::header_read_timeout) | 10 s | a delivery's request head is well under 1 KiB and is sent at once; a client trickling it (slowloris) holds a connection for at most this long |
/// | [`keep_alive_timeout`](Self::keep_alive_timeout) | 5 s | a sender reusing a connection sends its next delivery promptly or opens a new one; an idle connection holds a descriptor and a slot of the cap |
/// | [`max_connections`](Self::max_connections) | 512 | past the cap, connections wait in the kernel's backlog instead of being accepted, so the process never runs out of file descriptors (the common soft limit is 1024; the rest is left for the store, logs and outgoing connections) |
/// | [`max_connections_per_client`](Self::max_connections_per_client) | none | past it, a client's further connections are closed as soon as they are accepted, so that one client cannot hold every slot of the cap; off by default, since a webhook sender delivers from a few addresses |
/// | [`write_timeout`](Self::write_timeout) | 30 s | a client that stops reading its answers (say, one that pipelines requests and never reads) cannot hold a connection, and a slot of the cap, forever: hyper waits to write the answer, and no other timer runs meanwhile |
/// | [`shutdown_grace`](Self::shutdown_grace) | 30 s | on shutdown, requests in progress get this long to finish before their connections are dropped |
///
/// The deadline for reading a request's body is the handler's:
/// [`HandlerOptions::body_timeout`](super::HandlerOptions::body_timeout) (30 s by default).
///
/// Hyper's header-read timer also runs while a kept-alive connection waits for its next request,
/// so an idle connection is closed after the shorter of the two timeouts.
///
/// Every request carries the client's address as axum's [`ConnectInfo<SocketAddr>`] extension
/// (an axum handler takes it as `ConnectInfo(addr): ConnectInfo<SocketAddr>`).
///
/// ```no_run
/// use std::time::Duration;
/// use axum::Router;
/// use ccai::server::Server;
/// use ccai::webhook::{create_handler, HandlerOptions, WebhookEvent};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let handler = create_handler(
///     HandlerOptions::new("1231", |event: WebhookEvent| async move {
///         println!("{} {}", event.event_type, event.event_hash);
///         Ok::<_, std::io::Error>(())
///     })
///     .secret(std::env::var("CCAI_WEBHOOK_SECRET")?),
/// )?;
/// let app = Router::new().route_service("/webhook/ccai", handler);
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// Server::new()
///     .max_connections(256)
///     .header_read_timeout(Duration::from_secs(5))
///     .serve_with_shutdown(listener, app, async {
///         let _ = tokio::signal::ctrl_c().await;
///     })
///     .await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Server {
    header_read_timeout: Duration,
    keep_alive_timeout: Option<Duration>,
    max_connections: usize,
    max_connections_per_client: Option<usize>,
    shutdown_grace: Duration,
    write_timeout: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server with the defaults in the table above.
    pub fn new() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive_timeout: Some(DEFAULT_KEEP_ALIVE_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }

    /// How long a client has to send a complete request head (request line and headers), timed
    /// from the moment the server starts waiting for it; the connection is closed when it runs
    /// out. Default [`DEFAULT_HEADER_READ_TIMEOUT`] (10 s).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// How long a connection may stay open with no request in progress and no byte received;
    /// `None` turns keep-alive off (one request per connection). Default
    /// [`DEFAULT_KEEP_ALIVE_TIMEOUT`] (5 s).
    pub fn keep_alive_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.keep_alive_timeout = timeout.map(|t| t.min(MAX_TIMEOUT));
        self
    }

    /// The most connections served at once (at least 1). When the cap is reached, the server
    /// stops accepting until a connection closes: further clients wait in the listen backlog and
    /// hold no descriptor of this process. Default [`DEFAULT_MAX_CONNECTIONS`] (512).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// The most connections one client is served at once (at least 1), a client being an IPv4
    /// address or an IPv6 /64 ([`client_network`]). Past it, the client's further connections
    /// are closed as soon as they are accepted: without it, one client opening connections and
    /// trickling their heads holds every slot of [`max_connections`](Self::max_connections)
    /// until the header timeout, and every other client waits. Clients behind one proxy or NAT
    /// count as one. Off by default: a webhook sender delivers from a few addresses, and a cap
    /// per address would refuse its deliveries when they come in a burst.
    pub fn max_connections_per_client(mut self, max: usize) -> Self {
        self.max_connections_per_client = Some(max.max(1));
        self
    }

    /// On shutdown, how long requests in progress may take to finish before their connections
    /// are dropped. Default [`DEFAULT_SHUTDOWN_GRACE`] (30 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace.min(MAX_TIMEOUT);
        self
    }

    /// How long an answer may wait to be written because the client does not read: past it, the
    /// connection is dropped. Default [`DEFAULT_WRITE_TIMEOUT`] (30 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// Serves `service` (an axum `Router`, a [`WebhookHandler`](super::WebhookHandler), any
    /// cloneable tower service) on `listener` until the process ends.
    pub async fn serve<S, B>(self, listener: TcpListener, service: S)
    where
        S: HttpService<B>,
        B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
    {
        self.serve_with_shutdown(listener, service, std::future::pending())
            .await;
    }

    /// Serves `service` on `listener` until `signal` completes, then shuts down gracefully: stops
    /// accepting, lets requests in progress finish (for at most
    /// [`shutdown_grace`](Self::shutdown_grace)), closes idle connections, and returns.
    pub async fn serve_with_shutdown<S, B, F>(self, listener: TcpListener, service: S, signal: F)
    where
        S: HttpService<B>,
        B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
        F: Future<Output = ()> + Send,
    {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let clients = Arc::new(Clients::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut signal = pin!(signal);
        loop {
            while connections.try_join_next().is_some() {}
            // A slot first, then accept: past the cap, nothing is accepted.
            let permit = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // never closed
                },
                () = &mut signal => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_error(e).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            // Past its share, a client's connection is closed at once (its slot of the cap
            // with it): kept waiting, it would hold the slot the next client needs.
            let client_slot = match self.max_connections_per_client {
                Some(max) => match clients.admit(peer.ip(), max) {
                    Some(slot) => Some(slot),
                    None => {
                        tracing::debug!(
                            target: "ccai::server",
                            client = %client_network(peer.ip()),
                            "the client has its most connections open; closing a further one"
                        );
                        drop(stream);
                        continue;
                    }
                },
                None => None,
            };
            let connection = Connection {
                limits: self.clone(),
                permit,
                client_slot,
                peer,
                stop: stop_rx.clone(),
            };
            connections.spawn(connection.run(stream, service.clone()));
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(self.shutdown_grace, drained)
            .await
            .is_err()
        {
            tracing::warn!(
                target: "ccai::server",
                remaining = connections.len(),
                "shutdown grace period over: dropping the connections still open"
            );
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
    }
}

/// The network a per-client limit counts an address in: an IPv4 address is its own (an
/// IPv4-mapped IPv6 address counts as the IPv4 one); an IPv6 address counts as its /64, which one
/// host commonly holds whole and can take new addresses in at will. Except where a /64 is shared
/// by design, and each address is its own: link-local addresses (`fe80::/10`, every host on the
/// link has one in `fe80::/64`), Teredo's (`2001::/32`, whose /64 is the relay's, shared by all
/// its clients) and the loopback `::1`.
///
/// ```
/// use std::net::IpAddr;
/// use ccai::server::client_network;
/// let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
/// let other: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
/// assert_eq!(client_network(one), client_network(other));
/// let here: IpAddr = "fe80::1".parse().unwrap();
/// let neighbour: IpAddr = "fe80::2".parse().unwrap();
/// assert_ne!(client_network(here), client_network(neighbour));
/// ```
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if shares_its_64(v6) => IpAddr::V6(v6),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

/// Whether `v6` is in a /64 that many hosts share: link-local, Teredo, or the loopback.
fn shares_its_64(v6: Ipv6Addr) -> bool {
    let [first, second, ..] = v6.segments();
    first & 0xffc0 == 0xfe80 || (first == 0x2001 && second == 0) || v6.is_loopback()
}

/// The connections open per client network, for [`Server::max_connections_per_client`]: an
/// entry per network with a connection open, so no more than the connection cap.
#[derive(Debug, Default)]
struct Clients {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Clients {
    /// Counts one more connection of `ip`'s network, unless it has `max` open.
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let network = client_network(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(network).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: Arc::clone(self),
            network,
        })
    }
}

/// One connection of a client network, counted while it lives.
#[derive(Debug)]
struct ClientSlot {
    clients: Arc<Clients>,
    network: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Entry::Occupied(mut entry) = open.entry(self.network) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

/// An accept error is about one connection (reset before it was accepted) or about the process
/// (out of descriptors): the latter is waited out rather than spun on.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(target: "ccai::server", error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One accepted connection and what it needs.
struct Connection {
    limits: Server,
    /// Its slot of the cap, given back when the connection ends.
    permit: OwnedSemaphorePermit,
    /// Its client's slot, with a per-client cap.
    client_slot: Option<ClientSlot>,
    /// The client's address, given to every request.
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
}

/// When the connection last moved a byte, how many requests are in progress on it, and since
/// when a write has waited for the client to read.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// 1 + the millisecond a write first found the socket full; 0 while writes go through.
    write_blocked_ms: AtomicU64,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Notes how a write went: through (or failed), or waiting for the client to read.
    fn wrote<T>(&self, result: &Poll<io::Result<T>>) {
        match result {
            Poll::Pending => {
                let since = self.now_ms().saturating_add(1);
                let _ = self.write_blocked_ms.compare_exchange(
                    0,
                    since,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(_) => self.write_blocked_ms.store(0, Ordering::Relaxed),
        }
    }

    /// Since when a write has waited for the client to read, if one does.
    fn write_blocked_since(&self) -> Option<Instant> {
        match self.write_blocked_ms.load(Ordering::Relaxed) {
            0 => None,
            since => Some(self.start + Duration::from_millis(since - 1)),
        }
    }
}

/// Counts a request in progress for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection {
    async fn run<S, B>(self, stream: TcpStream, service: S)
    where
        S: HttpService<B>,
        B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
    {
        let Self {
            limits,
            permit,
            client_slot,
            peer,
            mut stop,
        } = self;
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            write_blocked_ms: AtomicU64::new(0),
        });
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let requests = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let guard = InFlight::new(&requests);
            let response = service.clone().oneshot(request);
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(limits.keep_alive_timeout.is_some());
        let mut connection = pin!(builder.serve_connection(io, service));
        let mut closing = false;
        // While a request is in progress the idle timer does not apply; it is looked at again
        // one timeout later, not at once (its deadline, from the last byte, may have passed).
        let mut idle_not_before = Instant::now();
        loop {
            let idle_deadline = limits
                .keep_alive_timeout
                .filter(|_| !closing)
                .map(|timeout| (activity.last() + timeout).max(idle_not_before));
            let write_deadline = activity
                .write_blocked_since()
                .map(|since| since + limits.write_timeout);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(target: "ccai::server", error = %e, "connection ended with an error");
                    }
                    break;
                }
                changed = stop.changed(), if !closing => {
                    let _ = changed;
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = sleep_until(idle_deadline) => {
                    // Something may have moved since the deadline was computed: then loop and
                    // wait again from the new last activity.
                    let timeout = limits.keep_alive_timeout.unwrap_or_default();
                    if activity.in_flight.load(Ordering::Relaxed) > 0 {
                        idle_not_before = Instant::now() + timeout;
                    } else if activity.last() + timeout <= Instant::now() {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
                () = sleep_until(write_deadline) => {
                    // The answer still cannot be written: the client has stopped reading, and
                    // a graceful shutdown would wait on that same write.
                    if activity
                        .write_blocked_since()
                        .is_some_and(|since| since + limits.write_timeout <= Instant::now())
                    {
                        tracing::debug!(target: "ccai::server", "the client stopped reading its answers; dropping the connection");
                        break;
                    }
                }
            }
        }
        drop(client_slot);
        drop(permit);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The TCP stream, noting when bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.wrote(&result);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(&result);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Not noted as a write: a TCP stream's flush is always ready, even while the socket is
        // full.
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked").finish_non_exhaustive()
    }
}
