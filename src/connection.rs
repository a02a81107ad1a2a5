//! One conversation: a byte stream in, answer lines out, strictly one request at a time.
//!
//! The same loop serves a TCP socket and stdin/stdout. Requests are answered in order and each
//! runs to completion before the next is read, which is what makes "a request sees everything
//! before it on its connection" true. Answers are buffered and flushed when no complete request is
//! waiting, so a pipelining client gets few large writes. A client that does not read its answers
//! blocks our write, and while we are blocked we read nothing more from it: its memory cost stays
//! at one read buffer and one write buffer.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::codec::{Frame, LineCodec};
use crate::dispatch::Service;

const READ_BUFFER_BYTES: usize = 8 * 1024;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Requests taken from the read buffer at once. Bounds the work (and the answers) one
/// conversation holds in memory between two writes.
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
}

/// Serves requests from `reader` until EOF, the idle timeout, or `shutdown`.
pub async fn serve<R, W>(
    reader: R,
    writer: W,
    service: &Service,
    idle: Option<Duration>,
    shutdown: &CancellationToken,
) -> std::io::Result<End>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let codec = LineCodec::new(service.limits().max_line_bytes);
    let mut frames = FramedRead::with_capacity(reader, codec, READ_BUFFER_BYTES);
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, writer);
    let mut out = Vec::new();
    let mut waiting: Vec<Frame> = Vec::new();
    let end = loop {
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
        out.clear();
        let done = service.handle_frames(&waiting, &mut out).await;
        waiting.drain(..done);
        if within(idle, writer.write_all(&out))
            .await
            .transpose()?
            .is_none()
        {
            break End::Idle;
        }
        if waiting.is_empty() && !frames.decoder().has_complete_line(frames.read_buffer()) {
            writer.flush().await?;
        }
    };
    if end == End::Shutdown {
        take_ready(&mut frames, &mut waiting);
        while !waiting.is_empty() {
            out.clear();
            let done = service.handle_frames(&waiting, &mut out).await;
            waiting.drain(..done);
            writer.write_all(&out).await?;
        }
    }
    writer.flush().await?;
    let _ = writer.shutdown().await;
    Ok(end)
}

/// Moves the requests that are already here (in the read buffer, or readable from the peer
/// without waiting) to `waiting`, up to [`MAX_PIPELINED`], so they can be handled, and their
/// writes committed, together.
fn take_ready<R: AsyncRead + Unpin>(
    frames: &mut FramedRead<R, LineCodec>,
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
