//! `groupd-load`: load generator, transport baseline and storage baseline for groupd's
//! benchmarks (`scripts/bench.sh`).
//!
//! - `run`: C connections × D pipelined requests in flight against a server, for a warm-up and a
//!   duration, verifying every answer (id, shape, no error) and printing calls/s, lines/s and
//!   latency percentiles. Any wrong answer ends the run with exit status 1.
//! - `baseline`: a server that answers every line with a fixed valid response, parsing only the
//!   ids and method names: the ceiling the transport allows on this machine. With `--log DIR`
//!   it also keeps groupd's durability rule: a write is answered only once its line is in a log
//!   file and synced, many writes to a sync (group commit), answers in order: the ceiling that
//!   durable acknowledgements allow on this disk, whatever the storage does besides.
//! - `commit-rate`: one durable redb commit per create, in a loop: the rate group commit is
//!   measured against.
//! - `seed`: fills a database with N groups through groupd's own storage layer.
//! - `pg-commit-rate`, `pg-select-rate`: the same kind of baselines on PostgreSQL, from a plain
//!   tokio-postgres client on the cluster groupd serves: one autocommit INSERT per transaction
//!   from one client, and plain selects with one in flight per connection (by primary key, or
//!   with `--all` the name-ordered select `getAllGroups` answers from).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
#[command(about = "Load generator and baselines for groupd benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive a server and report throughput and latency.
    Run(RunArgs),
    /// Serve fixed valid answers: the transport ceiling.
    Baseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Answer writes only once their lines are synced to a log file in this directory.
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Measure one durable redb commit per create.
    CommitRate {
        /// Directory for the scratch database.
        #[arg(long, default_value = "target")]
        dir: PathBuf,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Hold N idle connections open for a while (for measuring the server's memory).
    Idle {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Wait until a server answers getGroup, then print how long that took.
    Probe {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// Create N groups named `seed-<i>` in a database (the server must not be running).
    Seed {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        groups: u64,
    },
    /// Measure one PostgreSQL INSERT per transaction (autocommit) from one client, into a
    /// scratch table shaped like `groups` (made and dropped here).
    PgCommitRate {
        /// `postgres://…` URL of the database groupd serves.
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Measure plain selects on the `groups` table, one in flight per connection.
    PgSelectRate(PgSelectArgs),
}

#[derive(Parser, Clone)]
struct PgSelectArgs {
    /// `postgres://…` URL of the database groupd serves.
    #[arg(long)]
    url: String,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 8)]
    connections: usize,
    /// Ids to select by primary key: 1..=N (each must exist).
    #[arg(long, default_value_t = 1000)]
    ids: u64,
    /// Select every group in name order instead, as `getAllGroups` does.
    #[arg(long)]
    all: bool,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

#[derive(Parser, Clone)]
struct RunArgs {
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, value_enum, default_value_t = Mix::Get)]
    mix: Mix,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 8)]
    connections: usize,
    /// Lines in flight per connection.
    #[arg(long, short = 'd', default_value_t = 16)]
    depth: usize,
    /// Calls per line (1 = plain requests, more = JSON-RPC batches).
    #[arg(long, short = 'b', default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Ids `get` and `update` pick from: 1..=N (default: read with getAllGroups at start).
    #[arg(long)]
    ids: Option<u64>,
    /// Print one machine-readable line instead of prose.
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Mix {
    /// getGroup with positional params (`[7]`).
    Get,
    /// getGroup with named params (`{"group_id":7}`), the other shape clients send.
    GetNamed,
    All,
    Create,
    Update,
    /// 90% get, 5% create, 5% update.
    Mixed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Get,
    GetNamed,
    All,
    Create,
    Update,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Baseline { listen, log: None } => baseline(listen).await,
            Command::Baseline {
                listen,
                log: Some(dir),
            } => durable_baseline(listen, &dir).await,
            Command::CommitRate { dir, seconds } => commit_rate(&dir, seconds),
            Command::Seed { db, groups } => seed(&db, groups).await,
            Command::Idle {
                addr,
                connections,
                seconds,
            } => idle(addr, connections, seconds).await,
            Command::Probe { addr, timeout } => probe(addr, timeout).await,
            Command::PgCommitRate { url, seconds } => pg_commit_rate(&url, seconds).await,
            Command::PgSelectRate(args) => pg_select_rate(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> std::process::ExitCode {
    eprintln!("groupd-load: {message}");
    std::process::ExitCode::FAILURE
}

/// Small, fast, seedable: the load's randomness needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Counts {
    calls: u64,
    lines: u64,
    latencies_us: Vec<u32>,
}

async fn run(args: RunArgs) -> Result<(), String> {
    let ids = match args.ids {
        Some(n) => n,
        None => count_groups(args.addr).await?,
    };
    if ids == 0 && matches!(args.mix, Mix::Get | Mix::Update | Mix::Mixed) {
        return Err("this mix needs existing groups: seed some first or pass --ids".into());
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let run_tag = u64::from(std::process::id()) ^ now_nanos();
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        let (args, measuring, stop) = (args.clone(), Arc::clone(&measuring), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            drive(&args, conn, ids, run_tag, &measuring, &stop).await
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    measuring.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let mut total = Counts {
        calls: 0,
        lines: 0,
        latencies_us: Vec::new(),
    };
    for task in tasks {
        let counts = task
            .await
            .map_err(|e| format!("connection task failed: {e}"))??;
        total.calls += counts.calls;
        total.lines += counts.lines;
        total.latencies_us.extend(counts.latencies_us);
    }
    report(&args, &mut total, elapsed);
    Ok(())
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn report(args: &RunArgs, total: &mut Counts, elapsed: f64) {
    total.latencies_us.sort_unstable();
    let pct = |p: f64| percentile_ms(&total.latencies_us, p);
    let (calls, lines) = (total.calls as f64 / elapsed, total.lines as f64 / elapsed);
    let (p50, p99, p999, max) = (pct(0.50), pct(0.99), pct(0.999), pct(1.0));
    if args.quiet {
        println!(
            "calls_per_s={calls:.0} lines_per_s={lines:.0} p50_ms={p50:.3} p99_ms={p99:.3} p999_ms={p999:.3} max_ms={max:.3}"
        );
    } else {
        println!(
            "{:?} c={} d={} b={}: {calls:.0} calls/s, {lines:.0} lines/s, latency ms p50 {p50:.3} p99 {p99:.3} p99.9 {p999:.3} max {max:.3}",
            args.mix, args.connections, args.depth, args.batch
        );
    }
}

/// The `p` quantile (0..=1) of sorted microsecond latencies, in milliseconds; 0 when empty.
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[i]) / 1000.0
}

async fn count_groups(addr: SocketAddr) -> Result<u64, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"getAllGroups\",\"id\":0}\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&line).map_err(|e| format!("bad answer: {e}"))?;
    let groups = v["result"]
        .as_array()
        .ok_or_else(|| format!("bad getAllGroups answer: {line}"))?;
    Ok(groups
        .iter()
        .filter_map(|g| g["id"].as_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0))
}

/// One connection: keeps `depth` lines in flight, checks each answer against what was asked.
async fn drive(
    args: &RunArgs,
    conn: usize,
    ids: u64,
    run_tag: u64,
    measuring: &AtomicBool,
    stop: &AtomicBool,
) -> Result<Counts, String> {
    let stream = TcpStream::connect(args.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", args.addr))?;
    let _ = stream.set_nodelay(true);
    let (mut read, write) = stream.into_split();
    let mut write = BufWriter::new(write);
    let mut rng =
        Rng(0x9E37_79B9_7F4A_7C15 ^ (conn as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut next_id: u64 = 1;
    let mut in_flight: std::collections::VecDeque<(u64, Vec<Kind>, Instant)> = Default::default();
    let mut counts = Counts {
        calls: 0,
        lines: 0,
        latencies_us: Vec::new(),
    };
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut out = Vec::new();
    let mut seq = 0u64;
    let mut send =
        |out: &mut Vec<u8>, in_flight: &mut std::collections::VecDeque<_>, rng: &mut Rng| {
            let first = next_id;
            let kinds: Vec<Kind> = (0..args.batch).map(|_| pick(args.mix, rng)).collect();
            if args.batch > 1 {
                out.push(b'[');
            }
            for (i, kind) in kinds.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                seq += 1;
                write_request(out, *kind, next_id, ids, rng, run_tag, conn, seq);
                next_id += 1;
            }
            if args.batch > 1 {
                out.push(b']');
            }
            out.push(b'\n');
            in_flight.push_back((first, kinds, Instant::now()));
        };
    for _ in 0..args.depth {
        send(&mut out, &mut in_flight, &mut rng);
    }
    loop {
        write
            .write_all(&out)
            .await
            .map_err(|e| format!("write: {e}"))?;
        write.flush().await.map_err(|e| format!("write: {e}"))?;
        out.clear();
        if in_flight.is_empty() {
            break;
        }
        let n = read
            .read_buf(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("connection {conn}: server closed the connection"));
        }
        while let Some(at) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(at + 1);
            let (first, kinds, sent) = in_flight
                .pop_front()
                .ok_or_else(|| "an answer nobody asked for".to_string())?;
            verify(&line[..at], first, &kinds, args.batch > 1)?;
            if measuring.load(Ordering::Relaxed) {
                counts.calls += kinds.len() as u64;
                counts.lines += 1;
                counts
                    .latencies_us
                    .push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            if !stop.load(Ordering::Relaxed) {
                send(&mut out, &mut in_flight, &mut rng);
            }
        }
    }
    Ok(counts)
}

fn pick(mix: Mix, rng: &mut Rng) -> Kind {
    match mix {
        Mix::Get => Kind::Get,
        Mix::GetNamed => Kind::GetNamed,
        Mix::All => Kind::All,
        Mix::Create => Kind::Create,
        Mix::Update => Kind::Update,
        Mix::Mixed => match rng.below(100) {
            0..90 => Kind::Get,
            90..95 => Kind::Create,
            _ => Kind::Update,
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn write_request(
    out: &mut Vec<u8>,
    kind: Kind,
    id: u64,
    ids: u64,
    rng: &mut Rng,
    tag: u64,
    conn: usize,
    seq: u64,
) {
    use std::io::Write;
    let group = 1 + rng.below(ids);
    let _ = match kind {
        Kind::Get => {
            write!(
                out,
                r#"{{"jsonrpc":"2.0","method":"getGroup","id":{id},"params":[{group}]}}"#
            )
        }
        Kind::GetNamed => {
            write!(
                out,
                r#"{{"jsonrpc":"2.0","method":"getGroup","id":{id},"params":{{"group_id":{group}}}}}"#
            )
        }
        Kind::All => write!(
            out,
            r#"{{"jsonrpc":"2.0","method":"getAllGroups","id":{id}}}"#
        ),
        Kind::Create => write!(
            out,
            r#"{{"jsonrpc":"2.0","method":"createGroup","id":{id},"params":["load-{tag:x}-{conn}-{seq}","x"]}}"#
        ),
        Kind::Update => write!(
            out,
            r#"{{"jsonrpc":"2.0","method":"updateGroup","id":{id},"params":{{"group_id":{group},"external_id":"e{seq}"}}}}"#
        ),
    };
}

#[derive(Deserialize)]
struct Answer<'a> {
    jsonrpc: &'a str,
    id: u64,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// Fails unless `line` answers exactly the calls `kinds` with ids from `first`, without error.
fn verify(line: &[u8], first: u64, kinds: &[Kind], batch: bool) -> Result<(), String> {
    let text = std::str::from_utf8(line).map_err(|_| "answer is not UTF-8".to_string())?;
    let bad = |why: &str| format!("bad answer ({why}): {}", &text[..text.len().min(300)]);
    let answers: Vec<Answer> = if batch {
        serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?
    } else {
        vec![serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?]
    };
    if answers.len() != kinds.len() {
        return Err(bad("wrong number of answers"));
    }
    for (i, (answer, kind)) in answers.iter().zip(kinds).enumerate() {
        if answer.jsonrpc != "2.0" || answer.id != first + i as u64 || answer.error.is_some() {
            return Err(bad("wrong id or an error"));
        }
        let result = answer.result.ok_or_else(|| bad("no result"))?.get();
        let shape_ok = match kind {
            Kind::Get | Kind::GetNamed => result.starts_with("{\"id\":\""),
            Kind::All => result.starts_with('['),
            Kind::Create => result.bytes().all(|b| b.is_ascii_digit()),
            Kind::Update => result == "true",
        };
        if !shape_ok {
            return Err(bad("result of the wrong shape"));
        }
    }
    Ok(())
}

/// Binds a baseline's listener and says where (the bench reads the address from stderr).
async fn listen_for_baseline(listen: SocketAddr) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("baseline listening on {local}");
    Ok(listener)
}

async fn accept(listener: &TcpListener) -> Result<TcpStream, String> {
    let (socket, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let _ = socket.set_nodelay(true);
    Ok(socket)
}

/// The transport ceiling: reads lines, parses only ids and method names, answers at once.
async fn baseline(listen: SocketAddr) -> Result<(), String> {
    let listener = listen_for_baseline(listen).await?;
    loop {
        let socket = accept(&listener).await?;
        tokio::spawn(async move {
            let (read, write) = socket.into_split();
            let mut read = BufReader::new(read);
            let mut write = BufWriter::with_capacity(64 * 1024, write);
            let mut line = Vec::new();
            let mut out = Vec::new();
            loop {
                line.clear();
                match read.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                out.clear();
                canned_answer(&line, &mut out);
                if write.write_all(&out).await.is_err() {
                    break;
                }
                if read.buffer().is_empty() && write.flush().await.is_err() {
                    break;
                }
            }
            let _ = write.flush().await;
        });
    }
}

/// Bytes of the durable baseline's log file: written once, then overwritten in a circle, so
/// that its syncs overwrite blocks already allocated, as groupd's commit log does.
const BASELINE_LOG_BYTES: usize = 8 << 20;

/// The durable baseline's log: writes waiting for it, and the thread that writes and syncs them
/// (all that waited during one sync share the next one).
struct GroupLog {
    pending: std::sync::Mutex<Pending>,
    ready: std::sync::Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    waiters: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl GroupLog {
    fn start(dir: &std::path::Path) -> Result<Arc<GroupLog>, String> {
        use std::os::unix::fs::FileExt;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let path = dir.join(format!("baseline-log-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = std::fs::remove_file(&path);
        file.write_all_at(&vec![0; BASELINE_LOG_BYTES], 0)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("baseline log: {e}"))?;
        let log = Arc::new(GroupLog {
            pending: std::sync::Mutex::new(Pending::default()),
            ready: std::sync::Condvar::new(),
        });
        let writer = Arc::clone(&log);
        std::thread::Builder::new()
            .name("baseline-log".into())
            .spawn(move || writer.run(&file))
            .map_err(|e| e.to_string())?;
        Ok(log)
    }

    fn run(&self, file: &std::fs::File) {
        use std::os::unix::fs::FileExt;
        let mut at = 0;
        loop {
            let batch = {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                while pending.waiters.is_empty() {
                    pending = self.ready.wait(pending).unwrap_or_else(|p| p.into_inner());
                }
                std::mem::take(&mut *pending)
            };
            if at + batch.bytes.len() > BASELINE_LOG_BYTES {
                at = 0;
            }
            let synced = file
                .write_all_at(&batch.bytes, at as u64)
                .and_then(|()| file.sync_data());
            if let Err(e) = synced {
                eprintln!("groupd-load: baseline log: {e}");
                std::process::exit(1);
            }
            at += batch.bytes.len();
            for waiter in batch.waiters {
                let _ = waiter.send(());
            }
        }
    }

    /// Returns once `bytes` are written and synced.
    async fn append(&self, bytes: &[u8]) {
        let (synced, wait) = tokio::sync::oneshot::channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.bytes.extend_from_slice(bytes);
            pending.waiters.push(synced);
        }
        self.ready.notify_one();
        let _ = wait.await;
    }
}

/// [`baseline`] with durable writes: reads every line already here, answers them with fixed
/// answers, and when any of them writes, writes their lines to the log and waits for its sync
/// before sending the answers (as groupd does with a round of pipelined requests).
async fn durable_baseline(listen: SocketAddr, dir: &std::path::Path) -> Result<(), String> {
    let log = GroupLog::start(dir)?;
    let listener = listen_for_baseline(listen).await?;
    loop {
        let socket = accept(&listener).await?;
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut read = BufReader::new(read);
            let (mut line, mut out, mut writes) = (Vec::new(), Vec::new(), Vec::new());
            loop {
                line.clear();
                match read.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                loop {
                    if canned_answer(&line, &mut out) {
                        writes.extend_from_slice(&line);
                    }
                    if !read.buffer().contains(&b'\n') {
                        break;
                    }
                    line.clear();
                    if read.read_until(b'\n', &mut line).await.is_err() {
                        break;
                    }
                }
                if !writes.is_empty() {
                    log.append(&writes).await;
                    writes.clear();
                }
                if write.write_all(&out).await.is_err() {
                    break;
                }
                out.clear();
            }
        });
    }
}

#[derive(Deserialize)]
struct IdAndMethod<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    method: &'a str,
}

/// Appends the fixed answer to `line`; whether it holds a write.
fn canned_answer(line: &[u8], out: &mut Vec<u8>) -> bool {
    let text = std::str::from_utf8(line).unwrap_or("");
    let one = |out: &mut Vec<u8>, r: &IdAndMethod| {
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(r.id.get().as_bytes());
        out.extend_from_slice(b",\"result\":");
        out.extend_from_slice(match r.method {
            "getGroup" => br#"{"id":"1","external_id":"","name":"My Group A"}"#.as_slice(),
            "getAllGroups" => b"[]",
            "createGroup" => b"1",
            _ => b"true",
        });
        out.push(b'}');
    };
    let writes =
        |r: &IdAndMethod| matches!(r.method, "createGroup" | "updateGroup" | "removeGroup");
    if text.trim_start().starts_with('[') {
        let Ok(all) = serde_json::from_str::<Vec<IdAndMethod>>(text) else {
            return false;
        };
        out.push(b'[');
        for (i, r) in all.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            one(out, r);
        }
        out.extend_from_slice(b"]\n");
        all.iter().any(writes)
    } else if let Ok(r) = serde_json::from_str::<IdAndMethod>(text) {
        one(out, &r);
        out.push(b'\n');
        writes(&r)
    } else {
        false
    }
}

/// One durable redb commit per created group, as a naive server would do it.
fn commit_rate(dir: &std::path::Path, seconds: f64) -> Result<(), String> {
    use redb::{Database, TableDefinition};
    const T: TableDefinition<u64, &str> = TableDefinition::new("groups");
    let tmp = tempfile_in(dir)?;
    let db = Database::create(&tmp).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut t = txn.open_table(T).map_err(|e| e.to_string())?;
            t.insert(n, "a group name").map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())?;
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_file(&tmp);
    println!("commits_per_s={rate:.0}");
    Ok(())
}

fn tempfile_in(dir: &std::path::Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    Ok(dir.join(format!("commit-rate-{}.redb", std::process::id())))
}

async fn seed(db: &std::path::Path, groups: u64) -> Result<(), String> {
    use groupd::group::{WriteOp, WriteOutcome};
    use groupd::storage::embedded::Store;
    let store = Store::open(db).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut made = 0;
    while made < groups {
        let chunk = (groups - made).min(50_000);
        let ops = (made..made + chunk)
            .map(|i| WriteOp::Create {
                name: format!("seed-{i:08}"),
                external_id: String::new(),
            })
            .collect();
        let outcomes = store.write(ops).await.map_err(|e| e.to_string())?;
        if outcomes
            .iter()
            .any(|o| !matches!(o, WriteOutcome::Created(_)))
        {
            return Err("seeding a non-empty database: a name was taken".into());
        }
        made += chunk;
    }
    store.close();
    eprintln!(
        "seeded {groups} groups in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn idle(addr: SocketAddr, connections: usize, seconds: f64) -> Result<(), String> {
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        held.push(
            TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?,
        );
    }
    eprintln!("holding {connections} idle connections");
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    // A server that dropped them would show as EOF here.
    let mut open = 0;
    for stream in &held {
        let mut byte = [0u8; 1];
        if let Ok(Err(e)) =
            tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut byte)).await
        {
            return Err(format!("an idle connection failed: {e}"));
        }
        open += 1;
    }
    println!("idle_connections={open}");
    Ok(())
}

async fn probe(addr: SocketAddr, timeout: f64) -> Result<(), String> {
    let started = Instant::now();
    let request = b"{\"jsonrpc\":\"2.0\",\"method\":\"getGroup\",\"id\":1,\"params\":[1]}\n";
    while started.elapsed().as_secs_f64() < timeout {
        if let Ok(stream) = TcpStream::connect(addr).await {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            if write.write_all(request).await.is_ok()
                && BufReader::new(read).read_line(&mut line).await.is_ok()
                && line.starts_with("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\"")
            {
                println!(
                    "ready_after_ms={:.1}",
                    started.elapsed().as_secs_f64() * 1000.0
                );
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err(format!("{addr} did not answer within {timeout}s"))
}

/// groupd's own select for `getAllGroups` (storage/postgres/link.rs), so the baseline reads and
/// sorts exactly what groupd does; only the rendering and the wire are left out of it.
const PG_SELECT_ALL: &str = "SELECT id::int8, name::text, COALESCE(external_id, '')::text \
     FROM groups ORDER BY name COLLATE \"C\"";
/// A plain primary-key select (groupd's `getGroup` asks `id = ANY ($1)`, a round at a time).
const PG_SELECT_ONE: &str = "SELECT id::int8, name::text, COALESCE(external_id, '')::text \
     FROM groups WHERE id = $1";
const PG_SCRATCH: &str = "groupd_load_commit_rate";

/// A plain client; its connection runs on a task of its own. Errors name no URL (it may hold
/// a password).
async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connect to PostgreSQL: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("groupd-load: PostgreSQL connection: {e}");
        }
    });
    Ok(client)
}

/// One INSERT per transaction, each waited for: what a server without group commit could at
/// best do on this cluster. The scratch table has `groups`' shape (a sequence and two indexes).
async fn pg_commit_rate(url: &str, seconds: f64) -> Result<(), String> {
    let client = pg_connect(url).await?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {PG_SCRATCH}; CREATE TABLE {PG_SCRATCH} ( \
             id SERIAL PRIMARY KEY, external_id VARCHAR(255) DEFAULT '', name TEXT NOT NULL UNIQUE)"
        ))
        .await
        .map_err(pg_error)?;
    let insert = client
        .prepare(&format!(
            "INSERT INTO {PG_SCRATCH} (name, external_id) VALUES ($1, '')"
        ))
        .await
        .map_err(pg_error)?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        let name = format!("a group name {n}");
        client.execute(&insert, &[&name]).await.map_err(pg_error)?;
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    client
        .batch_execute(&format!("DROP TABLE {PG_SCRATCH}"))
        .await
        .map_err(pg_error)?;
    println!("commits_per_s={rate:.0}");
    Ok(())
}

/// C connections, each with one select in flight; calls/s and latency over the measured part.
async fn pg_select_rate(args: PgSelectArgs) -> Result<(), String> {
    let top = i32::try_from(args.ids).map_err(|_| "--ids must fit PostgreSQL's int4 ids")?;
    let mut clients = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        clients.push(pg_connect(&args.url).await?);
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    let until = warmup + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (conn, client) in clients.into_iter().enumerate() {
        let all = args.all;
        tasks.push(tokio::spawn(async move {
            let sql = if all { PG_SELECT_ALL } else { PG_SELECT_ONE };
            // Prepared once: a text query would cost a second round trip per call.
            let statement = client.prepare(sql).await.map_err(pg_error)?;
            let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (conn as u64 + 1));
            let mut latencies_us = Vec::new();
            while started.elapsed() < until {
                let sent = Instant::now();
                let id = 1 + rng.below(top as u64) as i32;
                pg_select(&client, &statement, all, id).await?;
                if sent.duration_since(started) >= warmup {
                    latencies_us.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                }
            }
            Ok::<_, String>(latencies_us)
        }));
    }
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(
            task.await
                .map_err(|e| format!("select task failed: {e}"))??,
        );
    }
    latencies_us.sort_unstable();
    let calls = latencies_us.len() as f64 / args.seconds;
    let (p50, p99) = (
        percentile_ms(&latencies_us, 0.50),
        percentile_ms(&latencies_us, 0.99),
    );
    println!("calls_per_s={calls:.0} p50_ms={p50:.3} p99_ms={p99:.3}");
    Ok(())
}

/// One select, checked: the group `id` exists, or (`all`) the table is not empty.
async fn pg_select(
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    all: bool,
    id: i32,
) -> Result<(), String> {
    let rows = if all {
        client.query(statement, &[]).await
    } else {
        client.query(statement, &[&id]).await
    }
    .map_err(pg_error)?;
    match (all, rows.len()) {
        (true, 0) => Err("no groups to select: seed some first".into()),
        (false, 1) | (true, _) => Ok(()),
        (false, _) => Err(format!("group {id} not found: seed 1..=--ids first")),
    }
}

fn pg_error(e: tokio_postgres::Error) -> String {
    format!("PostgreSQL: {e}")
}
