//! SIP signalling rules: failed and unanswered calls, missing ACKs, retransmissions,
//! slow setup, timer-shaped drops, misrouted in-dialog requests, malformed and oversized
//! messages, session timers.

use super::{call_subject, fmt_s, header_line, start_line};
use crate::rules::catalogue::rule;
use crate::rules::{Evidence, Severity, Subject, finding};
use crate::sip::state::{CallState, MsgKind, MsgRecord};
use crate::sip::wire::{HeaderName, Method, uri_host_port};
use crate::types::{FrameRef, Transport, Ts};
use std::collections::BTreeMap;
use std::net::IpAddr;

fn is_response(m: &MsgRecord, code_class: u16) -> bool {
    matches!(m.kind, MsgKind::Response { code, .. } if code / 100 == code_class)
}

fn is_invite_response(m: &MsgRecord) -> bool {
    matches!(m.kind, MsgKind::Response { .. })
        && m.cseq.as_ref().is_some_and(|c| c.method == Method::Invite)
}

fn is_request(m: &MsgRecord, method: &Method) -> bool {
    matches!(&m.kind, MsgKind::Request { method: x, .. } if x == method)
}

/// Calls failing the same way toward the same peer are reported as one finding from this
/// many on (a load test or a misconfigured trunk fails every call identically; a thousand
/// identical findings hide everything else).
const CLUSTER_MIN: usize = 5;
/// Calls of a cluster whose messages are kept as evidence.
const CLUSTER_EVIDENCE: usize = 3;

rule! {
    CallFailed {
        id: "sip.call-failed",
        severity: Warning,
        title: "Call rejected with a 4xx/5xx/6xx final response",
        explanation: "The call ended with a final error response. The code says which class of problem it is; the reason phrase, as the provider wrote it, usually names the real cause (no credit, wrong number format, codec mismatch, private IP address...). Busy and declined answers are a callee's choice, not a fault, and are reported as info. When many calls fail with the same code and reason from the same peer, they are reported once for that peer, with the count.",
        remediation: "Read the reason phrase and the meaning beside it: fix the number format, credentials, codec list or account as it indicates; for 5xx retry later or ask the provider.",
        thresholds: "state REJECTED with final code ≥ 400 (486, 600, 603 as info; 5xx as error); ≥ 5 calls with the same (peer, code, reason) become one finding per peer",
        aggregate: CallFailedAgg::default(),
    }
}

/// What `sip.call-failed` keeps of a rejected call: its place in the capture, what the
/// finding names, and its evidence in both forms (a cluster quotes the first call in
/// full, the next ones short).
struct Rejected {
    key: (crate::types::FrameRef, String),
    subject: Subject,
    to_uri: String,
    full: Vec<Evidence>,
    short: Vec<Evidence>,
}

/// Rejected calls by (peer that answered, code, reason).
#[derive(Default)]
struct CallFailedAgg {
    groups: BTreeMap<(String, u16, String), Vec<Rejected>>,
}

impl crate::rules::Aggregate for CallFailedAgg {
    fn observe(&mut self, cx: &crate::rules::Ctx<'_>, u: &crate::rules::Unit<'_>) {
        let Some(c) = u.call else { return };
        let s = &c.sip;
        let Some(code) = s.final_code.filter(|c| *c >= 400) else {
            return;
        };
        if s.state != CallState::Rejected {
            return;
        }
        let reason = s.final_reason.clone().unwrap_or_default();
        let last_response = s
            .messages
            .iter()
            .rev()
            .find(|m| matches!(m.kind, MsgKind::Response { code: x, .. } if x == code));
        let peer = last_response
            .map(|m| m.src.ip.to_string())
            .unwrap_or_else(|| s.callee.ip.to_string());
        let evidence_of = |full: bool| {
            let mut ev = Vec::new();
            if let Some(inv) = s.messages.iter().find(|m| is_request(m, &Method::Invite)) {
                ev.push(cx.ev(inv.frame, inv.ts, start_line(inv)));
            }
            if let Some(r) = last_response {
                ev.push(cx.ev(r.frame, r.ts, start_line(r)));
                if full {
                    if let Some(l) = header_line(r, HeaderName::Reason) {
                        ev.push(cx.ev(r.frame, r.ts, l));
                    }
                    if let Some(l) = header_line(r, HeaderName::Server) {
                        ev.push(cx.ev(r.frame, r.ts, l));
                    }
                }
            }
            ev
        };
        self.groups
            .entry((peer, code, reason))
            .or_default()
            .push(Rejected {
                key: (s.first_frame, s.call_id.clone()),
                subject: call_subject(c),
                to_uri: s.to.uri.clone(),
                full: evidence_of(true),
                short: evidence_of(false),
            });
    }

    fn finish(
        self: Box<Self>,
        _cx: &crate::rules::Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<crate::rules::Finding>,
    ) {
        for ((peer, code, reason), mut calls) in self.groups {
            calls.sort_by(|a, b| a.key.cmp(&b.key));
            let meaning = crate::sip::codes::lookup(code)
                .map(|c| c.meaning)
                .unwrap_or("unregistered response code");
            let severity = if matches!(code, 486 | 600 | 603) {
                Severity::Info
            } else if code >= 500 {
                Severity::Error
            } else {
                Severity::Warning
            };
            if calls.len() >= CLUSTER_MIN {
                let mut ev = Vec::new();
                for (i, c) in calls.iter().take(CLUSTER_EVIDENCE).enumerate() {
                    ev.extend_from_slice(if i == 0 { &c.full } else { &c.short });
                }
                ev.push(Evidence {
                    frame: None,
                    time: None,
                    what: format!(
                        "{} calls rejected by {peer} with {code} {reason}; first Call-IDs: {}",
                        calls.len(),
                        calls
                            .iter()
                            .take(CLUSTER_EVIDENCE)
                            .map(|c| c.key.1.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
                ev.push(Evidence {
                    frame: None,
                    time: None,
                    what: format!("{code} means: {meaning}"),
                });
                let mut f = finding(
                    meta,
                    Subject::Host {
                        address: peer.clone(),
                    },
                    format!("{} calls rejected by {peer}: {code} {reason}", calls.len()),
                    ev,
                );
                f.severity = severity;
                out.push(f);
                continue;
            }
            for c in calls {
                let mut ev = c.full;
                ev.push(Evidence {
                    frame: None,
                    time: None,
                    what: format!("{code} means: {meaning}"),
                });
                let mut f = finding(
                    meta,
                    c.subject,
                    format!("call to {} rejected: {code} {reason}", c.to_uri),
                    ev,
                );
                f.severity = severity;
                out.push(f);
            }
        }
    }
}

rule! {
    InviteUnanswered {
        id: "sip.invite-unanswered",
        severity: Error,
        title: "INVITE retransmitted without any response",
        explanation: "The INVITE was sent again and again (RFC 3261 Timer A) and nothing came back, not even 100 Trying. The far end never received it, or its answers never made it back: a wrong address or port, a firewall, or a NAT binding that expired so the router dropped the packets.",
        remediation: "Check the destination address and port, the firewall rules for the provider's ranges, and (for inbound calls) the phone's NAT keepalive and registration interval.",
        thresholds: "no response to an INVITE that was retransmitted at least twice, or not answered for 32 s (Timer B = 64·T1)",
        aggregate: InviteUnansweredAgg::default(),
    }
}

/// An INVITE transaction of a call that got no response at all, rendered but for how long
/// it waited: that is measured to the capture's last timestamp, known only at the end.
struct Unanswered {
    first_ts: Ts,
    retransmissions: u32,
    summary: String,
    /// The INVITE, and its last retransmission when there is one.
    evidence: Vec<Evidence>,
}

/// What `sip.invite-unanswered` keeps: per call with an INVITE that got no response (a
/// call whose INVITEs were all answered costs nothing), its place in the capture and each
/// such transaction pre-rendered. A transaction retransmitted fewer than twice may still
/// fire (after 32 s without answer), so every unanswered one is kept until the end.
#[derive(Default)]
struct InviteUnansweredAgg {
    calls: Vec<((FrameRef, String), Vec<Unanswered>)>,
}

impl crate::rules::Aggregate for InviteUnansweredAgg {
    fn observe(&mut self, cx: &crate::rules::Ctx<'_>, u: &crate::rules::Unit<'_>) {
        let Some(c) = u.call else { return };
        let mut kept = Vec::new();
        for t in c
            .sip
            .transactions
            .iter()
            .filter(|t| t.method == Method::Invite && t.responses.is_empty())
        {
            let span = t.last_request_ts.secs_since(t.first_ts);
            let mut evidence = vec![cx.ev(
                t.first_frame,
                t.first_ts,
                format!("INVITE {} → {} (CSeq {})", t.src, t.dst, t.cseq),
            )];
            if let Some(m) = c.sip.messages.iter().rev().find(|m| {
                is_request(m, &Method::Invite)
                    && m.cseq.as_ref().is_some_and(|x| x.seq == t.cseq)
                    && m.retransmission
            }) {
                evidence.push(cx.ev(
                    m.frame,
                    m.ts,
                    format!("last retransmission, {} after the first", fmt_s(span)),
                ));
            }
            kept.push(Unanswered {
                first_ts: t.first_ts,
                retransmissions: t.retransmissions,
                summary: format!(
                    "INVITE to {} retransmitted {} times over {}, no response",
                    t.dst,
                    t.retransmissions,
                    fmt_s(span)
                ),
                evidence,
            });
        }
        if !kept.is_empty() {
            self.calls
                .push(((c.sip.first_frame, c.sip.call_id.clone()), kept));
        }
    }

    fn finish(
        mut self: Box<Self>,
        cx: &crate::rules::Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<crate::rules::Finding>,
    ) {
        let last = cx.analysis.capture.last_ts.unwrap_or_default();
        // Calls in capture order, transactions in each call's order, as the original loop.
        self.calls.sort_by(|a, b| a.0.cmp(&b.0));
        for ((_, call_id), kept) in self.calls {
            for t in kept {
                let waited = last.secs_since(t.first_ts);
                if t.retransmissions < 2 && waited < 32.0 {
                    continue;
                }
                let mut ev = t.evidence;
                ev.push(Evidence {
                    frame: None,
                    time: None,
                    what: format!(
                        "{} retransmissions, no response within {}",
                        t.retransmissions,
                        fmt_s(waited)
                    ),
                });
                out.push(finding(
                    meta,
                    Subject::Call {
                        call_id: call_id.clone(),
                    },
                    t.summary,
                    ev,
                ));
            }
        }
    }
}

rule! {
    AckMissing {
        id: "sip.ack-missing",
        severity: Error,
        title: "2xx to INVITE retransmitted without an ACK",
        explanation: "The callee answered and kept retransmitting its 200 OK because no ACK reached it. After 64·T1 (32 s) it gives up and sends BYE: the call drops about 32 seconds after answer. Typical causes: the ACK is sent to the wrong address (Contact/Record-Route behind NAT, a SIP ALG rewriting it) or blocked by a firewall. A BYE after the retransmissions does not prove the ACK arrived (RFC 3261 §13.3.1.4).",
        remediation: "Make sure the caller sends the ACK to the 2xx's Contact (or Record-Route) and that it reaches the callee: fix NAT (rport, public Contact), disable the router's SIP ALG.",
        thresholds: "a 2xx to INVITE seen more than once and no ACK for it",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            let s = &c.sip;
            let oks: Vec<&MsgRecord> = s
                .messages
                .iter()
                .filter(|m| is_invite_response(m) && is_response(m, 2))
                .collect();
            if oks.len() < 2 || !oks.iter().any(|m| m.retransmission) {
                continue;
            }
            let acked = s
                .messages
                .iter()
                .any(|m| is_request(m, &Method::Ack) && m.ts >= oks[0].ts);
            if acked {
                continue;
            }
            let span = oks[oks.len() - 1].ts.secs_since(oks[0].ts);
            let mut ev = vec![cx.ev(oks[0].frame, oks[0].ts, start_line(oks[0]))];
            if let Some(l) = header_line(oks[0], HeaderName::Contact) {
                ev.push(cx.ev(oks[0].frame, oks[0].ts, format!("ACK should go to {l}")));
            }
            let lastok = oks[oks.len() - 1];
            ev.push(cx.ev(
                lastok.frame,
                lastok.ts,
                format!(
                    "{} copies of the 2xx over {}, no ACK seen",
                    oks.len(),
                    fmt_s(span)
                ),
            ));
            let mut summary = format!(
                "200 OK retransmitted {} times over {} without ACK",
                oks.len() - 1,
                fmt_s(span)
            );
            if let Some(b) = &s.bye {
                let after = b.ts.secs_since(oks[0].ts);
                ev.push(cx.ev(b.frame, b.ts, format!("BYE {} after answer", fmt_s(after))));
                summary.push_str(&format!("; BYE {} after answer", fmt_s(after)));
            }
            out.push(finding(meta, call_subject(c), summary, ev));
        }
    }
}

rule! {
    Retransmissions {
        id: "sip.retransmissions",
        severity: Warning,
        title: "Signalling loss: many requests to one peer were retransmitted",
        explanation: "A share of the requests sent to this peer had to be retransmitted. Over UDP that means requests or their responses were lost, or the peer answers slowly: signalling loss also loses calls.",
        remediation: "Check the path to the peer for packet loss (and the peer's load); consider TCP for signalling if the loss is on the access link.",
        thresholds: "retransmissions ≥ retransmission_min (3) and ≥ retransmission_ratio (10 %) of request copies",
        aggregate: RetransmissionsAgg::default(),
    }
}

/// Requests over UDP to one peer, of `sip.retransmissions`.
#[derive(Default)]
struct PeerRequests {
    total: u64,
    retransmitted: u64,
    /// The first retransmission in capture order (the earliest call by report order, the
    /// first in that call's messages): that call's key and the rendered evidence.
    first: Option<((FrameRef, String), Evidence)>,
}

/// What `sip.retransmissions` keeps: per peer (request destination) two counters and the
/// evidence of its first retransmission. Nothing per call, so it is bounded by the peers.
#[derive(Default)]
struct RetransmissionsAgg {
    by_peer: BTreeMap<String, PeerRequests>,
}

impl crate::rules::Aggregate for RetransmissionsAgg {
    fn observe(&mut self, cx: &crate::rules::Ctx<'_>, u: &crate::rules::Unit<'_>) {
        let Some(c) = u.call else { return };
        let key = (c.sip.first_frame, c.sip.call_id.as_str());
        for m in
            c.sip.messages.iter().filter(|m| {
                matches!(m.kind, MsgKind::Request { .. }) && m.transport == Transport::Udp
            })
        {
            let e = self.by_peer.entry(m.dst.to_string()).or_default();
            e.total += 1;
            if m.retransmission {
                e.retransmitted += 1;
                // Strictly earlier only: within one call the first message seen stays.
                if e.first
                    .as_ref()
                    .is_none_or(|((f, id), _)| key < (*f, id.as_str()))
                {
                    e.first = Some((
                        (key.0, key.1.to_string()),
                        cx.ev(
                            m.frame,
                            m.ts,
                            format!("first retransmission: {}", start_line(m)),
                        ),
                    ));
                }
            }
        }
    }

    fn finish(
        self: Box<Self>,
        cx: &crate::rules::Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<crate::rules::Finding>,
    ) {
        for (peer, p) in self.by_peer {
            let (total, re) = (p.total, p.retransmitted);
            let ratio = re as f64 / total.max(1) as f64;
            if re >= cx.thresholds.retransmission_min && ratio >= cx.thresholds.retransmission_ratio
            {
                let mut ev = vec![Evidence {
                    frame: None,
                    time: None,
                    what: format!(
                        "{re} of {total} requests to {peer} were retransmissions ({:.0} % ≥ {:.0} %)",
                        ratio * 100.0,
                        cx.thresholds.retransmission_ratio * 100.0
                    ),
                }];
                if let Some((_, first)) = p.first {
                    ev.push(first);
                }
                out.push(finding(
                    meta,
                    Subject::Host {
                        address: peer.clone(),
                    },
                    format!(
                        "{re} of {total} SIP requests to {peer} retransmitted ({:.0} %)",
                        ratio * 100.0
                    ),
                    ev,
                ));
            }
        }
    }
}

rule! {
    SlowSetup {
        id: "sip.slow-setup",
        severity: Warning,
        title: "Post-dial delay over the threshold",
        explanation: "The caller waited long between sending the INVITE and hearing anything back (ringing or a final answer). Slow DNS or routing at the provider, failover through several gateways, or retransmissions after loss all show up as post-dial delay.",
        remediation: "Look at what happened during the delay: retransmissions point at loss, 100 Trying without 180 points at the provider's routing.",
        thresholds: "post_dial_delay_ms (5000 ms)",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            // Post-dial delay is the wait for ringback or answer; a call that only failed is
            // reported by sip.call-failed / sip.invite-unanswered instead.
            if c.sip.ringing_ts.is_none() && c.sip.answer_ts.is_none() {
                continue;
            }
            let Some(pdd) = c.sip.post_dial_delay_ms() else {
                continue;
            };
            if pdd <= cx.thresholds.post_dial_delay_ms {
                continue;
            }
            let mut ev = Vec::new();
            if let Some(i) = c.sip.messages.first() {
                ev.push(cx.ev(i.frame, i.ts, start_line(i)));
            }
            if let Some(r) = c.sip.messages.iter().find(|m| {
                is_invite_response(m) && matches!(m.kind, MsgKind::Response { code, .. } if (180..300).contains(&code))
            }) {
                ev.push(cx.ev(
                    r.frame,
                    r.ts,
                    format!(
                        "{} ({pdd:.0} ms > {:.0} ms)",
                        start_line(r),
                        cx.thresholds.post_dial_delay_ms
                    ),
                ));
            }
            out.push(finding(
                meta,
                call_subject(c),
                format!("post-dial delay {:.1} s", pdd / 1000.0),
                ev,
            ));
        }
    }
}

rule! {
    TimerDrop {
        id: "sip.timer-drop",
        severity: Warning,
        title: "Call ended at a timer signature (32 s without ACK, Session-Expires)",
        explanation: "A callee whose 2xx is never acknowledged gives up after 64·T1 (32 s) and sends BYE (RFC 3261 §13.3.1.4): the call drops 32 s after answer. That signature needs the callee to hang up and the 2xx to be retransmitted or never ACKed; a caller hanging up at 32 s is a person. Calls ending at the negotiated Session-Expires lacked a session refresh. Several calls ending the same way confirm a systematic cause.",
        remediation: "For 32 s drops: see sip.ack-missing (NAT, SIP ALG, Contact). For Session-Expires drops: make the refresher send re-INVITE/UPDATE, or disable session timers on one side.",
        thresholds: "BYE from the callee 31–34 s after answer with the 2xx retransmitted or no ACK seen; or BYE within 2 s of the Session-Expires of the 2xx with no refresh",
        call_local: true,
    } |cx, out, meta| {
        let mut hits = Vec::new();
        for c in &cx.analysis.calls {
            let s = &c.sip;
            let (Some(a), Some(b)) = (s.answer_ts, s.bye.as_ref()) else {
                continue;
            };
            let d = b.ts.secs_since(a);
            let oks: Vec<&MsgRecord> = s
                .messages
                .iter()
                .filter(|m| is_invite_response(m) && is_response(m, 2))
                .collect();
            let se = oks
                .iter()
                .find_map(|m| m.msg.session_expires().map(|(v, _)| (v, *m)));
            let ok_resent = oks.iter().any(|m| m.retransmission);
            let acked = s.ack_ts.is_some()
                || s.messages.iter().any(|m| is_request(m, &Method::Ack) && m.ts >= a);
            let refreshed = s.messages.iter().any(|x| {
                x.ts > a
                    && x.ts < b.ts
                    && (is_request(x, &Method::Update) || is_request(x, &Method::Invite))
                    && !x.retransmission
            });
            let sig = if (31.0..=34.0).contains(&d) && !b.by_caller && (ok_resent || !acked) {
                Some(format!(
                    "32 s (64·T1: {})",
                    if acked {
                        "2xx retransmitted"
                    } else {
                        "no ACK seen"
                    }
                ))
            } else if let Some((v, _)) =
                se.filter(|(v, _)| !refreshed && (d - *v as f64).abs() <= 2.0)
            {
                Some(format!("Session-Expires {v} s"))
            } else {
                None
            };
            if let Some(sig) = sig {
                hits.push((c, d, sig, b, se.map(|(_, m)| m), oks.first().copied()));
            }
        }
        let n = hits.len();
        for (c, d, sig, b, se_msg, first_ok) in hits {
            let mut ev = Vec::new();
            if let Some(m) = first_ok {
                ev.push(cx.ev(m.frame, m.ts, start_line(m)));
            }
            let who = if b.by_caller { "caller" } else { "callee" };
            ev.push(cx.ev(b.frame, b.ts, format!("BYE from the {who} {} after answer", fmt_s(d))));
            if let Some(m) = se_msg
                && let Some(l) = header_line(m, HeaderName::SessionExpires)
            {
                ev.push(cx.ev(m.frame, m.ts, l));
            }
            let cluster = if n > 1 {
                format!(" ({n} calls in this capture end the same way)")
            } else {
                String::new()
            };
            out.push(finding(
                meta,
                call_subject(c),
                format!("call ended {} after answer: {sig}{cluster}", fmt_s(d)),
                ev,
            ));
        }
    }
}

fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

rule! {
    InDialogMisroute {
        id: "sip.in-dialog-misroute",
        severity: Warning,
        title: "In-dialog request sent somewhere other than the remote target",
        explanation: "Without a Record-Route, requests inside a dialog (ACK, BYE, re-INVITE) must go to the address in the other side's Contact. This one went elsewhere, so the other side may never see it: the call is not confirmed, cannot be hung up, or re-INVITEs fail.",
        remediation: "Fix the UA or proxy that routes in-dialog requests (it should honour Contact/Record-Route), or the device that rewrites Contact (SIP ALG).",
        thresholds: "routable IP Contact in the 2xx, no Record-Route, in-dialog request to another IP",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            let s = &c.sip;
            let Some(ok) = s
                .messages
                .iter()
                .find(|m| is_invite_response(m) && is_response(m, 2))
            else {
                continue;
            };
            if ok.msg.header(HeaderName::RecordRoute).is_some() {
                continue;
            }
            let Some(target) = ok.msg.contacts().into_iter().next() else {
                continue;
            };
            let Some(tip) = uri_host_port(&target.uri).and_then(|(h, _)| ip_literal(h)) else {
                continue;
            };
            if crate::types::is_unroutable(&tip) {
                continue;
            }
            // Requests from the side that received the 2xx, after it.
            if let Some(bad) = s.messages.iter().find(|m| {
            m.ts >= ok.ts
                && matches!(&m.kind, MsgKind::Request { method, .. } if *method == Method::Ack || *method == Method::Bye || *method == Method::Invite)
                && m.src.ip == ok.dst.ip
                && m.dst.ip != tip
                && m.dst.ip != ok.src.ip
        }) {
            let mut ev = vec![];
            if let Some(l) = header_line(ok, HeaderName::Contact) {
                ev.push(cx.ev(ok.frame, ok.ts, l));
            }
            ev.push(cx.ev(bad.frame, bad.ts, start_line(bad)));
            out.push(finding(meta, call_subject(c), format!("{} sent to {} but the remote target is {}", bad.msg.text(&bad.msg.start_line), bad.dst.ip, tip), ev));
        }
        }
    }
}

/// Parser anomalies worth a finding (cosmetic ones like folding are not).
const MALFORMED: &[&str] = &[
    "sip.content_length_mismatch",
    "sip.body_truncated",
    "sip.bad_content_length",
    "sip.missing_header",
    "sip.bad_start_line",
    "sip.bad_header_line",
    "sip.bad_cseq",
    "sip.too_many_headers",
];

rule! {
    Malformed {
        id: "sip.malformed",
        severity: Warning,
        title: "Malformed SIP messages",
        explanation: "Messages that break the SIP grammar: a Content-Length that does not match the body (a classic sign of a SIP ALG rewriting the body), missing mandatory headers, unreadable start lines. Strict peers drop such messages, which looks like loss.",
        remediation: "Find the device that produces them (the frames name source and destination); disable SIP ALG on routers in the path; report the UA's bug to its vendor.",
        thresholds: "parser anomalies: Content-Length mismatch, truncated body, missing mandatory header, bad start/header line",
    } |cx, out, meta| {
        let counts = &cx.analysis.capture.anomaly_counts;
        for kind in MALFORMED {
            let Some(n) = counts.get(*kind).copied().filter(|n| *n > 0) else {
                continue;
            };
            let ev: Vec<Evidence> = cx
                .analysis
                .anomalies
                .iter()
                .filter(|a| a.kind == *kind)
                .take(5)
                .map(|a| Evidence {
                    frame: Some(a.frame),
                    time: None,
                    what: a.detail.clone(),
                })
                .collect();
            out.push(finding(
                meta,
                Subject::Capture,
                format!(
                    "{n} SIP messages with {}",
                    kind.trim_start_matches("sip.").replace('_', " ")
                ),
                ev,
            ));
        }
    }
}

rule! {
    OversizeUdp {
        id: "sip.oversize-udp",
        severity: Warning,
        title: "SIP over UDP too large (IP fragmentation)",
        explanation: "SIP messages over UDP larger than about 1300 bytes get fragmented on the way (RFC 3261 §18.1.1 asks for TCP above the path MTU minus 200 bytes). Fragments are often dropped by firewalls and NATs, so large INVITEs (many codecs, long SDP) silently disappear.",
        remediation: "Trim the codec list and headers, or use TCP for signalling; make sure firewalls pass IP fragments.",
        thresholds: "udp_sip_bytes (1300) or carried in IP fragments",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            let big: Vec<&MsgRecord> = c
                .sip
                .messages
                .iter()
                .filter(|m| {
                    m.transport == Transport::Udp
                        && (m.fragmented || m.size as usize > cx.thresholds.udp_sip_bytes)
                })
                .collect();
            let Some(first) = big.first() else { continue };
            let max = big.iter().map(|m| m.size).max().unwrap_or(0);
            let ev = big
                .iter()
                .take(3)
                .map(|m| {
                    cx.ev(
                        m.frame,
                        m.ts,
                        format!(
                            "{} bytes{}: {}",
                            m.size,
                            if m.fragmented { ", IP-fragmented" } else { "" },
                            start_line(m)
                        ),
                    )
                })
                .collect();
            out.push(finding(
                meta,
                call_subject(c),
                format!(
                    "{} SIP messages over UDP above {} bytes (largest {max}, first frame {})",
                    big.len(),
                    cx.thresholds.udp_sip_bytes,
                    first.frame
                ),
                ev,
            ));
        }
    }
}

rule! {
    SessionTimer {
        id: "sip.session-timer",
        severity: Warning,
        title: "Session timer trouble (422, or no refresh before Session-Expires)",
        explanation: "RFC 4028 session timers end a call that is not refreshed within Session-Expires. A 422 Session Interval Too Small rejects a call whose interval is below the peer's Min-SE; a call that outlives its Session-Expires without re-INVITE/UPDATE will be torn down.",
        remediation: "Align Session-Expires/Min-SE between the peers, and make sure the refresher really sends the refresh.",
        thresholds: "any 422; or an answered call longer than its Session-Expires without refresh",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            let s = &c.sip;
            if let Some(r) = s
                .messages
                .iter()
                .find(|m| matches!(m.kind, MsgKind::Response { code: 422, .. }))
            {
                let mut ev = vec![cx.ev(r.frame, r.ts, start_line(r))];
                if let Some(l) = r
                    .msg
                    .header(HeaderName::MinSE)
                    .map(|h| r.msg.text(&h.line).to_string())
                {
                    ev.push(cx.ev(r.frame, r.ts, l));
                }
                out.push(finding(
                    meta,
                    call_subject(c),
                    "422 Session Interval Too Small".to_string(),
                    ev,
                ));
                continue;
            }
            let Some(a) = s.answer_ts else { continue };
            let Some((se, m)) = s
                .messages
                .iter()
                .filter(|m| is_invite_response(m) && is_response(m, 2))
                .find_map(|m| m.msg.session_expires().map(|(v, _)| (v, m)))
            else {
                continue;
            };
            let end = s.bye.as_ref().map(|b| b.ts).unwrap_or(s.end);
            let lasted = end.secs_since(a);
            let refreshed = s.messages.iter().any(|x| {
                x.ts > a
                    && (is_request(x, &Method::Update) || is_request(x, &Method::Invite))
                    && !x.retransmission
            });
            if lasted > se as f64 + 2.0 && !refreshed {
                let mut ev = vec![];
                if let Some(l) = header_line(m, HeaderName::SessionExpires) {
                    ev.push(cx.ev(m.frame, m.ts, l));
                }
                ev.push(Evidence {
                    frame: None,
                    time: None,
                    what: format!(
                        "call lasted {} after answer, no re-INVITE/UPDATE",
                        fmt_s(lasted)
                    ),
                });
                out.push(finding(
                    meta,
                    call_subject(c),
                    format!(
                        "no session refresh within Session-Expires {se} s (call lasted {})",
                        fmt_s(lasted)
                    ),
                    ev,
                ));
            }
        }
    }
}
