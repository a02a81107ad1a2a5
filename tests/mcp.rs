//! SPEC §12: MCP on every transport and framing. `initialize` with a `protocolVersion` is MCP's;
//! `ping`, `tools/list` and `tools/call` are answered (before `initialize` too); the tools are the
//! five Group API procedures, described from the same method table as `rpc.discover`, and a
//! tool call runs through the ordinary dispatcher, its answer always an object.

mod spawned;

use serde_json::{Value, json};
use spawned::Server;
use spawned::talk::{FRAMINGS, Framing, Talk, error, notification, request, result};

const VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

fn call_tool(talk: &mut Talk, id: u64, name: &str, arguments: Value) -> Value {
    let answer = talk.call(request(
        id,
        "tools/call",
        json!({"name": name, "arguments": arguments, "_meta": {"progressToken": id}}),
    ));
    assert_eq!(answer["id"], json!(id), "{answer}");
    let mut result = answer
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{name}: not a result: {answer}"));
    if result["isError"] == false {
        // The text is the compact JSON of the result: compared as JSON.
        let text = result["content"][0]["text"].as_str().expect("text");
        assert!(
            !text.contains(": ") && !text.contains(", "),
            "not compact: {text}"
        );
        result["content"][0]["text"] = serde_json::from_str(text).expect("JSON text");
    }
    result
}

/// A successful tool result: its text is the compact JSON of its structured result (see
/// [`call_tool`]).
fn success(result: Value) -> Value {
    json!({
        "content": [{"type": "text", "text": result}],
        "structuredContent": {"result": result},
        "isError": false,
    })
}

/// A procedure that reported failure (`false`), and the one-line text saying why.
fn refused(text: &str) -> Value {
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": {"result": false},
        "isError": true,
    })
}

/// Arguments that do not fit: only the `-32602` reason.
fn invalid(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

#[test]
fn initialize_answers_the_clients_version_when_supported_else_the_newest() {
    let server = Server::start(&[]);
    let mut talk = Talk::tcp(&server, Framing::Lines);
    for (id, (asked, answered)) in VERSIONS
        .iter()
        .map(|v| (*v, *v))
        .chain([("2024-01-01", "2025-11-25"), ("2099-12-31", "2025-11-25")])
        .enumerate()
    {
        let answer = talk.call(request(
            id as u64,
            "initialize",
            json!({"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        ));
        let init = &answer["result"];
        assert_eq!(init["protocolVersion"], answered, "{answer}");
        assert_eq!(
            init["capabilities"],
            json!({"tools": {"listChanged": false}})
        );
        assert_eq!(init["serverInfo"]["name"], "groupd");
        assert_eq!(init["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        let instructions = init["instructions"].as_str().expect("instructions");
        assert!(!instructions.contains('\n') && instructions.contains("createGroup"));
    }
}

#[test]
fn ping_and_tools_are_answered_before_initialize_and_notifications_are_ignored() {
    let server = Server::start(&[]);
    let mut talk = Talk::tcp(&server, Framing::Lines);
    assert_eq!(
        talk.call(request(1, "ping", Value::Null)),
        result(1, json!({}))
    );
    assert_eq!(
        call_tool(&mut talk, 2, "createGroup", json!({"name": "Ops"})),
        success(json!(1))
    );
    talk.send(&notification("notifications/initialized", Value::Null));
    talk.send(&notification(
        "notifications/cancelled",
        json!({"requestId": 2}),
    ));
    assert_eq!(
        talk.call(request(3, "ping", json!({}))),
        result(3, json!({}))
    );
    // The Group API stays callable directly on an MCP session.
    assert_eq!(
        talk.call(request(4, "getGroup", json!([1])))["result"]["name"],
        "Ops"
    );
    assert_eq!(
        talk.call(request(5, "notifications/initialized", json!({}))),
        error(5, -32601, "Method not found", None)
    );
}

/// `tools/list` is the Group API of `rpc.discover`: the same names, the same parameters and
/// which of them are required, and results that admit `false`.
#[test]
fn tools_list_describes_the_group_api_from_the_method_table() {
    let server = Server::start(&[]);
    let mut talk = Talk::tcp(&server, Framing::ContentLength);
    let discover = talk.call(request(1, "rpc.discover", Value::Null))["result"].clone();
    for params in [Value::Null, json!({}), json!({"cursor": "x"})] {
        let list = talk.call(request(2, "tools/list", params));
        let tools = list["result"]["tools"].as_array().expect("tools").clone();
        let names: Vec<&str> = tools
            .iter()
            .map(|t| t["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            names,
            [
                "createGroup",
                "updateGroup",
                "removeGroup",
                "getGroup",
                "getAllGroups"
            ]
        );
        for tool in &tools {
            let name = tool["name"].as_str().expect("name");
            let method = discover["methods"]
                .as_array()
                .expect("methods")
                .iter()
                .find(|m| m["name"] == name)
                .expect("in rpc.discover");
            assert!(tool["title"].is_string() && tool["description"] == method["summary"]);
            let input = &tool["inputSchema"];
            assert_eq!(input["type"], "object", "{name}");
            let mut listed: Vec<&str> = input["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .map(String::as_str)
                .collect();
            let mut params: Vec<&str> = method["params"]
                .as_array()
                .expect("params")
                .iter()
                .map(|p| p["name"].as_str().expect("name"))
                .collect();
            listed.sort_unstable();
            params.sort_unstable();
            assert_eq!(listed, params, "{name}");
            let required: Vec<&Value> = method["params"]
                .as_array()
                .expect("params")
                .iter()
                .filter(|p| p["required"] == true)
                .map(|p| &p["name"])
                .collect();
            assert_eq!(
                input["required"]
                    .as_array()
                    .expect("required")
                    .iter()
                    .collect::<Vec<_>>(),
                required
            );
            let output = &tool["outputSchema"];
            assert_eq!(output["type"], "object");
            assert_eq!(output["required"], json!(["result"]));
            // Every outputSchema admits {"result": false}, getAllGroups' too (SPEC §12).
            let schema = &output["properties"]["result"];
            let admits_false = schema["type"] == "boolean"
                || schema["oneOf"]
                    .as_array()
                    .is_some_and(|o| o.contains(&json!({"const": false})));
            assert!(admits_false, "{name}: {schema}");
        }
    }
}

/// Every procedure as a tool, on stdio and TCP, in both framings.
#[test]
fn every_procedure_runs_as_a_tool_and_says_what_failed() {
    for framing in FRAMINGS {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("groupd.redb");
        let mut talk = Talk::stdio(&db, framing);
        tool_session(&mut talk);
        let server = Server::start(&[]);
        tool_session(&mut Talk::tcp(&server, framing));
    }
}

fn tool_session(talk: &mut Talk) {
    let init = talk.call(request(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    ));
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    let calls = [
        (
            "createGroup",
            json!({"name": "Ops", "external_id": "ops"}),
            success(json!(1)),
        ),
        ("createGroup", json!({"name": "Dev"}), success(json!(2))),
        (
            "createGroup",
            json!({"name": "Ops"}),
            refused(r#"a group named "Ops" already exists"#),
        ),
        (
            "createGroup",
            json!({"name": "  "}),
            refused("name must be 1 to 100 characters and not blank"),
        ),
        (
            "createGroup",
            json!({"name": "x", "external_id": "e".repeat(256)}),
            refused("external_id must be at most 255 characters"),
        ),
        (
            "getGroup",
            json!({"group_id": 1}),
            success(json!({"id": "1", "external_id": "ops", "name": "Ops"})),
        ),
        (
            "getGroup",
            json!({"group_id": "7"}),
            refused("no group with id 7"),
        ),
        (
            "updateGroup",
            json!({"group_id": "1", "name": "Operations"}),
            success(json!(true)),
        ),
        (
            "updateGroup",
            json!({"group_id": 1, "name": "Dev"}),
            refused(r#"a group named "Dev" already exists"#),
        ),
        (
            "updateGroup",
            json!({"group_id": 9, "external_id": "x"}),
            refused("no group with id 9"),
        ),
        ("removeGroup", json!({"group_id": 2}), success(json!(true))),
        (
            "removeGroup",
            json!({"group_id": 2}),
            refused("no group with id 2"),
        ),
        (
            "getAllGroups",
            json!({}),
            success(json!([{"id": "1", "external_id": "ops", "name": "Operations"}])),
        ),
        (
            "getAllGroups",
            Value::Null,
            success(json!([{"id": "1", "external_id": "ops", "name": "Operations"}])),
        ),
        // Arguments that do not fit (SPEC §3): the -32602 reason, no structured result.
        ("getGroup", json!({}), invalid("Missing argument: group_id")),
        (
            "getGroup",
            json!({"group_id": "abc"}),
            invalid("group_id must be an integer"),
        ),
        (
            "createGroup",
            json!({"name": 42}),
            invalid("name must be a string"),
        ),
        (
            "createGroup",
            json!({"name": "A", "nam": "x"}),
            invalid("Unknown argument: nam"),
        ),
        (
            "getAllGroups",
            json!({"x": 1}),
            invalid("Unknown argument: x"),
        ),
        (
            "getGroup",
            json!([1]),
            invalid("arguments must be an object"),
        ),
    ];
    for (id, (name, arguments, expected)) in calls.into_iter().enumerate() {
        assert_eq!(
            call_tool(talk, id as u64 + 1, name, arguments.clone()),
            expected,
            "{name} {arguments}"
        );
    }
    // An unknown tool is a protocol error, as is a call that names none.
    for (params, why) in [
        (
            json!({"name": "authenticate", "arguments": {"token": "x"}}),
            "Unknown tool: authenticate",
        ),
        (
            json!({"name": "deleteGroup", "arguments": {}}),
            "Unknown tool: deleteGroup",
        ),
        (json!({"arguments": {}}), "Missing argument: name"),
    ] {
        assert_eq!(
            talk.call(request(99, "tools/call", params)),
            error(99, -32602, "Invalid params", Some(why))
        );
    }
}

/// A tool call goes through the same group commit and durability as any write: tool calls from
/// many connections at once are all answered, each with its own id, and all are stored.
#[test]
fn concurrent_tool_calls_are_committed_like_any_write() {
    let server = Server::start(&[]);
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut conn = spawned::Conn::tcp(addr);
                let lines: String = (0..25)
                    .map(|i| {
                        let params = json!({"name": "createGroup", "arguments": {"name": format!("g{worker}-{i}")}});
                        format!("{}\n", request(i, "tools/call", params))
                    })
                    .collect();
                conn.send(lines.as_bytes());
                (0..25)
                    .map(|_| serde_json::from_str::<Value>(&conn.line()).expect("JSON"))
                    .filter(|a| a["result"]["isError"] == false)
                    .count()
            })
        })
        .collect();
    let created: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    assert_eq!(created, 200);
    let mut talk = Talk::tcp(&server, Framing::Lines);
    let all = talk.call(request(1, "getAllGroups", Value::Null));
    assert_eq!(all["result"].as_array().map(Vec::len), Some(200));
}

/// With a token, a TCP session authenticates before its tool calls (SPEC §7, §12).
#[test]
fn tools_need_the_token_on_a_protected_tcp_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = spawned::token_file(dir.path(), "s3cret");
    let server = Server::start(&["--token-file", token.to_str().expect("path")]);
    let mut talk = Talk::tcp(&server, Framing::Lines);
    let create = json!({"name": "createGroup", "arguments": {"name": "Ops"}});
    assert_eq!(
        talk.call(request(1, "tools/call", create.clone())),
        error(1, -32001, "Unauthorized", None)
    );
    assert_eq!(
        talk.call(request(2, "authenticate", json!({"token": "s3cret"}))),
        result(2, json!(true))
    );
    assert_eq!(
        call_tool(&mut talk, 3, "createGroup", json!({"name": "Ops"})),
        success(json!(1))
    );
}
