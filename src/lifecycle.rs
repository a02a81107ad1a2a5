//! The session protocols spoken around the Group API: the language-server lifecycle (SPEC §11)
//! and MCP's (SPEC §12). Editors and AI agents open every session with `initialize`; groupd
//! answers both on every transport and framing, and a session that never calls it (netcat,
//! scripts) is served exactly as before.
//!
//! Which protocol a client speaks is told by its `initialize`: MCP's carries
//! `params.protocolVersion`, the LSP's does not. Everything else is shared: `shutdown` and
//! `exit` end either, and MCP's `ping` and `tools/…` are answered before `initialize` too.
//! Notifications this server has no use for (`initialized`, `notifications/…`, `$/…`,
//! `workspace/didChangeConfiguration`) are not recognised here: as unknown methods they are
//! dropped unanswered, as every notification is, and sent as requests they get `-32601`.
//!
//! This module decides what each message answers; [`crate::session::Session`] holds where the
//! conversation stands, and [`crate::mcp`] describes the tools.

use serde_json::Value;

use crate::jsonrpc::{self, Params, RpcError};

/// A message of the session protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Initialize,
    Shutdown,
    Exit,
    Ping,
    ToolsList,
    ToolsCall,
}

/// The session-protocol message called `method`, if it is one.
pub fn recognise(method: &str) -> Option<Message> {
    Some(match method {
        "initialize" => Message::Initialize,
        "shutdown" => Message::Shutdown,
        "exit" => Message::Exit,
        "ping" => Message::Ping,
        "tools/list" => Message::ToolsList,
        "tools/call" => Message::ToolsCall,
        _ => return None,
    })
}

/// The MCP protocol versions groupd speaks, oldest first. A client asking for another one is
/// answered with the newest, and decides itself whether it can go on.
pub const MCP_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// What the tools are for, for the agent's model to read.
const INSTRUCTIONS: &str = "groupd keeps a directory of groups (Kanboard's Group API): each group has a numeric id, a unique name of 1 to 100 characters (compared exactly, case-sensitive) and a free-text external_id. Use getAllGroups to list them sorted by name, getGroup to read one by id, createGroup to add one (it returns the new id), updateGroup to rename one or change its external_id, and removeGroup to delete one. Ids are never reused. A call that cannot be done (no such id, a name already taken, an invalid name) reports isError with a one-line reason; every successful change is durably stored before it is answered.";

/// The answer to `initialize`: MCP's when the params carry a `protocolVersion`, the LSP's
/// otherwise.
pub fn initialize(params: Params<'_>) -> Result<Vec<u8>, RpcError> {
    let version = match params {
        Params::Named(raw) => serde_json::from_str::<Value>(raw.get())
            .ok()
            .and_then(|mut p| p.get_mut("protocolVersion").map(Value::take)),
        Params::None | Params::Positional(_) => None,
    };
    let server_info = format!(
        "{{\"name\":\"groupd\",\"version\":\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    let Some(version) = version else {
        return Ok(format!("{{\"capabilities\":{{}},\"serverInfo\":{server_info}}}").into_bytes());
    };
    let Value::String(asked) = version else {
        return Err(RpcError::InvalidParams(
            "protocolVersion must be a string".into(),
        ));
    };
    let newest = MCP_VERSIONS[MCP_VERSIONS.len() - 1];
    let chosen = MCP_VERSIONS
        .into_iter()
        .find(|v| *v == asked)
        .unwrap_or(newest);
    let mut out = format!(
        "{{\"protocolVersion\":\"{chosen}\",\"capabilities\":{{\"tools\":{{\"listChanged\":false}}}},\"serverInfo\":{server_info},\"instructions\":"
    )
    .into_bytes();
    jsonrpc::write_str(&mut out, INSTRUCTIONS);
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::Json;

    fn answer(params: &str) -> Result<Value, RpcError> {
        let params = match params {
            "" => Params::None,
            p if p.starts_with('[') => Params::Positional(Json::parse(p).unwrap()),
            p => Params::Named(Json::parse(p).unwrap()),
        };
        initialize(params).map(|out| serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn an_lsp_initialize_gets_empty_capabilities() {
        for params in ["", "[]", r#"{"processId":1,"capabilities":{}}"#] {
            let got = answer(params).unwrap();
            assert_eq!(got["capabilities"], serde_json::json!({}), "{params}");
            assert_eq!(got["serverInfo"]["name"], "groupd");
            assert!(got.get("protocolVersion").is_none());
        }
    }

    #[test]
    fn an_mcp_initialize_gets_its_version_when_supported_else_the_newest() {
        for version in MCP_VERSIONS {
            let got = answer(&format!(r#"{{"protocolVersion":"{version}"}}"#)).unwrap();
            assert_eq!(got["protocolVersion"], version);
            assert_eq!(got["capabilities"]["tools"]["listChanged"], false);
            assert!(
                got["instructions"]
                    .as_str()
                    .unwrap()
                    .contains("getAllGroups")
            );
        }
        let got = answer(r#"{"protocolVersion":"2099-01-01"}"#).unwrap();
        assert_eq!(got["protocolVersion"], "2025-11-25");
        assert!(matches!(
            answer(r#"{"protocolVersion":5}"#),
            Err(RpcError::InvalidParams(_))
        ));
    }
}
