//! PostgreSQL as the groups' storage (SPEC §14): Kanboard's own `groups` table, shared by any
//! number of groupd processes and by Kanboard itself. No tokio-postgres type leaves this module.
//!
//! - [`PgStore::write`] hands an ordered round of [`WriteOp`]s to one writer task. The writer
//!   takes every round waiting and pipelines `BEGIN`, their statements and `COMMIT` in one round
//!   trip (group commit), and answers once PostgreSQL has committed. After a failed statement
//!   the rest of a transaction fail with 25P02 and its `COMMIT` reports no error, so every
//!   statement's result is checked. A round that another writer disturbed (unique violation,
//!   deadlock, serialization failure) is rolled back and replayed one round per transaction,
//!   never answered as an error; a savepoint per statement would avoid the replay but costs
//!   2.7× on the normal path. A commit not confirmed within [`COMMIT_WAIT`], or a connection
//!   lost during one, leaves the outcome unknown: an error, never `true` or `false`.
//! - Reads go to the database through a few connections of their own, every time: no cache,
//!   so a read sees every write any process acknowledged before it (a `pg_notify`-kept cache
//!   cut 64-client inserts from 24k to 5.2k/s when measured for issue #16).
//! - When PostgreSQL is unreachable, calls get an error at once or within [`CONNECTION_WAIT`];
//!   each slot reconnects on the next call, pausing at most one second (`link::MAX_BACKOFF`)
//!   between attempts, so service is back within about a second of a writable primary.
//!
//! Modules: `url` (the URL, TLS and the password that must not be logged), `schema` (the
//! table: created or checked), `link` (a session, its statements and its reconnection),
//! `writer` (group commit), `restore` (a dump into an empty table).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::group::{Group, GroupRef, WriteOp, WriteOutcome};
use crate::storage::{GroupStore, StateInfo, StoreError, StoreStats, Visitor};

mod link;
mod restore;
mod schema;
mod url;
mod writer;

use link::{Link, Session, Statements};
pub use url::redact;

/// How long an unreachable database is retried at start by default (`--connect-timeout`,
/// SPEC §14): long enough for a PostgreSQL that starts with groupd, short enough to report a
/// wrong URL.
pub const CONNECT_TIMEOUT_SECS: u64 = 30;

/// The longest a call waits for a connection (SPEC §14).
pub const CONNECTION_WAIT: Duration = Duration::from_secs(3);

/// The longest a round waits for its commit to be confirmed (for example by a stalled
/// synchronous standby) before its calls are told the outcome is unknown (SPEC §14).
pub const COMMIT_WAIT: Duration = Duration::from_secs(10);

/// The longest a read waits for its answer once sent; past it the session is dropped, so a
/// server that stopped answering (a partition, not a refusal) cannot hold calls forever.
pub const READ_WAIT: Duration = Duration::from_secs(10);

/// Connections kept for reads. tokio-postgres pipelines the queries of concurrent callers on
/// one connection, so a few are enough to keep both cores of the server busy.
const READ_CONNECTIONS: usize = 4;

/// Why PostgreSQL could not serve. Details are for the log: clients learn `-32603`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    #[error("bad PostgreSQL URL {url}: {why}")]
    Url { url: String, why: String },
    #[error("PostgreSQL at {url} unreachable for {waited:?}: {why}")]
    Unreachable {
        url: String,
        waited: Duration,
        why: String,
    },
    /// The `groups` table exists but does not fit (SPEC §14); the text says what is missing.
    #[error("{0}")]
    Schema(String),
    #[error("PostgreSQL unavailable: {0}")]
    Unavailable(String),
    #[error("PostgreSQL refused: {0}")]
    Database(String),
    /// The commit may or may not have happened.
    #[error("commit outcome unknown: {0}")]
    OutcomeUnknown(String),
    #[error("the PostgreSQL writer has stopped")]
    WriterGone,
    /// A restore found rows in the table (SPEC §14: it only fills an empty one).
    #[error("table groups holds {0} rows; restore fills only an empty table")]
    NotEmpty(i64),
}

impl PgError {
    /// A tokio-postgres error as one of ours: the server's own refusals are `Database`, the rest
    /// (closed, I/O, TLS) `Unavailable`.
    fn from_postgres(context: &str, e: &tokio_postgres::Error) -> PgError {
        let text = format!("{context}: {}", describe(e));
        match e.code() {
            Some(_) => PgError::Database(text),
            None => PgError::Unavailable(text),
        }
    }
}

/// An error with its causes, which tokio-postgres's `Display` leaves out.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Groups kept in PostgreSQL. Shared by every connection of one groupd.
pub struct PgStore {
    jobs: Mutex<Option<mpsc::UnboundedSender<writer::Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Vec<Link>,
    next_reader: AtomicUsize,
    stats: Arc<writer::Stats>,
    /// For the few jobs that need a session of their own (a restore's transaction).
    target: Arc<url::Target>,
}

impl PgStore {
    /// Connects (retrying for up to `connect_timeout`), creates or checks the table, and starts
    /// the writer.
    pub async fn connect(url: &str, connect_timeout: Duration) -> Result<PgStore, PgError> {
        let target = Arc::new(url::Target::parse(url)?);
        tracing::info!(url = %target.shown, "connecting to PostgreSQL");
        let client = first_connection(&target, connect_timeout).await?;
        schema::ensure(&client).await?;
        drop(client);
        let write_link = Link::new(Arc::clone(&target));
        write_link.session().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(writer::Stats::default());
        let writer = tokio::spawn(writer::run(write_link, rx, Arc::clone(&stats)));
        let readers = (0..READ_CONNECTIONS)
            .map(|_| Link::new(Arc::clone(&target)))
            .collect();
        Ok(PgStore {
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
            stats,
            target,
        })
    }

    /// Applies `ops` in order, in one transaction shared with whatever else is queued, and
    /// returns once PostgreSQL has committed it.
    pub async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, PgError> {
        let (reply, answer) = oneshot::channel();
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs
                .as_ref()
                .is_some_and(|tx| tx.send(writer::Job { ops, reply }).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return Err(PgError::WriterGone);
        }
        answer.await.unwrap_or(Err(PgError::WriterGone))
    }

    /// The group of each id, in order (`None` where there is none), in one query.
    pub async fn get_many(&self, ids: &[u64]) -> Result<Vec<Option<Group>>, PgError> {
        let wanted: Vec<i64> = ids
            .iter()
            .filter_map(|&id| i64::try_from(id).ok())
            .collect();
        let rows = self.read(|s| &s.get_many, &[&wanted]).await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let group = group_of(row)?;
            found.insert(group.id, group);
        }
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    /// Every group, by the UTF-8 bytes of its name.
    pub async fn all_groups(&self) -> Result<Vec<Group>, PgError> {
        let rows = self.read(|s| &s.all, &[]).await?;
        rows.iter().map(group_of).collect()
    }

    /// Every group by id, and the next id, from one snapshot (an online dump, SPEC §13).
    pub async fn dump(&self) -> Result<(u64, Vec<Group>), PgError> {
        let rows = self.read(|s| &s.dump, &[]).await?;
        let bad = |e: tokio_postgres::Error| {
            PgError::Database(format!("reading a dump: {}", describe(&e)))
        };
        let next_id: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(bad)?,
            None => 1,
        };
        let mut groups = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Option<i64> = row.try_get(1).map_err(bad)?;
            let Some(id) = id.and_then(|id| u64::try_from(id).ok()) else {
                continue;
            };
            groups.push(Group {
                id,
                name: row.try_get(2).map_err(bad)?,
                external_id: row.try_get(3).map_err(bad)?,
            });
        }
        Ok((u64::try_from(next_id).unwrap_or(1), groups))
    }

    /// What the writer has done since the store was connected.
    pub fn stats(&self) -> StoreStats {
        self.stats.snapshot()
    }

    /// Stops the writer after the queued rounds are answered. Later writes fail.
    pub async fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer
            && writer.await.is_err()
        {
            tracing::error!("the PostgreSQL writer panicked");
        }
    }

    /// Runs one read statement on the next read connection. A connection found lost is
    /// replaced once (reads change nothing, so running one again is safe).
    async fn read(
        &self,
        statement: fn(&Statements) -> &tokio_postgres::Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgError> {
        let turn = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let link = &self.readers[turn % self.readers.len()];
        let mut replaced = false;
        loop {
            let session: Arc<Session> = link.session().await?;
            let query = session.client.query(statement(&session.statements), params);
            let e = match tokio::time::timeout(READ_WAIT, query).await {
                Ok(Ok(rows)) => return Ok(rows),
                Ok(Err(e)) if e.code().is_some() => return Err(PgError::from_postgres("read", &e)),
                Ok(Err(e)) => PgError::from_postgres("read", &e),
                Err(_) => PgError::Unavailable(format!("no answer within {READ_WAIT:?}")),
            };
            link.discard(&session);
            if replaced {
                return Err(e);
            }
            replaced = true;
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
    }
}

/// A row of `(id, name, external_id)`.
fn group_of(row: &Row) -> Result<Group, PgError> {
    let bad =
        |e: tokio_postgres::Error| PgError::Database(format!("reading a group: {}", describe(&e)));
    let id: i64 = row.try_get(0).map_err(bad)?;
    Ok(Group {
        id: u64::try_from(id).map_err(|_| PgError::Database(format!("negative group id {id}")))?,
        name: row.try_get(1).map_err(bad)?,
        external_id: row.try_get(2).map_err(bad)?,
    })
}

/// The first connection, tried until `timeout` has passed with pauses of up to
/// [`link::MAX_BACKOFF`]: a database that is still starting is waited for, a missing one is not
/// waited for forever.
async fn first_connection(
    target: &url::Target,
    timeout: Duration,
) -> Result<tokio_postgres::Client, PgError> {
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut pause = Duration::from_millis(50);
    let mut why = String::new();
    loop {
        match tokio::time::timeout_at(deadline, link::connect(target)).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(PgError::Unavailable(e))) => why = e,
            Ok(Err(e)) => why = e.to_string(),
            // The last attempt, cut short by the deadline: the one before it says more.
            Err(_) if why.is_empty() => why = "connection attempt timed out".to_owned(),
            Err(_) => {}
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(PgError::Unreachable {
                url: target.shown.clone(),
                waited: now - started,
                why,
            });
        }
        tracing::warn!(url = %target.shown, error = %why, "PostgreSQL not reachable yet; retrying");
        tokio::time::sleep_until((now + pause).min(deadline)).await;
        pause = (pause * 2).min(link::MAX_BACKOFF);
    }
}

/// The seam (see [`crate::storage`]). Reads go to PostgreSQL every time (no cache: another
/// groupd's acknowledged writes are seen at once); visits render on a blocking thread.
impl GroupStore for PgStore {
    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, StoreError> {
        PgStore::write(self, ops).await.map_err(engine)
    }

    async fn get_each<L>(&self, ids: &[u64], mut look: L) -> Result<(), StoreError>
    where
        L: FnMut(usize, Option<GroupRef<'_>>) + Send,
    {
        let found = self.get_many(ids).await.map_err(engine)?;
        for (i, group) in found.iter().enumerate() {
            look(i, group.as_ref().map(borrowed));
        }
        Ok(())
    }

    async fn visit_all<V: Visitor>(&self, visitor: V) -> Result<V, StoreError> {
        let groups = self.all_groups().await.map_err(engine)?;
        show(visitor, None, groups).await
    }

    async fn visit_dump<V: Visitor>(&self, visitor: V) -> Result<V, StoreError> {
        let (next_id, groups) = self.dump().await.map_err(engine)?;
        let state = StateInfo {
            groups: groups.len() as u64,
            next_id,
        };
        show(visitor, Some(state), groups).await
    }

    fn stats(&self) -> StoreStats {
        PgStore::stats(self)
    }

    fn fault(&self) -> Option<String> {
        None
    }

    async fn close(&self) {
        PgStore::close(self).await
    }
}

fn engine(e: PgError) -> StoreError {
    StoreError::Engine(Arc::new(e))
}

fn borrowed(group: &Group) -> GroupRef<'_> {
    GroupRef::from_row(group.id, (&group.name, &group.external_id))
}

/// Shows `groups` to `visitor` on a blocking thread (100k groups are milliseconds of rendering).
async fn show<V: Visitor>(
    mut visitor: V,
    state: Option<StateInfo>,
    groups: Vec<Group>,
) -> Result<V, StoreError> {
    let shown = tokio::task::spawn_blocking(move || {
        if let Some(state) = state {
            visitor.begin(state);
        }
        groups.iter().for_each(|g| visitor.group(borrowed(g)));
        visitor
    });
    shown.await.map_err(|e| {
        StoreError::Engine(Arc::new(std::io::Error::other(format!(
            "a rendering thread failed: {e}"
        ))))
    })
}
