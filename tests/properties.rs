//! Properties of one conversation (SPEC §1, §2), for inputs nobody would write by hand: the real
//! `connection::serve` in-process, over a small `tokio::io::duplex` pipe (so both directions see
//! back-pressure), on a fresh temporary database, with the input cut into chunks at arbitrary
//! points.
//!
//! - Any byte stream: the server does not panic, ends at EOF, and everything it writes is a
//!   well-formed JSON-RPC 2.0 response in the conversation's framing.
//! - Request lines mixed with garbage lines, blank lines and notifications: every non-blank line
//!   that is not a notification gets exactly one answer line, in order; garbage gets an error
//!   with id null; and every valid request is answered exactly as a model of the Group API says,
//!   whatever garbage came before it.

use std::collections::BTreeMap;
use std::time::Duration;

#[path = "support/wire.rs"]
mod wire;

use groupd::connection::{self, End};
use groupd::dispatch::Service;
use groupd::limits::Limits;
use groupd::session::Session;
use groupd::storage;
use proptest::prelude::*;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use wire::{Response, answers, check_answer, content_length_framed, session};

/// A small line limit, so that generated lines cross it now and then.
const MAX_LINE_BYTES: usize = 256;

const LIMITS: Limits = Limits {
    max_line_bytes: MAX_LINE_BYTES,
    max_batch: 8,
    max_connections: 1,
    idle_timeout: None,
};

/// A conversation that has not ended by then is hung: the property fails instead of hanging.
const CONVERSATION_DEADLINE: Duration = Duration::from_secs(20);

/// The pipe's capacity each way: small, so reads and writes interleave.
const PIPE_BYTES: usize = 64;

/// A fresh database, in memory-backed /dev/shm when there is one (a commit's fsync is free
/// there, and the properties are about the protocol, not the disk).
fn service() -> (Service, TempDir) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory");
    let store = storage::open(&dir.path().join("groupd.redb")).expect("open the database");
    (Service::new(store, LIMITS), dir)
}

/// Runs one conversation: `input` is written in chunks of the sizes in `chunks` (cycled), then
/// the peer closes its side; everything the server writes is collected until it closes.
fn converse(session: Session, input: &[u8], chunks: &[usize]) -> (End, Vec<u8>) {
    let (service, _dir) = service();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (peer, server) = tokio::io::duplex(PIPE_BYTES);
        let (server_reader, server_writer) = tokio::io::split(server);
        let (mut peer_reader, mut peer_writer) = tokio::io::split(peer);
        let shutdown = CancellationToken::new();
        let serve = connection::serve(
            server_reader,
            server_writer,
            &service,
            session,
            None,
            &shutdown,
        );
        let feed = async {
            let mut rest = input;
            for &size in chunks.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at(size.clamp(1, rest.len()));
                // The server may close first (an HTTP-looking first line, three wrong
                // tokens); then the rest of the input is simply not taken.
                if peer_writer.write_all(now).await.is_err() {
                    return;
                }
                rest = later;
                tokio::task::yield_now().await;
            }
            let _ = peer_writer.shutdown().await;
        };
        let collect = async {
            let mut out = Vec::new();
            peer_reader
                .read_to_end(&mut out)
                .await
                .expect("read the answers");
            out
        };
        let all = async { tokio::join!(serve, feed, collect) };
        let (end, (), out) = tokio::time::timeout(CONVERSATION_DEADLINE, all)
            .await
            .expect("the conversation ended in time");
        (end.expect("serve returned an I/O error"), out)
    })
}

// ---- any bytes ----

/// Bytes that are mostly JSON-RPC-shaped, with arbitrary bytes mixed in.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 1..8),
        2 => Just(b"\n".to_vec()),
        1 => Just(b"\r\n".to_vec()),
        3 => Just(br#"{"jsonrpc":"2.0","#.to_vec()),
        2 => Just(br#""method":"createGroup","#.to_vec()),
        2 => Just(br#""method":"getAllGroups","#.to_vec()),
        1 => Just(br#""method":"updateGroup","params":[1,"x"]"#.to_vec()),
        2 => Just(br#""id":1}"#.to_vec()),
        1 => Just(br#""id":-1.5e400}"#.to_vec()),
        1 => Just(br#""params":["a"]}"#.to_vec()),
        1 => Just(b"[".to_vec()),
        1 => Just(b"]".to_vec()),
        1 => Just(b"{}".to_vec()),
        1 => Just(b"Content-Length: 2\r\n\r\n".to_vec()),
        1 => Just(br#"{"jsonrpc":"2.0","method":"authenticate","params":["t0k"],"id":0}"#.to_vec()),
    ];
    proptest::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1..=100usize, 1..16)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 500,
        // Failures are reported with their minimal input; nothing is written to the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_bytes_get_only_well_formed_answers(
        input in wire_bytes(),
        chunks in chunk_sizes(),
        kind in 1..4u8,
    ) {
        let (end, out) = converse(session(kind), &input, &chunks);
        let answers = answers(&input, &out);
        for answer in &answers {
            check_answer(answer);
        }
        if !content_length_framed(&input) {
            let lines = input.split(|&b| b == b'\n').count();
            prop_assert!(answers.len() <= lines, "{} answers to {lines} lines", answers.len());
            prop_assert_ne!(end, End::Unframeable);
        }
    }
}

// ---- request lines among garbage ----

/// One line of a generated conversation.
#[derive(Debug, Clone)]
enum Line {
    Create,
    /// A createGroup without an id: it runs, and nothing is answered.
    CreateNotification,
    Get(u64),
    Remove(u64),
    All,
    /// Not a request: must get one error answer with id null.
    Garbage(Vec<u8>),
    /// Empty or whitespace only: must get no answer.
    Blank(&'static str),
}

/// Lines that are not requests, and that a reader could mistake for nothing else.
const NOT_REQUESTS: &[&str] = &[
    "{",
    "}",
    "[]",
    "42",
    "\"createGroup\"",
    "null",
    r#"{"jsonrpc":"1.0","method":"getAllGroups","id":1}"#,
    r#"{"jsonrpc":"2.0","id":1}"#,
    r#"{"jsonrpc":"2.0","method":7,"id":1}"#,
    r#"{"jsonrpc":"2.0","method":"getGroup","id":{"a":1},"params":[1]}"#,
    r#"{"jsonrpc":"2.0","method":"getGroup","id":[1],"params":[1]}"#,
    r#"{"jsonrpc":"2.0","method":"getGroup","id":true,"params":[1]}"#,
    r#"{"jsonrpc":"2.0","method":"createGroup","params":"x","id":1}"#,
    "\u{feff}{}",
    "\"\\ud800\"",
];

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let arbitrary = proptest::collection::vec(
        any::<u8>().prop_filter("no newline", |&b| b != b'\n'),
        1..400,
    )
    .prop_filter("not possibly a request", |bytes| {
        // An object or array might happen to be a valid request (or batch); rule those out.
        !matches!(
            serde_json::from_slice::<Value>(bytes),
            Ok(Value::Object(_) | Value::Array(_))
        )
    });
    let truncated = (0..6usize, 1..60usize).prop_map(|(i, cut)| {
        let full = request_text(&Line::Get(1), &format!("{i}"), "");
        full.as_bytes()[..cut.min(full.len() - 1)].to_vec()
    });
    let deep = (129..250usize).prop_map(|depth| "[".repeat(depth).into_bytes());
    let listed = proptest::sample::select(NOT_REQUESTS).prop_map(|s| s.as_bytes().to_vec());
    prop_oneof![4 => arbitrary, 2 => truncated, 1 => deep, 2 => listed]
        .prop_filter("not blank", |bytes| {
            !bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
        })
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        3 => Just(Line::Create),
        1 => Just(Line::CreateNotification),
        2 => (0..6u64).prop_map(Line::Get),
        1 => (0..6u64).prop_map(Line::Remove),
        1 => Just(Line::All),
        4 => garbage().prop_map(Line::Garbage),
        1 => proptest::sample::select(&["", " ", "\t", " \r"][..]).prop_map(Line::Blank),
    ]
}

/// The request text of a request line, with JSON `id` text `id`; a created group is named
/// `name`.
fn request_text(line: &Line, id: &str, name: &str) -> String {
    let (method, params) = match line {
        Line::Create | Line::CreateNotification => ("createGroup", format!(r#"["{name}"]"#)),
        Line::Get(group) => ("getGroup", format!("[{group}]")),
        Line::Remove(group) => ("removeGroup", format!(r#"{{"group_id":"{group}"}}"#)),
        Line::All => ("getAllGroups", "null".to_owned()),
        Line::Garbage(_) | Line::Blank(_) => unreachable!("not a request"),
    };
    match line {
        Line::CreateNotification => {
            format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{params}}}"#)
        }
        _ => format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{params},"id":{id}}}"#),
    }
}

/// The Group API, as SPEC §4 describes it, for names that are all distinct.
#[derive(Default)]
struct Model {
    next_id: u64,
    /// id → name.
    groups: BTreeMap<u64, String>,
}

impl Model {
    fn group(id: u64, name: &str) -> String {
        format!(r#"{{"id":"{id}","external_id":"","name":"{name}"}}"#)
    }

    /// The `result` of `line` (or `None` for a notification), updating the model.
    fn apply(&mut self, line: &Line, name: &str) -> Option<String> {
        match line {
            Line::Create | Line::CreateNotification => {
                self.next_id += 1;
                self.groups.insert(self.next_id, name.to_owned());
                matches!(line, Line::Create).then(|| self.next_id.to_string())
            }
            Line::Get(group) => Some(
                self.groups
                    .get(group)
                    .map_or("false".to_owned(), |name| Model::group(*group, name)),
            ),
            Line::Remove(group) => Some(self.groups.remove(group).is_some().to_string()),
            Line::All => {
                let mut all: Vec<_> = self.groups.iter().collect();
                all.sort_by(|a, b| a.1.cmp(b.1));
                let all: Vec<_> = all
                    .iter()
                    .map(|(id, name)| Model::group(**id, name))
                    .collect();
                Some(format!("[{}]", all.join(",")))
            }
            Line::Garbage(_) | Line::Blank(_) => None,
        }
    }
}

/// What a conversation's lines should get back: per line, `Some(answer)` for a request,
/// `Some("")` for garbage (any error with id null), `None` for no answer.
fn conversation(lines: &[(Line, bool)]) -> (Vec<u8>, Vec<Option<String>>) {
    let (mut input, mut expected, mut model) = (Vec::new(), Vec::new(), Model::default());
    for (i, (line, crlf)) in lines.iter().enumerate() {
        // Ids alternate between numbers and strings; both must come back as written.
        let id = if i % 2 == 0 {
            i.to_string()
        } else {
            format!("\"s{i}\"")
        };
        match line {
            Line::Garbage(bytes) => {
                input.extend_from_slice(bytes);
                expected.push(Some(String::new()));
            }
            Line::Blank(text) => {
                input.extend_from_slice(text.as_bytes());
                expected.push(None);
            }
            request => {
                let name = format!("g{i}");
                input.extend_from_slice(request_text(request, &id, &name).as_bytes());
                let result = model.apply(request, &name);
                expected
                    .push(result.map(|r| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{r}}}"#)));
            }
        }
        input.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
    }
    (input, expected)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_request_line_gets_its_one_answer_in_order(
        lines in proptest::collection::vec((line(), any::<bool>()), 1..40),
        chunks in chunk_sizes(),
    ) {
        let (input, expected) = conversation(&lines);
        // Content-Length framing is chosen by the first bytes; that is another property.
        prop_assume!(!content_length_framed(&input));
        let (end, out) = converse(Session::trusted(), &input, &chunks);
        prop_assert_eq!(end, End::Eof);
        let answers = answers(&input, &out);
        let wanted: Vec<(usize, &String)> = expected
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i, e)))
            .collect();
        prop_assert_eq!(
            answers.len(),
            wanted.len(),
            "answers: {:#?}\nexpected: {:#?}",
            answers,
            wanted
        );
        for (answer, (i, expected)) in answers.iter().zip(&wanted) {
            let responses = check_answer(answer);
            if expected.is_empty() {
                let line = String::from_utf8_lossy(match &lines[*i].0 {
                    Line::Garbage(bytes) => bytes,
                    _ => unreachable!(),
                });
                prop_assert!(
                    matches!(&responses[..], [Response { id, error: Some(_) }] if id == "null"),
                    "line {}: {:?} got {}", i, line, answer
                );
            } else {
                prop_assert_eq!(answer, *expected, "line {}", i);
            }
        }
    }
}

#[test]
fn the_line_limit_is_small_enough_for_generated_lines_to_cross_it() {
    // Keeps the generators honest: garbage lines reach up to 400 bytes.
    const { assert!(MAX_LINE_BYTES < 400) };
    let over = vec![b'x'; MAX_LINE_BYTES + 1];
    let (_, out) = converse(Session::trusted(), &[&over[..], b"\n"].concat(), &[7]);
    let answers = answers(b"", &out);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].contains("-32600"), "{answers:?}");
}
