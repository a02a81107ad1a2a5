//! Framing: bytes in, one [`Frame`] per request out.
//!
//! Each conversation picks its framing from its first bytes (SPEC §8). A first line that is an
//! LSP header (`Content-Length:` or `Content-Type:`, any case) selects the LSP base protocol:
//! header lines (ended by `\r\n`, or a bare `\n` as some clients write them) up to an empty
//! line, then exactly Content-Length bytes of JSON. Anything else is newline-delimited: a line
//! ends with `\n`, a `\r` before it is dropped, lines holding only whitespace are skipped.
//!
//! A line or body longer than the limit becomes [`Frame::Oversized`] as soon as that is known
//! (not when its end finally arrives, which may be never), and the rest of it is discarded
//! without being buffered. A header block we cannot find the end of the body from becomes
//! [`Frame::Unframeable`]: the conversation answers it and ends, since it cannot resynchronise.
//! Every outcome is an *item*, never a decoder error: tokio-util's `FramedRead` ends the stream
//! after an error, and one bad line must not end a connection. UTF-8 and JSON are not this
//! module's business.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// One unit of input for the protocol layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A request: a line without its line ending, or a Content-Length body.
    Line(Bytes),
    /// A line or body went over the byte limit; it has been (or is being) discarded. `head` keeps
    /// the line's first [`OVERSIZED_HEAD_BYTES`] bytes, enough to tell an HTTP request line.
    Oversized { head: Bytes },
    /// Headers that do not say where the body ends; nothing after them can be trusted.
    Unframeable(&'static str),
}

/// How a conversation frames its messages, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Not known until the first bytes arrive.
    Undecided,
    /// One JSON text per line.
    Lines,
    /// `Content-Length: N\r\n\r\n` then N bytes, as the LSP base protocol.
    ContentLength,
}

const CONTENT_LENGTH: &[u8] = b"content-length:";

/// The headers of the LSP base protocol; a conversation whose first line starts with one of
/// them speaks it. Clients send either first (`Content-Type` is optional, but some lead with it).
const LSP_HEADERS: [&[u8]; 2] = [CONTENT_LENGTH, b"content-type:"];

/// Bytes of an over-long line kept in [`Frame::Oversized`].
pub const OVERSIZED_HEAD_BYTES: usize = 16;

/// Bytes of one header block at most: far more than any real client sends.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Bytes reserved at once for a body still arriving: a declared length is not memory to hand
/// out before the bytes come.
const BODY_RESERVE_BYTES: usize = 1024 * 1024;

/// Splits a byte stream into requests of at most `max_bytes` bytes each.
#[derive(Debug)]
pub struct FrameCodec {
    max_bytes: usize,
    framing: Framing,
    /// Bytes already searched for `\n` in the buffer, so a long line is scanned once.
    scanned: usize,
    /// True while the tail of an over-long line is being thrown away.
    discarding: bool,
    /// Bytes of an over-long body still to be thrown away.
    skipping: usize,
    /// Set after [`Frame::Unframeable`]: nothing more is decoded.
    broken: bool,
}

impl FrameCodec {
    pub fn new(max_bytes: usize) -> Self {
        FrameCodec {
            max_bytes,
            framing: Framing::Undecided,
            scanned: 0,
            discarding: false,
            skipping: 0,
            broken: false,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Appends `answers` (answer lines, each ended by `\n`) to `out` in this conversation's
    /// framing. Answers never hold a raw newline, so splitting at `\n` is exact.
    pub fn encode_answers(&self, answers: &[u8], out: &mut Vec<u8>) {
        if self.framing != Framing::ContentLength {
            out.extend_from_slice(answers);
            return;
        }
        for answer in answers.split(|&b| b == b'\n').filter(|a| !a.is_empty()) {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", answer.len()).as_bytes());
            out.extend_from_slice(answer);
        }
    }

    /// Decides once the first bytes match an LSP header name, or can no longer match one.
    fn decide(&mut self, buf: &BytesMut) {
        let mut undecided = false;
        for header in LSP_HEADERS {
            let n = buf.len().min(header.len());
            if buf[..n].eq_ignore_ascii_case(&header[..n]) {
                if n == header.len() {
                    self.framing = Framing::ContentLength;
                    return;
                }
                undecided = true;
            }
        }
        if !undecided {
            self.framing = Framing::Lines;
        }
    }

    fn decode_line(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            let found = memchr_newline(&buf[self.scanned..]).map(|i| i + self.scanned);
            match (found, self.discarding) {
                (Some(at), true) => {
                    buf.advance(at + 1);
                    self.scanned = 0;
                    self.discarding = false;
                }
                (None, true) => {
                    buf.clear();
                    self.scanned = 0;
                    return None;
                }
                (Some(at), false) => match self.take_line(buf, at) {
                    Some(frame) => return Some(frame),
                    None => continue,
                },
                // One byte of slack for a `\r` whose `\n` has not arrived yet.
                (None, false) if buf.len() > self.max_bytes.saturating_add(1) => {
                    let head = oversized_head(buf);
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Some(head);
                }
                (None, false) => {
                    self.scanned = buf.len();
                    return None;
                }
            }
        }
    }

    fn take_line(&mut self, buf: &mut BytesMut, newline_at: usize) -> Option<Frame> {
        let mut line = buf.split_to(newline_at + 1);
        self.scanned = 0;
        line.truncate(newline_at);
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > self.max_bytes {
            return Some(oversized_head(&line));
        }
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return None;
        }
        Some(Frame::Line(line.freeze()))
    }

    fn decode_body(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if self.skipping > 0 {
            let n = self.skipping.min(buf.len());
            buf.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return None;
            }
        }
        let Some((headers, header_bytes)) = header_block(buf) else {
            return (buf.len() > MAX_HEADER_BYTES)
                .then(|| self.unframeable("header block too long"));
        };
        let length = match content_length(&buf[..headers]) {
            Ok(length) => length,
            Err(why) => return Some(self.unframeable(why)),
        };
        if length > self.max_bytes {
            buf.advance(header_bytes);
            let here = length.min(buf.len());
            buf.advance(here);
            self.skipping = length - here;
            return Some(Frame::Oversized { head: Bytes::new() });
        }
        // `length` is the client's word, and the limit may be as large as usize::MAX: the sum
        // saturates, and memory is reserved only as the body arrives.
        let frame_bytes = header_bytes.saturating_add(length);
        if buf.len() < frame_bytes {
            buf.reserve((frame_bytes - buf.len()).min(BODY_RESERVE_BYTES));
            return None;
        }
        buf.advance(header_bytes);
        Some(Frame::Line(buf.split_to(length).freeze()))
    }

    fn unframeable(&mut self, why: &'static str) -> Frame {
        self.broken = true;
        Frame::Unframeable(why)
    }
}

fn oversized_head(line: &[u8]) -> Frame {
    Frame::Oversized {
        head: Bytes::copy_from_slice(&line[..line.len().min(OVERSIZED_HEAD_BYTES)]),
    }
}

/// Where the header block at the start of `bytes` ends: the length of its header lines (without
/// the line ending of the last) and of the block with the empty line that ends it. Lines may end
/// in `\r\n` or `\n`. `None` until the empty line has arrived.
fn header_block(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut start = 0;
    let mut headers = 0;
    loop {
        let newline = start + memchr_newline(&bytes[start..])?;
        let line = &bytes[start..newline];
        if line.is_empty() || line == b"\r" {
            return Some((headers, newline + 1));
        }
        headers = newline;
        start = newline + 1;
    }
}

/// The Content-Length of a header block; other headers are ignored.
fn content_length(headers: &[u8]) -> Result<usize, &'static str> {
    let mut length = None;
    for header in headers.split(|&b| b == b'\n') {
        let header = header.strip_suffix(b"\r").unwrap_or(header);
        let Some(colon) = header.iter().position(|&b| b == b':') else {
            return Err("malformed header line");
        };
        if header[..colon + 1].eq_ignore_ascii_case(CONTENT_LENGTH) {
            let value = std::str::from_utf8(&header[colon + 1..])
                .map(str::trim)
                .unwrap_or("");
            let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            length = Some(
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|_| digits)
                    .ok_or("Content-Length is not a number")?,
            );
        }
    }
    length.ok_or("missing Content-Length header")
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        if self.broken {
            buf.clear();
            return Ok(None);
        }
        if self.framing == Framing::Undecided && !buf.is_empty() {
            self.decide(buf);
        }
        Ok(match self.framing {
            Framing::Undecided => None,
            Framing::Lines => self.decode_line(buf),
            Framing::ContentLength => self.decode_body(buf),
        })
    }

    /// A last line without `\n` is still a request (`printf '{…}' | groupd stdio`). An
    /// incomplete Content-Length message is dropped: its length says it is not all there.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if self.framing == Framing::Undecided && !buf.is_empty() {
            self.framing = Framing::Lines;
        }
        if buf.is_empty() || self.discarding || self.framing != Framing::Lines {
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
        let mut codec = FrameCodec::new(max);
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
        // Heads are checked on their own (below).
        out.into_iter()
            .map(|f| {
                if matches!(f, Frame::Oversized { .. }) {
                    oversized()
                } else {
                    f
                }
            })
            .collect()
    }

    #[test]
    fn an_oversized_line_keeps_its_head() {
        let mut codec = FrameCodec::new(8);
        let mut buf = BytesMut::from(&b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..]);
        let head = Bytes::from_static(b"GET /aaaaaaaaaaa");
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Frame::Oversized { head })
        );
    }

    /// An over-long frame, whatever its head.
    fn oversized() -> Frame {
        Frame::Oversized { head: Bytes::new() }
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
        assert_eq!(got, vec![oversized()]);
        let got = frames(4, &[b"123456", b"789", b"0\nok\n"], false);
        assert_eq!(got, vec![oversized(), line("ok")]);
    }

    #[test]
    fn complete_overlong_line_is_oversized() {
        assert_eq!(
            frames(4, &[b"12345\nok\n"], false),
            vec![oversized(), line("ok")]
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
        assert_eq!(frames(100, &[b"Cont"], true), vec![line("Cont")]);
    }

    #[test]
    fn content_length_framing_in_any_case_and_any_split() {
        let input = b"content-LENGTH: 3\r\nContent-Type: application/vscode-jsonrpc\r\n\r\n[1]Content-Length: 2\r\n\r\n{}";
        for split in 1..input.len() {
            let got = frames(100, &[&input[..split], &input[split..]], false);
            assert_eq!(got, vec![line("[1]"), line("{}")], "split at {split}");
        }
    }

    #[test]
    fn content_type_first_and_bare_newlines_are_lsp_framing_too() {
        let input = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\nCONTENT-LENGTH: 3\n\n[1]content-length: 2\r\n\n{}Content-Length: 1\n\r\n5";
        for split in 1..input.len() {
            let got = frames(100, &[&input[..split], &input[split..]], false);
            assert_eq!(
                got,
                vec![line("[1]"), line("{}"), line("5")],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_line_that_only_starts_like_a_header_is_a_line() {
        assert_eq!(
            frames(100, &[b"Content-Typo: x\n"], false),
            vec![line("Content-Typo: x")]
        );
        assert_eq!(frames(100, &[b"content-\n"], false), vec![line("content-")]);
    }

    /// `--max-line-bytes` may be usize::MAX; a client's huge Content-Length must not overflow
    /// the arithmetic or reserve that much memory, and lines must still be framed.
    #[test]
    fn a_limit_of_usize_max_neither_overflows_nor_reserves_a_declared_length() {
        assert_eq!(
            frames(usize::MAX, &[b"abc", b"\n"], false),
            vec![line("abc")]
        );
        let mut codec = FrameCodec::new(usize::MAX);
        let mut buf = BytesMut::from(&b"Content-Length: 18446744073709551615\r\n\r\n{}"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(
            buf.capacity() <= 2 * BODY_RESERVE_BYTES,
            "{}",
            buf.capacity()
        );
    }

    #[test]
    fn oversized_body_is_skipped_and_the_next_one_read() {
        let got = frames(
            4,
            &[
                b"Content-Length: 6\r\n\r\n123",
                b"456Content-Length: 2\r\n\r\n{}",
            ],
            false,
        );
        assert_eq!(got, vec![oversized(), line("{}")]);
    }

    #[test]
    fn an_oversized_body_and_the_next_message_in_one_read() {
        let input = b"Content-Length: 6\r\n\r\n123456Content-Length: 2\r\n\r\n{}";
        assert_eq!(frames(4, &[input], false), vec![oversized(), line("{}")]);
    }

    #[test]
    fn headers_without_a_usable_length_end_the_conversation() {
        let bad = frames(
            100,
            &[b"Content-Length: x\r\n\r\n{}Content-Length: 2\r\n\r\n{}"],
            false,
        );
        assert_eq!(
            bad,
            vec![Frame::Unframeable("Content-Length is not a number")]
        );
        let missing = frames(
            100,
            &[b"Content-Length: 2\r\n\r\n{}Content-Type: x\r\n\r\n{}"],
            false,
        );
        assert_eq!(
            missing,
            vec![
                line("{}"),
                Frame::Unframeable("missing Content-Length header")
            ]
        );
    }

    #[test]
    fn answers_are_framed_like_the_requests() {
        let mut codec = FrameCodec::new(100);
        let mut out = Vec::new();
        codec.encode_answers(b"{\"a\":1}\n[2]\n", &mut out);
        assert_eq!(out, b"{\"a\":1}\n[2]\n");
        codec.framing = Framing::ContentLength;
        out.clear();
        codec.encode_answers(b"{\"a\":1}\n[2]\n", &mut out);
        assert_eq!(
            out,
            b"Content-Length: 7\r\n\r\n{\"a\":1}Content-Length: 3\r\n\r\n[2]"
        );
    }
}
