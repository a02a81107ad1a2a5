//! SPEC §9: `rpc.discover` returns an OpenRPC 1.2 document that names every method the server
//! answers and nothing else. The document is checked against `groupd::methods::METHODS` (the
//! dispatcher's table) and, behaviourally, against a real server: every listed method is
//! answered, and names that are not listed are `-32601`.

mod spawned;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use groupd::methods::{METHODS, ParamType};
use spawned::{Conn, Server};

fn request(conn: &mut Conn, id: u64, method: &str, params: Option<Value>) -> Value {
    let mut request = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(params) = params {
        request["params"] = params;
    }
    let answer: Value =
        serde_json::from_str(&conn.call(&request.to_string())).expect("JSON answer");
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], id, "{answer}");
    answer
}

fn discover(server: &Server) -> Value {
    let mut conn = server.connect();
    let answer = request(&mut conn, 1, "rpc.discover", None);
    assert!(answer.get("error").is_none(), "{answer}");
    answer["result"].clone()
}

/// Resolves a `$ref` inside the document, or returns the schema itself.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("local $ref");
            document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"))
        }
        None => schema,
    }
}

/// A JSON Schema as OpenRPC uses it: an object with a type, a combination, a const or a
/// reference, every nested schema valid too.
fn check_schema(document: &Value, schema: &Value, context: &str) {
    let schema = resolve(document, schema);
    let object = schema
        .as_object()
        .unwrap_or_else(|| panic!("{context}: schema is not an object: {schema}"));
    let known = ["type", "oneOf", "anyOf", "const", "$ref", "enum"];
    assert!(
        known.iter().any(|k| object.contains_key(*k)),
        "{context}: schema says nothing: {schema}"
    );
    if let Some(ty) = object.get("type") {
        let types: Vec<&Value> = match ty {
            Value::Array(types) => types.iter().collect(),
            other => vec![other],
        };
        for ty in types {
            let ty = ty
                .as_str()
                .unwrap_or_else(|| panic!("{context}: type {ty}"));
            assert!(
                [
                    "string", "integer", "number", "boolean", "null", "array", "object"
                ]
                .contains(&ty),
                "{context}: unknown type {ty}"
            );
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = object.get(key) {
            let alternatives = alternatives.as_array().expect("oneOf/anyOf is an array");
            assert!(!alternatives.is_empty(), "{context}: empty {key}");
            for alt in alternatives {
                check_schema(document, alt, context);
            }
        }
    }
    if let Some(items) = object.get("items") {
        check_schema(document, items, context);
    }
    if let Some(properties) = object.get("properties") {
        for (name, property) in properties.as_object().expect("properties is an object") {
            check_schema(document, property, &format!("{context}.{name}"));
        }
    }
    if let Some(pattern) = object.get("pattern") {
        assert!(pattern.is_string(), "{context}: pattern {pattern}");
    }
}

#[test]
fn the_document_is_an_openrpc_1_2_document() {
    let server = Server::start(&[]);
    let doc = discover(&server);
    let version = doc["openrpc"].as_str().expect("openrpc version");
    assert!(version.starts_with("1.2."), "openrpc {version}");
    assert_eq!(doc["info"]["title"], "groupd");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let methods = doc["methods"].as_array().expect("methods array");
    assert!(!methods.is_empty());
    for method in methods {
        let name = method["name"].as_str().expect("method name");
        if let Some(structure) = method.get("paramStructure") {
            assert!(
                ["by-name", "by-position", "either"].contains(&structure.as_str().unwrap_or("")),
                "{name}: paramStructure {structure}"
            );
        }
        let params = method["params"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: params"));
        let mut seen_optional = false;
        let mut names = BTreeSet::new();
        for param in params {
            let pname = param["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: param name"));
            assert!(names.insert(pname), "{name}: param {pname} twice");
            let required = param
                .get("required")
                .is_some_and(|r| r.as_bool().expect("bool"));
            // Positional parameters: no required one after an optional one.
            assert!(
                !(required && seen_optional),
                "{name}: required {pname} after an optional one"
            );
            seen_optional |= !required;
            check_schema(&doc, &param["schema"], &format!("{name}({pname})"));
        }
        let result = &method["result"];
        assert!(result["name"].is_string(), "{name}: result name");
        check_schema(&doc, &result["schema"], &format!("{name} result"));
        for error in method
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(error["code"].is_i64(), "{name}: error code {error}");
            assert!(
                error["message"].is_string(),
                "{name}: error message {error}"
            );
        }
    }
    let group = &doc["components"]["schemas"]["Group"];
    assert_eq!(group["required"], json!(["id", "external_id", "name"]));
}

#[test]
fn the_document_lists_the_dispatchers_table_exactly() {
    let server = Server::start(&[]);
    let doc = discover(&server);
    let listed: Vec<&str> = doc["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    let table: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    listed
        .iter()
        .for_each(|n| *counts.entry(n).or_default() += 1);
    for name in &table {
        assert_eq!(
            counts.get(name),
            Some(&1),
            "{name} must be listed exactly once"
        );
    }
    for name in &listed {
        assert!(table.contains(name), "{name} is listed but not in METHODS");
    }
    assert_eq!(listed.len(), table.len());
    for name in [
        "createGroup",
        "updateGroup",
        "removeGroup",
        "getGroup",
        "getAllGroups",
        "rpc.discover",
    ] {
        assert!(listed.contains(&name), "{name}");
    }
    // Parameters: names, positions and requiredness as the dispatcher binds them.
    for method in METHODS {
        let described = doc["methods"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["name"] == method.name))
            .expect("described");
        let params = described["params"].as_array().expect("params");
        assert_eq!(params.len(), method.params.len(), "{}", method.name);
        for (described, param) in params.iter().zip(method.params) {
            assert_eq!(described["name"], param.name, "{}", method.name);
            assert_eq!(
                described
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                param.required
            );
        }
    }
}

/// Arguments that bind for `param`: a group id, or a text.
fn valid_argument(ty: ParamType) -> Value {
    match ty {
        ParamType::GroupId => json!(1),
        ParamType::Text => json!("Discovered"),
    }
}

#[test]
fn every_listed_method_is_answered_and_nothing_else() {
    let server = Server::start(&[]);
    let doc = discover(&server);
    let mut conn = server.connect();
    let mut id = 10;
    for method in doc["methods"].as_array().expect("methods") {
        let name = method["name"].as_str().expect("name");
        let entry = METHODS.iter().find(|m| m.name == name).expect("in METHODS");
        let positional: Vec<Value> = entry.params.iter().map(|p| valid_argument(p.ty)).collect();
        let named: serde_json::Map<String, Value> = entry
            .params
            .iter()
            .map(|p| (p.name.to_owned(), valid_argument(p.ty)))
            .collect();
        for params in [Value::Array(positional), Value::Object(named)] {
            id += 1;
            let answer = request(&mut conn, id, name, Some(params.clone()));
            assert!(
                answer.get("result").is_some(),
                "{name} {params} was not answered with a result: {answer}"
            );
        }
        // Without arguments it is answered too: a result, or -32602 for a missing one.
        id += 1;
        let answer = request(&mut conn, id, name, None);
        assert_ne!(answer["error"]["code"], -32601, "{name}: {answer}");
    }
    let listed: Vec<String> = METHODS.iter().map(|m| m.name.to_owned()).collect();
    let mut unlisted: Vec<String> = vec![
        "".into(),
        "rpc.".into(),
        "rpc.describe".into(),
        "system.listMethods".into(),
        "getGroups".into(),
        "deleteGroup".into(),
        "getAllGroup".into(),
        "initialized".into(),
        "tools/lists".into(),
        "$/cancelRequest".into(),
    ];
    for name in &listed {
        unlisted.push(name.to_uppercase());
        unlisted.push(name.to_lowercase());
        unlisted.push(format!("{name} "));
        unlisted.push(format!(" {name}"));
        unlisted.push(format!("{name}s"));
    }
    unlisted.retain(|n| !listed.contains(n));
    for name in unlisted {
        id += 1;
        let answer = request(&mut conn, id, &name, None);
        assert_eq!(
            answer,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}),
            "{name:?}"
        );
    }
}

/// SPEC §9: each method's `errors` list every code it can answer. Every one answers `-32602`
/// when given too many arguments, those without parameters included. The session protocols'
/// messages (SPEC §11, §12) are answered but not listed.
#[test]
fn each_method_lists_the_errors_it_answers_and_lifecycle_messages_are_not_listed() {
    let server = Server::start(&[]);
    let doc = discover(&server);
    let mut conn = server.connect();
    let methods = doc["methods"].as_array().expect("methods");
    for (id, method) in methods.iter().enumerate() {
        let name = method["name"].as_str().expect("name");
        let too_many = request(&mut conn, id as u64, name, Some(json!([1, 2, 3, 4])));
        let code = &too_many["error"]["code"];
        let listed: Vec<&Value> = method["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| &e["code"])
            .collect();
        assert!(listed.contains(&code), "{name}: {code} not in {listed:?}");
    }
    for lifecycle in [
        "initialize",
        "shutdown",
        "exit",
        "ping",
        "tools/list",
        "tools/call",
    ] {
        assert!(
            methods.iter().all(|m| m["name"] != lifecycle),
            "{lifecycle} is listed"
        );
    }
}

#[test]
fn discover_takes_no_arguments_and_answers_the_same_document_every_time() {
    let server = Server::start(&[]);
    let first = discover(&server);
    let mut conn = server.connect();
    assert_eq!(
        request(&mut conn, 2, "rpc.discover", Some(json!([])))["result"],
        first
    );
    assert_eq!(
        request(&mut conn, 3, "rpc.discover", Some(json!({})))["result"],
        first
    );
    let too_many = request(&mut conn, 4, "rpc.discover", Some(json!([1])));
    assert_eq!(too_many["error"]["code"], -32602, "{too_many}");
    // Over Content-Length framing it is the same document.
    let mut lsp = server.connect();
    lsp.send(&spawned::frame(
        r#"{"jsonrpc":"2.0","id":5,"method":"rpc.discover"}"#,
    ));
    let (_, body) = lsp.framed();
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["result"], first);
}
