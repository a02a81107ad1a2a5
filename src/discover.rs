//! `rpc.discover`: the OpenRPC 1.2 document for this server, built from [`METHODS`], the same
//! table the dispatcher binds parameters from, so the description cannot drift from behaviour.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::methods::{METHODS, Method, Param, ParamType, Returns};

/// The document, rendered once as compact JSON.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| build().to_string())
}

fn build() -> Value {
    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "groupd",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Kanboard's Group API as JSON-RPC 2.0 over newline-delimited JSON (or Content-Length framing) on TCP and stdio.",
        },
        "methods": METHODS.iter().map(method).collect::<Vec<_>>(),
        "components": { "schemas": { "Group": group_schema() } },
    })
}

fn method(m: &Method) -> Value {
    json!({
        "name": m.name,
        "summary": m.summary,
        "paramStructure": "either",
        "params": m.params.iter().map(param).collect::<Vec<_>>(),
        "result": { "name": "result", "schema": result_schema(m.returns, group_ref()) },
        "errors": errors(m),
    })
}

fn param(p: &Param) -> Value {
    let schema = param_schema(p);
    json!({ "name": p.name, "summary": p.summary, "required": p.required, "schema": schema })
}

/// The JSON Schema of one parameter's values: shared with MCP's `inputSchema`.
pub(crate) fn param_schema(p: &Param) -> Value {
    match p.ty {
        ParamType::GroupId => json!({ "oneOf": [
            { "type": "integer" },
            { "type": "string", "pattern": "^[0-9]+$" },
        ]}),
        ParamType::Text if p.required => json!({ "type": "string" }),
        ParamType::Text => json!({ "type": ["string", "null"] }),
    }
}

/// The JSON Schema of a method's result, with `group` standing for a group object: a `$ref` in
/// the OpenRPC document, the schema itself in MCP's `outputSchema`.
pub(crate) fn result_schema(returns: Returns, group: Value) -> Value {
    match returns {
        Returns::IdOrFalse => {
            json!({ "oneOf": [{ "type": "integer", "minimum": 1 }, { "const": false }] })
        }
        Returns::TrueOrFalse => json!({ "type": "boolean" }),
        Returns::GroupOrFalse => json!({ "oneOf": [group, { "const": false }] }),
        Returns::Groups => json!({ "type": "array", "items": group }),
        Returns::True => json!({ "const": true }),
        Returns::Document => json!({ "type": "object" }),
    }
}

fn group_ref() -> Value {
    json!({ "$ref": "#/components/schemas/Group" })
}

/// The JSON Schema of a group object (SPEC §4).
pub(crate) fn group_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "external_id", "name"],
        "properties": {
            "id": { "type": "string", "pattern": "^[0-9]+$" },
            "external_id": { "type": "string" },
            "name": { "type": "string" },
        },
        "additionalProperties": false,
    })
}

/// The errors a method can answer beyond the envelope's own (-32700, -32600). Every method can
/// answer -32602: one without parameters, when it is given some.
fn errors(m: &Method) -> Vec<Value> {
    let mut errors = vec![
        json!({ "code": -32001, "message": "Unauthorized" }),
        json!({ "code": -32602, "message": "Invalid params" }),
    ];
    if m.uses_storage {
        errors.push(json!({ "code": -32603, "message": "Internal error" }));
    }
    errors
}
