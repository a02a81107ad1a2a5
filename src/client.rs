//! `groupd call`: one JSON-RPC call from the command line, for shell scripts.
//!
//! The call goes to a running server over TCP (authenticating first when given a token file), or,
//! with `--stdio-db`, is answered in-process by a [`Service`] on that database, as `groupd stdio`
//! would answer it. The outcome is told by the exit status: the result on stdout and 0; a
//! JSON-RPC error object on stderr and 1; one line on stderr and 1 when there is no answer
//! (no server, a wrong token file, a broken answer); 2 for a usage error, such as a
//! PARAMS_JSON that is not a JSON array or object; `false` on stdout and 3 when the procedure
//! reported failure, so that `if groupd call getGroup '[7]'` reads as "if group 7 exists".
//! Both outputs are one line of compact JSON, exactly as the server wrote it, so member order
//! and numbers survive. A server that wants a token is told apart from other errors: its
//! `-32001` comes with a hint at `--token-file`.
//!
//! This module is a client: it never serves anyone, and it sends nothing but the one call (and
//! `authenticate` before it).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::dispatch::Service;
use crate::limits::Limits;
use crate::storage::{self, GroupStore};

/// Where `groupd call` connects when neither `--addr` nor `GROUPD_LISTEN` says otherwise: the
/// server's own default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7411";

/// Exit status for a usage error, as clap and `groupd serve` use.
const USAGE_ERROR: u8 = 2;

/// Exit status when the procedure reported failure: its result was `false` (SPEC §5).
const REPORTED_FAILURE: u8 = 3;

/// The error code of a call a token-protected server refused (SPEC §7).
const UNAUTHORIZED: i64 = -32001;

/// The id of the call itself; `authenticate`, when sent, goes first with [`AUTH_ID`].
const CALL_ID: &str = "1";
const AUTH_ID: &str = "0";

/// `groupd call [--addr ADDR | --stdio-db PATH] [--token-file PATH] METHOD [PARAMS_JSON]`
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// Server to call [default: $GROUPD_LISTEN, else 127.0.0.1:7411].
    #[arg(long, value_name = "ADDR", conflicts_with = "stdio_db")]
    pub addr: Option<String>,
    /// Answer the call in-process from this database, as `groupd stdio --db PATH` would,
    /// instead of calling a server (created when missing; it must not be open in a running
    /// server).
    #[arg(long, value_name = "PATH")]
    pub stdio_db: Option<PathBuf>,
    /// File holding the server's token: `authenticate` is called with it first.
    #[arg(long, env = "GROUPD_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Seconds to wait for the server's answer (0 = no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
    /// The method to call, e.g. getAllGroups.
    pub method: String,
    /// The parameters: a JSON array (positional) or object (named).
    #[arg(value_name = "PARAMS_JSON")]
    pub params: Option<String>,
}

/// Why a call got no JSON-RPC answer to print.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("PARAMS_JSON must be a JSON array or object, got {0}")]
    Usage(String),
    #[error("cannot read the token file {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {} is empty", path.display())]
    EmptyToken { path: PathBuf },
    #[error("cannot connect to {addr}: {why}")]
    Connect { addr: String, why: String },
    #[error("no answer from {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("no answer from {addr} within {secs} s")]
    Timeout { addr: String, secs: u64 },
    #[error("{addr} closed the connection without answering")]
    Closed { addr: String },
    #[error("authentication refused (is {} the server's token file?): {error}", path.display())]
    Refused { path: PathBuf, error: String },
    #[error(
        "unauthorized (the server wants a token: give --token-file PATH or set GROUPD_TOKEN_FILE): {0}"
    )]
    NeedsToken(String),
    #[error("the answer is not a JSON-RPC response to this call: {0}")]
    BadAnswer(String),
    #[error("{0}")]
    Database(String),
}

/// The answer to the call: exactly one of these, as raw JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Result(String),
    Error(String),
}

/// Runs `groupd call` and says how the process should exit.
pub fn run(args: CallArgs) -> ExitCode {
    match call(&args) {
        // A closed stdout (`| head -c0`) is the reader's choice, not a failed call.
        Ok(Reply::Result(json)) => {
            let _ = writeln!(std::io::stdout(), "{json}");
            if json == "false" {
                ExitCode::from(REPORTED_FAILURE)
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok(Reply::Error(json)) => {
            eprintln!("{json}");
            ExitCode::FAILURE
        }
        Err(err @ CallError::Usage(_)) => {
            eprintln!("groupd call: {err}");
            ExitCode::from(USAGE_ERROR)
        }
        Err(err) => {
            eprintln!("groupd call: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Makes the call and returns the answer.
pub fn call(args: &CallArgs) -> Result<Reply, CallError> {
    let request = request_line(CALL_ID, &args.method, args.params.as_deref())?;
    if let Some(db) = &args.stdio_db {
        return parse_answer(&in_process(db, &request)?, CALL_ID);
    }
    let addr = args
        .addr
        .clone()
        .or_else(|| std::env::var("GROUPD_LISTEN").ok())
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
    let mut lines = Vec::new();
    if let Some(path) = &args.token_file {
        let token = serde_json::Value::from(read_token(path)?);
        lines.push(format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{AUTH_ID},\"method\":\"authenticate\",\"params\":[{token}]}}"
        ));
    }
    lines.push(request);
    let answers = over_tcp(&addr, &lines, timeout)?;
    let mut answers = answers.iter();
    let closed = || CallError::Closed { addr: addr.clone() };
    if let Some(path) = &args.token_file {
        let answer = answers.next().ok_or_else(closed)?;
        if let Reply::Error(error) = parse_answer(answer, AUTH_ID)? {
            let path = path.clone();
            return Err(CallError::Refused { path, error });
        }
    }
    match parse_answer(answers.next().ok_or_else(closed)?, CALL_ID)? {
        Reply::Error(error) if is_unauthorized(&error) => Err(CallError::NeedsToken(error)),
        reply => Ok(reply),
    }
}

/// Whether a JSON-RPC error object is the server asking for a token.
fn is_unauthorized(error: &str) -> bool {
    #[derive(Deserialize)]
    struct Code {
        code: i64,
    }
    serde_json::from_str::<Code>(error).is_ok_and(|e| e.code == UNAUTHORIZED)
}

/// The request line for the call, with PARAMS_JSON embedded verbatim (numbers keep their
/// exact text, objects their member order).
fn request_line(id: &str, method: &str, params: Option<&str>) -> Result<String, CallError> {
    let method = serde_json::Value::from(method);
    let Some(params) = params else {
        return Ok(format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":{method}}}"
        ));
    };
    let usage = |why: String| CallError::Usage(why);
    let raw: Box<RawValue> =
        serde_json::from_str(params.trim()).map_err(|e| usage(format!("{params:?} ({e})")))?;
    if !raw.get().starts_with(['[', '{']) {
        return Err(usage(raw.get().to_owned()));
    }
    Ok(format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":{method},\"params\":{}}}",
        raw.get()
    ))
}

/// The token, as the server reads it: the whole file, surrounding whitespace trimmed.
fn read_token(path: &Path) -> Result<String, CallError> {
    let text = std::fs::read_to_string(path).map_err(|source| CallError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CallError::EmptyToken {
            path: path.to_owned(),
        });
    }
    Ok(token.to_owned())
}

/// Sends `lines` at once and reads one answer line for each.
fn over_tcp(
    addr: &str,
    lines: &[String],
    timeout: Option<Duration>,
) -> Result<Vec<String>, CallError> {
    let stream = connect(addr, timeout)?;
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => CallError::Timeout {
            addr: addr.to_owned(),
            secs: timeout.map_or(0, |t| t.as_secs()),
        },
        _ => CallError::Io {
            addr: addr.to_owned(),
            source,
        },
    };
    stream.set_read_timeout(timeout).map_err(io)?;
    stream.set_write_timeout(timeout).map_err(io)?;
    let mut request = lines.join("\n");
    request.push('\n');
    (&stream).write_all(request.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(&stream);
    let mut answers = Vec::with_capacity(lines.len());
    for _ in lines {
        let mut answer = String::new();
        if reader.read_line(&mut answer).map_err(io)? == 0 {
            break;
        }
        answers.push(answer);
    }
    Ok(answers)
}

/// Connects to the first address `addr` resolves to that accepts.
fn connect(addr: &str, timeout: Option<Duration>) -> Result<TcpStream, CallError> {
    let cannot = |why: String| CallError::Connect {
        addr: addr.to_owned(),
        why,
    };
    let mut last = cannot("no address to connect to".into());
    for candidate in addr.to_socket_addrs().map_err(|e| cannot(e.to_string()))? {
        let attempt = match timeout {
            Some(t) => TcpStream::connect_timeout(&candidate, t),
            None => TcpStream::connect(candidate),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = cannot(e.to_string()),
        }
    }
    Err(last)
}

/// Answers `request` from the database at `db`, as a stdio session would, and closes it.
fn in_process(db: &Path, request: &str) -> Result<String, CallError> {
    let store = storage::open(db).map_err(|e| CallError::Database(e.to_string()))?;
    let service = Service::new(store, Limits::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CallError::Database(format!("cannot start the runtime: {e}")))?;
    let mut answer = Vec::new();
    runtime.block_on(async {
        service.handle_line(request.as_bytes(), &mut answer).await;
        service.store().close().await;
    });
    String::from_utf8(answer).map_err(|e| CallError::BadAnswer(e.to_string()))
}

#[derive(Deserialize)]
struct Answer<'a> {
    jsonrpc: &'a str,
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// The result or error of the answer to request `id`. An error with `"id":null` is the
/// server's answer to a request it could not read, so it is ours too.
fn parse_answer(line: &str, id: &str) -> Result<Reply, CallError> {
    let line = line.trim_end();
    let bad = || CallError::BadAnswer(line.chars().take(200).collect());
    let answer: Answer = serde_json::from_str(line).map_err(|_| bad())?;
    if answer.jsonrpc != "2.0" {
        return Err(bad());
    }
    match (answer.result, answer.error, answer.id.get()) {
        (None, Some(error), got) if got == id || got == "null" => {
            Ok(Reply::Error(error.get().to_owned()))
        }
        (Some(result), None, got) if got == id => Ok(Reply::Result(result.get().to_owned())),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_must_be_an_array_or_an_object_and_are_kept_verbatim() {
        assert_eq!(
            request_line("1", "getGroup", Some(" [\"1\", 1.50] ")).unwrap(),
            r#"{"jsonrpc":"2.0","id":1,"method":"getGroup","params":["1", 1.50]}"#
        );
        assert_eq!(
            request_line("1", "a\"b", None).unwrap(),
            r#"{"jsonrpc":"2.0","id":1,"method":"a\"b"}"#
        );
        for bad in ["1", "\"x\"", "null", "[1", "", "{} {}"] {
            assert!(
                matches!(request_line("1", "m", Some(bad)), Err(CallError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn answers_are_told_apart_by_result_and_error() {
        let result =
            r#"{"jsonrpc":"2.0","id":1,"result":{"id":"1","external_id":"","name":"Ops"}}"#;
        assert_eq!(
            parse_answer(result, "1").unwrap(),
            Reply::Result(r#"{"id":"1","external_id":"","name":"Ops"}"#.into())
        );
        let error =
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#;
        assert_eq!(
            parse_answer(error, "1").unwrap(),
            Reply::Error(r#"{"code":-32700,"message":"Parse error"}"#.into())
        );
        for bad in [
            r#"{"jsonrpc":"2.0","id":2,"result":true}"#,
            r#"{"jsonrpc":"2.0","id":null,"result":true}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":true,"error":{}}"#,
            r#"{"jsonrpc":"1.0","id":1,"result":true}"#,
            "[]",
            "not json",
        ] {
            assert!(
                matches!(parse_answer(bad, "1"), Err(CallError::BadAnswer(_))),
                "{bad}"
            );
        }
    }
}
