//! Typed views of the headers analysis needs: Via, name-addr headers (From, To, Contact,
//! PAI, Route, Record-Route), CSeq, Expires, Session-Expires, option-tag lists, Digest
//! challenges/credentials, Reason, Content-Length/-Type, and URI helpers.
//!
//! All of them are computed on demand from the spans [`super::parse`] recorded, are
//! tolerant (malformed input gives `None` or an empty/partial value, never a panic) and
//! run in linear time: every splitter is a single left-to-right scan.

use super::{CSeq, Header, HeaderName, Method, SipMessage};
use serde::Serialize;
use std::borrow::Cow;

/// One Via value (a header may hold several, comma-separated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Via {
    /// UDP / TCP / TLS / WS / SCTP as written.
    pub transport: String,
    /// sent-by host (without brackets for IPv6) and port.
    pub host: String,
    pub port: Option<u16>,
    pub branch: Option<String>,
    /// `rport` present; `Some(Some(p))` when it carries a value.
    pub rport: Option<Option<u16>>,
    pub received: Option<String>,
    /// The value text, for evidence.
    pub text: String,
}

/// A name-addr or addr-spec (From, To, Contact, PAI, Route, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct NameAddr {
    pub display: Option<String>,
    /// The URI without angle brackets.
    pub uri: String,
    pub tag: Option<String>,
    /// Header parameters after the URI (`;expires=60`, `;q=0.5`, ...), lower-cased names.
    pub params: Vec<(String, Option<String>)>,
    /// The value text, for evidence.
    pub text: String,
}

impl NameAddr {
    /// Value of a header parameter (name compared case-insensitively). `Some(None)` for a
    /// parameter without a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

/// Digest challenge or credentials (never holds the response hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct AuthInfo {
    pub scheme: String,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    pub username: Option<String>,
    pub algorithm: Option<String>,
    pub stale: bool,
}

/// Split `s` at `sep` bytes that are outside double quotes (with backslash escapes) and
/// outside `<...>`. One linear scan; an unterminated quote or `<` runs to the end.
fn split_outside(s: &str, sep: u8) -> impl Iterator<Item = &str> + '_ {
    let bytes = s.as_bytes();
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = pos;
        let mut in_q = false;
        let mut in_angle = false;
        let mut esc = false;
        while let Some(&c) = bytes.get(pos) {
            if in_q {
                if esc {
                    esc = false;
                } else if c == b'\\' {
                    esc = true;
                } else if c == b'"' {
                    in_q = false;
                }
            } else if c == b'"' {
                in_q = true;
            } else if in_angle {
                if c == b'>' {
                    in_angle = false;
                }
            } else if c == b'<' {
                in_angle = true;
            } else if c == sep {
                let piece = s.get(start..pos).unwrap_or("");
                pos += 1;
                return Some(piece);
            }
            pos += 1;
        }
        done = true;
        Some(s.get(start..).unwrap_or(""))
    })
}

/// Comma-separated values, trimmed, empty ones dropped.
fn split_values(s: &str) -> impl Iterator<Item = &str> + '_ {
    split_outside(s, b',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Strip one pair of surrounding double quotes and undo backslash escapes.
fn unquote(s: &str) -> Cow<'_, str> {
    let t = s.trim();
    let inner = match t.strip_prefix('"') {
        Some(r) => r.strip_suffix('"').unwrap_or(r),
        None => return Cow::Borrowed(t),
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut esc = false;
    for c in inner.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `name[=value]` parameters of a `;` list (the part before the first `;` excluded).
fn params_of(s: &str) -> Vec<(String, Option<String>)> {
    split_outside(s, b';')
        .skip(1)
        .filter_map(|p| {
            let p = p.trim();
            if p.is_empty() {
                return None;
            }
            Some(match p.split_once('=') {
                Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(unquote(v).into_owned())),
                None => (p.to_ascii_lowercase(), None),
            })
        })
        .collect()
}

/// Value of parameter `name` in a `;`-separated parameter list (case-insensitive name).
/// A parameter without `=` gives `Some("")`; quoted values are returned without quotes.
/// The part before the first `;` is never a parameter; `;` inside quotes or `<...>`
/// does not split.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    split_outside(value, b';').skip(1).find_map(|p| {
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n, v.trim()),
            None => (p, ""),
        };
        if !n.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        Some(
            v.strip_prefix('"')
                .map(|r| r.strip_suffix('"').unwrap_or(r))
                .unwrap_or(v),
        )
    })
}

/// Strip an optional `<...>` around a URI.
fn strip_angles(uri: &str) -> &str {
    let u = uri.trim();
    match u.strip_prefix('<') {
        Some(r) => r.split('>').next().unwrap_or(r),
        None => u,
    }
}

/// Split a URI into (scheme lower-cased test helpers, rest after the colon).
fn scheme_rest(uri: &str) -> Option<(&str, &str)> {
    let (s, rest) = uri.split_once(':')?;
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return None;
    }
    Some((s, rest))
}

/// User part of a SIP/SIPS/tel URI (`sip:alice@host` → `alice`, `tel:+3120` → `+3120`).
/// Escapes (`%20`) are kept as written; see [`uri_user_unescaped`].
pub fn uri_user(uri: &str) -> Option<&str> {
    let (scheme, rest) = scheme_rest(strip_angles(uri))?;
    if scheme.eq_ignore_ascii_case("tel") {
        let u = rest.split([';', '?']).next().unwrap_or("").trim();
        return (!u.is_empty()).then_some(u);
    }
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return None;
    }
    let (userinfo, _) = rest.split_once('@')?;
    let user = userinfo.split(':').next().unwrap_or("");
    (!user.is_empty()).then_some(user)
}

/// [`uri_user`] with `%XX` escapes decoded (invalid escapes kept as written).
pub fn uri_user_unescaped(uri: &str) -> Option<Cow<'_, str>> {
    let u = uri_user(uri)?;
    if !u.contains('%') {
        return Some(Cow::Borrowed(u));
    }
    let b = u.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |x: Option<&u8>| x.and_then(|&h| (h as char).to_digit(16));
        if c == b'%'
            && let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

/// Split `host[:port]` / `[v6][:port]`; the port is `None` when absent or not a number.
fn split_host_port(hp: &str) -> Option<(&str, Option<u16>)> {
    let hp = hp.trim();
    if let Some(r) = hp.strip_prefix('[') {
        let (h, after) = r.split_once(']')?;
        let port = after
            .trim()
            .strip_prefix(':')
            .and_then(|p| p.trim().parse().ok());
        return (!h.is_empty()).then_some((h, port));
    }
    let (h, port) = match hp.split_once(':') {
        // More than one colon without brackets: a bare IPv6 address, no port.
        Some((_, p)) if p.contains(':') => (hp, None),
        Some((h, p)) => (h.trim(), p.trim().parse().ok()),
        None => (hp, None),
    };
    (!h.is_empty()).then_some((h, port))
}

/// Host and optional port of a SIP URI (`sip:a@[2001:db8::1]:5070;transport=tcp`).
/// `None` for non-SIP schemes (tel:, urn:, ...).
pub fn uri_host_port(uri: &str) -> Option<(&str, Option<u16>)> {
    let (scheme, rest) = scheme_rest(strip_angles(uri))?;
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return None;
    }
    let hostpart = match rest.split_once('@') {
        Some((_, h)) => h,
        None => rest,
    };
    let hp = if hostpart.starts_with('[') {
        // keep the brackets' colons; cut after "]:port"
        let close = hostpart.find(']').map(|i| i + 1).unwrap_or(hostpart.len());
        let tail = hostpart.get(close..).unwrap_or("");
        let tail_end = tail.find([';', '?', '>']).unwrap_or(tail.len());
        hostpart.get(..close + tail_end).unwrap_or(hostpart)
    } else {
        hostpart.split([';', '?', '>']).next().unwrap_or("")
    };
    split_host_port(hp)
}

/// Parse `1*DIGIT LWS Method`: the number and the method bytes.
pub(crate) fn parse_cseq(v: &[u8]) -> Option<(u32, &[u8])> {
    let s = v.trim_ascii();
    let dend = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let num = super::parse::parse_decimal(s.get(..dend)?)?;
    let num = u32::try_from(num).ok()?;
    let rest = s.get(dend..)?;
    let m = rest.trim_ascii();
    if m.len() == rest.len() || m.is_empty() || !m.iter().all(|&c| super::parse::is_token(c)) {
        return None;
    }
    Some((num, m))
}

/// Parse one Via value.
fn parse_via(v: &str) -> Via {
    let mut via = Via {
        text: v.to_string(),
        ..Via::default()
    };
    let (first, _) = v.split_once(';').unwrap_or((v, ""));
    // sent-protocol: name / version / transport, with optional LWS around the slashes.
    let mut parts = first.splitn(3, '/');
    let (_name, _ver, rest) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    let rest = rest.trim_start();
    let tend = rest
        .bytes()
        .position(|c| !super::parse::is_token(c))
        .unwrap_or(rest.len());
    via.transport = rest.get(..tend).unwrap_or("").to_string();
    let sent_by = rest.get(tend..).unwrap_or("").trim();
    // LWS is allowed around the colon of sent-by; only rebuild the string when present.
    let sent_by: Cow<'_, str> = if sent_by.contains(char::is_whitespace) {
        Cow::Owned(sent_by.chars().filter(|c| !c.is_whitespace()).collect())
    } else {
        Cow::Borrowed(sent_by)
    };
    if let Some((h, p)) = split_host_port(&sent_by) {
        via.host = h.to_string();
        via.port = p;
    }
    for p in split_outside(v, b';').skip(1) {
        let (n, val) = match p.split_once('=') {
            Some((n, val)) => (n.trim(), Some(val.trim())),
            None => (p.trim(), None),
        };
        if n.eq_ignore_ascii_case("branch") {
            via.branch = val.map(str::to_string);
        } else if n.eq_ignore_ascii_case("received") {
            via.received = val.map(str::to_string);
        } else if n.eq_ignore_ascii_case("rport") {
            via.rport = Some(val.and_then(|p| p.parse().ok()));
        }
    }
    via
}

/// Parse one name-addr / addr-spec value.
fn parse_name_addr(v: &str) -> NameAddr {
    let s = v.trim();
    let mut na = NameAddr {
        text: s.to_string(),
        ..NameAddr::default()
    };
    let (display, after_display) = if let Some(r) = s.strip_prefix('"') {
        // Quoted display name: find the closing quote, honouring escapes.
        let b = r.as_bytes();
        let mut i = 0;
        let mut esc = false;
        while let Some(&c) = b.get(i) {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                break;
            }
            i += 1;
        }
        let d = r.get(..i).unwrap_or(r);
        let d = if d.contains('\\') {
            unquote(&format!("\"{d}\"")).into_owned()
        } else {
            d.to_string()
        };
        (Some(d), r.get(i + 1..).unwrap_or("").trim_start())
    } else if let Some(lt) = s.find('<') {
        let d = s.get(..lt).unwrap_or("").trim();
        (
            (!d.is_empty()).then(|| d.to_string()),
            s.get(lt..).unwrap_or(""),
        )
    } else {
        (None, s)
    };
    na.display = display.filter(|d| !d.is_empty());
    let params_part;
    if let Some(r) = after_display.strip_prefix('<') {
        let (uri, after) = r.split_once('>').unwrap_or((r, ""));
        na.uri = uri.trim().to_string();
        params_part = after;
    } else {
        // addr-spec without brackets: parameters after the URI are header parameters
        // (RFC 3261 §20.10).
        let (uri, _) = after_display.split_once(';').unwrap_or((after_display, ""));
        na.uri = uri.trim().to_string();
        params_part = after_display.get(uri.len()..).unwrap_or("");
    }
    // params_part is ";a=b;c": params_of skips the (empty) part before the first ';'.
    na.params = params_of(params_part);
    na.tag = na
        .params
        .iter()
        .find(|(n, _)| n == "tag")
        .and_then(|(_, v)| v.clone());
    na
}

/// Parse a Digest (or other scheme) challenge / credentials value.
fn parse_auth(v: &str) -> AuthInfo {
    let s = v.trim();
    let send = s.find(|c: char| c.is_whitespace()).unwrap_or(s.len());
    let mut info = AuthInfo {
        scheme: s.get(..send).unwrap_or("").to_string(),
        ..AuthInfo::default()
    };
    for p in split_values(s.get(send..).unwrap_or("")) {
        let Some((n, raw)) = p.split_once('=') else {
            continue;
        };
        let n = n.trim();
        let val = || Some(unquote(raw).into_owned());
        // The response hash, cnonce, nc and opaque are deliberately never kept.
        if n.eq_ignore_ascii_case("realm") {
            info.realm = val();
        } else if n.eq_ignore_ascii_case("nonce") {
            info.nonce = val();
        } else if n.eq_ignore_ascii_case("username") {
            info.username = val();
        } else if n.eq_ignore_ascii_case("algorithm") {
            info.algorithm = val();
        } else if n.eq_ignore_ascii_case("stale") {
            info.stale = unquote(raw).eq_ignore_ascii_case("true");
        }
    }
    info
}

impl SipMessage {
    /// A header's value as text, with folded continuation lines joined by one space.
    pub fn value_text(&self, h: &Header) -> Cow<'_, str> {
        let t = self.text(&h.value);
        if !t.contains(['\r', '\n']) {
            return t;
        }
        let mut out = String::with_capacity(t.len());
        let mut in_break = false;
        for c in t.chars() {
            if matches!(c, '\r' | '\n') || (in_break && matches!(c, ' ' | '\t')) {
                if !in_break {
                    out.push(' ');
                    // drop the whitespace already pushed before the line break
                    while out.ends_with([' ', '\t']) {
                        out.pop();
                    }
                    out.push(' ');
                }
                in_break = true;
            } else {
                in_break = false;
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// Every comma-separated value of every header of `kind`, in order.
    fn values_of(&self, kind: HeaderName) -> Vec<String> {
        let mut out = Vec::new();
        for h in self.headers_of(kind) {
            let t = self.value_text(h);
            out.extend(split_values(&t).map(str::to_string));
        }
        out
    }

    fn name_addrs(&self, kind: HeaderName) -> Vec<NameAddr> {
        self.values_of(kind)
            .iter()
            .map(|v| parse_name_addr(v))
            .collect()
    }

    fn first_value(&self, kind: HeaderName) -> Option<Cow<'_, str>> {
        self.header(kind).map(|h| self.value_text(h))
    }

    /// Every Via value in order (top first), comma-split outside quotes and `<>`.
    pub fn vias(&self) -> Vec<Via> {
        self.values_of(HeaderName::Via)
            .iter()
            .map(|v| parse_via(v))
            .collect()
    }
    /// The top Via (cheaper than `vias()[0]` when only that one is needed).
    pub fn top_via(&self) -> Option<Via> {
        let t = self.first_value(HeaderName::Via)?;
        split_values(&t).next().map(parse_via)
    }
    /// `tag` of the From header, without building the whole [`NameAddr`] (hot path for
    /// dialog matching).
    pub fn from_tag(&self) -> Option<String> {
        self.tag_of(HeaderName::From)
    }
    /// `tag` of the To header (see [`SipMessage::from_tag`]).
    pub fn to_tag(&self) -> Option<String> {
        self.tag_of(HeaderName::To)
    }
    fn tag_of(&self, kind: HeaderName) -> Option<String> {
        let v = self.first_value(kind)?;
        header_param(&v, "tag")
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    }
    /// `branch` of the top Via, without building the whole [`Via`].
    pub fn top_via_branch(&self) -> Option<String> {
        let v = self.first_value(HeaderName::Via)?;
        let top = split_values(&v).next()?;
        header_param(top, "branch")
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    }
    pub fn from_hdr(&self) -> Option<NameAddr> {
        self.first_value(HeaderName::From)
            .filter(|v| !v.trim().is_empty())
            .map(|v| parse_name_addr(&v))
    }
    pub fn to_hdr(&self) -> Option<NameAddr> {
        self.first_value(HeaderName::To)
            .filter(|v| !v.trim().is_empty())
            .map(|v| parse_name_addr(&v))
    }
    /// Every Contact value (`*` gives one entry with uri "*").
    pub fn contacts(&self) -> Vec<NameAddr> {
        self.name_addrs(HeaderName::Contact)
    }
    pub fn cseq(&self) -> Option<CSeq> {
        let h = self.header(HeaderName::CSeq)?;
        let t = self.value_text(h);
        let (seq, m) = parse_cseq(t.as_bytes())?;
        Some(CSeq {
            seq,
            method: Method::from_bytes(m),
        })
    }
    /// Expires header as a number (values above 2^32-1 saturate, RFC 3261 §20.19).
    pub fn expires(&self) -> Option<u32> {
        let v = self.first_value(HeaderName::Expires)?;
        let n = super::parse::parse_decimal(v.trim().as_bytes())?;
        Some(u32::try_from(n).unwrap_or(u32::MAX))
    }
    /// P-Asserted-Identity values.
    pub fn pai(&self) -> Vec<NameAddr> {
        self.name_addrs(HeaderName::PAssertedIdentity)
    }
    /// Record-Route values, in order.
    pub fn record_routes(&self) -> Vec<NameAddr> {
        self.name_addrs(HeaderName::RecordRoute)
    }
    /// Route values, in order.
    pub fn routes(&self) -> Vec<NameAddr> {
        self.name_addrs(HeaderName::Route)
    }
    /// Session-Expires delta-seconds and `refresher` parameter.
    pub fn session_expires(&self) -> Option<(u32, Option<String>)> {
        let v = self.first_value(HeaderName::SessionExpires)?;
        let (num, _) = v.split_once(';').unwrap_or((&v, ""));
        let n = super::parse::parse_decimal(num.trim().as_bytes())?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let refresher = header_param(&v, "refresher")
            .filter(|r| !r.is_empty())
            .map(|r| r.to_ascii_lowercase());
        Some((n, refresher))
    }
    /// Comma-separated option tags or methods of a header (Supported, Require, Allow),
    /// across all headers of that kind, as written.
    pub fn tokens(&self, kind: super::HeaderName) -> Vec<String> {
        self.values_of(kind)
    }
    /// WWW-Authenticate / Proxy-Authenticate challenge (the first one present).
    pub fn challenge(&self) -> Option<AuthInfo> {
        let h = self.headers.iter().find(|h| {
            matches!(
                h.kind,
                HeaderName::WwwAuthenticate | HeaderName::ProxyAuthenticate
            )
        })?;
        Some(parse_auth(&self.value_text(h))).filter(|a| !a.scheme.is_empty())
    }
    /// Authorization / Proxy-Authorization credentials (response hash dropped).
    pub fn credentials(&self) -> Option<AuthInfo> {
        let h = self.headers.iter().find(|h| {
            matches!(
                h.kind,
                HeaderName::Authorization | HeaderName::ProxyAuthorization
            )
        })?;
        Some(parse_auth(&self.value_text(h))).filter(|a| !a.scheme.is_empty())
    }
    /// The SIP `Reason` header: (protocol, cause, text) of its first value.
    pub fn reason_header(&self) -> Option<(String, Option<u16>, Option<String>)> {
        self.reasons().into_iter().next()
    }
    /// Every Reason value (a BYE may carry both `SIP` and `Q.850` reasons).
    pub fn reasons(&self) -> Vec<(String, Option<u16>, Option<String>)> {
        self.values_of(HeaderName::Reason)
            .iter()
            .filter_map(|v| {
                let (proto, _) = v.split_once(';').unwrap_or((v, ""));
                let proto = proto.trim();
                if proto.is_empty() {
                    return None;
                }
                let cause = header_param(v, "cause").and_then(|c| c.trim().parse().ok());
                let text = split_outside(v, b';').skip(1).find_map(|p| {
                    let (n, val) = p.split_once('=')?;
                    n.trim()
                        .eq_ignore_ascii_case("text")
                        .then(|| unquote(val).into_owned())
                });
                Some((proto.to_string(), cause, text))
            })
            .collect()
    }
    /// Content-Length as declared (first header; `None` when absent or not a number).
    pub fn content_length(&self) -> Option<usize> {
        let v = self.first_value(HeaderName::ContentLength)?;
        let n = super::parse::parse_decimal(v.trim().as_bytes())?;
        usize::try_from(n).ok()
    }
    /// The SDP the message carries: the whole body when it is `application/sdp` (or has
    /// no Content-Type and starts with `v=0`), else the first `application/sdp` part of a
    /// `multipart/*` body, as SIP-I/SIP-T trunks send SDP beside ISUP (RFC 3204, RFC
    /// 5621), nested multiparts included. Wireshark's multipart dissector finds the same
    /// part.
    pub fn sdp_body(&self) -> Option<&[u8]> {
        let body = self.body_bytes();
        if body.is_empty() {
            return None;
        }
        match self.first_value(HeaderName::ContentType) {
            Some(ct) => sdp_in(&ct, body, 0),
            None => {
                let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
                body.get(start..)
                    .filter(|t| t.starts_with(b"v=0"))
                    .map(|_| body)
            }
        }
    }
    /// Content-Type, lower-cased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        let v = self.first_value(HeaderName::ContentType)?;
        let t = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        (!t.is_empty()).then_some(t)
    }
}

/// Multipart nesting followed when looking for SDP.
const MAX_MULTIPART_DEPTH: usize = 3;

/// The SDP in a body of Content-Type `ct` (the full header value, with parameters).
fn sdp_in<'b>(ct: &str, body: &'b [u8], depth: usize) -> Option<&'b [u8]> {
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/sdp") {
        return (!body.is_empty()).then_some(body);
    }
    let is_multipart = media
        .get(..10)
        .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"));
    if !is_multipart || depth >= MAX_MULTIPART_DEPTH {
        return None;
    }
    let boundary = header_param(ct, "boundary")?;
    let boundary = unquote(boundary);
    if boundary.is_empty() {
        return None;
    }
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary.as_bytes());
    let finder = memchr::memmem::Finder::new(&delim);
    // Delimiters count only at the start of a line (RFC 2046 §5.1.1).
    let starts: Vec<usize> = finder
        .find_iter(body)
        .filter(|&i| i == 0 || body.get(i - 1) == Some(&b'\n'))
        .collect();
    for w in starts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let part = body.get(a + delim.len()..b)?;
        // The rest of the delimiter line, then the part; the line break before the next
        // delimiter belongs to the delimiter.
        let nl = memchr::memchr(b'\n', part)?;
        let mut part = part.get(nl + 1..)?;
        if let Some(p) = part.strip_suffix(b"\n") {
            part = p.strip_suffix(b"\r").unwrap_or(p);
        }
        let (headers, content) = split_part(part);
        let part_ct = headers
            .split(|&c| c == b'\n')
            .filter_map(|l| std::str::from_utf8(l).ok())
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                let n = n.trim();
                (n.eq_ignore_ascii_case("content-type") || n.eq_ignore_ascii_case("c"))
                    .then(|| v.trim().to_string())
            })
            // RFC 2046: a part without Content-Type is text/plain.
            .unwrap_or_else(|| "text/plain".to_string());
        if let Some(sdp) = sdp_in(&part_ct, content, depth + 1) {
            return Some(sdp);
        }
    }
    None
}

/// A body part's header lines and its content (after the first empty line; all content
/// when the part starts with one, all headers when there is none).
fn split_part(part: &[u8]) -> (&[u8], &[u8]) {
    if part.starts_with(b"\r\n") {
        return (&[], part.get(2..).unwrap_or_default());
    }
    if part.starts_with(b"\n") {
        return (&[], part.get(1..).unwrap_or_default());
    }
    let crlf = memchr::memmem::find(part, b"\r\n\r\n").map(|i| (i, 4));
    let lf = memchr::memmem::find(part, b"\n\n").map(|i| (i, 2));
    let cut = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match cut {
        Some((i, n)) => (
            part.get(..i).unwrap_or_default(),
            part.get(i + n..).unwrap_or_default(),
        ),
        None => (part, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn msg(headers: &str) -> SipMessage {
        let raw = format!("SIP/2.0 200 OK\r\n{headers}Content-Length: 0\r\n\r\n");
        parse(raw.as_bytes()).expect("parses")
    }

    #[test]
    fn basic_accessors() {
        let m = msg(
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport=5062;received=192.0.2.1, SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKb\r\n\
From: \"Alice\" <sip:alice@a.example;transport=tcp>;tag=ft\r\n\
To: sip:bob@b.example;tag=tt\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:a@10.0.0.1>;expires=60, *\r\n",
        );
        let v = m.vias();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].transport, "UDP");
        assert_eq!(v[0].host, "10.0.0.1");
        assert_eq!(v[0].port, Some(5060));
        assert_eq!(v[0].branch.as_deref(), Some("z9hG4bKa"));
        assert_eq!(v[0].rport, Some(Some(5062)));
        assert_eq!(v[0].received.as_deref(), Some("192.0.2.1"));
        assert_eq!(v[1].transport, "TCP");
        assert_eq!(v[1].host, "2001:db8::1");
        assert_eq!(v[1].port, Some(5070));
        let f = m.from_hdr().expect("from");
        assert_eq!(f.display.as_deref(), Some("Alice"));
        assert_eq!(f.uri, "sip:alice@a.example;transport=tcp");
        assert_eq!(f.tag.as_deref(), Some("ft"));
        let t = m.to_hdr().expect("to");
        assert_eq!(t.uri, "sip:bob@b.example");
        assert_eq!(t.tag.as_deref(), Some("tt"));
        let c = m.cseq().expect("cseq");
        assert_eq!((c.seq, c.method), (7, Method::Invite));
        let cs = m.contacts();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].param("expires"), Some(Some("60")));
        assert_eq!(cs[1].uri, "*");
        assert_eq!(m.content_length(), Some(0));
        assert_eq!(m.from_tag().as_deref(), Some("ft"));
        assert_eq!(m.to_tag().as_deref(), Some("tt"));
        assert_eq!(m.top_via_branch().as_deref(), Some("z9hG4bKa"));
        let bare = msg("From: sip:a@h\r\nTo: \"x;tag=no\" <sip:b@h;tag=no>\r\n");
        assert_eq!(
            (bare.from_tag(), bare.to_tag(), bare.top_via_branch()),
            (None, None, None)
        );
    }

    #[test]
    fn name_addr_forms() {
        let na = parse_name_addr(
            "\"Smith, John \\\"JJ\\\"\" <sip:j@h;lr>;tag=abc;Expires=60;+sip.instance=\"<urn:uuid:1;2>\"",
        );
        assert_eq!(na.display.as_deref(), Some("Smith, John \"JJ\""));
        assert_eq!(na.uri, "sip:j@h;lr");
        assert_eq!(na.tag.as_deref(), Some("abc"));
        assert_eq!(na.param("expires"), Some(Some("60")));
        assert_eq!(na.param("+sip.instance"), Some(Some("<urn:uuid:1;2>")));
        let na = parse_name_addr("Bob <sip:bob@h>");
        assert_eq!(
            (na.display.as_deref(), na.uri.as_str(), na.tag.as_deref()),
            (Some("Bob"), "sip:bob@h", None)
        );
        // Bare addr-spec: ;params are header params (RFC 3261 §20.10).
        let na = parse_name_addr("sip:bob@h;tag=77;expires=30");
        assert_eq!(na.uri, "sip:bob@h");
        assert_eq!(na.tag.as_deref(), Some("77"));
        assert_eq!(na.param("expires"), Some(Some("30")));
        let na = parse_name_addr("<tel:+3120>");
        assert_eq!(na.uri, "tel:+3120");
        // Malformed: never panics, keeps what it can.
        for bad in [
            "",
            "<",
            "\"unterminated",
            "\"a\" <sip:x",
            ";;;",
            ">",
            "<>;tag",
            "\\",
        ] {
            let na = parse_name_addr(bad);
            assert_eq!(na.text, bad.trim());
        }
        assert_eq!(parse_name_addr("<sip:x@h>;tag").param("tag"), Some(None));
    }

    #[test]
    fn contacts_star_pai_routes() {
        let m = msg(
            "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContact: *\r\nP-Asserted-Identity: \"A\" <sip:+31201@h>, <tel:+31201>\r\n\
Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\nRecord-Route: <sip:p3;lr>\r\nRoute: <sip:r1;lr>\r\n",
        );
        let c = m.contacts();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].uri, "*");
        let pai = m.pai();
        assert_eq!(
            pai.iter().map(|p| p.uri.as_str()).collect::<Vec<_>>(),
            ["sip:+31201@h", "tel:+31201"]
        );
        assert_eq!(
            m.record_routes()
                .iter()
                .map(|p| p.uri.as_str())
                .collect::<Vec<_>>(),
            ["sip:p1;lr", "sip:p2;lr", "sip:p3;lr"]
        );
        assert_eq!(m.routes().len(), 1);
        assert!(m.from_hdr().is_none());
        assert!(m.cseq().is_none());
    }

    #[test]
    fn cseq_expires_session_expires_tokens() {
        let m = msg(
            "CSeq:  4711   REGISTER \r\nExpires: 99999999999\r\nSession-Expires: 1800;refresher=UAC\r\n\
Supported: timer, 100rel,replaces\r\nSupported: path\r\nAllow: INVITE,ACK , BYE\r\nRequire:\r\n",
        );
        assert_eq!(
            m.cseq(),
            Some(CSeq {
                seq: 4711,
                method: Method::Register
            })
        );
        assert_eq!(m.expires(), Some(u32::MAX));
        assert_eq!(m.session_expires(), Some((1800, Some("uac".to_string()))));
        assert_eq!(
            m.tokens(HeaderName::Supported),
            ["timer", "100rel", "replaces", "path"]
        );
        assert_eq!(m.tokens(HeaderName::Allow), ["INVITE", "ACK", "BYE"]);
        assert!(m.tokens(HeaderName::Require).is_empty());
        for bad in [
            "CSeq: 1\r\n",
            "CSeq: INVITE\r\n",
            "CSeq: 99999999999 INVITE\r\n",
            "CSeq: 1INVITE\r\n",
            "CSeq: -1 INVITE\r\n",
        ] {
            assert!(msg(bad).cseq().is_none(), "{bad}");
        }
        assert!(msg("Expires: soon\r\n").expires().is_none());
        assert!(
            msg("Session-Expires: ;refresher=uas\r\n")
                .session_expires()
                .is_none()
        );
    }

    #[test]
    fn challenge_and_credentials() {
        let m = msg(
            "WWW-Authenticate: Digest realm=\"sip.example.com\", nonce=\"abc,def\", algorithm=MD5, qop=\"auth\", stale=TRUE\r\n",
        );
        let c = m.challenge().expect("challenge");
        assert_eq!(c.scheme, "Digest");
        assert_eq!(c.realm.as_deref(), Some("sip.example.com"));
        assert_eq!(c.nonce.as_deref(), Some("abc,def"));
        assert_eq!(c.algorithm.as_deref(), Some("MD5"));
        assert!(c.stale);
        assert!(m.credentials().is_none());
        let m = msg(
            "Proxy-Authorization: Digest username=\"alice\", realm=\"r\", nonce=\"n\", uri=\"sip:h\", response=\"0123456789abcdef\", cnonce=\"cn\", nc=00000001\r\n",
        );
        let c = m.credentials().expect("credentials");
        assert_eq!(
            (
                c.username.as_deref(),
                c.realm.as_deref(),
                c.nonce.as_deref()
            ),
            (Some("alice"), Some("r"), Some("n"))
        );
        assert!(!c.stale);
        let dump = format!("{c:?}");
        assert!(
            !dump.contains("0123456789abcdef") && !dump.contains("cn\""),
            "{dump}"
        );
        assert!(msg("Authorization:\r\n").credentials().is_none());
    }

    #[test]
    fn reason_content_type_length() {
        let m = msg(
            "Reason: SIP ;cause=200 ;text=\"Call completed elsewhere\", Q.850;cause=16;text=\"Normal, call clearing\"\r\n\
Content-Type: Application/SDP ; charset=utf-8\r\n",
        );
        assert_eq!(
            m.reason_header(),
            Some((
                "SIP".to_string(),
                Some(200),
                Some("Call completed elsewhere".to_string())
            ))
        );
        let all = m.reasons();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1],
            (
                "Q.850".to_string(),
                Some(16),
                Some("Normal, call clearing".to_string())
            )
        );
        assert_eq!(m.content_type().as_deref(), Some("application/sdp"));
        assert_eq!(m.content_length(), Some(0));
        assert_eq!(
            msg("Reason: Q.850;cause=x\r\n").reason_header(),
            Some(("Q.850".to_string(), None, None))
        );
    }

    #[test]
    fn uri_helpers() {
        assert_eq!(uri_user("sip:alice@atlanta.com"), Some("alice"));
        assert_eq!(
            uri_user("<sips:alice:secret@atlanta.com;transport=tls>"),
            Some("alice")
        );
        assert_eq!(
            uri_user("tel:+31201234567;phone-context=x"),
            Some("+31201234567")
        );
        assert_eq!(uri_user("sip:atlanta.com"), None);
        assert_eq!(uri_user("mailto:a@b"), None);
        assert_eq!(uri_user("sip:%61lice%20b@h"), Some("%61lice%20b"));
        assert_eq!(
            uri_user_unescaped("sip:%61lice%20b%zz@h").as_deref(),
            Some("alice b%zz")
        );
        assert_eq!(uri_user("SIP:+31;npdi@h"), Some("+31;npdi"));
        assert_eq!(
            uri_host_port("sip:a@[2001:db8::1]:5070;transport=tcp"),
            Some(("2001:db8::1", Some(5070)))
        );
        assert_eq!(
            uri_host_port("sip:a@[2001:db8::1];lr"),
            Some(("2001:db8::1", None))
        );
        assert_eq!(
            uri_host_port("sip:h.example:5060"),
            Some(("h.example", Some(5060)))
        );
        assert_eq!(uri_host_port("<sip:a@h?Subject=x>"), Some(("h", None)));
        assert_eq!(uri_host_port("sip:a@h:99999"), Some(("h", None)));
        assert_eq!(uri_host_port("tel:+3120"), None);
        assert_eq!(uri_host_port("sip:"), None);
        assert_eq!(uri_host_port("sip:a@[::1"), None);
        for junk in [
            "", ":", "@", "sip:@", "sip:[", "<", "sip:a@]:", "%", "sip:%4",
        ] {
            let _ = (
                uri_user(junk),
                uri_host_port(junk),
                uri_user_unescaped(junk),
            );
        }
    }

    #[test]
    fn header_param_lookup() {
        let v = "<sip:a@h;transport=tcp>;Tag=xy ; expires = 60;lr;q=\"0.5\"";
        assert_eq!(header_param(v, "tag"), Some("xy"));
        assert_eq!(header_param(v, "EXPIRES"), Some("60"));
        assert_eq!(header_param(v, "lr"), Some(""));
        assert_eq!(header_param(v, "q"), Some("0.5"));
        assert_eq!(
            header_param(v, "transport"),
            None,
            "URI parameters are not header parameters"
        );
        assert_eq!(header_param("tag=1", "tag"), None);
        assert_eq!(header_param("", "x"), None);
    }

    #[test]
    fn folded_via_and_malformed_via() {
        let raw = b"SIP/2.0 200 OK\r\nVia: SIP / 2.0 / UDP\r\n  10.0.0.1 : 5060 ;branch=z9hG4bK9\r\nVia: garbage\r\nVia: SIP/2.0/UDP bare::v6;rport=abc\r\n\r\n";
        let m = parse(raw).expect("parses");
        let v = m.vias();
        assert_eq!(v.len(), 3);
        assert_eq!(
            (v[0].transport.as_str(), v[0].host.as_str(), v[0].port),
            ("UDP", "10.0.0.1", Some(5060))
        );
        assert_eq!(v[0].branch.as_deref(), Some("z9hG4bK9"));
        assert_eq!(v[1].branch, None);
        assert_eq!(v[1].text, "garbage");
        assert_eq!(
            (v[2].host.as_str(), v[2].port, v[2].rport),
            ("bare::v6", None, Some(None))
        );
    }

    fn with_body(ct: Option<&str>, body: &str) -> crate::sip::wire::SipMessage {
        let mut m = String::from(
            "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\n",
        );
        if let Some(ct) = ct {
            m.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        parse(m.as_bytes()).expect("parses")
    }

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\n\
                       t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn sdp_body_plain_and_sniffed() {
        let m = with_body(Some("application/sdp"), SDP);
        assert_eq!(m.sdp_body(), Some(SDP.as_bytes()));
        let m = with_body(Some("Application/SDP; charset=utf-8"), SDP);
        assert_eq!(m.sdp_body(), Some(SDP.as_bytes()));
        // No Content-Type: sniffed by `v=0` (leading white space allowed).
        let body = format!("\r\n{SDP}");
        assert_eq!(with_body(None, &body).sdp_body(), Some(body.as_bytes()));
        assert_eq!(with_body(None, "hello").sdp_body(), None);
        assert_eq!(with_body(Some("text/plain"), SDP).sdp_body(), None);
        assert_eq!(with_body(Some("application/sdp"), "").sdp_body(), None);
    }

    #[test]
    fn sdp_body_in_multipart_sip_i() {
        // SIP-I (ITU-T Q.1912.5): SDP beside an encapsulated ISUP IAM.
        let body = format!(
            "--unique-boundary-1\r\nContent-Type: application/isup;version=itu-t92+\r\n\
             Content-Disposition: signal;handling=optional\r\n\r\n\x01\x00\x49\r\n\
             --unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n\
             --unique-boundary-1--\r\n"
        );
        let m = with_body(Some("multipart/mixed;boundary=unique-boundary-1"), &body);
        assert_eq!(m.sdp_body(), Some(SDP.as_bytes()));
        // Quoted boundary, LF-only line ends, a preamble and compact `c:` in the part.
        let lf = SDP.replace("\r\n", "\n");
        let body = format!("preamble\n--b 1\nc: application/sdp\n\n{lf}\n--b 1--\n");
        let m = with_body(Some("multipart/mixed; boundary=\"b 1\""), &body);
        assert_eq!(m.sdp_body(), Some(lf.as_bytes()));
        // Nested: multipart/alternative inside multipart/mixed.
        let inner = format!("--in\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--in--");
        let body = format!(
            "--out\r\nContent-Type: multipart/alternative;boundary=in\r\n\r\n{inner}\r\n--out--"
        );
        let m = with_body(Some("multipart/mixed;boundary=out"), &body);
        assert_eq!(m.sdp_body(), Some(SDP.as_bytes()));
    }

    #[test]
    fn sdp_body_multipart_without_sdp_or_damaged() {
        let ct = Some("multipart/mixed;boundary=x");
        // No SDP part; a part without Content-Type is text/plain.
        let body = "--x\r\nContent-Type: application/isup\r\n\r\nAB\r\n--x\r\n\r\nv=0\r\n--x--";
        assert_eq!(with_body(ct, body).sdp_body(), None);
        // No boundary parameter, an empty one, a delimiter only mid-line, no closing one.
        assert_eq!(with_body(Some("multipart/mixed"), SDP).sdp_body(), None);
        assert_eq!(
            with_body(Some("multipart/mixed;boundary=\"\""), SDP).sdp_body(),
            None
        );
        let mid = format!("a--x\r\nContent-Type: application/sdp\r\n\r\n{SDP}a--x--");
        assert_eq!(with_body(ct, &mid).sdp_body(), None);
        let open = format!("--x\r\nContent-Type: application/sdp\r\n\r\n{SDP}");
        assert_eq!(
            with_body(ct, &open).sdp_body(),
            None,
            "a part needs its closing delimiter"
        );
        // Nesting deeper than the limit is not followed (and never recurses unboundedly).
        let nest = |levels: usize| {
            let mut body = format!("--b0\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b0--");
            for i in 1..=levels {
                body = format!(
                    "--b{i}\r\nContent-Type: multipart/mixed;boundary=b{}\r\n\r\n{body}\r\n--b{i}--",
                    i - 1
                );
            }
            with_body(Some(&format!("multipart/mixed;boundary=b{levels}")), &body)
        };
        assert_eq!(
            nest(2).sdp_body(),
            Some(SDP.as_bytes()),
            "three multipart levels"
        );
        assert_eq!(nest(3).sdp_body(), None, "four are not followed");
        assert_eq!(nest(40).sdp_body(), None);
    }
}
