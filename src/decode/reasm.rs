//! IP fragment and TCP stream reassembly, capped and timed out on capture time.
//! (Stub: to be implemented.)

use super::{Datagram, Decoded, Held, ReassemblyStats};
use crate::types::{FrameRef, Ts};

/// Caps and timeouts for the reassembly tables.
#[derive(Debug, Clone, Copy)]
pub struct ReassemblyLimits {
    pub max_fragment_packets: usize,
    pub fragment_timeout_ms: i64,
    pub max_tcp_streams: usize,
    /// Per direction: bytes buffered out of order before the stream skips ahead (gap).
    pub max_tcp_buffer: usize,
    pub tcp_idle_timeout_ms: i64,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_fragment_packets: 4096,
            fragment_timeout_ms: 30_000,
            max_tcp_streams: 16_384,
            max_tcp_buffer: 256 * 1024,
            tcp_idle_timeout_ms: 600_000,
        }
    }
}

/// Owns fragment buffers and TCP stream state.
pub struct Reassembler {
    stats: ReassemblyStats,
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Self {
        let _ = limits;
        Reassembler {
            stats: ReassemblyStats::default(),
        }
    }

    /// Feed one decoded frame. Every datagram it completes is passed to `out` (zero, one,
    /// or several: a TCP segment that fills a hole releases the buffered ones after it).
    /// Returns what happened to the frame when it produced nothing.
    pub fn push(
        &mut self,
        frame: FrameRef,
        ts: Ts,
        decoded: Decoded<'_>,
        out: &mut dyn FnMut(Datagram<'_>),
    ) -> Option<Held> {
        let _ = (frame, ts, decoded, out);
        None
    }

    /// Expire state idle since before `now` (capture clock).
    pub fn expire(&mut self, now: Ts) {
        let _ = now;
    }

    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }
}
