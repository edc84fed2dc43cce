//! Policy rules: the capture against a provider's trunk profile
//! ([`crate::rules::profile::Profile`]). Each rule does nothing without a profile, and
//! nothing for a profile field left empty. "To the trunk" means a request whose
//! destination is the provider's signalling side ([`Profile::is_trunk`]); the rules judge
//! what we send to the provider, since that is what the provider's specification limits.
//!
//! The rules that count across calls (transport, method, peer address, channels) are
//! running [`Aggregate`]s: they keep per call only what a finding may count or cite, so
//! that calls can be released as they are finalised.

use super::{call_subject, header_line, start_line, stream_subject};
use crate::correlate::Call;
use crate::rules::catalogue::rule;
use crate::rules::profile::{NumberFormat, Profile};
use crate::rules::{Aggregate, Ctx, Evidence, Finding, RuleMeta, Severity, Subject, Unit, finding};
use crate::sdp::Sdp;
use crate::sip::state::{MsgKind, MsgRecord, SdpRef};
use crate::sip::wire::{HeaderName, Method, uri_user};
use crate::types::{FrameRef, Ts};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::IpAddr;

/// Where something was first seen: frame, time, the line that shows it.
type Seen = (FrameRef, Ts, String);

/// A call's place in report order ([`Unit::sort_key`]), owned: what an aggregate keeps to
/// put back in capture order what arrived in any order.
type CallKey = (FrameRef, String);

fn call_key((f, id): (FrameRef, &str)) -> CallKey {
    (f, id.to_string())
}

/// Keep in `v` (sorted, at most `cap` long) the `cap` smallest entries: insert the one
/// `make` builds where `before` stops holding (`before(x)`: `x` sorts before the new one),
/// unless that is past the cap. `make` runs only when the entry is kept.
fn keep_first<K, V>(
    v: &mut Vec<(K, V)>,
    cap: usize,
    before: impl Fn(&K) -> bool,
    make: impl FnOnce() -> (K, V),
) {
    let at = v.partition_point(|(k, _)| before(k));
    if at < cap {
        v.insert(at, make());
        v.truncate(cap);
    }
}

fn host(ip: IpAddr) -> Subject {
    Subject::Host {
        address: ip.to_string(),
    }
}

/// Requests of calls sent to the trunk (first copies only).
fn call_requests_to_trunk<'a>(c: &'a Call, p: &'a Profile) -> impl Iterator<Item = &'a MsgRecord> {
    c.sip.messages.iter().filter(move |m| {
        matches!(m.kind, MsgKind::Request { .. }) && !m.retransmission && p.is_trunk(&m.dst.ip)
    })
}

/// The first INVITE of a call, when it was sent to the trunk.
fn invite_to_trunk<'a>(c: &'a Call, p: &Profile) -> Option<&'a MsgRecord> {
    c.sip
        .messages
        .iter()
        .find(|m| {
            matches!(
                &m.kind,
                MsgKind::Request {
                    method: Method::Invite,
                    ..
                }
            )
        })
        .filter(|m| p.is_trunk(&m.dst.ip))
}

/// Every SDP of a call that was sent to the trunk.
fn sdp_to_trunk<'a>(c: &'a Call, p: &'a Profile) -> impl Iterator<Item = &'a SdpRef> {
    c.sip
        .sdp
        .iter()
        .flat_map(|ex| std::iter::once(&ex.offer).chain(ex.answer.iter()))
        .filter(move |r| p.is_trunk(&r.dst.ip))
}

/// The URI of a name-addr header value (`"Name" <sip:x@y>;tag` or `sip:x@y;tag`).
fn name_addr_uri(v: &str) -> String {
    if let Some((_, rest)) = v.split_once('<') {
        return rest.split('>').next().unwrap_or("").trim().to_string();
    }
    v.split(';').next().unwrap_or("").trim().to_string()
}

fn is_aux(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "telephone-event" | "cn" | "red" | "comfort-noise"
    )
}

/// Audio codec names of an SDP's active audio sections.
fn audio_codecs(sdp: &Sdp) -> Vec<String> {
    let mut v: Vec<String> = sdp
        .media
        .iter()
        .filter(|m| m.port != 0 && m.kind.eq_ignore_ascii_case("audio"))
        .flat_map(|m| {
            m.payload_types()
                .into_iter()
                .filter_map(move |pt| m.codec(pt).map(|c| c.0))
        })
        .filter(|n| !is_aux(n))
        .collect();
    v.dedup();
    v
}

fn has_te(sdp: &Sdp) -> bool {
    sdp.media.iter().any(|m| {
        m.port != 0 && m.kind.eq_ignore_ascii_case("audio") && m.telephone_event_pt().is_some()
    })
}

rule! {
    Transport {
        id: "policy.transport",
        severity: Error,
        title: "SIP sent to the trunk over a transport it does not accept",
        explanation: "The provider's trunk accepts only the transports in the profile (many accept UDP only). Requests over another transport are not answered: calls and registrations fail.",
        remediation: "Configure the trunk on the PBX/phone with an accepted transport (e.g. transport=udp).",
        thresholds: "profile `transports`; any call message, REGISTER or out-of-dialog request (OPTIONS, MESSAGE, ...) to or from the trunk over another transport",
        aggregate: TransportAgg::default(),
    }
}

fn transport_profile<'a>(cx: &Ctx<'a>) -> Option<&'a Profile> {
    cx.profile.filter(|p| !p.transports.is_empty())
}

/// What `policy.transport` keeps of the calls: per (trunk address, transport not
/// allowed), how many call messages used it and the first one (from the call first in
/// report order, whose key is kept to decide that). Bounded by the distinct (address,
/// transport) pairs, not by the calls; a call over an allowed transport costs nothing.
#[derive(Default)]
struct TransportAgg {
    bad: BTreeMap<(IpAddr, &'static str), (CallKey, Seen, u64)>,
}

impl Aggregate for TransportAgg {
    fn observe(&mut self, cx: &Ctx<'_>, u: &Unit<'_>) {
        let Some(p) = transport_profile(cx) else {
            return;
        };
        let Some(c) = u.call else { return };
        // This call's first bad message per key (its messages are in capture order).
        let mut mine: BTreeMap<(IpAddr, &'static str), (Seen, u64)> = BTreeMap::new();
        for m in &c.sip.messages {
            let peer = if p.is_trunk(&m.dst.ip) {
                m.dst.ip
            } else if p.is_trunk(&m.src.ip) {
                m.src.ip
            } else {
                continue;
            };
            let t = m.transport.as_str();
            if Profile::allows(&p.transports, t) {
                continue;
            }
            let e = mine
                .entry((peer, t))
                .or_insert_with(|| ((m.frame, m.ts, start_line(m)), 0));
            e.1 += 1;
        }
        let key = u.sort_key();
        for (k, (seen, n)) in mine {
            match self.bad.entry(k) {
                Entry::Vacant(v) => {
                    v.insert((call_key(key), seen, n));
                }
                Entry::Occupied(mut o) => {
                    let e = o.get_mut();
                    e.2 += n;
                    if key < (e.0.0, e.0.1.as_str()) {
                        (e.0, e.1) = (call_key(key), seen);
                    }
                }
            }
        }
    }

    fn finish(self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>) {
        let Some(p) = transport_profile(cx) else {
            return;
        };
        // (trunk address, transport) → first frame, time, what; calls come first.
        let mut bad: BTreeMap<(IpAddr, &'static str), (FrameRef, Ts, String, u64)> = self
            .bad
            .into_iter()
            .map(|(k, (_, (f, ts, what), n))| (k, (f, ts, what, n)))
            .collect();
        let mut note =
            |ip: IpAddr, t: crate::types::Transport, f: FrameRef, ts: Ts, what: String| {
                if Profile::allows(&p.transports, t.as_str()) {
                    return;
                }
                let e = bad.entry((ip, t.as_str())).or_insert((f, ts, what, 0));
                e.3 += 1;
            };
        for r in &cx.analysis.registrations {
            for a in r.attempts.iter().filter(|a| p.is_trunk(&a.dst.ip)) {
                note(
                    a.dst.ip,
                    a.transport,
                    a.frame,
                    a.ts,
                    format!(
                        "REGISTER {} → {} over {}",
                        a.src,
                        a.dst,
                        a.transport.as_str()
                    ),
                );
            }
        }
        for o in &cx.analysis.out_of_dialog {
            let peer = if p.is_trunk(&o.dst.ip) {
                o.dst.ip
            } else if p.is_trunk(&o.src.ip) {
                o.src.ip
            } else {
                continue;
            };
            note(
                peer,
                o.transport,
                o.frame,
                o.ts,
                format!(
                    "{} {} → {} over {}",
                    o.method.as_str(),
                    o.src,
                    o.dst,
                    o.transport.as_str()
                ),
            );
        }
        for ((ip, t), (f, ts, what, n)) in bad {
            out.push(finding(
                meta,
                host(ip),
                format!(
                    "{n} SIP messages with trunk {ip} over {t}; the profile allows {}",
                    p.transports.join(", ")
                ),
                vec![cx.ev(f, ts, what)],
            ));
        }
    }
}

/// Requests a `policy.method` finding quotes.
const METHOD_EVIDENCE: usize = 3;
/// The most requests `policy.method` counts per (trunk, method): its summary says at most
/// this many.
const METHOD_COUNT_CAP: u64 = 1000;

rule! {
    MethodNotAccepted {
        id: "policy.method",
        severity: Warning,
        title: "Request method the trunk does not handle",
        explanation: "The provider lists the SIP methods its trunk handles (e.g. ACK, BYE, INVITE, OPTIONS, REGISTER); others may be ignored or rejected, so features built on them (transfer with REFER, SIP INFO DTMF, MESSAGE, session refresh with UPDATE) do not work across the trunk.",
        remediation: "Turn the feature off toward the trunk (e.g. no REFER-based transfer, no UPDATE session refresh), or let the PBX handle it locally.",
        thresholds: "profile `methods`; any request to the trunk with another method",
        aggregate: MethodAgg::default(),
    }
}

fn method_profile<'a>(cx: &Ctx<'a>) -> Option<&'a Profile> {
    cx.profile.filter(|p| !p.methods.is_empty())
}

/// Requests of one (trunk address, method not allowed) in the calls: how many, and the
/// first [`METHOD_EVIDENCE`] in report order (call key, place in the call, what).
#[derive(Default)]
struct MethodCalls {
    n: u64,
    first: Vec<((CallKey, usize), Seen)>,
}

/// What `policy.method` keeps of the calls: per (trunk address, method not allowed), a
/// count and at most [`METHOD_EVIDENCE`] quotable requests (the finding cites no more).
/// Bounded by the distinct (address, method) pairs; a call using allowed methods only
/// costs nothing.
#[derive(Default)]
struct MethodAgg {
    bad: BTreeMap<(IpAddr, String), MethodCalls>,
}

impl Aggregate for MethodAgg {
    fn observe(&mut self, cx: &Ctx<'_>, u: &Unit<'_>) {
        let Some(p) = method_profile(cx) else { return };
        let Some(c) = u.call else { return };
        let key = u.sort_key();
        // A request's place in the call orders it after the call's earlier ones.
        for (place, m) in call_requests_to_trunk(c, p).enumerate() {
            let MsgKind::Request { method, .. } = &m.kind else {
                continue;
            };
            if Profile::allows(&p.methods, method.as_str()) {
                continue;
            }
            let e = self
                .bad
                .entry((m.dst.ip, method.as_str().to_string()))
                .or_default();
            e.n += 1;
            keep_first(
                &mut e.first,
                METHOD_EVIDENCE,
                |(k, i)| (k.0, k.1.as_str(), *i) < (key.0, key.1, place),
                || ((call_key(key), place), (m.frame, m.ts, start_line(m))),
            );
        }
    }

    fn finish(self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>) {
        let Some(p) = method_profile(cx) else { return };
        // (trunk, method) → how many, the first requests; calls come first.
        let mut bad: BTreeMap<(IpAddr, String), (u64, Vec<Seen>)> = self
            .bad
            .into_iter()
            .map(|(k, v)| (k, (v.n, v.first.into_iter().map(|(_, s)| s).collect())))
            .collect();
        let mut note = |ip: IpAddr, m: &Method, f: FrameRef, ts: Ts, what: String| {
            if !Profile::allows(&p.methods, m.as_str()) {
                let e = bad.entry((ip, m.as_str().to_string())).or_default();
                e.0 += 1;
                if e.1.len() < METHOD_EVIDENCE {
                    e.1.push((f, ts, what));
                }
            }
        };
        for o in cx
            .analysis
            .out_of_dialog
            .iter()
            .filter(|o| p.is_trunk(&o.dst.ip))
        {
            note(
                o.dst.ip,
                &o.method,
                o.frame,
                o.ts,
                format!("{} {} → {}", o.method.as_str(), o.src, o.dst),
            );
        }
        for r in &cx.analysis.registrations {
            for a in r.attempts.iter().filter(|a| p.is_trunk(&a.dst.ip)) {
                note(
                    a.dst.ip,
                    &Method::Register,
                    a.frame,
                    a.ts,
                    format!("REGISTER {} → {}", a.src, a.dst),
                );
            }
        }
        for ((ip, method), (n, list)) in bad {
            out.push(finding(
                meta,
                host(ip),
                format!(
                    "{} {method} requests to trunk {ip}; the profile allows {}",
                    n.min(METHOD_COUNT_CAP),
                    p.methods.join(", ")
                ),
                list.into_iter().map(|(f, t, w)| cx.ev(f, t, w)).collect(),
            ));
        }
    }
}

rule! {
    Codec {
        id: "policy.codec",
        severity: Warning,
        title: "SDP to the trunk without (or with unsupported) codecs",
        explanation: "The provider supports only the codecs in the profile (often G.711 A-law and µ-law). An offer or answer sent to the trunk with none of them gets the call refused (488) or silent; extra codecs are only informational, since the provider picks a supported one.",
        remediation: "Put a supported codec (e.g. PCMA, PCMU) on the trunk's codec list, first.",
        thresholds: "profile `codecs`; warning when an SDP sent to the trunk has no supported audio codec, info when it lists unsupported ones besides supported ones",
        call_local: true,
    } |cx, out, meta| {
        let Some(p) = cx.profile.filter(|p| !p.codecs.is_empty()) else { return };
        for c in &cx.analysis.calls {
            for r in sdp_to_trunk(c, p) {
                let codecs = audio_codecs(&r.sdp);
                if codecs.is_empty() {
                    continue;
                }
                let (ok, bad): (Vec<&String>, Vec<&String>) =
                    codecs.iter().partition(|n| Profile::allows(&p.codecs, n));
                if bad.is_empty() {
                    continue;
                }
                let line = r.sdp.audio().map(|m| m.line.clone()).unwrap_or_default();
                let names = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                let mut f = finding(
                    meta,
                    call_subject(c),
                    if ok.is_empty() {
                        format!("SDP in {} to the trunk offers only unsupported codecs: {}", r.carried_in, names(&bad))
                    } else {
                        format!("SDP in {} to the trunk also lists unsupported codecs: {}", r.carried_in, names(&bad))
                    },
                    vec![cx.ev(r.frame, r.ts, format!("SDP in {} {} → {}: {line}", r.carried_in, r.src, r.dst))],
                );
                if !ok.is_empty() {
                    f.severity = Severity::Info;
                }
                out.push(f);
                break;
            }
        }
    }
}

rule! {
    Dtmf {
        id: "policy.dtmf",
        severity: Warning,
        title: "DTMF mode the trunk does not accept",
        explanation: "The provider accepts only the DTMF modes in the profile (often RFC 2833 telephone-event only; SIP INFO and in-band may fail). Digits sent another way are lost at the trunk: IVR menus and PINs stop working.",
        remediation: "Set the trunk's DTMF mode on the PBX to an accepted one (e.g. dtmfmode=rfc2833) and offer telephone-event in SDP.",
        thresholds: "profile `dtmf`; SIP INFO DTMF to the trunk without \"info\"; SDP to the trunk without telephone-event when \"rfc2833\" is the only mode; telephone-event offered when \"rfc2833\" is not accepted",
        call_local: true,
    } |cx, out, meta| {
        let Some(p) = cx.profile.filter(|p| !p.dtmf.is_empty()) else { return };
        let rfc2833 = Profile::allows(&p.dtmf, "rfc2833");
        let only_2833 = rfc2833 && !Profile::allows(&p.dtmf, "info") && !Profile::allows(&p.dtmf, "inband");
        for c in &cx.analysis.calls {
            if !Profile::allows(&p.dtmf, "info")
                && let Some(m) = call_requests_to_trunk(c, p).find(|m| {
                    matches!(&m.kind, MsgKind::Request { method: Method::Info, .. })
                        && m.msg.content_type().is_some_and(|t| t.to_ascii_lowercase().contains("dtmf"))
                })
            {
                out.push(finding(meta, call_subject(c), "DTMF sent to the trunk as SIP INFO, which the profile does not accept".into(), vec![cx.ev(m.frame, m.ts, start_line(m))]));
                continue;
            }
            for r in sdp_to_trunk(c, p) {
                if audio_codecs(&r.sdp).is_empty() {
                    continue;
                }
                let te = has_te(&r.sdp);
                let what = if only_2833 && !te {
                    "without telephone-event (the trunk takes RFC 2833 DTMF only)"
                } else if !rfc2833 && te {
                    "with telephone-event, which the trunk does not accept"
                } else {
                    continue;
                };
                let line = r.sdp.audio().map(|m| m.line.clone()).unwrap_or_default();
                out.push(finding(
                    meta,
                    call_subject(c),
                    format!("SDP in {} to the trunk {what}", r.carried_in),
                    vec![cx.ev(r.frame, r.ts, format!("SDP in {} {} → {}: {line}", r.carried_in, r.src, r.dst))],
                ));
                break;
            }
        }
    }
}

rule! {
    T38 {
        id: "policy.t38",
        severity: Warning,
        title: "T.38 fax offered to a trunk that does not support it",
        explanation: "The profile says the trunk does not support T.38. A re-INVITE switching the call to T.38 is refused or ignored, and the fax fails; G.711 pass-through is the only way across such a trunk.",
        remediation: "Disable T.38 toward the trunk on the PBX/ATA and send faxes as G.711 pass-through (no echo cancellation, no silence suppression).",
        thresholds: "profile `t38 = false`; any SDP to the trunk with an active m=image udptl t38 section",
        call_local: true,
    } |cx, out, meta| {
        let Some(p) = cx.profile.filter(|p| p.t38 == Some(false)) else { return };
        for c in &cx.analysis.calls {
            if let Some((r, m)) = sdp_to_trunk(c, p).find_map(|r| {
                r.sdp.media.iter().find(|m| m.port != 0 && m.is_t38()).map(|m| (r, m))
            }) {
                out.push(finding(
                    meta,
                    call_subject(c),
                    format!("T.38 offered to the trunk in {}", r.carried_in),
                    vec![cx.ev(r.frame, r.ts, format!("SDP in {} {} → {}: {}", r.carried_in, r.src, r.dst, m.line))],
                ));
            }
        }
    }
}

rule! {
    NumberFormatRule {
        id: "policy.number-format",
        severity: Warning,
        title: "Number not in the format the trunk requires",
        explanation: "Providers require numbers in one format per header, typically E.164 with a leading + in Request-URI, From and To (+31201234567), or without + for extension-based accounts. Calls with numbers in another format are rejected (404, 484, 403) or show a wrong caller ID.",
        remediation: "Rewrite numbers on the PBX's outbound route (prefix +, country code, strip the trunk prefix 0) for each header the profile names.",
        thresholds: "profile `number_format` (request_uri, from, to, p_asserted_identity: any | e164-plus | e164); first INVITE of each call to the trunk",
        call_local: true,
    } |cx, out, meta| {
        let Some(p) = cx.profile else { return };
        let nf = &p.number_format;
        if [nf.request_uri, nf.from, nf.to, nf.p_asserted_identity].iter().all(|f| *f == NumberFormat::Any) {
            return;
        }
        for c in &cx.analysis.calls {
            let Some(inv) = invite_to_trunk(c, p) else { continue };
            let mut ev = Vec::new();
            let mut bad = Vec::new();
            let mut check = |name: &str, fmt: NumberFormat, uri: Option<String>, line: Option<String>| {
                if fmt == NumberFormat::Any {
                    return;
                }
                let Some(uri) = uri else { return };
                let user = uri_user(&uri).unwrap_or("");
                if !fmt.accepts(user) {
                    bad.push(format!("{name} \"{user}\" is not {}", fmt.describe()));
                    ev.push(cx.ev(inv.frame, inv.ts, line.unwrap_or(uri)));
                }
            };
            check("Request-URI", nf.request_uri, inv.msg.request_uri().map(|u| u.into_owned()), Some(inv.msg.text(&inv.msg.start_line).into_owned()));
            check("From", nf.from, inv.msg.from_hdr().map(|n| n.uri), header_line(inv, HeaderName::From));
            check("To", nf.to, inv.msg.to_hdr().map(|n| n.uri), header_line(inv, HeaderName::To));
            check(
                "P-Asserted-Identity",
                nf.p_asserted_identity,
                inv.msg.header_value(HeaderName::PAssertedIdentity).map(|v| name_addr_uri(&v)),
                header_line(inv, HeaderName::PAssertedIdentity),
            );
            if !bad.is_empty() {
                out.push(finding(meta, call_subject(c), bad.join("; "), ev));
            }
        }
    }
}

rule! {
    CallerId {
        id: "policy.caller-id",
        severity: Warning,
        title: "Caller-ID headers missing or not as the trunk requires",
        explanation: "Providers that implement RFC 3325 want the caller ID in P-Asserted-Identity besides From (Remote-Party-ID is not an alternative) and may ignore calls without it; anonymous calls must use Privacy: id with From and P-Asserted-Identity still carrying the real number.",
        remediation: "Make the PBX send P-Asserted-Identity on the trunk (e.g. sendpai / trust_id_outbound) and use Privacy: id for anonymous calls instead of an anonymous From alone.",
        thresholds: "profile `p_asserted_identity_required`, `privacy` (accepted values); first INVITE of each call to the trunk",
        call_local: true,
    } |cx, out, meta| {
        let Some(p) = cx.profile.filter(|p| p.p_asserted_identity_required || !p.privacy.is_empty()) else { return };
        for c in &cx.analysis.calls {
            let Some(inv) = invite_to_trunk(c, p) else { continue };
            let pai = inv.msg.header(HeaderName::PAssertedIdentity).is_some();
            let privacy = inv.msg.header_value(HeaderName::Privacy).map(|v| v.into_owned());
            let mut ev = vec![cx.ev(inv.frame, inv.ts, start_line(inv))];
            let mut what = Vec::new();
            if !pai && (p.p_asserted_identity_required || privacy.as_deref().is_some_and(|v| v.to_ascii_lowercase().contains("id"))) {
                what.push("no P-Asserted-Identity".to_string());
                if let Some(l) = header_line(inv, HeaderName::RemotePartyId) {
                    ev.push(cx.ev(inv.frame, inv.ts, format!("{l} (not accepted instead of P-Asserted-Identity)")));
                }
                if let Some(l) = header_line(inv, HeaderName::From) {
                    ev.push(cx.ev(inv.frame, inv.ts, l));
                }
            }
            if let Some(v) = &privacy
                && !p.privacy.is_empty()
            {
                let bad: Vec<&str> = v
                    .split(';')
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && !Profile::allows(&p.privacy, t))
                    .collect();
                if !bad.is_empty() {
                    what.push(format!("Privacy value {} not accepted (accepted: {})", bad.join(";"), p.privacy.join(", ")));
                    if let Some(l) = header_line(inv, HeaderName::Privacy) {
                        ev.push(cx.ev(inv.frame, inv.ts, l));
                    }
                }
            }
            if !what.is_empty() {
                out.push(finding(meta, call_subject(c), format!("INVITE to the trunk: {}", what.join("; ")), ev));
            }
        }
    }
}

rule! {
    PeerAddress {
        id: "policy.peer-address",
        severity: Warning,
        title: "Signalling or media with a remote address outside the provider's ranges",
        explanation: "The provider publishes the address ranges its SIP and RTP use. Traffic with another remote address is either a misconfigured trunk (wrong proxy, old address) or someone else talking to the PBX — scanners and fraudsters — which the firewall should not let through.",
        remediation: "Point the trunk at the provider's published addresses, and allow SIP/RTP in the firewall only from those ranges.",
        thresholds: "profile `signalling_networks` / `media_networks` (CIDR), `local_networks` (ours; default: private addresses)",
        aggregate: PeerAddressAgg::default(),
    }
}

fn peer_address_profile<'a>(cx: &Ctx<'a>) -> Option<&'a Profile> {
    cx.profile
        .filter(|p| !p.signalling_networks.is_empty() || !p.media_networks.is_empty())
}

/// Streams a `policy.peer-address` media finding quotes.
const PEER_MEDIA_EVIDENCE: usize = 3;

/// Streams with one remote address outside the media ranges: how many (a stream with
/// that address on both sides counts twice, as in the list it replaces), and the first
/// [`PEER_MEDIA_EVIDENCE`] in discovery order (then side: source first).
#[derive(Default)]
struct PeerMedia {
    n: u64,
    first: Vec<((u64, u8), Seen)>,
}

/// What `policy.peer-address` keeps of calls and streams: per remote address outside the
/// signalling ranges, the first call message sent to it (with its call's key, to tell
/// which call is first); per remote address outside the media ranges, a stream count and
/// at most [`PEER_MEDIA_EVIDENCE`] quotable streams. Bounded by the distinct foreign
/// addresses; a call and streams with the provider or local hosts only cost nothing.
#[derive(Default)]
struct PeerAddressAgg {
    sig: BTreeMap<IpAddr, (CallKey, FrameRef, Ts)>,
    media: BTreeMap<IpAddr, PeerMedia>,
}

impl Aggregate for PeerAddressAgg {
    fn observe(&mut self, cx: &Ctx<'_>, u: &Unit<'_>) {
        let Some(p) = peer_address_profile(cx) else {
            return;
        };
        if let Some(c) = u.call
            && !p.signalling_networks.is_empty()
        {
            // Hosts that only received SIP (requests sent to them) are peers too: the
            // first message to each, from the call first in report order.
            let key = u.sort_key();
            for m in c
                .sip
                .messages
                .iter()
                .filter(|m| !p.is_local(&m.dst.ip) && !p.is_trunk(&m.dst.ip))
            {
                match self.sig.entry(m.dst.ip) {
                    Entry::Vacant(v) => {
                        v.insert((call_key(key), m.frame, m.ts));
                    }
                    Entry::Occupied(mut o) => {
                        let e = o.get_mut();
                        if key < (e.0.0, e.0.1.as_str()) {
                            *e = (call_key(key), m.frame, m.ts);
                        }
                    }
                }
            }
        }
        for s in &u.streams {
            for (side, ip) in [(0u8, s.src.ip), (1, s.dst.ip)] {
                if p.is_local(&ip) || p.is_trunk_media(&ip) {
                    continue;
                }
                let e = self.media.entry(ip).or_default();
                e.n += 1;
                let k = (s.order, side);
                keep_first(
                    &mut e.first,
                    PEER_MEDIA_EVIDENCE,
                    |x| *x < k,
                    || {
                        (
                            k,
                            (
                                s.first_frame,
                                s.first_ts,
                                format!("RTP 0x{:08X} {} → {}", s.ssrc, s.src, s.dst),
                            ),
                        )
                    },
                );
            }
        }
    }

    fn finish(self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>) {
        let Some(p) = peer_address_profile(cx) else {
            return;
        };
        let mut sig: BTreeMap<IpAddr, (FrameRef, Ts, u64)> = BTreeMap::new();
        if !p.signalling_networks.is_empty() {
            for h in &cx.analysis.hosts {
                let ip = h.endpoint.ip;
                if p.is_local(&ip) || p.is_trunk(&ip) {
                    continue;
                }
                let e = sig.entry(ip).or_insert((h.first_frame, h.first_ts, 0));
                if h.first_ts < e.1 {
                    (e.0, e.1) = (h.first_frame, h.first_ts);
                }
                e.2 += h.packets;
            }
            // The hosts first, then what the calls sent to others.
            for (ip, (_, f, ts)) in self.sig {
                sig.entry(ip).or_insert((f, ts, 0));
            }
        }
        for (ip, (f, ts, n)) in sig {
            out.push(finding(
                meta,
                host(ip),
                format!(
                    "SIP with {ip}, outside the provider's signalling ranges ({n} packets from it)"
                ),
                vec![cx.ev(f, ts, format!("first SIP packet with {ip}"))],
            ));
        }
        for (ip, m) in self.media {
            out.push(finding(
                meta,
                host(ip),
                format!(
                    "{} RTP streams with {ip}, outside the provider's media ranges",
                    m.n
                ),
                m.first
                    .into_iter()
                    .map(|(_, (f, ts, what))| cx.ev(f, ts, what))
                    .collect(),
            ));
        }
    }
}

rule! {
    RtpPortRange {
        id: "policy.rtp-port-range",
        severity: Warning,
        title: "Provider media on a port outside its published RTP range",
        explanation: "The provider sends and receives RTP only on ports of its published range; the firewall is usually opened for exactly that range. Media on another port means the SDP points somewhere unexpected (a SIP ALG rewrote it, a wrong media proxy) or the firewall rules will drop it.",
        remediation: "Open the firewall for the provider's whole RTP range; check the SDP the provider sends and any SIP ALG in the path.",
        thresholds: "profile `rtp_ports` (min, max); the provider-side port of each stream",
        call_local: true,
    } |cx, out, meta| {
        let Some(p) = cx.profile else { return };
        let Some(range) = p.rtp_ports else { return };
        for s in &cx.analysis.streams {
            let side = if p.is_trunk_media(&s.src.ip) { s.src } else if p.is_trunk_media(&s.dst.ip) { s.dst } else { continue };
            if range.contains(side.port) {
                continue;
            }
            out.push(finding(
                meta,
                stream_subject(s),
                format!("provider media port {} outside {}–{}", side, range.min, range.max),
                vec![cx.ev(s.first_frame, s.first_ts, format!("RTP 0x{:08X} {} → {}", s.ssrc, s.src, s.dst))],
            ));
        }
    }
}

rule! {
    Channels {
        id: "policy.channels",
        severity: Warning,
        title: "More concurrent calls than the trunk's channel limit",
        explanation: "A trunk carries at most a contracted number of simultaneous calls. Calls beyond the limit are rejected by the provider (typically 403, 486 or 503), which looks like random failures at busy hours.",
        remediation: "Raise the channel limit with the provider, or cap outbound calls on the PBX (call limit per trunk) so excess calls overflow to a second trunk.",
        thresholds: "profile `max_channels`; answered calls with the trunk counted from answer to BYE (or last message)",
        aggregate: ChannelsAgg::default(),
    }
}

/// An answered call with the trunk, as `policy.channels` counts it.
struct Answered {
    key: CallKey,
    answer: Ts,
    end: Ts,
    /// The call's first message at or after the answer (else its first frame): the frame
    /// cited when this call's answer is the one that goes over the limit.
    frame: FrameRef,
}

/// What `policy.channels` keeps per answered call with the trunk: its key (report order
/// breaks ties between simultaneous answers), answer and end times and one frame. The
/// peak needs every interval, as the units come in any order; unanswered calls and calls
/// without the trunk cost nothing.
#[derive(Default)]
struct ChannelsAgg {
    calls: Vec<Answered>,
}

fn channels_limit(cx: &Ctx<'_>) -> Option<u32> {
    cx.profile.and_then(|p| p.max_channels)
}

impl Aggregate for ChannelsAgg {
    fn observe(&mut self, cx: &Ctx<'_>, u: &Unit<'_>) {
        let (Some(p), Some(_)) = (cx.profile, channels_limit(cx)) else {
            return;
        };
        let Some(c) = u.call else { return };
        let s = &c.sip;
        if !(p.is_trunk(&s.caller.ip) || p.is_trunk(&s.callee.ip)) {
            return;
        }
        let Some(a) = s.answer_ts else { return };
        let end = s.bye.as_ref().map(|b| b.ts).unwrap_or(s.end).max(a);
        let frame = s
            .messages
            .iter()
            .find(|m| m.ts >= a)
            .map(|m| m.frame)
            .unwrap_or(s.first_frame);
        self.calls.push(Answered {
            key: call_key(u.sort_key()),
            answer: a,
            end,
            frame,
        });
    }

    fn finish(mut self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>) {
        let Some(limit) = channels_limit(cx) else {
            return;
        };
        // Index = place in report order, as in the model's list of calls.
        self.calls.sort_by(|a, b| a.key.cmp(&b.key));
        // (time, +1/-1, call index); ends sort before starts at the same instant.
        let mut ev_list: Vec<(Ts, i32, usize)> = Vec::with_capacity(2 * self.calls.len());
        for (i, c) in self.calls.iter().enumerate() {
            ev_list.push((c.answer, 1, i));
            ev_list.push((c.end, -1, i));
        }
        ev_list.sort_by_key(|(t, d, i)| (*t, *d, *i));
        let mut cur = 0i64;
        let mut peak = 0i64;
        let mut first_over: Option<(Ts, usize)> = None;
        for (t, d, i) in ev_list {
            cur += i64::from(d);
            if cur > peak {
                peak = cur;
            }
            if cur > i64::from(limit) && first_over.is_none() {
                first_over = Some((t, i));
            }
        }
        let Some((t, i)) = first_over else { return };
        let mut ev = Vec::new();
        // The count first exceeds the limit on an answer (only answers raise it), so `t`
        // is that call's answer and its kept frame is the one at or after `t`.
        if let Some(c) = self.calls.get(i) {
            ev.push(cx.ev(
                c.frame,
                t,
                format!("call {} answered while {limit} calls were up", c.key.1),
            ));
        }
        ev.push(Evidence {
            frame: None,
            time: None,
            what: format!("peak {peak} concurrent answered calls > limit {limit}"),
        });
        out.push(finding(
            meta,
            Subject::Capture,
            format!("{peak} concurrent calls on the trunk (limit {limit})"),
            ev,
        ));
    }
}

rule! {
    Destination {
        id: "policy.destination",
        severity: Error,
        title: "Call to a destination the trunk's policy blocks",
        explanation: "The profile lists the destinations that may be called (whitelist) and those that may not (fraud-prone ranges: premium rate, satellite, some international prefixes). A call to a blocked destination is either refused by the provider or, worse, a sign of toll fraud on the PBX.",
        remediation: "If the call was legitimate, ask the provider to open the destination; otherwise treat it as fraud: block the source extension, change its password, restrict the dial plan.",
        thresholds: "profile `destinations.allow` / `destinations.deny` prefixes (with or without +) against the Request-URI user of INVITEs to the trunk",
        call_local: true,
    } |cx, out, meta| {
        let Some(p) = cx.profile.filter(|p| !p.destinations.allow.is_empty() || !p.destinations.deny.is_empty()) else { return };
        for c in &cx.analysis.calls {
            let Some(inv) = invite_to_trunk(c, p) else { continue };
            let Some(uri) = inv.msg.request_uri() else { continue };
            let Some(user) = uri_user(&uri) else { continue };
            let Some(prefix) = p.destination_blocked(user) else { continue };
            let why = if prefix.is_empty() {
                format!("not in the allowed destinations ({})", p.destinations.allow.join(", "))
            } else {
                format!("blocked prefix {prefix}")
            };
            out.push(finding(
                meta,
                call_subject(c),
                format!("call to {user}: {why}"),
                vec![cx.ev(inv.frame, inv.ts, start_line(inv))],
            ));
        }
    }
}

rule! {
    Keepalive {
        id: "policy.keepalive",
        severity: Warning,
        title: "Trunk keepalive not as the profile expects",
        explanation: "The provider expects the PBX to probe the trunk with a given keepalive (often OPTIONS, always answered 200 OK) at most every N seconds. Unanswered OPTIONS mark the trunk down; no keepalive at all lets NAT bindings and the provider's view of the PBX expire.",
        remediation: "Enable the keepalive on the trunk (qualify=yes / qualify_frequency below the interval) and check why the provider does not answer it.",
        thresholds: "profile `keepalive` (\"options\": OPTIONS to the trunk must get 200 OK) and `keepalive_interval_s` (capture longer than twice the interval without any OPTIONS to the trunk)",
    } |cx, out, meta| {
        let Some(p) = cx.profile.filter(|p| p.keepalive.as_deref().is_some_and(|k| k.eq_ignore_ascii_case("options"))) else { return };
        let opts: Vec<&crate::sip::state::OutOfDialog> = cx
            .analysis
            .out_of_dialog
            .iter()
            .filter(|o| o.method == Method::Options && p.is_trunk(&o.dst.ip))
            .collect();
        let bad: Vec<&&crate::sip::state::OutOfDialog> = opts
            .iter()
            .filter(|o| o.response.as_ref().is_none_or(|r| r.0 != 200))
            .collect();
        if let Some(first) = bad.first() {
            out.push(finding(
                meta,
                host(first.dst.ip),
                format!("{} of {} OPTIONS to the trunk not answered 200 OK", bad.len(), opts.len()),
                bad.iter().take(3).map(|o| cx.ev(o.frame, o.ts, format!(
                    "OPTIONS {} → {}: {}",
                    o.src,
                    o.dst,
                    o.response.as_ref().map(|r| format!("{} {}", r.0, r.1)).unwrap_or_else(|| "no response".into())
                ))).collect(),
            ));
        }
        let span = match (cx.analysis.capture.first_ts, cx.analysis.capture.last_ts) {
            (Some(a), Some(b)) => b.secs_since(a),
            _ => 0.0,
        };
        let trunk_seen = cx.analysis.hosts.iter().any(|h| p.is_trunk(&h.endpoint.ip));
        if let Some(iv) = p.keepalive_interval_s
            && opts.is_empty()
            && trunk_seen
            && span > 2.0 * iv
        {
            out.push(finding(
                meta,
                Subject::Capture,
                format!("no OPTIONS keepalive to the trunk in {span:.0} s (expected at least every {iv:.0} s)"),
                vec![Evidence { frame: None, time: None, what: format!("capture spans {span:.0} s; 0 OPTIONS to the trunk") }],
            ));
        }
    }
}
