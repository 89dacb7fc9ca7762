//! Store throughput of the durable inbox: concurrent inserters against `SqliteStore` with
//! `synchronous=FULL` and `NORMAL` (events/s and the group-commit batch sizes), then growth:
//! insert rate, file size and filtered list queries with an empty store versus one holding
//! `--events` events (default 1,000,000).
//!
//! ```text
//! cargo run --release -p ccai --features inbox --example inbox_bench -- [--inserters 64] [--burst 50000] [--events 1000000]
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
}

fn args() -> Args {
    let mut parsed = Args {
        inserters: 64,
        burst: 50_000,
        events: 1_000_000,
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value = pair
            .get(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("usage: --inserters N --burst N --events N"));
        match pair[0].as_str() {
            "--inserters" => parsed.inserters = value,
            "--burst" => parsed.burst = value,
            "--events" => parsed.events = value,
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

/// A realistic delivery of about 700 bytes.
fn delivery(n: usize, received_at: SystemTime) -> NewDelivery {
    let event_type = TYPES[n % TYPES.len()];
    let hash = format!("{:016x}{:016x}", n as u64 * 0x9E37_79B9_7F4A_7C15, n);
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

async fn queries(store: &Arc<SqliteStore>, label: &str) {
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

    println!("growth (synchronous=FULL):");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(dir.path().join("inbox.db"), SqliteOptions::default()).expect("open"),
    );
    let probe = 20_000.min(args.burst);
    let elapsed = insert_concurrently(&store, 0, probe, args.inserters).await;
    println!(
        "  empty store: {:.0} events/s for the first {probe}, file {:.1} MiB",
        probe as f64 / elapsed.as_secs_f64(),
        file_size(dir.path()) as f64 / 1048576.0
    );
    queries(&store, "empty store").await;
    let fill = args.events.saturating_sub(probe);
    let elapsed = insert_concurrently(&store, probe, fill, args.inserters).await;
    println!(
        "  filled to {}: {:.0} events/s on average, file {:.1} MiB",
        args.events,
        fill as f64 / elapsed.as_secs_f64(),
        file_size(dir.path()) as f64 / 1048576.0
    );
    let elapsed = insert_concurrently(&store, args.events, probe, args.inserters).await;
    println!(
        "  with {} stored: {:.0} events/s for {probe} more",
        args.events,
        probe as f64 / elapsed.as_secs_f64()
    );
    queries(&store, &format!("{} events", args.events)).await;
}
