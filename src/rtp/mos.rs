//! ITU-T G.107 E-model (simplified) → R factor and MOS, with its inputs.
//!
//! Owns the estimate and documents every assumption, because a MOS without its inputs is
//! not checkable:
//! - `R = 93.2 − Id − Ie_eff` (G.107 default Ro − Is = 93.2; advantage factor A = 0).
//! - Delay impairment, G.107 simplified form: `Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)`
//!   with `d` the one-way mouth-to-ear delay in ms, taken as network delay plus a jitter
//!   buffer of 2 × mean jitter. Network delay = RTCP RTT/2 when measured, else a default
//!   of [`DEFAULT_ONE_WAY_MS`] = 20 ms (LAN/metro assumption). Codec/packetisation delay is
//!   not added (it would lower R by ≈ 0.5–1 for 20–40 ms frames).
//! - Effective equipment impairment for random loss (G.107 §7.5, BurstR = 1):
//!   `Ie_eff = Ie + (95 − Ie)·Ppl/(Ppl + Bpl)`, Ppl in percent.
//! - Ie/Bpl from G.113 Appendix I where listed: G.711 Ie 0 with **PLC assumed, Bpl 25.1**
//!   (4.3 without PLC; most current endpoints conceal loss); G.729(A) Ie 11, Bpl 19;
//!   G.723.1 6.3k Ie 15, Bpl 16.1; GSM-EFR Ie 5, Bpl 10; AMR 12.2k Ie 5, Bpl 10.
//!   Approximations (not in Appendix I, narrowband E-model has no wideband scale): G.722
//!   Ie 0, Bpl 20; GSM full rate Ie 20, Bpl 10; iLBC Ie 11, Bpl 32; Speex Ie 11, Bpl 20;
//!   Opus Ie 0, Bpl 30; unknown codecs are rated like G.711 and flagged by `codec_known`.
//! - MOS from R (G.107 Annex B): 1 below R 0, 4.5 above R 100, else
//!   `1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶`.

use serde::{Deserialize, Serialize};

/// One-way network delay assumed when no RTCP round trip was measured, ms.
pub const DEFAULT_ONE_WAY_MS: f64 = 20.0;

/// The E-model's inputs and result, reported together so users can see why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MosEstimate {
    pub codec: String,
    /// Equipment impairment Ie of the codec (G.113 Appendix I).
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub ie: f64,
    /// Packet-loss robustness Bpl (G.113).
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub bpl: f64,
    /// Packet loss used, percent.
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub loss_pct: f64,
    /// One-way delay assumed, ms (network delay from RTCP RTT/2 when known, else a default,
    /// plus jitter buffer = 2 × mean jitter).
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub delay_ms: f64,
    /// Whether delay came from RTCP RTT.
    pub delay_measured: bool,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub r: f64,
    #[serde(deserialize_with = "crate::types::f64_or_nan")]
    pub mos: f64,
}

/// (Ie, Bpl, known) for an encoding name (tshark short names and SDP names alike).
pub fn codec_impairment(codec: &str) -> (f64, f64, bool) {
    let c = codec.to_ascii_lowercase();
    let has = |p: &str| c.starts_with(p);
    if has("pcmu") || has("pcma") || has("g711") {
        (0.0, 25.1, true)
    } else if has("g729") {
        (11.0, 19.0, true)
    } else if has("g722") {
        (0.0, 20.0, true)
    } else if has("g723") {
        (15.0, 16.1, true)
    } else if has("gsm-efr") || has("amr") {
        (5.0, 10.0, true)
    } else if has("gsm") {
        (20.0, 10.0, true)
    } else if has("ilbc") {
        (11.0, 32.0, true)
    } else if has("speex") {
        (11.0, 20.0, true)
    } else if has("opus") {
        (0.0, 30.0, true)
    } else {
        (0.0, 25.1, false)
    }
}

/// G.107 simplified delay impairment.
pub fn delay_impairment(d_ms: f64) -> f64 {
    let d = d_ms.max(0.0);
    0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 }
}

/// G.107 Annex B R → MOS.
pub fn r_to_mos(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// Compute the E-model estimate for `codec` (encoding name) with packet loss `loss_pct`,
/// mean jitter `jitter_ms` and optional measured RTT.
pub fn estimate(codec: &str, loss_pct: f64, jitter_ms: f64, rtt_ms: Option<f64>) -> MosEstimate {
    let (ie, bpl, _) = codec_impairment(codec);
    // Negative loss (duplicates) is no loss; NaN inputs count as 0.
    let ppl = if loss_pct.is_finite() {
        loss_pct.clamp(0.0, 100.0)
    } else {
        0.0
    };
    let jitter = if jitter_ms.is_finite() {
        jitter_ms.max(0.0)
    } else {
        0.0
    };
    let measured = rtt_ms.filter(|r| r.is_finite() && *r >= 0.0);
    let network = measured.map_or(DEFAULT_ONE_WAY_MS, |r| r / 2.0);
    let delay_ms = network + 2.0 * jitter;
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
    let r = 93.2 - delay_impairment(delay_ms) - ie_eff;
    MosEstimate {
        codec: codec.to_string(),
        ie,
        bpl,
        loss_pct: ppl,
        delay_ms,
        delay_measured: measured.is_some(),
        r,
        mos: r_to_mos(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_clean_is_about_4_4() {
        let e = estimate("PCMU", 0.0, 0.0, None);
        assert!((e.delay_ms - 20.0).abs() < 1e-9);
        assert!((e.r - (93.2 - 0.48)).abs() < 1e-9);
        assert!((e.mos - 4.40).abs() < 0.01, "{}", e.mos);
        assert!(!e.delay_measured);
    }

    #[test]
    fn loss_and_codec() {
        // G.711 (PLC) 5 %: Ie_eff = 95·5/30.1
        let e = estimate("g711A", 5.0, 0.0, None);
        assert!((e.r - (93.2 - 0.48 - 95.0 * 5.0 / 30.1)).abs() < 1e-9);
        // G.729 1 %: Ie_eff = 11 + 84/20
        let g = estimate("G729", 1.0, 0.0, None);
        assert!((g.r - (93.2 - 0.48 - 15.2)).abs() < 1e-9);
        assert!(g.mos < estimate("G729", 0.0, 0.0, None).mos);
        // Negative loss (duplicates) counts as none.
        assert_eq!(
            estimate("PCMU", -1.0, 0.0, None).r,
            estimate("PCMU", 0.0, 0.0, None).r
        );
    }

    #[test]
    fn delay_terms() {
        let e = estimate("PCMU", 0.0, 10.0, Some(400.0));
        assert!(e.delay_measured);
        assert!((e.delay_ms - 220.0).abs() < 1e-9);
        let id = 0.024 * 220.0 + 0.11 * (220.0 - 177.3);
        assert!((e.r - (93.2 - id)).abs() < 1e-9);
        assert_eq!(r_to_mos(-5.0), 1.0);
        assert_eq!(r_to_mos(120.0), 4.5);
        assert!(r_to_mos(50.0) > 2.5 && r_to_mos(50.0) < 2.7);
        assert!(
            estimate("x", f64::NAN, f64::NAN, Some(f64::NAN))
                .mos
                .is_finite()
        );
    }
}
