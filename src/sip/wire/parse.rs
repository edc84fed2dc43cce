//! Start line, header and body framing, plus SIP-over-TCP stream framing.
//!
//! Everything here is single-pass and linear in the input: lines are found with `memchr`,
//! header names are classified from a small stack buffer, and every deviation from RFC
//! 3261 becomes a [`SipAnomaly`] instead of a rejection. Only a missing/unusable start
//! line makes [`parse`] return `None`.

use super::typed::parse_cseq;
use super::{Header, HeaderName, Method, SipAnomaly, SipMessage, Span, StartLine};
use memchr::memchr2;

/// Longest start line [`looks_like_sip`] and [`stream_frame`] will look at: a whole UDP
/// datagram. Wireshark accepts PROTOS-style overlong methods and URIs as SIP, and so do
/// we; the scan is one memchr over the line, so the bound still keeps it linear.
pub const MAX_START_LINE: usize = 65536;
/// Headers kept per message; the rest are scanned past (for framing) but not stored, so a
/// crafted message with 10,000 headers costs linear time and bounded memory.
pub const MAX_HEADERS: usize = 256;
/// Longest header block [`stream_frame`] waits for before declaring the bytes garbage.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Largest Content-Length [`stream_frame`] will wait for; beyond it the frame ends after the
/// headers (the parser flags the truncated body) and the body bytes are resynchronised past.
pub const MAX_STREAM_BODY: usize = 16 * 1024 * 1024;
/// How far [`parse`] looks past leading junk for a start line.
const MAX_JUNK_SCAN: usize = 1024;
/// Bytes of offending input quoted in an anomaly detail.
const QUOTE_MAX: usize = 80;

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

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    CrLf,
    Lf,
    Cr,
    Eof,
}

/// One physical line: `start..end` is the content, `next` the first byte after the
/// terminator.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
    term: Term,
}

fn next_line(data: &[u8], pos: usize) -> Line {
    let rest = data.get(pos..).unwrap_or(&[]);
    match memchr2(b'\r', b'\n', rest) {
        None => Line {
            start: pos,
            end: data.len(),
            next: data.len(),
            term: Term::Eof,
        },
        Some(i) => {
            let at = pos + i;
            if rest.get(i) == Some(&b'\n') {
                Line {
                    start: pos,
                    end: at,
                    next: at + 1,
                    term: Term::Lf,
                }
            } else if data.get(at + 1) == Some(&b'\n') {
                Line {
                    start: pos,
                    end: at,
                    next: at + 2,
                    term: Term::CrLf,
                }
            } else {
                Line {
                    start: pos,
                    end: at,
                    next: at + 1,
                    term: Term::Cr,
                }
            }
        }
    }
}

/// RFC 3261 `token` characters (methods and header names).
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ws(s: &[u8]) -> (usize, usize) {
    let mut a = 0;
    let mut b = s.len();
    while a < b && s.get(a).is_some_and(|&c| is_ws(c)) {
        a += 1;
    }
    while b > a && s.get(b - 1).is_some_and(|&c| is_ws(c)) {
        b -= 1;
    }
    (a, b)
}

/// The classified start line, as offsets relative to the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartKind {
    Request {
        method: (usize, usize),
        uri: (usize, usize),
    },
    Response {
        code: u16,
        reason: (usize, usize),
    },
}

/// Classify one start line (without terminator). The second value is a reason to flag
/// `sip.bad_start_line` on a line that is still usable.
fn classify_start(line: &[u8]) -> Option<(StartKind, Option<&'static str>)> {
    const VER: &[u8] = b"SIP/2.0";
    let (a, b) = trim_ws(line);
    let l = line.get(a..b)?;
    let mut bad: Option<&'static str> = if a != 0 || b != line.len() {
        Some("whitespace around the start line")
    } else {
        None
    };
    // tshark refuses start lines with NUL/control bytes (fuzzed traffic); we keep the
    // message but flag it, so counts can differ from tshark's on such captures.
    if l.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
        bad = Some("control character in the start line");
    }
    if l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/")) {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let vend = l.iter().position(|&c| is_ws(c)).unwrap_or(l.len());
        let ver = l.get(..vend)?;
        if !ver.eq_ignore_ascii_case(VER) {
            return None;
        }
        if ver != VER {
            bad = Some("version not upper-case");
        }
        let mut p = vend;
        while l.get(p).is_some_and(|&c| is_ws(c)) {
            p += 1;
        }
        if p == vend {
            return None;
        }
        if p > vend + 1 {
            bad = Some("extra whitespace in the status line");
        }
        let digits = l.get(p..p + 3)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if l.get(p + 3).is_some_and(|&c| !is_ws(c)) {
            return None;
        }
        let code = digits
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            bad = Some("status code outside 100-699");
        }
        let rest = l.get(p + 3..).unwrap_or(&[]);
        let (ra, rb) = trim_ws(rest);
        let base = a + p + 3;
        Some((
            StartKind::Response {
                code,
                reason: (base + ra, base + rb),
            },
            bad,
        ))
    } else {
        // Request-Line = Method SP Request-URI SP SIP-Version
        let mend = l.iter().position(|&c| !is_token(c)).unwrap_or(l.len());
        if mend == 0 || !l.get(mend).is_some_and(|&c| is_ws(c)) {
            return None;
        }
        // The version is the last whitespace-separated word; everything between is the URI
        // (tolerates URIs with stray spaces and doubled separators).
        let vstart = l.iter().rposition(|&c| is_ws(c)).map(|i| i + 1)?;
        let ver = l.get(vstart..)?;
        if !ver.eq_ignore_ascii_case(VER) {
            return None;
        }
        if ver != VER {
            bad = Some("version not upper-case");
        }
        let mid = l.get(mend..vstart)?;
        let (ua, ub) = trim_ws(mid);
        if ua >= ub {
            return None;
        }
        if ua != 1 || ub + 1 != mid.len() {
            bad = Some("extra whitespace in the request line");
        }
        Some((
            StartKind::Request {
                method: (a, a + mend),
                uri: (a + mend + ua, a + mend + ub),
            },
            bad,
        ))
    }
}

/// Skip up to `limit` leading CR/LF bytes; returns the offset of the first other byte.
fn skip_crlf(data: &[u8], limit: usize) -> usize {
    data.iter()
        .take(limit)
        .take_while(|&&c| c == b'\r' || c == b'\n')
        .count()
}

/// Cheap content check: does this payload start (after optional CR/LF) with a SIP
/// request line (`METHOD uri SIP/2.0`) or status line (`SIP/2.0 nnn`)? HTTP is not SIP.
pub fn looks_like_sip(data: &[u8]) -> bool {
    let p = skip_crlf(data, MAX_START_LINE);
    let window = data.get(p..).unwrap_or(&[]);
    let window = window.get(..MAX_START_LINE).unwrap_or(window);
    // Fast reject: the first byte must start a method token or "SIP/".
    if !window.first().is_some_and(|&c| is_token(c)) {
        return false;
    }
    let end = memchr2(b'\r', b'\n', window).unwrap_or(window.len());
    window
        .get(..end)
        .is_some_and(|l| classify_start(l).is_some())
}

/// Map a header name (as written) to its canonical kind, compact forms included.
pub(crate) fn header_kind(name: &[u8]) -> HeaderName {
    use HeaderName as H;
    if name.len() == 1 {
        return match name.first().map(u8::to_ascii_lowercase) {
            Some(b'i') => H::CallId,
            Some(b'f') => H::From,
            Some(b't') => H::To,
            Some(b'v') => H::Via,
            Some(b'm') => H::Contact,
            Some(b'l') => H::ContentLength,
            Some(b'c') => H::ContentType,
            Some(b'k') => H::Supported,
            Some(b's') => H::Subject,
            Some(b'e') => H::ContentEncoding,
            Some(b'o') => H::Event,
            Some(b'r') => H::ReferTo,
            Some(b'u') => H::AllowEvents,
            Some(b'x') => H::SessionExpires,
            Some(b'b') => H::ReferredBy,
            Some(b'a') => H::AcceptContact,
            _ => H::Other, // y = Identity, j = Reject-Contact, d, n, ...
        };
    }
    // Dispatch on length first so each name is compared with at most a few candidates.
    let candidates: &[(&[u8], H)] = match name.len() {
        2 => &[(b"to", H::To)],
        3 => &[(b"via", H::Via)],
        4 => &[
            (b"from", H::From),
            (b"cseq", H::CSeq),
            (b"rseq", H::RSeq),
            (b"rack", H::RAck),
        ],
        5 => &[
            (b"route", H::Route),
            (b"allow", H::Allow),
            (b"event", H::Event),
        ],
        6 => &[
            (b"server", H::Server),
            (b"reason", H::Reason),
            (b"min-se", H::MinSE),
        ],
        7 => &[
            (b"call-id", H::CallId),
            (b"contact", H::Contact),
            (b"expires", H::Expires),
            (b"privacy", H::Privacy),
            (b"require", H::Require),
            (b"subject", H::Subject),
        ],
        8 => &[(b"refer-to", H::ReferTo)],
        9 => &[(b"supported", H::Supported)],
        10 => &[(b"user-agent", H::UserAgent)],
        11 => &[
            (b"min-expires", H::MinExpires),
            (b"referred-by", H::ReferredBy),
        ],
        12 => &[
            (b"content-type", H::ContentType),
            (b"max-forwards", H::MaxForwards),
            (b"record-route", H::RecordRoute),
            (b"allow-events", H::AllowEvents),
        ],
        13 => &[(b"authorization", H::Authorization)],
        14 => &[
            (b"content-length", H::ContentLength),
            (b"accept-contact", H::AcceptContact),
        ],
        15 => &[
            (b"remote-party-id", H::RemotePartyId),
            (b"session-expires", H::SessionExpires),
        ],
        16 => &[
            (b"content-encoding", H::ContentEncoding),
            (b"www-authenticate", H::WwwAuthenticate),
        ],
        18 => &[(b"proxy-authenticate", H::ProxyAuthenticate)],
        19 => &[
            (b"p-asserted-identity", H::PAssertedIdentity),
            (b"proxy-authorization", H::ProxyAuthorization),
        ],
        20 => &[(b"p-preferred-identity", H::PPreferredIdentity)],
        _ => &[],
    };
    candidates
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(name))
        .map_or(H::Other, |&(_, k)| k)
}

/// Offending bytes for an anomaly detail: lossy, control characters escaped, bounded.
pub(crate) fn quote(b: &[u8]) -> String {
    let cut = b.get(..QUOTE_MAX).unwrap_or(b);
    let mut s = crate::types::sanitize_text(&String::from_utf8_lossy(cut));
    if cut.len() < b.len() {
        s.push_str("...");
    }
    s
}

/// Decimal digits to a saturating u64 (None when empty or not all digits).
pub(crate) fn parse_decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// A repeated deviation: counted, first occurrence quoted.
#[derive(Default)]
struct Repeated {
    count: usize,
    first: Option<String>,
}

impl Repeated {
    fn hit(&mut self, detail: impl FnOnce() -> String) {
        if self.count == 0 {
            self.first = Some(detail());
        }
        self.count = self.count.saturating_add(1);
    }
    fn emit(self, kind: &'static str, out: &mut Vec<SipAnomaly>) {
        if let Some(mut d) = self.first {
            if self.count > 1 {
                d.push_str(&format!(" ({} occurrences)", self.count));
            }
            out.push(SipAnomaly { kind, detail: d });
        }
    }
}

/// Content-Length values seen so far (the first number wins; oddities flagged once).
#[derive(Default)]
struct ContentLengths {
    declared: Option<u64>,
    bad: bool,
    dup: bool,
}

impl ContentLengths {
    fn feed(&mut self, v: &[u8], out: &mut Vec<SipAnomaly>) {
        match (parse_decimal(v), self.declared) {
            (Some(n), None) => self.declared = Some(n),
            (Some(n), Some(d)) if d != n && !self.dup => {
                self.dup = true;
                out.push(SipAnomaly {
                    kind: "sip.duplicate_content_length",
                    detail: format!("Content-Length {d} and {n} both present; the first is used"),
                });
            }
            (None, None) if !self.bad => {
                self.bad = true;
                out.push(SipAnomaly {
                    kind: "sip.bad_content_length",
                    detail: format!("Content-Length \"{}\" is not a number", quote(v)),
                });
            }
            _ => {}
        }
    }
}

fn note_term(t: Term, at: usize, lf: &mut Repeated, cr: &mut Repeated) {
    match t {
        Term::Lf => lf.hit(|| format!("line ending in a bare LF at byte {at}")),
        Term::Cr => cr.hit(|| format!("line ending in a bare CR at byte {at}")),
        Term::CrLf | Term::Eof => {}
    }
}

fn span(a: usize, b: usize) -> Span {
    // Callers only pass offsets within a buffer already checked to fit in u32.
    (a as u32)..(b as u32)
}

/// Find the start line: after CR/LF (and other junk) at the start of `data`. Returns the
/// line, its classification, and how many bytes were skipped before it.
fn find_start(data: &[u8]) -> Option<(Line, StartKind, Option<&'static str>)> {
    let mut pos = data
        .iter()
        .take(MAX_JUNK_SCAN)
        .take_while(|&&c| matches!(c, b'\r' | b'\n' | b' ' | b'\t' | 0))
        .count();
    loop {
        if pos >= data.len() || pos > MAX_JUNK_SCAN {
            return None;
        }
        let line = next_line(data, pos);
        let text = data.get(line.start..line.end).unwrap_or(&[]);
        if let Some((k, bad)) = classify_start(text) {
            return Some((line, k, bad));
        }
        if line.term == Term::Eof {
            return None;
        }
        pos = line.next;
    }
}

const MANDATORY: [(HeaderName, &str); 5] = [
    (HeaderName::CallId, "Call-ID"),
    (HeaderName::CSeq, "CSeq"),
    (HeaderName::From, "From"),
    (HeaderName::To, "To"),
    (HeaderName::Via, "Via"),
];

/// Parse one SIP message from a datagram (or a framed stream message). `None` when the
/// bytes do not carry a SIP start line at all.
pub fn parse(data: &[u8]) -> Option<SipMessage> {
    if u32::try_from(data.len()).is_err() {
        return None;
    }
    let (sl, kind, bad_start) = find_start(data)?;
    let mut anomalies: Vec<SipAnomaly> = Vec::new();
    if sl.start > 0 {
        let junk = data.get(..sl.start).unwrap_or(&[]);
        let all_crlf = junk.iter().all(|&c| c == b'\r' || c == b'\n');
        anomalies.push(SipAnomaly {
            kind: "sip.leading_junk",
            detail: if all_crlf {
                format!("{} CR/LF bytes before the start line", junk.len())
            } else {
                format!(
                    "{} bytes before the start line: \"{}\"",
                    junk.len(),
                    quote(junk)
                )
            },
        });
    }
    let start_line_bytes = data.get(sl.start..sl.end).unwrap_or(&[]);
    if let Some(why) = bad_start {
        anomalies.push(SipAnomaly {
            kind: "sip.bad_start_line",
            detail: format!("{why}: \"{}\"", quote(start_line_bytes)),
        });
    }
    let start = match kind {
        StartKind::Request { method, uri } => StartLine::Request {
            method: Method::from_bytes(start_line_bytes.get(method.0..method.1).unwrap_or(&[])),
            uri: span(sl.start + uri.0, sl.start + uri.1),
        },
        StartKind::Response { code, reason } => StartLine::Response {
            code,
            reason: span(sl.start + reason.0, sl.start + reason.1),
        },
    };

    let mut bare_lf = Repeated::default();
    let mut bare_cr = Repeated::default();
    let mut folded = Repeated::default();
    let mut ws_colon = Repeated::default();
    let mut bad_line = Repeated::default();
    note_term(sl.term, sl.end, &mut bare_lf, &mut bare_cr);

    let mut headers: Vec<Header> = Vec::with_capacity(16);
    let mut dropped = 0usize;
    let mut cl = ContentLengths::default();
    // Mandatory headers seen (bit i = MANDATORY[i]), including ones beyond MAX_HEADERS.
    let mut seen = 0u8;
    // Whether the previous physical line was a header we stored (folding extends it).
    let mut prev_stored = false;
    let mut pos = sl.next;
    let mut header_end = data.len();
    let mut body_start: Option<usize> = None;
    if sl.term == Term::Eof {
        pos = data.len();
    }
    while pos < data.len() {
        let l = next_line(data, pos);
        note_term(l.term, l.end, &mut bare_lf, &mut bare_cr);
        let text = data.get(l.start..l.end).unwrap_or(&[]);
        if text.is_empty() {
            header_end = l.start;
            body_start = Some(l.next);
            break;
        }
        pos = l.next;
        if text.first().is_some_and(|&c| is_ws(c)) {
            // Continuation line (RFC 3261 §7.3.1 folding).
            let (a, b) = trim_ws(text);
            match headers.last_mut() {
                Some(h) if prev_stored => {
                    folded.hit(|| format!("folded header at byte {}", l.start));
                    h.line.end = l.end as u32;
                    if a < b {
                        if h.value.start == h.value.end {
                            h.value.start = (l.start + a) as u32;
                        }
                        h.value.end = (l.start + b) as u32;
                    }
                }
                _ if dropped > 0 => {}
                _ => {
                    if a < b {
                        bad_line.hit(|| {
                            format!("continuation line with no header: \"{}\"", quote(text))
                        });
                    }
                }
            }
            continue;
        }
        prev_stored = false;
        let colon = match memchr::memchr(b':', text) {
            Some(c) => c,
            None => {
                bad_line.hit(|| format!("header line without a colon: \"{}\"", quote(text)));
                continue;
            }
        };
        let raw_name = text.get(..colon).unwrap_or(&[]);
        let (_, nb) = trim_ws(raw_name);
        let name = raw_name.get(..nb).unwrap_or(&[]);
        if name.is_empty() || !name.iter().all(|&c| is_token(c)) {
            bad_line.hit(|| format!("invalid header name: \"{}\"", quote(text)));
            continue;
        }
        if nb < raw_name.len() {
            ws_colon.hit(|| format!("whitespace before the colon in \"{}\"", quote(text)));
        }
        let kind = header_kind(name);
        if let Some(bit) = MANDATORY.iter().position(|(k, _)| *k == kind) {
            seen |= 1 << bit;
        }
        let vraw = text.get(colon + 1..).unwrap_or(&[]);
        let (va, vb) = trim_ws(vraw);
        if kind == HeaderName::ContentLength {
            // Framing must not depend on the header cap, so Content-Length is read here.
            cl.feed(vraw.get(va..vb).unwrap_or(&[]), &mut anomalies);
        }
        if headers.len() >= MAX_HEADERS {
            dropped = dropped.saturating_add(1);
            continue;
        }
        let vbase = l.start + colon + 1;
        headers.push(Header {
            kind,
            name: span(l.start, l.start + nb),
            value: span(vbase + va, vbase + vb),
            line: span(l.start, l.end),
        });
        prev_stored = true;
    }

    bare_lf.emit("sip.bare_lf", &mut anomalies);
    bare_cr.emit("sip.bare_cr", &mut anomalies);
    folded.emit("sip.folded_header", &mut anomalies);
    ws_colon.emit("sip.ws_before_colon", &mut anomalies);
    bad_line.emit("sip.bad_header_line", &mut anomalies);
    if dropped > 0 {
        anomalies.push(SipAnomaly {
            kind: "sip.too_many_headers",
            detail: format!("{} headers beyond the first {MAX_HEADERS} ignored", dropped),
        });
    }
    if body_start.is_none() {
        anomalies.push(SipAnomaly {
            kind: "sip.no_header_end",
            detail: "no empty line after the headers (message ends inside the header block)".into(),
        });
    }

    // Invalid UTF-8 in the start line or headers (the body may legitimately be binary).
    if let Some(hdr) = data.get(sl.start..header_end)
        && let Err(e) = std::str::from_utf8(hdr)
    {
        anomalies.push(SipAnomaly {
            kind: "sip.non_utf8",
            detail: format!("invalid UTF-8 at byte {}", sl.start + e.valid_up_to()),
        });
    }

    // Body framing: Content-Length decides.
    let bstart = body_start.unwrap_or(data.len());
    let present = data.len().saturating_sub(bstart);
    let ContentLengths {
        declared,
        bad: cl_bad,
        ..
    } = cl;
    let body_end = match declared {
        None => {
            if !cl_bad {
                anomalies.push(SipAnomaly {
                    kind: "sip.no_content_length",
                    detail: format!(
                        "no Content-Length; body taken to the end of the datagram ({present} bytes)"
                    ),
                });
            }
            data.len()
        }
        Some(n) if n > present as u64 => {
            anomalies.push(SipAnomaly {
                kind: "sip.body_truncated",
                detail: format!("Content-Length {n} but only {present} body bytes present"),
            });
            data.len()
        }
        Some(n) => {
            // n <= present, so it fits in usize.
            let n = n as usize;
            let end = bstart + n;
            let trailing = data.get(end..).unwrap_or(&[]);
            if !trailing.is_empty() {
                if trailing.iter().all(|&c| c == b'\r' || c == b'\n') {
                    anomalies.push(SipAnomaly {
                        kind: "sip.trailing_bytes",
                        detail: format!("{} CR/LF bytes after the {n}-byte body", trailing.len()),
                    });
                } else {
                    let next_msg = if looks_like_sip(trailing) {
                        "; they start another SIP message"
                    } else {
                        ""
                    };
                    anomalies.push(SipAnomaly {
                        kind: "sip.content_length_mismatch",
                        detail: format!(
                            "Content-Length {n} but {present} body bytes present ({} trailing){next_msg}",
                            trailing.len()
                        ),
                    });
                }
            }
            end
        }
    };

    // Mandatory headers and CSeq sanity.
    for (bit, (_, name)) in MANDATORY.iter().enumerate() {
        if seen & (1 << bit) == 0 {
            anomalies.push(SipAnomaly {
                kind: "sip.missing_header",
                detail: format!("no {name} header"),
            });
        }
    }
    if let Some(h) = headers.iter().find(|h| h.kind == HeaderName::CSeq) {
        let v = data
            .get(h.value.start as usize..h.value.end as usize)
            .unwrap_or(&[]);
        match parse_cseq(v) {
            None => anomalies.push(SipAnomaly {
                kind: "sip.bad_cseq",
                detail: format!("unparsable CSeq \"{}\"", quote(v)),
            }),
            Some((_, m)) => {
                if let StartLine::Request { method, .. } = &start
                    && m != method.as_str().as_bytes()
                {
                    anomalies.push(SipAnomaly {
                        kind: "sip.cseq_method_mismatch",
                        detail: format!(
                            "CSeq method \"{}\" differs from request method {}",
                            quote(m),
                            method.as_str()
                        ),
                    });
                }
            }
        }
    }

    // Calls keep their messages to the end of the capture: drop the unused part of the
    // 16 header slots reserved above.
    headers.shrink_to_fit();
    Some(SipMessage {
        raw: data.into(),
        start,
        start_line: span(sl.start, sl.end),
        headers,
        body: span(bstart.min(body_end), body_end),
        anomalies,
    })
}

/// Could this partial first line (no terminator yet) still become a start line?
fn plausible_partial(line: &[u8]) -> bool {
    const VER: &[u8] = b"SIP/2.0";
    let wend = line.iter().position(|&c| is_ws(c)).unwrap_or(line.len());
    let word = line.get(..wend).unwrap_or(&[]);
    let n = word.len().min(VER.len());
    let ver_prefix = word
        .get(..n)
        .zip(VER.get(..n))
        .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b));
    if ver_prefix && word.len() <= VER.len() {
        return true;
    }
    !word.is_empty() && word.iter().all(|&c| is_token(c))
}

/// Frame the next message in a TCP byte stream (Content-Length framing, RFC 3261 §18.3).
pub fn stream_frame(buf: &[u8]) -> StreamFrame {
    stream_frame_need(buf).0
}

/// [`stream_frame`], and for an `Incomplete` message whose header block is complete the
/// stream length it needs (header block + Content-Length): nothing can change until the
/// buffer reaches it, so a body trickled in small segments need not be re-framed per
/// segment.
pub fn stream_frame_need(buf: &[u8]) -> (StreamFrame, Option<usize>) {
    let mut need = None;
    let f = frame_inner(buf, &mut need);
    (f, need.filter(|_| f == StreamFrame::Incomplete))
}

fn frame_inner(buf: &[u8], need: &mut Option<usize>) -> StreamFrame {
    if buf.is_empty() {
        return StreamFrame::Incomplete;
    }
    let ka = skip_crlf(buf, MAX_HEADER_BLOCK);
    if ka > 0 {
        return StreamFrame::Keepalive(ka);
    }
    let window = buf.get(..MAX_START_LINE).unwrap_or(buf);
    let first = next_line(window, 0);
    if first.term == Term::Eof {
        let partial = window;
        if buf.len() < MAX_START_LINE && plausible_partial(partial) {
            return StreamFrame::Incomplete;
        }
        // No line end within the bound (or impossible prefix): skip to the next line start.
        let skip = memchr::memchr(b'\n', buf)
            .map(|i| i + 1)
            .unwrap_or(buf.len());
        return StreamFrame::Garbage(skip);
    }
    // A bare CR at the window edge might be the first half of CRLF.
    if first.term == Term::Cr && first.next >= buf.len() {
        return StreamFrame::Incomplete;
    }
    let line = window.get(..first.end).unwrap_or(&[]);
    if classify_start(line).is_none() {
        return StreamFrame::Garbage(first.next.max(1));
    }
    // Scan header lines for the empty line and Content-Length.
    let mut pos = first.next;
    let mut cl: Option<u64> = None;
    loop {
        if pos > MAX_HEADER_BLOCK {
            return StreamFrame::Garbage(first.next.max(1));
        }
        let l = next_line(buf, pos);
        if l.term == Term::Eof || (l.term == Term::Cr && l.next >= buf.len()) {
            return if buf.len() > MAX_HEADER_BLOCK {
                StreamFrame::Garbage(first.next.max(1))
            } else {
                StreamFrame::Incomplete
            };
        }
        let text = buf.get(l.start..l.end).unwrap_or(&[]);
        if text.is_empty() {
            let hdr_end = l.next;
            let n = cl.unwrap_or(0);
            if n > MAX_STREAM_BODY as u64 {
                return StreamFrame::Complete(hdr_end);
            }
            let total = hdr_end.saturating_add(n as usize);
            return if buf.len() >= total {
                StreamFrame::Complete(total)
            } else {
                *need = Some(total);
                StreamFrame::Incomplete
            };
        }
        if cl.is_none()
            && let Some(c) = memchr::memchr(b':', text)
        {
            let name = text.get(..c).unwrap_or(&[]);
            let (_, nb) = trim_ws(name);
            if header_kind(name.get(..nb).unwrap_or(&[])) == HeaderName::ContentLength {
                let v = text.get(c + 1..).unwrap_or(&[]);
                let (a, b) = trim_ws(v);
                cl = parse_decimal(v.get(a..b).unwrap_or(&[]));
            }
        }
        pos = l.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: \"Alice A.\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 149\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    fn kinds(m: &SipMessage) -> Vec<&'static str> {
        m.anomalies.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn standard_invite() {
        assert!(looks_like_sip(INVITE));
        let m = parse(INVITE).expect("parses");
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(
            m.request_uri().as_deref(),
            Some("sip:bob@biloxi.example.com")
        );
        assert_eq!(m.headers.len(), 9);
        assert_eq!(
            m.call_id().as_deref(),
            Some("a84b4c76e66710@pc33.atlanta.example.com")
        );
        assert_eq!(m.body_bytes().len(), 149);
        assert!(m.body_bytes().starts_with(b"v=0\r\n"));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
        assert_eq!(
            m.text(&m.start_line),
            "INVITE sip:bob@biloxi.example.com SIP/2.0"
        );
        let h = m.header(HeaderName::MaxForwards).expect("max-forwards");
        assert_eq!(m.text(&h.name), "Max-Forwards");
        assert_eq!(m.text(&h.line), "Max-Forwards: 70");
    }

    /// A minimal valid response head (without Content-Length or the blank line).
    const RESP_HEAD: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\r\n\
From: <sip:a@example.com>;tag=a\r\n\
To: <sip:b@example.com>;tag=b\r\n\
Call-ID: cid-1\r\n\
CSeq: 1 INVITE\r\n";

    /// `head` + a correct Content-Length + blank line + `body`.
    fn with_body(head: &str, body: &[u8]) -> Vec<u8> {
        let mut v = format!("{head}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        v.extend_from_slice(body);
        v
    }

    fn has(m: &SipMessage, kind: &str) -> bool {
        m.anomalies.iter().any(|a| a.kind == kind)
    }

    #[test]
    fn ok_with_sdp_and_empty_reason() {
        let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let raw = with_body(RESP_HEAD, body);
        let m = parse(&raw).expect("200");
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.reason().as_deref(), Some("OK"));
        assert_eq!(m.body_bytes(), &body[..]);
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);

        for line in ["SIP/2.0 100 \r\n", "SIP/2.0 100\r\n"] {
            let raw = with_body(&RESP_HEAD.replacen("SIP/2.0 200 OK\r\n", line, 1), b"");
            let m = parse(&raw).expect("100");
            assert_eq!(m.status(), Some(100));
            assert_eq!(m.reason().as_deref(), Some(""));
        }
    }

    #[test]
    fn lowercase_names_vendor_headers_and_empty_values() {
        let head = "SIP/2.0 200 OK\r\nvia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nfrom: <sip:a@h>;tag=1\r\nTO: <sip:b@h>\r\n\
call-id: c\r\ncseq: 1 BYE\r\nX-Vendor-Thing: 42\r\nSubject:\r\nUser-Agent:   \r\n";
        let m = parse(&with_body(head, b"")).expect("parses");
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
        assert_eq!(m.header_value(HeaderName::CallId).as_deref(), Some("c"));
        assert_eq!(m.header_by_name("x-vendor-thing").as_deref(), Some("42"));
        assert_eq!(
            m.header(HeaderName::Other)
                .map(|h| m.text(&h.name).into_owned())
                .as_deref(),
            Some("X-Vendor-Thing")
        );
        assert_eq!(m.header_value(HeaderName::Subject).as_deref(), Some(""));
        assert_eq!(m.header_value(HeaderName::UserAgent).as_deref(), Some(""));
    }

    #[test]
    fn binary_body_is_not_non_utf8() {
        let body = [0x01u8, 0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x0d, 0x0a, 0x33];
        let head = RESP_HEAD.to_string() + "Content-Type: application/isup\r\n";
        let m = parse(&with_body(&head, &body)).expect("parses");
        assert_eq!(m.body_bytes(), &body[..]);
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
    }

    #[test]
    fn missing_content_length_takes_rest() {
        let raw = format!("{RESP_HEAD}\r\nhello\r\n");
        let m = parse(raw.as_bytes()).expect("parses");
        assert_eq!(m.body_bytes(), b"hello\r\n");
        assert_eq!(kinds(&m), ["sip.no_content_length"]);
    }

    #[test]
    fn compact_forms() {
        let raw = b"INVITE sip:b@h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\nt: <sip:b@h>\r\n\
i: abc\r\nCSeq: 1 INVITE\r\nm: <sip:a@h>\r\nc: application/sdp\r\nk: timer\r\ns: hi\r\ne: gzip\r\no: refer\r\n\
r: <sip:c@h>\r\nu: talk\r\nx: 90\r\nb: <sip:d@h>\r\ny: abc\r\na: *;audio\r\nl: 0\r\n\r\n";
        let m = parse(raw).expect("parses");
        use HeaderName as H;
        let got: Vec<H> = m.headers.iter().map(|h| h.kind).collect();
        assert_eq!(
            got,
            [
                H::Via,
                H::From,
                H::To,
                H::CallId,
                H::CSeq,
                H::Contact,
                H::ContentType,
                H::Supported,
                H::Subject,
                H::ContentEncoding,
                H::Event,
                H::ReferTo,
                H::AllowEvents,
                H::SessionExpires,
                H::ReferredBy,
                H::Other,
                H::AcceptContact,
                H::ContentLength
            ]
        );
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
        assert_eq!(m.call_id().as_deref(), Some("abc"));
        assert_eq!(m.vias().len(), 1);
        assert_eq!(m.content_type().as_deref(), Some("application/sdp"));
        assert_eq!(m.session_expires(), Some((90, None)));
    }

    #[test]
    fn multi_via_on_one_line_plus_one() {
        let head = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p1:5060;branch=z9hG4bK1, SIP/2.0/TCP p2;branch=z9hG4bK2\r\n\
Via: SIP/2.0/UDP ua:5062;branch=z9hG4bK3;rport\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n";
        let m = parse(&with_body(head, b"")).expect("parses");
        let v = m.vias();
        assert_eq!(
            v.iter()
                .map(|v| v.branch.as_deref().unwrap_or(""))
                .collect::<Vec<_>>(),
            ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
        );
        assert_eq!(v[1].transport, "TCP");
        assert_eq!(v[1].port, None);
        assert_eq!(v[2].rport, Some(None));
        assert_eq!(
            m.top_via().and_then(|v| v.branch).as_deref(),
            Some("z9hG4bK1")
        );
    }

    #[test]
    fn folded_header() {
        let head = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: I know you're there,\r\n  pick up the phone\r\n\tand talk to me!\r\n\
From: <sip:a@h>;tag=1\r\nTo:\r\n <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n";
        let m = parse(&with_body(head, b"")).expect("parses");
        assert_eq!(kinds(&m), ["sip.folded_header"]);
        assert!(
            m.anomalies[0].detail.contains("3 occurrences"),
            "{}",
            m.anomalies[0].detail
        );
        assert_eq!(
            m.header_value(HeaderName::Subject).as_deref(),
            Some("I know you're there, pick up the phone and talk to me!")
        );
        let subj = m.header(HeaderName::Subject).expect("subject");
        assert!(m.text(&subj.line).ends_with("and talk to me!"));
        assert!(m.text(&subj.line).starts_with("Subject:"));
        assert_eq!(m.to_hdr().map(|t| t.uri).as_deref(), Some("sip:b@h"));
        assert_eq!(m.headers.len(), 7);
    }

    #[test]
    fn whitespace_before_colon() {
        let head = RESP_HEAD.replace("Call-ID: cid-1", "Call-ID   : cid-1");
        let m = parse(&with_body(&head, b"")).expect("parses");
        assert_eq!(kinds(&m), ["sip.ws_before_colon"]);
        assert_eq!(m.call_id().as_deref(), Some("cid-1"));
        let h = m.header(HeaderName::CallId).expect("call-id");
        assert_eq!(m.text(&h.name), "Call-ID");
    }

    #[test]
    fn bare_lf_line_endings() {
        let raw = with_body(RESP_HEAD, b"body\n")
            .iter()
            .fold(Vec::new(), |mut v, &b| {
                if b != b'\r' {
                    v.push(b)
                }
                v
            });
        // Content-Length was computed for "body\n" (5 bytes), still right without CRs.
        let m = parse(&raw).expect("parses");
        assert_eq!(kinds(&m), ["sip.bare_lf"]);
        assert_eq!(m.body_bytes(), b"body\n");
        assert_eq!(m.call_id().as_deref(), Some("cid-1"));
        assert_eq!(m.headers.len(), 6);
    }

    #[test]
    fn latin1_display_name() {
        let mut raw = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: \"Jos\xe9 M\xfcller\" <sip:jose@h>;tag=9\r\n".to_vec();
        raw.extend_from_slice(
            b"To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        let m = parse(&raw).expect("parses");
        assert_eq!(kinds(&m), ["sip.non_utf8"]);
        let f = m.from_hdr().expect("from");
        assert_eq!(f.tag.as_deref(), Some("9"));
        assert_eq!(f.uri, "sip:jose@h");
        assert!(f.display.is_some_and(|d| d.starts_with("Jos")));
        let h = m.header(HeaderName::From).expect("from");
        assert!(m.bytes(&h.value).contains(&0xe9));
    }

    #[test]
    fn leading_crlf_and_junk() {
        let mut raw = b"\r\n\r\n".to_vec();
        raw.extend(with_body(RESP_HEAD, b""));
        assert!(looks_like_sip(&raw));
        let m = parse(&raw).expect("parses");
        assert_eq!(kinds(&m), ["sip.leading_junk"]);
        assert_eq!(m.text(&m.start_line), "SIP/2.0 200 OK");

        let mut raw = b"\x00\x01garbage line\r\n".to_vec();
        raw.extend(with_body(RESP_HEAD, b""));
        assert!(
            !looks_like_sip(&raw),
            "looks_like_sip checks only the first line"
        );
        let m = parse(&raw).expect("parse skips the junk line");
        assert_eq!(kinds(&m), ["sip.leading_junk"]);
        assert_eq!(m.status(), Some(200));
    }

    #[test]
    fn tel_and_ipv6_request_uris() {
        for uri in [
            "tel:+31201234567;phone-context=+31",
            "sip:alice@[2001:db8::10]:5070;transport=tcp",
        ] {
            let head = format!(
                "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;received=2001:db8::9\r\n\
From: <sip:a@h>;tag=1\r\nTo: <{uri}>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
            );
            let raw = with_body(&head, b"");
            assert!(looks_like_sip(&raw));
            let m = parse(&raw).expect("parses");
            assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
            assert_eq!(m.request_uri().as_deref(), Some(uri));
            let v = m.vias();
            assert_eq!((v[0].host.as_str(), v[0].port), ("2001:db8::1", Some(5060)));
            assert_eq!(v[0].received.as_deref(), Some("2001:db8::9"));
        }
    }

    #[test]
    fn unknown_method() {
        let raw = with_body(&INVITE_HEAD.replace("INVITE", "FOOBAR"), b"");
        let m = parse(&raw).expect("parses");
        assert_eq!(m.method(), Some(&Method::Other("FOOBAR".into())));
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
        let raw = with_body(&INVITE_HEAD.replacen("INVITE", "FOOBAR", 1), b"");
        let m = parse(&raw).expect("parses");
        assert_eq!(kinds(&m), ["sip.cseq_method_mismatch"]);
    }

    const INVITE_HEAD: &str = "INVITE sip:b@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\r\n\
From: <sip:a@example.com>;tag=a\r\n\
To: <sip:b@example.com>\r\n\
Call-ID: cid-1\r\n\
CSeq: 1 INVITE\r\n";

    #[test]
    fn content_length_larger_than_present() {
        let raw = format!("{RESP_HEAD}Content-Length: 500\r\n\r\nv=0\r\n");
        let m = parse(raw.as_bytes()).expect("parses");
        assert_eq!(kinds(&m), ["sip.body_truncated"]);
        assert!(
            m.anomalies[0].detail.contains("500") && m.anomalies[0].detail.contains(" 5 "),
            "{}",
            m.anomalies[0].detail
        );
        assert_eq!(m.body_bytes(), b"v=0\r\n");
    }

    #[test]
    fn trailing_crlf_and_trailing_junk() {
        let mut raw = with_body(RESP_HEAD, b"abc");
        raw.extend_from_slice(b"\r\n");
        let m = parse(&raw).expect("parses");
        assert_eq!(kinds(&m), ["sip.trailing_bytes"]);
        assert_eq!(m.body_bytes(), b"abc");

        // An ALG that grew the SDP without fixing Content-Length.
        let mut raw = with_body(RESP_HEAD, b"abc");
        raw.extend_from_slice(b"defgh");
        let m = parse(&raw).expect("parses");
        assert_eq!(kinds(&m), ["sip.content_length_mismatch"]);
        let d = &m.anomalies[0].detail;
        assert!(d.contains('3') && d.contains('8'), "{d}");
        assert_eq!(m.body_bytes(), b"abc");
    }

    #[test]
    fn two_messages_in_one_buffer() {
        let first = with_body(RESP_HEAD, b"xyz");
        let second = with_body(INVITE_HEAD, b"");
        let mut buf = first.clone();
        buf.extend_from_slice(&second);
        assert_eq!(stream_frame(&buf), StreamFrame::Complete(first.len()));
        assert_eq!(
            stream_frame(&buf[first.len()..]),
            StreamFrame::Complete(second.len())
        );
        // As a datagram, the first message is framed by Content-Length and the rest flagged.
        let m = parse(&buf).expect("parses");
        assert_eq!(m.body_bytes(), b"xyz");
        assert_eq!(kinds(&m), ["sip.content_length_mismatch"]);
        assert!(m.anomalies[0].detail.contains("another SIP message"));
        // Partial second message.
        assert_eq!(
            stream_frame(&second[..second.len() - 3]),
            StreamFrame::Incomplete
        );
        assert_eq!(
            stream_frame(&first[..first.len() - 1]),
            StreamFrame::Incomplete
        );
        assert_eq!(stream_frame(&first[..10]), StreamFrame::Incomplete);
    }

    #[test]
    fn stream_keepalives_and_garbage() {
        assert_eq!(stream_frame(b"\r\n\r\n"), StreamFrame::Keepalive(4));
        assert_eq!(stream_frame(b"\r\n"), StreamFrame::Keepalive(2));
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend(with_body(RESP_HEAD, b""));
        assert_eq!(stream_frame(&buf), StreamFrame::Keepalive(4));
        assert_eq!(stream_frame(b""), StreamFrame::Incomplete);
        // Mid-message bytes after a TCP gap: skip one line at a time to the next start line.
        let mut buf = b"a=rtpmap:0 PCMU/8000\r\n".to_vec();
        buf.extend(with_body(RESP_HEAD, b""));
        assert_eq!(stream_frame(&buf), StreamFrame::Garbage(22));
        assert_eq!(
            stream_frame(&buf[22..]),
            StreamFrame::Complete(buf.len() - 22)
        );
        assert_eq!(
            stream_frame(b"\x16\x03\x01\x02\x00"),
            StreamFrame::Garbage(5)
        );
        assert_eq!(
            stream_frame(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            StreamFrame::Garbage(16)
        );
        // A header block without Content-Length: empty body on a stream.
        let raw = format!("{RESP_HEAD}\r\nNEXT");
        assert_eq!(
            stream_frame(raw.as_bytes()),
            StreamFrame::Complete(raw.len() - 4)
        );
        // No end of headers within the bound: skip the start line.
        let mut big = b"SIP/2.0 200 OK\r\n".to_vec();
        while big.len() <= MAX_HEADER_BLOCK + 10 {
            big.extend_from_slice(b"X-Pad: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(stream_frame(&big), StreamFrame::Garbage(16));
        // A huge Content-Length is not waited for.
        let raw = format!("{RESP_HEAD}Content-Length: 999999999999\r\n\r\nabc");
        assert_eq!(
            stream_frame(raw.as_bytes()),
            StreamFrame::Complete(raw.len() - 3)
        );
    }

    #[test]
    fn http_is_not_sip() {
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"POST /sip HTTP/1.0\r\n\r\n",
        ] {
            assert!(!looks_like_sip(raw));
            assert!(parse(raw).is_none());
        }
    }

    #[test]
    fn bad_start_lines() {
        for raw in [
            &b"SIP/2.0 20 OK\r\n\r\n"[..],
            b"SIP/2.0 2000 OK\r\n\r\n",
            b"SIP/2.0 abc OK\r\n\r\n",
            b"SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b\r\n\r\n",
            b"INVITE SIP/2.0\r\n\r\n",
            b" \r\n",
            b"",
            b"SIP/3.0 200 OK\r\n\r\n",
        ] {
            assert!(!looks_like_sip(raw), "{:?}", String::from_utf8_lossy(raw));
            assert!(parse(raw).is_none(), "{:?}", String::from_utf8_lossy(raw));
        }
        let m = parse(b"SIP/2.0 099 Odd\r\n\r\n").expect("3 digits parse");
        assert!(has(&m, "sip.bad_start_line"));
        let m = parse(b"OPTIONS  sip:a@b   sip/2.0\r\n\r\n").expect("tolerated");
        assert!(has(&m, "sip.bad_start_line"));
        assert_eq!(m.request_uri().as_deref(), Some("sip:a@b"));
    }

    #[test]
    fn bad_and_missing_headers() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nthis line has no colon\r\n: no name\r\nBad Name: x\r\nContent-Length: ten\r\n\r\nbody";
        let m = parse(raw).expect("parses");
        assert!(has(&m, "sip.bad_header_line"));
        assert!(
            m.anomalies
                .iter()
                .any(|a| a.kind == "sip.bad_header_line" && a.detail.contains("3 occurrences"))
        );
        assert!(has(&m, "sip.bad_content_length"));
        assert!(!has(&m, "sip.no_content_length"));
        assert_eq!(m.body_bytes(), b"body");
        let missing: Vec<&str> = m
            .anomalies
            .iter()
            .filter(|a| a.kind == "sip.missing_header")
            .map(|a| a.detail.as_str())
            .collect();
        assert_eq!(
            missing,
            [
                "no Call-ID header",
                "no CSeq header",
                "no From header",
                "no To header",
                "no Via header"
            ]
        );
        let raw = with_body(
            &RESP_HEAD.replace("CSeq: 1 INVITE", "CSeq: one INVITE"),
            b"",
        );
        assert_eq!(kinds(&parse(&raw).expect("parses")), ["sip.bad_cseq"]);
    }

    #[test]
    fn no_blank_line() {
        let m = parse(RESP_HEAD.as_bytes()).expect("parses");
        assert!(has(&m, "sip.no_header_end"));
        assert_eq!(m.headers.len(), 5);
        assert!(m.body_bytes().is_empty());
        assert_eq!(m.cseq().map(|c| c.seq), Some(1));
    }

    #[test]
    fn ten_thousand_headers_are_capped() {
        let mut head = RESP_HEAD.to_string();
        for i in 0..10_000 {
            head.push_str(&format!("X-H{i}: v\r\n"));
        }
        let raw = with_body(&head, b"ok");
        let t = std::time::Instant::now();
        let m = parse(&raw).expect("parses");
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(m.headers.len(), MAX_HEADERS);
        assert!(has(&m, "sip.too_many_headers"));
        // Content-Length after the cap still frames the body; no false missing_header.
        assert_eq!(m.body_bytes(), b"ok");
        assert!(!has(&m, "sip.missing_header"));
        assert!(!has(&m, "sip.no_content_length") && !has(&m, "sip.body_truncated"));
    }

    #[test]
    fn one_megabyte_header() {
        let mut head = RESP_HEAD.to_string();
        head.push_str("X-Big: ");
        head.push_str(&"a,".repeat(512 * 1024));
        head.push_str("\r\n");
        let raw = with_body(&head, b"");
        let t = std::time::Instant::now();
        let m = parse(&raw).expect("parses");
        assert!(m.anomalies.is_empty(), "{:?}", m.anomalies);
        assert_eq!(
            m.header_by_name("x-big").map(|v| v.len()),
            Some(1024 * 1024)
        );
        assert_eq!(m.tokens(HeaderName::Other).len(), 512 * 1024);
        assert!(t.elapsed() < std::time::Duration::from_secs(3));
        // A 1 MB line without a terminator in a stream is garbage, found in linear time.
        let mut line = b"INVITE sip:".to_vec();
        line.resize(1 << 20, b'a');
        assert_eq!(stream_frame(&line), StreamFrame::Garbage(1 << 20));
        assert!(!looks_like_sip(&line));
    }

    #[test]
    fn garbage_is_not_sip() {
        for raw in [
            &b"\x80\x00\x12\x34\x56\x78\x9a\xbc\xde\xf0"[..],
            b"\xff\xfe\xfd",
            b"hello world",
            b"::::\r\n\r\n",
            b"\r\n\r\n\r\n",
        ] {
            assert!(!looks_like_sip(raw));
            assert!(parse(raw).is_none());
        }
    }

    #[test]
    fn header_kind_mapping() {
        assert_eq!(header_kind(b"CALL-ID"), HeaderName::CallId);
        assert_eq!(
            header_kind(b"Www-Authenticate"),
            HeaderName::WwwAuthenticate
        );
        assert_eq!(header_kind(b"I"), HeaderName::CallId);
        assert_eq!(header_kind(b"y"), HeaderName::Other);
        assert_eq!(
            header_kind(b"P-Asserted-Identity"),
            HeaderName::PAssertedIdentity
        );
        assert_eq!(
            header_kind(b"X-Something-Really-Long-Header-Name"),
            HeaderName::Other
        );
        assert_eq!(header_kind(b""), HeaderName::Other);
    }

    /// CPU time of this thread in ns (from /proc/thread-self/schedstat), so the timing is
    /// not inflated by other processes sharing the cores; falls back to wall time.
    fn cpu_ns() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        s.split_whitespace().next()?.parse().ok()
    }

    fn time_per_iter(
        n: u32,
        mut f: impl FnMut() -> usize,
    ) -> (std::time::Duration, Option<std::time::Duration>, usize) {
        let c0 = cpu_ns();
        let t = std::time::Instant::now();
        let mut acc = 0usize;
        for _ in 0..n {
            acc = acc.wrapping_add(f());
        }
        let wall = t.elapsed() / n;
        let cpu = c0
            .zip(cpu_ns())
            .map(|(a, b)| std::time::Duration::from_nanos(b.saturating_sub(a) / u64::from(n)));
        (wall, cpu, acc)
    }

    #[test]
    #[ignore = "timing; run with --ignored --nocapture in an optimised build"]
    fn timing_invite() {
        let n = 200_000u32;
        let (w0, c0, a0) = time_per_iter(n, || {
            usize::from(looks_like_sip(std::hint::black_box(INVITE)))
        });
        let (w1, c1, a1) = time_per_iter(n, || {
            parse(std::hint::black_box(INVITE))
                .map(|m| m.headers.len())
                .unwrap_or(0)
        });
        let (w2, c2, a2) = time_per_iter(n, || {
            let Some(m) = parse(std::hint::black_box(INVITE)) else {
                return 0;
            };
            m.call_id().map(|c| c.len()).unwrap_or(0)
                + m.from_tag().map(|t| t.len()).unwrap_or(0)
                + m.to_tag().map(|t| t.len()).unwrap_or(0)
                + m.cseq().map(|c| c.seq as usize).unwrap_or(0)
                + m.top_via_branch().map(|b| b.len()).unwrap_or(0)
        });
        eprintln!(
            "{} B INVITE, per message (wall / thread CPU): looks_like_sip {w0:?} / {c0:?}; parse {w1:?} / {c1:?}; \
             parse+extract {w2:?} / {c2:?} ({})",
            INVITE.len(),
            a0 ^ a1 ^ a2
        );
    }

    #[test]
    fn control_bytes_in_start_line_are_flagged() {
        let raw = with_body(&RESP_HEAD.replace("200 OK", "401 Unauthori\0zed"), b"");
        assert!(looks_like_sip(&raw));
        let m = parse(&raw).expect("parses");
        assert_eq!(kinds(&m), ["sip.bad_start_line"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
        #[test]
        fn never_panics_and_spans_in_bounds(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700),
                                            cut in 0usize..800, splice in 0usize..4) {
            // Mix arbitrary bytes with a real message so the parser gets deep, not just rejected.
            let mut input = match splice {
                0 => data.clone(),
                1 => { let mut v = INVITE.to_vec(); v.truncate(cut.min(v.len())); v.extend_from_slice(&data); v }
                2 => { let mut v = INVITE.to_vec(); let at = cut.min(v.len()); v.splice(at..at, data.iter().copied()); v }
                _ => { let mut v = INVITE.to_vec(); for (i, b) in data.iter().enumerate() { if let Some(x) = v.get_mut((cut + i * 7) % INVITE.len()) { *x = *b; } } v }
            };
            if let Some(m) = parse(&input) {
                let n = m.raw.len() as u32;
                proptest::prop_assert!(m.start_line.start <= m.start_line.end && m.start_line.end <= n);
                proptest::prop_assert!(m.body.start <= m.body.end && m.body.end <= n);
                for h in &m.headers {
                    for s in [&h.name, &h.value, &h.line] {
                        proptest::prop_assert!(s.start <= s.end && s.end <= n);
                    }
                }
                let _ = (m.vias(), m.from_hdr(), m.to_hdr(), m.contacts(), m.cseq(), m.expires(), m.challenge(),
                         m.credentials(), m.reasons(), m.session_expires(), m.pai(), m.routes(), m.content_type());
            }
            let _ = looks_like_sip(&input);
            // Stream framing always makes progress or asks for more, within the buffer.
            for _ in 0..64 {
                match stream_frame(&input) {
                    StreamFrame::Incomplete => break,
                    StreamFrame::Complete(k) | StreamFrame::Keepalive(k) | StreamFrame::Garbage(k) => {
                        proptest::prop_assert!(k >= 1 && k <= input.len());
                        input.drain(..k);
                    }
                }
            }
        }
    }
}
