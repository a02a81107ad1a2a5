//! SPEC §4 "The documentation examples (must work verbatim)": Kanboard's own examples, request
//! lines exactly as documented (spaces included), on a fresh database where "My Group A" was
//! created first so that it is group 1.

mod common;

use common::{Exchange, check_fresh, check_stdio};

const EXAMPLES: &[Exchange] = &[
    (
        r#"{"jsonrpc": "2.0", "method": "createGroup", "id": 1, "params": ["My Group A"]}"#,
        Some(r#"{"jsonrpc":"2.0","id":1,"result":1}"#),
    ),
    (
        r#"{"jsonrpc": "2.0", "method": "createGroup", "id": 1416806551, "params": ["My Group B", "1234"]}"#,
        Some(r#"{"jsonrpc":"2.0","id":1416806551,"result":2}"#),
    ),
    (
        r#"{"jsonrpc": "2.0", "method": "getGroup", "id": 1968647622, "params": ["1"]}"#,
        Some(
            r#"{"jsonrpc":"2.0","id":1968647622,"result":{"id":"1","external_id":"","name":"My Group A"}}"#,
        ),
    ),
    (
        r#"{"jsonrpc": "2.0", "method": "getAllGroups", "id": 546070742}"#,
        Some(
            r#"{"jsonrpc":"2.0","id":546070742,"result":[{"id":"1","external_id":"","name":"My Group A"},{"id":"2","external_id":"1234","name":"My Group B"}]}"#,
        ),
    ),
    (
        r#"{"jsonrpc": "2.0", "method": "updateGroup", "id": 866078030, "params": {"group_id": "1", "name": "ABC", "external_id": "something"}}"#,
        Some(r#"{"jsonrpc":"2.0","id":866078030,"result":true}"#),
    ),
    (
        r#"{"jsonrpc": "2.0", "method": "removeGroup", "id": 566000661, "params": ["1"]}"#,
        Some(r#"{"jsonrpc":"2.0","id":566000661,"result":true}"#),
    ),
    // Not part of the documentation: the state the examples leave behind.
    (
        r#"{"jsonrpc": "2.0", "method": "getGroup", "id": 3, "params": ["1"]}"#,
        Some(r#"{"jsonrpc":"2.0","id":3,"result":false}"#),
    ),
    (
        r#"{"jsonrpc": "2.0", "method": "getAllGroups", "id": 4}"#,
        Some(
            r#"{"jsonrpc":"2.0","id":4,"result":[{"id":"2","external_id":"1234","name":"My Group B"}]}"#,
        ),
    ),
];

#[test]
fn documentation_examples_over_tcp() {
    check_fresh(EXAMPLES);
}

#[test]
fn documentation_examples_over_stdio() {
    check_stdio(EXAMPLES);
}

/// The rename in the examples is visible before the removal.
#[test]
fn documented_update_changes_name_and_external_id() {
    check_fresh(&[
        (EXAMPLES[0].0, EXAMPLES[0].1),
        (EXAMPLES[1].0, EXAMPLES[1].1),
        (EXAMPLES[4].0, EXAMPLES[4].1),
        (
            r#"{"jsonrpc": "2.0", "method": "getAllGroups", "id": 5}"#,
            Some(
                r#"{"jsonrpc":"2.0","id":5,"result":[{"id":"1","external_id":"something","name":"ABC"},{"id":"2","external_id":"1234","name":"My Group B"}]}"#,
            ),
        ),
    ]);
}
