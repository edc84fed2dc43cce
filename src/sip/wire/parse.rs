//! Start line, header and body framing. (Stub: to be implemented.)

use super::SipMessage;

/// Result of looking for one SIP message at the start of a TCP stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFrame {
    /// A complete message (headers + Content-Length body) of this many bytes.
    Complete(usize),
    /// Need more bytes.
    Incomplete,
    /// CRLF keepalives ("\r\n\r\n" ping / "\r\n" pong) of this many bytes.
    Keepalive(usize),
    /// Bytes that cannot start a SIP message: skip this many to resynchronise.
    Garbage(usize),
}

/// Cheap content check: does this payload start (after optional CR/LF) with a SIP
/// request line (`METHOD uri SIP/2.0`) or status line (`SIP/2.0 nnn`)? HTTP is not SIP.
pub fn looks_like_sip(data: &[u8]) -> bool {
    let _ = data;
    false
}

/// Parse one SIP message from a datagram (or a framed stream message). `None` when the
/// bytes do not carry a SIP start line at all.
pub fn parse(data: &[u8]) -> Option<SipMessage> {
    let _ = data;
    None
}

/// Frame the next message in a TCP byte stream (Content-Length framing, RFC 3261 §18.3).
pub fn stream_frame(buf: &[u8]) -> StreamFrame {
    let _ = buf;
    StreamFrame::Incomplete
}
