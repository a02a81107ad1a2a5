//! A restore into PostgreSQL (SPEC §13, §14): a dump's groups inserted with their own ids into
//! an empty `groups` table, and the table's sequence set so that the next id is the dump's, all
//! in one transaction: a refusal or a failure at any point writes nothing.
//!
//! The table is locked against other writers (groupd processes, Kanboard) before it is found
//! empty, so no row can slip in between the check and the inserts.

use tokio_postgres::Transaction;

use super::link::Session;
use super::{COMMIT_WAIT, PgError, PgStore};
use crate::group::Group;

/// Rows per `INSERT`: one statement per chunk keeps each message a few hundred kilobytes and
/// lets a large restore show its progress.
const ROWS_PER_STATEMENT: usize = 10_000;

/// Blocks every other writer (and other restores) until the transaction ends; readers go on.
const LOCK: &str = "LOCK TABLE groups IN SHARE ROW EXCLUSIVE MODE";

const COUNT: &str = "SELECT count(*) FROM groups";

/// Ids passed as `int8` are cast to the table's id type on insert; one beyond it (Kanboard's
/// `SERIAL` is 32-bit) fails the statement and so the restore.
const INSERT: &str = "INSERT INTO groups (id, name, external_id) \
     SELECT * FROM unnest($1::int8[], $2::text[], $3::text[])";

/// After this, `nextval` hands out `$1` and `last_value` reads `$1 - 1`, which is what a dump
/// reads back as its next id (`link::DUMP`). For `$1 = 1` the sequence is left unused, as a new
/// table's is. NULL when the id's sequence is not owned by the column.
const SET_NEXT_ID: &str = "SELECT setval(pg_get_serial_sequence('groups', 'id'), \
     GREATEST($1::int8 - 1, 1), $1::int8 > 1)";

impl PgStore {
    /// Inserts `groups` (valid, with unique names, ids increasing and below `next_id`) with
    /// their ids into the empty table and sets its sequence so the next id is `next_id`, in one
    /// transaction; `progress` is told how many groups are written so far. A table holding any
    /// row is refused ([`PgError::NotEmpty`]).
    pub async fn restore(
        &self,
        next_id: u64,
        groups: &[Group],
        mut progress: impl FnMut(usize),
    ) -> Result<(), PgError> {
        let next_id = i64::try_from(next_id)
            .map_err(|_| PgError::Database(format!("next id {next_id} is beyond bigint")))?;
        let failed = |e: tokio_postgres::Error| PgError::from_postgres("restore", &e);
        let mut session = Session::open(&self.target).await?;
        let tx = session.client.transaction().await.map_err(failed)?;
        tx.batch_execute(LOCK).await.map_err(failed)?;
        let rows: i64 = tx
            .query_one(COUNT, &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(failed)?;
        if rows > 0 {
            return Err(PgError::NotEmpty(rows)); // dropping `tx` rolls it back
        }
        let mut written = 0;
        for chunk in groups.chunks(ROWS_PER_STATEMENT) {
            insert(&tx, chunk).await?;
            written += chunk.len();
            progress(written);
        }
        let set: Option<i64> = tx
            .query_one(SET_NEXT_ID, &[&next_id])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(failed)?;
        if set.is_none() {
            return Err(PgError::Schema(
                "the id column of table groups has no sequence of its own \
                 (pg_get_serial_sequence('groups', 'id') is null): cannot set the next id"
                    .to_owned(),
            ));
        }
        match tokio::time::timeout(COMMIT_WAIT, tx.commit()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.code().is_some() => Err(failed(e)),
            Ok(Err(e)) => Err(PgError::OutcomeUnknown(super::describe(&e))),
            Err(_) => Err(PgError::OutcomeUnknown(format!(
                "the commit was not confirmed within {COMMIT_WAIT:?}"
            ))),
        }
    }
}

async fn insert(tx: &Transaction<'_>, groups: &[Group]) -> Result<(), PgError> {
    let mut ids = Vec::with_capacity(groups.len());
    for group in groups {
        let id = i64::try_from(group.id)
            .map_err(|_| PgError::Database(format!("group id {} is beyond bigint", group.id)))?;
        ids.push(id);
    }
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let external_ids: Vec<&str> = groups.iter().map(|g| g.external_id.as_str()).collect();
    tx.execute(INSERT, &[&ids, &names, &external_ids])
        .await
        .map_err(|e| PgError::from_postgres("restore", &e))?;
    Ok(())
}
