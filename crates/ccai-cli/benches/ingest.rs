//! Ingest and forward load benchmark of `ccai listen`, the real binary, over HTTP on 127.0.0.1.
//!
//! ```sh
//! cargo bench -p ccai-cli --bench ingest
//! ```
//!
//! Starts one `ccai listen` process per target, side by side: `--no-store` (in memory, the
//! baseline), `--store` with `synchronous=FULL` (the default) and with `--sync normal`. Each round
//! sends `REQUESTS` unique signed deliveries (a new `eventHash` per request: a fixed body would
//! only measure the duplicate path) to each target over `CONNECTIONS` keep-alive connections, the
//! targets' order rotating every round, backwards every other round (so that each target follows
//! each other one as often: a store's checkpoint after its round lands on whoever comes next), and
//! the machine's noise spreads over all of them. Each target keeps its connections from the
//! warm-up on. Every request must be answered 200, and afterwards each store must hold exactly one
//! new event per request (a duplicate is answered 200 too). Reports requests/s, p50 and p99 per
//! target and the ratio to `--no-store`.
//!
//! Then measures forwarding: a `ccai listen --store … --forward-to` in front of a local target
//! that answers 200 at once, loaded with `FORWARD_EVENTS` deliveries; reports the events/s that
//! reach the target (from the first request to the last event received).
//!
//! With `CCAI_TEST_POSTGRES_URL` set (e.g. `postgres://postgres@127.0.0.1:5432/test`), also the
//! PostgreSQL store: one `ccai listen --store postgres://…` against three on the same schema (the
//! connections spread over them), rounds interleaved, with the CPU time the receivers, the
//! PostgreSQL server processes and this load generator each spent per 1,000 events (Linux
//! `/proc`). The schema is dropped at the end (with `psql`). `PG_LATENCY_MS=N` repeats that with
//! the receivers reaching the database through a proxy that delays each direction N ms (tokio's
//! 1 ms timer ticks round each delay up: `PG_LATENCY_MS=1` measured 4.7 ms per round trip).
//!
//! Environment (all optional): `CONNECTIONS` (default 32), `REQUESTS` per target per round
//! (default 2000), `ROUNDS` (default 10), `WARMUP` deliveries per target before the rounds
//! (default 500; also before the PostgreSQL rounds), `FORWARD_EVENTS` (default 5000), `FORWARD_ROUNDS` (default 1),
//! `CCAI_TEST_POSTGRES_URL`, `PG_LATENCY_MS`, `COMPARE_BIN` (the path of another `ccai` build,
//! e.g. an older commit's, run as one more `--store` target in the same rounds and as a second
//! forwarder after each forwarding round, for A/B figures), `GROWN_EVENTS` (fill a store file
//! with that many unique events first, e.g. 1000000, and run `ccai listen --store` on it as one
//! more target in the same rounds: how ingest over HTTP holds up as the store grows, against the
//! `store (FULL)` target that starts empty). A value that is not a whole number stops the run.

#[path = "../tests/common/drop_schema.rs"]
mod drop_schema;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use ccai::event::WebhookEventType;
use ccai::inbox::{Inserted, NewDelivery, SqliteOptions, SqliteStore, Store};
use ccai::signature::SignedDelivery;

const CLIENT_ID: &str = "1231";
const SECRET: &str = "ingest-bench-secret";

fn env(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `ccai listen`, killed on drop.
struct Listen {
    name: &'static str,
    addr: SocketAddr,
    child: Child,
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_listen(name: &'static str, dir: &Path, extra: &[&str]) -> Listen {
    start_listen_bin(env!("CARGO_BIN_EXE_ccai"), name, dir, extra)
}

fn start_listen_bin(bin: &str, name: &'static str, dir: &Path, extra: &[&str]) -> Listen {
    let port = free_port();
    let child = Command::new(bin)
        .args(["listen", "--quiet", "--port", &port.to_string()])
        .args(extra)
        .env("CCAI_CLIENT_ID", CLIENT_ID)
        .env("CCAI_WEBHOOK_SECRET", SECRET)
        .env("CCAI_CONFIG_DIR", dir.join("config"))
        .env("CCAI_DATA_DIR", dir.join("data"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ccai listen");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{name} did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    Listen { name, addr, child }
}

/// The types the deliveries cycle through: a store's type index then grows at several places,
/// as it does with real traffic, not only at its end.
const TYPES: [WebhookEventType; 4] = [
    WebhookEventType::MessageSent,
    WebhookEventType::MessageIncoming,
    WebhookEventType::MessageExcluded,
    WebhookEventType::MessageErrorCarrier,
];

/// A unique, realistic delivery, its type the `n`th of [`TYPES`] (every data field is optional,
/// so one `data` suits them all).
fn delivery(n: usize, hash: &str) -> (Vec<u8>, String) {
    let serde_json::Value::Object(data) = serde_json::json!({
        "SmsSid": 12345, "MessageStatus": "DELIVERED", "To": "+14155550100",
        "Message": "Hello John, your appointment is confirmed.", "CustomData": "order-42",
        "ClientExternalId": "customer-7", "CampaignId": 98765,
        "CampaignTitle": "Appointment reminders", "Segments": 1, "TotalPrice": 0.0079
    }) else {
        unreachable!("a JSON object literal")
    };
    let signed = SignedDelivery::builder(TYPES[n % TYPES.len()].clone(), hash)
        .data(data)
        .sign(CLIENT_ID, SECRET);
    let signature = signed.signature().to_owned();
    (signed.into_body(), signature)
}

/// One client per connection (each keeps one keep-alive connection), built once per target
/// outside the timed window and reused in every round, so that the warm-up warms the connections
/// and no round pays for client construction or TCP connects.
fn clients(connections: usize) -> Vec<reqwest::Client> {
    (0..connections)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client")
        })
        .collect()
}

/// Sends `requests` unique deliveries to `addr` over `clients` (one keep-alive connection each);
/// returns when the load started, the wall time and every request's latency.
async fn load(
    addr: SocketAddr,
    clients: &[reqwest::Client],
    prefix: &str,
    requests: usize,
) -> (Instant, Duration, Vec<Duration>) {
    load_spread(&[addr], clients, prefix, requests).await
}

/// [`load`] with the connections spread round-robin over `addrs` (several receivers behind what
/// would be a load balancer).
async fn load_spread(
    addrs: &[SocketAddr],
    clients: &[reqwest::Client],
    prefix: &str,
    requests: usize,
) -> (Instant, Duration, Vec<Duration>) {
    let prepared: Vec<(Vec<u8>, String)> = (0..requests)
        .map(|i| delivery(i, &format!("{prefix}-{i}")))
        .collect();
    let prepared = Arc::new(prepared);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (connection, http) in clients.iter().cloned().enumerate() {
        let url = format!("http://{}/webhook", addrs[connection % addrs.len()]);
        let (prepared, next) = (prepared.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, signature)) = prepared.get(i) else {
                    break;
                };
                let t = Instant::now();
                let answer = http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-CCAI-Signature", signature)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("request");
                let status = answer.status();
                let _ = answer.bytes().await;
                assert_eq!(status, 200, "delivery {i} not acknowledged");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    (started, started.elapsed(), all)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let connections = env("CONNECTIONS", 32);
    let requests = env("REQUESTS", 2000);
    let rounds = env("ROUNDS", 10);
    let forward_events = env("FORWARD_EVENTS", 5000);
    let warmup = env("WARMUP", 500);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

    let mut targets = vec![
        start_listen("no-store", dir.path(), &["--no-store"]),
        start_listen("store (FULL)", dir.path(), &["--store", &path("full.db")]),
        start_listen(
            "store (NORMAL)",
            dir.path(),
            &["--store", &path("normal.db"), "--sync", "normal"],
        ),
    ];
    if let Ok(bin) = std::env::var("COMPARE_BIN") {
        targets.push(start_listen_bin(
            &bin,
            "COMPARE_BIN store (FULL)",
            dir.path(),
            &["--store", &path("compare.db")],
        ));
    }
    let grown = env("GROWN_EVENTS", 0);
    if grown > 0 {
        let file = path("grown.db");
        fill(&file, grown).await;
        targets.push(start_listen(
            "store (FULL), grown",
            dir.path(),
            &["--store", &file],
        ));
    }
    println!(
        "ingest: {rounds} rounds x {requests} unique deliveries per target, {connections} connections"
    );
    // Warm-up: connections, page cache, the store files' first pages.
    let pools: Vec<Vec<reqwest::Client>> = targets.iter().map(|_| clients(connections)).collect();
    for (t, target) in targets.iter().enumerate() {
        load(target.addr, &pools[t], &format!("warm-{t}"), warmup).await;
    }
    let mut wall = vec![Duration::ZERO; targets.len()];
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); targets.len()];
    for round in 0..rounds {
        let n = targets.len();
        for k in 0..n {
            // Every other round runs the rotation backwards, so that each target follows each
            // other one as often (a store's checkpoint after its round lands on the next target).
            let t = if round % 2 == 0 {
                (round + k) % n
            } else {
                (round + n - 1 - k) % n
            };
            let prefix = format!("r{round}-t{t}");
            let (_, elapsed, lat) = load(targets[t].addr, &pools[t], &prefix, requests).await;
            wall[t] += elapsed;
            latencies[t].extend(lat);
        }
    }
    let base_rps = (rounds * requests) as f64 / wall[0].as_secs_f64();
    if grown > 0 {
        // Targets 1 and the last: the same build and settings, one store empty at the start.
        let rate = |t: usize| (rounds * requests) as f64 / wall[t].as_secs_f64();
        println!(
            "growth: with {grown} events stored, {:.0} requests/s against {:.0} for the store that started empty: {:.2}x",
            rate(targets.len() - 1),
            rate(1),
            rate(targets.len() - 1) / rate(1)
        );
    }
    println!("| target | requests/s | ratio | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for (t, target) in targets.iter().enumerate() {
        let rps = (rounds * requests) as f64 / wall[t].as_secs_f64();
        let mut sorted = latencies[t].clone();
        sorted.sort();
        println!(
            "| {} | {:.0} | {:.2} | {} | {} |",
            target.name,
            rps,
            rps / base_rps,
            ms(percentile(&sorted, 0.50)),
            ms(percentile(&sorted, 0.99)),
        );
    }
    drop(targets);
    // Every request must have stored a new event: a duplicate is also answered 200.
    let mut files = vec![("full.db", 0), ("normal.db", 0)];
    if std::env::var("COMPARE_BIN").is_ok() {
        files.push(("compare.db", 0));
    }
    if grown > 0 {
        files.push(("grown.db", grown));
    }
    for (file, before) in files {
        let stored: usize = rusqlite::Connection::open(path(file))
            .and_then(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)))
            .expect("count the stored events");
        assert_eq!(
            stored,
            before + warmup + rounds * requests,
            "events stored in {file}"
        );
    }

    if let Some(url) = std::env::var("CCAI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        // Then, with `PG_LATENCY_MS`, the database as if on another machine: round trips, not
        // CPU, bound the receivers.
        let latency_ms = env("PG_LATENCY_MS", 0);
        let delayed = (latency_ms > 0).then(|| Duration::from_millis(latency_ms as u64));
        for one_way in std::iter::once(None).chain(delayed.map(Some)) {
            postgres(
                &url,
                dir.path(),
                rounds,
                requests,
                connections,
                warmup,
                one_way,
            )
            .await;
        }
    }

    // Forwarding: events/s that reach a target answering 200 at once; with `COMPARE_BIN`, that
    // build too, alternating.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind target");
    let target_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut forwarders = vec![(
        "store + forward".to_owned(),
        env!("CARGO_BIN_EXE_ccai").to_owned(),
    )];
    if let Ok(bin) = std::env::var("COMPARE_BIN") {
        forwarders.push(("COMPARE_BIN store + forward".to_owned(), bin));
    }
    for round in 0..env("FORWARD_ROUNDS", 1) {
        for (which, (name, bin)) in forwarders.iter().enumerate() {
            let db = path(&format!("forward-{round}-{which}.db"));
            let forwarder = start_listen_bin(
                bin,
                "forward",
                dir.path(),
                &[
                    "--store",
                    &db,
                    "--forward-to",
                    &format!("http://{target_addr}/hook"),
                ],
            );
            received.store(0, Ordering::Relaxed);
            // From the first request (the deliveries are signed before it), not from before the
            // signing.
            let (started, ingest, _) = load(
                forwarder.addr,
                &clients(connections),
                &format!("fwd{round}"),
                forward_events,
            )
            .await;
            let deadline = Instant::now() + Duration::from_secs(300);
            while received.load(Ordering::Relaxed) < forward_events {
                assert!(Instant::now() < deadline, "forwarding did not finish");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let total = started.elapsed();
            println!(
                "forward ({name}): {forward_events} events ingested in {:.2} s ({:.0}/s), all delivered to the target after {:.2} s: {:.0} events/s end to end",
                ingest.as_secs_f64(),
                forward_events as f64 / ingest.as_secs_f64(),
                total.as_secs_f64(),
                forward_events as f64 / total.as_secs_f64(),
            );
        }
    }
}

/// Fills the store file `path` with `events` unique signed deliveries through the library (64
/// concurrent inserters, as in-process callers would), and reports its size.
async fn fill(path: &str, events: usize) {
    const INSERTERS: usize = 64;
    let started = Instant::now();
    let store =
        Arc::new(SqliteStore::open(path, SqliteOptions::default()).expect("open the store"));
    let mut tasks = Vec::new();
    for task in 0..INSERTERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = task;
            while n < events {
                let hash = format!(
                    "grown-{:016x}-{n}",
                    (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                );
                let (body, signature) = delivery(n, &hash);
                let event_type = TYPES[n % TYPES.len()].as_str();
                let event = NewDelivery::new(CLIENT_ID, hash, event_type, body)
                    .signature(signature)
                    .content_type("application/json");
                loop {
                    match store.insert(event.clone()).await {
                        Ok(Inserted::New) => break,
                        Ok(other) => panic!("grown event {n} was {other:?}"),
                        Err(e) if e.is_transient() => {
                            tokio::time::sleep(Duration::from_millis(1)).await
                        }
                        Err(e) => panic!("filling the grown store: {e}"),
                    }
                }
                n += INSERTERS;
            }
        }));
    }
    for task in tasks {
        task.await.expect("inserter");
    }
    drop(store);
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "grown store: {events} events in {:.1} s, {:.1} MiB",
        started.elapsed().as_secs_f64(),
        size as f64 / 1048576.0
    );
}

/// CPU time (user + system) so far of the processes `pids`, in seconds.
fn cpu_of(pids: impl IntoIterator<Item = u32>) -> f64 {
    let ticks: f64 = clock_ticks();
    pids.into_iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name (which may hold spaces) ends with ')'.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / ticks)
        })
        .sum()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Every PostgreSQL server process (backends, WAL writer, checkpointer …).
fn postgres_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .collect()
}

/// CPU seconds so far: receivers, PostgreSQL, this process (the load generator).
fn cpu_snapshot(receivers: &[&Listen]) -> [f64; 3] {
    [
        cpu_of(receivers.iter().map(|l| l.child.id())),
        cpu_of(postgres_pids()),
        cpu_of([std::process::id()]),
    ]
}

/// One receiver against three on one PostgreSQL schema, interleaved rounds; with `latency`, the
/// receivers reach the database through a proxy that delays each direction that long.
async fn postgres(
    base: &str,
    dir: &Path,
    rounds: usize,
    requests: usize,
    connections: usize,
    warmup: usize,
    latency: Option<Duration>,
) {
    // A schema per call: the PG_LATENCY_MS run must not find the first run's events (its same
    // eventHashes would all be duplicates, also answered 200) when the DROP failed.
    let tag = latency.map_or(0, |d| d.as_millis());
    let schema = format!("ccai_bench_{}_{tag}", std::process::id());
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut store = format!("{base}{separator}schema={schema}");
    if let Some(one_way) = latency {
        let mut url = reqwest::Url::parse(&store).expect("a PostgreSQL URL");
        let upstream = format!(
            "{}:{}",
            url.host_str().expect("a host"),
            url.port().unwrap_or(5432)
        );
        let upstream = tokio::net::lookup_host(&upstream)
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .expect("the database's address");
        let proxy = delaying_proxy(upstream, one_way).await;
        url.set_host(Some("127.0.0.1")).expect("set host");
        url.set_port(Some(proxy.port())).expect("set port");
        store = url.to_string();
    }
    let receivers = [
        start_listen("postgres A", dir, &["--store", &store]),
        start_listen("postgres B", dir, &["--store", &store]),
        start_listen("postgres C", dir, &["--store", &store]),
    ];
    let addrs: Vec<SocketAddr> = receivers.iter().map(|r| r.addr).collect();
    let setups: [(&str, &[SocketAddr]); 2] =
        [("one receiver", &addrs[..1]), ("three receivers", &addrs)];
    let pools = [clients(connections), clients(connections)];
    for (s, (name, addrs)) in setups.iter().enumerate() {
        load_spread(addrs, &pools[s], &format!("pg-warm-{name}"), warmup).await;
    }
    let mut wall = [Duration::ZERO; 2];
    let mut cpu = [[0.0_f64; 3]; 2];
    let mut latencies: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for k in 0..2 {
            let s = (round + k) % 2;
            let (_, addrs) = setups[s];
            let measured: Vec<&Listen> = receivers.iter().take(addrs.len()).collect();
            let before = cpu_snapshot(&measured);
            let (_, elapsed, lat) =
                load_spread(addrs, &pools[s], &format!("pg-r{round}-s{s}"), requests).await;
            let after = cpu_snapshot(&measured);
            wall[s] += elapsed;
            for i in 0..3 {
                cpu[s][i] += after[i] - before[i];
            }
            latencies[s].extend(lat);
        }
    }
    let distance = match latency {
        Some(one_way) => format!("database {one_way:?} away each way (delaying proxy)"),
        None => "database on 127.0.0.1".to_owned(),
    };
    println!(
        "PostgreSQL store, {distance}: {rounds} rounds x {requests} unique deliveries per setup, {connections} connections"
    );
    println!("| setup | requests/s | p50 ms | p99 ms | CPU ms per 1,000 events: receivers / PostgreSQL / load generator | cores busy |");
    println!("|---|---|---|---|---|---|");
    let events = (rounds * requests) as f64;
    for (s, (name, _)) in setups.iter().enumerate() {
        let mut sorted = latencies[s].clone();
        sorted.sort();
        let per_k = |seconds: f64| seconds * 1e3 / (events / 1e3);
        println!(
            "| {name} | {:.0} | {} | {} | {:.0} / {:.0} / {:.0} | {:.2} |",
            events / wall[s].as_secs_f64(),
            ms(percentile(&sorted, 0.50)),
            ms(percentile(&sorted, 0.99)),
            per_k(cpu[s][0]),
            per_k(cpu[s][1]),
            per_k(cpu[s][2]),
            cpu[s].iter().sum::<f64>() / wall[s].as_secs_f64(),
        );
    }
    drop(receivers);
    if let Err(e) = drop_schema::drop_schema(base, &schema) {
        eprintln!("warning: could not drop schema {schema} (psql): {e}");
    }
}

/// A TCP proxy to `upstream` that delays every chunk by `one_way` in each direction (no bandwidth
/// limit): the database as if it were on another machine. It runs on a thread and runtime of its
/// own, so that the load generator's tasks do not hold up its timers.
async fn delaying_proxy(upstream: SocketAddr, one_way: Duration) -> SocketAddr {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind proxy");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("proxy addr");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("proxy runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("proxy listener");
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(delayed_copy(client_read, server_write, one_way));
                tokio::spawn(delayed_copy(server_read, client_write, one_way));
            }
        });
    });
    addr
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (chunks, mut due) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buffer).await {
            if chunks
                .send((Instant::now() + delay, buffer[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    });
    while let Some((at, chunk)) = due.recv().await {
        tokio::time::sleep_until(at.into()).await;
        if to.write_all(&chunk).await.is_err() {
            break;
        }
    }
}
