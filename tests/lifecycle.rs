//! SPEC §11: the language-server lifecycle, on stdio and TCP, in both framings. `initialize` is
//! optional; `shutdown` refuses everything after it but `exit`; `exit` ends the conversation once
//! the answers already due are written: a stdio process exits at once (0 after `shutdown`, 1
//! without), a TCP connection closes and the server keeps serving.

mod spawned;

use serde_json::{Value, json};
use spawned::talk::{FRAMINGS, Framing, Peer, Talk, error, notification, request, result};
use spawned::{Server, StdioProcess, frame};

/// The whole lifecycle as an editor drives it, up to and including `shutdown`.
fn editor_session(talk: &mut Talk) {
    let init = talk.call(request(
        1,
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}, "trace": "off"}),
    ));
    assert_eq!(
        init,
        result(
            1,
            json!({"capabilities": {}, "serverInfo": {"name": "groupd", "version": env!("CARGO_PKG_VERSION")}})
        )
    );
    // Notifications the server has no use for are accepted and ignored, never answered.
    talk.send(&notification("initialized", json!({})));
    talk.send(&notification("$/setTrace", json!({"value": "off"})));
    talk.send(&notification(
        "workspace/didChangeConfiguration",
        json!({"settings": {}}),
    ));
    assert_eq!(
        talk.call(request(2, "createGroup", json!(["Ops"]))),
        result(2, json!(1))
    );
    // Cancelling a call already answered changes nothing.
    talk.send(&notification("$/cancelRequest", json!({"id": 2})));
    assert_eq!(
        talk.call(request(3, "$/progress", json!({}))),
        error(3, -32601, "Method not found", None)
    );
    assert_eq!(
        talk.call(request(4, "getGroup", json!({"group_id": 1}))),
        result(4, json!({"id": "1", "external_id": "", "name": "Ops"}))
    );
    assert_eq!(
        talk.call(request(5, "shutdown", Value::Null)),
        result(5, Value::Null)
    );
    // After shutdown: every request but exit is refused with its id, notifications are not run.
    talk.send(&notification("createGroup", json!(["Not run"])));
    for (id, method) in [
        (6, "getAllGroups"),
        (7, "shutdown"),
        (8, "initialize"),
        (9, "nope"),
    ] {
        assert_eq!(
            talk.call(request(id, method, json!({}))),
            error(id, -32600, "Invalid Request", Some("shutting down")),
            "{method}"
        );
    }
}

#[test]
fn an_editor_session_over_stdio_exits_0_at_exit_with_stdin_still_open() {
    for framing in FRAMINGS {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("groupd.redb");
        let mut talk = Talk::stdio(&db, framing);
        editor_session(&mut talk);
        talk.send(&notification("exit", Value::Null));
        assert_eq!(talk.ended(), (String::new(), Some(0)), "{framing:?}");
        // The notification sent after shutdown did not run.
        let mut check = Talk::stdio(&db, Framing::Lines);
        assert_eq!(
            check.call(request(1, "getAllGroups", Value::Null)),
            result(1, json!([{"id": "1", "external_id": "", "name": "Ops"}]))
        );
    }
}

#[test]
fn an_editor_session_over_tcp_closes_at_exit_and_the_server_keeps_serving() {
    for framing in FRAMINGS {
        let server = Server::start(&[]);
        let mut talk = Talk::tcp(&server, framing);
        editor_session(&mut talk);
        talk.send(&notification("exit", Value::Null));
        assert_eq!(talk.ended(), (String::new(), None), "{framing:?}");
        let mut other = Talk::tcp(&server, Framing::Lines);
        assert_eq!(
            other.call(request(1, "getAllGroups", Value::Null)),
            result(1, json!([{"id": "1", "external_id": "", "name": "Ops"}]))
        );
    }
}

#[test]
fn exit_without_shutdown_ends_stdio_with_status_1() {
    for framing in FRAMINGS {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut talk = Talk::stdio(&dir.path().join("groupd.redb"), framing);
        assert_eq!(
            talk.call(request(1, "createGroup", json!(["Ops"]))),
            result(1, json!(1))
        );
        talk.send(&notification("exit", Value::Null));
        assert_eq!(talk.ended(), (String::new(), Some(1)), "{framing:?}");
    }
}

/// `exit` sent as a request is taken as the notification: no answer, and the session ends.
#[test]
fn exit_sent_as_a_request_is_not_answered_and_ends_the_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut talk = Talk::stdio(&dir.path().join("groupd.redb"), Framing::Lines);
    assert_eq!(
        talk.call(request(1, "shutdown", Value::Null)),
        result(1, Value::Null)
    );
    talk.send(&request(2, "exit", Value::Null).to_string());
    assert_eq!(talk.ended(), (String::new(), Some(0)));
}

#[test]
fn end_of_input_ends_stdio_with_status_0_with_or_without_shutdown() {
    for shutdown in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("groupd.redb");
        let mut process = StdioProcess::start(&["stdio", "--db", db.to_str().expect("path")]);
        let mut input = String::from(
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}\n",
        );
        if shutdown {
            input.push_str("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"shutdown\"}\n");
        }
        process.send(input.as_bytes());
        let (out, status) = process.finish();
        assert_eq!(out.lines().count(), 1 + usize::from(shutdown), "{out}");
        assert_eq!(status, Some(0), "shutdown: {shutdown}");
    }
}

/// The answers due before `exit` are written, and the writes before it are committed, even when
/// they all arrive at once.
#[test]
fn exit_writes_the_answers_already_due_first() {
    for framing in FRAMINGS {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("groupd.redb");
        let mut talk = Talk::stdio(&db, framing);
        let mut burst = Vec::new();
        for (i, name) in ["A", "B", "C"].iter().enumerate() {
            burst.push(request(i as u64 + 1, "createGroup", json!([name])).to_string());
        }
        burst.push(request(4, "shutdown", Value::Null).to_string());
        burst.push(notification("exit", Value::Null));
        burst.push(request(5, "createGroup", json!(["After exit"])).to_string());
        let bytes: Vec<u8> = burst
            .iter()
            .flat_map(|m| match framing {
                Framing::Lines => format!("{m}\n").into_bytes(),
                Framing::ContentLength => frame(m),
            })
            .collect();
        match &mut talk.peer {
            Peer::Stdio(process) => process.send(&bytes),
            Peer::Tcp(_) => unreachable!(),
        }
        for id in 1..=3 {
            assert_eq!(talk.answer(), result(id, json!(id)), "{framing:?}");
        }
        assert_eq!(talk.answer(), result(4, Value::Null));
        assert_eq!(talk.ended(), (String::new(), Some(0)), "{framing:?}");
        let mut check = Talk::stdio(&db, Framing::Lines);
        let all = check.call(request(1, "getAllGroups", Value::Null));
        assert_eq!(all["result"].as_array().map(Vec::len), Some(3), "{all}");
    }
}

#[test]
fn a_batch_stops_at_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("groupd.redb");
    let mut talk = Talk::stdio(&db, Framing::Lines);
    let batch = json!([
        request(1, "createGroup", json!(["A"])),
        {"jsonrpc": "2.0", "method": "exit"},
        request(2, "createGroup", json!(["B"])),
    ]);
    talk.send(&batch.to_string());
    assert_eq!(talk.answer(), json!([result(1, json!(1))]));
    assert_eq!(talk.ended(), (String::new(), Some(1)));
    let mut check = Talk::stdio(&db, Framing::Lines);
    assert_eq!(
        check.call(request(1, "getAllGroups", Value::Null)),
        result(1, json!([{"id": "1", "external_id": "", "name": "A"}]))
    );
}

/// `initialize` is optional: the Group API, `rpc.discover` and `authenticate` are answered
/// before and after it as on any session, and `shutdown` works without it.
#[test]
fn initialize_is_optional_and_changes_nothing_else() {
    let server = Server::start(&[]);
    let mut talk = Talk::tcp(&server, Framing::ContentLength);
    assert_eq!(
        talk.call(request(1, "authenticate", json!(["anything"]))),
        result(1, json!(true))
    );
    assert!(talk.call(request(2, "rpc.discover", Value::Null))["result"]["openrpc"].is_string());
    assert_eq!(
        talk.call(request(3, "initialize", json!({"capabilities": {}})))["result"]["capabilities"],
        json!({})
    );
    assert_eq!(
        talk.call(request(4, "createGroup", json!({"name": "Ops"}))),
        result(4, json!(1))
    );
    let mut plain = Talk::tcp(&server, Framing::Lines);
    assert_eq!(
        plain.call(request(1, "shutdown", Value::Null)),
        result(1, Value::Null)
    );
    plain.send(&notification("exit", Value::Null));
    assert_eq!(plain.ended(), (String::new(), None));
}

/// With a token, a TCP session is locked for the lifecycle messages too, but `exit` still
/// closes it.
#[test]
fn a_locked_tcp_session_may_only_authenticate_or_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = spawned::token_file(dir.path(), "s3cret");
    let server = Server::start(&["--token-file", token.to_str().expect("path")]);
    let mut talk = Talk::tcp(&server, Framing::ContentLength);
    for (id, method) in [(1, "initialize"), (2, "shutdown"), (3, "ping")] {
        assert_eq!(
            talk.call(request(id, method, json!({}))),
            error(id, -32001, "Unauthorized", None),
            "{method}"
        );
    }
    assert_eq!(
        talk.call(request(4, "authenticate", json!(["s3cret"]))),
        result(4, json!(true))
    );
    assert_eq!(
        talk.call(request(5, "initialize", json!({})))["result"]["serverInfo"]["name"],
        "groupd"
    );
    let mut locked = Talk::tcp(&server, Framing::Lines);
    locked.send(&notification("exit", Value::Null));
    assert_eq!(locked.ended(), (String::new(), None));
}

/// SPEC §8: a session whose first header is `Content-Type`, or whose header lines end in a bare
/// `\n`, speaks the LSP base protocol.
#[test]
fn content_type_first_and_bare_newline_headers_select_content_length_framing() {
    let server = Server::start(&[]);
    let body = request(1, "initialize", json!({})).to_string();
    for headers in [
        format!(
            "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
        format!("Content-Length: {}\n\n", body.len()),
        format!("content-type: x\ncontent-length: {}\n\n", body.len()),
    ] {
        let mut conn = server.connect();
        conn.send(format!("{headers}{body}").as_bytes());
        let (_, answer) = conn.framed();
        let answer: Value = serde_json::from_str(&answer).expect("JSON");
        assert_eq!(answer["result"]["capabilities"], json!({}), "{headers:?}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("groupd.redb");
    let mut process = StdioProcess::start(&["--stdio", "--db", db.to_str().expect("path")]);
    process.send(format!("Content-Type: x\nContent-Length: {}\n\n{body}", body.len()).as_bytes());
    let (_, answer) = process.framed();
    assert!(answer.contains("\"capabilities\":{}"), "{answer}");
}
