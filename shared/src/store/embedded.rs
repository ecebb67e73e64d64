//! The embedded store: the whole table in memory (partitions by partition
//! key, each a B-tree by sort key), every change first in a write-ahead log
//! with group commit.
//! Durable across `kill -9`, safe under concurrency, no server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::store::partitions::Partitions;
use crate::store::record::{self, Record};
use crate::store::wal::{self, Wal};
use crate::store::{
    apply_update, check_transaction, item_size, sk_matches, Item, Key, Page, Query, Store,
    StoreError, Write, MAX_ITEM_BYTES,
};

/// Items per frame when compacting the log into a snapshot.
const SNAPSHOT_ITEMS_PER_FRAME: usize = 512;
/// Item bytes per snapshot frame: the record's framing adds a few bytes per
/// attribute, which keeps every frame well under the WAL's frame limit.
const SNAPSHOT_FRAME_BUDGET: usize = wal::MAX_FRAME_BYTES / 4;
/// Deletes are remembered by partition hash into this many buckets (see
/// [`Table::deleted`]).
const DELETE_BUCKETS: usize = 256;

/// An item and the log sequence number of the commit that wrote it: a read
/// waits for that commit to be durable, not for the newest one.
///
/// The item is kept in its log encoding, not as a tree: about a fifth of
/// the memory (as a tree a deposit's items took 14.5 KB, and zeroing the
/// pages the table grew into was a tenth of the server's CPU). A read
/// decodes it, outside the lock (the bytes are shared, not copied).
struct Stored {
    packed: Arc<[u8]>,
    /// Its size as DynamoDB counts it (what `item_bytes` answers).
    size: usize,
    lsn: u64,
}

impl Stored {
    fn new(item: &Item, lsn: u64) -> Stored {
        Stored {
            packed: record::encode_item(item).into(),
            size: item_size(item),
            lsn,
        }
    }
}

/// A stored item back as a tree.
fn unpack(packed: &[u8]) -> Result<Item, StoreError> {
    record::decode_item(packed)
        .map_err(|e| StoreError::Unavailable(format!("a stored item does not decode: {e}")))
}

struct Table {
    items: Partitions<Stored>,
    /// The newest commit that deleted something in a partition of each
    /// bucket: an absence (a missing item, a query's page) is shown only
    /// once the deletes that may have made it are durable.
    deleted: [u64; DELETE_BUCKETS],
}

impl Table {
    fn new(items: Partitions<Stored>) -> Table {
        Table {
            items,
            deleted: [0; DELETE_BUCKETS],
        }
    }

    fn deleted_in(&self, pk: &str) -> u64 {
        self.deleted[bucket(pk)]
    }
}

fn bucket(pk: &str) -> usize {
    // FNV-1a: stable and cheap; a collision only makes a read wait longer.
    let h = pk.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % DELETE_BUCKETS as u64) as usize
}

/// What a commit did, and which log sequence number must be durable before
/// the caller may learn it.
struct Committed {
    result: Result<(), StoreError>,
    wait_for: u64,
}

/// What a read must wait to be durable before it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// The items it returns and the absence of any others (every read of
    /// the port).
    ItemsAndAbsences,
    /// The items it returns only ([`EmbeddedStore::query_shown`]).
    Items,
}

pub struct EmbeddedStore {
    /// A commit holds it while it checks, logs and applies (so log order is
    /// apply order). An RwLock was measured: no faster, reads are short.
    table: Mutex<Table>,
    wal: Wal,
    path: PathBuf,
    /// Held for the store's life: one process per log file.
    _lock: Option<std::fs::File>,
}

impl EmbeddedStore {
    /// Open (or create) the store whose log is `path`; replays and compacts it.
    pub fn open(path: &Path) -> std::io::Result<EmbeddedStore> {
        Self::open_absorbing(path, None)
    }

    /// Open the store at `path` and fold into it every item of the log at
    /// `legacy`, if there is one (a data dir from before the queue shared the
    /// store's log). The folded items are in the compacted log, on disk,
    /// before the legacy log is removed; a crash in between folds the same
    /// items again at the next open, which changes nothing. The two logs must
    /// hold disjoint keys.
    pub fn open_absorbing(path: &Path, legacy: Option<&Path>) -> std::io::Result<EmbeddedStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lock = std::fs::File::create(path.with_extension("lock"))?;
        lock.try_lock().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("{} is in use by another process", path.display()),
            )
        })?;
        let mut table = Partitions::default();
        let mut replayed = replay(path, &mut table)?;
        let legacy = legacy.filter(|l| l.exists());
        if let Some(l) = legacy {
            let folded = replay(l, &mut table)?;
            tracing::info!(from = %l.display(), frames = folded, "folding a legacy log into the store");
            replayed += folded.max(1);
        }
        if replayed > 0 {
            compact(path, &table)?;
        }
        if let Some(l) = legacy {
            std::fs::remove_file(l)?;
            let _ = std::fs::remove_file(l.with_extension("lock"));
        }
        let wal = Wal::open(path)?;
        Ok(EmbeddedStore {
            table: Mutex::new(Table::new(table)),
            wal,
            path: path.to_path_buf(),
            _lock: Some(lock),
        })
    }

    /// The same store with nothing on disk: every acknowledged write is kept
    /// only in memory. For the simulator, whose crashes are logical (an
    /// invocation abandoned), never a lost process; everything else opens a
    /// log.
    pub fn in_memory() -> EmbeddedStore {
        EmbeddedStore {
            table: Mutex::new(Table::new(Partitions::default())),
            wal: Wal::volatile(),
            path: PathBuf::new(),
            _lock: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A query that waits for the items it shows to be durable, but not for
    /// the absence of others: an item deleted or moved by a commit not yet
    /// synced is not shown, though a crash could bring it back. For the
    /// queue's receives only, where what comes back is delivered again.
    pub async fn query_shown(&self, q: &Query) -> Result<Page, StoreError> {
        self.query_waiting(q, Shown::Items).await
    }

    /// A transaction that is checked, logged and applied, but not waited
    /// for: it becomes durable with the log's next sync (within a
    /// millisecond or so), and everything committed after it is durable only
    /// after it. A crash before that sync loses it whole, as if it had not
    /// been made. For writes whose loss is harmless: the queue's receives
    /// (a lost one is a redelivery) and deletes (a lost one is a redelivery
    /// of a message already handled).
    pub fn transact_logged(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_transaction(&writes)?;
        self.commit(writes).result
    }

    async fn query_waiting(&self, q: &Query, shown: Shown) -> Result<Page, StoreError> {
        let limit = q.limit.clamp(1, crate::store::MAX_QUERY_LIMIT);
        let (items, lsn) = {
            let table = self.lock()?;
            let range = table.items.range(q);
            let matching = |(sk, _): &(&str, &Stored)| sk_matches(q, sk);
            let found: Vec<&Stored> = if q.descending {
                range
                    .rev()
                    .filter(matching)
                    .take(limit + 1)
                    .map(|(_, v)| v)
                    .collect()
            } else {
                range
                    .filter(matching)
                    .take(limit + 1)
                    .map(|(_, v)| v)
                    .collect()
            };
            // The page shows these items and the absence of any others in
            // its range: both must be durable, unless told otherwise.
            let newest = found.iter().map(|s| s.lsn).max().unwrap_or(0);
            let lsn = match shown {
                Shown::ItemsAndAbsences => newest.max(table.deleted_in(&q.pk)),
                Shown::Items => newest,
            };
            let packed: Vec<Arc<[u8]>> = found.iter().map(|s| Arc::clone(&s.packed)).collect();
            (packed, lsn)
        };
        self.wal.wait_durable(lsn).await?;
        let items = items
            .iter()
            .map(|p| unpack(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(items, limit))
    }

    /// Hold the log's writer back (nothing more becomes durable) or let it go.
    #[cfg(test)]
    pub(crate) fn hold_log(&self, on: bool) {
        self.wal.hold(on);
    }

    fn lock(&self) -> Result<MutexGuard<'_, Table>, StoreError> {
        self.table.lock().map_err(|_| poisoned())
    }

    /// Wait until what the caller saw is durable: its own write, or, for a
    /// failed condition, the item (or absence) it failed against, which may
    /// be a write not yet on disk. Nothing not durable is ever reported.
    async fn settle(&self, committed: Committed) -> Result<(), StoreError> {
        self.wal.wait_durable(committed.wait_for).await?;
        committed.result
    }

    fn commit(&self, writes: Vec<Write>) -> Committed {
        match self.try_commit(writes) {
            Ok(lsn) => Committed {
                result: Ok(()),
                wait_for: lsn,
            },
            Err((e, wait_for)) => Committed {
                result: Err(e),
                wait_for,
            },
        }
    }

    /// Check every condition, compute the new states, log them, apply them.
    /// An error carries the sequence number its report depends on.
    ///
    /// What does not depend on the table (keys, and encoding a put's item)
    /// is done before the lock, and the trees it was given or decoded are dropped
    /// after it: the lock is held only to read, check, log and apply.
    fn try_commit(&self, writes: Vec<Write>) -> Result<u64, (StoreError, u64)> {
        let prepared = writes
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| (e, 0))?;
        let mut trees: Vec<Item> = Vec::new();
        let mut table = self.lock().map_err(|e| (e, 0))?;
        let result = self.commit_locked(&mut table, prepared, &mut trees);
        drop(table);
        drop(trees);
        result
    }

    fn commit_locked(
        &self,
        table: &mut Table,
        prepared: Vec<Prepared>,
        trees: &mut Vec<Item>,
    ) -> Result<u64, (StoreError, u64)> {
        let mut puts: Vec<(Key, Stored)> = Vec::new();
        let mut dels: Vec<Key> = Vec::new();
        for (index, Prepared { key, write, packed }) in prepared.into_iter().enumerate() {
            let stored = table.items.get(&key);
            // Decoded only for what reads it: a condition or an update.
            let reads = write.cond().is_some() || matches!(write, Write::Update { .. });
            let current = match stored.filter(|_| reads) {
                Some(s) => Some(unpack(&s.packed).map_err(|e| (e, 0))?),
                None => None,
            };
            if let Some(cond) = write.cond() {
                if !cond.eval(current.as_ref()) {
                    let seen = stored.map_or_else(|| table.deleted_in(&key.pk), |s| s.lsn);
                    let e = StoreError::ConditionFailed {
                        index,
                        old: current,
                    };
                    return Err((e, seen));
                }
            }
            match (write, packed) {
                (Write::Put { item, .. }, Some(packed)) => {
                    trees.push(item);
                    puts.push((key, packed));
                }
                (Write::Update { key, ops, .. }, _) => {
                    let item = apply_update(current.as_ref(), &key, &ops).map_err(|e| (e, 0))?;
                    let packed = Stored::new(&item, 0);
                    if packed.size > MAX_ITEM_BYTES {
                        return Err((too_large(), 0));
                    }
                    trees.push(item);
                    puts.push((key, packed));
                }
                (Write::Delete { key, .. }, _) => dels.push(key),
                (Write::Put { .. } | Write::Check { .. }, _) => {}
            }
            trees.extend(current);
        }
        if puts.is_empty() && dels.is_empty() {
            // Checks only: they saw what is there, which may not be durable.
            return self.wal.last_lsn().map_err(|e| (e, 0));
        }
        let frame = record::encode_packed(puts.iter().map(|(_, s)| &*s.packed), &dels);
        let lsn = self.wal.append(&frame).map_err(|e| (e, 0))?;
        for k in &dels {
            let b = bucket(&k.pk);
            table.deleted[b] = lsn;
            table.items.remove(k);
        }
        for (k, mut s) in puts {
            s.lsn = lsn;
            table.items.insert(k, s);
        }
        Ok(lsn)
    }
}

/// A write with what could be worked out before the table's lock: its key
/// and, for a put, its item already encoded (and checked for size).
struct Prepared {
    key: Key,
    write: Write,
    packed: Option<Stored>,
}

impl Prepared {
    fn new(write: Write) -> Result<Prepared, StoreError> {
        let key = write.key()?;
        let packed = match &write {
            Write::Put { item, .. } => {
                let packed = Stored::new(item, 0);
                if packed.size > MAX_ITEM_BYTES {
                    return Err(too_large());
                }
                Some(packed)
            }
            _ => None,
        };
        Ok(Prepared { key, write, packed })
    }
}

fn too_large() -> StoreError {
    StoreError::Invalid("item larger than 400 KB".into())
}

/// Apply every intact frame of the log at `path` to `table`; returns how many.
fn replay(path: &Path, table: &mut Partitions<Stored>) -> std::io::Result<usize> {
    let frames = wal::recover(path)?;
    let count = frames.len();
    for frame in frames {
        let rec = Record::decode(&frame).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        // Replayed from disk: durable, so lsn 0.
        apply_record(table, rec, 0);
    }
    Ok(count)
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("store lock poisoned".into())
}

fn apply_record(table: &mut Partitions<Stored>, rec: Record, lsn: u64) {
    for k in rec.dels {
        table.remove(&k);
    }
    for item in rec.puts {
        if let Some(k) = Key::of(&item) {
            table.insert(k, Stored::new(&item, lsn));
        }
    }
}

/// Rewrite the log as a snapshot of the table (at open, so it never grows
/// past one snapshot plus one session of changes). Frames are cut by size so
/// none exceeds the frame limit.
fn compact(path: &Path, table: &Partitions<Stored>) -> std::io::Result<()> {
    let mut frames = Vec::new();
    let mut puts: Vec<&[u8]> = Vec::new();
    let mut bytes = 0;
    for Stored { packed, .. } in table.values() {
        if !puts.is_empty()
            && (bytes + packed.len() > SNAPSHOT_FRAME_BUDGET
                || puts.len() >= SNAPSHOT_ITEMS_PER_FRAME)
        {
            frames.push(snapshot_frame(&std::mem::take(&mut puts))?);
            bytes = 0;
        }
        bytes += packed.len();
        puts.push(packed);
    }
    if !puts.is_empty() {
        frames.push(snapshot_frame(&puts)?);
    }
    wal::rewrite(path, frames.into_iter())
}

fn snapshot_frame(puts: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let frame = record::encode_packed(puts.iter().copied(), &[]);
    if frame.len() > wal::MAX_FRAME_BYTES {
        return Err(std::io::Error::other("snapshot frame over the frame limit"));
    }
    Ok(frame)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let (found, lsn) = {
            let table = self.lock()?;
            match table.items.get(key) {
                Some(s) => (Some(Arc::clone(&s.packed)), s.lsn),
                None => (None, table.deleted_in(&key.pk)),
            }
        };
        // Never show a write (or a delete) that is not yet durable.
        self.wal.wait_durable(lsn).await?;
        found.map(|p| unpack(&p)).transpose()
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.query_waiting(q, Shown::ItemsAndAbsences).await
    }

    async fn write(&self, write: Write) -> Result<(), StoreError> {
        if matches!(write, Write::Check { .. }) {
            return Err(StoreError::Invalid(
                "a check is only valid in a transaction".into(),
            ));
        }
        let committed = self.commit(vec![write]);
        self.settle(committed).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_transaction(&writes)?;
        let committed = self.commit(writes);
        self.settle(committed).await
    }

    /// Sized in place: no copy, and no wait (it shows no data).
    async fn item_bytes(&self, key: &Key) -> Result<Option<usize>, StoreError> {
        Ok(self.lock()?.items.get(key).map(|s| s.size))
    }
}

fn page_of(mut items: Vec<Item>, limit: usize) -> Page {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().and_then(Key::of).map(|k| k.sk)
    } else {
        None
    };
    Page { items, next }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{item, Attr, Cond, SkRange};
    use std::sync::Arc;

    fn put(n: i64) -> Write {
        let key = Key::new("P", format!("s{n:03}"));
        Write::Put {
            item: item(&key, [("n", Attr::N(n))]),
            cond: Some(Cond::NotExists),
        }
    }

    #[tokio::test]
    async fn reopens_with_every_acknowledged_write_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wal");
        {
            let s = EmbeddedStore::open(&path).unwrap();
            for n in 0..50 {
                s.write(put(n)).await.unwrap();
            }
        }
        // A crash mid-write leaves half a frame behind, right after the
        // last frame, in the zeros the log grew by (where its end is: a
        // copy of the log recovered).
        let copy = dir.path().join("copy.wal");
        std::fs::copy(&path, &copy).unwrap();
        wal::recover(&copy).unwrap();
        let end = std::fs::metadata(&copy).unwrap().len();
        assert!(std::fs::metadata(&path).unwrap().len() > end + 6);
        std::os::unix::fs::FileExt::write_all_at(
            &std::fs::OpenOptions::new().write(true).open(&path).unwrap(),
            &[200, 0, 0, 0, 1, 2],
            end,
        )
        .unwrap();
        let s = EmbeddedStore::open(&path).unwrap();
        let page = s.query(&Query::new("P", SkRange::All, 1000)).await.unwrap();
        assert_eq!(page.items.len(), 50);
        assert!(matches!(
            s.write(put(7)).await,
            Err(StoreError::ConditionFailed { index: 0, .. })
        ));
        s.write(put(50)).await.unwrap();
        drop(s);
        let s = EmbeddedStore::open(&path).unwrap();
        assert_eq!(
            s.query(&Query::new("P", SkRange::All, 1000))
                .await
                .unwrap()
                .items
                .len(),
            51
        );
    }

    #[tokio::test]
    async fn corruption_before_the_tail_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wal");
        {
            let s = EmbeddedStore::open(&path).unwrap();
            for n in 0..10 {
                s.write(put(n)).await.unwrap();
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 0xff; // inside the first frame's payload
        std::fs::write(&path, &bytes).unwrap();
        let err = EmbeddedStore::open(&path).err().expect("must refuse");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        // Nothing was truncated: an operator can still recover the data.
        assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len());
    }

    /// Wait until a commit is applied in memory (sized without a wait),
    /// whether or not it is durable yet.
    async fn applied(s: &EmbeddedStore, key: &Key, present: bool) {
        while s.item_bytes(key).await.unwrap().is_some() != present {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_waits_only_for_the_commit_it_shows() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(EmbeddedStore::open(&dir.path().join("t.wal")).unwrap());
        let (old, other) = (Key::new("A", "old"), Key::new("Z", "none"));
        assert_ne!(bucket("A"), bucket("Z"), "the test needs two buckets");
        let put_at = |key: &Key| Write::Put {
            item: item(key, [("n", Attr::N(1))]),
            cond: None,
        };
        s.write(put_at(&old)).await.unwrap();
        s.wal.hold(true);
        let fresh = Key::new("A", "fresh");
        let writer = {
            let (s, w) = (Arc::clone(&s), put_at(&fresh));
            tokio::spawn(async move { s.write(w).await })
        };
        applied(&s, &fresh, true).await;
        let soon = std::time::Duration::from_secs(5);
        let brief = std::time::Duration::from_millis(200);
        // Durable items and absences are shown at once, though a newer
        // commit waits for its fsync…
        let got = tokio::time::timeout(soon, s.get(&old)).await;
        assert!(got
            .expect("a durable item waits for nothing")
            .unwrap()
            .is_some());
        let none = tokio::time::timeout(soon, s.get(&other)).await;
        assert!(none.expect("no delete in Z").unwrap().is_none());
        // …but neither the new item, nor a page showing it.
        assert!(tokio::time::timeout(brief, s.get(&fresh)).await.is_err());
        let partition = Query::new("A", SkRange::All, 10);
        assert!(tokio::time::timeout(brief, s.query(&partition))
            .await
            .is_err());
        assert!(!writer.is_finished(), "acknowledged before it was durable");
        s.wal.hold(false);
        writer.await.unwrap().unwrap();
        assert!(s.get(&fresh).await.unwrap().is_some());

        // A delete not yet durable: the absence it makes is not shown.
        s.wal.hold(true);
        let deleter = {
            let s = Arc::clone(&s);
            let key = old.clone();
            tokio::spawn(async move { s.write(Write::Delete { key, cond: None }).await })
        };
        applied(&s, &old, false).await;
        assert!(tokio::time::timeout(brief, s.get(&old)).await.is_err());
        let failed = s.write(Write::Put {
            item: item(&old, [("n", Attr::N(2))]),
            cond: Some(Cond::Exists),
        });
        assert!(tokio::time::timeout(brief, failed).await.is_err());
        s.wal.hold(false);
        deleter.await.unwrap().unwrap();
        assert!(s.get(&old).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_log_of_json_records_from_an_older_version_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wal");
        let key = Key::new("P", "old");
        let old = Record {
            puts: vec![item(&key, [("n", Attr::N(7))])],
            dels: Vec::new(),
        };
        let mut bytes = Vec::new();
        wal::encode_frame(&mut bytes, &serde_json::to_vec(&old).unwrap());
        std::fs::write(&path, &bytes).unwrap();
        let s = EmbeddedStore::open(&path).unwrap();
        let got = s.get(&key).await.unwrap().unwrap();
        assert_eq!(got.get("n"), Some(&Attr::N(7)));
        drop(s);
        // Compacted at open: the log is binary now, and still opens.
        assert_eq!(
            std::fs::read(&path).unwrap()[8],
            crate::store::record::BINARY_V1
        );
        let s = EmbeddedStore::open(&path).unwrap();
        assert!(s.get(&key).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_legacy_log_is_folded_in_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (path, legacy) = (dir.path().join("t.wal"), dir.path().join("q.wal"));
        {
            let s = EmbeddedStore::open(&path).unwrap();
            s.write(put(1)).await.unwrap();
            let q = EmbeddedStore::open(&legacy).unwrap();
            let key = Key::new("Q", "m1");
            q.write(Write::Put {
                item: item(&key, [("n", Attr::N(9))]),
                cond: None,
            })
            .await
            .unwrap();
        }
        {
            let s = EmbeddedStore::open_absorbing(&path, Some(&legacy)).unwrap();
            assert!(!legacy.exists());
            assert!(s.get(&Key::new("Q", "m1")).await.unwrap().is_some());
            assert!(s.get(&Key::new("P", "s001")).await.unwrap().is_some());
        }
        // Kept after another reopen, with no legacy log left to fold.
        let s = EmbeddedStore::open_absorbing(&path, Some(&legacy)).unwrap();
        assert!(s.get(&Key::new("Q", "m1")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_second_process_cannot_open_the_same_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wal");
        let _first = EmbeddedStore::open(&path).unwrap();
        assert!(EmbeddedStore::open(&path).is_err());
    }
}
