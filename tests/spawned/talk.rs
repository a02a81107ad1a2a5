//! One conversation with a real groupd, as JSON values: a TCP connection or a stdio process,
//! in either framing, so one table of messages can be checked on every transport.

use serde_json::{Value, json};

use super::{Conn, Server, StdioProcess, frame};

/// How a conversation frames its messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    Lines,
    ContentLength,
}

pub const FRAMINGS: [Framing; 2] = [Framing::Lines, Framing::ContentLength];

/// One conversation with a real groupd: a TCP connection or a stdio process.
pub enum Peer {
    Tcp(Conn),
    Stdio(StdioProcess),
}

pub struct Talk {
    pub peer: Peer,
    pub framing: Framing,
}

impl Talk {
    pub fn tcp(server: &Server, framing: Framing) -> Talk {
        Talk {
            peer: Peer::Tcp(server.connect()),
            framing,
        }
    }

    pub fn stdio(db: &std::path::Path, framing: Framing) -> Talk {
        let db = db.to_str().expect("path");
        Talk {
            peer: Peer::Stdio(StdioProcess::start(&["stdio", "--db", db])),
            framing,
        }
    }

    pub fn send(&mut self, message: &str) {
        let bytes = match self.framing {
            Framing::Lines => format!("{message}\n").into_bytes(),
            Framing::ContentLength => frame(message),
        };
        match &mut self.peer {
            Peer::Tcp(conn) => conn.send(&bytes),
            Peer::Stdio(process) => process.send(&bytes),
        }
    }

    pub fn answer(&mut self) -> Value {
        let text = match (&mut self.peer, self.framing) {
            (Peer::Tcp(conn), Framing::Lines) => conn.line(),
            (Peer::Tcp(conn), Framing::ContentLength) => conn.framed().1,
            (Peer::Stdio(process), Framing::Lines) => process.line(),
            (Peer::Stdio(process), Framing::ContentLength) => process.framed().1,
        };
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Sends a request and returns its answer.
    pub fn call(&mut self, message: Value) -> Value {
        self.send(&message.to_string());
        self.answer()
    }

    /// After `exit`: what the peer still wrote, and the stdio exit status (`None` for TCP, where
    /// the connection must simply be closed).
    pub fn ended(self) -> (String, Option<i32>) {
        match self.peer {
            Peer::Tcp(mut conn) => {
                conn.expect_closed();
                (String::new(), None)
            }
            Peer::Stdio(process) => process.ends(),
        }
    }
}

pub fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

pub fn notification(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string()
}

pub fn result(id: u64, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error(id: u64, code: i64, message: &str, data: Option<&str>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data.into();
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}
