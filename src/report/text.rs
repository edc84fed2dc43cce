//! The human report: capture summary, calls (like Wireshark's VoIP Calls), registrations,
//! RTP streams (tshark's rtp,streams columns plus codec, MOS and call), findings grouped by
//! severity. Fits a 100-column terminal; colour only when asked (on a terminal). All text
//! that came from the capture passes through `sanitize_text`.

use super::Report;
use super::model::StreamOut;
use crate::types::sanitize_text as clean;
use std::fmt::Write;

fn trunc(s: &str, n: usize) -> String {
    let s = clean(s);
    if s.chars().count() <= n {
        s
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn link_name(l: u32) -> String {
    match l {
        0 => "NULL".into(),
        1 => "Ethernet".into(),
        9 => "PPP".into(),
        12 | 14 | 101 => "Raw IP".into(),
        51 => "PPPoE".into(),
        108 => "Loopback".into(),
        113 => "Linux SLL".into(),
        228 => "Raw IPv4".into(),
        229 => "Raw IPv6".into(),
        276 => "Linux SLL2".into(),
        n => format!("linktype {n}"),
    }
}

fn sev_label(sev: crate::rules::Severity, color: bool) -> String {
    let (s, c) = match sev {
        crate::rules::Severity::Error => ("ERROR", "31"),
        crate::rules::Severity::Warning => ("WARNING", "33"),
        crate::rules::Severity::Info => ("INFO", "36"),
    };
    if color {
        format!("\x1b[1;{c}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn stream_line(o: &mut String, i: usize, s: &StreamOut) {
    let codec = match s.codec.as_deref() {
        Some("telephone-event") => "DTMF".to_string(),
        Some(c) => c.to_string(),
        None => format!("PT {:?}", s.payload_types),
    };
    let mos = s
        .mos
        .as_ref()
        .map(|m| format!("{:.2}", m.mos))
        .unwrap_or_else(|| "-".into());
    let jit = if s.jitter_valid {
        format!("{:.1}/{:.1}", s.mean_jitter_ms, s.max_jitter_ms)
    } else {
        "-".into()
    };
    let _ = writeln!(
        o,
        "  {:<2} {:<21} {:<21} {:<8} {:>6} {:>5} {:>5.1}% {:>6.1} {:>9} {:>4}",
        i,
        trunc(&s.src, 21),
        trunc(&s.dst, 21),
        trunc(&codec, 8),
        s.packets,
        s.lost,
        s.lost_pct,
        s.max_delta_ms,
        jit,
        mos
    );
}

/// Report width in columns.
const WIDTH: usize = 100;

/// Word-wrap one line to [`WIDTH`] columns (counted in characters; ANSI colour codes do
/// not count), continuation lines indented 4 more than the original.
fn wrap_line(line: &str, out: &mut String) {
    let visible = |s: &str| {
        let mut n = 0;
        let mut esc = false;
        for c in s.chars() {
            if esc {
                esc = c != 'm';
            } else if c == '\x1b' {
                esc = true;
            } else {
                n += 1;
            }
        }
        n
    };
    if visible(line) <= WIDTH {
        out.push_str(line);
        out.push('\n');
        return;
    }
    let indent = line.len() - line.trim_start().len();
    let pad = " ".repeat((indent + 4).min(40));
    let mut cur = String::from(&line[..indent]);
    let mut first = true;
    for word in line.trim_start().split(' ') {
        let cur_len = visible(&cur);
        let start = if first { indent } else { pad.len() };
        if cur_len > start && cur_len + 1 + visible(word) > WIDTH {
            out.push_str(cur.trim_end());
            out.push('\n');
            cur = pad.clone();
            first = false;
        }
        if visible(&cur) > (if first { indent } else { pad.len() }) {
            cur.push(' ');
        }
        // A single word longer than the line is cut.
        if visible(word) > WIDTH - pad.len() {
            let w: String = word.chars().take(WIDTH - pad.len() - 1).collect();
            cur.push_str(&w);
            cur.push('…');
        } else {
            cur.push_str(word);
        }
    }
    out.push_str(cur.trim_end());
    out.push('\n');
}

/// Render the text report (every line fits [`WIDTH`] columns).
pub fn render_text(r: &Report, color: bool) -> String {
    let raw = render_unwrapped(r, color);
    let mut out = String::with_capacity(raw.len() + 64);
    for l in raw.lines() {
        wrap_line(l, &mut out);
    }
    out
}

fn render_unwrapped(r: &Report, color: bool) -> String {
    let mut o = String::new();
    let c = &r.capture;
    let _ = writeln!(o, "== Capture ==");
    for f in &c.files {
        let links: Vec<String> = f.link_types.iter().map(|l| link_name(*l)).collect();
        let _ = writeln!(
            o,
            "  {}: {}{}, {} frames, {}",
            clean(&f.path),
            f.format,
            if f.gzip { " (gzip)" } else { "" },
            f.frames,
            links.join(", ")
        );
        if let Some(t) = &f.truncated {
            let _ = writeln!(
                o,
                "    cut short after frame {} (byte {}): {}",
                t.after_frame,
                t.byte_offset,
                clean(&t.detail)
            );
        }
        if f.snaplen_cut_frames > 0 {
            let _ = writeln!(
                o,
                "    {} frames cut by the snaplen ({} bytes)",
                f.snaplen_cut_frames, f.snaplen
            );
        }
        if let Some(d) = f.interface_drops.filter(|d| *d > 0) {
            let _ = writeln!(o, "    the capturing interface dropped {d} packets");
        }
    }
    let a = &c.accounting;
    let _ = writeln!(o, "  {} frames over {:.3} s", c.frames, c.duration_s);
    let mut parts = vec![
        ("SIP", a.sip),
        ("SIP keepalive", a.sip_keepalive),
        ("RTP", a.rtp),
        ("RTCP", a.rtcp),
        ("STUN", a.stun),
        ("encrypted signalling", a.encrypted),
        ("other UDP", a.other_udp),
        ("other TCP", a.other_tcp),
        ("TCP control", a.tcp_control),
        ("TCP retransmission", a.tcp_retransmission),
        ("TCP out of order", a.tcp_out_of_order),
        ("ICMP", a.icmp),
        ("other IP", a.other_ip),
        ("non-IP", a.non_ip),
        ("IP fragment", a.ip_fragment),
        ("incomplete fragment", a.ip_fragment_incomplete),
        ("unsupported link", a.unsupported_link),
    ];
    let malformed: u64 = a.malformed.values().sum();
    parts.push(("malformed", malformed));
    let line: Vec<String> = parts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(o, "  {}", line.join(", "));
    if a.encrypted > 0 {
        let _ = writeln!(
            o,
            "  {} frames of encrypted signalling (TLS): not analyzable",
            a.encrypted
        );
    }
    if !c.anomaly_counts.is_empty() {
        let an: Vec<String> = c
            .anomaly_counts
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        let _ = writeln!(o, "  anomalies: {}", an.join(", "));
    }
    for (t, n) in &c.limits_hit {
        let _ = writeln!(o, "  limit hit: {t} table evicted {n} entries");
    }

    let _ = writeln!(o, "\n== Calls ({}) ==", r.calls.len());
    if !r.calls.is_empty() {
        let _ = writeln!(
            o,
            "  {:<3} {:>9} {:>9} {:<16} {:<16} {:<10} {:<14} {:>8} {:>4}",
            "#", "Start", "Stop", "From", "To", "State", "Final", "Duration", "Pkts"
        );
    }
    for (i, call) in r.calls.iter().enumerate() {
        let fin = match (call.final_code, &call.final_reason) {
            (Some(code), Some(reason)) => format!("{code} {reason}"),
            (Some(code), None) => code.to_string(),
            _ => "-".into(),
        };
        let dur = call
            .duration_s
            .map(|d| {
                let d = d.max(0.0) as u64;
                format!("{:02}:{:02}:{:02}", d / 3600, (d / 60) % 60, d % 60)
            })
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "  {:<3} {:>9.3} {:>9.3} {:<16} {:<16} {:<10} {:<14} {:>8} {:>4}",
            i,
            call.start,
            call.end,
            trunc(call.from.trim_start_matches("sip:"), 16),
            trunc(call.to.trim_start_matches("sip:"), 16),
            call.state,
            trunc(&fin, 14),
            dur,
            call.packets
        );
        let _ = writeln!(
            o,
            "      call-id {}  {} → {} ({}){}",
            trunc(&call.call_id, 40),
            call.caller,
            call.callee,
            call.transport,
            if call.streams.is_empty() {
                String::new()
            } else {
                format!(
                    "  streams {}",
                    call.streams
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        );
    }

    let _ = writeln!(o, "\n== Registrations ({}) ==", r.registrations.len());
    for reg in &r.registrations {
        let last = reg.attempts.last();
        let _ = writeln!(
            o,
            "  {:<40} {:<12} attempts {:>3}  last {}\n      contact {}",
            trunc(&reg.aor, 40),
            format!("{:?}", reg.state).to_lowercase(),
            reg.attempts.len(),
            last.map(|l| match (l.response_code, &l.response_reason) {
                (Some(c), Some(rsn)) => format!("{c} {}", trunc(rsn, 24)),
                _ => "no response".into(),
            })
            .unwrap_or_default(),
            trunc(&reg.contact, 90)
        );
        if let Some(act) = &reg.activity {
            let _ = writeln!(
                o,
                "      from {}: keepalives CRLF {}, OPTIONS {}, STUN {}, NOTIFY {}; longest silence {:.0} s",
                act.endpoint,
                act.crlf_keepalives,
                act.options,
                act.stun,
                act.notify,
                act.longest_silence_s
            );
        }
    }
    if !r.out_of_dialog.is_empty() {
        let mut by: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for x in &r.out_of_dialog {
            let e = by.entry(x.method.clone()).or_default();
            e.0 += 1;
            if x.response_code.is_none() {
                e.1 += 1;
            }
        }
        let parts: Vec<String> = by
            .iter()
            .map(|(m, (n, un))| format!("{} {n} ({un} unanswered)", clean(m)))
            .collect();
        let _ = writeln!(o, "  out-of-dialog requests: {}", parts.join(", "));
    }

    let _ = writeln!(o, "\n== RTP streams ({}) ==", r.streams.len());
    if !r.streams.is_empty() {
        let _ = writeln!(
            o,
            "  {:<2} {:<21} {:<21} {:<8} {:>6} {:>5} {:>6} {:>6} {:>9} {:>4}",
            "#",
            "Source",
            "Destination",
            "Codec",
            "Pkts",
            "Lost",
            "Lost%",
            "MaxΔms",
            "Jitter ms",
            "MOS"
        );
    }
    for (i, s) in r.streams.iter().enumerate() {
        stream_line(&mut o, i, s);
        let call = match (&s.call_id, s.association) {
            (Some(id), Some(a)) => format!(
                "call {} ({})",
                trunc(id, 40),
                format!("{a:?}").to_lowercase()
            ),
            _ => "no call (orphan)".into(),
        };
        let dtmf = if s.dtmf.is_empty() {
            String::new()
        } else {
            format!(
                "  DTMF {}",
                s.dtmf
                    .iter()
                    .map(|d| clean(&d.digit))
                    .collect::<Vec<_>>()
                    .join("")
            )
        };
        let _ = writeln!(
            o,
            "      SSRC {}  frames {}–{}  {}{}{}",
            s.ssrc,
            s.first_frame,
            s.last_frame,
            call,
            dtmf,
            if s.problems {
                "  sequence problems"
            } else {
                ""
            }
        );
    }

    let _ = writeln!(o, "\n== Findings ({}) ==", r.findings.len());
    if r.findings.is_empty() {
        let _ = writeln!(o, "  none");
    }
    // Grouped by severity (worst first), then by rule; within a rule, by subject. The
    // explanation and fix are printed once per rule; long lists are cut (JSON has all).
    const PER_RULE: usize = 5;
    for sev in [
        crate::rules::Severity::Error,
        crate::rules::Severity::Warning,
        crate::rules::Severity::Info,
    ] {
        let mut rules_here: Vec<&'static str> = Vec::new();
        for f in r.findings.iter().filter(|f| f.severity == sev) {
            if !rules_here.contains(&f.rule) {
                rules_here.push(f.rule);
            }
        }
        for rule in rules_here {
            let list: Vec<_> = r
                .findings
                .iter()
                .filter(|f| f.severity == sev && f.rule == rule)
                .collect();
            let title = crate::rules::registry()
                .iter()
                .find(|x| x.meta().id == rule)
                .map(|x| x.meta().title)
                .unwrap_or("");
            let _ = writeln!(
                o,
                "  {} [{rule}] {title} ({})",
                sev_label(sev, color),
                list.len()
            );
            for f in list.iter().take(PER_RULE) {
                let _ = writeln!(o, "    • {}", clean(&f.summary));
                for e in f.evidence.iter().take(8) {
                    let fr = e.frame.map(|f| format!("frame {f}")).unwrap_or_default();
                    let t = e.time.map(|t| format!(" @{t:.3}s")).unwrap_or_default();
                    let sep = if fr.is_empty() && t.is_empty() {
                        ""
                    } else {
                        ": "
                    };
                    let _ = writeln!(o, "        {fr}{t}{sep}{}", trunc(&e.what, 400));
                }
                if f.evidence.len() > 8 {
                    let _ = writeln!(o, "        … {} more", f.evidence.len() - 8);
                }
            }
            if list.len() > PER_RULE {
                let _ = writeln!(
                    o,
                    "    … and {} more (all of them in --format json)",
                    list.len() - PER_RULE
                );
            }
            if let Some(f) = list.first() {
                let _ = writeln!(o, "    why: {}", f.explanation);
                let _ = writeln!(o, "    fix: {}", f.remediation);
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_with_hanging_indent() {
        let mut o = String::new();
        let line = format!("  {}", "word ".repeat(40));
        wrap_line(&line, &mut o);
        let lines: Vec<&str> = o.lines().collect();
        assert!(lines.len() >= 2);
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH));
        assert!(lines[1].starts_with("      word"));
        let mut o = String::new();
        wrap_line(&format!("  {}", "x".repeat(300)), &mut o);
        assert!(o.lines().all(|l| l.chars().count() <= WIDTH), "{o}");
        let mut o = String::new();
        wrap_line("short", &mut o);
        assert_eq!(o, "short\n");
    }
}
