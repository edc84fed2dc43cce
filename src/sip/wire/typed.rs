//! Typed views of the headers analysis needs. (Stub: to be implemented.)

use super::{CSeq, SipMessage};
use serde::Serialize;

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

impl SipMessage {
    /// Every Via value in order (top first), comma-split outside quotes and `<>`.
    pub fn vias(&self) -> Vec<Via> {
        Vec::new()
    }
    pub fn from_hdr(&self) -> Option<NameAddr> {
        None
    }
    pub fn to_hdr(&self) -> Option<NameAddr> {
        None
    }
    /// Every Contact value (`*` gives one entry with uri "*").
    pub fn contacts(&self) -> Vec<NameAddr> {
        Vec::new()
    }
    pub fn cseq(&self) -> Option<CSeq> {
        None
    }
    /// Expires header as a number.
    pub fn expires(&self) -> Option<u32> {
        None
    }
    /// P-Asserted-Identity values.
    pub fn pai(&self) -> Vec<NameAddr> {
        Vec::new()
    }
    /// Record-Route values, in order.
    pub fn record_routes(&self) -> Vec<NameAddr> {
        Vec::new()
    }
    /// Route values, in order.
    pub fn routes(&self) -> Vec<NameAddr> {
        Vec::new()
    }
    /// Session-Expires delta-seconds and `refresher` parameter.
    pub fn session_expires(&self) -> Option<(u32, Option<String>)> {
        None
    }
    /// Comma-separated option tags or methods of a header (Supported, Require, Allow).
    pub fn tokens(&self, kind: super::HeaderName) -> Vec<String> {
        let _ = kind;
        Vec::new()
    }
    /// WWW-Authenticate / Proxy-Authenticate challenge.
    pub fn challenge(&self) -> Option<AuthInfo> {
        None
    }
    /// Authorization / Proxy-Authorization credentials (response hash dropped).
    pub fn credentials(&self) -> Option<AuthInfo> {
        None
    }
    /// The SIP `Reason` header: (protocol, cause, text).
    pub fn reason_header(&self) -> Option<(String, Option<u16>, Option<String>)> {
        None
    }
    /// Content-Length as declared.
    pub fn content_length(&self) -> Option<usize> {
        None
    }
    /// Content-Type, lower-cased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        None
    }
}

/// Value of parameter `name` in a `;`-separated parameter list (case-insensitive name).
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let _ = (value, name);
    None
}

/// User part of a SIP/SIPS/tel URI (`sip:alice@host` → `alice`, `tel:+3120` → `+3120`).
pub fn uri_user(uri: &str) -> Option<&str> {
    let _ = uri;
    None
}

/// Host and optional port of a SIP URI (`sip:a@[2001:db8::1]:5070;transport=tcp`).
pub fn uri_host_port(uri: &str) -> Option<(&str, Option<u16>)> {
    let _ = uri;
    None
}
