//! groupd serves Kanboard's Group API (createGroup, updateGroup, removeGroup, getGroup,
//! getAllGroups) as JSON-RPC 2.0, one JSON text per line, over TCP and stdin/stdout (and, for
//! Kanboard's own client libraries, over HTTP), and keeps its groups in an embedded redb
//! database. `../shared/SPEC.md` is the contract.
//!
//! The modules, in the order data flows through them:
//!
//! - [`codec`]: bytes → frames. One request line per frame; over-long lines are frames too, so a
//!   bad line never ends a connection.
//! - [`jsonrpc`]: frames → requests, and responses → bytes. The JSON-RPC 2.0 envelope, error
//!   codes and the exact wire shape; knows nothing of groups.
//! - [`lifecycle`]: the session protocols around the Group API: the language-server lifecycle
//!   (`initialize`, `shutdown`, `exit`) and MCP's (`initialize`, `ping`, `tools/…`).
//! - [`mcp`]: the Group API procedures as MCP tools: their schemas and their answers.
//! - [`dispatch`]: requests → procedure calls. The method table, parameter binding and typing,
//!   and the single mapping of storage failures to `-32603`.
//! - [`group`]: the Group API's vocabulary (groups, the writes and their outcomes) and the
//!   rules that need no storage (what a valid name is).
//! - [`storage`]: the seam every backend implements ([`storage::GroupStore`]), and the
//!   backends: [`storage::embedded`] (redb tables, the id counter, the writer thread that
//!   commits durably, the groups it keeps in memory for `getGroup` and for unique names) and
//!   [`storage::postgres`] (Kanboard's own table in PostgreSQL, shared by many groupd
//!   processes, with group commit, reconnection and no cache; SPEC §14).
//! - [`connection`]: one conversation (a socket or stdio): read, answer in order, flush.
//! - [`server`]: the listeners and the rules they share (connection slots, token, graceful
//!   shutdown): TCP, the optional HTTP/1.1 listener for Kanboard's clients (one POST body is
//!   one request frame for [`dispatch`]; it adds only Basic auth, the body limit and status
//!   codes), and the stdio session.
//! - [`auth`]: the token: loaded from its file, compared in constant time, never printed.
//! - [`limits`]: every limit as a named constant, and the [`limits::Limits`] in force.
//! - [`backup`]: `groupd check`, `groupd dump` and `groupd restore`: the database's health, a
//!   JSON Lines copy of it (offline, or from a running server), and a new database from one.
//! - [`client`]: `groupd call`, the other end: one call from a shell script, over TCP or
//!   in-process on a database, its answer told by the exit status.

pub mod auth;
pub mod backup;
pub mod client;
pub mod codec;
pub mod connection;
pub mod discover;
pub mod dispatch;
pub mod group;
pub mod jsonrpc;
pub mod lifecycle;
pub mod limits;
pub mod mcp;
pub mod methods;
pub mod server;
pub mod session;
pub mod storage;
