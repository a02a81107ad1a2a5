//! The writer thread: the only one that changes the groups. It takes every write waiting,
//! decides each call against the groups in memory (the mirror and the name index), makes the
//! round's changes durable with one record in the commit log (group commit: one sync for many
//! calls, see [`super::log`]), applies them to the mirror, and only then answers each caller.
//!
//! The database file is brought up to date in batches, not once per round: the changes the log
//! holds and the database does not yet are kept ([`Unapplied`]) and applied in one transaction
//! once there are [`APPLY_AFTER_CHANGES`] of them, at a checkpoint, or when a reader of the
//! database asks for it (`getAllGroups` and dumps read a snapshot of the database; `getGroup`
//! reads the mirror). Why: with a redb transaction per round, redb took over a third of the
//! writer's time under the mixed load (its commit a fifth, the inserts a seventh), all of it
//! between a round's arrival and its answers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::contain::contained;
use super::log::{CHECKPOINT_BYTES, CommitLog, Entry, Recovered, apply, checkpoint, recover};
use super::mirror::{Change, IdHashing, Mirror};
use super::names::NameIndex;
use super::schema::{GROUPS, META, NEXT_ID_KEY};
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

/// Changes the log may hold that the database does not, before the writer applies them to it.
pub(super) const APPLY_AFTER_CHANGES: usize = 4096;

pub(super) type Reply = oneshot::Sender<Result<Vec<WriteOutcome>, StoreError>>;

pub(super) struct Job {
    pub(super) ops: Vec<WriteOp>,
    pub(super) reply: Reply,
    /// The caller reads the database next: it is answered once the database holds every change
    /// acknowledged so far.
    pub(super) catch_up: bool,
}

/// What the writer knows of the groups besides the mirror.
struct Known {
    names: NameIndex,
    /// The id the next create gets.
    next_id: u64,
}

/// Changes made durable by the log that the database does not hold yet, in order.
#[derive(Default)]
struct Unapplied {
    entry: Entry,
    changes: usize,
    /// Whether one of them removes a group: then the id counter is written (see [`super`]).
    removed: bool,
}

/// The writer's state between rounds.
struct Writer<'s> {
    shared: &'s Shared,
    log: CommitLog,
    /// `None` until the groups could be loaded.
    known: Option<Known>,
    unapplied: Unapplied,
    /// A commit or an apply failed: the database is reopened, and the log applied to it,
    /// before the next round.
    failed: bool,
    /// Reused by every round (see [`Round::touched`]).
    touched: HashMap<u64, usize, IdHashing>,
}

/// Commits writes until the store closes; then checkpoints the log and removes it (a clean
/// close), unless a failure or a fault means the log may still hold what the database lacks.
pub(super) fn write_loop(shared: &Shared, jobs: &mpsc::Receiver<Job>, log: CommitLog) {
    let mut writer = Writer {
        shared,
        log,
        known: load(shared),
        unapplied: Unapplied::default(),
        failed: false,
        touched: HashMap::default(),
    };
    let mut last_jobs = 1;
    loop {
        let first = match jobs.recv_timeout(IDLE_CHECKPOINT) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                if writer.log.written() > 0 && !writer.failed && shared.fault().is_none() {
                    writer.failed = !writer.checkpoint();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some(fault) = shared.fault() {
            refuse(first, jobs, &StoreError::Untrusted(fault));
            continue;
        }
        if writer.failed {
            match writer.reopen() {
                Ok(()) => tracing::info!("database reopened after a failed commit"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot reopen the database; writes fail until it can be");
                    // A reopen verifies the file and the log: damage found there ends writes too.
                    shared.distrust(&e);
                    refuse(first, jobs, &StoreError::from(e));
                    continue;
                }
            }
        }
        if writer.known.is_none() {
            writer.known = load(shared);
        }
        last_jobs = writer.round(first, jobs, last_jobs);
    }
    if writer.failed || shared.fault().is_some() {
        tracing::warn!("the commit log is kept: the next open applies it");
    } else if writer.log.written() > 0 && !writer.checkpoint() {
        tracing::warn!("the commit log is kept: the next open applies it");
    } else {
        drop(writer);
        if let Err(e) = (shared.remove_log)() {
            tracing::warn!(error = %e, "cannot remove the checkpointed commit log");
        }
    }
}

/// The groups as the database holds them (see [`Shared::load`]).
fn load(shared: &Shared) -> Option<Known> {
    shared
        .load()
        .map(|(names, next_id)| Known { names, next_id })
}

impl Writer<'_> {
    /// Commits `first` and the jobs taken with it, and answers them; how many jobs that was.
    fn round(&mut self, first: Job, jobs: &mpsc::Receiver<Job>, last_jobs: usize) -> usize {
        let started = Instant::now();
        let mut batch = vec![first];
        let committed = match self.known.as_mut() {
            Some(known) => contained("a commit", || {
                commit_round(
                    self.shared,
                    &mut self.log,
                    known,
                    &mut self.touched,
                    &mut batch,
                    jobs,
                    last_jobs,
                )
            }),
            None => Err(redb::Error::Io(std::io::Error::other(
                "the groups could not be loaded",
            ))),
        };
        let calls: usize = batch.iter().map(|job| job.ops.len()).sum();
        let durable = started.elapsed().as_micros();
        let answers = match committed {
            Ok(Committed {
                outcomes,
                changes,
                entry,
                removed,
            }) => {
                if !entry.is_empty() {
                    self.unapplied.entry.extend(&entry);
                    self.unapplied.changes += changes.len();
                    self.unapplied.removed |= removed;
                    self.shared.apply(changes);
                    self.shared.behind.store(true, Ordering::Release);
                    self.shared.commits.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .committed_calls
                        .fetch_add(calls as u64, Ordering::Relaxed);
                }
                let wanted = batch.iter().any(|job| job.catch_up);
                let applied = if wanted || self.unapplied.changes >= APPLY_AFTER_CHANGES {
                    self.apply_to_database().map_err(StoreError::from)
                } else {
                    Ok(())
                };
                outcomes
                    .into_iter()
                    .zip(&batch)
                    .map(|(outcome, job)| match (&applied, job.catch_up) {
                        (Err(e), true) => Err(e.clone()),
                        _ => Ok(outcome),
                    })
                    .collect()
            }
            Err(e) => {
                tracing::error!(error = %e, calls, "commit failed; its calls are answered with an error");
                self.fail(&e);
                let e = StoreError::from(e);
                vec![Err(e); batch.len()]
            }
        };
        tracing::trace!(
            jobs = batch.len(),
            calls,
            durable,
            answered = started.elapsed().as_micros(),
            "commit"
        );
        let taken = batch.len();
        for (job, answer) in batch.into_iter().zip(answers) {
            let _ = job.reply.send(answer);
        }
        if !self.failed && self.log.written() >= CHECKPOINT_BYTES {
            self.failed = !self.checkpoint();
        }
        taken
    }

    /// After a failed round: the name index may hold its changes, so it is built again from
    /// the mirror, which holds only what was made durable; the database is reopened before the
    /// next round.
    fn fail(&mut self, e: &redb::Error) {
        self.failed = true;
        self.shared.distrust(e);
        let rebuilt = match self.shared.mirror.read() {
            Ok(mirror) => mirror.as_ref().map(NameIndex::of),
            Err(_) => None,
        };
        match (rebuilt, self.known.as_mut()) {
            (Some(names), Some(known)) => known.names = names,
            _ => self.known = None,
        }
    }

    /// Applies the changes the database lacks to it, in one transaction committed without a
    /// sync of its own (the log holds them durably), and gives readers a snapshot of it. A
    /// failure leaves them to the reopen before the next round, which applies the log.
    fn apply_to_database(&mut self) -> Result<(), redb::Error> {
        if self.unapplied.changes == 0 {
            return Ok(());
        }
        let started = Instant::now();
        let next_id = self.known.as_ref().map_or(1, |known| known.next_id);
        let applied = self.shared.db().and_then(|db| {
            contained("bringing the database up to date", || {
                apply_changes(&db, &self.unapplied, next_id)
            })
        });
        if let Err(e) = applied {
            tracing::error!(error = %e, "cannot apply the logged changes to the database");
            self.failed = true;
            self.shared.distrust(&e);
            return Err(e);
        }
        tracing::debug!(
            changes = self.unapplied.changes,
            us = started.elapsed().as_micros(),
            "logged changes applied to the database"
        );
        self.unapplied = Unapplied::default();
        self.shared.refresh();
        self.shared.behind.store(false, Ordering::Release);
        Ok(())
    }

    /// Makes the database hold the whole log durably (see [`checkpoint`]); whether it could. A
    /// failed checkpoint leaves the log as it was, and the database to be reopened.
    fn checkpoint(&mut self) -> bool {
        let started = Instant::now();
        if self.apply_to_database().is_err() {
            return false;
        }
        let done = self
            .shared
            .db()
            .and_then(|db| contained("a checkpoint", || checkpoint(&db, &mut self.log)));
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
                self.shared.distrust(&e);
                false
            }
        }
    }

    /// Reopens the database after a failure and applies the commit log to it: afterwards it
    /// holds every change the log made durable, and none of a round that failed.
    fn reopen(&mut self) -> Result<(), redb::Error> {
        self.shared.reopen()?;
        let db = self.shared.db()?;
        match contained("the commit log's recovery", || {
            recover(&db, &mut self.log, false)
        })? {
            Recovered::Applied(records) => {
                if records > 0 {
                    tracing::info!(records, "commits applied from the commit log");
                    self.shared.refresh();
                }
                self.unapplied = Unapplied::default();
                self.shared.behind.store(false, Ordering::Release);
                self.failed = false;
                Ok(())
            }
            Recovered::Damaged(at) => Err(redb::Error::Corrupted(format!(
                "the commit log is damaged at byte {at}"
            ))),
        }
    }
}

/// Answers `first` and every job queued behind it with `error`. The queue is taken before
/// anyone is answered: a caller that sends again once answered (the disk may work by then)
/// is not refused by this failure.
fn refuse(first: Job, jobs: &mpsc::Receiver<Job>, error: &StoreError) {
    let queued: Vec<Job> = std::iter::once(first).chain(jobs.try_iter()).collect();
    for job in queued {
        let _ = job.reply.send(Err(error.clone()));
    }
}

/// Applies `unapplied` to the database in one transaction without a sync.
fn apply_changes(db: &Database, unapplied: &Unapplied, next_id: u64) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)?;
    {
        let mut groups = txn.open_table(GROUPS)?;
        for change in unapplied.entry.changes() {
            let change = change.ok_or_else(|| {
                redb::Error::Corrupted("the writer's own changes do not decode".into())
            })?;
            apply(&mut groups, change)?;
        }
        if unapplied.removed {
            txn.open_table(META)?.insert(NEXT_ID_KEY, next_id)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// What a round made durable: each job's outcomes, and its changes for the mirror and (as the
/// log encoded them) for the database.
struct Committed {
    outcomes: Vec<Vec<WriteOutcome>>,
    changes: Vec<Change>,
    entry: Entry,
    removed: bool,
}

/// One commit: decides `batch`'s first job, then each job queued behind it as it is taken, and
/// makes their changes durable in the log. When the previous commit held more jobs than are
/// here, their senders are most likely about to send again (they were just answered), so it
/// waits up to [`GATHER_WAIT`] for as many: one commit for them all instead of two half-size
/// ones. The jobs are decided while it waits, so the wait costs the commit nothing.
///
/// `known` changes with the ops as they are decided; `fail` rebuilds it when the round fails.
fn commit_round(
    shared: &Shared,
    log: &mut CommitLog,
    known: &mut Known,
    touched: &mut HashMap<u64, usize, IdHashing>,
    batch: &mut Vec<Job>,
    jobs: &mpsc::Receiver<Job>,
    last_jobs: usize,
) -> Result<Committed, redb::Error> {
    let deadline = Instant::now() + GATHER_WAIT;
    let unavailable = || redb::Error::Io(std::io::Error::other("the groups are not in memory"));
    let mirror = shared.mirror.read().map_err(|_| unavailable())?;
    let mut round = Round {
        mirror: mirror.as_ref().ok_or_else(unavailable)?,
        names: &mut known.names,
        next_id: known.next_id,
        removed: false,
        changes: Vec::new(),
        touched,
        entry: Entry::default(),
    };
    round.touched.clear();
    let mut outcomes = Vec::with_capacity(last_jobs);
    let mut calls = 0;
    let mut next = 0;
    loop {
        while let Some(job) = batch.get(next) {
            outcomes.push(job.ops.iter().map(|op| round.decide(op)).collect());
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
    let Round {
        next_id,
        removed,
        changes,
        entry,
        ..
    } = round;
    drop(mirror);
    if !entry.is_empty() {
        log.append(next_id, &entry)?;
    }
    known.next_id = next_id;
    Ok(Committed {
        outcomes,
        changes,
        entry,
        removed,
    })
}

/// The calls of one round, decided against the groups as they stand after the calls before.
struct Round<'m, 'n, 't> {
    /// Every group as of the last durable round.
    mirror: &'m Mirror,
    /// Changed as the calls are decided: a name taken by one call is taken for the next.
    names: &'n mut NameIndex,
    next_id: u64,
    removed: bool,
    /// What the calls changed, for the mirror.
    changes: Vec<Change>,
    /// The index in `changes` of the last change to each group the round changed: what later
    /// calls of the round see instead of the mirror.
    touched: &'t mut HashMap<u64, usize, IdHashing>,
    /// The same changes, for the commit log.
    entry: Entry,
}

impl Round<'_, '_, '_> {
    /// Group `id`'s name and external id as the calls decided so far leave them.
    fn current(&self, id: u64) -> Option<(&str, &str)> {
        match self.touched.get(&id) {
            Some(&i) => self.changes.get(i).and_then(Change::text),
            None => self.mirror.get(id).map(|g| (g.name, g.external_id)),
        }
    }

    fn record(&mut self, change: Change) {
        self.touched.insert(change.id(), self.changes.len());
        self.changes.push(change);
    }

    fn decide(&mut self, op: &WriteOp) -> WriteOutcome {
        match op {
            WriteOp::Create { name, external_id } => {
                let id = self.next_id;
                if !self.names.insert_new(name, id) {
                    return WriteOutcome::Refused(Refusal::NameTaken);
                }
                self.next_id += 1;
                self.entry.put(id, name, external_id);
                self.record(Change::put(id, name, external_id));
                WriteOutcome::Created(id)
            }
            WriteOp::Update {
                id,
                name,
                external_id,
            } => {
                let Some((old_name, old_external_id)) = self
                    .current(*id)
                    .map(|(name, external_id)| (name.to_owned(), external_id.to_owned()))
                else {
                    return WriteOutcome::Refused(Refusal::NoSuchGroup);
                };
                let new_name = name.as_deref().unwrap_or(&old_name);
                if !group::rename_is_valid(&old_name, new_name) {
                    return WriteOutcome::Refused(Refusal::InvalidName);
                }
                if new_name != old_name {
                    if !self.names.insert_new(new_name, *id) {
                        return WriteOutcome::Refused(Refusal::NameTaken);
                    }
                    self.names.remove(&old_name);
                }
                let new_external_id = external_id.as_deref().unwrap_or(&old_external_id);
                self.entry.put(*id, new_name, new_external_id);
                self.record(Change::put(*id, new_name, new_external_id));
                WriteOutcome::Applied
            }
            WriteOp::Remove { id } => {
                let Some(old_name) = self.current(*id).map(|(name, _)| name.to_owned()) else {
                    return WriteOutcome::Refused(Refusal::NoSuchGroup);
                };
                self.names.remove(&old_name);
                self.removed = true;
                self.entry.remove(*id);
                self.record(Change::remove(*id));
                WriteOutcome::Applied
            }
        }
    }
}
