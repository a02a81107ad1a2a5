//! SPEC §4 (durable writes, ids never reused across restarts) and §5 (exit statuses, stdio,
//! logs on stderr only): the server is stopped and started again on the same database file.

mod common;

use common::{Db, Server, check, run, stdio};

const LIST: &str = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"list"}"#;

#[test]
fn answers_survive_a_sigterm_restart() {
    let db = Db::new();
    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A","a"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["B"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"updateGroup","id":3,"params":[2,"Bé","b"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":3,"result":true}"#),
            ),
        ],
    );
    let (status, stderr) = server.stop("-TERM");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM; stderr: {stderr}"
    );

    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[(
            LIST,
            Some(
                r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"a","name":"A"},{"id":"2","external_id":"b","name":"Bé"}]}"#,
            ),
        )],
    );
    let (status, stderr) = server.stop("-INT");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGINT; stderr: {stderr}"
    );
}

#[test]
fn an_acknowledged_write_survives_kill_9() {
    let db = Db::new();
    let server = Server::start_on(&db, &[]);
    let mut client = server.client();
    client.check(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":2,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":true}"#),
        ),
    ]);
    // The last answer read, then at once the power cut.
    let answer = client.call(r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["B"]}"#);
    assert_eq!(answer, r#"{"jsonrpc":"2.0","id":3,"result":2}"#);
    let (status, _) = server.stop("-KILL");
    assert_eq!(status.code(), None, "killed by a signal");

    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"getGroup","id":4,"params":[2]}"#,
                Some(r#"{"jsonrpc":"2.0","id":4,"result":{"id":"2","external_id":"","name":"B"}}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"getGroup","id":5,"params":[1]}"#,
                Some(r#"{"jsonrpc":"2.0","id":5,"result":false}"#),
            ),
            // Neither id 1 nor id 2 comes back.
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":6,"params":["C"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":6,"result":3}"#),
            ),
        ],
    );
}

#[test]
fn ids_are_not_reused_after_a_restart() {
    let db = Db::new();
    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["B"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"removeGroup","id":3,"params":[2]}"#,
                Some(r#"{"jsonrpc":"2.0","id":3,"result":true}"#),
            ),
        ],
    );
    let (status, stderr) = server.stop("-TERM");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");

    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":4,"params":["B"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":4,"result":3}"#),
            ),
            (
                LIST,
                Some(
                    r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"","name":"A"},{"id":"3","external_id":"","name":"B"}]}"#,
                ),
            ),
        ],
    );
    drop(server);

    // stdio mode shares the same counter.
    let answers = stdio(
        &db,
        &[],
        &[r#"{"jsonrpc":"2.0","method":"createGroup","id":5,"params":["C"]}"#],
    );
    assert_eq!(answers, [r#"{"jsonrpc":"2.0","id":5,"result":4}"#]);
}

#[test]
fn a_second_server_on_the_same_database_exits_1_with_one_line() {
    let db = Db::new();
    let first = Server::start_on(&db, &[]);
    let failure = Server::try_start(db.path(), &[])
        .err()
        .expect("a second groupd serve on a database in use must not start");
    assert_eq!(failure.status.code(), Some(1), "stderr: {}", failure.stderr);
    let lines: Vec<&str> = failure.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {lines:#?}");
    assert!(
        lines[0].contains(db.arg()),
        "the line should name the database: {}",
        lines[0]
    );
    // stdio mode is refused the same way.
    let done = run(&["stdio", "--db", db.arg()], b"");
    assert_eq!(done.status.code(), Some(1), "stderr: {}", done.stderr);
    assert_eq!(done.stderr.lines().count(), 1, "stderr: {}", done.stderr);
    assert!(done.stdout.is_empty());
    // The first one is unharmed.
    check(
        &first,
        &[(LIST, Some(r#"{"jsonrpc":"2.0","id":"list","result":[]}"#))],
    );
}

#[test]
fn address_in_use_exits_1_with_one_line() {
    let first = Server::start(&[]);
    let db = Db::new();
    let addr = first.addr.to_string();
    let done = run(&["serve", "--listen", &addr, "--db", db.arg()], b"");
    assert_eq!(done.status.code(), Some(1), "stderr: {}", done.stderr);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {lines:#?}");
    assert!(
        lines[0].contains(&addr),
        "the line should name the address: {}",
        lines[0]
    );
    assert!(done.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let db = Db::new();
    for args in [
        &["serve", "--no-such-flag", "--db", db.arg()][..],
        &["serve", "--listen", "not-an-address", "--db", db.arg()],
        &["serve", "--max-batch", "zero", "--db", db.arg()],
        &["serve", "--max-line-bytes", "0", "--db", db.arg()],
        &["serve", "--idle-timeout", "-1", "--db", db.arg()],
        &["stdio", "--db", db.arg(), "extra"],
        &["no-such-command"],
        &[],
    ] {
        let done = run(args, b"");
        assert_eq!(
            done.status.code(),
            Some(2),
            "groupd {args:?}; stderr: {}",
            done.stderr
        );
        assert!(!done.stderr.is_empty(), "groupd {args:?} should say why");
        assert!(done.stdout.is_empty(), "groupd {args:?} wrote to stdout");
    }
    assert!(
        !db.path().exists(),
        "a usage error must not create the database"
    );
}

#[test]
fn stdio_exits_0_at_eof_and_stdout_carries_only_answers() {
    let db = Db::new();
    let mut input = Vec::new();
    for line in [
        r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A"]}"#,
        r#"{"jsonrpc":"2.0","method":"createGroup","params":["B"]}"#,
        "",
        "not json",
        r#"{"jsonrpc":"2.0","method":"getAllGroups","id":2}"#,
        r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["C"]}"#,
    ] {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    let done = run(&["stdio", "--db", db.arg()], &input);
    assert_eq!(done.status.code(), Some(0), "stderr: {}", done.stderr);
    let lines = done.stdout_lines();
    assert_eq!(lines.len(), 4, "stdout: {lines:#?}");
    assert_eq!(lines[0], r#"{"jsonrpc":"2.0","id":1,"result":1}"#);
    common::assert_line("not json", common::PARSE_ERROR, &lines[1]);
    assert_eq!(
        lines[2],
        r#"{"jsonrpc":"2.0","id":2,"result":[{"id":"1","external_id":"","name":"A"},{"id":"2","external_id":"","name":"B"}]}"#
    );
    // The last answer is written before the exit, and its write is durable.
    assert_eq!(lines[3], r#"{"jsonrpc":"2.0","id":3,"result":3}"#);
    // Logs went to stderr (RUST_LOG=info), not stdout.
    assert!(!done.stderr.is_empty(), "expected log lines on stderr");

    let answers = stdio(&db, &[], &[LIST]);
    assert_eq!(
        answers,
        [
            r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"","name":"A"},{"id":"2","external_id":"","name":"B"},{"id":"3","external_id":"","name":"C"}]}"#
        ]
    );
}

#[test]
fn stdio_with_no_input_exits_0_and_writes_nothing() {
    let db = Db::new();
    assert!(stdio(&db, &[], &[]).is_empty());
}

#[test]
fn sigterm_with_an_idle_client_connected_still_exits_0_promptly() {
    let server = Server::start(&[]);
    let mut client = server.client();
    client.check(&[(
        r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A"]}"#,
        Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
    )]);
    let started = std::time::Instant::now();
    let (status, stderr) = server.stop("-TERM");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "shutdown took {:?}",
        started.elapsed()
    );
    client.expect_eof();
}

#[test]
fn sigterm_answers_every_request_it_read_and_runs_no_other() {
    let db = Db::new();
    let server = Server::start_on(&db, &[]);
    let mut client = server.client();
    let requests: String = (1..=3000)
        .map(|i| {
            format!("{{\"jsonrpc\":\"2.0\",\"method\":\"createGroup\",\"id\":{i},\"params\":[\"g{i}\"]}}\n")
        })
        .collect();
    let mut sender = client.stream();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let _ = sender.write_all(requests.as_bytes());
    });
    // Mid-stream: the first answer is in, then the signal.
    let mut answers = vec![client.recv()];
    let (status, stderr) = server.stop("-TERM");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    loop {
        match client.try_recv() {
            Ok(Some(line)) => answers.push(line),
            Ok(None) => break,
            Err(e) => panic!("after {} answers: {e}", answers.len()),
        }
    }
    let _ = feeder.join();
    for (i, answer) in answers.iter().enumerate() {
        let id = i + 1;
        assert_eq!(
            answer,
            &format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{id}}}"#)
        );
    }
    // Every answered create is there, and no unanswered one ran.
    let mut groups: Vec<(String, usize)> =
        (1..=answers.len()).map(|i| (format!("g{i}"), i)).collect();
    groups.sort();
    let listed: Vec<String> = groups
        .iter()
        .map(|(name, id)| format!(r#"{{"id":"{id}","external_id":"","name":"{name}"}}"#))
        .collect();
    let server = Server::start_on(&db, &[]);
    let got = server.client().call(LIST);
    common::assert_line(
        LIST,
        &format!(
            r#"{{"jsonrpc":"2.0","id":"list","result":[{}]}}"#,
            listed.join(",")
        ),
        &got,
    );
}

#[test]
fn an_unreadable_database_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, b"this is not a redb database\n".repeat(200)).unwrap();
    let missing_dir = dir.path().join("no-such-dir").join("groupd.redb");
    for db in [dir.path(), garbage.as_path(), missing_dir.as_path()] {
        let db = db.to_str().unwrap();
        for args in [
            &["serve", "--listen", "127.0.0.1:0", "--db", db][..],
            &["stdio", "--db", db],
        ] {
            let done = run(args, b"");
            let mode = args[0];
            assert_eq!(
                done.status.code(),
                Some(1),
                "{mode} --db {db}; stderr: {}",
                done.stderr
            );
            let lines: Vec<&str> = done.stderr.lines().collect();
            assert_eq!(
                lines.len(),
                1,
                "{mode} --db {db}: one line on stderr, got {lines:#?}"
            );
            assert!(
                lines[0].contains(db),
                "the line should name the database: {}",
                lines[0]
            );
            assert!(done.stdout.is_empty());
        }
    }
    // The garbage was not overwritten.
    assert!(
        std::fs::read(&garbage)
            .unwrap()
            .starts_with(b"this is not a redb database")
    );
}

#[test]
fn groupd_db_in_the_environment_chooses_the_database() {
    let db = Db::new();
    let done = common::run_with_env(
        &["stdio"],
        &[("GROUPD_DB", db.arg())],
        b"{\"jsonrpc\":\"2.0\",\"method\":\"createGroup\",\"id\":1,\"params\":[\"A\"]}\n",
    );
    assert_eq!(done.status.code(), Some(0), "stderr: {}", done.stderr);
    assert_eq!(
        done.stdout_lines(),
        [r#"{"jsonrpc":"2.0","id":1,"result":1}"#]
    );
    assert_eq!(
        stdio(&db, &[], &[LIST]),
        [r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"","name":"A"}]}"#]
    );
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    for flag in ["--help", "--version"] {
        let done = run(&[flag], b"");
        assert_eq!(
            done.status.code(),
            Some(0),
            "groupd {flag}; stderr: {}",
            done.stderr
        );
        let stdout = String::from_utf8(done.stdout).unwrap();
        assert!(
            stdout.contains("groupd") || flag == "--help",
            "groupd {flag}: {stdout}"
        );
        assert!(!stdout.is_empty(), "groupd {flag} printed nothing");
    }
    let help = String::from_utf8(run(&["--help"], b"").stdout).unwrap();
    for command in ["serve", "stdio"] {
        assert!(
            help.contains(command),
            "--help should list {command}: {help}"
        );
    }
}

#[test]
fn sigterm_with_a_client_that_never_reads_exits_0_within_the_grace_period() {
    let server = Server::start(&[]);
    let mut setup = server.client();
    let creates: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["{i:02}{}"]}}"#,
                "n".repeat(90)
            )
        })
        .collect();
    setup.call(&format!("[{}]", creates.join(",")));
    // This client asks for far more than the socket buffers hold, and never reads.
    let greedy = server.client();
    let mut stream = greedy.stream();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let request = "{\"jsonrpc\":\"2.0\",\"method\":\"getAllGroups\",\"id\":1}\n".repeat(20_000);
        let _ = stream.write_all(request.as_bytes());
    });
    setup.assert_nothing_pending();
    // Not a readiness wait: time for the answers to fill the socket buffers, so the server is
    // blocked writing to this client when the signal comes.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    server.signal("-TERM");
    // It stops accepting at once, while it waits for the stuck client.
    let refused = loop {
        match std::net::TcpStream::connect(server.addr) {
            Err(_) => break true,
            Ok(_) if started.elapsed() > std::time::Duration::from_secs(3) => break false,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    assert!(refused, "new connections are still accepted after SIGTERM");
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
    let _ = greedy.stream().shutdown(std::net::Shutdown::Both);
    let _ = feeder.join();
}

#[test]
fn stdio_exits_0_on_sigterm_with_stdin_still_open() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let db = Db::new();
    let mut child = Command::new(common::GROUPD)
        .args(["stdio", "--db", db.arg()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (lines, answers) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let _ = lines.send(line.unwrap());
        }
    });
    stdin
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"createGroup\",\"id\":1,\"params\":[\"A\"]}\n",
        )
        .unwrap();
    let answer = answers.recv_timeout(common::DEADLINE).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("no answer from groupd stdio")
    });
    assert_eq!(answer, r#"{"jsonrpc":"2.0","id":1,"result":1}"#);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = common::wait_until(&mut child, common::DEADLINE);
    assert_eq!(status.code(), Some(0));
    drop(stdin);
    let rest: Vec<String> = answers.iter().collect();
    assert!(rest.is_empty(), "nothing more on stdout: {rest:?}");
    assert_eq!(
        stdio(&db, &[], &[LIST]),
        [r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"","name":"A"}]}"#]
    );
}

/// Names are indexed in memory since schema version 2: the index is rebuilt from the groups on
/// disk, so a name taken before a restart is still taken, and a freed one is free.
#[test]
fn names_stay_unique_across_a_restart() {
    let db = Db::new();
    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["Ops"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["Dev"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"updateGroup","id":3,"params":[2,"QA"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":3,"result":true}"#),
            ),
        ],
    );
    let (status, stderr) = server.stop("-KILL");
    assert_eq!(status.code(), None, "stderr: {stderr}");

    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":4,"params":["Ops"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":4,"result":false}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":5,"params":["QA"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":5,"result":false}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"updateGroup","id":6,"params":[1,"QA"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":6,"result":false}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":7,"params":["Dev"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":7,"result":3}"#),
            ),
        ],
    );
}

const OLD_GROUPS: redb::TableDefinition<u64, (&str, &str)> = redb::TableDefinition::new("groups");
const OLD_META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");

/// Writes a database as an older groupd would have: `groups`, `meta` with `version` and
/// `next_id`, and for version 1 the `names` table.
fn old_database(db: &Db, version: u64, groups: &[(u64, &str, &str)], next_id: u64) {
    let names: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("names");
    let old = redb::Database::create(db.path()).unwrap();
    let txn = old.begin_write().unwrap();
    {
        let mut g = txn.open_table(OLD_GROUPS).unwrap();
        for &(id, name, external_id) in groups {
            g.insert(id, (name, external_id)).unwrap();
        }
        if version == 1 {
            let mut n = txn.open_table(names).unwrap();
            for &(id, name, _) in groups {
                n.insert(name, id).unwrap();
            }
        }
        let mut m = txn.open_table(OLD_META).unwrap();
        m.insert("schema_version", version).unwrap();
        m.insert("next_id", next_id).unwrap();
    }
    txn.commit().unwrap();
}

/// The tables of the database at `db` and its schema version, read with redb directly.
fn tables_and_version(db: &Db) -> (Vec<String>, Option<u64>) {
    use redb::{ReadableDatabase, TableHandle};
    let opened = redb::Database::create(db.path()).unwrap();
    let txn = opened.begin_read().unwrap();
    let tables = txn.list_tables().unwrap().map(|t| t.name().to_string());
    let version = txn
        .open_table(OLD_META)
        .unwrap()
        .get("schema_version")
        .unwrap();
    (tables.collect(), version.map(|v| v.value()))
}

/// A database written by schema version 1 (which kept a `names` table on disk) opens with its
/// groups, names and id counter intact, and loses only that table.
#[test]
fn a_schema_version_1_database_is_migrated() {
    let db = Db::new();
    old_database(&db, 1, &[(1, "Ops", "x1"), (3, "Dev", "")], 4);

    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"getGroup","id":1,"params":[1]}"#,
                Some(
                    r#"{"jsonrpc":"2.0","id":1,"result":{"id":"1","external_id":"x1","name":"Ops"}}"#,
                ),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["Dev"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":2,"result":false}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["QA"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":3,"result":4}"#),
            ),
            (
                LIST,
                Some(
                    r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"3","external_id":"","name":"Dev"},{"id":"1","external_id":"x1","name":"Ops"},{"id":"4","external_id":"","name":"QA"}]}"#,
                ),
            ),
        ],
    );
    let (status, stderr) = server.stop("-TERM");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");

    let (tables, version) = tables_and_version(&db);
    assert_eq!(tables, ["groups", "meta"]);
    assert_eq!(version, Some(4));
}

/// A database written by schema version 2 (which wrote `next_id` in every commit) or 3 (no
/// commit log) opens as version 4 with its counter honoured: the next id comes from `next_id`
/// when a removal left it above every id in `groups`.
#[test]
fn a_schema_version_2_database_keeps_its_id_counter() {
    for version in [2, 3] {
        old_database_keeps_its_id_counter(version);
    }
}

fn old_database_keeps_its_id_counter(version: u64) {
    let db = Db::new();
    old_database(&db, version, &[(1, "Ops", ""), (3, "Dev", "")], 6);

    let server = Server::start_on(&db, &[]);
    check(
        &server,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["QA"]}"#,
                Some(r#"{"jsonrpc":"2.0","id":1,"result":6}"#),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"getGroup","id":2,"params":[3]}"#,
                Some(
                    r#"{"jsonrpc":"2.0","id":2,"result":{"id":"3","external_id":"","name":"Dev"}}"#,
                ),
            ),
        ],
    );
    let (status, stderr) = server.stop("-TERM");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");

    assert_eq!(tables_and_version(&db).1, Some(4));
}
