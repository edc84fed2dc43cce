//! Registration and keepalive rules: failed registrations, expiry vs NAT binding lifetime,
//! lapsed bindings, "incoming calls fail after a few minutes", missing or odd keepalives.

use super::{call_subject, fmt_s};
use crate::correlate::HostActivity;
use crate::rules::catalogue::rule;
use crate::rules::{Evidence, Subject, finding};
use crate::sip::state::{RegAttempt, Registration};
use crate::sip::wire::{Method, uri_host_port};
use crate::types::{Endpoint, Ts, is_unroutable};
use std::net::IpAddr;

fn reg_subject(r: &Registration) -> Subject {
    Subject::Registration {
        aor: r.aor.clone(),
        contact: r.contact.clone(),
    }
}

fn contact_ip(r: &Registration) -> Option<IpAddr> {
    uri_host_port(&r.contact)
        .and_then(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').parse().ok())
}

/// The UA sits behind NAT: its Contact names another address than the one it sends from.
fn natted(r: &Registration, at: &RegAttempt) -> bool {
    contact_ip(r)
        .is_some_and(|ip| ip != at.src.ip && (is_unroutable(&ip) || !is_unroutable(&at.src.ip)))
}

fn host<'a>(cx: &'a crate::rules::Ctx<'_>, ep: &Endpoint) -> Option<&'a HostActivity> {
    cx.analysis
        .hosts
        .binary_search_by(|h| h.endpoint.cmp(ep))
        .ok()
        .and_then(|i| cx.analysis.hosts.get(i))
}

fn attempt_line(at: &RegAttempt) -> String {
    format!(
        "REGISTER {} → {} CSeq {}{}{}",
        at.src,
        at.dst,
        at.cseq,
        at.requested_expires
            .map(|e| format!(", Expires {e}"))
            .unwrap_or_default(),
        if at.credentials.is_some() {
            ", with credentials"
        } else {
            ""
        }
    )
}

fn response_line(at: &RegAttempt) -> Option<(crate::types::FrameRef, Ts, String)> {
    at.response.as_ref().map(|r| {
        (
            r.frame,
            r.ts,
            format!(
                "SIP/2.0 {} {}{}",
                r.code,
                r.reason,
                r.granted_expires
                    .map(|e| format!(" (granted expiry {e} s)"))
                    .unwrap_or_default()
            ),
        )
    })
}

rule! {
    Failed {
        id: "reg.failed",
        severity: Error,
        title: "Registration refused after credentials, or challenge loop",
        explanation: "A 401/407 challenge is the normal first step; the UA answers it with credentials. Here the answer with credentials was still refused (401/403/404), or the registrar kept challenging: wrong password or username, disabled account, or the number is registered elsewhere. Without registration the UA gets no incoming calls.",
        remediation: "Check username, password and realm on the UA against the account; read the reason phrase (e.g. 403 Wrong Guess, User Disabled, Conflict).",
        thresholds: "a REGISTER with credentials answered 401/403/404/407, or ≥ 3 challenges in a row",
    } |cx, out, meta| {
        for r in &cx.analysis.registrations {
            // The outcome is the last answered attempt: a challenge answered and then
            // accepted (even after a stale-nonce round) is a normal registration.
            let Some(last) = r.attempts.iter().rev().find(|a| a.response.is_some()) else { continue };
            let Some(resp) = last.response.as_ref() else { continue };
            let challenge = matches!(resp.code, 401 | 407);
            let failed = resp.code >= 400 && (!challenge || last.credentials.is_some());
            if !failed || resp.challenge.as_ref().is_some_and(|c| c.stale) {
                continue;
            }
            // The trailing run of refusals, for evidence.
            let run: Vec<&RegAttempt> = r
                .attempts
                .iter()
                .rev()
                .take_while(|a| a.response.as_ref().is_none_or(|x| x.code >= 400))
                .filter(|a| a.response.is_some())
                .collect();
            let mut ev = Vec::new();
            for a in run.iter().rev().take(4) {
                ev.push(cx.ev(a.frame, a.ts, attempt_line(a)));
                if let Some((f, t, l)) = response_line(a) {
                    ev.push(cx.ev(f, t, l));
                }
            }
            let with_creds = run.iter().filter(|a| a.credentials.is_some()).count();
            out.push(finding(
                meta,
                reg_subject(r),
                format!(
                    "registration of {} refused: {} {} ({} refused attempts in a row, {with_creds} with credentials)",
                    r.aor,
                    resp.code,
                    resp.reason,
                    run.len()
                ),
                ev,
            ));
        }
    }
}

/// The last successful attempt and its granted expiry.
fn last_ok(r: &Registration) -> Option<(&RegAttempt, u32)> {
    r.attempts.iter().rev().find_map(|a| {
        a.response
            .as_ref()
            .filter(|x| x.code / 100 == 2)
            .and_then(|x| x.granted_expires.or(a.requested_expires))
            .filter(|e| *e > 0)
            .map(|e| (a, e))
    })
}

rule! {
    ExpiryExceedsNat {
        id: "reg.expiry-exceeds-nat",
        severity: Warning,
        title: "Registration expiry longer than the NAT binding lifetime, no keepalive",
        explanation: "The phone sits behind NAT (its Contact is not the address it sends from) and re-registers only every N seconds, with nothing in between to keep the router's UDP mapping alive. Once the mapping is gone, the provider's INVITEs are dropped by the router: incoming calls fail while outgoing calls still work.",
        remediation: "Enable keepalives on the phone (CRLF/OPTIONS every 20–170 s), or lower the registration expiry below the router's UDP timeout (never below 60 s); disable SIP ALG.",
        thresholds: "granted expiry > nat_timeout_s (120 s), NATed contact, and a silence from the UA > nat_timeout_s or no keepalive seen",
    } |cx, out, meta| {
        let nat = cx.thresholds.nat_timeout_s;
        let end = cx.analysis.capture.last_ts.unwrap_or_default();
        for r in &cx.analysis.registrations {
            let Some((a, exp)) = last_ok(r) else { continue };
            if (exp as f64) <= nat || !natted(r, a) {
                continue;
            }
            let h = host(cx, &a.src);
            let keepalives = h
                .map(|h| h.crlf_keepalives + h.options + h.stun + h.notify)
                .unwrap_or(0);
            let gap = h.map(|h| h.max_gap_ms / 1000.0).unwrap_or(0.0);
            let observed = end.secs_since(a.ts) > nat;
            if !(gap > nat || (keepalives == 0 && observed)) {
                continue;
            }
            let mut ev = vec![cx.ev(
                a.frame,
                a.ts,
                format!("{}; Contact {}", attempt_line(a), r.contact),
            )];
            if let Some((f, t, l)) = response_line(a) {
                ev.push(cx.ev(f, t, l));
            }
            if let Some(h) = h.filter(|h| gap > nat) {
                if let (Some(from), Some(to), Some(ft)) =
                    (h.max_gap_from, h.max_gap_to, h.max_gap_from_ts)
                {
                    ev.push(cx.ev(
                        from,
                        ft,
                        format!(
                            "silence from {} of {} (frames {from}–{to}) > NAT timeout {nat:.0} s",
                            h.endpoint,
                            fmt_s(gap)
                        ),
                    ));
                }
            } else {
                ev.push(Evidence {
                    frame: None,
                    time: None,
                    what: format!("no keepalive (CRLF, OPTIONS, STUN, NOTIFY) from {}", a.src),
                });
            }
            out.push(finding(
            meta,
            reg_subject(r),
            format!("{} registers for {exp} s from behind NAT ({} → Contact {}) with no keepalive; NAT timeout assumed {nat:.0} s", r.aor, a.src, r.contact),
            ev,
        ));
        }
    }
}

rule! {
    IntervalTooShort {
        id: "reg.interval-too-short",
        severity: Warning,
        title: "Registration interval too short (or 423 Interval Too Brief)",
        explanation: "Registrations shorter than a minute load the registrar for nothing, and many providers refuse them with 423 Interval Too Brief (giving a Min-Expires). A UA that ignores the 423 never registers.",
        remediation: "Set the registration expiry to at least 60 s (and to the registrar's Min-Expires); use keepalives rather than very short registrations to hold the NAT binding.",
        thresholds: "requested or granted expiry < min_register_s (60 s), or any 423",
    } |cx, out, meta| {
        let min = cx.thresholds.min_register_s;
        for r in &cx.analysis.registrations {
            let bad = r.attempts.iter().find(|a| {
                a.response.as_ref().is_some_and(|x| x.code == 423)
                    || (!a.unregister && a.requested_expires.is_some_and(|e| e > 0 && e < min))
                    || a.response
                        .as_ref()
                        .and_then(|x| x.granted_expires)
                        .is_some_and(|e| e > 0 && e < min)
            });
            let Some(a) = bad else { continue };
            let mut ev = vec![cx.ev(a.frame, a.ts, attempt_line(a))];
            if let Some((f, t, l)) = response_line(a) {
                ev.push(cx.ev(f, t, l));
            }
            let what = match a.response.as_ref() {
                Some(x) if x.code == 423 => format!(
                    "423 {} (Min-Expires {})",
                    x.reason,
                    x.min_expires
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "?".into())
                ),
                _ => format!(
                    "expiry {} s < {min} s",
                    a.response
                        .as_ref()
                        .and_then(|x| x.granted_expires)
                        .or(a.requested_expires)
                        .unwrap_or(0)
                ),
            };
            out.push(finding(
                meta,
                reg_subject(r),
                format!("{}: {what}", r.aor),
                ev,
            ));
        }
    }
}

rule! {
    Lapsed {
        id: "reg.lapsed",
        severity: Warning,
        title: "Registration expired without a refresh",
        explanation: "The binding was granted for N seconds and the capture goes on past that time, but the UA never refreshed it: from then on the registrar has no address for it and incoming calls fail.",
        remediation: "Check why the UA stopped re-registering (crashed, lost network, DNS failure) and its re-registration timer.",
        thresholds: "capture continues past the granted expiry with no later REGISTER for the binding",
    } |cx, out, meta| {
        let end = cx.analysis.capture.last_ts.unwrap_or_default();
        for r in &cx.analysis.registrations {
            let Some((a, exp)) = last_ok(r) else { continue };
            let expiry = Ts(a.ts.0.saturating_add(exp as i64 * Ts::NS_PER_SEC));
            let later = r.attempts.iter().any(|x| x.ts > a.ts);
            if later || end <= expiry {
                continue;
            }
            let mut ev = vec![cx.ev(a.frame, a.ts, attempt_line(a))];
            if let Some((f, t, l)) = response_line(a) {
                ev.push(cx.ev(f, t, l));
            }
            ev.push(Evidence {
                frame: None,
                time: Some(cx.rel(expiry)),
                what: format!(
                    "binding expired at {:.3} s; capture lasts until {:.3} s",
                    cx.rel(expiry),
                    cx.rel(end)
                ),
            });
            out.push(finding(
                meta,
                reg_subject(r),
                format!("{} lapsed: granted {exp} s, not refreshed", r.aor),
                ev,
            ));
        }
    }
}

/// Timestamps of SIP messages sent from `ep` outside calls (registrations, OOD).
fn sent_from<'a>(cx: &'a crate::rules::Ctx<'_>, ep: &'a Endpoint) -> impl Iterator<Item = Ts> + 'a {
    let a = cx.analysis;
    a.registrations
        .iter()
        .flat_map(|r| r.attempts.iter())
        .filter(move |x| x.src == *ep)
        .map(|x| x.ts)
        .chain(
            a.out_of_dialog
                .iter()
                .filter(move |o| o.src == *ep)
                .map(|o| o.ts),
        )
}

/// When one endpoint sent SIP in calls, as runs of messages no two consecutive of which
/// are more than `nat` seconds apart (start → end): a time inside a run has a message
/// at most `nat` seconds before it, and after a run the last message before it is the
/// run's end. That is all `reg.binding-expired-inbound-lost` asks of calls, and it
/// costs one entry per silence longer than the NAT timeout, not one per message.
#[derive(Default)]
struct Runs(std::collections::BTreeMap<Ts, Ts>);

/// What [`Runs::last_before`] knows of the call messages before a time.
enum Before {
    /// One within the NAT timeout: the binding was alive.
    Recent,
    /// The last one (or none).
    Last(Option<Ts>),
}

impl Runs {
    fn insert(&mut self, ts: Ts, nat: f64) {
        // The same test as the rule's `idle <= nat`, so that a time inside a run is
        // exactly a time the rule would not judge idle.
        let close = |end: Ts, next: Ts| next <= end || next.secs_since(end) <= nat;
        let (mut start, mut end) = (ts, ts);
        if let Some((&s, &e)) = self.0.range(..=start).next_back()
            && close(e, start)
        {
            self.0.remove(&s);
            start = s;
            end = end.max(e);
        }
        while let Some((&s, &e)) = self.0.range(start..).next()
            && close(end, s)
        {
            self.0.remove(&s);
            end = end.max(e);
        }
        self.0.insert(start, end);
    }

    fn last_before(&self, t: Ts) -> Before {
        match self.0.range(..t).next_back() {
            None => Before::Last(None),
            Some((_, &end)) if end < t => Before::Last(Some(end)),
            Some(_) => Before::Recent,
        }
    }
}

rule! {
    BindingExpiredInboundLost {
        id: "reg.binding-expired-inbound-lost",
        severity: Error,
        title: "Inbound call lost: the NAT binding of a registered phone had expired",
        explanation: "An INVITE was sent to a registered phone's public address and got no answer, after the phone had been silent longer than a NAT binding lasts. The router had forgotten the mapping and dropped the INVITE: the classic \"incoming calls stop working a few minutes after the phone registers, outgoing calls work\".",
        remediation: "Enable keepalives on the phone (every 20–170 s), or lower the registration expiry below the router's UDP timeout (not below 60 s), or forward the SIP port on the router; disable SIP ALG.",
        thresholds: "INVITE to a registered contact's source address, no response, UA silent > nat_timeout_s (120 s) before it",
        aggregate: BindingExpiredAgg::default(),
    }
}

/// A call whose first INVITE got no response, as `reg.binding-expired-inbound-lost`
/// reports it.
struct Unanswered {
    key: (crate::types::FrameRef, String),
    subject: Subject,
    src: Endpoint,
    dst: Endpoint,
    first_frame: crate::types::FrameRef,
    first_ts: Ts,
    retransmissions: u32,
}

/// What `reg.binding-expired-inbound-lost` keeps: the calls whose first INVITE got no
/// response (a few fields each), and for every endpoint that sent SIP in a call the
/// [`Runs`] of its messages (one entry per silence longer than the NAT timeout, so an
/// endpoint that talks steadily costs one entry whatever its number of calls). The
/// registrations and out-of-dialog requests are joined at the end.
#[derive(Default)]
struct BindingExpiredAgg {
    unanswered: Vec<Unanswered>,
    sent: std::collections::HashMap<Endpoint, Runs>,
}

impl crate::rules::Aggregate for BindingExpiredAgg {
    fn observe(&mut self, cx: &crate::rules::Ctx<'_>, u: &crate::rules::Unit<'_>) {
        let Some(c) = u.call else { return };
        let nat = cx.thresholds.nat_timeout_s;
        for m in &c.sip.messages {
            self.sent.entry(m.src).or_default().insert(m.ts, nat);
        }
        let Some(inv) = c
            .sip
            .transactions
            .iter()
            .find(|t| t.method == Method::Invite)
        else {
            return;
        };
        if !inv.responses.is_empty() {
            return;
        }
        let (frame, id) = u.sort_key();
        self.unanswered.push(Unanswered {
            key: (frame, id.to_string()),
            subject: call_subject(c),
            src: inv.src,
            dst: inv.dst,
            first_frame: inv.first_frame,
            first_ts: inv.first_ts,
            retransmissions: inv.retransmissions,
        });
    }

    fn finish(
        self: Box<Self>,
        cx: &crate::rules::Ctx<'_>,
        meta: &'static crate::rules::RuleMeta,
        out: &mut Vec<crate::rules::Finding>,
    ) {
        let nat = cx.thresholds.nat_timeout_s;
        let mut unanswered = self.unanswered;
        // Calls in report order, as the whole-model check met them.
        unanswered.sort_by(|a, b| a.key.cmp(&b.key));
        for inv in unanswered {
            let Some(reg) = cx.analysis.registrations.iter().find(|r| {
                r.attempts
                    .iter()
                    .any(|a| a.src == inv.dst && a.ts < inv.first_ts)
            }) else {
                continue;
            };
            let in_calls = match self.sent.get(&inv.dst) {
                Some(runs) => runs.last_before(inv.first_ts),
                None => Before::Last(None),
            };
            // A call message within the NAT timeout before the INVITE: whatever else was
            // sent, the silence was not longer.
            let Before::Last(in_calls) = in_calls else {
                continue;
            };
            let mut sent: Vec<Ts> = sent_from(cx, &inv.dst)
                .filter(|t| *t < inv.first_ts)
                .chain(in_calls)
                .collect();
            if let Some(h) = host(cx, &inv.dst)
                && let Some(ft) = h.max_gap_from_ts
            {
                let gap_end = Ts(ft.0.saturating_add((h.max_gap_ms * 1e6) as i64));
                if ft < inv.first_ts && inv.first_ts <= gap_end {
                    sent.push(ft);
                }
            }
            let Some(last) = sent.iter().max().copied() else {
                continue;
            };
            let idle = inv.first_ts.secs_since(last);
            if idle <= nat {
                continue;
            }
            let reg_at = reg
                .attempts
                .iter()
                .rev()
                .find(|a| a.src == inv.dst && a.ts < inv.first_ts);
            let mut ev = Vec::new();
            if let Some(a) = reg_at {
                ev.push(cx.ev(
                    a.frame,
                    a.ts,
                    format!("{}; Contact {}", attempt_line(a), reg.contact),
                ));
            }
            ev.push(cx.ev(
                inv.first_frame,
                inv.first_ts,
                format!(
                    "INVITE {} → {}: no response ({} retransmissions)",
                    inv.src, inv.dst, inv.retransmissions
                ),
            ));
            ev.push(Evidence {
                frame: None,
                time: Some(cx.rel(last)),
                what: format!(
                    "last packet from {} {} before the INVITE (> NAT timeout {nat:.0} s)",
                    inv.dst,
                    fmt_s(idle)
                ),
            });
            out.push(finding(
                meta,
                inv.subject,
                format!("inbound INVITE to registered {} unanswered; the phone had been silent {} (> {nat:.0} s): NAT binding expired", inv.dst, fmt_s(idle)),
                ev,
            ));
        }
    }
}

rule! {
    KeepaliveMissing {
        id: "keepalive.missing",
        severity: Warning,
        title: "A NATed UA went silent longer than a NAT binding lasts",
        explanation: "Between two packets from this UA there was a silence longer than the router keeps a UDP mapping. Anything sent to it in that window (INVITE, NOTIFY) is dropped by the router.",
        remediation: "Enable SIP keepalives (CRLF or OPTIONS) every 20–170 s on the UA, or shorten the registration interval.",
        thresholds: "a registered UA behind NAT silent > nat_timeout_s (120 s)",
    } |cx, out, meta| {
        let nat = cx.thresholds.nat_timeout_s;
        for r in &cx.analysis.registrations {
            let Some(a) = r.attempts.iter().find(|a| natted(r, a)) else {
                continue;
            };
            let Some(h) = host(cx, &a.src) else { continue };
            if h.max_gap_ms / 1000.0 <= nat {
                continue;
            }
            let (Some(from), Some(to), Some(ft)) =
                (h.max_gap_from, h.max_gap_to, h.max_gap_from_ts)
            else {
                continue;
            };
            out.push(finding(
            meta,
            reg_subject(r),
            format!("{} silent for {} (> NAT timeout {nat:.0} s); keepalives seen: {} CRLF, {} OPTIONS, {} STUN", h.endpoint, fmt_s(h.max_gap_ms / 1000.0), h.crlf_keepalives, h.options, h.stun),
            vec![cx.ev(from, ft, format!("last packet before the silence (frames {from}–{to})"))],
        ));
        }
    }
}

rule! {
    OptionsUnanswered {
        id: "keepalive.options-unanswered",
        severity: Warning,
        title: "OPTIONS keepalives not answered",
        explanation: "Trunks and PBXs probe each other with OPTIONS and expect 200 OK every time. Unanswered OPTIONS mark the peer as down (calls stop being routed to it) and suggest a firewall or routing problem toward it.",
        remediation: "Make sure the peer answers OPTIONS (qualify) and that its answers can come back (firewall, NAT).",
        thresholds: "OPTIONS without any response",
    } |cx, out, meta| {
        let mut by_dst: std::collections::BTreeMap<String, Vec<&crate::sip::state::OutOfDialog>> =
            Default::default();
        for o in cx
            .analysis
            .out_of_dialog
            .iter()
            .filter(|o| o.method == Method::Options && o.response.is_none())
        {
            by_dst.entry(o.dst.to_string()).or_default().push(o);
        }
        for (dst, list) in by_dst {
            let total = cx
                .analysis
                .out_of_dialog
                .iter()
                .filter(|o| o.method == Method::Options && o.dst.to_string() == dst)
                .count();
            let ev = list
                .iter()
                .take(5)
                .map(|o| {
                    cx.ev(
                        o.frame,
                        o.ts,
                        format!("OPTIONS {} → {}: no response", o.src, o.dst),
                    )
                })
                .collect();
            out.push(finding(
                meta,
                Subject::Host {
                    address: dst.clone(),
                },
                format!("{} of {total} OPTIONS to {dst} unanswered", list.len()),
                ev,
            ));
        }
    }
}

rule! {
    KeepaliveInterval {
        id: "keepalive.interval",
        severity: Info,
        title: "Keepalive interval outside the recommended 20–170 s",
        explanation: "Keepalives more often than every 20 s waste traffic at scale; less often than every 170 s risk the router forgetting the mapping in between.",
        remediation: "Set the UA's keepalive interval between 20 and 170 s (below the router's UDP timeout).",
        thresholds: "keepalive_min_s (20) … keepalive_max_s (170)",
    } |cx, out, meta| {
        for h in &cx.analysis.hosts {
            let (Some(lo), Some(hi)) = (h.keepalive_min_interval_s, h.keepalive_max_interval_s)
            else {
                continue;
            };
            let kinds = h.crlf_keepalives + h.options + h.stun + h.notify;
            if kinds < 3 {
                continue;
            }
            let bad = if hi > cx.thresholds.keepalive_max_s {
                Some(format!(
                    "up to {} between keepalives (> {:.0} s)",
                    fmt_s(hi),
                    cx.thresholds.keepalive_max_s
                ))
            } else if lo < cx.thresholds.keepalive_min_s {
                Some(format!(
                    "keepalives every {} (< {:.0} s)",
                    fmt_s(lo),
                    cx.thresholds.keepalive_min_s
                ))
            } else {
                None
            };
            if let Some(b) = bad {
                out.push(finding(
                    meta,
                    Subject::Host {
                        address: h.endpoint.to_string(),
                    },
                    format!("{}: {b}", h.endpoint),
                    vec![cx.ev(
                        h.first_frame,
                        h.first_ts,
                        format!(
                            "{} CRLF, {} OPTIONS, {} STUN, {} NOTIFY keepalives",
                            h.crlf_keepalives, h.options, h.stun, h.notify
                        ),
                    )],
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Before, Runs};
    use crate::types::Ts;

    /// `Runs` answers what the whole list of message times answered: the last time before
    /// `t`, unless one is within the NAT timeout (then the rule would not fire anyway).
    #[test]
    fn runs_agree_with_the_list_of_times() {
        let nat = 120.0;
        // Deterministic pseudo-random times (seconds), inserted in shuffled order.
        let mut x: u64 = 12345;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for _ in 0..50 {
            let times: Vec<Ts> = (0..40)
                .map(|_| Ts((next() % 3000) as i64 * 1_000_000_000 + (next() % 3) as i64))
                .collect();
            let mut runs = Runs::default();
            for t in &times {
                runs.insert(*t, nat);
            }
            for q in 0..3100 {
                let t = Ts(q * 1_000_000_000 + 1);
                let last = times.iter().filter(|x| **x < t).max().copied();
                match runs.last_before(t) {
                    Before::Recent => {
                        let l = last.expect("a recent message exists");
                        assert!(t.secs_since(l) <= nat);
                    }
                    Before::Last(got) => assert_eq!(got, last),
                }
            }
        }
    }
}
