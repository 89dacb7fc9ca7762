//! Store throughput of the durable inbox: concurrent inserters against `SqliteStore` with
//! `synchronous=FULL` and `NORMAL` (events/s and the group-commit batch sizes), then growth:
//! insert rate, file size and filtered list queries with an empty store versus one holding
//! `--events` events (default 1,000,000), each measured over `--probe` inserts (rate, bytes
//! written and CPU time per event). The default probe, 65,536 events, spans two whole cycles of
//! the key index's merge (one every 32,768 events), so the empty store's rounds pay for their
//! merges as the full store's do; a shorter probe leaves them out of the empty store's rate.
//!
//! ```text
//! cargo run --release -p ccai --features inbox --example inbox_bench -- [--inserters 64] [--burst 50000] [--events 1000000] [--probe 65536] [--repeat 5] [--growth-sync full|normal]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ccai::inbox::{
    BatchHistogram, DeliveryStatus, Inserted, ListFilter, ListRequest, NewDelivery, SqliteOptions,
    SqliteStore, Store, Synchronous,
};

struct Args {
    inserters: usize,
    burst: usize,
    events: usize,
    probe: usize,
    repeat: usize,
    /// `synchronous` for the growth measurement.
    growth_sync: Synchronous,
}

fn args() -> Args {
    let mut parsed = Args {
        inserters: 64,
        burst: 50_000,
        events: 1_000_000,
        probe: 65_536,
        repeat: 5,
        growth_sync: Synchronous::Full,
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        if pair[0] == "--growth-sync" {
            parsed.growth_sync = match pair.get(1).map(String::as_str) {
                Some("full") => Synchronous::Full,
                Some("normal") => Synchronous::Normal,
                _ => panic!("usage: --growth-sync full|normal"),
            };
            continue;
        }
        let value = pair.get(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            panic!("usage: --inserters N --burst N --events N --probe N --repeat N --growth-sync full|normal")
        });
        match pair[0].as_str() {
            "--inserters" => parsed.inserters = value,
            "--burst" => parsed.burst = value,
            "--events" => parsed.events = value,
            "--probe" => parsed.probe = value,
            "--repeat" => parsed.repeat = value,
            other => panic!("unknown option {other}"),
        }
    }
    parsed
}

const TYPES: [&str; 4] = [
    "message.sent",
    "message.incoming",
    "message.excluded",
    "message.error.carrier",
];

/// The `eventHash` of event `n`: random-looking, as real ones are.
fn hash_of(n: usize) -> String {
    format!(
        "{:016x}{:016x}",
        (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        n
    )
}

/// A realistic delivery of about 700 bytes.
fn delivery(n: usize, received_at: SystemTime) -> NewDelivery {
    let event_type = TYPES[n % TYPES.len()];
    let hash = hash_of(n);
    let body = format!(
        r#"{{"eventType":"{event_type}","data":{{"SmsSid":{n},"MessageStatus":"DELIVERED","To":"+1415555{:04}","Message":"Hello from the benchmark, message number {n}. Reply STOP to unsubscribe. This text pads the body to a realistic size for an SMS event as CloudContactAI sends it.","CustomData":"order-{n}","ClientExternalId":"ext-{n}","CampaignId":{},"CampaignTitle":"Benchmark campaign {}","Segments":1,"TotalPrice":0.0079}},"eventHash":"{hash}","padding":"{}"}}"#,
        n % 10_000,
        n % 97,
        n % 97,
        "x".repeat(180)
    );
    NewDelivery::new("1231", hash, event_type, body.into_bytes())
        .signature("c2lnbmF0dXJlLWZvci1iZW5jaG1hcmstb25seS1wYWQ9")
        .content_type("application/json")
        .received_at(received_at)
}

/// Inserts `count` events numbered from `first` with `inserters` concurrent tasks; returns the
/// elapsed time.
async fn insert_concurrently(
    store: &Arc<SqliteStore>,
    first: usize,
    count: usize,
    inserters: usize,
) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..inserters {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let mut n = first + task;
            while n < first + count {
                let now = SystemTime::now();
                loop {
                    match store.insert(delivery(n, now)).await {
                        Ok(Inserted::New) => break,
                        Ok(other) => panic!("event {n} was {other:?}"),
                        // A full queue: back off briefly, as a sender would retry.
                        Err(e) if e.is_transient() => {
                            tokio::time::sleep(Duration::from_millis(1)).await
                        }
                        Err(e) => panic!("insert failed: {e}"),
                    }
                }
                n += inserters;
            }
        }));
    }
    for task in tasks {
        task.await.expect("inserter");
    }
    start.elapsed()
}

fn describe(batches: &BatchHistogram) -> String {
    format!(
        "{} commits, mean {:.1} writes/commit, by write p50 {} p90 {} p99 {} max {}",
        batches.batches(),
        batches.writes() as f64 / batches.batches().max(1) as f64,
        batches.percentile_by_write(0.5),
        batches.percentile_by_write(0.9),
        batches.percentile_by_write(0.99),
        batches.max()
    )
}

/// CPU time this process has used so far (user + system, from `/proc/self/stat`; zero where
/// that file does not exist): less sensitive than wall time to what else the machine runs.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// Bytes this process has written through write syscalls so far (`wchar` in `/proc/self/io`;
/// 0 where that file does not exist): the WAL and checkpoint traffic per event.
fn bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|line| line.strip_prefix("wchar: ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Inserts `count` events from `first` and prints the rate, the bytes written and the CPU time
/// per event.
async fn measure(
    store: &Arc<SqliteStore>,
    first: usize,
    count: usize,
    inserters: usize,
    label: &str,
) -> f64 {
    let (written, cpu) = (bytes_written(), cpu_time());
    let elapsed = insert_concurrently(store, first, count, inserters).await;
    let count_f = count.max(1) as f64;
    let rate = count_f / elapsed.as_secs_f64();
    println!(
        "  {label}: {rate:.0} events/s, {:.1} KiB written and {:.1} µs of CPU per event",
        (bytes_written() - written) as f64 / count_f / 1024.0,
        (cpu_time() - cpu).as_secs_f64() * 1e6 / count_f
    );
    rate
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn file_size(dir: &std::path::Path) -> u64 {
    ["inbox.db", "inbox.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// The median time of `runs` runs of `query`.
async fn median_query<F, Fut>(runs: usize, mut query: F) -> (Duration, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..runs {
        let start = Instant::now();
        found = query().await;
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], found)
}

/// List, stats and lookups by hash of the first and the `newest` event.
async fn queries(store: &Arc<SqliteStore>, label: &str, newest: usize) {
    for (name, n) in [("the first event", 0), ("the newest event", newest)] {
        let hash = hash_of(n);
        let (time, found) = median_query(5, || {
            let store = Arc::clone(store);
            let hash = hash.clone();
            async move { store.get(&hash).await.expect("get").map_or(0, |_| 1) }
        })
        .await;
        println!("    {label}: get {name} by hash: {time:?} ({found} found)");
    }
    let requests = [
        (
            "type=message.incoming, newest 50",
            ListFilter::new().event_type("message.incoming"),
        ),
        (
            "status=pending + type, newest 50",
            ListFilter::new()
                .status(DeliveryStatus::Pending)
                .event_type("message.sent"),
        ),
        (
            "since 1 min ago, newest 50",
            ListFilter::new().since(SystemTime::now() - Duration::from_secs(60)),
        ),
        (
            "text \"order-4242\" (body scan)",
            ListFilter::new().text("order-4242\""),
        ),
    ];
    for (name, filter) in requests {
        let (time, found) = median_query(5, || {
            let store = Arc::clone(store);
            let filter = filter.clone();
            async move {
                store
                    .list(ListRequest::new(filter, 50))
                    .await
                    .expect("list")
                    .events
                    .len()
            }
        })
        .await;
        println!("    {label}: list {name}: {time:?} ({found} found)");
    }
    let (time, _) = median_query(5, || {
        let store = Arc::clone(store);
        async move { store.stats(SystemTime::now()).await.expect("stats").events as usize }
    })
    .await;
    println!("    {label}: stats: {time:?}");
}

#[tokio::main]
async fn main() {
    let args = args();
    println!(
        "inbox store benchmark: {} concurrent inserters, bursts of {} events of ~700 bytes",
        args.inserters, args.burst
    );
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            SqliteStore::open(
                dir.path().join("inbox.db"),
                SqliteOptions::default().synchronous(sync),
            )
            .expect("open"),
        );
        let elapsed = insert_concurrently(&store, 0, args.burst, args.inserters).await;
        println!(
            "  {sync:?}: {:.0} events/s ({} in {elapsed:?}); {}",
            args.burst as f64 / elapsed.as_secs_f64(),
            args.burst,
            describe(&store.batch_sizes())
        );
        // One inserter at a time: what batching buys.
        let serial = 2_000.min(args.burst);
        let before = store.batch_sizes().batches();
        let elapsed = insert_concurrently(&store, args.burst, serial, 1).await;
        println!(
            "  {sync:?}, one inserter: {:.0} events/s ({} commits for {serial} events)",
            serial as f64 / elapsed.as_secs_f64(),
            store.batch_sizes().batches() - before
        );
    }

    println!(
        "growth (synchronous={:?}): {} rounds, each a fresh store and the full one, {} events each",
        args.growth_sync,
        args.repeat,
        args.probe.min(args.events)
    );
    let probe = args.probe.min(args.events);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(
            dir.path().join("inbox.db"),
            SqliteOptions::default().synchronous(args.growth_sync),
        )
        .expect("open"),
    );
    let fill = args.events;
    measure(
        &store,
        0,
        fill,
        args.inserters,
        &format!("filling to {fill}"),
    )
    .await;
    println!(
        "    file {:.1} MiB",
        file_size(dir.path()) as f64 / 1048576.0
    );
    // The machine's speed drifts over minutes: each round measures a fresh store and the full
    // one back to back, and the ratio is taken per round.
    let (mut empty, mut full, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.repeat {
        let fresh_dir = tempfile::tempdir().expect("tempdir");
        let fresh = Arc::new(
            SqliteStore::open(
                fresh_dir.path().join("inbox.db"),
                SqliteOptions::default().synchronous(args.growth_sync),
            )
            .expect("open"),
        );
        let label = format!("round {}: empty store, first {probe}", round + 1);
        let e = measure(&fresh, 0, probe, args.inserters, &label).await;
        if round == 0 {
            queries(&fresh, "empty store", probe - 1).await;
        }
        drop(fresh);
        let stored = fill + round * probe;
        let label = format!("round {}: with {stored} stored, {probe} more", round + 1);
        let f = measure(&store, stored, probe, args.inserters, &label).await;
        empty.push(e);
        full.push(f);
        ratios.push(f / e);
    }
    let mut shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    shown.sort();
    println!(
        "  median: empty {:.0} events/s, with {fill} stored {:.0} events/s; ratio per round {} (median {:.2}x)",
        median(empty),
        median(full),
        shown.join(", "),
        median(ratios)
    );
    let stored = fill + args.repeat * probe;
    queries(&store, &format!("{stored} events"), stored - 1).await;
}
