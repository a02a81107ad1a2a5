//! The writer task: group commit over one connection.
//!
//! It takes every round waiting (up to [`MAX_ROUND_OPS`] operations), sends `BEGIN`, one
//! prepared statement per update or removal and one per run of consecutive creates, and
//! `COMMIT`, without waiting between them (tokio-postgres sends a query when its future is
//! first polled, and [`in_order`] polls them all, in order, at once), and reads every answer
//! before telling anyone. Rounds never interleave: the order in which
//! rounds arrived is the order in which they commit.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::link::{Link, Session};
use super::{COMMIT_WAIT, PgError, describe};
use crate::group::{self, Refusal};
use crate::group::{WriteOp, WriteOutcome};
use crate::storage::StoreStats;

/// Operations gathered into one transaction at most (a single round is never split). With 64
/// callers one transaction rarely holds more; the bound keeps one commit's latency small.
const MAX_ROUND_OPS: usize = 1024;

/// Attempts of one round replayed alone after conflicts with other writers. A conflict needs
/// another writer touching the same names at the same moment; ten in a row means something is
/// wrong, and the caller gets an error rather than an endless wait.
const MAX_REPLAYS: u32 = 10;

pub(crate) type Reply = oneshot::Sender<Result<Vec<WriteOutcome>, PgError>>;

/// One caller's ordered round of writes.
pub(crate) struct Job {
    pub ops: Vec<WriteOp>,
    pub reply: Reply,
}

#[derive(Default)]
pub(crate) struct Stats {
    commits: AtomicU64,
    committed_calls: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> StoreStats {
        StoreStats {
            commits: self.commits.load(Ordering::Relaxed),
            committed_calls: self.committed_calls.load(Ordering::Relaxed),
        }
    }

    fn count(&self, calls: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.committed_calls
            .fetch_add(calls as u64, Ordering::Relaxed);
    }
}

/// An operation as the database will see it, or its answer when no statement is needed.
enum Planned {
    Known(WriteOutcome),
    Create {
        name: String,
        external_id: String,
    },
    Update {
        id: i64,
        name: Option<String>,
        external_id: Option<String>,
        /// Whether `name` follows SPEC §4; an invalid one is still accepted when it is the
        /// group's current name.
        name_valid: bool,
    },
    Remove {
        id: i64,
    },
}

/// Applies SPEC §4 and §14's rules that need no database: text with U+0000 (which PostgreSQL
/// cannot store) is refused as an invalid name or external id, and an id beyond `int8` names
/// no group.
fn plan(op: &WriteOp) -> Planned {
    let refuse = |refusal| Planned::Known(WriteOutcome::Refused(refusal));
    let external_ok = |e: &str| group::external_id_is_valid(e) && !e.contains('\0');
    match op {
        WriteOp::Create { name, external_id } => {
            if !group::name_is_valid(name) || name.contains('\0') {
                refuse(Refusal::InvalidName)
            } else if !external_ok(external_id) {
                refuse(Refusal::InvalidExternalId)
            } else {
                Planned::Create {
                    name: name.clone(),
                    external_id: external_id.clone(),
                }
            }
        }
        WriteOp::Update {
            id,
            name,
            external_id,
        } => match i64::try_from(*id) {
            _ if name.as_deref().is_some_and(|n| n.contains('\0')) => refuse(Refusal::InvalidName),
            _ if external_id.as_deref().is_some_and(|e| !external_ok(e)) => {
                refuse(Refusal::InvalidExternalId)
            }
            Ok(id) => Planned::Update {
                id,
                name_valid: name.as_deref().is_none_or(group::name_is_valid),
                name: name.clone(),
                external_id: external_id.clone(),
            },
            Err(_) => refuse(Refusal::NoSuchGroup),
        },
        WriteOp::Remove { id } => match i64::try_from(*id) {
            Ok(id) => Planned::Remove { id },
            Err(_) => refuse(Refusal::NoSuchGroup),
        },
    }
}

/// Why a transaction did not commit.
enum Failure {
    /// The server refused a statement and rolled the transaction back. `conflict` when another
    /// writer caused it: replaying it is expected to succeed.
    Rejected { conflict: bool, why: String },
    /// The connection was lost, or the commit was not confirmed in time: it may have happened.
    Unknown(String),
}

pub(crate) async fn run(
    link: Link,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    stats: std::sync::Arc<Stats>,
) {
    while let Some(first) = jobs.recv().await {
        let mut ops = first.ops.len();
        let mut round = vec![first];
        while ops < MAX_ROUND_OPS {
            match jobs.try_recv() {
                Ok(job) => {
                    ops += job.ops.len();
                    round.push(job);
                }
                Err(_) => break,
            }
        }
        commit_round(&link, round, &stats).await;
    }
}

/// Commits the rounds of `jobs` in one transaction and answers each.
async fn commit_round(link: &Link, jobs: Vec<Job>, stats: &Stats) {
    let plans: Vec<Vec<Planned>> = jobs
        .iter()
        .map(|j| j.ops.iter().map(plan).collect())
        .collect();
    let session = match link.session().await {
        Ok(session) => session,
        Err(e) => return answer_all(jobs, &e),
    };
    let all: Vec<&[Planned]> = plans.iter().map(Vec::as_slice).collect();
    match transaction(&session, &all).await {
        Ok(outcomes) => {
            stats.count(jobs.iter().map(|j| j.ops.len()).sum());
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(Failure::Unknown(why)) => {
            link.discard(&session);
            let rounds = jobs.len();
            tracing::error!(rounds, %why, "commit outcome unknown; its calls get an error");
            answer_all(jobs, &PgError::OutcomeUnknown(why));
        }
        Err(Failure::Rejected { conflict, why }) => {
            let rounds = jobs.len();
            tracing::debug!(conflict, %why, rounds, "rolled back; replaying one round per transaction");
            for (job, plan) in jobs.into_iter().zip(&plans) {
                let outcome = replay(link, plan, stats).await;
                if let Err(e) = &outcome {
                    tracing::error!(error = %e, "a replayed round failed");
                }
                let _ = job.reply.send(outcome);
            }
        }
    }
}

fn answer_all(jobs: Vec<Job>, e: &PgError) {
    for job in jobs {
        let _ = job.reply.send(Err(e.clone()));
    }
}

/// One round alone in its transaction, again while other writers conflict with it.
async fn replay(
    link: &Link,
    plan: &[Planned],
    stats: &Stats,
) -> Result<Vec<WriteOutcome>, PgError> {
    let mut why = String::new();
    for attempt in 0..MAX_REPLAYS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
        }
        let session = link.session().await?;
        match transaction(&session, &[plan]).await {
            Ok(mut outcomes) => {
                stats.count(plan.len());
                return Ok(outcomes.pop().unwrap_or_default());
            }
            Err(Failure::Rejected {
                conflict: true,
                why: again,
            }) => why = again,
            Err(Failure::Rejected {
                conflict: false,
                why,
            }) => return Err(PgError::Database(why)),
            Err(Failure::Unknown(why)) => {
                link.discard(&session);
                return Err(PgError::OutcomeUnknown(why));
            }
        }
    }
    Err(PgError::Database(format!(
        "still conflicting after {MAX_REPLAYS} attempts: {why}"
    )))
}

type Answer<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a>>;

/// `BEGIN`, the statements of `rounds` and `COMMIT` in one round trip; the outcomes of each
/// round once committed.
async fn transaction(
    session: &Session,
    rounds: &[&[Planned]],
) -> Result<Vec<Vec<WriteOutcome>>, Failure> {
    let client = &session.client;
    let flat: Vec<&Planned> = rounds.iter().flat_map(|round| round.iter()).collect();
    let pieces = pieces(&flat);
    let mut requests: Vec<Answer<'_>> = Vec::new();
    requests.push(Box::pin(async move {
        client.batch_execute("BEGIN").await.map(|()| Vec::new())
    }));
    requests.extend(pieces.iter().filter_map(|piece| statement(session, piece)));
    if requests.len() == 1 {
        return decode(rounds, &pieces, Vec::new());
    }
    requests.push(Box::pin(async move {
        client.batch_execute("COMMIT").await.map(|()| Vec::new())
    }));
    let Ok(mut answers) = tokio::time::timeout(COMMIT_WAIT, in_order(requests)).await else {
        return Err(Failure::Unknown(format!(
            "commit not confirmed within {COMMIT_WAIT:?}"
        )));
    };
    // The first refusal explains the rest: after it every statement fails with 25P02 and the
    // COMMIT rolls back without an error.
    let errors: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    if let Some(lost) = errors.iter().find(|e| e.code().is_none()) {
        return Err(Failure::Unknown(describe(*lost)));
    }
    let first = errors
        .iter()
        .find(|e| e.code() != Some(&SqlState::IN_FAILED_SQL_TRANSACTION))
        .or(errors.first());
    if let Some(e) = first {
        return Err(Failure::Rejected {
            conflict: e.code().is_some_and(is_conflict),
            why: describe(*e),
        });
    }
    answers.pop(); // COMMIT's
    let rows = answers.into_iter().skip(1).flatten().collect();
    decode(rounds, &pieces, rows)
}

/// The operations of a transaction cut into the pieces that get one statement each: a run of
/// consecutive creates (one multi-row `INSERT`: with 64 callers creating, a round is one
/// statement), or one update or removal. A piece whose answer is known gets none.
fn pieces<'p, 'f>(flat: &'f [&'p Planned]) -> Vec<&'f [&'p Planned]> {
    let is_create = |p: &&Planned| matches!(p, Planned::Create { .. });
    let mut pieces = Vec::new();
    let mut rest = flat;
    while let Some(first) = rest.first() {
        let len = match is_create(first) {
            true => rest.iter().take_while(|p| is_create(p)).count(),
            false => 1,
        };
        let (piece, after) = rest.split_at(len);
        pieces.push(piece);
        rest = after;
    }
    pieces
}

/// Awaits every request and returns their answers in order. Each is first polled, and so sent,
/// in order, all in the first poll: `futures::join_all` would not do for this, as past 30
/// futures it polls through `FuturesUnordered`, which yields after 32 polls, and the `COMMIT`
/// behind them would overtake the statements still unsent (which would then run outside the
/// transaction, each committed alone).
async fn in_order<T>(mut requests: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut answers: Vec<Option<T>> = requests.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (request, answer) in requests.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none() {
                match request.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *answer = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    answers.into_iter().flatten().collect()
}

/// Errors that another writer caused and a replay resolves.
fn is_conflict(code: &SqlState) -> bool {
    [
        SqlState::UNIQUE_VIOLATION,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
    ]
    .contains(code)
}

/// The statement for `piece`, sent when first polled; `None` when its answer is known.
fn statement<'a>(session: &'a Session, piece: &[&'a Planned]) -> Option<Answer<'a>> {
    let (client, s) = (&session.client, &session.statements);
    Some(match piece {
        [Planned::Known(_)] | [] => return None,
        [Planned::Create { name, external_id }] => {
            Box::pin(async move { client.query(&s.create, &[name, external_id]).await })
        }
        [
            Planned::Update {
                id,
                name,
                external_id,
                name_valid,
            },
        ] => Box::pin(async move {
            let params: [&(dyn ToSql + Sync); 4] = [id, name, external_id, name_valid];
            client.query(&s.update, &params).await
        }),
        [Planned::Remove { id }] => Box::pin(async move { client.query(&s.remove, &[id]).await }),
        creates => {
            let (mut names, mut external_ids) = (Vec::new(), Vec::new());
            for planned in creates {
                if let Planned::Create { name, external_id } = planned {
                    names.push(name.as_str());
                    external_ids.push(external_id.as_str());
                }
            }
            Box::pin(async move { client.query(&s.create_many, &[&names, &external_ids]).await })
        }
    })
}

/// The outcome of each operation of each round, from the rows of each piece's statement.
fn decode(
    rounds: &[&[Planned]],
    pieces: &[&[&Planned]],
    rows: Vec<Vec<Row>>,
) -> Result<Vec<Vec<WriteOutcome>>, Failure> {
    let mut rows = rows.into_iter();
    let mut flat = Vec::new();
    for piece in pieces {
        if let [Planned::Known(outcome)] = piece {
            flat.push(*outcome);
            continue;
        }
        let Some(rows) = rows.next() else {
            return Err(unreadable("a statement's answer is missing"));
        };
        match piece {
            [one] => flat.push(outcome(one, &rows)?),
            creates => flat.extend(created(creates, &rows)?),
        }
    }
    let mut flat = flat.into_iter();
    let outcomes = rounds
        .iter()
        .map(|round| flat.by_ref().take(round.len()).collect())
        .collect();
    Ok(outcomes)
}

/// The outcomes of a run of creates from the `(id, name)` rows of those inserted: a name
/// inserted goes to its first create, a later create of the same name finds it taken.
fn created(creates: &[&Planned], rows: &[Row]) -> Result<Vec<WriteOutcome>, Failure> {
    let column = |e: tokio_postgres::Error| unreadable(&describe(&e));
    let mut ids = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get(0).map_err(column)?;
        let name: String = row.try_get(1).map_err(column)?;
        ids.insert(name, id);
    }
    let mut outcomes = Vec::with_capacity(creates.len());
    for planned in creates {
        let Planned::Create { name, .. } = planned else {
            return Err(unreadable("a run of creates holds another operation"));
        };
        outcomes.push(match ids.remove(name) {
            Some(id) => WriteOutcome::Created(
                u64::try_from(id).map_err(|_| unreadable("the new id is negative"))?,
            ),
            None => WriteOutcome::Refused(Refusal::NameTaken),
        });
    }
    Ok(outcomes)
}

/// An answer that cannot be read after a commit: the writes happened, what they did is unknown.
fn unreadable(why: &str) -> Failure {
    Failure::Unknown(format!("committed, but {why}"))
}

fn outcome(planned: &Planned, rows: &[Row]) -> Result<WriteOutcome, Failure> {
    let column = |e: tokio_postgres::Error| unreadable(&describe(&e));
    match planned {
        Planned::Known(outcome) => Ok(*outcome),
        Planned::Create { .. } => match rows.first() {
            None => Ok(WriteOutcome::Refused(Refusal::NameTaken)),
            Some(row) => {
                let id: i64 = row.try_get(0).map_err(column)?;
                let id = u64::try_from(id).map_err(|_| unreadable("the new id is negative"))?;
                Ok(WriteOutcome::Created(id))
            }
        },
        Planned::Update {
            name, name_valid, ..
        } => {
            let row = rows
                .first()
                .ok_or_else(|| unreadable("an update gave no row"))?;
            let found: bool = row.try_get(0).map_err(column)?;
            let changed: bool = row.try_get(1).map_err(column)?;
            let taken: bool = row.try_get(2).map_err(column)?;
            let current: Option<String> = row.try_get(3).map_err(column)?;
            Ok(match () {
                () if !found => WriteOutcome::Refused(Refusal::NoSuchGroup),
                () if changed => WriteOutcome::Applied,
                () if !name_valid && *name != current => {
                    WriteOutcome::Refused(Refusal::InvalidName)
                }
                () if taken => WriteOutcome::Refused(Refusal::NameTaken),
                // Removed by another writer between the statement's two looks at it.
                () => WriteOutcome::Refused(Refusal::NoSuchGroup),
            })
        }
        Planned::Remove { .. } => Ok(match rows.len() {
            0 => WriteOutcome::Refused(Refusal::NoSuchGroup),
            _ => WriteOutcome::Applied,
        }),
    }
}
