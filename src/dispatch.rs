//! Requests in, answers out: binds parameters against the method table (SPEC §3), applies the
//! Group API rules (SPEC §4), runs reads and hands writes to storage in commit-sized groups, and
//! writes the answers in request order.
//!
//! Storage failures become `-32603` here, once, after their details are logged.

use bytes::Bytes;

use crate::codec::Frame;
use crate::discover;
use crate::group::{self, GroupRef, Refusal, WriteOp, WriteOutcome};
use crate::jsonrpc::{self, Json, Message, Params, Request, RpcError};
use crate::lifecycle::{self, Message as Lifecycle};
use crate::limits::Limits;
use crate::mcp::{self, ToolCall};
use crate::methods::{self, MAX_PARAMS, Method, Procedure};
use crate::session::{Ending, Session};
use crate::storage::{Backend, GroupStore, StateInfo, StoreError, Visitor};

/// A procedure's answer, before it is written as JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Id(u64),
    Bool(bool),
    /// The procedure reported failure: `false` on the wire.
    Refused(Refusal),
    /// A read's result, already rendered as JSON straight from storage.
    Json(Vec<u8>),
    /// A `getGroup` result rendered into the round's buffer (`Gets::text`), at these offsets:
    /// one allocation for all the gets of a round instead of one each.
    Rendered {
        start: usize,
        end: usize,
    },
    /// Ready-made JSON.
    Document(&'static str),
}

/// A request bound to typed arguments and ready to run.
#[derive(Debug, PartialEq, Eq)]
enum Call {
    /// Decided without storage: the arguments cannot succeed (`false`).
    Refuse(Refusal),
    Get(u64),
    GetAll,
    Write(WriteOp),
    Authenticate(String),
    Discover,
    /// [`methods::DUMP_METHOD`].
    Dump,
}

/// Answers request lines: the protocol's entry point for every transport.
pub struct Service {
    store: Backend,
    limits: Limits,
}

/// Where a request's answer goes.
#[derive(Debug, Clone, Copy)]
enum ReplyTo<'a> {
    Id(Json<'a>),
    /// An envelope error: answered with `"id":null`.
    Null,
    /// A notification: run, never answered.
    Nobody,
}

/// How far one request has got.
#[derive(Debug)]
enum State {
    Done(Result<Outcome, RpcError>),
    Read(Call),
    Write(WriteOp),
}

#[derive(Debug)]
struct Step<'a> {
    reply_to: ReplyTo<'a>,
    state: State,
    /// Set for MCP's `tools/call`: the answer is wrapped as a tool result (SPEC §12).
    tool: Option<Box<ToolCall>>,
}

impl<'a> Step<'a> {
    fn new(reply_to: ReplyTo<'a>, state: State) -> Self {
        Step {
            reply_to,
            state,
            tool: None,
        }
    }

    fn done(reply_to: ReplyTo<'a>, outcome: Result<Outcome, RpcError>) -> Self {
        Step::new(reply_to, State::Done(outcome))
    }
}

/// One line's requests: a single request (or a line-level error), or a batch.
#[derive(Debug)]
struct Planned<'a> {
    batch: bool,
    steps: Vec<Step<'a>>,
}

/// `getGroup` calls with no write queued before them, gathered to run together: their lookups
/// then overlap (see [`Store::view_each`]).
#[derive(Default)]
struct Gets {
    /// (line, step) of each call.
    places: Vec<(usize, usize)>,
    ids: Vec<u64>,
    /// Their rendered results, for [`Outcome::Rendered`]; kept until the answers are written.
    text: Vec<u8>,
}

impl Gets {
    /// Calls gathered before their answers are written; about one pipelined client's worth.
    const ROUND: usize = 16;

    fn push(&mut self, line: usize, step: usize, id: u64) {
        self.places.push((line, step));
        self.ids.push(id);
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn is_full(&self) -> bool {
        self.ids.len() >= Self::ROUND
    }
}

/// Once this many answer bytes are waiting, [`Service::handle_frames`] returns at the next line
/// boundary, so pipelined reads of large results do not pile up in memory.
const ANSWER_BYTES_SOFT_LIMIT: usize = 256 * 1024;

impl Service {
    pub fn new(store: impl Into<Backend>, limits: Limits) -> Self {
        Service {
            store: store.into(),
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store(&self) -> &Backend {
        &self.store
    }

    /// Runs one request line of a trusted conversation (stdio, or HTTP after its own
    /// authentication) and appends its answer line (with `\n`), if it has one, to `out`.
    pub async fn handle_line(&self, line: &[u8], out: &mut Vec<u8>) {
        let frame = [Frame::Line(Bytes::copy_from_slice(line))];
        self.handle_frames(&mut Session::trusted(), &frame, out)
            .await;
    }

    /// Runs the requests of `frames` in order and appends their answer lines to `out`. Returns
    /// how many frames it consumed (at least one, unless `frames` is empty): it may stop early,
    /// at a line boundary, once enough answer bytes are waiting.
    ///
    /// Consecutive writes, within a batch and across lines, go to storage as one job, so they
    /// share one durable commit; a read waits for the writes before it, so it sees them.
    /// Stops, too, after a line that ends the session (see [`Session::ending`]).
    pub async fn handle_frames(
        &self,
        session: &mut Session,
        frames: &[Frame],
        out: &mut Vec<u8>,
    ) -> usize {
        let mut lines: Vec<Planned> = Vec::with_capacity(frames.len());
        let (mut queued, mut ops) = (Vec::new(), Vec::new());
        let mut gets = Gets::default();
        let mut answered = 0;
        for (line, frame) in frames.iter().enumerate() {
            lines.push(self.plan(session, frame));
            let mut large = false;
            for step in 0..lines[line].steps.len() {
                let state = &mut lines[line].steps[step].state;
                match std::mem::replace(state, State::Done(Err(RpcError::Internal))) {
                    State::Write(op) => {
                        ops.push(op);
                        queued.push((line, step));
                    }
                    State::Read(Call::Get(id)) if ops.is_empty() => gets.push(line, step, id),
                    State::Read(Call::Dump) => {
                        self.run_gets(&mut lines, &mut gets).await;
                        self.commit(&mut lines, &mut queued, &mut ops).await;
                        lines[line].steps[step].state = State::Done(self.dump().await);
                        large = true;
                    }
                    State::Read(call) => {
                        let outcome = match self.read_ahead(&call, &ops).await {
                            Some(outcome) => outcome,
                            None => {
                                self.run_gets(&mut lines, &mut gets).await;
                                self.commit(&mut lines, &mut queued, &mut ops).await;
                                self.read(&call).await
                            }
                        };
                        large |= call == Call::GetAll;
                        lines[line].steps[step].state = State::Done(outcome);
                    }
                    done @ State::Done(_) => *state = done,
                }
            }
            let ending = session.ending().is_some();
            if queued.is_empty() && (gets.is_empty() || gets.is_full() || large || ending) {
                self.run_gets(&mut lines, &mut gets).await;
                lines[answered..]
                    .iter()
                    .for_each(|l| write_line(out, l, &gets.text));
                answered = line + 1;
                if out.len() >= ANSWER_BYTES_SOFT_LIMIT || ending {
                    return answered;
                }
            }
            if ending {
                break;
            }
        }
        self.run_gets(&mut lines, &mut gets).await;
        self.commit(&mut lines, &mut queued, &mut ops).await;
        lines[answered..]
            .iter()
            .for_each(|l| write_line(out, l, &gets.text));
        lines.len()
    }

    /// Runs the gathered `getGroup` calls together (see [`GroupStore::get_each`]).
    async fn run_gets(&self, lines: &mut [Planned<'_>], gets: &mut Gets) {
        if gets.is_empty() {
            return;
        }
        let Gets { places, ids, text } = gets;
        let shown = self.store.get_each(ids, |i, group| {
            let (line, step) = places[i];
            let outcome = group.map_or(Outcome::Refused(Refusal::NoSuchGroup), |group| {
                let start = text.len();
                write_group(text, group);
                Outcome::Rendered {
                    start,
                    end: text.len(),
                }
            });
            lines[line].steps[step].state = State::Done(Ok(outcome));
        });
        if let Err(err) = shown.await {
            // The calls not shown keep their placeholder answer, -32603.
            internal(err);
        }
        gets.places.clear();
        gets.ids.clear();
    }

    /// Turns one frame into its requests, each either answered already or ready to run.
    fn plan<'a>(&self, session: &mut Session, frame: &'a Frame) -> Planned<'a> {
        let rejected = |err| Planned {
            batch: false,
            steps: vec![Step::done(ReplyTo::Null, Err(err))],
        };
        let first_bytes = match frame {
            Frame::Line(line) => line,
            Frame::Oversized { head } => head,
            Frame::Unframeable(_) => &Bytes::new(),
        };
        if session.rejects_first_line(first_bytes) {
            return Planned {
                batch: false,
                steps: Vec::new(),
            };
        }
        let line = match frame {
            Frame::Line(line) => line,
            Frame::Oversized { .. } => {
                let limit = self.limits.max_line_bytes;
                return rejected(RpcError::InvalidRequest(Some(format!(
                    "request line exceeds the limit of {limit} bytes"
                ))));
            }
            Frame::Unframeable(why) => {
                return rejected(RpcError::InvalidRequest(Some((*why).to_string())));
            }
        };
        let mut plan = |request| plan_request(session, request);
        match jsonrpc::parse_line(line, self.limits.max_batch) {
            Message::Rejected(err) => rejected(err),
            Message::Single(request) => Planned {
                batch: false,
                steps: vec![plan(request)],
            },
            Message::Batch(entries) => Planned {
                batch: true,
                steps: entries.into_iter().map(&mut plan).collect(),
            },
        }
    }

    /// Runs a read before the writes queued ahead of it are committed, when that cannot change
    /// its answer: a `getGroup` of a group those writes do not touch. (A queued create makes a
    /// group that does not exist yet, so it can only change a `false`.) The answer still goes
    /// out after the writes' answers, and it reflects every write acknowledged before it.
    /// `None`: the read must wait for the commit.
    async fn read_ahead(
        &self,
        call: &Call,
        queued: &[WriteOp],
    ) -> Option<Result<Outcome, RpcError>> {
        if queued.is_empty() {
            return Some(self.read(call).await);
        }
        let Call::Get(wanted) = *call else {
            return None;
        };
        let touches = |op: &WriteOp| match op {
            WriteOp::Update { id, .. } | WriteOp::Remove { id } => *id == wanted,
            WriteOp::Create { .. } => false,
        };
        if queued.iter().any(touches) {
            return None;
        }
        let creates = queued.iter().any(|op| matches!(op, WriteOp::Create { .. }));
        match self.read(call).await {
            Ok(Outcome::Refused(_)) if creates => None,
            outcome => Some(outcome),
        }
    }

    async fn read(&self, call: &Call) -> Result<Outcome, RpcError> {
        match *call {
            Call::Get(id) => {
                let mut found = None;
                self.store
                    .get_each(&[id], |_, group| {
                        found = group.map(|group| render(|out| write_group(out, group)));
                    })
                    .await
                    .map_err(internal)?;
                Ok(found.map_or(Outcome::Refused(Refusal::NoSuchGroup), Outcome::Json))
            }
            Call::GetAll => {
                let all = self.store.visit_all(Rendered::new(b"[")).await;
                Ok(Outcome::Json(all.map_err(internal)?.finish(b"]")))
            }
            Call::Refuse(refusal) => Ok(Outcome::Refused(refusal)),
            Call::Write(_) | Call::Authenticate(_) | Call::Discover | Call::Dump => {
                Err(RpcError::Internal)
            }
        }
    }

    /// [`methods::DUMP_METHOD`]: one committed state, rendered away from the runtime's workers
    /// (a million groups are ~60 MB of JSON), which go on serving other connections.
    async fn dump(&self) -> Result<Outcome, RpcError> {
        let dump = self.store.visit_dump(Rendered::new(b"")).await;
        Ok(Outcome::Json(dump.map_err(internal)?.finish(b"]}")))
    }

    /// Sends the queued writes to storage as one job and records each one's outcome.
    async fn commit(
        &self,
        lines: &mut [Planned<'_>],
        queued: &mut Vec<(usize, usize)>,
        ops: &mut Vec<WriteOp>,
    ) {
        if ops.is_empty() {
            return;
        }
        let result = self
            .store
            .write(std::mem::take(ops))
            .await
            .map_err(internal);
        for (i, (line, step)) in queued.drain(..).enumerate() {
            let outcome = match &result {
                Ok(outcomes) => Ok(match outcomes.get(i) {
                    Some(WriteOutcome::Created(id)) => Outcome::Id(*id),
                    Some(WriteOutcome::Applied) => Outcome::Bool(true),
                    Some(WriteOutcome::Refused(refusal)) => Outcome::Refused(*refusal),
                    None => Outcome::Refused(Refusal::NoSuchGroup),
                }),
                Err(err) => Err(err.clone()),
            };
            lines[line].steps[step].state = State::Done(outcome);
        }
    }
}

/// Binds and types one request's parameters, passing it through the session's gate; what is
/// left to do needs storage.
fn plan_request<'a>(session: &mut Session, request: Result<Request<'a>, RpcError>) -> Step<'a> {
    let request = match request {
        Ok(r) => r,
        Err(err) => return Step::done(ReplyTo::Null, Err(err)),
    };
    let reply_to = request.id.map_or(ReplyTo::Nobody, ReplyTo::Id);
    if matches!(session.ending(), Some(Ending::Exit { .. })) {
        // After `exit` in a batch: nothing more runs or is answered.
        return Step::done(ReplyTo::Nobody, Err(RpcError::ShuttingDown));
    }
    let method = methods::find(&request.method);
    let message = method.map_or_else(|| lifecycle::recognise(&request.method), |_| None);
    if session.is_shut_down() && message != Some(Lifecycle::Exit) {
        // Refused, and a notification dropped unrun (SPEC §11).
        return Step::done(reply_to, Err(RpcError::ShuttingDown));
    }
    let key = method.is_some_and(|m| m.procedure == Procedure::Authenticate)
        || message == Some(Lifecycle::Exit);
    if (!session.unlocked() && !key) || session.ending().is_some() {
        // Locked out: answered -32001 and not run (a notification is dropped unanswered).
        return Step::done(reply_to, Err(RpcError::Unauthorized));
    }
    let Some(method) = method else {
        return match message {
            Some(message) => plan_lifecycle(session, message, request.params, reply_to),
            None if request.method == methods::DUMP_METHOD => {
                Step::new(reply_to, state_of(session, Ok(Call::Dump)))
            }
            None => Step::done(reply_to, Err(RpcError::MethodNotFound)),
        };
    };
    let call = bind(method, request.params).and_then(|args| prepare(method.procedure, &args));
    Step::new(reply_to, state_of(session, call))
}

/// What a bound call leaves to do: nothing (answered already), a read, or a write.
fn state_of(session: &mut Session, call: Result<Call, RpcError>) -> State {
    match call {
        Ok(Call::Refuse(refusal)) => State::Done(Ok(Outcome::Refused(refusal))),
        Ok(Call::Write(op)) => State::Write(op),
        Ok(Call::Authenticate(token)) if session.authenticate(&token) => {
            State::Done(Ok(Outcome::Bool(true)))
        }
        Ok(Call::Authenticate(_)) => State::Done(Err(RpcError::Unauthorized)),
        Ok(Call::Discover) => State::Done(Ok(Outcome::Document(discover::document()))),
        Ok(read) => State::Read(read),
        Err(err) => State::Done(Err(err)),
    }
}

/// The session protocols' messages (SPEC §11, §12).
fn plan_lifecycle<'a>(
    session: &mut Session,
    message: Lifecycle,
    params: Params<'a>,
    reply_to: ReplyTo<'a>,
) -> Step<'a> {
    let outcome = match message {
        Lifecycle::Initialize => lifecycle::initialize(params).map(Outcome::Json),
        Lifecycle::Shutdown => {
            session.shut_down();
            Ok(Outcome::Document("null"))
        }
        Lifecycle::Exit => {
            session.exit();
            return Step::done(ReplyTo::Nobody, Ok(Outcome::Bool(true)));
        }
        Lifecycle::Ping => Ok(Outcome::Document("{}")),
        Lifecycle::ToolsList => Ok(Outcome::Document(mcp::tools_list())),
        Lifecycle::ToolsCall => return plan_tool_call(session, params, reply_to),
    };
    Step::done(reply_to, outcome)
}

/// MCP's `tools/call`: the named procedure, bound and run like any other call, its answer
/// wrapped as a tool result.
fn plan_tool_call<'a>(
    session: &mut Session,
    params: Params<'a>,
    reply_to: ReplyTo<'a>,
) -> Step<'a> {
    let (method, arguments) = match mcp::parse_call(params) {
        Ok(call) => call,
        Err(err) => return Step::done(reply_to, Err(err)),
    };
    let mut tool = ToolCall::default();
    let call = arguments.and_then(|a| bind(method, a)).and_then(|args| {
        for (param, arg) in method.params.iter().zip(&args) {
            let text = arg.map(|raw| jsonrpc::decode_str(raw).map_or(raw.get().into(), Into::into));
            match param.name {
                "group_id" => tool.group_id = text,
                "name" => tool.name = text,
                _ => {}
            }
        }
        prepare(method.procedure, &args)
    });
    Step {
        reply_to,
        state: state_of(session, call),
        tool: Some(Box::new(tool)),
    }
}

/// Appends one line's answer line, if it has one. `rendered` holds [`Outcome::Rendered`] text.
fn write_line(out: &mut Vec<u8>, line: &Planned<'_>, rendered: &[u8]) {
    let start = out.len();
    if line.batch {
        out.push(b'[');
    }
    for step in &line.steps {
        let mark = out.len();
        if line.batch && mark > start + 1 {
            out.push(b',');
        }
        if !write_step(out, step, rendered) {
            out.truncate(mark);
        }
    }
    if line.batch {
        if out.len() == start + 1 {
            out.truncate(start);
        } else {
            out.push(b']');
        }
    }
    if out.len() > start {
        out.push(b'\n');
    }
}

/// Appends one request's answer; false for a notification.
fn write_step(out: &mut Vec<u8>, step: &Step<'_>, rendered: &[u8]) -> bool {
    let State::Done(outcome) = &step.state else {
        return false;
    };
    let id = match step.reply_to {
        ReplyTo::Nobody => return false,
        ReplyTo::Null => None,
        ReplyTo::Id(id) => Some(id),
    };
    match (outcome, id, &step.tool) {
        (Ok(outcome), Some(id), None) => {
            jsonrpc::write_result(out, id, |out| write_outcome(out, outcome, rendered))
        }
        (Ok(outcome), Some(id), Some(tool)) => jsonrpc::write_result(out, id, |out| {
            write_tool_outcome(out, tool, outcome, rendered)
        }),
        (Ok(_), None, _) => return false,
        (Err(RpcError::InvalidParams(why)), Some(id), Some(_)) => {
            jsonrpc::write_result(out, id, |out| ToolCall::write_failure(out, why))
        }
        (Err(RpcError::Internal), Some(id), Some(_)) => jsonrpc::write_result(out, id, |out| {
            ToolCall::write_failure(out, "Internal error: the call failed in storage")
        }),
        (Err(err), id, _) => jsonrpc::write_error(out, id, err),
    }
    true
}

/// A tool call's answer (SPEC §12): the procedure's result with its text, or why it failed.
fn write_tool_outcome(out: &mut Vec<u8>, tool: &ToolCall, outcome: &Outcome, rendered: &[u8]) {
    if let Outcome::Refused(refusal) = outcome {
        return tool.write_refusal(out, *refusal);
    }
    let mut result = Vec::new();
    write_outcome(&mut result, outcome, rendered);
    ToolCall::write_success(out, &result);
}

/// The one place a storage failure becomes a wire error: the details are logged, not sent.
fn internal(err: StoreError) -> RpcError {
    tracing::error!(error = %err, "request failed in storage");
    RpcError::Internal
}

type Args<'a> = [Option<Json<'a>>; MAX_PARAMS];

/// Places positional or named params into the method's parameter slots (SPEC §3).
fn bind<'a>(method: &Method, params: Params<'a>) -> Result<Args<'a>, RpcError> {
    let mut args: Args<'a> = [None; MAX_PARAMS];
    match params {
        Params::None => {}
        Params::Positional(raw) => {
            if jsonrpc::positional(raw, &mut args)? > method.params.len() {
                return Err(RpcError::InvalidParams("Too many arguments".into()));
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
            if !group::name_is_valid(&name) {
                Call::Refuse(Refusal::InvalidName)
            } else if !group::external_id_is_valid(&external_id) {
                Call::Refuse(Refusal::InvalidExternalId)
            } else {
                Call::Write(WriteOp::Create { name, external_id })
            }
        }
        Procedure::UpdateGroup => {
            let id = group_id(args[0])?;
            let name = text(args[1], "name")?;
            let external_id = text(args[2], "external_id")?;
            // The new name is checked by storage, against the current one (group::rename_is_valid).
            let external_id_ok = external_id
                .as_deref()
                .is_none_or(group::external_id_is_valid);
            if id == 0 {
                Call::Refuse(Refusal::NoSuchGroup)
            } else if !external_id_ok {
                Call::Refuse(Refusal::InvalidExternalId)
            } else {
                Call::Write(WriteOp::Update {
                    id,
                    name,
                    external_id,
                })
            }
        }
        Procedure::RemoveGroup => match group_id(args[0])? {
            0 => Call::Refuse(Refusal::NoSuchGroup),
            id => Call::Write(WriteOp::Remove { id }),
        },
        Procedure::GetGroup => match group_id(args[0])? {
            0 => Call::Refuse(Refusal::NoSuchGroup),
            id => Call::Get(id),
        },
        Procedure::GetAllGroups => Call::GetAll,
        Procedure::Authenticate => {
            Call::Authenticate(text(args[0], "token")?.ok_or_else(|| must_be_string("token"))?)
        }
        Procedure::Discover => Call::Discover,
    })
}

fn must_be_string(name: &str) -> RpcError {
    RpcError::InvalidParams(format!("{name} must be a string"))
}

/// A string parameter: `None` when absent or `null`.
fn text(raw: Option<Json<'_>>, name: &str) -> Result<Option<String>, RpcError> {
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
fn group_id(raw: Option<Json<'_>>) -> Result<u64, RpcError> {
    let not_integer = || RpcError::InvalidParams("group_id must be an integer".into());
    let raw = raw.ok_or_else(not_integer)?;
    let digits = match jsonrpc::decode_str(raw) {
        Some(s) => s,
        None => {
            let text = raw.get();
            if let Some(magnitude) = text.strip_prefix('-') {
                return if is_digits(magnitude) {
                    Ok(0)
                } else {
                    Err(not_integer())
                };
            }
            std::borrow::Cow::Borrowed(text)
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

fn write_outcome(out: &mut Vec<u8>, outcome: &Outcome, rendered: &[u8]) {
    match outcome {
        Outcome::Id(id) => write_u64(out, *id),
        Outcome::Bool(true) => out.extend_from_slice(b"true"),
        Outcome::Bool(false) | Outcome::Refused(_) => out.extend_from_slice(b"false"),
        Outcome::Json(json) => out.extend_from_slice(json),
        Outcome::Rendered { start, end } => {
            out.extend_from_slice(rendered.get(*start..*end).unwrap_or_default());
        }
        Outcome::Document(json) => out.extend_from_slice(json.as_bytes()),
    }
}

/// Appends `n` in decimal without allocating.
fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Groups rendered as a JSON array's items, by a [`Visitor`]: `getAllGroups`' result, or a
/// dump's (which [`Visitor::begin`] heads with the dump's header).
struct Rendered {
    out: Vec<u8>,
    /// Where the first group goes: no comma before it.
    first: usize,
}

impl Rendered {
    fn new(head: &[u8]) -> Self {
        Rendered {
            out: head.to_vec(),
            first: head.len(),
        }
    }

    fn finish(mut self, tail: &[u8]) -> Vec<u8> {
        self.out.extend_from_slice(tail);
        self.out
    }
}

impl Visitor for Rendered {
    fn begin(&mut self, state: StateInfo) {
        self.out = format!(
            "{{\"format\":\"{}\",\"version\":{},\"next_id\":{},\"groups\":[",
            methods::DUMP_FORMAT,
            methods::DUMP_VERSION,
            state.next_id
        )
        .into_bytes();
        self.out.reserve(
            usize::try_from(state.groups)
                .unwrap_or(0)
                .saturating_mul(64),
        );
        self.first = self.out.len();
    }

    fn group(&mut self, group: GroupRef<'_>) {
        if self.out.len() > self.first {
            self.out.push(b',');
        }
        write_group(&mut self.out, group);
    }
}

fn render(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    write(&mut out);
    out
}

/// `{"id":"<decimal>","external_id":…,"name":…}`: the id as a string, as Kanboard documents it.
/// Dumps (`groupd dump`) write their group lines with it too.
pub fn write_group(out: &mut Vec<u8>, group: GroupRef<'_>) {
    out.extend_from_slice(b"{\"id\":\"");
    write_u64(out, group.id);
    out.extend_from_slice(b"\",\"external_id\":");
    jsonrpc::write_str(out, group.external_id);
    out.extend_from_slice(b",\"name\":");
    jsonrpc::write_str(out, group.name);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 1416806551, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn group_id_accepts_integers_and_digit_strings() {
        let raw = |s| Json::parse(s).unwrap();
        assert_eq!(group_id(Some(raw("7"))), Ok(7));
        assert_eq!(group_id(Some(raw("\"7\""))), Ok(7));
        assert_eq!(group_id(Some(raw("-1"))), Ok(0));
        assert_eq!(group_id(Some(raw("99999999999999999999999"))), Ok(0));
        for bad in [
            "1.5", "\"abc\"", "true", "[1]", "null", "\"\"", "1e3", "\"-1\"",
        ] {
            assert!(group_id(Some(raw(bad))).is_err(), "{bad}");
        }
    }
}
