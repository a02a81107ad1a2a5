//! SPEC §7 over the real TCP server: the token gate (`authenticate`, `-32001`, three strikes),
//! what a locked connection may not do (calls, notifications, batches), the browser guard (an
//! HTTP-looking first line closes the connection unanswered), the address rule (beyond loopback
//! only with a token or `--insecure`), the token file and its environment variable, stdio's
//! exemption, and that the token never reaches the log, even at `RUST_LOG=trace`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{Client, DEADLINE, Db, Exchange, PARSE_ERROR, assert_line, run_with_env, wait_until};
use tempfile::TempDir;

/// A token no log line, id or name in these tests contains by chance.
const TOKEN: &str = "tok-7Qz9xW2mKv4p";

const UNAUTHORIZED_1: &str =
    r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Unauthorized"}}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"list"}"#;
const EMPTY_LIST: &str = r#"{"jsonrpc":"2.0","id":"list","result":[]}"#;
const CREATE_A: &str = r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A"]}"#;

fn authenticate(id: u32, token: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"authenticate","id":{id},"params":["{token}"]}}"#)
}

fn unauthorized(id: u32) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32001,"message":"Unauthorized"}}}}"#)
}

fn accepted(id: u32) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":true}}"#)
}

/// A `groupd serve` on 127.0.0.1:0 (unless the args say otherwise) with its own environment,
/// its database and token file in one temporary directory; killed when dropped.
struct Groupd {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    drain: Option<JoinHandle<()>>,
    _dir: TempDir,
}

/// How a `groupd serve` that never listened ended.
#[derive(Debug)]
struct Refused {
    status: ExitStatus,
    stderr: String,
}

/// What a server is started with.
struct Setup<'a> {
    /// The token file's contents; `None` for no token file.
    token: Option<&'a str>,
    /// Pass the token file by `GROUPD_TOKEN_FILE` instead of `--token-file`.
    token_by_env: bool,
    listen: &'a str,
    args: &'a [&'a str],
    rust_log: &'a str,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            token: Some(TOKEN),
            token_by_env: false,
            listen: "127.0.0.1:0",
            args: &[],
            rust_log: "info",
        }
    }
}

impl Groupd {
    fn start(setup: Setup<'_>) -> Groupd {
        Groupd::try_start(setup).unwrap_or_else(|r| panic!("groupd did not start: {r:?}"))
    }

    fn with_token() -> Groupd {
        Groupd::start(Setup::default())
    }

    fn try_start(setup: Setup<'_>) -> Result<Groupd, Refused> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut command = Command::new(common::GROUPD);
        command
            .args(["serve", "--listen", setup.listen, "--db"])
            .arg(dir.path().join("groupd.redb"))
            .args(setup.args)
            .env("RUST_LOG", setup.rust_log)
            .env_remove("GROUPD_TOKEN_FILE")
            .env_remove("GROUPD_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(token) = setup.token {
            let path = write_token_file(dir.path(), token);
            if setup.token_by_env {
                command.env("GROUPD_TOKEN_FILE", &path);
            } else {
                command.arg("--token-file").arg(&path);
            }
        }
        let mut child = command.spawn().expect("spawn groupd serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, listening) = mpsc::channel();
        let drain = drain(child.stderr.take().expect("piped"), Arc::clone(&log), tx);
        match listening.recv_timeout(DEADLINE) {
            Ok(addr) => Ok(Groupd {
                child,
                addr,
                log,
                drain: Some(drain),
                _dir: dir,
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("groupd did not report its address within {DEADLINE:?}");
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_until(&mut child, DEADLINE);
                let _ = drain.join();
                let stderr = log.lock().expect("log").clone();
                Err(Refused { status, stderr })
            }
        }
    }

    /// A connection to it, over loopback whatever address it listens on.
    fn client(&self) -> Client {
        let port = self.addr.port();
        Client::connect(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Stops it with SIGTERM and returns everything it logged, after it exited 0.
    fn stop(mut self) -> String {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let status = wait_until(&mut self.child, DEADLINE);
        assert!(status.success(), "groupd exited with {status}");
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Groupd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_token_file(dir: &Path, contents: &str) -> PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, contents).expect("write the token file");
    path
}

fn drain(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    listening: mpsc::Sender<SocketAddr>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut line = Vec::new();
        while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line).into_owned();
            if let Some((_, rest)) = text.split_once("listening on ")
                && let Some(addr) = rest.split_whitespace().next().and_then(|a| a.parse().ok())
            {
                let _ = listening.send(addr);
            }
            log.lock().expect("log").push_str(&text);
            line.clear();
        }
    })
}

/// Sends each request and compares the answer (or the absence of one, proved by the next
/// row's answer coming first). Unlike [`Client::check`] there is no sentinel at the end, since
/// on a locked connection the sentinel itself would be refused.
fn exchange(client: &mut Client, table: &[Exchange<'_>]) {
    for (request, expected) in table {
        client.send(request);
        if let Some(expected) = expected {
            assert_line(request, expected, &client.recv());
        }
    }
}

// ---- the token gate ----

#[test]
fn a_locked_connection_gets_minus_32001_for_every_call_with_its_id() {
    let server = Groupd::with_token();
    let mut client = server.client();
    exchange(
        &mut client,
        &[
            (CREATE_A, Some(UNAUTHORIZED_1)),
            (
                r#"{"jsonrpc":"2.0","method":"getGroup","id":"g","params":[1]}"#,
                Some(
                    r#"{"jsonrpc":"2.0","id":"g","error":{"code":-32001,"message":"Unauthorized"}}"#,
                ),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"getAllGroups","id":null}"#,
                Some(
                    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Unauthorized"}}"#,
                ),
            ),
            // Even methods that do not exist, and discovery: nothing is learnt before the token.
            (
                r#"{"jsonrpc":"2.0","method":"noSuchMethod","id":7}"#,
                Some(&unauthorized(7)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"rpc.discover","id":8}"#,
                Some(&unauthorized(8)),
            ),
            // Envelope errors are still envelope errors.
            ("not json", Some(PARSE_ERROR)),
            (&authenticate(9, TOKEN), Some(&accepted(9))),
            (LIST, Some(EMPTY_LIST)),
        ],
    );
    // Nothing the locked connection asked for was done.
    client.check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn authenticate_takes_the_token_positionally_or_by_name() {
    let server = Groupd::with_token();
    exchange(
        &mut server.client(),
        &[
            (&authenticate(1, TOKEN), Some(&accepted(1))),
            (CREATE_A, Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)),
        ],
    );
    let named = format!(
        r#"{{"jsonrpc":"2.0","method":"authenticate","id":2,"params":{{"token":"{TOKEN}"}}}}"#
    );
    exchange(
        &mut server.client(),
        &[
            (&named, Some(&accepted(2))),
            (
                r#"{"jsonrpc":"2.0","method":"getAllGroups","id":3}"#,
                Some(
                    r#"{"jsonrpc":"2.0","id":3,"result":[{"id":"1","external_id":"","name":"A"}]}"#,
                ),
            ),
        ],
    );
}

#[test]
fn each_connection_authenticates_for_itself() {
    let server = Groupd::with_token();
    let mut first = server.client();
    exchange(&mut first, &[(&authenticate(1, TOKEN), Some(&accepted(1)))]);
    let mut second = server.client();
    exchange(&mut second, &[(CREATE_A, Some(UNAUTHORIZED_1))]);
    first.check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn wrong_tokens_are_refused_and_the_third_closes_the_connection() {
    let server = Groupd::with_token();
    let mut client = server.client();
    let near_misses = [
        TOKEN.to_uppercase(),
        TOKEN[..TOKEN.len() - 1].to_owned(),
        format!("{TOKEN} "),
    ];
    exchange(
        &mut client,
        &[
            (&authenticate(1, &near_misses[0]), Some(&unauthorized(1))),
            (&authenticate(2, &near_misses[1]), Some(&unauthorized(2))),
            // Still locked after two strikes.
            (CREATE_A, Some(UNAUTHORIZED_1)),
            (&authenticate(3, &near_misses[2]), Some(&unauthorized(3))),
        ],
    );
    client.expect_eof();
    // Nothing ran, and the server serves others.
    let mut other = server.client();
    exchange(&mut other, &[(&authenticate(4, TOKEN), Some(&accepted(4)))]);
    other.check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn nothing_already_sent_after_the_third_wrong_token_runs() {
    let server = Groupd::with_token();
    let mut client = server.client();
    // All in one write, so the server holds the later lines when the third strike comes.
    let pipelined = [
        authenticate(1, "a"),
        authenticate(2, "b"),
        authenticate(3, "c"),
        authenticate(4, TOKEN),
        CREATE_A.to_owned(),
    ]
    .map(|line| line + "\n")
    .concat();
    client.send_raw(pipelined.as_bytes());
    for id in 1..=3 {
        assert_line("wrong token", &unauthorized(id), &client.recv());
    }
    client.expect_eof();
    // Nor does a batch get past three strikes within itself.
    let mut client = server.client();
    let batch = format!(
        "[{},{},{},{},{}]",
        authenticate(1, "a"),
        authenticate(2, "b"),
        authenticate(3, "c"),
        authenticate(4, TOKEN),
        CREATE_A.replace(r#""id":1"#, r#""id":5"#),
    );
    client.send(&batch);
    let refused: Vec<String> = (1..=5).map(unauthorized).collect();
    assert_line(&batch, &format!("[{}]", refused.join(",")), &client.recv());
    client.expect_eof();
    let mut other = server.client();
    exchange(&mut other, &[(&authenticate(9, TOKEN), Some(&accepted(9)))]);
    other.check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn two_wrong_tokens_then_the_right_one_unlock() {
    let server = Groupd::with_token();
    let mut client = server.client();
    exchange(
        &mut client,
        &[
            (&authenticate(1, "nope"), Some(&unauthorized(1))),
            (&authenticate(2, ""), Some(&unauthorized(2))),
            (&authenticate(3, TOKEN), Some(&accepted(3))),
        ],
    );
    client.check(&[(CREATE_A, Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#))]);
}

#[test]
fn the_token_file_is_trimmed_of_surrounding_whitespace_only() {
    let contents = format!(" \t{TOKEN}\r\n\n");
    let server = Groupd::start(Setup {
        token: Some(&contents),
        ..Setup::default()
    });
    let mut client = server.client();
    exchange(
        &mut client,
        &[
            (
                &authenticate(1, &format!(" {TOKEN}")),
                Some(&unauthorized(1)),
            ),
            (&authenticate(2, TOKEN), Some(&accepted(2))),
        ],
    );
    client.check(&[]);
}

#[test]
fn notifications_before_authenticate_are_dropped_and_not_run() {
    let server = Groupd::with_token();
    let mut client = server.client();
    exchange(
        &mut client,
        &[
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","params":["sneaky"]}"#,
                None,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"createGroup","params":{"name":"also sneaky"}}"#,
                None,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"removeGroup","params":[1]}"#,
                None,
            ),
            // The answer to this is the very next line: the notifications got none.
            (&authenticate(1, TOKEN), Some(&accepted(1))),
            (LIST, Some(EMPTY_LIST)),
            // The id counter did not move either.
            (CREATE_A, Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)),
        ],
    );
    client.check(&[]);
}

#[test]
fn batches_before_authenticate_get_minus_32001_per_entry_and_do_not_run() {
    let server = Groupd::with_token();
    let mut client = server.client();
    let batch = r#"[{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A"]},{"jsonrpc":"2.0","method":"createGroup","params":["B"]},{"jsonrpc":"2.0","method":"getAllGroups","id":"two"},{"jsonrpc":"2.0","method":"nope","id":3},42]"#;
    let expected = concat!(
        r#"[{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Unauthorized"}},"#,
        r#"{"jsonrpc":"2.0","id":"two","error":{"code":-32001,"message":"Unauthorized"}},"#,
        r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"Unauthorized"}},"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"‹data›}}]"#,
    );
    let notifications_only = r#"[{"jsonrpc":"2.0","method":"createGroup","params":["C"]}]"#;
    exchange(
        &mut client,
        &[
            (batch, Some(expected)),
            (notifications_only, None),
            (&authenticate(4, TOKEN), Some(&accepted(4))),
            (LIST, Some(EMPTY_LIST)),
        ],
    );
    client.check(&[]);
}

#[test]
fn a_batch_may_authenticate_and_then_call() {
    let server = Groupd::with_token();
    let mut client = server.client();
    let batch = format!(
        r#"[{{"jsonrpc":"2.0","method":"getAllGroups","id":0}},{{"jsonrpc":"2.0","method":"authenticate","id":1,"params":["{TOKEN}"]}},{{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["A"]}}]"#
    );
    let expected = concat!(
        r#"[{"jsonrpc":"2.0","id":0,"error":{"code":-32001,"message":"Unauthorized"}},"#,
        r#"{"jsonrpc":"2.0","id":1,"result":true},"#,
        r#"{"jsonrpc":"2.0","id":2,"result":1}]"#,
    );
    exchange(&mut client, &[(&batch, Some(expected))]);
    client.check(&[(
        r#"{"jsonrpc":"2.0","method":"getGroup","id":5,"params":[1]}"#,
        Some(r#"{"jsonrpc":"2.0","id":5,"result":{"id":"1","external_id":"","name":"A"}}"#),
    )]);
}

#[test]
fn groupd_token_file_in_the_environment_sets_the_token() {
    let server = Groupd::start(Setup {
        token_by_env: true,
        ..Setup::default()
    });
    let mut client = server.client();
    exchange(
        &mut client,
        &[
            (CREATE_A, Some(UNAUTHORIZED_1)),
            (&authenticate(2, "wrong"), Some(&unauthorized(2))),
            (&authenticate(3, TOKEN), Some(&accepted(3))),
        ],
    );
    client.check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn without_a_token_no_authentication_is_needed() {
    let server = Groupd::start(Setup {
        token: None,
        ..Setup::default()
    });
    server
        .client()
        .check(&[(CREATE_A, Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#))]);
}

#[test]
fn stdio_needs_no_token_even_with_groupd_token_file_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_token_file(dir.path(), TOKEN);
    let db = Db::new();
    let input = format!("{CREATE_A}\n{LIST}\n");
    let done = run_with_env(
        &["stdio", "--db", db.arg()],
        &[("GROUPD_TOKEN_FILE", path.to_str().unwrap())],
        input.as_bytes(),
    );
    assert!(done.status.success(), "{}: {}", done.status, done.stderr);
    assert_eq!(
        done.stdout_lines(),
        [
            r#"{"jsonrpc":"2.0","id":1,"result":1}"#,
            r#"{"jsonrpc":"2.0","id":"list","result":[{"id":"1","external_id":"","name":"A"}]}"#,
        ]
    );
}

// ---- the token file ----

#[test]
fn an_empty_or_blank_token_file_stops_start_up_with_exit_1() {
    for contents in ["", " \n\t\r\n"] {
        let refused = Groupd::try_start(Setup {
            token: Some(contents),
            ..Setup::default()
        })
        .err()
        .unwrap_or_else(|| panic!("started with the token file {contents:?}"));
        assert_eq!(refused.status.code(), Some(1), "{refused:?}");
        assert_one_line_mentioning(&refused.stderr, &["token"]);
    }
}

#[test]
fn a_missing_token_file_stops_start_up_with_exit_1() {
    let refused = Groupd::try_start(Setup {
        token: None,
        args: &["--token-file", "/nonexistent/groupd-token"],
        ..Setup::default()
    })
    .err()
    .expect("started without its token file");
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_one_line_mentioning(&refused.stderr, &["/nonexistent/groupd-token"]);
}

#[track_caller]
fn assert_one_line_mentioning(stderr: &str, words: &[&str]) {
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line on stderr, got {stderr:?}"
    );
    for word in words {
        assert!(
            stderr.contains(word),
            "stderr should mention {word:?}: {stderr:?}"
        );
    }
}

// ---- the address rule ----

#[test]
fn beyond_loopback_without_a_token_refuses_to_start_with_exit_2() {
    let cases: [&[&str]; 3] = [
        &["--listen", "0.0.0.0:0"],
        &["--listen", "[::]:0"],
        &["--listen", "127.0.0.1:0", "--http", "0.0.0.0:0"],
    ];
    for args in cases {
        let done = run_with_env(
            &[&["serve", "--db", "/nonexistent/never-opened.redb"], args].concat(),
            &[],
            b"",
        );
        assert_eq!(done.status.code(), Some(2), "{args:?}: {done:?}");
        assert!(done.stdout.is_empty(), "{args:?}: {done:?}");
        assert_one_line_mentioning(&done.stderr, &["token", "--insecure"]);
    }
    // GROUPD_LISTEN is held to the same rule.
    let done = run_with_env(
        &["serve", "--db", "/nonexistent/never-opened.redb"],
        &[("GROUPD_LISTEN", "0.0.0.0:0")],
        b"",
    );
    assert_eq!(done.status.code(), Some(2), "{done:?}");
    assert_one_line_mentioning(&done.stderr, &["token", "--insecure"]);
}

#[test]
fn other_loopback_addresses_need_no_token() {
    let server = Groupd::start(Setup {
        token: None,
        listen: "127.0.0.2:0",
        ..Setup::default()
    });
    assert_eq!(server.addr.ip().to_string(), "127.0.0.2");
    let mut client = Client::connect(server.addr);
    client.check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn beyond_loopback_starts_with_insecure() {
    let server = Groupd::start(Setup {
        token: None,
        listen: "0.0.0.0:0",
        args: &["--insecure"],
        ..Setup::default()
    });
    server.client().check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn beyond_loopback_starts_with_a_token_and_requires_it() {
    let server = Groupd::start(Setup {
        listen: "0.0.0.0:0",
        ..Setup::default()
    });
    let mut client = server.client();
    exchange(
        &mut client,
        &[
            (CREATE_A, Some(UNAUTHORIZED_1)),
            (&authenticate(2, TOKEN), Some(&accepted(2))),
        ],
    );
    client.check(&[(LIST, Some(EMPTY_LIST))]);
}

// ---- the browser guard ----

#[test]
fn an_http_looking_first_line_closes_the_connection_unanswered() {
    let server = Groupd::start(Setup {
        token: None,
        ..Setup::default()
    });
    let first_lines = [
        "GET / HTTP/1.1",
        "POST /jsonrpc.php HTTP/1.1",
        "PUT / HTTP/1.1",
        "DELETE / HTTP/1.1",
        "HEAD / HTTP/1.1",
        "OPTIONS * HTTP/1.1",
        "CONNECT 127.0.0.1:7411 HTTP/1.1",
        "Host: 127.0.0.1:7411",
    ];
    for first in first_lines {
        let mut client = server.client();
        // What a browser sends: the request line, headers, then a JSON body that must not run.
        let request = format!(
            "{first}\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\r\n{}\n",
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["from a web page"]}"#
        );
        client.send_raw(request.as_bytes());
        client.expect_eof();
    }
    server.client().check(&[(LIST, Some(EMPTY_LIST))]);
}

#[test]
fn the_browser_guard_comes_before_the_token_gate() {
    let server = Groupd::with_token();
    let mut client = server.client();
    client.send_raw(b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client.expect_eof();
}

#[test]
fn an_http_first_line_over_the_line_limit_is_closed_unanswered_too() {
    // A long URL is still an HTTP request line: the guard must not depend on the line fitting
    // the limit, and the -32600 for an over-long line must not go to the browser first.
    let server = Groupd::start(Setup {
        token: None,
        args: &["--max-line-bytes", "1024"],
        ..Setup::default()
    });
    let mut client = server.client();
    let url = "a".repeat(2048);
    client.send_raw(format!("GET /{url} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    client.expect_eof();
}

#[test]
fn only_the_first_line_is_screened_for_http() {
    let server = Groupd::start(Setup {
        token: None,
        ..Setup::default()
    });
    let mut client = server.client();
    client.check(&[
        (LIST, Some(EMPTY_LIST)),
        ("GET / HTTP/1.1", Some(PARSE_ERROR)),
        ("Host: localhost", Some(PARSE_ERROR)),
    ]);
}

// ---- the token stays secret ----

#[test]
fn the_token_never_reaches_the_log_even_at_trace() {
    let server = Groupd::start(Setup {
        rust_log: "trace",
        ..Setup::default()
    });
    let wrong = format!("{TOKEN}x");
    // A session that fails three times, one that succeeds (by name and by position), and one
    // that sends the token inside a malformed call.
    let mut failing = server.client();
    for id in 1..=3 {
        failing.send(&authenticate(id, &wrong));
        assert_line("wrong token", &unauthorized(id), &failing.recv());
    }
    failing.expect_eof();
    let mut client = server.client();
    let named = format!(
        r#"{{"jsonrpc":"2.0","method":"authenticate","id":2,"params":{{"token":"{TOKEN}"}}}}"#
    );
    exchange(
        &mut client,
        &[
            (&authenticate(1, TOKEN), Some(&accepted(1))),
            (&named, Some(&accepted(2))),
            (CREATE_A, Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)),
        ],
    );
    client.check(&[]);
    drop(client);
    let log = server.stop();
    // The log was really at trace level (else this test proves little).
    assert!(log.contains("TRACE"), "no trace lines in the log:\n{log}");
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");
    // A near miss is as good as the token to an attacker; it is not logged either.
    assert!(
        !log.contains(&wrong[4..]),
        "a candidate token is in the log:\n{log}"
    );
}

#[test]
fn token_comparison_takes_as_long_wherever_the_first_difference_is() {
    // Over TCP the comparison is lost in the noise, so this checks `Token::matches` itself, with
    // a token long enough that an early exit would be thousands of times faster.
    let secret = vec![b'k'; 256 * 1024];
    let token = groupd::auth::Token::new(&secret).expect("a token");
    let mut first_differs = secret.clone();
    first_differs[0] = b'x';
    let mut last_differs = secret.clone();
    *last_differs.last_mut().unwrap() = b'x';
    let fastest = |candidate: &[u8]| {
        (0..15)
            .map(|_| {
                let start = Instant::now();
                assert!(!token.matches(std::hint::black_box(candidate)));
                start.elapsed()
            })
            .min()
            .unwrap_or(Duration::ZERO)
    };
    // Interleaved, so a change in machine load hits both alike.
    let (mut early, mut late) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        early = early.min(fastest(&first_differs));
        late = late.min(fastest(&last_differs));
    }
    let ratio = late.as_secs_f64() / early.as_secs_f64().max(1e-9);
    assert!(
        (0.5..2.0).contains(&ratio),
        "a difference in the first byte took {early:?}, in the last {late:?}"
    );
}
