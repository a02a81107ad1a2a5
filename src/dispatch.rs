//! The method table: which procedures exist, what parameters they take, and how a request
//! becomes a procedure call and its answer.
//!
//! [`METHODS`] is the one definition of the API surface: binding parameters (SPEC §3) reads it,
//! and so does anything that describes the API. Storage failures become `-32603` here, once,
//! after their details are logged.

use serde_json::value::RawValue;

use crate::group::{self, Group};
use crate::jsonrpc::{self, Message, Params, Request, RpcError};
use crate::limits::Limits;
use crate::storage::{Store, StoreError, WriteOp, WriteOutcome};

/// The type a parameter must have on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A JSON integer or a string of decimal digits.
    GroupId,
    /// A JSON string.
    Text,
}

#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
}

/// The procedures, by what they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedure {
    CreateGroup,
    UpdateGroup,
    RemoveGroup,
    GetGroup,
    GetAllGroups,
}

#[derive(Debug)]
pub struct Method {
    pub name: &'static str,
    pub procedure: Procedure,
    /// In positional order.
    pub params: &'static [Param],
}

/// The most parameters any method takes.
const MAX_PARAMS: usize = 3;

const GROUP_ID: Param = Param {
    name: "group_id",
    ty: ParamType::GroupId,
    required: true,
};
const NAME: Param = Param {
    name: "name",
    ty: ParamType::Text,
    required: true,
};
const OPTIONAL_NAME: Param = Param {
    name: "name",
    ty: ParamType::Text,
    required: false,
};
const EXTERNAL_ID: Param = Param {
    name: "external_id",
    ty: ParamType::Text,
    required: false,
};

/// Every method the server answers (SPEC §3, §4). Names are case-sensitive.
pub const METHODS: &[Method] = &[
    Method {
        name: "createGroup",
        procedure: Procedure::CreateGroup,
        params: &[NAME, EXTERNAL_ID],
    },
    Method {
        name: "updateGroup",
        procedure: Procedure::UpdateGroup,
        params: &[GROUP_ID, OPTIONAL_NAME, EXTERNAL_ID],
    },
    Method {
        name: "removeGroup",
        procedure: Procedure::RemoveGroup,
        params: &[GROUP_ID],
    },
    Method {
        name: "getGroup",
        procedure: Procedure::GetGroup,
        params: &[GROUP_ID],
    },
    Method {
        name: "getAllGroups",
        procedure: Procedure::GetAllGroups,
        params: &[],
    },
];

/// A procedure's answer, before it is written as JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Id(u64),
    Bool(bool),
    Group(Group),
    Groups(Vec<Group>),
}

/// A request bound to typed arguments and ready to run.
#[derive(Debug)]
enum Call {
    /// Decided without storage: the arguments cannot succeed (`false`).
    Refuse,
    Get(u64),
    GetAll,
    Write(WriteOp),
}

/// Answers request lines: the protocol's entry point for every transport.
pub struct Service {
    store: Store,
    limits: Limits,
}

impl Service {
    pub fn new(store: Store, limits: Limits) -> Self {
        Service { store, limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs one request line and appends its answer line (with `\n`), if it has one, to `out`.
    pub async fn handle_line(&self, line: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        match jsonrpc::parse_line(line, self.limits.max_batch) {
            Message::Rejected(err) => jsonrpc::write_error(out, None, &err),
            Message::Single(request) => self.answer(request, out).await,
            Message::Batch(entries) => {
                out.push(b'[');
                let mut answered = false;
                for entry in entries {
                    let mark = out.len();
                    if answered {
                        out.push(b',');
                    }
                    let body = out.len();
                    self.answer(entry, out).await;
                    if out.len() == body {
                        out.truncate(mark);
                    } else {
                        answered = true;
                    }
                }
                if answered {
                    out.push(b']');
                } else {
                    out.truncate(start);
                }
            }
        }
        if out.len() > start {
            out.push(b'\n');
        }
    }

    /// Appends the response to one request (nothing for a notification).
    async fn answer(&self, request: Result<Request<'_>, RpcError>, out: &mut Vec<u8>) {
        let request = match request {
            Ok(r) => r,
            Err(err) => return jsonrpc::write_error(out, None, &err),
        };
        let outcome = self.call(&request).await;
        let Some(id) = request.id else { return };
        match outcome {
            Ok(outcome) => jsonrpc::write_result(out, id, |out| write_outcome(out, &outcome)),
            Err(err) => jsonrpc::write_error(out, Some(id), &err),
        }
    }

    /// Runs one request's procedure.
    pub async fn call(&self, request: &Request<'_>) -> Result<Outcome, RpcError> {
        let method = METHODS
            .iter()
            .find(|m| m.name == request.method)
            .ok_or(RpcError::MethodNotFound)?;
        let args = bind(method, request.params)?;
        match prepare(method.procedure, &args)? {
            Call::Refuse => Ok(Outcome::Bool(false)),
            Call::Get(id) => Ok(self
                .store
                .get(id)
                .map_err(internal)?
                .map_or(Outcome::Bool(false), Outcome::Group)),
            Call::GetAll => Ok(Outcome::Groups(self.store.all().map_err(internal)?)),
            Call::Write(op) => {
                let outcomes = self.store.write(vec![op]).await.map_err(internal)?;
                Ok(match outcomes.first() {
                    Some(WriteOutcome::Created(id)) => Outcome::Id(*id),
                    Some(WriteOutcome::Applied) => Outcome::Bool(true),
                    Some(WriteOutcome::Refused) | None => Outcome::Bool(false),
                })
            }
        }
    }
}

/// The one place a storage failure becomes a wire error: the details are logged, not sent.
fn internal(err: StoreError) -> RpcError {
    tracing::error!(error = %err, "request failed in storage");
    RpcError::Internal
}

type Args<'a> = [Option<&'a RawValue>; MAX_PARAMS];

/// Places positional or named params into the method's parameter slots (SPEC §3).
fn bind<'a>(method: &Method, params: Params<'a>) -> Result<Args<'a>, RpcError> {
    let mut args: Args<'a> = [None; MAX_PARAMS];
    match params {
        Params::None => {}
        Params::Positional(raw) => {
            let values = jsonrpc::positional(raw)?;
            if values.len() > method.params.len() {
                return Err(RpcError::InvalidParams("Too many arguments".into()));
            }
            for (slot, value) in args.iter_mut().zip(values) {
                *slot = Some(value);
            }
        }
        Params::Named(raw) => {
            for (key, value) in jsonrpc::named(raw)? {
                let Some(i) = method.params.iter().position(|p| p.name == key) else {
                    return Err(RpcError::InvalidParams(format!("Unknown argument: {key}")));
                };
                args[i] = Some(value);
            }
        }
    }
    if let Some(missing) = method
        .params
        .iter()
        .zip(&args)
        .find(|(p, a)| p.required && a.is_none())
    {
        return Err(RpcError::InvalidParams(format!(
            "Missing argument: {}",
            missing.0.name
        )));
    }
    Ok(args)
}

/// Turns bound arguments into a call, applying the type rules of SPEC §3 and the validation
/// rules of SPEC §4.
fn prepare(procedure: Procedure, args: &Args<'_>) -> Result<Call, RpcError> {
    Ok(match procedure {
        Procedure::CreateGroup => {
            let name = text(args[0], "name")?.ok_or_else(|| must_be_string("name"))?;
            let external_id = text(args[1], "external_id")?.unwrap_or_default();
            if !group::name_is_valid(&name) || !group::external_id_is_valid(&external_id) {
                Call::Refuse
            } else {
                Call::Write(WriteOp::Create { name, external_id })
            }
        }
        Procedure::UpdateGroup => {
            let id = group_id(args[0])?;
            let name = text(args[1], "name")?;
            let external_id = text(args[2], "external_id")?;
            let name_ok = name.as_deref().is_none_or(group::name_is_valid);
            let external_id_ok = external_id
                .as_deref()
                .is_none_or(group::external_id_is_valid);
            if id == 0 || !name_ok || !external_id_ok {
                Call::Refuse
            } else {
                Call::Write(WriteOp::Update {
                    id,
                    name,
                    external_id,
                })
            }
        }
        Procedure::RemoveGroup => match group_id(args[0])? {
            0 => Call::Refuse,
            id => Call::Write(WriteOp::Remove { id }),
        },
        Procedure::GetGroup => match group_id(args[0])? {
            0 => Call::Refuse,
            id => Call::Get(id),
        },
        Procedure::GetAllGroups => Call::GetAll,
    })
}

fn must_be_string(name: &str) -> RpcError {
    RpcError::InvalidParams(format!("{name} must be a string"))
}

/// A string parameter: `None` when absent or `null`.
fn text(raw: Option<&RawValue>, name: &str) -> Result<Option<String>, RpcError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => jsonrpc::decode_str(raw)
            .map(|s| Some(s.into_owned()))
            .ok_or_else(|| must_be_string(name)),
    }
}

/// A `group_id`: a JSON integer or a string of decimal digits. An integer that cannot name a
/// group (zero, negative, beyond `u64`) becomes 0, which no group has.
fn group_id(raw: Option<&RawValue>) -> Result<u64, RpcError> {
    let not_integer = || RpcError::InvalidParams("group_id must be an integer".into());
    let raw = raw.ok_or_else(not_integer)?;
    let digits = match jsonrpc::decode_str(raw) {
        Some(s) => s.into_owned(),
        None => {
            let text = raw.get();
            if let Some(magnitude) = text.strip_prefix('-') {
                return if is_digits(magnitude) {
                    Ok(0)
                } else {
                    Err(not_integer())
                };
            }
            text.to_owned()
        }
    };
    if !is_digits(&digits) {
        return Err(not_integer());
    }
    Ok(digits.parse::<u64>().unwrap_or(0))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn write_outcome(out: &mut Vec<u8>, outcome: &Outcome) {
    match outcome {
        Outcome::Id(id) => out.extend_from_slice(id.to_string().as_bytes()),
        Outcome::Bool(true) => out.extend_from_slice(b"true"),
        Outcome::Bool(false) => out.extend_from_slice(b"false"),
        Outcome::Group(group) => write_group(out, group),
        Outcome::Groups(groups) => {
            out.push(b'[');
            for (i, group) in groups.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_group(out, group);
            }
            out.push(b']');
        }
    }
}

/// `{"id":"<decimal>","external_id":…,"name":…}`: the id as a string, as Kanboard documents it.
fn write_group(out: &mut Vec<u8>, group: &Group) {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(group.id.to_string().as_bytes());
    out.extend_from_slice(b"\",\"external_id\":");
    jsonrpc::write_str(out, &group.external_id);
    out.extend_from_slice(b",\"name\":");
    jsonrpc::write_str(out, &group.name);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_fits_the_argument_slots() {
        assert!(METHODS.iter().all(|m| m.params.len() <= MAX_PARAMS));
    }

    #[test]
    fn group_id_accepts_integers_and_digit_strings() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        assert_eq!(group_id(Some(&raw("7"))), Ok(7));
        assert_eq!(group_id(Some(&raw("\"7\""))), Ok(7));
        assert_eq!(group_id(Some(&raw("-1"))), Ok(0));
        assert_eq!(group_id(Some(&raw("99999999999999999999999"))), Ok(0));
        for bad in [
            "1.5", "\"abc\"", "true", "[1]", "null", "\"\"", "1e3", "\"-1\"",
        ] {
            assert!(group_id(Some(&raw(bad))).is_err(), "{bad}");
        }
    }
}
