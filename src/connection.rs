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
use crate::jsonrpc::{self, RpcError};

const READ_BUFFER_BYTES: usize = 8 * 1024;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

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
    let end = loop {
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => break End::Shutdown,
            next = within(idle, frames.next()) => next,
        };
        let frame = match next {
            None => break End::Idle,
            Some(None) => break End::Eof,
            Some(Some(frame)) => frame?,
        };
        answer(service, frame, &mut out).await;
        if within(idle, writer.write_all(&out))
            .await
            .transpose()?
            .is_none()
        {
            break End::Idle;
        }
        if !frames.decoder().has_complete_line(frames.read_buffer()) {
            writer.flush().await?;
        }
    };
    if end == End::Shutdown {
        drain(&mut frames, service, &mut writer, &mut out).await?;
    }
    writer.flush().await?;
    let _ = writer.shutdown().await;
    Ok(end)
}

/// On shutdown, answers the complete requests already in our read buffer, and no more.
async fn drain<R, W>(
    frames: &mut FramedRead<R, LineCodec>,
    service: &Service,
    writer: &mut W,
    out: &mut Vec<u8>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let waiting = frames.read_buffer().iter().filter(|&&b| b == b'\n').count();
    for _ in 0..waiting {
        let Some(Some(Ok(frame))) = frames.next().now_or_never() else {
            break;
        };
        answer(service, frame, out).await;
        writer.write_all(out).await?;
    }
    Ok(())
}

async fn answer(service: &Service, frame: Frame, out: &mut Vec<u8>) {
    out.clear();
    match frame {
        Frame::Line(line) => service.handle_line(&line, out).await,
        Frame::Oversized => {
            let limit = service.limits().max_line_bytes;
            let why = format!("request line exceeds the limit of {limit} bytes");
            jsonrpc::write_error(out, None, &RpcError::InvalidRequest(Some(why)));
            out.push(b'\n');
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
