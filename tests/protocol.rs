//! SPEC §1 (framing), §2 (JSON-RPC 2.0), §3 (parameters) and §4 (the Group API), one request
//! line and one expected answer line at a time. Each test runs its own server on its own
//! database, so ids start at 1.

mod common;

use common::{
    Client, INVALID_REQUEST, PARSE_ERROR, Server, assert_line, check, check_fresh, line_matches,
};

/// `{"jsonrpc":"2.0","method":METHOD,"id":ID,"params":PARAMS}`.
fn req(method: &str, id: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"{method}","id":{id},"params":{params}}}"#)
}

fn ok(id: &str, result: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
}

fn invalid_params(id: &str, data: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32602,"message":"Invalid params","data":"{data}"}}}}"#
    )
}

/// Sends each request on `client` and compares its answer with the expected line.
fn exchange(client: &mut Client, rows: &[(String, String)]) {
    for (request, expected) in rows {
        let got = client.call(request);
        assert_line(request, expected, &got);
    }
    client.assert_nothing_pending();
}

/// The harness's `…` and `‹data›` wildcards stand for a string and an optional data member,
/// and for nothing else.
#[test]
fn expected_line_patterns_are_strict() {
    let invalid = |tail: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32600,"message":"Invalid Request"{tail}}}}}"#
        )
    };
    assert!(line_matches(INVALID_REQUEST, &invalid("")));
    assert!(line_matches(
        INVALID_REQUEST,
        &invalid(r#","data":"x \"y\"""#)
    ));
    assert!(!line_matches(INVALID_REQUEST, &invalid(r#","data":5"#)));
    assert!(!line_matches(
        INVALID_REQUEST,
        &invalid(r#","data":"x","more":1"#)
    ));
    assert!(!line_matches(
        INVALID_REQUEST,
        &invalid("").replace(r#""id":null"#, r#""id":1"#)
    ));
    let parse = |tail: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32700,"message":"Parse error"{tail}}}}}"#
        )
    };
    assert!(line_matches(PARSE_ERROR, &parse(r#","data":"EOF""#)));
    assert!(!line_matches(PARSE_ERROR, &parse("")));
    assert!(!line_matches(
        PARSE_ERROR,
        &format!("{}x", parse(r#","data":"EOF""#))
    ));
    assert!(!line_matches(
        PARSE_ERROR,
        &parse(r#","data":"unterminated"#)
    ));
}

// ---------------------------------------------------------------------------------------------
// §1 Framing

#[test]
fn crlf_endings_and_blank_lines() {
    let server = Server::start(&[]);
    let mut client = server.client();
    client.send_raw(
        b"\n\r\n   \n\t \r\n{\"jsonrpc\":\"2.0\",\"method\":\"getAllGroups\",\"id\":1}\r\n\r\n\n  {\"jsonrpc\":\"2.0\",\"method\":\"createGroup\",\"id\":2,\"params\":[\"a\"]}  \r\n \t \n",
    );
    assert_line(
        "(crlf)",
        r#"{"jsonrpc":"2.0","id":1,"result":[]}"#,
        &client.recv(),
    );
    assert_line(
        "(padded)",
        r#"{"jsonrpc":"2.0","id":2,"result":1}"#,
        &client.recv(),
    );
    client.assert_nothing_pending();
}

#[test]
fn non_ascii_is_written_as_utf8_not_escapes() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["Équipe ✓ 日本 😀","外部"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        // The same text sent as \u escapes (with a surrogate pair) comes back as UTF-8.
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["\u00c9quipe \u2713 \u65e5\u672c \ud83d\ude00!","\u00e9"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":3}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":3,"result":[{"id":"1","external_id":"外部","name":"Équipe ✓ 日本 😀"},{"id":"2","external_id":"é","name":"Équipe ✓ 日本 😀!"}]}"#,
            ),
        ),
    ]);
}

#[test]
fn control_characters_are_escaped_and_answers_hold_no_raw_newline() {
    let server = Server::start(&[]);
    let mut client = server.client();
    let name = "a\u{1}b\u{1f}c\td\ne\rf\"g\\h\u{7f}";
    let request = format!(
        r#"{{"jsonrpc":"2.0","method":"createGroup","id":1,"params":[{},"x\u0000y"]}}"#,
        serde_json::to_string(name).unwrap()
    );
    assert_line(&request, &ok("1", "1"), &client.call(&request));
    for request in [
        r#"{"jsonrpc":"2.0","method":"getGroup","id":2,"params":[1]}"#,
        r#"{"jsonrpc":"2.0","method":"getAllGroups","id":3}"#,
    ] {
        let line = client.call(request);
        assert!(
            line.bytes().all(|b| b >= 0x20),
            "raw control character in answer: {line:?}"
        );
        let answer: serde_json::Value = serde_json::from_str(&line).expect("answer is JSON");
        let group = serde_json::json!({"id": "1", "external_id": "x\u{0}y", "name": name});
        let expected = match answer["id"].as_u64() {
            Some(2) => serde_json::json!({"jsonrpc": "2.0", "id": 2, "result": group}),
            _ => serde_json::json!({"jsonrpc": "2.0", "id": 3, "result": [group]}),
        };
        assert_eq!(answer, expected, "answer line: {line}");
    }
    client.assert_nothing_pending();
}

#[test]
fn member_order_is_jsonrpc_id_then_result_or_error() {
    check_fresh(&[
        (
            r#"{"params":["Ops"],"id":"x","method":"createGroup","jsonrpc":"2.0"}"#,
            Some(r#"{"jsonrpc":"2.0","id":"x","result":1}"#),
        ),
        (
            r#"{"params":{"group_id":1},"id":7,"method":"getGroup","jsonrpc":"2.0"}"#,
            Some(r#"{"jsonrpc":"2.0","id":7,"result":{"id":"1","external_id":"","name":"Ops"}}"#),
        ),
        (
            r#"{"params":[],"id":8,"method":"getGroup","jsonrpc":"2.0"}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":8,"error":{"code":-32602,"message":"Invalid params","data":"Missing argument: group_id"}}"#,
            ),
        ),
        (
            r#"{"id":9,"method":"nope","jsonrpc":"2.0"}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32601,"message":"Method not found"}}"#,
            ),
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// §2 JSON-RPC 2.0: parse errors

#[test]
fn text_that_is_not_json_is_a_parse_error_and_the_connection_stays_open() {
    check_fresh(&[
        ("not json", Some(PARSE_ERROR)),
        (r#"{"jsonrpc":"2.0","method":"#, Some(PARSE_ERROR)),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1,}"#,
            Some(PARSE_ERROR),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}}"#,
            Some(PARSE_ERROR),
        ),
        (
            r#"{'jsonrpc':'2.0','method':'getAllGroups','id':1}"#,
            Some(PARSE_ERROR),
        ),
        (
            r#"[{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#,
            Some(PARSE_ERROR),
        ),
        (r#"[1,"#, Some(PARSE_ERROR)),
        ("nul", Some(PARSE_ERROR)),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["\x"]}"#,
            Some(PARSE_ERROR),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":[]}"#),
        ),
    ]);
}

#[test]
fn bad_utf8_is_a_parse_error_and_the_connection_stays_open() {
    let server = Server::start(&[]);
    let mut client = server.client();
    for bad in [
        &b"\xff"[..],
        b"\x80",
        b"{\"jsonrpc\":\"2.0\",\"method\":\"createGroup\",\"id\":1,\"params\":[\"\xc3\"]}",
        // Overlong encoding of '/', a UTF-16 surrogate encoded in UTF-8, and a code point past U+10FFFF.
        b"{\"jsonrpc\":\"2.0\",\"method\":\"createGroup\",\"id\":2,\"params\":[\"\xc0\xaf\"]}",
        b"{\"jsonrpc\":\"2.0\",\"method\":\"createGroup\",\"id\":3,\"params\":[\"\xed\xa0\x80\"]}",
        b"{\"jsonrpc\":\"2.0\",\"method\":\"createGroup\",\"id\":4,\"params\":[\"\xf4\x90\x80\x80\"]}",
    ] {
        let mut line = bad.to_vec();
        line.push(b'\n');
        client.send_raw(&line);
        let request = String::from_utf8_lossy(bad);
        assert_line(&request, PARSE_ERROR, &client.recv());
    }
    // None of them created anything, and the connection still answers.
    let request = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":5}"#;
    assert_line(request, &ok("5", "[]"), &client.call(request));
}

/// Nesting 128 deep: `{` plus `depth - 1` arrays in an unknown member, which is ignored.
fn nested_request(depth: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","method":"getAllGroups","id":1,"x":{}{}}}"#,
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

#[test]
fn nesting_of_128_is_accepted_and_129_is_a_parse_error() {
    let deep_params = |depth: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"createGroup","id":2,"params":{}{}}}"#,
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    };
    let brackets_in_a_string = format!(
        r#"{{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["{}"]}}"#,
        "[{".repeat(50)
    );
    let batch = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let rows = [
        (nested_request(128), ok("1", "[]")),
        (nested_request(129), PARSE_ERROR.to_string()),
        (
            deep_params(128),
            invalid_params("2", "name must be a string"),
        ),
        (deep_params(129), PARSE_ERROR.to_string()),
        // A batch whose one entry is an array 127 deep: an invalid entry, not a parse error.
        (batch(128), format!("[{INVALID_REQUEST}]")),
        (batch(129), PARSE_ERROR.to_string()),
        (batch(1000), PARSE_ERROR.to_string()),
        // Brackets inside strings are text, not nesting.
        (brackets_in_a_string, ok("3", "1")),
    ];
    let server = Server::start(&[]);
    exchange(&mut server.client(), &rows);
}

// ---------------------------------------------------------------------------------------------
// §2 JSON-RPC 2.0: invalid requests

#[test]
fn json_that_is_not_a_request_is_an_invalid_request_with_id_null() {
    let invalid = Some(INVALID_REQUEST);
    check_fresh(&[
        // Not an object or array.
        ("1", invalid),
        ("-2.5", invalid),
        (r#""createGroup""#, invalid),
        ("null", invalid),
        ("true", invalid),
        ("false", invalid),
        // jsonrpc missing or not exactly "2.0".
        ("{}", invalid),
        (r#"{"method":"getAllGroups","id":1}"#, invalid),
        (
            r#"{"jsonrpc":"2.1","method":"getAllGroups","id":1}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"1.0","method":"getAllGroups","id":1}"#,
            invalid,
        ),
        (r#"{"jsonrpc":"2","method":"getAllGroups","id":1}"#, invalid),
        (
            r#"{"jsonrpc":"2.0 ","method":"getAllGroups","id":1}"#,
            invalid,
        ),
        (r#"{"jsonrpc":2.0,"method":"getAllGroups","id":1}"#, invalid),
        (r#"{"jsonrpc":2,"method":"getAllGroups","id":1}"#, invalid),
        (
            r#"{"jsonrpc":null,"method":"getAllGroups","id":1}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":["2.0"],"method":"getAllGroups","id":1}"#,
            invalid,
        ),
        // method missing or not a string.
        (r#"{"jsonrpc":"2.0","id":1}"#, invalid),
        (r#"{"jsonrpc":"2.0","method":1,"id":1}"#, invalid),
        (r#"{"jsonrpc":"2.0","method":null,"id":1}"#, invalid),
        (r#"{"jsonrpc":"2.0","method":true,"id":1}"#, invalid),
        (
            r#"{"jsonrpc":"2.0","method":["getAllGroups"],"id":1}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":{"name":"getAllGroups"},"id":1}"#,
            invalid,
        ),
        // params a scalar.
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1,"params":1}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":1,"params":"1"}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1,"params":true}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1,"params":false}"#,
            invalid,
        ),
        // id an object, array or boolean.
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":{}}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":{"a":1}}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":[]}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":[1]}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":true}"#,
            invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":false}"#,
            invalid,
        ),
        // Without an id it is still answered: it is not a valid notification either.
        (r#"{"jsonrpc":"2.0","method":1}"#, invalid),
        (r#"{"method":"createGroup","params":["x"]}"#, invalid),
        // None of the above ran.
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":[]}"#),
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// §2 JSON-RPC 2.0: methods, ids, notifications, params

#[test]
fn unknown_methods_and_case_sensitive_names() {
    let not_found = |id: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"Method not found"}}}}"#
        )
    };
    let rows: Vec<(String, String)> = [
        ("deleteGroup", "1"),
        ("creategroup", "2"),
        ("CreateGroup", "3"),
        ("createGroup ", "4"),
        ("getallgroups", "5"),
        ("GETALLGROUPS", "6"),
        ("getAllGroups\u{0}", "7"),
        ("", "\"x\""),
        ("rpc.discovery", "null"),
    ]
    .iter()
    .map(|(method, id)| {
        let method = serde_json::to_string(method).unwrap();
        (
            format!(r#"{{"jsonrpc":"2.0","method":{method},"id":{id},"params":["a"]}}"#),
            not_found(id),
        )
    })
    .chain([(
        r#"{"jsonrpc":"2.0","method":"getAllGroups","id":8}"#.to_string(),
        ok("8", "[]"),
    )])
    .collect();
    let server = Server::start(&[]);
    exchange(&mut server.client(), &rows);
}

#[test]
fn ids_are_echoed_exactly_as_written() {
    let server = Server::start(&[]);
    let mut client = server.client();
    for id in [
        "1416806551",
        "0",
        "-7",
        "123456789012345678901234567890",
        "-123456789012345678901234567890",
        "1.5e3",
        "1.50",
        "2E-7",
        "1E400",
        "-1e-400",
        "-0",
        r#""abc""#,
        r#""""#,
        r#""1""#,
        r#""a \"quoted\" \\ id""#,
        r#""é""#,
        "null",
    ] {
        let rows = [
            (
                format!(r#"{{"jsonrpc":"2.0","method":"getAllGroups","id":{id}}}"#),
                ok(id, "[]"),
            ),
            (
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"getAllGroups","params":null}}"#),
                ok(id, "[]"),
            ),
            (
                format!(r#"{{"jsonrpc":"2.0","method":"getGroup","id":{id},"params":[]}}"#),
                invalid_params(id, "Missing argument: group_id"),
            ),
            (
                format!(r#"{{"jsonrpc":"2.0","method":"nope","id":{id}}}"#),
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"Method not found"}}}}"#
                ),
            ),
        ];
        exchange(&mut client, &rows);
    }
    // Whitespace around the id is not part of it.
    check(
        &server,
        &[(
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id"  :   42   }"#,
            Some(r#"{"jsonrpc":"2.0","id":42,"result":[]}"#),
        )],
    );
}

/// SPEC §1: "Non-ASCII text is written as UTF-8, not `\u` escapes" holds for every response,
/// so a string id sent with escapes comes back as the same string in UTF-8 (the same JSON value,
/// as JSON-RPC requires). Only numbers are promised to be echoed exactly as written (§2).
#[test]
fn string_ids_with_non_ascii_escapes_come_back_as_utf8() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"caf\u00e9 \u2713"}"#,
            Some(r#"{"jsonrpc":"2.0","id":"café ✓","result":[]}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"nope","id":"\ud83d\ude00"}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":"😀","error":{"code":-32601,"message":"Method not found"}}"#,
            ),
        ),
    ]);
}

#[test]
fn notifications_run_but_are_never_answered() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","params":["n1"]}"#,
            None,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","params":{"name":"n2","external_id":"e"}}"#,
            None,
        ),
        // Failures and errors of notifications are not answered either.
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","params":["n1"]}"#,
            None,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","params":[""]}"#,
            None,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"noSuchMethod","params":[]}"#,
            None,
        ),
        (r#"{"jsonrpc":"2.0","method":"getGroup"}"#, None),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","params":[42]}"#,
            None,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","params":[999]}"#,
            None,
        ),
        (r#"{"jsonrpc":"2.0","method":"getAllGroups"}"#, None),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":1,"result":[{"id":"1","external_id":"","name":"n1"},{"id":"2","external_id":"e","name":"n2"}]}"#,
            ),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","params":["1"]}"#,
            None,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":2,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":false}"#),
        ),
    ]);
}

#[test]
fn id_null_is_a_request_not_a_notification() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":null,"params":["a"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":null,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"nope","id":null}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"Method not found"}}"#,
            ),
        ),
    ]);
}

#[test]
fn unknown_top_level_members_are_ignored() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["a"],"auth":"secret","extra":{"x":[1,{"y":null}]},"result":5,"error":{}}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        (
            r#"{"Jsonrpc":"1.0","jsonrpc":"2.0","method":"getAllGroups","ID":true,"id":2,"Method":7}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":[{"id":"1","external_id":"","name":"a"}]}"#),
        ),
    ]);
}

#[test]
fn params_null_is_the_same_as_absent() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1,"params":null}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":[]}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":2}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":[]}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":null}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Invalid params","data":"Missing argument: name"}}"#,
            ),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":4}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"Invalid params","data":"Missing argument: name"}}"#,
            ),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":5,"params":null}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"Invalid params","data":"Missing argument: group_id"}}"#,
            ),
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// §3 Parameters

#[test]
fn positional_and_named_parameters() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A","a"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":{"name":"B","external_id":"b"}}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":{"external_id":"c","name":"C"}}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":3}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":4,"params":{"name":"D"}}"#,
            Some(r#"{"jsonrpc":"2.0","id":4,"result":4}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":5,"params":[1,"A2"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":5,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":6,"params":{"external_id":"b2","group_id":2}}"#,
            Some(r#"{"jsonrpc":"2.0","id":6,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":7,"params":{"group_id":"2"}}"#,
            Some(r#"{"jsonrpc":"2.0","id":7,"result":{"id":"2","external_id":"b2","name":"B"}}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":8,"params":{"group_id":3}}"#,
            Some(r#"{"jsonrpc":"2.0","id":8,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":9,"params":[]}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":9,"result":[{"id":"1","external_id":"a","name":"A2"},{"id":"2","external_id":"b2","name":"B"},{"id":"4","external_id":"","name":"D"}]}"#,
            ),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":10,"params":{}}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":10,"result":[{"id":"1","external_id":"a","name":"A2"},{"id":"2","external_id":"b2","name":"B"},{"id":"4","external_id":"","name":"D"}]}"#,
            ),
        ),
    ]);
}

#[test]
fn too_many_unknown_and_missing_arguments() {
    let rows: Vec<(String, String)> = [
        // Positional: more values than parameters.
        ("createGroup", r#"["a","b","c"]"#, "Too many arguments"),
        ("createGroup", r#"["a","b",null]"#, "Too many arguments"),
        ("updateGroup", r#"[1,"a","b","c"]"#, "Too many arguments"),
        ("removeGroup", "[1,2]", "Too many arguments"),
        ("getGroup", r#"["1","1"]"#, "Too many arguments"),
        ("getAllGroups", "[1]", "Too many arguments"),
        ("getAllGroups", "[null]", "Too many arguments"),
        // Named: a key that is not a parameter.
        (
            "createGroup",
            r#"{"name":"a","id":1}"#,
            "Unknown argument: id",
        ),
        (
            "createGroup",
            r#"{"name":"a","Name":"b"}"#,
            "Unknown argument: Name",
        ),
        (
            "createGroup",
            r#"{"name":"a","externalId":"b"}"#,
            "Unknown argument: externalId",
        ),
        (
            "updateGroup",
            r#"{"group_id":1,"name":"a","description":"d"}"#,
            "Unknown argument: description",
        ),
        ("removeGroup", r#"{"id":1}"#, "Unknown argument: id"),
        ("getGroup", r#"{"groupId":1}"#, "Unknown argument: groupId"),
        ("getAllGroups", r#"{"limit":10}"#, "Unknown argument: limit"),
        // The key is reported as UTF-8, with control characters escaped.
        ("getAllGroups", r#"{"n\u00e9":1}"#, "Unknown argument: né"),
        ("getAllGroups", r#"{"a\nb":1}"#, r"Unknown argument: a\nb"),
        // A missing required parameter.
        ("createGroup", "[]", "Missing argument: name"),
        ("createGroup", "{}", "Missing argument: name"),
        (
            "createGroup",
            r#"{"external_id":"x"}"#,
            "Missing argument: name",
        ),
        ("updateGroup", "[]", "Missing argument: group_id"),
        (
            "updateGroup",
            r#"{"name":"x","external_id":"y"}"#,
            "Missing argument: group_id",
        ),
        ("removeGroup", "[]", "Missing argument: group_id"),
        ("removeGroup", "{}", "Missing argument: group_id"),
        ("getGroup", "[]", "Missing argument: group_id"),
        ("getGroup", "{}", "Missing argument: group_id"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (method, params, data))| {
        let id = (i + 1).to_string();
        (req(method, &id, params), invalid_params(&id, data))
    })
    .chain([(
        r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"end"}"#.to_string(),
        ok(r#""end""#, "[]"),
    )])
    .collect();
    let server = Server::start(&[]);
    exchange(&mut server.client(), &rows);
}

#[test]
fn group_id_is_an_integer_or_a_string_of_digits() {
    let server = Server::start(&[]);
    check(
        &server,
        &[(
            r#"{"jsonrpc":"2.0","method":"createGroup","id":0,"params":["g","e"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":0,"result":1}"#),
        )],
    );
    let group = r#"{"id":"1","external_id":"e","name":"g"}"#;
    let mut rows = Vec::new();
    for form in ["1", r#""1""#] {
        rows.push((req("getGroup", "1", &format!("[{form}]")), ok("1", group)));
        rows.push((
            req("getGroup", "2", &format!(r#"{{"group_id":{form}}}"#)),
            ok("2", group),
        ));
        rows.push((
            req("updateGroup", "3", &format!("[{form}]")),
            ok("3", "true"),
        ));
    }
    let not_an_integer = [
        r#""abc""#, "1.5", "true", "false", "[1]", "null", "{}", r#""""#, r#""1.5""#, r#"" 1""#,
        r#""1 ""#, r#""+1""#, r#""-1""#, r#""0x1""#,
    ];
    for (method, extra) in [
        ("getGroup", ""),
        ("removeGroup", ""),
        ("updateGroup", r#","x""#),
    ] {
        for bad in not_an_integer {
            rows.push((
                req(method, "4", &format!("[{bad}{extra}]")),
                invalid_params("4", "group_id must be an integer"),
            ));
        }
        rows.push((
            req(method, "5", r#"{"group_id":"abc"}"#),
            invalid_params("5", "group_id must be an integer"),
        ));
        // Integers that name no group are not errors: the procedure fails with false.
        for missing in [
            "0",
            "-1",
            "999",
            r#""0""#,
            r#""999""#,
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
        ] {
            rows.push((
                req(method, "6", &format!("[{missing}{extra}]")),
                ok("6", "false"),
            ));
        }
    }
    rows.push((req("getGroup", "7", "[1]"), ok("7", group)));
    exchange(&mut server.client(), &rows);
}

#[test]
fn name_and_external_id_must_be_strings() {
    let server = Server::start(&[]);
    let mut rows = Vec::new();
    for bad in [
        "42",
        "-1.5",
        "true",
        "false",
        "[]",
        r#"["a"]"#,
        "{}",
        r#"{"a":"b"}"#,
    ] {
        rows.extend([
            (
                req("createGroup", "1", &format!("[{bad}]")),
                invalid_params("1", "name must be a string"),
            ),
            (
                req("createGroup", "2", &format!(r#"{{"name":{bad}}}"#)),
                invalid_params("2", "name must be a string"),
            ),
            (
                req("createGroup", "3", &format!(r#"["ok",{bad}]"#)),
                invalid_params("3", "external_id must be a string"),
            ),
            (
                req(
                    "createGroup",
                    "4",
                    &format!(r#"{{"name":"ok","external_id":{bad}}}"#),
                ),
                invalid_params("4", "external_id must be a string"),
            ),
            (
                req("updateGroup", "5", &format!("[1,{bad}]")),
                invalid_params("5", "name must be a string"),
            ),
            (
                req(
                    "updateGroup",
                    "6",
                    &format!(r#"{{"group_id":1,"external_id":{bad}}}"#),
                ),
                invalid_params("6", "external_id must be a string"),
            ),
        ]);
    }
    // A null name for createGroup is an error too (the SPEC leaves its wording open).
    for params in ["[null]", r#"[null,"x"]"#, r#"{"name":null}"#] {
        rows.push((
            req("createGroup", "7", params),
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"Invalid params","data":…}}"#
                .to_string(),
        ));
    }
    // Nothing above was created.
    rows.push((req("getAllGroups", "8", "[]"), ok("8", "[]")));
    exchange(&mut server.client(), &rows);
}

#[test]
fn update_with_null_leaves_a_field_unchanged() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A","e"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":2,"params":[1,null,"x"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":3,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":{"id":"1","external_id":"x","name":"A"}}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":4,"params":{"group_id":1,"name":"B","external_id":null}}"#,
            Some(r#"{"jsonrpc":"2.0","id":4,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":5,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":5,"result":{"id":"1","external_id":"x","name":"B"}}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":6,"params":[1,null,null]}"#,
            Some(r#"{"jsonrpc":"2.0","id":6,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":7,"params":[1,null]}"#,
            Some(r#"{"jsonrpc":"2.0","id":7,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":8,"params":[1,"B",""]}"#,
            Some(r#"{"jsonrpc":"2.0","id":8,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":9,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":9,"result":{"id":"1","external_id":"","name":"B"}}"#),
        ),
    ]);
}

#[test]
fn create_with_null_external_id_uses_the_default() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A",null]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":{"external_id":null,"name":"B"}}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["C"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":3}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":4}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":4,"result":[{"id":"1","external_id":"","name":"A"},{"id":"2","external_id":"","name":"B"},{"id":"3","external_id":"","name":"C"}]}"#,
            ),
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// §4 The Group API

/// createGroup, then the answer: ids count up from 1 for the names that are accepted.
fn create_rows(names: &[(&str, &str)]) -> Vec<(String, String)> {
    names
        .iter()
        .enumerate()
        .map(|(i, (name, result))| {
            let id = (i + 1).to_string();
            let name = serde_json::to_string(name).unwrap();
            (
                req("createGroup", &id, &format!("[{name}]")),
                ok(&id, result),
            )
        })
        .collect()
}

#[test]
fn create_rejects_blank_names() {
    let rows = create_rows(&[
        ("", "false"),
        (" ", "false"),
        ("     ", "false"),
        ("\t", "false"),
        ("\n", "false"),
        ("\r\n", "false"),
        (" \t \n ", "false"),
        ("\u{3000}", "false"),
    ]);
    let server = Server::start(&[]);
    let mut client = server.client();
    exchange(&mut client, &rows);
    exchange(
        &mut client,
        &[(req("getAllGroups", "9", "[]"), ok("9", "[]"))],
    );
}

#[test]
fn name_length_counts_unicode_scalar_values() {
    let names = [
        ("x".repeat(100), "1"),
        ("y".repeat(101), "false"),
        ("é".repeat(100), "2"),
        ("è".repeat(101), "false"),
        ("😀".repeat(100), "3"),
        ("😁".repeat(101), "false"),
        // "e" + combining acute accent: two scalar values each, though one character on screen.
        ("e\u{301}".repeat(50), "4"),
        (format!("{}a", "o\u{301}".repeat(50)), "false"),
        // Leading and trailing spaces count, and are kept.
        (format!(" {} ", "z".repeat(98)), "5"),
        (format!(" {} ", "w".repeat(99)), "false"),
    ];
    let mut rows = Vec::new();
    for (name, result) in &names {
        let quoted = serde_json::to_string(name).unwrap();
        rows.push((
            req("createGroup", "1", &format!("[{quoted}]")),
            ok("1", result),
        ));
    }
    rows.push((
        req("getGroup", "2", "[2]"),
        ok(
            "2",
            &format!(
                r#"{{"id":"2","external_id":"","name":"{}"}}"#,
                "é".repeat(100)
            ),
        ),
    ));
    rows.push((
        req("getGroup", "3", "[5]"),
        ok(
            "3",
            &format!(
                r#"{{"id":"5","external_id":"","name":" {} "}}"#,
                "z".repeat(98)
            ),
        ),
    ));
    // updateGroup applies the same rule.
    for (name, result) in [
        ("é".repeat(101), "false"),
        ("".to_string(), "false"),
        ("  ".to_string(), "false"),
        ("ü".repeat(100), "true"),
    ] {
        rows.push((
            req("updateGroup", "4", &format!(r#"[1,"{name}"]"#)),
            ok("4", result),
        ));
    }
    rows.push((
        req("getGroup", "5", "[1]"),
        ok(
            "5",
            &format!(
                r#"{{"id":"1","external_id":"","name":"{}"}}"#,
                "ü".repeat(100)
            ),
        ),
    ));
    let server = Server::start(&[]);
    exchange(&mut server.client(), &rows);
}

#[test]
fn external_id_is_at_most_255_characters_and_not_unique() {
    let at_limit = "é".repeat(255);
    let over = "e".repeat(256);
    let rows = vec![
        (
            req("createGroup", "1", &format!(r#"["a","{at_limit}"]"#)),
            ok("1", "1"),
        ),
        (
            req("createGroup", "2", &format!(r#"["b","{over}"]"#)),
            ok("2", "false"),
        ),
        (
            req(
                "createGroup",
                "3",
                &format!(r#"["c","{}"]"#, "ö".repeat(256)),
            ),
            ok("3", "false"),
        ),
        (
            req(
                "createGroup",
                "4",
                &format!(r#"["d","{}"]"#, "x".repeat(255)),
            ),
            ok("4", "2"),
        ),
        (
            req(
                "createGroup",
                "5",
                &format!(r#"["e","{}"]"#, "x".repeat(255)),
            ),
            ok("5", "3"),
        ),
        (
            req("updateGroup", "6", &format!(r#"[2,null,"{over}"]"#)),
            ok("6", "false"),
        ),
        (
            req("updateGroup", "7", &format!(r#"[2,"d2","{over}"]"#)),
            ok("7", "false"),
        ),
        (
            req("updateGroup", "8", &format!(r#"[2,null,"{at_limit}"]"#)),
            ok("8", "true"),
        ),
        (
            req("getAllGroups", "9", "[]"),
            ok(
                "9",
                &format!(
                    r#"[{{"id":"1","external_id":"{at_limit}","name":"a"}},{{"id":"2","external_id":"{at_limit}","name":"d"}},{{"id":"3","external_id":"{}","name":"e"}}]"#,
                    "x".repeat(255)
                ),
            ),
        ),
    ];
    let server = Server::start(&[]);
    exchange(&mut server.client(), &rows);
}

#[test]
fn names_are_unique_compared_exactly() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["Ops"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["ops"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["Ops "]}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":3}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":4,"params":[" Ops"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":4,"result":4}"#),
        ),
        // "é" precomposed and "e" + combining accent are different names (no normalisation).
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":5,"params":["caf\u00e9"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":5,"result":5}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":6,"params":["cafe\u0301"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":6,"result":6}"#),
        ),
        // The same names again are taken, whatever the external id.
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":7,"params":["Ops","other"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":7,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":8,"params":["Ops "]}"#,
            Some(r#"{"jsonrpc":"2.0","id":8,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":9,"params":["café"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":9,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":10}"#,
            Some(concat!(
                r#"{"jsonrpc":"2.0","id":10,"result":[{"id":"4","external_id":"","name":" Ops"},{"id":"1","external_id":"","name":"Ops"},{"id":"3","external_id":"","name":"Ops "},"#,
                // "e" (0x65) + U+0301 sorts before "é" (0xC3 0xA9).
                r#"{"id":"6","external_id":"","name":"cafe"#,
                "\u{301}",
                r#""},{"id":"5","external_id":"","name":"café"},{"id":"2","external_id":"","name":"ops"}]}"#,
            )),
        ),
    ]);
}

#[test]
fn update_rules() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A","a"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["B","b"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
        ),
        // Only group_id given, and a rename to its own name: true, nothing changes.
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":3,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":4,"params":{"group_id":"1"}}"#,
            Some(r#"{"jsonrpc":"2.0","id":4,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":5,"params":[1,"A"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":5,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":6,"params":[1,"A","a"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":6,"result":true}"#),
        ),
        // A name used by another group, or invalid: false, and nothing changes.
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":7,"params":[1,"B","changed"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":7,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":8,"params":[1,"","changed"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":8,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":9,"params":[1,"   ","changed"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":9,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":10}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":10,"result":[{"id":"1","external_id":"a","name":"A"},{"id":"2","external_id":"b","name":"B"}]}"#,
            ),
        ),
        // A case variant of another group's name is a different name.
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":11,"params":[1,"b"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":11,"result":true}"#),
        ),
        // The old name is free again.
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":12,"params":[2,"A"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":12,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":13,"params":["B"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":13,"result":3}"#),
        ),
        // No such group.
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":14,"params":[999,"Z"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":14,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":15,"params":[4]}"#,
            Some(r#"{"jsonrpc":"2.0","id":15,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":16}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":16,"result":[{"id":"2","external_id":"b","name":"A"},{"id":"3","external_id":"","name":"B"},{"id":"1","external_id":"a","name":"b"}]}"#,
            ),
        ),
    ]);
}

#[test]
fn remove_and_get_rules() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":1,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":2,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["A"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":4,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":4,"result":{"id":"1","external_id":"","name":"A"}}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":5,"params":["1"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":5,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":6,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":6,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getGroup","id":7,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":7,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":8,"params":[1,"A"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":8,"result":false}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":9}"#,
            Some(r#"{"jsonrpc":"2.0","id":9,"result":[]}"#),
        ),
        // The name of a removed group is free again (with a new id).
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":10,"params":["A"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":10,"result":2}"#),
        ),
    ]);
}

#[test]
fn get_all_groups_is_sorted_by_utf8_bytes() {
    // Byte order of UTF-8: "B" < "Z" < "a" < "a " < "ab" < "ä" < "é" < "～" (U+FF5E) < "😀".
    // UTF-16 order would put "😀" (a surrogate pair) before "～"; case-folding would mix cases.
    let names = ["é", "ab", "😀", "a ", "～", "Z", "a", "ä", "B"];
    let server = Server::start(&[]);
    let mut client = server.client();
    let mut rows = vec![(req("getAllGroups", "0", "[]"), ok("0", "[]"))];
    for (i, name) in names.iter().enumerate() {
        let id = (i + 1).to_string();
        rows.push((
            req("createGroup", &id, &format!(r#"["{name}"]"#)),
            ok(&id, &id),
        ));
    }
    let sorted = [
        ("B", 9),
        ("Z", 6),
        ("a", 7),
        ("a ", 4),
        ("ab", 2),
        ("ä", 8),
        ("é", 1),
        ("～", 5),
        ("😀", 3),
    ];
    let listed: Vec<String> = sorted
        .iter()
        .map(|(name, id)| format!(r#"{{"id":"{id}","external_id":"","name":"{name}"}}"#))
        .collect();
    rows.push((
        req("getAllGroups", "10", "[]"),
        ok("10", &format!("[{}]", listed.join(","))),
    ));
    exchange(&mut client, &rows);
}

#[test]
fn get_all_groups_is_empty_again_after_removing_everything() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":[]}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["A"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":3,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":4}"#,
            Some(r#"{"jsonrpc":"2.0","id":4,"result":[]}"#),
        ),
    ]);
}

#[test]
fn ids_are_never_reused_after_remove() {
    check_fresh(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["B"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":2}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["C"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":3}"#),
        ),
        // Removing the last id must not hand it out again (Kanboard's max(id)+1 would).
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":4,"params":[3]}"#,
            Some(r#"{"jsonrpc":"2.0","id":4,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":5,"params":["C"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":5,"result":4}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":6,"params":[1]}"#,
            Some(r#"{"jsonrpc":"2.0","id":6,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":7,"params":[4]}"#,
            Some(r#"{"jsonrpc":"2.0","id":7,"result":true}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":8,"params":["D"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":8,"result":5}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":9}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":9,"result":[{"id":"2","external_id":"","name":"B"},{"id":"5","external_id":"","name":"D"}]}"#,
            ),
        ),
    ]);
}
