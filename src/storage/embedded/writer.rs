//! The writer thread: the only one that changes the database. It takes every write waiting,
//! applies each as it arrives to one transaction, makes their changes durable with one record
//! in the commit log (group commit: one sync for many calls, see [`super::log`]), commits the
//! transaction, updates the mirror, and only then answers each caller.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use super::contain::contained;
use super::log::{CHECKPOINT_BYTES, CommitLog, Entry, Recovered, checkpoint, recover};
use super::mirror::Change;
use super::names::NameIndex;
use super::schema::{GROUPS, META, NEXT_ID_KEY, next_id};
use super::{Shared, StoreError};
use crate::group::{self, Refusal, WriteOp, WriteOutcome};

/// Calls folded into one commit at most, so one commit's latency stays bounded.
const MAX_CALLS_PER_COMMIT: usize = 4096;

/// The longest a commit waits for more calls to join it; small next to an fsync. With 64
/// clients creating one group at a time, 50 µs measured 85k creates/s against 78k at 100 µs and
/// 73k at 200 µs (longer waits make one big commit, but leave the disk idle while the clients
/// turn around); batches and mixed loads were as fast or faster.
const GATHER_WAIT: Duration = Duration::from_micros(50);

/// How long writes must pause before the writer checkpoints the commit log: soon after writes
/// stop, the database file alone holds them all.
const IDLE_CHECKPOINT: Duration = Duration::from_millis(500);

pub(super) type Reply = oneshot::Sender<Result<Vec<WriteOutcome>, StoreError>>;

pub(super) struct Job {
    pub(super) ops: Vec<WriteOp>,
    pub(super) reply: Reply,
}

/// Commits writes until the store closes; then checkpoints the log and removes it (a clean
/// close), unless a failure or a fault means the log may still hold what the database lacks.
pub(super) fn write_loop(shared: &Shared, jobs: &mpsc::Receiver<Job>, mut log: CommitLog) {
    let mut names = shared.load();
    let (mut last_jobs, mut failed) = (1, false);
    loop {
        let first = match jobs.recv_timeout(IDLE_CHECKPOINT) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                if log.written() > 0 && !failed && shared.fault().is_none() {
                    failed = !checkpoint_log(shared, &mut log);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(fault) = shared.fault() {
            refuse(first, jobs, &fault);
            continue;
        }
        let started = Instant::now();
        if failed {
            match reopen(shared, &mut log) {
                Ok(()) => tracing::info!("database reopened after a failed commit"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot reopen the database");
                    // A reopen verifies the file and the log: damage found there ends writes too.
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
            (Some(names), Ok(db)) => commit_round(&db, &mut log, first, jobs, last_jobs, names),
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
        if !failed && log.written() >= CHECKPOINT_BYTES {
            failed = !checkpoint_log(shared, &mut log);
        }
    }
    if failed || shared.fault().is_some() {
        tracing::warn!("the commit log is kept: the next open applies it");
    } else if log.written() > 0 && !checkpoint_log(shared, &mut log) {
        tracing::warn!("the commit log is kept: the next open applies it");
    } else {
        drop(log);
        if let Err(e) = (shared.remove_log)() {
            tracing::warn!(error = %e, "cannot remove the checkpointed commit log");
        }
    }
}

/// Makes the database hold the whole log durably (see [`checkpoint`]); whether it could. A
/// failed checkpoint leaves the log as it was, and the database to be reopened.
fn checkpoint_log(shared: &Shared, log: &mut CommitLog) -> bool {
    let started = Instant::now();
    let done = shared
        .db()
        .and_then(|db| contained("a checkpoint", || checkpoint(&db, log)));
    match done {
        Ok(()) => {
            tracing::debug!(
                ms = started.elapsed().as_millis(),
                "commit log checkpointed"
            );
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "checkpoint failed; the commit log keeps the commits");
            shared.distrust(&e);
            false
        }
    }
}

/// Reopens the database after a failed commit and applies the commit log to it: a commit
/// that failed after its record was synced is in the database afterwards.
fn reopen(shared: &Shared, log: &mut CommitLog) -> Result<(), redb::Error> {
    shared.reopen()?;
    let db = shared.db()?;
    match contained("the commit log's recovery", || recover(&db, log, false))? {
        Recovered::Applied(0) => Ok(()),
        Recovered::Applied(records) => {
            tracing::info!(records, "commits applied from the commit log");
            shared.refresh();
            Ok(())
        }
        Recovered::Damaged(at) => Err(redb::Error::Corrupted(format!(
            "the commit log is damaged at byte {at}"
        ))),
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
    log: &mut CommitLog,
    first: Job,
    jobs: &mpsc::Receiver<Job>,
    last_jobs: usize,
    names: &mut NameIndex,
) -> (Vec<Job>, Result<Committed, redb::Error>) {
    let mut batch = vec![first];
    let committed = contained("a commit", || {
        apply_round(db, log, &mut batch, jobs, last_jobs, names)
    });
    (batch, committed)
}

/// Applies the jobs to one transaction, syncs their changes to the log, and commits the
/// transaction without a sync of its own (the log made it durable).
fn apply_round(
    db: &Database,
    log: &mut CommitLog,
    batch: &mut Vec<Job>,
    jobs: &mpsc::Receiver<Job>,
    last_jobs: usize,
    names: &mut NameIndex,
) -> Result<Committed, redb::Error> {
    let deadline = Instant::now() + GATHER_WAIT;
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)?;
    let (committed, entry, next_id) = {
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
        ((outcomes, tables.changes), tables.entry, tables.next_id)
    };
    if entry.is_empty() {
        txn.abort()?;
    } else {
        log.append(next_id, &entry)?;
        if let Err(e) = txn.commit() {
            log.retract();
            return Err(e.into());
        }
    }
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
    /// The same, for the commit log.
    entry: Entry,
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
            entry: Entry::default(),
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
                self.entry.put(id, name, external_id);
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
                if !group::rename_is_valid(&old_name, new_name) {
                    return Ok(WriteOutcome::Refused(Refusal::InvalidName));
                }
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
                self.entry.put(*id, new_name, new_external_id);
                Ok(WriteOutcome::Applied)
            }
            WriteOp::Remove { id } => {
                let Some(old_name) = groups.remove(id)?.map(|r| r.value().0.to_owned()) else {
                    return Ok(WriteOutcome::Refused(Refusal::NoSuchGroup));
                };
                names.remove(&old_name);
                self.removed = true;
                self.changes.push(Change::remove(*id));
                self.entry.remove(*id);
                Ok(WriteOutcome::Applied)
            }
        }
    }
}
