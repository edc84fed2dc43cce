//! NAT and SIP-ALG rules: private addresses leaking into SIP/SDP, translated media ports,
//! media sent where it cannot arrive, early media lost before latching, NAT rebinding,
//! and signs of in-flight rewriting by a router's SIP ALG.

use super::{call_subject, header_line, start_line, stream_subject};
use crate::correlate::{Call, Stream, sdp_endpoints};
use crate::rules::catalogue::rule;
use crate::rules::{Evidence, Subject, finding};
use crate::sip::state::{MsgKind, SdpRef};
use crate::sip::wire::{HeaderName, uri_host_port};
use crate::types::{Endpoint, is_unroutable};
use std::net::IpAddr;

fn refs(c: &Call) -> impl Iterator<Item = &SdpRef> {
    c.sip
        .sdp
        .iter()
        .flat_map(|ex| std::iter::once(&ex.offer).chain(ex.answer.iter()))
}

fn ip_of(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

rule! {
    PrivateSdp {
        id: "nat.private-sdp",
        severity: Warning,
        title: "Private address in SDP sent from a public address",
        explanation: "The SDP announces a private (RFC 1918/6598) or link-local media address, but the packet left from a public address: a NAT is in between and nothing fixed the SDP. The far end will send its audio to an address it cannot reach (one-way audio), unless it latches onto the observed source. Some providers reject such SDP outright (488 Private IP Address).",
        remediation: "Configure the phone/PBX with its public address (externip/external_media_address) or STUN, or let the provider do media latching (comedia); disable SIP ALG if it half-rewrites.",
        thresholds: "c= or o= address unroutable, packet source routable",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            for r in refs(c) {
                if is_unroutable(&r.src.ip) {
                    continue;
                }
                let conn = r
                    .sdp
                    .audio()
                    .and_then(|m| r.sdp.media_connection(m))
                    .or(r.sdp.connection.as_ref());
                let Some(cl) = conn.filter(|c| c.ip.is_some_and(|ip| is_unroutable(&ip))) else {
                    continue;
                };
                let mut ev = vec![cx.ev(
                    r.frame,
                    r.ts,
                    format!("SDP in {} from {}: {}", r.carried_in, r.src, cl.line),
                )];
                if let Some(o) = &r.sdp.origin {
                    ev.push(cx.ev(r.frame, r.ts, o.line.clone()));
                }
                out.push(finding(
                    meta,
                    call_subject(c),
                    format!(
                        "SDP in {} announces private {} but was sent from public {}",
                        r.carried_in, cl.addr, r.src.ip
                    ),
                    ev,
                ));
                break;
            }
        }
    }
}

rule! {
    PrivateContact {
        id: "nat.private-contact",
        severity: Warning,
        title: "Private address in Contact/Via without rport from a public address",
        explanation: "A request left a NAT with a private address in Contact and Via and without the rport parameter, so responses and later requests are routed to an address nobody can reach, unless the server applies its own NAT handling (received/rport, force_rport).",
        remediation: "Enable rport/NAT traversal on the UA (or STUN/outbound proxy), or configure the server to treat the peer as NATed (nat=force_rport,comedia).",
        thresholds: "Contact host unroutable, packet source routable, top Via without rport",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            let hit = c.sip.messages.iter().find(|m| {
                matches!(m.kind, MsgKind::Request { .. })
                    && !is_unroutable(&m.src.ip)
                    && m.msg
                        .contacts()
                        .first()
                        .and_then(|n| uri_host_port(&n.uri).and_then(|(h, _)| ip_of(h)))
                        .is_some_and(|ip| is_unroutable(&ip))
                    && m.msg.vias().first().is_some_and(|v| {
                        v.rport.is_none() && ip_of(&v.host).is_some_and(|ip| is_unroutable(&ip))
                    })
            });
            if let Some(m) = hit {
                let mut ev = vec![cx.ev(m.frame, m.ts, start_line(m))];
                for k in [HeaderName::Contact, HeaderName::Via] {
                    if let Some(l) = header_line(m, k) {
                        ev.push(cx.ev(m.frame, m.ts, l));
                    }
                }
                out.push(finding(
                    meta,
                    call_subject(c),
                    format!(
                        "{} sent from public {} with a private Contact and Via (no rport)",
                        m.msg.text(&m.msg.start_line),
                        m.src.ip
                    ),
                    ev,
                ));
            }
        }
    }
}

/// The endpoints the side that sends `s` announced (it is the side whose SDP did *not*
/// name `s.dst`), with the SDP line that says so.
fn sender_announced<'a>(c: &'a Call, s: &Stream) -> Vec<(Endpoint, &'a SdpRef)> {
    let receiver_is_caller = refs(c)
        .find(|r| sdp_endpoints(&r.sdp).contains(&s.dst))
        .map(|r| r.from_caller);
    let Some(rc) = receiver_is_caller else {
        return Vec::new();
    };
    refs(c)
        .filter(|r| r.from_caller != rc)
        .flat_map(|r| sdp_endpoints(&r.sdp).into_iter().map(move |e| (e, r)))
        .collect()
}

rule! {
    MediaPortTranslated {
        id: "nat.media-port-translated",
        severity: Info,
        title: "Media arrives from another address/port than its SDP announced",
        explanation: "The sender announced one address and port for its media but its RTP comes from another: a NAT translated it. A far end that sends back to the announced address instead of the observed source (no latching) produces one-way audio.",
        remediation: "Make sure the far end uses symmetric RTP / latching (comedia), or give the phone its public address and a forwarded RTP port range.",
        thresholds: "stream source ≠ every endpoint its sender's SDP announced",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            for &si in &c.streams {
                let Some(s) = cx.analysis.streams.get(si) else {
                    continue;
                };
                let ann = sender_announced(c, s);
                if ann.is_empty() || ann.iter().any(|(e, _)| *e == s.src) {
                    continue;
                }
                let (e, r) = ann[0];
                let line = r.sdp.audio().map(|m| m.line.clone()).unwrap_or_default();
                out.push(finding(
                    meta,
                    stream_subject(s),
                    format!(
                        "RTP 0x{:08X} comes from {} but its SDP announced {}",
                        s.ssrc, s.src, e
                    ),
                    vec![
                        cx.ev(
                            r.frame,
                            r.ts,
                            format!("SDP in {}: {line} (c= {})", r.carried_in, e.ip),
                        ),
                        cx.ev(
                            s.first_frame,
                            s.first_ts,
                            format!("first RTP packet {} → {}", s.src, s.dst),
                        ),
                    ],
                ));
            }
        }
    }
}

rule! {
    MediaToUnroutable {
        id: "nat.media-to-unroutable",
        severity: Error,
        title: "Media sent from a public host to a private address",
        explanation: "RTP leaves a public address toward a private (unroutable) one — the address the other side's SDP announced from behind its NAT. Those packets go nowhere: that side hears nothing.",
        remediation: "Enable media latching/comedia on the public side (send to where RTP comes from), or fix the NATed side's SDP (public address, STUN, no half-working SIP ALG).",
        thresholds: "stream destination unroutable, source routable, and the private host never seen sending (else the capture is on its side of the NAT)",
        aggregate: MediaToUnroutableAgg::default(),
    }
}

/// A stream `nat.media-to-unroutable` may report, pre-rendered.
struct Unroutable {
    /// Its place among the streams (discovery order).
    key: u64,
    subject: Subject,
    summary: String,
    evidence: Vec<Evidence>,
}

/// What `nat.media-to-unroutable` keeps: the private addresses seen sending RTP (the
/// only senders a candidate's destination can match; the signalling senders are in the
/// model's hosts at the end), and, by destination, the streams sent from a public to a
/// private address with 3 packets or more whose destination has not been seen sending
/// (with their evidence). A destination seen sending drops its streams at once: a capture
/// on the LAN side of the NAT, where every call has such a stream and its reverse, keeps
/// one address per phone, not one stream per call; a call between public addresses
/// costs nothing.
#[derive(Default)]
struct MediaToUnroutableAgg {
    candidates: std::collections::HashMap<IpAddr, Vec<Unroutable>>,
    private_senders: std::collections::HashSet<IpAddr>,
}

impl crate::rules::Aggregate for MediaToUnroutableAgg {
    fn observe(&mut self, cx: &crate::rules::Ctx<'_>, u: &crate::rules::Unit<'_>) {
        for s in u.streams.iter().filter(|s| is_unroutable(&s.src.ip)) {
            if self.private_senders.insert(s.src.ip) {
                self.candidates.remove(&s.src.ip);
            }
        }
        for s in &u.streams {
            if !is_unroutable(&s.dst.ip) || is_unroutable(&s.src.ip) || s.stats.packets < 3 {
                continue;
            }
            // If the private host itself shows up as a sender, the capture is on its side of
            // the NAT, where these packets do arrive (normal on the LAN side).
            if self.private_senders.contains(&s.dst.ip) {
                continue;
            }
            let mut ev = vec![cx.ev(
                s.first_frame,
                s.first_ts,
                format!("RTP {} → {} ({} packets)", s.src, s.dst, s.stats.packets),
            )];
            if let Some(c) = u.call
                && let Some(r) = refs(c).find(|r| sdp_endpoints(&r.sdp).contains(&s.dst))
                && let Some(cl) = r.sdp.audio().and_then(|m| r.sdp.media_connection(m))
            {
                ev.push(cx.ev(
                    r.frame,
                    r.ts,
                    format!("announced in SDP of {}: {}", r.carried_in, cl.line),
                ));
            }
            self.candidates
                .entry(s.dst.ip)
                .or_default()
                .push(Unroutable {
                    key: s.order,
                    subject: stream_subject(s),
                    summary: format!(
                        "{} RTP packets sent from public {} to private {}: they cannot arrive",
                        s.stats.packets, s.src, s.dst
                    ),
                    evidence: ev,
                });
        }
    }

    fn finish(
        self: Box<Self>,
        cx: &crate::rules::Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<crate::rules::Finding>,
    ) {
        // The signalling senders, collected once (a per-stream scan of every host was
        // quadratic: 100,000 flood streams to private addresses took minutes).
        let senders: std::collections::HashSet<IpAddr> =
            cx.analysis.hosts.iter().map(|h| h.endpoint.ip).collect();
        let mut kept: Vec<Unroutable> = self
            .candidates
            .into_iter()
            .filter(|(dst, _)| !senders.contains(dst))
            .flat_map(|(_, v)| v)
            .collect();
        // Streams in capture order, as the whole-model check met them.
        kept.sort_by_key(|a| a.key);
        for c in kept {
            out.push(finding(meta, c.subject, c.summary, c.evidence));
        }
    }
}

/// Least media sent to the announced address before the switch for `nat.early-media-lost`:
/// a relay's single probe packet before latching is normal (field knowledge §8).
const EARLY_LOST_MIN_PACKETS: u64 = 10;
const EARLY_LOST_MIN_S: f64 = 0.5;

rule! {
    EarlyMediaLost {
        id: "nat.early-media-lost",
        severity: Warning,
        title: "The first seconds of media went to the announced address before latching",
        explanation: "The far end first sent media to the address the SDP announced and switched to the NATed phone's real address only after the phone's own RTP arrived (latching). Everything sent before the switch was lost: the first part of the call is missing for the customer. A media relay's single probe packet before latching is normal and not reported; neither is a destination change that a new SDP (re-INVITE, transfer) announced.",
        remediation: "Give the phone its public address in SDP (STUN, externip), or make the phone send RTP at once (no late media start), or forward its RTP ports.",
        thresholds: "same call, source and SSRC sent first to an address the call's SDP announced, then (within 2 s of stopping) to an address no SDP announced from which the other side's RTP comes; ≥ 10 packets and ≥ 0.5 s before the switch",
        call_local: true,
    } |cx, out, meta| {
        let st = &cx.analysis.streams;
        // Group by (call, source, SSRC): linear in the number of streams.
        let mut groups: std::collections::BTreeMap<(usize, Endpoint, u32), Vec<&Stream>> =
            Default::default();
        for s in st {
            if let Some(ci) = s.call {
                groups.entry((ci, s.src, s.ssrc)).or_default().push(s);
            }
        }
        for ((ci, _, _), mut list) in groups {
            if list.len() < 2 {
                continue;
            }
            let Some(c) = cx.analysis.calls.get(ci) else { continue };
            list.sort_by_key(|s| (s.first_ts, s.first_frame));
            let announced: Vec<Endpoint> =
                refs(c).flat_map(|r| sdp_endpoints(&r.sdp)).collect();
            let Some(a) = list.first().copied() else { continue };
            let Some(b) = list.iter().skip(1).copied().find(|b| b.dst != a.dst) else {
                continue;
            };
            let before_s = a.last_ts.secs_since(a.first_ts);
            let latched_source = c
                .streams
                .iter()
                .filter_map(|i| st.get(*i))
                .any(|o| o.src == b.dst);
            if !announced.contains(&a.dst)
                || announced.contains(&b.dst)
                || !latched_source
                || b.first_ts.secs_since(a.last_ts) > 2.0
                || a.stats.packets < EARLY_LOST_MIN_PACKETS
                || before_s < EARLY_LOST_MIN_S
            {
                continue;
            }
            let lost_s = b.first_ts.secs_since(a.first_ts);
            out.push(finding(
                meta,
                stream_subject(a),
                format!("media 0x{:08X} from {} went to {} for {lost_s:.1} s ({} packets) before switching to {}", a.ssrc, a.src, a.dst, a.stats.packets, b.dst),
                vec![
                    cx.ev(a.first_frame, a.first_ts, format!("first RTP {} → {} (the announced address)", a.src, a.dst)),
                    cx.ev(a.last_frame, a.last_ts, format!("last RTP to {} ({} packets lost to the caller)", a.dst, a.stats.packets)),
                    cx.ev(b.first_frame, b.first_ts, format!("first RTP {} → {} (latched)", b.src, b.dst)),
                ],
            ));
        }
    }
}

rule! {
    BindingChurn {
        id: "nat.binding-churn",
        severity: Warning,
        title: "A UA's public address or port changes between registrations",
        explanation: "The same registration arrives from a different public port (or address) each time: the NAT forgot the previous mapping and made a new one, so for a while the registrar's record pointed to a dead mapping. Expect missed incoming calls.",
        remediation: "Keep the binding alive: keepalives every 20–170 s, or a registration expiry below the NAT timeout; check for double NAT or a NAT table that overflows.",
        thresholds: "≥ 2 different source endpoints for one AOR+contact",
    } |cx, out, meta| {
        for r in &cx.analysis.registrations {
            let mut seen: Vec<&crate::sip::state::RegAttempt> = Vec::new();
            for a in &r.attempts {
                if !seen.iter().any(|x| x.src == a.src) {
                    seen.push(a);
                }
            }
            if seen.len() < 2 {
                continue;
            }
            let ev: Vec<Evidence> = seen
                .iter()
                .take(6)
                .map(|a| cx.ev(a.frame, a.ts, format!("REGISTER from {}", a.src)))
                .collect();
            out.push(finding(
                meta,
                Subject::Registration {
                    aor: r.aor.clone(),
                    contact: r.contact.clone(),
                },
                format!(
                    "{} registered from {} different public endpoints ({})",
                    r.aor,
                    seen.len(),
                    seen.iter()
                        .map(|a| a.src.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                ev,
            ));
        }
    }
}

rule! {
    AlgRewriteInconsistent {
        id: "alg.rewrite-inconsistent",
        severity: Warning,
        title: "Signs of a SIP ALG rewriting messages in flight",
        explanation: "Parts of the same message disagree in a way an in-flight rewrite produces: the SDP c= address was changed but o= left private (or the reverse), Contact was rewritten but Via not, or Content-Length no longer matches the body. Router SIP ALGs do this and often break calls. One sign alone is weak: a phone configured with STUN legitimately puts its public address in c= (and Contact) and leaves o= (and Via) private, so a single sign is reported as info; two or more signs in one call are a warning. A Content-Length mismatch alone is left to sip.malformed.",
        remediation: "Disable the SIP ALG (\"SIP helper\", \"SIP passthrough\") on the router and fix NAT on the phone instead (STUN, rport, public address).",
        thresholds: "signs: c=/o= routability differs; Contact and top Via routability differ in a request; Content-Length mismatch. ≥ 2 signs: warning; c=/o= or Contact/Via alone: info",
        aggregate: AlgRewriteAgg::default(),
    }
}

/// A call of `alg.rewrite-inconsistent` with a sign in its headers or SDP.
struct Rewritten {
    key: (crate::types::FrameRef, String),
    subject: Subject,
    evidence: Vec<Evidence>,
    what: Vec<String>,
    /// The frames of its messages, sorted: a Content-Length anomaly (in the model at the
    /// end) counts for the call when it is at one of them.
    frames: Vec<crate::types::FrameRef>,
}

/// What `alg.rewrite-inconsistent` keeps: only the calls with a c=/o= or Contact/Via
/// sign (the rest never make a finding), with their evidence and the frames of their
/// messages (at most `MAX_CALL_MESSAGES` each) to join the Content-Length anomalies at
/// the end. A call without a sign costs nothing.
#[derive(Default)]
struct AlgRewriteAgg {
    calls: Vec<Rewritten>,
}

impl crate::rules::Aggregate for AlgRewriteAgg {
    fn observe(&mut self, cx: &crate::rules::Ctx<'_>, u: &crate::rules::Unit<'_>) {
        let Some(c) = u.call else { return };
        let mut ev = Vec::new();
        let mut what = Vec::new();
        for r in refs(c) {
            let (Some(o), Some(cl)) = (
                r.sdp.origin.as_ref(),
                r.sdp.audio().and_then(|m| r.sdp.media_connection(m)),
            ) else {
                continue;
            };
            if let (Some(oip), Some(cip)) = (o.ip, cl.ip)
                && is_unroutable(&oip) != is_unroutable(&cip)
                && !cip.is_unspecified()
            {
                ev.push(cx.ev(r.frame, r.ts, cl.line.clone()));
                ev.push(cx.ev(r.frame, r.ts, o.line.clone()));
                what.push(format!("c= {} but o= {}", cip, oip));
                break;
            }
        }
        // Requests only (responses copy the request's Vias); headers parsed only there.
        for m in c
            .sip
            .messages
            .iter()
            .filter(|m| matches!(m.kind, MsgKind::Request { .. }))
        {
            let contact = m
                .msg
                .contacts()
                .first()
                .and_then(|n| uri_host_port(&n.uri).and_then(|(h, _)| ip_of(h)));
            let via = m.msg.top_via().and_then(|v| ip_of(&v.host));
            if let (Some(ci), Some(vi)) = (contact, via)
                && is_unroutable(&ci) != is_unroutable(&vi)
            {
                for k in [HeaderName::Contact, HeaderName::Via] {
                    if let Some(l) = header_line(m, k) {
                        ev.push(cx.ev(m.frame, m.ts, l));
                    }
                }
                what.push(format!("Contact {ci} but Via {vi}"));
                break;
            }
        }
        // A Content-Length mismatch alone is left to sip.malformed.
        if what.is_empty() {
            return;
        }
        let mut frames: Vec<_> = c.sip.messages.iter().map(|m| m.frame).collect();
        frames.sort_unstable();
        frames.dedup();
        let (frame, id) = u.sort_key();
        self.calls.push(Rewritten {
            key: (frame, id.to_string()),
            subject: call_subject(c),
            evidence: ev,
            what,
            frames,
        });
    }

    fn finish(
        self: Box<Self>,
        cx: &crate::rules::Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<crate::rules::Finding>,
    ) {
        let mut calls = self.calls;
        // Calls in report order, as the whole-model check met them.
        calls.sort_by(|a, b| a.key.cmp(&b.key));
        for c in calls {
            let (mut ev, mut what) = (c.evidence, c.what);
            if let Some(a) = cx.analysis.anomalies.iter().find(|a| {
                a.kind == "sip.content_length_mismatch" && c.frames.binary_search(&a.frame).is_ok()
            }) {
                ev.push(Evidence {
                    frame: Some(a.frame),
                    time: None,
                    what: a.detail.clone(),
                });
                what.push("Content-Length does not match the body".into());
            }
            let mut f = finding(
                meta,
                c.subject,
                format!(
                    "in-flight rewriting {}: {}",
                    if what.len() >= 2 {
                        "suspected"
                    } else {
                        "possible (one sign only; STUN phones do this too)"
                    },
                    what.join("; ")
                ),
                ev,
            );
            if what.len() < 2 {
                f.severity = crate::rules::Severity::Info;
            }
            out.push(f);
        }
    }
}
