//! The commit log (`<database>.wal`, README "Disk failures"): every acknowledged write is in it
//! before the answer, a crash leaves it for the next open (server or offline command) to
//! apply, a clean stop leaves the database file alone, and a damaged log is refused with one
//! line, never applied past the damage. Run as a user meets it: the real binary, real files,
//! SIGKILL.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Db, Server, one_line, run};

fn log_of(db: &Db) -> PathBuf {
    let mut name = db.path().as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

/// On a fresh database, creates one group per name, one call at a time (one commit, so one log
/// record, each), then kills the server with SIGKILL at once: before its idle checkpoint (half a
/// second after the last write), so the log holds the records the database file lacks. A
/// machine too busy to send the kill within [`KILL_WITHIN`] of the last request could let the
/// checkpoint come first; then the crash is run again on a new database.
fn crash_after(names: &[&str]) -> Db {
    for _ in 0..5 {
        let db = Db::new();
        let server = Server::start_on(&db, &[]);
        let mut client = server.client();
        let mut last_sent = Instant::now();
        for (i, name) in names.iter().enumerate() {
            last_sent = Instant::now();
            let request = format!(
                r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["{name}"]}}"#
            );
            let answer = client.call(&request);
            assert!(
                answer.ends_with(&format!(r#""result":{}}}"#, i + 1)),
                "{answer}"
            );
        }
        // The writer's idle timer started after the last request was sent.
        let in_time = last_sent.elapsed() < KILL_WITHIN;
        server.stop("-KILL");
        if in_time {
            assert!(log_of(&db).exists(), "a crash leaves the log");
            return db;
        }
    }
    panic!("five times, the kill could not be sent within {KILL_WITHIN:?} of the last request");
}

/// Well inside the writer's idle checkpoint (500 ms after the last write).
const KILL_WITHIN: Duration = Duration::from_millis(300);

fn all_names(server: &Server) -> String {
    server
        .client()
        .call(r#"{"jsonrpc":"2.0","method":"getAllGroups","id":0}"#)
}

#[test]
fn a_crash_leaves_the_log_for_the_next_start_and_a_clean_stop_removes_it() {
    let db = crash_after(&["a", "b", "c"]);
    let server = Server::start_on(&db, &[]);
    let listed = all_names(&server);
    for name in ["a", "b", "c"] {
        assert!(listed.contains(&format!(r#""name":"{name}""#)), "{listed}");
    }
    let (status, stderr) = server.stop("-TERM");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !log_of(&db).exists(),
        "a clean stop checkpoints and removes the log"
    );
    // The database file alone now holds everything.
    let done = run(&["dump", "--db", db.arg()], b"");
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(done.stdout_lines().len(), 4);
}

#[test]
fn dump_and_check_apply_the_log_a_crash_left() {
    let db = crash_after(&["a", "b"]);
    let done = run(&["dump", "--db", db.arg()], b"");
    assert!(done.status.success(), "{}", done.stderr);
    let lines = done.stdout_lines();
    assert!(lines[0].contains(r#""next_id":3,"groups":2"#), "{lines:?}");
    assert!(lines[2].contains(r#""name":"b""#), "{lines:?}");
    assert!(!log_of(&db).exists(), "the offline open applied the log");

    let db = crash_after(&["a", "b"]);
    let done = run(&["check", "--db", db.arg()], b"");
    assert!(done.status.success(), "{}", done.stderr);
    let out = String::from_utf8(done.stdout).unwrap();
    assert!(
        one_line(&out).contains("healthy: 2 groups, next id 3,"),
        "{out}"
    );
}

#[test]
fn a_damaged_log_is_refused_and_check_repair_applies_it_up_to_the_damage() {
    let db = crash_after(&["a", "b", "c"]);
    // A byte inside the first record (after its 32-byte header): the two after it verify.
    let log = log_of(&db);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[45] ^= 0x40;
    std::fs::write(&log, bytes).unwrap();

    let failed = Server::try_start(db.path(), &[]).err().expect("refused");
    assert_eq!(failed.status.code(), Some(1), "{}", failed.stderr);
    let line = one_line(&failed.stderr);
    assert!(
        line.contains("commit log") && line.contains("groupd check --repair"),
        "{line}"
    );
    let done = run(&["check", "--db", db.arg()], b"");
    assert_eq!(done.status.code(), Some(1));
    assert!(
        one_line(&done.stderr).contains("commit log"),
        "{}",
        done.stderr
    );

    let done = run(&["check", "--repair", "--db", db.arg()], b"");
    assert!(done.status.success(), "{}", done.stderr);
    let out = String::from_utf8(done.stdout).unwrap();
    assert!(
        one_line(&out).contains("repaired (the commit log was damaged"),
        "{out}"
    );
    let mut aside = log.clone().into_os_string();
    aside.push(".damaged");
    assert!(PathBuf::from(aside).exists() && !log.exists());

    // Nothing after the damage was applied: not even b and c, whose records verify.
    let server = Server::start_on(&db, &[]);
    assert_eq!(
        all_names(&server),
        r#"{"jsonrpc":"2.0","id":0,"result":[]}"#
    );
}
