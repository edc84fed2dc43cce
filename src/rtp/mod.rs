//! RTP and RTCP: zero-copy header views (length checked once, then no accessor can
//! panic), the RTP heuristic, per-stream statistics with Wireshark's definitions
//! (`../shared/research/wireshark-reference.md` §1–2), RTCP SR/RR/SDES/BYE/XR, RFC 4733
//! telephone-events, and the ITU-T G.107 E-model MOS with its inputs.
//!
//! Hand-written rather than a crate: the statistics must reproduce Wireshark's exact
//! arithmetic (extended timestamps, the first-packet sequence start, the delta/jitter
//! exclusions), which no crate does.

pub mod codec;
pub mod events;
pub mod header;
pub mod mos;
pub mod rtcp;
pub mod stats;

#[cfg(test)]
#[allow(
    clippy::type_complexity,
    clippy::collapsible_if,
    clippy::manual_div_ceil
)]
mod tshark_check;

pub use header::{
    RtpHeader, looks_like_rtcp, looks_like_rtcp_udp, looks_like_rtp, parse_rtp, parse_rtp_lenient,
};
pub use stats::{ExtendedTimestamp, StreamStats, StreamSummary};
