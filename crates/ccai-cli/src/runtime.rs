//! The async runtime, sized for the command it runs.
//!
//! `ccai listen` with a SQLite store keeps a writer thread busy beside the HTTP workers: every
//! delivery waits for that thread's commit before its 200. With as many HTTP workers as cores,
//! the writer competes with them for a core and every hand-off waits to be scheduled; one worker
//! fewer let the same machine acknowledge 4–6 % more stored deliveries per second over HTTP
//! (BENCHMARKS.md). Without a store, or with PostgreSQL (whose work runs in the server), every
//! core serves HTTP.

use std::num::NonZeroUsize;

use crate::cli::{Command, ListenArgs};
use crate::store_open::postgres_url;

/// The most worker threads `--http-workers` and `TOKIO_WORKER_THREADS` may ask for: far more
/// than any machine serves with, and few enough to start in a moment.
pub(crate) const MAX_WORKERS: usize = 1024;

/// Builds the runtime for `command`.
pub(crate) fn build(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // Read here, not by tokio: tokio panics on a value it cannot use.
    let from_env = env_workers()?;
    if let Some(workers) = from_env {
        builder.worker_threads(workers);
    }
    if let Command::Listen(args) = command {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        if let Some(workers) = listen_workers(
            args.http_workers,
            from_env.is_some(),
            sqlite_store(args),
            cores,
        ) {
            builder.worker_threads(workers);
        }
    }
    builder.build()
}

/// `TOKIO_WORKER_THREADS`, the variable tokio documents for the worker count: `None` when unset,
/// an error (not tokio's panic) when it is not a whole number from 1 to [`MAX_WORKERS`], the
/// range `--http-workers` takes (99999 spent many seconds starting threads, saying nothing).
fn env_workers() -> std::io::Result<Option<usize>> {
    let Some(value) = std::env::var_os("TOKIO_WORKER_THREADS") else {
        return Ok(None);
    };
    match value.to_str().map(str::trim).map(str::parse::<usize>) {
        Some(Ok(n)) if (1..=MAX_WORKERS).contains(&n) => Ok(Some(n)),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "TOKIO_WORKER_THREADS must be a whole number of threads from 1 to {MAX_WORKERS}, as --http-workers; fix or unset it"
            ),
        )),
    }
}

/// Whether `ccai listen` stores in SQLite (the default store, or a file path).
fn sqlite_store(args: &ListenArgs) -> bool {
    !args.no_store && postgres_url(args.store().as_deref()).is_none()
}

/// How many HTTP workers `ccai listen` runs, `None` leaving tokio's default (one per core, or
/// TOKIO_WORKER_THREADS): `--http-workers` first, then the environment, then one fewer than the
/// cores with a SQLite store (at least one).
fn listen_workers(
    flag: Option<u16>,
    from_env: bool,
    sqlite_store: bool,
    cores: usize,
) -> Option<usize> {
    match flag {
        Some(n) => Some(usize::from(n)),
        None if from_env || !sqlite_store => None,
        None => Some(cores.saturating_sub(1).max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::listen_workers;

    #[test]
    fn a_sqlite_store_leaves_a_core_to_its_writer() {
        assert_eq!(listen_workers(None, false, true, 2), Some(1));
        assert_eq!(listen_workers(None, false, true, 8), Some(7));
        assert_eq!(listen_workers(None, false, true, 1), Some(1));
    }

    #[test]
    fn no_store_or_postgres_keeps_every_core() {
        assert_eq!(listen_workers(None, false, false, 2), None);
    }

    #[test]
    fn the_flag_then_the_environment_win() {
        assert_eq!(listen_workers(Some(3), false, true, 2), Some(3));
        assert_eq!(listen_workers(Some(3), true, false, 2), Some(3));
        assert_eq!(listen_workers(None, true, true, 2), None);
    }
}
