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
    /// The commit log was damaged: the commits before the damage were applied, and the log
    /// was set aside as `<log>.damaged` (`--repair`).
    LogCut,
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
        let db = offline.db().map_err(unreadable)?;
        super::schema::check(path, db)?;
        let cut = apply_log(path, db, repair)?;
        let outcome = match (cut, rolled_back.load(Ordering::SeqCst)) {
            (true, _) => CheckOutcome::LogCut,
            (false, true) => CheckOutcome::RolledBack,
            (false, false) => CheckOutcome::Healthy,
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

/// Applies the commit log beside `path`, if there is one, as a server's open would, then
/// removes it (the database now holds it all), so the file is complete on its own. With
/// `repair`, a damaged log is applied up to the damage and kept as `<log>.damaged`; whether
/// that happened.
fn apply_log(path: &Path, db: &Database, repair: bool) -> Result<bool, OpenError> {
    let log_path = super::log::path(path);
    let file = match OpenOptions::new().read(true).write(true).open(&log_path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(OpenError::Unreadable {
                path: log_path,
                source: Box::new(e),
            });
        }
    };
    let unreadable = |e: std::io::Error| OpenError::Unreadable {
        path: log_path.clone(),
        source: Box::new(e),
    };
    let backend =
        file::ZeroFilledFile::new(file).map_err(|e| unreadable(std::io::Error::other(e)))?;
    let log = super::log::CommitLog::new(Box::new(backend)).map_err(unreadable)?;
    let damaged = match super::log::recover_at_open(path, db, log, false) {
        Ok(log) => {
            drop(log);
            false
        }
        Err(OpenError::Damaged { .. }) if repair => {
            let file = OpenOptions::new().read(true).write(true).open(&log_path);
            let backend = file
                .and_then(|f| file::ZeroFilledFile::new(f).map_err(std::io::Error::other))
                .map_err(unreadable)?;
            let log = super::log::CommitLog::new(Box::new(backend)).map_err(unreadable)?;
            drop(super::log::recover_at_open(path, db, log, true)?);
            true
        }
        Err(e) => return Err(e),
    };
    let gone = match damaged {
        true => {
            let mut aside = log_path.clone().into_os_string();
            aside.push(".damaged");
            std::fs::rename(&log_path, aside)
        }
        false => std::fs::remove_file(&log_path),
    };
    gone.map_err(unreadable)?;
    Ok(damaged)
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
