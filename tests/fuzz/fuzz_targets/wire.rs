//! Arbitrary bytes through the whole conversation: framing, the JSON-RPC envelope, the method
//! table and a real (temporary) redb database, exactly as a TCP or stdio peer would drive them.
//!
//! The first input byte picks how the conversation is run (see [`Mode`]); the rest is what the
//! peer sends, delivered in chunks of the chosen size, sometimes with a "nothing yet" between
//! chunks. Besides "never panics", every run checks what the peer got back: each answer is a
//! well-formed JSON-RPC 2.0 response in the server's framing, and there are never more answers
//! than requests.

#![no_main]

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use groupd::auth::Token;
use groupd::connection;
use groupd::dispatch::Service;
use groupd::limits::Limits;
use groupd::session::Session;
use groupd::storage::Store;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::CancellationToken;

/// Small limits, so that inputs of a few hundred bytes reach them.
const LIMITS: Limits = Limits {
    max_line_bytes: 512,
    max_batch: 8,
    max_connections: 1,
    idle_timeout: None,
};

const TOKEN: &[u8] = b"t0k";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let mode = Mode::from(mode);
    // A fresh database for every input keeps runs independent, so a finding replays alone.
    // It lives in memory-backed /dev/shm when there is one, where a commit's fsync is free.
    let dir = scratch_dir();
    let store = Store::open(&dir.path().join("fuzz.redb")).expect("open a scratch database");
    let service = Service::new(store, LIMITS);
    let reader = Chunked {
        data: input,
        chunk: mode.chunk,
        stall: mode.stall,
        stalled: false,
    };
    let mut out = Vec::new();
    let end = runtime().block_on(connection::serve(
        reader,
        &mut out,
        &service,
        mode.session(),
        None,
        &CancellationToken::new(),
    ));
    assert!(end.is_ok(), "serve failed: {end:?}");
    check_answers(input, &out);
});

/// How one input is run, from its first byte: bits 0–1 the session, bit 2 whether the reader
/// says "nothing yet" between chunks, bits 3–7 the chunk size (0: everything at once).
struct Mode {
    session: u8,
    stall: bool,
    chunk: usize,
}

impl From<u8> for Mode {
    fn from(b: u8) -> Mode {
        let chunk = match b >> 3 {
            0 => usize::MAX,
            n => usize::from(n),
        };
        Mode {
            session: b & 3,
            stall: b & 4 != 0,
            chunk,
        }
    }
}

impl Mode {
    fn session(&self) -> Session {
        match self.session {
            0 | 1 => Session::trusted(),
            2 => Session::tcp(None),
            _ => Session::tcp(Token::new(TOKEN).map(std::sync::Arc::new)),
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.expect("a scratch directory")
}

/// A peer that sends `data` `chunk` bytes at a time.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
    stall: bool,
    stalled: bool,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.stall && !self.stalled && !self.data.is_empty() {
            self.stalled = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.stalled = false;
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        let (now, later) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

/// Whether the conversation uses Content-Length framing (SPEC §8): decided by its first bytes.
fn content_length_framed(input: &[u8]) -> bool {
    const HEADER: &[u8] = b"content-length:";
    input.len() >= HEADER.len() && input[..HEADER.len()].eq_ignore_ascii_case(HEADER)
}

/// Everything the peer got back must be well-formed answers, no more than it sent requests.
fn check_answers(input: &[u8], out: &[u8]) {
    let answers = if content_length_framed(input) {
        split_content_length(out)
    } else {
        split_lines(out)
    };
    if !content_length_framed(input) {
        let requests = input.split(|&b| b == b'\n').count();
        assert!(
            answers.len() <= requests,
            "{} answers to at most {requests} request lines",
            answers.len()
        );
    }
    for answer in answers {
        check_answer(answer);
    }
}

fn split_lines(out: &[u8]) -> Vec<&[u8]> {
    if out.is_empty() {
        return Vec::new();
    }
    assert_eq!(out.last(), Some(&b'\n'), "answers not ended by \\n");
    out[..out.len() - 1].split(|&b| b == b'\n').collect()
}

fn split_content_length(mut out: &[u8]) -> Vec<&[u8]> {
    let mut answers = Vec::new();
    while !out.is_empty() {
        let rest = out
            .strip_prefix(b"Content-Length: ")
            .expect("an answer header");
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("the end of the answer header");
        let length: usize = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|n| n.parse().ok())
            .expect("a numeric Content-Length");
        let body = &rest[end + 4..];
        assert!(
            body.len() >= length,
            "answer shorter than its Content-Length"
        );
        answers.push(&body[..length]);
        out = &body[length..];
    }
    answers
}

/// One answer: a response object, or a non-empty array of them (SPEC §1, §2). Read through
/// `RawValue` so that an id is taken as written: `1e400` is a JSON number the server must echo,
/// though it fits no `f64`.
fn check_answer(answer: &[u8]) {
    let text = std::str::from_utf8(answer).expect("answers are UTF-8");
    assert!(!text.contains('\n'), "raw newline in {text}");
    let raw: &RawValue = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    if raw.get().starts_with('[') {
        let entries: Vec<&RawValue> = serde_json::from_str(text).expect("an array");
        assert!(!entries.is_empty(), "empty batch answer");
        entries.iter().for_each(|e| check_response(e.get()));
    } else {
        check_response(text);
    }
}

fn check_response(text: &str) {
    assert!(
        text.starts_with(r#"{"jsonrpc":"2.0","id":"#),
        "member order: {text}"
    );
    let members: BTreeMap<String, &RawValue> =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let keys: Vec<&str> = members.keys().map(String::as_str).collect();
    assert!(
        keys == ["error", "id", "jsonrpc"] || keys == ["id", "jsonrpc", "result"],
        "jsonrpc, id and one of result/error: {text}"
    );
    let id = members["id"].get();
    assert!(
        id == "null" || id.starts_with(['"', '-']) || id.starts_with(|c: char| c.is_ascii_digit()),
        "id neither null, a string nor a number: {text}"
    );
    let Some(error) = members.get("error") else {
        return;
    };
    let error: Value = serde_json::from_str(error.get()).expect("an error object");
    let error = error.as_object().expect("an error object");
    let code = error.get("code").and_then(Value::as_i64).expect("a code");
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .expect("a message");
    let expected = match code {
        -32700 => "Parse error",
        -32600 => "Invalid Request",
        -32601 => "Method not found",
        -32602 => "Invalid params",
        -32001 => "Unauthorized",
        // Not -32603: the scratch database never fails, so an internal error is a finding.
        _ => panic!("unexpected error code in {text}"),
    };
    assert_eq!(message, expected, "{text}");
    assert!(
        error
            .keys()
            .all(|k| ["code", "message", "data"].contains(&k.as_str())),
        "{text}"
    );
    assert!(error.get("data").is_none_or(Value::is_string), "{text}");
    if code == -32700 || code == -32600 {
        assert_eq!(id, "null", "envelope errors answer with id null: {text}");
    }
}
