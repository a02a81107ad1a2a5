//! A real `groupd` for tests that speak the wire: `serve` on 127.0.0.1:0 with a database in a
//! temporary directory, its port read from its `listening on …` log line, killed on drop; or a
//! `stdio` process. Every read has a timeout, so a server that misbehaves fails a test instead
//! of hanging it.
#![allow(dead_code)]

pub mod talk;

#[path = "../support/test_database.rs"]
mod test_database;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const GROUPD: &str = env!("CARGO_BIN_EXE_groupd");

/// How long any single read or start-up may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// `groupd serve --listen 127.0.0.1:0 --db DIR/groupd.redb ARGS…`, once it listens.
    /// On the PostgreSQL pass of `scripts/test.sh`, a new PostgreSQL database instead.
    pub fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("groupd.redb");
        let db = test_database::fresh_postgres_database()
            .unwrap_or_else(|| file.to_str().expect("path").to_owned());
        Server::start_on(dir, &db, args)
    }

    /// `groupd serve --listen 127.0.0.1:0 --db DB ARGS…` (a file in `dir`, or a PostgreSQL URL),
    /// once it listens.
    pub fn start_on(dir: tempfile::TempDir, db: &str, args: &[&str]) -> Server {
        let mut child = Command::new(GROUPD)
            .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("GROUPD_TOKEN_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn groupd serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stderr after start-up, so the server never blocks on its log.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            match rx.recv_timeout(TIMEOUT) {
                Ok(line) => {
                    if let Some(at) = line.find("listening on ") {
                        let rest = &line[at + "listening on ".len()..];
                        let addr = rest.split_whitespace().next().unwrap_or("");
                        break addr.parse().expect("address in the log line");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("groupd serve did not log `listening on`");
                }
            }
        };
        Server { child, addr, dir }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("groupd.redb")
    }

    pub fn connect(&self) -> Conn {
        Conn::tcp(self.addr)
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token file in `dir` holding `token` and a newline, as an editor writes it.
pub fn token_file(dir: &Path, token: &str) -> PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, format!("{token}\n")).expect("write token file");
    path
}

/// One TCP connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn tcp(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        Conn {
            reader: BufReader::new(stream),
            writer,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
        self.writer.flush().expect("flush");
    }

    /// One answer line, without its `\n`.
    pub fn line(&mut self) -> String {
        read_line(&mut self.reader)
    }

    /// One `Content-Length` framed answer: its headers as sent, and its body.
    pub fn framed(&mut self) -> (String, String) {
        read_framed(&mut self.reader)
    }

    /// Sends a request line and returns the answer line.
    pub fn call(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.line()
    }

    /// Asserts that the server closes the connection without sending anything more.
    pub fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "unexpected bytes: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("the connection stayed open: {e}"),
        }
    }
}

pub fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    let n = reader.read_line(&mut line).expect("read an answer line");
    assert!(n > 0, "connection closed before an answer");
    assert!(line.ends_with('\n'), "answer not ended by \\n: {line:?}");
    line.pop();
    line
}

pub fn read_framed(reader: &mut impl BufRead) -> (String, String) {
    let mut headers = String::new();
    let mut length = None;
    loop {
        let mut header = String::new();
        let n = reader.read_line(&mut header).expect("read a header");
        assert!(n > 0, "connection closed before an answer");
        assert!(
            header.ends_with("\r\n"),
            "header not ended by CRLF: {header:?}"
        );
        headers.push_str(&header);
        if header == "\r\n" {
            break;
        }
        if let Some(value) = header.strip_prefix("Content-Length: ") {
            length = Some(value.trim_end().parse::<usize>().expect("numeric length"));
        }
    }
    let length = length.unwrap_or_else(|| panic!("no Content-Length in {headers:?}"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("read the body");
    (headers, String::from_utf8(body).expect("UTF-8 body"))
}

/// `Content-Length: N\r\n\r\nBODY`, N in bytes.
pub fn frame(body: &str) -> Vec<u8> {
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// A `groupd stdio`-style process with piped stdin and stdout.
pub struct StdioProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<TimedReader>,
}

impl StdioProcess {
    /// Runs `groupd ARGS…` (ARGS include `stdio` or `--stdio` and the database).
    pub fn start(args: &[&str]) -> StdioProcess {
        let mut child = Command::new(GROUPD)
            .args(args)
            .env_remove("GROUPD_DB")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn groupd");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(TimedReader::new(child.stdout.take().expect("stdout")));
        StdioProcess {
            child,
            stdin,
            stdout,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("write");
        stdin.flush().expect("flush");
    }

    pub fn framed(&mut self) -> (String, String) {
        read_framed(&mut self.stdout)
    }

    pub fn line(&mut self) -> String {
        read_line(&mut self.stdout)
    }

    /// Closes stdin and returns the rest of stdout and the exit status's code.
    pub fn finish(mut self) -> (String, Option<i32>) {
        drop(self.stdin.take());
        self.ends()
    }

    /// The rest of stdout and the exit status's code, with stdin still open: the process must
    /// end by itself (within [`TIMEOUT`]).
    pub fn ends(mut self) -> (String, Option<i32>) {
        let mut rest = String::new();
        self.stdout
            .read_to_string(&mut rest)
            .expect("groupd did not end its output");
        let status = self.child.wait().expect("wait");
        (rest, status.code())
    }
}

impl Drop for StdioProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pipe read on another thread, so that every read can time out.
pub struct TimedReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl TimedReader {
    pub fn new(mut source: impl Read + Send + 'static) -> TimedReader {
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0; 8192];
            while let Ok(n @ 1..) = source.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        TimedReader {
            chunks,
            pending: Vec::new(),
        }
    }
}

impl Read for TimedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.chunks.recv_timeout(TIMEOUT) {
                Ok(chunk) => self.pending = chunk,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

/// Runs `groupd ARGS…` to completion with `env` set (and the caller's token and address
/// variables removed), under [`TIMEOUT`].
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(GROUPD);
    command
        .args(args)
        .env_remove("GROUPD_TOKEN_FILE")
        .env_remove("GROUPD_LISTEN")
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(TIMEOUT)
        .expect("groupd did not finish")
        .expect("groupd output")
}
