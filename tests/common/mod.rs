//! The wire-level harness every integration test shares: it runs the built `groupd` binary on a
//! temporary database and speaks to it in request and answer lines, nothing else.
//!
//! - [`Server`]: `groupd serve` on `127.0.0.1:0`; the port is read from its "listening on" log
//!   line (no fixed ports, no sleeps), stderr is drained for the whole run, and the process is
//!   killed when the value is dropped.
//! - [`Client`]: one TCP connection; every read has a deadline, so a hang fails the test.
//! - [`check`] / [`Client::check`]: a table of `(request line, expected answer line or None)`,
//!   read like SPEC.md. `None` means "no answer at all", which is proved by a sentinel request
//!   whose answer must be the very next line.
//! - [`check_stdio`] / [`stdio`]: the same over `groupd stdio`, with stdin closed at the end and
//!   exit status 0 required.
//!
//! In an expected line, `…` stands for any JSON string (the free-text `data` of a parse error,
//! whose wording the SPEC leaves open) and `‹data›` for an optional `,"data":` and any JSON
//! string (invalid requests, where the SPEC does not require a `data` member).

#![allow(dead_code)] // each test crate uses its own part of the harness

#[path = "../support/test_database.rs"]
mod test_database;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const GROUPD: &str = env!("CARGO_BIN_EXE_groupd");

/// How long any single answer, start-up or exit may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// `-32700`, whatever the parser's explanation.
pub const PARSE_ERROR: &str =
    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error","data":…}}"#;

/// `-32600` for a line or batch entry that is not a valid request.
pub const INVALID_REQUEST: &str =
    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"‹data›}}"#;

/// The one line a connection over `--max-connections` receives.
pub const SERVER_BUSY: &str =
    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Server busy"}}"#;

/// One row of a table: a request line and its expected answer, or `None` for no answer.
pub type Exchange<'a> = (&'a str, Option<&'a str>);

/// A request whose answer must be the next line after a table, proving no stray answers.
const SENTINEL: &str = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"sentinel"}"#;
const SENTINEL_ANSWER: &str = r#"{"jsonrpc":"2.0","id":"sentinel","result":"#;

/// A fresh database for one test: a file in a temporary directory (removed when dropped), or,
/// when `GROUPD_TEST_POSTGRES` names a PostgreSQL server (`postgres://USER@HOST:PORT`, as
/// `scripts/test.sh` sets it for its PostgreSQL pass), a new database on it.
pub struct Db {
    _dir: TempDir,
    path: PathBuf,
    url: Option<String>,
}

impl Db {
    pub fn new() -> Db {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("groupd.redb");
        let url = test_database::fresh_postgres_database();
        Db {
            _dir: dir,
            path,
            url,
        }
    }

    /// The database file (meaningless on PostgreSQL: tests of the file itself do not run there).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `--db` takes.
    pub fn arg(&self) -> &str {
        match &self.url {
            Some(url) => url,
            None => self.path.to_str().expect("temporary paths are UTF-8"),
        }
    }
}

/// A running `groupd serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    drain: Option<JoinHandle<()>>,
    _db: Option<Db>,
}

/// A `groupd serve` that exited before it was listening.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub stderr: String,
}

impl Server {
    /// `groupd serve` on a fresh temporary database, with extra `args` (limits).
    pub fn start(args: &[&str]) -> Server {
        let db = Db::new();
        let mut server = Server::start_on(&db, args);
        server._db = Some(db);
        server
    }

    /// `groupd serve` on the database `db`, which outlives this server (restarts).
    pub fn start_on(db: &Db, args: &[&str]) -> Server {
        Server::try_start(Path::new(db.arg()), args)
            .unwrap_or_else(|f| panic!("groupd serve exited with {}: {}", f.status, f.stderr))
    }

    /// Starts `groupd serve --listen 127.0.0.1:0 --db DB ARGS…` and waits for its
    /// "listening on" line, or for it to exit.
    pub fn try_start(db: &Path, args: &[&str]) -> Result<Server, StartFailure> {
        let db = db.to_str().expect("temporary paths are UTF-8");
        Server::try_serve(&[&["--listen", "127.0.0.1:0", "--db", db], args].concat())
    }

    /// Starts `groupd serve ARGS…` as given (its own `--listen` and `--db`) and waits for its
    /// "listening on" line, or for it to exit.
    pub fn try_serve(args: &[&str]) -> Result<Server, StartFailure> {
        let mut child = Command::new(GROUPD)
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn groupd serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (lines, listening) = mpsc::channel();
        let drain = drain_stderr(child.stderr.take().expect("piped"), &stderr, lines);
        match listening.recv_timeout(DEADLINE) {
            Ok(addr) => Ok(Server {
                child,
                addr,
                stderr,
                drain: Some(drain),
                _db: None,
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("groupd serve did not report its address within {DEADLINE:?}");
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_until(&mut child, DEADLINE);
                let _ = drain.join();
                let stderr = stderr.lock().expect("stderr").clone();
                Err(StartFailure { status, stderr })
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "-TERM") without waiting for the exit.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal} failed");
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// A field of `/proc/PID/status` in KiB, e.g. `VmRSS` or `VmHWM` (peak RSS).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Sends `signal` (e.g. "-TERM", "-KILL") and waits for the exit; returns the status and
    /// all of stderr.
    pub fn stop(self, signal: &str) -> (ExitStatus, String) {
        self.signal(signal);
        self.wait()
    }

    /// Waits for the exit; returns the status and all of stderr.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let status = wait_until(&mut self.child, DEADLINE);
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        (status, self.stderr())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the child's stderr into `all`, and sends the address of the first
/// "listening on ADDR" line to `listening`.
fn drain_stderr(
    pipe: impl Read + Send + 'static,
    all: &Arc<Mutex<String>>,
    listening: mpsc::Sender<SocketAddr>,
) -> JoinHandle<()> {
    let all = Arc::clone(all);
    thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut line = Vec::new();
        while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line).into_owned();
            if let Some(addr) = listening_address(&text) {
                let _ = listening.send(addr);
            }
            all.lock().expect("stderr").push_str(&text);
            line.clear();
        }
    })
}

fn listening_address(log_line: &str) -> Option<SocketAddr> {
    let (_, rest) = log_line.split_once("listening on ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Waits for `child` to exit, killing it and failing the test after `limit`.
pub fn wait_until(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for groupd") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("groupd did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// One TCP connection to a server.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to groupd");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone the stream");
        Client {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// The socket, for shutting it down from another thread or writing from one.
    pub fn stream(&self) -> TcpStream {
        self.writer.try_clone().expect("clone the stream")
    }

    pub fn set_read_timeout(&self, limit: Duration) {
        self.writer.set_read_timeout(Some(limit)).expect("timeout");
    }

    /// Sends `line` and its `\n`.
    pub fn send(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.send_raw(&bytes);
    }

    /// Sends `bytes` exactly as given.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send to groupd");
    }

    /// The next answer line, without its `\n`; fails on EOF, timeout or a missing `\n`.
    pub fn recv(&mut self) -> String {
        match self.try_recv() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("groupd closed the connection instead of answering"),
            Err(e) => panic!("no answer from groupd: {e}"),
        }
    }

    /// The next answer line, or `None` at EOF.
    pub fn try_recv(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(None);
        }
        let text = String::from_utf8(line).expect("answers are UTF-8");
        let Some(text) = text.strip_suffix('\n') else {
            panic!("answer not ended by \\n: {text:?}");
        };
        Ok(Some(text.to_owned()))
    }

    /// Fails unless the server closes the connection (with nothing more to read) in time.
    pub fn expect_eof(&mut self) {
        match self.try_recv() {
            Ok(None) => {}
            Ok(Some(line)) => panic!("expected the connection to close, got {line}"),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected the connection to close: {e}"),
        }
    }

    /// Sends one request line and returns its answer line.
    pub fn call(&mut self, request: &str) -> String {
        self.send(request);
        self.recv()
    }

    /// Runs a table on this connection, one request at a time, then proves with a sentinel
    /// request that no answer came for the `None` rows (or anything else unexpected).
    pub fn check(&mut self, table: &[Exchange<'_>]) {
        for (request, expected) in table {
            self.send(request);
            if let Some(expected) = expected {
                let got = self.recv();
                assert_line(request, expected, &got);
            }
        }
        self.assert_nothing_pending();
    }

    /// The next line must be the answer to a sentinel request sent now.
    pub fn assert_nothing_pending(&mut self) {
        self.send(SENTINEL);
        let got = self.recv();
        assert!(
            got.starts_with(SENTINEL_ANSWER),
            "expected no answer before the sentinel's, got {got}"
        );
    }
}

/// Runs `table` on a new connection to `server`.
pub fn check(server: &Server, table: &[Exchange<'_>]) {
    server.client().check(table);
}

/// Runs `table` on a fresh server and database.
pub fn check_fresh(table: &[Exchange<'_>]) {
    check(&Server::start(&[]), table);
}

/// Fails the test unless `got` is `expected`, read as a pattern (see the module doc).
#[track_caller]
pub fn assert_line(request: &str, expected: &str, got: &str) {
    assert!(
        line_matches(expected, got),
        "\nrequest:  {request}\nexpected: {expected}\nactual:   {got}\n"
    );
}

/// Whether `actual` is `pattern` with each `…` replaced by one JSON string literal and each
/// `‹data›` by nothing or by `,"data":` and one JSON string literal.
pub fn line_matches(pattern: &str, actual: &str) -> bool {
    const ANY_STRING: &str = "…";
    const OPTIONAL_DATA: &str = "‹data›";
    if let Some(rest) = pattern.strip_prefix(OPTIONAL_DATA) {
        return line_matches(rest, actual)
            || actual
                .strip_prefix(r#","data":"#)
                .is_some_and(|a| line_matches(&format!("{ANY_STRING}{rest}"), a));
    }
    if let Some(rest) = pattern.strip_prefix(ANY_STRING) {
        return json_string_len(actual).is_some_and(|n| line_matches(rest, &actual[n..]));
    }
    let literal = [ANY_STRING, OPTIONAL_DATA]
        .iter()
        .filter_map(|w| pattern.find(w))
        .min()
        .unwrap_or(pattern.len());
    if literal == pattern.len() {
        return pattern == actual;
    }
    actual
        .strip_prefix(&pattern[..literal])
        .is_some_and(|a| line_matches(&pattern[literal..], a))
}

/// The length of the JSON string literal `s` starts with.
fn json_string_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
    None
}

/// What a finished `groupd` process left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub fn stdout_lines(&self) -> Vec<String> {
        let text = std::str::from_utf8(&self.stdout).expect("stdout is UTF-8");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "stdout does not end with \\n: {text:?}"
        );
        text.lines().map(str::to_owned).collect()
    }
}

/// Runs `groupd ARGS…` with `input` on stdin (then closed) and waits for it to exit.
pub fn run(args: &[&str], input: &[u8]) -> Finished {
    run_with_env(args, &[], input)
}

/// [`run`] with extra environment variables.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Finished {
    let mut child = Command::new(GROUPD)
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn groupd");
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    let feeder = thread::spawn(move || {
        // The process may exit without reading everything (usage errors); that is not ours to judge.
        let _ = stdin.write_all(&input);
    });
    let stdout = read_all_in_background(child.stdout.take().expect("piped"));
    let stderr = read_all_in_background(child.stderr.take().expect("piped"));
    let status = wait_until(&mut child, DEADLINE);
    let _ = feeder.join();
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned(),
    }
}

fn read_all_in_background(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// `groupd stdio --db DB ARGS…` fed `lines` (each with `\n`); requires exit status 0 and returns
/// the answer lines.
pub fn stdio(db: &Db, args: &[&str], lines: &[&str]) -> Vec<String> {
    let mut input = Vec::new();
    for line in lines {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    let mut full = vec!["stdio", "--db", db.arg()];
    full.extend_from_slice(args);
    let done = run(&full, &input);
    assert!(
        done.status.success(),
        "groupd stdio exited with {}: {}",
        done.status,
        done.stderr
    );
    done.stdout_lines()
}

/// Runs `table` through `groupd stdio` on a fresh database: stdout must hold exactly the
/// expected answers, in order, and nothing else.
pub fn check_stdio(table: &[Exchange<'_>]) {
    let db = Db::new();
    let requests: Vec<&str> = table.iter().map(|(request, _)| *request).collect();
    let answers = stdio(&db, &[], &requests);
    let expected: Vec<(&str, &str)> = table
        .iter()
        .filter_map(|(request, expected)| expected.map(|e| (*request, e)))
        .collect();
    for (i, ((request, expected), got)) in expected.iter().zip(&answers).enumerate() {
        assert!(
            line_matches(expected, got),
            "\nanswer #{i} over stdio\nrequest:  {request}\nexpected: {expected}\nactual:   {got}\n"
        );
    }
    assert_eq!(
        answers.len(),
        expected.len(),
        "number of answer lines over stdio; all of them: {answers:#?}"
    );
}

/// xorshift64*: enough randomness for choosing calls and damage, and replayable from its seed
/// (tests print their seed and take it back from the environment).
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The write a client had sent but not yet seen answered when the server died or the power went
/// (tests/crash.rs, tests/power_cut.rs): after the restart it happened wholly or not at all.
#[derive(Debug, Clone)]
pub enum InFlight {
    Create { name: String },
    Rename { id: u64, from: String, to: String },
    Remove { id: u64, name: String },
}

/// Calls that fill a database for the backup tests (`tests/backup.rs`, `tests/backup_postgres.rs`):
/// groups created, renamed and removed (the last ids handed out removed too, so the next id, 6,
/// is above every id left: 1 and 2), names with escapes and non-ASCII text.
pub const BACKUP_FILL: [&str; 9] = [
    r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["Ops","x"]}"#,
    r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["Équipe \"Nord\"\\ \t","é€𝄞"]}"#,
    r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["ops"]}"#,
    r#"{"jsonrpc":"2.0","method":"createGroup","id":4,"params":["gone"]}"#,
    r#"{"jsonrpc":"2.0","method":"updateGroup","id":5,"params":[1,"Ops 2"]}"#,
    r#"{"jsonrpc":"2.0","method":"removeGroup","id":6,"params":[4]}"#,
    r#"{"jsonrpc":"2.0","method":"removeGroup","id":7,"params":[3]}"#,
    r#"{"jsonrpc":"2.0","method":"createGroup","id":8,"params":["five"]}"#,
    r#"{"jsonrpc":"2.0","method":"removeGroup","id":9,"params":[5]}"#,
];

/// The one line of `text` (a one-line error message), failing the test when there are more.
pub fn one_line(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line: {text:?}");
    lines[0]
}
