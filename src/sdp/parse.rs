//! The SDP line parser. (Stub: to be implemented.)

use super::Sdp;

/// Parse an SDP body. Never fails; problems go to [`Sdp::anomalies`].
pub fn parse(body: &[u8]) -> Sdp {
    let _ = body;
    Sdp::default()
}
