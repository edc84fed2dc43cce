//! The only place that knows about threads and the order of work: read batches (its own
//! thread; gzip inflation has another), decode, reassemble, classify each datagram (SIP,
//! RTP, RTCP, STUN, other), feed the single-owner state (SIP state, media streams),
//! expire state on the capture clock, and at end of input build the immutable
//! [`Analysis`] (correlation, rules).
//!
//! Determinism: all state is keyed and finally sorted by frame numbers, never by hash
//! order or thread timing, so `--threads 1` and `--threads N` give identical output.

mod finalise;
mod media;
mod pipeline;

pub use finalise::{SETTLE_NS, Sink, TICK_NS};
pub use pipeline::{
    EngineError, Progress, analyze_paths, analyze_paths_streamed, analyze_source,
    analyze_source_streamed,
};

use crate::decode::ReassemblyLimits;
use crate::sip::state::SipLimits;

/// Engine configuration (caps, timers, classification switches).
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Frames per batch handed from the reader thread.
    pub batch_frames: usize,
    pub reassembly: ReassemblyLimits,
    pub sip: SipLimits,
    /// RTP/RTCP stream table cap (oldest idle evicted and counted beyond it).
    pub max_streams: usize,
    /// A stream with no packet for this long is finalised (capture clock).
    pub stream_idle_timeout_ms: i64,
    /// Use the RTP/RTCP heuristic for UDP not announced in SDP (as tshark's
    /// `-o rtp.heuristic_rtp:TRUE`).
    pub heuristic_rtp: bool,
    /// TCP/UDP ports whose traffic is encrypted signalling (SIP over TLS/DTLS).
    pub tls_ports: Vec<u16>,
    /// Kept anomalies per kind (all are counted).
    pub anomalies_per_kind: usize,
    /// With more than one thread: which thread decodes a batch. The output never depends
    /// on it; tests pin it to cover both paths.
    pub decode_on: DecodeOn,
}

/// Where the two-stage pipeline decodes a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeOn {
    /// The reader thread, unless the analysis thread is waiting for work (then it decodes
    /// the batch itself): the two threads balance whichever is the busier.
    Balanced,
    /// Always the reader thread.
    Reader,
    /// Always the analysis thread.
    Analysis,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: 0,
            batch_frames: 4096,
            reassembly: ReassemblyLimits::default(),
            sip: SipLimits::default(),
            max_streams: 200_000,
            stream_idle_timeout_ms: 3600 * 1000,
            heuristic_rtp: true,
            tls_ports: vec![5061],
            anomalies_per_kind: 20,
            decode_on: DecodeOn::Balanced,
        }
    }
}
