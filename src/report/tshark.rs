//! tshark-compatible renderings (`-z rtp,streams`, `-z sip,stat`), so users can diff
//! sipscope against Wireshark line by line. Stream rows are printed in discovery order
//! (tshark prints reverse discovery order; sort both before diffing).

use super::Report;
use crate::sip::codes;
use std::fmt::Write;

/// `tshark -q -z rtp,streams` layout (tshark 4.0 columns).
pub fn render_rtp_streams(r: &Report) -> String {
    let mut o = String::new();
    o.push_str("========================= RTP Streams ========================\n");
    let _ = writeln!(
        o,
        "{:>13} {:>13} {:>15} {:>5} {:>15} {:>5} {:>10} {:>16} {:>5} {:>12} {:>15} {:>15} {:>15} {:>15} {:>15} {:>15} Problems?",
        "Start time",
        "End time",
        "Src IP addr",
        "Port",
        "Dest IP addr",
        "Port",
        "SSRC",
        "Payload",
        "Pkts",
        "Lost",
        "Min Delta(ms)",
        "Mean Delta(ms)",
        "Max Delta(ms)",
        "Min Jitter(ms)",
        "Mean Jitter(ms)",
        "Max Jitter(ms)"
    );
    for s in &r.streams {
        let (sip, sport) = split_ep(&s.src);
        let (dip, dport) = split_ep(&s.dst);
        let payload = s.codec.clone().unwrap_or_else(|| {
            s.payload_types
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",")
        });
        let _ = writeln!(
            o,
            "{:13.6} {:13.6} {:>15} {:>5} {:>15} {:>5} {} {:>16} {:>5} {:>5} ({:.1}%) {:15.3} {:15.3} {:15.3} {:15.3} {:15.3} {:15.3} {}",
            s.start,
            s.end,
            sip,
            sport,
            dip,
            dport,
            s.ssrc,
            payload,
            s.packets,
            s.lost,
            s.lost_pct,
            s.min_delta_ms.unwrap_or(-1.0),
            s.mean_delta_ms,
            s.max_delta_ms,
            s.min_jitter_ms.unwrap_or(-1.0),
            s.mean_jitter_ms,
            s.max_jitter_ms,
            if s.problems { "X" } else { "" }
        );
    }
    o.push_str("==============================================================\n");
    o
}

fn split_ep(s: &str) -> (String, String) {
    match s.rsplit_once(':') {
        Some((ip, port)) => (
            ip.trim_start_matches('[').trim_end_matches(']').to_string(),
            port.to_string(),
        ),
        None => (s.to_string(), String::new()),
    }
}

/// `tshark -q -z sip,stat` layout (canonical reason phrases, as tshark prints them).
pub fn render_sip_stat(r: &Report) -> String {
    let st = &r.sip_stats;
    let mut o = String::new();
    o.push_str(
        "===================================================================\nSIP Statistics\n\n",
    );
    let _ = writeln!(o, "Number of SIP messages: {}", st.messages);
    let _ = writeln!(o, "Number of resent SIP messages: {}", st.resent);
    o.push_str("\n* SIP Status Codes in reply packets\n");
    for (code, n) in &st.responses {
        // Codes are already bucketed as tshark buckets them; print tshark's phrase too.
        let phrase = codes::sipstat_phrase(*code)
            .map(|(_, p)| p)
            .unwrap_or("Unknown");
        let _ = writeln!(o, "  SIP {:3} {:<15} : {:5} Packets", code, phrase, n);
    }
    o.push_str("\n* List of SIP Request methods\n");
    for (m, n) in &st.requests {
        let _ = writeln!(o, "  {:<15} : {:5} Packets", m, n);
    }
    let (avg, min, max) = st
        .setup_time_ms
        .map(|s| (s.avg, s.min, s.max))
        .unwrap_or((0.0, 0.0, 0.0));
    let _ = writeln!(
        o,
        "\n* Average setup time {} ms\n Min {} ms\n Max {} ms",
        avg.round(),
        min.round(),
        max.round()
    );
    o.push_str("===================================================================\n");
    o
}
