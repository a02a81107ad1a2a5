//! `groupd`: parses the command line, sets up logging, opens the database and runs a transport.
//! Everything else lives in the library.

use std::ffi::OsString;
use std::fmt;
use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use groupd::auth::Token;
use groupd::connection::End;
use groupd::dispatch::Service;
use groupd::limits::{self, Limits};
use groupd::server;
use groupd::session::Ending;
use groupd::storage::{self, GroupStore};

/// Kanboard's Group API as newline-delimited JSON-RPC 2.0 over TCP and stdio, stored in redb.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve JSON-RPC over TCP, one JSON text per line (and over HTTP with --http).
    Serve {
        /// Address to listen on, HOST:PORT (a host name is resolved).
        #[arg(long, env = "GROUPD_LISTEN", default_value = "127.0.0.1:7411", value_parser = Endpoint::parse)]
        listen: Endpoint,
        /// Also answer JSON-RPC over HTTP/1.1 POST on this address, for Kanboard's client
        /// libraries (Basic auth `jsonrpc:TOKEN` when a token is set).
        #[arg(long, value_name = "ADDR", value_parser = Endpoint::parse)]
        http: Option<Endpoint>,
        #[command(flatten)]
        security: SecurityArgs,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        limits: LimitArgs,
        /// Open connections at most, TCP and HTTP together; the next one gets a "Server busy"
        /// answer and is closed.
        #[arg(long, default_value_t = limits::MAX_CONNECTIONS, value_parser = at_least_one)]
        max_connections: usize,
        /// Seconds a silent connection stays open (0 = no limit).
        #[arg(long, value_name = "SECONDS", default_value_t = limits::IDLE_TIMEOUT_SECS)]
        idle_timeout: u64,
    },
    /// Serve JSON-RPC over stdin/stdout, for scripts, editors (LSP) and AI agents (MCP); exits
    /// 0 at end of input, and at `exit`: 0 after `shutdown`, 1 without.
    Stdio {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Call one method and print its result (exit 0; `false`: exit 3) or its error (on
    /// stderr, exit 1), for shell scripts.
    Call(groupd::client::CallArgs),
    /// Verify the database file (every page checksum) and print its groups, next id and size;
    /// exit 1 when it is damaged or a server holds it. On a PostgreSQL URL: connect, check that
    /// the table fits, and print its groups and next id.
    Check(groupd::backup::CheckArgs),
    /// Write every group as JSON Lines on stdout: from the file or PostgreSQL database (--db), or
    /// from a running server (--addr), as one consistent snapshot.
    Dump(groupd::backup::DumpArgs),
    /// Build a new database file, or fill an empty PostgreSQL table, from a dump, with the same
    /// ids and next id; a bad dump writes nothing.
    Restore(groupd::backup::RestoreArgs),
}

#[derive(Args)]
struct DbArg {
    /// Database: a file (created when missing), or a PostgreSQL URL
    /// (postgres://USER:PASSWORD@HOST[,HOST2]/DB?target_session_attrs=read-write).
    #[arg(long, env = "GROUPD_DB", default_value = "groupd.redb")]
    db: String,
    /// Seconds to keep trying an unreachable PostgreSQL at start before giving up (exit 1).
    #[arg(long, value_name = "SECONDS",
          default_value_t = storage::postgres::CONNECT_TIMEOUT_SECS)]
    connect_timeout: u64,
}

#[derive(Args)]
struct SecurityArgs {
    /// File holding the token clients must present (surrounding whitespace trimmed); required
    /// to listen on an address other than loopback.
    #[arg(long, env = "GROUPD_TOKEN_FILE", value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Listen on a non-loopback address even without a token: anyone who can reach it can
    /// change the groups.
    #[arg(long)]
    insecure: bool,
}

#[derive(Args)]
struct LimitArgs {
    /// Bytes in one request line at most (line ending excluded).
    #[arg(long, default_value_t = limits::MAX_LINE_BYTES, value_parser = at_least_one)]
    max_line_bytes: usize,
    /// Entries in one batch at most.
    #[arg(long, default_value_t = limits::MAX_BATCH, value_parser = at_least_one)]
    max_batch: usize,
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got {s:?}")),
    }
}

/// Exit status for a usage error (SPEC §5), as clap uses for its own.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse_from(language_client_args(std::env::args_os().collect()));
    let cli = match cli.command {
        Command::Call(args) => return groupd::client::run(args),
        Command::Check(args) => return groupd::backup::check(args),
        Command::Dump(args) => return groupd::backup::dump(args),
        Command::Restore(args) => return groupd::backup::restore(args),
        command => Cli { command },
    };
    let addresses = match Addresses::resolve(&cli.command) {
        Ok(addresses) => addresses,
        Err(why) => {
            eprintln!("groupd: {why}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(why) = check_addresses(&cli, &addresses) {
        eprintln!("groupd: {why}");
        return ExitCode::from(USAGE_ERROR);
    }
    init_logging();
    match run(cli, addresses) {
        Ok(status) => status,
        Err(message) => {
            eprintln!("groupd: {message}");
            ExitCode::FAILURE
        }
    }
}

/// SPEC §8: language clients start a server as `CMD [ARGS…] --stdio [--clientProcessId=N]`.
/// `--clientProcessId` (either form) is dropped, and `--stdio` becomes the `stdio` subcommand
/// unless another subcommand was given (then clap reports it as unexpected).
fn language_client_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut kept: Vec<OsString> = Vec::with_capacity(args.len() + 1);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--clientProcessId") => {
                args.next();
            }
            Some(a) if a.starts_with("--clientProcessId=") => {}
            _ => kept.push(arg),
        }
    }
    let subcommand = kept
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|a| !a.starts_with('-'));
    let (none, stdio) = (subcommand.is_none(), subcommand == Some("stdio"));
    if !(none || stdio) || !kept.iter().any(|a| a == "--stdio") {
        return kept;
    }
    kept.retain(|a| a != "--stdio");
    if none {
        kept.insert(1.min(kept.len()), OsString::from("stdio"));
    }
    kept
}

/// A `--listen` or `--http` value: `HOST:PORT`, HOST an IP address (IPv6 in brackets) or a
/// name, resolved when the server starts (SPEC §5).
#[derive(Clone, Debug)]
struct Endpoint(String);

impl Endpoint {
    /// Checks the shape only; whether the host resolves is known at start.
    fn parse(text: &str) -> Result<Endpoint, String> {
        let bad =
            || format!("expected HOST:PORT (e.g. 127.0.0.1:7411 or localhost:7411), got {text:?}");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let bare_ipv6 = host.contains(':') && !(host.starts_with('[') && host.ends_with(']'));
        if host.is_empty() || bare_ipv6 || port.parse::<u16>().is_err() {
            return Err(bad());
        }
        Ok(Endpoint(text.to_owned()))
    }

    /// Every address the host stands for, in the resolver's order.
    fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let cannot = |why: String| format!("cannot resolve {self}: {why}");
        let addrs: Vec<SocketAddr> = self
            .0
            .to_socket_addrs()
            .map_err(|e| cannot(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(cannot("no address".into()));
        }
        Ok(addrs)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `--listen` and `--http` resolved to; empty for the subcommands that do not listen.
#[derive(Default)]
struct Addresses {
    tcp: Vec<SocketAddr>,
    http: Vec<SocketAddr>,
}

impl Addresses {
    fn resolve(command: &Command) -> Result<Addresses, String> {
        let Command::Serve { listen, http, .. } = command else {
            return Ok(Addresses::default());
        };
        Ok(Addresses {
            tcp: listen.resolve()?,
            http: http
                .as_ref()
                .map(Endpoint::resolve)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// SPEC §7: listening beyond loopback needs a token, or an explicit `--insecure`. A host name
/// counts as loopback only when every address it resolves to is.
fn check_addresses(cli: &Cli, addresses: &Addresses) -> Result<(), String> {
    let Command::Serve { security, .. } = &cli.command else {
        return Ok(());
    };
    if security.token_file.is_some() || security.insecure {
        return Ok(());
    }
    let exposed = (addresses.tcp.iter())
        .chain(&addresses.http)
        .find(|addr| !addr.ip().to_canonical().is_loopback());
    match exposed {
        Some(addr) => Err(format!(
            "refusing to listen on {addr} without a token: give --token-file PATH \
             (or GROUPD_TOKEN_FILE), listen on 127.0.0.1, or pass --insecure"
        )),
        None => Ok(()),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli, addresses: Addresses) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve {
                listen,
                http,
                security,
                db,
                limits,
                max_connections,
                idle_timeout,
            } => {
                let limits = Limits {
                    max_line_bytes: limits.max_line_bytes,
                    max_batch: limits.max_batch,
                    max_connections,
                    idle_timeout: (idle_timeout > 0).then(|| Duration::from_secs(idle_timeout)),
                };
                let listen = (listen, addresses.tcp);
                let http = http.map(|http| (http, addresses.http));
                serve(listen, http, security.token_file, db, limits).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Stdio { db, limits: l } => {
                let limits = Limits {
                    max_line_bytes: l.max_line_bytes,
                    max_batch: l.max_batch,
                    ..Limits::default()
                };
                stdio(db, limits).await
            }
            Command::Call(_) | Command::Check(_) | Command::Dump(_) | Command::Restore(_) => {
                unreachable!("these commands are run by main before logging starts")
            }
        }
    });
    // stdin may still be held by a blocking read that will never finish; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// An address to listen on, as given and as resolved.
type Listen = (Endpoint, Vec<SocketAddr>);

/// Binds before it opens the database, so that a start that fails on its addresses leaves no
/// new database file behind (SPEC §5).
async fn serve(
    listen: Listen,
    http: Option<Listen>,
    token_file: Option<PathBuf>,
    db: DbArg,
    limits: Limits,
) -> Result<(), String> {
    let token = match token_file {
        Some(path) => Some(Arc::new(Token::load(&path).map_err(|e| e.to_string())?)),
        None => None,
    };
    let (tcp, local) = bind(&listen).await?;
    let http = match &http {
        Some(http) => Some(bind(http).await?),
        None => None,
    };
    let service = open(&db, limits).await?;
    info!(db = %storage::shown(&db.db), "listening on {local}");
    if let Some((_, local)) = &http {
        info!("http listening on {local}");
    }
    let listeners = server::Listeners {
        tcp,
        http: http.map(|(listener, _)| listener),
    };
    let shutdown = on_signal();
    server::serve(listeners, Arc::clone(&service), token, shutdown).await;
    close(service).await?;
    info!("shut down cleanly");
    Ok(())
}

/// Listens on the first of the resolved addresses that can be bound.
async fn bind((given, addrs): &Listen) -> Result<(TcpListener, SocketAddr), String> {
    let cannot = |e: std::io::Error| format!("cannot listen on {given}: {e}");
    let listener = TcpListener::bind(addrs.as_slice()).await.map_err(cannot)?;
    let local = listener.local_addr().map_err(cannot)?;
    Ok((listener, local))
}

/// Serves stdin/stdout. Exits 0 at EOF or on a signal, and after `exit`: 0 when `shutdown` came
/// first, 1 otherwise (SPEC §11).
async fn stdio(db: DbArg, limits: Limits) -> Result<ExitCode, String> {
    let service = open(&db, limits).await?;
    info!(db = %storage::shown(&db.db), "serving on stdin/stdout");
    let result = server::serve_stdio(Arc::clone(&service), on_signal()).await;
    let closed = close(service).await;
    let end = result.map_err(|e| format!("stdio failed: {e}"))?;
    closed?;
    match end {
        End::Refused(Ending::Exit {
            after_shutdown: false,
        }) => {
            info!("exit without shutdown: exiting with status 1");
            Ok(ExitCode::FAILURE)
        }
        _ => {
            info!("shut down cleanly");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open(db: &DbArg, limits: Limits) -> Result<Arc<Service>, String> {
    let timeout = Duration::from_secs(db.connect_timeout);
    let store = storage::connect(&db.db, timeout)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(Service::new(store, limits)))
}

/// Waits for queued writes to commit and stops the writer. Connections that outlived the grace
/// period still hold the service; their writes then fail instead of being acknowledged.
/// After a storage fault (SPEC §13) the shutdown is not a clean one: exit status 1.
async fn close(service: Arc<Service>) -> Result<(), String> {
    service.store().close().await;
    match service.store().fault() {
        Some(fault) => Err(format!(
            "stopped after a storage fault ({fault}); writes were refused since then; check the database with `groupd check`"
        )),
        None => Ok(()),
    }
}

/// A token cancelled at the first SIGINT or SIGTERM.
fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    // The handlers are installed here, before anything is served: installed by the task below,
    // they could come after a first answer, and a signal then would kill the process uncleanly.
    let signal = signal_received();
    tokio::spawn(async move {
        signal.await;
        info!("shutting down");
        cancel.cancel();
    });
    token
}

/// Installs the SIGINT and SIGTERM handlers now; the future resolves at the first signal.
#[cfg(unix)]
fn signal_received() -> impl Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match handlers {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn signal_received() -> impl Future<Output = ()> + Send {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
