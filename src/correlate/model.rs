//! The analysis model: what the capture contained, after correlation.

use super::Association;
use crate::capture::FileInfo;
use crate::decode::ReassemblyStats;
use crate::rtp::StreamSummary;
use crate::rtp::events::DtmfEvent;
use crate::rtp::mos::MosEstimate;
use crate::rtp::rtcp::XrVoip;
use crate::sip::state::{OutOfDialog, Registration, SipCall, SipStats};
use crate::types::{Anomaly, Endpoint, FrameRef, Ts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where every frame of the capture went. The counters sum to `frames`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Accounting {
    pub frames: u64,
    pub sip: u64,
    /// CRLF keepalives on SIP flows.
    pub sip_keepalive: u64,
    pub rtp: u64,
    pub rtcp: u64,
    /// STUN (RFC 5389 magic cookie) on any UDP port.
    pub stun: u64,
    /// SIP over TLS (port 5061) and other encrypted signalling: counted, not analysed.
    pub encrypted: u64,
    pub other_udp: u64,
    pub other_tcp: u64,
    /// TCP segments without new payload (handshake, ACKs, FIN/RST, keepalives).
    pub tcp_control: u64,
    pub tcp_retransmission: u64,
    /// TCP segments whose bytes were skipped (a gap, or the stream's buffer cap).
    pub tcp_out_of_order: u64,
    pub icmp: u64,
    pub other_ip: u64,
    pub non_ip: u64,
    /// Fragments of an IP packet that was reassembled in a later frame.
    pub ip_fragment: u64,
    /// Fragments of packets that never completed (expired, evicted or at end of input).
    pub ip_fragment_incomplete: u64,
    pub unsupported_link: u64,
    /// Malformed frames by reason id (`decode.ipv4_truncated`, ...).
    pub malformed: BTreeMap<String, u64>,
}

impl Accounting {
    /// Sum of all categories (must equal `frames`).
    pub fn total(&self) -> u64 {
        self.sip
            + self.sip_keepalive
            + self.rtp
            + self.rtcp
            + self.stun
            + self.encrypted
            + self.other_udp
            + self.other_tcp
            + self.tcp_control
            + self.tcp_retransmission
            + self.tcp_out_of_order
            + self.icmp
            + self.other_ip
            + self.non_ip
            + self.ip_fragment
            + self.ip_fragment_incomplete
            + self.unsupported_link
            + self.malformed.values().sum::<u64>()
    }
}

/// Capture-level facts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureFacts {
    pub files: Vec<FileInfo>,
    pub first_ts: Option<Ts>,
    pub last_ts: Option<Ts>,
    pub accounting: Accounting,
    pub reassembly: ReassemblyStats,
    /// Tables that hit their cap: (table, entries evicted).
    pub limits_hit: Vec<(String, u64)>,
    /// Anomalies by kind (all of them counted; `anomalies` keeps the first few per kind).
    pub anomaly_counts: BTreeMap<String, u64>,
}

/// RTCP seen about one stream (report blocks whose SSRC is the stream's, sent by the far end),
/// plus the stream sender's own SR count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RtcpSummary {
    pub sender_reports: u64,
    /// Report blocks about this stream.
    pub reports: u64,
    pub last_fraction_lost: Option<f64>,
    pub max_fraction_lost: Option<f64>,
    pub last_cumulative_lost: Option<i32>,
    /// Max interarrival jitter reported, ms (using the stream's clock rate).
    pub max_jitter_ms: Option<f64>,
    /// Round-trip times computed from LSR/DLSR, ms.
    pub max_rtt_ms: Option<f64>,
    pub mean_rtt_ms: Option<f64>,
    pub first_frame: Option<FrameRef>,
    pub xr_voip: Option<XrVoip>,
}

/// One RTP stream: 5-tuple + SSRC.
#[derive(Debug, Clone, Serialize)]
pub struct Stream {
    /// Discovery order (the first packet's place in the input): what orders
    /// `Analysis::streams`, and so the report, also across merged files.
    #[serde(skip)]
    pub order: u64,
    pub ssrc: u32,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub first_frame: FrameRef,
    pub last_frame: FrameRef,
    pub first_ts: Ts,
    pub last_ts: Ts,
    pub stats: StreamSummary,
    /// Codec name (SDP rtpmap, else static table); "telephone-event" for DTMF-only streams.
    pub codec: Option<String>,
    pub clock_rate: u32,
    /// Found because SDP announced its address/port (vs the RTP heuristic).
    pub announced: bool,
    /// RTP/SAVP (SRTP) per SDP: analysed at the header level only.
    pub srtp: bool,
    pub dtmf: Vec<DtmfEvent>,
    pub rtcp: Option<RtcpSummary>,
    pub mos: Option<MosEstimate>,
    /// Index into `Analysis::calls`.
    pub call: Option<usize>,
    pub association: Option<Association>,
}

/// Signalling activity from one source address/port (a UA's NAT binding, as the far end
/// sees it): when it spoke, the longest silence, and which keepalives it used.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostActivity {
    pub endpoint: Endpoint,
    pub first_frame: FrameRef,
    pub first_ts: Ts,
    pub last_frame: FrameRef,
    pub last_ts: Ts,
    /// Packets sent from this endpoint: SIP messages and keepalives.
    pub packets: u64,
    /// Longest silence between two consecutive packets from this endpoint, ms.
    pub max_gap_ms: f64,
    /// The frames bracketing that silence.
    pub max_gap_from: Option<FrameRef>,
    pub max_gap_to: Option<FrameRef>,
    pub max_gap_from_ts: Option<Ts>,
    /// Keepalive inventory.
    pub crlf_keepalives: u64,
    pub options: u64,
    pub stun: u64,
    pub notify: u64,
    pub register: u64,
    /// Keepalive intervals seen (seconds): min and max gap between keepalives.
    pub keepalive_min_interval_s: Option<f64>,
    pub keepalive_max_interval_s: Option<f64>,
    pub user_agent: Option<String>,
}

/// A call with the streams attached to it.
#[derive(Debug, Clone)]
pub struct Call {
    pub sip: SipCall,
    /// Indexes into `Analysis::streams`.
    pub streams: Vec<usize>,
}

/// Everything sipscope learned from the capture.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub capture: CaptureFacts,
    pub calls: Vec<Call>,
    pub registrations: Vec<Registration>,
    pub out_of_dialog: Vec<OutOfDialog>,
    pub streams: Vec<Stream>,
    /// Signalling sources, sorted by endpoint.
    pub hosts: Vec<HostActivity>,
    /// Requests by source address, sorted by address: the security rules' input.
    pub sources: Vec<crate::sip::state::sources::SourceRequests>,
    pub sip_stats: SipStats,
    /// The first anomalies of each kind (bounded), for evidence.
    pub anomalies: Vec<Anomaly>,
}

impl Analysis {
    /// The model of one streaming-finalisation unit: `call` (if any) with `streams`
    /// re-indexed to it, the capture's first timestamp, and as its last the unit's last
    /// packet plus [`SETTLE_NS`](super::SETTLE_NS), capped by the capture's end when it is
    /// known: all a call-local rule may read, and what the streaming engine hands out
    /// (`tests/call_local.rs` proves the call-local rules against this very model).
    pub fn unit(
        first_ts: Option<Ts>,
        last_ts: Option<Ts>,
        call: Option<SipCall>,
        mut streams: Vec<Stream>,
    ) -> Analysis {
        let mut end = call.as_ref().map(|c| c.end).unwrap_or_default();
        for s in &streams {
            end = end.max(s.last_ts);
        }
        let clock = Ts(end.0.saturating_add(super::SETTLE_NS));
        let mut calls = Vec::new();
        if let Some(sip) = call {
            for s in &mut streams {
                s.call = Some(0);
            }
            calls.push(Call {
                sip,
                streams: (0..streams.len()).collect(),
            });
        }
        Analysis {
            capture: CaptureFacts {
                first_ts,
                last_ts: Some(last_ts.map_or(clock, |l| l.min(clock))),
                ..CaptureFacts::default()
            },
            calls,
            streams,
            ..Analysis::default()
        }
    }
}
