//! Security rules: scanners, password guessing, toll fraud patterns, floods. They look at
//! every SIP request by source address.

use crate::rules::catalogue::rule;
use crate::rules::{Evidence, Subject, finding};
use crate::sip::state::MsgKind;
use crate::sip::wire::{Method, uri_user};
use crate::types::{FrameRef, Ts};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// Known scanner User-Agents (case-insensitive substrings). Not listed on purpose:
/// "fpbx" (FreePBX's own `FPBX-…` User-Agent) and "ozeki" (a commercial VoIP SDK), both
/// ordinary software that an earlier list flagged on ordinary captures.
const SCANNERS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "vaxsipuseragent",
    "sundayddr",
    "iwar",
    "sipsak",
    "smap",
    "pplsip",
    "cantcoco",
    "sipptk",
];

/// One SIP request as the security rules see it.
struct Req<'a> {
    src: IpAddr,
    frame: FrameRef,
    ts: Ts,
    method: &'a Method,
    to_user: Option<String>,
    ua: Option<String>,
}

fn requests<'a>(a: &'a crate::correlate::Analysis) -> Vec<Req<'a>> {
    let mut v = Vec::new();
    for c in &a.calls {
        for m in &c.sip.messages {
            if let MsgKind::Request { method, .. } = &m.kind {
                if m.retransmission {
                    continue;
                }
                v.push(Req {
                    src: m.src.ip,
                    frame: m.frame,
                    ts: m.ts,
                    method,
                    to_user: m
                        .msg
                        .to_hdr()
                        .and_then(|t| uri_user(&t.uri).map(str::to_string)),
                    ua: m
                        .msg
                        .header_value(crate::sip::wire::HeaderName::UserAgent)
                        .map(|u| u.into_owned()),
                });
            }
        }
    }
    for o in &a.out_of_dialog {
        v.push(Req {
            src: o.src.ip,
            frame: o.frame,
            ts: o.ts,
            method: &o.method,
            to_user: uri_user(&o.to).map(str::to_string),
            ua: o.user_agent.clone(),
        });
    }
    for r in &a.registrations {
        for at in &r.attempts {
            v.push(Req {
                src: at.src.ip,
                frame: at.frame,
                ts: at.ts,
                method: &Method::Register,
                to_user: uri_user(&r.aor).map(str::to_string),
                ua: r.user_agent.clone(),
            });
        }
    }
    v.sort_by_key(|r| (r.ts, r.frame));
    v
}

rule! {
    Scanner {
        id: "security.scanner",
        severity: Warning,
        title: "SIP scanner activity",
        explanation: "A source identifies itself as a known SIP scanning tool (friendly-scanner, sipvicious, ...) or probes many different extensions: someone is looking for accounts to break into or open relays for toll fraud.",
        remediation: "Block the source at the firewall, allow SIP only from your provider's ranges, use fail2ban or the PBX's ACLs, and make sure every extension has a strong password.",
        thresholds: "scanner User-Agent, or requests to ≥ scan_users (10) distinct user parts from one source",
    } |cx, out, meta| {
        let reqs = requests(cx.analysis);
        let mut by_src: BTreeMap<IpAddr, (Vec<&Req>, BTreeSet<String>)> = BTreeMap::new();
        for r in &reqs {
            let e = by_src.entry(r.src).or_default();
            e.0.push(r);
            if let Some(u) = &r.to_user
                && e.1.len() < 10_000
            {
                e.1.insert(u.clone());
            }
        }
        for (src, (list, users)) in by_src {
            let tool = list.iter().find_map(|r| {
                r.ua.as_ref()
                    .filter(|ua| SCANNERS.iter().any(|s| ua.to_ascii_lowercase().contains(s)))
            });
            if tool.is_none() && users.len() < cx.thresholds.scan_users {
                continue;
            }
            let first = list[0];
            let mut ev = vec![cx.ev(
                first.frame,
                first.ts,
                format!(
                        "{} from {src}{}",
                        first.method.as_str(),
                        first
                            .ua
                            .as_ref()
                            .map(|u| format!(", User-Agent: {u}"))
                            .unwrap_or_default()
                    ),
            )];
            ev.push(Evidence {
                frame: None,
                time: None,
                what: format!("{} requests to {} distinct users", list.len(), users.len()),
            });
            let why = match tool {
                Some(t) => format!("User-Agent \"{t}\""),
                None => format!("{} distinct users probed", users.len()),
            };
            out.push(finding(
                meta,
                Subject::Host {
                    address: src.to_string(),
                },
                format!(
                    "{src} looks like a SIP scanner: {why}, {} requests",
                    list.len()
                ),
                ev,
            ));
        }
    }
}

rule! {
    Bruteforce {
        id: "security.bruteforce",
        severity: Error,
        title: "Password guessing: many authentication failures from one source",
        explanation: "One source keeps answering challenges with credentials that are refused: someone is guessing passwords. A success would let them place calls on your account.",
        remediation: "Block the source, use long random SIP passwords, restrict registration to known networks, enable fail2ban.",
        thresholds: "auth_failures (10) refused credentialed requests from one source",
    } |cx, out, meta| {
        let mut by: BTreeMap<IpAddr, Vec<(FrameRef, Ts, u16)>> = BTreeMap::new();
        for r in &cx.analysis.registrations {
            for a in &r.attempts {
                if a.credentials.is_some()
                    && let Some(x) = a
                        .response
                        .as_ref()
                        .filter(|x| matches!(x.code, 401 | 403 | 407))
                {
                    by.entry(a.src.ip)
                        .or_default()
                        .push((a.frame, a.ts, x.code));
                }
            }
        }
        for c in &cx.analysis.calls {
            for t in &c.sip.transactions {
                let creds = c.sip.messages.iter().any(|m| {
                    m.frame == t.first_frame
                        && (m
                            .msg
                            .header(crate::sip::wire::HeaderName::Authorization)
                            .is_some()
                            || m.msg
                                .header(crate::sip::wire::HeaderName::ProxyAuthorization)
                                .is_some())
                });
                if creds && matches!(t.final_code, Some(401 | 403 | 407)) {
                    by.entry(t.src.ip).or_default().push((
                        t.first_frame,
                        t.first_ts,
                        t.final_code.unwrap_or(0),
                    ));
                }
            }
        }
        for (src, list) in by {
            if (list.len() as u64) < cx.thresholds.auth_failures {
                continue;
            }
            let ev = list
                .iter()
                .take(5)
                .map(|(f, t, c)| cx.ev(*f, *t, format!("credentials from {src} refused with {c}")))
                .collect();
            out.push(finding(
                meta,
                Subject::Host {
                    address: src.to_string(),
                },
                format!("{} refused authentication attempts from {src}", list.len()),
                ev,
            ));
        }
    }
}

fn international(user: &str) -> bool {
    let u = user.trim_start_matches("tel:");
    u.starts_with('+') || u.starts_with("00") || u.starts_with("011")
}

rule! {
    TollFraud {
        id: "security.toll-fraud",
        severity: Error,
        title: "Burst of calls to many or international destinations",
        explanation: "One source tried many different destinations within a minute, several of them international: the pattern of toll fraud on a hijacked account or open PBX, which runs up large bills on premium-rate numbers.",
        remediation: "Block the source and the account, change its password, set spend limits and a destination whitelist with the provider.",
        thresholds: "INVITEs to ≥ fraud_destinations (10) distinct numbers within 60 s from one source",
    } |cx, out, meta| {
        let reqs: Vec<Req> = requests(cx.analysis)
            .into_iter()
            .filter(|r| *r.method == Method::Invite)
            .collect();
        let mut by: BTreeMap<IpAddr, Vec<&Req>> = BTreeMap::new();
        for r in &reqs {
            by.entry(r.src).or_default().push(r);
        }
        for (src, list) in by {
            // Sliding 60 s window with a count per destination: distinct destinations
            // in the window without rebuilding a set per request (that was quadratic in
            // a burst).
            let mut best: Option<(usize, usize)> = None;
            let mut in_window: HashMap<&str, usize> = HashMap::new();
            let mut j = 0;
            for i in 0..list.len() {
                if let Some(u) = list[i].to_user.as_deref() {
                    *in_window.entry(u).or_default() += 1;
                }
                while list[i].ts.secs_since(list[j].ts) > 60.0 {
                    if let Some(u) = list[j].to_user.as_deref()
                        && let Some(n) = in_window.get_mut(u)
                    {
                        *n -= 1;
                        if *n == 0 {
                            in_window.remove(u);
                        }
                    }
                    j += 1;
                }
                if best.is_none_or(|(b, _)| in_window.len() > b) {
                    best = Some((in_window.len(), j));
                }
            }
            let Some((n, start)) = best else { continue };
            if n < cx.thresholds.fraud_destinations {
                continue;
            }
            let intl = list
                .iter()
                .filter(|r| r.to_user.as_deref().is_some_and(international))
                .count();
            let ev = list[start..]
                .iter()
                .take(5)
                .map(|r| {
                    cx.ev(
                        r.frame,
                        r.ts,
                        format!(
                            "INVITE from {src} to {}",
                            r.to_user.clone().unwrap_or_default()
                        ),
                    )
                })
                .collect();
            out.push(finding(
                meta,
                Subject::Host {
                    address: src.to_string(),
                },
                format!(
                    "{src} called {n} distinct destinations within 60 s ({intl} international)"
                ),
                ev,
            ));
        }
    }
}

rule! {
    Flood {
        id: "security.flood",
        severity: Warning,
        title: "SIP request flood from one source",
        explanation: "One source sends SIP requests faster than any normal device: a denial-of-service attempt, a misbehaving device in a loop, or a scanner at full speed.",
        remediation: "Rate-limit or block the source (pike module, fail2ban, firewall), find the looping device.",
        thresholds: "flood_rps (50) requests in one second from one source",
    } |cx, out, meta| {
        let reqs = requests(cx.analysis);
        let mut by: BTreeMap<IpAddr, Vec<&Req>> = BTreeMap::new();
        for r in &reqs {
            by.entry(r.src).or_default().push(r);
        }
        for (src, list) in by {
            let mut j = 0;
            let mut best = (0usize, 0usize);
            for i in 0..list.len() {
                while list[i].ts.secs_since(list[j].ts) >= 1.0 {
                    j += 1;
                }
                if i + 1 - j > best.0 {
                    best = (i + 1 - j, j);
                }
            }
            if (best.0 as f64) < cx.thresholds.flood_rps {
                continue;
            }
            let r = list[best.1];
            out.push(finding(
                meta,
                Subject::Host {
                    address: src.to_string(),
                },
                format!(
                    "{} SIP requests within one second from {src} ({} in all)",
                    best.0,
                    list.len()
                ),
                vec![cx.ev(
                    r.frame,
                    r.ts,
                    format!("first request of the busiest second: {}", r.method.as_str()),
                )],
            ));
        }
    }
}
