//! A failing disk (SPEC §2 "Storage failure", issue 3 item 5): the calls of a failed commit
//! are answered -32603, nothing that is not durable is acknowledged, reads go on, and writes
//! recover once the fault clears. The database runs on a backend whose writes, fsyncs and
//! growth the test can make fail; requests go through the real JSON-RPC dispatcher.

use groupd::dispatch::Service;
use groupd::limits::Limits;
use groupd::storage::GroupStore;
use groupd::storage::embedded::{DiskFaults, Store};

struct Harness {
    service: Service,
    faults: DiskFaults,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Harness {
    fn new() -> Harness {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("groupd=debug")
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.redb");
        let faults = DiskFaults::new();
        let store = Store::open_with_faults(&path, faults.clone()).unwrap();
        Harness {
            service: Service::new(store, Limits::default()),
            faults,
            _dir: dir,
            path,
        }
    }

    /// The same database after a restart, on a disk without faults.
    fn restart(self) -> Harness {
        let Harness {
            service,
            path,
            _dir,
            ..
        } = self;
        drop(service);
        let faults = DiskFaults::new();
        let store = Store::open_with_faults(&path, faults.clone()).unwrap();
        Harness {
            service: Service::new(store, Limits::default()),
            faults,
            _dir,
            path,
        }
    }

    async fn call(&self, request: &str) -> String {
        let mut out = Vec::new();
        self.service.handle_line(request.as_bytes(), &mut out).await;
        String::from_utf8(out).unwrap().trim_end().to_string()
    }

    async fn create(&self, id: u32, name: &str) -> String {
        let request =
            format!(r#"{{"jsonrpc":"2.0","method":"createGroup","id":{id},"params":["{name}"]}}"#);
        self.call(&request).await
    }

    async fn all(&self) -> String {
        self.call(r#"{"jsonrpc":"2.0","method":"getAllGroups","id":0}"#)
            .await
    }
}

fn internal_error(id: u32) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32603,"message":"Internal error"}}}}"#)
}

fn created(id: u32, group: u32) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{group}}}"#)
}

/// Runs one fault through its whole life: before, during, after, and after a restart.
async fn survives(fault: impl Fn(&DiskFaults, bool)) {
    let h = Harness::new();
    assert_eq!(h.create(1, "before").await, created(1, 1));

    fault(&h.faults, true);
    assert_eq!(h.create(2, "during").await, internal_error(2));
    // Every call in a failed commit fails; reads keep being served from the last commit.
    let batch = r#"[{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["x"]},{"jsonrpc":"2.0","method":"removeGroup","id":4,"params":[1]}]"#;
    assert_eq!(
        h.call(batch).await,
        format!("[{},{}]", internal_error(3), internal_error(4))
    );
    assert_eq!(
        h.call(r#"{"jsonrpc":"2.0","method":"getGroup","id":5,"params":[1]}"#)
            .await,
        r#"{"jsonrpc":"2.0","id":5,"result":{"id":"1","external_id":"","name":"before"}}"#
    );
    assert_eq!(
        h.all().await,
        r#"{"jsonrpc":"2.0","id":0,"result":[{"id":"1","external_id":"","name":"before"}]}"#
    );

    fault(&h.faults, false);
    let after = h.create(6, "after").await;
    assert!(
        after.starts_with(r#"{"jsonrpc":"2.0","id":6,"result":"#) && !after.contains("false"),
        "{after}"
    );
    let after_id: u64 = after
        .trim_end_matches('}')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let listed = h.all().await;
    assert!(
        listed.contains(r#""name":"before""#) && listed.contains(r#""name":"after""#),
        "{listed}"
    );

    // The names index agrees with the disk again: a name of the failed commit is free unless
    // that commit reached the disk after all, and a name taken before is still taken.
    let during_stored = listed.contains(r#""name":"during""#);
    let during = h.create(9, "during").await;
    assert_eq!(
        during.ends_with(":false}"),
        during_stored,
        "{during} / {listed}"
    );
    assert_eq!(
        h.create(10, "before").await,
        r#"{"jsonrpc":"2.0","id":10,"result":false}"#
    );

    // What was acknowledged is on disk.
    let h = h.restart();
    let get = format!(r#"{{"jsonrpc":"2.0","method":"getGroup","id":7,"params":[{after_id}]}}"#);
    let expected = format!(
        r#"{{"jsonrpc":"2.0","id":7,"result":{{"id":"{after_id}","external_id":"","name":"after"}}}}"#
    );
    assert_eq!(h.call(&get).await, expected);
    assert!(
        h.call(r#"{"jsonrpc":"2.0","method":"getGroup","id":8,"params":[1]}"#)
            .await
            .contains(r#""name":"before""#)
    );
}

#[tokio::test]
async fn failing_fsync() {
    survives(|f, on| f.fail_syncs(on)).await;
}

#[tokio::test]
async fn failing_writes() {
    survives(|f, on| f.fail_writes(on)).await;
}

#[tokio::test]
async fn a_full_disk() {
    let h = Harness::new();
    h.faults.fill(true);
    // The file has some room left; fill it until a commit needs more.
    let long = "x".repeat(255);
    let mut failed_at = None;
    for i in 1..20_000u32 {
        let request = format!(
            r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["g{i}","{long}"]}}"#
        );
        let answer = h.call(&request).await;
        if answer == internal_error(i) {
            failed_at = Some(i);
            break;
        }
        assert_eq!(
            answer,
            created(i, i),
            "only success or -32603 may come back"
        );
    }
    let failed_at = failed_at.expect("a full disk never failed a commit");
    let before = h.all().await;
    assert!(
        !before.contains(&format!(r#""name":"g{failed_at}""#)),
        "a failed create is visible"
    );
    h.faults.fill(false);
    let again = h.create(1, "room again").await;
    assert!(
        !again.contains("error") && !again.contains("false"),
        "{again}"
    );
}

/// A panic inside the storage engine (here: raised by the disk under redb's commit) is caught:
/// the calls of that commit get -32603, every later write too (the engine is not trusted again),
/// reads are still answered from memory, and the store reports the fault so that the server
/// does not claim a clean shutdown (SPEC §13).
#[tokio::test]
async fn a_panic_in_the_engine_is_contained_and_ends_writes() {
    let h = Harness::new();
    assert_eq!(h.create(1, "before").await, created(1, 1));
    assert_eq!(h.service.store().fault(), None);

    h.faults.panic_once();
    assert_eq!(h.create(2, "during").await, internal_error(2));
    assert!(h.service.store().fault().is_some());
    // The panic was one-off, but the engine is not trusted with another commit.
    assert_eq!(h.create(3, "after").await, internal_error(3));
    assert_eq!(
        h.call(r#"{"jsonrpc":"2.0","method":"removeGroup","id":4,"params":[1]}"#)
            .await,
        internal_error(4)
    );
    assert_eq!(
        h.call(r#"{"jsonrpc":"2.0","method":"getGroup","id":5,"params":[1]}"#)
            .await,
        r#"{"jsonrpc":"2.0","id":5,"result":{"id":"1","external_id":"","name":"before"}}"#
    );
    let invalid = h
        .call(r#"{"jsonrpc":"2.0","method":"createGroup","id":6,"params":[""]}"#)
        .await;
    assert_eq!(invalid, r#"{"jsonrpc":"2.0","id":6,"result":false}"#);
    h.service.store().close().await;
    assert!(h.service.store().fault().is_some());
}

/// A reopen after a failed commit verifies the file like a start does: damage found then ends
/// writes for good (the fault is recorded), rather than a server that retries for ever and
/// later claims a clean shutdown.
#[tokio::test]
async fn damage_found_when_reopening_after_a_fault_ends_writes() {
    let h = Harness::new();
    assert_eq!(h.create(1, "before").await, created(1, 1));
    h.faults.fail_writes(true);
    assert_eq!(h.create(2, "during").await, internal_error(2));
    // Meanwhile the file is damaged: every page after the header is zeroed.
    let len = std::fs::metadata(&h.path).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&h.path)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &vec![0; (len - 4096) as usize], 4096).unwrap();
    h.faults.clear();
    assert_eq!(h.create(3, "after").await, internal_error(3));
    assert!(h.service.store().fault().is_some());
    assert_eq!(h.create(4, "later").await, internal_error(4));
    assert_eq!(
        h.call(r#"{"jsonrpc":"2.0","method":"getGroup","id":5,"params":[1]}"#)
            .await,
        r#"{"jsonrpc":"2.0","id":5,"result":{"id":"1","external_id":"","name":"before"}}"#
    );
}

/// The database file is brought up to date with the commit log after the calls were answered
/// (in batches, or when a reader of the file asks). When that fails, nothing acknowledged is
/// lost: `getAllGroups` answers from memory, an online dump fails rather than leave groups
/// out, writes go on once the disk works (the database reopened, the log applied to it), and
/// a restart finds every group.
#[tokio::test]
async fn a_failure_to_bring_the_database_up_to_date_loses_no_acknowledged_write() {
    let h = Harness::new();
    // Enough groups that the database file must grow to take them, fewer than a batch.
    let long = "x".repeat(255);
    for batch in 0..30u32 {
        let calls: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["g{batch}-{i}","{long}"]}}"#
                )
            })
            .collect();
        let answer = h.call(&format!("[{}]", calls.join(","))).await;
        assert!(
            !answer.contains("error") && !answer.contains("false"),
            "{answer}"
        );
    }
    let count = |listed: &str| listed.matches(r#""name":"g"#).count();

    // No call writes the log now; only bringing the database up to date would grow a file.
    h.faults.fill(true);
    assert_eq!(count(&h.all().await), 3000);
    assert_eq!(
        h.call(r#"{"jsonrpc":"2.0","method":"groupd.dump","id":3}"#)
            .await,
        internal_error(3)
    );

    h.faults.fill(false);
    let after = h.create(4, "after").await;
    assert!(
        !after.contains("error") && !after.contains("false"),
        "{after}"
    );
    let listed = h.all().await;
    assert_eq!(count(&listed), 3000);
    assert!(listed.contains(r#""name":"after""#));
    let dump = h
        .call(r#"{"jsonrpc":"2.0","method":"groupd.dump","id":5}"#)
        .await;
    assert_eq!(dump.matches(r#""name":"#).count(), 3001);

    let h = h.restart();
    assert_eq!(h.all().await.matches(r#""name":"#).count(), 3001);
}
