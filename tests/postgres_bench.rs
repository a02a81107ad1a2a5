//! Figures for the PostgreSQL backend, each beside a baseline measured on the same throw-away
//! cluster in the same run. Prints, never asserts a time. Ignored by `cargo test`; run with
//! `scripts/bench-postgres.sh` (release build).

#[path = "support/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::time::{Duration, Instant};

use groupd::group::{WriteOp, WriteOutcome};
use groupd::storage::postgres::PgStore;
use postgres::Cluster;

/// How long each timed phase runs.
const PHASE: Duration = Duration::from_secs(3);

fn create(name: String) -> WriteOp {
    WriteOp::Create {
        name,
        external_id: String::new(),
    }
}

fn rate(count: u64, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// `tasks` callers, each running `call` in a loop for [`PHASE`]; the calls' total of `units`
/// per second.
async fn load<F, Fut>(tasks: usize, call: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u64> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let call = Arc::clone(&call);
            tokio::spawn(async move {
                let (mut units, mut i) = (0, 0);
                while started.elapsed() < PHASE {
                    units += call(t, i).await;
                    i += 1;
                }
                units
            })
        })
        .collect();
    let mut units = 0;
    for handle in handles {
        units += handle.await.unwrap();
    }
    rate(units, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench-postgres.sh"]
async fn postgres_figures() {
    let Some(pg) = Cluster::start_with(&["max_connections=200"]) else {
        return;
    };
    let url = pg.database("bench");
    let store = Arc::new(
        PgStore::connect(&url, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let (plain, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let plain = Arc::new(plain);

    // Baseline: one client, one INSERT per transaction, each waited for.
    let insert = plain
        .prepare("INSERT INTO groups (name, external_id) VALUES ($1, '')")
        .await
        .unwrap();
    let (client, statement) = (Arc::clone(&plain), insert.clone());
    let one_per_txn = load(1, move |_, i| {
        let (client, statement) = (Arc::clone(&client), statement.clone());
        async move {
            let name = format!("base {i}");
            client.execute(&statement, &[&name]).await.unwrap();
            1
        }
    })
    .await;
    println!("baseline: 1 client, 1 INSERT per transaction: {one_per_txn:>9.0} creates/s");

    for clients in [1, 64] {
        let s = Arc::clone(&store);
        let creates = load(clients, move |t, i| {
            let s = Arc::clone(&s);
            async move {
                let written = s.write(vec![create(format!("c{clients} {t} {i}"))]).await;
                assert!(matches!(written.unwrap()[..], [WriteOutcome::Created(_)]));
                1
            }
        })
        .await;
        println!(
            "PgStore: {clients:>2} callers x 1 create:            {creates:>9.0} creates/s  ({:.1}x baseline)",
            creates / one_per_txn
        );
    }
    let s = Arc::clone(&store);
    let batches = load(8, move |t, i| {
        let s = Arc::clone(&s);
        async move {
            let ops = (0..100).map(|k| create(format!("b {t} {i} {k}"))).collect();
            s.write(ops).await.unwrap().len() as u64
        }
    })
    .await;
    println!(
        "PgStore:  8 callers x batches of 100:     {batches:>9.0} creates/s  ({:.1}x baseline)",
        batches / one_per_txn
    );
    let stats = store.stats();
    println!(
        "         mean calls per commit: {:.1}",
        stats.committed_calls as f64 / stats.commits.max(1) as f64
    );

    // Reads: the baseline is one client's primary-key selects, one at a time.
    let count: i64 = plain
        .query_one("SELECT count(*) FROM groups", &[])
        .await
        .unwrap()
        .get(0);
    let max_id = u64::try_from(count).unwrap();
    let select = plain
        .prepare("SELECT id, name, external_id FROM groups WHERE id = $1")
        .await
        .unwrap();
    let (client, statement) = (Arc::clone(&plain), select.clone());
    let depth_one = load(1, move |_, i| {
        let (client, statement) = (Arc::clone(&client), statement.clone());
        async move {
            let id = 1 + (i * 7919 % max_id) as i32;
            client.query(&statement, &[&id]).await.unwrap();
            1
        }
    })
    .await;
    println!("baseline: 1 client, depth-1 primary-key selects: {depth_one:>9.0} reads/s");
    let s = Arc::clone(&store);
    let pipelined = load(8 * 16, move |t, i| {
        let s = Arc::clone(&s);
        async move {
            let id = 1 + (t as u64 * 104_729 + i * 7919) % max_id;
            s.get_many(&[id]).await.unwrap();
            1
        }
    })
    .await;
    println!(
        "PgStore: get_many of 1 id, 8x16 callers:  {pipelined:>9.0} reads/s  ({:.1}x baseline)",
        pipelined / depth_one
    );
    let s = Arc::clone(&store);
    let sixteen = load(8, move |t, i| {
        let s = Arc::clone(&s);
        async move {
            let ids: Vec<u64> = (0..16)
                .map(|k| 1 + (t as u64 * 104_729 + i * 7919 + k * 31) % max_id)
                .collect();
            s.get_many(&ids).await.unwrap().len() as u64
        }
    })
    .await;
    println!(
        "PgStore: get_many of 16 ids, 8 callers:   {sixteen:>9.0} reads/s  ({:.1}x baseline)",
        sixteen / depth_one
    );

    // getAllGroups at 100k groups.
    plain.batch_execute("TRUNCATE groups").await.unwrap();
    plain
        .batch_execute(
            "INSERT INTO groups (name, external_id) \
             SELECT 'group ' || md5(g::text), g::text FROM generate_series(1, 100000) g",
        )
        .await
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let all = store.all_groups().await.unwrap();
        times.push(started.elapsed());
        assert_eq!(all.len(), 100_000);
    }
    times.sort();
    let started = Instant::now();
    plain
        .query(
            "SELECT id, name, external_id FROM groups ORDER BY name COLLATE \"C\"",
            &[],
        )
        .await
        .unwrap();
    println!(
        "PgStore: all_groups at 100k groups: median {:?}, best {:?} (plain client query: {:?})",
        times[2],
        times[0],
        started.elapsed()
    );
}
