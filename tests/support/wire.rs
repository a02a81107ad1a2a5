//! What the in-process wire tests share: the fuzz target (tests/fuzz), its regression replays
//! (tests/fuzz_regressions.rs) and the properties (tests/properties.rs) drive
//! `connection::serve` with the same peer and judge its answers by the same rules.
//! Included with `#[path]`, so each user compiles only what it uses.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use groupd::auth::Token;
use groupd::session::Session;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, ReadBuf};

/// The token of the sessions that have one.
pub const TOKEN: &[u8] = b"t0k";

/// A session by kind: 0 and 1 trusted (stdio, HTTP), 2 TCP without a token, 3 TCP with one.
pub fn session(kind: u8) -> Session {
    match kind & 3 {
        0 | 1 => Session::trusted(),
        2 => Session::tcp(None),
        _ => Session::tcp(Token::new(TOKEN).map(Arc::new)),
    }
}

/// How one fuzz input is run, from its first byte: bits 0–1 the session, bit 2 whether the
/// reader says "nothing yet" between chunks, bits 3–7 the chunk size (0: everything at once).
pub struct Mode {
    pub session: u8,
    pub stall: bool,
    pub chunk: usize,
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
    pub fn session(&self) -> Session {
        session(self.session)
    }

    /// The peer for `data` in this mode.
    pub fn peer<'a>(&self, data: &'a [u8]) -> Chunked<'a> {
        Chunked {
            data,
            chunk: self.chunk,
            stall: self.stall,
            stalled: false,
        }
    }
}

/// A peer that sends `data` `chunk` bytes at a time, with a "nothing yet" between chunks when
/// `stall` is set.
pub struct Chunked<'a> {
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

pub fn content_length_framed(input: &[u8]) -> bool {
    const HEADER: &[u8] = b"content-length:";
    input.len() >= HEADER.len() && input[..HEADER.len()].eq_ignore_ascii_case(HEADER)
}

/// Splits what the server wrote into answers, checking its framing on the way.
pub fn answers(input: &[u8], mut out: &[u8]) -> Vec<String> {
    let text = |a: &[u8]| String::from_utf8(a.to_vec()).expect("answers are UTF-8");
    if !content_length_framed(input) {
        if out.is_empty() {
            return Vec::new();
        }
        assert_eq!(out.last(), Some(&b'\n'), "the last answer has no \\n");
        return out[..out.len() - 1]
            .split(|&b| b == b'\n')
            .map(text)
            .collect();
    }
    let mut all = Vec::new();
    while !out.is_empty() {
        let rest = out
            .strip_prefix(b"Content-Length: ")
            .expect("a Content-Length header");
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("the end of the header");
        let length: usize = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|n| n.parse().ok())
            .expect("a numeric Content-Length");
        let body = &rest[end + 4..];
        assert!(
            body.len() >= length,
            "a body shorter than its Content-Length"
        );
        all.push(text(&body[..length]));
        out = &body[length..];
    }
    all
}

/// What one response says: its id as written, and its error code if it is an error.
#[derive(Debug, PartialEq)]
pub struct Response {
    pub id: String,
    pub error: Option<i64>,
}

/// One answer: a response object, or a non-empty array of them, with members in the order
/// `jsonrpc`, `id`, `result` or `error` (SPEC §1, §2). Read through `RawValue` so that an id is
/// taken as written: `1e400` is a JSON number the server must echo, though it fits no `f64`.
pub fn check_answer(answer: &str) -> Vec<Response> {
    assert!(!answer.contains('\n'), "a raw newline in {answer}");
    let raw: &RawValue = serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    if !raw.get().starts_with('[') {
        return vec![check_response(answer)];
    }
    let entries: Vec<&RawValue> = serde_json::from_str(answer).expect("an array");
    assert!(!entries.is_empty(), "an empty batch answer");
    entries.iter().map(|e| check_response(e.get())).collect()
}

pub fn check_response(text: &str) -> Response {
    assert!(
        text.starts_with(r#"{"jsonrpc":"2.0","id":"#),
        "member order: {text}"
    );
    let members: BTreeMap<String, &RawValue> =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let keys: Vec<&str> = members.keys().map(String::as_str).collect();
    assert!(
        keys == ["error", "id", "jsonrpc"] || keys == ["id", "jsonrpc", "result"],
        "jsonrpc, id, and result or error: {text}"
    );
    let id = members["id"].get().to_owned();
    assert!(
        id == "null" || id.starts_with(['"', '-']) || id.starts_with(|c: char| c.is_ascii_digit()),
        "an id that is neither null, a string nor a number: {text}"
    );
    let Some(error) = members.get("error") else {
        return Response { id, error: None };
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
        // Not -32603: the database here does not fail.
        _ => panic!("unexpected error code: {text}"),
    };
    assert_eq!(message, expected, "{text}");
    assert!(
        error
            .keys()
            .all(|k| ["code", "message", "data"].contains(&k.as_str())),
        "{text}"
    );
    assert!(error.get("data").is_none_or(Value::is_string), "{text}");
    if matches!(code, -32700 | -32600) {
        assert_eq!(id, "null", "envelope errors carry id null: {text}");
    }
    Response {
        id,
        error: Some(code),
    }
}
