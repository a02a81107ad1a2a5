//! Durable storage of groups in redb. No redb type leaves this module.
//!
//! Tables:
//! - `groups`: id → (name, external_id). The source of truth.
//! - `meta`: `schema_version`, and `next_id`, the id counter as of the last removal.
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
//! - the name index, which only the writer uses;
//! - a mirror of every group by id ([`mirror`]), which `getGroup` reads. The writer applies each
//!   commit's changes to it once the commit is durable, before it answers anyone. Until it is
//!   loaded (under a second for a million groups), reads use the snapshot below.
//!
//! `getAllGroups` reads a shared MVCC snapshot (a redb read transaction with its table open)
//! that the writer replaces after every commit, before it answers: reads never wait for a
//! write, skip the cost of opening a transaction and a table per call, and still see every
//! write acknowledged before them. Writes go to one writer thread
//! that commits whatever has queued up in one transaction (group commit: one fsync for many
//! calls) and answers each caller only after that commit is durable. One failing call (a taken
//! name) changes nothing and does not affect the others; a failing *commit* fails every call in it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{
    Database, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use tokio::sync::oneshot;

use crate::group::{Group, GroupRef, Refusal};

mod contain;
mod faults;
mod file;
mod mirror;
mod names;
mod offline;
mod power_cut;
use contain::{contained, drop_contained};
pub use faults::DiskFaults;
use mirror::{Change, Mirror};
use names::NameIndex;
pub use offline::{CheckOutcome, Dumpable, Offline, RestoreError, restore};
pub use power_cut::PowerCut;

const GROUPS: TableDefinition<u64, (&str, &str)> = TableDefinition::new("groups");
/// Version 1's name index, dropped when such a database is opened.
const NAMES_V1: TableDefinition<&str, u64> = TableDefinition::new("names");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SCHEMA_VERSION_KEY: &str = "schema_version";
const NEXT_ID_KEY: &str = "next_id";

/// The layout described above. Bump it, and teach [`Store::open`] to migrate, when it changes.
pub const SCHEMA_VERSION: u64 = 3;

/// Calls folded into one commit at most, so one commit's latency stays bounded.
const MAX_CALLS_PER_COMMIT: usize = 4096;

/// The longest a commit waits for more calls to join it; small next to an fsync. With 64
/// clients creating one group at a time, 50 µs measured 85k creates/s against 78k at 100 µs and
/// 73k at 200 µs (longer waits make one big commit, but leave the disk idle while the clients
/// turn around); batches and mixed loads were as fast or faster.
const GATHER_WAIT: Duration = Duration::from_micros(50);

/// Why a database could not be opened. Each is fatal at start-up (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database {0} is in use by another process")]
    Locked(PathBuf),
    #[error(
        "database {path} has schema version {found}; this groupd reads version {SCHEMA_VERSION}"
    )]
    Schema { path: PathBuf, found: u64 },
    #[error("cannot open database {path}: {source}")]
    Unreadable { path: PathBuf, source: redb::Error },
    /// The file failed verification (a page checksum, a malformed page, the engine panicked).
    #[error(
        "database {path} is damaged ({why}); run `groupd check --repair --db {path}`, or restore it from a dump with `groupd restore`"
    )]
    Damaged { path: PathBuf, why: String },
    #[error("no database at {0}")]
    Missing(PathBuf),
}

impl OpenError {
    fn new(path: &Path, e: redb::Error) -> OpenError {
        let path = path.to_path_buf();
        match e {
            redb::Error::DatabaseAlreadyOpen => OpenError::Locked(path),
            redb::Error::Corrupted(why) => OpenError::Damaged { path, why },
            redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                OpenError::Damaged {
                    path,
                    why: e.to_string(),
                }
            }
            redb::Error::RepairAborted => OpenError::Damaged {
                path,
                why: "its last commit does not verify".into(),
            },
            source => OpenError::Unreadable { path, source },
        }
    }
}

/// A failed read or write. Its details are for the log; clients only learn "Internal error".
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Redb(Arc<redb::Error>),
    #[error("the storage writer has stopped")]
    WriterGone,
    /// An earlier fault (the engine panicked, the file is corrupted) means the storage can no
    /// longer be trusted with a write (SPEC §13); the reason is the first fault's.
    #[error("writes are refused after a storage fault: {0}")]
    Untrusted(Arc<str>),
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Redb(Arc::new(e.into()))
    }
}

/// A change to the groups, already validated by the Group API rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Create {
        name: String,
        external_id: String,
    },
    /// `None` leaves a field unchanged.
    Update {
        id: u64,
        name: Option<String>,
        external_id: Option<String>,
    },
    Remove {
        id: u64,
    },
}

/// What one [`WriteOp`] did once its commit is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Created(u64),
    Applied,
    /// Nothing changed: no such group, or the name is taken.
    Refused(Refusal),
}

type Reply = oneshot::Sender<Result<Vec<WriteOutcome>, StoreError>>;

struct Job {
    ops: Vec<WriteOp>,
    reply: Reply,
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
    /// Durable commits made, and the calls they held.
    commits: AtomicU64,
    committed_calls: AtomicU64,
    /// The first fault after which the storage is not trusted with writes (SPEC §13).
    fault: Mutex<Option<Arc<str>>>,
}

/// What the writer has done since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Durable commits made.
    pub commits: u64,
    /// Calls those commits held; `committed_calls / commits` is the mean group-commit size.
    pub committed_calls: u64,
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

    /// Builds the mirror and the name index from the database as it is now. Called by the
    /// writer, so no commit can slip between the load and the first change applied to them.
    /// `None` when the database cannot be read; reads then use the snapshot, and writes fail
    /// until a load succeeds.
    fn load(&self) -> Option<NameIndex> {
        self.set_mirror(None);
        let started = Instant::now();
        let load = || -> Result<(Mirror, NameIndex), redb::Error> {
            let groups = self.db()?.begin_read()?.open_table(GROUPS)?;
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
            Ok((mirror, names))
        };
        match contained("the load into memory", load) {
            Ok((mirror, names)) => {
                let (groups, ms) = (mirror.len(), started.elapsed().as_millis());
                self.set_mirror(Some(mirror));
                tracing::debug!(groups, ms, "groups loaded into memory");
                Some(names)
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

    /// Called by the writer after each commit, before anyone is told of it.
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
        Self::open_with(path, open, probe)
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
        let open =
            move || open_database(faults::FaultyFile::new(open_file(&owned)?, faults.clone())?);
        Self::open_with(path, open, probe)
    }

    /// [`Store::open`] on an in-memory disk that a test can cut the power of (see [`PowerCut`]).
    pub fn open_on_power_cut(disk: &PowerCut) -> Result<Store, OpenError> {
        let (for_open, for_probe) = (disk.clone(), disk.clone());
        let open = move || {
            open_database(power_cut::PowerCutFile {
                disk: for_open.clone(),
            })
        };
        Self::open_with(Path::new("power-cut disk"), open, move || for_probe.probe())
    }

    fn open_with(
        path: &Path,
        open: impl Fn() -> Result<Database, redb::Error> + Send + Sync + 'static,
        probe: impl Fn() -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Result<Store, OpenError> {
        let unreadable = |e| OpenError::new(path, e);
        let started = Instant::now();
        let db = contained("the open", &open).map_err(unreadable)?;
        let ms = started.elapsed().as_millis();
        tracing::debug!(ms, "database opened, every page verified");
        match contained("the open", || initialise(&db)).map_err(unreadable)? {
            SCHEMA_VERSION => {}
            found => {
                return Err(OpenError::Schema {
                    path: path.to_path_buf(),
                    found,
                });
            }
        }
        let shared = Arc::new(Shared {
            mirror: RwLock::new(None),
            snapshot: RwLock::new(None),
            db: RwLock::new(Some(Arc::new(db))),
            reopen: Box::new(open),
            probe: Box::new(probe),
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
                if let Err(panic) = contain::run(|| write_loop(&writer_shared, &rx)) {
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

    /// Shows every group to `look`, in name order (by the UTF-8 bytes of the name). The groups
    /// are copied out of one snapshot into one buffer and sorted here: no index on disk to keep
    /// up per write, and two allocations for any number of groups.
    pub fn view_all(&self, mut look: impl FnMut(GroupRef<'_>)) -> Result<(), StoreError> {
        /// A group in `text`: its id, where its name starts, and the lengths of its name and
        /// external id (u32: both are at most a few hundred bytes).
        struct Entry {
            id: u64,
            start: usize,
            name_len: u32,
            external_id_len: u32,
        }
        let snapshot = self.shared.snapshot()?;
        let copied = contained("a read", move || {
            let count = usize::try_from(snapshot.groups.len()?).unwrap_or(0);
            let (mut text, mut all) = (String::new(), Vec::with_capacity(count));
            for entry in snapshot.groups.iter()? {
                let (id, row) = entry?;
                let (name, external_id) = row.value();
                let too_long =
                    || redb::Error::Corrupted(format!("group {} is too long", id.value()));
                all.push(Entry {
                    id: id.value(),
                    start: text.len(),
                    name_len: u32::try_from(name.len()).map_err(|_| too_long())?,
                    external_id_len: u32::try_from(external_id.len()).map_err(|_| too_long())?,
                });
                text.push_str(name);
                text.push_str(external_id);
            }
            drop(snapshot);
            Ok((text, all))
        });
        let (text, mut all) = copied.inspect_err(|e| {
            self.shared.distrust(e);
        })?;
        let split = |e: &Entry| {
            let name_end = e.start + e.name_len as usize;
            let end = name_end + e.external_id_len as usize;
            (&text[e.start..name_end], &text[name_end..end])
        };
        all.sort_unstable_by(|a, b| split(a).0.cmp(split(b).0));
        for entry in &all {
            look(GroupRef::from_row(entry.id, split(entry)));
        }
        Ok(())
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            committed_calls: self.shared.committed_calls.load(Ordering::Relaxed),
        }
    }

    /// Every group, in name order.
    pub fn all(&self) -> Result<Vec<Group>, StoreError> {
        let mut all = Vec::new();
        self.view_all(|group| all.push(group.to_owned()))?;
        Ok(all)
    }

    /// Applies `ops` in order, in one commit shared with whatever else is queued, and returns
    /// once that commit is durable.
    pub async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        if let Some(fault) = self.shared.fault() {
            return Err(StoreError::Untrusted(fault));
        }
        let (reply, answer) = oneshot::channel();
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs
                .as_ref()
                .is_some_and(|tx| tx.send(Job { ops, reply }).is_ok()),
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
    /// redb read transaction, so writes go on meanwhile and nothing waits for it.
    pub fn dump_snapshot(&self) -> Result<Dumpable, StoreError> {
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

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens (or creates) a database on `backend`, verifying the whole file first: with
/// `set_check_integrity_on_open`, redb checks the checksum of every page of the committed
/// trees (and rebuilds its allocator state from them) before the open returns, so a damaged
/// file is an error here instead of a panic in a later read (cberner/redb#1334). A plain open
/// after a clean shutdown would trust the file unread.
///
/// When the last commit does not verify and it was not made with two-phase commit, redb rolls
/// back to the commit before it: what a crash (or power cut) in the middle of a commit leaves,
/// and that commit was never acknowledged. A file closed cleanly ends with a two-phase commit,
/// so damage to it is reported, never rolled back.
fn open_database(backend: impl redb::StorageBackend) -> Result<Database, redb::Error> {
    open_verified(backend, RollBack::Allowed)
}

/// What an open does when the last commit does not verify (see [`open_database`]).
#[derive(Debug, Clone)]
enum RollBack {
    /// Roll back to the commit before it, as crash recovery does.
    Allowed,
    /// Roll back, and record that it happened.
    Recorded(Arc<AtomicBool>),
    /// Fail the open with `RepairAborted`, changing nothing: `groupd check` without `--repair`.
    Refused,
}

fn open_verified(
    backend: impl redb::StorageBackend,
    roll_back: RollBack,
) -> Result<Database, redb::Error> {
    let mut builder = redb::Builder::new();
    builder.set_check_integrity_on_open(true);
    builder.set_repair_callback(move |session| {
        // redb reports 0.3 only when the last commit failed verification (see redb's `do_repair`).
        if !(0.25..0.35).contains(&session.progress()) {
            return;
        }
        match &roll_back {
            RollBack::Refused => session.abort(),
            RollBack::Recorded(flag) => flag.store(true, Ordering::SeqCst),
            RollBack::Allowed => {}
        }
        if !matches!(roll_back, RollBack::Refused) {
            tracing::warn!("the last commit does not verify; rolling back to the one before it");
        }
    });
    Ok(builder.create_with_backend(backend)?)
}

/// Opens the database file for redb, creating it if missing (as `Database::create` does).
fn open_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Creates missing tables and meta records; returns the schema version found.
/// Migrates version 1 (drops its `names` table) and version 2 (nothing to change) in the same
/// transaction.
fn initialise(db: &Database) -> Result<u64, redb::Error> {
    let txn = db.begin_write()?;
    let version = {
        txn.open_table(GROUPS)?;
        let mut meta = txn.open_table(META)?;
        let found = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
        let version = match found {
            None => SCHEMA_VERSION,
            Some(old @ (1 | 2)) => {
                if old == 1 {
                    txn.delete_table(NAMES_V1)?;
                }
                tracing::info!("database migrated from schema version {old} to {SCHEMA_VERSION}");
                SCHEMA_VERSION
            }
            Some(other) => other,
        };
        if version == SCHEMA_VERSION {
            meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
        }
        if meta.get(NEXT_ID_KEY)?.is_none() {
            meta.insert(NEXT_ID_KEY, 1)?;
        }
        version
    };
    txn.commit()?;
    Ok(version)
}

/// The id the next create gets: the larger of the counter and the highest id plus one (see
/// the module doc).
fn next_id(
    groups: &impl ReadableTable<u64, (&'static str, &'static str)>,
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<u64, redb::Error> {
    let after_last = groups
        .last()?
        .map_or(1, |(id, _)| id.value().saturating_add(1));
    let counter = meta.get(NEXT_ID_KEY)?.map_or(1, |v| v.value());
    Ok(counter.max(after_last))
}

fn write_loop(shared: &Shared, jobs: &mpsc::Receiver<Job>) {
    let mut names = shared.load();
    let (mut last_jobs, mut failed) = (1, false);
    while let Ok(first) = jobs.recv() {
        if let Some(fault) = shared.fault() {
            refuse(first, jobs, &fault);
            continue;
        }
        let started = Instant::now();
        if failed {
            match shared.reopen() {
                Ok(()) => tracing::info!("database reopened after a failed commit"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot reopen the database");
                    // A reopen verifies the file: damage found there ends writes too.
                    shared.distrust(&e);
                }
            }
        }
        if names.is_none() {
            // After a failed commit the index may hold its changes, and the mirror may lack
            // them if they reached the disk after all: both are rebuilt from the database.
            names = shared.load();
        }
        let (batch, committed) = match (names.as_mut(), shared.db()) {
            (Some(names), Ok(db)) => commit_round(&db, first, jobs, last_jobs, names),
            (None, _) => (
                vec![first],
                Err(redb::Error::Io(std::io::Error::other(
                    "the groups could not be loaded",
                ))),
            ),
            (_, Err(e)) => (vec![first], Err(e)),
        };
        last_jobs = batch.len();
        let calls: usize = batch.iter().map(|job| job.ops.len()).sum();
        failed = committed.is_err();
        if let Err(e) = &committed {
            names = None;
            shared.distrust(e);
        }
        let durable = started.elapsed().as_micros();
        let committed = committed.map(|(outcomes, changes)| {
            shared.apply(changes);
            shared.refresh();
            outcomes
        });
        if !failed {
            shared.commits.fetch_add(1, Ordering::Relaxed);
            shared
                .committed_calls
                .fetch_add(calls as u64, Ordering::Relaxed);
        }
        tracing::trace!(
            jobs = batch.len(),
            calls,
            durable,
            refreshed = started.elapsed().as_micros(),
            "commit"
        );
        match committed {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, calls, "commit failed; its calls are answered with an error");
                let e = StoreError::from(e);
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Answers `first` and every job queued behind it with the fault that ends writes.
fn refuse(first: Job, jobs: &mpsc::Receiver<Job>, fault: &Arc<str>) {
    for job in std::iter::once(first).chain(jobs.try_iter()) {
        let _ = job
            .reply
            .send(Err(StoreError::Untrusted(Arc::clone(fault))));
    }
}

/// The outcome of each job's ops, and the changes they made.
type Committed = (Vec<Vec<WriteOutcome>>, Vec<Change>);

/// One commit: applies `first`, then each job queued behind it as it is taken, in one
/// transaction, and commits it durably. When the previous commit held more jobs than are here,
/// their senders are most likely about to send again (they were just answered), so it waits up
/// to [`GATHER_WAIT`] for as many: one commit for them all instead of two half-size ones. The
/// jobs are applied while it waits, so the wait costs the commit nothing (with 64 clients
/// creating one group each, applying was a fifth of the commit's time).
///
/// Returns the jobs taken, whatever became of the commit.
fn commit_round(
    db: &Database,
    first: Job,
    jobs: &mpsc::Receiver<Job>,
    last_jobs: usize,
    names: &mut NameIndex,
) -> (Vec<Job>, Result<Committed, redb::Error>) {
    let mut batch = vec![first];
    let committed = contained("a commit", || {
        apply_round(db, &mut batch, jobs, last_jobs, names)
    });
    (batch, committed)
}

fn apply_round(
    db: &Database,
    batch: &mut Vec<Job>,
    jobs: &mpsc::Receiver<Job>,
    last_jobs: usize,
    names: &mut NameIndex,
) -> Result<Committed, redb::Error> {
    let deadline = Instant::now() + GATHER_WAIT;
    let txn = db.begin_write()?;
    let committed = {
        let mut tables = Tables::open(&txn, names)?;
        let mut outcomes = Vec::with_capacity(last_jobs);
        let mut calls = 0;
        let mut next = 0;
        loop {
            while let Some(job) = batch.get(next) {
                let out: Result<Vec<_>, _> = job.ops.iter().map(|op| tables.apply(op)).collect();
                outcomes.push(out?);
                calls += job.ops.len();
                next += 1;
            }
            if calls >= MAX_CALLS_PER_COMMIT {
                break;
            }
            let job = match jobs.try_recv() {
                Ok(job) => job,
                Err(_) if batch.len() < last_jobs => {
                    match jobs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(job) => job,
                        Err(_) => break,
                    }
                }
                Err(_) => break,
            };
            batch.push(job);
        }
        if tables.removed {
            tables.meta.insert(NEXT_ID_KEY, tables.next_id)?;
        }
        (outcomes, tables.changes)
    };
    txn.commit()?;
    Ok(committed)
}

/// The tables of one write transaction, opened once for all the calls it holds. The name index
/// is the writer's (no lock): it changes with the ops as they are applied, and is thrown away
/// and rebuilt when a commit fails.
struct Tables<'txn, 'n> {
    groups: redb::Table<'txn, u64, (&'static str, &'static str)>,
    names: &'n mut NameIndex,
    meta: redb::Table<'txn, &'static str, u64>,
    next_id: u64,
    /// Whether a group was removed: then `next_id` is written (see the module doc).
    removed: bool,
    /// What the ops changed, for the mirror.
    changes: Vec<Change>,
}

impl<'txn, 'n> Tables<'txn, 'n> {
    fn open(txn: &'txn WriteTransaction, names: &'n mut NameIndex) -> Result<Self, redb::Error> {
        let meta = txn.open_table(META)?;
        let groups = txn.open_table(GROUPS)?;
        Ok(Tables {
            next_id: next_id(&groups, &meta)?,
            groups,
            names,
            meta,
            removed: false,
            changes: Vec::new(),
        })
    }

    fn apply(&mut self, op: &WriteOp) -> Result<WriteOutcome, redb::Error> {
        let (groups, names) = (&mut self.groups, &mut *self.names);
        match op {
            WriteOp::Create { name, external_id } => {
                let id = self.next_id;
                if !names.insert_new(name, id) {
                    return Ok(WriteOutcome::Refused(Refusal::NameTaken));
                }
                self.next_id += 1;
                groups.insert(id, (name.as_str(), external_id.as_str()))?;
                self.changes.push(Change::put(id, name, external_id));
                Ok(WriteOutcome::Created(id))
            }
            WriteOp::Update {
                id,
                name,
                external_id,
            } => {
                let Some((old_name, old_external_id)) = groups
                    .get(id)?
                    .map(|r| (r.value().0.to_owned(), r.value().1.to_owned()))
                else {
                    return Ok(WriteOutcome::Refused(Refusal::NoSuchGroup));
                };
                let new_name = name.as_deref().unwrap_or(&old_name);
                if new_name != old_name {
                    if !names.insert_new(new_name, *id) {
                        return Ok(WriteOutcome::Refused(Refusal::NameTaken));
                    }
                    names.remove(&old_name);
                }
                let new_external_id = external_id.as_deref().unwrap_or(&old_external_id);
                groups.insert(id, (new_name, new_external_id))?;
                self.changes
                    .push(Change::put(*id, new_name, new_external_id));
                Ok(WriteOutcome::Applied)
            }
            WriteOp::Remove { id } => {
                let Some(old_name) = groups.remove(id)?.map(|r| r.value().0.to_owned()) else {
                    return Ok(WriteOutcome::Refused(Refusal::NoSuchGroup));
                };
                names.remove(&old_name);
                self.removed = true;
                self.changes.push(Change::remove(*id));
                Ok(WriteOutcome::Applied)
            }
        }
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

    /// Until the mirror is loaded (and while it is rebuilt after a failed commit) reads are
    /// answered from the redb snapshot, with the same answers.
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
            (store.get(1).unwrap(), each, store.all().unwrap())
        };
        let from_mirror = read(&store);
        assert!(store.shared.mirror.read().unwrap().is_some());
        store.shared.set_mirror(None);
        assert_eq!(read(&store), from_mirror);
        let (one, each, all) = from_mirror;
        assert_eq!(one.map(|g| g.name), Some("b".to_string()));
        let names: Vec<_> = each
            .iter()
            .map(|(i, g)| (*i, g.as_ref().map(|g| g.name.as_str())))
            .collect();
        assert_eq!(names, [(0, Some("a")), (1, None), (2, Some("b"))]);
        assert_eq!(all.iter().map(|g| g.id).collect::<Vec<_>>(), [2, 1]);
    }
}
