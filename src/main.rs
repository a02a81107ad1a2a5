//! `groupd`: parses the command line, sets up logging, opens the database and runs a transport.
//! Everything else lives in the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use groupd::dispatch::Service;
use groupd::limits::{self, Limits};
use groupd::server;
use groupd::storage::Store;

/// Kanboard's Group API as newline-delimited JSON-RPC 2.0 over TCP and stdio, stored in redb.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve JSON-RPC over TCP, one JSON text per line.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "GROUPD_LISTEN", default_value = "127.0.0.1:7411")]
        listen: SocketAddr,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        limits: LimitArgs,
        /// Open TCP connections at most; the next one gets a "Server busy" line and is closed.
        #[arg(long, default_value_t = limits::MAX_CONNECTIONS, value_parser = at_least_one)]
        max_connections: usize,
        /// Seconds a silent connection stays open (0 = no limit).
        #[arg(long, value_name = "SECONDS", default_value_t = limits::IDLE_TIMEOUT_SECS)]
        idle_timeout: u64,
    },
    /// Serve JSON-RPC over stdin/stdout; exits 0 at end of input.
    Stdio {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

#[derive(Args)]
struct DbArg {
    /// Database file; created when missing.
    #[arg(long, env = "GROUPD_DB", default_value = "groupd.redb")]
    db: PathBuf,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("groupd: {message}");
            ExitCode::FAILURE
        }
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

fn run(cli: Cli) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve {
                listen,
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
                serve(listen, db.db, limits).await
            }
            Command::Stdio { db, limits: l } => {
                let limits = Limits {
                    max_line_bytes: l.max_line_bytes,
                    max_batch: l.max_batch,
                    ..Limits::default()
                };
                stdio(db.db, limits).await
            }
        }
    });
    // stdin may still be held by a blocking read that will never finish; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

async fn serve(listen: SocketAddr, db: PathBuf, limits: Limits) -> Result<(), String> {
    let service = open(&db, limits)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    info!(db = %db.display(), "listening on {local}");
    let shutdown = on_signal();
    server::serve_tcp(listener, Arc::clone(&service), shutdown).await;
    close(service);
    info!("shut down cleanly");
    Ok(())
}

async fn stdio(db: PathBuf, limits: Limits) -> Result<(), String> {
    let service = open(&db, limits)?;
    info!(db = %db.display(), "serving on stdin/stdout");
    let result = server::serve_stdio(Arc::clone(&service), on_signal()).await;
    close(service);
    result.map_err(|e| format!("stdio failed: {e}"))
}

fn open(db: &std::path::Path, limits: Limits) -> Result<Arc<Service>, String> {
    let store = Store::open(db).map_err(|e| e.to_string())?;
    Ok(Arc::new(Service::new(store, limits)))
}

/// Waits for queued writes to commit and stops the writer. Connections that outlived the grace
/// period still hold the service; their writes then fail instead of being acknowledged.
fn close(service: Arc<Service>) {
    service.store().close();
}

/// A token cancelled at the first SIGINT or SIGTERM.
fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
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

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
