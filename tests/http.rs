//! `groupd serve --http` (SPEC §10), spoken to as Kanboard's clients do: raw HTTP/1.1 over a
//! socket, against the built binary on a temporary database. The listener must share every rule
//! with the TCP one: the connection slots, the token, the idle timeout and the shutdown.
//!
//! The harness is this file's own: [`Server`] starts `groupd serve --listen 127.0.0.1:0 --http
//! 127.0.0.1:0` and reads both ports from its log lines; [`Http`] is one keep-alive connection
//! whose every read has a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const GROUPD: &str = env!("CARGO_BIN_EXE_groupd");

/// How long any answer, start-up or exit may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

const TOKEN: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A running `groupd serve` with an HTTP listener, killed when dropped.
struct Server {
    child: Child,
    tcp: SocketAddr,
    http: SocketAddr,
    log: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
    /// The database's directory, and the token file's when there is one.
    dirs: Vec<TempDir>,
}

/// How a `groupd serve` that was expected to fail ended.
struct Exit {
    status: ExitStatus,
    stderr: String,
}

impl Server {
    /// `groupd serve --listen 127.0.0.1:0 --http 127.0.0.1:0` plus `args`.
    fn start(args: &[&str]) -> Server {
        let mut all = vec!["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Server::start_raw(&all)
    }

    /// As [`Server::start`], with the token file holding `token` (whitespace included).
    fn with_token(token: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = token_file(&dir, token);
        let mut all = vec!["--token-file", path.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut server = Server::start(&all);
        server.dirs.push(dir);
        server
    }

    /// `groupd serve --db TEMP ARGS…`, waiting until both listeners have said where they are.
    fn start_raw(args: &[&str]) -> Server {
        match Server::try_start(args) {
            Ok(server) => server,
            Err(exit) => panic!("groupd serve exited with {}: {}", exit.status, exit.stderr),
        }
    }

    fn try_start(args: &[&str]) -> Result<Server, Exit> {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(GROUPD)
            .arg("serve")
            .arg("--db")
            .arg(dir.path().join("x.redb"))
            .args(args)
            .env("RUST_LOG", "debug")
            .env_remove("GROUPD_TOKEN_FILE")
            .env_remove("GROUPD_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let lines = drain(child.stderr.take().unwrap(), Arc::clone(&log));
        let mut server = Server {
            child,
            tcp: "0.0.0.0:0".parse().unwrap(),
            http: "0.0.0.0:0".parse().unwrap(),
            log,
            lines,
            dirs: vec![dir],
        };
        let tcp = server
            .wait_for_log(|l| !l.contains("http listening on") && l.contains(" listening on "));
        let Some(tcp) = tcp else {
            return Err(server.exit());
        };
        server.tcp = address_after(&tcp, " listening on ");
        let http = server.wait_for_log(|l| l.contains("http listening on "));
        let Some(http) = http else {
            return Err(server.exit());
        };
        server.http = address_after(&http, "http listening on ");
        Ok(server)
    }

    /// The next log line that satisfies `wanted`, or `None` once stderr closed.
    fn wait_for_log(&self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Some(line),
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("no such log line in {DEADLINE:?}"),
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn http(&self) -> Http {
        Http::connect(self.http)
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -{name} {}", self.child.id())])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to end by itself.
    fn exit(&mut self) -> Exit {
        let until = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < until,
                "groupd did not exit in {DEADLINE:?}"
            );
            thread::sleep(Duration::from_millis(20));
        };
        while self.lines.recv_timeout(DEADLINE).is_ok() {}
        Exit {
            status,
            stderr: self.log(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token_file(dir: &TempDir, contents: &str) -> PathBuf {
    let path = dir.path().join("token");
    std::fs::write(&path, contents).unwrap();
    path
}

/// Copies stderr into `log` and passes each line on.
fn drain(pipe: impl Read + Send + 'static, log: Arc<Mutex<String>>) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = send.send(line);
        }
    });
    receive
}

fn address_after(line: &str, marker: &str) -> SocketAddr {
    let rest = &line[line.find(marker).unwrap() + marker.len()..];
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// One HTTP response, as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 connection.
struct Http {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Http {
    fn connect(addr: SocketAddr) -> Http {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Http {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    /// `POST /jsonrpc.php` with `body` and the extra `headers`.
    fn post(&mut self, headers: &[(&str, &str)], body: &str) -> Reply {
        self.send("POST", headers, body.as_bytes());
        self.read()
    }

    fn send(&mut self, method: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!(
            "{method} /jsonrpc.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.writer.write_all(head.as_bytes()).unwrap();
        self.writer.write_all(body).unwrap();
    }

    fn read(&mut self) -> Reply {
        self.read_answer_to("POST")
    }

    /// The answer to a `method` request (to `HEAD`, the head only).
    fn read_answer_to(&mut self, method: &str) -> Reply {
        let status_line = self.line();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: String::new(),
        };
        let length: usize = reply
            .header("content-length")
            .expect("groupd answers with a Content-Length")
            .parse()
            .unwrap();
        if method == "HEAD" {
            return reply;
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        reply.body = String::from_utf8(body).unwrap();
        reply
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "connection closed before a full answer");
        line.trim_end_matches(['\r', '\n']).to_owned()
    }

    /// Whether the server closed the connection: the next read is EOF (or a reset).
    fn closed(&mut self) -> bool {
        let mut byte = [0; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A 200 answer carrying exactly `body` as JSON.
fn assert_json(reply: &Reply, body: &str) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body, body);
}

// ---------------------------------------------------------------------------------------------
// The protocol over HTTP
// ---------------------------------------------------------------------------------------------

#[test]
fn the_documentation_examples_work_over_http() {
    let server = Server::start(&[]);
    let mut http = server.http();
    let exchanges = [
        (
            r#"{"jsonrpc": "2.0", "method": "createGroup", "id": 1, "params": ["My Group A"]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":1}"#,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "createGroup", "id": 1416806551, "params": ["My Group B", "1234"]}"#,
            r#"{"jsonrpc":"2.0","id":1416806551,"result":2}"#,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "getGroup", "id": 1968647622, "params": ["1"]}"#,
            r#"{"jsonrpc":"2.0","id":1968647622,"result":{"id":"1","external_id":"","name":"My Group A"}}"#,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "getAllGroups", "id": 546070742}"#,
            r#"{"jsonrpc":"2.0","id":546070742,"result":[{"id":"1","external_id":"","name":"My Group A"},{"id":"2","external_id":"1234","name":"My Group B"}]}"#,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "updateGroup", "id": 866078030, "params": {"group_id": "1", "name": "ABC", "external_id": "something"}}"#,
            r#"{"jsonrpc":"2.0","id":866078030,"result":true}"#,
        ),
        (
            r#"{"jsonrpc": "2.0", "method": "removeGroup", "id": 566000661, "params": ["1"]}"#,
            r#"{"jsonrpc":"2.0","id":566000661,"result":true}"#,
        ),
    ];
    for (request, answer) in exchanges {
        assert_json(&http.post(&[], request), answer);
    }
}

#[test]
fn any_path_is_the_endpoint_and_errors_travel_in_200() {
    let server = Server::start(&[]);
    let mut conn = TcpStream::connect(server.http).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let body = r#"{"jsonrpc":"2.0","method":"nope","id":"x"}"#;
    write!(
        conn,
        "POST /some/where?else=1 HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut http = Http {
        writer: conn.try_clone().unwrap(),
        reader: BufReader::new(conn),
    };
    assert_json(
        &http.read(),
        r#"{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"Method not found"}}"#,
    );
    let reply = http.post(&[], "{not json");
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains(r#""code":-32700"#), "{reply:?}");
}

#[test]
fn a_batch_is_answered_with_one_array() {
    let server = Server::start(&[]);
    let batch = r#"[
        {"jsonrpc":"2.0","method":"createGroup","params":["Ops"],"id":1},
        {"jsonrpc":"2.0","method":"createGroup","params":["Dev"]},
        {"jsonrpc":"2.0","method":"getAllGroups","id":2},
        {"jsonrpc":"2.0","method":"getGroup","params":[99],"id":3}
    ]"#;
    assert_json(
        &server.http().post(&[], batch),
        r#"[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":[{"id":"2","external_id":"","name":"Dev"},{"id":"1","external_id":"","name":"Ops"}]},{"jsonrpc":"2.0","id":3,"result":false}]"#,
    );
}

#[test]
fn notifications_only_get_an_empty_200_and_still_run() {
    let server = Server::start(&[]);
    let mut http = server.http();
    for body in [
        r#"{"jsonrpc":"2.0","method":"createGroup","params":["A"]}"#,
        r#"[{"jsonrpc":"2.0","method":"createGroup","params":["B"]},{"jsonrpc":"2.0","method":"createGroup","params":["C"]}]"#,
    ] {
        let reply = http.post(&[], body);
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("content-length"), Some("0"));
        assert_eq!(reply.body, "");
    }
    let reply = http.post(&[], r#"{"jsonrpc":"2.0","method":"getAllGroups","id":0}"#);
    assert!(reply.body.contains(r#""name":"A""#), "{reply:?}");
    assert!(reply.body.contains(r#""name":"C""#), "{reply:?}");
}

#[test]
fn two_requests_share_one_kept_alive_connection() {
    let server = Server::start(&[]);
    let mut http = server.http();
    let first = http.post(
        &[],
        r#"{"jsonrpc":"2.0","method":"createGroup","params":["A"],"id":1}"#,
    );
    assert_json(&first, r#"{"jsonrpc":"2.0","id":1,"result":1}"#);
    assert_ne!(first.header("connection"), Some("close"));
    let second = http.post(
        &[],
        r#"{"jsonrpc":"2.0","method":"getGroup","params":[1],"id":2}"#,
    );
    assert_json(
        &second,
        r#"{"jsonrpc":"2.0","id":2,"result":{"id":"1","external_id":"","name":"A"}}"#,
    );
}

#[test]
fn methods_other_than_post_get_405_with_allow() {
    let server = Server::start(&[]);
    for method in ["GET", "PUT", "DELETE", "OPTIONS", "HEAD"] {
        let mut http = server.http();
        http.send(method, &[], b"");
        let reply = http.read_answer_to(method);
        assert_eq!(reply.status, 405, "{method}: {reply:?}");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
        assert!(http.closed(), "{method}");
    }
}

#[test]
fn requests_from_web_pages_are_refused() {
    let server = Server::start(&[]);
    let body = r#"{"jsonrpc":"2.0","method":"createGroup","params":["pwned"],"id":1}"#;
    let reply = server
        .http()
        .post(&[("Origin", "https://evil.example")], body);
    assert_eq!(reply.status, 403, "{reply:?}");
    let all = server
        .http()
        .post(&[], r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#);
    assert_json(&all, r#"{"jsonrpc":"2.0","id":1,"result":[]}"#);
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

#[test]
fn a_body_over_the_line_limit_gets_413() {
    let server = Server::start(&["--max-line-bytes", "64"]);
    let fits = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"exactly-64-byte"}"#;
    assert_eq!(fits.len(), 64);
    assert_json(
        &server.http().post(&[], fits),
        r#"{"jsonrpc":"2.0","id":"exactly-64-byte","result":[]}"#,
    );

    let mut http = server.http();
    let reply = http.post(&[], &format!("{fits} "));
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(http.closed());
}

#[test]
fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    let server = Server::start(&["--max-line-bytes", "64"]);
    let mut http = server.http();
    let head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000\r\n\r\n";
    http.writer.write_all(head.as_bytes()).unwrap();
    let reply = http.read();
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(reply.body, "request body exceeds the limit of 64 bytes\n");
}

#[test]
fn a_chunked_body_is_cut_off_at_the_limit() {
    let server = Server::start(&["--max-line-bytes", "64"]);
    let mut http = server.http();
    let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    http.writer.write_all(head.as_bytes()).unwrap();
    // Five 20-byte chunks: over the limit by the fourth; the last chunk is never sent.
    for _ in 0..5 {
        http.writer
            .write_all(b"14\r\n                    \r\n")
            .unwrap();
    }
    let reply = http.read();
    assert_eq!(reply.status, 413, "{reply:?}");
}

#[test]
fn one_connection_slot_pool_serves_tcp_and_http() {
    let server = Server::start(&["--max-connections", "1"]);

    // A TCP client holds the only slot: HTTP is refused with 503.
    let tcp = TcpStream::connect(server.tcp).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut tcp_reader = BufReader::new(tcp.try_clone().unwrap());
    (&tcp)
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"getAllGroups\",\"id\":1}\n")
        .unwrap();
    let mut line = String::new();
    tcp_reader.read_line(&mut line).unwrap();
    assert_eq!(line, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[]}\n");
    let body = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#;
    let mut http = server.http();
    let reply = http.post(&[], body);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(http.closed());

    // Once the TCP client leaves, its slot serves HTTP, and then TCP is the one refused.
    drop(tcp_reader);
    drop(tcp);
    let mut http = retry_until_served(server.http);
    let mut refused = BufReader::new(TcpStream::connect(server.tcp).unwrap());
    refused.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    let mut line = String::new();
    refused.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32000,\"message\":\"Server busy\"}}\n"
    );
    assert_json(
        &http.post(&[], body),
        r#"{"jsonrpc":"2.0","id":1,"result":[]}"#,
    );
}

/// A connection that got a `200` (a freed slot is released asynchronously, so a few `503`s
/// may come first).
fn retry_until_served(addr: SocketAddr) -> Http {
    let until = Instant::now() + DEADLINE;
    loop {
        let mut http = Http::connect(addr);
        let reply = http.post(&[], r#"{"jsonrpc":"2.0","method":"getAllGroups","id":0}"#);
        if reply.status == 200 {
            return http;
        }
        assert_eq!(reply.status, 503);
        assert!(Instant::now() < until, "the slot was never freed");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_idle_http_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let mut http = server.http();
    let reply = http.post(&[], r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#);
    assert_eq!(reply.status, 200);
    http.reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let start = Instant::now();
    assert!(http.closed(), "still open after 5 s");
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[test]
fn a_body_that_stops_arriving_gets_408_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let mut http = server.http();
    let head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"";
    http.writer.write_all(head.as_bytes()).unwrap();
    let start = Instant::now();
    let reply = http.read();
    assert_eq!(reply.status, 408, "{reply:?}");
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(http.closed());
}

#[test]
fn a_client_that_stops_reading_is_closed_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1"]);
    // Ten groups with long names make each getAllGroups answer about 1.3 kB; a batch of 1000 of
    // them, about 1.3 MB; thirty such requests, pipelined and never read, overflow any socket
    // buffer, so the server's writes stall.
    let mut http = server.http();
    let creates: Vec<String> = (0..10)
        .map(|i| {
            format!(r#"{{"jsonrpc":"2.0","method":"createGroup","params":["{i:0>100}"],"id":{i}}}"#)
        })
        .collect();
    let reply = http.post(&[], &format!("[{}]", creates.join(",")));
    assert_eq!(reply.status, 200, "{reply:?}");
    let all = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#;
    let batch = format!("[{}]", vec![all; 1000].join(","));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{batch}",
        batch.len()
    );
    let mut writer = http.writer.try_clone().unwrap();
    let sender = thread::spawn(move || {
        for _ in 0..30 {
            if writer.write_all(request.as_bytes()).is_err() {
                break;
            }
        }
    });
    server
        .wait_for_log(|l| l.contains("http connection closed on error"))
        .expect("the stalled connection was closed");
    drop(http);
    sender.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Token (SPEC §7)
// ---------------------------------------------------------------------------------------------

#[test]
fn with_a_token_basic_auth_jsonrpc_token_is_required() {
    let server = Server::with_token(&format!("  {TOKEN}\n"), &[]);
    let body = r#"{"jsonrpc":"2.0","method":"createGroup","params":["A"],"id":1}"#;
    let wrong = [
        None,
        Some(basic("jsonrpc", "wrong")),
        Some(basic("jsonrpc", &format!("  {TOKEN}\n"))),
        Some(basic("admin", TOKEN)),
        Some(format!("Bearer {TOKEN}")),
    ];
    for authorization in wrong {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("Authorization", a.as_str()))
            .collect();
        let mut http = server.http();
        let reply = http.post(&headers, body);
        assert_eq!(reply.status, 401, "{authorization:?}: {reply:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Basic realm="JsonRPC""#)
        );
        assert!(http.closed());
    }
    let mut http = server.http();
    let right = basic("jsonrpc", TOKEN);
    let reply = http.post(&[("Authorization", &right)], body);
    assert_json(&reply, r#"{"jsonrpc":"2.0","id":1,"result":1}"#);

    // Nothing refused ran: the one group is the authorised one's.
    let all = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":2}"#;
    assert_json(
        &http.post(&[("Authorization", &right)], all),
        r#"{"jsonrpc":"2.0","id":2,"result":[{"id":"1","external_id":"","name":"A"}]}"#,
    );
    assert!(!server.log().contains(TOKEN), "the token was logged");
}

#[test]
fn an_empty_token_file_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = token_file(&dir, " \n\t\n");
    let Err(mut exit) = Server::try_start(&["--token-file", path.to_str().unwrap()]) else {
        panic!("started with an empty token file");
    };
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    exit.stderr = exit.stderr.trim().to_owned();
    assert_eq!(exit.stderr.lines().count(), 1, "{}", exit.stderr);
    assert!(exit.stderr.contains("is empty"), "{}", exit.stderr);
}

#[test]
fn beyond_loopback_without_a_token_refuses_to_start() {
    for args in [
        ["--listen", "127.0.0.1:0", "--http", "0.0.0.0:0"],
        ["--listen", "0.0.0.0:0", "--http", "127.0.0.1:0"],
        ["--listen", "127.0.0.1:0", "--http", "[::]:0"],
    ] {
        let Err(exit) = Server::try_start(&args) else {
            panic!("{args:?} started without a token");
        };
        assert_eq!(exit.status.code(), Some(2), "{args:?}: {}", exit.stderr);
        let stderr = exit.stderr.trim();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("without a token"), "{stderr}");
    }
}

#[test]
fn beyond_loopback_starts_with_insecure_or_a_token() {
    let server = Server::start_raw(&[
        "--listen",
        "127.0.0.1:0",
        "--http",
        "0.0.0.0:0",
        "--insecure",
    ]);
    assert!(server.http.ip().is_unspecified());
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    let path = token_file(&dir, TOKEN);
    let server = Server::start_raw(&[
        "--listen",
        "127.0.0.1:0",
        "--http",
        "0.0.0.0:0",
        "--token-file",
        path.to_str().unwrap(),
    ]);
    assert!(server.http.ip().is_unspecified());
}

// ---------------------------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let mut server = Server::start(&[]);
    let mut idle = server.http();
    let reply = idle.post(&[], r#"{"jsonrpc":"2.0","method":"getAllGroups","id":0}"#);
    assert_eq!(reply.status, 200);

    // A request whose body is half sent when the signal arrives: the server has read its head
    // (it logged the request, with this connection as the peer) and waits for the rest.
    let body = r#"{"jsonrpc":"2.0","method":"createGroup","params":["late"],"id":1}"#;
    let (first, rest) = body.split_at(20);
    let mut busy = server.http();
    let peer = busy.writer.local_addr().unwrap().to_string();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    );
    busy.writer.write_all(head.as_bytes()).unwrap();
    server
        .wait_for_log(|l| l.contains("http request") && l.contains(&peer))
        .expect("the server logged the request");
    server.signal("TERM");
    let signalled = Instant::now();
    server
        .wait_for_log(|l| l.contains("shutting down"))
        .expect("the server logged its shutdown");
    busy.writer.write_all(rest.as_bytes()).unwrap();
    let reply = busy.read();
    assert_json(&reply, r#"{"jsonrpc":"2.0","id":1,"result":1}"#);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(idle.closed());

    let exit = server.exit();
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
    // Well within the grace period: nothing was left for it to cut short.
    assert!(signalled.elapsed() < Duration::from_secs(5));
    assert!(exit.stderr.contains("shut down cleanly"), "{}", exit.stderr);
}
