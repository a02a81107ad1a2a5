//! `groupd call`: the result on stdout and exit 0, a JSON-RPC error on stderr and exit 1, a
//! usage error exit 2, `false` on stdout and exit 3; against a real server (with and without a
//! token) and in-process on a database with `--stdio-db`.

mod spawned;

use std::process::Output;

use spawned::{Server, run};

/// (exit code, stdout, stderr)
fn outcome(out: Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    )
}

fn call(server: &Server, args: &[&str]) -> (Option<i32>, String, String) {
    let addr = server.addr.to_string();
    let mut argv = vec!["call", "--addr", addr.as_str()];
    argv.extend_from_slice(args);
    outcome(run(&argv, &[]))
}

fn ok(stdout: &str) -> (Option<i32>, String, String) {
    (Some(0), format!("{stdout}\n"), String::new())
}

/// The procedure reported failure: `false` on stdout, exit 3 (SPEC §5).
fn failed() -> (Option<i32>, String, String) {
    (Some(3), "false\n".to_owned(), String::new())
}

fn rpc_error(error: &str) -> (Option<i32>, String, String) {
    (Some(1), String::new(), format!("{error}\n"))
}

#[test]
fn results_go_to_stdout_with_exit_0() {
    let server = Server::start(&[]);
    assert_eq!(
        call(&server, &["createGroup", r#"["Ops", "ext"]"#]),
        ok("1")
    );
    assert_eq!(
        call(&server, &["createGroup", r#"{"name": "Dev"}"#]),
        ok("2")
    );
    assert_eq!(
        call(&server, &["getGroup", r#"["1"]"#]),
        ok(r#"{"id":"1","external_id":"ext","name":"Ops"}"#)
    );
    assert_eq!(
        call(&server, &["getAllGroups"]),
        ok(
            r#"[{"id":"2","external_id":"","name":"Dev"},{"id":"1","external_id":"ext","name":"Ops"}]"#
        )
    );
    assert_eq!(
        call(
            &server,
            &["updateGroup", r#"{"group_id": 1, "name": "Ops ☃"}"#]
        ),
        ok("true")
    );
    assert_eq!(call(&server, &["removeGroup", "[2]"]), ok("true"));
    // `false` is printed like any other result, and told apart by the exit status.
    assert_eq!(call(&server, &["getGroup", "[2]"]), failed());
    assert_eq!(call(&server, &["removeGroup", "[2]"]), failed());
    assert_eq!(call(&server, &["createGroup", r#"["Ops ☃"]"#]), failed());
    assert_eq!(
        call(&server, &["getAllGroups", "[]"]),
        ok(r#"[{"id":"1","external_id":"ext","name":"Ops ☃"}]"#)
    );
}

#[test]
fn json_rpc_errors_go_to_stderr_with_exit_1() {
    let server = Server::start(&[]);
    assert_eq!(
        call(&server, &["createGroup", "{}"]),
        rpc_error(r#"{"code":-32602,"message":"Invalid params","data":"Missing argument: name"}"#)
    );
    assert_eq!(
        call(&server, &["getgroup", "[1]"]),
        rpc_error(r#"{"code":-32601,"message":"Method not found"}"#)
    );
    assert_eq!(
        call(&server, &["getGroup", r#"["abc"]"#]),
        rpc_error(
            r#"{"code":-32602,"message":"Invalid params","data":"group_id must be an integer"}"#
        )
    );
}

#[test]
fn params_that_are_not_an_array_or_object_are_a_usage_error() {
    let server = Server::start(&[]);
    for bad in ["1", r#""Ops""#, "null", "true", "[1", "Ops", "", "{} []"] {
        let (code, stdout, stderr) = call(&server, &["createGroup", bad]);
        assert_eq!(code, Some(2), "{bad:?}");
        assert_eq!(stdout, "", "{bad:?}");
        assert!(
            stderr.starts_with("groupd call: PARAMS_JSON must be a JSON array or object"),
            "{bad:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // Nothing was sent.
    assert_eq!(call(&server, &["getAllGroups"]), ok("[]"));
    // Flags clap refuses are usage errors too.
    let (code, _, _) = call(&server, &["--stdio-db", "x.redb", "getAllGroups"]);
    assert_eq!(code, Some(2));
    let (code, _, _) = outcome(run(&["call"], &[]));
    assert_eq!(code, Some(2));
}

#[test]
fn no_server_is_one_line_and_exit_1() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (code, stdout, stderr) = outcome(run(&["call", "--addr", &addr, "getAllGroups"], &[]));
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(
        stderr.starts_with(&format!("groupd call: cannot connect to {addr}: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn the_address_comes_from_groupd_listen_when_not_given() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let out = run(
        &["call", "createGroup", r#"["Env"]"#],
        &[("GROUPD_LISTEN", &addr)],
    );
    assert_eq!(outcome(out), ok("1"));
}

#[test]
fn a_token_file_authenticates_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = spawned::token_file(dir.path(), "s3cret \"quoted\"");
    let token = token.to_str().expect("path");
    let server = Server::start(&["--token-file", token]);
    // Without the token: the server's -32001, on one line with a hint at --token-file.
    assert_eq!(
        call(&server, &["getAllGroups"]),
        (
            Some(1),
            String::new(),
            "groupd call: unauthorized (the server wants a token: give --token-file PATH or \
             set GROUPD_TOKEN_FILE): {\"code\":-32001,\"message\":\"Unauthorized\"}\n"
                .to_owned()
        )
    );
    assert_eq!(
        call(
            &server,
            &["--token-file", token, "createGroup", r#"["Ops"]"#]
        ),
        ok("1")
    );
    let addr = server.addr.to_string();
    let out = run(
        &["call", "--addr", &addr, "getAllGroups"],
        &[("GROUPD_TOKEN_FILE", token)],
    );
    assert_eq!(
        outcome(out),
        ok(r#"[{"id":"1","external_id":"","name":"Ops"}]"#)
    );
    // A wrong token: one line, exit 1, and the call was not made.
    let wrong_dir = dir.path().join("wrong");
    std::fs::create_dir(&wrong_dir).expect("mkdir");
    let wrong = spawned::token_file(&wrong_dir, "wrong");
    let (code, stdout, stderr) = call(
        &server,
        &[
            "--token-file",
            wrong.to_str().expect("path"),
            "createGroup",
            r#"["Nope"]"#,
        ],
    );
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(
        stderr,
        format!(
            "groupd call: authentication refused (is {} the server's token file?): \
             {{\"code\":-32001,\"message\":\"Unauthorized\"}}\n",
            wrong.display()
        )
    );
    // An empty or missing token file is refused before connecting.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n").expect("write");
    let (code, _, stderr) = call(
        &server,
        &[
            "--token-file",
            empty.to_str().expect("path"),
            "getAllGroups",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is empty"), "{stderr}");
    let (code, _, stderr) = call(
        &server,
        &["--token-file", "/nonexistent/token", "getAllGroups"],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("/nonexistent/token"), "{stderr}");
    assert_eq!(
        call(&server, &["--token-file", token, "getAllGroups"]),
        ok(r#"[{"id":"1","external_id":"","name":"Ops"}]"#)
    );
}

#[test]
fn stdio_db_answers_in_process_and_persists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("groupd.redb");
    let db = db.to_str().expect("path");
    let local = |args: &[&str]| {
        let mut argv = vec!["call", "--stdio-db", db];
        argv.extend_from_slice(args);
        outcome(run(&argv, &[]))
    };
    assert_eq!(local(&["createGroup", r#"["Ops", "x"]"#]), ok("1"));
    assert_eq!(local(&["createGroup", r#"["Ops"]"#]), failed());
    assert_eq!(
        local(&["getGroup", r#"{"group_id": "1"}"#]),
        ok(r#"{"id":"1","external_id":"x","name":"Ops"}"#)
    );
    assert_eq!(
        local(&["updateGroup", "[1, null, 42]"]),
        rpc_error(
            r#"{"code":-32602,"message":"Invalid params","data":"external_id must be a string"}"#
        )
    );
    let (code, _, stderr) = local(&["createGroup", "42"]);
    assert_eq!(code, Some(2), "{stderr}");
    // A token file is not needed (stdio trusts its owner), and is harmless.
    let token = spawned::token_file(dir.path(), "t");
    assert_eq!(
        local(&[
            "--token-file",
            token.to_str().expect("path"),
            "removeGroup",
            "[1]"
        ]),
        ok("true")
    );
    assert_eq!(local(&["createGroup", r#"["Dev"]"#]), ok("2"));
    // The writes are in the database, for a server started on it afterwards.
    let mut stdio = spawned::StdioProcess::start(&["stdio", "--db", db]);
    stdio.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getAllGroups\"}\n");
    let (rest, status) = stdio.finish();
    assert_eq!(
        (rest.as_str(), status),
        (
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[{\"id\":\"2\",\"external_id\":\"\",\"name\":\"Dev\"}]}\n",
            Some(0)
        )
    );
}

#[test]
fn stdio_db_on_a_database_a_server_holds_is_one_line_and_exit_1() {
    let server = Server::start(&[]);
    let db = server.db();
    let (code, stdout, stderr) = outcome(run(
        &[
            "call",
            "--stdio-db",
            db.to_str().expect("path"),
            "getAllGroups",
        ],
        &[],
    ));
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(stderr.starts_with("groupd call: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn discover_is_the_same_over_tcp_and_in_process() {
    let server = Server::start(&[]);
    let (code, over_tcp, _) = call(&server, &["rpc.discover"]);
    assert_eq!(code, Some(0));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("groupd.redb");
    let (code, in_process, _) = outcome(run(
        &[
            "call",
            "--stdio-db",
            db.to_str().expect("path"),
            "rpc.discover",
        ],
        &[],
    ));
    assert_eq!(code, Some(0));
    assert_eq!(over_tcp, in_process);
    let document: serde_json::Value = serde_json::from_str(&over_tcp).expect("JSON");
    assert!(document["openrpc"].is_string());
}
