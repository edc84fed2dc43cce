//! RTCP compound packets: SR, RR, SDES, BYE, APP, XR (VoIP metrics). (Stub.)

use serde::Serialize;

/// One report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost as a ratio 0..1.
    pub fraction_lost: f64,
    /// Cumulative lost (24-bit signed).
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    pub lsr: u32,
    pub dlsr: u32,
}

/// XR VoIP Metrics block (RFC 3611 §4.7), the fields we report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct XrVoip {
    pub ssrc: u32,
    pub loss_rate: u8,
    pub discard_rate: u8,
    pub round_trip_delay_ms: u16,
    pub end_system_delay_ms: u16,
    pub r_factor: u8,
    pub mos_lq: u8,
    pub mos_cq: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RtcpPacket {
    Sr {
        ssrc: u32,
        ntp_msw: u32,
        ntp_lsw: u32,
        rtp_ts: u32,
        packets: u32,
        octets: u32,
        reports: Vec<ReportBlock>,
    },
    Rr {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    Sdes {
        /// (ssrc, CNAME) pairs.
        chunks: Vec<(u32, Option<String>)>,
    },
    Bye {
        ssrcs: Vec<u32>,
    },
    App {
        ssrc: u32,
    },
    Xr {
        ssrc: u32,
        voip: Vec<XrVoip>,
    },
    Other {
        pt: u8,
    },
}

/// Parse a compound RTCP packet. Returns what parsed before the first malformed part,
/// and an anomaly id when something was malformed.
pub fn parse_compound(data: &[u8]) -> (Vec<RtcpPacket>, Option<&'static str>) {
    let _ = data;
    (Vec::new(), None)
}
