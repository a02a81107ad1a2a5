//! `groupd check`, `groupd dump` and `groupd restore` (SPEC §13), run as a user runs them: the
//! real binary, on real database files and a real server.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{Db, Finished, Server, one_line};

fn groupd(args: &[&str], input: &[u8]) -> Finished {
    common::run(args, input)
}

/// A database with groups created, renamed and removed (the last id removed too, so next_id is
/// above every id left), names with escapes and non-ASCII text.
fn filled(db: &Db) {
    let lines = common::BACKUP_FILL;
    let answers = common::stdio(db, &[], &lines);
    assert_eq!(answers.len(), lines.len(), "{answers:?}");
}

#[test]
fn check_reports_a_healthy_database_and_refuses_a_missing_one() {
    let db = Db::new();
    filled(&db);
    let done = groupd(&["check", "--db", db.arg()], b"");
    assert!(done.status.success(), "{}", done.stderr);
    let out = String::from_utf8(done.stdout).unwrap();
    let line = one_line(&out);
    assert!(
        line.contains("healthy: 2 groups, next id 6,") && line.ends_with(" bytes"),
        "{line}"
    );

    let missing = Db::new();
    let done = groupd(&["check", "--db", missing.arg()], b"");
    assert_eq!(done.status.code(), Some(1));
    assert!(one_line(&done.stderr).contains("no database at"));
    assert!(!missing.path().exists(), "check created a database");
}

#[test]
fn check_dump_and_restore_refuse_a_database_a_server_holds() {
    let db = Db::new();
    filled(&db);
    let server = Server::start_on(&db, &[]);
    for args in [
        vec!["check", "--db", db.arg()],
        vec!["check", "--repair", "--db", db.arg()],
        vec!["dump", "--db", db.arg()],
    ] {
        let done = groupd(&args, b"");
        assert_eq!(done.status.code(), Some(1), "{args:?}");
        assert!(done.stdout.is_empty(), "{args:?}");
        assert!(
            one_line(&done.stderr).contains("in use by another process"),
            "{args:?}: {}",
            done.stderr
        );
    }
    let done = groupd(&["restore", "--db", db.arg()], b"");
    assert_eq!(done.status.code(), Some(1));
    assert!(one_line(&done.stderr).contains("already exists"));
    drop(server);
}

#[test]
fn dump_restore_dump_gives_the_same_bytes_and_the_same_next_id() {
    let db = Db::new();
    filled(&db);
    let first = groupd(&["dump", "--db", db.arg()], b"");
    assert!(first.status.success(), "{}", first.stderr);
    let lines = first.stdout_lines();
    assert_eq!(
        lines[0],
        r#"{"format":"groupd-dump","version":1,"next_id":6,"groups":2}"#
    );
    assert_eq!(lines[1], r#"{"id":"1","external_id":"x","name":"Ops 2"}"#);
    assert_eq!(
        lines[2],
        r#"{"id":"2","external_id":"é€𝄞","name":"Équipe \"Nord\"\\ \t"}"#
    );

    let copy = Db::new();
    let restored = groupd(&["restore", "--db", copy.arg(), "-"], &first.stdout);
    assert!(restored.status.success(), "{}", restored.stderr);
    let again = groupd(&["dump", "--db", copy.arg()], b"");
    assert_eq!(again.stdout, first.stdout, "dump → restore → dump differs");

    // The copy hands out ids above next_id, as the original would.
    let answers = common::stdio(
        &copy,
        &[],
        &[r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["new"]}"#],
    );
    assert_eq!(answers, [r#"{"jsonrpc":"2.0","id":1,"result":6}"#]);
}

#[test]
fn a_bad_dump_is_named_by_line_and_writes_nothing() {
    let db = Db::new();
    filled(&db);
    let dump = groupd(&["dump", "--db", db.arg()], b"").stdout;
    let text = String::from_utf8(dump).unwrap();
    let mut swapped: Vec<&str> = text.lines().collect();
    swapped.swap(1, 2);
    let cases = [
        (swapped.join("\n"), "line 3: id 1 does not follow id 2"),
        (
            text.replace("\"next_id\":6", "\"next_id\":2"),
            "line 3: id 2 is not below next_id 2",
        ),
        (
            text.replace("Ops 2", "x\u{e9}".repeat(60).as_str()),
            "line 2: group 1: the name must be",
        ),
        (
            text.replace("\"groups\":2", "\"groups\":3"),
            "the header says 3 groups",
        ),
        (format!("{text}{{\"id\":\"9\"}}\n"), "line 4: not a group"),
    ];
    for (dump, expected) in cases {
        let target = Db::new();
        let done = groupd(&["restore", "--db", target.arg()], dump.as_bytes());
        assert_eq!(done.status.code(), Some(1), "{expected}");
        let line = one_line(&done.stderr);
        assert!(
            line.contains(expected) && line.contains("nothing was written"),
            "{line}"
        );
        assert!(!target.path().exists(), "{expected}: a file was written");
    }
}

/// An online dump is one consistent snapshot taken while 64 clients create groups: it holds
/// every group acknowledged before it started, with its id; a restore of it serves them with
/// the same ids and hands out ids above them.
#[test]
fn an_online_dump_under_load_holds_every_acknowledged_group() {
    let server = Server::start(&[]);
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..64)
        .map(|c| {
            let (acked, stop, addr) = (Arc::clone(&acked), Arc::clone(&stop), server.addr);
            thread::spawn(move || {
                let mut client = common::Client::connect(addr);
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("c{c} n{n}");
                    let answer = client.call(&format!(
                        r#"{{"jsonrpc":"2.0","method":"createGroup","id":{n},"params":["{name}"]}}"#
                    ));
                    let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
                    let id = value["result"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("{answer}"));
                    acked.lock().unwrap().push((id, name));
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 3000 {
        thread::yield_now();
    }
    let before: Vec<(u64, String)> = acked.lock().unwrap().clone();
    let addr = server.addr.to_string();
    let dump = groupd(&["dump", "--addr", &addr], b"");
    let during = acked.lock().unwrap().len();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    assert!(dump.status.success(), "{}", dump.stderr);
    let lines = dump.stdout_lines();
    let dumped: BTreeMap<u64, String> = lines[1..]
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["id"].as_str().unwrap().parse().unwrap();
            (id, v["name"].as_str().unwrap().to_owned())
        })
        .collect();
    for (id, name) in &before {
        assert_eq!(
            dumped.get(id),
            Some(name),
            "acknowledged group {id} missing"
        );
    }
    let header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let next_id = header["next_id"].as_u64().unwrap();
    assert_eq!(header["groups"].as_u64(), Some(dumped.len() as u64));
    assert!(dumped.keys().all(|&id| id < next_id));
    eprintln!(
        "{} groups acknowledged before the dump, {} in it, {during} by its end",
        before.len(),
        dumped.len()
    );

    let copy = Db::new();
    let restored = groupd(&["restore", "--db", copy.arg()], &dump.stdout);
    assert!(restored.status.success(), "{}", restored.stderr);
    let served = Server::start_on(&copy, &[]);
    let mut client = served.client();
    for (id, name) in before.iter().step_by(97) {
        let answer = client.call(&format!(
            r#"{{"jsonrpc":"2.0","method":"getGroup","id":1,"params":[{id}]}}"#
        ));
        let expected = format!(r#""result":{{"id":"{id}","external_id":"","name":"{name}"}}"#);
        assert!(answer.contains(&expected), "{answer}");
    }
    let created =
        client.call(r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["after"]}"#);
    assert_eq!(
        created,
        format!(r#"{{"jsonrpc":"2.0","id":2,"result":{next_id}}}"#)
    );

    // Idle, an online dump and an offline one of the same state are the same bytes.
    let online = groupd(&["dump", "--addr", &served.addr.to_string()], b"");
    let (status, _) = served.stop("-TERM");
    assert!(status.success());
    let offline = groupd(&["dump", "--db", copy.arg()], b"");
    assert!(online.status.success() && offline.status.success());
    assert_eq!(online.stdout, offline.stdout);
}

/// With a token, an online dump authenticates first (`--token-file`); without it the server's
/// refusal is the one line, exit 1. Nothing that reaches stdout is half a dump.
#[test]
fn an_online_dump_from_a_server_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let token = token.to_str().unwrap();
    let server = Server::start(&["--token-file", token]);
    let mut client = server.client();
    client.call(r#"{"jsonrpc":"2.0","method":"authenticate","id":1,"params":["s3cret"]}"#);
    client.call(r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["Ops"]}"#);
    let addr = server.addr.to_string();

    let done = groupd(&["dump", "--addr", &addr, "--token-file", token], b"");
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(
        done.stdout_lines(),
        [
            r#"{"format":"groupd-dump","version":1,"next_id":2,"groups":1}"#,
            r#"{"id":"1","external_id":"","name":"Ops"}"#
        ]
    );

    let refused = common::run_with_env(&["dump", "--addr", &addr], &[], b"");
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    assert!(
        one_line(&refused.stderr).contains("-32001"),
        "{}",
        refused.stderr
    );
}
