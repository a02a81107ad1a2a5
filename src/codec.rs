//! Framing: bytes in, one [`Frame`] per request line out.
//!
//! A line ends with `\n`; a `\r` before it is dropped; lines holding only whitespace are skipped.
//! A line longer than the limit becomes [`Frame::Oversized`] as soon as the limit is crossed (not
//! when its newline finally arrives, which may be never), and the rest of it is discarded without
//! being buffered. Every outcome is an *item*, never a decoder error: tokio-util's `FramedRead`
//! ends the stream after an error, and one bad line must not end a connection. UTF-8 and JSON are
//! not this module's business.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// One unit of input for the protocol layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A request line without its line ending.
    Line(Bytes),
    /// A line went over the byte limit; it has been (or is being) discarded.
    Oversized,
}

/// Splits a byte stream into request lines of at most `max_line_bytes` bytes.
#[derive(Debug)]
pub struct LineCodec {
    max_line_bytes: usize,
    /// Bytes already searched for `\n` in the buffer, so a long line is scanned once.
    scanned: usize,
    /// True while the tail of an over-long line is being thrown away.
    discarding: bool,
}

impl LineCodec {
    pub fn new(max_line_bytes: usize) -> Self {
        LineCodec {
            max_line_bytes,
            scanned: 0,
            discarding: false,
        }
    }

    /// Whether `buf` already holds a complete line, i.e. another request is waiting and the
    /// caller may delay flushing its answers.
    pub fn has_complete_line(&self, buf: &BytesMut) -> bool {
        memchr_newline(&buf[self.scanned.min(buf.len())..]).is_some()
    }

    fn take_line(&mut self, buf: &mut BytesMut, newline_at: usize) -> Option<Frame> {
        let mut line = buf.split_to(newline_at + 1);
        self.scanned = 0;
        line.truncate(newline_at);
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > self.max_line_bytes {
            return Some(Frame::Oversized);
        }
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return None;
        }
        Some(Frame::Line(line.freeze()))
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

impl Decoder for LineCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        loop {
            let found = memchr_newline(&buf[self.scanned..]).map(|i| i + self.scanned);
            match (found, self.discarding) {
                (Some(at), true) => {
                    let _ = buf.split_to(at + 1);
                    self.scanned = 0;
                    self.discarding = false;
                }
                (None, true) => {
                    buf.clear();
                    self.scanned = 0;
                    return Ok(None);
                }
                (Some(at), false) => match self.take_line(buf, at) {
                    Some(frame) => return Ok(Some(frame)),
                    None => continue,
                },
                // One byte of slack for a `\r` whose `\n` has not arrived yet.
                (None, false) if buf.len() > self.max_line_bytes + 1 => {
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Frame::Oversized));
                }
                (None, false) => {
                    self.scanned = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    /// A last line without `\n` is still a request (`printf '{…}' | groupd stdio`).
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if buf.is_empty() || self.discarding {
            buf.clear();
            return Ok(None);
        }
        buf.extend_from_slice(b"\n");
        self.decode(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]], eof: bool) -> Vec<Frame> {
        let mut codec = LineCodec::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        if eof {
            while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
                out.push(f);
            }
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        let got = frames(100, &[b"a\r\nb", b"c\n"], false);
        assert_eq!(got, vec![line("a"), line("bc")]);
    }

    #[test]
    fn skips_blank_and_whitespace_lines() {
        let got = frames(100, &[b"\n  \r\n\t\nx\n"], false);
        assert_eq!(got, vec![line("x")]);
    }

    #[test]
    fn overlong_line_is_reported_once_when_the_limit_is_crossed() {
        let got = frames(4, &[b"123456"], false);
        assert_eq!(got, vec![Frame::Oversized]);
        let got = frames(4, &[b"123456", b"789", b"0\nok\n"], false);
        assert_eq!(got, vec![Frame::Oversized, line("ok")]);
    }

    #[test]
    fn complete_overlong_line_is_oversized() {
        assert_eq!(
            frames(4, &[b"12345\nok\n"], false),
            vec![Frame::Oversized, line("ok")]
        );
    }

    #[test]
    fn a_line_at_the_limit_with_crlf_split_is_accepted() {
        assert_eq!(frames(4, &[b"1234\r", b"\n"], false), vec![line("1234")]);
    }

    #[test]
    fn last_line_without_newline_is_a_request_at_eof() {
        assert_eq!(frames(100, &[b"a\nb"], true), vec![line("a"), line("b")]);
        assert_eq!(frames(100, &[b"a\n  "], true), vec![line("a")]);
    }
}
