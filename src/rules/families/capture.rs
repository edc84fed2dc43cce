//! Capture-quality rules: what the capture itself cannot show, so other findings can be
//! read with the right caution.

use super::start_line;
use crate::rules::catalogue::rule;
use crate::rules::{Evidence, Finding, Subject, finding};
use crate::sip::state::MsgKind;
use crate::types::FrameRef;

rule! {
    Truncated {
        id: "capture.truncated",
        severity: Warning,
        title: "Capture file ends in the middle of a record",
        explanation: "The file was cut short (copied while still being written, disk full, or damaged). Everything after the cut is missing, so calls may look unanswered or streams stopped when the capture simply ended.",
        remediation: "Stop the capture cleanly before copying it (tcpdump flushes on SIGINT), or capture with rotation (-C/-G) and send complete files.",
        thresholds: "any truncation",
    } |cx, out, meta| {
        for f in &cx.analysis.capture.files {
            if let Some(t) = &f.truncated {
                out.push(finding(
                    meta,
                    Subject::Capture,
                    format!(
                        "{} is cut short after frame {} (byte {}): {}",
                        f.path, t.after_frame, t.byte_offset, t.detail
                    ),
                    vec![Evidence {
                        frame: None,
                        time: None,
                        what: format!("last complete frame {} of {}", t.after_frame, f.path),
                    }],
                ));
            }
        }
    }
}

rule! {
    SnaplenCut {
        id: "capture.snaplen-cut",
        severity: Warning,
        title: "Packets cut by the capture's snapshot length",
        explanation: "The capture kept only the first bytes of some packets. SIP bodies (SDP) and long headers may be missing, which hides codecs, media addresses and Content-Length problems.",
        remediation: "Capture full packets: tcpdump -s 0 (the default in current versions), or a snaplen of at least 65535.",
        thresholds: "any frame with captured length < original length",
    } |cx, out, meta| {
        for f in &cx.analysis.capture.files {
            if f.snaplen_cut_frames > 0 {
                out.push(finding(
                    meta,
                    Subject::Capture,
                    format!(
                        "{} frames of {} were cut to the snaplen ({} bytes)",
                        f.snaplen_cut_frames, f.path, f.snaplen
                    ),
                    vec![Evidence {
                        frame: None,
                        time: None,
                        what: format!(
                            "snaplen {} bytes; {} frames shorter than on the wire",
                            f.snaplen, f.snaplen_cut_frames
                        ),
                    }],
                ));
            }
        }
    }
}

rule! {
    Drops {
        id: "capture.drops",
        severity: Warning,
        title: "The capturing interface dropped packets",
        explanation: "The capture tool reported (pcapng interface statistics) that packets were dropped before they were written. Loss and missing messages may be capture artefacts, not network problems.",
        remediation: "Capture with a larger buffer (tcpdump -B), a capture filter limited to SIP and RTP, or on a less loaded host.",
        thresholds: "isb_ifdrop > 0",
    } |cx, out, meta| {
        for f in &cx.analysis.capture.files {
            if let Some(d) = f.interface_drops.filter(|d| *d > 0) {
                out.push(finding(
                    meta,
                    Subject::Capture,
                    format!(
                        "{}: the interface dropped {d} packets during the capture",
                        f.path
                    ),
                    vec![Evidence {
                        frame: None,
                        time: None,
                        what: format!("interface statistics: {d} dropped"),
                    }],
                ));
            }
        }
    }
}

rule! {
    OneSided {
        id: "capture.one-sided",
        severity: Info,
        title: "Only one direction of a call's signalling was captured",
        explanation: "Every SIP message of this call travels in one direction. Either the far end never answered, or the capture point sees only one direction (asymmetric routing, a mirror port configured for one direction).",
        remediation: "If the far end did answer, capture where both directions pass (both mirror directions, or on the PBX itself).",
        thresholds: "a call with at least 2 messages, all from the same side",
        aggregate: OneSidedAgg::default(),
    }
}

/// What `capture.one-sided` keeps: per one-sided call only (a call with an answer costs
/// nothing), its place in the capture, its Call-ID, the summary and the one evidence line.
#[derive(Default)]
struct OneSidedAgg {
    calls: Vec<((FrameRef, String), String, Evidence)>,
}

impl crate::rules::Aggregate for OneSidedAgg {
    fn observe(&mut self, cx: &crate::rules::Ctx<'_>, u: &crate::rules::Unit<'_>) {
        let Some(c) = u.call else { return };
        let m = &c.sip.messages;
        let [first, _, ..] = m.as_slice() else {
            return;
        };
        let one_way = m.iter().all(|x| x.src == first.src && x.dst == first.dst);
        let all_requests = m.iter().all(|x| matches!(x.kind, MsgKind::Request { .. }));
        if one_way && all_requests {
            self.calls.push((
                (c.sip.first_frame, c.sip.call_id.clone()),
                format!(
                    "{} SIP messages of call {}, all {} → {}, none back",
                    m.len(),
                    c.sip.call_id,
                    first.src,
                    first.dst
                ),
                cx.ev(first.frame, first.ts, start_line(first)),
            ));
        }
    }

    fn finish(
        mut self: Box<Self>,
        _cx: &crate::rules::Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<Finding>,
    ) {
        // In capture order, as the original loop over the calls.
        self.calls.sort_by(|a, b| a.0.cmp(&b.0));
        for ((_, call_id), summary, ev) in self.calls {
            out.push(finding(meta, Subject::Call { call_id }, summary, vec![ev]));
        }
    }
}

rule! {
    LimitsHit {
        id: "capture.limits-hit",
        severity: Warning,
        title: "A state table hit its cap; the oldest entries were evicted",
        explanation: "sipscope keeps bounded state so hostile or huge captures cannot exhaust memory. A table filled up (a flood, a scan, or a very busy link) and its oldest idle entries were finalised early, so some calls or streams may be split or incomplete.",
        remediation: "Look for floods or scans in the findings; split the capture by time or filter it (e.g. by host) to analyse the legitimate traffic in full.",
        thresholds: "engine caps: see docs/robustness.md",
    } |cx, out, meta| {
        for (table, n) in &cx.analysis.capture.limits_hit {
            out.push(finding(
                meta,
                Subject::Capture,
                format!("the {table} table hit its cap: {n} entries evicted"),
                vec![Evidence {
                    frame: None,
                    time: None,
                    what: format!("{table}: {n} evicted"),
                }],
            ));
        }
    }
}

rule! {
    EncryptedSignalling {
        id: "capture.encrypted-signalling",
        severity: Info,
        title: "Encrypted signalling (SIP over TLS) cannot be analysed",
        explanation: "Frames on the SIP-over-TLS port were counted but not decoded: calls carried over TLS are invisible to this analysis.",
        remediation: "Capture on the PBX where the traffic is in clear, or export the TLS session keys and decrypt with Wireshark before analysing.",
        thresholds: "any frame on a TLS port (default 5061)",
    } |cx, out, meta| {
        let n = cx.analysis.capture.accounting.encrypted;
        if n > 0 {
            out.push(finding(
                meta,
                Subject::Capture,
                format!("{n} frames of encrypted signalling (TLS) not analysed"),
                vec![Evidence {
                    frame: None,
                    time: None,
                    what: format!("{n} frames on TLS ports"),
                }],
            ));
        }
    }
}

rule! {
    Duplicates {
        id: "capture.duplicates",
        severity: Info,
        title: "Packets captured twice (mirror port duplication)",
        explanation: "Many RTP packets appear twice with the same sequence number. That is typical of a SPAN port mirroring both ingress and egress, not of the network: loss figures come out negative.",
        remediation: "Mirror one direction per port, or deduplicate the capture (editcap -d) before analysing.",
        thresholds: "≥ 20 % of a stream's packets are duplicates, stream ≥ 50 packets",
        aggregate: DuplicatesAgg::default(),
    }
}

/// Streams of duplicated packets `capture.duplicates` can cite.
const DUPLICATES_EVIDENCE: usize = 5;

/// A duplicated stream: where it sorts (streams are reported in discovery order), what
/// the summary quotes of it, and its evidence line.
struct DupStream {
    order: u64,
    ssrc: u32,
    duplicates: u64,
    packets: u64,
    ev: Evidence,
}

/// What `capture.duplicates` keeps: the number of duplicated streams and the first
/// `DUPLICATES_EVIDENCE` of them in discovery order (the summary quotes the first, the
/// evidence lists those), so at most five streams' worth whatever the capture.
#[derive(Default)]
struct DuplicatesAgg {
    count: usize,
    first: Vec<DupStream>,
}

impl crate::rules::Aggregate for DuplicatesAgg {
    fn observe(&mut self, cx: &crate::rules::Ctx<'_>, u: &crate::rules::Unit<'_>) {
        for s in u
            .streams
            .iter()
            .filter(|s| s.stats.packets >= 50 && s.stats.duplicates * 5 >= s.stats.packets)
        {
            self.count += 1;
            if self.first.len() == DUPLICATES_EVIDENCE
                && self.first.last().is_some_and(|l| l.order <= s.order)
            {
                continue;
            }
            self.first.push(DupStream {
                order: s.order,
                ssrc: s.ssrc,
                duplicates: s.stats.duplicates,
                packets: s.stats.packets,
                ev: cx.ev(
                    s.first_frame,
                    s.first_ts,
                    format!(
                        "stream 0x{:08X} {} → {}: {} duplicates of {} packets",
                        s.ssrc, s.src, s.dst, s.stats.duplicates, s.stats.packets
                    ),
                ),
            });
            self.first.sort_by_key(|d| d.order);
            self.first.truncate(DUPLICATES_EVIDENCE);
        }
    }

    fn finish(
        self: Box<Self>,
        _cx: &crate::rules::Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<Finding>,
    ) {
        if let Some(s) = self.first.first() {
            out.push(finding(
                meta,
                Subject::Capture,
                format!(
                    "{} streams carry ≥ 20 % duplicate packets (e.g. 0x{:08X}: {} of {})",
                    self.count, s.ssrc, s.duplicates, s.packets
                ),
                self.first.into_iter().map(|d| d.ev).collect(),
            ));
        }
    }
}
