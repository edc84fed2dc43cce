//! Media rules: one-way and missing audio (with the cause when the evidence allows),
//! media that stopped, orphan streams, codec and DTMF mismatches, hold, SSRC changes.

use super::{call_subject, fmt_s, start_line, stream_subject};
use crate::correlate::{Call, Stream};
use crate::rules::catalogue::rule;
use crate::rules::{Ctx, Evidence, Severity, Subject, finding};
use crate::sdp::{Direction, Sdp};
use crate::sip::state::{MsgKind, SdpRef};
use crate::sip::wire::Method;
use crate::types::is_unroutable;

fn refs(c: &Call) -> impl Iterator<Item = &SdpRef> {
    c.sip
        .sdp
        .iter()
        .flat_map(|ex| std::iter::once(&ex.offer).chain(ex.answer.iter()))
}

fn streams<'a>(cx: &'a Ctx<'_>, c: &Call) -> Vec<&'a Stream> {
    c.streams
        .iter()
        .filter_map(|i| cx.analysis.streams.get(*i))
        .collect()
}

/// Answered and lasting at least 2 s (shorter calls may carry no media legitimately).
fn talked(c: &Call) -> Option<f64> {
    c.sip.duration_s().filter(|d| *d >= 2.0)
}

fn audio_sdp(sdp: &Sdp) -> bool {
    sdp.media.iter().any(|m| m.kind == "audio" && m.port != 0)
}

/// The SDP attribute that sets a direction.
fn direction_attr(d: Direction) -> &'static str {
    match d {
        Direction::SendRecv => "a=sendrecv",
        Direction::SendOnly => "a=sendonly",
        Direction::RecvOnly => "a=recvonly",
        Direction::Inactive => "a=inactive",
    }
}

fn held(sdp: &Sdp) -> bool {
    sdp.audio()
        .is_some_and(|m| sdp.media_direction(m) != Direction::SendRecv)
}

rule! {
    OneWay {
        id: "media.one-way",
        severity: Error,
        title: "One-way audio: media in one direction only",
        explanation: "The call was answered and RTP flowed in one direction, never in the other: one party hears nothing. The cause is usually NAT (a private address in SDP, media sent to an unroutable address, no latching), a firewall blocking the provider's RTP range, or a SIP ALG; a call put on hold legitimately sends one way.",
        remediation: "Follow the cause named in the evidence: fix the private SDP address (public address/STUN), enable latching on the far end, open the RTP port range in the firewall, disable SIP ALG.",
        thresholds: "answered call ≥ 2 s, streams in one direction only, not on hold",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            let Some(d) = talked(c) else { continue };
            let ss = streams(cx, c);
            let real: Vec<&Stream> = ss
                .iter()
                .copied()
                .filter(|s| s.stats.packets >= 5 && s.codec.as_deref() != Some("telephone-event"))
                .collect();
            if real.is_empty() {
                continue;
            }
            let back = |s: &Stream| real.iter().any(|r| r.src.ip == s.dst.ip || r.dst == s.src);
            if real.iter().any(|s| back(s)) {
                continue;
            }
            if refs(c).any(|r| held(&r.sdp)) {
                continue;
            }
            let s = real[0];
            let mut ev = vec![cx.ev(
                s.first_frame,
                s.first_ts,
                format!("RTP {} → {}: {} packets", s.src, s.dst, s.stats.packets),
            )];
            let mut cause = "no RTP came back (firewall or NAT on the silent side)".to_string();
            if is_unroutable(&s.dst.ip) && !is_unroutable(&s.src.ip) {
                cause = format!(
                    "media is sent to the private address {} the SDP announced",
                    s.dst.ip
                );
            }
            for r in refs(c) {
                if let Some(cl) = r.sdp.audio().and_then(|m| r.sdp.media_connection(m))
                    && cl.ip.is_some_and(|ip| is_unroutable(&ip))
                    && !is_unroutable(&r.src.ip)
                {
                    ev.push(cx.ev(
                        r.frame,
                        r.ts,
                        format!("SDP in {} from {}: {}", r.carried_in, r.src, cl.line),
                    ));
                    if !cause.starts_with("media is sent") {
                        cause = format!(
                            "the SDP from {} announces the private address {}",
                            r.src, cl.addr
                        );
                    }
                }
            }
            ev.push(Evidence {
                frame: None,
                time: None,
                what: format!(
                    "no RTP toward {} during {} of answered call",
                    s.src,
                    fmt_s(d)
                ),
            });
            out.push(finding(
                meta,
                call_subject(c),
                format!("one-way audio: {} → {} only; {cause}", s.src, s.dst),
                ev,
            ));
        }
    }
}

rule! {
    NoMedia {
        id: "media.none",
        severity: Error,
        title: "Answered call without any media",
        explanation: "The call was answered and lasted, the SDP negotiated audio, but no RTP was captured in either direction: both parties hear silence — or the capture point does not see the media path (media relayed elsewhere). When the capture holds no RTP at all, the capture point is the likelier explanation (a SIP-only filter, a signalling-only port mirror, a load test without media), and the calls are reported once, as a warning about the capture.",
        remediation: "Check that the capture sees the media path; then firewall rules for the RTP port range and the addresses in the SDP.",
        thresholds: "answered call ≥ 2 s with audio in SDP and no stream; when the capture holds no RTP at all, one capture-level warning for all such calls",
        aggregate: NoMediaAgg::default(),
    }
}

/// What `media.none` keeps of an answered call without streams: its place in the report,
/// its subject, its duration and its evidence, pre-rendered (each such call is cited,
/// alone or among the capture-level finding's first three, and which of the two forms
/// applies is known only at the end). A call with a stream costs nothing; the one flag
/// stands for "the model holds a stream" (a capture-level verdict needs none at all).
#[derive(Default)]
struct NoMediaAgg {
    hits: Vec<Silent>,
    any_stream: bool,
}

/// An answered call of `media.none` without streams.
struct Silent {
    key: (crate::types::FrameRef, String),
    subject: Subject,
    duration_s: f64,
    evidence: Vec<Evidence>,
}

impl crate::rules::Aggregate for NoMediaAgg {
    fn observe(&mut self, cx: &Ctx<'_>, u: &crate::rules::Unit<'_>) {
        if !u.streams.is_empty() {
            self.any_stream = true;
        }
        let Some(c) = u.call else { return };
        let Some(d) = talked(c) else { return };
        if !c.streams.is_empty() || !refs(c).any(|r| audio_sdp(&r.sdp)) {
            return;
        }
        let mut ev = Vec::new();
        for r in refs(c).take(2) {
            if let Some(m) = r.sdp.audio() {
                ev.push(cx.ev(
                    r.frame,
                    r.ts,
                    format!(
                        "SDP in {}: {} ({})",
                        r.carried_in,
                        m.line,
                        r.sdp
                            .media_connection(m)
                            .map(|x| x.line.clone())
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        ev.push(Evidence {
            frame: None,
            time: None,
            what: format!(
                "no RTP during {} of answered call {}",
                fmt_s(d),
                c.sip.call_id
            ),
        });
        let (frame, id) = u.sort_key();
        self.hits.push(Silent {
            key: (frame, id.to_string()),
            subject: call_subject(c),
            duration_s: d,
            evidence: ev,
        });
    }

    fn finish(
        self: Box<Self>,
        cx: &Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<crate::rules::Finding>,
    ) {
        let mut hits = self.hits;
        // Calls in report order, as the whole-model check met them.
        hits.sort_by(|a, b| a.key.cmp(&b.key));
        let no_rtp_anywhere = !self.any_stream && cx.analysis.capture.accounting.rtp == 0;
        if no_rtp_anywhere && !hits.is_empty() {
            let mut ev = Vec::new();
            for h in hits.iter().take(3) {
                ev.extend_from_slice(&h.evidence);
            }
            ev.push(Evidence {
                frame: None,
                time: None,
                what: format!(
                    "{} answered calls negotiated audio; the capture holds no RTP packet at all",
                    hits.len()
                ),
            });
            let mut f = finding(
                meta,
                Subject::Capture,
                format!(
                    "{} answered calls without RTP, and no RTP anywhere in the capture: the capture point probably does not see the media",
                    hits.len()
                ),
                ev,
            );
            f.severity = Severity::Warning;
            out.push(f);
            return;
        }
        for h in hits {
            out.push(finding(
                meta,
                h.subject,
                format!(
                    "answered call lasted {} without RTP in either direction",
                    fmt_s(h.duration_s)
                ),
                h.evidence,
            ));
        }
    }
}

/// Video (90 kHz clock, or on a port a video m= section of its call announced) is sent in
/// bursts of packets per frame and may pause when a camera is muted: audio thresholds
/// (jitter, RTP timeout, MOS) do not apply to it.
pub(crate) fn is_video(cx: &Ctx<'_>, s: &Stream) -> bool {
    if s.clock_rate == 90_000 {
        return true;
    }
    let Some(c) = s.call.and_then(|i| cx.analysis.calls.get(i)) else {
        return false;
    };
    refs(c).any(|r| {
        r.sdp.media.iter().any(|m| {
            m.kind.eq_ignore_ascii_case("video")
                && m.port != 0
                && r.sdp.media_addr(m).is_some_and(|ip| {
                    let ep = crate::types::Endpoint::new(ip, m.port);
                    ep == s.dst || ep == s.src
                })
        })
    })
}

rule! {
    Stopped {
        id: "media.stopped",
        severity: Warning,
        title: "Media stopped mid-call",
        explanation: "RTP paused longer than an RTP timeout in the middle of the call. Users hear silence; PBXs with rtptimeout hang up. Causes: network outage, a NAT/firewall dropping the flow, the far end stopping media (e.g. hold without signalling).",
        remediation: "Look at what happened at the time of the gap (re-INVITE? network event?); check the path for outages.",
        thresholds: "rtp_timeout_s (5 s) without a packet in an audio stream of a call (video may pause)",
        call_local: true,
    } |cx, out, meta| {
        for s in &cx.analysis.streams {
            if s.call.is_none() || is_video(cx, s) || s.stats.max_gap_ms < cx.thresholds.rtp_timeout_s * 1000.0 {
                continue;
            }
            let mut ev = vec![];
            if let Some(f) = s.stats.max_gap_frame {
                ev.push(Evidence {
                    frame: Some(f),
                    time: None,
                    what: format!(
                        "first packet after a {:.1} s silence (> {:.0} s)",
                        s.stats.max_gap_ms / 1000.0,
                        cx.thresholds.rtp_timeout_s
                    ),
                });
            }
            out.push(finding(
                meta,
                stream_subject(s),
                format!(
                    "RTP {} → {} paused {:.1} s mid-call",
                    s.src,
                    s.dst,
                    s.stats.max_gap_ms / 1000.0
                ),
                ev,
            ));
        }
    }
}

rule! {
    Orphan {
        id: "media.orphan",
        severity: Info,
        title: "Media that no captured signalling announced",
        explanation: "These RTP streams belong to no call in the capture: the signalling was not captured (started before the capture, other interface, encrypted), or something sends media nobody negotiated.",
        remediation: "Start the capture before the call, capture signalling and media on the same point, or check for unwanted media sources.",
        thresholds: "a stream with at least 10 packets attached to no call",
        aggregate: OrphanAgg::default(),
    }
}

/// Orphan streams cited as evidence.
const ORPHAN_EVIDENCE: usize = 5;

/// What `media.orphan` keeps: the number of orphan streams of 10 packets or more, the
/// evidence of the first few of them in capture order (at most [`ORPHAN_EVIDENCE`], kept
/// sorted, so bounded whatever the number of orphans), and whether any call was seen (the
/// summary's "why"). A call and its streams cost nothing.
#[derive(Default)]
struct OrphanAgg {
    count: usize,
    /// Discovery order (the order of the model's streams) → evidence.
    first: Vec<(u64, Evidence)>,
    any_call: bool,
}

impl crate::rules::Aggregate for OrphanAgg {
    fn observe(&mut self, cx: &Ctx<'_>, u: &crate::rules::Unit<'_>) {
        if u.call.is_some() {
            self.any_call = true;
            return;
        }
        for s in u.streams.iter().filter(|s| s.stats.packets >= 10) {
            self.count += 1;
            let key = s.order;
            let at = self.first.partition_point(|(k, _)| *k <= key);
            if at >= ORPHAN_EVIDENCE {
                continue;
            }
            let ev = cx.ev(
                s.first_frame,
                s.first_ts,
                format!(
                    "0x{:08X} {} → {} ({} packets)",
                    s.ssrc, s.src, s.dst, s.stats.packets
                ),
            );
            self.first.insert(at, (key, ev));
            self.first.truncate(ORPHAN_EVIDENCE);
        }
    }

    fn finish(
        self: Box<Self>,
        _cx: &Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<crate::rules::Finding>,
    ) {
        if self.count == 0 {
            return;
        }
        let why = if self.any_call {
            "no call's SDP names them"
        } else {
            "no SIP call in the capture"
        };
        out.push(finding(
            meta,
            Subject::Capture,
            format!("{} RTP streams without a call ({why})", self.count),
            self.first.into_iter().map(|(_, ev)| ev).collect(),
        ));
    }
}

/// Payload types and codec names of every active m= section of `kind` ("audio",
/// "video", ...), in order.
fn pts_of(sdp: &Sdp, kind: &str) -> Vec<(u8, String)> {
    sdp.media
        .iter()
        .filter(|m| m.port != 0 && m.kind.eq_ignore_ascii_case(kind))
        .flat_map(|m| {
            m.payload_types().into_iter().map(move |pt| {
                (
                    pt,
                    m.codec(pt).map(|c| c.0).unwrap_or_else(|| pt.to_string()),
                )
            })
        })
        .collect()
}

/// Every payload type any m= section of `sdp` lists (audio, video, text, ...): a stream's
/// payload type is "negotiated" if any section of the call's SDP names it.
fn all_pts(sdp: &Sdp) -> impl Iterator<Item = u8> + '_ {
    sdp.media.iter().flat_map(|m| m.payload_types())
}

fn is_aux(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "telephone-event" || n == "cn" || n == "red" || n == "comfort-noise"
}

rule! {
    CodecMismatch {
        id: "media.codec-mismatch",
        severity: Error,
        title: "Codec mismatch between the parties",
        explanation: "The two sides have no codec in common (the call is refused with 488/415/606), or RTP carries a payload type that offer/answer never negotiated, which the receiver cannot decode.",
        remediation: "Align the codec lists (the provider usually accepts G.711 A-law/µ-law); make sure the sender uses only negotiated payload types.",
        thresholds: "final 488/415/606; or answer without a common codec; or RTP payload type outside offer ∪ answer",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            let s = &c.sip;
            if let Some(code) = s.final_code.filter(|c| matches!(c, 488 | 415 | 606)) {
                let mut ev = Vec::new();
                if let Some(r) = s.sdp.first().map(|ex| &ex.offer)
                    && let Some(m) = r.sdp.audio()
                {
                    ev.push(cx.ev(r.frame, r.ts, format!("offer: {}", m.line)));
                }
                if let Some(r) = s
                    .messages
                    .iter()
                    .rev()
                    .find(|m| matches!(m.kind, MsgKind::Response { code: x, .. } if x == code))
                {
                    ev.push(cx.ev(r.frame, r.ts, start_line(r)));
                }
                out.push(finding(
                    meta,
                    call_subject(c),
                    format!(
                        "call refused with {code} {}: no acceptable codec",
                        s.final_reason.clone().unwrap_or_default()
                    ),
                    ev,
                ));
                continue;
            }
            for ex in &s.sdp {
                let Some(ans) = &ex.answer else { continue };
                // Compare like with like: audio with audio, video with video.
                for kind in ["audio", "video"] {
                    let o = pts_of(&ex.offer.sdp, kind);
                    let a = pts_of(&ans.sdp, kind);
                    if o.is_empty() || a.is_empty() {
                        continue;
                    }
                    let common = a.iter().any(|(_, an)| {
                        !is_aux(an) && o.iter().any(|(_, on)| on.eq_ignore_ascii_case(an))
                    });
                    if common {
                        continue;
                    }
                    let line = |sdp: &Sdp| {
                        sdp.media
                            .iter()
                            .find(|m| m.port != 0 && m.kind.eq_ignore_ascii_case(kind))
                            .map(|m| m.line.clone())
                            .unwrap_or_default()
                    };
                    out.push(finding(
                        meta,
                        call_subject(c),
                        format!("{kind} answer shares no codec with the offer"),
                        vec![
                            cx.ev(
                                ex.offer.frame,
                                ex.offer.ts,
                                format!("offer: {}", line(&ex.offer.sdp)),
                            ),
                            cx.ev(ans.frame, ans.ts, format!("answer: {}", line(&ans.sdp))),
                        ],
                    ));
                }
            }
            let mut negotiated: Vec<u8> = refs(c).flat_map(|r| all_pts(&r.sdp)).collect();
            negotiated.sort_unstable();
            negotiated.dedup();
            if negotiated.is_empty() {
                continue;
            }
            for st in streams(cx, c) {
                // PT 13 is comfort noise (RFC 3389), commonly sent without being listed.
                if let Some(pt) = st
                    .stats
                    .payload_types
                    .iter()
                    .find(|p| !negotiated.contains(p) && **p != 13)
                {
                    out.push(finding(
                        meta,
                        stream_subject(st),
                        format!(
                            "RTP 0x{:08X} carries payload type {pt}, not negotiated in SDP ({:?})",
                            st.ssrc, negotiated
                        ),
                        vec![cx.ev(
                            st.first_frame,
                            st.first_ts,
                            format!(
                                "RTP {} → {} payload types {:?}",
                                st.src, st.dst, st.stats.payload_types
                            ),
                        )],
                    ));
                }
            }
        }
    }
}

/// The telephone-event payload type of the audio section. An answer that lists the
/// offer's telephone-event payload type in its m= line without an rtpmap of its own
/// accepted the offer's mapping (seen from several UAs), so `offer_pt` counts for it.
fn te_pt(sdp: &Sdp, offer_pt: Option<u8>) -> Option<u8> {
    let m = sdp.audio()?;
    m.telephone_event_pt().or_else(|| {
        offer_pt
            .filter(|pt| m.payload_types().contains(pt) && !m.rtpmap.iter().any(|r| r.pt == *pt))
    })
}

/// Codecs through which in-band DTMF tones survive (waveform codecs). Compressed codecs
/// (G.729, GSM, iLBC, Opus, Speex, ...) distort the tones, so without telephone-event the
/// digits are lost.
fn inband_dtmf_ok(codec: &str) -> bool {
    let c = codec.to_ascii_lowercase();
    matches!(
        c.as_str(),
        "pcmu" | "pcma" | "g722" | "l16" | "g711u" | "g711a"
    )
}

/// The first non-auxiliary codec of the answer's audio section (the one that is used).
fn answer_codec(sdp: &Sdp) -> Option<String> {
    pts_of(sdp, "audio")
        .into_iter()
        .map(|(_, n)| n)
        .find(|n| !is_aux(n))
}

rule! {
    DtmfMismatch {
        id: "media.dtmf-mismatch",
        severity: Warning,
        title: "DTMF mode mismatch (telephone-event on one side only, or SIP INFO)",
        explanation: "Digits (IVR choices, voicemail PINs) need a DTMF mode both sides use. When the offer has RFC 2833/4733 telephone-event and the answerer does not support it, digits must travel in-band: that works through G.711/G.722 (reported as info) but not through compressed codecs such as G.729, GSM or Opus, and events sent anyway are dropped by the receiver (warnings). An answer with telephone-event the offer never had breaks RFC 3264 but is common and harmless until events are actually sent (info, warning when they are). Digits sent as SIP INFO are a legitimate mode between some peers but most trunks accept only RFC 2833 (info).",
        remediation: "Use RFC 2833 telephone-event on both sides (most trunks accept only that); with compressed codecs never rely on in-band DTMF; disable SIP INFO DTMF toward trunks that do not take it.",
        thresholds: "telephone-event in the offer only: info with G.711/G.722, warning with a compressed codec or when RTP events flow anyway; in the answer only: info, warning when events flow; INFO with a DTMF body: info",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            for ex in &c.sip.sdp {
                let Some(ans) = &ex.answer else { continue };
                let offer_te = te_pt(&ex.offer.sdp, None);
                let answer_te = te_pt(&ans.sdp, offer_te);
                if offer_te.is_some() == answer_te.is_some() {
                    continue;
                }
                let (Some(om), Some(am)) = (ex.offer.sdp.audio(), ans.sdp.audio()) else {
                    continue;
                };
                let mut ev = vec![
                    cx.ev(ex.offer.frame, ex.offer.ts, format!("offer: {}", om.line)),
                    cx.ev(ans.frame, ans.ts, format!("answer: {}", am.line)),
                ];
                let (summary, severity) = if let Some(pt) = offer_te {
                    let codec = answer_codec(&ans.sdp).unwrap_or_else(|| "?".into());
                    let events = streams(cx, c)
                        .into_iter()
                        .find(|st| !st.dtmf.is_empty() || st.stats.payload_types.contains(&pt));
                    if let Some(st) = events {
                        ev.push(cx.ev(
                            st.first_frame,
                            st.first_ts,
                            format!(
                                "RTP {} → {} carries telephone-event (PT {pt}) the answer did not accept",
                                st.src, st.dst
                            ),
                        ));
                        (
                            format!("telephone-event only in the offer, but {} sends events anyway", st.src),
                            Severity::Warning,
                        )
                    } else if inband_dtmf_ok(&codec) {
                        (
                            format!("answerer does not support telephone-event; DTMF must go in-band in {codec}"),
                            Severity::Info,
                        )
                    } else {
                        (
                            format!("answerer does not support telephone-event and {codec} cannot carry in-band DTMF: digits will be lost"),
                            Severity::Warning,
                        )
                    }
                } else if let Some(st) = answer_te.and_then(|pt| {
                    streams(cx, c)
                        .into_iter()
                        .find(|st| !st.dtmf.is_empty() || st.stats.payload_types.contains(&pt))
                }) {
                    ev.push(cx.ev(
                        st.first_frame,
                        st.first_ts,
                        format!("RTP {} → {} carries telephone-event the offerer never offered", st.src, st.dst),
                    ));
                    (
                        format!("telephone-event only in the answer, and {} sends events the offerer cannot decode", st.src),
                        Severity::Warning,
                    )
                } else {
                    (
                        "telephone-event only in the answer (RFC 3264 forbids adding it; harmless while no events are sent)".to_string(),
                        Severity::Info,
                    )
                };
                let mut f = finding(meta, call_subject(c), summary, ev);
                f.severity = severity;
                out.push(f);
                break;
            }
            let infos: Vec<_> = c
                .sip
                .messages
                .iter()
                .filter(|m| {
                    matches!(
                        &m.kind,
                        MsgKind::Request {
                            method: Method::Info,
                            ..
                        }
                    ) && !m.retransmission
                        && m.msg.content_type().is_some_and(|t| t.to_ascii_lowercase().contains("dtmf"))
                })
                .collect();
            if let Some(first) = infos.first() {
                let mut f = finding(
                    meta,
                    call_subject(c),
                    format!("{} DTMF digits sent as SIP INFO", infos.len()),
                    vec![cx.ev(first.frame, first.ts, start_line(first))],
                );
                f.severity = Severity::Info;
                out.push(f);
            }
        }
    }
}

rule! {
    HoldNotResumed {
        id: "media.hold-not-resumed",
        severity: Info,
        title: "Call put on hold and never resumed",
        explanation: "A re-INVITE/UPDATE put the call on hold (sendonly/inactive or c=0.0.0.0) and no later offer brought it back to sendrecv before the call ended: if users complain about silence, this is why.",
        remediation: "Check the phone or PBX that sent the hold (transfer attempts often leave calls held).",
        thresholds: "last SDP offer of the call is sendonly/recvonly/inactive",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            if c.sip.sdp.len() < 2 {
                continue;
            }
            let Some(last) = c.sip.sdp.last() else {
                continue;
            };
            if held(&last.offer.sdp) {
                let m = last
                    .offer
                    .sdp
                    .audio()
                    .map(|m| m.line.clone())
                    .unwrap_or_default();
                out.push(finding(
                    meta,
                    call_subject(c),
                    format!(
                        "on hold since {:.3} s, never resumed",
                        cx.rel(last.offer.ts)
                    ),
                    vec![cx.ev(
                        last.offer.frame,
                        last.offer.ts,
                        format!(
                            "hold offer in {}: {m} ({})",
                            last.offer.carried_in,
                            last.offer
                                .sdp
                                .audio()
                                .map(|a| direction_attr(last.offer.sdp.media_direction(a)))
                                .unwrap_or("?")
                        ),
                    )],
                ));
            }
        }
    }
}

rule! {
    SsrcChange {
        id: "media.ssrc-change",
        severity: Info,
        title: "SSRC changed within a call's media flow",
        explanation: "The same 5-tuple started sending a new SSRC mid-call (a transfer, a media server switching source, a restart). Receivers that lock onto the first SSRC drop the new one: silence after a transfer.",
        remediation: "Make the receiver accept SSRC changes (e.g. Asterisk/PJSIP rtp_keepalive/strict RTP settings), or have the sender keep its SSRC.",
        thresholds: "two streams of one call with the same source and destination and different SSRC",
        call_local: true,
    } |cx, out, meta| {
        for c in &cx.analysis.calls {
            let ss = streams(cx, c);
            for (i, a) in ss.iter().enumerate() {
                if let Some(b) = ss
                    .iter()
                    .skip(i + 1)
                    .find(|b| b.src == a.src && b.dst == a.dst && b.ssrc != a.ssrc)
                {
                    out.push(finding(
                        meta,
                        call_subject(c),
                        format!(
                            "{} → {} changed SSRC 0x{:08X} → 0x{:08X}",
                            a.src, a.dst, a.ssrc, b.ssrc
                        ),
                        vec![
                            cx.ev(
                                a.last_frame,
                                a.last_ts,
                                format!("last packet of 0x{:08X}", a.ssrc),
                            ),
                            cx.ev(
                                b.first_frame,
                                b.first_ts,
                                format!("first packet of 0x{:08X}", b.ssrc),
                            ),
                        ],
                    ));
                    break;
                }
            }
        }
    }
}
