//! groupd serves Kanboard's Group API (createGroup, updateGroup, removeGroup, getGroup,
//! getAllGroups) as JSON-RPC 2.0, one JSON text per line, over TCP and stdin/stdout, and keeps
//! its groups in an embedded redb database. `../shared/SPEC.md` is the contract.
//!
//! The modules, in the order data flows through them:
//!
//! - [`codec`]: bytes → frames. One request line per frame; over-long lines are frames too, so a
//!   bad line never ends a connection.
//! - [`jsonrpc`]: frames → requests, and responses → bytes. The JSON-RPC 2.0 envelope, error
//!   codes and the exact wire shape; knows nothing of groups.
//! - [`dispatch`]: requests → procedure calls. The method table, parameter binding and typing,
//!   and the single mapping of storage failures to `-32603`.
//! - [`group`]: the Group API's rules that need no storage (what a valid name is).
//! - [`storage`]: redb tables, the id counter, and the writer thread that commits durably.
//! - [`connection`]: one conversation (a socket or stdio): read, answer in order, flush.
//! - [`server`]: the TCP listener and its limits, the stdio session, graceful shutdown.
//! - [`limits`]: every limit as a named constant, and the [`limits::Limits`] in force.

pub mod codec;
pub mod connection;
pub mod dispatch;
pub mod group;
pub mod jsonrpc;
pub mod limits;
pub mod server;
pub mod storage;
