//! SPEC §8: a conversation whose first bytes are a `Content-Length:` header speaks the LSP base
//! protocol, over TCP and over stdio, and is answered in it; everything else in the contract
//! (batches, notifications, errors, limits) holds in that framing too.

mod spawned;

use spawned::{Server, StdioProcess, frame};

const CREATE_OPS: &str = r#"{"jsonrpc":"2.0","id":1,"method":"createGroup","params":["Ops"]}"#;

/// The framed answer bytes for `body`.
fn framed_answer(body: &str) -> (String, String) {
    (
        format!("Content-Length: {}\r\n\r\n", body.len()),
        body.to_owned(),
    )
}

#[test]
fn a_content_length_conversation_is_answered_in_content_length_framing() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    conn.send(&frame(CREATE_OPS));
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)
    );
    conn.send(&frame(
        r#"{"jsonrpc":"2.0","id":"g","method":"getGroup","params":[1]}"#,
    ));
    assert_eq!(
        conn.framed(),
        framed_answer(
            r#"{"jsonrpc":"2.0","id":"g","result":{"id":"1","external_id":"","name":"Ops"}}"#
        )
    );
}

#[test]
fn the_header_name_is_case_insensitive_and_other_headers_are_ignored() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    let first = r#"{"jsonrpc":"2.0","id":1,"method":"getAllGroups"}"#;
    conn.send(
        format!(
            "content-LENGTH:{}  \r\nX-Trace: abc\r\n\r\n{first}",
            first.len()
        )
        .as_bytes(),
    );
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":1,"result":[]}"#)
    );
    // Content-Type first, as some clients write it, then the length in yet another case.
    let second = r#"{"jsonrpc":"2.0","id":2,"method":"createGroup","params":{"name":"Ops"}}"#;
    conn.send(
        format!(
            "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH: {}\r\n\r\n{second}",
            second.len()
        )
        .as_bytes(),
    );
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":2,"result":1}"#)
    );
}

#[test]
fn lengths_count_bytes_both_ways() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    let create = r#"{"jsonrpc":"2.0","id":1,"method":"createGroup","params":["Ångström ☃"]}"#;
    assert_ne!(create.len(), create.chars().count());
    conn.send(&frame(create));
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)
    );
    conn.send(&frame(
        r#"{"jsonrpc":"2.0","id":2,"method":"getGroup","params":["1"]}"#,
    ));
    assert_eq!(
        conn.framed(),
        framed_answer(
            r#"{"jsonrpc":"2.0","id":2,"result":{"id":"1","external_id":"","name":"Ångström ☃"}}"#
        )
    );
}

#[test]
fn a_message_split_across_many_writes_is_read_whole() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    let bytes = frame(CREATE_OPS);
    for chunk in bytes.chunks(7) {
        conn.send(chunk);
    }
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)
    );
}

#[test]
fn batches_notifications_and_errors_are_the_same_as_in_lines() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    // A notification is run and not answered: the next answer is the batch's.
    conn.send(&frame(
        r#"{"jsonrpc":"2.0","method":"createGroup","params":["Quiet"]}"#,
    ));
    conn.send(&frame(
        r#"[{"jsonrpc":"2.0","id":1,"method":"createGroup","params":["Ops"]},{"jsonrpc":"2.0","method":"createGroup","params":["Silent"]},{"jsonrpc":"2.0","id":2,"method":"getAllGroups"},{"jsonrpc":"2.0","id":3,"method":"nope"}]"#,
    ));
    assert_eq!(
        conn.framed(),
        framed_answer(concat!(
            r#"[{"jsonrpc":"2.0","id":1,"result":2},"#,
            r#"{"jsonrpc":"2.0","id":2,"result":[{"id":"2","external_id":"","name":"Ops"},{"id":"1","external_id":"","name":"Quiet"},{"id":"3","external_id":"","name":"Silent"}]},"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found"}}]"#
        ))
    );
    // A batch of notifications only: no answer at all, so the next one is the parse error's.
    conn.send(&frame(
        r#"[{"jsonrpc":"2.0","method":"removeGroup","params":[1]}]"#,
    ));
    conn.send(&frame("{not json"));
    let (headers, body) = conn.framed();
    assert_eq!(headers, format!("Content-Length: {}\r\n\r\n", body.len()));
    assert!(
        body.starts_with(
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error""#
        ),
        "{body}"
    );
    conn.send(&frame("[]"));
    let (_, body) = conn.framed();
    assert!(
        body.starts_with(
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request""#
        ),
        "{body}"
    );
    conn.send(&frame(
        r#"{"jsonrpc":"2.0","id":4,"method":"getGroup","params":[1]}"#,
    ));
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":4,"result":false}"#)
    );
}

/// A body of `createGroup` over 100 bytes.
fn oversized_create() -> Vec<u8> {
    let name = "x".repeat(200);
    frame(&format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"createGroup","params":["{name}"]}}"#
    ))
}

fn assert_over_the_limit((headers, body): (String, String), limit: usize) {
    assert_eq!(headers, format!("Content-Length: {}\r\n\r\n", body.len()));
    assert!(
        body.starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request","data":"#),
        "{body}"
    );
    assert!(
        body.contains(&limit.to_string()),
        "the data names the limit: {body}"
    );
}

#[test]
fn a_body_over_the_line_limit_is_refused_and_the_next_message_answered() {
    let server = Server::start(&["--max-line-bytes", "100"]);
    let mut conn = server.connect();
    conn.send(&oversized_create());
    assert_over_the_limit(conn.framed(), 100);
    // The big body was skipped, not run.
    conn.send(&frame(
        r#"{"jsonrpc":"2.0","id":2,"method":"getAllGroups"}"#,
    ));
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":2,"result":[]}"#)
    );
    // A body exactly at the limit is fine.
    let empty = r#"{"jsonrpc":"2.0","id":3,"method":"getAllGroups","x":""}"#;
    let at_limit = empty.replace(
        r#""x":"""#,
        &format!(r#""x":"{}""#, "z".repeat(100 - empty.len())),
    );
    assert_eq!(at_limit.len(), 100);
    conn.send(&frame(&at_limit));
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":3,"result":[]}"#)
    );
}

#[test]
fn a_message_arriving_with_an_oversized_body_is_answered_too() {
    // The oversized body and the next message in one write, so (almost surely) in one read.
    let server = Server::start(&["--max-line-bytes", "100"]);
    let mut conn = server.connect();
    let mut bytes = oversized_create();
    bytes.extend(frame(r#"{"jsonrpc":"2.0","id":2,"method":"getAllGroups"}"#));
    conn.send(&bytes);
    assert_over_the_limit(conn.framed(), 100);
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":2,"result":[]}"#)
    );
}

/// The answer to headers that do not give a usable length: -32600, id null, then the end.
fn assert_unframeable(body: &str, why: &str) {
    let expected = format!(
        r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32600,"message":"Invalid Request","data":"{why}"}}}}"#
    );
    assert_eq!(body, expected);
}

#[test]
fn a_non_numeric_content_length_is_refused_and_the_connection_closed() {
    let server = Server::start(&[]);
    for value in ["abc", "-1", "1.5", "", "99999999999999999999999999"] {
        let mut conn = server.connect();
        conn.send(format!("Content-Length: {value}\r\n\r\n{CREATE_OPS}").as_bytes());
        let (_, body) = conn.framed();
        assert_unframeable(&body, "Content-Length is not a number");
        conn.expect_closed();
    }
    // None of those bodies ran.
    let mut conn = server.connect();
    assert_eq!(
        conn.call(r#"{"jsonrpc":"2.0","id":1,"method":"getAllGroups"}"#),
        r#"{"jsonrpc":"2.0","id":1,"result":[]}"#
    );
}

#[test]
fn a_missing_content_length_is_refused_and_the_connection_closed() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    conn.send(&frame(CREATE_OPS));
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)
    );
    conn.send(format!("Content-Type: application/json\r\n\r\n{CREATE_OPS}").as_bytes());
    let (_, body) = conn.framed();
    assert_unframeable(&body, "missing Content-Length header");
    conn.expect_closed();
}

#[test]
fn a_line_conversation_stays_in_lines() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    assert_eq!(
        conn.call(CREATE_OPS),
        r#"{"jsonrpc":"2.0","id":1,"result":1}"#
    );
    let answer = conn.call("Content-Length: 2");
    assert!(
        answer.starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700"#),
        "{answer}"
    );
}

#[test]
fn the_token_gate_holds_in_content_length_framing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = spawned::token_file(dir.path(), "s3cret");
    let server = Server::start(&["--token-file", token.to_str().expect("path")]);
    let mut conn = server.connect();
    conn.send(&frame(CREATE_OPS));
    assert_eq!(
        conn.framed(),
        framed_answer(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Unauthorized"}}"#
        )
    );
    conn.send(&frame(
        r#"{"jsonrpc":"2.0","id":2,"method":"authenticate","params":{"token":"s3cret"}}"#,
    ));
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":2,"result":true}"#)
    );
    conn.send(&frame(CREATE_OPS));
    assert_eq!(
        conn.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)
    );
}

#[test]
fn stdio_speaks_content_length_too_and_exits_0_at_eof() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("groupd.redb");
    let db = db.to_str().expect("path");
    let mut stdio = StdioProcess::start(&["stdio", "--db", db]);
    stdio.send(format!("content-length: {}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{CREATE_OPS}", CREATE_OPS.len()).as_bytes());
    assert_eq!(
        stdio.framed(),
        framed_answer(r#"{"jsonrpc":"2.0","id":1,"result":1}"#)
    );
    stdio.send(&frame(
        r#"{"jsonrpc":"2.0","method":"createGroup","params":["Quiet"]}"#,
    ));
    stdio.send(&frame(
        r#"[{"jsonrpc":"2.0","id":2,"method":"getAllGroups"},{"jsonrpc":"2.0","id":3,"method":"updateGroup","params":[1,"Ops2"]}]"#,
    ));
    let (rest, status) = stdio.finish();
    let body = r#"[{"jsonrpc":"2.0","id":2,"result":[{"id":"1","external_id":"","name":"Ops"},{"id":"2","external_id":"","name":"Quiet"}]},{"jsonrpc":"2.0","id":3,"result":true}]"#;
    assert_eq!(
        rest,
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    );
    assert_eq!(status, Some(0));
}

#[test]
fn stdio_refuses_an_oversized_body_and_reads_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("groupd.redb");
    let mut stdio = StdioProcess::start(&[
        "stdio",
        "--max-line-bytes",
        "100",
        "--db",
        db.to_str().expect("path"),
    ]);
    let mut bytes = oversized_create();
    bytes.extend(frame(r#"{"jsonrpc":"2.0","id":2,"method":"getAllGroups"}"#));
    stdio.send(&bytes);
    let (rest, status) = stdio.finish();
    let mut rest = std::io::Cursor::new(rest.into_bytes());
    assert_over_the_limit(spawned::read_framed(&mut rest), 100);
    let answer = spawned::read_framed(&mut rest);
    assert_eq!(
        answer,
        framed_answer(r#"{"jsonrpc":"2.0","id":2,"result":[]}"#)
    );
    assert_eq!(status, Some(0));
}

#[test]
fn language_client_arguments_are_accepted() {
    // As vscode-languageclient starts an executable: ARGS… --stdio [--clientProcessId=PID].
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("groupd.redb");
    let db = db.to_str().expect("path");
    let argv: [&[&str]; 5] = [
        &["--stdio", "--db", db],
        &["--db", db, "--stdio", "--clientProcessId=4242"],
        &["--stdio", "--clientProcessId", "4242", "--db", db],
        &["stdio", "--db", db, "--stdio", "--clientProcessId=1"],
        &["--clientProcessId=7", "stdio", "--db", db],
    ];
    for (i, args) in argv.iter().enumerate() {
        let mut stdio = StdioProcess::start(args);
        let request =
            format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"createGroup","params":["G{i}"]}}"#);
        stdio.send(&frame(&request));
        let expected = format!(r#"{{"jsonrpc":"2.0","id":{i},"result":{}}}"#, i + 1);
        let (rest, status) = stdio.finish();
        let (headers, body) = framed_answer(&expected);
        assert_eq!((rest, status), (headers + &body, Some(0)), "{args:?}");
    }
    // `--stdio` with another subcommand is a usage error, not a silent switch.
    let out = spawned::run(&["serve", "--stdio", "--db", db], &[]);
    assert_eq!(out.status.code(), Some(2));
}
