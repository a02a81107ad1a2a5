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
//! `--db` names a file or a PostgreSQL URL (SPEC §14). On PostgreSQL, check connects (which
//! checks that the table fits) and reads every group; dump reads one snapshot through the same
//! [`GroupStore::visit_dump`] a server's online dump uses; restore fills an empty `groups`
//! table in one transaction and sets its sequence to the dump's next id. PostgreSQL repairs its
//! own files (crash recovery from its WAL), so `check --repair` on a URL is a usage error.
//!
//! Each command prints one line on stderr when it fails and exits 1 (2 for a usage error).
//! Restore validates the whole dump before it creates or connects to anything.

use std::collections::HashSet;
use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::{self, CallArgs, Reply};
use crate::dispatch::write_group;
use crate::group::{self, Group, GroupRef};
use crate::methods::{DUMP_FORMAT, DUMP_METHOD, DUMP_VERSION};
use crate::storage::embedded::{self, CheckOutcome, Offline};
use crate::storage::postgres::{self, PgError, PgStore};
use crate::storage::{self, GroupStore, OpenError, StateInfo, Visitor};

/// A restore of at least this many groups shows its progress (when stderr is a terminal).
const PROGRESS_FROM: usize = 50_000;

/// `groupd check [--db PATH|URL] [--repair]`
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Database to check: a file (never created), or a PostgreSQL URL (the table is created
    /// when missing, and checked to fit).
    #[arg(long, env = "GROUPD_DB", default_value = "groupd.redb")]
    pub db: String,
    /// Roll back a last commit that does not verify (all the storage engine can repair), and
    /// say what could not be repaired. Files only: PostgreSQL repairs its own.
    #[arg(long)]
    pub repair: bool,
    /// Seconds to keep trying an unreachable PostgreSQL before giving up (exit 1).
    #[arg(long, value_name = "SECONDS", default_value_t = postgres::CONNECT_TIMEOUT_SECS)]
    pub connect_timeout: u64,
}

/// `groupd dump [--db PATH|URL | --addr ADDR [--token-file PATH]]`
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// Database to dump: a file no server holds, or a PostgreSQL URL (one snapshot, while
    /// servers keep serving it).
    #[arg(long, env = "GROUPD_DB", default_value = "groupd.redb")]
    pub db: String,
    /// Seconds to keep trying an unreachable PostgreSQL before giving up (exit 1).
    #[arg(long, value_name = "SECONDS", default_value_t = postgres::CONNECT_TIMEOUT_SECS)]
    pub connect_timeout: u64,
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

/// `groupd restore --db NEW|URL [FILE|-]`
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The new database file, which must not exist; or a PostgreSQL URL, whose groups table
    /// must be empty or absent (it is created).
    #[arg(long)]
    pub db: String,
    /// Seconds to keep trying an unreachable PostgreSQL before giving up (exit 1).
    #[arg(long, value_name = "SECONDS", default_value_t = postgres::CONNECT_TIMEOUT_SECS)]
    pub connect_timeout: u64,
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
    #[error(transparent)]
    Postgres(#[from] PgError),
    /// A restore into PostgreSQL failed before its commit: the transaction was rolled back.
    #[error("{url}: {source}; nothing was written")]
    RolledBack { url: String, source: PgError },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// Exit status 2, as clap's own usage errors.
    #[error("{0}")]
    Usage(&'static str),
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

/// Exit status for a usage error (SPEC §5), as clap uses for its own.
const USAGE_ERROR: u8 = 2;

fn finish(command: &str, result: Result<(), BackupError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("groupd {command}: {}", e.to_string().replace('\n', " "));
            match e {
                BackupError::Usage(_) => ExitCode::from(USAGE_ERROR),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Connects to the PostgreSQL database at `url` (retrying for up to `connect_timeout`
/// seconds; the table is created when missing, and checked to fit), runs `job` on it, and lets
/// it go, all on a runtime of the command's own.
fn on_postgres<T>(
    url: &str,
    connect_timeout: u64,
    job: impl AsyncFnOnce(&PgStore) -> Result<T, BackupError>,
) -> Result<T, BackupError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BackupError::Runtime)?;
    runtime.block_on(async {
        let store = PgStore::connect(url, Duration::from_secs(connect_timeout)).await?;
        let result = job(&store).await;
        store.close().await;
        result
    })
}

/// Whether a group holds what groupd would not have written (Kanboard may have).
fn unacceptable(g: GroupRef<'_>) -> bool {
    !group::name_is_valid(g.name) || !group::external_id_is_valid(g.external_id)
}

/// The end of check's line when a group is one groupd would not accept.
fn note(bad: Option<u64>) -> String {
    bad.map_or(String::new(), |id| {
        format!("; note: group {id} has a name or external id that groupd would not accept")
    })
}

/// `groupd check`: healthy → one line on stdout, exit 0; damaged (or held by a server) → one
/// line on stderr, exit 1.
pub fn check(args: CheckArgs) -> ExitCode {
    finish("check", run_check(&args))
}

fn run_check(args: &CheckArgs) -> Result<(), BackupError> {
    if storage::is_postgres_url(&args.db) {
        return check_postgres(args);
    }
    let (db, outcome) = match Offline::open(Path::new(&args.db), args.repair) {
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
        if bad.is_none() && unacceptable(g) {
            bad = Some(g.id);
        }
    })?;
    let bytes = db.file_bytes().map_err(|source| BackupError::Read {
        path: args.db.clone(),
        source,
    })?;
    let state = match outcome {
        CheckOutcome::Healthy => "healthy",
        CheckOutcome::RolledBack => {
            "repaired (the last commit did not verify and was rolled back: the writes of that one commit are lost)"
        }
        CheckOutcome::LogCut => {
            "repaired (the commit log was damaged: the commits before the damage were applied, those after it are lost; the log was kept as .wal.damaged)"
        }
    };
    let note = note(bad);
    println!(
        "{}: {state}: {groups} groups, next id {next_id}, {bytes} bytes{note}",
        args.db
    );
    Ok(())
}

/// Sees one committed state for check: its counts, and the first group groupd would not
/// accept.
#[derive(Default)]
struct Survey {
    state: Option<StateInfo>,
    bad: Option<u64>,
}

impl Visitor for Survey {
    fn begin(&mut self, state: StateInfo) {
        self.state = Some(state);
    }

    fn group(&mut self, g: GroupRef<'_>) {
        if self.bad.is_none() && unacceptable(g) {
            self.bad = Some(g.id);
        }
    }
}

/// Connecting checks that the table fits (SPEC §14); PostgreSQL verifies its own pages.
fn check_postgres(args: &CheckArgs) -> Result<(), BackupError> {
    if args.repair {
        return Err(BackupError::Usage(
            "--repair is for a database file; PostgreSQL repairs its own (crash recovery from \
             its WAL): run check without --repair",
        ));
    }
    let survey = on_postgres(&args.db, args.connect_timeout, async |store| {
        Ok(store.visit_dump(Survey::default()).await?)
    })?;
    let state = survey.state.unwrap_or(StateInfo {
        groups: 0,
        next_id: 1,
    });
    println!(
        "{}: healthy: {} groups, next id {}{}",
        storage::shown(&args.db),
        state.groups,
        state.next_id,
        note(survey.bad)
    );
    Ok(())
}

/// `groupd dump`: the dump on stdout, exit 0; otherwise one line on stderr, exit 1.
pub fn dump(args: DumpArgs) -> ExitCode {
    finish("dump", run_dump(&args))
}

fn run_dump(args: &DumpArgs) -> Result<(), BackupError> {
    if args.addr.is_none() && storage::is_postgres_url(&args.db) {
        // Written from a blocking thread: stdout must not be locked by this one meanwhile.
        return dump_postgres(args);
    }
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match &args.addr {
        Some(addr) => dump_online(addr, args.token_file.clone(), &mut out)?,
        None => dump_offline(Path::new(&args.db), &mut out)?,
    }
    out.flush().map_err(BackupError::Write)
}

fn header(next_id: u64, groups: u64) -> String {
    format!(
        "{{\"format\":\"{DUMP_FORMAT}\",\"version\":{DUMP_VERSION},\"next_id\":{next_id},\"groups\":{groups}}}\n"
    )
}

/// Writes a dump's lines as a store shows its groups; after the first write error, nothing
/// more (the error is kept for the end).
struct DumpWriter<W> {
    out: W,
    line: Vec<u8>,
    failed: Option<std::io::Error>,
}

impl<W: Write> DumpWriter<W> {
    fn new(out: W) -> Self {
        DumpWriter {
            out,
            line: Vec::with_capacity(256),
            failed: None,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.failed = self.out.write_all(bytes).err();
        }
    }

    fn header(&mut self, state: StateInfo) {
        self.write(header(state.next_id, state.groups).as_bytes());
    }

    fn group(&mut self, group: GroupRef<'_>) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        write_group(&mut line, group);
        line.push(b'\n');
        self.write(&line);
        self.line = line;
    }

    /// Flushes, and gives the first error.
    fn finish(mut self) -> Result<(), BackupError> {
        match self.failed.take() {
            Some(e) => Err(BackupError::Write(e)),
            None => self.out.flush().map_err(BackupError::Write),
        }
    }
}

impl<W: Write + Send + 'static> Visitor for DumpWriter<W> {
    fn begin(&mut self, state: StateInfo) {
        self.header(state);
    }

    fn group(&mut self, group: GroupRef<'_>) {
        DumpWriter::group(self, group);
    }
}

fn dump_offline(path: &Path, out: &mut impl Write) -> Result<(), BackupError> {
    let (db, _) = Offline::open(path, false)?;
    let snapshot = db.snapshot()?;
    let mut writer = DumpWriter::new(out);
    writer.header(StateInfo {
        groups: snapshot.len(),
        next_id: snapshot.next_id(),
    });
    snapshot.each(|group| writer.group(group))?;
    writer.finish()
}

/// One snapshot, read as a server's online dump reads it; rendered on a blocking thread that
/// writes to stdout as it goes.
fn dump_postgres(args: &DumpArgs) -> Result<(), BackupError> {
    let writer = on_postgres(&args.db, args.connect_timeout, async |store| {
        let out = BufWriter::with_capacity(1 << 16, std::io::stdout());
        Ok(store.visit_dump(DumpWriter::new(out)).await?)
    })?;
    writer.finish()
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
    let postgres = storage::is_postgres_url(&args.db);
    if !postgres && Path::new(&args.db).exists() {
        return Err(embedded::RestoreError::Exists(PathBuf::from(&args.db)).into());
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
    let mut progress = |done| {
        if show {
            eprint!("\rrestoring: {done} of {total} groups written");
        }
    };
    if postgres {
        on_postgres(&args.db, args.connect_timeout, async |store| {
            let restored = store.restore(next_id, &groups, &mut progress).await;
            restored.map_err(|source| match source {
                PgError::OutcomeUnknown(_) => BackupError::Postgres(source),
                source => BackupError::RolledBack {
                    url: storage::shown(&args.db),
                    source,
                },
            })
        })?;
    } else {
        embedded::restore(Path::new(&args.db), next_id, &groups, &mut progress)?;
    }
    if show {
        eprintln!();
    }
    println!(
        "{}: restored {total} groups, next id {next_id}",
        storage::shown(&args.db)
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
