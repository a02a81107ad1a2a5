//! Storage: the seam between the Group API and the engines that keep the groups. The rest of the
//! server knows only [`GroupStore`] and [`Backend`]; no engine type crosses this module's
//! boundary, and its errors name none.
//!
//! The backends:
//! - [`embedded`]: the default, one redb file on this machine (SPEC §4, §13).
//! - [`postgres`]: Kanboard's `groups` table in PostgreSQL, for many groupd processes over one
//!   directory (SPEC §14).
//!
//! # The contract every backend keeps (SPEC §4)
//!
//! - Ids start at 1, increase, and are never reused, across restarts too: a removed group's id,
//!   the highest one included, is never handed out again.
//! - Names are unique, compared exactly (bytes of the UTF-8 name: no case folding, trimming or
//!   normalisation). A create or rename onto a name another group holds is
//!   [`WriteOutcome::Refused`] with [`Refusal::NameTaken`]; renaming a group to its own name is
//!   applied.
//! - [`GroupStore::write`] applies a round of writes in order, each seeing the ones before it,
//!   and resolves only once all of them are durable. One refused write changes nothing and does
//!   not affect the others; a failed commit fails every write in it, and none of them is
//!   acknowledged.
//! - Reads see every write acknowledged before they began.
//! - [`GroupStore::visit_all`] shows every group in name order (UTF-8 bytes, ascending),
//!   [`GroupStore::visit_dump`] in id order, each from one committed state, on a thread where a
//!   long visit stalls no connection.
//!
//! `tests/store_contract.rs` checks this contract, once, against every backend.
//!
//! [`Refusal::NameTaken`]: crate::group::Refusal::NameTaken

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::group::{GroupRef, WriteOp, WriteOutcome};

pub mod embedded;
pub mod postgres;

/// Why a database could not be opened. Each is fatal at start-up (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database {0} is in use by another process")]
    Locked(PathBuf),
    #[error("database {path} has schema version {found}; this groupd reads version {expected}")]
    Schema {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("cannot open database {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file failed verification (a page checksum, a malformed page, the engine panicked).
    #[error(
        "database {path} is damaged ({why}); run `groupd check --repair --db {path}`, or restore it from a dump with `groupd restore`"
    )]
    Damaged { path: PathBuf, why: String },
    #[error("no database at {0}")]
    Missing(PathBuf),
    /// PostgreSQL unreachable within the connect timeout, or its table does not fit; the text
    /// names the URL (without its password) and what is wrong.
    #[error("{0}")]
    Postgres(String),
}

/// A failed read or write. Its details are for the log; clients only learn "Internal error".
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Engine(Arc<dyn std::error::Error + Send + Sync>),
    #[error("the storage writer has stopped")]
    WriterGone,
    /// An earlier fault (the engine panicked, the file is corrupted) means the storage can no
    /// longer be trusted with a write (SPEC §13); the reason is the first fault's.
    #[error("writes are refused after a storage fault: {0}")]
    Untrusted(Arc<str>),
}

/// What the writer has done since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Durable commits made.
    pub commits: u64,
    /// Calls those commits held; `committed_calls / commits` is the mean group-commit size.
    pub committed_calls: u64,
}

/// What one committed state holds, told to a [`Visitor`] before its groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateInfo {
    /// How many groups it holds.
    pub groups: u64,
    /// The id the next created group would get in it.
    pub next_id: u64,
}

/// Sees the groups of one committed state, one at a time, away from the connections' threads.
pub trait Visitor: Send + 'static {
    /// Called once, before the first group.
    fn begin(&mut self, _state: StateInfo) {}
    fn group(&mut self, group: GroupRef<'_>);
}

/// What the dispatcher needs from a backend; the contract is in the module doc.
pub trait GroupStore: Send + Sync {
    /// Applies `ops` in order, in one durable commit (possibly shared with other callers'), and
    /// resolves once it is durable, with one outcome per op.
    fn write(
        &self,
        ops: Vec<WriteOp>,
    ) -> impl Future<Output = Result<Vec<WriteOutcome>, StoreError>> + Send;

    /// Shows each group of `ids` (`None` when there is no such group) to `look` with its index,
    /// in order.
    fn get_each<L>(
        &self,
        ids: &[u64],
        look: L,
    ) -> impl Future<Output = Result<(), StoreError>> + Send
    where
        L: FnMut(usize, Option<GroupRef<'_>>) + Send;

    /// Shows every group to `visitor`, in name order, and gives it back.
    fn visit_all<V: Visitor>(
        &self,
        visitor: V,
    ) -> impl Future<Output = Result<V, StoreError>> + Send;

    /// Shows every group to `visitor`, in id order, with the next id of the same state (a dump),
    /// and gives it back.
    fn visit_dump<V: Visitor>(
        &self,
        visitor: V,
    ) -> impl Future<Output = Result<V, StoreError>> + Send;

    fn stats(&self) -> StoreStats;

    /// The fault after which writes are refused (SPEC §13), if one happened.
    fn fault(&self) -> Option<String>;

    /// Waits for the writes already queued and lets the database go. Later writes fail.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The backend a server runs on, chosen by `--db`.
pub enum Backend {
    Embedded(embedded::Store),
    Postgres(postgres::PgStore),
}

/// Opens the embedded database file at `db`, creating it when missing.
pub fn open(db: &Path) -> Result<Backend, OpenError> {
    embedded::Store::open(db).map(Backend::Embedded)
}

/// Whether `--db` names a PostgreSQL database rather than a file (SPEC §14).
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Opens what `db` names: a PostgreSQL URL (retried for up to `connect_timeout`), or else an
/// embedded database file.
pub async fn connect(db: &str, connect_timeout: Duration) -> Result<Backend, OpenError> {
    if is_postgres_url(db) {
        let store = postgres::PgStore::connect(db, connect_timeout).await;
        return store
            .map(Backend::Postgres)
            .map_err(|e| OpenError::Postgres(e.to_string()));
    }
    open(Path::new(db))
}

/// What `--db` names, for the log: a path, or a URL without its password.
pub fn shown(db: &str) -> String {
    if is_postgres_url(db) {
        postgres::redact(db)
    } else {
        db.to_owned()
    }
}

impl From<embedded::Store> for Backend {
    fn from(store: embedded::Store) -> Self {
        Backend::Embedded(store)
    }
}

/// The PostgreSQL futures are boxed: they hold a query's state (kilobytes), and unboxed they
/// would size every connection's task for it, embedded or not (1,000 idle connections: 22.4 MiB
/// against 12.4 MiB before PostgreSQL came in).
impl GroupStore for Backend {
    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        match self {
            Backend::Embedded(store) => store.write(ops).await,
            Backend::Postgres(store) => Box::pin(GroupStore::write(store, ops)).await,
        }
    }

    async fn get_each<L>(&self, ids: &[u64], look: L) -> Result<(), StoreError>
    where
        L: FnMut(usize, Option<GroupRef<'_>>) + Send,
    {
        match self {
            Backend::Embedded(store) => GroupStore::get_each(store, ids, look).await,
            Backend::Postgres(store) => Box::pin(GroupStore::get_each(store, ids, look)).await,
        }
    }

    async fn visit_all<V: Visitor>(&self, visitor: V) -> Result<V, StoreError> {
        match self {
            Backend::Embedded(store) => GroupStore::visit_all(store, visitor).await,
            Backend::Postgres(store) => Box::pin(GroupStore::visit_all(store, visitor)).await,
        }
    }

    async fn visit_dump<V: Visitor>(&self, visitor: V) -> Result<V, StoreError> {
        match self {
            Backend::Embedded(store) => GroupStore::visit_dump(store, visitor).await,
            Backend::Postgres(store) => Box::pin(GroupStore::visit_dump(store, visitor)).await,
        }
    }

    fn stats(&self) -> StoreStats {
        match self {
            Backend::Embedded(store) => store.stats(),
            Backend::Postgres(store) => store.stats(),
        }
    }

    fn fault(&self) -> Option<String> {
        match self {
            Backend::Embedded(store) => store.fault(),
            Backend::Postgres(store) => GroupStore::fault(store),
        }
    }

    async fn close(&self) {
        match self {
            Backend::Embedded(store) => store.close(),
            Backend::Postgres(store) => Box::pin(store.close()).await,
        }
    }
}
