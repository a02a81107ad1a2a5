//! The database without a server, for `groupd check`, `groupd dump --db` and `groupd restore`
//! (SPEC §13), and the consistent snapshot a dump reads, offline or from a running server.
//!
//! Opens are verified exactly as the server's are (every page checksum), inside containment;
//! there is no writer thread and no copy of the groups in memory. A database a server holds is
//! refused by redb's file lock ([`OpenError::Locked`]), never read behind the server's back.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::schema::{GROUPS, META, NEXT_ID_KEY, RollBack, initialise, next_id, open_verified};
use super::{OpenError, StoreError, contained, drop_contained, file};
use crate::group::{Group, GroupRef};

/// Groups written between two progress reports of a restore.
const PROGRESS_EVERY: usize = 10_000;

/// What the verification of an offline open found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Every page verified.
    Healthy,
    /// The last commit did not verify, and redb rolled back to the one before it (`--repair`).
    RolledBack,
}

/// A verified database, opened by a command rather than a server.
pub struct Offline {
    db: Option<Database>,
    path: PathBuf,
}

impl Offline {
    /// Opens the existing database at `path`, verifying every page. With `repair`, a last
    /// commit that does not verify is rolled back (what redb can repair); without it, that is
    /// reported as damage and the file is left as it is.
    pub fn open(path: &Path, repair: bool) -> Result<(Offline, CheckOutcome), OpenError> {
        let unreadable = |e| super::open_error(path, e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OpenError::Missing(path.to_path_buf()),
                _ => unreadable(redb::Error::Io(e)),
            })?;
        let rolled_back = Arc::new(AtomicBool::new(false));
        let roll_back = match repair {
            true => RollBack::Recorded(Arc::clone(&rolled_back)),
            false => RollBack::Refused,
        };
        let open = || open_verified(file::ZeroFilledFile::new(file)?, roll_back);
        let db = contained("the open", open).map_err(unreadable)?;
        let offline = Offline {
            db: Some(db),
            path: path.to_path_buf(),
        };
        super::schema::check(path, offline.db().map_err(unreadable)?)?;
        let outcome = match rolled_back.load(Ordering::SeqCst) {
            true => CheckOutcome::RolledBack,
            false => CheckOutcome::Healthy,
        };
        Ok((offline, outcome))
    }

    fn db(&self) -> Result<&Database, redb::Error> {
        self.db
            .as_ref()
            .ok_or_else(|| redb::Error::Io(std::io::Error::other("database closed")))
    }

    /// The committed state, for a dump or a summary.
    pub fn snapshot(&self) -> Result<Dumpable, StoreError> {
        Ok(contained("a dump", || Dumpable::open(self.db()?))?)
    }

    /// The size of the database file in bytes.
    pub fn file_bytes(&self) -> std::io::Result<u64> {
        Ok(std::fs::metadata(&self.path)?.len())
    }
}

impl Drop for Offline {
    fn drop(&mut self) {
        drop_contained("the database", self.db.take());
    }
}

/// One committed state of the groups, read from one redb read transaction: the groups in id
/// order, and the next id of that same state. Holding it keeps that state readable while
/// writes go on (MVCC); it never blocks a writer.
pub struct Dumpable {
    groups: ReadOnlyTable<u64, (&'static str, &'static str)>,
    next_id: u64,
    len: u64,
}

impl Dumpable {
    pub(super) fn open(db: &Database) -> Result<Dumpable, redb::Error> {
        let txn = db.begin_read()?;
        let groups = txn.open_table(GROUPS)?;
        let meta = txn.open_table(META)?;
        Ok(Dumpable {
            len: groups.len()?,
            next_id: next_id(&groups, &meta)?,
            groups,
        })
    }

    /// The id the next created group would get in this state.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// How many groups this state holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shows every group to `look`, in id order, then lets the snapshot go.
    pub fn each(self, mut look: impl FnMut(GroupRef<'_>)) -> Result<(), StoreError> {
        Ok(contained("a dump", move || {
            for entry in self.groups.iter()? {
                let (id, row) = entry?;
                look(GroupRef::from_row(id.value(), row.value()));
            }
            drop(self);
            Ok(())
        })?)
    }
}

/// Why a restore wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} already exists; restore builds a new database (choose a new path)")]
    Exists(PathBuf),
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: redb::Error },
}

/// Builds a new database at `path` holding exactly `groups` (already validated: ids
/// increasing, below `next_id`, names valid and unique) and the id counter `next_id`, so ids
/// stay never-reused after a move. `progress` is told how many groups are written, now and
/// then. On any failure the new file is removed: a restore writes all or nothing.
pub fn restore(
    path: &Path,
    next_id: u64,
    groups: &[Group],
    progress: impl FnMut(usize),
) -> Result<(), RestoreError> {
    let file = std::fs::File::create_new(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => RestoreError::Exists(path.to_path_buf()),
        _ => RestoreError::Create {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    let mut db = None;
    let written = contained("a restore", || {
        let opened = db.insert(super::schema::open_database(file::ZeroFilledFile::new(
            file,
        )?)?);
        initialise(opened)?;
        write_all(opened, next_id, groups, progress)
    });
    drop_contained("the database", db);
    written.map_err(|source| {
        let _ = std::fs::remove_file(path);
        RestoreError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn write_all(
    db: &Database,
    next_id: u64,
    groups: &[Group],
    mut progress: impl FnMut(usize),
) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(GROUPS)?;
        for (i, group) in groups.iter().enumerate() {
            table.insert(group.id, (group.name.as_str(), group.external_id.as_str()))?;
            if (i + 1) % PROGRESS_EVERY == 0 {
                progress(i + 1);
            }
        }
        txn.open_table(META)?.insert(NEXT_ID_KEY, next_id)?;
    }
    txn.commit()?;
    progress(groups.len());
    Ok(())
}
