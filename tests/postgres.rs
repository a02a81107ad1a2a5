//! The PostgreSQL backend (SPEC §14) against a real PostgreSQL 15 started by the test
//! (tests/support/postgres.rs): the Group API's rules, Kanboard's tables, two stores on one
//! database, a server crash under load, an unreachable server and a stalled commit.

#[path = "support/postgres.rs"]
mod postgres;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use groupd::group::{Group, Refusal};
use groupd::group::{WriteOp, WriteOutcome};
use groupd::storage::postgres::{PgError, PgStore};
use postgres::Cluster;

const CONNECT: Duration = Duration::from_secs(10);

fn create(name: &str) -> WriteOp {
    WriteOp::Create {
        name: name.into(),
        external_id: String::new(),
    }
}

fn update(id: u64, name: Option<&str>, external_id: Option<&str>) -> WriteOp {
    WriteOp::Update {
        id,
        name: name.map(Into::into),
        external_id: external_id.map(Into::into),
    }
}

fn group(id: u64, name: &str, external_id: &str) -> Group {
    Group {
        id,
        name: name.into(),
        external_id: external_id.into(),
    }
}

async fn one(store: &PgStore, op: WriteOp) -> WriteOutcome {
    let outcomes = store.write(vec![op]).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    outcomes[0]
}

use WriteOutcome::{Applied, Created, Refused};

#[tokio::test]
async fn the_group_api_rules_hold() {
    let Some(pg) = Cluster::start() else { return };
    let store = PgStore::connect(&pg.database("api"), CONNECT)
        .await
        .unwrap();
    let written = store
        .write(vec![
            create("b"),
            create("B"),
            create("b"),
            create("a "),
            WriteOp::Create {
                name: "é".into(),
                external_id: "1234".into(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        written,
        [
            Created(1),
            Created(2),
            Refused(Refusal::NameTaken),
            Created(3),
            Created(4)
        ],
        "a create refused for a taken name draws no id"
    );
    // Byte order of the UTF-8 name, although the database's collation (ICU English) would
    // put "a " before "B".
    let names: Vec<String> = store
        .all_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names, ["B", "a ", "b", "é"]);
    assert_eq!(
        store.get_many(&[4, 9, 1, 4, 0, u64::MAX]).await.unwrap(),
        [
            Some(group(4, "é", "1234")),
            None,
            Some(group(1, "b", "")),
            Some(group(4, "é", "1234")),
            None,
            None
        ]
    );
    let updated = store
        .write(vec![
            update(1, Some("B"), None),
            update(1, Some("b"), None),
            update(1, None, Some("x")),
            update(1, Some("c"), Some("y")),
            update(9, Some("d"), None),
            update(u64::MAX, None, None),
            update(1, Some(" "), None),
            update(1, Some(&"n".repeat(101)), None),
            update(2, Some("nul\0"), None),
            update(2, None, Some("nul\0")),
            WriteOp::Remove { id: 3 },
            WriteOp::Remove { id: 3 },
            create("a "),
            create("nul\0"),
        ])
        .await
        .unwrap();
    assert_eq!(
        updated,
        [
            Refused(Refusal::NameTaken),
            Applied,
            Applied,
            Applied,
            Refused(Refusal::NoSuchGroup),
            Refused(Refusal::NoSuchGroup),
            Refused(Refusal::InvalidName),
            Refused(Refusal::InvalidName),
            Refused(Refusal::InvalidName),
            Refused(Refusal::InvalidExternalId),
            Applied,
            Refused(Refusal::NoSuchGroup),
            Created(5),
            Refused(Refusal::InvalidName),
        ]
    );
    assert_eq!(
        store.all_groups().await.unwrap(),
        [
            group(2, "B", ""),
            group(5, "a ", ""),
            group(1, "c", "y"),
            group(4, "é", "1234"),
        ]
    );
    let stats = store.stats();
    assert_eq!(
        (stats.commits, stats.committed_calls),
        (2, 19),
        "one commit per round"
    );
}

/// Kanboard's PostgreSQL schema for groups and what refers to them, as its migrations leave it.
const KANBOARD: &str = "
    CREATE TABLE users (id SERIAL PRIMARY KEY, username VARCHAR(255) UNIQUE NOT NULL);
    CREATE TABLE projects (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL);
    CREATE TABLE groups (id SERIAL PRIMARY KEY, external_id VARCHAR(255) DEFAULT '',
                         name VARCHAR(100) NOT NULL UNIQUE);
    ALTER TABLE groups ALTER COLUMN name TYPE TEXT;
    ALTER TABLE groups ALTER COLUMN external_id DROP DEFAULT;
    ALTER TABLE groups ALTER COLUMN external_id SET DEFAULT '';
    CREATE TABLE group_has_users (
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        UNIQUE(group_id, user_id));
    CREATE TABLE project_has_groups (
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        role VARCHAR(255) NOT NULL,
        UNIQUE(group_id, project_id));";

#[tokio::test]
async fn a_kanboard_database_is_served_as_kanboard_wrote_it() {
    let Some(pg) = Cluster::start() else { return };
    let url = pg.database("kanboard");
    pg.psql("kanboard", KANBOARD);
    let long = "L".repeat(150);
    pg.psql(
        "kanboard",
        &format!(
            "INSERT INTO users (username) VALUES ('admin'), ('ann');
             INSERT INTO projects (name) VALUES ('p');
             INSERT INTO groups (name, external_id) VALUES ('Web form', NULL), ('{long}', 'x');
             INSERT INTO group_has_users VALUES (1, 1), (1, 2), (2, 1);
             INSERT INTO project_has_groups VALUES (1, 1, 'project-member');"
        ),
    );
    let store = PgStore::connect(&url, CONNECT).await.unwrap();
    assert_eq!(
        store.get_many(&[1, 2]).await.unwrap(),
        [Some(group(1, "Web form", "")), Some(group(2, &long, "x"))]
    );
    let other_long = "M".repeat(150);
    let written = store
        .write(vec![
            update(2, Some(&long), Some("y")),
            update(2, Some(&other_long), None),
            create("Web form"),
            create("New"),
            WriteOp::Remove { id: 1 },
        ])
        .await
        .unwrap();
    assert_eq!(
        written,
        [
            Applied,
            Refused(Refusal::InvalidName),
            Refused(Refusal::NameTaken),
            Created(3), // the refused create drew no id
            Applied
        ]
    );
    let memberships = pg.psql(
        "kanboard",
        "SELECT (SELECT count(*) FROM group_has_users WHERE group_id = 1)
             || ' ' || (SELECT count(*) FROM project_has_groups WHERE group_id = 1)
             || ' ' || (SELECT count(*) FROM group_has_users WHERE group_id = 2)",
    );
    assert_eq!(
        memberships.trim(),
        "0 0 1",
        "removeGroup cascades to memberships"
    );
    assert_eq!(
        store.all_groups().await.unwrap(),
        [group(2, &long, "y"), group(3, "New", "")]
    );
}

#[tokio::test]
async fn a_table_that_does_not_fit_is_refused_saying_what_is_missing() {
    let Some(pg) = Cluster::start() else { return };
    let url = pg.database("unfit");
    pg.psql(
        "unfit",
        "CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT, extra INT NOT NULL)",
    );
    let Err(PgError::Schema(why)) = PgStore::connect(&url, CONNECT).await else {
        panic!("accepted a table without a sequence, a unique name or an external_id");
    };
    for missing in [
        "id has no sequence default",
        "name is not NOT NULL",
        "name has no unique constraint",
        "no external_id column",
        "column extra is NOT NULL without a default",
    ] {
        assert!(why.contains(missing), "{missing:?} not in {why:?}");
    }
    assert!(!why.contains('\n'), "one line: {why:?}");
}

#[tokio::test]
async fn ids_past_32_bits_are_an_error_that_spares_the_other_calls() {
    let Some(pg) = Cluster::start() else { return };
    let store = Arc::new(
        PgStore::connect(&pg.database("ids"), CONNECT)
            .await
            .unwrap(),
    );
    assert_eq!(one(&store, create("first")).await, Created(1));
    pg.psql(
        "ids",
        "ALTER SEQUENCE groups_id_seq RESTART WITH 2147483647",
    );
    assert_eq!(one(&store, create("last")).await, Created(2_147_483_647));
    // Rounds queued together share a transaction; the one that cannot get an id must not take
    // the others down with it.
    let rounds: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let op = match i % 2 {
                0 => create(&format!("over {i}")),
                _ => update(1, None, Some(&format!("e{i}"))),
            };
            tokio::spawn(async move { store.write(vec![op]).await })
        })
        .collect();
    for (i, round) in rounds.into_iter().enumerate() {
        match (i % 2, round.await.unwrap()) {
            (0, Err(PgError::Database(why))) => assert!(why.contains("maximum"), "{why}"),
            (1, Ok(outcomes)) => assert_eq!(outcomes, [Applied]),
            (_, other) => panic!("round {i}: {other:?}"),
        }
    }
}

/// Two groupd processes on one database, modelled as two stores: creates of the same names in
/// opposite orders (which deadlock in PostgreSQL), renames and removals, all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_one_database() {
    let Some(pg) = Cluster::start_with(&["log_lock_waits=on", "deadlock_timeout=100ms"]) else {
        return;
    };
    let url = pg.database("shared");
    let a = Arc::new(PgStore::connect(&url, CONNECT).await.unwrap());
    let b = Arc::new(PgStore::connect(&url, CONNECT).await.unwrap());
    const NAMES: usize = 200;
    const TASKS: usize = 2;
    const MAX_ROUNDS: usize = 10;
    let mut owner = HashMap::new();
    let mut ids = HashSet::new();
    let mut rounds = 0;
    // Rounds until PostgreSQL has broken a deadlock (the server logs each at once): without
    // one, this test would prove nothing about the replay.
    while rounds < 2 || !pg.log().contains("deadlock detected") {
        assert!(rounds < MAX_ROUNDS, "no deadlock in {MAX_ROUNDS} rounds");
        let round = rounds;
        rounds += 1;
        // Every task sends its whole list at once, the two stores in opposite orders: their
        // transactions meet in the middle and PostgreSQL breaks the deadlock.
        let names: Vec<String> = (0..NAMES).map(|i| format!("r{round}g{i:02}")).collect();
        let start = Arc::new(tokio::sync::Barrier::new(2 * TASKS));
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            for (side, store) in [(0, &a), (1, &b)] {
                let (store, start, mut mine) =
                    (Arc::clone(store), Arc::clone(&start), names.clone());
                if side == 1 {
                    mine.reverse();
                }
                mine.rotate_left(t * 7);
                tasks.push(tokio::spawn(async move {
                    start.wait().await;
                    let ops = mine.iter().map(|n| create(n)).collect();
                    let outcomes = store.write(ops).await.unwrap();
                    let mut won = Vec::new();
                    for (name, outcome) in mine.into_iter().zip(outcomes) {
                        match outcome {
                            Created(id) => won.push((name, id, side)),
                            Refused(Refusal::NameTaken) => {}
                            other => panic!("{other:?}"),
                        }
                    }
                    won
                }));
            }
        }
        for task in tasks {
            let won = task.await.unwrap();
            assert!(
                won.windows(2).all(|w| w[0].1 < w[1].1),
                "ids increase in a round: {won:?}"
            );
            for (name, id, side) in won {
                assert!(
                    owner.insert(name.clone(), (id, side)).is_none(),
                    "{name} created twice"
                );
                assert!(ids.insert(id), "id {id} given twice");
            }
        }
    }
    assert_eq!(
        owner.len(),
        NAMES * rounds,
        "every name went to exactly one store"
    );
    // Each store reads what the other acknowledged, at once.
    for (name, &(id, side)) in &owner {
        let reader = if side == 0 { &b } else { &a };
        let seen = reader.get_many(&[id]).await.unwrap();
        assert_eq!(
            seen[0].as_ref().map(|g| g.name.as_str()),
            Some(name.as_str())
        );
    }
    // Renames and removals racing from both sides: each group is removed by exactly one.
    let mut races = Vec::new();
    for (name, &(id, _)) in &owner {
        for (side, store) in [(0u8, &a), (1, &b)] {
            let (store, renamed) = (Arc::clone(store), format!("{name}-{side}"));
            races.push(tokio::spawn(async move {
                let rename = one(&store, update(id, Some(&renamed), None)).await;
                assert!(
                    matches!(rename, Applied | Refused(Refusal::NoSuchGroup)),
                    "{rename:?}"
                );
                one(&store, WriteOp::Remove { id }).await
            }));
        }
    }
    let mut removed = 0;
    for race in races {
        match race.await.unwrap() {
            Applied => removed += 1,
            Refused(Refusal::NoSuchGroup) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(removed, NAMES * rounds, "each group removed exactly once");
    assert_eq!(a.all_groups().await.unwrap(), []);
    // Ids are never reused: the next one is past every id handed out.
    let max = ids.iter().max().copied().unwrap_or(0);
    let Created(next) = one(&b, create("after")).await else {
        panic!("create failed");
    };
    assert!(next > max, "{next} after {max}");
    let deadlocks = pg.log().matches("deadlock detected").count();
    eprintln!(
        "stats: {:?}, rounds: {rounds}, deadlocks: {deadlocks}",
        (a.stats(), b.stats())
    );
}

/// PostgreSQL killed (`-m immediate`) under a create load and started again: errors meanwhile,
/// every acknowledged create still there, and the same store serves again within about a
/// second of the server being ready.
#[tokio::test]
async fn a_server_crash_under_load_loses_no_acknowledged_write() {
    let Some(mut pg) = Cluster::start() else {
        return;
    };
    let store = Arc::new(
        PgStore::connect(&pg.database("crash"), CONNECT)
            .await
            .unwrap(),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..16 {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        clients.push(tokio::spawn(async move {
            let (mut acked, mut errors) = (Vec::new(), 0u32);
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("c{c}-{i}");
                i += 1;
                match store.write(vec![create(&name)]).await {
                    Ok(outcomes) => match outcomes[..] {
                        [Created(id)] => acked.push((name, id)),
                        ref other => panic!("{other:?}"),
                    },
                    Err(_) => {
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (acked, errors)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = Instant::now();
    pg.stop_immediate();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // While it is down, reads fail too (there is no cache to answer from), and quickly.
    let asked = Instant::now();
    assert!(store.all_groups().await.is_err());
    assert!(
        asked.elapsed() < Duration::from_millis(3500),
        "{:?}",
        asked.elapsed()
    );
    pg.start_again();
    let ready = Instant::now();
    let back = loop {
        if store.write(vec![create("probe")]).await.is_ok() {
            break ready.elapsed();
        }
        assert!(
            ready.elapsed() < Duration::from_secs(10),
            "no service 10 s after restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut acked, mut errors) = (Vec::new(), 0);
    for client in clients {
        let (mine, errs) = client.await.unwrap();
        acked.extend(mine);
        errors += errs;
    }
    eprintln!(
        "crash: {} creates acknowledged, {errors} errors, service back {back:?} after the \
         restarted server was ready ({:?} after the kill)",
        acked.len(),
        killed.elapsed()
    );
    assert!(errors > 0, "calls while PostgreSQL was down must fail");
    assert!(
        back < Duration::from_millis(2500),
        "service back after {back:?}"
    );
    let stored: HashMap<u64, String> = store
        .all_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    for (name, id) in &acked {
        assert_eq!(
            stored.get(id),
            Some(name),
            "acknowledged create of {name} lost"
        );
    }
}

#[tokio::test]
async fn an_unreachable_database_at_start_is_retried_then_an_error() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://groupd:s3cret@127.0.0.1:{port}/groups");
    let started = Instant::now();
    let Err(e) = PgStore::connect(&url, Duration::from_millis(1500)).await else {
        panic!("connected to nothing");
    };
    let took = started.elapsed();
    let text = e.to_string();
    assert!(matches!(e, PgError::Unreachable { .. }), "{e:?}");
    assert!(!text.contains("s3cret") && text.contains("***"), "{text}");
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(3),
        "gave up after {took:?}"
    );
}

/// A synchronous standby that never answers holds every commit: after 10 s the calls get an
/// error (outcome unknown), never an answer, and the store keeps serving reads.
#[tokio::test]
async fn a_commit_not_confirmed_in_time_is_an_outcome_unknown_error() {
    let Some(pg) = Cluster::start() else { return };
    let store = PgStore::connect(&pg.database("stall"), CONNECT)
        .await
        .unwrap();
    assert_eq!(one(&store, create("before")).await, Created(1));
    pg.psql(
        "stall",
        "ALTER SYSTEM SET synchronous_standby_names = 'nobody'",
    );
    pg.psql("stall", "SELECT pg_reload_conf()");
    // A new session sees the setting once the postmaster has reloaded, and by then it has
    // signalled the writer's backend too, which rereads it before its next command.
    while pg.psql("stall", "SHOW synchronous_standby_names").trim() != "nobody" {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let written = tokio::time::timeout(
        Duration::from_secs(20),
        store.write(vec![create("stalled")]),
    )
    .await
    .expect("a stalled commit held its call for 20 s");
    let took = started.elapsed();
    assert!(
        matches!(written, Err(PgError::OutcomeUnknown(_))),
        "{written:?}"
    );
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(13),
        "{took:?}"
    );
    assert_eq!(
        store.get_many(&[1]).await.unwrap(),
        [Some(group(1, "before", ""))]
    );
}

/// A server whose default lets commits be acknowledged before they are durable: groupd's own
/// sessions raise `synchronous_commit` (the server logs every statement here, so the SET shows).
#[tokio::test]
async fn a_weak_synchronous_commit_is_raised_on_groupds_sessions() {
    let Some(pg) = Cluster::start_with(&["synchronous_commit=off", "log_statement=all"]) else {
        return;
    };
    let store = PgStore::connect(&pg.database("durable"), CONNECT)
        .await
        .unwrap();
    assert_eq!(one(&store, create("g")).await, Created(1));
    let log = pg.log();
    let raised = log.find("SET synchronous_commit TO on");
    let inserted = log.find("INSERT INTO groups");
    assert!(
        raised.is_some() && raised < inserted,
        "no SET before the insert in:\n{log}"
    );
}

/// `sslmode=require` encrypts (the server takes nothing else here); `verify-full` checks the
/// certificate against `sslrootcert` and the host name, and refuses one it cannot trust.
#[tokio::test]
async fn tls_is_used_as_the_url_says() {
    let Some((pg, ca)) = Cluster::start_tls() else {
        return;
    };
    let port = pg.port;
    let quick = Duration::from_millis(500);
    let url =
        |host: &str, params: &str| format!("postgres://postgres@{host}:{port}/postgres?{params}");
    let plain = PgStore::connect(&url("127.0.0.1", "sslmode=disable"), quick).await;
    assert!(
        matches!(plain, Err(PgError::Unreachable { .. })),
        "the server refuses plain text"
    );
    let store = PgStore::connect(&url("127.0.0.1", "sslmode=require"), CONNECT)
        .await
        .unwrap();
    assert_eq!(one(&store, create("over TLS")).await, Created(1));
    let root = format!("sslmode=verify-full&sslrootcert={}", ca.display());
    let verified = PgStore::connect(&url("localhost", &root), CONNECT)
        .await
        .unwrap();
    assert_eq!(
        verified.all_groups().await.unwrap(),
        [group(1, "over TLS", "")]
    );
    // Public CAs do not vouch for a self-signed certificate.
    let untrusted = PgStore::connect(&url("localhost", "sslmode=verify-full"), quick).await;
    assert!(
        matches!(untrusted, Err(PgError::Unreachable { .. })),
        "{:?}",
        untrusted.as_ref().err()
    );
}

/// A TCP proxy in front of PostgreSQL that can cut its connections and then take new ones
/// without ever answering: a server that is there but silent (a hung host, a dead pooler).
struct Proxy {
    port: u16,
    silent: Arc<std::sync::atomic::AtomicBool>,
    cut: Arc<std::sync::Mutex<tokio_util::sync::CancellationToken>>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cut = Arc::new(std::sync::Mutex::new(
            tokio_util::sync::CancellationToken::new(),
        ));
        let (is_silent, cuts) = (Arc::clone(&silent), Arc::clone(&cut));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut client, _)) = listener.accept().await {
                if is_silent.load(std::sync::atomic::Ordering::SeqCst) {
                    held.push(client); // accepted, never answered
                    continue;
                }
                let cut = cuts.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        Proxy { port, silent, cut }
    }

    /// Cuts every connection, and answers none from now on.
    fn go_silent(&self) {
        self.silent.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut cut = self.cut.lock().unwrap();
        cut.cancel();
        *cut = tokio_util::sync::CancellationToken::new();
    }

    fn forward(&self) {
        self.silent
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A server that accepts connections but never answers: every call, queued writes included,
/// fails within the 3 s connection wait (counted from its own arrival); once the server
/// answers again the same store serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_waits_more_than_three_seconds_for_a_connection() {
    let Some(pg) = Cluster::start() else { return };
    pg.database("silent");
    let proxy = Proxy::start(pg.port).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/silent", proxy.port);
    let store = Arc::new(PgStore::connect(&url, CONNECT).await.unwrap());
    assert_eq!(one(&store, create("before")).await, Created(1));
    assert_eq!(store.get_many(&[1]).await.unwrap().len(), 1);
    proxy.go_silent();
    let mut calls = Vec::new();
    for i in 0..8u64 {
        let store = Arc::clone(&store);
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300 * i)).await;
            let started = Instant::now();
            let failed = match i % 2 {
                0 => store
                    .write(vec![create(&format!("during {i}"))])
                    .await
                    .is_err(),
                _ => store.get_many(&[1]).await.is_err(),
            };
            (i, failed, started.elapsed())
        }));
    }
    for call in calls {
        let (i, failed, took) = call.await.unwrap();
        assert!(failed, "call {i} answered by a silent server");
        assert!(took < Duration::from_millis(3300), "call {i} held {took:?}");
    }
    proxy.forward();
    let back = Instant::now();
    while store.write(vec![create("after")]).await.is_err() {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no service 5 s after"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while store.get_many(&[1]).await.is_err() {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no reads 5 s after"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "served again {:?} after the server answered again",
        back.elapsed()
    );
}
