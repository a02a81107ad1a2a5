//! Starting and stopping (SPEC §5, §7): host names in `--listen` and `--http`; a start that
//! fails leaves no new database file behind; an HTTP request on the TCP port is logged once with
//! a hint; `groupd stdio` logs its clean shutdown; the test scripts' server start-up has no race.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{GROUPD, Server, run_with_env};

const LIST: &str = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#;
const EMPTY_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":[]}"#;

fn utf8(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// `scripts/groupd-server.sh` must not read the server's log before the log exists. The
/// background shell that starts the server is slowed down (its trace prompt sleeps), so a
/// script that greps before creating the log is caught every time, not now and then.
#[cfg(target_os = "linux")]
#[test]
fn the_scripts_start_their_server_without_reading_a_missing_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = r#"
        set -euo pipefail
        source scripts/groupd-server.sh
        # Only the subshell that runs the server in the background (a shell whose parent is this
        # one and that has not seen `$!` set yet) sleeps before it runs a command.
        PS4='$(read -r _ _ _ parent _ </proc/$BASHPID/stat; [[ $parent != $$ && -z ${!:-} ]] && sleep 1)+ '
        exec {trace}>/dev/null
        BASH_XTRACEFD=$trace
        set -x
        start_server "$SERVER_DIR" tcp
        set +x
        stop_cleanly "$SERVER_DIR"
        echo "served on $address"
    "#;
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("groupd", GROUPD)
        .env("SERVER_DIR", dir.path().join("server"))
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("served on 127.0.0.1:"), "{stdout}");
    assert_eq!(stderr, "", "the script complained");
}

#[test]
fn host_names_in_listen_and_http_are_resolved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("groupd.redb");
    let args = ["--listen", "localhost:0", "--http", "localhost:0"];
    let server = Server::try_serve(&[&args[..], &["--db", utf8(&db)]].concat())
        .unwrap_or_else(|f| panic!("groupd serve exited with {}: {}", f.status, f.stderr));
    // localhost is loopback, so no token is needed (SPEC §7).
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    server.client().check(&[(LIST, Some(EMPTY_LIST))]);
    assert!(
        server.stderr().contains("http listening on "),
        "{}",
        server.stderr()
    );
    // `groupd call --addr` takes the name too.
    let addr = format!("localhost:{}", server.addr.port());
    let done = run_with_env(&["call", "--addr", &addr, "getAllGroups"], &[], b"");
    assert_eq!(
        (done.status.code(), done.stdout.as_slice()),
        (Some(0), &b"[]\n"[..])
    );
}

#[test]
fn a_listen_address_that_is_no_host_and_port_is_a_usage_error() {
    for bad in [
        "localhost",
        "127.0.0.1",
        ":7411",
        "::1:7411",
        "localhost:port",
    ] {
        let done = run_with_env(
            &["serve", "--listen", bad, "--db", "/nonexistent/x"],
            &[],
            b"",
        );
        assert_eq!(done.status.code(), Some(2), "{bad}: {}", done.stderr);
        assert!(done.stderr.contains("HOST:PORT"), "{bad}: {}", done.stderr);
    }
}

/// SPEC §5: a run that fails before serving leaves no new database file behind, and an existing
/// one as it was.
#[test]
fn a_start_that_fails_leaves_no_new_database_file() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("new.redb");
    let db = utf8(&db);
    let failures: [&[&str]; 3] = [
        &["--listen", &taken],
        &["--listen", "127.0.0.1:0", "--http", &taken],
        &[
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            "/nonexistent/token",
        ],
    ];
    for args in failures {
        let done = run_with_env(&[&["serve", "--db", db], args].concat(), &[], b"");
        assert_eq!(done.status.code(), Some(1), "{args:?}: {}", done.stderr);
        assert_eq!(done.stderr.lines().count(), 1, "{args:?}: {}", done.stderr);
        assert!(
            !Path::new(db).exists(),
            "{args:?} left {db} behind: {}",
            done.stderr
        );
    }
    // An existing database survives a failed start untouched.
    let existing = common::Db::new();
    let server = Server::start_on(&existing, &[]);
    server
        .client()
        .call(r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["Ops"]}"#);
    let (status, _) = server.stop("-TERM");
    assert!(status.success());
    let before = std::fs::read(existing.path()).expect("read the database");
    let done = run_with_env(
        &["serve", "--db", existing.arg(), "--listen", &taken],
        &[],
        b"",
    );
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    assert_eq!(
        std::fs::read(existing.path()).expect("read the database"),
        before
    );
}

/// SPEC §7 closes an HTTP request on the TCP port unanswered; the log says so once, at `warn`,
/// and points at `--http`.
#[test]
fn an_http_request_on_the_tcp_port_is_logged_once_with_a_hint() {
    let server = Server::start(&[]);
    for _ in 0..3 {
        let mut client = server.client();
        client.send_raw(b"POST /jsonrpc.php HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        client.expect_eof();
    }
    // A later connection is served, so the three closed ones have been logged by now.
    server.client().check(&[(LIST, Some(EMPTY_LIST))]);
    let (status, log) = server.stop("-TERM");
    assert!(status.success(), "{log}");
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("--http")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("WARN"), "{log}");
    assert!(warnings[0].contains("HTTP"), "{log}");
}

/// `groupd stdio` stopped by SIGINT or SIGTERM says it shut down cleanly, as `serve` does.
#[test]
fn stdio_logs_its_clean_shutdown_on_a_signal() {
    for signal in ["-INT", "-TERM"] {
        let db = common::Db::new();
        let mut child = Command::new(GROUPD)
            .args(["stdio", "--db", db.arg()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn groupd stdio");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut stdin = child.stdin.take().expect("piped");
        // An answer proves the session runs (and its signal handler is set).
        std::io::Write::write_all(&mut stdin, format!("{LIST}\n").as_bytes()).expect("write");
        assert_eq!(read_line(&mut stdout), format!("{EMPTY_LIST}\n"));
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let status = common::wait_until(&mut child, common::DEADLINE);
        let mut log = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut log)
            .expect("read stderr");
        assert!(status.success(), "{signal}: {status}: {log}");
        assert!(log.contains("shut down cleanly"), "{signal}: {log}");
        drop(stdin);
    }
}

fn read_line(reader: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line");
    line
}
