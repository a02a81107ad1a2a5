//! SPEC §2 "Batch" and the batch limit of §6: one line in, one array line out (or one error
//! object, or nothing), entries in order, each seeing the ones before it, not atomic.

mod common;

use common::{INVALID_REQUEST, Server, assert_line, check, check_fresh, check_stdio};

#[test]
fn mixed_batch_answers_non_notifications_in_entry_order() {
    let batch = concat!(
        "[",
        r#"{"jsonrpc":"2.0","method":"createGroup","id":"a","params":["A"]},"#,
        r#"{"jsonrpc":"2.0","method":"createGroup","params":["N"]},"#,
        r#"{"jsonrpc":"2.0","method":"getGroup","id":2,"params":["abc"]},"#,
        r#"{"jsonrpc":"2.0","method":"noSuchMethod","id":3},"#,
        r#"{"jsonrpc":"1.0","method":"getAllGroups","id":4},"#,
        r#"5,"#,
        r#"{"jsonrpc":"2.0","method":"getAllGroups","id":null},"#,
        r#"{"jsonrpc":"2.0","method":"noSuchMethod"}"#,
        "]"
    );
    let answer = concat!(
        "[",
        r#"{"jsonrpc":"2.0","id":"a","result":1},"#,
        r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"Invalid params","data":"group_id must be an integer"}},"#,
        r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found"}},"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"‹data›}},"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"‹data›}},"#,
        r#"{"jsonrpc":"2.0","id":null,"result":[{"id":"1","external_id":"","name":"A"},{"id":"2","external_id":"","name":"N"}]}"#,
        "]"
    );
    check_fresh(&[(batch, Some(answer))]);
    check_stdio(&[(batch, Some(answer))]);
}

#[test]
fn empty_batch_is_one_invalid_request_object() {
    check_fresh(&[
        ("[]", Some(INVALID_REQUEST)),
        ("  [ ]  ", Some(INVALID_REQUEST)),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":[]}"#),
        ),
    ]);
}

#[test]
fn invalid_entries_get_their_own_invalid_request() {
    let two = format!("[{INVALID_REQUEST},{INVALID_REQUEST}]");
    let three = format!("[{INVALID_REQUEST},{INVALID_REQUEST},{INVALID_REQUEST}]");
    check_fresh(&[
        ("[1,2]", Some(&two)),
        (r#"["x",null,true]"#, Some(&three)),
        ("[[],{}]", Some(&two)),
        (
            concat!(
                "[",
                r#"{"jsonrpc":"2.1","method":"createGroup","id":1,"params":["x"]},"#,
                r#"{"method":"createGroup","id":2,"params":["y"]},"#,
                r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":"z"}"#,
                "]"
            ),
            Some(&three),
        ),
        // Not one of those entries ran.
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":4}"#,
            Some(r#"{"jsonrpc":"2.0","id":4,"result":[]}"#),
        ),
    ]);
}

#[test]
fn batch_that_is_not_json_is_one_parse_error() {
    check_fresh(&[
        (
            r#"[{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["x"]},"#,
            Some(common::PARSE_ERROR),
        ),
        (
            r#"[{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["x"]} {}]"#,
            Some(common::PARSE_ERROR),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":2}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":[]}"#),
        ),
    ]);
}

#[test]
fn batch_of_only_notifications_gets_no_line_but_runs() {
    check_fresh(&[
        (
            concat!(
                "[",
                r#"{"jsonrpc":"2.0","method":"createGroup","params":["A"]},"#,
                r#"{"jsonrpc":"2.0","method":"createGroup","params":["B","b"]},"#,
                r#"{"jsonrpc":"2.0","method":"noSuchMethod"},"#,
                r#"{"jsonrpc":"2.0","method":"getGroup","params":[true]},"#,
                r#"{"jsonrpc":"2.0","method":"removeGroup","params":[1]}"#,
                "]"
            ),
            None,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":1}"#,
            Some(r#"{"jsonrpc":"2.0","id":1,"result":[{"id":"2","external_id":"b","name":"B"}]}"#),
        ),
    ]);
}

#[test]
fn entries_see_the_effects_of_earlier_entries() {
    check_fresh(&[(
        concat!(
            "[",
            r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A","a"]},"#,
            r#"{"jsonrpc":"2.0","method":"getGroup","id":2,"params":[1]},"#,
            r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":["A"]},"#,
            r#"{"jsonrpc":"2.0","method":"updateGroup","id":4,"params":[1,"B"]},"#,
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":5},"#,
            r#"{"jsonrpc":"2.0","method":"createGroup","id":6,"params":["A"]},"#,
            r#"{"jsonrpc":"2.0","method":"removeGroup","id":7,"params":[1]},"#,
            r#"{"jsonrpc":"2.0","method":"getGroup","id":8,"params":[1]},"#,
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":9}"#,
            "]"
        ),
        Some(concat!(
            "[",
            r#"{"jsonrpc":"2.0","id":1,"result":1},"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{"id":"1","external_id":"a","name":"A"}},"#,
            r#"{"jsonrpc":"2.0","id":3,"result":false},"#,
            r#"{"jsonrpc":"2.0","id":4,"result":true},"#,
            r#"{"jsonrpc":"2.0","id":5,"result":[{"id":"1","external_id":"a","name":"B"}]},"#,
            r#"{"jsonrpc":"2.0","id":6,"result":2},"#,
            r#"{"jsonrpc":"2.0","id":7,"result":true},"#,
            r#"{"jsonrpc":"2.0","id":8,"result":false},"#,
            r#"{"jsonrpc":"2.0","id":9,"result":[{"id":"2","external_id":"","name":"A"}]}"#,
            "]"
        )),
    )]);
}

#[test]
fn a_failing_entry_does_not_undo_the_others() {
    check_fresh(&[
        (
            concat!(
                "[",
                r#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["A"]},"#,
                r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":[""]},"#,
                r#"{"jsonrpc":"2.0","method":"createGroup","id":3,"params":[42]},"#,
                r#"{"jsonrpc":"2.0","method":"updateGroup","id":4,"params":[999,"Z"]},"#,
                r#"{"jsonrpc":"2.0","method":"noSuchMethod","id":5},"#,
                r#"{"jsonrpc":"2.0","method":"createGroup","id":6,"params":["B"]},"#,
                r#"{"jsonrpc":"2.0","method":"createGroup","id":7,"params":["A"]}"#,
                "]"
            ),
            Some(concat!(
                "[",
                r#"{"jsonrpc":"2.0","id":1,"result":1},"#,
                r#"{"jsonrpc":"2.0","id":2,"result":false},"#,
                r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Invalid params","data":"name must be a string"}},"#,
                r#"{"jsonrpc":"2.0","id":4,"result":false},"#,
                r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"Method not found"}},"#,
                r#"{"jsonrpc":"2.0","id":6,"result":2},"#,
                r#"{"jsonrpc":"2.0","id":7,"result":false}"#,
                "]"
            )),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":8}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":8,"result":[{"id":"1","external_id":"","name":"A"},{"id":"2","external_id":"","name":"B"}]}"#,
            ),
        ),
    ]);
}

/// `[{createGroup "PREFIX-1"}, …]` with `n` entries and ids 1..=n.
fn create_batch(prefix: &str, n: usize) -> String {
    let entries: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["{prefix}-{i}"]}}"#
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

#[test]
fn batch_over_the_limit_is_one_error_and_none_of_it_runs() {
    let server = Server::start(&["--max-batch", "3"]);
    let over = create_batch("x", 4);
    let notifications_over = over.replace(r#""id":"#, r#""ignored":"#);
    check(
        &server,
        &[
            (&over, Some(INVALID_REQUEST)),
            (&notifications_over, Some(INVALID_REQUEST)),
            (
                r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"after"}"#,
                Some(r#"{"jsonrpc":"2.0","id":"after","result":[]}"#),
            ),
            (
                &create_batch("y", 3),
                Some(
                    r#"[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":2},{"jsonrpc":"2.0","id":3,"result":3}]"#,
                ),
            ),
        ],
    );
}

#[test]
fn default_batch_limit_is_1000_entries() {
    let server = Server::start(&[]);
    let mut client = server.client();

    // 1001 entries: one error object, and not one group created.
    let over = create_batch("over", 1001);
    assert_line("(1001 creates)", INVALID_REQUEST, &client.call(&over));
    let request = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":0}"#;
    assert_line(
        request,
        r#"{"jsonrpc":"2.0","id":0,"result":[]}"#,
        &client.call(request),
    );

    // 1000 entries: all of them run and are answered in order.
    let at_limit = create_batch("ok", 1000);
    let answers: Vec<String> = (1..=1000)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"result":{i}}}"#))
        .collect();
    let expected = format!("[{}]", answers.join(","));
    assert_line("(1000 creates)", &expected, &client.call(&at_limit));
    client.assert_nothing_pending();
}
