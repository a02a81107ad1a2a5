//! The storage contract (`src/storage/mod.rs`, SPEC §4, §14), checked once against every
//! backend: ids from 1, increasing, never reused, across a reopen too (PostgreSQL's may have
//! gaps); exact-name uniqueness; a round of writes applied in order; reads that see every
//! acknowledged write; name order and id order.
//!
//! The PostgreSQL half starts a throw-away cluster (tests/support/postgres.rs); without
//! PostgreSQL it skips loudly, unless `GROUPD_REQUIRE_POSTGRES` is set (CI), when it fails.

#[path = "support/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::time::Duration;

use groupd::group::{Group, GroupRef, Refusal, WriteOp, WriteOutcome};
use groupd::storage::postgres::PgStore;
use groupd::storage::{GroupStore, StateInfo, Visitor, embedded};

fn create(name: &str) -> WriteOp {
    WriteOp::Create {
        name: name.into(),
        external_id: format!("x-{name}"),
    }
}

fn rename(id: u64, name: &str) -> WriteOp {
    WriteOp::Update {
        id,
        name: Some(name.into()),
        external_id: None,
    }
}

const TAKEN: WriteOutcome = WriteOutcome::Refused(Refusal::NameTaken);
const MISSING: WriteOutcome = WriteOutcome::Refused(Refusal::NoSuchGroup);

/// Collects what a visit shows.
#[derive(Default)]
struct Seen {
    state: Option<StateInfo>,
    groups: Vec<Group>,
}

impl Visitor for Seen {
    fn begin(&mut self, state: StateInfo) {
        self.state = Some(state);
    }

    fn group(&mut self, group: GroupRef<'_>) {
        self.groups.push(group.to_owned());
    }
}

async fn one(store: &impl GroupStore, op: WriteOp) -> WriteOutcome {
    store.write(vec![op]).await.expect("a durable write")[0]
}

async fn created(store: &impl GroupStore, name: &str) -> u64 {
    match one(store, create(name)).await {
        WriteOutcome::Created(id) => id,
        other => panic!("create {name:?}: {other:?}"),
    }
}

async fn get(store: &impl GroupStore, id: u64) -> Option<Group> {
    let mut found = None;
    store
        .get_each(&[id], |_, g| found = g.map(GroupRef::to_owned))
        .await
        .expect("a read");
    found
}

async fn names_in_order(store: &impl GroupStore) -> Vec<String> {
    let seen = store.visit_all(Seen::default()).await.expect("a visit");
    seen.groups.into_iter().map(|g| g.name).collect()
}

/// Everything but reopening, on a fresh, empty store.
async fn contract(store: &impl GroupStore) {
    // Ids from 1, increasing; names compared exactly.
    let ops = ["Ops", "ops", "Ops ", "É", "Z", "a"].map(create).to_vec();
    let outcomes = store.write(ops).await.expect("a durable round");
    let ids: Vec<u64> = outcomes
        .iter()
        .map(|o| match o {
            WriteOutcome::Created(id) => *id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids[0], 1);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(one(store, create("Ops")).await, TAKEN);
    // A round is applied in order, each write seeing the ones before it.
    let round = vec![create("B"), create("B"), rename(1, "C"), create("C")];
    let outcomes = store.write(round).await.expect("a durable round");
    assert_eq!(outcomes[1..], [TAKEN, WriteOutcome::Applied, TAKEN]);
    let b = match outcomes[0] {
        WriteOutcome::Created(id) => id,
        other => panic!("{other:?}"),
    };
    assert!(b > ids[5], "{b}");
    // Renames: onto its own name is applied, onto another's is refused; the old name is free.
    assert_eq!(one(store, rename(b, "B")).await, WriteOutcome::Applied);
    assert_eq!(one(store, rename(b, "ops")).await, TAKEN);
    // A rename to an invalid name is refused by storage, which knows the current name.
    let invalid = WriteOutcome::Refused(Refusal::InvalidName);
    assert_eq!(one(store, rename(b, " ")).await, invalid);
    assert_eq!(one(store, rename(b, &"n".repeat(101))).await, invalid);
    let ops = created(store, "Ops").await;
    assert!(ops > b, "{ops} after {b}");
    // Missing ids.
    assert_eq!(one(store, rename(999, "New")).await, MISSING);
    assert_eq!(one(store, WriteOp::Remove { id: 999 }).await, MISSING);
    assert_eq!(get(store, 999).await, None);
    // Reads see acknowledged writes; an update can change only the external id.
    let update = WriteOp::Update {
        id: 2,
        name: None,
        external_id: Some("new".into()),
    };
    assert_eq!(one(store, update).await, WriteOutcome::Applied);
    let two = get(store, 2).await.expect("group 2");
    assert_eq!(
        (two.name.as_str(), two.external_id.as_str()),
        ("ops", "new")
    );
    // Name order is UTF-8 byte order.
    assert_eq!(
        names_in_order(store).await,
        ["B", "C", "Ops", "Ops ", "Z", "a", "ops", "É"]
    );
    // Ids are never reused, the highest one included.
    let last = created(store, "Last").await;
    assert_eq!(
        one(store, WriteOp::Remove { id: last }).await,
        WriteOutcome::Applied
    );
    assert_eq!(get(store, last).await, None);
    let after = created(store, "After").await;
    assert!(after > last, "{after} after {last}");
    // A dump: id order, with the next id of the same state.
    let dump = store.visit_dump(Seen::default()).await.expect("a dump");
    let ids: Vec<u64> = dump.groups.iter().map(|g| g.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    let state = dump.state.expect("the dump's state");
    assert_eq!(state.groups, ids.len() as u64);
    assert!(
        state.next_id > after,
        "next id {} after {after}",
        state.next_id
    );
    // Within one round, a call sees what the calls before it did to the same group: the name
    // a rename gave up is free, a removed group is gone.
    let round = vec![
        rename(after, "R1"),
        rename(after, "R2"),
        create("R1"),
        WriteOp::Remove { id: after },
        rename(after, "R3"),
    ];
    let outcomes = store.write(round).await.expect("a durable round");
    assert_eq!(
        outcomes[..2],
        [WriteOutcome::Applied, WriteOutcome::Applied]
    );
    assert!(
        matches!(outcomes[2], WriteOutcome::Created(_)),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[3..], [WriteOutcome::Applied, MISSING]);
    assert_eq!(get(store, after).await, None);
    let names = names_in_order(store).await;
    assert!(names.contains(&"R1".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n == "R2" || n == "R3"), "{names:?}");
}

/// Concurrent writers: every name goes to exactly one, every acknowledged create is readable at
/// once, ids are unique.
async fn concurrent<S: GroupStore + 'static>(store: Arc<S>) {
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..20 {
                    // Half the names are contested by every writer.
                    let name = if i % 2 == 0 {
                        format!("shared {i}")
                    } else {
                        format!("w{w} {i}")
                    };
                    if let WriteOutcome::Created(id) = one(&*store, create(&name)).await {
                        assert_eq!(get(&*store, id).await.map(|g| g.name), Some(name.clone()));
                        mine.push((id, name));
                    }
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.expect("writer"));
    }
    assert_eq!(
        all.len(),
        16 * 10 + 10,
        "each shared name goes to exactly one writer"
    );
    let mut ids: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
}

/// The contract on a fresh `store`, then across a reopen (`reopen` gives the same database
/// again): the groups are all there, and a removed highest id is not handed out again.
async fn contract_across_a_reopen<S, F>(store: S, reopen: impl FnOnce() -> F)
where
    S: GroupStore,
    F: Future<Output = S>,
{
    contract(&store).await;
    let before = names_in_order(&store).await;
    let next = created(&store, "Before reopen").await;
    one(&store, WriteOp::Remove { id: next }).await;
    store.close().await;
    drop(store);
    let store = reopen().await;
    assert_eq!(names_in_order(&store).await, before);
    let reopened = created(&store, "After reopen").await;
    assert!(reopened > next, "{reopened} after {next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("contract.redb");
    let open = || embedded::Store::open(&path).expect("open");
    contract_across_a_reopen(open(), || async { open() }).await;
    let dir = tempfile::tempdir().expect("temp dir");
    concurrent(Arc::new(
        embedded::Store::open(&dir.path().join("c.redb")).expect("open"),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_contract() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let connect = || async {
        let url = cluster.url("contract");
        PgStore::connect(&url, Duration::from_secs(10))
            .await
            .expect("connect")
    };
    cluster.database("contract");
    contract_across_a_reopen(connect().await, connect).await;
    let url = cluster.database("concurrent");
    concurrent(Arc::new(
        PgStore::connect(&url, Duration::from_secs(10))
            .await
            .expect("connect"),
    ))
    .await;
}
