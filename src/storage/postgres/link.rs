//! One connection slot: a session with its prepared statements, opened on demand and opened
//! again after it is lost, with a backoff between failed attempts.
//!
//! Reconnection is driven by the calls: a call that finds the session closed opens a new one
//! (the first attempt after a loss is immediate), and after a failed attempt calls fail at once
//! until the backoff has passed, so an outage costs clients an error, not a wait. No call waits
//! for a session longer than [`CONNECTION_WAIT`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Statement};

use super::url::Target;
use super::{CONNECTION_WAIT, PgError};

/// The first pause after a failed attempt to connect; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between attempts (SPEC §14): service is back within this of a writable
/// primary being reachable.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// `synchronous_commit` levels that acknowledge a commit before it is on the primary's disk
/// (`local` and `remote_write` survive a primary crash but not what SPEC §14 asks of a
/// failover). groupd raises them to `on` on its own sessions.
const WEAK_COMMIT_LEVELS: [&str; 3] = ["off", "local", "remote_write"];

/// The statements a session prepares once. Ids are passed as `int8` and compared with the
/// table's integer id (`int4` in Kanboard's schema) through the cross-type btree operators, so
/// the primary key index serves them whatever the id's width.
pub(crate) struct Statements {
    /// `(name, external_id)` → the new id, or no row when the name is taken.
    pub create: Statement,
    /// `(names[], external_ids[])` → `(id, name)` of those inserted, ids in the arrays' order.
    pub create_many: Statement,
    /// `(id, name?, external_id?, name_valid)` → `(found, changed, taken, current_name)`.
    pub update: Statement,
    /// `(id)` → one row when removed.
    pub remove: Statement,
    /// `(ids[])` → `(id, name, external_id)` of those that exist.
    pub get_many: Statement,
    /// `()` → every `(id, name, external_id)` by the bytes of the name.
    pub all: Statement,
    /// `()` → `(next_id, id, name, external_id)` by id, from one snapshot; one row with a null
    /// id when there are no groups.
    pub dump: Statement,
}

/// A name already taken draws no id: the row is not even formed, so the sequence is not asked
/// (an `ON CONFLICT` alone draws one first). Only a race with another writer's uncommitted
/// insert of the same name, settled by `ON CONFLICT`, uses an id up.
const CREATE: &str = "INSERT INTO groups (name, external_id) \
     SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM groups WHERE name = $1) \
     ON CONFLICT (name) DO NOTHING RETURNING id::int8";

/// The rows are inserted, and their ids drawn, in the order of the arrays. A name that appears
/// twice is inserted once, at its first place, and a name already taken draws no id (as for
/// [`CREATE`]); `ON CONFLICT` settles only races with other writers.
const CREATE_MANY: &str = "INSERT INTO groups (name, external_id) \
     SELECT n, e FROM ( \
         SELECT n, e, i, row_number() OVER (PARTITION BY n ORDER BY i) AS first \
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t (n, e, i)) AS t \
     WHERE first = 1 AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.name = t.n) ORDER BY i \
     ON CONFLICT (name) DO NOTHING RETURNING id::int8, name::text";

/// One statement, so that a round stays one round trip. A rename to the group's current name is
/// accepted whatever its length (SPEC §14: Kanboard may have written it); another invalid name,
/// or one another group has, changes nothing, and the four columns say which case it was.
const UPDATE: &str = "WITH target AS (SELECT name FROM groups WHERE id = $1), \
     changed AS ( \
       UPDATE groups SET name = COALESCE($2, name), external_id = COALESCE($3, external_id) \
       WHERE id = $1 AND ($2 IS NULL OR name = $2 \
         OR ($4 AND NOT EXISTS (SELECT 1 FROM groups WHERE name = $2))) \
       RETURNING 1) \
     SELECT EXISTS (SELECT 1 FROM target), EXISTS (SELECT 1 FROM changed), \
       EXISTS (SELECT 1 FROM groups WHERE name = $2 AND id <> $1), \
       (SELECT name::text FROM target)";

const REMOVE: &str = "DELETE FROM groups WHERE id = $1 RETURNING 1";

const GET_MANY: &str = "SELECT id::int8, name::text, COALESCE(external_id, '')::text \
     FROM groups WHERE id = ANY ($1)";

const ALL: &str = "SELECT id::int8, name::text, COALESCE(external_id, '')::text \
     FROM groups ORDER BY name COLLATE \"C\"";

/// The next id is the larger of the sequence's (as last written: it may be ahead of what was
/// handed out, never behind) and the highest id's, plus one; ids are never reused (SPEC §14).
const DUMP: &str = "SELECT n.next_id, g.id::int8, g.name::text, COALESCE(g.external_id, '')::text \
     FROM (SELECT GREATEST( \
         COALESCE((SELECT last_value FROM pg_sequences \
             WHERE format('%I.%I', schemaname, sequencename) = pg_get_serial_sequence('groups', 'id')), 0), \
         COALESCE((SELECT MAX(id) FROM groups), 0))::int8 + 1 AS next_id) n \
     LEFT JOIN groups g ON true ORDER BY g.id";

/// An open session with its statements prepared.
pub(crate) struct Session {
    pub client: Client,
    pub statements: Statements,
}

impl Session {
    /// Connects to the first host of the URL that takes the session (tokio-postgres checks
    /// `target_session_attrs` itself), then makes commits durable and prepares the statements.
    pub async fn open(target: &Target) -> Result<Session, PgError> {
        let client = connect(target).await?;
        let failed = |e: tokio_postgres::Error| PgError::from_postgres("session set-up", &e);
        let level = client
            .query_one("SELECT current_setting('synchronous_commit')", &[])
            .await
            .map_err(failed)?;
        let level: String = level.try_get(0).map_err(failed)?;
        if WEAK_COMMIT_LEVELS.contains(&level.as_str()) {
            tracing::info!(from = %level, "raising synchronous_commit to on for groupd's sessions");
            client
                .batch_execute("SET synchronous_commit TO on")
                .await
                .map_err(failed)?;
        }
        let statements = prepare(&client).await.map_err(failed)?;
        Ok(Session { client, statements })
    }
}

/// A connected client whose connection runs on its own task until it closes.
pub(crate) async fn connect(target: &Target) -> Result<Client, PgError> {
    let (client, connection) = target
        .config
        .connect(target.tls.clone())
        .await
        .map_err(|e| {
            let why = super::describe(&e);
            PgError::Unavailable(format!("cannot connect to {}: {why}", target.shown))
        })?;
    let shown = target.shown.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(url = %shown, error = %e, "PostgreSQL connection lost");
        }
    });
    Ok(client)
}

/// Prepares every statement in one round trip.
async fn prepare(client: &Client) -> Result<Statements, tokio_postgres::Error> {
    let (create, create_many, update, remove, get_many, all, dump) = tokio::join!(
        client.prepare_typed(CREATE, &[Type::TEXT, Type::TEXT]),
        client.prepare_typed(CREATE_MANY, &[Type::TEXT_ARRAY, Type::TEXT_ARRAY]),
        client.prepare_typed(UPDATE, &[Type::INT8, Type::TEXT, Type::TEXT, Type::BOOL]),
        client.prepare_typed(REMOVE, &[Type::INT8]),
        client.prepare_typed(GET_MANY, &[Type::INT8_ARRAY]),
        client.prepare_typed(ALL, &[]),
        client.prepare_typed(DUMP, &[]),
    );
    Ok(Statements {
        create: create?,
        create_many: create_many?,
        update: update?,
        remove: remove?,
        get_many: get_many?,
        all: all?,
        dump: dump?,
    })
}

/// What a slot knows between attempts.
struct Attempts {
    /// No attempt before this instant (the backoff); `None` after a success.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Why the last attempt failed: the answer to calls during the backoff.
    last_error: PgError,
}

/// A connection slot shared by the calls that use it.
pub(crate) struct Link {
    target: Arc<Target>,
    session: RwLock<Option<Arc<Session>>>,
    /// Held while connecting, so one attempt serves every waiting call.
    attempts: tokio::sync::Mutex<Attempts>,
}

impl Link {
    pub fn new(target: Arc<Target>) -> Link {
        Link {
            target,
            session: RwLock::new(None),
            attempts: tokio::sync::Mutex::new(Attempts {
                retry_at: None,
                backoff: MIN_BACKOFF,
                last_error: PgError::Unavailable("not connected yet".into()),
            }),
        }
    }

    /// The open session, opening one if there is none: within [`CONNECTION_WAIT`], or an error.
    pub async fn session(&self) -> Result<Arc<Session>, PgError> {
        if let Some(session) = self.current() {
            return Ok(session);
        }
        let deadline = tokio::time::Instant::now() + CONNECTION_WAIT;
        let waited = tokio::time::timeout_at(deadline, self.reconnect(deadline)).await;
        waited.unwrap_or_else(|_| {
            Err(PgError::Unavailable(format!(
                "no connection to {} within {CONNECTION_WAIT:?}",
                self.target.shown
            )))
        })
    }

    fn current(&self) -> Option<Arc<Session>> {
        let slot = self.session.read().ok()?;
        slot.as_ref()
            .filter(|s| !s.client.is_closed())
            .map(Arc::clone)
    }

    async fn reconnect(&self, deadline: tokio::time::Instant) -> Result<Arc<Session>, PgError> {
        let mut attempts = self.attempts.lock().await;
        if let Some(session) = self.current() {
            return Ok(session); // another call connected while this one waited
        }
        if attempts.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(attempts.last_error.clone());
        }
        let opened = tokio::time::timeout_at(deadline, Session::open(&self.target)).await;
        match opened {
            Ok(Ok(session)) => {
                let session = Arc::new(session);
                self.set(Some(Arc::clone(&session)));
                attempts.retry_at = None;
                attempts.backoff = MIN_BACKOFF;
                tracing::info!(url = %self.target.shown, "connected to PostgreSQL");
                Ok(session)
            }
            Ok(Err(e)) => {
                attempts.last_error = e.clone();
                attempts.retry_at = Some(Instant::now() + attempts.backoff);
                attempts.backoff = (attempts.backoff * 2).min(MAX_BACKOFF);
                tracing::debug!(error = %e, "connection attempt failed");
                Err(e)
            }
            Err(_) => {
                let why = format!("connecting to {} timed out", self.target.shown);
                attempts.last_error = PgError::Unavailable(why);
                attempts.retry_at = Some(Instant::now() + attempts.backoff);
                attempts.backoff = (attempts.backoff * 2).min(MAX_BACKOFF);
                Err(attempts.last_error.clone())
            }
        }
    }

    /// Forgets `session` (when it is still the current one): after a lost connection, or a
    /// commit whose outcome is unknown, it must not be used again.
    pub fn discard(&self, session: &Arc<Session>) {
        if let Ok(mut slot) = self.session.write()
            && slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, session))
        {
            *slot = None;
        }
    }

    fn set(&self, session: Option<Arc<Session>>) {
        match self.session.write() {
            Ok(mut slot) => *slot = session,
            Err(poisoned) => *poisoned.into_inner() = session,
        }
    }
}
