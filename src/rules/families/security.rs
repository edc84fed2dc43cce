//! Security rules: scanners, password guessing, toll fraud patterns, floods, by source
//! address. Scanner, flood and toll fraud judge the engine's per-source request summary
//! ([`SourceRequests`], counted in capture order with windows that close as the capture
//! clock passes them), so they keep nothing per call or per request. Password guessing is
//! a running aggregate: a call's refused credentialed transactions are read when the call
//! is finalised, registrations' at the end.

use crate::rules::catalogue::rule;
use crate::rules::{Aggregate, Ctx, Evidence, Finding, RuleMeta, Subject, Unit, finding};
use crate::sip::state::sources::SourceRequests;
use crate::sip::wire::HeaderName;
use crate::types::{FrameRef, Ts};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// An index as the aggregates store it (4 bytes instead of 8).
fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn host(s: &SourceRequests) -> Subject {
    Subject::Host {
        address: s.ip.to_string(),
    }
}

rule! {
    Scanner {
        id: "security.scanner",
        severity: Warning,
        title: "SIP scanner activity",
        explanation: "A source identifies itself as a known SIP scanning tool (friendly-scanner, sipvicious, ...) or probes many different extensions and is mostly refused or unanswered: someone is looking for accounts to break into or open relays for toll fraud. (A PBX or trunk also calls many numbers, but most of its requests ring or succeed.)",
        remediation: "Block the source at the firewall, allow SIP only from your provider's ranges, use fail2ban or the PBX's ACLs, and make sure every extension has a strong password.",
        thresholds: "scanner User-Agent, or requests to ≥ scan_users (10) distinct user parts from one source of which fewer than half (ACKs aside) got a ringing or success response"
    } |cx, out, meta| {
        for s in &cx.analysis.sources {
            let users = s.users.len();
            let refused = u64::from(s.progressed) * 2 < u64::from(s.answerable);
            if s.tool.is_none() && (users < cx.thresholds.scan_users || !refused) {
                continue;
            }
            let src = s.ip;
            let first = &s.first;
            let ev = vec![
                cx.ev(
                    first.frame,
                    first.ts,
                    format!(
                        "{} from {src}{}",
                        first.method.as_str(),
                        first
                            .user_agent
                            .as_ref()
                            .map(|u| format!(", User-Agent: {u}"))
                            .unwrap_or_default()
                    ),
                ),
                Evidence {
                    frame: None,
                    time: None,
                    what: format!(
                        "{} requests to {users} distinct users; {} of the {} that expect a response got ringing or success",
                        s.requests, s.progressed, s.answerable
                    ),
                },
            ];
            let why = match s.tool.as_ref().and_then(|t| t.user_agent.as_ref()) {
                Some(t) => format!("User-Agent \"{t}\""),
                None => format!("{users} distinct users probed"),
            };
            out.push(finding(
                meta,
                host(s),
                format!(
                    "{src} looks like a SIP scanner: {why}, {} requests",
                    s.requests
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
        aggregate: BruteforceAgg::default(),
    }
}

/// Refused attempts a `security.bruteforce` finding quotes.
const BRUTE_EVIDENCE: usize = 5;

/// A refused credentialed request: frame, time, code.
type Refusal = (FrameRef, Ts, u16);

/// Where a call's transaction stands in report order: the call's key (first frame,
/// Call-ID), then the transaction's index in the call.
type TxPlace = (FrameRef, Box<str>, u32);

/// What `security.bruteforce` keeps of one source's calls: how many of their credentialed
/// transactions were refused, and the first [`BRUTE_EVIDENCE`] of those by place (the
/// call's report key, the transaction's index in it).
#[derive(Default)]
struct BruteSrc {
    refused: usize,
    first: Vec<(TxPlace, Refusal)>,
}

/// `security.bruteforce` by source ([`BruteSrc`]): the finding quotes its first
/// [`BRUTE_EVIDENCE`] refusals, registrations' first (read at the end), then calls' in
/// report order, so no call past the first few of a source can be quoted. A call whose
/// credentials were accepted, or that sent none, costs nothing.
#[derive(Default)]
struct BruteforceAgg {
    by_src: BTreeMap<IpAddr, BruteSrc>,
}

impl Aggregate for BruteforceAgg {
    fn observe(&mut self, _cx: &Ctx<'_>, u: &Unit<'_>) {
        let Some(c) = u.call else { return };
        for (ti, t) in c.sip.transactions.iter().enumerate() {
            let Some(code) = t.final_code.filter(|c| matches!(c, 401 | 403 | 407)) else {
                continue;
            };
            let creds = c.sip.messages.iter().any(|m| {
                m.frame == t.first_frame
                    && (m.msg.header(HeaderName::Authorization).is_some()
                        || m.msg.header(HeaderName::ProxyAuthorization).is_some())
            });
            if !creds {
                continue;
            }
            let e = self.by_src.entry(t.src.ip).or_default();
            e.refused += 1;
            let key = (c.sip.first_frame, c.sip.call_id.as_str(), idx(ti));
            let at = e
                .first
                .partition_point(|((f, id, i), _)| (*f, &**id, *i) < key);
            if at < BRUTE_EVIDENCE {
                e.first.insert(
                    at,
                    (
                        (key.0, key.1.into(), key.2),
                        (t.first_frame, t.first_ts, code),
                    ),
                );
                e.first.truncate(BRUTE_EVIDENCE);
            }
        }
    }

    fn finish(self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>) {
        // Registrations' refused attempts, in their order, then the calls'.
        let mut by: BTreeMap<IpAddr, (Vec<Refusal>, BruteSrc)> = BTreeMap::new();
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
                        .0
                        .push((a.frame, a.ts, x.code));
                }
            }
        }
        for (src, calls) in self.by_src {
            by.entry(src).or_default().1 = calls;
        }
        for (src, (regs, calls)) in by {
            let total = regs.len() + calls.refused;
            if (total as u64) < cx.thresholds.auth_failures {
                continue;
            }
            let ev = regs
                .iter()
                .chain(calls.first.iter().map(|(_, r)| r))
                .take(BRUTE_EVIDENCE)
                .map(|(f, t, c)| cx.ev(*f, *t, format!("credentials from {src} refused with {c}")))
                .collect();
            out.push(finding(
                meta,
                Subject::Host {
                    address: src.to_string(),
                },
                format!("{total} refused authentication attempts from {src}"),
                ev,
            ));
        }
    }
}

rule! {
    TollFraud {
        id: "security.toll-fraud",
        severity: Error,
        title: "Burst of calls to many or international destinations",
        explanation: "One source tried many different destinations within a minute, several of them international: the pattern of toll fraud on a hijacked account or open PBX, which runs up large bills on premium-rate numbers.",
        remediation: "Block the source and the account, change its password, set spend limits and a destination whitelist with the provider.",
        thresholds: "INVITEs to ≥ fraud_destinations (10) distinct numbers within 60 s from one source"
    } |cx, out, meta| {
        for s in &cx.analysis.sources {
            let (n, quotes) = &s.busiest_minute;
            if quotes.is_empty() || (*n as usize) < cx.thresholds.fraud_destinations {
                continue;
            }
            let src = s.ip;
            let ev = quotes
                .iter()
                .map(|(f, t, u)| {
                    cx.ev(
                        *f,
                        *t,
                        format!("INVITE from {src} to {}", u.as_deref().unwrap_or_default()),
                    )
                })
                .collect();
            out.push(finding(
                meta,
                host(s),
                format!(
                    "{src} called {n} distinct destinations within 60 s ({} international)",
                    s.international
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
        thresholds: "flood_rps (50) requests in one second from one source"
    } |cx, out, meta| {
        for s in &cx.analysis.sources {
            let (n, frame, ts, method) = &s.busiest_second;
            if f64::from(*n) < cx.thresholds.flood_rps {
                continue;
            }
            out.push(finding(
                meta,
                host(s),
                format!(
                    "{n} SIP requests within one second from {} ({} in all)",
                    s.ip, s.requests
                ),
                vec![cx.ev(
                    *frame,
                    *ts,
                    format!("first request of the busiest second: {}", method.as_str()),
                )],
            ));
        }
    }
}
