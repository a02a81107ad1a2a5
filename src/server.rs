//! The transports: the TCP listener, the optional HTTP listener ([`crate::http`]), and a stdio
//! session. Both listeners obey one set of rules, kept here in [`Shared`]: one pool of connection
//! slots, one token, one shutdown signal, and one set of tasks that shutdown waits for. Shutdown
//! is the same for every transport: stop taking new work, let the conversations finish what they
//! already read, within a bounded grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::auth::Token;
use crate::connection::{self, End};
use crate::dispatch::Service;
use crate::http;
use crate::jsonrpc::{self, RpcError};
use crate::session::{Ending, Session};

/// How long shutdown waits for open conversations to finish their requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a refused connection gets to take its "Server busy" answer.
pub(crate) const BUSY_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The listeners `serve` runs: TCP always, HTTP when `--http` is given.
pub struct Listeners {
    pub tcp: TcpListener,
    pub http: Option<TcpListener>,
}

/// What every listener shares, so that a rule set for one holds for all.
#[derive(Clone)]
pub(crate) struct Shared {
    pub service: Arc<Service>,
    /// `Some` when clients must authenticate (SPEC §7).
    pub token: Option<Arc<Token>>,
    /// One slot per open connection, TCP and HTTP alike (`--max-connections`).
    slots: Arc<Semaphore>,
    /// Every connection task, so that shutdown can wait for them all.
    tracker: TaskTracker,
    pub shutdown: CancellationToken,
    /// Set once an HTTP request on the TCP port has been logged at `warn`; later ones are
    /// logged at `debug`, so that a web page cannot flood the log.
    http_on_tcp_logged: Arc<AtomicBool>,
}

/// Accepts connections on every listener until `shutdown`, then waits (up to
/// [`SHUTDOWN_GRACE`]) for the open ones to finish.
pub async fn serve(
    listeners: Listeners,
    service: Arc<Service>,
    token: Option<Arc<Token>>,
    shutdown: CancellationToken,
) {
    let shared = Shared {
        slots: Arc::new(Semaphore::new(service.limits().max_connections)),
        service,
        token,
        tracker: TaskTracker::new(),
        shutdown,
        http_on_tcp_logged: Arc::new(AtomicBool::new(false)),
    };
    let tcp = accept(listeners.tcp, &shared, serve_tcp_connection);
    let http = async {
        if let Some(listener) = listeners.http {
            accept(listener, &shared, http::serve_connection).await;
        }
    };
    tokio::join!(tcp, http);
    finish(shared.tracker).await;
}

/// The accept loop every listener runs: takes a connection slot for each new connection (or
/// notes there was none) and hands both to `handle` on a tracked task. Returns at `shutdown`,
/// dropping the listener so that no more connections queue up.
async fn accept<H, F>(listener: TcpListener, shared: &Shared, handle: H)
where
    H: Fn(TcpStream, SocketAddr, Option<OwnedSemaphorePermit>, Shared) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let slot = Arc::clone(&shared.slots).try_acquire_owned().ok();
        if slot.is_none() {
            warn!(%peer, "connection refused: server busy");
        }
        shared
            .tracker
            .spawn(handle(socket, peer, slot, shared.clone()));
    }
}

/// One TCP conversation, holding its connection slot until it ends; without a slot, the
/// "Server busy" line.
async fn serve_tcp_connection(
    socket: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
    shared: Shared,
) {
    let Some(slot) = slot else {
        return refuse_busy(socket).await;
    };
    debug!(%peer, "connection opened");
    let service = &shared.service;
    let idle = service.limits().idle_timeout;
    let (reader, writer) = socket.into_split();
    let session = Session::tcp(shared.token.clone());
    match connection::serve(reader, writer, service, session, idle, &shared.shutdown).await {
        Ok(End::Idle) => debug!(%peer, "connection closed: idle timeout"),
        Ok(End::Refused(Ending::LooksLikeHttp)) => log_http_on_tcp(peer, &shared),
        Ok(_) => debug!(%peer, "connection closed"),
        Err(e) => debug!(%peer, error = %e, "connection closed on error"),
    }
    drop(slot);
}

/// SPEC §7 closes an HTTP request on the TCP port unanswered (a web page must not drive groupd);
/// the log says why, and where HTTP is served, once per run.
fn log_http_on_tcp(peer: SocketAddr, shared: &Shared) {
    if shared.http_on_tcp_logged.swap(true, Ordering::Relaxed) {
        debug!(%peer, "connection closed: an HTTP request on the TCP port");
    } else {
        warn!(
            %peer,
            "closed a connection that sent an HTTP request to the TCP port, unanswered: \
             HTTP clients need `--http ADDR` (further ones are logged at debug)"
        );
    }
}

/// Serves one conversation over stdin/stdout until EOF, `exit` or `shutdown`, and says how it
/// ended: after `exit`, the process exits at once (SPEC §11), though stdin may still be open.
pub async fn serve_stdio(
    service: Arc<Service>,
    shutdown: CancellationToken,
) -> std::io::Result<End> {
    let (stdin, stdout) = (tokio::io::stdin(), tokio::io::stdout());
    connection::serve(stdin, stdout, &service, Session::trusted(), None, &shutdown).await
}

async fn refuse_busy(mut socket: TcpStream) {
    let mut line = Vec::new();
    jsonrpc::write_error(&mut line, None, &RpcError::ServerBusy);
    line.push(b'\n');
    let _ = tokio::time::timeout(BUSY_WRITE_TIMEOUT, async {
        let _ = socket.write_all(&line).await;
        let _ = socket.shutdown().await;
    })
    .await;
}

async fn finish(tracker: TaskTracker) {
    tracker.close();
    if !tracker.is_empty() {
        info!(
            connections = tracker.len(),
            "waiting for open connections to finish"
        );
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            connections = tracker.len(),
            "grace period over; closing the remaining connections"
        );
    }
}
