//! The `eventHash` index, kept as a small log-structured merge so that it does not slow inserts
//! down as the store grows.
//!
//! `eventHash` values are random. A B-tree index on them (schema version 1) put every insert on a
//! random leaf: once the index outgrew the page cache, each insert read a leaf back and dirtied a
//! page of its own, and each checkpoint copied a page per event, so the insert rate fell to about
//! 0.6× the empty store's at a million events. Instead:
//!
//! - the recent events (those with `id` above the watermark in `event_keys_merged`) are looked up
//!   in memory, in the writer thread's [`RecentKeys`] (read back from the table at the first
//!   insert after a store opens: the events themselves are the log, so nothing extra is written
//!   per insert);
//! - the older ones are in `event_keys`: a run number, an 8-byte key (the first bytes of the
//!   hash's SHA-256) and the event's id. Each merge ([`RecentKeys::merge_step`]) appends a run of
//!   its own, sorted by key, one slice of the key space per transaction, so no commit waits long
//!   behind it. Appending writes only new pages: inserting into one big sorted table instead
//!   rewrote every leaf of it at each merge, a cost per event that grew with the store.
//! - once [`FOLD_AT`] runs exist, they are folded into run 0 the same way, slice by slice
//!   ([`RecentKeys::fold_step`]), so a lookup seeks a bounded number of runs
//!   (`event_key_runs` lists them). A fold moves each key once, whenever it comes, so folding
//!   rarely costs no more per event than folding often; a store of a million events never folds.
//!
//! A key only names candidates: every match is checked against the event's own `event_hash` (and
//! client id), so a key collision, a stale entry or an event another process purged costs a
//! lookup, never a wrong answer. Other processes writing the same file are noticed through
//! `PRAGMA data_version`, and their new events read before the next insert is decided.

use std::collections::BTreeSet;

use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

use super::fingerprints::{fingerprint, Fingerprints, MAX_FINGERPRINTS};
use super::schema_watch::schema_unchanged;

/// Merge the in-memory keys into `event_keys` once this many events are above the watermark.
/// Larger runs cost less per event to merge; readers looking an event up by hash scan the
/// unmerged events (at most about twice this many rows).
pub(crate) const MERGE_AT: usize = 32_768;

/// A merge runs over this many slices of the key space, one transaction each.
const SLICES: u32 = 64;

/// Fold the runs into run 0 once this many exist besides it (8 Mi events at [`MERGE_AT`]).
/// Only readers, and a new event whose fingerprint matches (a duplicate, or rarely by chance),
/// seek each run: a few hundred seeks, under a millisecond or two.
pub(crate) const FOLD_AT: usize = 256;

/// Past [`MAX_FINGERPRINTS`] every new event seeks each run: fold sooner.
const FOLD_AT_WITHOUT_FINGERPRINTS: usize = 16;

/// About how many keys a fold moves per transaction: a larger fold takes more slices, so no
/// commit waits long behind one.
const FOLD_SLICE_KEYS: usize = 2_048;

/// The ids of the merged events whose key is the statement's one parameter: a seek per run.
const MERGED_BY_KEY: &str =
    "SELECT event_id FROM event_keys WHERE run IN (SELECT run FROM event_key_runs) AND key = ?";

/// The index key of an `eventHash`: the first 8 bytes of its SHA-256, as a signed integer.
pub(crate) fn hash_key(event_hash: &str) -> i64 {
    key_of_bytes(event_hash.as_bytes())
}

/// [`hash_key`] of a stored `event_hash` as SQLite returns it (text, or bytes written by
/// another tool), so that no row can make reading the keys fail.
pub(crate) fn stored_key(value: rusqlite::types::ValueRef<'_>) -> rusqlite::Result<i64> {
    Ok(key_of_bytes(value.as_bytes()?))
}

fn key_of_bytes(event_hash: &[u8]) -> i64 {
    let digest = Sha256::digest(event_hash);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The ids of the events stored under `event_hash` (alias `e`), as a SQL condition with its
/// parameters (`event_hash`, key, `event_hash`), for the readers: they have no [`RecentKeys`],
/// so the unmerged events are scanned by id (a range of at most a few `MERGE_AT`).
pub(crate) const BY_HASH_SQL: &str = "e.event_hash = ? AND e.id IN (
        SELECT event_id FROM event_keys
            WHERE run IN (SELECT run FROM event_key_runs) AND key = ?
        UNION ALL
        SELECT id FROM events WHERE id > (SELECT upto FROM event_keys_merged) AND event_hash = ?)";

/// The parameters of [`BY_HASH_SQL`].
pub(crate) fn by_hash_params(event_hash: &str) -> [rusqlite::types::Value; 3] {
    use rusqlite::types::Value;
    [
        Value::Text(event_hash.to_owned()),
        Value::Integer(hash_key(event_hash)),
        Value::Text(event_hash.to_owned()),
    ]
}

/// The writer thread's view of the unmerged events' keys, and of a merge in progress.
#[derive(Debug)]
pub(crate) struct RecentKeys {
    /// Merge once this many entries are held ([`MERGE_AT`]; small in tests).
    merge_at: usize,
    /// `(key, event id)` of every event above the watermark that this writer knows of.
    entries: BTreeSet<(i64, i64)>,
    /// The highest event id read or written; another process's new events come after it.
    max_seen: i64,
    /// `PRAGMA data_version` when last read: it changes when another connection commits.
    data_version: Option<i64>,
    /// `PRAGMA data_version` as the writer read it in the current batch, if it did.
    batch_data_version: Option<i64>,
    /// False until read from the file (the first insert does).
    built: bool,
    /// Built inside the current batch: it may have read that batch's uncommitted writes (a
    /// purge's deletions), so a rollback of the batch starts over.
    built_in_batch: bool,
    /// Caught up inside the current batch already.
    synced_in_batch: bool,
    /// The sorted fingerprints of the keys in `event_keys` (as of the last merge), so that a new
    /// event, the usual case, needs no lookup there; `None` past [`MAX_FINGERPRINTS`].
    merged: Option<Fingerprints>,
    merge: Option<Merge>,
    /// Fold once this many runs exist besides run 0 ([`FOLD_AT`]; small in tests).
    fold_at: usize,
    /// Runs besides run 0, as last counted or made by this writer.
    runs: usize,
    fold: Option<Fold>,
    /// With both a merge and a fold to do, whose turn it is (they alternate, so a steady
    /// stream of merges cannot put a fold off for ever).
    fold_turn: bool,
    /// What the current write batch added, and `max_seen` before it: a rolled-back insert's id
    /// is handed out again, so its entry must go (see [`Self::undo`]).
    batch_added: Vec<(i64, i64)>,
    batch_mark: Mark,
    job_mark: Mark,
}

impl Default for RecentKeys {
    fn default() -> Self {
        Self {
            merge_at: MERGE_AT,
            entries: BTreeSet::new(),
            max_seen: 0,
            data_version: None,
            batch_data_version: None,
            built: false,
            built_in_batch: false,
            synced_in_batch: false,
            merged: None,
            merge: None,
            fold_at: FOLD_AT,
            runs: 0,
            fold: None,
            fold_turn: false,
            batch_added: Vec::new(),
            batch_mark: Mark::default(),
            job_mark: Mark::default(),
        }
    }
}

/// Where a batch or job started: how much of `batch_added` existed, and `max_seen`.
#[derive(Debug, Default, Clone, Copy)]
struct Mark {
    added: usize,
    max_seen: i64,
}

/// A merge in progress: the entries with an id up to `upto`, slice by slice, into run `upto`.
#[derive(Debug, Clone, Copy)]
struct Merge {
    upto: i64,
    next_slice: u32,
}

/// A fold in progress: the runs numbered up to `upto` into run 0, in `slices` slices.
#[derive(Debug, Clone, Copy)]
struct Fold {
    upto: i64,
    next_slice: u32,
    slices: u32,
}

impl RecentKeys {
    /// Brings the entries up to date with the file: built from the tables at the first insert,
    /// then the events other processes committed since. Call inside the write transaction,
    /// before deciding whether an event is new.
    pub(crate) fn sync(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        // The batch holds the write lock: no other connection commits until it ends.
        if self.synced_in_batch {
            return Ok(());
        }
        let version: i64 = match self.batch_data_version {
            Some(version) => version,
            None => conn
                .prepare_cached("PRAGMA data_version")?
                .query_row([], |row| row.get(0))?,
        };
        if !self.built {
            self.merged = read_fingerprints(conn)?;
            self.runs = count_runs(conn)?;
            self.max_seen =
                conn.query_row("SELECT upto FROM event_keys_merged", [], |row| row.get(0))?;
            self.read_after(conn)?;
            self.built = true;
            self.built_in_batch = true;
            self.batch_mark.max_seen = self.max_seen;
            self.job_mark.max_seen = self.max_seen;
        } else if self.data_version != Some(version) {
            self.read_after(conn)?;
            // Another process's merges add runs this writer must fold too.
            self.runs = count_runs(conn)?;
        }
        self.data_version = Some(version);
        self.synced_in_batch = true;
        Ok(())
    }

    fn read_after(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let mut stmt =
            conn.prepare_cached("SELECT id, event_hash FROM events WHERE id > ?1 ORDER BY id")?;
        let mut rows = stmt.query([self.max_seen])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            self.entries.insert((stored_key(row.get_ref(1)?)?, id));
            self.max_seen = self.max_seen.max(id);
        }
        Ok(())
    }

    /// The id of the stored event of `client_id` with `event_hash` (whose key is `key`), if any.
    /// Every candidate the keys name is checked against its row.
    pub(crate) fn find(
        &self,
        conn: &Connection,
        key: i64,
        client_id: &str,
        event_hash: &str,
    ) -> rusqlite::Result<Option<i64>> {
        let mut check = conn.prepare_cached(
            "SELECT 1 FROM events WHERE id = ?1 AND client_id = ?2 AND event_hash = ?3",
        )?;
        for id in self.candidates(conn, key)? {
            if check.exists(params![id, client_id, event_hash])? {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// The ids of the events that may carry `key`'s hash.
    fn candidates(&self, conn: &Connection, key: i64) -> rusqlite::Result<Vec<i64>> {
        let mut ids: Vec<i64> = self
            .entries
            .range((key, i64::MIN)..=(key, i64::MAX))
            .map(|(_, id)| *id)
            .collect();
        let maybe_merged = match &self.merged {
            Some(fingerprints) => fingerprints.contains(fingerprint(key)),
            None => true,
        };
        if !maybe_merged {
            return Ok(ids);
        }
        let mut stmt = conn.prepare_cached(MERGED_BY_KEY)?;
        for id in stmt.query_map([key], |row| row.get(0))? {
            ids.push(id?);
        }
        Ok(ids)
    }

    /// Records an event this writer inserted.
    pub(crate) fn added(&mut self, key: i64, id: i64) {
        self.entries.insert((key, id));
        self.batch_added.push((key, id));
        self.max_seen = self.max_seen.max(id);
    }

    fn mark(&self) -> Mark {
        Mark {
            added: self.batch_added.len(),
            max_seen: self.max_seen,
        }
    }

    /// A write batch starts.
    pub(crate) fn batch_started(&mut self) {
        self.batch_data_version = None;
        self.built_in_batch = false;
        self.synced_in_batch = false;
        self.batch_added.clear();
        self.batch_mark = self.mark();
        self.job_mark = self.batch_mark;
    }

    /// The writer read `PRAGMA data_version` in this batch's transaction (checking the schema):
    /// [`sync`](Self::sync) takes it rather than read it again.
    pub(crate) fn data_version_read(&mut self, version: i64) {
        self.batch_data_version = Some(version);
    }

    /// A job of the batch starts (it may be rolled back to its savepoint alone).
    pub(crate) fn job_started(&mut self) {
        self.job_mark = self.mark();
    }

    /// The job was rolled back to its savepoint.
    pub(crate) fn job_rolled_back(&mut self) {
        self.undo(self.job_mark);
    }

    /// The batch committed.
    pub(crate) fn batch_committed(&mut self) {
        self.batch_added.clear();
    }

    /// The batch rolled back.
    pub(crate) fn batch_rolled_back(&mut self) {
        if self.built_in_batch {
            *self = Self {
                merge_at: self.merge_at,
                fold_at: self.fold_at,
                ..Self::default()
            };
            return;
        }
        self.undo(self.batch_mark);
        // Catch up on the next insert: another process may write before this one does again.
        self.data_version = None;
    }

    /// Forgets what was added since `mark`: the ids it named are handed out again. `max_seen`
    /// goes back too, or another process's next events (taking those ids) would never be read.
    fn undo(&mut self, mark: Mark) {
        for entry in self
            .batch_added
            .drain(mark.added.min(self.batch_added.len())..)
        {
            self.entries.remove(&entry);
        }
        self.max_seen = mark.max_seen;
    }

    /// Whether [`merge_step`](Self::merge_step) has work to do.
    pub(crate) fn merge_due(&self) -> bool {
        self.built && (self.merge.is_some() || self.entries.len() >= self.merge_at)
    }

    /// Whether [`fold_step`](Self::fold_step) has work to do (once no merge has).
    pub(crate) fn fold_due(&self) -> bool {
        self.built && (self.fold.is_some() || self.runs >= self.fold_threshold())
    }

    fn fold_threshold(&self) -> usize {
        match self.merged {
            Some(_) => self.fold_at,
            None => self.fold_at.min(FOLD_AT_WITHOUT_FINGERPRINTS),
        }
    }

    /// One step of index upkeep, after a write batch: a merge slice, else a fold slice, else
    /// nothing.
    pub(crate) fn upkeep_step(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let (merge, fold) = (self.merge_due(), self.fold_due());
        let fold_now = fold && (!merge || self.fold_turn);
        if merge && fold {
            self.fold_turn = !fold_now;
        }
        if fold_now {
            self.fold_step(conn)
        } else if merge {
            self.merge_step(conn)
        } else {
            Ok(())
        }
    }

    /// Moves one slice of the entries into `event_keys`, in a transaction of its own; the last
    /// slice also moves the watermark, and the merged entries leave memory. A failed step is
    /// rolled back; the next call starts that slice again.
    pub(crate) fn merge_step(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let merge = match self.merge {
            Some(merge) => merge,
            None => Merge {
                upto: self.max_seen,
                next_slice: 0,
            },
        };
        self.merge = Some(merge);
        let (low, high) = slice_bounds(merge.next_slice, SLICES);
        let last = merge.next_slice + 1 == SLICES;
        let new_run = in_transaction(conn, || {
            // Entries up to the watermark were merged by another process (which read them as
            // this one read its events): their keys are in its run already.
            let (watermark, purged_upto): (i64, i64) = conn
                .prepare_cached("SELECT upto, purged_upto FROM event_keys_merged")?
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let mut new_run = 0;
            let mut listed = false;
            // Entries are exact (rolled-back inserts were undone), but an event may have been
            // purged since it was read (by any process): its key is left out, as nothing would
            // ever remove it (ids are not reused). Only ids a purge reached can be gone, so
            // only those are checked, which spares reading an `events` page for each key.
            let mut add = conn.prepare_cached(
                "INSERT OR IGNORE INTO event_keys (run, key, event_id) VALUES (?1, ?2, ?3)",
            )?;
            let mut add_if_stored = conn.prepare_cached(
                "INSERT OR IGNORE INTO event_keys (run, key, event_id)
                 SELECT ?1, ?2, id FROM events WHERE id = ?3",
            )?;
            for &(key, id) in self.entries.range((low, i64::MIN)..=(high, i64::MAX)) {
                if id <= watermark || id > merge.upto {
                    continue;
                }
                if !listed {
                    // In every slice that writes: a fold (by another process, say) may have
                    // dropped the run's row since an earlier slice listed it, and the rows of
                    // a run not listed would not be found. The run holds ids in
                    // (after, run], which lets a purge seek only the runs that can hold an id.
                    new_run = conn
                        .prepare_cached(
                            "INSERT OR IGNORE INTO event_key_runs (run, after) VALUES (?1, ?2)",
                        )?
                        .execute([merge.upto, watermark])?;
                    listed = true;
                }
                if id <= purged_upto {
                    add_if_stored.execute(params![merge.upto, key, id])?;
                } else {
                    add.execute(params![merge.upto, key, id])?;
                }
            }
            if last {
                conn.prepare_cached("UPDATE event_keys_merged SET upto = max(upto, ?1)")?
                    .execute([merge.upto])?;
            }
            Ok(new_run)
        })?;
        if new_run > 0 {
            self.runs += 1;
        }
        if last {
            if let Some(merged) = self.merged.take() {
                let added: Vec<i32> = self
                    .entries
                    .iter()
                    .filter(|&&(_, id)| id <= merge.upto)
                    .map(|&(key, _)| fingerprint(key))
                    .collect();
                self.merged = merged.with(&added);
            }
            self.entries.retain(|&(_, id)| id > merge.upto);
            self.merge = None;
        } else {
            self.merge = Some(Merge {
                next_slice: merge.next_slice + 1,
                ..merge
            });
        }
        Ok(())
    }

    /// Moves one slice of the runs numbered up to the fold's `upto` into run 0, in a
    /// transaction of its own; the last slice drops the emptied runs from `event_key_runs`. Every
    /// commit leaves each key in run 0 or in its own run, both listed, so lookups never miss one.
    pub(crate) fn fold_step(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let fold = match self.fold {
            Some(fold) => fold,
            None => {
                // The count may be stale (another process folded): start only if it holds.
                self.runs = count_runs(conn)?;
                if self.runs < self.fold_threshold() {
                    return Ok(());
                }
                // Each slice rewrites its part of run 0 too: size the slices by the whole
                // table (the fingerprints count it without a scan).
                let moved = self.runs.saturating_mul(self.merge_at);
                let in_run_0 = self
                    .merged
                    .as_ref()
                    .map_or(MAX_FINGERPRINTS, Fingerprints::len);
                Fold {
                    // Runs another process adds from here on wait for the next fold.
                    upto: conn.query_row(
                        "SELECT coalesce(max(run), 0) FROM event_key_runs",
                        [],
                        |row| row.get(0),
                    )?,
                    next_slice: 0,
                    slices: fold_slices(moved.saturating_add(in_run_0)),
                }
            }
        };
        self.fold = Some(fold);
        let (low, high) = slice_bounds(fold.next_slice, fold.slices);
        let last = fold.next_slice + 1 >= fold.slices;
        in_transaction(conn, || {
            let runs = "run IN (SELECT run FROM event_key_runs WHERE run > 0 AND run <= ?1)
                 AND key BETWEEN ?2 AND ?3";
            conn.prepare_cached(&format!(
                "INSERT OR IGNORE INTO event_keys (run, key, event_id)
                 SELECT 0, key, event_id FROM event_keys WHERE {runs}"
            ))?
            .execute(params![fold.upto, low, high])?;
            conn.prepare_cached(&format!("DELETE FROM event_keys WHERE {runs}"))?
                .execute(params![fold.upto, low, high])?;
            if last {
                // A run that still has rows (another process's merge went on writing it after
                // its slices were folded) stays listed, for the next fold.
                conn.prepare_cached(
                    "DELETE FROM event_key_runs WHERE run > 0 AND run <= ?1
                     AND NOT EXISTS (SELECT 1 FROM event_keys k WHERE k.run = event_key_runs.run)",
                )?
                .execute([fold.upto])?;
            }
            Ok(())
        })?;
        if last {
            self.runs = count_runs(conn)?;
            self.fold = None;
        } else {
            self.fold = Some(Fold {
                next_slice: fold.next_slice + 1,
                ..fold
            });
        }
        Ok(())
    }

    /// Entries held in memory (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keys that merge after `merge_at` entries (for tests).
    #[cfg(test)]
    pub(crate) fn with_merge_at(merge_at: usize) -> Self {
        Self {
            merge_at,
            ..Self::default()
        }
    }

    /// Keys that merge after `merge_at` entries and fold after `fold_at` runs (for tests).
    #[cfg(test)]
    pub(crate) fn with_merge_and_fold_at(merge_at: usize, fold_at: usize) -> Self {
        Self {
            merge_at,
            fold_at,
            ..Self::default()
        }
    }
}

/// Runs `work` in a transaction of its own (taking the write lock at once): committed if it
/// succeeds, rolled back if it or the commit fails.
fn in_transaction<T>(
    conn: &Connection,
    work: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    // A newer ccai may have migrated the file since the last batch: write nothing under the
    // old schema. One read of the header page, against a slice that takes milliseconds.
    let result = schema_unchanged(conn)
        .and_then(|()| work())
        .and_then(|value| {
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(value)
        });
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// The fingerprints of every key in `event_keys`, sorted, or `None` if there are too many.
fn read_fingerprints(conn: &Connection) -> rusqlite::Result<Option<Fingerprints>> {
    let count: i64 = conn.query_row("SELECT count(*) FROM event_keys", [], |row| row.get(0))?;
    if usize::try_from(count).map_or(true, |count| count > MAX_FINGERPRINTS) {
        return Ok(None);
    }
    // In table order (by run), sorted here: cheaper than SQLite sorting the whole table.
    let mut stmt = conn.prepare("SELECT key FROM event_keys")?;
    let keys = stmt.query_map([], |row| row.get::<_, i64>(0))?;
    let mut sorted = keys
        .map(|key| key.map(fingerprint))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    sorted.sort_unstable();
    Ok(Fingerprints::from_sorted(sorted))
}

/// The runs in `event_keys` besides run 0.
fn count_runs(conn: &Connection) -> rusqlite::Result<usize> {
    let runs: i64 = conn.query_row(
        "SELECT count(*) FROM event_key_runs WHERE run > 0",
        [],
        |row| row.get(0),
    )?;
    Ok(usize::try_from(runs).unwrap_or(0))
}

/// The slices a fold of about `keys` keys takes: [`FOLD_SLICE_KEYS`] each, at least [`SLICES`].
fn fold_slices(keys: usize) -> u32 {
    let slices = (keys / FOLD_SLICE_KEYS).clamp(SLICES as usize, 1 << 16);
    u32::try_from(slices.next_power_of_two()).unwrap_or(1 << 16)
}

/// The inclusive key range of slice `index` of `count` equal slices of the `i64` key space.
fn slice_bounds(index: u32, count: u32) -> (i64, i64) {
    let width = (u64::MAX / u64::from(count)) + 1;
    let low = (i64::MIN as i128 + i128::from(index) * i128::from(width)) as i64;
    let high = if index + 1 >= count {
        i64::MAX
    } else {
        (i64::MIN as i128 + i128::from(index + 1) * i128::from(width) - 1) as i64
    };
    (low, high)
}

/// Indexes every event of a file that had none (migration 2): their keys go into `event_keys`
/// in key order and the watermark past them, so that neither the first insert nor a reader
/// has to go through them one by one.
pub(crate) fn index_existing(conn: &Connection) -> rusqlite::Result<()> {
    let mut keys = Vec::new();
    let mut stmt = conn.prepare("SELECT id, event_hash FROM events")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        keys.push((stored_key(row.get_ref(1)?)?, row.get::<_, i64>(0)?));
    }
    keys.sort_unstable();
    let mut add =
        conn.prepare("INSERT OR IGNORE INTO event_keys (run, key, event_id) VALUES (0, ?1, ?2)")?;
    for (key, id) in keys {
        add.execute(params![key, id])?;
    }
    conn.execute(
        "UPDATE event_keys_merged SET upto = (SELECT coalesce(max(id), 0) FROM events)",
        [],
    )?;
    Ok(())
}

/// Removes the `event_keys` rows of the events about to be deleted by `condition` (a `WHERE`
/// on `events`, with `params`), so the table does not keep keys of events that are gone, and
/// raises `purged_upto` to the highest of their ids, so a merge (of any process) checks those
/// ids before indexing them.
pub(crate) fn forget(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<()> {
    let mut select = conn.prepare(&format!(
        "SELECT id, event_hash FROM events WHERE {condition}"
    ))?;
    // Run 0 and the runs whose id range holds the event: one or two seeks, not one per run.
    let mut delete = conn.prepare_cached(
        "DELETE FROM event_keys
         WHERE run IN (SELECT run FROM event_key_runs
                       WHERE run = 0 OR (after < ?2 AND run >= ?2))
           AND key = ?1 AND event_id = ?2",
    )?;
    let mut rows = select.query(params)?;
    let mut highest = None;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        delete.execute(params![stored_key(row.get_ref(1)?)?, id])?;
        highest = highest.max(Some(id));
    }
    if let Some(highest) = highest {
        conn.prepare_cached("UPDATE event_keys_merged SET purged_upto = max(purged_upto, ?1)")?
            .execute([highest])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::super::convert::sha256_hex;
    use super::super::{queries, schema, writes};
    use super::*;
    use crate::inbox::{Inserted, NewDelivery, Retention};

    fn open(path: &std::path::Path) -> Connection {
        let mut conn = Connection::open(path).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
            .expect("pragmas");
        schema::migrate(&mut conn, "test").expect("migrate");
        conn
    }

    /// One insert in a batch of its own, as the writer thread runs it; `commit` false rolls the
    /// batch back.
    fn insert_in_batch(
        conn: &Connection,
        keys: &mut RecentKeys,
        client: &str,
        hash: &str,
        body: &str,
        commit: bool,
    ) -> Inserted {
        keys.batch_started();
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        keys.job_started();
        let delivery = NewDelivery::new(client, hash, "message.sent", body.as_bytes().to_vec());
        let destinations = ["default".to_owned()];
        let digest = sha256_hex(body.as_bytes());
        let inserted = writes::insert(
            conn,
            keys,
            "test",
            &destinations,
            &delivery,
            &digest,
            hash_key(hash),
        )
        .expect("insert");
        if commit {
            conn.execute_batch("COMMIT").expect("commit");
            keys.batch_committed();
        } else {
            conn.execute_batch("ROLLBACK").expect("rollback");
            keys.batch_rolled_back();
        }
        inserted
    }

    fn insert(conn: &Connection, keys: &mut RecentKeys, hash: &str, body: &str) -> Inserted {
        insert_in_batch(conn, keys, "1231", hash, body, true)
    }

    fn merge_all(conn: &Connection, keys: &mut RecentKeys) {
        while keys.merge_due() {
            keys.merge_step(conn).expect("merge step");
        }
    }

    /// Marks every delivery delivered and purges every event.
    fn purge_all(conn: &Connection) {
        conn.execute_batch("UPDATE deliveries SET status = 'delivered'")
            .expect("deliver");
        purge_finished(conn);
    }

    /// Purges every finished event, bodies and rows.
    fn purge_finished(conn: &Connection) {
        let later = SystemTime::now() + Duration::from_secs(60);
        writes::purge(
            conn,
            "test",
            Retention::new(Duration::ZERO, Duration::ZERO),
            later,
        )
        .expect("purge");
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).expect("count")
    }

    #[test]
    fn duplicates_are_found_before_during_and_after_a_merge_and_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("inbox.db"));
        let mut keys = RecentKeys::with_merge_at(10);
        for n in 0..25 {
            assert_eq!(
                insert(&conn, &mut keys, &format!("h{n}"), "body"),
                Inserted::New
            );
        }
        assert!(keys.merge_due());
        for _ in 0..SLICES / 2 {
            keys.merge_step(&conn).expect("merge step");
        }
        // Half merged: every key is still found, and nothing was written twice.
        assert_eq!(insert(&conn, &mut keys, "h3", "body"), Inserted::Duplicate);
        assert_eq!(insert(&conn, &mut keys, "h25", "body"), Inserted::New);
        merge_all(&conn, &mut keys);
        // The merge took the 25 events there when it started; h25 came after and waits.
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 25);
        assert_eq!(count(&conn, "SELECT upto FROM event_keys_merged"), 25);
        assert_eq!(keys.len(), 1, "merged entries leave memory");
        assert_eq!(insert(&conn, &mut keys, "h26", "body"), Inserted::New);
        for n in 0..27 {
            assert_eq!(
                insert(&conn, &mut keys, &format!("h{n}"), "body"),
                Inserted::Duplicate,
                "h{n}"
            );
        }
        assert_eq!(
            insert(&conn, &mut keys, "h7", "another body"),
            Inserted::Conflict
        );
        // Another client's event with the same hash is an event of its own.
        assert_eq!(
            insert_in_batch(&conn, &mut keys, "other", "h7", "body", true),
            Inserted::New
        );
        assert_eq!(count(&conn, "SELECT count(*) FROM events"), 28);

        // A reopened store (a new writer) reads the merged keys and the unmerged events back.
        let mut reopened = RecentKeys::with_merge_at(10);
        for n in 0..27 {
            assert_eq!(
                insert(&conn, &mut reopened, &format!("h{n}"), "body"),
                Inserted::Duplicate,
                "h{n}"
            );
        }
        assert_eq!(insert(&conn, &mut reopened, "h27", "body"), Inserted::New);

        // Readers (no in-memory keys) find merged and unmerged events by hash.
        for hash in ["h0", "h25", "h26", "h27"] {
            let found = queries::get(&conn, "test", hash, None)
                .expect("get")
                .expect("found");
            assert_eq!(found.summary.event_hash, hash);
        }
        assert!(queries::get(&conn, "test", "h999", None)
            .expect("get")
            .is_none());

        // Purging events removes their keys, so event_keys does not outlive them.
        purge_all(&conn);
        assert_eq!(count(&conn, "SELECT count(*) FROM events"), 0);
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 0);
    }

    #[test]
    fn another_writers_events_are_read_before_deciding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let (a, b) = (open(&path), open(&path));
        let (mut keys_a, mut keys_b) = (RecentKeys::with_merge_at(4), RecentKeys::with_merge_at(4));
        assert_eq!(insert(&a, &mut keys_a, "x", "body"), Inserted::New);
        assert_eq!(insert(&b, &mut keys_b, "x", "body"), Inserted::Duplicate);
        for n in 0..6 {
            assert_eq!(
                insert(&a, &mut keys_a, &format!("a{n}"), "body"),
                Inserted::New
            );
        }
        // A merges, moving the watermark past events B has only in memory.
        merge_all(&a, &mut keys_a);
        for hash in ["x", "a0", "a5"] {
            assert_eq!(
                insert(&b, &mut keys_b, hash, "body"),
                Inserted::Duplicate,
                "{hash}"
            );
        }
        assert_eq!(count(&a, "SELECT count(*) FROM events"), 7);
    }

    #[test]
    fn ids_are_not_reused_after_the_newest_events_are_purged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let (a, b) = (open(&path), open(&path));
        let (mut keys_a, mut keys_b) = (RecentKeys::default(), RecentKeys::default());
        for hash in ["p1", "p2"] {
            assert_eq!(insert(&a, &mut keys_a, hash, "body"), Inserted::New);
        }
        purge_all(&a);
        // B's event must not take an id A has already read past.
        assert_eq!(insert(&b, &mut keys_b, "q", "body"), Inserted::New);
        assert_eq!(insert(&a, &mut keys_a, "q", "body"), Inserted::Duplicate);
    }

    #[test]
    fn a_batch_that_read_its_own_uncommitted_purge_forgets_what_it_read_when_rolled_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("inbox.db"));
        let mut first = RecentKeys::with_merge_at(1);
        assert_eq!(insert(&conn, &mut first, "kept", "body"), Inserted::New);
        merge_all(&conn, &mut first);
        conn.execute_batch("UPDATE deliveries SET status = 'delivered'")
            .expect("deliver");
        // A new writer's first batch: a purge, then an insert (the build sees the purge), and
        // the batch rolls back, so "kept" is stored again.
        let mut keys = RecentKeys::default();
        keys.batch_started();
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let later = SystemTime::now() + Duration::from_secs(60);
        writes::purge(
            &conn,
            "test",
            Retention::new(Duration::ZERO, Duration::ZERO),
            later,
        )
        .expect("purge");
        keys.job_started();
        let delivery = NewDelivery::new("1231", "other", "message.sent", b"body".to_vec());
        writes::insert(
            &conn,
            &mut keys,
            "test",
            &["default".to_owned()],
            &delivery,
            &sha256_hex(b"body"),
            hash_key("other"),
        )
        .expect("insert");
        conn.execute_batch("ROLLBACK").expect("rollback");
        keys.batch_rolled_back();
        assert_eq!(
            insert(&conn, &mut keys, "kept", "body"),
            Inserted::Duplicate
        );
    }

    #[test]
    fn an_event_purged_before_its_merge_leaves_no_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("inbox.db"));
        let mut keys = RecentKeys::with_merge_at(2);
        for hash in ["gone", "stays"] {
            assert_eq!(insert(&conn, &mut keys, hash, "body"), Inserted::New);
        }
        // Purged on another connection, as another process would: these keys do not know.
        let other = open(&dir.path().join("inbox.db"));
        other
            .execute_batch(
                "UPDATE deliveries SET status = 'delivered'
                  WHERE event_id = (SELECT id FROM events WHERE event_hash = 'gone')",
            )
            .expect("deliver");
        let later = SystemTime::now() + Duration::from_secs(60);
        let report = writes::purge(
            &other,
            "test",
            Retention::new(Duration::ZERO, Duration::ZERO),
            later,
        )
        .expect("purge");
        assert_eq!(report.events_deleted, 1, "the pending event stays");
        // The merge checks the ids up to the highest one purged, and only those.
        assert_eq!(count(&conn, "SELECT purged_upto FROM event_keys_merged"), 1);
        merge_all(&conn, &mut keys);
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 1);
        assert_eq!(
            insert(&conn, &mut keys, "stays", "body"),
            Inserted::Duplicate
        );
    }

    #[test]
    fn a_rolled_back_insert_leaves_no_key_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let (a, b) = (open(&path), open(&path));
        let (mut keys_a, mut keys_b) = (RecentKeys::default(), RecentKeys::default());
        assert_eq!(insert(&a, &mut keys_a, "first", "body"), Inserted::New);
        // A's insert rolls back: the id it took is free again, and B's next event takes it.
        assert_eq!(
            insert_in_batch(&a, &mut keys_a, "1231", "lost", "body", false),
            Inserted::New
        );
        assert_eq!(insert(&b, &mut keys_b, "taken", "body"), Inserted::New);
        // A must see B's event under the reused id, and not believe "lost" was stored.
        assert_eq!(
            insert(&a, &mut keys_a, "taken", "body"),
            Inserted::Duplicate
        );
        assert_eq!(insert(&a, &mut keys_a, "lost", "body"), Inserted::New);
        assert_eq!(count(&a, "SELECT count(*) FROM events"), 3);
    }

    fn upkeep_all(conn: &Connection, keys: &mut RecentKeys) {
        while keys.merge_due() || keys.fold_due() {
            keys.upkeep_step(conn).expect("upkeep step");
        }
    }

    /// Every hash is found, by a reader and by a writer that starts from the tables alone.
    fn all_found(conn: &Connection, hashes: &[String]) {
        let mut fresh = RecentKeys::default();
        for hash in hashes {
            assert!(
                queries::get(conn, "test", hash, None)
                    .expect("get")
                    .is_some(),
                "a reader finds {hash}"
            );
            assert_eq!(
                insert(conn, &mut fresh, hash, "body"),
                Inserted::Duplicate,
                "{hash}"
            );
        }
    }

    fn insert_new(conn: &Connection, keys: &mut RecentKeys, prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let hash = format!("{prefix}{i}");
                assert_eq!(insert(conn, keys, &hash, "body"), Inserted::New, "{hash}");
                hash
            })
            .collect()
    }

    #[test]
    fn merges_append_runs_that_fold_into_run_0_and_every_key_is_still_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("inbox.db"));
        let mut keys = RecentKeys::with_merge_and_fold_at(10, 3);
        let mut hashes = Vec::new();
        for round in 0..3 {
            hashes.extend(insert_new(&conn, &mut keys, &format!("r{round}-"), 10));
            merge_all(&conn, &mut keys);
        }
        assert_eq!(
            count(&conn, "SELECT count(*) FROM event_key_runs WHERE run > 0"),
            3,
            "a run per merge"
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM event_keys WHERE run = 0"),
            0
        );
        assert!(keys.fold_due());
        for _ in 0..SLICES / 2 {
            keys.fold_step(&conn).expect("fold step");
        }
        all_found(&conn, &hashes);
        upkeep_all(&conn, &mut keys);
        assert_eq!(
            count(&conn, "SELECT count(*) FROM event_key_runs"),
            1,
            "only run 0 is left"
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM event_keys WHERE run = 0"),
            30
        );
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 30);
        all_found(&conn, &hashes);
        assert_eq!(
            insert(&conn, &mut keys, "r0-0", "body"),
            Inserted::Duplicate
        );
        purge_all(&conn);
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 0);
    }

    #[test]
    fn a_fold_never_hides_a_run_another_writer_is_still_merging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let (a_conn, b_conn) = (open(&path), open(&path));
        let mut a = RecentKeys::with_merge_and_fold_at(1_000, 1);
        let mut b = RecentKeys::with_merge_at(20);
        let mut hashes = insert_new(&b_conn, &mut b, "b", 20);

        // B's merge has listed its run and written half of it when A folds every slice: A
        // empties the run and drops it, so B's later slices must list it again.
        for _ in 0..SLICES / 2 {
            b.merge_step(&b_conn).expect("merge step");
        }
        // A's next insert sees that another process wrote, and counts B's run.
        hashes.extend(insert_new(&a_conn, &mut a, "a", 1));
        assert!(a.fold_due(), "A counts B's run");
        while a.fold_due() {
            a.fold_step(&a_conn).expect("fold step");
        }
        merge_all(&b_conn, &mut b);
        all_found(&a_conn, &hashes);

        // B writes slices A's fold has passed before A's last slice: the run keeps its rows,
        // so it must stay listed.
        hashes.extend(insert_new(&b_conn, &mut b, "c", 20));
        b.merge_step(&b_conn).expect("merge step");
        for _ in 0..SLICES - 1 {
            a.fold_step(&a_conn).expect("fold step");
        }
        merge_all(&b_conn, &mut b);
        a.fold_step(&a_conn).expect("last fold step");
        all_found(&a_conn, &hashes);
    }

    #[test]
    fn no_merge_slice_is_written_once_a_newer_ccai_migrated_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let conn = open(&path);
        let mut keys = RecentKeys::with_merge_at(10);
        insert_new(&conn, &mut keys, "a", 10);
        assert!(keys.merge_due());
        Connection::open(&path)
            .expect("open")
            .execute_batch(&format!(
                "PRAGMA user_version = {}",
                schema::SCHEMA_VERSION + 1
            ))
            .expect("a newer version");
        let error = keys.merge_step(&conn).expect_err("refused");
        assert!(
            error.to_string().contains("schema version changed"),
            "{error}"
        );
        assert_eq!(count(&conn, "SELECT count(*) FROM event_keys"), 0);
        assert!(conn.is_autocommit(), "no transaction left open");
    }

    #[test]
    fn a_steady_stream_of_merges_does_not_put_a_fold_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("inbox.db"));
        let mut keys = RecentKeys::with_merge_and_fold_at(10, 1);
        let mut hashes = insert_new(&conn, &mut keys, "a", 10);
        while keys.merge_due() {
            keys.merge_step(&conn).expect("merge step");
        }
        assert!(keys.fold_due());
        // A merge is due as well now; the two alternate, so the fold starts at once.
        hashes.extend(insert_new(&conn, &mut keys, "b", 10));
        keys.upkeep_step(&conn).expect("upkeep step");
        keys.upkeep_step(&conn).expect("upkeep step");
        assert!(keys.fold.is_some(), "the fold started");
        assert!(keys.merge.is_some(), "the merge started");
        upkeep_all(&conn, &mut keys);
        // With one run allowed, every run ends up folded.
        assert_eq!(
            count(&conn, "SELECT count(*) FROM event_key_runs WHERE run > 0"),
            0
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM event_keys WHERE run = 0"),
            20
        );
        all_found(&conn, &hashes);
    }

    #[test]
    fn a_writer_does_not_merge_again_what_another_writer_merged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let (a_conn, b_conn) = (open(&path), open(&path));
        let mut a = RecentKeys::with_merge_at(10);
        let mut b = RecentKeys::with_merge_at(10);
        let mut hashes = insert_new(&a_conn, &mut a, "a", 10);
        // B reads A's ten events before its own insert, and holds eleven entries.
        hashes.extend(insert_new(&b_conn, &mut b, "b", 1));
        merge_all(&a_conn, &mut a);
        merge_all(&b_conn, &mut b);
        assert_eq!(
            count(&a_conn, "SELECT count(*) FROM event_keys"),
            11,
            "each key once"
        );
        all_found(&a_conn, &hashes);
        // Purging finds each key in the run whose id range holds it.
        purge_all(&a_conn);
        assert_eq!(count(&a_conn, "SELECT count(*) FROM event_keys"), 0);
    }

    #[test]
    fn a_fold_another_writer_already_did_is_not_started_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("inbox.db");
        let (a_conn, b_conn) = (open(&path), open(&path));
        let mut a = RecentKeys::with_merge_and_fold_at(10, 1);
        let mut b = RecentKeys::with_merge_and_fold_at(10, 1);
        let mut hashes = insert_new(&b_conn, &mut b, "b", 10);
        merge_all(&b_conn, &mut b);
        // A counts B's run at its next insert; then B folds it.
        hashes.extend(insert_new(&a_conn, &mut a, "a", 1));
        assert!(a.fold_due());
        upkeep_all(&b_conn, &mut b);
        a.upkeep_step(&a_conn).expect("upkeep step");
        assert!(
            !a.fold_due(),
            "A recounted the runs instead of folding nothing"
        );
        all_found(&a_conn, &hashes);
    }

    #[test]
    fn slices_cover_the_key_space_without_gaps_or_overlaps() {
        for count in [SLICES, fold_slices(3_000_000), 1 << 16] {
            assert_eq!(slice_bounds(0, count).0, i64::MIN);
            assert_eq!(slice_bounds(count - 1, count).1, i64::MAX);
            for i in 1..count {
                assert_eq!(
                    slice_bounds(i - 1, count).1 + 1,
                    slice_bounds(i, count).0,
                    "slice {i} of {count}"
                );
                assert!(slice_bounds(i, count).0 <= slice_bounds(i, count).1);
            }
        }
        assert_eq!(fold_slices(100), SLICES);
        assert_eq!(fold_slices(256 * MERGE_AT), 4096);
        assert_eq!(fold_slices(usize::MAX), 1 << 16);
    }

    #[test]
    fn fingerprints_follow_key_order() {
        // Fingerprints follow key order, so a key-ordered scan yields them sorted.
        let mut keys: Vec<i64> = (0..1000).map(|n| hash_key(&n.to_string())).collect();
        keys.sort_unstable();
        let prints: Vec<i32> = keys.iter().map(|&k| fingerprint(k)).collect();
        assert!(prints.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn the_key_is_stable_and_depends_on_the_hash() {
        // Stored in files: it must never change between versions.
        assert_eq!(
            hash_key("abc"),
            i64::from_be_bytes([0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea])
        );
        assert_ne!(hash_key("abc"), hash_key("abd"));
    }

    // A randomized model check: writers sharing one file, batches with rolled-back jobs and
    // batches, purges, merges and folds at tiny thresholds, and restarts; after every step no
    // (client id, eventHash) is stored twice and readers find every stored event.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, usize, bool),
        Purge(Vec<usize>),
        Fail,
    }

    /// One writer batch as `writer::run_batch` runs it: each op in a savepoint.
    fn run_ops(
        conn: &Connection,
        keys: &mut RecentKeys,
        ops: &[Op],
        commit: bool,
        log: &mut Vec<String>,
    ) -> Vec<Option<Inserted>> {
        keys.batch_started();
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let mut out = Vec::new();
        for op in ops {
            conn.execute_batch("SAVEPOINT job").unwrap();
            keys.job_started();
            let (ok, res) = match op {
                Op::Insert(c, h, roll) => {
                    let client = format!("c{c}");
                    let hash = format!("h{h}");
                    let exists: bool = conn
                        .query_row(
                            "SELECT count(*) FROM events WHERE client_id=?1 AND event_hash=?2",
                            params![client, hash],
                            |r| r.get::<_, i64>(0),
                        )
                        .unwrap()
                        > 0;
                    let delivery = NewDelivery::new(
                        client.as_str(),
                        hash.as_str(),
                        "message.sent",
                        b"body".to_vec(),
                    );
                    let r = writes::insert(
                        conn,
                        keys,
                        "t",
                        &["default".to_owned()],
                        &delivery,
                        &sha256_hex(b"body"),
                        hash_key(&hash),
                    )
                    .expect("insert");
                    let expected = if exists {
                        Inserted::Duplicate
                    } else {
                        Inserted::New
                    };
                    assert_eq!(r, expected, "{client}/{hash} log={log:#?}");
                    (!roll, Some(r))
                }
                Op::Purge(hs) => {
                    for h in hs {
                        conn.execute("UPDATE deliveries SET status='delivered' WHERE event_id IN (SELECT id FROM events WHERE event_hash=?1)", [format!("h{h}")]).unwrap();
                    }
                    purge_finished(conn);
                    (true, None)
                }
                Op::Fail => (false, None),
            };
            if !ok {
                conn.execute_batch("ROLLBACK TO job").unwrap();
                keys.job_rolled_back();
            }
            conn.execute_batch("RELEASE job").unwrap();
            out.push(res);
        }
        if commit {
            conn.execute_batch("COMMIT").unwrap();
            keys.batch_committed();
        } else {
            conn.execute_batch("ROLLBACK").unwrap();
            keys.batch_rolled_back();
        }
        out
    }

    fn check_invariants(conn: &Connection, log: &[String]) {
        let dups: i64 = count(conn, "SELECT count(*) FROM (SELECT 1 FROM events GROUP BY client_id, event_hash HAVING count(*) > 1)");
        assert_eq!(dups, 0, "a duplicate stored twice; log={log:#?}");
        // readers find every stored event
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT client_id, event_hash FROM events")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for (c, h) in rows {
            assert!(
                queries::get(conn, "t", &h, Some(&c)).unwrap().is_some(),
                "reader misses {c}/{h}; log={log:#?}"
            );
        }
    }

    /// `CCAI_MODEL_SEEDS` seeds (default 4, about 2 s each; 100 passed when it was written).
    #[test]
    fn random_batches_merges_purges_and_restarts_keep_keys_exact() {
        let seeds: u64 = std::env::var("CCAI_MODEL_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4);
        for seed in 0..seeds {
            let mut rng = fastrand::Rng::with_seed(seed);
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("inbox.db");
            let nw = 1 + rng.usize(..3);
            let conns: Vec<Connection> = (0..nw)
                .map(|_| {
                    let c = open(&path);
                    c.execute_batch("PRAGMA synchronous=OFF").unwrap();
                    c
                })
                .collect();
            let mk = |rng: &mut fastrand::Rng| {
                RecentKeys::with_merge_and_fold_at(1 + rng.usize(..6), 1 + rng.usize(..4))
            };
            let mut keys: Vec<RecentKeys> = (0..nw).map(|_| mk(&mut rng)).collect();
            let mut log = Vec::new();
            for _ in 0..300 {
                let w = rng.usize(..nw);
                match rng.u32(..100) {
                    0..=59 => {
                        let n = 1 + rng.usize(..4);
                        let ops: Vec<Op> = (0..n)
                            .map(|_| match rng.u32(..10) {
                                0 => Op::Fail,
                                1 => Op::Purge(
                                    (0..rng.usize(..4)).map(|_| rng.usize(..25)).collect(),
                                ),
                                _ => Op::Insert(rng.usize(..2), rng.usize(..25), rng.u32(..8) == 0),
                            })
                            .collect();
                        let commit = rng.u32(..8) != 0;
                        log.push(format!("w{w} batch {ops:?} commit={commit}"));
                        run_ops(&conns[w], &mut keys[w], &ops, commit, &mut log);
                    }
                    60..=89 => {
                        log.push(format!("w{w} upkeep"));
                        if keys[w].merge_due() || keys[w].fold_due() {
                            keys[w].upkeep_step(&conns[w]).expect("upkeep");
                        }
                    }
                    90..=94 => {
                        log.push(format!("w{w} reopen"));
                        keys[w] = mk(&mut rng);
                    }
                    _ => {
                        log.push(format!("w{w} upkeep all"));
                        let mut steps = 0;
                        while keys[w].merge_due() || keys[w].fold_due() {
                            keys[w].upkeep_step(&conns[w]).expect("upkeep");
                            steps += 1;
                            if steps > 300 {
                                break;
                            }
                        }
                    }
                }
                check_invariants(&conns[0], &log);
            }
        }
    }
}
