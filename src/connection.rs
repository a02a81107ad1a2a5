//! One conversation: a byte stream in, answers out, in order.
//!
//! The same loop serves a TCP socket and stdin/stdout. Requests are answered in the order they
//! arrived, and each sees the effects of those before it (the dispatcher guarantees this for the
//! requests it is handed together). Answers are buffered and flushed only when no request is
//! waiting, so a pipelining client gets few large writes. A client that does not read its
//! answers blocks our write, and while we are blocked we read nothing more from it: its memory
//! cost stays at one read buffer, one write buffer and one round of answers.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::codec::{Frame, FrameCodec, Framing};
use crate::dispatch::Service;
use crate::session::{Ending, Session};

const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Answer bytes gathered before they are written even though more requests are waiting.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Requests taken from the peer at once. Bounds the work (and the answers) one conversation
/// holds in memory between two writes.
const MAX_PIPELINED: usize = 256;

/// How a conversation ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The peer closed its side.
    Eof,
    /// Nothing arrived, or nothing could be written, for the idle timeout.
    Idle,
    /// The server is shutting down.
    Shutdown,
    /// The peer's framing broke beyond repair (answered, then closed).
    Unframeable,
    /// The session's rules ended it (too many wrong tokens; an HTTP request).
    Refused(Ending),
}

/// Serves requests from `reader` until EOF, the idle timeout, or `shutdown`.
pub async fn serve<R, W>(
    reader: R,
    writer: W,
    service: &Service,
    mut session: Session,
    idle: Option<Duration>,
    shutdown: &CancellationToken,
) -> std::io::Result<End>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let codec = FrameCodec::new(service.limits().max_line_bytes);
    let mut frames = FramedRead::with_capacity(reader, codec, READ_BUFFER_BYTES);
    let mut writer = writer;
    // Framed answers not yet written; it grows only as answers need it, so an idle
    // conversation costs its read buffer and little else.
    let (mut answers, mut out) = (Vec::new(), Vec::new());
    let mut waiting: Vec<Frame> = Vec::new();
    let end = loop {
        if shutdown.is_cancelled() {
            break End::Shutdown;
        }
        if waiting.is_empty() {
            take_ready(&mut frames, &mut waiting);
        }
        if (waiting.is_empty() || out.len() >= WRITE_BUFFER_BYTES)
            && !send(&mut writer, &mut out, idle).await?
        {
            break End::Idle;
        }
        if waiting.is_empty() {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break End::Shutdown,
                next = within(idle, frames.next()) => next,
            };
            match next {
                None => break End::Idle,
                Some(None) => break End::Eof,
                Some(Some(frame)) => waiting.push(frame?),
            }
            take_ready(&mut frames, &mut waiting);
        }
        let broken = answer(
            service,
            &mut session,
            &mut waiting,
            &mut answers,
            &mut out,
            frames.decoder(),
        )
        .await;
        if broken {
            break End::Unframeable;
        }
        if let Some(ending) = session.ending() {
            break End::Refused(ending);
        }
    };
    if end == End::Shutdown {
        // Answer what was already read, and no more.
        take_ready(&mut frames, &mut waiting);
        while !waiting.is_empty() && session.ending().is_none() {
            answer(
                service,
                &mut session,
                &mut waiting,
                &mut answers,
                &mut out,
                frames.decoder(),
            )
            .await;
        }
    }
    send(&mut writer, &mut out, idle).await?;
    let _ = writer.shutdown().await;
    Ok(end)
}

/// Writes and empties `out`; false when the peer did not take it within the idle timeout.
/// A buffer that grew for one large answer is given back.
async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut Vec<u8>,
    idle: Option<Duration>,
) -> std::io::Result<bool> {
    if out.is_empty() {
        return Ok(true);
    }
    let written = within(idle, writer.write_all(out))
        .await
        .transpose()?
        .is_some();
    out.clear();
    out.shrink_to(WRITE_BUFFER_BYTES);
    Ok(written)
}

/// Handles some of `waiting` (removing them) and appends their framed answers to `out`. True when
/// one of them was [`Frame::Unframeable`], after which the conversation must end.
async fn answer(
    service: &Service,
    session: &mut Session,
    waiting: &mut Vec<Frame>,
    answers: &mut Vec<u8>,
    out: &mut Vec<u8>,
    codec: &FrameCodec,
) -> bool {
    let done = if codec.framing() == Framing::ContentLength {
        answers.clear();
        let done = service.handle_frames(session, waiting, answers).await;
        codec.encode_answers(answers, out);
        answers.shrink_to(WRITE_BUFFER_BYTES);
        done
    } else {
        service.handle_frames(session, waiting, out).await
    };
    waiting
        .drain(..done)
        .any(|f| matches!(f, Frame::Unframeable(_)))
}

/// Moves the requests that are already here (in the read buffer, or readable from the peer
/// without waiting) to `waiting`, up to [`MAX_PIPELINED`], so they can be handled, and their
/// writes committed, together.
fn take_ready<R: AsyncRead + Unpin>(
    frames: &mut FramedRead<R, FrameCodec>,
    waiting: &mut Vec<Frame>,
) {
    while waiting.len() < MAX_PIPELINED {
        match frames.next().now_or_never() {
            Some(Some(Ok(frame))) => waiting.push(frame),
            _ => break,
        }
    }
}

/// `Some(output)`, or `None` when `limit` passed first.
async fn within<F: Future>(limit: Option<Duration>, future: F) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}
