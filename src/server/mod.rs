//! The transports: the TCP listener ([`tcp`]), the optional HTTP listener ([`http`]), and a
//! stdio session ([`stdio`]). Both listeners obey one set of rules, kept here in [`Rules`]: one
//! pool of connection slots, one token, one shutdown signal, and one set of tasks that shutdown
//! waits for. Shutdown is the same for every transport: stop taking new work, let the
//! conversations finish what they already read, within a bounded grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::auth::Token;
use crate::dispatch::Service;

mod http;
mod stdio;
mod tcp;

pub use stdio::serve_stdio;

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
pub(crate) struct Rules {
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
    let rules = Rules {
        slots: Arc::new(Semaphore::new(service.limits().max_connections)),
        service,
        token,
        tracker: TaskTracker::new(),
        shutdown,
        http_on_tcp_logged: Arc::new(AtomicBool::new(false)),
    };
    let tcp = accept(listeners.tcp, &rules, tcp::serve_connection);
    let http = async {
        if let Some(listener) = listeners.http {
            accept(listener, &rules, http::serve_connection).await;
        }
    };
    tokio::join!(tcp, http);
    finish(rules.tracker).await;
}

/// The accept loop every listener runs: takes a connection slot for each new connection (or
/// notes there was none) and hands both to `handle` on a tracked task. Returns at `shutdown`,
/// dropping the listener so that no more connections queue up.
async fn accept<H, F>(listener: TcpListener, rules: &Rules, handle: H)
where
    H: Fn(TcpStream, SocketAddr, Option<OwnedSemaphorePermit>, Rules) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            () = rules.shutdown.cancelled() => break,
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
        let slot = Arc::clone(&rules.slots).try_acquire_owned().ok();
        if slot.is_none() {
            warn!(%peer, "connection refused: server busy");
        }
        rules
            .tracker
            .spawn(handle(socket, peer, slot, rules.clone()));
    }
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
