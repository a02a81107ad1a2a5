//! One TCP conversation: newline-delimited or Content-Length JSON-RPC, through the token gate.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, warn};

use super::{BUSY_WRITE_TIMEOUT, Rules};
use crate::connection::{self, End};
use crate::jsonrpc::{self, RpcError};
use crate::session::{Ending, Session};

/// One TCP conversation, holding its connection slot until it ends; without a slot, the
/// "Server busy" line.
pub(super) async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
    rules: Rules,
) {
    let Some(slot) = slot else {
        return refuse_busy(socket).await;
    };
    debug!(%peer, "connection opened");
    let service = &rules.service;
    let idle = service.limits().idle_timeout;
    let (reader, writer) = socket.into_split();
    let session = Session::tcp(rules.token.clone());
    match connection::serve(reader, writer, service, session, idle, &rules.shutdown).await {
        Ok(End::Idle) => debug!(%peer, "connection closed: idle timeout"),
        Ok(End::Refused(Ending::LooksLikeHttp)) => log_http_on_tcp(peer, &rules),
        Ok(_) => debug!(%peer, "connection closed"),
        Err(e) => debug!(%peer, error = %e, "connection closed on error"),
    }
    drop(slot);
}

/// SPEC §7 closes an HTTP request on the TCP port unanswered (a web page must not drive groupd);
/// the log says why, and where HTTP is served, once per run.
fn log_http_on_tcp(peer: SocketAddr, rules: &Rules) {
    if rules.http_on_tcp_logged.swap(true, Ordering::Relaxed) {
        debug!(%peer, "connection closed: an HTTP request on the TCP port");
    } else {
        warn!(
            %peer,
            "closed a connection that sent an HTTP request to the TCP port, unanswered: \
             HTTP clients need `--http ADDR` (further ones are logged at debug)"
        );
    }
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
