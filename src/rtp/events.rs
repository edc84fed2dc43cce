//! RFC 4733 telephone-event (DTMF) decoding. (Stub: to be implemented.)

use crate::types::{FrameRef, Ts};
use serde::Serialize;

/// One digit/event as sent (end-of-event retransmissions folded into one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DtmfEvent {
    /// "0"-"9", "*", "#", "A"-"D", "flash", or "event N".
    pub digit: String,
    pub frame: FrameRef,
    pub ts: Ts,
    /// Duration field of the end packet, in ms at the stream's clock (8000 Hz when unknown).
    pub duration_ms: f64,
    pub volume: u8,
    /// An end-of-event packet was seen.
    pub ended: bool,
}

/// Collects events of one telephone-event stream.
#[derive(Debug, Clone, Default)]
pub struct EventTracker {
    pub events: Vec<DtmfEvent>,
}

impl EventTracker {
    /// Feed one telephone-event payload with its RTP timestamp (events are keyed by it).
    pub fn update(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        rtp_timestamp: u32,
        payload: &[u8],
        clock_rate: u32,
    ) {
        let _ = (frame, ts, rtp_timestamp, payload, clock_rate);
    }
}
