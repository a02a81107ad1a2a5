//! JSON-RPC over HTTP/1.1 for clients written for Kanboard's `jsonrpc.php` (SPEC §10).
//!
//! A request body is one frame: it goes through [`Service::handle_line`] exactly as a TCP line
//! does, and the answer line (without its `\n`) is the response body. So the protocol, batches,
//! limits and errors are those of every other transport; this module owns only what HTTP adds:
//! the method and origin checks, Basic auth, the body limit (`413`) and the HTTP status codes.
//! JSON-RPC errors travel in `200` answers, as with Kanboard, whose clients cannot read an error
//! body on 4xx/5xx.
//!
//! HTTP parsing is hyper's. The rules rules with the TCP listener (connection slots, token,
//! shutdown, idle timeout) come from [`Rules`]: this module never decides them.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;
use tracing::debug;

use super::{BUSY_WRITE_TIMEOUT, Rules};
use crate::auth::Token;
use crate::dispatch::Service;

/// The only user name Basic auth accepts: Kanboard's name for the application API.
const BASIC_USER: &[u8] = b"jsonrpc";

/// The challenge Kanboard sends with its `401`; clients written for it expect this realm.
const CHALLENGE: &str = "Basic realm=\"JsonRPC\"";

type Answer = Response<Full<Bytes>>;

/// Serves one HTTP connection, holding its connection slot until it closes; without a slot,
/// answers its first request with `503` and closes.
pub(crate) async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
    rules: Rules,
) {
    let Some(slot) = slot else {
        return refuse_busy(socket).await;
    };
    debug!(%peer, "http connection opened");
    let idle = rules.service.limits().idle_timeout;
    let endpoint = Arc::new(Endpoint {
        service: Arc::clone(&rules.service),
        token: rules.token.clone(),
        peer,
    });
    let handler = service_fn(move |request| {
        let endpoint = Arc::clone(&endpoint);
        async move { Ok::<_, Infallible>(endpoint.respond(request).await) }
    });
    let io = TokioIo::new(WriteDeadline::new(socket, idle));
    // Between requests, the header read timeout is the idle timeout: it runs from the moment the
    // connection waits for a request until that request's headers are in.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(io, handler);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            // Finish the request in progress (its answer says `Connection: close`), then close.
            () = rules.shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    match result {
        Ok(()) => debug!(%peer, "http connection closed"),
        Err(e) if e.is_timeout() => debug!(%peer, "http connection closed: idle timeout"),
        Err(e) => debug!(%peer, error = %e, "http connection closed on error"),
    }
    drop(slot);
}

/// What answering one request needs.
struct Endpoint {
    service: Arc<Service>,
    token: Option<Arc<Token>>,
    peer: SocketAddr,
}

impl Endpoint {
    /// One HTTP request → one answer. The checks run cheapest first, and none reads the body
    /// before the client is known to be allowed in.
    async fn respond(&self, request: Request<Incoming>) -> Answer {
        debug!(peer = %self.peer, method = %request.method(), "http request");
        let refused = if request.method() != Method::POST {
            Some(Refusal::Method)
        } else if request.headers().contains_key(header::ORIGIN) {
            Some(Refusal::Browser)
        } else if let Some(token) = &self.token
            && !authorized(request.headers(), token)
        {
            Some(Refusal::Unauthorized)
        } else {
            None
        };
        let body = match refused {
            Some(refusal) => Err(refusal),
            None => self.read_body(request.into_body()).await,
        };
        match body {
            Ok(body) => self.answer(&body).await,
            Err(refusal) => {
                debug!(peer = %self.peer, status = %refusal.status(), "http request refused");
                refusal.answer(self.service.limits().max_line_bytes)
            }
        }
    }

    /// The whole body, never buffering more than the line limit, within the idle timeout.
    async fn read_body(&self, body: Incoming) -> Result<Bytes, Refusal> {
        let limits = self.service.limits();
        let limit = limits.max_line_bytes;
        // A declared Content-Length above the limit is refused before a byte of it is read.
        if body.size_hint().lower() > limit as u64 {
            return Err(Refusal::TooLarge);
        }
        let collect = Limited::new(body, limit).collect();
        let collected = match limits.idle_timeout {
            Some(idle) => tokio::time::timeout(idle, collect)
                .await
                .map_err(|_| Refusal::Timeout)?,
            None => collect.await,
        };
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(Refusal::TooLarge),
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "http request body unreadable");
                Err(Refusal::BadBody)
            }
        }
    }

    /// Runs the body as one request frame; `200` with the answer, empty for notifications only.
    async fn answer(&self, body: &[u8]) -> Answer {
        let mut out = Vec::new();
        self.service.handle_line(body, &mut out).await;
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        let notifications_only = out.is_empty();
        let mut answer = Response::new(Full::new(Bytes::from(out)));
        if !notifications_only {
            answer.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        answer
    }
}

/// Whether `Authorization` carries Basic credentials `jsonrpc:TOKEN`.
fn authorized(headers: &HeaderMap, token: &Token) -> bool {
    let Some(credentials) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| BASE64.decode(encoded.trim()).ok())
    else {
        return false;
    };
    let Some(colon) = credentials.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, password) = (&credentials[..colon], &credentials[colon + 1..]);
    // `&`, not `&&`: the password is checked whatever the user name, so timing tells nothing.
    (user == BASIC_USER) & token.matches(password)
}

/// Why a request gets no JSON-RPC answer.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// Not `POST`.
    Method,
    /// Sent by a web page (it has an `Origin`): a page must not drive groupd (SPEC §7).
    Browser,
    /// A token is set and the request does not carry it.
    Unauthorized,
    /// The body is longer than the line limit.
    TooLarge,
    /// The body did not arrive within the idle timeout.
    Timeout,
    /// The body could not be read (bad chunked encoding, the client went away).
    BadBody,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Method => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::Browser => StatusCode::FORBIDDEN,
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Timeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::BadBody => StatusCode::BAD_REQUEST,
        }
    }

    fn answer(self, max_body: usize) -> Answer {
        let reason = match self {
            Refusal::Method => "only POST is answered".to_owned(),
            Refusal::Browser => "requests from web pages are refused".to_owned(),
            Refusal::Unauthorized => "authentication required".to_owned(),
            Refusal::TooLarge => format!("request body exceeds the limit of {max_body} bytes"),
            Refusal::Timeout => "request body not received in time".to_owned(),
            Refusal::BadBody => "request body unreadable".to_owned(),
        };
        let mut answer = text_answer(self.status(), reason);
        let headers = answer.headers_mut();
        // The body is left unread, so the connection cannot carry another request; and a client
        // that was refused has no business keeping a connection slot.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        match self {
            Refusal::Method => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            Refusal::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                );
            }
            _ => {}
        }
        answer
    }
}

fn text_answer(status: StatusCode, reason: String) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(reason + "\n")));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    answer
}

/// A connection over the limit: its first request is answered `503` and the connection closed,
/// all within [`BUSY_WRITE_TIMEOUT`].
async fn refuse_busy(socket: TcpStream) {
    let handler = service_fn(|_: Request<Incoming>| async {
        Ok::<_, Infallible>(text_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "server busy".to_owned(),
        ))
    });
    let conn = http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(socket), handler);
    let _ = tokio::time::timeout(BUSY_WRITE_TIMEOUT, conn).await;
}

/// A socket whose writes fail once they have made no progress for the idle timeout, as on the
/// TCP listener: a client that stops reading its answers cannot hold its connection slot forever.
/// (Reads are bounded by hyper's header read timeout and by [`Endpoint::read_body`].)
struct WriteDeadline<T> {
    io: T,
    limit: Option<Duration>,
    /// Armed while a write is stalled; dropped at the first progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(io: T, limit: Option<Duration>) -> Self {
        WriteDeadline {
            io,
            limit,
            stalled: None,
        }
    }

    fn check<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let Some(limit) = self.limit else {
            return Poll::Pending;
        };
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for the idle timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.check(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.check(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        headers
    }

    fn basic(credentials: &str) -> HeaderMap {
        headers(&format!("Basic {}", BASE64.encode(credentials)))
    }

    #[test]
    fn basic_auth_needs_user_jsonrpc_and_the_token() {
        let token = Token::new(b"s3cret:with colon").unwrap();
        assert!(authorized(&basic("jsonrpc:s3cret:with colon"), &token));
        assert!(authorized(
            &headers(&format!(
                "basic {}",
                BASE64.encode("jsonrpc:s3cret:with colon")
            )),
            &token
        ));
        for wrong in [
            basic("jsonrpc:s3cret"),
            basic("admin:s3cret:with colon"),
            basic("jsonrpc"),
            basic(""),
            headers("Bearer s3cret:with colon"),
            headers("Basic !!not base64!!"),
            headers("Basic"),
            HeaderMap::new(),
        ] {
            assert!(!authorized(&wrong, &token), "{wrong:?}");
        }
    }
}
