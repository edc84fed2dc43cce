//! sipscope: a passive SIP/RTP analyzer. Captures in; calls, registrations, RTP streams
//! and diagnosed findings (with frame-level evidence) out.
//!
//! The module tree follows the data flow (see `ARCHITECTURE.md`); a module uses only the
//! modules above it in this list.
#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod correlate;
pub mod decode;
pub mod engine;
pub mod report;
pub mod rtp;
pub mod rules;
pub mod sdp;
pub mod sip;
pub mod synth;
pub mod types;
