//! Per-stream RTP statistics with Wireshark's definitions. (Stub: to be implemented.)

use super::RtpHeader;
use crate::types::{FrameRef, Ts};
use serde::Serialize;

/// Running statistics of one RTP stream (5-tuple + SSRC). Small and fixed-size: no
/// per-packet allocation.
#[derive(Debug, Clone)]
pub struct StreamStats {
    pub first_frame: FrameRef,
    pub last_frame: FrameRef,
    pub first_ts: Ts,
    pub last_ts: Ts,
    pub packets: u64,
}

/// Final numbers of a stream, as `tshark -z rtp,streams` prints them plus our counters.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamSummary {
    pub packets: u64,
    pub expected: u64,
    /// expected − received: negative with duplicates.
    pub lost: i64,
    pub lost_pct: f64,
    pub sequence_errors: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub min_delta_ms: f64,
    pub mean_delta_ms: f64,
    pub max_delta_ms: f64,
    /// Frame with the max delta.
    pub max_delta_frame: Option<FrameRef>,
    pub min_jitter_ms: f64,
    pub mean_jitter_ms: f64,
    pub max_jitter_ms: f64,
    /// False when the clock rate is unknown (jitter not computed, as in Wireshark).
    pub jitter_valid: bool,
    /// Wireshark's "Problems?" flag (wrong sequence or wrong timestamp seen).
    pub problems: bool,
    pub marker_packets: u64,
    /// Payload types seen, in order of first appearance.
    pub payload_types: Vec<u8>,
    /// Largest gap in arrival between consecutive packets, ms (for media.stopped).
    pub max_gap_ms: f64,
    pub max_gap_frame: Option<FrameRef>,
    /// Longest run of consecutive lost packets (for qos.burst-loss).
    pub max_burst: u64,
    pub payload_bytes: u64,
}

impl StreamStats {
    /// `clock_rate` in Hz; 0 = unknown (no jitter).
    pub fn new(frame: FrameRef, ts: Ts, clock_rate: u32) -> Self {
        let _ = clock_rate;
        StreamStats {
            first_frame: frame,
            last_frame: frame,
            first_ts: ts,
            last_ts: ts,
            packets: 0,
        }
    }

    /// Account one packet of the stream, in capture order.
    pub fn update(&mut self, frame: FrameRef, arrival: Ts, hdr: &RtpHeader) {
        let _ = hdr;
        self.packets += 1;
        self.last_frame = frame;
        self.last_ts = arrival;
    }

    pub fn summary(&self) -> StreamSummary {
        StreamSummary {
            packets: self.packets,
            expected: 0,
            lost: 0,
            lost_pct: 0.0,
            sequence_errors: 0,
            duplicates: 0,
            out_of_order: 0,
            min_delta_ms: 0.0,
            mean_delta_ms: 0.0,
            max_delta_ms: 0.0,
            max_delta_frame: None,
            min_jitter_ms: 0.0,
            mean_jitter_ms: 0.0,
            max_jitter_ms: 0.0,
            jitter_valid: false,
            problems: false,
            marker_packets: 0,
            payload_types: Vec::new(),
            max_gap_ms: 0.0,
            max_gap_frame: None,
            max_burst: 0,
            payload_bytes: 0,
        }
    }
}
