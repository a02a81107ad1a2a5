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
    mut writer: W,
    service: &Service,
    session: Session,
    idle: Option<Duration>,
    shutdown: &CancellationToken,
) -> std::io::Result<End>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let codec = FrameCodec::new(service.limits().max_line_bytes);
    let mut frames = FramedRead::with_capacity(reader, codec, READ_BUFFER_BYTES);
    let mut talk = Conversation {
        service,
        session,
        waiting: Vec::new(),
        answers: Vec::new(),
        out: Vec::new(),
    };
    let end = loop {
        if shutdown.is_cancelled() {
            break End::Shutdown;
        }
        if talk.waiting.is_empty() {
            take_ready(&mut frames, &mut talk.waiting);
        }
        if (talk.waiting.is_empty() || talk.out.len() >= WRITE_BUFFER_BYTES)
            && !send(&mut writer, &mut talk.out, idle).await?
        {
            break End::Idle;
        }
        if talk.waiting.is_empty() {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break End::Shutdown,
                next = within(idle, frames.next()) => next,
            };
            match next {
                None => break End::Idle,
                Some(None) => break End::Eof,
                Some(Some(frame)) => talk.waiting.push(frame?),
            }
            take_ready(&mut frames, &mut talk.waiting);
        }
        if talk.answer(frames.decoder()).await {
            break End::Unframeable;
        }
        if let Some(ending) = talk.session.ending() {
            break End::Refused(ending);
        }
    };
    if end == End::Shutdown {
        // Answer what was already read, and no more.
        take_ready(&mut frames, &mut talk.waiting);
        while !talk.waiting.is_empty() && talk.session.ending().is_none() {
            talk.answer(frames.decoder()).await;
        }
    }
    send(&mut writer, &mut talk.out, idle).await?;
    let _ = writer.shutdown().await;
    Ok(end)
}

/// One conversation's state between reads and writes.
struct Conversation<'s> {
    service: &'s Service,
    session: Session,
    /// Requests read and not yet handled.
    waiting: Vec<Frame>,
    /// Answers before Content-Length framing (unused with line framing).
    answers: Vec<u8>,
    /// Framed answers not yet written. It grows only as answers need it, so an idle
    /// conversation costs its read buffer and little else.
    out: Vec<u8>,
}

impl Conversation<'_> {
    /// Handles some of `waiting` (removing them) and appends their framed answers to `out`.
    /// True when one of them was [`Frame::Unframeable`], after which the conversation must end.
    async fn answer(&mut self, codec: &FrameCodec) -> bool {
        let done = if codec.framing() == Framing::ContentLength {
            self.answers.clear();
            let done = self
                .service
                .handle_frames(&mut self.session, &self.waiting, &mut self.answers)
                .await;
            codec.encode_answers(&self.answers, &mut self.out);
            self.answers.shrink_to(WRITE_BUFFER_BYTES);
            done
        } else {
            self.service
                .handle_frames(&mut self.session, &self.waiting, &mut self.out)
                .await
        };
        self.waiting
            .drain(..done)
            .any(|f| matches!(f, Frame::Unframeable(_)))
    }
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
    // Flushed: stdout hands writes to a blocking thread (and std's line buffer), and only a
    // flush waits for them to reach the peer.
    let write = async {
        writer.write_all(out).await?;
        writer.flush().await
    };
    let written = within(idle, write).await.transpose()?.is_some();
    out.clear();
    out.shrink_to(WRITE_BUFFER_BYTES);
    Ok(written)
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
