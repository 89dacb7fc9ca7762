//! Ctrl-C while the store is still reading: the process exits within a few seconds, not when
//! the reads end. SQLite reads run on tokio's blocking threads, which a dropped runtime waits
//! for; only the store's read timeout (30 s by default) would have stopped them.
//!
//! The reads are the crafted searches the read timeout is for (a long run of `a` then a `b`,
//! against bodies of `a`s), enough of them at once to keep the cores busy for longer than the
//! read timeout, on the real clock. The view runs on one core (`taskset`), so that the work
//! outlasts the timeout whatever the machine's number of cores.

#![cfg(unix)]

mod common;
mod ui_support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ccai::inbox::{SqliteOptions, SqliteStore, Store};
use common::{runs, wrapped, Sandbox, WAIT};
use ui_support::{announced, fill_slow, get, inbox_path, slow_search, Ui};

/// Events whose bodies are a long run of `a`, and that run's length: 150 MB in all, over which
/// one search takes seconds of a core (6 s in a debug build).
const EVENTS: usize = 600;
const TEXT: usize = 250 * 1024;
/// Searches sent at once: as many as the view runs at once (more are refused after 2 s). On one
/// core, each takes four times as long, about as long as the read timeout.
const SEARCHES: usize = 4;
/// How long the process may take to exit after Ctrl-C: the view's 2 s grace for requests in
/// flight, the runtime's bound, and room for a loaded machine; far less than the 30 s read
/// timeout.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// The CPU time process `pid` has used so far (user and system), from `/proc`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a command name")
        .1
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of the line (11 and 12 after the name), in clock ticks.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 1000 / clock_ticks_per_second())
}

/// The unit of `/proc`'s CPU times.
fn clock_ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

/// `ccai ui` on the store at `path`, on one core where `taskset` is installed (`taskset` runs
/// it in its own process: the process id is `ccai`'s).
fn ui_on_one_core(sandbox: &Sandbox, path: &Path) -> Ui {
    let mut cmd = sandbox.ccai();
    cmd.arg("ui").arg("--store").arg(path).args(["--port", "0"]);
    let mut cmd = match first_cpu() {
        Some(cpu) if runs("taskset", &["--version"]) => wrapped(&cmd, "taskset", &["-c", &cpu]),
        _ => {
            println!("not pinned to one core: taskset or /proc/self/status missing");
            cmd
        }
    };
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    announced(cmd.spawn().expect("spawn ccai ui"))
}

/// The first core this process may run on.
fn first_cpu() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    let first = list.trim().split([',', '-']).next()?;
    Some(first.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_ctrl_c_during_slow_searches_exits_at_once_not_when_the_reads_end() {
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    fill_slow(&path, EVENTS, TEXT).await;
    let mut ui = ui_on_one_core(&sandbox, &path);
    let (status, _) = get(&ui, "/api/stats").await;
    assert_eq!(status, 200, "the view answers");
    let pid = ui.child.id();
    let idle = cpu_time(pid);

    let base = ui.base.clone();
    let search = format!("{base}/api/events?q={}", slow_search());
    let client = reqwest::Client::new();
    let _searches: Vec<_> = (0..SEARCHES)
        .map(|_| tokio::spawn(client.get(&search).send()))
        .collect();
    // The searches are running once the view has spent a second of CPU on them (idle, it spends
    // next to nothing).
    let started = Instant::now();
    while cpu_time(pid) < idle + Duration::from_secs(1) {
        assert!(started.elapsed() < WAIT, "the searches never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let interrupted = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let exited = loop {
        if let Some(status) = ui.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            interrupted.elapsed() < EXIT_LIMIT,
            "still running {EXIT_LIMIT:?} after Ctrl-C, waiting for the reads"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("exited {:?} after Ctrl-C", interrupted.elapsed());
    assert_eq!(exited.code(), Some(0), "{exited:?}");

    // The store is whole, and opens again. (Its `-wal` and `-shm` may stay: the reads' connections
    // were still open when the process ended.)
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("reopen");
    let stats = store
        .stats(std::time::SystemTime::now())
        .await
        .expect("stats");
    assert_eq!(stats.events, EVENTS as u64, "{stats:?}");
    store.close().await;
}
