//! SPEC §1 (connections served concurrently, per-connection order) and §4 (unique names under
//! concurrent writers, ids never handed out twice).

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::{Client, Server, assert_line};

const CONNECTIONS: usize = 32;

/// Each of `CONNECTIONS` connections sends `request(i)` at the same moment; returns the answers
/// in connection order.
fn race(server: &Server, request: impl Fn(usize) -> String) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(CONNECTIONS));
    let handles: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let mut client = server.client();
            let request = request(i);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                // Connected and answered once already, so the race is about the write only.
                client.assert_nothing_pending();
                barrier.wait();
                client.call(&request)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect()
}

#[test]
fn racing_to_create_the_same_name_exactly_one_wins() {
    let server = Server::start(&[]);
    let answers = race(&server, |i| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["Same","from {i}"]}}"#
        )
    });
    let winners: Vec<usize> = (0..CONNECTIONS)
        .filter(|&i| answers[i] != format!(r#"{{"jsonrpc":"2.0","id":{i},"result":false}}"#))
        .collect();
    assert_eq!(winners.len(), 1, "answers: {answers:#?}");
    let winner = winners[0];
    assert_line(
        "(the winner)",
        &format!(r#"{{"jsonrpc":"2.0","id":{winner},"result":1}}"#),
        &answers[winner],
    );
    let request = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"list"}"#;
    let expected = format!(
        r#"{{"jsonrpc":"2.0","id":"list","result":[{{"id":"1","external_id":"from {winner}","name":"Same"}}]}}"#
    );
    assert_line(request, &expected, &server.client().call(request));
}

#[test]
fn racing_to_create_distinct_names_all_get_distinct_ids() {
    let server = Server::start(&[]);
    let answers = race(&server, |i| {
        format!(r#"{{"jsonrpc":"2.0","method":"createGroup","id":{i},"params":["g{i:02}"]}}"#)
    });
    let ids: Vec<u64> = answers
        .iter()
        .enumerate()
        .map(|(i, answer)| {
            let prefix = format!(r#"{{"jsonrpc":"2.0","id":{i},"result":"#);
            answer
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix('}'))
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("connection {i} got no id: {answer}"))
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    let expected_ids: Vec<u64> = (1..=CONNECTIONS as u64).collect();
    assert_eq!(sorted, expected_ids, "ids handed out: {ids:?}");

    let listed: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!(r#"{{"id":"{id}","external_id":"","name":"g{i:02}"}}"#))
        .collect();
    let request = r#"{"jsonrpc":"2.0","method":"getAllGroups","id":"list"}"#;
    let expected = format!(
        r#"{{"jsonrpc":"2.0","id":"list","result":[{}]}}"#,
        listed.join(",")
    );
    assert_line(request, &expected, &server.client().call(request));
}

#[test]
fn pipelined_requests_are_answered_in_order_and_see_each_other() {
    let server = Server::start(&[]);
    let mut client = server.client();
    let mut requests = vec![(
        r#"{"jsonrpc":"2.0","method":"createGroup","id":0,"params":["v0"]}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":0,"result":1}"#.to_string(),
    )];
    for k in 1..100 {
        let (update, get) = (2 * k - 1, 2 * k);
        requests.push((
            format!(r#"{{"jsonrpc":"2.0","method":"updateGroup","id":{update},"params":[1,"v{k}","e{k}"]}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":{update},"result":true}}"#),
        ));
        requests.push((
            format!(r#"{{"jsonrpc":"2.0","method":"getGroup","id":{get},"params":["1"]}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":{get},"result":{{"id":"1","external_id":"e{k}","name":"v{k}"}}}}"#),
        ));
    }
    requests.push((
        r#"{"jsonrpc":"2.0","method":"getAllGroups","id":199}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":199,"result":[{"id":"1","external_id":"e99","name":"v99"}]}"#
            .to_string(),
    ));
    assert_eq!(requests.len(), 200);

    // All 200 in one write, before reading anything.
    let all: String = requests.iter().map(|(r, _)| format!("{r}\n")).collect();
    client.send_raw(all.as_bytes());
    for (request, expected) in &requests {
        assert_line(request, expected, &client.recv());
    }
    client.assert_nothing_pending();
}

#[test]
fn two_pipelining_connections_each_keep_their_own_order() {
    let server = Server::start(&[]);
    let handles: Vec<_> = (0..2)
        .map(|c| {
            let mut client: Client = server.client();
            thread::spawn(move || {
                let mut all = String::new();
                for k in 0..50 {
                    all.push_str(&format!(
                        r#"{{"jsonrpc":"2.0","method":"createGroup","id":{k},"params":["c{c}-{k}"]}}"#
                    ));
                    all.push('\n');
                    all.push_str(&format!(
                        r#"{{"jsonrpc":"2.0","method":"createGroup","id":"again{k}","params":["c{c}-{k}"]}}"#
                    ));
                    all.push('\n');
                }
                client.send_raw(all.as_bytes());
                let mut last = 0u64;
                for k in 0..50 {
                    let created = client.recv();
                    let prefix = format!(r#"{{"jsonrpc":"2.0","id":{k},"result":"#);
                    let id: u64 = created
                        .strip_prefix(&prefix)
                        .and_then(|r| r.strip_suffix('}'))
                        .and_then(|r| r.parse().ok())
                        .unwrap_or_else(|| panic!("expected an id for request {k}: {created}"));
                    assert!(id > last, "ids increase on one connection: {id} after {last}");
                    last = id;
                    assert_line(
                        "(the same name again)",
                        &format!(r#"{{"jsonrpc":"2.0","id":"again{k}","result":false}}"#),
                        &client.recv(),
                    );
                }
                client.assert_nothing_pending();
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
}

#[test]
fn a_connection_stalled_mid_request_does_not_hold_up_the_others() {
    let server = Server::start(&[]);
    let mut stalled = server.client();
    stalled.send_raw(br#"{"jsonrpc":"2.0","method":"createGroup","id":1,"params":["#);
    let mut other = server.client();
    other.check(&[
        (
            r#"{"jsonrpc":"2.0","method":"createGroup","id":2,"params":["B"]}"#,
            Some(r#"{"jsonrpc":"2.0","id":2,"result":1}"#),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":3}"#,
            Some(r#"{"jsonrpc":"2.0","id":3,"result":[{"id":"1","external_id":"","name":"B"}]}"#),
        ),
    ]);
    // The rest of the stalled line arrives; it runs after everything it did not see.
    stalled.send_raw(b"\"A\"]}\n");
    assert_line(
        "(the completed line)",
        r#"{"jsonrpc":"2.0","id":1,"result":2}"#,
        &stalled.recv(),
    );
    stalled.assert_nothing_pending();
}
