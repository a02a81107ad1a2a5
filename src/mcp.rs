//! MCP's tools (SPEC §12): the five Group API procedures as tools. `tools/list` describes them
//! from the method table that binds parameters and builds `rpc.discover`, so the three cannot
//! drift; `tools/call` names one, and the dispatcher runs it like any other call (same binding,
//! same group commit, same durability). This module reads a `tools/call`'s params and writes
//! its answer; it never runs anything.
//!
//! A tool call's answer is always an object (MCP clients reject any other result):
//! `{"content":[{"type":"text","text":T}],"structuredContent":{"result":R},"isError":E}`.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::discover;
use crate::group::Refusal;
use crate::jsonrpc::{self, Json, Params, RpcError};
use crate::methods::{self, METHODS, Method, Procedure, Returns};

/// The `tools/list` result, rendered once.
pub fn tools_list() -> &'static str {
    static LIST: OnceLock<String> = OnceLock::new();
    LIST.get_or_init(|| {
        let tools: Vec<Value> = METHODS
            .iter()
            .filter(|m| m.is_group_api())
            .map(tool)
            .collect();
        json!({ "tools": tools }).to_string()
    })
}

fn tool(m: &Method) -> Value {
    let properties: serde_json::Map<String, Value> = m
        .params
        .iter()
        .map(|p| {
            let mut schema = discover::param_schema(p);
            schema["description"] = p.summary.into();
            (p.name.to_owned(), schema)
        })
        .collect();
    let required: Vec<&str> = m
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    let result = admitting_false(m.returns);
    json!({
        "name": m.name,
        "title": m.title,
        "description": m.summary,
        "inputSchema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        },
        "outputSchema": {
            "type": "object",
            "properties": { "result": result },
            "required": ["result"],
            "additionalProperties": false,
        },
        "annotations": annotations(m.procedure),
    })
}

/// A tool's result schema. Every `outputSchema` admits `{"result": false}` (SPEC §12), even
/// where the procedure never reports failure (getAllGroups).
fn admitting_false(returns: Returns) -> Value {
    let schema = discover::result_schema(returns, discover::group_schema());
    match returns {
        Returns::IdOrFalse | Returns::TrueOrFalse | Returns::GroupOrFalse => schema,
        Returns::Groups | Returns::True | Returns::Document => {
            json!({ "oneOf": [schema, { "const": false }] })
        }
    }
}

/// Hints for agent hosts that ask before running tools that change things.
fn annotations(procedure: Procedure) -> Value {
    match procedure {
        Procedure::GetGroup | Procedure::GetAllGroups => json!({ "readOnlyHint": true }),
        Procedure::CreateGroup => json!({ "readOnlyHint": false, "destructiveHint": false }),
        _ => json!({ "readOnlyHint": false, "destructiveHint": true, "idempotentHint": true }),
    }
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
}

/// The tool a `tools/call` names and its arguments, as params for that procedure. An unknown
/// tool, or params that name none, is a protocol error (`-32602`). Arguments that are not an
/// object are the tool's own failure (`isError`), so they come back as the inner `Err`.
#[allow(clippy::type_complexity)]
pub fn parse_call(
    params: Params<'_>,
) -> Result<(&'static Method, Result<Params<'_>, RpcError>), RpcError> {
    let Params::Named(raw) = params else {
        return Err(invalid("tools/call params must be an object"));
    };
    let call: CallParams = serde_json::from_str(raw.get())
        .map_err(|_| invalid("tools/call params must be an object"))?;
    let name = call
        .name
        .and_then(|n| jsonrpc::decode_str(Json::from(n)))
        .ok_or_else(|| invalid("Missing argument: name"))?;
    let method = methods::find(&name)
        .filter(|m| m.is_group_api())
        .ok_or_else(|| invalid(&format!("Unknown tool: {name}")))?;
    let arguments = match call.arguments.map(Json::from) {
        None => Ok(Params::None),
        Some(raw) if raw.get() == "null" => Ok(Params::None),
        Some(raw) if raw.get().starts_with('{') => Ok(Params::Named(raw)),
        Some(_) => Err(invalid("arguments must be an object")),
    };
    Ok((method, arguments))
}

fn invalid(why: &str) -> RpcError {
    RpcError::InvalidParams(why.to_owned())
}

/// What a tool call's failure text needs from its arguments: the group it named, as written,
/// and the name it asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub group_id: Option<String>,
    pub name: Option<String>,
}

impl ToolCall {
    /// Answers a procedure's result `result` (compact JSON): `isError` false.
    pub fn write_success(out: &mut Vec<u8>, result: &[u8]) {
        out.extend_from_slice(b"{\"content\":[{\"type\":\"text\",\"text\":");
        jsonrpc::write_str(out, &String::from_utf8_lossy(result));
        out.extend_from_slice(b"}],\"structuredContent\":{\"result\":");
        out.extend_from_slice(result);
        out.extend_from_slice(b"},\"isError\":false}");
    }

    /// Answers a procedure that reported failure: `false`, and what failed in words.
    pub fn write_refusal(&self, out: &mut Vec<u8>, refusal: Refusal) {
        let text = refusal.describe(self.group_id.as_deref(), self.name.as_deref());
        out.extend_from_slice(b"{\"content\":[{\"type\":\"text\",\"text\":");
        jsonrpc::write_str(out, &text);
        out.extend_from_slice(b"}],\"structuredContent\":{\"result\":false},\"isError\":true}");
    }

    /// Answers a call that could not run (arguments that do not fit, a storage failure): only
    /// the reason, no result.
    pub fn write_failure(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(b"{\"content\":[{\"type\":\"text\",\"text\":");
        jsonrpc::write_str(out, text);
        out.extend_from_slice(b"}],\"isError\":true}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(text: &str) -> Params<'_> {
        Params::Named(Json::parse(text).expect("JSON"))
    }

    #[test]
    fn a_tool_requires_what_its_method_requires_and_admits_false() {
        let list: Value = serde_json::from_str(tools_list()).expect("JSON");
        let create = &list["tools"][0];
        assert_eq!(create["inputSchema"]["required"], json!(["name"]));
        assert_eq!(
            create["outputSchema"]["properties"]["result"]["oneOf"][1],
            json!({ "const": false })
        );
    }

    #[test]
    fn a_call_names_a_group_api_tool() {
        let (method, args) = parse_call(named(
            r#"{"name":"getGroup","arguments":{"group_id":1},"_meta":{}}"#,
        ))
        .expect("a tool");
        assert_eq!(method.name, "getGroup");
        assert!(matches!(args, Ok(Params::Named(_))));
        let (_, args) = parse_call(named(r#"{"name":"getAllGroups"}"#)).expect("a tool");
        assert_eq!(args, Ok(Params::None));
        let (_, args) =
            parse_call(named(r#"{"name":"getGroup","arguments":[1]}"#)).expect("a tool");
        assert!(args.is_err());
        for (params, why) in [
            (r#"{"name":"authenticate"}"#, "Unknown tool: authenticate"),
            (r#"{"name":"nope","arguments":{}}"#, "Unknown tool: nope"),
            (r#"{"arguments":{}}"#, "Missing argument: name"),
            (r#"{"name":5}"#, "Missing argument: name"),
        ] {
            assert_eq!(
                parse_call(named(params)).map(|_| ()),
                Err(RpcError::InvalidParams(why.into())),
                "{params}"
            );
        }
    }

    #[test]
    fn answers_are_objects_with_text_and_structured_content() {
        let mut out = Vec::new();
        ToolCall::write_success(&mut out, br#"{"id":"1","external_id":"","name":"Ops"}"#);
        let answer: Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            answer,
            json!({
                "content": [{"type": "text", "text": r#"{"id":"1","external_id":"","name":"Ops"}"#}],
                "structuredContent": {"result": {"id": "1", "external_id": "", "name": "Ops"}},
                "isError": false,
            })
        );
        out.clear();
        let call = ToolCall {
            group_id: None,
            name: Some("Ops".into()),
        };
        call.write_refusal(&mut out, Refusal::NameTaken);
        let answer: Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            answer["content"][0]["text"],
            r#"a group named "Ops" already exists"#
        );
        assert_eq!(answer["structuredContent"], json!({"result": false}));
        assert_eq!(answer["isError"], true);
    }
}
