//! Payload type → codec name and clock rate, as Wireshark names them. (Stub.)

/// Wireshark's short payload-type name for static types ("g711U", "g711A", "g729", ...).
pub fn static_name(pt: u8) -> Option<&'static str> {
    let _ = pt;
    None
}

/// Clock rate used for jitter: static table, else the SDP rtpmap rate (`sdp_rate`), else
/// Wireshark's MIME table by encoding name; 0 = unknown (no jitter computed).
/// telephone-event always gives 0, as in Wireshark.
pub fn clock_rate(pt: u8, encoding: Option<&str>, sdp_rate: Option<u32>) -> u32 {
    let _ = (pt, encoding, sdp_rate);
    0
}
