//! Durable storage of groups in redb. No redb type leaves this module.
//!
//! Tables:
//! - `groups`: id → (name, external_id). The source of truth.
//! - `meta`: `schema_version`, `next_id` (the id counter as of the last removal), and
//!   `log_id`/`log_lsn`, which commit log belongs to the database and how much of it the
//!   database holds durably ([`log`]).
//!
//! The next id is the larger of `next_id` and the highest id in `groups` plus one, so ids are
//! never reused, across restarts too: a create leaves its id in `groups`, and only a removal
//! can take the highest id away, so only commits that remove write `next_id`. Schema version 2
//! wrote it in every commit, and that one more page in each commit of creates cost 5–7% of the
//! create rate with 64 clients; its databases open as version 3 unchanged (their `next_id` is
//! always current, which satisfies the rule above).
//!
//! Schema version 1 also kept `names` (name → id) on disk. With 64 clients creating at once,
//! each commit's names landed on as many B-tree leaves, and writing those pages made a commit of
//! 40 creates take a millisecond instead of 0.4. Names are now indexed in the writer's memory
//! ([`NameIndex`]), which is all that uniqueness needs, and version 1 databases are migrated
//! by dropping the table.
//!
//! In memory, built by the writer from `groups` when the store opens, before its first commit:
//! - the name index and the id counter, which only the writer uses;
//! - a mirror of every group by id ([`mirror`]), which `getGroup` reads. The writer applies each
//!   commit's changes to it once the commit is durable, before it answers anyone. Until it is
//!   loaded (under a second for a million groups), reads use the snapshot below.
//!
//! Writes go to one writer thread that decides whatever has queued up against the groups in
//! memory and makes it durable with one record in the commit log (group commit: one fsync for
//! many calls, [`log`]), and answers each caller only after that. One failing call (a taken
//! name) changes nothing and does not affect the others; a failing *commit* fails every call in
//! it. The database file gets the logged changes in batches ([`writer`]).
//!
//! `getAllGroups` and dumps read a shared MVCC snapshot of the database (a redb read
//! transaction with its table open), replaced whenever the database gets a batch: reads skip the
//! cost of opening a transaction and a table per call. When the log holds acknowledged changes
//! the database does not yet, they first ask the writer to apply them ([`Store::catch_up`]), so
//! they see every write acknowledged before them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{
    Database, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend,
};
use tokio::sync::oneshot;

use super::{GroupStore, OpenError, StateInfo, StoreError, StoreStats, Visitor};
use crate::group::{Group, GroupRef, WriteOp, WriteOutcome};

mod contain;
mod faults;
mod file;
mod log;
mod mirror;
mod names;
mod offline;
mod power_cut;
mod schema;
mod writer;
use contain::{contained, drop_contained};
pub use faults::DiskFaults;
use mirror::{Change, Mirror};
use names::NameIndex;
pub use offline::{CheckOutcome, Dumpable, Offline, RestoreError, restore};
pub use power_cut::PowerCut;
pub use schema::SCHEMA_VERSION;
use schema::{GROUPS, open_database, open_file};
use writer::{Job, write_loop};

/// The embedded engine's errors, as the seam's: the engine's own error is kept for the log.
impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Engine(Arc::new(e.into()))
    }
}

/// Why the file at `path` could not be opened, told apart for the one line at start-up.
fn open_error(path: &Path, e: redb::Error) -> OpenError {
    let path = path.to_path_buf();
    match e {
        redb::Error::DatabaseAlreadyOpen => OpenError::Locked(path),
        redb::Error::Corrupted(why) => OpenError::Damaged { path, why },
        redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => OpenError::Damaged {
            path,
            why: e.to_string(),
        },
        redb::Error::RepairAborted => OpenError::Damaged {
            path,
            why: "its last commit does not verify".into(),
        },
        source => OpenError::Unreadable {
            path,
            source: Box::new(source),
        },
    }
}

/// A committed state of the database, open for reading.
struct Snapshot {
    groups: ReadOnlyTable<u64, (&'static str, &'static str)>,
}

impl Snapshot {
    fn open(db: &Database) -> Result<Snapshot, redb::Error> {
        let txn = db.begin_read()?;
        Ok(Snapshot {
            groups: txn.open_table(GROUPS)?,
        })
    }
}

/// Groups copied out for a listing in name order: their text in one buffer.
struct Listing {
    text: String,
    all: Vec<Listed>,
}

/// A group in [`Listing::text`]: its id, where its name starts, and the lengths of its name
/// and external id (u32: both are at most a few hundred bytes).
struct Listed {
    id: u64,
    start: usize,
    name_len: u32,
    external_id_len: u32,
}

impl Listing {
    fn with_room(groups: usize) -> Listing {
        Listing {
            text: String::new(),
            all: Vec::with_capacity(groups),
        }
    }

    fn push(&mut self, group: GroupRef<'_>) -> Result<(), redb::Error> {
        let too_long = || redb::Error::Corrupted(format!("group {} is too long", group.id));
        self.all.push(Listed {
            id: group.id,
            start: self.text.len(),
            name_len: u32::try_from(group.name.len()).map_err(|_| too_long())?,
            external_id_len: u32::try_from(group.external_id.len()).map_err(|_| too_long())?,
        });
        self.text.push_str(group.name);
        self.text.push_str(group.external_id);
        Ok(())
    }

    /// Shows the groups to `look` in name order.
    fn show(mut self, mut look: impl FnMut(GroupRef<'_>)) {
        let text = &self.text;
        let split = |e: &Listed| {
            let name_end = e.start + e.name_len as usize;
            let end = name_end + e.external_id_len as usize;
            (&text[e.start..name_end], &text[name_end..end])
        };
        self.all.sort_unstable_by(|a, b| split(a).0.cmp(split(b).0));
        for entry in &self.all {
            look(GroupRef::from_row(entry.id, split(entry)));
        }
    }
}

/// What the store and its writer thread share.
struct Shared {
    /// Every committed group by id; `None` while the writer loads it.
    mirror: RwLock<Option<Mirror>>,
    /// The latest committed state; `None` after a failure to open it, when every read opens its
    /// own (never a stale one: a read must see every write acknowledged before it). Declared
    /// before `db` so that it is dropped first.
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// `None` only while the writer reopens the database after a failed commit.
    db: RwLock<Option<Arc<Database>>>,
    /// Opens the database file again (a failed commit leaves redb refusing further writes until
    /// it is reopened).
    reopen: Box<dyn Fn() -> Result<Database, redb::Error> + Send + Sync>,
    /// Writes and syncs a scratch file beside the database: whether the disk works again.
    probe: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>,
    /// Removes the commit log, once a clean close has checkpointed it.
    remove_log: Box<dyn Fn() -> std::io::Result<()> + Send + Sync>,
    /// Whether the log holds acknowledged changes the database (and so `snapshot`) does not
    /// yet: a reader of the database first asks the writer to apply them ([`Store::catch_up`]).
    behind: AtomicBool,
    /// Durable commits made, and the calls they held.
    commits: AtomicU64,
    committed_calls: AtomicU64,
    /// The first fault after which the storage is not trusted with writes (SPEC §13).
    fault: Mutex<Option<Arc<str>>>,
}

/// Bytes the disk probe writes and syncs.
const PROBE_BYTES: usize = 64 * 1024;

/// The scratch file of the disk probe: beside the database, on the same disk.
fn probe_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".probe");
    db.with_file_name(name)
}

/// How long a reopen waits for readers to let go of the failed database.
const REOPEN_WAIT: Duration = Duration::from_secs(2);

impl Shared {
    fn db(&self) -> Result<Arc<Database>, redb::Error> {
        let unavailable = || redb::Error::Io(std::io::Error::other("database is being reopened"));
        self.db
            .read()
            .ok()
            .and_then(|db| db.clone())
            .ok_or_else(unavailable)
    }

    fn snapshot(&self) -> Result<Arc<Snapshot>, redb::Error> {
        if let Ok(guard) = self.snapshot.read()
            && let Some(snapshot) = guard.as_ref()
        {
            return Ok(Arc::clone(snapshot));
        }
        let db = self.db()?;
        contained("a read", || Snapshot::open(&db).map(Arc::new))
    }

    /// Records `e` as the fault that ends writes when it means the engine or the file can no
    /// longer be trusted (a panic, a corrupted page); an I/O error does not (the writer reopens
    /// the database once the disk works). Whether it did.
    fn distrust(&self, e: &redb::Error) -> bool {
        let untrusted = matches!(
            e,
            redb::Error::Corrupted(_)
                | redb::Error::TransactionPoisoned
                | redb::Error::LockPoisoned(_)
        );
        if untrusted {
            let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
            if fault.is_none() {
                tracing::error!(
                    error = %e,
                    "storage fault: writes are refused from now on; reads are answered from memory where they can be"
                );
                *fault = Some(e.to_string().into());
            }
        }
        untrusted
    }

    fn fault(&self) -> Option<Arc<str>> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Closes the database and opens it again. Called by the writer, before its next commit,
    /// after a commit failed, once [`Shared::probe`] says the disk works: until then the failed
    /// database stays open, and reads are served from what it has cached.
    fn reopen(&self) -> Result<(), redb::Error> {
        (self.probe)()?;
        let Ok(mut slot) = self.db.write() else {
            return Err(redb::Error::Io(std::io::Error::other(
                "database lock poisoned",
            )));
        };
        if let Some(mut old) = slot.take() {
            // The file lock is released when the last handle goes; readers hold one only for
            // the moment it takes to open a snapshot.
            let deadline = Instant::now() + REOPEN_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => break drop_contained("the database", db),
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(still_shared) => {
                        *slot = Some(still_shared);
                        return Err(redb::Error::Io(std::io::Error::other(
                            "database still in use",
                        )));
                    }
                }
            }
        }
        *slot = Some(Arc::new(contained("a reopen", &self.reopen)?));
        drop(slot);
        self.refresh();
        Ok(())
    }

    /// Builds the mirror, the name index and the id counter from the database as it is now.
    /// Called by the writer before it commits anything (the database then holds every
    /// acknowledged change), so no commit can slip between the load and the first change
    /// applied to them. `None` when the database cannot be read; reads then use the snapshot,
    /// and writes fail until a load succeeds.
    fn load(&self) -> Option<(NameIndex, u64)> {
        self.set_mirror(None);
        let started = Instant::now();
        let load = || -> Result<(Mirror, NameIndex, u64), redb::Error> {
            let read = self.db()?.begin_read()?;
            let groups = read.open_table(GROUPS)?;
            let next_id = schema::next_id(&groups, &read.open_table(schema::META)?)?;
            let count = usize::try_from(groups.len()?).unwrap_or(0);
            let (mut mirror, mut names) = (Mirror::default(), NameIndex::default());
            mirror.reserve(count);
            names.reserve(count);
            for entry in groups.iter()? {
                let (id, row) = entry?;
                let (name, external_id) = row.value();
                mirror.put(id.value(), name, external_id);
                names.insert(name, id.value());
            }
            Ok((mirror, names, next_id))
        };
        match contained("the load into memory", load) {
            Ok((mirror, names, next_id)) => {
                let (groups, ms) = (mirror.len(), started.elapsed().as_millis());
                self.set_mirror(Some(mirror));
                tracing::debug!(groups, ms, "groups loaded into memory");
                Some((names, next_id))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load the groups into memory");
                self.distrust(&e);
                None
            }
        }
    }

    fn set_mirror(&self, mirror: Option<Mirror>) {
        match self.mirror.write() {
            Ok(mut slot) => *slot = mirror,
            Err(poisoned) => *poisoned.into_inner() = mirror,
        }
    }

    /// Applies a durable commit's changes to the mirror. Called by the writer after each commit,
    /// before anyone is told of it.
    ///
    /// When the mirror must grow, the bigger copy is built under the read lock, so readers go on
    /// (the writer is the only one who changes it); growing in place would hold the write lock
    /// for the whole copy: over 100 ms at a million groups.
    fn apply(&self, changes: Vec<Change>) {
        let grown = match self.mirror.read() {
            Ok(slot) => slot.as_ref().and_then(|m| m.grown_for(changes.len())),
            Err(_) => None,
        };
        let mut slot = match self.mirror.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(mirror) = slot.as_mut() else {
            return;
        };
        let old = grown.map(|grown| std::mem::replace(mirror, grown));
        mirror.apply(changes);
        drop(slot);
        drop(old);
    }

    /// Shows every group to `look`, in name order (by the UTF-8 bytes of the name), as the
    /// database's snapshot holds them, or with `in_memory` as the mirror does (when the
    /// database could not be brought up to date). Run on a blocking thread by
    /// [`GroupStore::visit_all`]. The groups are copied out into one buffer and sorted here:
    /// no index on disk to keep up per write, and two allocations for any number of groups.
    fn view_all(&self, in_memory: bool, look: impl FnMut(GroupRef<'_>)) -> Result<(), StoreError> {
        if in_memory
            && let Ok(mirror) = self.mirror.read()
            && let Some(mirror) = mirror.as_ref()
        {
            let mut listing = Listing::with_room(mirror.len());
            mirror
                .iter()
                .try_for_each(|group| listing.push(group))
                .inspect_err(|e| {
                    self.distrust(e);
                })?;
            listing.show(look);
            return Ok(());
        }
        let snapshot = self.snapshot()?;
        let copied = contained("a read", move || {
            let mut listing =
                Listing::with_room(usize::try_from(snapshot.groups.len()?).unwrap_or(0));
            for entry in snapshot.groups.iter()? {
                let (id, row) = entry?;
                listing.push(GroupRef::from_row(id.value(), row.value()))?;
            }
            drop(snapshot);
            Ok(listing)
        });
        let listing = copied.inspect_err(|e| {
            self.distrust(e);
        })?;
        listing.show(look);
        Ok(())
    }

    /// Called by the writer once the database holds a batch of logged changes (and after a
    /// reopen), before a reader waiting for that batch is answered.
    fn refresh(&self) {
        let opened = self
            .db()
            .and_then(|db| contained("a read snapshot", || Snapshot::open(&db)));
        let fresh = match opened {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                tracing::error!(error = %e, "cannot open a read snapshot; reads will open their own");
                self.distrust(&e);
                None
            }
        };
        let old = match self.snapshot.write() {
            Ok(mut guard) => std::mem::replace(&mut *guard, fresh),
            Err(_) => None,
        };
        drop_contained("a read snapshot", old);
    }
}

/// The open database: shared by every connection.
pub struct Store {
    shared: Arc<Shared>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Store {
    /// Opens (or creates) the database at `path`, checks its schema version and starts the writer.
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        let owned = path.to_path_buf();
        let scratch = probe_path(path);
        let probe = move || {
            let file = std::fs::File::create(&scratch)?;
            let written = std::io::Write::write_all(&mut &file, &[0; PROBE_BYTES])
                .and_then(|()| file.sync_data());
            let _ = std::fs::remove_file(&scratch);
            written
        };
        let open = move || open_database(file::ZeroFilledFile::new(open_file(&owned)?)?);
        let log_path = log::path(path);
        let open_log = || -> std::io::Result<Box<dyn StorageBackend>> {
            let file = log::open_file(&log_path)?;
            Ok(Box::new(
                file::ZeroFilledFile::new(file).map_err(std::io::Error::other)?,
            ))
        };
        let removed = log_path.clone();
        let remove_log = move || std::fs::remove_file(&removed);
        Self::open_with(path, open, open_log, remove_log, probe)
    }

    /// [`Store::open`] on a disk whose failures `faults` controls: for tests of what a failing
    /// disk does (see [`DiskFaults`]).
    pub fn open_with_faults(path: &Path, faults: DiskFaults) -> Result<Store, OpenError> {
        let owned = path.to_path_buf();
        let (scratch, probe_faults) = (probe_path(path), faults.clone());
        let probe = move || {
            let backend =
                faults::FaultyFile::new(std::fs::File::create(&scratch)?, probe_faults.clone())
                    .map_err(std::io::Error::other)?;
            use redb::StorageBackend;
            let written = backend
                .write(0, &[0; PROBE_BYTES])
                .and_then(|()| backend.sync_data());
            let _ = std::fs::remove_file(&scratch);
            written
        };
        let log_path = log::path(path);
        let log_faults = faults.clone();
        let open_log = || -> std::io::Result<Box<dyn StorageBackend>> {
            let file = faults::FaultyFile::new(log::open_file(&log_path)?, log_faults)
                .map_err(std::io::Error::other)?;
            Ok(Box::new(file))
        };
        let removed = log_path.clone();
        let remove_log = move || std::fs::remove_file(&removed);
        let open =
            move || open_database(faults::FaultyFile::new(open_file(&owned)?, faults.clone())?);
        Self::open_with(path, open, open_log, remove_log, probe)
    }

    /// [`Store::open`] on an in-memory disk that a test can cut the power of (see [`PowerCut`]).
    pub fn open_on_power_cut(disk: &PowerCut) -> Result<Store, OpenError> {
        let (for_open, for_probe, for_remove) = (disk.clone(), disk.clone(), disk.clone());
        let open = move || {
            open_database(power_cut::PowerCutFile {
                disk: for_open.clone(),
                file: power_cut::DATABASE,
            })
        };
        let log = power_cut::PowerCutFile {
            disk: disk.clone(),
            file: power_cut::LOG,
        };
        Self::open_with(
            Path::new("power-cut disk"),
            open,
            move || Ok(Box::new(log)),
            move || for_remove.remove_log(),
            move || for_probe.probe(),
        )
    }

    fn open_with(
        path: &Path,
        open: impl Fn() -> Result<Database, redb::Error> + Send + Sync + 'static,
        open_log: impl FnOnce() -> std::io::Result<Box<dyn StorageBackend>>,
        remove_log: impl Fn() -> std::io::Result<()> + Send + Sync + 'static,
        probe: impl Fn() -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Result<Store, OpenError> {
        let unreadable = |e| open_error(path, e);
        let started = Instant::now();
        let db = contained("the open", &open).map_err(unreadable)?;
        let ms = started.elapsed().as_millis();
        tracing::debug!(ms, "database opened, every page verified");
        schema::check(path, &db)?;
        let log = open_log()
            .and_then(log::CommitLog::new)
            .map_err(|e| OpenError::Unreadable {
                path: log::path(path),
                source: Box::new(e),
            })?;
        let log = log::recover_at_open(path, &db, log, false)?;
        let shared = Arc::new(Shared {
            mirror: RwLock::new(None),
            snapshot: RwLock::new(None),
            db: RwLock::new(Some(Arc::new(db))),
            reopen: Box::new(open),
            probe: Box::new(probe),
            remove_log: Box::new(remove_log),
            behind: AtomicBool::new(false),
            commits: AtomicU64::new(0),
            committed_calls: AtomicU64::new(0),
            fault: Mutex::new(None),
        });
        shared.refresh();
        let (tx, rx) = mpsc::channel();
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("groupd-writer".into())
            .spawn(move || {
                // The writer never dies silently: a panic outside the engine's calls (which
                // are contained one by one) is a fault too, and every later write gets -32603.
                if let Err(panic) = contain::run(|| write_loop(&writer_shared, &rx, log)) {
                    writer_shared.distrust(&contain::panicked("the writer's loop", &panic));
                }
            })
            .map_err(|e| unreadable(redb::Error::Io(e)))?;
        Ok(Store {
            shared,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn get(&self, id: u64) -> Result<Option<Group>, StoreError> {
        self.view(id, |group| group.to_owned())
    }

    /// Shows group `id` to `look` without copying it out of the database.
    pub fn view<T>(
        &self,
        id: u64,
        look: impl FnOnce(GroupRef<'_>) -> T,
    ) -> Result<Option<T>, StoreError> {
        if let Ok(mirror) = self.shared.mirror.read()
            && let Some(mirror) = mirror.as_ref()
        {
            return Ok(mirror.get(id).map(look));
        }
        let snapshot = self.shared.snapshot()?;
        let row = contained("a read", || {
            let row = snapshot.groups.get(&id)?;
            Ok(row.map(|row| {
                let (name, external_id) = row.value();
                Group {
                    id,
                    name: name.to_owned(),
                    external_id: external_id.to_owned(),
                }
            }))
        });
        let row = row.inspect_err(|e| {
            self.shared.distrust(e);
        })?;
        Ok(row.map(|g| look(GroupRef::from_row(g.id, (&g.name, &g.external_id)))))
    }

    /// Shows each group of `ids` (`None` when there is no such group) to `look` with its index,
    /// in order. Under one lock, the slots of up to 16 are prefetched, then looked up, then
    /// shown: at a million groups each lookup misses the cache, and this way the misses overlap
    /// instead of following one another.
    pub fn view_each(
        &self,
        ids: &[u64],
        mut look: impl FnMut(usize, Option<GroupRef<'_>>),
    ) -> Result<(), StoreError> {
        const AT_ONCE: usize = 16;
        if let Ok(mirror) = self.shared.mirror.read()
            && let Some(mirror) = mirror.as_ref()
        {
            let mut found = [None; AT_ONCE];
            for (round, chunk) in ids.chunks(AT_ONCE).enumerate() {
                chunk.iter().for_each(|&id| mirror.prefetch(id));
                for (slot, &id) in found.iter_mut().zip(chunk) {
                    *slot = mirror.get(id);
                }
                for (i, group) in found.iter().take(chunk.len()).enumerate() {
                    look(round * AT_ONCE + i, *group);
                }
            }
            return Ok(());
        }
        for (i, &id) in ids.iter().enumerate() {
            if self.view(id, |group| look(i, Some(group)))?.is_none() {
                look(i, None);
            }
        }
        Ok(())
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            committed_calls: self.shared.committed_calls.load(Ordering::Relaxed),
        }
    }

    /// Every group, in name order, as [`GroupStore::visit_all`] shows them.
    pub async fn all(&self) -> Result<Vec<Group>, StoreError> {
        let in_memory = self.catch_up().await.is_err();
        let mut all = Vec::new();
        self.shared
            .view_all(in_memory, |group| all.push(group.to_owned()))?;
        Ok(all)
    }

    /// Applies `ops` in order, in one commit shared with whatever else is queued, and returns
    /// once that commit is durable.
    pub async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        self.submit(ops, false).await
    }

    /// Returns once the database (and its read snapshot) holds every change acknowledged
    /// before the call: at once when it already does, else after the writer has applied them.
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        if !self.shared.behind.load(Ordering::Acquire) {
            return Ok(());
        }
        self.submit(Vec::new(), true).await.map(drop)
    }

    async fn submit(
        &self,
        ops: Vec<WriteOp>,
        catch_up: bool,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        if let Some(fault) = self.shared.fault() {
            return Err(StoreError::Untrusted(fault));
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            ops,
            reply,
            catch_up,
        };
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return Err(StoreError::WriterGone);
        }
        answer.await.unwrap_or(Err(StoreError::WriterGone))
    }

    /// Stops the writer after the queued writes are committed, and closes the database. Later
    /// writes fail. After a storage fault the database is left as it is, unclosed: the engine is
    /// not called again (its destructor can panic on a damaged page, cberner/redb#1303), and
    /// the next start verifies the file anyway.
    pub fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            tracing::error!("the storage writer panicked");
        }
        let snapshot = self.shared.snapshot.write().ok().and_then(|mut s| s.take());
        let db = self.shared.db.write().ok().and_then(|mut db| db.take());
        if self.shared.fault().is_some() {
            std::mem::forget(snapshot);
            std::mem::forget(db);
        } else {
            drop_contained("a read snapshot", snapshot);
            drop_contained("the database", db);
        }
    }

    /// One committed state of every group and the id counter, for an online dump: read from one
    /// redb read transaction, so writes go on meanwhile and nothing waits for it. It holds
    /// every write acknowledged before the call (or the call fails).
    pub async fn dump_snapshot(&self) -> Result<Dumpable, StoreError> {
        self.catch_up().await?;
        let db = self.shared.db()?;
        let snapshot = contained("a dump", || Dumpable::open(&db));
        Ok(snapshot.inspect_err(|e| {
            self.shared.distrust(e);
        })?)
    }

    /// The storage fault that made this store refuse writes, if one did (SPEC §13): a server
    /// that had one must not report a clean shutdown.
    pub fn fault(&self) -> Option<String> {
        self.shared.fault().map(|f| f.to_string())
    }
}

/// The seam (see [`super`]). Reads from memory are answered in place; the visits of every
/// group run on tokio's blocking threads, so a million groups stall no connection.
impl GroupStore for Store {
    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        Store::write(self, ops).await
    }

    async fn get_each<L>(&self, ids: &[u64], look: L) -> Result<(), StoreError>
    where
        L: FnMut(usize, Option<GroupRef<'_>>) + Send,
    {
        self.view_each(ids, look)
    }

    /// From the database's snapshot, brought up to date first; from the mirror when it could
    /// not be (after a storage failure), which holds every acknowledged write too.
    async fn visit_all<V: Visitor>(&self, mut visitor: V) -> Result<V, StoreError> {
        let in_memory = self.catch_up().await.is_err();
        let shared = Arc::clone(&self.shared);
        off_the_runtime(move || {
            shared.view_all(in_memory, |group| visitor.group(group))?;
            Ok(visitor)
        })
        .await
    }

    async fn visit_dump<V: Visitor>(&self, mut visitor: V) -> Result<V, StoreError> {
        let snapshot = self.dump_snapshot().await?;
        off_the_runtime(move || {
            visitor.begin(StateInfo {
                groups: snapshot.len(),
                next_id: snapshot.next_id(),
            });
            snapshot.each(|group| visitor.group(group))?;
            Ok(visitor)
        })
        .await
    }

    fn stats(&self) -> StoreStats {
        Store::stats(self)
    }

    fn fault(&self) -> Option<String> {
        Store::fault(self)
    }

    async fn close(&self) {
        Store::close(self)
    }
}

/// Runs `work` on a blocking thread, where a long read holds up no connection.
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Engine(Arc::new(std::io::Error::other(
            format!("a reading thread failed: {e}"),
        )))),
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str) -> WriteOp {
        WriteOp::Create {
            name: name.into(),
            external_id: String::new(),
        }
    }

    /// The store opens its file through [`file::ZeroFilledFile`]: after redb has grown the file
    /// many times over, every byte of it has a disk block (no holes left to fill at commit).
    #[tokio::test]
    async fn the_database_file_grows_without_holes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let store = Store::open(&path).unwrap();
        let start = std::fs::metadata(&path).unwrap().len();
        for round in 0..40 {
            let ops = (0..500).map(|i| create(&format!("group {round} {i} {}", "x".repeat(60))));
            store.write(ops.collect()).await.unwrap();
        }
        store.close();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(
            meta.len() > 4 * start,
            "grew from {start} to {}",
            meta.len()
        );
        assert!(
            meta.blocks() * 512 >= meta.len(),
            "{} blocks for {} bytes",
            meta.blocks(),
            meta.len()
        );
    }

    /// Until the mirror is loaded (at start) reads are answered from the redb snapshot, with
    /// the same answers once the database holds every acknowledged write.
    #[tokio::test]
    async fn reads_without_the_mirror_come_from_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let written = store.write(vec![create("b"), create("a")]).await.unwrap();
        assert_eq!(
            written,
            [WriteOutcome::Created(1), WriteOutcome::Created(2)]
        );
        let read = |store: &Store| {
            let mut each = Vec::new();
            store
                .view_each(&[2, 3, 1], |i, g| each.push((i, g.map(GroupRef::to_owned))))
                .unwrap();
            (store.get(1).unwrap(), each)
        };
        let from_mirror = (read(&store), store.all().await.unwrap());
        assert!(store.shared.mirror.read().unwrap().is_some());
        store.shared.set_mirror(None);
        assert_eq!((read(&store), store.all().await.unwrap()), from_mirror);
        let ((one, each), all) = from_mirror;
        assert_eq!(one.map(|g| g.name), Some("b".to_string()));
        let names: Vec<_> = each
            .iter()
            .map(|(i, g)| (*i, g.as_ref().map(|g| g.name.as_str())))
            .collect();
        assert_eq!(names, [(0, Some("a")), (1, None), (2, Some("b"))]);
        assert_eq!(all.iter().map(|g| g.id).collect::<Vec<_>>(), [2, 1]);
    }
}
