//! The transports: a TCP listener with its connection limit, and a stdio session. Both hand
//! each conversation to [`connection::serve`] and both shut down the same way: stop taking new
//! work, let the conversations finish what they already read, within a bounded grace period.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::connection::{self, End};
use crate::dispatch::Service;
use crate::jsonrpc::{self, RpcError};

/// How long shutdown waits for open conversations to finish their requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a refused connection gets to take its "Server busy" line.
const BUSY_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` until `shutdown`, then waits (up to [`SHUTDOWN_GRACE`])
/// for the open ones to finish.
pub async fn serve_tcp(listener: TcpListener, service: Arc<Service>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(service.limits().max_connections));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
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
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            warn!(%peer, "connection refused: server busy");
            tracker.spawn(refuse_busy(socket));
            continue;
        };
        let service = Arc::clone(&service);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            debug!(%peer, "connection opened");
            let idle = service.limits().idle_timeout;
            let (reader, writer) = socket.into_split();
            match connection::serve(reader, writer, &service, idle, &shutdown).await {
                Ok(End::Idle) => debug!(%peer, "connection closed: idle timeout"),
                Ok(_) => debug!(%peer, "connection closed"),
                Err(e) => debug!(%peer, error = %e, "connection closed on error"),
            }
            drop(slot);
        });
    }
    drop(listener);
    finish(tracker).await;
}

/// Serves one conversation over stdin/stdout until EOF or `shutdown`.
pub async fn serve_stdio(
    service: Arc<Service>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (stdin, stdout) = (tokio::io::stdin(), tokio::io::stdout());
    connection::serve(stdin, stdout, &service, None, &shutdown)
        .await
        .map(|_| ())
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
