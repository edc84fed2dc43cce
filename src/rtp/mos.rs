//! ITU-T G.107 E-model (simplified) → R factor and MOS, with its inputs. (Stub.)

use serde::Serialize;

/// The E-model's inputs and result, reported together so users can see why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MosEstimate {
    pub codec: String,
    /// Equipment impairment Ie of the codec (G.113 Appendix I).
    pub ie: f64,
    /// Packet-loss robustness Bpl (G.113).
    pub bpl: f64,
    /// Packet loss used, percent.
    pub loss_pct: f64,
    /// One-way delay assumed, ms (network delay from RTCP RTT/2 when known, else a default,
    /// plus jitter buffer = 2 × mean jitter).
    pub delay_ms: f64,
    /// Whether delay came from RTCP RTT.
    pub delay_measured: bool,
    pub r: f64,
    pub mos: f64,
}

/// Compute the E-model estimate for `codec` (encoding name) with packet loss `loss_pct`,
/// mean jitter `jitter_ms` and optional measured RTT.
pub fn estimate(codec: &str, loss_pct: f64, jitter_ms: f64, rtt_ms: Option<f64>) -> MosEstimate {
    let _ = (loss_pct, jitter_ms, rtt_ms);
    MosEstimate {
        codec: codec.to_string(),
        ie: 0.0,
        bpl: 0.0,
        loss_pct: 0.0,
        delay_ms: 0.0,
        delay_measured: false,
        r: 0.0,
        mos: 0.0,
    }
}
