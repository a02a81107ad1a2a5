//! `groupd check`, `groupd dump` and `groupd restore` (SPEC §13): the database's health, a copy
//! of it as JSON Lines, and a new database built from such a copy, with the same ids and the
//! same next id.
//!
//! The dump format: a header line `{"format":"groupd-dump","version":1,"next_id":N,"groups":C}`,
//! then C lines, one group each (`{"id":"1","external_id":"","name":"…"}`, rendered exactly as
//! the API renders a group) in increasing id order. An online dump asks a running server for
//! [`methods::DUMP_METHOD`] and writes its groups byte for byte as the server rendered them, so
//! an online and an offline dump of the same state are the same bytes.
//!
//! Each command prints one line on stderr when it fails and exits 1 (2 for a usage error,
//! through clap). Restore validates the whole dump before it creates anything.

use std::collections::HashSet;
use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::{self, CallArgs, Reply};
use crate::dispatch::write_group;
use crate::group::{self, Group};
use crate::methods::{DUMP_FORMAT, DUMP_METHOD, DUMP_VERSION};
use crate::storage::embedded::{self, CheckOutcome, Offline};
use crate::storage::{self, OpenError};

/// A restore of at least this many groups shows its progress (when stderr is a terminal).
const PROGRESS_FROM: usize = 50_000;

/// `groupd check [--db PATH] [--repair]`
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Database file to check (never created).
    #[arg(long, env = "GROUPD_DB", default_value = "groupd.redb")]
    pub db: PathBuf,
    /// Roll back a last commit that does not verify (all the storage engine can repair), and
    /// say what could not be repaired.
    #[arg(long)]
    pub repair: bool,
}

/// `groupd dump [--db PATH | --addr ADDR [--token-file PATH]]`
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// Database file to dump, when no server holds it.
    #[arg(long, env = "GROUPD_DB", default_value = "groupd.redb")]
    pub db: PathBuf,
    /// Dump from the server at this address instead (one consistent snapshot; the server
    /// keeps serving).
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// File holding the server's token, for --addr.
    #[arg(
        long,
        env = "GROUPD_TOKEN_FILE",
        value_name = "PATH",
        requires = "addr"
    )]
    pub token_file: Option<PathBuf>,
}

/// `groupd restore --db NEW [FILE|-]`
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The new database file; restore refuses one that exists.
    #[arg(long)]
    pub db: PathBuf,
    /// The dump to read; `-` or absent: stdin.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// Why a command failed; its one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Storage(#[from] storage::StoreError),
    #[error(transparent)]
    Restore(#[from] embedded::RestoreError),
    #[error(transparent)]
    Call(#[from] client::CallError),
    #[error("the server answered an error: {0}")]
    Server(String),
    #[error("the server's answer is not a dump: {0}")]
    BadAnswer(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the dump: {0}")]
    Write(std::io::Error),
    #[error(
        "cannot repair {}: {why}; the storage engine can only roll back a last commit that does not verify, and this damage is in the committed state: restore the database from a dump (`groupd restore`)",
        path.display()
    )]
    Unrepairable { path: PathBuf, why: String },
    #[error("line {line}: {why}; nothing was written")]
    BadDump { line: usize, why: String },
}

fn finish(command: &str, result: Result<(), BackupError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("groupd {command}: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// `groupd check`: healthy → one line on stdout, exit 0; damaged (or held by a server) → one
/// line on stderr, exit 1.
pub fn check(args: CheckArgs) -> ExitCode {
    finish("check", run_check(&args))
}

fn run_check(args: &CheckArgs) -> Result<(), BackupError> {
    let (db, outcome) = match Offline::open(&args.db, args.repair) {
        Ok(opened) => opened,
        Err(OpenError::Damaged { path, why }) if args.repair => {
            return Err(BackupError::Unrepairable { path, why });
        }
        Err(e) => return Err(e.into()),
    };
    let snapshot = db.snapshot()?;
    let (groups, next_id) = (snapshot.len(), snapshot.next_id());
    // Every group is read once more: the checksums say the pages are as written, this says
    // they hold what groupd wrote (valid rows in id order).
    let mut bad = None;
    snapshot.each(|g| {
        if bad.is_none()
            && (!group::name_is_valid(g.name) || !group::external_id_is_valid(g.external_id))
        {
            bad = Some(g.id);
        }
    })?;
    let bytes = db.file_bytes().map_err(|source| BackupError::Read {
        path: args.db.display().to_string(),
        source,
    })?;
    let state = match outcome {
        CheckOutcome::Healthy => "healthy",
        CheckOutcome::RolledBack => {
            "repaired (the last commit did not verify and was rolled back: the writes of that one commit are lost)"
        }
    };
    let note = bad.map_or(String::new(), |id| {
        format!("; note: group {id} has a name or external id that groupd would not accept")
    });
    println!(
        "{}: {state}: {groups} groups, next id {next_id}, {bytes} bytes{note}",
        args.db.display()
    );
    Ok(())
}

/// `groupd dump`: the dump on stdout, exit 0; otherwise one line on stderr, exit 1.
pub fn dump(args: DumpArgs) -> ExitCode {
    finish("dump", run_dump(&args))
}

fn run_dump(args: &DumpArgs) -> Result<(), BackupError> {
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match &args.addr {
        Some(addr) => dump_online(addr, args.token_file.clone(), &mut out)?,
        None => dump_offline(&args.db, &mut out)?,
    }
    out.flush().map_err(BackupError::Write)
}

fn header(next_id: u64, groups: u64) -> String {
    format!(
        "{{\"format\":\"{DUMP_FORMAT}\",\"version\":{DUMP_VERSION},\"next_id\":{next_id},\"groups\":{groups}}}\n"
    )
}

fn dump_offline(path: &Path, out: &mut impl Write) -> Result<(), BackupError> {
    let (db, _) = Offline::open(path, false)?;
    let snapshot = db.snapshot()?;
    out.write_all(header(snapshot.next_id(), snapshot.len()).as_bytes())
        .map_err(BackupError::Write)?;
    let (mut line, mut failed) = (Vec::with_capacity(256), None);
    snapshot.each(|group| {
        if failed.is_some() {
            return;
        }
        line.clear();
        write_group(&mut line, group);
        line.push(b'\n');
        failed = out.write_all(&line).err();
    })?;
    failed.map_or(Ok(()), |e| Err(BackupError::Write(e)))
}

/// The result of [`DUMP_METHOD`], its groups kept as the server wrote them.
#[derive(Deserialize)]
struct OnlineDump<'a> {
    format: &'a str,
    version: u64,
    next_id: u64,
    #[serde(borrow)]
    groups: Vec<&'a RawValue>,
}

fn dump_online(
    addr: &str,
    token_file: Option<PathBuf>,
    out: &mut impl Write,
) -> Result<(), BackupError> {
    let call = CallArgs {
        addr: Some(addr.to_owned()),
        stdio_db: None,
        token_file,
        timeout: 0,
        method: DUMP_METHOD.to_owned(),
        params: None,
    };
    let result = match client::call(&call)? {
        Reply::Result(json) => json,
        Reply::Error(json) => return Err(BackupError::Server(json)),
    };
    let bad = |why: &str| BackupError::BadAnswer(why.to_owned());
    let dump: OnlineDump<'_> = serde_json::from_str(&result).map_err(|e| bad(&e.to_string()))?;
    if dump.format != DUMP_FORMAT || dump.version != DUMP_VERSION {
        return Err(bad("unknown format or version"));
    }
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        out.write_all(header(dump.next_id, dump.groups.len() as u64).as_bytes())?;
        for group in &dump.groups {
            out.write_all(group.get().as_bytes())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    write(out).map_err(BackupError::Write)
}

/// `groupd restore`: a new database from a dump, exit 0 with one line on stdout; a bad dump or
/// an existing file → one line on stderr, exit 1, nothing written.
pub fn restore(args: RestoreArgs) -> ExitCode {
    finish("restore", run_restore(&args))
}

fn run_restore(args: &RestoreArgs) -> Result<(), BackupError> {
    if args.db.exists() {
        return Err(embedded::RestoreError::Exists(args.db.clone()).into());
    }
    let (next_id, groups) = match args.input.as_deref() {
        None => read_dump(std::io::stdin().lock(), "stdin")?,
        Some(p) if p == Path::new("-") => read_dump(std::io::stdin().lock(), "stdin")?,
        Some(path) => {
            let name = path.display().to_string();
            let file = std::fs::File::open(path).map_err(|source| BackupError::Read {
                path: name.clone(),
                source,
            })?;
            read_dump(std::io::BufReader::with_capacity(1 << 16, file), &name)?
        }
    };
    let total = groups.len();
    let show = total >= PROGRESS_FROM && std::io::stderr().is_terminal();
    embedded::restore(&args.db, next_id, &groups, |done| {
        if show {
            eprint!("\rrestoring: {done} of {total} groups written");
        }
    })?;
    if show {
        eprintln!();
    }
    println!(
        "{}: restored {total} groups, next id {next_id}",
        args.db.display()
    );
    Ok(())
}

/// The header line of a dump.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u64,
    next_id: u64,
    groups: u64,
}

/// A group line of a dump.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    external_id: String,
    name: String,
}

/// Reads and validates a whole dump: the header, then each group (a canonical decimal id above
/// the one before and below `next_id`; a valid, unique name; a valid external id), and that
/// there are as many as the header says. The first problem is reported with its line number.
fn read_dump(input: impl BufRead, name: &str) -> Result<(u64, Vec<Group>), BackupError> {
    let mut lines = input.lines();
    let mut number = 0;
    let mut next = |number: &mut usize| -> Result<Option<String>, BackupError> {
        *number += 1;
        lines
            .next()
            .transpose()
            .map_err(|source| BackupError::Read {
                path: name.to_owned(),
                source,
            })
    };
    let bad = |line: usize, why: String| BackupError::BadDump { line, why };
    let first = next(&mut number)?.ok_or_else(|| bad(1, "empty input: no dump header".into()))?;
    let header: Header = serde_json::from_str(&first)
        .map_err(|e| bad(1, format!("not a groupd dump header ({e})")))?;
    if header.format != DUMP_FORMAT || header.version != DUMP_VERSION {
        return Err(bad(
            1,
            format!(
                "format {:?} version {} is not {DUMP_FORMAT:?} version {DUMP_VERSION}",
                header.format, header.version
            ),
        ));
    }
    if header.next_id == 0 {
        return Err(bad(1, "next_id must be at least 1".into()));
    }
    let mut groups = Vec::with_capacity(usize::try_from(header.groups.min(1 << 24)).unwrap_or(0));
    let mut names = HashSet::with_capacity(groups.capacity());
    while let Some(text) = next(&mut number)? {
        let line: Line =
            serde_json::from_str(&text).map_err(|e| bad(number, format!("not a group ({e})")))?;
        let id = canonical_id(&line.id).ok_or_else(|| {
            bad(
                number,
                format!("id {:?} is not a positive decimal integer", line.id),
            )
        })?;
        if let Some(last) = groups.last().map(|g: &Group| g.id)
            && id <= last
        {
            return Err(bad(
                number,
                format!("id {id} does not follow id {last}: ids must increase"),
            ));
        }
        if id >= header.next_id {
            return Err(bad(
                number,
                format!("id {id} is not below next_id {}", header.next_id),
            ));
        }
        if !group::name_is_valid(&line.name) || !group::external_id_is_valid(&line.external_id) {
            return Err(bad(
                number,
                format!(
                    "group {id}: the name must be 1 to {} characters and not blank, the external id at most {}",
                    group::MAX_NAME_CHARS,
                    group::MAX_EXTERNAL_ID_CHARS
                ),
            ));
        }
        if !names.insert(line.name.clone()) {
            return Err(bad(
                number,
                format!("group {id}: the name {:?} is used twice", line.name),
            ));
        }
        groups.push(Group {
            id,
            name: line.name,
            external_id: line.external_id,
        });
    }
    if groups.len() as u64 != header.groups {
        return Err(bad(
            number,
            format!(
                "the header says {} groups, the dump holds {}",
                header.groups,
                groups.len()
            ),
        ));
    }
    Ok((header.next_id, groups))
}

/// A group id as dumps write it: decimal digits, no sign, no leading zero.
fn canonical_id(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(u64, Vec<Group>), String> {
        read_dump(text.as_bytes(), "test").map_err(|e| e.to_string())
    }

    const HEAD: &str = r#"{"format":"groupd-dump","version":1,"next_id":5,"groups":2}"#;

    #[test]
    fn a_valid_dump_is_read_whole() {
        let dump = format!(
            "{HEAD}\n{}\n{}\n",
            r#"{"id":"1","external_id":"","name":"a"}"#,
            r#"{"id":"4","external_id":"x","name":"b"}"#
        );
        let (next_id, groups) = read(&dump).unwrap();
        assert_eq!(next_id, 5);
        assert_eq!(groups.iter().map(|g| g.id).collect::<Vec<_>>(), [1, 4]);
    }

    #[test]
    fn each_problem_is_named_with_its_line() {
        let a = r#"{"id":"1","external_id":"","name":"a"}"#;
        let cases = [
            ("", "line 1: empty input"),
            ("{}", "line 1: not a groupd dump header"),
            (
                r#"{"format":"other","version":1,"next_id":5,"groups":0}"#,
                "line 1: format",
            ),
            (
                &format!("{HEAD}\n{a}\n{a}"),
                "line 3: id 1 does not follow id 1",
            ),
            (
                &format!(
                    "{HEAD}\n{a}\n{}",
                    r#"{"id":"5","external_id":"","name":"b"}"#
                ),
                "line 3: id 5 is not below next_id 5",
            ),
            (
                &format!(
                    "{HEAD}\n{a}\n{}",
                    r#"{"id":"2","external_id":"","name":"a"}"#
                ),
                "line 3: group 2: the name \"a\" is used twice",
            ),
            (
                &format!(
                    "{HEAD}\n{a}\n{}",
                    r#"{"id":"02","external_id":"","name":"b"}"#
                ),
                "line 3: id \"02\"",
            ),
            (
                &format!(
                    "{HEAD}\n{a}\n{}",
                    r#"{"id":"2","external_id":"","name":" "}"#
                ),
                "line 3: group 2: the name must be",
            ),
            (
                &format!("{HEAD}\n{a}\n{}", r#"{"id":"2","name":"b"}"#),
                "line 3: not a group",
            ),
            (
                &format!("{HEAD}\n{a}\n"),
                "line 3: the header says 2 groups, the dump holds 1",
            ),
            (&format!("{HEAD}\n{a}\n\n"), "line 3: not a group"),
        ];
        for (dump, expected) in cases {
            let got = read(dump).unwrap_err();
            assert!(got.starts_with(expected), "{dump:?}: {got}");
        }
    }
}
