//! Security rules: scanners, password guessing, toll fraud patterns, floods. They look at
//! every SIP request by source address. Each is a running aggregate: a call's requests
//! are read when the call is finalised (calls arrive in any order), out-of-dialog requests
//! and registrations at the end, and the capture order the checks need is rebuilt from
//! [`Place`]s then.

use crate::correlate::Call;
use crate::rules::catalogue::rule;
use crate::rules::{Aggregate, Ctx, Evidence, Finding, RuleMeta, Subject, Unit, finding};
use crate::sip::state::{MsgKind, MsgRecord};
use crate::sip::wire::{HeaderName, Method, uri_user};
use crate::types::{FrameRef, Ts};
use std::collections::{BTreeMap, HashMap, HashSet};
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

fn is_scanner(ua: &str) -> bool {
    let ua = ua.to_ascii_lowercase();
    SCANNERS.iter().any(|s| ua.contains(s))
}

/// An index as the aggregates store it (4 bytes a request instead of 8).
fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The requests of a call the security rules count (retransmissions are not new
/// requests), each with its index among the call's messages.
fn call_requests(c: &Call) -> impl Iterator<Item = (u32, &MsgRecord, &Method)> {
    c.sip
        .messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match &m.kind {
            MsgKind::Request { method, .. } if !m.retransmission => Some((idx(i), m, method)),
            _ => None,
        })
}

/// Keep, by source, the requests of call `c` that `x` picks (with the number it gives,
/// an interned method or user part), registering the call in `calls` on its first one.
fn keep_requests(
    by_src: &mut BTreeMap<IpAddr, Vec<CallReq>>,
    calls: &mut Arrivals,
    c: &Call,
    mut x: impl FnMut(&MsgRecord, &Method) -> Option<u32>,
) {
    let mut me = None;
    for (i, m, method) in call_requests(c) {
        let Some(x) = x(m, method) else { continue };
        let call = *me.get_or_insert_with(|| calls.add(c));
        by_src.entry(m.src.ip).or_default().push(CallReq {
            ts: m.ts,
            frame: m.frame,
            call,
            msg: i,
            x,
        });
    }
}

fn to_user(m: &MsgRecord) -> Option<String> {
    m.msg
        .to_hdr()
        .and_then(|t| uri_user(&t.uri).map(str::to_string))
}

/// Where a request stands in the order the security checks read requests in: by time,
/// then frame; among equals (one frame can carry several requests), a call's requests
/// before out-of-dialog ones before registration attempts (`from` 0, 1, 2), calls in
/// report order (`a` is the call's rank), then each call's messages, the out-of-dialog
/// list and the registrations with their attempts in their own order (`a`, `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    ts: Ts,
    frame: FrameRef,
    from: u8,
    a: u32,
    b: u32,
}

/// A call's request as an aggregate keeps it: when and in which frame, which call (its
/// arrival number, see [`Arrivals`]), which of the call's messages, and the one thing
/// the rule needs of it (`x`, an interned name).
struct CallReq {
    ts: Ts,
    frame: FrameRef,
    call: u32,
    msg: u32,
    x: u32,
}

impl CallReq {
    fn place(&self, rank: &[u32]) -> Place {
        Place {
            ts: self.ts,
            frame: self.frame,
            from: 0,
            a: rank.get(self.call as usize).copied().unwrap_or(u32::MAX),
            b: self.msg,
        }
    }
}

/// The calls that gave an aggregate a request, in arrival order, by their report-order
/// key (first frame, Call-ID): units arrive in any order, and two calls' requests in one
/// frame are read in report order, which is only known once every call is in.
#[derive(Default)]
struct Arrivals(Vec<(FrameRef, Box<str>)>);

impl Arrivals {
    fn add(&mut self, c: &Call) -> u32 {
        self.0
            .push((c.sip.first_frame, c.sip.call_id.as_str().into()));
        idx(self.0.len() - 1)
    }
    /// Each arrival's rank in report order.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<usize> = (0..self.0.len()).collect();
        order.sort_by(|x, y| self.0[*x].cmp(&self.0[*y]));
        let mut rank = vec![0; self.0.len()];
        for (r, i) in order.into_iter().enumerate() {
            rank[i] = idx(r);
        }
        rank
    }
}

/// Names (methods, user parts) stored once, referred to by number.
#[derive(Default)]
struct Interner(HashMap<Box<str>, u32>);

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(n) = self.0.get(s) {
            return *n;
        }
        let n = idx(self.0.len());
        self.0.insert(s.into(), n);
        n
    }
    /// The names by number.
    fn names(&self) -> Vec<&str> {
        let mut v = vec![""; self.0.len()];
        for (s, n) in &self.0 {
            if let Some(slot) = v.get_mut(*n as usize) {
                *slot = s;
            }
        }
        v
    }
}

fn name(names: &[&str], n: u32) -> Option<String> {
    names.get(n as usize).map(|s| s.to_string())
}

rule! {
    Scanner {
        id: "security.scanner",
        severity: Warning,
        title: "SIP scanner activity",
        explanation: "A source identifies itself as a known SIP scanning tool (friendly-scanner, sipvicious, ...) or probes many different extensions: someone is looking for accounts to break into or open relays for toll fraud.",
        remediation: "Block the source at the firewall, allow SIP only from your provider's ranges, use fail2ban or the PBX's ACLs, and make sure every extension has a strong password.",
        thresholds: "scanner User-Agent, or requests to ≥ scan_users (10) distinct user parts from one source",
        aggregate: ScannerAgg::default(),
    }
}

/// At most this many distinct user parts are counted per source.
const USERS_CAP: usize = 10_000;

/// A request's full place in the order (see [`Place`]), with the call's own report key,
/// for the one request per source an aggregate keeps.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    ts: Ts,
    frame: FrameRef,
    from: u8,
    call: (FrameRef, String),
    a: u32,
    b: u32,
}

impl Key {
    fn of_call(m: &MsgRecord, c: &Call, msg: u32) -> Key {
        Key {
            ts: m.ts,
            frame: m.frame,
            from: 0,
            call: (c.sip.first_frame, c.sip.call_id.clone()),
            a: msg,
            b: 0,
        }
    }
    fn other(ts: Ts, frame: FrameRef, from: u8, a: u32, b: u32) -> Key {
        Key {
            ts,
            frame,
            from,
            call: (FrameRef::default(), String::new()),
            a,
            b,
        }
    }
    /// Whether this place comes after a call's request (which then takes its place).
    fn after(&self, m: &MsgRecord, c: &Call, msg: u32) -> bool {
        let me = (
            self.ts,
            self.frame,
            self.from,
            self.call.0,
            self.call.1.as_str(),
            self.a,
        );
        let it = (
            m.ts,
            m.frame,
            0,
            c.sip.first_frame,
            c.sip.call_id.as_str(),
            msg,
        );
        it < me
    }
}

/// What `security.scanner` keeps of one source: its request count, its first request and
/// its first request with a scanner User-Agent (what the finding quotes), and the
/// distinct user parts it addressed, at most [`USERS_CAP`] (all the finding counts).
#[derive(Default)]
struct ScanSrc {
    requests: usize,
    /// Place, method, User-Agent.
    first: Option<(Key, String, Option<String>)>,
    /// Place, User-Agent.
    tool: Option<(Key, String)>,
    users: HashSet<Box<str>>,
}

impl ScanSrc {
    fn user(&mut self, u: Option<&str>) {
        if let Some(u) = u
            && self.users.len() < USERS_CAP
            && !self.users.contains(u)
        {
            self.users.insert(u.into());
        }
    }
    /// Count a request from the end of the capture (out of dialog, registration).
    fn other(&mut self, key: Key, method: &str, to: Option<&str>, ua: Option<&String>) {
        self.requests += 1;
        self.user(to);
        if self.first.as_ref().is_none_or(|(k, _, _)| key < *k) {
            self.first = Some((key.clone(), method.to_string(), ua.cloned()));
        }
        if let Some(ua) = ua.filter(|ua| is_scanner(ua))
            && self.tool.as_ref().is_none_or(|(k, _)| key < *k)
        {
            self.tool = Some((key, ua.clone()));
        }
    }
}

/// `security.scanner` by source ([`ScanSrc`]). A call keeps nothing of its own: its
/// requests add to their source's count, may replace the source's first (or first
/// scanner) request, and store a user part only when the source had not addressed it
/// yet and is under [`USERS_CAP`]. So a source costs at most that many user parts.
#[derive(Default)]
struct ScannerAgg {
    by_src: BTreeMap<IpAddr, ScanSrc>,
}

impl Aggregate for ScannerAgg {
    fn observe(&mut self, _cx: &Ctx<'_>, u: &Unit<'_>) {
        let Some(c) = u.call else { return };
        for (i, m, method) in call_requests(c) {
            let e = self.by_src.entry(m.src.ip).or_default();
            e.requests += 1;
            e.user(to_user(m).as_deref());
            let ua = m.msg.header_value(HeaderName::UserAgent);
            if e.first.as_ref().is_none_or(|(k, _, _)| k.after(m, c, i)) {
                e.first = Some((
                    Key::of_call(m, c, i),
                    method.as_str().to_string(),
                    ua.as_ref().map(|u| u.to_string()),
                ));
            }
            if let Some(ua) = ua.filter(|ua| is_scanner(ua))
                && e.tool.as_ref().is_none_or(|(k, _)| k.after(m, c, i))
            {
                e.tool = Some((Key::of_call(m, c, i), ua.into_owned()));
            }
        }
    }

    fn finish(self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>) {
        let mut by_src = self.by_src;
        for (i, o) in cx.analysis.out_of_dialog.iter().enumerate() {
            by_src.entry(o.src.ip).or_default().other(
                Key::other(o.ts, o.frame, 1, idx(i), 0),
                o.method.as_str(),
                uri_user(&o.to),
                o.user_agent.as_ref(),
            );
        }
        for (i, r) in cx.analysis.registrations.iter().enumerate() {
            for (j, at) in r.attempts.iter().enumerate() {
                by_src.entry(at.src.ip).or_default().other(
                    Key::other(at.ts, at.frame, 2, idx(i), idx(j)),
                    Method::Register.as_str(),
                    uri_user(&r.aor),
                    r.user_agent.as_ref(),
                );
            }
        }
        for (src, s) in by_src {
            let users = s.users.len();
            if s.tool.is_none() && users < cx.thresholds.scan_users {
                continue;
            }
            let Some((first, method, ua)) = &s.first else {
                continue;
            };
            let ev = vec![
                cx.ev(
                    first.frame,
                    first.ts,
                    format!(
                        "{method} from {src}{}",
                        ua.as_ref()
                            .map(|u| format!(", User-Agent: {u}"))
                            .unwrap_or_default()
                    ),
                ),
                Evidence {
                    frame: None,
                    time: None,
                    what: format!("{} requests to {users} distinct users", s.requests),
                },
            ];
            let why = match &s.tool {
                Some((_, t)) => format!("User-Agent \"{t}\""),
                None => format!("{users} distinct users probed"),
            };
            out.push(finding(
                meta,
                Subject::Host {
                    address: src.to_string(),
                },
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
        aggregate: TollFraudAgg::default(),
    }
}

/// No user part (the interned numbers start at 0).
const NO_USER: u32 = u32::MAX;

/// `security.toll-fraud` by source: a [`CallReq`] (about 40 bytes) for every INVITE of a
/// call, with the destination's user part interned (each stored once), and the report key
/// of each call that sent one ([`Arrivals`]). Not bounded per call by a constant: the
/// busiest 60 s window of a source, and the INVITEs it quotes, are only known once every
/// call is in, and a call released earlier cannot be read again. A call without an
/// INVITE costs nothing.
#[derive(Default)]
struct TollFraudAgg {
    by_src: BTreeMap<IpAddr, Vec<CallReq>>,
    calls: Arrivals,
    users: Interner,
}

impl Aggregate for TollFraudAgg {
    fn observe(&mut self, _cx: &Ctx<'_>, u: &Unit<'_>) {
        let Some(c) = u.call else { return };
        let users = &mut self.users;
        keep_requests(&mut self.by_src, &mut self.calls, c, |m, method| {
            (*method == Method::Invite).then(|| to_user(m).map_or(NO_USER, |u| users.id(&u)))
        });
    }

    fn finish(self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>) {
        let me = *self;
        let mut users = me.users;
        let rank = me.calls.ranks();
        let mut by: BTreeMap<IpAddr, Vec<(Place, u32)>> = me
            .by_src
            .into_iter()
            .map(|(src, v)| (src, v.iter().map(|r| (r.place(&rank), r.x)).collect()))
            .collect();
        for (i, o) in cx.analysis.out_of_dialog.iter().enumerate() {
            if o.method != Method::Invite {
                continue;
            }
            let x = uri_user(&o.to).map_or(NO_USER, |u| users.id(u));
            let p = Place {
                ts: o.ts,
                frame: o.frame,
                from: 1,
                a: idx(i),
                b: 0,
            };
            by.entry(o.src.ip).or_default().push((p, x));
        }
        let names = users.names();
        let user = |x: u32| if x == NO_USER { None } else { name(&names, x) };
        for (src, mut list) in by {
            list.sort_by_key(|(p, _)| *p);
            // Sliding 60 s window with a count per destination: distinct destinations
            // in the window without rebuilding a set per request (that was quadratic in
            // a burst).
            let mut best: Option<(usize, usize)> = None;
            let mut in_window: HashMap<u32, usize> = HashMap::new();
            let mut j = 0;
            for i in 0..list.len() {
                if list[i].1 != NO_USER {
                    *in_window.entry(list[i].1).or_default() += 1;
                }
                while list[i].0.ts.secs_since(list[j].0.ts) > 60.0 {
                    if list[j].1 != NO_USER
                        && let Some(n) = in_window.get_mut(&list[j].1)
                    {
                        *n -= 1;
                        if *n == 0 {
                            in_window.remove(&list[j].1);
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
                .filter(|(_, x)| user(*x).as_deref().is_some_and(international))
                .count();
            let ev = list[start..]
                .iter()
                .take(5)
                .map(|(p, x)| {
                    cx.ev(
                        p.frame,
                        p.ts,
                        format!("INVITE from {src} to {}", user(*x).unwrap_or_default()),
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
        aggregate: FloodAgg::default(),
    }
}

/// `security.flood` by source: a [`CallReq`] (about 40 bytes) for every request of a call
/// (the method interned, each name stored once), and the report key of each call
/// ([`Arrivals`]). Not bounded per call by a constant: the busiest second of a source,
/// and the request it quotes, are only known once every call is in, and a call released
/// earlier cannot be read again.
#[derive(Default)]
struct FloodAgg {
    by_src: BTreeMap<IpAddr, Vec<CallReq>>,
    calls: Arrivals,
    methods: Interner,
}

impl Aggregate for FloodAgg {
    fn observe(&mut self, _cx: &Ctx<'_>, u: &Unit<'_>) {
        let Some(c) = u.call else { return };
        let methods = &mut self.methods;
        keep_requests(&mut self.by_src, &mut self.calls, c, |_, method| {
            Some(methods.id(method.as_str()))
        });
    }

    fn finish(self: Box<Self>, cx: &Ctx<'_>, meta: &'static RuleMeta, out: &mut Vec<Finding>) {
        let me = *self;
        let rank = me.calls.ranks();
        let names = me.methods.names();
        let mut by: BTreeMap<IpAddr, Vec<(Place, &str)>> = me
            .by_src
            .iter()
            .map(|(src, v)| {
                let v = v
                    .iter()
                    .map(|r| {
                        (
                            r.place(&rank),
                            names.get(r.x as usize).copied().unwrap_or(""),
                        )
                    })
                    .collect();
                (*src, v)
            })
            .collect();
        for (i, o) in cx.analysis.out_of_dialog.iter().enumerate() {
            let p = Place {
                ts: o.ts,
                frame: o.frame,
                from: 1,
                a: idx(i),
                b: 0,
            };
            by.entry(o.src.ip).or_default().push((p, o.method.as_str()));
        }
        let register = Method::Register;
        for (i, r) in cx.analysis.registrations.iter().enumerate() {
            for (j, at) in r.attempts.iter().enumerate() {
                let p = Place {
                    ts: at.ts,
                    frame: at.frame,
                    from: 2,
                    a: idx(i),
                    b: idx(j),
                };
                by.entry(at.src.ip)
                    .or_default()
                    .push((p, register.as_str()));
            }
        }
        for (src, mut list) in by {
            list.sort_by_key(|(p, _)| *p);
            let mut j = 0;
            let mut best = (0usize, 0usize);
            for i in 0..list.len() {
                while list[i].0.ts.secs_since(list[j].0.ts) >= 1.0 {
                    j += 1;
                }
                if i + 1 - j > best.0 {
                    best = (i + 1 - j, j);
                }
            }
            if (best.0 as f64) < cx.thresholds.flood_rps {
                continue;
            }
            let (r, method) = list[best.1];
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
                    format!("first request of the busiest second: {method}"),
                )],
            ));
        }
    }
}
