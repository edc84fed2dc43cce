//! Tolerant SDP (RFC 8866) parser and the media description model the correlator and the
//! rules read. Written by hand on top of line splitting (memchr) because real SDP is
//! routinely out of spec (bare LF, missing lines, vendor attributes, ALG damage) and the
//! analysis needs each line's exact text for evidence.
//!
//! Never fails: what it cannot read becomes an entry in [`Sdp::anomalies`].

use serde::Serialize;
use std::net::IpAddr;

mod parse;
pub use parse::parse;

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// `c=` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// "IP4" / "IP6" as written.
    pub addr_type: String,
    /// The address text as written (may be a hostname or garbage).
    pub addr: String,
    /// Parsed address, when it is one.
    pub ip: Option<IpAddr>,
    /// The whole line, for evidence.
    pub line: String,
}

/// `o=` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub username: String,
    pub sess_id: String,
    pub sess_version: String,
    pub addr_type: String,
    pub addr: String,
    pub ip: Option<IpAddr>,
    pub line: String,
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RtpMap {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// `a=crypto:` with the key material already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Crypto {
    pub tag: String,
    pub suite: String,
    /// The line with the key replaced by `<redacted>`.
    pub line: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Media {
    /// audio, video, image (T.38), application, ...
    pub kind: String,
    pub port: u16,
    pub port_count: Option<u16>,
    /// RTP/AVP, RTP/SAVP, RTP/AVPF, UDP/TLS/RTP/SAVPF, udptl, ...
    pub proto: String,
    /// Format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=`, which overrides the session one.
    pub connection: Option<Connection>,
    pub rtpmap: Vec<RtpMap>,
    /// `a=fmtp:<pt> <params>`.
    pub fmtp: Vec<(u8, String)>,
    pub ptime: Option<u32>,
    pub maxptime: Option<u32>,
    /// Media-level direction attribute, if any.
    pub direction: Option<Direction>,
    /// `a=rtcp:<port> [IN IP4 addr]`.
    pub rtcp_port: Option<u16>,
    pub rtcp_addr: Option<IpAddr>,
    pub rtcp_mux: bool,
    pub crypto: Vec<Crypto>,
    /// The `m=` line itself, for evidence.
    pub line: String,
    /// 1-based line number of the `m=` line within the SDP body.
    pub line_no: u32,
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Sdp {
    pub origin: Option<Origin>,
    pub session_name: Option<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level direction attribute, if any.
    pub direction: Option<Direction>,
    pub media: Vec<Media>,
    /// Problems found: stable ids with details (`sdp.bad_line: "xyz"`, `sdp.no_connection`).
    pub anomalies: Vec<String>,
}

impl Sdp {
    /// The connection address that applies to `m` (media-level `c=` wins).
    pub fn media_addr(&self, m: &Media) -> Option<IpAddr> {
        m.connection
            .as_ref()
            .and_then(|c| c.ip)
            .or_else(|| self.connection.as_ref().and_then(|c| c.ip))
    }

    /// The `c=` line that applies to `m`.
    pub fn media_connection<'a>(&'a self, m: &'a Media) -> Option<&'a Connection> {
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// Effective direction of `m`: media-level attribute, else session-level, else sendrecv.
    /// A `c=` of 0.0.0.0 (RFC 2543 hold) reads as sendonly (the holder stops receiving),
    /// but only when no attribute says otherwise.
    pub fn media_direction(&self, m: &Media) -> Direction {
        if let Some(d) = m.direction.or(self.direction) {
            return d;
        }
        match self.media_addr(m) {
            Some(ip) if ip.is_unspecified() => Direction::SendOnly,
            _ => Direction::SendRecv,
        }
    }

    /// First `m=audio` section with a non-zero port.
    pub fn audio(&self) -> Option<&Media> {
        self.media.iter().find(|m| m.kind == "audio" && m.port != 0)
    }
}

impl Media {
    /// Port 0: the stream is declined or disabled (RFC 3264 §5.1).
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }

    /// `m=image <port> udptl t38`: a T.38 fax stream.
    pub fn is_t38(&self) -> bool {
        self.kind.eq_ignore_ascii_case("image")
            && self.proto.eq_ignore_ascii_case("udptl")
            && self.formats.iter().any(|f| f.eq_ignore_ascii_case("t38"))
    }

    /// Encoding name and clock rate for payload type `pt`: rtpmap first, then the static
    /// RTP/AVP table (RFC 3551).
    pub fn codec(&self, pt: u8) -> Option<(String, u32)> {
        if let Some(r) = self.rtpmap.iter().find(|r| r.pt == pt) {
            return Some((r.encoding.clone(), r.clock_rate));
        }
        static_payload(pt).map(|(n, c)| (n.to_string(), c))
    }

    /// Payload types offered, in order (formats that are numbers).
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats.iter().filter_map(|f| f.parse().ok()).collect()
    }

    /// Payload type of telephone-event, if offered.
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.rtpmap
            .iter()
            .find(|r| r.encoding.eq_ignore_ascii_case("telephone-event"))
            .map(|r| r.pt)
    }
}

/// RFC 3551 static payload types: (encoding name as in SDP, clock rate).
pub fn static_payload(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 => ("L16", 44100),
        11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        25 => ("CelB", 90000),
        26 => ("JPEG", 90000),
        28 => ("nv", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}
