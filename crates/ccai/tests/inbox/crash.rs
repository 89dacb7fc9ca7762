//! A process killed with SIGKILL while inserting loses no acknowledged delivery.
//!
//! The test runs itself as the child: the same test binary, this test only, with
//! `CCAI_INBOX_CRASH_STORE` naming the store. The child inserts and prints `ACK <hash>` after
//! each `Ok`; the parent kills it mid-stream, reopens the file and looks for every acknowledged
//! hash.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ccai::inbox::{Inserted, NewDelivery, SqliteOptions, SqliteStore, Store};

const CHILD_ENV: &str = "CCAI_INBOX_CRASH_STORE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_no_acknowledged_delivery() {
    match std::env::var(CHILD_ENV) {
        Ok(path) => insert_until_killed(&path).await,
        Err(_) => kill_and_check().await,
    }
}

/// The child: inserts from 8 tasks, at most 60 s or 200,000 events (it stops by itself if the
/// parent does not kill it).
async fn insert_until_killed(path: &str) {
    let store = Arc::new(SqliteStore::open(path, SqliteOptions::default()).expect("child open"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..25_000 {
                if Instant::now() > deadline {
                    return;
                }
                let hash = format!("k{task}-{i}");
                let body =
                    format!(r#"{{"eventType":"message.sent","eventHash":"{hash}","data":{{}}}}"#);
                let d = NewDelivery::new("1231", hash.as_str(), "message.sent", body.into_bytes());
                if store.insert(d).await == Ok(Inserted::New) {
                    println!("ACK {hash}");
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn kill_and_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "crash::a_killed_process_loses_no_acknowledged_delivery",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("child stdout");
    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(hash) = line.strip_prefix("ACK ") {
                acked.push(hash.to_owned());
                if acked.len() >= 2_000 {
                    break;
                }
            }
        }
        acked
    })
    .await
    .expect("reader");
    // SIGKILL: no destructor, no flush, no final commit.
    child.kill().expect("kill the child");
    let _ = child.wait();
    assert!(
        acked.len() >= 2_000,
        "the child acknowledged only {} events",
        acked.len()
    );

    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen after kill");
    for hash in &acked {
        assert!(
            store.get(hash).await.expect("get").is_some(),
            "acknowledged {hash} was lost"
        );
    }
    let stored = store
        .stats(std::time::SystemTime::now())
        .await
        .expect("stats")
        .events;
    assert!(stored >= acked.len() as u64);
}
