//! The embedded database's layout on disk: its tables, the schema version and its migrations,
//! the id counter rule, and how a file is opened (verified whole before it is used).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{Database, ReadableTable, TableDefinition};

use super::contain::contained;
use super::open_error;
use crate::storage::OpenError;

pub(super) const GROUPS: TableDefinition<u64, (&str, &str)> = TableDefinition::new("groups");
/// Version 1's name index, dropped when such a database is opened.
pub(super) const NAMES_V1: TableDefinition<&str, u64> = TableDefinition::new("names");
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const SCHEMA_VERSION_KEY: &str = "schema_version";
pub(super) const NEXT_ID_KEY: &str = "next_id";
/// Which commit log belongs to this database: random, set when the database is created (or
/// migrated), new for every restore (see [`super::log`]).
pub(super) const LOG_ID_KEY: &str = "log_id";
/// The last commit log record this database holds durably.
pub(super) const LOG_LSN_KEY: &str = "log_lsn";

/// The layout described above. Bump it, and teach [`Store::open`] to migrate, when it changes.
/// Version 4 added the commit log (`log_id`, `log_lsn`): a groupd that knows only version 3
/// would open such a database without applying its log, so it must refuse it.
pub const SCHEMA_VERSION: u64 = 4;

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
pub(super) fn open_database(backend: impl redb::StorageBackend) -> Result<Database, redb::Error> {
    open_verified(backend, RollBack::Allowed)
}

/// What an open does when the last commit does not verify (see [`open_database`]).
#[derive(Debug, Clone)]
pub(super) enum RollBack {
    /// Roll back to the commit before it, as crash recovery does.
    Allowed,
    /// Roll back, and record that it happened.
    Recorded(Arc<AtomicBool>),
    /// Fail the open with `RepairAborted`, changing nothing: `groupd check` without `--repair`.
    Refused,
}

pub(super) fn open_verified(
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
pub(super) fn open_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Creates missing tables and meta records; returns the schema version found.
/// Migrates version 1 (drops its `names` table), 2 and 3 (a log id is added, as for every
/// database without one) in the same transaction.
pub(super) fn initialise(db: &Database) -> Result<u64, redb::Error> {
    let txn = db.begin_write()?;
    let version = {
        txn.open_table(GROUPS)?;
        let mut meta = txn.open_table(META)?;
        let found = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
        let version = match found {
            None => SCHEMA_VERSION,
            Some(old @ (1..=3)) => {
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
        if version == SCHEMA_VERSION && meta.get(LOG_ID_KEY)?.is_none() {
            meta.insert(LOG_ID_KEY, new_log_id())?;
            meta.insert(LOG_LSN_KEY, 0)?;
        }
        version
    };
    txn.commit()?;
    Ok(version)
}

/// A random log id (never 0): the standard library's per-process random hash keys, over the
/// time and the process id.
fn new_log_id() -> u64 {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now();
    let id = std::collections::hash_map::RandomState::new().hash_one((now, std::process::id()));
    id.max(1)
}

/// Creates or migrates the layout of the freshly opened `db` (see [`initialise`]) and refuses a
/// schema version this groupd cannot read.
pub(super) fn check(path: &Path, db: &Database) -> Result<(), OpenError> {
    match contained("the open", || initialise(db)).map_err(|e| open_error(path, e))? {
        SCHEMA_VERSION => Ok(()),
        found => Err(OpenError::Schema {
            path: path.to_path_buf(),
            found,
            expected: SCHEMA_VERSION,
        }),
    }
}

/// The id the next create gets: the larger of the counter and the highest id plus one (see
/// the module doc).
pub(super) fn next_id(
    groups: &impl ReadableTable<u64, (&'static str, &'static str)>,
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<u64, redb::Error> {
    let after_last = groups
        .last()?
        .map_or(1, |(id, _)| id.value().saturating_add(1));
    let counter = meta.get(NEXT_ID_KEY)?.map_or(1, |v| v.value());
    Ok(counter.max(after_last))
}
