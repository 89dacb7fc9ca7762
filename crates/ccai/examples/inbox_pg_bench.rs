//! Throughput of the inbox on PostgreSQL: unique events of ~700 bytes inserted by concurrent
//! tasks into one `PostgresStore` and into two on the same schema (two pools, as two receivers
//! would have), with per-insert latency and the batch sizes; then dispatch to a local HTTP
//! target answering 200. Runs in its own schema, dropped at the end.
//!
//! ```text
//! CCAI_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p ccai --features postgres --example inbox_pg_bench -- [--inserters 32] [--events 50000] [--insert-concurrency 1]
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::routing::post;
use axum::Router;
use ccai::inbox::{
    DeliveryStatus, Dispatcher, HttpForward, Inserted, NewDelivery, PostgresOptions, PostgresStore,
    Store,
};

fn option(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a whole number"))
        .unwrap_or(default)
}

/// Unique event `n` (of run `run`), about 700 bytes.
fn event(run: &str, n: usize) -> NewDelivery {
    let hash = format!("{run}-{n:012}");
    let text = "Your order has shipped and will arrive tomorrow. ".repeat(8);
    let body = format!(
        r#"{{"eventType":"message.sent","eventHash":"{hash}","data":{{"SmsSid":{n},"To":"+14155550100","Message":"{text}","Segments":1,"TotalPrice":0.0079,"CustomData":"bench"}}}}"#
    );
    NewDelivery::new("1231", hash, "message.sent", body.into_bytes())
        .signature("YmVuY2htYXJrLXNpZ25hdHVyZS1ub3QtcmVhbA==")
        .content_type("application/json")
}

/// Inserts `count` events over `stores` with `inserters` tasks; returns the elapsed time and
/// the sorted per-insert latencies.
async fn insert(
    stores: &[PostgresStore],
    run: &str,
    count: usize,
    inserters: usize,
) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..inserters {
        let store = stores[task % stores.len()].clone();
        let run = run.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for n in (task..count).step_by(inserters) {
                let began = Instant::now();
                loop {
                    match store.insert(event(&run, n)).await {
                        Ok(Inserted::New) => break,
                        Ok(other) => panic!("event {n} was {other:?}"),
                        Err(e) if e.is_transient() => {
                            tokio::time::sleep(Duration::from_millis(1)).await
                        }
                        Err(e) => panic!("insert failed: {e}"),
                    }
                }
                latencies.push(began.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.extend(task.await.expect("inserter"));
    }
    latencies.sort();
    (start.elapsed(), latencies)
}

fn report(label: &str, count: usize, elapsed: Duration, latencies: &[Duration]) {
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "  {label}: {:.0} events/s ({count} in {elapsed:.2?}), latency p50 {:.2?} p99 {:.2?}",
        count as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99)
    );
}

fn batches(store: &PostgresStore) -> String {
    let b = store.batch_sizes();
    format!(
        "{} commits, mean {:.1} inserts/commit, p50 {} p99 {} max {}",
        b.batches(),
        b.writes() as f64 / b.batches().max(1) as f64,
        b.percentile_by_write(0.5),
        b.percentile_by_write(0.99),
        b.max()
    )
}

#[tokio::main]
async fn main() {
    let url = std::env::var("CCAI_TEST_POSTGRES_URL")
        .expect("set CCAI_TEST_POSTGRES_URL to a PostgreSQL database to benchmark against");
    let inserters = option("--inserters", 32);
    let count = option("--events", 50_000);
    let schema = format!("ccai_bench_{}", std::process::id());
    let slots = option("--insert-concurrency", 1);
    let options = PostgresOptions::default()
        .schema(schema.clone())
        .insert_concurrency(slots);
    println!(
        "inbox on PostgreSQL: {inserters} concurrent inserters, {count} unique events of ~700 bytes, {slots} insert transactions in flight per store"
    );

    let one = PostgresStore::connect(&url, options.clone())
        .await
        .expect("connect");
    let (elapsed, latencies) = insert(std::slice::from_ref(&one), "one", count, inserters).await;
    report("one store", count, elapsed, &latencies);
    println!("    {}", batches(&one));

    let serial = 2_000.min(count);
    let (elapsed, latencies) = insert(std::slice::from_ref(&one), "serial", serial, 1).await;
    report("one store, one inserter", serial, elapsed, &latencies);

    let two = [
        one.clone(),
        PostgresStore::connect(&url, options.clone())
            .await
            .expect("connect"),
    ];
    let (elapsed, latencies) = insert(&two, "two", count, inserters).await;
    report("two stores, one schema", count, elapsed, &latencies);

    // Dispatch everything stored so far to a local target answering 200.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = format!("http://{}/hook", listener.local_addr().expect("addr"));
    // The target counts what it receives, so that waiting for the end costs the database
    // nothing: a `stats` every 100 ms took a fifth of its time while dispatching.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let server = tokio::spawn(async move {
        let app = Router::new().route(
            "/hook",
            post(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                async { "ok" }
            }),
        );
        let _ = axum::serve(listener, app).await;
    });
    let total = one.stats(SystemTime::now()).await.expect("stats").events;
    let start = Instant::now();
    let dispatcher = Dispatcher::builder(
        Arc::new(one.clone()),
        HttpForward::new(&target).expect("url"),
    )
    .concurrency(32)
    .poll_interval(Duration::from_millis(50))
    .wake_on(one.notifier())
    .start();
    // Every event sent (at least once), then every outcome recorded.
    while received.load(Ordering::Relaxed) < total as usize {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    loop {
        let stats = one.stats(SystemTime::now()).await.expect("stats");
        if stats.count(DeliveryStatus::Delivered) >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    println!(
        "  dispatch (one dispatcher, 32 workers, HTTP 200): {:.0} events/s ({total} in {elapsed:.2?})",
        total as f64 / elapsed.as_secs_f64()
    );
    dispatcher.shutdown(Duration::from_secs(5)).await;
    server.abort();
    drop(two);
    drop(one);

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("drop the benchmark schema");
}
