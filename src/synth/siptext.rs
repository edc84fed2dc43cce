//! SIP and SDP text builders: structured input → well-formed message bytes (or, on
//! request, deliberately wrong ones: a false Content-Length, compact header names).
//! Authentication headers carry placeholder digests derived from the seed, never a real
//! secret or a real MD5 of one.

use std::fmt::Write as _;
use std::net::IpAddr;

/// One Via header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// "UDP", "TCP", "TLS".
    pub transport: String,
    /// host[:port] as the sender advertises itself.
    pub sent_by: String,
    pub branch: String,
    /// `Some(None)` = bare `;rport` (request), `Some(Some(p))` = `;rport=p` (response).
    pub rport: Option<Option<u16>>,
    pub received: Option<String>,
}

impl Via {
    pub fn render(&self) -> String {
        let mut s = format!(
            "SIP/2.0/{} {};branch={}",
            self.transport, self.sent_by, self.branch
        );
        match self.rport {
            Some(Some(p)) => {
                let _ = write!(s, ";rport={p}");
            }
            Some(None) => s.push_str(";rport"),
            None => {}
        }
        if let Some(r) = &self.received {
            let _ = write!(s, ";received={r}");
        }
        s
    }
}

/// `"Display" <uri>;tag=...`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: String,
    pub tag: Option<String>,
}

impl NameAddr {
    pub fn new(uri: impl Into<String>) -> Self {
        NameAddr {
            display: None,
            uri: uri.into(),
            tag: None,
        }
    }
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.display {
            let _ = write!(s, "\"{d}\" ");
        }
        let _ = write!(s, "<{}>", self.uri);
        if let Some(t) = &self.tag {
            let _ = write!(s, ";tag={t}");
        }
        s
    }
}

/// Digest authentication headers (placeholders; see module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `WWW-Authenticate` (401) or, with `proxy`, `Proxy-Authenticate` (407).
    Challenge {
        proxy: bool,
        realm: String,
        nonce: String,
    },
    /// `Authorization` or, with `proxy`, `Proxy-Authorization`.
    Credentials {
        proxy: bool,
        username: String,
        realm: String,
        nonce: String,
        uri: String,
        response: String,
    },
}

impl Auth {
    fn header(&self) -> (&'static str, String) {
        match self {
            Auth::Challenge {
                proxy,
                realm,
                nonce,
            } => (
                if *proxy {
                    "Proxy-Authenticate"
                } else {
                    "WWW-Authenticate"
                },
                format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\""),
            ),
            Auth::Credentials {
                proxy,
                username,
                realm,
                nonce,
                uri,
                response,
            } => (
                if *proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                },
                format!(
                    "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\""
                ),
            ),
        }
    }
}

/// Content-Length handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentLength {
    /// The body length (correct).
    #[default]
    Auto,
    /// This value, whatever the body is (malformed/ALG fixtures).
    Wrong(usize),
    /// No Content-Length header at all.
    Omit,
}

/// Request or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// A SIP message to render. Headers come out in the conventional order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMsg {
    pub start: StartLine,
    pub via: Vec<Via>,
    pub max_forwards: Option<u8>,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: String,
    /// Contact URI and its `;expires=` parameter.
    pub contact: Option<(String, Option<u32>)>,
    pub expires: Option<u32>,
    pub auth: Option<Auth>,
    pub user_agent: Option<String>,
    pub server: Option<String>,
    pub extra: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub content_length: ContentLength,
    /// Use compact header names (v, f, t, i, m, c, l).
    pub compact: bool,
}

impl SipMsg {
    fn base(start: StartLine, call_id: &str, cseq: u32, cseq_method: &str) -> Self {
        SipMsg {
            start,
            via: Vec::new(),
            max_forwards: None,
            from: NameAddr::default(),
            to: NameAddr::default(),
            call_id: call_id.to_string(),
            cseq,
            cseq_method: cseq_method.to_string(),
            contact: None,
            expires: None,
            auth: None,
            user_agent: None,
            server: None,
            extra: Vec::new(),
            content_type: None,
            body: Vec::new(),
            content_length: ContentLength::Auto,
            compact: false,
        }
    }

    pub fn request(method: &str, uri: &str, call_id: &str, cseq: u32) -> Self {
        let mut m = Self::base(
            StartLine::Request {
                method: method.to_string(),
                uri: uri.to_string(),
            },
            call_id,
            cseq,
            method,
        );
        m.max_forwards = Some(70);
        m
    }

    /// A response copying the dialog headers (Via, From, To, Call-ID, CSeq) of `req`.
    pub fn response_to(req: &SipMsg, code: u16, reason: &str) -> Self {
        let mut m = Self::base(
            StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            &req.call_id,
            req.cseq,
            &req.cseq_method,
        );
        m.via = req.via.clone();
        m.from = req.from.clone();
        m.to = req.to.clone();
        m
    }

    pub fn with_sdp(mut self, sdp: &str) -> Self {
        self.content_type = Some("application/sdp".into());
        self.body = sdp.as_bytes().to_vec();
        self
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn render(&self) -> Vec<u8> {
        let c = self.compact;
        let name = |long: &'static str, short: &'static str| if c { short } else { long };
        let mut s = String::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(s, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(s, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for v in &self.via {
            let _ = write!(s, "{}: {}\r\n", name("Via", "v"), v.render());
        }
        if let Some(mf) = self.max_forwards {
            let _ = write!(s, "Max-Forwards: {mf}\r\n");
        }
        let _ = write!(s, "{}: {}\r\n", name("From", "f"), self.from.render());
        let _ = write!(s, "{}: {}\r\n", name("To", "t"), self.to.render());
        let _ = write!(s, "{}: {}\r\n", name("Call-ID", "i"), self.call_id);
        let _ = write!(s, "CSeq: {} {}\r\n", self.cseq, self.cseq_method);
        if let Some((uri, exp)) = &self.contact {
            let _ = write!(s, "{}: <{uri}>", name("Contact", "m"));
            if let Some(e) = exp {
                let _ = write!(s, ";expires={e}");
            }
            s.push_str("\r\n");
        }
        if let Some(a) = &self.auth {
            let (h, v) = a.header();
            let _ = write!(s, "{h}: {v}\r\n");
        }
        if let Some(e) = self.expires {
            let _ = write!(s, "Expires: {e}\r\n");
        }
        if let Some(ua) = &self.user_agent {
            let _ = write!(s, "User-Agent: {ua}\r\n");
        }
        if let Some(sv) = &self.server {
            let _ = write!(s, "Server: {sv}\r\n");
        }
        for (h, v) in &self.extra {
            let _ = write!(s, "{h}: {v}\r\n");
        }
        if let Some(ct) = &self.content_type {
            let _ = write!(s, "{}: {ct}\r\n", name("Content-Type", "c"));
        }
        let cl = match self.content_length {
            ContentLength::Auto => Some(self.body.len()),
            ContentLength::Wrong(n) => Some(n),
            ContentLength::Omit => None,
        };
        if let Some(n) = cl {
            let _ = write!(s, "{}: {n}\r\n", name("Content-Length", "l"));
        }
        s.push_str("\r\n");
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// The canonical reason phrase of common status codes (for builders that only get a code).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// An audio codec as offered in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub pt: u8,
    pub name: &'static str,
    pub rate: u32,
    /// Payload bytes of one 20 ms packet.
    pub bytes_20ms: usize,
    /// Fill byte of a "silent" payload.
    pub fill: u8,
}

pub const PCMU: Codec = Codec {
    pt: 0,
    name: "PCMU",
    rate: 8000,
    bytes_20ms: 160,
    fill: 0xFF,
};
pub const PCMA: Codec = Codec {
    pt: 8,
    name: "PCMA",
    rate: 8000,
    bytes_20ms: 160,
    fill: 0xD5,
};
pub const G729: Codec = Codec {
    pt: 18,
    name: "G729",
    rate: 8000,
    bytes_20ms: 20,
    fill: 0x00,
};

/// One m= section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpMedia {
    /// "audio" or "image" (T.38).
    pub kind: &'static str,
    pub port: u16,
    pub codecs: Vec<Codec>,
    /// Media-level c= (overrides the session one).
    pub conn: Option<IpAddr>,
    pub ptime: Option<u32>,
    /// "sendrecv", "sendonly", "recvonly", "inactive".
    pub direction: Option<&'static str>,
    /// telephone-event payload type (RFC 4733), with `a=fmtp:PT 0-16`.
    pub telephone_event: Option<u8>,
    /// Extra a= lines (without "a=").
    pub extra_attrs: Vec<String>,
}

impl SdpMedia {
    pub fn audio(port: u16, codecs: Vec<Codec>) -> Self {
        SdpMedia {
            kind: "audio",
            port,
            codecs,
            conn: None,
            ptime: Some(20),
            direction: Some("sendrecv"),
            telephone_event: None,
            extra_attrs: Vec::new(),
        }
    }
    pub fn t38(port: u16) -> Self {
        SdpMedia {
            kind: "image",
            port,
            codecs: Vec::new(),
            conn: None,
            ptime: None,
            direction: None,
            telephone_event: None,
            extra_attrs: vec![
                "T38FaxVersion:0".into(),
                "T38FaxRateManagement:transferredTCF".into(),
            ],
        }
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub username: String,
    pub sess_id: u64,
    pub sess_version: u64,
    pub origin: IpAddr,
    /// Session-level c= (None when every m= has its own).
    pub conn: Option<IpAddr>,
    pub media: Vec<SdpMedia>,
}

fn inet(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(x) => format!("IN IP4 {x}"),
        IpAddr::V6(x) => format!("IN IP6 {x}"),
    }
}

impl Sdp {
    pub fn new(username: &str, sess_id: u64, addr: IpAddr, media: Vec<SdpMedia>) -> Self {
        Sdp {
            username: username.into(),
            sess_id,
            sess_version: sess_id,
            origin: addr,
            conn: Some(addr),
            media,
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("v=0\r\n");
        let _ = write!(
            s,
            "o={} {} {} {}\r\n",
            self.username,
            self.sess_id,
            self.sess_version,
            inet(&self.origin)
        );
        s.push_str("s=sipscope\r\n");
        if let Some(c) = &self.conn {
            let _ = write!(s, "c={}\r\n", inet(c));
        }
        s.push_str("t=0 0\r\n");
        for m in &self.media {
            if m.kind == "image" {
                let _ = write!(s, "m=image {} udptl t38\r\n", m.port);
            } else {
                let mut fmts: Vec<String> = m.codecs.iter().map(|c| c.pt.to_string()).collect();
                if let Some(te) = m.telephone_event {
                    fmts.push(te.to_string());
                }
                let _ = write!(s, "m={} {} RTP/AVP {}\r\n", m.kind, m.port, fmts.join(" "));
            }
            if let Some(c) = &m.conn {
                let _ = write!(s, "c={}\r\n", inet(c));
            }
            for c in &m.codecs {
                let _ = write!(s, "a=rtpmap:{} {}/{}\r\n", c.pt, c.name, c.rate);
            }
            if let Some(te) = m.telephone_event {
                let _ = write!(
                    s,
                    "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
                );
            }
            if let Some(p) = m.ptime {
                let _ = write!(s, "a=ptime:{p}\r\n");
            }
            for a in &m.extra_attrs {
                let _ = write!(s, "a={a}\r\n");
            }
            if let Some(d) = m.direction {
                let _ = write!(s, "a={d}\r\n");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> SipMsg {
        let mut m = SipMsg::request("INVITE", "sip:bob@example.com", "abc@host", 1);
        m.via.push(Via {
            transport: "UDP".into(),
            sent_by: "10.0.0.1:5060".into(),
            branch: "z9hG4bK1".into(),
            rport: Some(None),
            received: None,
        });
        m.from = NameAddr {
            display: Some("Alice".into()),
            uri: "sip:alice@example.com".into(),
            tag: Some("t1".into()),
        };
        m.to = NameAddr::new("sip:bob@example.com");
        m.contact = Some(("sip:alice@10.0.0.1:5060".into(), None));
        m
    }

    fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        text.split("\r\n")
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
    }

    #[test]
    fn request_renders_with_correct_content_length() {
        let sdp = Sdp::new(
            "alice",
            1,
            "10.0.0.1".parse().unwrap(),
            vec![SdpMedia::audio(4000, vec![PCMU])],
        )
        .render();
        let m = invite().with_sdp(&sdp);
        let raw = String::from_utf8(m.render()).unwrap();
        assert!(raw.starts_with("INVITE sip:bob@example.com SIP/2.0\r\n"));
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            header(head, "Content-Length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(
            header(head, "Via"),
            Some("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport")
        );
        assert_eq!(
            header(head, "From"),
            Some("\"Alice\" <sip:alice@example.com>;tag=t1")
        );
        assert_eq!(header(head, "CSeq"), Some("1 INVITE"));
        assert!(body.contains("m=audio 4000 RTP/AVP 0\r\n"));
        assert!(body.contains("a=rtpmap:0 PCMU/8000\r\n"));
    }

    #[test]
    fn wrong_length_and_compact_forms() {
        let mut m = invite().with_sdp("v=0\r\n");
        m.content_length = ContentLength::Wrong(99);
        m.compact = true;
        let raw = String::from_utf8(m.render()).unwrap();
        assert!(raw.contains("\r\nl: 99\r\n"));
        assert!(raw.contains("\r\nv: SIP/2.0/UDP"));
        assert!(raw.contains("\r\ni: abc@host\r\n"));
        assert!(raw.contains("\r\nc: application/sdp\r\n"));
        assert!(!raw.contains("Content-Length"));
        m.content_length = ContentLength::Omit;
        assert!(!String::from_utf8(m.render()).unwrap().contains("\r\nl: "));
    }

    #[test]
    fn response_copies_dialog_headers() {
        let req = invite();
        let mut r = SipMsg::response_to(&req, 401, "Unauthorized");
        r.auth = Some(Auth::Challenge {
            proxy: false,
            realm: "example.com".into(),
            nonce: "n1".into(),
        });
        let raw = String::from_utf8(r.render()).unwrap();
        assert!(raw.starts_with("SIP/2.0 401 Unauthorized\r\n"));
        assert!(raw.contains("Call-ID: abc@host\r\n"));
        assert!(raw.contains("WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n1\""));
        assert!(!raw.contains("Max-Forwards"));
    }

    #[test]
    fn sdp_media_levels_and_t38() {
        let mut a = SdpMedia::audio(5000, vec![PCMA, PCMU]);
        a.telephone_event = Some(101);
        a.conn = Some("2001:db8::5".parse().unwrap());
        a.direction = Some("sendonly");
        let mut sdp = Sdp::new(
            "u",
            7,
            "192.0.2.1".parse().unwrap(),
            vec![a, SdpMedia::t38(6000)],
        );
        sdp.conn = None;
        let t = sdp.render();
        assert!(t.contains("m=audio 5000 RTP/AVP 8 0 101\r\nc=IN IP6 2001:db8::5\r\n"));
        assert!(t.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert!(t.contains("a=sendonly\r\n"));
        assert!(t.contains("m=image 6000 udptl t38\r\n"));
        assert!(!t.contains("\r\nc=IN IP4"));
    }
}
