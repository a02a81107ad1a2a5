//! Group commit (issue 4): writes from many connections, from one connection's pipeline and
//! from one batch share durable commits, and still every answer follows its own commit, order
//! holds per connection, one failing call leaves the others alone, and every acknowledged call
//! survives a kill -9.

mod common;

use std::io::Write;
use std::sync::Arc;

use common::{Db, Server};
use groupd::dispatch::Service;
use groupd::limits::Limits;
use groupd::storage::{self, GroupStore};

/// A dispatcher on a fresh database in a temporary directory (kept while the guard lives).
fn service() -> (Service, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = storage::open(&dir.path().join("g.redb")).unwrap();
    (Service::new(store, Limits::default()), dir)
}

fn create(id: usize, name: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"createGroup","id":{id},"params":["{name}"]}}"#)
}

/// Concurrent creates from 64 callers: all succeed with distinct ids, in far fewer commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits() {
    let (service, _dir) = service();
    let service = Arc::new(service);
    let before = service.store().stats();
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                let mut out = Vec::new();
                service
                    .handle_line(create(i, &format!("g{i}")).as_bytes(), &mut out)
                    .await;
                String::from_utf8(out).unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        let answer = call.await.unwrap();
        let prefix = format!(r#"{{"jsonrpc":"2.0","id":{i},"result":"#);
        let id: u64 = answer
            .trim_end()
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix('}'))
            .unwrap()
            .parse()
            .unwrap();
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 64, "ids are distinct");
    let stats = service.store().stats();
    let commits = stats.commits - before.commits;
    assert_eq!(stats.committed_calls - before.committed_calls, 64);
    assert!(commits < 32, "64 concurrent creates took {commits} commits");
}

/// A batch's writes share one commit, run in order, and one failure does not touch the others.
#[tokio::test]
async fn a_batch_commits_together_and_a_failing_entry_is_isolated() {
    let (service, _dir) = service();
    let before = service.store().stats().commits;
    let batch = format!(
        "[{},{},{},{},{}]",
        create(1, "a"),
        create(2, "a"),
        create(3, "b"),
        r#"{"jsonrpc":"2.0","method":"updateGroup","id":4,"params":[2,"a"]}"#,
        r#"{"jsonrpc":"2.0","method":"updateGroup","id":5,"params":[2,"c"]}"#,
    );
    let mut out = Vec::new();
    service.handle_line(batch.as_bytes(), &mut out).await;
    assert_eq!(
        String::from_utf8(out).unwrap(),
        concat!(
            r#"[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":false},"#,
            r#"{"jsonrpc":"2.0","id":3,"result":2},{"jsonrpc":"2.0","id":4,"result":false},"#,
            r#"{"jsonrpc":"2.0","id":5,"result":true}]"#,
            "\n"
        )
    );
    assert_eq!(
        service.store().stats().commits - before,
        1,
        "one batch, one commit"
    );
    let mut out = Vec::new();
    service
        .handle_line(
            br#"{"jsonrpc":"2.0","method":"getAllGroups","id":6}"#,
            &mut out,
        )
        .await;
    assert_eq!(
        String::from_utf8(out).unwrap().trim_end(),
        r#"{"jsonrpc":"2.0","id":6,"result":[{"id":"1","external_id":"","name":"a"},{"id":"2","external_id":"","name":"c"}]}"#
    );
}

/// Pipelined lines on one connection: writes group together, and each read still sees every
/// write before it, in order.
#[test]
fn pipelined_writes_keep_order_and_reads_see_them() {
    let server = Server::start(&[]);
    let mut client = server.client();
    let mut lines = String::new();
    for i in 0..100 {
        lines += &create(i, &format!("p{i:03}"));
        lines.push('\n');
        lines += &format!(
            r#"{{"jsonrpc":"2.0","method":"getGroup","id":"get{i}","params":[{}]}}"#,
            i + 1
        );
        lines.push('\n');
        lines += &format!(
            r#"{{"jsonrpc":"2.0","method":"updateGroup","id":"up{i}","params":[{},"q{i:03}"]}}"#,
            i + 1
        );
        lines.push('\n');
    }
    lines += r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"all"}"#;
    lines.push('\n');
    client.stream().write_all(lines.as_bytes()).unwrap();
    for i in 0..100 {
        assert_eq!(
            client.recv(),
            format!(r#"{{"jsonrpc":"2.0","id":{i},"result":{}}}"#, i + 1)
        );
        assert_eq!(
            client.recv(),
            format!(
                r#"{{"jsonrpc":"2.0","id":"get{i}","result":{{"id":"{}","external_id":"","name":"p{i:03}"}}}}"#,
                i + 1
            )
        );
        assert_eq!(
            client.recv(),
            format!(r#"{{"jsonrpc":"2.0","id":"up{i}","result":true}}"#)
        );
    }
    let all = client.recv();
    let expected: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"id":"{}","external_id":"","name":"q{i:03}"}}"#, i + 1))
        .collect();
    assert_eq!(
        all,
        format!(
            r#"{{"jsonrpc":"2.0","id":"all","result":[{}]}}"#,
            expected.join(",")
        )
    );
}

/// Every call acknowledged from 16 concurrent connections is there after kill -9.
#[test]
fn every_acknowledged_write_survives_kill_9() {
    let db = Db::new();
    let server = Server::start_on(&db, &[]);
    let workers: Vec<_> = (0..16)
        .map(|c| {
            let mut client = server.client();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..40 {
                    let name = format!("c{c}-{i}");
                    let answer = client.call(&create(i, &name));
                    let prefix = format!(r#"{{"jsonrpc":"2.0","id":{i},"result":"#);
                    let id = answer
                        .strip_prefix(&prefix)
                        .and_then(|r| r.strip_suffix('}'))
                        .unwrap()
                        .to_string();
                    acked.push((id, name));
                }
                acked
            })
        })
        .collect();
    let acked: Vec<(String, String)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    server.signal("-KILL");
    drop(server);
    let reopened = Server::start_on(&db, &[]);
    let mut client = reopened.client();
    for (id, name) in &acked {
        let answer = client.call(&format!(
            r#"{{"jsonrpc":"2.0","method":"getGroup","id":1,"params":["{id}"]}}"#
        ));
        assert_eq!(
            answer,
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{{"id":"{id}","external_id":"","name":"{name}"}}}}"#
            )
        );
    }
    assert_eq!(acked.len(), 16 * 40);
}

/// Reads may run before the commit of the writes ahead of them only when those writes cannot
/// change their answer; a read of a group a queued write touches waits for it.
#[tokio::test]
async fn reads_after_queued_writes_see_them() {
    let (service, _dir) = service();
    let call = |line: String| {
        let service = &service;
        async move {
            let mut out = Vec::new();
            service.handle_line(line.as_bytes(), &mut out).await;
            String::from_utf8(out).unwrap()
        }
    };
    assert_eq!(
        call(create(1, "a")).await,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}\n"
    );
    assert_eq!(
        call(create(2, "b")).await,
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":2}\n"
    );
    let batch = concat!(
        r#"[{"jsonrpc":"2.0","method":"updateGroup","id":1,"params":[1,"z"]},"#,
        r#"{"jsonrpc":"2.0","method":"getGroup","id":2,"params":[2]},"#,
        r#"{"jsonrpc":"2.0","method":"getGroup","id":3,"params":[1]},"#,
        r#"{"jsonrpc":"2.0","method":"removeGroup","id":4,"params":[1]},"#,
        r#"{"jsonrpc":"2.0","method":"getGroup","id":5,"params":[1]},"#,
        r#"{"jsonrpc":"2.0","method":"createGroup","id":6,"params":["c"]},"#,
        r#"{"jsonrpc":"2.0","method":"getGroup","id":7,"params":[3]}]"#
    );
    assert_eq!(
        call(batch.to_string()).await,
        concat!(
            r#"[{"jsonrpc":"2.0","id":1,"result":true},"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{"id":"2","external_id":"","name":"b"}},"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{"id":"1","external_id":"","name":"z"}},"#,
            r#"{"jsonrpc":"2.0","id":4,"result":true},"#,
            r#"{"jsonrpc":"2.0","id":5,"result":false},"#,
            r#"{"jsonrpc":"2.0","id":6,"result":3},"#,
            r#"{"jsonrpc":"2.0","id":7,"result":{"id":"3","external_id":"","name":"c"}}]"#,
            "\n"
        )
    );
}

/// Reads with no write ahead of them are gathered and run together; they still answer from the
/// state before the writes that follow them, in order, whether they came as pipelined lines or
/// in a batch.
#[tokio::test]
async fn reads_before_queued_writes_do_not_see_them() {
    let (service, _dir) = service();
    let get = |id: usize, group: u64| {
        format!(r#"{{"jsonrpc":"2.0","method":"getGroup","id":{id},"params":[{group}]}}"#)
    };
    let found = |id: usize, group: u64, name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"id":"{group}","external_id":"","name":"{name}"}}}}"#
        )
    };
    let missing = |id: usize| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":false}}"#);
    let mut out = Vec::new();
    service
        .handle_line(create(0, "a").as_bytes(), &mut out)
        .await;

    // 20 pipelined lines: more gets than one round, then a create and a get of what it made.
    let mut frames: Vec<String> = (1..=18).map(|i| get(i, 1 + (i as u64 % 2))).collect();
    frames.push(create(19, "b"));
    frames.push(get(20, 2));
    let frames: Vec<groupd::codec::Frame> = frames
        .iter()
        .map(|l| groupd::codec::Frame::Line(bytes::Bytes::copy_from_slice(l.as_bytes())))
        .collect();
    let mut session = groupd::session::Session::trusted();
    let mut answers = Vec::new();
    let mut done = 0;
    while done < frames.len() {
        done += service
            .handle_frames(&mut session, &frames[done..], &mut answers)
            .await;
    }
    let mut expected: Vec<String> = (1..=18)
        .map(|i| match i % 2 {
            0 => found(i, 1, "a"),
            _ => missing(i),
        })
        .collect();
    expected.push(r#"{"jsonrpc":"2.0","id":19,"result":2}"#.to_string());
    expected.push(found(20, 2, "b"));
    assert_eq!(
        String::from_utf8(answers)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        expected
    );

    // The same in one batch.
    out.clear();
    let batch = format!("[{},{},{}]", get(1, 3), create(2, "c"), get(3, 3));
    service.handle_line(batch.as_bytes(), &mut out).await;
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        format!(
            "[{},{},{}]\n",
            missing(1),
            r#"{"jsonrpc":"2.0","id":2,"result":3}"#,
            found(3, 3, "c")
        )
    );

    // A get whose create comes last, with nothing after it.
    out.clear();
    let batch = format!("[{},{}]", get(1, 4), create(2, "d"));
    service.handle_line(batch.as_bytes(), &mut out).await;
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "[{},{}]\n",
            missing(1),
            r#"{"jsonrpc":"2.0","id":2,"result":4}"#
        )
    );
}
