//! SPEC §14 at the wire: `groupd serve` and `groupd stdio` with `--db postgres://…` against a
//! throw-away PostgreSQL 15 (tests/support/postgres.rs): the documentation examples, two groupd
//! processes on one database, `kill -9` of a groupd under load, and an unreachable database at
//! start.

#[path = "support/postgres.rs"]
mod postgres;
mod spawned;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spawned::{Conn, Server};

/// `groupd serve` on the database `url`.
fn serve(url: &str) -> Server {
    Server::start_on(tempfile::tempdir().expect("temp dir"), url, &[])
}

/// The result of one call, which must not be an error.
fn result(conn: &mut Conn, method: &str, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let answer: Value = serde_json::from_str(&conn.call(&request.to_string())).expect("JSON");
    answer
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{method}: {answer}"))
}

/// SPEC §4's documentation examples, verbatim, over stdio on PostgreSQL.
#[test]
fn the_documentation_examples_work_on_postgres() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let url = cluster.database("docs");
    let mut process = spawned::StdioProcess::start(&["stdio", "--db", &url]);
    let requests = [
        r#"{"jsonrpc": "2.0", "method": "createGroup", "id": 1, "params": ["My Group A"]}"#,
        r#"{"jsonrpc": "2.0", "method": "createGroup", "id": 1416806551, "params": ["My Group B", "1234"]}"#,
        r#"{"jsonrpc": "2.0", "method": "getGroup", "id": 1968647622, "params": ["1"]}"#,
        r#"{"jsonrpc": "2.0", "method": "getAllGroups", "id": 546070742}"#,
        r#"{"jsonrpc": "2.0", "method": "updateGroup", "id": 866078030, "params": {"group_id": "1", "name": "ABC", "external_id": "something"}}"#,
        r#"{"jsonrpc": "2.0", "method": "removeGroup", "id": 566000661, "params": ["1"]}"#,
    ];
    let expected = [
        r#"{"jsonrpc":"2.0","id":1,"result":1}"#,
        r#"{"jsonrpc":"2.0","id":1416806551,"result":2}"#,
        r#"{"jsonrpc":"2.0","id":1968647622,"result":{"id":"1","external_id":"","name":"My Group A"}}"#,
        r#"{"jsonrpc":"2.0","id":546070742,"result":[{"id":"1","external_id":"","name":"My Group A"},{"id":"2","external_id":"1234","name":"My Group B"}]}"#,
        r#"{"jsonrpc":"2.0","id":866078030,"result":true}"#,
        r#"{"jsonrpc":"2.0","id":566000661,"result":true}"#,
    ];
    for (request, answer) in requests.iter().zip(expected) {
        process.send(format!("{request}\n").as_bytes());
        assert_eq!(process.line(), answer);
    }
    let (rest, status) = process.finish();
    assert_eq!((rest.as_str(), status), ("", Some(0)));
}

/// Two groupd processes on one database: each reads the other's acknowledged writes at once, and
/// a name goes to only one of them.
#[test]
fn two_groupd_processes_share_one_database() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let url = cluster.database("shared");
    let (a, b) = (serve(&url), serve(&url));
    let (mut ca, mut cb) = (a.connect(), b.connect());
    let id = result(&mut ca, "createGroup", json!(["Ops"]));
    assert_eq!(
        result(&mut cb, "getGroup", json!([id])),
        json!({"id": id.to_string(), "external_id": "", "name": "Ops"})
    );
    assert_eq!(result(&mut cb, "createGroup", json!(["Ops"])), json!(false));
    assert_eq!(
        result(&mut cb, "updateGroup", json!([id, null, "ext"])),
        json!(true)
    );
    assert_eq!(
        result(&mut ca, "getGroup", json!([id]))["external_id"],
        "ext"
    );
    assert_eq!(result(&mut ca, "removeGroup", json!([id])), json!(true));
    assert_eq!(result(&mut cb, "getGroup", json!([id])), json!(false));
    // Racing creates through both: every name to exactly one process.
    let racers: Vec<_> = [a.addr, b.addr]
        .into_iter()
        .map(|addr| {
            std::thread::spawn(move || {
                let mut conn = Conn::tcp(addr);
                (0..100)
                    .filter(|i| {
                        result(&mut conn, "createGroup", json!([format!("race {i}")])) != false
                    })
                    .count()
            })
        })
        .collect();
    let won: usize = racers.into_iter().map(|r| r.join().expect("racer")).sum();
    assert_eq!(won, 100);
}

/// `kill -9` of a groupd under a create load: every acknowledged create is in the database.
#[test]
fn kill_9_under_load_loses_no_acknowledged_write() {
    let Some(cluster) = postgres::Cluster::start() else {
        return;
    };
    let url = cluster.database("killed");
    let mut groupd = serve(&url);
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let addr = groupd.addr;
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                let Ok(stream) = TcpStream::connect(addr) else {
                    return acknowledged;
                };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                for i in 0.. {
                    let name = format!("c{c} {i}");
                    let request = json!({"jsonrpc": "2.0", "id": i, "method": "createGroup", "params": [name]});
                    if writer.write_all(format!("{request}\n").as_bytes()).is_err() {
                        break;
                    }
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                    let answer: Value = serde_json::from_str(&line).expect("JSON");
                    if let Some(id) = answer["result"].as_u64() {
                        acknowledged.push((id, name));
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    groupd.kill();
    let acknowledged: Vec<(u64, String)> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    assert!(
        acknowledged.len() > 100,
        "only {} creates",
        acknowledged.len()
    );
    let stored = cluster.psql("killed", "SELECT id || ' ' || name FROM groups");
    let stored: std::collections::HashSet<&str> = stored.lines().collect();
    for (id, name) in &acknowledged {
        assert!(
            stored.contains(format!("{id} {name}").as_str()),
            "lost {id} {name}"
        );
    }
}

/// An unreachable database at start: retried for `--connect-timeout`, then exit 1 with one line
/// that names the URL without its password.
#[test]
fn an_unreachable_database_is_retried_then_one_line_and_exit_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("postgres://groupd:s3cret@127.0.0.1:{port}/groups");
    let started = Instant::now();
    let out = spawned::run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &url,
            "--connect-timeout",
            "2",
        ],
        &[("RUST_LOG", "off")],
    );
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(waited >= Duration::from_secs(2), "gave up after {waited:?}");
}

/// PostgreSQL stopped (`-m immediate`) under a create load, then started again: meanwhile every
/// call gets `-32603` (never a false `false` or id); afterwards the same groupd serves again,
/// and every create it acknowledged is stored.
#[test]
fn postgres_restarted_under_load_is_served_again_without_restarting_groupd() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(mut cluster) = postgres::Cluster::start() else {
        return;
    };
    let url = cluster.database("restarted");
    let port = cluster.port;
    let groupd = serve(&url);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (addr, stop) = (groupd.addr, Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut conn = Conn::tcp(addr);
                let (mut acknowledged, mut internal, mut other) = (Vec::new(), 0, Vec::new());
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("c{c} {i}");
                    let request =
                        json!({"jsonrpc": "2.0", "id": i, "method": "createGroup", "params": [name]});
                    let answer: Value =
                        serde_json::from_str(&conn.call(&request.to_string())).expect("JSON");
                    match (answer["result"].as_u64(), answer["error"]["code"].as_i64()) {
                        (Some(id), None) => acknowledged.push((id, name)),
                        (None, Some(-32603)) => internal += 1,
                        _ => other.push(answer),
                    }
                }
                (acknowledged, internal, other)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    cluster.stop_immediate();
    std::thread::sleep(Duration::from_millis(1500));
    cluster.start_again();
    assert_eq!(cluster.port, port, "the cluster came back on another port");
    // Served again, by the same groupd, within a bounded time.
    let mut probe = groupd.connect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer: Value = serde_json::from_str(
            &probe.call(r#"{"jsonrpc":"2.0","id":"probe","method":"getAllGroups"}"#),
        )
        .expect("JSON");
        if answer.get("result").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "not served again: {answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (mut acknowledged, mut internal) = (Vec::new(), 0);
    for client in clients {
        let (acks, errors, other) = client.join().expect("client");
        assert!(
            other.is_empty(),
            "answers that are neither an id nor -32603: {other:?}"
        );
        acknowledged.extend(acks);
        internal += errors;
    }
    assert!(internal > 0, "no -32603 while PostgreSQL was down");
    let stored = cluster.psql("restarted", "SELECT id || ' ' || name FROM groups");
    let stored: std::collections::HashSet<&str> = stored.lines().collect();
    for (id, name) in &acknowledged {
        assert!(
            stored.contains(format!("{id} {name}").as_str()),
            "lost {id} {name}"
        );
    }
}
