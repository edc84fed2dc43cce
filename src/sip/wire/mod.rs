//! Tolerant SIP message parser (nom + memchr), written for captures rather than for a
//! UA: it accepts what real devices send (compact forms, folding, bare LF, junk before the
//! start line, invalid UTF-8, wrong Content-Length) and records each deviation as an
//! anomaly instead of rejecting the message. Every part keeps its byte span in the
//! original buffer so evidence can quote exact bytes. (Why not rsip: see
//! `../shared/research/crates.md` §3 — it rejects real messages and has no spans.)
//!
//! Owns: start line, headers in order (name/value spans, canonical names), body framing,
//! typed accessors for the headers analysis needs, and stream framing for SIP over TCP.

use serde::Serialize;
use std::borrow::Cow;
use std::ops::Range;

#[cfg(test)]
mod corpus;
mod parse;
mod typed;
pub use parse::{
    MAX_HEADER_BLOCK, MAX_HEADERS, MAX_START_LINE, MAX_STREAM_BODY, StreamFrame, looks_like_sip,
    parse, stream_frame, stream_frame_need,
};
pub use typed::{
    AuthInfo, NameAddr, Via, header_param, uri_host_port, uri_user, uri_user_unescaped,
};

/// A byte range in [`SipMessage::raw`].
pub type Span = Range<u32>;

/// SIP methods; unknown ones keep their text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Prack,
    Update,
    Info,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(String),
}

impl Method {
    pub fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"INFO" => Method::Info,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            other => Method::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

/// Canonical header names the analysis uses; compact forms map here
/// (i f t v m l c k s e o r u x b y). Everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    Expires,
    MaxForwards,
    RecordRoute,
    Route,
    UserAgent,
    Server,
    PAssertedIdentity,
    PPreferredIdentity,
    RemotePartyId,
    Privacy,
    Reason,
    SessionExpires,
    MinSE,
    MinExpires,
    Supported,
    Require,
    Allow,
    Event,
    Subject,
    ReferTo,
    ReferredBy,
    AcceptContact,
    AllowEvents,
    WwwAuthenticate,
    ProxyAuthenticate,
    Authorization,
    ProxyAuthorization,
    RSeq,
    RAck,
    Other,
}

/// One header line (after unfolding, the span still covers the original bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: HeaderName,
    /// The name as written (may be compact, any case).
    pub name: Span,
    /// The value, trimmed; for folded headers it spans the continuation lines too.
    pub value: Span,
    /// The whole header line(s), for evidence.
    pub line: Span,
}

/// Request or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: Span },
    Response { code: u16, reason: Span },
}

/// A parser finding: stable id + detail quoting the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipAnomaly {
    /// e.g. `sip.content_length_mismatch`, `sip.no_content_length`, `sip.bare_lf`,
    /// `sip.folded_header`, `sip.ws_before_colon`, `sip.bad_header_line`, `sip.non_utf8`,
    /// `sip.leading_junk`, `sip.body_truncated`, `sip.trailing_bytes`,
    /// `sip.missing_header` (Call-ID, CSeq, From, To, Via), `sip.bad_cseq`; also
    /// `sip.bad_start_line`, `sip.bare_cr`, `sip.no_header_end`, `sip.too_many_headers`,
    /// `sip.bad_content_length`, `sip.duplicate_content_length`, `sip.cseq_method_mismatch`.
    /// Repeated line-level deviations are reported once, with the first occurrence quoted
    /// and "(N occurrences)" appended.
    pub kind: &'static str,
    pub detail: String,
}

/// A parsed SIP message owning its bytes (SIP is a small share of traffic; owning keeps
/// the state machines free of lifetimes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    pub raw: Box<[u8]>,
    pub start: StartLine,
    /// The start line itself, for evidence.
    pub start_line: Span,
    pub headers: Vec<Header>,
    /// The body as framed by Content-Length (or to the end of the datagram when absent).
    pub body: Span,
    pub anomalies: Vec<SipAnomaly>,
}

impl SipMessage {
    /// The bytes of a span (empty when out of range: never panics).
    pub fn bytes(&self, s: &Span) -> &[u8] {
        self.raw
            .get(s.start as usize..s.end as usize)
            .unwrap_or(&[])
    }
    /// A span as text (lossy for invalid UTF-8).
    pub fn text(&self, s: &Span) -> Cow<'_, str> {
        String::from_utf8_lossy(self.bytes(s))
    }
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            _ => None,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            _ => None,
        }
    }
    pub fn reason(&self) -> Option<Cow<'_, str>> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(self.text(reason)),
            _ => None,
        }
    }
    pub fn request_uri(&self) -> Option<Cow<'_, str>> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(self.text(uri)),
            _ => None,
        }
    }
    /// First header of this kind.
    pub fn header(&self, kind: HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| h.kind == kind)
    }
    /// Value of the first header of this kind, as text (folded lines joined by a space).
    pub fn header_value(&self, kind: HeaderName) -> Option<Cow<'_, str>> {
        self.header(kind).map(|h| self.value_text(h))
    }
    /// All headers of this kind, in order.
    pub fn headers_of(&self, kind: HeaderName) -> impl Iterator<Item = &Header> + '_ {
        self.headers.iter().filter(move |h| h.kind == kind)
    }
    /// Value of the first header whose name matches `name` case-insensitively (for
    /// headers without a [`HeaderName`]).
    pub fn header_by_name(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers
            .iter()
            .find(|h| self.bytes(&h.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| self.value_text(h))
    }
    pub fn body_bytes(&self) -> &[u8] {
        self.bytes(&self.body)
    }
    pub fn call_id(&self) -> Option<Cow<'_, str>> {
        self.header_value(HeaderName::CallId)
    }
}

/// Wireshark's reading of an absent or unparsable CSeq is "no CSeq"; ours too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}
