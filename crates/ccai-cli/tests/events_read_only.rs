//! `ccai events` on a SQLite store this user may read but not write (another user's file, mode
//! 0644, in a folder only its owner may write): `list`, `show` and `stats` read it; `replay`,
//! `purge` and `ccai listen` refuse it in one line and leave it as it was. As root, whom
//! permissions do not bind, ccai runs as `nobody` through `setpriv`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use ccai::inbox::{
    AttemptOutcome, AttemptRecord, DeliveryStatus, Finish, LeaseRequest, NewDelivery,
    SqliteOptions, SqliteStore, Store,
};
use common::{run, stderr, stdout, unprivileged, Sandbox};
use serde_json::Value;

const CLIENT: &str = "1231";
const DELIVERED: &str = "a1a1a1a1a1a1a1a1-delivered";
const DEAD: &str = "b2b2b2b2b2b2b2b2-dead";
const PENDING: &str = "c3c3c3c3c3c3c3c3-pending";

fn delivery(hash: &str) -> NewDelivery {
    let body = format!(r#"{{"eventType":"message.sent","data":{{}},"eventHash":"{hash}"}}"#);
    NewDelivery::new(CLIENT, hash, "message.sent", body.into_bytes())
}

/// The store folder and file made unwritable for the user ccai runs as; writable again when
/// dropped, so that the sandbox can be removed.
struct Unwritable {
    folder: PathBuf,
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(&self.folder, std::fs::Permissions::from_mode(0o755));
    }
}

/// `<sandbox>/shared/inbox.db` with one delivered, one dead and one pending event, closed
/// cleanly (no `-wal`, no `-shm`), readable by all and writable by its owner only.
async fn shared_store(sandbox: &Sandbox) -> (PathBuf, Unwritable) {
    let path = filled_store(sandbox).await;
    let unwritable = unwritable(sandbox, &path);
    (path, unwritable)
}

/// `<sandbox>/shared/inbox.db` with one delivered, one dead and one pending event, closed
/// cleanly (no `-wal`, no `-shm`).
async fn filled_store(sandbox: &Sandbox) -> PathBuf {
    let folder = sandbox.path().join("shared");
    std::fs::create_dir(&folder).expect("mkdir");
    let path = folder.join("inbox.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    for hash in [DELIVERED, DEAD, PENDING] {
        store.insert(delivery(hash)).await.expect("insert");
    }
    let lease = LeaseRequest::new("fixture", Duration::from_secs(60));
    let claimed = store
        .claim("default", lease, 10, SystemTime::now())
        .await
        .expect("claim");
    for claim in claimed {
        let record = AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Success);
        let finished = match claim.event_hash.as_str() {
            DELIVERED => store.finish(&claim.lease, Finish::Delivered, record).await,
            DEAD => {
                let failed =
                    AttemptRecord::new(SystemTime::now(), Duration::ZERO, AttemptOutcome::Failure);
                store.finish(&claim.lease, Finish::Dead, failed).await
            }
            _ => store.release(&claim.lease).await,
        };
        assert_eq!(finished, Ok(true));
    }
    store.close().await;
    path
}

/// Makes `path` and its folder unwritable for the user ccai runs as, and both reachable.
fn unwritable(sandbox: &Sandbox, path: &Path) -> Unwritable {
    let folder = path.parent().expect("folder").to_path_buf();
    // Root's file as a shared store would be: readable by all. As another user, ccai (run
    // directly) may not write the file or its folder either.
    let (file_mode, folder_mode) = if common::is_root() {
        (0o644, 0o755)
    } else {
        (0o444, 0o555)
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(file_mode)).expect("chmod");
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(folder_mode)).expect("chmod");
    // The sandbox is 0700: nobody could not reach the store. Its config and data folders are
    // the user's own, writable.
    std::fs::set_permissions(sandbox.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    for own in [sandbox.config_dir(), sandbox.data_dir()] {
        std::fs::create_dir_all(&own).expect("mkdir");
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    Unwritable { folder }
}

/// `ccai ARGS… --store PATH` as the unprivileged user; `None` (said why) where it cannot run so.
fn ccai(sandbox: &Sandbox, path: &Path, args: &[&str]) -> Option<Command> {
    let mut cmd = sandbox.ccai();
    cmd.args(args).arg("--store").arg(path);
    unprivileged(cmd)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Exit 2, one line saying the store is read-only for this user and what to do.
fn refused_as_read_only(out: &Output, path: &Path) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("is read-only for this process"), "{err}");
    assert!(
        err.contains("run as a user who may write the file"),
        "{err}"
    );
    assert!(err.contains("--store"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("readonly database"),
        "{err}"
    );
}

/// What the file and its folder are, to show that nothing changed them.
fn snapshot(path: &Path) -> (Vec<u8>, SystemTime, Vec<String>) {
    let bytes = std::fs::read(path).expect("read");
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let mut names: Vec<String> = std::fs::read_dir(path.parent().expect("folder"))
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    (bytes, modified, names)
}

/// The hashes `list --json` prints.
fn listed(out: &Output) -> Vec<String> {
    ok(out)
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON object per line");
            value["eventHash"].as_str().expect("eventHash").to_owned()
        })
        .collect()
}

/// The writing commands, each refused: `replay`, `purge`, `ccai listen`.
async fn writes_are_refused(sandbox: &Sandbox, path: &Path) {
    let commands: [&[&str]; 3] = [
        &["events", "replay", DEAD],
        &[
            "events",
            "purge",
            "--older-than",
            "0s",
            "--keep-hashes-for",
            "0s",
        ],
        &["listen", "--port", "0"],
    ];
    for args in commands {
        let Some(cmd) = ccai(sandbox, path, args) else {
            return;
        };
        refused_as_read_only(&run(cmd).await, path);
    }
}

/// A store closed cleanly has neither `-wal` nor `-shm`, and none can be created in its
/// folder: SQLite cannot read it in WAL mode unless it is opened as immutable.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_store_this_user_may_not_write_is_read_and_never_written() {
    let sandbox = Sandbox::new();
    let (path, _unwritable) = shared_store(&sandbox).await;
    let before = snapshot(&path);
    assert_eq!(before.2, ["inbox.db"]);

    let Some(list) = ccai(&sandbox, &path, &["events", "list", "--json"]) else {
        return;
    };
    assert_eq!(listed(&run(list).await), [PENDING, DEAD, DELIVERED]);
    let show = ccai(&sandbox, &path, &["events", "show", DEAD, "--json"]).expect("as above");
    let shown: Value = serde_json::from_str(&ok(&run(show).await)).expect("JSON");
    assert_eq!(shown["eventHash"], DEAD);
    assert_eq!(shown["deliveries"][0]["status"], "dead");
    let stats = ccai(&sandbox, &path, &["events", "stats", "--json"]).expect("as above");
    let counted: Value = serde_json::from_str(&ok(&run(stats).await)).expect("JSON");
    assert_eq!(counted["events"], 3);
    assert_eq!(counted["deliveries"]["dead"], 1);
    assert_eq!(counted["deliveries"]["pending"], 1);

    writes_are_refused(&sandbox, &path).await;
    assert!(
        snapshot(&path) == before,
        "the store and its folder are as they were"
    );
}

/// Beside a running writer (its `-wal` and `-shm` there, as readable as the file), reads see
/// its commits not yet checkpointed, and the writes are refused as on a closed store.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_in_use_this_user_may_not_write_shows_its_latest_commits() {
    let sandbox = Sandbox::new();
    let (path, _unwritable) = shared_store(&sandbox).await;
    // SQLite gives the side files the file's mode, now readable by all.
    let writer = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    let newest = "d4d4d4d4d4d4d4d4-newest";
    writer.insert(delivery(newest)).await.expect("insert");
    let folder = path.parent().expect("folder");
    assert!(folder.join("inbox.db-wal").exists() && folder.join("inbox.db-shm").exists());

    let Some(list) = ccai(&sandbox, &path, &["events", "list", "--json"]) else {
        return;
    };
    assert_eq!(listed(&run(list).await), [newest, PENDING, DEAD, DELIVERED]);
    let show = ccai(&sandbox, &path, &["events", "show", newest, "--json"]).expect("as above");
    let shown: Value = serde_json::from_str(&ok(&run(show).await)).expect("JSON");
    assert_eq!(shown["eventHash"], newest);
    let stats = ccai(&sandbox, &path, &["events", "stats", "--json"]).expect("as above");
    let counted: Value = serde_json::from_str(&ok(&run(stats).await)).expect("JSON");
    assert_eq!(counted["events"], 4);

    writes_are_refused(&sandbox, &path).await;
    // Still dead, and nothing purged.
    let dead = writer.get(DEAD).await.expect("get").expect("kept");
    assert_eq!(dead.summary.deliveries[0].status, DeliveryStatus::Dead);
    assert_eq!(
        writer.stats(SystemTime::now()).await.expect("stats").events,
        4
    );
    writer.close().await;
}

/// A store from an older ccai cannot be upgraded by a user who may not write it: reading it
/// says that one writable open must upgrade it first, and leaves it as it was.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_store_this_user_may_not_write_needs_one_writable_open_first() {
    let sandbox = Sandbox::new();
    let path = filled_store(&sandbox).await;
    // What an older ccai's store says of itself: a lower schema version (header bytes 60..64).
    let mut bytes = std::fs::read(&path).expect("read");
    let version = u32::from_be_bytes(bytes[60..64].try_into().expect("4 bytes"));
    bytes[60..64].copy_from_slice(&(version - 1).to_be_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let _unwritable = unwritable(&sandbox, &path);
    let before = snapshot(&path);

    let Some(list) = ccai(&sandbox, &path, &["events", "list", "--json"]) else {
        return;
    };
    let out = run(list).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("its schema {}", version - 1))
            && err.contains("needs one writable open first")
            && err.contains("as a user who may write the file and its folder"),
        "{err}"
    );
    assert!(snapshot(&path) == before, "not upgraded, nothing created");
}

/// Another user's store in a folder this user may write (`/tmp`, a group's folder): reading it,
/// and the refused writes, create no `-wal` or `-shm` beside it. Owned by this user, they would
/// keep the store's owner from writing it again (and, the folder being sticky, from removing
/// them).
#[tokio::test(flavor = "multi_thread")]
async fn a_store_in_a_folder_this_user_may_write_gets_nothing_beside_it() {
    let sandbox = Sandbox::new();
    let path = filled_store(&sandbox).await;
    let unwritable = unwritable(&sandbox, &path);
    let file_mode = if common::is_root() { 0o644 } else { 0o444 };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file_mode)).expect("chmod");
    std::fs::set_permissions(&unwritable.folder, std::fs::Permissions::from_mode(0o1777))
        .expect("chmod");
    let before = snapshot(&path);

    let Some(list) = ccai(&sandbox, &path, &["events", "list", "--json"]) else {
        return;
    };
    assert_eq!(listed(&run(list).await), [PENDING, DEAD, DELIVERED]);
    assert!(
        snapshot(&path) == before,
        "nothing beside the store after list"
    );
    writes_are_refused(&sandbox, &path).await;
    assert_eq!(snapshot(&path).2, ["inbox.db"], "nothing beside the store");
}

/// A store this user may write whose upgrade fails (here a schema version one step behind what
/// the file holds, so the last migration meets its own column; a full disk alike): reading it
/// tells that failure, not that a read-only open cannot upgrade it.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_upgrade_of_a_writable_store_is_told_as_it_is() {
    let sandbox = Sandbox::new();
    let path = filled_store(&sandbox).await;
    let mut bytes = std::fs::read(&path).expect("read");
    let version = u32::from_be_bytes(bytes[60..64].try_into().expect("4 bytes"));
    bytes[60..64].copy_from_slice(&(version - 1).to_be_bytes());
    std::fs::write(&path, &bytes).expect("write");

    let mut list = sandbox.ccai();
    list.args(["events", "list", "--store"]).arg(&path);
    let out = run(list).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        !err.contains("read-only") && !err.contains("needs one writable open first"),
        "{err}"
    );
    assert!(err.contains("the inbox store is unavailable"), "{err}");
}
