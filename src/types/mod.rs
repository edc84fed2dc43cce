//! The shared vocabulary every other module speaks; it depends on nothing in the crate.
//!
//! Owns: frame references (1-based, as Wireshark numbers them), capture timestamps,
//! endpoints and 5-tuples, transports, and the [`Anomaly`] record that turns malformed
//! traffic into data instead of errors.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;

/// A frame as Wireshark would name it: its 1-based number in its input file.
///
/// `file` is 0 when the analysis has a single input file (the frame serialises as a plain
/// integer, exactly Wireshark's `frame.number`); with several input files every frame
/// carries the 1-based index of its file and serialises as the string `"FILE:FRAME"`
/// (e.g. `"2:345"`), with `capture.files` listing the files in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FrameRef {
    pub file: u16,
    pub num: u64,
}

impl FrameRef {
    pub const fn new(file: u16, num: u64) -> Self {
        FrameRef { file, num }
    }
}

impl fmt::Display for FrameRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file == 0 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}:{}", self.file, self.num)
        }
    }
}

impl Serialize for FrameRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.file == 0 {
            s.serialize_u64(self.num)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for FrameRef {
    /// Both serialised forms: a plain number (single input file) or `"FILE:FRAME"`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FrameRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a frame number or a \"FILE:FRAME\" string")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FrameRef, E> {
                Ok(FrameRef::new(0, v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FrameRef, E> {
                u64::try_from(v)
                    .map(|n| FrameRef::new(0, n))
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FrameRef, E> {
                let bad = || E::invalid_value(serde::de::Unexpected::Str(v), &self);
                let (file, num) = v.split_once(':').ok_or_else(bad)?;
                let file: u16 = file.parse().map_err(|_| bad())?;
                let num: u64 = num.parse().map_err(|_| bad())?;
                // File 0 is the single-file form, which is written as a number.
                if file == 0 {
                    return Err(bad());
                }
                Ok(FrameRef::new(file, num))
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserialise a plain `f64` field that serde_json may have written as `null` (it writes
/// every non-finite float so): `null` comes back as NaN, which serialises as `null` again.
/// Use with `#[serde(deserialize_with = "crate::types::f64_or_nan")]`.
pub fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Capture time: nanoseconds since the Unix epoch, as recorded in the capture file.
/// All protocol timers run on this clock, never on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

impl Serialize for Ts {
    /// Absolute capture time in seconds since the epoch (microsecond precision survives f64).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_secs_f64())
    }
}

impl Ts {
    pub const NS_PER_SEC: i64 = 1_000_000_000;
    pub fn from_secs_f64(s: f64) -> Ts {
        Ts((s * 1e9).round() as i64)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// `self - earlier` in seconds.
    pub fn secs_since(self, earlier: Ts) -> f64 {
        (self.0.saturating_sub(earlier.0)) as f64 / 1e9
    }
    /// `self - earlier` in milliseconds.
    pub fn ms_since(self, earlier: Ts) -> f64 {
        (self.0.saturating_sub(earlier.0)) as f64 / 1e6
    }
    pub fn plus_ms(self, ms: i64) -> Ts {
        Ts(self.0.saturating_add(ms.saturating_mul(1_000_000)))
    }
}

/// The transport a datagram or stream arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
        }
    }
}

/// An IP address and port. Displays as `ip:port`, or `[ipv6]:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Endpoint { ip, port }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(a) => write!(f, "{}:{}", a, self.port),
            IpAddr::V6(a) => write!(f, "[{}]:{}", a, self.port),
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Source and destination of one packet, with its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FiveTuple {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub transport: Transport,
}

impl FiveTuple {
    /// The same flow seen from the other side.
    pub fn reversed(&self) -> FiveTuple {
        FiveTuple {
            src: self.dst,
            dst: self.src,
            transport: self.transport,
        }
    }
    /// A direction-independent key: the smaller endpoint first.
    pub fn canonical(&self) -> FiveTuple {
        if self.src <= self.dst {
            *self
        } else {
            self.reversed()
        }
    }
}

/// Which protocol layer an anomaly was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Capture,
    Link,
    Ip,
    Udp,
    Tcp,
    Sip,
    Sdp,
    Rtp,
    Rtcp,
}

/// Malformed or surprising traffic, recorded instead of failing.
///
/// `kind` is a stable dotted id (`sip.content_length_mismatch`, `decode.truncated`, ...);
/// `detail` is a human-readable description quoting the offending values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub layer: Layer,
    pub kind: &'static str,
    pub frame: FrameRef,
    pub detail: String,
}

/// True for addresses a public host cannot route to: RFC 1918, RFC 6598 (CGNAT),
/// link-local, loopback, unspecified, IPv6 ULA and link-local.
pub fn is_unroutable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || (o[0] == 100 && (o[1] & 0xC0) == 64)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Neutralise terminal control characters (C0 except tab, DEL, C1, and ESC sequences) in
/// text that came from a capture, so a crafted User-Agent cannot drive the terminal.
pub fn sanitize_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push(' '),
            c if (c as u32) < 0x20 || c as u32 == 0x7f || (0x80..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ref_serialises_as_number_or_file_number() {
        assert_eq!(serde_json::to_string(&FrameRef::new(0, 7)).unwrap(), "7");
        assert_eq!(
            serde_json::to_string(&FrameRef::new(2, 7)).unwrap(),
            "\"2:7\""
        );
    }

    #[test]
    fn frame_ref_deserialises_both_forms() {
        for f in [
            FrameRef::new(0, 7),
            FrameRef::new(2, 345),
            FrameRef::new(0, u64::MAX),
        ] {
            let j = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<FrameRef>(&j).unwrap(), f, "{j}");
        }
        for bad in ["\"0:7\"", "\"7\"", "\"x:7\"", "\"2:\"", "-1", "1.5"] {
            assert!(serde_json::from_str::<FrameRef>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unroutable_ranges() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_unroutable(&a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "100.128.0.1", "172.32.0.1", "2001:db8::1"] {
            assert!(!is_unroutable(&a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn sanitize_removes_escape_sequences() {
        assert_eq!(sanitize_text("a\x1b[31mb\rc"), "a\\x1b[31mb\\x0dc");
        assert_eq!(sanitize_text("ok \u{9b}x"), "ok \\x9bx");
    }

    #[test]
    fn endpoint_display() {
        let e = Endpoint::new("2001:db8::1".parse().unwrap(), 5060);
        assert_eq!(e.to_string(), "[2001:db8::1]:5060");
    }
}
