//! Every ```` ```console ```` block of the README, replayed in order as a reader pastes them,
//! with `groupd` on `PATH`, in one fresh directory: each must print exactly what it shows.
//!
//! The README states what each example starts from, and this test starts it the same way:
//!
//! - A ```` ```sh ```` block with a `groupd serve` line is a server the reader starts in
//!   another terminal: its other lines run first (as `sh`, in the directory), then the server,
//!   on ephemeral ports instead of the ports it names (the Quick start's 127.0.0.1:7411 is
//!   refused: the examples must not depend on it). It runs until the end, then must stop
//!   cleanly on SIGTERM, as on Ctrl-C.
//! - A console block of `$ COMMAND` lines is a shell session: each command (with its `\`
//!   continuation lines) runs in `sh` with stderr merged into stdout, and must print exactly
//!   the lines below it. `export` commands carry over to the block's later commands. The
//!   addresses the README's servers name are swapped for the ports they really have, in the
//!   commands and back in the output. `GROUPD_LISTEN` points at a port where nothing listens,
//!   so an example that silently relies on a server it does not name fails.
//! - A console block without `$` lines is typed into `nc HOST PORT`, named in the text just
//!   above it: lines that are JSON-RPC answers are what comes back, the others are sent.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Client, DEADLINE, GROUPD, Server};

/// Where the Quick start server runs; no example may name it.
const QUICK_START: &str = "127.0.0.1:7411";

/// A port nothing listens on, for `GROUPD_LISTEN`.
const NOWHERE: &str = "127.0.0.1:1";

/// What the README holds, in order: the text between blocks, and the blocks.
enum Part {
    Text(String),
    Block { lang: String, body: String },
}

/// Splits markdown into text and fenced blocks (indented fences too, their indent removed).
fn parts(markdown: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lines = markdown.lines();
    let mut text = String::new();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let Some(lang) = trimmed.strip_prefix("```") else {
            text.push_str(line);
            text.push('\n');
            continue;
        };
        let indent = line.len() - trimmed.len();
        let mut body = String::new();
        for line in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            body.push_str(line.get(indent..).unwrap_or(line.trim_start()));
            body.push('\n');
        }
        parts.push(Part::Text(std::mem::take(&mut text)));
        parts.push(Part::Block {
            lang: lang.trim().to_owned(),
            body,
        });
    }
    parts
}

/// The README's servers, by the address the README gives them.
#[derive(Default)]
struct Servers {
    running: Vec<Server>,
    /// Stated address → real address, TCP and HTTP listeners alike.
    addresses: BTreeMap<String, SocketAddr>,
}

impl Servers {
    /// Runs a ```` ```sh ```` block that starts a server: its other lines, then the server.
    fn start(&mut self, block: &str, dir: &Path) {
        for line in block.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("groupd serve ") {
                self.serve(line, dir);
            } else {
                let out = shell(line, dir, &[]);
                assert!(out.status.success(), "`{line}` failed: {out:?}");
            }
        }
    }

    fn serve(&mut self, line: &str, dir: &Path) {
        let words: Vec<&str> = line.split_whitespace().skip(2).collect();
        let mut args = Vec::new();
        let mut stated = BTreeMap::new();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            args.push(word.to_owned());
            let Some(value) = words.next() else { break };
            match word {
                "--listen" | "--http" => {
                    assert_ne!(
                        value, QUICK_START,
                        "`{line}` takes the Quick start's address"
                    );
                    stated.insert(word, value);
                    args.push("127.0.0.1:0".to_owned());
                }
                "--db" | "--token-file" => args.push(dir.join(value).display().to_string()),
                _ => args.push(value.to_owned()),
            }
        }
        assert!(
            stated.contains_key("--listen") && args.iter().any(|a| a == "--db"),
            "`{line}`: an example server names its own --listen and --db"
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::try_serve(&args)
            .unwrap_or_else(|f| panic!("`{line}` did not start ({}): {}", f.status, f.stderr));
        self.addresses
            .insert(stated["--listen"].to_owned(), server.addr);
        if let Some(http) = stated.get("--http") {
            self.addresses
                .insert((*http).to_owned(), http_address(&server));
        }
        self.running.push(server);
    }

    fn real(&self, stated: &str) -> SocketAddr {
        *self
            .addresses
            .get(stated)
            .unwrap_or_else(|| panic!("no README server listens on {stated}"))
    }

    /// `text` with each stated address (as `HOST:PORT` and as nc's `HOST PORT`) made real.
    fn to_real(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (stated, real) in &self.addresses {
            text = text.replace(stated, &real.to_string());
            text = text.replace(
                &stated.replacen(':', " ", 1),
                &real.to_string().replacen(':', " ", 1),
            );
        }
        text
    }

    /// `text` with each real address written as the README states it.
    fn to_stated(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (stated, real) in &self.addresses {
            text = text.replace(&real.to_string(), stated);
        }
        text
    }

    /// Stops every server as Ctrl-C would; each must exit 0.
    fn stop(self) {
        for server in self.running {
            let (status, log) = server.stop("-TERM");
            assert!(
                status.success(),
                "a README server exited with {status}: {log}"
            );
        }
    }
}

/// The HTTP listener's address, from its log line.
fn http_address(server: &Server) -> SocketAddr {
    let start = Instant::now();
    loop {
        let log = server.stderr();
        if let Some((_, rest)) = log.split_once("http listening on ") {
            let addr = rest.split_whitespace().next().unwrap_or("");
            return addr.parse().expect("an address in the log line");
        }
        assert!(start.elapsed() < DEADLINE, "no http listener: {log}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `sh -c COMMAND` in `dir`, with `groupd` first on PATH and a reader's fresh environment.
fn shell(command: &str, dir: &Path, exports: &[String]) -> std::process::Output {
    let bin = Path::new(GROUPD).parent().expect("the binary's directory");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("{}\n{{ {command}\n}} 2>&1", exports.join("\n"));
    Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir)
        .env("PATH", path)
        .env("GROUPD_LISTEN", NOWHERE)
        .env_remove("GROUPD_TOKEN_FILE")
        .env_remove("GROUPD_DB")
        .env_remove("RUST_LOG")
        .output()
        .expect("run sh")
}

/// The `$ ` commands of a shell session and the output each must print.
fn session(block: &str) -> Vec<(String, String)> {
    let mut examples: Vec<(String, String)> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            examples.push((command.to_owned(), String::new()));
        } else if let Some((command, expected)) = examples.last_mut() {
            if continued {
                command.push('\n');
                command.push_str(line);
            } else {
                expected.push_str(line);
                expected.push('\n');
            }
        } else {
            panic!("a console block starts with output, not a `$ ` command: {line}");
        }
        continued = line.ends_with('\\') && examples.last().is_some_and(|e| e.1.is_empty());
    }
    examples
}

/// Whether `nc` on PATH is OpenBSD's, the one whose `-N` the README uses.
fn openbsd_nc() -> bool {
    Command::new("nc")
        .arg("-h")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stderr).contains("OpenBSD"))
}

/// Runs a shell session, each command in order, and compares what each prints.
fn replay_session(block: &str, dir: &Path, servers: &Servers) -> usize {
    let mut exports = Vec::new();
    let examples = session(block);
    for (command, expected) in &examples {
        let real = servers.to_real(command);
        let printed = match real.rsplit_once("| nc -N ") {
            Some((input, target)) if !openbsd_nc() => {
                eprintln!("no OpenBSD nc on PATH: `| nc -N {target}` done by the test itself");
                let out = shell(input, dir, &exports);
                nc_n(target.trim(), &out.stdout)
            }
            _ => String::from_utf8_lossy(&shell(&real, dir, &exports).stdout).into_owned(),
        };
        assert_eq!(&servers.to_stated(&printed), expected, "\n$ {command}\n");
        if command.starts_with("export ") {
            exports.push(real);
        }
    }
    examples.len()
}

/// What `nc -N HOST PORT` prints for `input`: it sends it, shuts down its side, and prints
/// everything until the server closes.
fn nc_n(target: &str, input: &[u8]) -> String {
    let (host, port) = target.split_once(' ').expect("nc -N HOST PORT");
    let mut stream = TcpStream::connect(format!("{host}:{port}")).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.write_all(input).expect("send");
    stream.shutdown(Shutdown::Write).expect("shut down");
    let mut answers = String::new();
    stream
        .read_to_string(&mut answers)
        .expect("read the answers");
    answers
}

/// Whether a line of an interactive session is an answer (what the server printed).
fn is_answer(line: &str) -> bool {
    let answer = |v: &serde_json::Value| {
        v.get("jsonrpc").is_some()
            && v.get("method").is_none()
            && (v.get("result").is_some() || v.get("error").is_some())
    };
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Array(items)) => !items.is_empty() && items.iter().all(answer),
        Ok(value) => answer(&value),
        Err(_) => false,
    }
}

/// Types the session into one connection to the server `text` names with `nc HOST PORT`.
fn replay_typed(block: &str, text: &str, servers: &Servers) -> usize {
    let (_, rest) = text
        .rsplit_once("`nc ")
        .unwrap_or_else(|| panic!("no `nc HOST PORT` above the session:\n{block}"));
    let target = rest.split('`').next().unwrap_or("");
    let mut client = Client::connect(servers.real(&target.replacen(' ', ":", 1)));
    let mut lines = 0;
    for line in block.lines() {
        if is_answer(line) {
            assert_eq!(client.recv(), line, "typed into nc {target}");
        } else {
            client.send(line);
        }
        lines += 1;
    }
    lines
}

#[test]
fn every_console_block_prints_what_the_readme_shows() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut servers = Servers::default();
    let (mut sessions, mut typed) = (0, 0);
    let mut text = String::new();
    for part in parts(&readme) {
        match part {
            Part::Text(t) => text = t,
            Part::Block { lang, body } if lang == "sh" && body.contains("groupd serve ") => {
                servers.start(&body, dir.path());
            }
            Part::Block { lang, body } if lang == "console" => {
                if body.lines().any(|l| l.starts_with("$ ")) {
                    assert!(replay_session(&body, dir.path(), &servers) > 0);
                    sessions += 1;
                } else {
                    assert!(replay_typed(&body, &text, &servers) > 0);
                    typed += 1;
                }
            }
            Part::Block { .. } => {}
        }
    }
    servers.stop();
    // netcat, stdio, two of `groupd call`; netcat's errors and the token gate, typed.
    assert!(
        sessions >= 4 && typed >= 2,
        "{sessions} sessions, {typed} typed"
    );
}

/// SPEC §5 and the Quick start: a newcomer learns how to get `groupd` on PATH before the first
/// example that runs it, and no example hides its errors (a `2>/dev/null` hid
/// "command not found").
#[test]
fn the_readme_installs_groupd_before_its_examples_and_hides_no_errors() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let install = readme
        .find("cargo install --path .")
        .expect("the README says how to install groupd");
    let first_example = readme.find("```console").expect("a console block");
    assert!(
        install < first_example,
        "the install comes after the first example"
    );
    for part in parts(&readme) {
        if let Part::Block { lang, body } = part
            && lang == "console"
        {
            assert!(
                !body.contains("2>/dev/null"),
                "an example hides its errors:\n{body}"
            );
        }
    }
}

/// The Quick start says what the test command needs, the minimum Rust version (as
/// `Cargo.toml` has it), how to stop the server and where its database goes.
#[test]
fn the_quick_start_says_what_it_needs_and_how_to_stop() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).expect("Cargo.toml");
    let rust = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version in Cargo.toml")
        .trim_matches('"');
    let quick_start = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Quick start");
    for needed in [
        &format!("Rust {rust} or newer") as &str,
        "network access",
        "root",
        "Node.js 20",
        "Python 3.11",
        "Ctrl-C",
        "exits 0",
        "`groupd.redb` in the directory",
        "cargo install --path .",
    ] {
        assert!(
            quick_start.contains(needed),
            "the Quick start does not say {needed:?}"
        );
    }
}
