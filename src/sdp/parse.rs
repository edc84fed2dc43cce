//! The SDP line parser: turns a body into the [`Sdp`] model, one line at a time.
//!
//! Owns line splitting (CRLF, bare LF, bare CR), per-line field parsing, key redaction for
//! `a=crypto`, the caps that keep hostile bodies linear and bounded, and the `sdp.*`
//! anomaly ids. Nothing here can fail: a line it cannot read becomes an anomaly and
//! parsing continues with the next line.

use super::{Connection, Crypto, Direction, Media, Origin, RtpMap, Sdp};
use std::net::IpAddr;

/// Media sections kept; further `m=` sections are counted, not stored.
pub const MAX_MEDIA: usize = 64;
/// Attribute lines kept per section (session level included).
pub const MAX_ATTRS: usize = 256;
/// Formats kept per `m=` line.
pub const MAX_FORMATS: usize = 256;
/// Anomalies kept per body; the rest are summarised in one `sdp.too_many_anomalies`
/// (the `sdp.too_many_*` cap summaries come on top, at most three lines).
pub const MAX_ANOMALIES: usize = 32;
/// Longest line text copied into the model or an anomaly (evidence stays readable and
/// bounded even when a crafted body is one multi-megabyte line).
const MAX_LINE_TEXT: usize = 1024;

/// Parse an SDP body. Never fails; problems go to [`Sdp::anomalies`].
pub fn parse(body: &[u8]) -> Sdp {
    let mut p = Parser::default();
    for (idx, raw) in Lines::new(body).enumerate() {
        let line_no = u32::try_from(idx).unwrap_or(u32::MAX).saturating_add(1);
        p.line(raw, line_no);
    }
    p.finish()
}

/// Splits on CRLF, LF or a lone CR, yielding lines without their terminator.
struct Lines<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Self {
        Lines {
            rest: body,
            done: body.is_empty(),
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        match memchr::memchr2(b'\r', b'\n', self.rest) {
            Some(i) => {
                let line = self.rest.get(..i).unwrap_or_default();
                let term =
                    if self.rest.get(i) == Some(&b'\r') && self.rest.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                self.rest = self.rest.get(i + term..).unwrap_or_default();
                // A body ending in a terminator has no extra empty line after it.
                if self.rest.is_empty() {
                    self.done = true;
                }
                Some(line)
            }
            None => {
                self.done = true;
                Some(self.rest)
            }
        }
    }
}

/// Where attribute and `c=` lines currently go.
#[derive(Default, PartialEq, Eq)]
enum Section {
    #[default]
    Session,
    /// The last pushed entry of `Sdp::media`.
    Media,
    /// An `m=` line that was unreadable or over the cap: its lines are dropped, so they
    /// are not misattributed to the previous section.
    Ignored,
}

#[derive(Default)]
struct Parser {
    sdp: Sdp,
    section: Section,
    /// Attribute lines seen in the current section (kept or not).
    attrs: usize,
    attrs_dropped: usize,
    attrs_dropped_total: usize,
    attrs_dropped_sections: usize,
    media_dropped: usize,
    anomalies_dropped: usize,
    seen_version: bool,
    seen_any: bool,
}

impl Parser {
    fn anomaly(&mut self, id: &str, detail: std::fmt::Arguments<'_>) {
        if self.sdp.anomalies.len() < MAX_ANOMALIES {
            self.sdp.anomalies.push(format!("{id}: {detail}"));
        } else {
            self.anomalies_dropped = self.anomalies_dropped.saturating_add(1);
        }
    }

    fn line(&mut self, raw: &[u8], line_no: u32) {
        let text = String::from_utf8_lossy(raw);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return;
        }
        self.seen_any = true;
        let Some((kind, value)) = split_type(trimmed) else {
            self.anomaly(
                "sdp.bad_line",
                format_args!("line {line_no}: {:?}", evidence(trimmed)),
            );
            return;
        };
        match kind {
            b'v' => {
                if self.seen_version {
                    self.anomaly(
                        "sdp.duplicate_line",
                        format_args!("line {line_no}: second v="),
                    );
                }
                self.seen_version = true;
                if value != "0" {
                    self.anomaly(
                        "sdp.bad_version",
                        format_args!("line {line_no}: {:?}", evidence(trimmed)),
                    );
                }
            }
            b'o' => self.origin(value, trimmed, line_no),
            b's' if self.section == Section::Session && self.sdp.session_name.is_none() => {
                self.sdp.session_name = Some(evidence(value));
            }
            b'c' => self.connection(value, trimmed, line_no),
            b'm' => self.media(value, trimmed, line_no),
            b'a' => self.attribute(value, trimmed, line_no),
            // k= carries key material: never copied anywhere.
            b'k' => {}
            // Known lines the model does not keep (i u e p b t r z, and x-style extensions).
            _ => {}
        }
    }

    fn origin(&mut self, value: &str, line: &str, line_no: u32) {
        if self.section != Section::Session {
            return;
        }
        if self.sdp.origin.is_some() {
            self.anomaly(
                "sdp.duplicate_line",
                format_args!("line {line_no}: second o="),
            );
            return;
        }
        let f: Vec<&str> = value.split_ascii_whitespace().take(7).collect();
        if f.len() != 6 {
            self.anomaly(
                "sdp.bad_origin",
                format_args!("line {line_no}: expected 6 fields: {:?}", evidence(line)),
            );
        }
        if f.len() < 6 {
            return;
        }
        let get = |i: usize| f.get(i).map(|s| evidence(s)).unwrap_or_default();
        let addr = get(5);
        self.sdp.origin = Some(Origin {
            username: get(0),
            sess_id: get(1),
            sess_version: get(2),
            addr_type: get(4),
            ip: parse_ip(&addr),
            addr,
            line: evidence(line),
        });
    }

    fn connection(&mut self, value: &str, line: &str, line_no: u32) {
        let mut it = value.split_ascii_whitespace();
        let (net, atype, addr) = (it.next(), it.next(), it.next());
        let (Some(net), Some(atype), Some(addr)) = (net, atype, addr) else {
            self.anomaly(
                "sdp.bad_connection",
                format_args!(
                    "line {line_no}: expected <nettype> <addrtype> <address>: {:?}",
                    evidence(line)
                ),
            );
            return;
        };
        if !net.eq_ignore_ascii_case("IN") {
            self.anomaly(
                "sdp.bad_connection",
                format_args!("line {line_no}: network type {:?} is not IN", evidence(net)),
            );
        }
        // Multicast addresses carry /ttl[/count]; the address is what precedes the slash.
        let host = addr.split('/').next().unwrap_or(addr);
        let ip = parse_ip(host);
        if ip.is_none() && !looks_like_hostname(host) {
            self.anomaly(
                "sdp.bad_connection",
                format_args!(
                    "line {line_no}: address {:?} is neither an IP nor a host name",
                    evidence(host)
                ),
            );
        }
        if let Some(ip) = ip {
            let ok = match ip {
                IpAddr::V4(_) => atype.eq_ignore_ascii_case("IP4"),
                IpAddr::V6(_) => atype.eq_ignore_ascii_case("IP6"),
            };
            if !ok {
                self.anomaly(
                    "sdp.bad_connection",
                    format_args!(
                        "line {line_no}: address type {:?} does not match {host}",
                        evidence(atype)
                    ),
                );
            }
        }
        let c = Connection {
            addr_type: evidence(atype),
            addr: evidence(host),
            ip,
            line: evidence(line),
        };
        let slot = match self.section {
            Section::Session => &mut self.sdp.connection,
            Section::Media => match self.sdp.media.last_mut() {
                Some(m) => &mut m.connection,
                None => return,
            },
            Section::Ignored => return,
        };
        if slot.is_some() {
            self.anomaly(
                "sdp.duplicate_line",
                format_args!("line {line_no}: second c= in the same section"),
            );
        } else {
            *slot = Some(c);
        }
    }

    fn close_section(&mut self) {
        if self.attrs_dropped > 0 {
            self.attrs_dropped_total = self.attrs_dropped_total.saturating_add(self.attrs_dropped);
            self.attrs_dropped_sections = self.attrs_dropped_sections.saturating_add(1);
        }
        self.attrs = 0;
        self.attrs_dropped = 0;
    }

    fn media(&mut self, value: &str, line: &str, line_no: u32) {
        self.close_section();
        if self.sdp.media.len() >= MAX_MEDIA {
            self.media_dropped = self.media_dropped.saturating_add(1);
            self.section = Section::Ignored;
            return;
        }
        self.section = Section::Ignored;
        let mut it = value.split_ascii_whitespace();
        let (Some(kind), Some(port_s), Some(proto)) = (it.next(), it.next(), it.next()) else {
            self.anomaly(
                "sdp.bad_media_line",
                format_args!(
                    "line {line_no}: expected <media> <port> <proto> <fmt>...: {:?}",
                    evidence(line)
                ),
            );
            return;
        };
        let (port_txt, count_txt) = match port_s.split_once('/') {
            Some((p, c)) => (p, Some(c)),
            None => (port_s, None),
        };
        let Ok(port) = port_txt.parse::<u16>() else {
            self.anomaly(
                "sdp.bad_media_line",
                format_args!("line {line_no}: bad port {:?}", evidence(port_s)),
            );
            return;
        };
        let port_count = match count_txt.map(str::parse::<u16>) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                self.anomaly(
                    "sdp.bad_media_line",
                    format_args!("line {line_no}: bad port count {:?}", evidence(port_s)),
                );
                None
            }
        };
        let mut formats = Vec::new();
        let mut dropped = 0usize;
        for f in it {
            if formats.len() < MAX_FORMATS {
                formats.push(evidence(f));
            } else {
                dropped = dropped.saturating_add(1);
            }
        }
        if dropped > 0 {
            self.anomaly(
                "sdp.too_many_formats",
                format_args!("line {line_no}: {dropped} formats beyond {MAX_FORMATS} ignored"),
            );
        }
        if formats.is_empty() {
            self.anomaly(
                "sdp.bad_media_line",
                format_args!("line {line_no}: no formats listed"),
            );
        }
        self.sdp.media.push(Media {
            kind: evidence(kind),
            port,
            port_count,
            proto: evidence(proto),
            formats,
            connection: None,
            rtpmap: Vec::new(),
            fmtp: Vec::new(),
            ptime: None,
            maxptime: None,
            direction: None,
            rtcp_port: None,
            rtcp_addr: None,
            rtcp_mux: false,
            crypto: Vec::new(),
            line: evidence(line),
            line_no,
        });
        self.section = Section::Media;
    }

    fn attribute(&mut self, value: &str, line: &str, line_no: u32) {
        if self.section == Section::Ignored {
            return;
        }
        self.attrs = self.attrs.saturating_add(1);
        if self.attrs > MAX_ATTRS {
            self.attrs_dropped = self.attrs_dropped.saturating_add(1);
            return;
        }
        let (name, arg) = match value.split_once(':') {
            Some((n, a)) => (n.trim(), a.trim()),
            None => (value.trim(), ""),
        };
        let direction = match name.to_ascii_lowercase().as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        };
        if let Some(d) = direction {
            let slot = match self.section {
                Section::Media => match self.sdp.media.last_mut() {
                    Some(m) => &mut m.direction,
                    None => return,
                },
                _ => &mut self.sdp.direction,
            };
            match *slot {
                // The first one wins; a second, different one is the sender's bug.
                Some(prev) if prev != d => self.anomaly(
                    "sdp.conflicting_direction",
                    format_args!(
                        "line {line_no}: {:?} after an earlier direction in the same section",
                        evidence(name)
                    ),
                ),
                Some(_) => {}
                None => *slot = Some(d),
            }
            return;
        }
        // The remaining attributes the model keeps are all media-level.
        let lname = name.to_ascii_lowercase();
        if !matches!(
            lname.as_str(),
            "rtpmap" | "fmtp" | "ptime" | "maxptime" | "rtcp" | "rtcp-mux" | "crypto"
        ) {
            return;
        }
        if self.section != Section::Media {
            if lname == "crypto" {
                // Still worth knowing, but the key must not leak into the detail.
                self.anomaly(
                    "sdp.misplaced_attribute",
                    format_args!("line {line_no}: a=crypto at session level ignored"),
                );
            } else {
                self.anomaly(
                    "sdp.misplaced_attribute",
                    format_args!(
                        "line {line_no}: media attribute at session level ignored: {:?}",
                        evidence(line)
                    ),
                );
            }
            return;
        }
        let mut problem: Option<(&'static str, String)> = None;
        {
            let Some(m) = self.sdp.media.last_mut() else {
                return;
            };
            match lname.as_str() {
                "rtpmap" => match parse_rtpmap(arg) {
                    Some(r) => {
                        if m.rtpmap.iter().any(|x| x.pt == r.pt) {
                            problem = Some((
                                "sdp.duplicate_rtpmap",
                                format!("line {line_no}: payload type {} mapped twice", r.pt),
                            ));
                        } else {
                            m.rtpmap.push(r);
                        }
                    }
                    None => {
                        problem = Some((
                            "sdp.bad_rtpmap",
                            format!("line {line_no}: {:?}", evidence(line)),
                        ))
                    }
                },
                "fmtp" => {
                    let (pt, params) = match arg.split_once(|c: char| c.is_ascii_whitespace()) {
                        Some((p, rest)) => (p, rest.trim()),
                        None => (arg, ""),
                    };
                    match pt.parse::<u8>() {
                        Ok(pt) if pt <= 127 => m.fmtp.push((pt, evidence(params))),
                        _ => {
                            problem = Some((
                                "sdp.bad_fmtp",
                                format!("line {line_no}: {:?}", evidence(line)),
                            ))
                        }
                    }
                }
                "ptime" | "maxptime" => match parse_ms(arg) {
                    Some(v) => {
                        if lname == "ptime" {
                            m.ptime = Some(v);
                        } else {
                            m.maxptime = Some(v);
                        }
                    }
                    None => {
                        problem = Some((
                            "sdp.bad_ptime",
                            format!("line {line_no}: {:?}", evidence(line)),
                        ))
                    }
                },
                "rtcp" => match parse_rtcp(arg) {
                    Some((port, addr)) => {
                        m.rtcp_port = Some(port);
                        m.rtcp_addr = addr;
                    }
                    None => {
                        problem = Some((
                            "sdp.bad_rtcp",
                            format!("line {line_no}: {:?}", evidence(line)),
                        ))
                    }
                },
                "rtcp-mux" => m.rtcp_mux = true,
                "crypto" => {
                    let red = redact_crypto(line);
                    let mut f = arg.split_ascii_whitespace();
                    match (f.next(), f.next(), f.next()) {
                        (Some(tag), Some(suite), Some(_key)) => m.crypto.push(Crypto {
                            tag: evidence(tag),
                            suite: evidence(suite),
                            line: red,
                        }),
                        _ => {
                            problem = Some(("sdp.bad_crypto", format!("line {line_no}: {:?}", red)))
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some((id, detail)) = problem {
            self.anomaly(id, format_args!("{detail}"));
        }
    }

    fn finish(mut self) -> Sdp {
        self.close_section();
        if !self.seen_any {
            self.anomaly("sdp.empty", format_args!("no SDP lines"));
        } else if !self.seen_version {
            self.anomaly("sdp.no_version", format_args!("no v= line"));
        }
        if self.seen_any && self.sdp.origin.is_none() {
            self.anomaly("sdp.no_origin", format_args!("no usable o= line"));
        }
        let session_c = self.sdp.connection.is_some();
        let missing: Vec<(String, u32)> = self
            .sdp
            .media
            .iter()
            .filter(|m| m.port != 0 && m.connection.is_none() && !session_c)
            .map(|m| (m.kind.clone(), m.line_no))
            .collect();
        for (kind, line_no) in missing {
            self.anomaly(
                "sdp.no_connection",
                format_args!("m={kind} at line {line_no} has no c= line at media or session level"),
            );
        }
        // Cap summaries go past the anomaly cap: losing them would hide the attack.
        if self.media_dropped > 0 {
            let n = self.media_dropped;
            self.sdp.anomalies.push(format!(
                "sdp.too_many_media: {n} media sections beyond {MAX_MEDIA} ignored"
            ));
        }
        if self.attrs_dropped_total > 0 {
            let (n, k) = (self.attrs_dropped_total, self.attrs_dropped_sections);
            self.sdp.anomalies.push(format!(
                "sdp.too_many_attributes: {n} attribute lines beyond {MAX_ATTRS} per section ignored (in {k} sections)"
            ));
        }
        if self.anomalies_dropped > 0 {
            let n = self.anomalies_dropped;
            self.sdp.anomalies.push(format!(
                "sdp.too_many_anomalies: {n} more anomalies not recorded"
            ));
        }
        // A call keeps its SDPs to the end of the capture: growth slack in these vectors
        // (a `Media` is ~300 bytes, and the first push reserves four) was ~1 KB per SDP.
        self.sdp.media.shrink_to_fit();
        for m in &mut self.sdp.media {
            m.formats.shrink_to_fit();
            m.rtpmap.shrink_to_fit();
            m.fmtp.shrink_to_fit();
        }
        self.sdp
    }
}

/// `x=value` with `x` one ASCII letter; tolerates blanks before the `=`.
fn split_type(line: &str) -> Option<(u8, &str)> {
    let b = line.as_bytes();
    let kind = *b.first()?;
    if !kind.is_ascii_alphabetic() {
        return None;
    }
    let rest = line.get(1..)?.trim_start();
    let value = rest.strip_prefix('=')?;
    Some((kind.to_ascii_lowercase(), value.trim()))
}

/// Owned copy of `s`, bounded to [`MAX_LINE_TEXT`] bytes (cut on a char boundary).
fn evidence(s: &str) -> String {
    if s.len() <= MAX_LINE_TEXT {
        return s.to_string();
    }
    let mut end = MAX_LINE_TEXT;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s.get(..end).unwrap_or_default().to_string();
    out.push('…');
    out
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    // IPv6 literals are sometimes written in brackets.
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn looks_like_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// `<pt> <encoding>/<clock>[/<channels>]`
fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, rest) = arg.split_once(|c: char| c.is_ascii_whitespace())?;
    let pt: u8 = pt.parse().ok()?;
    if pt > 127 {
        return None;
    }
    let rest = rest.trim();
    let mut parts = rest.split('/');
    let encoding = parts.next()?.trim();
    if encoding.is_empty() {
        return None;
    }
    let clock_rate: u32 = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse::<u8>().ok()?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        pt,
        encoding: evidence(encoding),
        clock_rate,
        channels,
    })
}

/// Milliseconds; integer per RFC 8866 but "20.0" is common and accepted (rounded).
fn parse_ms(arg: &str) -> Option<u32> {
    let arg = arg.trim();
    if let Ok(v) = arg.parse::<u32>() {
        return Some(v);
    }
    let f: f64 = arg.parse().ok()?;
    if f.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&f) {
        Some(f.round() as u32)
    } else {
        None
    }
}

/// `<port> [IN IP4 <addr>]` (RFC 3605).
fn parse_rtcp(arg: &str) -> Option<(u16, Option<IpAddr>)> {
    let mut it = arg.split_ascii_whitespace();
    let port: u16 = it.next()?.parse().ok()?;
    let addr = match (it.next(), it.next(), it.next()) {
        (None, _, _) => None,
        (Some(_net), Some(_atype), Some(a)) => Some(parse_ip(a)?),
        _ => return None,
    };
    Some((port, addr))
}

/// Replace the key material after every `inline:` (up to `|`, `;` or a blank: lifetime
/// and MKI are not secret) with `<redacted>`. Case-insensitive on `inline:`.
pub(crate) fn redact_crypto(line: &str) -> String {
    const TAG: &[u8] = b"inline:";
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len().min(MAX_LINE_TEXT + 16));
    let mut i = 0usize;
    let mut copied = 0usize;
    while i < b.len() {
        let is_tag = b
            .get(i..i + TAG.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(TAG));
        if !is_tag {
            i += 1;
            continue;
        }
        let key_start = i + TAG.len();
        let mut key_end = key_start;
        while let Some(&c) = b.get(key_end) {
            if c == b'|' || c == b';' || c.is_ascii_whitespace() {
                break;
            }
            key_end += 1;
        }
        // Boundaries are ASCII bytes, so these are char boundaries.
        out.push_str(line.get(copied..key_start).unwrap_or_default());
        out.push_str("<redacted>");
        copied = key_end;
        i = key_end.max(i + 1);
    }
    out.push_str(line.get(copied..).unwrap_or_default());
    evidence(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

    fn has(s: &Sdp, id: &str) -> bool {
        s.anomalies.iter().any(|a| a.starts_with(&format!("{id}:")))
    }

    #[test]
    fn normal_offer() {
        let s = parse(OFFER.as_bytes());
        assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
        let o = s.origin.as_ref().unwrap();
        assert_eq!(o.username, "alice");
        assert_eq!(o.sess_id, "2890844526");
        assert_eq!(o.addr_type, "IP4");
        assert_eq!(o.ip, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(o.line, "o=alice 2890844526 2890844526 IN IP4 192.0.2.10");
        assert_eq!(s.session_name.as_deref(), Some("-"));
        assert_eq!(s.connection.as_ref().unwrap().addr, "192.0.2.10");
        assert_eq!(s.media.len(), 1);
        let m = &s.media[0];
        assert_eq!(m.kind, "audio");
        assert_eq!(m.port, 49170);
        assert_eq!(m.port_count, None);
        assert_eq!(m.proto, "RTP/AVP");
        assert_eq!(m.formats, vec!["0", "8", "101"]);
        assert_eq!(m.line, "m=audio 49170 RTP/AVP 0 8 101");
        assert_eq!(m.line_no, 6);
        assert_eq!(m.rtpmap.len(), 3);
        assert_eq!(m.rtpmap[2].encoding, "telephone-event");
        assert_eq!(m.rtpmap[2].clock_rate, 8000);
        assert_eq!(m.telephone_event_pt(), Some(101));
        assert_eq!(m.fmtp, vec![(101, "0-16".to_string())]);
        assert_eq!(m.ptime, Some(20));
        assert_eq!(m.maxptime, Some(150));
        assert_eq!(m.direction, Some(Direction::SendRecv));
        assert_eq!(s.media_addr(m), Some("192.0.2.10".parse().unwrap()));
        assert_eq!(s.audio().map(|a| a.port), Some(49170));
    }

    #[test]
    fn answer_with_media_level_connection_and_rtcp() {
        let body = "v=0\n\
o=bob 1 2 IN IP4 198.51.100.1\n\
s=call\n\
c=IN IP4 198.51.100.1\n\
t=0 0\n\
m=audio 3456/2 RTP/AVP 8\n\
c=IN IP4 203.0.113.5\n\
a=rtpmap:8 PCMA/8000/1\n\
a=rtcp:3459 IN IP4 203.0.113.6\n\
a=rtcp-mux\n";
        let s = parse(body.as_bytes());
        assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
        let m = &s.media[0];
        assert_eq!(m.port, 3456);
        assert_eq!(m.port_count, Some(2));
        assert_eq!(m.rtpmap[0].channels, Some(1));
        assert_eq!(s.media_addr(m), Some("203.0.113.5".parse().unwrap()));
        assert_eq!(m.connection.as_ref().unwrap().line, "c=IN IP4 203.0.113.5");
        assert_eq!(m.rtcp_port, Some(3459));
        assert_eq!(m.rtcp_addr, Some("203.0.113.6".parse().unwrap()));
        assert!(m.rtcp_mux);
        assert_eq!(s.media_direction(m), Direction::SendRecv);
    }

    #[test]
    fn hold_session_and_media_direction() {
        let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\n\
m=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\na=inactive\r\n";
        let s = parse(body.as_bytes());
        assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
        assert_eq!(s.direction, Some(Direction::SendOnly));
        assert_eq!(s.media[0].direction, None);
        assert_eq!(s.media_direction(&s.media[0]), Direction::SendOnly);
        assert_eq!(s.media_direction(&s.media[1]), Direction::Inactive);

        // RFC 2543 hold: c=0.0.0.0 and no attribute.
        let old = parse(
            b"v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 0\n",
        );
        assert_eq!(old.media_direction(&old.media[0]), Direction::SendOnly);
    }

    #[test]
    fn t38_and_disabled_stream() {
        let body = "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
m=audio 0 RTP/AVP 0\nm=image 5000 udptl t38\na=T38FaxVersion:0\na=T38FaxRateManagement:transferredTCF\n";
        let s = parse(body.as_bytes());
        assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
        assert_eq!(s.media.len(), 2);
        assert_eq!(s.media[0].port, 0);
        assert!(s.media[0].is_disabled());
        assert!(!s.media[0].is_t38());
        assert!(s.media[1].is_t38());
        assert_eq!(s.media[1].proto, "udptl");
        assert_eq!(s.media[1].formats, vec!["t38"]);
        // The disabled audio stream is not "the audio".
        assert!(s.audio().is_none());
    }

    #[test]
    fn two_media_keep_attributes_apart() {
        let body = "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
m=audio 4000 RTP/AVP 0 96\na=rtpmap:96 opus/48000/2\na=ptime:20\n\
m=video 4002 RTP/AVPF 97\na=rtpmap:97 H264/90000\na=fmtp:97 profile-level-id=42e01f\n";
        let s = parse(body.as_bytes());
        assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
        let (a, v) = (&s.media[0], &s.media[1]);
        assert_eq!(a.codec(96), Some(("opus".to_string(), 48000)));
        assert_eq!(a.rtpmap[0].channels, Some(2));
        assert_eq!(a.codec(0), Some(("PCMU".to_string(), 8000)));
        assert_eq!(a.ptime, Some(20));
        assert_eq!(v.ptime, None);
        assert_eq!(v.rtpmap.len(), 1);
        assert_eq!(v.fmtp, vec![(97, "profile-level-id=42e01f".to_string())]);
        assert_eq!(v.line_no, 9);
        assert_eq!(v.payload_types(), vec![97]);
    }

    #[test]
    fn crypto_key_is_redacted() {
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let body = format!(
            "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/SAVP 0\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:32\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:{key};inline:{key}\n\
a=crypto:3 broken-no-key-but-inline:{key}\n"
        );
        let s = parse(body.as_bytes());
        let c = &s.media[0].crypto;
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].tag, "1");
        assert_eq!(c[0].suite, "AES_CM_128_HMAC_SHA1_80");
        assert_eq!(
            c[0].line,
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>|2^20|1:32"
        );
        assert_eq!(
            c[1].line,
            "a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:<redacted>;inline:<redacted>"
        );
        assert!(has(&s, "sdp.bad_crypto"));
        let dump = format!("{s:?}");
        assert!(!dump.contains(key), "key leaked: {dump}");
    }

    #[test]
    fn garbage_lines_are_anomalies_not_failures() {
        let body = b"v=0\nthis is not sdp\n=nothing\nm=audio\nm=audio abc RTP/AVP 0\na=rtpmap:0 PCMU\n\
c=IN\nm=audio 4000 RTP/AVP 0\na=rtpmap:x PCMU/8000\na=rtpmap:0 PCMU/eight\na=ptime:abc\n\xff\xfe=\x80\n";
        let s = parse(body);
        for id in [
            "sdp.bad_line",
            "sdp.bad_media_line",
            "sdp.bad_rtpmap",
            "sdp.bad_ptime",
            "sdp.no_origin",
            "sdp.no_connection",
        ] {
            assert!(has(&s, id), "{id} missing from {:?}", s.anomalies);
        }
        // Lines after a bad m= do not leak into any section; the one good m= is kept.
        assert_eq!(s.media.len(), 1);
        assert!(s.media[0].rtpmap.is_empty());
        assert_eq!(s.media[0].line_no, 8);
        // A malformed c= is reported wherever it appears.
        let s2 = parse(b"v=0\nc=IN IP4\n");
        assert!(has(&s2, "sdp.bad_connection"));
        let s3 = parse(b"v=0\nc=IN IP4 not_a_host!\n");
        assert!(has(&s3, "sdp.bad_connection"));
        let s4 = parse(b"v=0\nc=IN IP4 media.example.com\n");
        assert!(!has(&s4, "sdp.bad_connection"));
        assert_eq!(s4.connection.unwrap().ip, None);
    }

    #[test]
    fn empty_and_blank() {
        assert!(has(&parse(b""), "sdp.empty"));
        assert!(has(&parse(b"\r\n\r\n  \n"), "sdp.empty"));
        let s = parse(b"o=- 1 1 IN IP4 10.0.0.1\n");
        assert!(has(&s, "sdp.no_version"));
        assert!(!has(&s, "sdp.empty"));
    }

    #[test]
    fn crlf_lf_cr_and_whitespace_give_same_model() {
        let lf = OFFER.replace("\r\n", "\n");
        let cr = OFFER.replace("\r\n", "\r");
        let spaced = OFFER.replace("\r\n", "  \r\n  ");
        let a = parse(OFFER.as_bytes());
        for other in [lf.as_str(), cr.as_str(), spaced.as_str()] {
            let b = parse(other.as_bytes());
            assert_eq!(a.media, b.media, "{other:?}");
            assert_eq!(a.origin, b.origin);
            assert_eq!(a.anomalies, b.anomalies);
        }
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let s = parse(b"v=0\no=\xffuser 1 1 IN IP4 10.0.0.1\ns=caf\xe9\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\n");
        assert!(s.origin.as_ref().unwrap().username.contains('\u{fffd}'));
        assert_eq!(s.session_name.as_deref(), Some("caf\u{fffd}"));
        assert_eq!(s.media.len(), 1);
    }

    #[test]
    fn no_connection_only_for_live_media() {
        let s = parse(b"v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 0 RTP/AVP 0\nm=audio 4000 RTP/AVP 0\n");
        let n: Vec<_> = s
            .anomalies
            .iter()
            .filter(|a| a.starts_with("sdp.no_connection:"))
            .collect();
        assert_eq!(n.len(), 1, "{:?}", s.anomalies);
        assert!(n[0].contains("line 6"));
    }

    #[test]
    fn huge_input_is_capped() {
        let mut body = String::from("v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\n");
        for i in 0..5000u32 {
            body.push_str(&format!("m=audio {} RTP/AVP 0\n", 1000 + (i % 60000)));
        }
        body.push_str("m=audio 4000 RTP/AVP 0\n");
        let s = parse(body.as_bytes());
        assert_eq!(s.media.len(), MAX_MEDIA);
        assert!(has(&s, "sdp.too_many_media"), "{:?}", s.anomalies);
        assert!(
            s.anomalies
                .iter()
                .any(|a| a.contains("4937 media sections")),
            "{:?}",
            s.anomalies
        );

        let mut body = String::from(
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\n",
        );
        for i in 0..1000u32 {
            body.push_str(&format!("a=rtpmap:{} X/8000\n", i % 128));
        }
        let s = parse(body.as_bytes());
        assert!(s.media[0].rtpmap.len() <= MAX_ATTRS);
        assert!(has(&s, "sdp.too_many_attributes"));
        assert!(s.anomalies.len() <= MAX_ANOMALIES + 3);
        assert!(has(&s, "sdp.too_many_anomalies"));

        // One enormous line: evidence text is bounded.
        let mut body = String::from("v=0\nm=audio 4000 RTP/AVP");
        for _ in 0..100_000 {
            body.push_str(" 0");
        }
        let s = parse(body.as_bytes());
        assert_eq!(s.media[0].formats.len(), MAX_FORMATS);
        assert!(s.media[0].line.len() <= MAX_LINE_TEXT + 4);
        assert!(has(&s, "sdp.too_many_formats"));
    }

    #[test]
    fn split_type_rules() {
        assert_eq!(split_type("a=x"), Some((b'a', "x")));
        assert_eq!(split_type("a = x"), Some((b'a', "x")));
        assert_eq!(split_type("ab=x"), None);
        assert_eq!(split_type("=x"), None);
        assert_eq!(split_type("1=x"), None);
    }

    #[test]
    fn rtcp_and_ptime_forms() {
        assert_eq!(parse_rtcp("53020"), Some((53020, None)));
        assert_eq!(
            parse_rtcp("53020 IN IP6 2001:db8::1"),
            Some((53020, Some("2001:db8::1".parse().unwrap())))
        );
        assert_eq!(parse_rtcp("53020 IN"), None);
        assert_eq!(parse_rtcp("99999"), None);
        assert_eq!(parse_ms("20.0"), Some(20));
        assert_eq!(parse_ms("-5"), None);
        assert_eq!(parse_ms("NaN"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let s = parse(&data);
            proptest::prop_assert!(s.media.len() <= MAX_MEDIA);
            proptest::prop_assert!(s.anomalies.len() <= MAX_ANOMALIES + 3);
        }

        #[test]
        fn never_panics_on_sdp_like_lines(lines in proptest::collection::vec(
            "[vocmatbk]=[ -~]{0,40}|a=(rtpmap|fmtp|ptime|rtcp|crypto|sendonly):[ -~]{0,30}|m=[a-z]{0,6} [0-9/]{0,8} [A-Z/]{0,8}( [0-9]{1,3}){0,4}",
            0..40)) {
            let body = lines.join("\r\n");
            let _ = parse(body.as_bytes());
        }
    }
}
