//! RTP fixed header view and the RTP/RTCP heuristics. (Stub: to be implemented.)

/// The RTP fixed header (RFC 3550 §5.1), validated against the datagram length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub version: u8,
    pub padding: bool,
    pub extension: bool,
    pub csrc_count: u8,
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload after CSRCs and extension.
    pub payload_offset: usize,
    /// Payload length without padding.
    pub payload_len: usize,
}

/// Parse an RTP header; `None` if too short or not version 2, or if CSRC/extension/padding
/// lengths overrun the datagram.
pub fn parse_rtp(data: &[u8]) -> Option<RtpHeader> {
    let _ = data;
    None
}

/// Would Wireshark's `rtp_udp` heuristic (`-o rtp.heuristic_rtp:TRUE`) take this UDP
/// payload for RTP?
pub fn looks_like_rtp(data: &[u8]) -> bool {
    let _ = data;
    false
}

/// Would Wireshark's RTCP heuristic take this UDP payload for RTCP?
pub fn looks_like_rtcp(data: &[u8]) -> bool {
    let _ = data;
    false
}
