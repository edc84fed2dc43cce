//! Quality rules on measured stream statistics and RTCP reports.

use super::stream_subject;
use crate::rules::catalogue::rule;
use crate::rules::{Evidence, finding};

rule! {
    Loss {
        id: "qos.loss",
        severity: Warning,
        title: "Packet loss above the threshold",
        explanation: "RTP packets of this stream never arrived (sequence numbers missing). Above about 1 % G.711 without concealment sounds choppy; above 5 % speech becomes hard to follow.",
        remediation: "Find where the loss happens (capture closer to the sender), check link saturation, Wi-Fi, QoS marking of RTP.",
        thresholds: "loss_pct (1 %) on streams with ≥ 50 packets",
        call_local: true,
    } |cx, out, meta| {
        for s in &cx.analysis.streams {
            if s.stats.packets < 50 || s.stats.lost_pct <= cx.thresholds.loss_pct {
                continue;
            }
            out.push(finding(
                meta,
                stream_subject(s),
                format!(
                    "{} of {} packets lost ({:.1} % > {:.1} %)",
                    s.stats.lost, s.stats.expected, s.stats.lost_pct, cx.thresholds.loss_pct
                ),
                vec![cx.ev(
                    s.first_frame,
                    s.first_ts,
                    format!(
                        "RTP {} → {}: expected {}, received {}, {} sequence errors",
                        s.src, s.dst, s.stats.expected, s.stats.packets, s.stats.sequence_errors
                    ),
                )],
            ));
        }
    }
}

rule! {
    Jitter {
        id: "qos.jitter",
        severity: Warning,
        title: "Jitter above the threshold",
        explanation: "Packets arrive with irregular spacing. Beyond what the receiver's jitter buffer absorbs, late packets are discarded and speech breaks up.",
        remediation: "Prioritise RTP (DSCP EF), avoid congested or wireless links, increase the jitter buffer.",
        thresholds: "jitter_ms (30 ms) max RFC 3550 jitter; audio streams only (video is bursty by design)",
        call_local: true,
    } |cx, out, meta| {
        for s in &cx.analysis.streams {
            if super::media::is_video(cx, s) || !s.stats.jitter_valid || s.stats.max_jitter_ms <= cx.thresholds.jitter_ms {
                continue;
            }
            out.push(finding(
                meta,
                stream_subject(s),
                format!(
                    "max jitter {:.1} ms (> {:.0} ms), mean {:.1} ms",
                    s.stats.max_jitter_ms, cx.thresholds.jitter_ms, s.stats.mean_jitter_ms
                ),
                vec![Evidence {
                    frame: s.stats.max_delta_frame,
                    time: None,
                    what: format!("max delta {:.1} ms at this frame", s.stats.max_delta_ms),
                }],
            ));
        }
    }
}

rule! {
    Mos {
        id: "qos.mos",
        severity: Warning,
        title: "Estimated MOS below the threshold",
        explanation: "The E-model (ITU-T G.107) estimate from codec, loss, jitter and delay predicts poor perceived quality. The inputs are in the evidence so you can see which one drags it down.",
        remediation: "Address the dominant impairment: loss (network), jitter (QoS), or a low-bit-rate codec.",
        thresholds: "mos (3.6); audio streams with ≥ 50 packets",
        call_local: true,
    } |cx, out, meta| {
        for s in &cx.analysis.streams {
            let Some(m) = &s.mos else { continue };
            if super::media::is_video(cx, s) || s.stats.packets < 50 || m.mos >= cx.thresholds.mos {
                continue;
            }
            out.push(finding(
                meta,
                stream_subject(s),
                format!(
                    "MOS {:.2} (< {:.1}): R {:.1}",
                    m.mos, cx.thresholds.mos, m.r
                ),
                vec![Evidence {
                    frame: Some(s.first_frame),
                    time: None,
                    what: format!(
                        "codec {} (Ie {:.0}, Bpl {:.1}), loss {:.1} %, delay {:.0} ms{}",
                        m.codec,
                        m.ie,
                        m.bpl,
                        m.loss_pct,
                        m.delay_ms,
                        if m.delay_measured {
                            " (RTCP)"
                        } else {
                            " (assumed)"
                        }
                    ),
                }],
            ));
        }
    }
}

rule! {
    RtcpReported {
        id: "qos.rtcp-reported",
        severity: Warning,
        title: "The far end reports loss or delay (RTCP)",
        explanation: "RTCP receiver reports from the other side say it lost packets, or the round-trip time computed from LSR/DLSR is high: quality is bad where the media arrives, even if this capture point sees clean media.",
        remediation: "Capture at the far end or along the path; check the downstream link's loss and latency.",
        thresholds: "rtcp_fraction_lost (5 %) or rtt_ms (400 ms)",
        call_local: true,
    } |cx, out, meta| {
        for s in &cx.analysis.streams {
            let Some(r) = &s.rtcp else { continue };
            let fl = r.max_fraction_lost.unwrap_or(0.0);
            let rtt = r.max_rtt_ms.unwrap_or(0.0);
            if fl <= cx.thresholds.rtcp_fraction_lost && rtt <= cx.thresholds.rtt_ms {
                continue;
            }
            out.push(finding(
                meta,
                stream_subject(s),
                format!(
                    "receiver reports {:.1} % lost (max), RTT up to {:.0} ms",
                    fl * 100.0,
                    rtt
                ),
                vec![Evidence {
                    frame: r.first_frame,
                    time: None,
                    what: format!(
                        "{} report blocks; cumulative lost {:?}; max jitter {:?} ms",
                        r.reports,
                        r.last_cumulative_lost,
                        r.max_jitter_ms.map(|j| (j * 10.0).round() / 10.0)
                    ),
                }],
            ));
        }
    }
}

rule! {
    BurstLoss {
        id: "qos.burst-loss",
        severity: Warning,
        title: "Burst of consecutive lost packets",
        explanation: "Several consecutive packets went missing at once: a short outage (Wi-Fi roaming, route change, buffer overflow) that users hear as a dropout, worse than the same loss spread out.",
        remediation: "Look at the network at the time of the burst; check Wi-Fi and links for short outages.",
        thresholds: "burst_packets (5) consecutive losses",
        call_local: true,
    } |cx, out, meta| {
        for s in &cx.analysis.streams {
            if s.stats.max_burst < cx.thresholds.burst_packets {
                continue;
            }
            out.push(finding(
                meta,
                stream_subject(s),
                format!(
                    "{} consecutive packets lost (≥ {})",
                    s.stats.max_burst, cx.thresholds.burst_packets
                ),
                vec![cx.ev(
                    s.first_frame,
                    s.first_ts,
                    format!(
                        "RTP {} → {}: longest loss burst {} packets",
                        s.src, s.dst, s.stats.max_burst
                    ),
                )],
            ));
        }
    }
}
